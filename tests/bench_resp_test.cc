// `statekv bench --target resp` and its RESP connection (src/loadgen) against
// real servers: a statekv server (puts stored under the key prefix, the CLI's
// JSON figures), and Redis primary + replica (WAIT N counted as the put's
// acknowledgement only when N replicas answered).
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "loadgen/load.h"
#include "loadgen/resp_connection.h"
#include "support/redis_client.h"
#include "support/server_process.h"
#include "support/statekv_cli.h"

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

}  // namespace
}  // namespace statekv::itest
