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
#include "support/net.h"
#include "support/redis_client.h"
#include "support/statekv_cli.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Clients that read and write a few keys through random nodes, recording a history.
class Clients {
 public:
  Clients(std::vector<uint16_t> ports, size_t n, size_t keys) : ports_(std::move(ports)) {
    start_ = Clock::now();
    for (size_t c = 0; c < n; ++c) {
      threads_.emplace_back([this, c, keys] { run(static_cast<int64_t>(c), keys); });
    }
  }
  ~Clients() { stop(); }

  void set_ports(std::vector<uint16_t> ports) {
    std::lock_guard<std::mutex> lock(mu_);
    ports_ = std::move(ports);
  }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  check::History history() {
    std::lock_guard<std::mutex> lock(mu_);
    return history_;
  }
  size_t ok_count() const { return ok_; }

 private:
  int64_t now() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_).count();
  }
  void record(check::Event e) {
    std::lock_guard<std::mutex> lock(mu_);
    history_.push_back(std::move(e));
  }
  uint16_t pick_port(std::mt19937& rng) {
    std::lock_guard<std::mutex> lock(mu_);
    return ports_[rng() % ports_.size()];
  }

  void run(int64_t client, size_t keys) {
    std::mt19937 rng(static_cast<unsigned>(client) + 1);
    // A process that saw an unknown outcome continues as a new process (Jepsen).
    int64_t process = client;
    uint64_t next_value = 0;
    std::optional<RedisClient> conn;
    uint16_t port = 0;
    while (!stop_) {
      if (!conn || rng() % 20 == 0) {  // hop between nodes now and then
        port = pick_port(rng);
        auto c = RedisClient::connect(port, 2s);
        if (!c.ok()) {
          conn.reset();
          std::this_thread::sleep_for(20ms);
          continue;
        }
        conn.emplace(std::move(c).value());
      }
      const std::string key = "k" + std::to_string(rng() % keys);
      const bool write = rng() % 2 == 0;
      check::Event invoke;
      invoke.process = process;
      invoke.type = check::EventType::kInvoke;
      invoke.f = write ? check::OpFunction::kWrite : check::OpFunction::kRead;
      invoke.key = key;
      std::string value;
      if (write) {
        value = "c" + std::to_string(client) + "-" + std::to_string(next_value++);
        invoke.value = value;
      }
      invoke.time = now();
      record(invoke);
      auto reply = write ? conn->command({"SET", key, value}) : conn->command({"GET", key});
      check::Event done = invoke;
      done.time = now();
      if (!reply.ok()) {
        // The connection broke: a write may or may not have happened.
        done.type = write ? check::EventType::kInfo : check::EventType::kFail;
        if (!write) done.value.reset();
        record(done);
        if (write) process += 1000;
        conn.reset();
        continue;
      }
      const std::string& r = *reply;
      if (!r.empty() && r[0] == '-') {
        // An error reply: routing or a node failed. Reads certainly did not
        // happen; a write's fate is unknown (it may have reached the owner).
        done.type = write ? check::EventType::kInfo : check::EventType::kFail;
        if (!write) done.value.reset();
        record(done);
        if (write) process += 1000;
        continue;
      }
      done.type = check::EventType::kOk;
      if (!write) {
        if (r == "(nil)") {
          done.value.reset();
        } else if (r.size() >= 2 && r.front() == '"' && r.back() == '"') {
          done.value = r.substr(1, r.size() - 2);
        } else {
          done.value = r;
        }
      }
      record(done);
      ++ok_;
    }
  }

  std::mutex mu_;
  std::vector<uint16_t> ports_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> ok_{0};
  Clock::time_point start_;
  check::History history_;
};

TEST(Rebalance, AddThenRemoveANodeUnderLoadStaysLinearizable) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  TempDir dir("rebalance");
  const std::string data = dir.path() + "/data";
  const uint16_t base = pick_cluster_base_port(5);
  ASSERT_NE(base, 0);
  auto up = run_statekv({"cluster", "up", "--nodes", "3", "--base-port", std::to_string(base),
                         "--data", data, "--partitioner", "slots", "--engine", "memory",
                         "--detach"});
  LocalClusterGuard down{data};
  ASSERT_EQ(up.first, 0) << up.second;

  std::vector<uint16_t> ports = {base, static_cast<uint16_t>(base + 1),
                                 static_cast<uint16_t>(base + 2)};
  Clients clients(ports, 6, 12);
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

}  // namespace
}  // namespace statekv::itest
