#include "cache/cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace statekv::cache {
namespace {

constexpr int64_t kMs = 1000;
constexpr int64_t kSec = 1000 * kMs;

CacheOptions options() {
  CacheOptions o;
  o.store.max_bytes = 1 << 20;
  return o;
}

Cache::Loaded loaded(std::string value, int64_t cost_us = 0) {
  Cache::Loaded l;
  l.value = std::move(value);
  l.load_cost_us = cost_us;
  return l;
}

TEST(Cache, MissLoadsThenHits) {
  Cache cache(options(), Random(1));
  auto first = cache.get("k", 0, 1);
  ASSERT_EQ(first.action, Cache::Action::kLoad);
  EXPECT_TRUE(cache.complete(first.load_token, "k", loaded("v"), 10).empty());
  auto second = cache.get("k", 20, 2);
  ASSERT_EQ(second.action, Cache::Action::kHit);
  EXPECT_EQ(second.value, "v");
  EXPECT_EQ(second.refresh_token, 0u);
  const CacheStats s = cache.stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.loads, 1u);
  EXPECT_EQ(s.entries, 1u);
}

TEST(Cache, CoalescingMakesOneLoadForAThousandConcurrentMisses) {
  Cache cache(options(), Random(1));
  auto leader = cache.get("hot", 0, 0);
  ASSERT_EQ(leader.action, Cache::Action::kLoad);
  for (uint64_t w = 1; w < 1000; ++w) {
    auto r = cache.get("hot", 1, w);
    ASSERT_EQ(r.action, Cache::Action::kWait) << w;
  }
  EXPECT_EQ(cache.flights(), 1u);
  std::vector<uint64_t> woken = cache.complete(leader.load_token, "hot", loaded("v"), 50 * kMs);
  ASSERT_EQ(woken.size(), 999u);
  std::sort(woken.begin(), woken.end());
  for (uint64_t w = 1; w < 1000; ++w) EXPECT_EQ(woken[w - 1], w);
  EXPECT_EQ(cache.stats().loads, 1u);
  EXPECT_EQ(cache.stats().coalesced_waits, 999u);
  EXPECT_EQ(cache.flights(), 0u);
  EXPECT_EQ(cache.get("hot", 51 * kMs, 5000).action, Cache::Action::kHit);
}

TEST(Cache, WithoutCoalescingEveryMissLoads) {
  CacheOptions o = options();
  o.coalesce = false;
  Cache cache(o, Random(1));
  std::vector<uint64_t> tokens;
  for (uint64_t w = 0; w < 1000; ++w) {
    auto r = cache.get("hot", 0, w);
    ASSERT_EQ(r.action, Cache::Action::kLoad);
    tokens.push_back(r.load_token);
  }
  EXPECT_EQ(cache.stats().loads, 1000u);
  for (uint64_t t : tokens) EXPECT_TRUE(cache.complete(t, "hot", loaded("v"), 1).empty());
  EXPECT_EQ(cache.flights(), 0u);
  EXPECT_EQ(cache.get("hot", 2, 0).action, Cache::Action::kHit);
}

TEST(Cache, FailedLoadAnswersItsWaitersAndStoresNothing) {
  Cache cache(options(), Random(1));
  auto leader = cache.get("k", 0, 0);
  ASSERT_EQ(cache.get("k", 0, 7).action, Cache::Action::kWait);
  EXPECT_EQ(cache.fail(leader.load_token), std::vector<uint64_t>{7});
  EXPECT_EQ(cache.stats().load_failures, 1u);
  EXPECT_EQ(cache.get("k", 1, 0).action, Cache::Action::kLoad);  // a new attempt
}

// The cache-aside race inside one cache: a load reads the old value, a write
// lands and invalidates, then the load completes. The old value must not be
// stored, and a reader after the write must not join the old load.
TEST(Cache, LoadInFlightDuringAnInvalidationIsNotStored) {
  Cache cache(options(), Random(1));
  auto before = cache.get("k", 0, 0);
  ASSERT_EQ(cache.get("k", 0, 1).action, Cache::Action::kWait);
  cache.invalidate("k");
  auto after = cache.get("k", 1, 2);
  ASSERT_EQ(after.action, Cache::Action::kLoad);  // not attached to the stale load
  EXPECT_NE(after.load_token, before.load_token);
  // The old load completes with the old value: its waiter is answered, nothing stored.
  EXPECT_EQ(cache.complete(before.load_token, "k", loaded("old"), 2), std::vector<uint64_t>{1});
  EXPECT_EQ(cache.stats().discarded_loads, 1u);
  EXPECT_EQ(cache.get("k", 3, 3).action, Cache::Action::kWait);  // joins the new load
  EXPECT_EQ(cache.complete(after.load_token, "k", loaded("new"), 4), std::vector<uint64_t>{3});
  auto hit = cache.get("k", 5, 4);
  ASSERT_EQ(hit.action, Cache::Action::kHit);
  EXPECT_EQ(hit.value, "new");
}

TEST(Cache, WriteThroughPutReplacesTheValueAndDetachesTheLoad) {
  Cache cache(options(), Random(1));
  auto load = cache.get("k", 0, 0);
  cache.put("k", "written", 0, 1);
  cache.complete(load.load_token, "k", loaded("old"), 2);
  auto hit = cache.get("k", 3, 1);
  ASSERT_EQ(hit.action, Cache::Action::kHit);
  EXPECT_EQ(hit.value, "written");
}

TEST(Cache, InvalidateAllDropsEverythingAndEveryLoad) {
  Cache cache(options(), Random(1));
  for (int i = 0; i < 10; ++i) {
    auto r = cache.get("k" + std::to_string(i), 0, 0);
    cache.complete(r.load_token, "k" + std::to_string(i), loaded("v"), 0);
  }
  auto pending = cache.get("p", 0, 0);
  cache.invalidate_all();
  EXPECT_EQ(cache.stats().entries, 0u);
  cache.complete(pending.load_token, "p", loaded("v"), 1);
  EXPECT_EQ(cache.stats().entries, 0u);
  EXPECT_EQ(cache.get("k3", 2, 0).action, Cache::Action::kLoad);
}

TEST(Cache, TtlExpiresAndTheStoresOwnExpiryIsHonoured) {
  CacheOptions o = options();
  o.ttl_us = 10 * kSec;
  Cache cache(o, Random(1));
  auto r = cache.get("a", 0, 0);
  cache.complete(r.load_token, "a", loaded("v"), 0);
  EXPECT_EQ(cache.get("a", 10 * kSec - 1, 0).action, Cache::Action::kHit);
  EXPECT_EQ(cache.get("a", 10 * kSec, 0).action, Cache::Action::kLoad);
  // A key whose TTL in the store ends before the cache TTL.
  auto b = cache.get("b", 0, 0);
  Cache::Loaded l = loaded("v");
  l.expires_at_us = 2 * kSec;
  cache.complete(b.load_token, "b", l, 0);
  EXPECT_EQ(cache.get("b", 2 * kSec - 1, 0).action, Cache::Action::kHit);
  EXPECT_EQ(cache.get("b", 2 * kSec, 0).action, Cache::Action::kLoad);
}

TEST(Cache, NegativeCachingRemembersAbsenceForItsTtl) {
  CacheOptions o = options();
  o.negative_ttl_us = 1 * kSec;
  Cache cache(o, Random(1));
  auto r = cache.get("none", 0, 0);
  cache.complete(r.load_token, "none", Cache::Loaded{}, 0);
  EXPECT_EQ(cache.get("none", kSec - 1, 0).action, Cache::Action::kHitAbsent);
  EXPECT_EQ(cache.stats().negative_hits, 1u);
  EXPECT_EQ(cache.get("none", kSec, 0).action, Cache::Action::kLoad);
}

TEST(Cache, WithoutNegativeCachingAbsenceIsNotRemembered) {
  Cache cache(options(), Random(1));
  auto r = cache.get("none", 0, 0);
  cache.complete(r.load_token, "none", Cache::Loaded{}, 0);
  EXPECT_EQ(cache.get("none", 1, 0).action, Cache::Action::kLoad);
}

TEST(Cache, StaleWhileRevalidateServesStaleAndRefreshesOnce) {
  CacheOptions o = options();
  o.ttl_us = 10 * kSec;
  o.stale_us = 5 * kSec;
  Cache cache(o, Random(1));
  auto r = cache.get("k", 0, 0);
  cache.complete(r.load_token, "k", loaded("v1"), 0);
  auto first = cache.get("k", 11 * kSec, 1);
  ASSERT_EQ(first.action, Cache::Action::kHit);
  EXPECT_TRUE(first.stale);
  EXPECT_EQ(first.value, "v1");
  ASSERT_NE(first.refresh_token, 0u);
  for (int i = 0; i < 100; ++i) {
    auto other = cache.get("k", 11 * kSec + i, 2);
    ASSERT_EQ(other.action, Cache::Action::kHit);
    EXPECT_EQ(other.refresh_token, 0u);  // the refresh is already in flight
  }
  EXPECT_EQ(cache.stats().loads, 2u);
  cache.complete(first.refresh_token, "k", loaded("v2"), 12 * kSec);
  auto fresh = cache.get("k", 13 * kSec, 3);
  EXPECT_FALSE(fresh.stale);
  EXPECT_EQ(fresh.value, "v2");
  // Past the stale window it is a plain miss.
  EXPECT_EQ(cache.get("k", 12 * kSec + 15 * kSec, 4).action, Cache::Action::kLoad);
}

TEST(Cache, StaleIsNeverServedPastTheKeysOwnExpiry) {
  CacheOptions o = options();
  o.ttl_us = 10 * kSec;
  o.stale_us = 5 * kSec;
  Cache cache(o, Random(1));
  auto r = cache.get("k", 0, 0);
  Cache::Loaded l = loaded("v");
  l.expires_at_us = 11 * kSec;
  cache.complete(r.load_token, "k", l, 0);
  EXPECT_EQ(cache.get("k", 10 * kSec + 1, 0).action,
            Cache::Action::kHit);  // stale, store key alive
  // The key is gone from the store: no stale value, the reader waits for the
  // refresh the stale hit started.
  EXPECT_EQ(cache.get("k", 11 * kSec, 0).action, Cache::Action::kWait);
}

// Poisson readers of one key across many TTL windows, with a load that takes
// 50 ms. Without XFetch every expiry is a miss (with coalescing: one load, and
// everyone arriving during it waits). With XFetch (beta 1) a reader refreshes
// shortly before expiry, so almost no window ends in a miss and there is about
// one recompute per window.
struct WindowRun {
  uint64_t loads = 0;
  uint64_t waits = 0;  // misses: readers that had to wait for a load
};

WindowRun run_windows(double beta, uint64_t seed) {
  CacheOptions o = options();
  o.ttl_us = 1 * kSec;
  o.xfetch_beta = beta;
  Cache cache(o, Random(seed));
  Random arrivals(seed + 1);
  const int64_t load_us = 50 * kMs;
  const double rate_per_us = 200.0 / kSec;  // 200 reads/s
  int64_t now = 0;
  int64_t load_done_at = -1;
  uint64_t load_token = 0;
  WindowRun run;
  while (now < 100 * kSec) {
    now += static_cast<int64_t>(-std::log(1.0 - arrivals.unit()) / rate_per_us) + 1;
    if (load_token != 0 && now >= load_done_at) {
      cache.complete(load_token, "hot", loaded("v", load_us), load_done_at);
      load_token = 0;
    }
    auto r = cache.get("hot", now, 1);
    if (r.action == Cache::Action::kWait) ++run.waits;
    if (r.action == Cache::Action::kLoad) {
      ++run.waits;
      load_token = r.load_token;
      load_done_at = now + load_us;
    }
    if (r.action == Cache::Action::kHit && r.refresh_token != 0) {
      load_token = r.refresh_token;
      load_done_at = now + load_us;
    }
  }
  run.loads = cache.stats().loads;
  return run;
}

TEST(Cache, XFetchRefreshesBeforeExpirySoReadersRarelyWait) {
  const WindowRun off = run_windows(0, 3);
  const WindowRun on = run_windows(1.0, 3);
  std::printf(
      "100 s at 200 reads/s, ttl 1 s, load 50 ms: xfetch off loads %llu waits %llu; "
      "on loads %llu waits %llu\n",
      static_cast<unsigned long long>(off.loads), static_cast<unsigned long long>(off.waits),
      static_cast<unsigned long long>(on.loads), static_cast<unsigned long long>(on.waits));
  // Off: one load per window (about 95: each window is 1 s + the load), ~10 waits each.
  EXPECT_GE(off.loads, 90u);
  EXPECT_GE(off.waits, 5 * off.loads);
  // On: still about one load per window (early, so windows are a little
  // shorter: measured 110 against 95) and nearly no waiting (18 against 982).
  EXPECT_LE(on.loads, off.loads * 13 / 10);
  EXPECT_LE(on.waits, off.waits / 5);
}

TEST(Cache, XFetchDrawsComeFromTheInjectedRandom) {
  // Same seed, same decisions: two runs are identical.
  const WindowRun a = run_windows(1.0, 11);
  const WindowRun b = run_windows(1.0, 11);
  EXPECT_EQ(a.loads, b.loads);
  EXPECT_EQ(a.waits, b.waits);
}

TEST(CacheOptions, RefusesWhatItCannotHonour) {
  CacheOptions o = options();
  EXPECT_TRUE(o.validate().ok());
  o.xfetch_beta = 1;
  EXPECT_TRUE(o.validate().is_invalid_argument());  // xfetch without a ttl
  o.ttl_us = kSec;
  EXPECT_TRUE(o.validate().ok());
  o.xfetch_beta = -1;
  EXPECT_TRUE(o.validate().is_invalid_argument());
  o = options();
  o.stale_us = kSec;
  EXPECT_TRUE(o.validate().is_invalid_argument());  // swr without a ttl
  o = options();
  o.store.max_bytes = 10;
  EXPECT_TRUE(o.validate().is_invalid_argument());
}

TEST(Cache, StaysWithinMaxMemory) {
  CacheOptions o = options();
  o.store.max_bytes = 64 * 1024;
  Cache cache(o, Random(1));
  for (int i = 0; i < 10000; ++i) {
    const std::string k = "key" + std::to_string(i);
    auto r = cache.get(k, i, 0);
    if (r.action == Cache::Action::kLoad) {
      cache.complete(r.load_token, k, loaded(std::string(100, 'x')), i);
    }
  }
  EXPECT_LE(cache.stats().bytes, o.store.max_bytes);
  EXPECT_GT(cache.stats().evictions, 0u);
}

}  // namespace
}  // namespace statekv::cache
