// The engine layout (record.h): records of every type, collection payloads,
// element and garbage keys — round trips and refusal of malformed bytes.
#include "server/record.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace statekv::server {
namespace {

TEST(Record, StringRecordsEncodeAsBefore) {
  std::string out;
  encode_record("v", 0, &out);
  EXPECT_EQ(out, std::string("\x00v", 2));
  encode_record("v", 0x0102030405060708, &out);
  EXPECT_EQ(out, std::string("\x10\x01\x02\x03\x04\x05\x06\x07\x08v", 10));
}

TEST(Record, EveryTypeRoundTripsAndUnknownTypesAreRefused) {
  for (ValueType t : {ValueType::kString, ValueType::kHash, ValueType::kSet, ValueType::kList,
                      ValueType::kZset}) {
    std::string out;
    encode_record(t, "payload", 123, &out);
    RecordView rec;
    ASSERT_TRUE(decode_record(out, &rec));
    EXPECT_EQ(rec.type, t);
    EXPECT_EQ(rec.expire_ms, 123);
    EXPECT_EQ(rec.value, "payload");
  }
  RecordView rec;
  for (int type = 5; type < 16; ++type) {
    EXPECT_FALSE(decode_record(std::string(1, static_cast<char>(type)) + "x", &rec)) << type;
  }
  EXPECT_FALSE(decode_record(std::string("\x20x", 2), &rec));  // an unknown flag bit
  EXPECT_EQ(type_name(ValueType::kHash), "hash");
  EXPECT_EQ(type_name(ValueType::kSet), "set");
}

TEST(Record, CollectionHeadsRoundTrip) {
  std::string payload;
  encode_elements_head(1ull << 40, 1000000, &payload);
  CollectionHead head;
  ASSERT_TRUE(decode_collection(payload, &head));
  EXPECT_EQ(head.encoding, Encoding::kElements);
  EXPECT_EQ(head.gen, 1ull << 40);
  EXPECT_EQ(head.count, 1000000u);
  EXPECT_EQ(record_generation(ValueType::kHash, payload), 1ull << 40);
  EXPECT_EQ(record_generation(ValueType::kString, payload), 0u);  // a string owns nothing

  begin_compact(Encoding::kCompact, 2, &payload);
  append_compact("f", &payload);
  append_compact(std::string(300, 'v'), &payload);  // a two-byte length
  append_compact("", &payload);
  append_compact("w", &payload);
  ASSERT_TRUE(decode_collection(payload, &head));
  EXPECT_EQ(head.encoding, Encoding::kCompact);
  EXPECT_EQ(head.count, 2u);
  EXPECT_EQ(record_generation(ValueType::kHash, payload), 0u);
  CompactReader r(head.entries);
  std::vector<std::string> items;
  std::string_view item;
  while (r.next(&item)) items.emplace_back(item);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(items, (std::vector<std::string>{"f", std::string(300, 'v'), "", "w"}));
}

TEST(Record, MalformedPayloadsAreRefusedNotRead) {
  CollectionHead head;
  EXPECT_FALSE(decode_collection("", &head));
  EXPECT_FALSE(decode_collection(std::string("\x00", 1), &head));  // no such encoding
  EXPECT_FALSE(decode_collection(std::string("\x04\x01", 2), &head));
  EXPECT_FALSE(decode_collection(std::string("\x03\x00\x01", 3), &head));  // generation 0
  EXPECT_FALSE(decode_collection(std::string("\x03\x05", 2), &head));      // no count
  // A list's first index may follow the count; nothing may follow that.
  EXPECT_FALSE(decode_collection(std::string("\x03\x05\x01\x07x", 5), &head));  // trailing
  EXPECT_FALSE(decode_collection(std::string("\x03\x05\x01\xff", 4), &head));   // truncated
  EXPECT_FALSE(decode_collection(std::string("\x01\xff", 2), &head));           // truncated varint
  std::string payload;
  encode_elements_head(5, 3, &payload);
  for (size_t n = 0; n < payload.size(); ++n) {
    EXPECT_FALSE(decode_collection(payload.substr(0, n), &head)) << n;
  }
  // A length past the end stops the reader and says so.
  CompactReader r(
      std::string("\x05"
                  "ab",
                  3));
  std::string_view item;
  EXPECT_FALSE(r.next(&item));
  EXPECT_FALSE(r.ok());
}

TEST(Record, ListHeadsCarryTheirFirstIndex) {
  std::string payload;
  encode_list_head(9, 4, (uint64_t{1} << 63) - 2, &payload);
  CollectionHead head;
  ASSERT_TRUE(decode_collection(payload, &head));
  EXPECT_EQ(head.encoding, Encoding::kElements);
  EXPECT_EQ(head.gen, 9u);
  EXPECT_EQ(head.count, 4u);
  EXPECT_EQ(head.head, (uint64_t{1} << 63) - 2);
  EXPECT_EQ(record_generation(ValueType::kList, payload), 9u);  // retired like the others
  // A hash or set head has none.
  encode_elements_head(9, 4, &payload);
  ASSERT_TRUE(decode_collection(payload, &head));
  EXPECT_EQ(head.head, 0u);
}

TEST(Record, ElementKeysSortByGenerationThenPosition) {
  std::string a;
  std::string b;
  element_key(1, "zzz", &a);
  element_key(2, "aaa", &b);
  EXPECT_LT(a, b);  // every element of generation 1 before any of 2
  std::string prefix;
  element_prefix(1, &prefix);
  EXPECT_EQ(a.substr(0, prefix.size()), prefix);
  uint64_t gen;
  uint32_t position;
  std::string_view field;
  ASSERT_TRUE(parse_element_key(a, &gen, &position, &field));
  EXPECT_EQ(gen, 1u);
  EXPECT_EQ(position, element_hash("zzz"));
  EXPECT_EQ(field, "zzz");
  std::string start;
  element_position_key(1, position, &start);
  EXPECT_LE(start, a);
  element_key(1, "", &a);  // an empty field is a valid element
  ASSERT_TRUE(parse_element_key(a, &gen, &position, &field));
  EXPECT_EQ(field, "");
  EXPECT_FALSE(parse_element_key("m123", &gen, &position, &field));
  std::string g;
  garbage_key(42, &g);
  ASSERT_TRUE(parse_garbage_key(g, &gen));
  EXPECT_EQ(gen, 42u);
  EXPECT_FALSE(parse_garbage_key(g + "x", &gen));
  garbage_key(0, &g);
  EXPECT_FALSE(parse_garbage_key(g, &gen));
}

// Element keys carry their generation in a short order-preserving form (a store's
// first generations cost 2 bytes, not be64's 8: the memory per element of a large
// collection, issue 11 item 5), and byte order stays generation order across every
// encoding length, in every generation space.
TEST(Record, ElementPrefixIsShortAndKeepsGenerationOrder) {
  std::string prefix;
  element_prefix(1, &prefix);
  EXPECT_EQ(prefix.size(), 3u);  // 'm', space 0, counter 1
  element_prefix((uint64_t{1} << 48) | 200, &prefix);
  EXPECT_EQ(prefix.size(), 3u);  // node 1's 200th generation
  element_prefix((uint64_t{0xffff} << 48) | ((uint64_t{1} << 46) - 1), &prefix);
  EXPECT_EQ(prefix.size(), 1u + 3u + 7u);

  std::vector<uint64_t> gens;
  for (uint64_t space : {uint64_t{0}, uint64_t{1}, uint64_t{247}, uint64_t{248}, uint64_t{255},
                         uint64_t{256}, uint64_t{0xffff}}) {
    for (uint64_t counter :
         {uint64_t{0}, uint64_t{1}, uint64_t{247}, uint64_t{248}, uint64_t{255}, uint64_t{256},
          uint64_t{65535}, uint64_t{65536}, (uint64_t{1} << 40) + 3, (uint64_t{1} << 46) - 1}) {
      gens.push_back((space << 48) | counter);
    }
  }
  std::string previous_key;
  uint64_t previous_gen = 0;
  for (uint64_t gen : gens) {
    std::string key;
    element_key(gen, "field", &key);
    uint64_t parsed_gen = 0;
    uint32_t position = 0;
    std::string_view field;
    ASSERT_TRUE(parse_element_key(key, &parsed_gen, &position, &field)) << gen;
    EXPECT_EQ(parsed_gen, gen);
    EXPECT_EQ(position, element_hash("field"));
    EXPECT_EQ(field, "field");
    // The next generation's prefix bounds this one's elements (Store's scans).
    // (Counters stay below bit 46: bits 46 and 47 are markers, which keys
    // leave out.)
    if (key_generation(gen + 1) == gen + 1) {
      std::string next;
      element_prefix(gen + 1, &next);
      EXPECT_LT(key, next) << gen;
    }
    element_prefix(gen, &prefix);
    EXPECT_EQ(key.substr(0, prefix.size()), prefix);
    if (!previous_key.empty()) {
      EXPECT_LT(previous_key, key) << previous_gen << " then " << gen;
    }
    previous_key = key;
    previous_gen = gen;
  }
  // Truncated or non-shortest generations are malformed.
  uint64_t gen;
  uint32_t position;
  std::string_view field;
  EXPECT_FALSE(parse_element_key(std::string("m\x00\xf8", 3), &gen, &position, &field));
  EXPECT_FALSE(parse_element_key(std::string("m\x00\xf8\x05\0\0\0\0", 8), &gen, &position, &field));
  EXPECT_FALSE(parse_element_key(std::string("m\x00\x01\0\0\0", 6), &gen, &position, &field));
}

// The memory engine keeps a collection's entries in one stripe by this length:
// every key of one collection must give the same prefix, other keys none.

// A list's ordered generation (kOrderedElementsBit): its elements sit at
// position 0, so they sort by field (be64 list indexes: list order); keys
// leave the bit out, and the hashed layout of other generations is unchanged.
TEST(Record, OrderedGenerationsKeepTheirElementsInFieldOrder) {
  const uint64_t counter = (uint64_t{3} << 48) | 77;
  const uint64_t ordered = counter | kOrderedElementsBit;
  EXPECT_TRUE(ordered_elements(ordered));
  EXPECT_FALSE(ordered_elements(counter));
  EXPECT_FALSE(ordered_elements(counter | kScoreIndexBit));
  EXPECT_EQ(key_generation(ordered), counter);
  EXPECT_EQ(key_generation(counter | kScoreIndexBit), counter);

  auto be64 = [](uint64_t v) {
    std::string out(8, '\0');
    for (int i = 7; i >= 0; --i, v >>= 8) out[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
    return out;
  };
  std::string previous;
  for (uint64_t index : {uint64_t{1} << 63, (uint64_t{1} << 63) + 1, (uint64_t{1} << 63) + 255,
                         (uint64_t{1} << 63) + 256, (uint64_t{1} << 63) + (uint64_t{1} << 40)}) {
    std::string key;
    element_key(ordered, be64(index), &key);
    EXPECT_EQ(element_position(ordered, be64(index)), 0u);
    uint64_t gen = 0;
    uint32_t position = 1;
    std::string_view field;
    ASSERT_TRUE(parse_element_key(key, &gen, &position, &field));
    EXPECT_EQ(gen, counter);
    EXPECT_EQ(position, 0u);
    EXPECT_EQ(field, be64(index));
    if (!previous.empty()) {
      EXPECT_LT(previous, key) << index;
    }
    previous = key;
  }
  // The same field in the hashed layout: its hash is its position.
  std::string hashed;
  element_key(counter, be64(1), &hashed);
  EXPECT_EQ(element_position(counter, be64(1)), element_hash(be64(1)));
  std::string prefix;
  element_prefix(counter, &prefix);
  EXPECT_EQ(hashed.substr(0, prefix.size()), prefix);
}
// The memory engine keeps an ordered list's elements in its ordered index only
// (cli/server_command.cc): the key's shape says which they are.
TEST(Record, OrderedElementKeysAreToldByTheirShape) {
  const uint64_t counter = (uint64_t{3} << 48) | 77;
  const std::string index("\x80\0\0\0\0\0\0\x05", 8);
  std::string key;
  element_key(counter | kOrderedElementsBit, index, &key);
  EXPECT_TRUE(is_ordered_element_key(key));
  // The same field of a hash, a set or a list of the layout before: hashed.
  element_key(counter, index, &key);
  ASSERT_NE(element_hash(index), 0u);
  EXPECT_FALSE(is_ordered_element_key(key));
  // Other fields at position 0 (a cursor key), records, score-index entries.
  element_position_key(counter, 0, &key);
  EXPECT_FALSE(is_ordered_element_key(key));
  EXPECT_FALSE(is_ordered_element_key(key + "1234567"));
  EXPECT_TRUE(is_ordered_element_key(key + "12345678"));
  EXPECT_FALSE(is_ordered_element_key(key + "123456789"));
  score_index_key(counter, 42, "member", &key);
  EXPECT_FALSE(is_ordered_element_key(key));
  EXPECT_FALSE(is_ordered_element_key("dmylist"));
  EXPECT_FALSE(is_ordered_element_key(""));
  EXPECT_FALSE(is_ordered_element_key(std::string("m\xff", 2)));
}

TEST(Record, CollectionGroupLengthIsTheGenerationPrefixOfElementAndScoreKeys) {
  for (uint64_t gen : {uint64_t{1}, uint64_t{247}, uint64_t{248}, uint64_t{70000},
                       (uint64_t{3} << 48) | 5, ~uint64_t{0} >> 1}) {
    std::string prefix;
    element_prefix(gen, &prefix);
    for (std::string_view field : {"", "a", "a much longer field name"}) {
      std::string key;
      element_key(gen, field, &key);
      EXPECT_EQ(collection_group_length(key), prefix.size()) << gen;
    }
    std::string score_group;
    score_prefix(gen, &score_group);
    for (uint64_t bits : {uint64_t{0}, uint64_t{42}, score_order_bits(-1.5), ~uint64_t{0}}) {
      std::string score;
      score_index_key(gen, bits, "member", &score);
      EXPECT_EQ(collection_group_length(score), score_group.size()) << gen;
    }
  }
  EXPECT_EQ(collection_group_length("dkey"), 0u);
  EXPECT_EQ(collection_group_length(""), 0u);
  EXPECT_EQ(collection_group_length("z\x01"), 0u);
  EXPECT_EQ(collection_group_length(std::string("s\0\0\x80\0\0\0\0\x01", 9)), 0u);  // legacy
  EXPECT_EQ(collection_group_length(std::string("m\xff", 2)), 0u);  // truncated generation
}

// The memory engine's two questions about every key (its stripe, whether it
// is kept in the hash index) are answered from lengths alone; on every key
// the store writes they agree with the full parse.
TEST(Record, StripeAndOrderQuestionsAgreeWithTheFullParse) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 20000; ++i) {
    // Generations of every size, as the store makes them (space, counter, markers).
    const uint64_t space = rng() % 3 == 0 ? 0 : rng() % 65536;
    const uint64_t counter = (rng() >> (rng() % 64)) & ((uint64_t{1} << 48) - 1);
    const uint64_t gen =
        (space << 48) | (counter == 0 ? 1 : counter) | (rng() % 2 ? kOrderedElementsBit : 0);
    std::string field(rng() % 12, 'f');
    for (char& c : field) c = static_cast<char>(rng());
    std::string key;
    element_key(gen, field, &key);
    uint64_t parsed_gen = 0;
    uint32_t position = 0;
    std::string_view parsed_field;
    ASSERT_TRUE(parse_element_key(key, &parsed_gen, &position, &parsed_field));
    EXPECT_EQ(is_ordered_element_key(key), position == 0 && parsed_field.size() == 8) << i;
    std::string prefix;
    element_prefix(gen, &prefix);
    EXPECT_EQ(collection_group_length(key), prefix.size()) << i;
    // Every cut of the generation gives 0, every cut after it the same length.
    for (size_t n = 1; n < key.size(); ++n) {
      const size_t got = collection_group_length(std::string_view(key).substr(0, n));
      EXPECT_EQ(got, n < prefix.size() ? 0 : prefix.size()) << i << " cut to " << n;
    }
  }
}

// A sorted set's marker bit is not in its keys: its element and score-index
// keys carry the same 2-byte generation as a hash's (issue 11 item 5; it cost 7).
TEST(Record, SortedSetGenerationsAreAsShortAsAHashs) {
  const uint64_t zset = 5 | kScoreIndexBit;
  std::string prefix;
  element_prefix(zset, &prefix);
  EXPECT_EQ(prefix, std::string("m\0\x05", 3));
  score_prefix(zset, &prefix);
  EXPECT_EQ(prefix, std::string("z\0\x05", 3));
  std::string key;
  element_key(zset, "member", &key);
  uint64_t gen = 0;
  uint32_t position = 0;
  std::string_view field;
  ASSERT_TRUE(parse_element_key(key, &gen, &position, &field));
  EXPECT_EQ(gen, key_generation(zset));
  EXPECT_EQ(gen, 5u);
  EXPECT_EQ(field, "member");
  // The next generation's prefix still bounds this one's keys.
  std::string next;
  element_prefix(zset + 1, &next);
  EXPECT_LT(key, next);
  // A key carrying the marker (the layout before) is not a generation this build writes.
  EXPECT_FALSE(parse_element_key(std::string("m\0\xfd\x80\0\0\0\0\x05\0\0\0\0x", 14), &gen,
                                 &position, &field));
}

std::vector<double> interesting_scores() {
  std::vector<double> v = {-HUGE_VAL,
                           -std::numeric_limits<double>::max(),
                           -1e300,
                           -123456.75,
                           -1000001,
                           -1000000,
                           -3.5,
                           -1,
                           -0.1,
                           -std::numeric_limits<double>::min(),
                           -std::numeric_limits<double>::denorm_min(),
                           0.0,
                           std::numeric_limits<double>::denorm_min(),
                           std::numeric_limits<double>::min(),
                           1e-300,
                           0.1,
                           0.5,
                           1,
                           2,
                           3,
                           3.14159265358979,
                           127,
                           128,
                           999999,
                           1000000,
                           1733360000000.0,
                           9007199254740993.0,
                           1e300,
                           std::numeric_limits<double>::max(),
                           HUGE_VAL};
  uint64_t x = 0x9e3779b97f4a7c15;  // a fixed sequence of arbitrary bit patterns
  for (int i = 0; i < 2000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    double d = 0;
    std::memcpy(&d, &x, sizeof d);
    if (!std::isnan(d)) v.push_back(d);
  }
  return v;
}

// The score index key's order form: byte order is (score, member) order for
// any members, the score comes back exactly from it, and simple scores are short.
TEST(Record, ScoreIndexKeysSortByScoreThenMemberAndGiveTheScoreBack) {
  const uint64_t gen = 7 | kScoreIndexBit;
  struct Entry {
    double score;
    std::string member;
    std::string key;
  };
  std::vector<Entry> entries;
  for (double d : interesting_scores()) {
    for (std::string member : {std::string(), std::string("a"), std::string("\0", 1),
                               std::string("\xff\xff"), std::string("member:0000001")}) {
      Entry e{d, member, {}};
      score_index_key(gen, score_order_bits(d), member, &e.key);
      entries.push_back(std::move(e));
    }
  }
  for (const Entry& e : entries) {
    uint64_t g = 0;
    uint64_t bits = 0;
    std::string_view member;
    ASSERT_TRUE(parse_score_index_key(e.key, &g, &bits, &member)) << e.score;
    EXPECT_EQ(g, key_generation(gen));
    EXPECT_EQ(bits, score_order_bits(e.score));
    EXPECT_EQ(member, e.member);
    std::string value;
    score_index_value(e.score, &value);
    EXPECT_TRUE(value.empty()) << e.score;  // only -0 needs one
    double back = 0;
    ASSERT_TRUE(decode_score_index_entry(bits, value, &back));
    EXPECT_EQ(std::memcmp(&back, &e.score, sizeof back), 0) << e.score;
  }
  auto by_score_then_member = [](const Entry& a, const Entry& b) {
    if (a.score != b.score) return a.score < b.score;
    return a.member < b.member;
  };
  std::sort(entries.begin(), entries.end(), by_score_then_member);
  for (size_t i = 1; i < entries.size(); ++i) {
    const Entry& a = entries[i - 1];
    const Entry& b = entries[i];
    if (a.score == b.score && a.member == b.member) {
      EXPECT_EQ(a.key, b.key);
    } else {
      EXPECT_LT(a.key, b.key) << a.score << " " << a.member << " / " << b.score << " " << b.member;
    }
  }
  // Lengths of the order form: 1 to 10 bytes, fewer for scores with short mantissas.
  auto ord_size = [](double d) {
    std::string out;
    append_score_order(score_order_bits(d), &out);
    return out.size();
  };
  EXPECT_EQ(ord_size(0.0), 1u);
  EXPECT_EQ(ord_size(1), 2u);
  EXPECT_LE(ord_size(999999), 5u);
  EXPECT_EQ(ord_size(3.14159265358979), 10u);
  EXPECT_LE(ord_size(1733360000000.0), 8u);
}

// -0 orders as 0 (Redis compares them equal, then by member) and keeps its sign
// through the index entry's value; malformed entries are refused.
TEST(Record, ScoreIndexKeepsNegativeZeroAndRefusesMalformedEntries) {
  const double neg_zero = -0.0;
  std::string value;
  score_index_value(neg_zero, &value);
  EXPECT_EQ(value.size(), 8u);
  double back = 1;
  ASSERT_TRUE(decode_score_index_entry(score_order_bits(neg_zero), value, &back));
  EXPECT_TRUE(std::signbit(back));
  EXPECT_EQ(back, 0.0);
  EXPECT_EQ(score_order_bits(neg_zero), score_order_bits(0.0));
  ASSERT_TRUE(decode_score_index_entry(score_order_bits(0.0), "", &back));
  EXPECT_FALSE(std::signbit(back));

  // An 8-byte value must be a score of the key's order bits.
  EXPECT_FALSE(decode_score_index_entry(score_order_bits(1.0), value, &back));
  EXPECT_FALSE(decode_score_index_entry(score_order_bits(0.0), "1234567", &back));
  // Order bits of a NaN are no score.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  uint64_t nan_bits = 0;
  std::memcpy(&nan_bits, &nan, sizeof nan_bits);
  EXPECT_FALSE(decode_score_index_entry(nan_bits | (uint64_t{1} << 63), "", &back));

  // Truncated and non-canonical order forms.
  uint64_t bits = 0;
  std::string_view in;
  in = std::string_view("\x03", 1);  // continues, then ends
  EXPECT_FALSE(get_score_order(&in, &bits));
  in = std::string_view("\x03\x00", 2);  // a trailing zero group
  EXPECT_FALSE(get_score_order(&in, &bits));
  std::string ten(9, '\x01');
  ten.push_back('\x02');  // the tenth group holds one bit, in its top place
  in = ten;
  EXPECT_FALSE(get_score_order(&in, &bits));
  ten.back() = '\x80';
  in = ten;
  ASSERT_TRUE(get_score_order(&in, &bits));
  EXPECT_EQ(bits, 1u);
  EXPECT_TRUE(in.empty());
  uint64_t g = 0;
  std::string_view member;
  EXPECT_FALSE(parse_score_index_key("z", &g, &bits, &member));
  EXPECT_FALSE(parse_score_index_key(std::string("z\0\x05", 3), &g, &bits, &member));
  EXPECT_FALSE(parse_score_index_key(std::string("s\0\x05\x00", 4), &g, &bits, &member));
}

}  // namespace
}  // namespace statekv::server
