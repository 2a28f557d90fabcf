// Redis Cluster's key -> slot: CRC-16/XMODEM check values, and keyslots as a
// real redis-server 7 answers `CLUSTER KEYSLOT` (the expected numbers below were
// taken from one running with cluster-enabled yes), including every hash-tag
// edge case of keyHashSlot().
#include "partition/slots.h"

#include <gtest/gtest.h>

#include <string>

#include "core/random.h"

namespace statekv::partition {
namespace {

using namespace std::string_literals;

TEST(Crc16, XmodemCheckValues) {
  // The catalogue check value of CRC-16/XMODEM, and values from an independent
  // implementation (Python's binascii.crc_hqx with initial value 0).
  EXPECT_EQ(crc16("123456789"), 0x31C3);
  EXPECT_EQ(crc16(""), 0x0000);
  EXPECT_EQ(crc16("A"), 0x58E5);
  EXPECT_EQ(crc16("\0"s), 0x0000);
  EXPECT_EQ(crc16("\xff\xff\xff\xff"), 0x99CF);
  EXPECT_EQ(crc16("statekv"), 0x9DCD);
}

TEST(HashTag, FollowsKeyHashSlotRules) {
  EXPECT_EQ(hash_tag("foo"), "foo");                        // no '{'
  EXPECT_EQ(hash_tag("{user1000}.following"), "user1000");  // the tag
  EXPECT_EQ(hash_tag("foo{}{bar}"), "foo{}{bar}");          // first tag empty: whole key
  EXPECT_EQ(hash_tag("foo{{bar}}zap"), "{bar");             // from the first '{' to the first '}'
  EXPECT_EQ(hash_tag("foo{bar}{zap}"), "bar");              // only the first tag counts
  EXPECT_EQ(hash_tag("{"), "{");                            // no '}'
  EXPECT_EQ(hash_tag("a{b"), "a{b");                        // no '}' after the '{'
  EXPECT_EQ(hash_tag("}{a}"), "a");                         // a '}' before the '{' is ignored
  EXPECT_EQ(hash_tag("{}"), "{}");                          // empty tag: whole key
  EXPECT_EQ(hash_tag("{{}}"), "{");                         // "{" up to the first '}'
  EXPECT_EQ(hash_tag("x{}y"), "x{}y");                      // empty tag: whole key
  EXPECT_EQ(hash_tag(""), "");
}

struct KeyslotCase {
  std::string key;
  uint32_t slot;
};

TEST(KeySlot, MatchesRedisClusterKeyslot) {
  const KeyslotCase cases[] = {
      {"foo", 12182},
      {"bar", 5061},
      {"", 0},
      {"123456789", 12739},
      {"{user1000}.following", 3443},
      {"{user1000}.followers", 3443},
      {"foo{}{bar}", 8363},
      {"foo{{bar}}zap", 4015},
      {"foo{bar}{zap}", 5061},
      {"{", 4092},
      {"}", 12090},
      {"{}", 15257},
      {"a{b", 13340},
      {"a}b{c}", 7365},
      {"{a}", 15495},
      {"x{}y", 16116},
      {"{{}}", 4092},
      {"}{a}", 15495},
      {"a{bc}d{e}", 12685},
      {"hello world", 15332},
      {"key:000000000001", 8924},
      {"{}a{b}", 16175},
      {"\xff\0\x80{z}"s, 8157},
      {"\0"s, 0},
      {"a\0{b}"s, 3300},
  };
  for (const KeyslotCase& c : cases) EXPECT_EQ(key_slot(c.key), c.slot) << "key: " << c.key;
}

TEST(KeySlot, SameTagSameSlotAndAlwaysInRange) {
  Random rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string tag;
    const size_t len = 1 + rng.uniform(12);
    for (size_t j = 0; j < len; ++j) {
      char c = static_cast<char>(rng.uniform(256));
      if (c == '}') c = 'x';  // a '}' would end the tag early
      tag.push_back(c);
    }
    const std::string a = "user:{" + tag + "}:profile";
    const std::string b = "{" + tag + "}" + std::to_string(i);
    EXPECT_EQ(key_slot(a), key_slot(b));
    EXPECT_EQ(key_slot(a), crc16(tag) % kSlotCount);
    EXPECT_LT(key_slot(a), kSlotCount);
  }
}

}  // namespace
}  // namespace statekv::partition
