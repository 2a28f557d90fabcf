// Leases across several `statekv cache` processes in front of one node
// (docs/cache.md, "Leases across cache processes"): concurrent misses on three
// caches make one upstream load; a holder killed in the middle of its load
// delays the others no longer than its lease, and no client reads a wrong
// value; a fill read before a write the waiting cache was told of is not used.
// Timings come from injected upstream delays with wide margins, and waits are
// polled against deadlines, so a loaded machine slows these tests but does not
// fail them.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "support/local_cluster.h"
#include "support/raw_client.h"
#include "support/redis_client.h"
#include "support/server_process.h"
#include "support/statekv_cli.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

uint64_t stat(RedisClient& c, const std::string& field) {
  auto r = c.bulk({"INFO", "cache"});
  if (!r.ok()) return ~0ull;
  const std::string needle = "\r\n" + field + ":";
  const size_t at = r->find(needle);
  if (at == std::string::npos) return ~0ull;
  return std::stoull(r->substr(at + needle.size()));
}

class CacheLeases : public ::testing::Test {
 protected:
  void SetUp() override {
    if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cache only";
    node_ = std::make_unique<ServerProcess>(subject_options("memory"));
    ASSERT_TRUE(node_->start().ok()) << node_->log_tail();
    auto n = RedisClient::connect(node_->port());
    ASSERT_TRUE(n.ok());
    direct_ = std::make_unique<RedisClient>(std::move(*n));
  }
  // Starts a cache in front of the node; waits until it tracks writes and
  // listens for fills.
  size_t add_cache(std::vector<std::string> args) {
    ServerOptions co;
    co.kind = ServerKind::kStatekvCache;
    co.extra_args = {"--upstream",
                     "127.0.0.1:" + std::to_string(node_->port()),
                     "--seed",
                     "7",
                     "--upstream-connections",
                     "64"};
    if (std::find(args.begin(), args.end(), "--ttl-ms") == args.end()) {
      co.extra_args.insert(co.extra_args.end(), {"--ttl-ms", "60000"});
    }
    co.extra_args.insert(co.extra_args.end(), args.begin(), args.end());
    caches_.push_back(std::make_unique<ServerProcess>(co));
    EXPECT_TRUE(caches_.back()->start().ok()) << caches_.back()->log_tail();
    auto c = RedisClient::connect(caches_.back()->port());
    EXPECT_TRUE(c.ok());
    clients_.push_back(std::make_unique<RedisClient>(std::move(*c)));
    RedisClient& info = *clients_.back();
    const bool leases = std::find(args.begin(), args.end(), "on") != args.end();
    const auto deadline = Clock::now() + 10s;
    while ((stat(info, "cache_tracking_connections") != 1 ||
            (leases && stat(info, "cache_lease_subscriptions") != 1)) &&
           Clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(stat(info, "cache_tracking_connections"), 1u) << caches_.back()->log_tail();
    return caches_.size() - 1;
  }
  // Writes key directly on the node and waits until every cache has been
  // told (so that the invalidation does not land in the middle of a test step).
  void write(const std::string& key, const std::string& value) {
    std::vector<uint64_t> before;
    for (auto& c : clients_) before.push_back(stat(*c, "cache_tracking_messages"));
    ASSERT_EQ(direct_->cmd({"SET", key, value}), "+OK");
    for (size_t i = 0; i < clients_.size(); ++i) {
      if (before[i] == ~0ull) continue;  // a cache the test killed
      const auto deadline = Clock::now() + 10s;
      while (stat(*clients_[i], "cache_tracking_messages") <= before[i] &&
             Clock::now() < deadline) {
        std::this_thread::sleep_for(5ms);
      }
    }
  }
  bool eventually(const std::function<bool()>& cond, Clock::duration limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (cond()) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }
  uint64_t total(const std::string& field) {
    uint64_t sum = 0;
    for (auto& c : clients_) sum += stat(*c, field);
    return sum;
  }
  void TearDown() override {
    clients_.clear();
    caches_.clear();
    direct_.reset();
    node_.reset();
  }
  std::unique_ptr<ServerProcess> node_;
  std::unique_ptr<RedisClient> direct_;
  std::vector<std::unique_ptr<ServerProcess>> caches_;
  std::vector<std::unique_ptr<RedisClient>> clients_;  // one per cache, for INFO
};

// 20 clients on each of three caches GET a missing key at once while every
// upstream request takes 1 s: with leases one cache loads it and the two
// others take its fill (one upstream load in all); without, each cache makes
// its own (coalesced) load: three.
void burst(std::vector<std::unique_ptr<ServerProcess>>& caches, const std::string& key,
           const std::string& want) {
  std::vector<std::unique_ptr<RedisClient>> readers;
  for (int i = 0; i < 60; ++i) {
    auto c = RedisClient::connect(caches[i % caches.size()]->port());
    ASSERT_TRUE(c.ok());
    readers.push_back(std::make_unique<RedisClient>(std::move(*c)));
  }
  std::vector<std::string> replies(readers.size());
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (size_t i = 0; i < readers.size(); ++i) {
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < static_cast<int>(readers.size())) std::this_thread::yield();
      replies[i] = readers[i]->cmd({"GET", key});
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& r : replies) EXPECT_EQ(r, want);
}

TEST_F(CacheLeases, ConcurrentMissesOnThreeCachesMakeOneUpstreamLoad) {
  for (int i = 0; i < 3; ++i) {
    // A lease is held from its SET (1 s after the first miss) to its DEL (2 s
    // later): a cache whose first miss comes up to 2 s after another's waits.
    add_cache({"--leases", "on", "--lease-ms", "10000", "--inject-upstream-delay-ms", "1000"});
  }
  write("hot", "v");
  burst(caches_, "hot", "\"v\"");
  EXPECT_EQ(total("cache_upstream_loads"), 1u);
  EXPECT_EQ(total("cache_leases_taken"), 1u);
  EXPECT_EQ(total("cache_lease_fills"), 2u);  // one per waiting cache
  EXPECT_EQ(total("cache_lease_waits"), 2u);
  EXPECT_EQ(total("cache_lease_expiries"), 0u);
  // Each cache now holds the value: the next reads are hits, no load.
  for (auto& c : clients_) EXPECT_EQ(c->cmd({"GET", "hot"}), "\"v\"");
  EXPECT_EQ(total("cache_upstream_loads"), 1u);
  // Released (the DEL goes out after the holder answered its own readers).
  EXPECT_TRUE(eventually([&] { return direct_->cmd({"EXISTS", "__lease:{hot}"}) == ":0"; }, 10s));
}

TEST_F(CacheLeases, WithoutLeasesEachCacheLoadsTheKey) {
  for (int i = 0; i < 3; ++i) {
    add_cache({"--leases", "off", "--inject-upstream-delay-ms", "500"});
  }
  write("hot", "v");
  burst(caches_, "hot", "\"v\"");
  EXPECT_EQ(total("cache_upstream_loads"), 3u);
  EXPECT_EQ(total("cache_leases_taken"), 0u);
}

// Cache 0 takes the lease and is SIGKILLed before its load is sent (every
// upstream request of it takes 1.5 s); the key is written meanwhile. Cache 1
// waits for the lease (3 s) to run out, takes it, loads the new value.
TEST_F(CacheLeases, AHolderKilledMidLoadHoldsTheKeyNoLongerThanItsLease) {
  add_cache({"--leases", "on", "--lease-ms", "3000", "--inject-upstream-delay-ms", "1500"});
  add_cache({"--leases", "on", "--lease-ms", "3000"});
  write("k", "v1");
  std::string holder_reply;
  std::thread holder_client([&] {
    auto c = RedisClient::connect(caches_[0]->port());
    if (c.ok()) holder_reply = c->cmd({"GET", "k"});
  });
  ASSERT_TRUE(eventually([&] { return direct_->cmd({"EXISTS", "__lease:{k}"}) == ":1"; }, 20s));
  caches_[0]->kill();  // its load (PTTL + GET) is still in its injected delay
  holder_client.join();
  EXPECT_EQ(holder_reply.rfind("<io error", 0), 0u) << holder_reply;  // no value at all
  write("k", "v2");
  const auto asked = Clock::now();
  EXPECT_EQ(clients_[1]->cmd({"GET", "k"}), "\"v2\"");
  const auto waited = Clock::now() - asked;
  EXPECT_LE(waited, 3s + 2s);  // the lease, and slack for a loaded machine
  EXPECT_EQ(stat(*clients_[1], "cache_lease_waits"), 1u);
  EXPECT_EQ(stat(*clients_[1], "cache_lease_expiries"), 1u);
  EXPECT_EQ(stat(*clients_[1], "cache_leases_taken"), 1u);
  EXPECT_EQ(stat(*clients_[1], "cache_upstream_loads"), 1u);
  EXPECT_EQ(clients_[1]->cmd({"GET", "k"}), "\"v2\"");  // now held
  EXPECT_EQ(stat(*clients_[1], "cache_upstream_loads"), 1u);
}

// Cache 0 (every upstream request 1.5 s) takes the lease and reads v1; the key
// is then written (v2) and cache 1 is told; a reader of cache 1 waits for
// cache 0's fill, which carries v1, read before a write cache 1 had already
// been told of: cache 1 does not use it and loads v2 itself.
TEST_F(CacheLeases, AFillOlderThanAWriteTheWaiterKnowsIsNotUsed) {
  add_cache({"--leases", "on", "--lease-ms", "20000", "--inject-upstream-delay-ms", "1500"});
  add_cache({"--leases", "on", "--lease-ms", "20000"});
  write("k", "v1");
  std::string holder_reply;
  std::thread holder_client([&] {
    auto c = RedisClient::connect(caches_[0]->port());
    if (c.ok()) holder_reply = c->cmd({"GET", "k"});
  });
  ASSERT_TRUE(eventually([&] { return direct_->cmd({"EXISTS", "__lease:{k}"}) == ":1"; }, 20s));
  const auto leased = Clock::now();
  // Cache 0 reads the key 1.5 s after taking the lease and publishes 1.5 s
  // after that: write in between (margins of 750 ms either side).
  std::this_thread::sleep_until(leased + 2250ms);
  write("k", "v2");
  const bool before_fill = Clock::now() < leased + 2900ms;
  EXPECT_EQ(clients_[1]->cmd({"GET", "k"}), "\"v2\"");
  holder_client.join();
  EXPECT_EQ(holder_reply, "\"v1\"");  // it asked before the write
  if (before_fill) {                  // cache 1 asked while cache 0 still held the lease
    EXPECT_EQ(stat(*clients_[1], "cache_lease_waits"), 1u);
    EXPECT_EQ(stat(*clients_[1], "cache_lease_fills_refused"), 1u);
    EXPECT_EQ(stat(*clients_[1], "cache_leases_taken"), 1u);
  }
  // Cache 0 did not keep v1 either (the write's invalidation detached its load).
  EXPECT_EQ(clients_[0]->cmd({"GET", "k"}), "\"v2\"");
}

// Stale-while-revalidate with leases: cache 0 (every upstream request 800 ms)
// holds the lease for a refresh of an expired key; cache 1's readers get
// their stale copy meanwhile instead of waiting, and its refresh takes cache
// 0's fill instead of loading.
TEST_F(CacheLeases, WhileAnotherCacheHoldsTheLeaseReadersGetTheStaleCopy) {
  const std::vector<std::string> common = {"--leases", "on",  "--lease-ms", "20000",
                                           "--ttl-ms", "300", "--stale-ms", "60000"};
  std::vector<std::string> slow = common;
  slow.insert(slow.end(), {"--inject-upstream-delay-ms", "800"});
  add_cache(slow);
  add_cache(common);
  write("k", "v1");
  EXPECT_EQ(clients_[1]->cmd({"GET", "k"}), "\"v1\"");  // cache 1 loads it
  EXPECT_EQ(clients_[0]->cmd({"GET", "k"}), "\"v1\"");  // cache 0 too (its own lease)
  ASSERT_TRUE(eventually([&] { return direct_->cmd({"EXISTS", "__lease:{k}"}) == ":0"; }, 20s));
  std::this_thread::sleep_for(400ms);                   // both copies are past their TTL, stale now
  EXPECT_EQ(clients_[0]->cmd({"GET", "k"}), "\"v1\"");  // stale; cache 0 starts a refresh
  ASSERT_TRUE(eventually([&] { return direct_->cmd({"EXISTS", "__lease:{k}"}) == ":1"; }, 20s));
  const auto leased = Clock::now();
  EXPECT_EQ(clients_[1]->cmd({"GET", "k"}), "\"v1\"");  // stale; its refresh waits for cache 0
  ASSERT_TRUE(eventually([&] { return stat(*clients_[1], "cache_lease_waits") == 1; }, 20s));
  EXPECT_EQ(clients_[1]->cmd({"GET", "k"}), "\"v1\"");  // stale, no waiting
  if (Clock::now() < leased + 1500ms) {                 // cache 0 cannot have filled yet
    EXPECT_GE(stat(*clients_[1], "cache_lease_stale_served"), 1u);
  }
  ASSERT_TRUE(eventually([&] { return stat(*clients_[1], "cache_lease_fills") == 1; }, 20s));
  EXPECT_EQ(stat(*clients_[1], "cache_upstream_loads"), 1u);  // the first load only
  EXPECT_EQ(stat(*clients_[1], "cache_stale_refreshes"), 1u);
}

// The lease changes hands while its holder loads (here the test overwrites it,
// as another cache would after the holder's lease ran out): the holder's
// release is a compare-and-delete and leaves the new holder's lease alone. A
// lease still its own is deleted.
TEST_F(CacheLeases, AHolderReleasesItsOwnLeaseOnly) {
  add_cache({"--leases", "on", "--lease-ms", "20000", "--inject-upstream-delay-ms", "1000"});
  auto fills = RawClient::connect(node_->port());
  ASSERT_TRUE(fills.ok());
  ASSERT_TRUE(fills->call({"SUBSCRIBE", "__statekv:cache:fills"}).ok());
  write("k", "v");
  std::string reply;
  std::thread reader([&] {
    auto c = RedisClient::connect(caches_[0]->port());
    if (c.ok()) reply = c->cmd({"GET", "k"});
  });
  // The cache's lease request comes 1 s after the GET, its load 1 s later,
  // its release 1 s after that.
  ASSERT_TRUE(eventually([&] { return direct_->cmd({"EXISTS", "__lease:{k}"}) == ":1"; }, 20s));
  ASSERT_EQ(direct_->cmd({"SET", "__lease:{k}", "another-cache:1", "PX", "60000"}), "+OK");
  reader.join();
  EXPECT_EQ(reply, "\"v\"");
  // The fill is published after the release: once it is out, so is the release.
  auto fill = fills->read_reply(20s);
  ASSERT_TRUE(fill.ok()) << fill.status().to_string();
  EXPECT_EQ(direct_->cmd({"GET", "__lease:{k}"}), "\"another-cache:1\"");
  EXPECT_EQ(stat(*clients_[0], "cache_leases_released"), 0u);
  // Left alone, its own lease is released.
  write("k2", "v2");
  EXPECT_EQ(clients_[0]->cmd({"GET", "k2"}), "\"v2\"");
  fill = fills->read_reply(20s);
  ASSERT_TRUE(fill.ok()) << fill.status().to_string();
  EXPECT_EQ(direct_->cmd({"EXISTS", "__lease:{k2}"}), ":0");
  // Counted when the cache reads its transaction's replies, which may come
  // after a subscriber got the fill it published.
  EXPECT_TRUE(eventually([&] { return stat(*clients_[0], "cache_leases_released") == 1u; }, 5s))
      << stat(*clients_[0], "cache_leases_released");
}

// MGET with leases: each missing key is loaded once across the three caches,
// under its own lease (20 clients a cache MGET three missing keys at once),
// and a cache loads the missing keys of one MGET in parallel.
TEST_F(CacheLeases, MgetTakesALeasePerMissingKey) {
  for (int i = 0; i < 3; ++i) {
    add_cache({"--leases", "on", "--lease-ms", "10000", "--inject-upstream-delay-ms", "1000"});
  }
  write("a", "1");
  write("b", "2");
  write("c", "3");
  std::vector<std::unique_ptr<RedisClient>> readers;
  for (int i = 0; i < 60; ++i) {
    auto c = RedisClient::connect(caches_[i % caches_.size()]->port());
    ASSERT_TRUE(c.ok());
    readers.push_back(std::make_unique<RedisClient>(std::move(*c)));
  }
  std::vector<std::string> replies(readers.size());
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (size_t i = 0; i < readers.size(); ++i) {
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (ready.load() < static_cast<int>(readers.size())) std::this_thread::yield();
      replies[i] = readers[i]->cmd({"MGET", "a", "b", "nope", "c"});
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& r : replies) EXPECT_EQ(r, "[\"1\", \"2\", (nil), \"3\"]");
  EXPECT_EQ(total("cache_upstream_loads"), 4u);  // one a key, the missing one included
  EXPECT_EQ(total("cache_leases_taken"), 4u);
  EXPECT_EQ(total("cache_lease_fills"), 8u);  // the two other caches, for each key
  EXPECT_EQ(total("cache_lease_expiries"), 0u);
  // Now held by every cache: hits, no load.
  for (auto& c : clients_) EXPECT_EQ(c->cmd({"MGET", "c", "a"}), "[\"3\", \"1\"]");
  EXPECT_EQ(total("cache_upstream_loads"), 4u);
  // Five missing keys in one MGET: each takes a lease request and a load
  // (1 s each, injected), all five at once: about 2 s, not 10.
  for (int i = 0; i < 5; ++i) write("p" + std::to_string(i), "x");
  const auto asked = Clock::now();
  EXPECT_EQ(clients_[0]->cmd({"MGET", "p0", "p1", "p2", "p3", "p4"}),
            "[\"x\", \"x\", \"x\", \"x\", \"x\"]");
  const auto took = Clock::now() - asked;
  std::printf("MGET of 5 missing keys, 1 s injected a request: %lld ms\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  EXPECT_LT(took, 6s);
}

// In front of a three-node cluster, each cache attached to another node: the
// lease key lives on its owner (SET ... NX GET routed there), the fill is
// published through one node and reaches the subscribers of every node.
TEST(CacheLeasesCluster, ConcurrentMissesOnCachesOfThreeNodesMakeOneUpstreamLoad) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  LocalCluster cluster(3);
  const Status s = cluster.start();
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto key = cluster.key_on(1, "hot");
  ASSERT_TRUE(key.ok());
  std::vector<std::unique_ptr<ServerProcess>> caches;
  std::vector<std::unique_ptr<RedisClient>> infos;
  for (size_t i = 0; i < 3; ++i) {
    ServerOptions co;
    co.kind = ServerKind::kStatekvCache;
    co.extra_args = {"--upstream",
                     cluster.address(i),
                     "--seed",
                     "7",
                     "--ttl-ms",
                     "60000",
                     "--upstream-connections",
                     "64",
                     "--leases",
                     "on",
                     "--lease-ms",
                     "10000",
                     "--inject-upstream-delay-ms",
                     "1000"};
    caches.push_back(std::make_unique<ServerProcess>(co));
    ASSERT_TRUE(caches.back()->start().ok()) << caches.back()->log_tail();
    auto c = RedisClient::connect(caches.back()->port());
    ASSERT_TRUE(c.ok());
    infos.push_back(std::make_unique<RedisClient>(std::move(*c)));
    const auto deadline = Clock::now() + 10s;
    while ((stat(*infos.back(), "cache_tracking_connections") != 1 ||
            stat(*infos.back(), "cache_lease_subscriptions") != 1) &&
           Clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(stat(*infos.back(), "cache_lease_subscriptions"), 1u);
  }
  auto direct = RedisClient::connect(cluster.port(2));
  ASSERT_TRUE(direct.ok());
  ASSERT_EQ(direct->cmd({"SET", *key, "v"}), "+OK");
  for (auto& info : infos) {  // the SET's invalidation has reached every cache
    const auto deadline = Clock::now() + 10s;
    while (stat(*info, "cache_tracking_messages") < 1 && Clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
  }
  burst(caches, *key, "\"v\"");
  uint64_t loads = 0, taken = 0, fills = 0;
  for (auto& info : infos) {
    loads += stat(*info, "cache_upstream_loads");
    taken += stat(*info, "cache_leases_taken");
    fills += stat(*info, "cache_lease_fills");
  }
  EXPECT_EQ(loads, 1u);
  EXPECT_EQ(taken, 1u);
  EXPECT_EQ(fills, 2u);
  // The holder's compare-and-delete (WATCH, GET, MULTI, DEL, EXEC through its
  // node, the lease key living on its owner) deleted the lease.
  const auto deadline = Clock::now() + 10s;
  uint64_t released = 0;
  while (Clock::now() < deadline) {
    released = 0;
    for (auto& info : infos) released += stat(*info, "cache_leases_released");
    if (released == 1) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(released, 1u);
  EXPECT_EQ(direct->cmd({"EXISTS", "__lease:{" + *key + "}"}), ":0");
}

TEST(CacheLeasesFlags, ALeaseTooShortToLoadIsRefused) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cache only";
  auto [code, out] =
      run_statekv({"cache", "--upstream", "127.0.0.1:1", "--leases", "on", "--lease-ms", "5"});
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("--lease-ms must be at least 10"), std::string::npos) << out;
  std::tie(code, out) = run_statekv({"cache", "--upstream", "127.0.0.1:1", "--leases", "maybe"});
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("--leases"), std::string::npos) << out;
}

}  // namespace
}  // namespace statekv::itest
