// `statekv bench --target resp` and its RESP connection (src/loadgen) against
// real servers: a statekv server (puts stored under the key prefix, the CLI's
// JSON figures), Redis primary + replica (WAIT N counted as the put's
// acknowledgement only when N replicas answered), and a 3-node statekv
// cluster, where --route leader sends every SET to its group's leader (no
// node forwards any) and --route spread lets the nodes forward about 2/3.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "loadgen/load.h"
#include "loadgen/resp_connection.h"
#include "support/redis_client.h"
#include "support/server_process.h"
#include "support/statekv_cli.h"
#include "support/temp_dir.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;

loadgen::HostPort local(uint16_t port) {
  return {"127.0.0.1", port};
}

// GET key's bytes, or a marker naming why there are none.
std::string get(RedisClient& c, const std::string& key) {
  auto v = c.bulk({"GET", key});
  return v.ok() ? *v : "<" + v.status().to_string() + ">";
}

size_t count_keys(RedisClient& c, const std::string& pattern) {
  auto keys = c.bulk_array({"KEYS", pattern});
  return keys.ok() ? keys->size() : 0;
}

TEST(BenchResp, PutsThroughAStatekvServerAreStoredUnderThePrefix) {
  ServerProcess server(subject_options("memory"));
  ASSERT_TRUE(server.start().ok()) << server.log_tail();
  loadgen::RespOptions o;
  o.key_prefix = "p:";
  auto conn = loadgen::RespConnection::connect(local(server.port()), o);
  ASSERT_TRUE(conn.ok()) << conn.status().to_string();
  const std::string binary("a\r\nb\0c", 6);
  ASSERT_TRUE((*conn)->put("one", binary).ok());
  auto client = RedisClient::connect(server.port());
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(get(*client, "p:one"), binary);
  // An error reply is a value of command() and leaves the connection usable.
  auto unknown = (*conn)->command({"NOSUCHCOMMAND"});
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->type, resp::Value::Type::kError);
  ASSERT_TRUE((*conn)->put("two", "2").ok());
  EXPECT_EQ((*conn)->connects(), 1u);

  // The harness through the factory: every put lands under the prefix.
  auto factory =
      loadgen::make_resp_connection_factory({"127.0.0.1:" + std::to_string(server.port())}, o);
  ASSERT_TRUE(factory.ok());
  loadgen::LoadOptions load;
  load.clients = 4;
  load.requests = 300;
  load.value_size = 40;
  load.key_space = 20;
  load.warmup_seconds = 0;
  auto r = loadgen::run_load(load, *factory);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->ok, 300u) << r->first_error;
  EXPECT_EQ(r->errors, 0u);
  auto keys = client->bulk_array({"KEYS", "p:key:*"});
  ASSERT_TRUE(keys.ok());
  EXPECT_GT(keys->size(), 0u);
  EXPECT_LE(keys->size(), 20u);
  for (const auto& k : *keys) {
    EXPECT_EQ(get(*client, k).size(), 40u) << k;
  }
}

TEST(BenchResp, CliTargetRespPrintsFiguresAndRefusesWaitElsewhere) {
  ServerProcess server(subject_options("memory"));
  ASSERT_TRUE(server.start().ok()) << server.log_tail();
  const std::string endpoint = "127.0.0.1:" + std::to_string(server.port());
  auto [rc, out] = run_statekv({"bench", "--target", "resp", "--endpoints", endpoint,
                                "--key-prefix", "cli:", "--clients", "2", "--requests", "100",
                                "--key-space", "5", "--warmup", "0", "--json"});
  ASSERT_EQ(rc, 0) << out;
  const size_t brace = out.rfind("\n{");
  const auto json = nlohmann::json::parse(brace == std::string::npos ? out : out.substr(brace + 1),
                                          nullptr, false);
  ASSERT_TRUE(json.is_object()) << out;
  EXPECT_EQ(json["target"], "resp");
  EXPECT_EQ(json["ok"], 100);
  EXPECT_EQ(json["errors"], 0);
  auto client = RedisClient::connect(server.port());
  ASSERT_TRUE(client.ok());
  EXPECT_GT(count_keys(*client, "cli:key:*"), 0u);

  auto [rc2, out2] = run_statekv(
      {"bench", "--target", "etcd", "--endpoints", endpoint, "--wait", "2", "--requests", "1"});
  EXPECT_EQ(rc2, 2) << out2;
  EXPECT_NE(out2.find("--target resp only"), std::string::npos) << out2;
  auto [rc3, out3] = run_statekv({"bench", "--target", "etcd", "--endpoints", endpoint, "--route",
                                  "leader", "--requests", "1"});
  EXPECT_EQ(rc3, 2) << out3;
  EXPECT_NE(out3.find("--target resp only"), std::string::npos) << out3;
  // An unknown route is refused before anything runs, naming the choices.
  auto [rc4, out4] = run_statekv({"bench", "--target", "resp", "--endpoints", endpoint, "--route",
                                  "sideways", "--requests", "1"});
  EXPECT_NE(rc4, 0) << out4;
  EXPECT_NE(out4.find("--route: sideways not in {spread,leader}"), std::string::npos) << out4;
}

TEST(BenchResp, WaitCountsRedisReplicas) {
  if (std::system("command -v redis-server >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "redis-server is not installed";
  }
  ServerOptions po;
  po.kind = ServerKind::kRedis;
  ServerProcess primary(po);
  ASSERT_TRUE(primary.start().ok()) << primary.log_tail();
  ServerOptions ro = po;
  ro.extra_args = {"--replicaof", "127.0.0.1", std::to_string(primary.port())};
  ServerProcess replica(ro);
  ASSERT_TRUE(replica.start().ok()) << replica.log_tail();
  auto replica_client = RedisClient::connect(replica.port());
  ASSERT_TRUE(replica_client.ok());
  bool linked = false;
  for (int i = 0; i < 200 && !linked; ++i) {
    linked = replica_client->cmd({"INFO", "replication"}).find("master_link_status:up") !=
             std::string::npos;
    if (!linked) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(linked) << replica.log_tail();

  loadgen::RespOptions one;
  one.wait_replicas = 1;
  auto conn = loadgen::RespConnection::connect(local(primary.port()), one);
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)->put("w", "replicated").ok());
  // WAIT 1 returned only once the replica acknowledged the write.
  EXPECT_EQ(get(*replica_client, "w"), "replicated");

  // Two replicas asked for, one exists: WAIT times out with 1, the put fails.
  loadgen::RespOptions two;
  two.wait_replicas = 2;
  two.wait_timeout_ms = 200;
  auto conn2 = loadgen::RespConnection::connect(local(primary.port()), two);
  ASSERT_TRUE(conn2.ok());
  const Status s = (*conn2)->put("w2", "v");
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.to_string();
  EXPECT_NE(s.message().find("only 1 replica"), std::string::npos) << s.to_string();

  auto factory =
      loadgen::make_resp_connection_factory({"127.0.0.1:" + std::to_string(primary.port())}, one);
  ASSERT_TRUE(factory.ok());
  loadgen::LoadOptions load;
  load.clients = 3;
  load.requests = 150;
  load.warmup_seconds = 0;
  auto r = loadgen::run_load(load, *factory);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->ok, 150u) << r->first_error;
}

// One numeric field of INFO `section` on a node; -1 when absent.
int64_t info_field(uint16_t port, const std::string& section, const std::string& field) {
  auto c = RedisClient::connect(port);
  if (!c.ok()) return -1;
  auto info = c->bulk({"INFO", section});
  if (!info.ok()) return -1;
  std::smatch m;
  if (!std::regex_search(*info, m, std::regex("(^|\n)" + field + ":(\\d+)"))) return -1;
  return std::stoll(m[2]);
}

// The leader of each replica group of keyspace `rep`, as every node reports
// it (INFO replication: statekv_group_<id>:keyspace=rep,...,leader=N,...);
// empty when the nodes disagree or a group has no leader.
std::map<std::string, std::string> rep_leaders(const std::vector<uint16_t>& ports) {
  std::map<std::string, std::string> agreed;
  for (size_t i = 0; i < ports.size(); ++i) {
    auto c = RedisClient::connect(ports[i]);
    if (!c.ok()) return {};
    auto info = c->bulk({"INFO", "replication"});
    if (!info.ok()) return {};
    std::map<std::string, std::string> seen;
    const std::regex line("statekv_group_(\\d+):keyspace=rep,[^\r\n]*,leader=(\\w+),");
    for (auto it = std::sregex_iterator(info->begin(), info->end(), line);
         it != std::sregex_iterator(); ++it) {
      if ((*it)[2] == "none") return {};
      seen[(*it)[1]] = (*it)[2];
    }
    if (seen.empty() || (i > 0 && seen != agreed)) return {};
    agreed = seen;
  }
  return agreed;
}

int64_t forwarded(const std::vector<uint16_t>& ports) {
  int64_t total = 0;
  for (uint16_t p : ports) {
    const int64_t n = info_field(p, "stats", "statekv_forwarded_commands");
    if (n < 0) return -1;
    total += n;
  }
  return total;
}

TEST(BenchResp, RouteLeaderSendsEverySetToItsGroupsLeaderAndNoNodeForwards) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  TempDir dir("bench-route");
  const std::string data = dir.path() + "/data";
  const uint16_t base = pick_cluster_base_port(3);
  ASSERT_NE(base, 0);
  auto up = run_statekv({"cluster", "up", "--nodes", "3", "--base-port", std::to_string(base),
                         "--data", data, "--engine", "memory", "--detach"});
  LocalClusterGuard down{data};
  ASSERT_EQ(up.first, 0) << up.second;
  const std::vector<uint16_t> ports = {base, static_cast<uint16_t>(base + 1),
                                       static_cast<uint16_t>(base + 2)};
  {
    auto c = RedisClient::connect(base);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->cmd({"KEYSPACE", "CREATE", "rep", "PREFIX", "r:", "REPLICATION", "consensus",
                      "FACTOR", "3"}),
              "+OK");
  }
  // Leaders elected, and settled: the same leader of every group on every
  // node for a second (just after start a group may still move to its
  // preferred node, which would make a few puts forwarded).
  std::map<std::string, std::string> leaders;
  const auto settle_by = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < settle_by) {
    auto now = rep_leaders(ports);
    if (!now.empty() && now == leaders) break;
    leaders = now;
    std::this_thread::sleep_for(1s);
  }
  ASSERT_EQ(leaders.size(), 3u) << "the keyspace's 3 groups have no settled leaders";

  const std::string endpoints = "127.0.0.1:" + std::to_string(ports[0]) +
                                ",127.0.0.1:" + std::to_string(ports[1]) +
                                ",127.0.0.1:" + std::to_string(ports[2]);
  const auto bench = [&](const std::string& route) {
    auto [rc, out] = run_statekv({"bench", "--target", "resp", "--route", route, "--endpoints",
                                  endpoints, "--key-prefix", "r:", "--clients", "6", "--requests",
                                  "600", "--key-space", "300", "--warmup", "0", "--json"});
    EXPECT_EQ(rc, 0) << out;
    const size_t brace = out.rfind('{');
    const auto json = nlohmann::json::parse(
        brace == std::string::npos ? std::string() : out.substr(brace), nullptr, false);
    EXPECT_TRUE(json.is_object()) << out;
    if (json.is_object()) {
      EXPECT_EQ(json["route"], route) << out;
      EXPECT_EQ(json["ok"], 600) << out;
    }
  };

  const int64_t before = forwarded(ports);
  ASSERT_GE(before, 0) << "no statekv_forwarded_commands in INFO stats";
  bench("leader");
  const int64_t after_leader = forwarded(ports);
  EXPECT_EQ(after_leader - before, 0) << "--route leader: some SETs went to a node that forwarded";
  bench("spread");
  const int64_t after_spread = forwarded(ports);
  // Client c on node c % 3, keys spread evenly over 3 groups led one per node
  // or not: most of the 600 SETs reach a node that does not lead their group
  // (2/3 when each node leads one group).
  std::printf("forwarded: --route leader %lld, --route spread %lld of 600\n",
              static_cast<long long>(after_leader - before),
              static_cast<long long>(after_spread - after_leader));
  EXPECT_GT(after_spread - after_leader, 150) << "--route spread should be forwarded often";
  EXPECT_LE(after_spread - after_leader, 600);
  EXPECT_EQ(rep_leaders(ports), leaders) << "a leader moved during the runs";
}

}  // namespace
}  // namespace statekv::itest
