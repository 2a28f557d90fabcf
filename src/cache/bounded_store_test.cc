#include "cache/bounded_store.h"

#include <gtest/gtest.h>

#include <string>

#include "cache/zipf.h"
#include "core/random.h"

namespace statekv::cache {
namespace {

Entry value(size_t bytes) {
  Entry e;
  e.value.assign(bytes, 'v');
  return e;
}

std::string key(uint64_t i) {
  return "k" + std::to_string(i);
}

// Room for `entries` entries with five-character keys and value_bytes values.
uint64_t room_for(uint64_t entries, size_t value_bytes) {
  return entries * BoundedStore::charge("k0000", value(value_bytes));
}

class BothPolicies : public ::testing::TestWithParam<Policy> {};

TEST_P(BothPolicies, StaysWithinMaxBytesUnderRandomOperations) {
  StoreOptions options;
  options.policy = GetParam();
  options.max_bytes = 20000;
  BoundedStore store(options);
  Random random(42);
  for (int i = 0; i < 20000; ++i) {
    const std::string k = key(random.uniform(500));
    switch (random.uniform(4)) {
      case 0:
      case 1:
        store.put(k, value(random.uniform(300)));
        break;
      case 2:
        store.find(k);
        break;
      case 3:
        store.erase(k);
        break;
    }
    if (i % 97 == 0) store.check_invariants();
  }
  store.check_invariants();
  EXPECT_LE(store.bytes(), options.max_bytes);
  EXPECT_GT(store.evictions(), 0u);
}

TEST_P(BothPolicies, RefusesAnEntryLargerThanTheWholeCache) {
  StoreOptions options;
  options.policy = GetParam();
  options.max_bytes = 4096;
  BoundedStore store(options);
  ASSERT_TRUE(store.put("small", value(10)));
  EXPECT_FALSE(store.put("big", value(5000)));
  EXPECT_EQ(store.find("big"), nullptr);
  // Replacing a resident value with one too large drops the old one too.
  EXPECT_FALSE(store.put("small", value(5000)));
  EXPECT_EQ(store.find("small"), nullptr);
  store.check_invariants();
}

TEST_P(BothPolicies, ReplacingRechargesTheEntry) {
  StoreOptions options;
  options.policy = GetParam();
  options.max_bytes = 1 << 20;
  BoundedStore store(options);
  store.put("a", value(10));
  const uint64_t before = store.bytes();
  store.put("a", value(110));
  EXPECT_EQ(store.bytes(), before + 100);
  ASSERT_NE(store.find("a"), nullptr);
  EXPECT_EQ(store.find("a")->value.size(), 110u);
  EXPECT_TRUE(store.erase("a"));
  EXPECT_EQ(store.bytes(), 0u);
  store.check_invariants();
}

INSTANTIATE_TEST_SUITE_P(Policies, BothPolicies, ::testing::Values(Policy::kWTinyLfu, Policy::kLru),
                         [](const auto& info) {
                           return info.param == Policy::kLru ? "Lru" : "WTinyLfu";
                         });

TEST(Lru, EvictsTheLeastRecentlyUsed) {
  StoreOptions options;
  options.policy = Policy::kLru;
  options.max_bytes = room_for(3, 8);
  BoundedStore store(options);
  store.put("k0001", value(8));
  store.put("k0002", value(8));
  store.put("k0003", value(8));
  ASSERT_NE(store.find("k0001"), nullptr);  // k0002 is now the least recent
  store.put("k0004", value(8));
  EXPECT_NE(store.find("k0001"), nullptr);
  EXPECT_EQ(store.find("k0002"), nullptr);
  EXPECT_NE(store.find("k0003"), nullptr);
  EXPECT_NE(store.find("k0004"), nullptr);
}

// A scan of keys read once must not flush a hot working set: LRU loses it,
// TinyLFU's admission keeps it (the candidates are less frequent than the victims).
TEST(WTinyLfu, ResistsAScanThatFlushesLru) {
  for (Policy policy : {Policy::kLru, Policy::kWTinyLfu}) {
    StoreOptions options;
    options.policy = policy;
    options.max_bytes = room_for(200, 32);
    BoundedStore store(options);
    for (int round = 0; round < 5; ++round) {
      for (uint64_t i = 0; i < 100; ++i) {
        if (store.find(key(1000 + i)) == nullptr) store.put(key(1000 + i), value(32));
      }
    }
    for (uint64_t i = 0; i < 5000; ++i) {
      if (store.find(key(100000 + i)) == nullptr) store.put(key(100000 + i), value(32));
    }
    int hot_left = 0;
    for (uint64_t i = 0; i < 100; ++i) hot_left += store.find(key(1000 + i)) != nullptr;
    if (policy == Policy::kLru) {
      EXPECT_EQ(hot_left, 0);
    } else {
      EXPECT_GE(hot_left, 95);
    }
    store.check_invariants();
  }
}

double zipf_hit_ratio(Policy policy, uint64_t keys, uint64_t requests, uint64_t seed) {
  StoreOptions options;
  options.policy = policy;
  // 10% of the data: every value is 64 bytes and every key "k" + up to 6 digits.
  options.max_bytes = keys / 10 * BoundedStore::charge("k12345", value(64));
  BoundedStore store(options);
  Zipf zipf(keys, 0.99);
  Random random(seed);
  uint64_t hits = 0;
  for (uint64_t i = 0; i < requests; ++i) {
    const std::string k = key(zipf.next(random) + 100000);  // 6 digits each
    if (store.find(k) != nullptr) {
      ++hits;
    } else {
      store.put(k, value(64));
    }
  }
  return static_cast<double>(hits) / static_cast<double>(requests);
}

// The classic result (Einziger et al.; Caffeine's simulator): on a Zipf(0.99)
// trace W-TinyLFU's hit ratio is above LRU's. Measured here with 100k keys, a
// cache of 10k, 1M requests, seed 7: LRU 0.7216, W-TinyLFU 0.7687 (docs/cache.md);
// the assertion keeps most of that 0.047 margin.
TEST(WTinyLfu, BeatsLruOnZipf099) {
  const double lru = zipf_hit_ratio(Policy::kLru, 100000, 1000000, 7);
  const double tinylfu = zipf_hit_ratio(Policy::kWTinyLfu, 100000, 1000000, 7);
  RecordProperty("lru", std::to_string(lru));
  RecordProperty("w_tinylfu", std::to_string(tinylfu));
  std::printf("zipf(0.99) 100k keys, 10%% cache: lru %.4f w-tinylfu %.4f\n", lru, tinylfu);
  EXPECT_GT(tinylfu, lru + 0.035);
}

}  // namespace
}  // namespace statekv::cache
