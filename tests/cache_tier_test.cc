// `statekv cache` as a separate process in front of a real node: reads served
// from memory, writes passed through, staleness bounded by the cache TTL and
// the key's own TTL, coalescing of concurrent misses, bounded memory, and the
// settings it refuses. Staleness is observed, then waited out against a
// deadline (never a fixed sleep as the condition).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "support/local_cluster.h"
#include "support/program.h"
#include "support/redis_client.h"
#include "support/server_process.h"
#include "support/statekv_cli.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// INFO cache as field -> value.
std::map<std::string, std::string> info_cache(RedisClient& c) {
  std::map<std::string, std::string> out;
  auto r = c.bulk({"INFO", "cache"});
  if (!r.ok()) return out;
  size_t pos = 0;
  while (pos < r->size()) {
    size_t end = r->find("\r\n", pos);
    if (end == std::string::npos) end = r->size();
    std::string line = r->substr(pos, end - pos);
    const size_t colon = line.find(':');
    if (colon != std::string::npos && line[0] != '#') {
      out[line.substr(0, colon)] = line.substr(colon + 1);
    }
    pos = end + 2;
  }
  return out;
}

uint64_t stat(RedisClient& c, const std::string& field) {
  auto m = info_cache(c);
  auto it = m.find(field);
  return it == m.end() ? ~0ull : std::stoull(it->second);
}

class CacheTier : public ::testing::Test {
 protected:
  void start(std::vector<std::string> cache_args) {
    node_ = std::make_unique<ServerProcess>(subject_options("memory"));
    ASSERT_TRUE(node_->start().ok()) << node_->log_tail();
    ServerOptions co;
    co.kind = ServerKind::kStatekvCache;
    co.extra_args = {"--upstream", "127.0.0.1:" + std::to_string(node_->port()), "--seed", "7"};
    co.extra_args.insert(co.extra_args.end(), cache_args.begin(), cache_args.end());
    cache_ = std::make_unique<ServerProcess>(co);
    ASSERT_TRUE(cache_->start().ok()) << cache_->log_tail();
    auto n = RedisClient::connect(node_->port());
    auto c = RedisClient::connect(cache_->port());
    ASSERT_TRUE(n.ok() && c.ok());
    direct_ = std::make_unique<RedisClient>(std::move(*n));
    cached_ = std::make_unique<RedisClient>(std::move(*c));
    auto flag = std::find(cache_args.begin(), cache_args.end(), "--track");
    const bool track = flag == cache_args.end() || flag + 1 == cache_args.end() || flag[1] != "off";
    if (track) {
      // Subscribed (and past the flush that follows subscribing) before the test.
      const auto deadline = Clock::now() + 10s;
      while (stat(*cached_, "cache_tracking_connections") != 1 && Clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
      }
      ASSERT_EQ(stat(*cached_, "cache_tracking_connections"), 1u) << cache_->log_tail();
    }
  }
  // Polls GET key through the cache until it answers want or the deadline passes.
  bool eventually_reads(const std::string& key, const std::string& want, Clock::duration limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (cached_->cmd({"GET", key}) == want) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  std::unique_ptr<ServerProcess> node_, cache_;
  std::unique_ptr<RedisClient> direct_, cached_;
};

TEST_F(CacheTier, ServesReadsFromMemoryAndPassesWritesThrough) {
  start({"--ttl-ms", "60000"});
  EXPECT_EQ(cached_->cmd({"SET", "a", "1"}), "+OK");
  EXPECT_EQ(direct_->cmd({"GET", "a"}), "\"1\"");  // the write reached the store
  // The node's invalidation for that write reaches the cache asynchronously;
  // let it arrive so that it cannot drop the copy loaded below (it would be
  // harmless, but the counts would differ).
  const auto deadline = Clock::now() + 5s;
  while (stat(*cached_, "cache_tracking_messages") < 1 && Clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(cached_->cmd({"GET", "a"}), "\"1\"");  // loaded
  EXPECT_EQ(cached_->cmd({"GET", "a"}), "\"1\"");  // from memory
  EXPECT_EQ(stat(*cached_, "cache_loads"), 1u);
  EXPECT_EQ(stat(*cached_, "cache_hits"), 1u);
  // A write through the cache drops its copy before the reply: the same client
  // reads its own write.
  EXPECT_EQ(cached_->cmd({"SET", "a", "2"}), "+OK");
  EXPECT_EQ(cached_->cmd({"GET", "a"}), "\"2\"");
  EXPECT_EQ(cached_->cmd({"INCR", "a"}), ":3");
  EXPECT_EQ(cached_->cmd({"GET", "a"}), "\"3\"");
  EXPECT_EQ(cached_->cmd({"DEL", "a"}), ":1");
  EXPECT_EQ(cached_->cmd({"GET", "a"}), "(nil)");
  EXPECT_EQ(cached_->cmd({"MSET", "x", "1", "y", "2"}), "+OK");
  EXPECT_EQ(cached_->cmd({"MGET", "x", "nope", "y"}), "[\"1\", (nil), \"2\"]");
  EXPECT_EQ(cached_->cmd({"GET", "x"}), "\"1\"");
  EXPECT_EQ(cached_->cmd({"MGET", "x", "y"}), "[\"1\", \"2\"]");  // both from memory now
  EXPECT_EQ(cached_->cmd({"FLUSHALL"}), "+OK");
  EXPECT_EQ(cached_->cmd({"GET", "x"}), "(nil)");
  EXPECT_EQ(cached_->cmd({"STRLEN", "x"}), ":0");  // other reads pass through
}

// With --track off nothing tells the cache about a write made directly on the
// node: the old value is served until the cache TTL runs out, and not longer.
// This is the staleness docs/cache.md states for that mode.
TEST_F(CacheTier, WithoutTrackingAWriteElsewhereIsSeenWithinTheCacheTtl) {
  start({"--ttl-ms", "400", "--track", "off"});
  ASSERT_EQ(direct_->cmd({"SET", "k", "old"}), "+OK");
  ASSERT_EQ(cached_->cmd({"GET", "k"}), "\"old\"");
  const auto written = Clock::now();
  ASSERT_EQ(direct_->cmd({"SET", "k", "new"}), "+OK");
  const std::string right_after = cached_->cmd({"GET", "k"});
  if (Clock::now() - written < 300ms) {
    EXPECT_EQ(right_after, "\"old\"");  // stale, as stated
  }
  ASSERT_TRUE(eventually_reads("k", "\"new\"", 5s));
  EXPECT_LE(Clock::now() - written, 400ms + 400ms);  // the TTL plus scheduling slack
}

// With tracking (the default) a write made directly on the node drops the
// cached copy: the cache keeps values with no TTL at all (--ttl-ms 0) and
// still serves the new value once the node's invalidation arrived.
TEST_F(CacheTier, AWriteOnTheNodeInvalidatesTheCachedCopy) {
  start({"--ttl-ms", "0"});
  ASSERT_EQ(direct_->cmd({"SET", "k", "old"}), "+OK");
  ASSERT_EQ(cached_->cmd({"GET", "k"}), "\"old\"");
  ASSERT_EQ(cached_->cmd({"GET", "k"}), "\"old\"");  // held
  ASSERT_EQ(direct_->cmd({"SET", "k", "new"}), "+OK");
  ASSERT_TRUE(eventually_reads("k", "\"new\"", 5s));
  EXPECT_GE(stat(*cached_, "cache_tracking_messages"), 1u);
  EXPECT_GE(stat(*cached_, "cache_invalidations"), 1u);
  // FLUSHALL on the node empties the cache too.
  ASSERT_EQ(direct_->cmd({"FLUSHALL"}), "+OK");
  ASSERT_TRUE(eventually_reads("k", "(nil)", 5s));
}

TEST_F(CacheTier, TheKeysOwnTtlBoundsTheCachedCopy) {
  start({"--ttl-ms", "60000"});
  ASSERT_EQ(direct_->cmd({"SET", "k", "v", "PX", "300"}), "+OK");
  ASSERT_EQ(cached_->cmd({"GET", "k"}), "\"v\"");
  ASSERT_TRUE(eventually_reads("k", "(nil)", 5s));
}

TEST_F(CacheTier, NegativeCachingRemembersAbsenceForItsTtl) {
  start({"--ttl-ms", "60000", "--negative-ttl-ms", "1000", "--track", "off"});
  const auto first = Clock::now();
  ASSERT_EQ(cached_->cmd({"GET", "k"}), "(nil)");
  ASSERT_EQ(direct_->cmd({"SET", "k", "v"}), "+OK");
  const std::string again = cached_->cmd({"GET", "k"});
  if (Clock::now() - first < 900ms) {  // still inside the negative TTL
    EXPECT_EQ(again, "(nil)");
    EXPECT_EQ(stat(*cached_, "cache_negative_hits"), 1u);
  }
  ASSERT_TRUE(eventually_reads("k", "\"v\"", 5s));
}

// 50 clients miss on one key while the load takes 300 ms (an injected
// upstream delay): one load with coalescing, 50 without.
// (Threads, since hiredis sends an appended command only when a reply is read.)
void concurrent_misses(std::vector<std::unique_ptr<RedisClient>>& clients) {
  std::vector<std::string> replies(clients.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < clients.size(); ++i) {
    threads.emplace_back([&, i] { replies[i] = clients[i]->cmd({"GET", "hot"}); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : replies) EXPECT_EQ(r, "\"v\"");
}

TEST_F(CacheTier, CoalescingMakesOneLoadForConcurrentMisses) {
  for (const char* mode : {"on", "off"}) {
    SCOPED_TRACE(mode);
    start({"--ttl-ms", "60000", "--coalesce", mode, "--inject-upstream-delay-ms", "300",
           "--upstream-connections", "64"});
    const uint64_t pushes = stat(*cached_, "cache_tracking_messages");
    ASSERT_EQ(direct_->cmd({"SET", "hot", "v"}), "+OK");
    // The SET's invalidation reaches the cache before the misses: arriving
    // during the first load, it would (rightly) discard it, and a second load
    // would follow (seen on a loaded machine).
    const auto deadline = Clock::now() + 10s;
    while (stat(*cached_, "cache_tracking_messages") == pushes && Clock::now() < deadline) {
      std::this_thread::sleep_for(5ms);
    }
    ASSERT_GT(stat(*cached_, "cache_tracking_messages"), pushes);
    std::vector<std::unique_ptr<RedisClient>> clients;
    for (int i = 0; i < 50; ++i) {
      auto c = RedisClient::connect(cache_->port());
      ASSERT_TRUE(c.ok());
      clients.push_back(std::make_unique<RedisClient>(std::move(*c)));
    }
    concurrent_misses(clients);
    if (std::string(mode) == "on") {
      EXPECT_EQ(stat(*cached_, "cache_loads"), 1u);
      EXPECT_EQ(stat(*cached_, "cache_coalesced_waits"), 49u);
    } else {
      EXPECT_EQ(stat(*cached_, "cache_loads"), 50u);
      EXPECT_EQ(stat(*cached_, "cache_coalesced_waits"), 0u);
    }
    clients.clear();
    cached_.reset();
    direct_.reset();
    ASSERT_TRUE(cache_->stop().ok());
    ASSERT_TRUE(node_->stop().ok());
  }
}

TEST_F(CacheTier, StaysWithinMaxMemory) {
  start({"--ttl-ms", "60000", "--max-memory", "64kb"});
  const std::string value(200, 'x');
  for (int i = 0; i < 1000; ++i) direct_->append({"SET", "key" + std::to_string(i), value});
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(direct_->read_reply().ok());
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(cached_->cmd({"GET", "key" + std::to_string(i)}), "\"" + value + "\"");
  }
  EXPECT_LE(stat(*cached_, "cache_used_memory"), 64u * 1024);
  EXPECT_GT(stat(*cached_, "cache_evictions"), 0u);
}

TEST_F(CacheTier, RefusesWhatItCannotHonour) {
  start({"--ttl-ms", "1000"});
  EXPECT_EQ(cached_->cmd({"MULTI"}).rfind("-ERR 'multi' is not supported", 0), 0u)
      << cached_->cmd({"MULTI"});
  EXPECT_EQ(cached_->cmd({"CLIENT", "TRACKING", "on"}).rfind("-ERR CLIENT TRACKING", 0), 0u);
  EXPECT_EQ(cached_->cmd({"PING"}), "+PONG");  // and it keeps serving

  auto [code, out] =
      run_statekv({"cache", "--upstream", "127.0.0.1:1", "--ttl-ms", "0", "--track", "off"});
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("--ttl-ms must be > 0 with --track off"), std::string::npos) << out;
  std::tie(code, out) = run_statekv({"cache", "--upstream", "nohostport"});
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("is not HOST:PORT"), std::string::npos) << out;
  std::tie(code, out) = run_statekv({"cache", "--upstream", "127.0.0.1:1", "--stale-ms", "5",
                                     "--ttl-ms", "100", "--max-memory", "12parsecs"});
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("--max-memory unit"), std::string::npos) << out;
  std::tie(code, out) =
      run_statekv({"cache", "--upstream", "127.0.0.1:" + std::to_string(node_->port() == 1 ? 2 : 1),
                   "--port", "0"});
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("no upstream answers PING"), std::string::npos) << out;
}

// SHUTDOWN sent to the cache stops the cache, never the store behind it (the
// cache passes the commands it does not serve itself through); SAVE, with
// nothing on disk to save to, is refused and the cache keeps serving.
TEST_F(CacheTier, ShutdownStopsTheCacheNotTheStoreBehindIt) {
  start({"--ttl-ms", "1000"});
  EXPECT_EQ(cached_->cmd({"SHUTDOWN", "SAVE"}),
            "-ERR Errors trying to SHUTDOWN: SAVE: the cache keeps nothing on disk (SHUTDOWN or "
            "SHUTDOWN NOSAVE stops it)");
  EXPECT_EQ(cached_->cmd({"SHUTDOWN", "ABORT"}), "-ERR No shutdown in progress.");
  EXPECT_EQ(cached_->cmd({"PING"}), "+PONG");
  EXPECT_FALSE(cached_->command({"SHUTDOWN"}).ok()) << "no reply: the connection closes";
  Status exited = cache_->wait_exit(10s);
  EXPECT_TRUE(exited.ok()) << exited.to_string() << "\n" << cache_->log_tail();
  EXPECT_EQ(direct_->cmd({"PING"}), "+PONG") << "the store behind the cache stopped";
}

// ------------------------------------------------------------ in front of a cluster

// A `statekv cache` attached to some nodes of a three-node cluster, with a TTL
// of ten minutes: only an invalidation can make it drop a copy in a test.
class CacheTierCluster : public ::testing::Test {
 protected:
  void start(std::vector<size_t> upstream) {
    if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
    cluster_ = std::make_unique<LocalCluster>(3);
    const Status s = cluster_->start();
    ASSERT_TRUE(s.ok()) << s.to_string();
    std::string list;
    for (size_t i : upstream) list += (list.empty() ? "" : ",") + cluster_->address(i);
    ServerOptions co;
    co.kind = ServerKind::kStatekvCache;
    co.extra_args = {"--upstream", list, "--seed", "7", "--ttl-ms", "600000"};
    cache_ = std::make_unique<ServerProcess>(co);
    ASSERT_TRUE(cache_->start().ok()) << cache_->log_tail();
    auto c = RedisClient::connect(cache_->port());
    ASSERT_TRUE(c.ok());
    cached_ = std::make_unique<RedisClient>(std::move(*c));
    const auto deadline = Clock::now() + 10s;
    while (stat(*cached_, "cache_tracking_connections") != upstream.size() &&
           Clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(stat(*cached_, "cache_tracking_connections"), upstream.size()) << cache_->log_tail();
  }
  std::string direct(size_t node, std::vector<std::string> cmd) {
    auto c = RedisClient::connect(cluster_->port(node));
    EXPECT_TRUE(c.ok());
    return c.ok() ? c->cmd(cmd) : "";
  }
  // Loads key into the cache and checks that the next read is a hit.
  void load(const std::string& key, const std::string& want) {
    ASSERT_EQ(cached_->cmd({"GET", key}), want);
    const uint64_t hits = stat(*cached_, "cache_hits");
    ASSERT_EQ(cached_->cmd({"GET", key}), want);
    ASSERT_EQ(stat(*cached_, "cache_hits"), hits + 1);
  }
  bool eventually_reads(const std::string& key, const std::string& want, Clock::duration limit) {
    const auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
      if (cached_->cmd({"GET", key}) == want) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  void TearDown() override {
    cached_.reset();
    cache_.reset();
    cluster_.reset();
  }
  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<ServerProcess> cache_;
  std::unique_ptr<RedisClient> cached_;
};

TEST_F(CacheTierCluster, AWriteThroughAnotherNodeInvalidatesWhatTheCacheHolds) {
  start({0});  // attached to node 0 only
  for (size_t owner = 0; owner < 3; ++owner) {
    SCOPED_TRACE("key owned by node " + std::to_string(owner));
    auto key = cluster_->key_on(owner, "k");
    ASSERT_TRUE(key.ok());
    ASSERT_EQ(direct(owner, {"SET", *key, "old"}), "+OK");
    // Let the SET's own invalidation pass before loading (it would only drop
    // the copy, but the hit count below would differ).
    std::this_thread::sleep_for(200ms);
    load(*key, "\"old\"");
    // Written through a node other than the cache's (routed to the owner
    // unless it is that node): the owner's invalidation reaches node 0's
    // BCAST connection, and the cache drops its copy.
    const size_t via = (owner + 1) % 3 == 0 ? 1 : (owner + 1) % 3;
    ASSERT_EQ(direct(via, {"SET", *key, "new"}), "+OK");
    EXPECT_TRUE(eventually_reads(*key, "\"new\"", 2s));
  }
}

// The same for a REPLICATION consensus keyspace of factor 2: node 0 (the
// cache's) is a member of some of its groups and not of others; either way a
// write through another node, applied by raft on the members, reaches the
// cache's BCAST connection (docs/cache.md, "REPLICATION consensus keyspaces").
TEST_F(CacheTierCluster, AWriteOfAConsensusKeyThroughAnotherNodeInvalidatesWhatTheCacheHolds) {
  start({0});
  ASSERT_EQ(direct(0, {"KEYSPACE", "CREATE", "rep", "PREFIX", "r:", "REPLICATION", "consensus",
                       "FACTOR", "2"}),
            "+OK");
  for (int i = 0; i < 6; ++i) {
    const std::string key = "r:" + std::to_string(i);
    SCOPED_TRACE(key);
    // Until every node routes it to its group (node 0, the cache's, included).
    for (size_t node = 0; node < 3; ++node) {
      const auto deadline = Clock::now() + 15s;
      while (direct(node, {"SET", key, "old"}) != "+OK" && Clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
      }
      ASSERT_EQ(direct(node, {"SET", key, "old"}), "+OK");
    }
    std::this_thread::sleep_for(200ms);  // the SETs' own invalidations pass
    load(key, "\"old\"");
    ASSERT_EQ(direct(2 - i % 2, {"SET", key, "new"}), "+OK");
    EXPECT_TRUE(eventually_reads(key, "\"new\"", 2s));
  }
}

TEST_F(CacheTierCluster, ADroppedNodeConnectionDropsWhatItCovered) {
  start({0, 1});
  auto key = cluster_->key_on(0, "k");
  ASSERT_TRUE(key.ok());
  ASSERT_EQ(direct(0, {"SET", *key, "v"}), "+OK");
  std::this_thread::sleep_for(200ms);
  load(*key, "\"v\"");
  ASSERT_GE(stat(*cached_, "cache_entries"), 1u);
  // Node 1 dies: the writes it would have reported (every write, BCAST) go
  // unseen from now on, so the cache holds nothing it may not see change.
  cluster_->node(1).kill();
  const auto deadline = Clock::now() + 5s;
  while (stat(*cached_, "cache_entries") != 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(stat(*cached_, "cache_entries"), 0u);
  EXPECT_GE(stat(*cached_, "cache_tracking_drops"), 1u);
  // The value is loaded again (from node 0, which owns it and still serves).
  const uint64_t loads = stat(*cached_, "cache_loads");
  EXPECT_EQ(cached_->cmd({"GET", *key}), "\"v\"");
  EXPECT_EQ(stat(*cached_, "cache_loads"), loads + 1);
}

// node-redis's client-side cache (tests/node_redis/csc_test.js): RESP3 and
// CLIENT TRACKING through node 0, writes through node 2, keys on every node.
TEST(ClientLibraryCache, NodeRedisClientSideCacheStaysCorrectAgainstACluster) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  if (!on_path("node") || !on_path("npm")) GTEST_SKIP() << "node or npm is not on PATH";
  auto dir =
      npm_installed(std::string(STATEKV_TESTS_DIR) + "/node_redis", "node-redis-node", "redis");
  if (!dir.ok() && dir.status().code() == Status::Code::kUnavailable) {
    GTEST_SKIP() << "cannot install node-redis, the npm registry is unreachable: "
                 << dir.status().message().substr(0, 600);
  }
  ASSERT_TRUE(dir.ok()) << dir.status().to_string();
  LocalCluster cluster(3);
  const Status s = cluster.start();
  ASSERT_TRUE(s.ok()) << s.to_string();
  std::vector<std::string> args = {"node", "csc_test.js", std::to_string(cluster.port(0)),
                                   std::to_string(cluster.port(2))};
  for (size_t owner = 0; owner < 3; ++owner) {
    auto key = cluster.key_on(owner, "csc:");
    ASSERT_TRUE(key.ok());
    args.push_back(*key);
  }
  auto run = run_program(args, *dir, 60s);
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  EXPECT_EQ(run->exit_code, 0) << "stdout:\n" << run->out << "\nstderr:\n" << run->err;
  EXPECT_NE(run->out.find("ok: 30 rounds"), std::string::npos) << run->out << run->err;
  std::cout << "node-redis: " << run->out;
}

}  // namespace
}  // namespace statekv::itest
