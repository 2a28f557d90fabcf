// The engine layout (record.h): records of every type, collection payloads,
// element and garbage keys — round trips and refusal of malformed bytes.
#include "server/record.h"

#include <gtest/gtest.h>

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
  element_prefix((uint64_t{0xffff} << 48) | ((uint64_t{1} << 48) - 1), &prefix);
  EXPECT_EQ(prefix.size(), 1u + 3u + 7u);

  std::vector<uint64_t> gens;
  for (uint64_t space : {uint64_t{0}, uint64_t{1}, uint64_t{247}, uint64_t{248}, uint64_t{255},
                         uint64_t{256}, uint64_t{0xffff}}) {
    for (uint64_t counter :
         {uint64_t{0}, uint64_t{1}, uint64_t{247}, uint64_t{248}, uint64_t{255}, uint64_t{256},
          uint64_t{65535}, uint64_t{65536}, (uint64_t{1} << 40) + 3, (uint64_t{1} << 48) - 1}) {
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
    if (gen != UINT64_MAX) {
      std::string next;
      element_prefix(gen + 1, &next);
      EXPECT_LT(key, next) << gen;
    }
    element_prefix(gen, &prefix);
    EXPECT_EQ(key.substr(0, prefix.size()), prefix);
    if (!previous_key.empty()) EXPECT_LT(previous_key, key) << previous_gen << " then " << gen;
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
    std::string score;
    score_index_key(gen, 42, "member", &score);
    EXPECT_EQ(collection_group_length(score), 9u);
  }
  EXPECT_EQ(collection_group_length("dkey"), 0u);
  EXPECT_EQ(collection_group_length(""), 0u);
  EXPECT_EQ(collection_group_length("s\x01"), 0u);
  EXPECT_EQ(collection_group_length(std::string("m\xff", 2)), 0u);  // truncated generation
}

}  // namespace
}  // namespace statekv::server
