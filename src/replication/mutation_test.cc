#include "replication/mutation.h"

#include <gtest/gtest.h>

#include <string>
#include <tuple>
#include <vector>

#include "core/random.h"

namespace statekv::replication {
namespace {

Mutation sample(std::vector<std::string>& storage) {
  storage = {"k1", std::string("v\0\xff", 3), "k2", "", "h", std::string("f\0", 2)};
  Mutation m;
  m.time_ms = 1'700'000'000'123;
  m.effects.push_back({Effect::Kind::kPut, storage[0], storage[1], 1'700'000'060'000});
  m.effects.push_back({Effect::Kind::kErase, storage[2], {}, 0});
  m.effects.push_back({Effect::Kind::kPut, storage[3], storage[3], 0});
  m.effects.push_back({Effect::Kind::kPutTyped, storage[4], storage[1], 1'700'000'060'000, 1});
  m.effects.push_back(
      {Effect::Kind::kPutElement, storage[4], storage[1], 0, 0, 1234567, storage[5]});
  m.effects.push_back({Effect::Kind::kEraseElement, storage[4], {}, 0, 0, 1234567, storage[0]});
  m.effects.push_back({Effect::Kind::kPutElement, storage[4], {}, 0, 0, 1, {}});
  return m;
}

TEST(Mutation, RoundTripsEveryEffectKind) {
  std::vector<std::string> storage;
  Mutation m = sample(storage);
  auto d = DecodedMutation::decode(encode_mutation(m));
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->mutation(), m);

  Mutation clear;
  clear.time_ms = -5;  // a clock before the epoch still round-trips
  clear.effects.push_back({Effect::Kind::kClear, {}, {}, 0});
  auto c = DecodedMutation::decode(encode_mutation(clear));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->mutation(), clear);
}

// Replicas and logs written before element effects existed keep decoding:
// the first three kinds' bytes did not change.
TEST(Mutation, RecordKindsEncodeAsBefore) {
  Mutation m;
  m.time_ms = 1;
  m.effects.push_back({Effect::Kind::kPut, "k", "v", 0});
  m.effects.push_back({Effect::Kind::kErase, "k", {}, 0});
  constexpr char kBytes[] =
      "\x02\x02"            // time 1 (zigzag), 2 effects
      "\x01\x01k\x01v\x00"  // put k v, no expiry
      "\x02\x01k\x00\x00";  // erase k
  const std::string expected(kBytes, sizeof(kBytes) - 1);
  EXPECT_EQ(encode_mutation(m), expected);
}

// A tracking client's write carries its origin (for NOLOOP) after the effects;
// a mutation without one encodes as before origins existed.
TEST(Mutation, AnOriginRoundTripsAndIsAppendedAsTheLastField) {
  std::vector<std::string> storage;
  Mutation m = sample(storage);
  const std::string plain = encode_mutation(m);
  m.origin = WriteOrigin{3, 1ull << 40};
  const std::string with_origin = encode_mutation(m);
  auto d = DecodedMutation::decode(with_origin);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->mutation(), m);
  EXPECT_EQ(d->mutation().origin, (WriteOrigin{3, 1ull << 40}));

  std::string appended = plain;
  append_write_origin(appended, m.origin);
  EXPECT_EQ(appended, with_origin);
  std::string untouched = plain;
  append_write_origin(untouched, WriteOrigin{3, 0});
  EXPECT_EQ(untouched, plain);
  auto none = DecodedMutation::decode(plain);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->mutation().origin, WriteOrigin{});

  // Client 0 is "no origin": never on the wire. An unknown field, or bytes
  // after the origin, are corruption.
  Writer zero;
  zero.u8(1);
  zero.varint(3);
  zero.varint(0);
  EXPECT_TRUE(DecodedMutation::decode(plain + std::move(zero).take()).status().is_corruption());
  Writer unknown;
  unknown.u8(9);
  unknown.varint(3);
  unknown.varint(4);
  EXPECT_TRUE(DecodedMutation::decode(plain + std::move(unknown).take()).status().is_corruption());
  EXPECT_FALSE(DecodedMutation::decode(with_origin + "x").ok());
  EXPECT_FALSE(DecodedMutation::decode(with_origin.substr(0, with_origin.size() - 1)).ok());
}

// The record effects' priors (what each key held before) ride after the
// effects and before the origin; a mutation without them encodes as before.
TEST(Mutation, PriorsRoundTripBeforeTheOriginOnePerRecordEffect) {
  std::vector<std::string> storage;
  Mutation m = sample(storage);
  const std::string plain = encode_mutation(m);
  ASSERT_EQ(record_effects(m), 4u);  // put, erase, put, typed put
  m.priors = {{true, 1'700'000'000'000, 0}, {false, 0, 0}, {true, 0, 77}, {true, -1, 1ull << 50}};
  const std::string with_priors = encode_mutation(m);
  EXPECT_TRUE(with_priors.starts_with(plain));
  auto d = DecodedMutation::decode(with_priors);
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->mutation(), m);

  // The origin appended to bytes that carry priors stays the last field.
  std::string appended = with_priors;
  append_write_origin(appended, WriteOrigin{2, 9});
  m.origin = WriteOrigin{2, 9};
  EXPECT_EQ(appended, encode_mutation(m));
  auto both = DecodedMutation::decode(appended);
  ASSERT_TRUE(both.ok()) << both.status().to_string();
  EXPECT_EQ(both->mutation(), m);

  // Not one per record effect, an absent key with an expiry or a generation,
  // an exists byte over 1, priors after the origin: corruption.
  auto with = [&](auto fill) {
    Writer w;
    w.u8(2);
    fill(w);
    return plain + std::move(w).take();
  };
  auto prior = [](Writer& w, uint8_t exists, int64_t expire, uint64_t gen) {
    w.u8(exists);
    w.svarint(expire);
    w.varint(gen);
  };
  EXPECT_TRUE(DecodedMutation::decode(with([&](Writer& w) {
                w.varint(3);
                for (int i = 0; i < 3; ++i) prior(w, 1, 0, 0);
              })).status().is_corruption());
  EXPECT_TRUE(DecodedMutation::decode(with([&](Writer& w) { w.varint(0); }))
                  .status()
                  .is_corruption());
  for (auto [exists, expire, gen] : {std::tuple<uint8_t, int64_t, uint64_t>{0, 5, 0},
                                     {0, 0, 5}, {2, 0, 0}}) {
    EXPECT_TRUE(DecodedMutation::decode(with([&](Writer& w) {
                  w.varint(4);
                  for (int i = 0; i < 3; ++i) prior(w, 1, 0, 0);
                  prior(w, exists, expire, gen);
                })).status().is_corruption());
  }
  Mutation origin_only = m;
  origin_only.priors.clear();
  const std::string origin_first = encode_mutation(origin_only);
  EXPECT_TRUE(DecodedMutation::decode(origin_first + with_priors.substr(plain.size()))
                  .status()
                  .is_corruption());
  EXPECT_FALSE(DecodedMutation::decode(with_priors.substr(0, with_priors.size() - 1)).ok());
}

TEST(Mutation, RejectsMalformedElementAndTypedEffects) {
  auto effect = [](uint8_t kind, std::string_view value, int64_t expire, auto tail) {
    Writer w;
    w.svarint(1);
    w.varint(1);
    w.u8(kind);
    w.bytes("k");
    w.bytes(value);
    w.svarint(expire);
    tail(w);
    return std::move(w).take();
  };
  auto element = [](uint64_t gen) {
    return [gen](Writer& w) {
      w.varint(gen);
      w.bytes("f");
    };
  };
  // Well-formed ones decode, so the refusals below are about one thing each.
  EXPECT_TRUE(DecodedMutation::decode(effect(5, "v", 0, element(7))).ok());
  EXPECT_TRUE(DecodedMutation::decode(effect(6, "", 0, element(7))).ok());
  EXPECT_TRUE(DecodedMutation::decode(effect(4, "p", 5, [](Writer& w) { w.u8(2); })).ok());

  EXPECT_FALSE(DecodedMutation::decode(effect(5, "v", 0, element(0))).ok());  // generation 0
  EXPECT_FALSE(DecodedMutation::decode(effect(5, "v", 9, element(7))).ok());  // an expiry
  EXPECT_FALSE(DecodedMutation::decode(effect(6, "v", 0, element(7))).ok());  // erase with value
  EXPECT_FALSE(DecodedMutation::decode(effect(4, "p", 0, [](Writer& w) { w.u8(0); })).ok());
  EXPECT_FALSE(DecodedMutation::decode(effect(4, "p", 0, [](Writer& w) { w.u8(16); })).ok());
  EXPECT_FALSE(DecodedMutation::decode(effect(5, "v", 0, [](Writer&) {})).ok());  // no tail
  EXPECT_FALSE(DecodedMutation::decode(effect(4, "p", 0, [](Writer&) {})).ok());
  // A field length past the end.
  EXPECT_FALSE(DecodedMutation::decode(effect(5, "v", 0, [](Writer& w) {
                 w.varint(7);
                 w.varint(1000);
               })).ok());
}

TEST(Mutation, ViewsSurviveMovingTheDecodedMutation) {
  std::vector<std::string> storage;
  Mutation m = sample(storage);
  auto d = DecodedMutation::decode(encode_mutation(m));
  ASSERT_TRUE(d.ok());
  std::vector<DecodedMutation> held;
  held.push_back(std::move(d).value());
  for (int i = 0; i < 20; ++i) held.push_back(std::move(held.back()));  // moves, reallocations
  EXPECT_EQ(held.back().mutation(), m);
  EXPECT_TRUE(held.front().mutation().effects.empty());  // moved-from holds nothing
}

TEST(Mutation, EveryTruncationIsCorruptionNotACrash) {
  std::vector<std::string> storage;
  std::string bytes = encode_mutation(sample(storage));
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto d = DecodedMutation::decode(bytes.substr(0, n));
    ASSERT_FALSE(d.ok()) << "prefix of " << n << " bytes decoded";
    EXPECT_TRUE(d.status().is_corruption());
  }
  EXPECT_FALSE(DecodedMutation::decode(bytes + "x").ok());  // trailing bytes
}

TEST(Mutation, RejectsUnknownKindsHugeCountsAndKeyedClears) {
  Writer w;
  w.svarint(1);
  w.varint(1);
  w.u8(9);  // no such kind
  w.bytes("k");
  w.bytes("v");
  w.svarint(0);
  EXPECT_FALSE(DecodedMutation::decode(std::move(w).take()).ok());

  Writer huge;
  huge.svarint(1);
  huge.varint(uint64_t{1} << 60);  // must not reserve memory for this
  EXPECT_FALSE(DecodedMutation::decode(std::move(huge).take()).ok());

  Mutation keyed;
  keyed.effects.push_back({Effect::Kind::kClear, "k", {}, 0});
  EXPECT_FALSE(DecodedMutation::decode(encode_mutation(keyed)).ok());
}

TEST(Mutation, GarbledEncodingsNeverCrashTheDecoder) {
  std::vector<std::string> storage;
  const std::string good = encode_mutation(sample(storage));
  Random rng(42);
  int decoded = 0;
  int refused = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = good;
    for (uint64_t flips = rng.range(1, 3); flips > 0; --flips) {
      bytes[rng.uniform(bytes.size())] = static_cast<char>(rng.uniform(256));
    }
    auto d = DecodedMutation::decode(bytes);
    if (!d.ok()) {
      ++refused;
      continue;
    }
    ++decoded;
    // Whatever decodes survives a re-encoding unchanged.
    auto again = DecodedMutation::decode(encode_mutation(d->mutation()));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->mutation(), d->mutation());
  }
  EXPECT_GT(decoded, 0);  // bytes inside keys and values: still a mutation
  EXPECT_GT(refused, 0);  // lengths, counts and kinds: refused
}

}  // namespace
}  // namespace statekv::replication
