// KEYSPACE CREATE over keys that exist, and KEYSPACE DROP, with real
// processes (a local cluster made by `statekv cluster up`): CREATE moves the
// keys under the new prefix into the new keyspace live (none unreadable,
// none older), DROP deletes its keys everywhere and says how many
// (docs/routing.md, "Keyspaces"). Issue 13 item 1.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "check/history.h"
#include "support/cluster_map.h"
#include "support/history_clients.h"
#include "support/redis_client.h"
#include "support/server_process.h"
#include "support/statekv_cli.h"
#include "support/temp_dir.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;

struct Cluster {
  std::string data;
  uint16_t base = 0;
  std::vector<uint16_t> ports() const {
    return {base, static_cast<uint16_t>(base + 1), static_cast<uint16_t>(base + 2)};
  }
};

// Three nodes, default keyspace hash over one copy (or by consensus).
std::pair<int, std::string> cluster_up(const TempDir& dir, Cluster* c,
                                       const std::string& replication = "none") {
  c->data = dir.path() + "/data";
  c->base = pick_cluster_base_port(3);
  if (c->base == 0) return {1, "no free ports"};
  return run_statekv({"cluster", "up", "--nodes", "3", "--base-port", std::to_string(c->base),
                      "--data", c->data, "--engine", "memory", "--replication", replication,
                      "--detach"});
}

TEST(KeyspaceMove, CreateAndDropUnderLoadStayLinearizable) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  TempDir dir("ksmove-load");
  Cluster cluster;
  auto up = cluster_up(dir, &cluster);
  LocalClusterGuard down{cluster.data};
  ASSERT_EQ(up.first, 0) << up.second;

  constexpr size_t kKeys = 12;
  HistoryClients::Options options;
  options.clients = 6;
  options.keys = kKeys;
  options.key_prefix = "zz:";
  HistoryClients clients(cluster.ports(), options);
  std::this_thread::sleep_for(400ms);

  auto c = RedisClient::connect(cluster.base + 1);
  ASSERT_TRUE(c.ok());
  // The keys written so far live in "default"; now they move into "zz".
  ASSERT_EQ(c->cmd({"KEYSPACE", "CREATE", "zz", "PARTITIONER", "ring"}), "+OK");
  std::this_thread::sleep_for(400ms);

  // DROP deletes every key: in the history, a delete of each key by a process
  // of its own, from the command's sending to its reply.
  std::vector<check::Event> deletes;
  for (size_t i = 0; i < kKeys; ++i) {
    check::Event e;
    e.process = 1'000'000'000 + static_cast<int64_t>(i);
    e.type = check::EventType::kInvoke;
    e.f = check::OpFunction::kDelete;
    e.key = "zz:k" + std::to_string(i);
    e.time = clients.now();
    clients.record(e);
    deletes.push_back(e);
  }
  auto dropped = c->command({"KEYSPACE", "DROP", "zz"});
  const bool done = dropped.ok() && !dropped->empty() && (*dropped)[0] != '-';
  for (check::Event e : deletes) {
    e.type = done ? check::EventType::kOk : check::EventType::kInfo;
    e.time = clients.now();
    clients.record(e);
  }
  // Every key was written long before: all of them were deleted.
  EXPECT_EQ(dropped.ok() ? *dropped : dropped.status().to_string(), ":" + std::to_string(kKeys));
  std::this_thread::sleep_for(400ms);
  clients.stop();

  const check::History history = clients.history();
  EXPECT_GT(clients.ok_count(), 200u) << "too little load to mean anything";
  const std::string file = dir.path() + "/history.jsonl";
  ASSERT_TRUE(check::write_history_file(file, history).ok());
  auto verdict = run_statekv({"check", "linearizable", file});
  EXPECT_EQ(verdict.first, 0) << verdict.second;

  // The keys written after the drop are in "default", once each.
  auto keys = c->bulk_array({"KEYS", "*"});
  ASSERT_TRUE(keys.ok());
  auto dbsize = c->integer({"DBSIZE"});
  ASSERT_TRUE(dbsize.ok());
  EXPECT_EQ(*dbsize, static_cast<long long>(keys->size()));
  EXPECT_LE(*dbsize, static_cast<long long>(kKeys));
}

TEST(KeyspaceMove, CreateMovesEveryKeyAndDropDeletesThemAll) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  TempDir dir("ksmove-exact");
  Cluster cluster;
  auto up = cluster_up(dir, &cluster);
  LocalClusterGuard down{cluster.data};
  ASSERT_EQ(up.first, 0) << up.second;
  std::vector<RedisClient> nodes;
  for (uint16_t port : cluster.ports()) {
    auto c = RedisClient::connect(port);
    ASSERT_TRUE(c.ok());
    nodes.push_back(std::move(c).value());
  }
  RedisClient& c = nodes[0];

  // 50 strings and one of each collection under the prefix, 5 keys beside it.
  constexpr int kStrings = 50;
  for (int i = 1; i <= kStrings; ++i) {
    ASSERT_EQ(c.cmd({"SET", "zz:" + std::to_string(i), "old" + std::to_string(i)}), "+OK");
  }
  ASSERT_EQ(c.cmd({"HSET", "zz:h", "a", "1", "b", "2"}), ":2");
  ASSERT_EQ(c.cmd({"RPUSH", "zz:l", "x", "y", "x"}), ":3");
  ASSERT_EQ(c.cmd({"SADD", "zz:s", "p", "q"}), ":2");
  ASSERT_EQ(c.cmd({"ZADD", "zz:z", "1.5", "m", "-2", "n"}), ":2");
  ASSERT_EQ(c.cmd({"SET", "zz:ttl", "t", "PX", "600000"}), "+OK");
  for (int i = 0; i < 5; ++i) ASSERT_EQ(c.cmd({"SET", "other:" + std::to_string(i), "o"}), "+OK");
  constexpr long long kUnder = kStrings + 5;
  ASSERT_EQ(c.cmd({"DBSIZE"}), ":" + std::to_string(kUnder + 5));

  ASSERT_EQ(c.cmd({"KEYSPACE", "CREATE", "zz", "PARTITIONER", "ring"}), "+OK");
  // Every key is there, once, with its value, through every node.
  for (size_t n = 0; n < nodes.size(); ++n) {
    EXPECT_EQ(nodes[n].cmd({"DBSIZE"}), ":" + std::to_string(kUnder + 5)) << "node " << n + 1;
    for (int i = 1; i <= kStrings; ++i) {
      const std::string k = "zz:" + std::to_string(i);
      EXPECT_EQ(nodes[n].cmd({"GET", k}), "\"old" + std::to_string(i) + "\"") << k;
    }
    EXPECT_EQ(nodes[n].cmd({"HGETALL", "zz:h"}), "[\"a\", \"1\", \"b\", \"2\"]");
    EXPECT_EQ(nodes[n].cmd({"LRANGE", "zz:l", "0", "-1"}), "[\"x\", \"y\", \"x\"]");
    EXPECT_EQ(nodes[n].cmd({"SCARD", "zz:s"}), ":2");
    EXPECT_EQ(nodes[n].cmd({"ZSCORE", "zz:z", "m"}), "\"1.5\"");
    EXPECT_EQ(nodes[n].cmd({"ZRANGE", "zz:z", "0", "-1"}), "[\"n\", \"m\"]");
    auto ttl = nodes[n].integer({"PTTL", "zz:ttl"});
    ASSERT_TRUE(ttl.ok());
    EXPECT_GT(*ttl, 500000);
  }
  auto where = c.cmd({"LOCATE", "zz:7"});
  EXPECT_NE(where.find("\"zz\""), std::string::npos) << where;

  for (int i = 1; i <= kStrings; ++i) {
    ASSERT_EQ(c.cmd({"SET", "zz:" + std::to_string(i), "new" + std::to_string(i)}), "+OK");
  }
  // DROP answers how many keys it deleted; none is seen again, through any
  // node, nor counted.
  EXPECT_EQ(nodes[1].cmd({"KEYSPACE", "DROP", "zz"}), ":" + std::to_string(kUnder));
  for (size_t n = 0; n < nodes.size(); ++n) {
    EXPECT_EQ(nodes[n].cmd({"DBSIZE"}), ":5") << "node " << n + 1;
    for (int i = 1; i <= kStrings; ++i) {
      const std::string k = "zz:" + std::to_string(i);
      EXPECT_EQ(nodes[n].cmd({"GET", k}), "(nil)") << k << " through node " << n + 1;
    }
    EXPECT_EQ(nodes[n].cmd({"EXISTS", "zz:h", "zz:l", "zz:s", "zz:z", "zz:ttl"}), ":0");
    EXPECT_EQ(nodes[n].cmd({"GET", "other:3"}), "\"o\"");
  }
  // The same prefix again starts empty.
  ASSERT_EQ(c.cmd({"KEYSPACE", "CREATE", "zz"}), "+OK");
  EXPECT_EQ(c.cmd({"DBSIZE"}), ":5");
  EXPECT_EQ(c.cmd({"GET", "zz:1"}), "(nil)");
  EXPECT_EQ(c.cmd({"KEYSPACE", "DROP", "zz"}), ":0");
  EXPECT_EQ(c.cmd({"KEYSPACE", "DROP", "default"}), "-ERR the default keyspace cannot be dropped");
}

// `statekv cluster keyspaces FILE` on a cluster with data moves keys too.
TEST(KeyspaceMove, AKeyspaceFileCreatesOverKeysAndMovesThem) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  TempDir dir("ksmove-file");
  Cluster cluster;
  auto up = cluster_up(dir, &cluster);
  LocalClusterGuard down{cluster.data};
  ASSERT_EQ(up.first, 0) << up.second;
  auto conn = RedisClient::connect(cluster.base + 2);
  ASSERT_TRUE(conn.ok());
  RedisClient& c = *conn;
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(c.cmd({"SET", "ff:" + std::to_string(i), "v" + std::to_string(i)}), "+OK");
  }
  ASSERT_EQ(c.cmd({"SADD", "ff:set", "a", "b", "c"}), ":3");
  const std::string file = dir.path() + "/keyspaces.toml";
  {
    std::ofstream out(file);
    out << "[[keyspace]]\nname = \"ff\"\npartitioner = \"ring\"\nvnodes = 16\n";
  }
  auto made = run_statekv({"cluster", "keyspaces", file, "--data", cluster.data});
  ASSERT_EQ(made.first, 0) << made.second;
  EXPECT_EQ(c.cmd({"DBSIZE"}), ":31");
  for (int i = 0; i < 30; ++i) {
    EXPECT_EQ(c.cmd({"GET", "ff:" + std::to_string(i)}), "\"v" + std::to_string(i) + "\"");
  }
  EXPECT_EQ(c.cmd({"SCARD", "ff:set"}), ":3");
  auto where = c.cmd({"LOCATE", "ff:3"});
  EXPECT_NE(where.find("\"ff\""), std::string::npos) << where;

  // A consensus keyspace over keys would strand them: refused, they stay.
  ASSERT_EQ(c.cmd({"SET", "cz:1", "one"}), "+OK");
  const std::string raft = dir.path() + "/raft.toml";
  {
    std::ofstream out(raft);
    out << "[[keyspace]]\nname = \"cz\"\nreplication = \"consensus\"\nfactor = 3\n";
  }
  auto refused = run_statekv({"cluster", "keyspaces", raft, "--data", cluster.data});
  EXPECT_NE(refused.first, 0);
  EXPECT_NE(refused.second.find("keyspace 'cz' not created: 1 keys under 'cz:'"), std::string::npos)
      << refused.second;
  EXPECT_EQ(c.cmd({"GET", "cz:1"}), "\"one\"");
  ASSERT_EQ(c.cmd({"DEL", "cz:1"}), ":1");
  auto created = run_statekv({"cluster", "keyspaces", raft, "--data", cluster.data});
  EXPECT_EQ(created.first, 0) << created.second;
  EXPECT_EQ(c.cmd({"SET", "cz:1", "two"}), "+OK");
  EXPECT_EQ(c.cmd({"GET", "cz:1"}), "\"two\"");
  EXPECT_EQ(c.cmd({"DBSIZE"}), ":32");
}

// A consensus keyspace created while clients write keys under its prefix
// through every node: whichever way each creation goes (refused over the keys
// that got there first, or created), every acknowledged write is readable
// after. A write routed by a map that did not know the keyspace yet used to
// land in "default" after the creation counted its keys there, and was never
// seen again (keyspace_change.cc, finish_creating).
TEST(KeyspaceMove, AConsensusKeyspaceCreatedUnderWritesToItsPrefixHidesNoWrite) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  TempDir dir("ksmove-race");
  Cluster cluster;
  auto up = cluster_up(dir, &cluster, "consensus");
  LocalClusterGuard down{cluster.data};
  ASSERT_EQ(up.first, 0) << up.second;
  auto admin = RedisClient::connect(cluster.base);
  auto reader = RedisClient::connect(cluster.base + 1);
  ASSERT_TRUE(admin.ok() && reader.ok());

  size_t created = 0, refused = 0, acknowledged = 0, tryagain = 0;
  // The writers start this long after CREATE is sent: each round meets the
  // creation in another of its steps.
  const std::vector<int> offsets_ms = {0, 1, 2, 4, 6, 8, 12, 16, 24, 32};
  for (size_t round = 0; round < offsets_ms.size(); ++round) {
    std::atomic<bool> stop{false};
    std::vector<std::vector<std::string>> acked(3);
    std::vector<size_t> retry(3, 0);
    // Writes refused with TRYAGAIN did not run; any other error may have.
    std::vector<std::vector<std::pair<std::string, std::string>>> refused_keys(3), other(3);
    std::vector<std::thread> writers;
    for (size_t n = 0; n < 3; ++n) {
      writers.emplace_back([&, n] {
        auto c = RedisClient::connect(cluster.ports()[n]);
        if (!c.ok()) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(offsets_ms[round]));
        for (int i = 0; !stop; ++i) {
          const std::string key =
              "cz:r" + std::to_string(round) + ":n" + std::to_string(n) + ":" + std::to_string(i);
          auto r = c->command({"SET", key, "v" + key});
          if (!r.ok()) {
            std::printf("round %zu: SET %s: %s\n", round, key.c_str(),
                        r.status().to_string().c_str());
            return;
          }
          if (*r == "+OK") {
            acked[n].push_back(key);
          } else if (r->rfind("-TRYAGAIN", 0) == 0) {
            ++retry[n];
            refused_keys[n].emplace_back(key, *r);
          } else {
            other[n].emplace_back(key, *r);
          }
        }
      });
    }
    const std::string r =
        admin->cmd({"KEYSPACE", "CREATE", "cz", "REPLICATION", "consensus", "FACTOR", "3"});
    std::this_thread::sleep_for(200ms);
    stop = true;
    for (auto& w : writers) w.join();
    if (r == "+OK") {
      ++created;
    } else {
      EXPECT_EQ(r.rfind("-ERR keyspace 'cz' not created: ", 0), 0u) << r;
      ++refused;
    }
    for (size_t n = 0; n < 3; ++n) {
      tryagain += retry[n];
      acknowledged += acked[n].size();
      for (const std::string& key : acked[n]) {
        ASSERT_EQ(reader->cmd({"GET", key}), "\"v" + key + "\"")
            << "an acknowledged write is not readable, round " << round << " (CREATE answered " << r
            << ")";
      }
    }
    // Start over: no keys under the prefix, no keyspace.
    if (r == "+OK") {
      const std::string dropped = admin->cmd({"KEYSPACE", "DROP", "cz"});
      ASSERT_EQ(dropped.rfind(":", 0), 0u) << dropped;
    }
    for (size_t n = 0; n < 3; ++n) {
      for (const auto& [key, error] : refused_keys[n]) {
        EXPECT_EQ(reader->cmd({"EXISTS", key}), ":0")
            << key << " was refused (" << error << ") but written, round " << round;
      }
      for (const std::string& key : acked[n]) {
        const std::string d = admin->cmd({"DEL", key});
        if (d.rfind(":", 0) != 0)
          std::printf("round %zu: DEL %s: %s\n", round, key.c_str(), d.c_str());
      }
      for (const auto& [key, error] : other[n]) {
        std::printf("round %zu: %s: %s\n", round, key.c_str(), error.c_str());
        (void)admin->cmd({"DEL", key});
      }
    }
    // (DBSIZE takes each group's keys from its leader: the DELs are in it.)
    const std::string dbsize = admin->cmd({"DBSIZE"});
    ASSERT_EQ(dbsize, ":0") << "round " << round << " (CREATE answered " << r
                            << "), left: " << admin->cmd({"KEYS", "*"});
  }
  std::printf(
      "consensus keyspace created %zu times, refused %zu times; %zu writes acknowledged, "
      "%zu refused with TRYAGAIN\n",
      created, refused, acknowledged, tryagain);
  EXPECT_GT(acknowledged, 100u) << "too little load to mean anything";

  // A key deleted just before CREATE is gone for it, though a follower may
  // not have applied the delete yet: the groups' leaders count.
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(admin->cmd({"SET", "cz:late", "v"}), "+OK");
    ASSERT_EQ(reader->cmd({"DEL", "cz:late"}), ":1");
    ASSERT_EQ(admin->cmd({"KEYSPACE", "CREATE", "cz", "REPLICATION", "consensus", "FACTOR", "3"}),
              "+OK")
        << "attempt " << i;
    ASSERT_EQ(admin->cmd({"KEYSPACE", "DROP", "cz"}), ":0");
  }
}

// A creation whose driver stopped after its first step (the keyspace is in
// the map, `creating`; written here as that driver would have): its keys are
// refused with TRYAGAIN, which says how to end it, and KEYSPACE DROP removes
// it; the prefix is served by "default" again.
TEST(KeyspaceMove, AHalfCreatedKeyspaceRefusesItsKeysUntilDropped) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  TempDir dir("ksmove-half");
  Cluster cluster;
  auto up = cluster_up(dir, &cluster, "consensus");
  LocalClusterGuard down{cluster.data};
  ASSERT_EQ(up.first, 0) << up.second;
  std::ifstream secret_file(cluster.data + "/cluster.secret");
  std::string secret;
  std::getline(secret_file, secret);
  ASSERT_FALSE(secret.empty());
  std::vector<std::string> endpoints;
  for (uint16_t port : cluster.ports()) {
    endpoints.push_back("127.0.0.1:" + std::to_string(port + 10000));
  }
  const Status begun = begin_keyspace_creation(endpoints, secret, "cz", "cz:");
  ASSERT_TRUE(begun.ok()) << begun.to_string();

  auto c = RedisClient::connect(cluster.base + 2);
  ASSERT_TRUE(c.ok());
  std::string refused;
  for (int i = 0; i < 100; ++i) {  // until node 3 has the map
    refused = c->cmd({"SET", "cz:1", "v"});
    if (refused != "+OK") break;
    ASSERT_EQ(c->cmd({"DEL", "cz:1"}), ":1");
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(refused,
            "-TRYAGAIN keyspace 'cz' is being created (should that last, the node creating it "
            "stopped: KEYSPACE DROP cz ends it)");
  EXPECT_EQ(c->cmd({"GET", "cz:1"}).rfind("-TRYAGAIN", 0), 0u);
  EXPECT_EQ(c->cmd({"KEYSPACE", "DROP", "cz"}), ":0");
  EXPECT_EQ(c->cmd({"SET", "cz:1", "v"}), "+OK");
  EXPECT_EQ(c->cmd({"GET", "cz:1"}), "\"v\"");
  auto where = c->cmd({"LOCATE", "cz:1"});
  EXPECT_NE(where.find("\"default\""), std::string::npos) << where;
}

TEST(KeyspaceMove, ConsensusKeyspaceDropDeletesItsKeysAndCreateRefusesToStrandKeys) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  TempDir dir("ksmove-raft");
  Cluster cluster;
  auto up = cluster_up(dir, &cluster);
  LocalClusterGuard down{cluster.data};
  ASSERT_EQ(up.first, 0) << up.second;
  auto conn = RedisClient::connect(cluster.base);
  ASSERT_TRUE(conn.ok());
  RedisClient& c = *conn;

  ASSERT_EQ(c.cmd({"KEYSPACE", "CREATE", "cz", "REPLICATION", "consensus", "FACTOR", "3"}), "+OK");
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(c.cmd({"SET", "cz:" + std::to_string(i), "v"}), "+OK");
  }
  ASSERT_EQ(c.cmd({"HSET", "cz:h", "f", "v"}), ":1");
  ASSERT_EQ(c.cmd({"SET", "plain", "p"}), "+OK");
  EXPECT_EQ(c.cmd({"DBSIZE"}), ":10");
  EXPECT_EQ(c.cmd({"KEYSPACE", "DROP", "cz"}), ":9");
  EXPECT_EQ(c.cmd({"DBSIZE"}), ":1");
  EXPECT_EQ(c.cmd({"GET", "cz:3"}), "(nil)");
  ASSERT_EQ(c.cmd({"KEYSPACE", "CREATE", "cz", "REPLICATION", "consensus", "FACTOR", "3"}), "+OK");
  EXPECT_EQ(c.cmd({"GET", "cz:3"}), "(nil)");
  EXPECT_EQ(c.cmd({"DBSIZE"}), ":1");
  EXPECT_EQ(c.cmd({"KEYSPACE", "DROP", "cz"}), ":0");

  // Keys do not move into a consensus keyspace yet: CREATE over them is
  // refused, and they stay readable.
  ASSERT_EQ(c.cmd({"SET", "rz:1", "one"}), "+OK");
  const std::string refused =
      c.cmd({"KEYSPACE", "CREATE", "rz", "REPLICATION", "consensus", "FACTOR", "3"});
  EXPECT_EQ(refused.rfind("-ERR keyspace 'rz' not created: 1 keys under 'rz:'", 0), 0u) << refused;
  EXPECT_EQ(c.cmd({"GET", "rz:1"}), "\"one\"");
  EXPECT_EQ(c.cmd({"DBSIZE"}), ":2");
}

}  // namespace
}  // namespace statekv::itest
