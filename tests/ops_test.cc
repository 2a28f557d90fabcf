// Operating a local cluster the way its users do: `statekv cluster up` in the
// foreground or detached, a second `cluster up` on the same data dir, nodes
// killed with SIGKILL and restarted with `statekv cluster restart-missing`,
// starts that fail (a port in use, Ctrl-C), options that disagree with the
// cluster on disk, node logs, and the health CLUSTER INFO and
// `statekv cluster status` report while a shard's owner is down.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "support/net.h"
#include "support/redis_client.h"
#include "support/server_process.h"
#include "support/statekv_cli.h"
#include "support/temp_dir.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

std::string read_file(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return cond();
}

// Node K's pid from DATA/nodeK/pid (0 if none).
pid_t node_pid(const std::string& data, int k) {
  std::ifstream in(data + "/node" + std::to_string(k) + "/pid");
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

// Alive and not a zombie.
bool alive(pid_t pid) {
  if (pid <= 0) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  const size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z' &&
         stat[close + 2] != 'X';
}

// SIGKILL, and wait until the process is gone (or a zombie of someone else's).
void kill9(pid_t pid) {
  ASSERT_GT(pid, 0);
  ::kill(pid, SIGKILL);
  ASSERT_TRUE(eventually([&] { return !alive(pid); }, 5s)) << "pid " << pid << " still alive";
}

// `statekv ARGS` killed after `limit` (a command that would otherwise run
// for ever, like a foreground `cluster up` on old code); the exit status is
// 124 when it had to be killed, as timeout(1) says.
std::pair<int, std::string> run_statekv_within(const std::vector<std::string>& args,
                                               std::chrono::seconds limit) {
  std::vector<std::string> with = args;
  // run_statekv quotes each argument; `timeout` goes in front through the binary path.
  std::string cmd = "timeout -s TERM " + std::to_string(limit.count()) + " " + statekv_binary();
  for (const std::string& a : with) cmd += " '" + a + "'";
  cmd += " 2>&1";
  std::string output;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) output.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// `statekv ARGS` running in the background (a foreground `cluster up`), its
// output in a file. The destructor sends SIGTERM (a supervisor then stops its
// nodes), waits, and SIGKILLs it if it must.
class Background {
 public:
  Background(const std::vector<std::string>& args, std::string output)
      : output_(std::move(output)) {
    const std::string bin = statekv_binary();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      int fd = ::open(output_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      std::vector<std::string> argv = {bin};
      argv.insert(argv.end(), args.begin(), args.end());
      std::vector<char*> raw;
      for (std::string& a : argv) raw.push_back(a.data());
      raw.push_back(nullptr);
      ::execv(raw[0], raw.data());
      ::_exit(127);
    }
  }
  ~Background() { (void)stop(SIGTERM, 20s); }

  pid_t pid() const { return pid_; }
  std::string output() const { return read_file(output_); }
  bool wait_for_output(const std::string& text, std::chrono::milliseconds timeout) const {
    return eventually([&] { return output().find(text) != std::string::npos || exited(); },
                      timeout) &&
           output().find(text) != std::string::npos;
  }
  bool exited() const {
    if (pid_ <= 0) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      status_ = status;
      pid_ = -1;
      return true;
    }
    return false;
  }
  // Sends `sig` and waits up to `timeout` for it to exit; SIGKILL after that.
  // True if it exited within the timeout.
  bool stop(int sig, std::chrono::milliseconds timeout) {
    if (exited()) return true;
    ::kill(pid_, sig);
    if (eventually([&] { return exited(); }, timeout)) return true;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
    pid_ = -1;
    return false;
  }

 private:
  mutable pid_t pid_ = -1;
  mutable int status_ = 0;
  std::string output_;
};

// A socket listening on 127.0.0.1:port, so that a node cannot bind it. A
// process that just died may hold the port a moment longer: retried for 5 s.
class PortHog {
 public:
  explicit PortHog(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    ok_ = eventually(
        [&] {
          if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            error_ = std::strerror(errno);
            return false;
          }
          return ::listen(fd_, 4) == 0;
        },
        5s);
  }
  ~PortHog() { ::close(fd_); }
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }

 private:
  int fd_ = -1;
  bool ok_ = false;
  std::string error_;
};

std::string cluster_info(uint16_t port) {
  auto c = RedisClient::connect(port);
  if (!c.ok()) return "";
  auto r = c->bulk({"CLUSTER", "INFO"});
  return r.ok() ? *r : "";
}

struct Cluster {
  explicit Cluster(const std::string& name) : dir(name), data(dir.path() + "/data") {}
  TempDir dir;
  std::string data;
  uint16_t base = 0;
};

// A detached cluster of `nodes` memory nodes under a fresh data dir; `extra`
// flags for `cluster up`.
void up_detached(Cluster& c, int nodes, const std::vector<std::string>& extra = {}) {
  c.base = pick_cluster_base_port(static_cast<uint16_t>(nodes + 1));
  ASSERT_NE(c.base, 0);
  std::vector<std::string> args = {"cluster",     "up",
                                   "--nodes",     std::to_string(nodes),
                                   "--base-port", std::to_string(c.base),
                                   "--data",      c.data,
                                   "--engine",    "memory",
                                   "--detach"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto up = run_statekv(args);
  ASSERT_EQ(up.first, 0) << up.second;
}

TEST(Ops, ASecondUpIsRefusedNamingTheFirstAndTheClusterRunsOn) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  Cluster c("ops-second-up");
  c.base = pick_cluster_base_port(3);
  ASSERT_NE(c.base, 0);
  Background first({"cluster", "up", "--nodes", "3", "--base-port", std::to_string(c.base),
                    "--data", c.data, "--engine", "memory"},
                   c.dir.path() + "/first.out");
  LocalClusterGuard down{c.data};
  ASSERT_TRUE(first.wait_for_output("running in the foreground", 60s)) << first.output();
  const pid_t pids[] = {node_pid(c.data, 1), node_pid(c.data, 2), node_pid(c.data, 3)};

  // As `timeout 15 statekv cluster up` did in the issue: it must not attach.
  auto second = run_statekv_within({"cluster", "up", "--data", c.data}, 15s);
  EXPECT_EQ(second.first, 1) << second.second;
  EXPECT_NE(second.second.find("already run by `statekv cluster up`"), std::string::npos)
      << second.second;
  EXPECT_NE(second.second.find("pid " + std::to_string(first.pid())), std::string::npos)
      << second.second;
  EXPECT_NE(second.second.find("restart-missing"), std::string::npos) << second.second;

  // Nothing was stopped: same nodes, same supervisor.
  EXPECT_FALSE(first.exited()) << first.output();
  for (int k = 1; k <= 3; ++k) {
    EXPECT_EQ(node_pid(c.data, k), pids[k - 1]);
    EXPECT_TRUE(alive(pids[k - 1])) << "node " << k;
  }
  EXPECT_NE(cluster_info(c.base).find("cluster_state:ok"), std::string::npos);

  // Its Ctrl-C stops every node.
  EXPECT_TRUE(first.stop(SIGINT, 30s));
  for (pid_t pid : pids) EXPECT_FALSE(alive(pid));
}

TEST(Ops, RestartMissingStartsOnlyTheKilledNodeBesideARunningSupervisor) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  Cluster c("ops-restart");
  c.base = pick_cluster_base_port(3);
  ASSERT_NE(c.base, 0);
  Background sup({"cluster", "up", "--nodes", "3", "--base-port", std::to_string(c.base), "--data",
                  c.data, "--engine", "memory"},
                 c.dir.path() + "/sup.out");
  LocalClusterGuard down{c.data};
  ASSERT_TRUE(sup.wait_for_output("running in the foreground", 60s)) << sup.output();
  const pid_t one = node_pid(c.data, 1);
  const pid_t two = node_pid(c.data, 2);
  const pid_t three = node_pid(c.data, 3);

  kill9(two);
  // The supervisor (node 2's parent) says it died, and how to restart it.
  EXPECT_TRUE(sup.wait_for_output("node 2 (pid " + std::to_string(two) + ") died", 10s))
      << sup.output();
  EXPECT_NE(sup.output().find("killed by signal 9"), std::string::npos) << sup.output();

  auto restart = run_statekv_within({"cluster", "restart-missing", "--data", c.data}, 60s);
  ASSERT_EQ(restart.first, 0) << restart.second;
  EXPECT_NE(restart.second.find("node 1 already running"), std::string::npos) << restart.second;
  EXPECT_EQ(node_pid(c.data, 1), one);
  EXPECT_EQ(node_pid(c.data, 3), three);
  EXPECT_TRUE(alive(one) && alive(three));
  const pid_t again = node_pid(c.data, 2);
  EXPECT_NE(again, two);
  EXPECT_TRUE(alive(again));
  EXPECT_TRUE(sup.wait_for_output("node 2 is running again", 5s)) << sup.output();
  EXPECT_FALSE(sup.exited()) << sup.output();

  // Nothing missing: nothing to do.
  auto idle = run_statekv_within({"cluster", "restart-missing", "--data", c.data}, 30s);
  EXPECT_EQ(idle.first, 0) << idle.second;
  EXPECT_NE(idle.second.find("nothing to do"), std::string::npos) << idle.second;

  // The supervisor's Ctrl-C stops the restarted node too (not its child).
  EXPECT_TRUE(sup.stop(SIGINT, 30s));
  EXPECT_FALSE(alive(again));
}

TEST(Ops, AKilledNodeNotYetReapedIsDeadAndRestarts) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  // Orphaned nodes become our children, so a killed one stays a zombie until
  // we reap it: what a restart right after a kill -9 meets.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  struct Unreaper {
    ~Unreaper() {
      ::prctl(PR_SET_CHILD_SUBREAPER, 0);
      while (::waitpid(-1, nullptr, WNOHANG) > 0) {
      }
    }
  } unreaper;
  Cluster c("ops-zombie");
  up_detached(c, 3);
  LocalClusterGuard down{c.data};
  const pid_t one = node_pid(c.data, 1);
  const pid_t two = node_pid(c.data, 2);
  ::kill(two, SIGKILL);
  ASSERT_TRUE(eventually(
      [&] {
        std::ifstream in("/proc/" + std::to_string(two) + "/stat");
        std::string stat;
        std::getline(in, stat);
        return stat.find(") Z") != std::string::npos;
      },
      5s));

  const auto started = Clock::now();
  auto restart = run_statekv_within({"cluster", "up", "--data", c.data, "--detach"}, 60s);
  const auto took = Clock::now() - started;
  ASSERT_EQ(restart.first, 0) << restart.second;
  EXPECT_LT(took, 20s);
  EXPECT_EQ(restart.second.find("node 2 already running"), std::string::npos) << restart.second;
  EXPECT_NE(node_pid(c.data, 2), two);
  EXPECT_TRUE(alive(node_pid(c.data, 2)));
  EXPECT_EQ(node_pid(c.data, 1), one);
  EXPECT_TRUE(alive(one));
}

TEST(Ops, ANodeThatDiesAtStartIsReportedAtOnceAndOnlyWhatWasStartedStops) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  Cluster c("ops-port-taken");
  up_detached(c, 3);
  LocalClusterGuard down{c.data};
  const pid_t one = node_pid(c.data, 1);
  const pid_t two = node_pid(c.data, 2);
  kill9(node_pid(c.data, 3));
  PortHog hog(static_cast<uint16_t>(c.base + 2));  // node 3's RESP port
  ASSERT_TRUE(hog.ok()) << hog.error();

  const auto started = Clock::now();
  auto restart = run_statekv_within({"cluster", "up", "--data", c.data, "--detach"}, 60s);
  const auto took = Clock::now() - started;
  EXPECT_EQ(restart.first, 1) << restart.second;
  EXPECT_LT(took, 10s) << restart.second;
  EXPECT_NE(restart.second.find("node 3 exited while starting"), std::string::npos)
      << restart.second;
  EXPECT_NE(restart.second.find("Address already in use"), std::string::npos) << restart.second;
  // Nodes 1 and 2 were running before: they run on.
  EXPECT_EQ(node_pid(c.data, 1), one);
  EXPECT_EQ(node_pid(c.data, 2), two);
  EXPECT_TRUE(alive(one) && alive(two));
}

TEST(Ops, OptionsThatConflictWithTheClusterOnDiskAreAnError) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  Cluster c("ops-conflict");
  up_detached(c, 3);
  LocalClusterGuard down{c.data};
  auto up = run_statekv_within({"cluster", "up", "--data", c.data, "--nodes", "5", "--partitioner",
                                "slots", "--engine", "memory", "--detach"},
                               60s);
  EXPECT_EQ(up.first, 1) << up.second;
  EXPECT_NE(up.second.find("--nodes 5 (it has 3"), std::string::npos) << up.second;
  EXPECT_NE(up.second.find("--partitioner slots (its default keyspace uses hash)"),
            std::string::npos)
      << up.second;
  // --engine memory is what it has: no conflict.
  EXPECT_EQ(up.second.find("--engine"), std::string::npos) << up.second;
  auto rocks = run_statekv_within(
      {"cluster", "up", "--data", c.data, "--engine", "rocksdb", "--detach"}, 60s);
  EXPECT_EQ(rocks.first, 1) << rocks.second;
  EXPECT_NE(rocks.second.find("--engine rocksdb (it uses memory)"), std::string::npos)
      << rocks.second;
  // The same options as the cluster's, or none: a restart.
  auto same =
      run_statekv_within({"cluster", "up", "--data", c.data, "--nodes", "3", "--detach"}, 60s);
  EXPECT_EQ(same.first, 0) << same.second;
}

// `cluster up --server-arg` starts every node with more server options,
// honoured (a consensus write over --group-max-write-bytes is refused), kept
// for nodes started later (restart-missing after a SIGKILL) and held to on a
// restart like the other options; one that `cluster up` sets itself, or that
// is no option, is refused before any node starts.
TEST(Ops, ServerArgsReachEveryNodeAndNodesStartedLater) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  Cluster c("ops-server-args");
  up_detached(c, 3,
              {"--replication", "consensus", "--server-arg=--group-max-write-bytes=4096",
               "--server-arg=--maxclients=77"});
  LocalClusterGuard down{c.data};
  const auto check_node = [&](int k) {
    auto client = RedisClient::connect(static_cast<uint16_t>(c.base + k - 1));
    ASSERT_TRUE(client.ok()) << "node " << k;
    EXPECT_EQ(client->cmd({"CONFIG", "GET", "maxclients"}), "[\"maxclients\", \"77\"]")
        << "node " << k;
    std::string refused;
    for (int i = 0; i < 50; ++i) {
      refused = client->cmd({"SET", "big", std::string(8192, 'x')});
      if (refused.rfind("-TRYAGAIN", 0) != 0 && refused.rfind("-CLUSTERDOWN", 0) != 0) break;
      std::this_thread::sleep_for(100ms);
    }
    EXPECT_EQ(refused.rfind("-ERR", 0), 0u) << "node " << k << ": " << refused;
    EXPECT_NE(refused.find("4096"), std::string::npos) << refused;
    EXPECT_EQ(client->cmd({"SET", "small", std::string(1000, 'x')}), "+OK") << "node " << k;
  };
  for (int k = 1; k <= 3; ++k) check_node(k);
  kill9(node_pid(c.data, 2));
  auto restarted = run_statekv_within({"cluster", "restart-missing", "--data", c.data}, 60s);
  ASSERT_EQ(restarted.first, 0) << restarted.second;
  check_node(2);

  auto other = run_statekv_within(
      {"cluster", "up", "--data", c.data, "--server-arg=--maxclients=5", "--detach"}, 60s);
  EXPECT_EQ(other.first, 1) << other.second;
  EXPECT_NE(other.second.find("--server-arg --maxclients=5 (its nodes start with "
                              "--group-max-write-bytes=4096 --maxclients=77)"),
            std::string::npos)
      << other.second;

  Cluster fresh("ops-server-args-refused");
  LocalClusterGuard fresh_down{fresh.data};
  const uint16_t fresh_base = pick_cluster_base_port(2);
  ASSERT_NE(fresh_base, 0);
  for (const char* bad : {"--server-arg=--port=7", "--server-arg=maxclients"}) {
    auto up = run_statekv_within(
        {"cluster", "up", "--nodes", "1", "--base-port", std::to_string(fresh_base), "--data",
         fresh.data, "--engine", "memory", "--detach", bad},
        60s);
    EXPECT_EQ(up.first, 1) << up.second;
    EXPECT_NE(up.second.find("--server-arg"), std::string::npos) << up.second;
  }
}

// A standalone server (no --node-id) has no cluster for these settings: it
// refuses them rather than start and ignore them.
// A second process started as node 2 (a mistyped --node-id, a copy of node
// 2's command line on another machine) has a data directory of its own: the
// other nodes know node 2 by the incarnation of its log directory and refuse
// the newcomer as disowned; it exits 1 saying why, and the real node 2 and the
// cluster go on (net/peer_incarnations.h).
TEST(Ops, ASecondProcessClaimingARunningNodesIdIsRefusedAndStops) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  Cluster c("ops-impostor");
  up_detached(c, 3);  // up_detached leaves room for one more node's ports
  LocalClusterGuard down{c.data};
  const pid_t two = node_pid(c.data, 2);
  std::string secret;
  std::getline(std::ifstream(c.data + "/cluster.secret"), secret);
  ASSERT_FALSE(secret.empty());
  const auto peer = [&](int port) { return "127.0.0.1:" + std::to_string(port + 10000); };
  const int impostor_port = c.base + 3;
  // As a founder (--peers) with an empty log, as the real node 2 once started.
  const std::string peers =
      "1=" + peer(c.base) + ",2=" + peer(impostor_port) + ",3=" + peer(c.base + 2);
  auto run =
      run_statekv_within({"server", "--node-id", "2", "--port", std::to_string(impostor_port),
                          "--data", c.dir.path() + "/impostor", "--engine", "memory", "--peers",
                          peers, "--cluster-secret", secret},
                         20s);
  EXPECT_EQ(run.first, 1) << run.second;
  EXPECT_NE(run.second.find("refused the handshake as disowned: node "), std::string::npos)
      << run.second;
  EXPECT_NE(run.second.find("knew node 2 with data directory incarnation"), std::string::npos)
      << run.second;
  EXPECT_NE(run.second.find("`statekv cluster remove-node --id 2`"), std::string::npos)
      << run.second;

  // The real node 2 was not touched, and every node serves.
  EXPECT_EQ(node_pid(c.data, 2), two);
  EXPECT_TRUE(alive(two));
  for (int k = 0; k < 3; ++k) {
    auto client = RedisClient::connect(static_cast<uint16_t>(c.base + k));
    ASSERT_TRUE(client.ok());
    EXPECT_EQ(client->cmd({"SET", "after-impostor", std::to_string(k)}), "+OK") << "node " << k + 1;
    EXPECT_EQ(client->cmd({"GET", "after-impostor"}), "\"" + std::to_string(k) + "\"");
  }
}

TEST(Ops, ClusterSettingsOnAStandaloneServerAreRefused) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv server only";
  TempDir dir("ops-standalone");
  auto port = pick_free_port();
  ASSERT_TRUE(port.ok());
  const std::vector<std::vector<std::string>> settings = {
      {"--peers", "1=127.0.0.1:17001"},
      {"--join"},
      {"--group-compact-bytes", "1000000"},
      {"--group-compact-entries", "100"},
      {"--group-election-timeout-ms", "300"},
      {"--keyspace-create-limit-ms", "1000"},
      {"--cluster-redirects"},
  };
  for (const auto& setting : settings) {
    std::vector<std::string> args = {"server", "--port", std::to_string(*port), "--data",
                                     dir.path() + "/data", "--engine", "rocksdb"};
    args.insert(args.end(), setting.begin(), setting.end());
    auto run = run_statekv_within(args, 10s);
    EXPECT_EQ(run.first, 1) << setting[0] << ": " << run.second;
    EXPECT_NE(run.second.find(setting[0] + " applies to a cluster node only (give --node-id)"),
              std::string::npos)
        << run.second;
  }
}

TEST(Ops, AFailedFirstStartSavesNothing) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  Cluster c("ops-first-start");
  c.base = pick_cluster_base_port(2);
  ASSERT_NE(c.base, 0);
  LocalClusterGuard down{c.data};
  {
    PortHog hog(static_cast<uint16_t>(c.base + 1));  // node 2's RESP port
    ASSERT_TRUE(hog.ok()) << hog.error();
    const auto started = Clock::now();
    auto up =
        run_statekv_within({"cluster", "up", "--nodes", "2", "--base-port", std::to_string(c.base),
                            "--data", c.data, "--engine", "memory", "--detach"},
                           60s);
    EXPECT_EQ(up.first, 1) << up.second;
    EXPECT_LT(Clock::now() - started, 10s) << up.second;
    EXPECT_NE(up.second.find("Address already in use"), std::string::npos) << up.second;
    EXPECT_FALSE(fs::exists(c.data + "/cluster.json"));
    EXPECT_FALSE(alive(node_pid(c.data, 1)));
    // Its log stays, for the reason.
    EXPECT_TRUE(fs::exists(c.data + "/node2/statekv.log"));
  }
  // With the port free, the same command makes the cluster.
  auto up =
      run_statekv_within({"cluster", "up", "--nodes", "2", "--base-port", std::to_string(c.base),
                          "--data", c.data, "--engine", "memory", "--detach"},
                         60s);
  ASSERT_EQ(up.first, 0) << up.second;
  EXPECT_TRUE(fs::exists(c.data + "/cluster.json"));
}

TEST(Ops, CtrlCDuringStartStopsAtOnceAndLeavesNoNode) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  Cluster c("ops-ctrl-c");
  c.base = pick_cluster_base_port(3);
  ASSERT_NE(c.base, 0);
  LocalClusterGuard down{c.data};
  Background up({"cluster", "up", "--nodes", "3", "--base-port", std::to_string(c.base), "--data",
                 c.data, "--engine", "memory"},
                c.dir.path() + "/up.out");
  // Node 1 frozen as soon as it exists: the cluster cannot become ready.
  pid_t one = 0;
  ASSERT_TRUE(eventually([&] { return (one = node_pid(c.data, 1)) > 0; }, 10s));
  ::kill(one, SIGSTOP);
  ASSERT_TRUE(eventually([&] { return node_pid(c.data, 3) > 0; }, 10s));
  const pid_t two = node_pid(c.data, 2);
  const pid_t three = node_pid(c.data, 3);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(up.output().find("cluster ready"), std::string::npos) << up.output();

  const auto sent = Clock::now();
  EXPECT_TRUE(up.stop(SIGINT, 8s)) << "cluster up ignored Ctrl-C while starting";
  EXPECT_LT(Clock::now() - sent, 5s);
  ::kill(one, SIGCONT);  // in case it was left behind
  EXPECT_NE(up.output().find("interrupted"), std::string::npos) << up.output();
  for (pid_t pid : {one, two, three}) {
    EXPECT_TRUE(eventually([&] { return !alive(pid); }, 5s)) << "pid " << pid;
    if (alive(pid)) ::kill(pid, SIGKILL);  // leave nothing behind, even on failure
  }
  EXPECT_FALSE(fs::exists(c.data + "/cluster.json"));
}

TEST(Ops, NodeLogsAreWrittenWhileNodesRunAndKeptAfterSigkill) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  Cluster c("ops-logs");
  up_detached(c, 2);
  LocalClusterGuard down{c.data};
  // The nodes run on; their logs hold their start already (each line is
  // written as it is logged, not when the node exits).
  for (int k = 1; k <= 2; ++k) {
    const std::string file = c.data + "/node" + std::to_string(k) + "/statekv.log";
    EXPECT_TRUE(eventually(
        [&] {
          const std::string log = read_file(file);
          return log.find("ready: bind=127.0.0.1") != std::string::npos &&
                 log.find("is active in the cluster map") != std::string::npos;
        },
        2s))
        << "node " << k << ":\n"
        << read_file(file);
    EXPECT_TRUE(alive(node_pid(c.data, k)));
  }
  const pid_t two = node_pid(c.data, 2);
  const std::string before = read_file(c.data + "/node2/statekv.log");
  kill9(two);
  const std::string after = read_file(c.data + "/node2/statekv.log");
  EXPECT_EQ(after.substr(0, before.size()), before);
  EXPECT_GE(after.size(), before.size());
}

TEST(Ops, TheSupervisorReportsARemovalAsPlannedAndAKillAsACrash) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  Cluster c("ops-planned");
  c.base = pick_cluster_base_port(3);
  ASSERT_NE(c.base, 0);
  // One copy per key: removing one of three nodes leaves enough for it (a
  // replicated default keyspace of factor 3 needs a fourth node first).
  Background sup({"cluster", "up", "--nodes", "3", "--base-port", std::to_string(c.base), "--data",
                  c.data, "--engine", "memory", "--replication", "none"},
                 c.dir.path() + "/sup.out");
  LocalClusterGuard down{c.data};
  ASSERT_TRUE(sup.wait_for_output("running in the foreground", 60s)) << sup.output();
  const pid_t three = node_pid(c.data, 3);
  auto remove = run_statekv_within({"cluster", "remove-node", "--id", "3", "--data", c.data}, 60s);
  ASSERT_EQ(remove.first, 0) << remove.second;
  EXPECT_TRUE(
      sup.wait_for_output("node 3 (pid " + std::to_string(three) + ") stopped as planned", 5s))
      << sup.output();
  EXPECT_EQ(sup.output().find("died"), std::string::npos) << sup.output();

  const pid_t two = node_pid(c.data, 2);
  kill9(two);
  EXPECT_TRUE(sup.wait_for_output("node 2 (pid " + std::to_string(two) + ") died", 5s))
      << sup.output();
}

TEST(Ops, AShardWhoseOwnerIsDownFailsClusterInfoAndStatusUntilItIsBack) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  Cluster c("ops-health");
  up_detached(c, 3, {"--replication", "none"});  // a shard with one copy
  LocalClusterGuard down{c.data};
  EXPECT_TRUE(eventually(
      [&] { return cluster_info(c.base).find("cluster_state:ok") != std::string::npos; }, 5s))
      << cluster_info(c.base);
  auto ok = run_statekv_within({"cluster", "status", "--data", c.data}, 30s);
  EXPECT_EQ(ok.first, 0) << ok.second;
  EXPECT_NE(ok.second.find("health: ok"), std::string::npos) << ok.second;

  kill9(node_pid(c.data, 3));
  // Node 1 (the leader or not, with a majority) sees node 3's shards unserved.
  // When node 3 led the metadata group, the state first fails for want of a
  // leader and names no down node: wait for the election and node 3's absence.
  std::string info;
  EXPECT_TRUE(eventually(
      [&] {
        info = cluster_info(c.base);
        return info.find("cluster_state:fail") != std::string::npos &&
               info.find("statekv_down_nodes:3\r\n") != std::string::npos;
      },
      10s))
      << info;
  EXPECT_NE(info.find("statekv_health:fail"), std::string::npos) << info;
  EXPECT_NE(info.find("statekv_down_nodes:3\r\n"), std::string::npos) << info;
  EXPECT_NE(info.find("statekv_unavailable_shards:default/"), std::string::npos) << info;
  EXPECT_NE(info.find("raft_leader:"), std::string::npos) << info;
  EXPECT_EQ(info.find("raft_leader:none"), std::string::npos) << "two of three still lead";
  // DBSIZE, a cluster-wide command, fails: the state is not a false alarm.
  auto client = RedisClient::connect(c.base);
  ASSERT_TRUE(client.ok());
  EXPECT_FALSE(client->integer({"DBSIZE"}).ok());

  auto status = run_statekv_within({"cluster", "status", "--data", c.data}, 30s);
  EXPECT_EQ(status.first, 1) << status.second;
  EXPECT_NE(status.second.find("health: fail"), std::string::npos) << status.second;
  EXPECT_NE(status.second.find("(owner node 3 down)"), std::string::npos) << status.second;
  auto json = run_statekv_within({"cluster", "status", "--data", c.data, "--json"}, 30s);
  EXPECT_EQ(json.first, 1) << json.second;
  EXPECT_NE(json.second.find("\"healthy\": false"), std::string::npos) << json.second;
  EXPECT_NE(json.second.find("\"health\": \"fail\""), std::string::npos) << json.second;

  auto restart = run_statekv_within({"cluster", "restart-missing", "--data", c.data}, 60s);
  ASSERT_EQ(restart.first, 0) << restart.second;
  EXPECT_TRUE(eventually(
      [&] { return cluster_info(c.base).find("cluster_state:ok") != std::string::npos; }, 10s))
      << cluster_info(c.base);
  auto healthy = run_statekv_within({"cluster", "status", "--data", c.data}, 30s);
  EXPECT_EQ(healthy.first, 0) << healthy.second;
}

}  // namespace
}  // namespace statekv::itest
