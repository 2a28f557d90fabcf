#include "core/varint.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <string>
#include <vector>

namespace statekv {
namespace {

// The definition, a byte at a time: what decode_varint must agree with.
size_t reference_decode(std::string_view in, uint64_t* v) {
  uint64_t result = 0;
  for (size_t i = 0; i < in.size() && i < kMaxVarintBytes; ++i) {
    const auto b = static_cast<uint8_t>(in[i]);
    if (i == kMaxVarintBytes - 1 && b > 1) return 0;
    result |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if (b < 0x80) {
      *v = result;
      return i + 1;
    }
  }
  return 0;
}

std::vector<uint64_t> interesting_values() {
  std::vector<uint64_t> values = {0,
                                  1,
                                  0x7f,
                                  std::numeric_limits<uint64_t>::max(),
                                  uint64_t{1} << 63,
                                  (uint64_t{1} << 63) + 12345};
  for (int bits = 7; bits < 64; bits += 7) {
    values.push_back((uint64_t{1} << bits) - 1);  // the largest of a length
    values.push_back(uint64_t{1} << bits);        // the smallest of the next
  }
  std::mt19937_64 rng(42);
  for (int i = 0; i < 2000; ++i) values.push_back(rng() >> (rng() % 64));
  return values;
}

TEST(Varint, EveryLengthRoundTripsWithTheBytesItTook) {
  for (uint64_t value : interesting_values()) {
    std::string encoded;
    append_varint(encoded, value);
    ASSERT_LE(encoded.size(), kMaxVarintBytes);
    // Alone, then followed by more bytes (a record's next field; a first byte
    // of 0x00 or 0xff must not be taken for part of it).
    for (std::string tail : {std::string(), std::string("\x00", 1), std::string("\xff\xff"),
                             std::string(12, '\x80')}) {
      const std::string in = encoded + tail;
      uint64_t decoded = ~value;
      ASSERT_EQ(decode_varint(in, &decoded), encoded.size()) << value;
      EXPECT_EQ(decoded, value);
    }
  }
}

TEST(Varint, AnInputCutShortIsRefusedAndLeavesTheValueAlone) {
  for (uint64_t value : interesting_values()) {
    std::string encoded;
    append_varint(encoded, value);
    for (size_t n = 0; n < encoded.size(); ++n) {
      uint64_t decoded = 7;
      EXPECT_EQ(decode_varint(std::string_view(encoded).substr(0, n), &decoded), 0u)
          << value << " cut to " << n;
      EXPECT_EQ(decoded, 7u);
    }
  }
}

TEST(Varint, MoreThanSixtyFourBitsIsRefused) {
  const std::string nine_more(9, '\xff');  // 63 bits, each byte saying "more"
  for (int last = 0; last < 256; ++last) {
    const std::string in = nine_more + static_cast<char>(last);
    uint64_t decoded = 0;
    const size_t n = decode_varint(in, &decoded);
    if (last <= 1) {
      EXPECT_EQ(n, 10u);
      EXPECT_EQ(decoded, last == 1 ? std::numeric_limits<uint64_t>::max()
                                   : std::numeric_limits<uint64_t>::max() >> 1);
    } else {
      EXPECT_EQ(n, 0u) << "tenth byte " << last;
    }
  }
  uint64_t untouched = 5;
  EXPECT_EQ(decode_varint(std::string(11, '\x80') + '\x01', &untouched), 0u);  // eleven bytes
  EXPECT_EQ(untouched, 5u);
}

// Random bytes, including encodings that are not the shortest (0x80 0x00 is
// 0): the fast path and the definition agree on every one.
TEST(Varint, AgreesWithTheDefinitionOnArbitraryBytes) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200000; ++i) {
    std::string in(rng() % 13, '\0');
    for (char& c : in) {
      // Mostly bytes that say "more", so that long varints are common.
      c = static_cast<char>(rng() % 4 == 0 ? rng() % 256 : 0x80 | (rng() % 128));
    }
    uint64_t want = 0;
    uint64_t got = 0;
    const size_t want_n = reference_decode(in, &want);
    ASSERT_EQ(decode_varint(in, &got), want_n) << i;
    if (want_n != 0) {
      ASSERT_EQ(got, want) << i;
    }
  }
}

TEST(Varint, TakeVarintConsumesOnlyOnSuccess) {
  std::string buf;
  append_varint(buf, 300);
  append_varint(buf, uint64_t{1} << 62);
  std::string_view in = buf;
  uint64_t a = 0;
  uint64_t b = 0;
  ASSERT_TRUE(take_varint(&in, &a));
  ASSERT_TRUE(take_varint(&in, &b));
  EXPECT_EQ(a, 300u);
  EXPECT_EQ(b, uint64_t{1} << 62);
  EXPECT_TRUE(in.empty());
  std::string_view cut = std::string_view(buf).substr(0, 1);
  EXPECT_FALSE(take_varint(&cut, &a));
  EXPECT_EQ(cut.size(), 1u);
}

}  // namespace
}  // namespace statekv
