// Live rebalancing with real processes: a local cluster made by
// `statekv cluster up`, clients reading and writing through every node while
// `statekv cluster add-node` and `remove-node` move keys, and the clients'
// history judged by `statekv check linearizable`.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "check/history.h"
#include "support/history_clients.h"
#include "support/net.h"
#include "support/raw_client.h"
#include "support/redis_client.h"
#include "support/server_process.h"
#include "support/statekv_cli.h"
#include "support/temp_dir.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(Rebalance, AddThenRemoveANodeUnderLoadStaysLinearizable) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  TempDir dir("rebalance");
  const std::string data = dir.path() + "/data";
  const uint16_t base = pick_cluster_base_port(5);
  ASSERT_NE(base, 0);
  auto up = run_statekv({"cluster", "up", "--nodes", "3", "--base-port", std::to_string(base),
                         "--data", data, "--partitioner", "slots", "--engine", "memory",
                         "--replication", "none", "--detach"});
  LocalClusterGuard down{data};
  ASSERT_EQ(up.first, 0) << up.second;

  std::vector<uint16_t> ports = {base, static_cast<uint16_t>(base + 1),
                                 static_cast<uint16_t>(base + 2)};
  HistoryClients clients(ports, 6, 12);
  std::this_thread::sleep_for(500ms);

  auto add = run_statekv({"cluster", "add-node", "--data", data});
  ASSERT_EQ(add.first, 0) << add.second;
  EXPECT_NE(add.second.find("moved keyspace default"), std::string::npos) << add.second;
  ports.push_back(static_cast<uint16_t>(base + 3));
  clients.set_ports(ports);
  std::this_thread::sleep_for(500ms);

  // Clients stop using node 2 before it goes; those connected at the time
  // see their connection close.
  clients.set_ports({base, static_cast<uint16_t>(base + 2), static_cast<uint16_t>(base + 3)});
  auto remove = run_statekv({"cluster", "remove-node", "--id", "2", "--data", data});
  ASSERT_EQ(remove.first, 0) << remove.second;
  std::this_thread::sleep_for(500ms);
  clients.stop();

  const check::History history = clients.history();
  EXPECT_GT(clients.ok_count(), 200u) << "too little load to mean anything";
  const std::string file = dir.path() + "/history.jsonl";
  ASSERT_TRUE(check::write_history_file(file, history).ok());
  auto verdict = run_statekv({"check", "linearizable", file});
  EXPECT_EQ(verdict.first, 0) << verdict.second;

  // Every key is served, from every remaining node, by its one owner.
  auto c = RedisClient::connect(base);
  ASSERT_TRUE(c.ok());
  auto dbsize = c->integer({"DBSIZE"});
  ASSERT_TRUE(dbsize.ok());
  EXPECT_LE(*dbsize, 12);
}

// A client pipelining INCR and GET on its own keys through node 1: each reply
// must be what the commands give when they take effect in the order sent,
// also while keys move and routes go stale in the middle of its pipelines.
class PipelineClient {
 public:
  PipelineClient(uint16_t port, int id) : port_(port), id_(id) {
    thread_ = std::thread([this] { run(); });
  }
  ~PipelineClient() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  size_t ok() const { return ok_; }
  size_t errors() const { return errors_; }
  std::string violations() {
    std::lock_guard<std::mutex> lock(mu_);
    return violations_;
  }

 private:
  void violation(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    if (violations_.size() < 2000) violations_ += what + "\n";
  }

  void run() {
    auto c = RawClient::connect(port_);
    if (!c.ok()) {
      violation("cannot connect: " + c.status().to_string());
      return;
    }
    std::mt19937 rng(static_cast<unsigned>(id_) + 100);
    // Per key, the range its value may be in: an INCR that got an error may
    // or may not have happened.
    std::map<std::string, std::pair<int64_t, int64_t>> range;
    while (!stop_) {
      std::string batch;
      std::vector<std::pair<bool, std::string>> sent;  // (incr, key)
      for (int i = 0; i < 64; ++i) {
        const std::string key = "p" + std::to_string(id_) + ":" + std::to_string(rng() % 16);
        const bool incr = rng() % 3 != 0;
        batch += encode_command({incr ? "INCR" : "GET", key});
        sent.emplace_back(incr, key);
      }
      if (!c->send(batch).ok()) {
        violation("send failed");
        return;
      }
      for (const auto& [incr, key] : sent) {
        auto r = c->read_reply();
        if (!r.ok()) {
          violation("no reply: " + r.status().to_string());
          return;
        }
        auto& [lo, hi] = range[key];
        const std::string& b = r->bytes;
        if (b[0] == '-') {
          ++errors_;
          if (incr) ++hi;
          continue;
        }
        int64_t v = 0;
        if (b[0] == ':') {
          v = std::atoll(b.c_str() + 1);
        } else if (b[0] == '$' && b != "$-1\r\n") {
          v = std::atoll(b.c_str() + b.find('\n') + 1);
        }
        const int64_t want_lo = incr ? lo + 1 : lo, want_hi = incr ? hi + 1 : hi;
        if (v < want_lo || v > want_hi) {
          violation((incr ? "INCR " : "GET ") + key + " gave " + std::to_string(v) + ", expected " +
                    std::to_string(want_lo) + ".." + std::to_string(want_hi));
        }
        lo = hi = v;
        ++ok_;
      }
    }
  }

  uint16_t port_;
  int id_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> ok_{0};
  std::atomic<size_t> errors_{0};
  std::mutex mu_;
  std::string violations_;
};

TEST(Rebalance, PipelinedClientsKeepTheirOrderWhileKeysMove) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  TempDir dir("rebalance-pipe");
  const std::string data = dir.path() + "/data";
  const uint16_t base = pick_cluster_base_port(5);
  ASSERT_NE(base, 0);
  auto up =
      run_statekv({"cluster", "up", "--nodes", "3", "--base-port", std::to_string(base), "--data",
                   data, "--partitioner", "slots", "--engine", "memory", "--replication", "none",
                   "--detach"});
  LocalClusterGuard down{data};
  ASSERT_EQ(up.first, 0) << up.second;

  std::vector<std::unique_ptr<PipelineClient>> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(std::make_unique<PipelineClient>(base, i));
  std::this_thread::sleep_for(300ms);
  auto add = run_statekv({"cluster", "add-node", "--data", data});
  ASSERT_EQ(add.first, 0) << add.second;
  std::this_thread::sleep_for(300ms);
  auto remove = run_statekv({"cluster", "remove-node", "--id", "2", "--data", data});
  ASSERT_EQ(remove.first, 0) << remove.second;
  std::this_thread::sleep_for(300ms);
  size_t ok = 0, errors = 0;
  for (auto& c : clients) {
    c->stop();
    EXPECT_EQ(c->violations(), "");
    ok += c->ok();
    errors += c->errors();
  }
  EXPECT_GT(ok, 2000u) << "too little load to mean anything";
  EXPECT_LT(errors, ok / 10) << "errors: " << errors;
}

}  // namespace
}  // namespace statekv::itest
