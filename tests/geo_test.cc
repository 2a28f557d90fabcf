// A geo keyspace over a real cluster whose nodes carry region labels: every
// key lives on a node of its region, and only there.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "support/redis_client.h"
#include "support/server_process.h"
#include "support/statekv_cli.h"
#include "support/temp_dir.h"

namespace statekv::itest {
namespace {

// INFO keyspace's "keyspace_NAME:keys=N,..." on one node: N, or 0.
long long local_keys(RedisClient& c, const std::string& keyspace) {
  auto info = c.command({"INFO", "keyspace"});
  if (!info.ok()) return -1;
  const std::string field = "keyspace_" + keyspace + ":keys=";
  const size_t at = info->find(field);
  return at == std::string::npos ? 0 : std::atoll(info->c_str() + at + field.size());
}

// Four nodes on ports base.., nodes 1 and 3 in region eu, 2 and 4 in us.
void start_two_region_cluster(const std::string& data, uint16_t base) {
  auto up = run_statekv({"cluster", "up", "--nodes", "4", "--base-port", std::to_string(base),
                         "--data", data, "--regions", "eu,us", "--engine", "memory", "--detach"});
  ASSERT_EQ(up.first, 0) << up.second;
}

TEST(Geo, EachRegionsKeysStayOnThatRegionsNodes) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  TempDir dir("geo");
  const std::string data = dir.path() + "/data";
  const uint16_t base = pick_cluster_base_port(5);
  ASSERT_NE(base, 0);
  LocalClusterGuard down{data};
  ASSERT_NO_FATAL_FAILURE(start_two_region_cluster(data, base));
  const std::map<uint16_t, std::string> region_of = {
      {base, "eu"}, {base + 1, "us"}, {base + 2, "eu"}, {base + 3, "us"}};

  auto c = RedisClient::connect(base);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->cmd({"KEYSPACE", "CREATE", "g", "PARTITIONER", "geo", "GEO", "g:eu:=eu,g:us:=us,=eu",
                    "INNER", "ring", "VNODES", "16"}),
            "+OK");
  // Keys of each region, written through every node.
  std::map<std::string, std::string> region_of_key;
  int i = 0;
  for (const auto& [port, unused] : region_of) {
    auto w = RedisClient::connect(port);
    ASSERT_TRUE(w.ok());
    for (int n = 0; n < 25; ++n, ++i) {
      for (const char* region : {"eu", "us"}) {
        const std::string key = std::string("g:") + region + ":" + std::to_string(i);
        ASSERT_EQ(w->cmd({"SET", key, "v"}), "+OK") << key;
        region_of_key[key] = region;
      }
    }
  }
  // LOCATE puts each key on a node of its region...
  for (const auto& [key, region] : region_of_key) {
    auto where = c->command({"LOCATE", key});
    ASSERT_TRUE(where.ok());
    const size_t at = where->find("127.0.0.1:");
    ASSERT_NE(at, std::string::npos) << *where;
    const uint16_t port = static_cast<uint16_t>(std::atoi(where->c_str() + at + 10));
    EXPECT_EQ(region_of.at(port), region) << key << " is on port " << port;
  }
  // ...and each node's own store holds only its region's keys. (INFO's
  // per-keyspace counts are recomputed at most every 250 ms.)
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  long long eu = 0, us = 0;
  for (const auto& [port, region] : region_of) {
    auto node = RedisClient::connect(port);
    ASSERT_TRUE(node.ok());
    const long long here = local_keys(*node, "g");
    (region == "eu" ? eu : us) += here;
  }
  EXPECT_EQ(eu, 100);
  EXPECT_EQ(us, 100);
  // Every key reads back through a node of the other region.
  auto far = RedisClient::connect(base + 1);
  ASSERT_TRUE(far.ok());
  for (const auto& [key, region] : region_of_key) EXPECT_EQ(far->cmd({"GET", key}), "\"v\"");

  // A fifth node joins region us: only us keys move, some of them to it.
  auto add = run_statekv({"cluster", "add-node", "--region", "us", "--data", data});
  ASSERT_EQ(add.first, 0) << add.second;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::map<uint16_t, std::string> after = {
      {base, "eu"}, {base + 1, "us"}, {base + 2, "eu"}, {base + 3, "us"}, {base + 4, "us"}};
  eu = us = 0;
  long long on_new = 0;
  for (const auto& [port, region] : after) {
    auto node = RedisClient::connect(port);
    ASSERT_TRUE(node.ok());
    const long long here = local_keys(*node, "g");
    (region == "eu" ? eu : us) += here;
    if (port == base + 4) on_new = here;
  }
  EXPECT_EQ(eu, 100);
  EXPECT_EQ(us, 100);
  EXPECT_GT(on_new, 0) << "the new us node got none of region us's keys";
  for (const auto& [key, region] : region_of_key) EXPECT_EQ(far->cmd({"GET", key}), "\"v\"");
}

// The port LOCATE names for `key` (the first owner), or 0.
uint16_t located_port(RedisClient& c, const std::string& key) {
  auto where = c.command({"LOCATE", key});
  if (!where.ok()) return 0;
  const size_t at = where->find("127.0.0.1:");
  if (at == std::string::npos) return 0;
  return static_cast<uint16_t>(std::atoi(where->c_str() + at + 10));
}

// Inside a region, range (with default or with the user's split points) and
// slots place keys too, and a node joining a region takes keys of that region
// only. gr: INNER range over RESP (no split points: one shard per region); gs:
// INNER slots over RESP; gt: INNER range from a TOML file with split points
// (the same in every region).
TEST(Geo, InnerRangeAndSlotsKeepEachRegionsKeysInItsRegionAcrossAJoin) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  TempDir dir("geoinner");
  const std::string data = dir.path() + "/data";
  const uint16_t base = pick_cluster_base_port(5);
  ASSERT_NE(base, 0);
  LocalClusterGuard down{data};
  ASSERT_NO_FATAL_FAILURE(start_two_region_cluster(data, base));
  std::map<uint16_t, std::string> region_of = {
      {base, "eu"}, {base + 1, "us"}, {base + 2, "eu"}, {base + 3, "us"}};

  auto c = RedisClient::connect(base);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->cmd({"KEYSPACE", "CREATE", "gr", "PARTITIONER", "geo", "GEO", "gr:eu:=eu,=us",
                    "INNER", "range"}),
            "+OK");
  EXPECT_EQ(c->cmd({"KEYSPACE", "CREATE", "gs", "PARTITIONER", "geo", "GEO", "gs:eu:=eu,=us",
                    "INNER", "slots"}),
            "+OK");
  const std::string file = dir.path() + "/keyspaces.toml";
  std::ofstream(file) << "[[keyspace]]\nname = \"gt\"\npartitioner = \"geo\"\n"
                         "geo = { \"gt:eu:\" = \"eu\", \"\" = \"us\" }\ninner = \"range\"\n"
                         "splits = [\"gt:eu:5\", \"gt:us:5\"]\n";
  auto made = run_statekv({"cluster", "keyspaces", file, "--data", data});
  ASSERT_EQ(made.first, 0) << made.second;
  // Every node must know the keyspaces before keys are written through it:
  // KEYSPACE CREATE waits only for the node that answers, the CLI for none,
  // and a node that has not applied the map yet files the keys under
  // "default".
  const std::vector<std::string> keyspaces = {"gr", "gs", "gt"};
  for (const auto& [port, unused] : region_of) {
    auto node = RedisClient::connect(port);
    ASSERT_TRUE(node.ok());
    for (const std::string& ks : keyspaces) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (node->cmd({"LOCATE", ks + ":eu:0"}).find("\"" + ks + "\"") == std::string::npos) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << port << " never saw " << ks;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }

  // 100 keys per region and keyspace, written through every node.
  std::map<std::string, std::string> region_of_key;
  int i = 0;
  for (const auto& [port, unused] : region_of) {
    auto w = RedisClient::connect(port);
    ASSERT_TRUE(w.ok());
    for (int n = 0; n < 25; ++n, ++i) {
      for (const std::string& ks : keyspaces) {
        for (const char* region : {"eu", "us"}) {
          const std::string key = ks + ":" + region + ":" + std::to_string(i);
          ASSERT_EQ(w->cmd({"SET", key, "v"}), "+OK") << key;
          region_of_key[key] = region;
        }
      }
    }
  }
  // Every key is located on, stored on and read back from its region's nodes;
  // returns the keys of `keyspace` stored on `port`.
  auto far = RedisClient::connect(base + 1);
  ASSERT_TRUE(far.ok());
  const auto check = [&](const std::string& when, uint16_t port_of_interest,
                         const std::string& keyspace_of_interest) -> long long {
    SCOPED_TRACE(when);
    for (const auto& [key, region] : region_of_key) {
      const uint16_t port = located_port(*c, key);
      EXPECT_EQ(region_of.count(port) ? region_of.at(port) : "?", region)
          << key << " is on port " << port;
    }
    // (INFO's per-keyspace counts are recomputed at most every 250 ms.)
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    long long of_interest = 0;
    for (const std::string& ks : keyspaces) {
      long long eu = 0, us = 0;
      for (const auto& [port, region] : region_of) {
        auto node = RedisClient::connect(port);
        if (!node.ok()) {
          ADD_FAILURE() << "cannot connect to " << port;
          return -1;
        }
        const long long here = local_keys(*node, ks);
        (region == "eu" ? eu : us) += here;
        if (port == port_of_interest && ks == keyspace_of_interest) of_interest = here;
      }
      EXPECT_EQ(eu, 100) << ks;
      EXPECT_EQ(us, 100) << ks;
    }
    for (const auto& [key, region] : region_of_key) EXPECT_EQ(far->cmd({"GET", key}), "\"v\"");
    return of_interest;
  };
  check("after the writes", 0, "");

  // A fifth node joins region us: slots hand it a share of us's slots; gt's
  // node 2 holds two of us's three shards and hands it one; gr has one shard
  // per region and nothing to spare. Only us keys move.
  auto add = run_statekv({"cluster", "add-node", "--region", "us", "--data", data});
  ASSERT_EQ(add.first, 0) << add.second;
  region_of[base + 4] = "us";
  EXPECT_GT(check("after node 5 joined us", base + 4, "gs"), 0)
      << "the new us node got none of gs's us keys";
  auto fifth = RedisClient::connect(base + 4);
  ASSERT_TRUE(fifth.ok());
  EXPECT_GT(local_keys(*fifth, "gt"), 0) << "the new us node got none of gt's us keys";
  EXPECT_EQ(local_keys(*fifth, "gr"), 0);
}

TEST(Geo, KeyspacesFromATomlFileAreCreatedOnceAndBadOnesRefused) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  TempDir dir("keyspaces");
  const std::string data = dir.path() + "/data";
  const std::string file = dir.path() + "/keyspaces.toml";
  std::ofstream(file) << "[[keyspace]]\nname = \"users\"\npartitioner = \"ring\"\nvnodes = 32\n\n"
                         "[[keyspace]]\nname = \"places\"\npartitioner = \"geo\"\n"
                         "geo = { \"places:eu:\" = \"eu\", \"\" = \"us\" }\n";
  const uint16_t base = pick_cluster_base_port(2);
  ASSERT_NE(base, 0);
  auto up = run_statekv({"cluster", "up", "--nodes", "2", "--base-port", std::to_string(base),
                         "--data", data, "--regions", "eu,us", "--keyspaces", file, "--engine",
                         "memory", "--detach"});
  LocalClusterGuard down{data};
  ASSERT_EQ(up.first, 0) << up.second;
  auto c = RedisClient::connect(base + 1);
  ASSERT_TRUE(c.ok());
  const std::string list = c->cmd({"KEYSPACE", "LIST"});
  EXPECT_NE(list.find("users"), std::string::npos) << list;
  EXPECT_NE(list.find("places"), std::string::npos) << list;
  EXPECT_NE(c->cmd({"LOCATE", "users:1"}).find("ring"), std::string::npos);
  // Applying the file again changes nothing; a bad file is refused, clearly.
  auto again = run_statekv({"cluster", "keyspaces", file, "--data", data});
  EXPECT_EQ(again.first, 0) << again.second;
  EXPECT_NE(again.second.find("exists"), std::string::npos) << again.second;
  const std::string bad = dir.path() + "/bad.toml";
  std::ofstream(bad) << "[[keyspace]]\nname = \"bad\"\npartitioner = \"nope\"\n";
  auto refused = run_statekv({"cluster", "keyspaces", bad, "--data", data});
  EXPECT_EQ(refused.first, 1);
  EXPECT_NE(refused.second.find("unknown partitioner 'nope'"), std::string::npos) << refused.second;
}

}  // namespace
}  // namespace statekv::itest
