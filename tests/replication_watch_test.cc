// WATCH/MULTI/EXEC on a REPLICATION consensus keyspace, with real processes:
// a local 3-node cluster whose default keyspace is replicated by raft
// (`statekv cluster up --replication consensus`). A watched key changed by
// anyone (another node, another client, the client itself, expiry,
// FLUSHALL) between WATCH and EXEC makes EXEC answer nil, also when the
// group's leader changed in between; an unchanged one lets EXEC run, once,
// atomically (docs/replication.md, "WATCH on consensus keyspaces").
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <regex>
#include <thread>

#include "support/redis_client.h"
#include "support/server_process.h"
#include "support/statekv_cli.h"
#include "support/temp_dir.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

pid_t node_pid(const std::string& data, int node) {
  std::ifstream in(data + "/node" + std::to_string(node) + "/pid");
  pid_t pid = 0;
  in >> pid;
  return pid;
}

// `cluster up` of 3 nodes on the memory engine, default keyspace replicated
// by consensus; stopped when the test ends.
struct WatchCluster {
  explicit WatchCluster(const std::string& name) : dir(name), data(dir.path() + "/data") {}

  void up() {
    const uint16_t base = pick_cluster_base_port(3);
    ASSERT_NE(base, 0);
    auto started =
        run_statekv({"cluster", "up", "--nodes", "3", "--base-port", std::to_string(base), "--data",
                     data, "--engine", "memory", "--replication", "consensus", "--detach"});
    down.reset(new LocalClusterGuard{data});
    ASSERT_EQ(started.first, 0) << started.second;
    ports = {base, static_cast<uint16_t>(base + 1), static_cast<uint16_t>(base + 2)};
    for (uint16_t port : ports) ASSERT_NO_FATAL_FAILURE(until_ok(port, {"SET", "warmup", "1"}));
  }

  // Until `args` through `port` answers +OK (leaders elected); fails after 10 s.
  static void until_ok(uint16_t port, const std::vector<std::string>& args) {
    const auto limit = Clock::now() + 10s;
    std::string last;
    while (Clock::now() < limit) {
      auto c = RedisClient::connect(port, 1s);
      if (c.ok()) {
        auto r = c->command(args);
        if (r.ok() && *r == "+OK") return;
        last = r.ok() ? *r : r.status().to_string();
      }
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << args[0] << " through port " << port << " never answered OK: " << last;
  }

  // The node that leads `key`'s group, as node `port` knows it (LOCATE).
  static int leader_of(uint16_t port, const std::string& key) {
    const auto limit = Clock::now() + 10s;
    while (Clock::now() < limit) {
      auto c = RedisClient::connect(port, 1s);
      if (c.ok()) {
        const std::string where = c->cmd({"LOCATE", key});
        std::smatch m;
        if (std::regex_search(where, m, std::regex("\"leader\", :(\\d+)"))) return std::stoi(m[1]);
      }
      std::this_thread::sleep_for(50ms);
    }
    return 0;
  }

  uint16_t port_of(int node) const { return ports[static_cast<size_t>(node - 1)]; }

  TempDir dir;
  std::string data;
  std::vector<uint16_t> ports;
  std::unique_ptr<LocalClusterGuard> down;  // destroyed first: the nodes stop before dir goes
};

TEST(ReplicationWatch, AWatchedKeyChangedByAnyoneMakesExecNil) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  WatchCluster cluster("replication-watch");
  ASSERT_NO_FATAL_FAILURE(cluster.up());
  auto a = RedisClient::connect(cluster.ports[0]);
  auto b = RedisClient::connect(cluster.ports[1]);
  ASSERT_TRUE(a.ok() && b.ok());
  {
    auto info = a->command({"KEYSPACE", "INFO", "default"});
    ASSERT_TRUE(info.ok());
    ASSERT_NE(info->find("consensus"), std::string::npos) << *info;
  }

  // Changed through another node, by another client.
  ASSERT_EQ(a->cmd({"SET", "k", "1"}), "+OK");
  ASSERT_EQ(a->cmd({"WATCH", "k"}), "+OK");
  ASSERT_EQ(b->cmd({"SET", "k", "2"}), "+OK");
  ASSERT_EQ(a->cmd({"MULTI"}), "+OK");
  ASSERT_EQ(a->cmd({"SET", "k", "mine"}), "+QUEUED");
  EXPECT_EQ(a->cmd({"EXEC"}), "(nil)");
  EXPECT_EQ(a->cmd({"GET", "k"}), "\"2\"");

  // Unchanged (other keys written meanwhile): EXEC runs, and ends the watch.
  ASSERT_EQ(a->cmd({"WATCH", "k"}), "+OK");
  ASSERT_EQ(b->cmd({"SET", "other", "x"}), "+OK");
  ASSERT_EQ(b->cmd({"GET", "k"}), "\"2\"");
  ASSERT_EQ(a->cmd({"MULTI"}), "+OK");
  ASSERT_EQ(a->cmd({"INCR", "k"}), "+QUEUED");
  ASSERT_EQ(a->cmd({"GET", "k"}), "+QUEUED");
  EXPECT_EQ(a->cmd({"EXEC"}), "[:3, \"3\"]");
  ASSERT_EQ(b->cmd({"SET", "k", "4"}), "+OK");
  ASSERT_EQ(a->cmd({"MULTI"}), "+OK");
  ASSERT_EQ(a->cmd({"GET", "k"}), "+QUEUED");
  EXPECT_EQ(a->cmd({"EXEC"}), "[\"4\"]") << "the watch outlived its EXEC";

  // Several keys, one of them changed; a key watched twice.
  ASSERT_EQ(a->cmd({"WATCH", "k"}), "+OK");
  ASSERT_EQ(a->cmd({"WATCH", "k", "k"}), "+OK");
  ASSERT_EQ(b->cmd({"DEL", "k"}), ":1");
  ASSERT_EQ(a->cmd({"MULTI"}), "+OK");
  ASSERT_EQ(a->cmd({"SET", "k", "mine"}), "+QUEUED");
  EXPECT_EQ(a->cmd({"EXEC"}), "(nil)");
  EXPECT_EQ(a->cmd({"EXISTS", "k"}), ":0");

  // By the client itself, between WATCH and MULTI.
  ASSERT_EQ(a->cmd({"WATCH", "k"}), "+OK");
  ASSERT_EQ(a->cmd({"SET", "k", "self"}), "+OK");
  ASSERT_EQ(a->cmd({"MULTI"}), "+OK");
  ASSERT_EQ(a->cmd({"SET", "k", "mine"}), "+QUEUED");
  EXPECT_EQ(a->cmd({"EXEC"}), "(nil)");
  EXPECT_EQ(a->cmd({"GET", "k"}), "\"self\"");

  // UNWATCH forgets the watch; DISCARD too.
  ASSERT_EQ(a->cmd({"WATCH", "k"}), "+OK");
  ASSERT_EQ(b->cmd({"SET", "k", "5"}), "+OK");
  ASSERT_EQ(a->cmd({"UNWATCH"}), "+OK");
  ASSERT_EQ(a->cmd({"MULTI"}), "+OK");
  ASSERT_EQ(a->cmd({"GET", "k"}), "+QUEUED");
  EXPECT_EQ(a->cmd({"EXEC"}), "[\"5\"]");
  ASSERT_EQ(a->cmd({"WATCH", "k"}), "+OK");
  ASSERT_EQ(b->cmd({"SET", "k", "6"}), "+OK");
  ASSERT_EQ(a->cmd({"MULTI"}), "+OK");
  ASSERT_EQ(a->cmd({"DISCARD"}), "+OK");
  ASSERT_EQ(a->cmd({"MULTI"}), "+OK");
  ASSERT_EQ(a->cmd({"GET", "k"}), "+QUEUED");
  EXPECT_EQ(a->cmd({"EXEC"}), "[\"6\"]");

  // By expiry: a TTL that passes between WATCH and EXEC is a change (Redis 7),
  // whether or not the leader erased the key yet.
  ASSERT_EQ(a->cmd({"SET", "e", "v", "PX", "300"}), "+OK");
  ASSERT_EQ(a->cmd({"WATCH", "e"}), "+OK");
  std::this_thread::sleep_for(450ms);
  ASSERT_EQ(a->cmd({"MULTI"}), "+OK");
  ASSERT_EQ(a->cmd({"SET", "e", "mine"}), "+QUEUED");
  EXPECT_EQ(a->cmd({"EXEC"}), "(nil)");
  // A key already expired when watched is erased then: its erase is no change.
  ASSERT_EQ(a->cmd({"SET", "e", "v", "PX", "50"}), "+OK");
  std::this_thread::sleep_for(120ms);
  ASSERT_EQ(a->cmd({"WATCH", "e"}), "+OK");
  ASSERT_EQ(a->cmd({"MULTI"}), "+OK");
  ASSERT_EQ(a->cmd({"SET", "e", "mine"}), "+QUEUED");
  EXPECT_EQ(a->cmd({"EXEC"}), "[+OK]");

  // FLUSHALL changes the watched keys that exist, not the absent ones.
  ASSERT_EQ(a->cmd({"SET", "f", "v"}), "+OK");
  ASSERT_EQ(a->cmd({"DEL", "absent"}), ":0");
  ASSERT_EQ(a->cmd({"WATCH", "f"}), "+OK");
  auto c = RedisClient::connect(cluster.ports[2]);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->cmd({"WATCH", "absent"}), "+OK");
  ASSERT_EQ(b->cmd({"FLUSHALL"}), "+OK");
  ASSERT_EQ(a->cmd({"MULTI"}), "+OK");
  ASSERT_EQ(a->cmd({"SET", "f", "mine"}), "+QUEUED");
  EXPECT_EQ(a->cmd({"EXEC"}), "(nil)");
  ASSERT_EQ(c->cmd({"MULTI"}), "+OK");
  ASSERT_EQ(c->cmd({"SET", "absent", "now"}), "+QUEUED");
  EXPECT_EQ(c->cmd({"EXEC"}), "[+OK]");
}

// Hashes, lists and sorted sets past their compact size inside MULTI/EXEC on
// a consensus keyspace: the leader runs the transaction reading through the
// elements it staged, proposes them as one Mutation through the group's log,
// and every member applies it (read locally on each node). A watched large
// hash changed by an element write through another node makes EXEC nil.
// (statekv answered such an EXEC with an error and committed nothing.)
TEST(ReplicationWatch, ATransactionWritesLargeCollectionsThroughTheLog) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  WatchCluster cluster("replication-watch-large");
  ASSERT_NO_FATAL_FAILURE(cluster.up());
  auto a = RedisClient::connect(cluster.ports[0]);
  auto b = RedisClient::connect(cluster.ports[1]);
  auto c = RedisClient::connect(cluster.ports[2]);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  std::vector<std::string> hset = {"HSET", "{t}h"};
  for (int i = 0; i < 2000; ++i) {
    hset.push_back("f" + std::to_string(i));
    hset.push_back("v" + std::to_string(i));
  }
  ASSERT_EQ(a->cmd(hset), ":2000");
  std::vector<std::string> rpush = {"RPUSH", "{t}l"};
  for (int i = 0; i < 500; ++i) rpush.push_back("e" + std::to_string(i));
  ASSERT_EQ(a->cmd(rpush), ":500");
  std::vector<std::string> zadd = {"ZADD", "{t}z"};
  for (int i = 0; i < 300; ++i) {
    zadd.push_back(std::to_string(i));
    zadd.push_back("m" + std::to_string(i));
  }
  ASSERT_EQ(a->cmd(zadd), ":300");

  ASSERT_EQ(a->cmd({"WATCH", "{t}h"}), "+OK");
  ASSERT_EQ(a->cmd({"MULTI"}), "+OK");
  for (const std::vector<std::string>& cmd : std::vector<std::vector<std::string>>{
           {"HSET", "{t}h", "f1", "new", "extra", "x"},
           {"HGET", "{t}h", "f1"},
           {"HDEL", "{t}h", "f2"},
           {"HLEN", "{t}h"},
           {"LPUSH", "{t}l", "a"},
           {"RPOP", "{t}l"},
           {"LRANGE", "{t}l", "0", "1"},
           {"ZADD", "{t}z", "2.5", "new", "1000", "m0"},
           {"ZRANK", "{t}z", "new"},
           {"ZRANGE", "{t}z", "-1", "-1", "WITHSCORES"},
       }) {
    ASSERT_EQ(a->cmd(cmd), "+QUEUED") << cmd[0];
  }
  EXPECT_EQ(a->cmd({"EXEC"}),
            "[:1, \"new\", :1, :2000, :501, \"e499\", [\"a\", \"e0\"], :1, :2, [\"m0\", "
            "\"1000\"]]");
  // Every member applied the one entry: read on each node's own replica.
  for (uint16_t port : cluster.ports) {
    auto r = RedisClient::connect(port);
    ASSERT_TRUE(r.ok());
    std::string seen;
    for (int i = 0; i < 300; ++i) {
      seen = r->cmd({"WITH", "eventual", "HMGET", "{t}h", "f1", "f2", "extra"});
      if (seen == "[\"new\", (nil), \"x\"]") break;
      std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(seen, "[\"new\", (nil), \"x\"]") << "port " << port;
    EXPECT_EQ(r->cmd({"WITH", "eventual", "HLEN", "{t}h"}), ":2000") << port;
    EXPECT_EQ(r->cmd({"WITH", "eventual", "LRANGE", "{t}l", "-1", "-1"}), "[\"e498\"]") << port;
    EXPECT_EQ(r->cmd({"WITH", "eventual", "ZRANGE", "{t}z", "0", "2"}), "[\"m1\", \"m2\", \"new\"]")
        << port;
  }

  // An element write through another node breaks the watch of the hash.
  ASSERT_EQ(a->cmd({"WATCH", "{t}h"}), "+OK");
  ASSERT_EQ(b->cmd({"HSET", "{t}h", "f7", "theirs"}), ":0");
  ASSERT_EQ(a->cmd({"MULTI"}), "+OK");
  ASSERT_EQ(a->cmd({"HSET", "{t}h", "f7", "mine"}), "+QUEUED");
  EXPECT_EQ(a->cmd({"EXEC"}), "(nil)");
  EXPECT_EQ(a->cmd({"HGET", "{t}h", "f7"}), "\"theirs\"");

  // Deleted and re-created in one transaction, through a third node.
  ASSERT_EQ(c->cmd({"MULTI"}), "+OK");
  ASSERT_EQ(c->cmd({"DEL", "{t}h"}), "+QUEUED");
  std::vector<std::string> again = {"HSET", "{t}h"};
  for (int i = 0; i < 700; ++i) {
    again.push_back("g" + std::to_string(i));
    again.push_back("w" + std::to_string(i));
  }
  ASSERT_EQ(c->cmd(again), "+QUEUED");
  ASSERT_EQ(c->cmd({"HGET", "{t}h", "f7"}), "+QUEUED");
  ASSERT_EQ(c->cmd({"HGET", "{t}h", "g699"}), "+QUEUED");
  EXPECT_EQ(c->cmd({"EXEC"}), "[:1, :700, (nil), \"w699\"]");
  for (uint16_t port : cluster.ports) {
    auto r = RedisClient::connect(port);
    ASSERT_TRUE(r.ok());
    std::string seen;
    for (int i = 0; i < 300; ++i) {
      seen = r->cmd({"WITH", "eventual", "HLEN", "{t}h"});
      if (seen == ":700") break;
      std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(seen, ":700") << "port " << port;
    EXPECT_EQ(r->cmd({"WITH", "eventual", "HMGET", "{t}h", "f7", "g0"}), "[(nil), \"w0\"]") << port;
  }
}

// Optimistic increments (GET, then SET inside a watched MULTI) from clients
// on every node: every EXEC that ran counted once, none was lost.
TEST(ReplicationWatch, OptimisticIncrementsThroughEveryNodeLoseNoUpdate) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  WatchCluster cluster("replication-watch-incr");
  ASSERT_NO_FATAL_FAILURE(cluster.up());
  {
    auto c = RedisClient::connect(cluster.ports[0]);
    ASSERT_TRUE(c.ok());
    ASSERT_EQ(c->cmd({"SET", "counter", "0"}), "+OK");
  }
  std::atomic<int> committed{0}, aborted{0}, failed{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 6; ++i) {
    clients.emplace_back([&, i] {
      auto c = RedisClient::connect(cluster.ports[static_cast<size_t>(i % 3)]);
      if (!c.ok()) {
        ++failed;
        return;
      }
      for (int done = 0; done < 25;) {
        if (c->cmd({"WATCH", "counter"}) != "+OK") {
          ++failed;
          return;
        }
        auto v = c->bulk({"GET", "counter"});
        if (!v.ok() || c->cmd({"MULTI"}) != "+OK" ||
            c->cmd({"SET", "counter", std::to_string(std::stoll(*v) + 1)}) != "+QUEUED") {
          ++failed;
          return;
        }
        const std::string r = c->cmd({"EXEC"});
        if (r == "(nil)") {
          ++aborted;
        } else if (r == "[+OK]") {
          ++committed;
          ++done;
        } else {
          ++failed;
          return;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(committed.load(), 150);
  std::printf("%d transactions committed, %d aborted by a changed watched key\n", committed.load(),
              aborted.load());
  EXPECT_GT(aborted.load(), 0) << "the clients never raced: the test proves little";
  for (uint16_t port : cluster.ports) {
    auto c = RedisClient::connect(port);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->cmd({"GET", "counter"}), "\"" + std::to_string(committed.load()) + "\"");
  }
}

// The group's leader is killed between WATCH and EXEC: the new leader checks
// the watch against what it applied itself, as a follower too. Unchanged,
// EXEC runs; changed through the old leader before it died (a follower then
// applied the write) or through the new one, EXEC is nil.
TEST(ReplicationWatch, AWatchHoldsAcrossALeaderChange) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  WatchCluster cluster("replication-watch-leader");
  ASSERT_NO_FATAL_FAILURE(cluster.up());
  enum class Change { kNone, kBeforeTheKill, kAfterTheKill };
  for (const Change change : {Change::kNone, Change::kBeforeTheKill, Change::kAfterTheKill}) {
    const std::string key = "w:" + std::to_string(static_cast<int>(change));
    SCOPED_TRACE(key);
    ASSERT_NO_FATAL_FAILURE(WatchCluster::until_ok(cluster.ports[0], {"SET", key, "before"}));
    const int leader = WatchCluster::leader_of(cluster.ports[0], key);
    ASSERT_GT(leader, 0);
    const int watching = leader % 3 + 1, other = watching % 3 + 1;
    ASSERT_NE(other, leader);
    auto a = RedisClient::connect(cluster.port_of(watching));
    ASSERT_TRUE(a.ok());
    ASSERT_EQ(a->cmd({"WATCH", key}), "+OK");
    std::string expected = "before";
    if (change == Change::kBeforeTheKill) {
      auto b = RedisClient::connect(cluster.port_of(leader));
      ASSERT_TRUE(b.ok());
      ASSERT_EQ(b->cmd({"SET", key, "theirs"}), "+OK");
      expected = "theirs";
      // Both followers applied it (as followers) before the leader dies.
      for (int node : {watching, other}) {
        auto f = RedisClient::connect(cluster.port_of(node));
        ASSERT_TRUE(f.ok());
        std::string local;
        for (int i = 0;
             i < 200 && (local = f->cmd({"WITH", "eventual", "GET", key})) != "\"theirs\""; ++i) {
          std::this_thread::sleep_for(10ms);
        }
        ASSERT_EQ(local, "\"theirs\"") << "node " << node;
      }
    }
    ASSERT_EQ(::kill(node_pid(cluster.data, leader), SIGKILL), 0);
    // A new leader: the key reads through the other survivor.
    const auto limit = Clock::now() + 10s;
    std::string seen;
    while (Clock::now() < limit) {
      auto r = RedisClient::connect(cluster.port_of(other), 1s);
      if (r.ok() && (seen = r->cmd({"GET", key})) == "\"" + expected + "\"") break;
      std::this_thread::sleep_for(20ms);
    }
    ASSERT_EQ(seen, "\"" + expected + "\"");
    EXPECT_NE(WatchCluster::leader_of(cluster.port_of(other), key), leader);
    if (change == Change::kAfterTheKill) {
      auto b = RedisClient::connect(cluster.port_of(other));
      ASSERT_TRUE(b.ok());
      ASSERT_EQ(b->cmd({"SET", key, "theirs"}), "+OK");
      expected = "theirs";
    }
    ASSERT_EQ(a->cmd({"MULTI"}), "+OK");
    ASSERT_EQ(a->cmd({"SET", key, "mine"}), "+QUEUED");
    EXPECT_EQ(a->cmd({"EXEC"}), change == Change::kNone ? "[+OK]" : "(nil)");
    EXPECT_EQ(a->cmd({"GET", key}), change == Change::kNone ? "\"mine\"" : "\"theirs\"");
    // The killed node comes back and catches up.
    auto restarted = run_statekv({"cluster", "restart-missing", "--data", cluster.data});
    ASSERT_EQ(restarted.first, 0) << restarted.second;
    ASSERT_NO_FATAL_FAILURE(
        WatchCluster::until_ok(cluster.port_of(leader), {"SET", "w:back", "1"}));
  }
}

}  // namespace
}  // namespace statekv::itest
