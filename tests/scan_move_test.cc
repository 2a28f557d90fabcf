// SCAN and KEYS through any node stay complete while keys move between nodes:
// Redis's promise that a full SCAN iteration returns every key present for the
// whole iteration, kept across `statekv cluster add-node` and `remove-node`.
// With the hash partitioner a join moves keys in every direction, also to
// nodes a node-by-node walk would already have passed (docs/routing.md).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/net.h"
#include "support/redis_client.h"
#include "support/server_process.h"
#include "support/statekv_cli.h"
#include "support/temp_dir.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kKeys = 3000;

std::string key_name(int i) {
  return "s:" + std::to_string(i);
}

struct Interval {
  Clock::time_point start, end;
  bool overlaps(const Interval& o) const { return start < o.end && o.start < end; }
};

// Full SCAN iterations, one after another, through one node.
class Scanner {
 public:
  explicit Scanner(uint16_t port) : port_(port), thread_([this] { run(); }) {}
  ~Scanner() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  struct Iteration {
    Interval when;
    std::vector<std::string> missing;  // of the kKeys keys, those not returned
    bool keys_complete = true;         // the KEYS s:* that followed it
  };
  std::vector<Iteration> completed() {
    std::lock_guard<std::mutex> lock(mu_);
    return completed_;
  }
  int errored() const { return errored_; }
  std::vector<std::string> errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }

 private:
  void run() {
    while (!stop_) {
      auto c = RedisClient::connect(port_, 5s);
      if (!c.ok()) {
        ++errored_;
        note_error(c.status().to_string());
        std::this_thread::sleep_for(50ms);
        continue;
      }
      Iteration it;
      it.when.start = Clock::now();
      std::set<std::string> seen;
      std::string cursor = "0";
      bool failed = false;
      do {
        auto page = c->scan({"SCAN", cursor, "COUNT", "100"});
        if (!page.ok()) {
          failed = true;  // a node left, or a move made the router give up
          note_error(page.status().to_string());
          break;
        }
        seen.insert(page->elements.begin(), page->elements.end());
        cursor = page->cursor;
        std::this_thread::sleep_for(3ms);  // so that one iteration spans a while
      } while (cursor != "0" && !stop_);
      if (stop_ && cursor != "0") break;
      it.when.end = Clock::now();
      if (failed) {
        ++errored_;
        continue;
      }
      for (int i = 0; i < kKeys; ++i) {
        if (!seen.count(key_name(i))) it.missing.push_back(key_name(i));
      }
      auto keys = c->bulk_array({"KEYS", "s:*"});
      if (keys.ok()) {
        const std::set<std::string> listed(keys->begin(), keys->end());
        for (int i = 0; i < kKeys && it.keys_complete; ++i) {
          it.keys_complete = listed.count(key_name(i)) > 0;
        }
      }
      std::lock_guard<std::mutex> lock(mu_);
      completed_.push_back(std::move(it));
    }
  }

  void note_error(std::string e) {
    std::lock_guard<std::mutex> lock(mu_);
    if (errors_.size() < 3) errors_.push_back(std::move(e));
  }

  uint16_t port_;
  std::vector<std::string> errors_;  // the first few, for the log
  std::atomic<bool> stop_{false};
  std::atomic<int> errored_{0};
  std::mutex mu_;
  std::vector<Iteration> completed_;
  std::thread thread_;
};

// Full SCANs and KEYS through every node while a node joins and another
// leaves, over a default keyspace of `replication`: none (keys move between
// nodes) or consensus (replicas move; the groups' pages come from their
// leaders, which change as replicas move).
void full_scans_while_nodes_join_and_leave(const std::string& replication) {
  TempDir dir("scanmove");
  const std::string data = dir.path() + "/data";
  const uint16_t base = pick_cluster_base_port(5);
  ASSERT_NE(base, 0);
  auto up = run_statekv({"cluster", "up", "--nodes", "3", "--base-port", std::to_string(base),
                         "--data", data, "--partitioner", "hash", "--engine", "memory",
                         "--replication", replication, "--detach"});
  LocalClusterGuard down{data};
  ASSERT_EQ(up.first, 0) << up.second;

  {
    auto c = RedisClient::connect(base);
    ASSERT_TRUE(c.ok());
    // SETs, pipelined (an MSET of a consensus keyspace's keys must keep to
    // one shard).
    for (int i = 0; i < kKeys; ++i) c->append({"SET", key_name(i), "v" + std::to_string(i)});
    for (int i = 0; i < kKeys; ++i) {
      auto r = c->read_reply();
      ASSERT_TRUE(r.ok() && *r == "+OK") << (r.ok() ? *r : r.status().to_string());
    }
    ASSERT_EQ(*c->integer({"DBSIZE"}), kKeys);
  }

  std::vector<std::unique_ptr<Scanner>> scanners;
  for (uint16_t p = base; p < base + 3; ++p) scanners.push_back(std::make_unique<Scanner>(p));
  std::this_thread::sleep_for(300ms);

  Interval add;
  add.start = Clock::now();
  auto added = run_statekv({"cluster", "add-node", "--data", data});
  add.end = Clock::now();
  ASSERT_EQ(added.first, 0) << added.second;
  scanners.push_back(std::make_unique<Scanner>(static_cast<uint16_t>(base + 3)));
  std::this_thread::sleep_for(300ms);

  // Node 1's keys leave for the others; its scanner's iterations then fail.
  Interval remove;
  remove.start = Clock::now();
  auto removed = run_statekv({"cluster", "remove-node", "--id", "1", "--data", data});
  remove.end = Clock::now();
  ASSERT_EQ(removed.first, 0) << removed.second;
  std::this_thread::sleep_for(300ms);
  for (auto& s : scanners) s->stop();

  int completed = 0, errored = 0, over_add = 0, over_remove = 0;
  for (auto& s : scanners) {
    errored += s->errored();
    for (const std::string& e : s->errors()) std::printf("scan error: %s\n", e.c_str());
    for (const Scanner::Iteration& it : s->completed()) {
      ++completed;
      over_add += it.when.overlaps(add) ? 1 : 0;
      over_remove += it.when.overlaps(remove) ? 1 : 0;
      EXPECT_TRUE(it.missing.empty())
          << "a full SCAN missed " << it.missing.size() << " keys, e.g. " << it.missing.front()
          << (it.when.overlaps(add) ? " (during add-node)" : "")
          << (it.when.overlaps(remove) ? " (during remove-node)" : "");
      EXPECT_TRUE(it.keys_complete) << "KEYS s:* missed keys";
    }
  }
  std::printf(
      "scan iterations: %d complete (%d during add-node, %d during remove-node), %d errored\n",
      completed, over_add, over_remove, errored);
  EXPECT_GE(over_add, 1) << "no full scan overlapped the add-node move: the test proved nothing";
  EXPECT_GE(over_remove, 1) << "no full scan overlapped the remove-node move";
  EXPECT_LE(errored, completed) << "more than half of the scans failed";

  auto c = RedisClient::connect(static_cast<uint16_t>(base + 1));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c->integer({"DBSIZE"}), kKeys);
  std::set<std::string> all;
  std::string cursor = "0";
  do {
    auto page = c->scan({"SCAN", cursor, "COUNT", "500"});
    ASSERT_TRUE(page.ok()) << page.status().to_string();
    all.insert(page->elements.begin(), page->elements.end());
    cursor = page->cursor;
  } while (cursor != "0");
  EXPECT_EQ(all.size(), static_cast<size_t>(kKeys));
}

TEST(ScanMove, FullScansMissNoKeyWhileNodesJoinAndLeave) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  full_scans_while_nodes_join_and_leave("none");
}

TEST(ScanMove, FullScansOfAConsensusKeyspaceMissNoKeyWhileReplicasMove) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  full_scans_while_nodes_join_and_leave("consensus");
}

}  // namespace
}  // namespace statekv::itest
