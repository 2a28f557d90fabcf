// Faults in random order, as Jepsen's nemesis runs them: three statekv nodes,
// each in a network namespace of its own (support/netns_lab.h), a factor-3
// consensus keyspace, clients reading and writing through every node, and one
// fault at a time picked by a seeded schedule: a node cut off from the others,
// one node no longer hearing another (one way), a node killed with SIGKILL and
// started again on its data directory (or killed once more while it
// recovers, then started), a node paused with SIGSTOP (a process
// that stalls, a GC pause or a VM migration would, and then wakes believing
// what it believed before) and continued; one time in four a second fault on
// another node overlaps the first. Sessions at a weaker level (sequential or
// causal) run beside the linearizable clients, carrying their tokens across
// nodes, and so do clients that pipeline 8 commands at a time. Then
// everything heals and every node must serve again; the clients'
// history is judged by `statekv check linearizable`, the sessions' by their
// level's checker and `session`, every node must answer every key as the
// others do, and what the faults cost is printed (operations refused or
// unknown, the longest time without an acknowledged operation).
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
#include "support/nemesis_seed.h"
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
    const std::string node = dir_ + "/node" + std::to_string(k);
    auto pid = lab_.spawn_statekv(k, node, engine_, "nemesis-test",
                                  node + "." + std::to_string(++starts_[k]) + ".log");
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

void keep_logs(const std::string& dir, uint64_t seed);

// `history` judged by `statekv check MODEL`: it must hold; a history that
// does not is kept as /tmp/statekv-nemesis-NAME-SEED.jsonl.
void judge(const check::History& history, const std::string& model, const std::string& name,
           const std::string& dir, uint64_t seed) {
  const std::string file = dir + "/" + name + ".jsonl";
  ASSERT_TRUE(check::write_history_file(file, history).ok());
  auto verdict = run_statekv({"check", model, file});
  EXPECT_EQ(verdict.first, 0) << "seed " << seed << ", " << name << ", " << model << ": "
                              << verdict.second;
  if (verdict.first == 0) return;
  const std::string kept = "/tmp/statekv-nemesis-" + name + "-" + std::to_string(seed) + ".jsonl";
  std::filesystem::copy_file(file, kept, std::filesystem::copy_options::overwrite_existing);
  std::printf("%s history kept at %s\n", name.c_str(), kept.c_str());
}

void run_nemesis(std::chrono::seconds faults_for) {
  auto made = NetnsLab::create(kNodes);
  if (!made.ok()) GTEST_SKIP() << "no network namespaces here: " << made.status().message();
  NetnsLab& lab = **made;
  lab.set_resp_port(kPort);
  const uint64_t seed = nemesis_seed();
  std::mt19937_64 rng(seed);
  // Both engines: RocksDB keeps its state across a kill (the groups' logs
  // compact behind it), the memory engine is rebuilt from the log.
  const std::string engine = seed % 2 == 0 ? "rocksdb" : "memory";
  std::printf("nemesis seed %llu (STATEKV_NEMESIS_SEED replays it), engine %s, %lld s of faults\n",
              static_cast<unsigned long long>(seed), engine.c_str(),
              static_cast<long long>(faults_for.count()));
  TempDir dir("nemesis");
  struct KeepLogs {
    const std::string& dir;
    uint64_t seed;
    ~KeepLogs() { keep_logs(dir, seed); }
  } keep{dir.path(), seed};
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
  // Sessions at a level below linearizable beside them, each carrying its
  // SESSION TOKEN when it hops to another node (reads served by followers):
  // judged by that level's checker and the session checker.
  const std::string level = seed % 3 == 0 ? "causal" : "sequential";
  HistoryClients::Options weak = options;
  weak.clients = 4;
  weak.keys = 6;
  weak.key_prefix = "r:s:";
  weak.consistency = level;
  weak.carry_session = true;
  HistoryClients sessions({kPort, kPort, kPort}, weak);
  // Pipelining clients (8 commands at a time, routed and forwarded as
  // pipelines: a pipeline broken by a fault is sent again a command at a
  // time), judged linearizable on keys of their own.
  HistoryClients::Options piped = options;
  piped.clients = 3;
  piped.keys = 6;
  piped.key_prefix = "r:p:";
  piped.pipeline = 8;
  HistoryClients pipelined({kPort, kPort, kPort}, piped);
  std::this_thread::sleep_for(500ms);

  const auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const auto hold = [&] { return std::chrono::milliseconds(pick(800, 3000)); };
  size_t faults = 0;
  const auto until = Clock::now() + faults_for;
  // One fault, begun and ended (a network fault ends with a heal of every
  // rule, so two at once are ended together).
  struct Fault {
    int kind = 0;  // 0 cut off, 1 one way, 2 killed, 3 paused, 4 killed again while recovering
    std::chrono::milliseconds recovering{0};  // kind 4: how long it ran before the second kill
    int node = 0;
    int other = 0;  // kind 1: the node that stops hearing `node`
    std::string what() const {
      const std::string n = "node " + std::to_string(node);
      switch (kind) {
        case 0:
          return n + " cut off";
        case 1:
          return "node " + std::to_string(other) + " does not hear " + n;
        case 2:
          return n + " killed (SIGKILL), started again";
        case 3:
          return n + " paused (SIGSTOP), continued";
        default:
          return n + " killed, started, killed again " + std::to_string(recovering.count()) +
                 " ms into its recovery, started again";
      }
    }
  };
  const auto begin = [&](const Fault& f) {
    switch (f.kind) {
      case 0:
        return lab.isolate(f.node, {1 + f.node % kNodes, 1 + (f.node + 1) % kNodes});
      case 1:
        return lab.drop(f.node, f.other);
      case 2:
      case 4:
        nodes.kill(f.node);
        return Status::OK();
      default:
        nodes.pause(f.node);
        return Status::OK();
    }
  };
  const auto end = [&](const Fault& f) {
    switch (f.kind) {
      case 0:
      case 1:
        return lab.heal();
      case 2:
        return nodes.start(f.node);
      case 3:
        nodes.resume(f.node);
        return Status::OK();
      default: {
        // Killed again while it replays its log, restores or catches up:
        // what it wrote while starting must not spoil the next start.
        if (Status s = nodes.start(f.node); !s.ok()) return s;
        std::this_thread::sleep_for(f.recovering);
        nodes.kill(f.node);
        std::this_thread::sleep_for(200ms);
        return nodes.start(f.node);
      }
    }
  };
  const auto any_fault = [&](int node) {
    Fault f;
    f.kind = pick(0, 4);
    f.recovering = std::chrono::milliseconds(pick(50, 800));
    f.node = node;
    f.other = 1 + (node - 1 + pick(1, kNodes - 1)) % kNodes;
    return f;
  };
  size_t overlapping = 0;
  while (Clock::now() < until) {
    // Mostly one fault at a time (a majority stays up); one time in four a
    // second one on another node overlaps it, which may leave no majority
    // for a while: nothing acknowledged may be lost to that either.
    std::vector<Fault> now = {any_fault(pick(1, kNodes))};
    if (pick(0, 3) == 0) {
      now.push_back(any_fault(1 + (now[0].node - 1 + pick(1, kNodes - 1)) % kNodes));
      ++overlapping;
    }
    const auto held = hold();
    const int64_t began = clients.now();
    std::string what;
    for (const Fault& f : now) {
      ASSERT_TRUE(begin(f).ok()) << f.what();
      what += (what.empty() ? "" : " and ") + f.what();
      if (now.size() > 1) std::this_thread::sleep_for(held / 3);
    }
    std::this_thread::sleep_for(held);
    for (auto f = now.rbegin(); f != now.rend(); ++f) ASSERT_TRUE(end(*f).ok()) << f->what();
    ++faults;
    std::printf("  fault %zu at %.1f s: %s for %lld ms\n", faults, static_cast<double>(began) / 1e9,
                what.c_str(), static_cast<long long>(held.count()));
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
  sessions.stop();
  pipelined.stop();

  const check::History history = clients.history();
  const auto gap = longest_gap_ms(history);
  std::printf(
      "%zu faults (%zu with another overlapping); clients: %zu operations acknowledged, %zu "
      "failed or unknown; longest time without an acknowledged operation: %lld ms (from %.1f "
      "s); %s sessions: %zu acknowledged, %zu failed or unknown\n",
      faults, overlapping, clients.ok_count(), clients.error_count(),
      static_cast<long long>(gap.first), static_cast<double>(gap.second) / 1e3, level.c_str(),
      sessions.ok_count(), sessions.error_count());
  EXPECT_GT(clients.ok_count(), 100u);
  std::printf("pipelined clients: %zu acknowledged, %zu failed or unknown\n", pipelined.ok_count(),
              pipelined.error_count());
  EXPECT_GT(pipelined.ok_count(), 100u);
  EXPECT_GT(sessions.ok_count(), 50u);
  judge(history, "linearizable", "history", dir.path(), seed);
  judge(pipelined.history(), "linearizable", "pipelined", dir.path(), seed);
  judge(sessions.history(), level, "sessions", dir.path(), seed);
  judge(sessions.history(), "session", "sessions", dir.path(), seed);
  // Every node answers every key as the others do: a linearizable read
  // through each, and each member's own applied state (eventual) caught up.
  std::vector<std::string> keys;
  for (size_t i = 0; i < options.keys; ++i) keys.push_back("r:k" + std::to_string(i));
  for (size_t i = 0; i < weak.keys; ++i) keys.push_back("r:s:k" + std::to_string(i));
  for (size_t i = 0; i < piped.keys; ++i) keys.push_back("r:p:k" + std::to_string(i));
  for (const std::string& key : keys) {
    const std::string want = lab.cmd(1, {"GET", key});
    for (int k = 1; k <= kNodes; ++k) {
      EXPECT_EQ(lab.cmd(k, {"GET", key}), want) << key << " through node " << k;
      EXPECT_TRUE(lab.eventually(k, {"WITH", "eventual", "GET", key}, want, 10s))
          << key << ": node " << k << "'s replica";
    }
  }
}

// The nodes' logs, kept in /tmp when the run failed or STATEKV_NEMESIS_KEEP is
// set (the test's directory goes with it).
void keep_logs(const std::string& dir, uint64_t seed) {
  if (!::testing::Test::HasFailure() && std::getenv("STATEKV_NEMESIS_KEEP") == nullptr) return;
  const std::string kept = "/tmp/statekv-nemesis-logs-" + std::to_string(seed);
  std::filesystem::create_directories(kept);
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().extension() == ".log") {
      std::filesystem::copy_file(f.path(), kept / f.path().filename(),
                                 std::filesystem::copy_options::overwrite_existing);
    }
  }
  std::printf("node logs kept in %s\n", kept.c_str());
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
