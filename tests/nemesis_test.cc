// Faults in random order, as Jepsen's nemesis runs them: three statekv nodes,
// each in a network namespace of its own (support/netns_lab.h), a factor-3
// consensus keyspace, clients reading and writing through every node, and one
// fault at a time picked by a seeded schedule: a node cut off from the others,
// one node no longer hearing another (one way), a node killed with SIGKILL and
// started again on its data directory, a node paused with SIGSTOP (a process
// that stalls, a GC pause or a VM migration would, and then wakes believing
// what it believed before) and continued. Then everything heals and every
// node must serve again; the clients' history is judged by `statekv check
// linearizable`, every node must answer every key as the others do, and what
// the faults cost is printed (operations refused or unknown, the longest time
// without an acknowledged operation).
//
// The schedule's seed is printed; STATEKV_NEMESIS_SEED replays one. The
// default run has 20 s of faults; the soak test (ctest -L soak) 300 s, or
// STATEKV_NEMESIS_SECONDS.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "check/history.h"
#include "support/history_clients.h"
#include "support/netns_lab.h"
#include "support/redis_client.h"
#include "support/server_process.h"
#include "support/statekv_cli.h"
#include "support/temp_dir.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr uint16_t kPort = 7001;  // every node, in its own namespace
constexpr int kNodes = 3;

// The three nodes: started, killed, started again, paused and continued by pid.
class Nodes {
 public:
  Nodes(NetnsLab& lab, std::string dir, std::string engine)
      : lab_(lab), dir_(std::move(dir)), engine_(std::move(engine)) {
    pids_.assign(kNodes + 1, -1);
    starts_.assign(kNodes + 1, 0);
  }
  ~Nodes() {
    for (int k = 1; k <= kNodes; ++k) kill(k);
  }
  Nodes(const Nodes&) = delete;
  Nodes& operator=(const Nodes&) = delete;

  Status start(int k) {
    const std::string peers =
        "1=" + lab_.ip(1) + ":17001,2=" + lab_.ip(2) + ":17001,3=" + lab_.ip(3) + ":17001";
    const std::string log =
        dir_ + "/node" + std::to_string(k) + "." + std::to_string(++starts_[k]) + ".log";
    auto pid = lab_.spawn(
        k,
        {statekv_binary(), "server", "--bind", lab_.ip(k), "--port", std::to_string(kPort),
         "--node-id", std::to_string(k), "--peers", peers, "--cluster-secret", "nemesis-test",
         "--data", dir_ + "/node" + std::to_string(k), "--engine", engine_},
        log);
    if (!pid.ok()) return pid.status();
    pids_[k] = *pid;
    return Status::OK();
  }
  // SIGKILL (a paused node too) and reap.
  void kill(int k) {
    if (pids_[k] <= 0) return;
    ::kill(pids_[k], SIGKILL);
    ::waitpid(pids_[k], nullptr, 0);
    pids_[k] = -1;
  }
  void pause(int k) {
    if (pids_[k] > 0) ::kill(pids_[k], SIGSTOP);
  }
  void resume(int k) {
    if (pids_[k] > 0) ::kill(pids_[k], SIGCONT);
  }
  bool running(int k) const { return pids_[k] > 0; }
  // Whether node k's process exited on its own (a crash: the test fails).
  bool exited(int k) {
    if (pids_[k] <= 0) return false;
    int status = 0;
    if (::waitpid(pids_[k], &status, WNOHANG) != pids_[k]) return false;
    pids_[k] = -1;
    return true;
  }

 private:
  NetnsLab& lab_;
  std::string dir_;
  std::string engine_;
  std::vector<pid_t> pids_;
  std::vector<int> starts_;
};

uint64_t seed_from_env_or_clock() {
  if (const char* s = std::getenv("STATEKV_NEMESIS_SEED")) return std::strtoull(s, nullptr, 10);
  return static_cast<uint64_t>(Clock::now().time_since_epoch().count()) % 1000000;
}

// The longest stretch of the history with no operation acknowledged.
int64_t longest_gap_ms(const check::History& history) {
  std::vector<int64_t> acks;
  for (const check::Event& e : history) {
    if (e.type == check::EventType::kOk) acks.push_back(e.time);
  }
  std::sort(acks.begin(), acks.end());
  int64_t gap = 0;
  for (size_t i = 1; i < acks.size(); ++i) gap = std::max(gap, acks[i] - acks[i - 1]);
  return gap / 1'000'000;  // history times are in nanoseconds
}

void run_nemesis(std::chrono::seconds faults_for) {
  auto made = NetnsLab::create(kNodes);
  if (!made.ok()) GTEST_SKIP() << "no network namespaces here: " << made.status().message();
  NetnsLab& lab = **made;
  lab.set_resp_port(kPort);
  const uint64_t seed = seed_from_env_or_clock();
  std::mt19937_64 rng(seed);
  // Both engines: RocksDB keeps its state across a kill (the groups' logs
  // compact behind it), the memory engine is rebuilt from the log.
  const std::string engine = seed % 2 == 0 ? "rocksdb" : "memory";
  std::printf("nemesis seed %llu (STATEKV_NEMESIS_SEED replays it), engine %s, %lld s of faults\n",
              static_cast<unsigned long long>(seed), engine.c_str(),
              static_cast<long long>(faults_for.count()));
  TempDir dir("nemesis");
  Nodes nodes(lab, dir.path(), engine);
  for (int k = 1; k <= kNodes; ++k) ASSERT_TRUE(nodes.start(k).ok());
  for (int k = 1; k <= kNodes; ++k) {
    ASSERT_TRUE(lab.eventually(k, {"PING"}, "+PONG", 20s)) << "node " << k << " did not start";
  }
  ASSERT_TRUE(lab.eventually(
      1, {"KEYSPACE", "CREATE", "rep", "PREFIX", "r:", "REPLICATION", "consensus", "FACTOR", "3"},
      "+OK", 20s));
  for (int k = 1; k <= kNodes; ++k) {
    ASSERT_TRUE(lab.eventually(k, {"SET", "r:warm", "x"}, "+OK", 10s));
  }

  HistoryClients::Options options;
  options.clients = 6;
  options.keys = 8;
  options.key_prefix = "r:";
  options.hosts = {lab.ip(1), lab.ip(2), lab.ip(3)};
  HistoryClients clients({kPort, kPort, kPort}, options);
  std::this_thread::sleep_for(500ms);

  const auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const auto hold = [&] { return std::chrono::milliseconds(pick(800, 3000)); };
  size_t faults = 0;
  const auto until = Clock::now() + faults_for;
  while (Clock::now() < until) {
    const int k = pick(1, kNodes);
    const int other = 1 + (k - 1 + pick(1, kNodes - 1)) % kNodes;
    const auto held = hold();
    std::string what;
    switch (pick(0, 3)) {
      case 0:
        what = "node " + std::to_string(k) + " cut off";
        ASSERT_TRUE(lab.isolate(k, {1 + k % kNodes, 1 + (k + 1) % kNodes}).ok());
        std::this_thread::sleep_for(held);
        ASSERT_TRUE(lab.heal().ok());
        break;
      case 1:
        what = "node " + std::to_string(other) + " does not hear node " + std::to_string(k);
        ASSERT_TRUE(lab.drop(k, other).ok());
        std::this_thread::sleep_for(held);
        ASSERT_TRUE(lab.heal().ok());
        break;
      case 2:
        what = "node " + std::to_string(k) + " killed (SIGKILL), started again";
        nodes.kill(k);
        std::this_thread::sleep_for(held);
        ASSERT_TRUE(nodes.start(k).ok());
        break;
      default:
        what = "node " + std::to_string(k) + " paused (SIGSTOP), continued";
        nodes.pause(k);
        std::this_thread::sleep_for(held);
        nodes.resume(k);
        break;
    }
    ++faults;
    std::printf("  fault %zu: %s for %lld ms\n", faults, what.c_str(),
                static_cast<long long>(held.count()));
    for (int n = 1; n <= kNodes; ++n) {
      ASSERT_FALSE(nodes.exited(n))
          << "node " << n << " exited on its own: see " << dir.path() << "/node" << n << ".*.log";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(pick(300, 1500)));
  }

  // Everything heals: every node serves every key again.
  ASSERT_TRUE(lab.heal().ok());
  for (int k = 1; k <= kNodes; ++k) {
    nodes.resume(k);
    if (!nodes.running(k)) {
      ASSERT_TRUE(nodes.start(k).ok());
    }
  }
  for (int k = 1; k <= kNodes; ++k) {
    EXPECT_TRUE(lab.eventually(k, {"SET", "r:healed", std::to_string(k)}, "+OK", 20s))
        << "node " << k << " does not serve after the faults healed";
  }
  std::this_thread::sleep_for(1s);
  clients.stop();

  const check::History history = clients.history();
  std::printf(
      "%zu faults; clients: %zu operations acknowledged, %zu failed or unknown; longest time "
      "without an acknowledged operation: %lld ms\n",
      faults, clients.ok_count(), clients.error_count(),
      static_cast<long long>(longest_gap_ms(history)));
  EXPECT_GT(clients.ok_count(), 100u);
  const std::string file = dir.path() + "/history.jsonl";
  ASSERT_TRUE(check::write_history_file(file, history).ok());
  auto verdict = run_statekv({"check", "linearizable", file});
  EXPECT_EQ(verdict.first, 0) << "seed " << seed << ": " << verdict.second;
  if (verdict.first != 0) {
    const std::string kept = "/tmp/statekv-nemesis-history-" + std::to_string(seed) + ".jsonl";
    std::filesystem::copy_file(file, kept, std::filesystem::copy_options::overwrite_existing);
    std::printf("history kept at %s\n", kept.c_str());
  }
  // Every node answers every key as the others do: a linearizable read
  // through each, and each member's own applied state (eventual) caught up.
  for (size_t i = 0; i < options.keys; ++i) {
    const std::string key = "r:k" + std::to_string(i);
    const std::string want = lab.cmd(1, {"GET", key});
    for (int k = 1; k <= kNodes; ++k) {
      EXPECT_EQ(lab.cmd(k, {"GET", key}), want) << key << " through node " << k;
      EXPECT_TRUE(lab.eventually(k, {"WITH", "eventual", "GET", key}, want, 10s))
          << key << ": node " << k << "'s replica";
    }
  }
}

TEST(Nemesis, RandomFaultsLoseNothingAcknowledgedAndKeepTheHistoryLinearizable) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  run_nemesis(std::chrono::seconds(20));
}

TEST(Nemesis, SoakRandomFaultsLoseNothingAcknowledgedAndKeepTheHistoryLinearizable) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  const char* s = std::getenv("STATEKV_NEMESIS_SECONDS");
  run_nemesis(std::chrono::seconds(s != nullptr ? std::atoi(s) : 300));
}

}  // namespace
}  // namespace statekv::itest
