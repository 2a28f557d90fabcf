// Replicas that move, with real processes (docs/replication.md, "Moving
// replicas"): a REPLICATION consensus keyspace's shards are replica groups,
// and add-node, remove-node and a dead node's removal move their members one
// at a time (add, catch up, remove) while clients read and write through
// every node. The clients' history, with a final read of every key through
// every node appended, is judged by `statekv check linearizable`: so every
// acknowledged write is still readable afterwards.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "check/history.h"
#include "support/history_clients.h"
#include "support/nemesis_seed.h"
#include "support/redis_client.h"
#include "support/server_process.h"
#include "support/statekv_cli.h"
#include "support/temp_dir.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;

constexpr size_t kKeys = 12;
const std::string kPrefix = "r:";

pid_t node_pid(const std::string& data, int node) {
  std::ifstream in(data + "/node" + std::to_string(node) + "/pid");
  pid_t pid = 0;
  in >> pid;
  return pid;
}

// A local cluster (memory engine, so what a node serves came through its
// group's log or snapshot) with room for two more nodes, and a factor-3
// consensus keyspace "rep" (prefix r:, 3 shards) writable through every node.
struct Cluster {
  // `partitioner`: the KEYSPACE CREATE arguments that place "rep" ("ring" gets
  // one vnode per node: 3 shards, as hash has on 3 nodes).
  explicit Cluster(const std::string& name, std::string partitioner = "hash")
      : dir(name), data(dir.path() + "/data"), partitioner(std::move(partitioner)) {}

  // The default keyspace keeps one copy per shard (the consensus keyspace
  // "rep" is the one whose replicas move), unless default_replication says
  // "consensus".
  void up() {
    base = pick_cluster_base_port(ports_needed);
    ASSERT_NE(base, 0);
    std::vector<std::string> args = {
        "cluster", "up", "--nodes",  "3",    "--base-port",   std::to_string(base),
        "--data",  data, "--engine", engine, "--replication", default_replication,
        "--detach"};
    // The logs compact behind store flushes only over an engine that keeps them.
    if (engine == "rocksdb") {
      args.push_back("--server-arg=--group-compact-entries=" + std::to_string(compact_entries));
    }
    auto started = run_statekv(args);
    down.reset(new LocalClusterGuard{data});
    ASSERT_EQ(started.first, 0) << started.second;
    auto c = RedisClient::connect(base);
    ASSERT_TRUE(c.ok());
    std::vector<std::string> create = {"KEYSPACE",    "CREATE",    "rep",    "PREFIX", kPrefix,
                                       "REPLICATION", "consensus", "FACTOR", "3"};
    if (partitioner == "ring") {
      create.insert(create.end(), {"PARTITIONER", "ring", "VNODES", "1"});
    }
    ASSERT_EQ(c->cmd(create), "+OK");
    for (int n = 1; n <= 3; ++n) ASSERT_NO_FATAL_FAILURE(writable(port(n)));
  }
  uint16_t port(int node) const { return static_cast<uint16_t>(base + node - 1); }
  // Every node's log that is still there, one after another: the metadata
  // leader's replica controller logs each step of a move in its own.
  std::string logs() const {
    std::string out;
    for (int n = 1; n <= 8; ++n) {
      std::ifstream in(data + "/node" + std::to_string(n) + "/statekv.log");
      std::stringstream ss;
      ss << in.rdbuf();
      out += ss.str();
    }
    return out;
  }
  void writable(uint16_t p) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto c = RedisClient::connect(p, 1s);
      if (c.ok() && c->cmd({"SET", kPrefix + "warmup", "1"}) == "+OK") return;
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << "not writable through port " << p;
  }

  // The replica groups as `cluster status` shows them: members per group.
  std::vector<std::set<int>> groups() const {
    auto st = run_statekv({"cluster", "status", "--data", data});
    std::vector<std::set<int>> out;
    std::istringstream in(st.second);
    std::string line;
    bool in_groups = false;
    while (std::getline(in, line)) {
      if (line.rfind("replica groups", 0) == 0) {
        in_groups = true;
        std::getline(in, line);  // the header
        continue;
      }
      if (!in_groups) continue;
      std::istringstream fields(line);
      std::string ks, shard, leader, term, commit, applied, member;
      if (!(fields >> ks >> shard >> leader >> term >> commit >> applied) || ks != "rep") break;
      std::set<int> members;
      while (fields >> member) members.insert(std::stoi(member));  // "4[applied=9,lag=0]": 4
      out.push_back(members);
    }
    return out;
  }

  TempDir dir;
  std::string data;
  std::string partitioner;
  std::string default_replication = "none";
  // RESP ports base .. base + ports_needed - 1 (and their peer ports) found free
  // at the start: one per node id the test will use (node K takes base + K - 1).
  uint16_t ports_needed = 5;
  std::string engine = "memory";
  uint64_t compact_entries = 65536;  // --group-compact-entries (its default), rocksdb only
  uint16_t base = 0;
  std::unique_ptr<LocalClusterGuard> down;  // destroyed first: the nodes stop before dir goes
};

// Appends a read of every key through every port to `history`, after
// everything in it, and checks that every node answers alike; then judges it.
void judge(const Cluster& cluster, check::History history, const std::vector<uint16_t>& ports) {
  int64_t end = 0, process = 0;
  for (const check::Event& e : history) {
    end = std::max(end, e.time);
    process = std::max(process, e.process);
  }
  for (size_t k = 0; k < kKeys; ++k) {
    const std::string key = kPrefix + "k" + std::to_string(k);
    std::optional<std::string> first;
    for (uint16_t p : ports) {
      auto c = RedisClient::connect(p);
      ASSERT_TRUE(c.ok());
      auto v = c->bulk({"GET", key});
      ASSERT_TRUE(v.ok() || v.status().code() == Status::Code::kNotFound)
          << key << " through " << p << ": " << v.status().to_string();
      std::optional<std::string> value;
      if (v.ok()) value = *v;
      if (!first) first = value.value_or("(nil)");
      EXPECT_EQ(value.value_or("(nil)"), *first) << key << " through port " << p;
      check::Event invoke;
      invoke.process = ++process;
      invoke.type = check::EventType::kInvoke;
      invoke.f = check::OpFunction::kRead;
      invoke.key = key;
      invoke.time = ++end;
      check::Event ok = invoke;
      ok.type = check::EventType::kOk;
      ok.value = value;
      ok.time = ++end;
      history.push_back(invoke);
      history.push_back(ok);
    }
  }
  const std::string file = cluster.dir.path() + "/history.jsonl";
  ASSERT_TRUE(check::write_history_file(file, history).ok());
  auto verdict = run_statekv({"check", "linearizable", file});
  if (verdict.first != 0) {
    // Kept for a look after the test's directory is gone.
    const std::string kept = std::filesystem::temp_directory_path() /
                             fmt::format("statekv-failed-history-{}.jsonl", ::getpid());
    std::error_code ec;
    std::filesystem::copy_file(file, kept, std::filesystem::copy_options::overwrite_existing, ec);
    ADD_FAILURE() << "history kept at " << kept;
  }
  EXPECT_EQ(verdict.first, 0) << verdict.second;
}

// After a move: lets the clients run on briefly, stops them, and checks that
// they got enough done, that every rep group has exactly `nodes` as members
// (factor 3), and judges the history with a final read through each of them.
void stop_and_judge(const Cluster& cluster, HistoryClients& clients, const std::set<int>& nodes) {
  std::this_thread::sleep_for(500ms);
  clients.stop();
  std::printf("clients: %zu operations acknowledged, %zu failed or unknown\n", clients.ok_count(),
              clients.error_count());
  EXPECT_GT(clients.ok_count(), 300u) << "too little load to mean anything";
  auto groups = cluster.groups();
  ASSERT_EQ(groups.size(), 3u);
  for (const auto& g : groups) EXPECT_EQ(g, nodes) << "every group at factor 3 on these nodes";
  std::vector<uint16_t> ports;
  for (int n : nodes) ports.push_back(cluster.port(n));
  ASSERT_NO_FATAL_FAILURE(judge(cluster, clients.history(), ports));
}

// Over hash and ring partitioning: a ring's shards are arcs between its
// nodes' tokens, and they stay put while the replicas move (the ring keeps the
// tokens of the nodes it was placed on, node 1's included after it leaves).
class ReplicaMove : public ::testing::TestWithParam<std::string> {};

TEST_P(ReplicaMove, AddAndRemoveNodeMoveConsensusReplicasUnderLoadLinearizably) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  Cluster cluster("replica-move", GetParam());
  ASSERT_NO_FATAL_FAILURE(cluster.up());
  std::vector<uint16_t> ports = {cluster.port(1), cluster.port(2), cluster.port(3)};
  HistoryClients clients(ports, 6, kKeys, kPrefix);
  std::this_thread::sleep_for(500ms);

  // A fourth node: it takes its share of the replicas (3 of 9), each joining
  // as a learner, added once caught up, then an old member removed.
  auto started = std::chrono::steady_clock::now();
  auto add = run_statekv({"cluster", "add-node", "--data", cluster.data});
  ASSERT_EQ(add.first, 0) << add.second;
  std::printf("add-node (start, join, move 2 replicas): %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - started)
                                         .count()));
  // add-node prints the moves it sees under way and waits for them; a
  // controller quicker than its first look (20 ms ticks) leaves it none to
  // show: what moved is checked in the controller's log and on the groups.
  if (add.second.find("moving replicas of keyspace rep: shard") != std::string::npos) {
    EXPECT_NE(add.second.find("every shard at its target"), std::string::npos) << add.second;
  }
  // Whatever it saw under way, it says what moved.
  EXPECT_NE(add.second.find("replicas moved in keyspace rep: 2 of 3 shard(s)"), std::string::npos)
      << add.second;
  EXPECT_NE(cluster.logs().find("node 4 joins the group as a learner"), std::string::npos)
      << "the replica controller's steps are not in any node's log";
  EXPECT_NE(cluster.logs().find("adding node 4 to the group (caught up as a learner)"),
            std::string::npos)
      << "the replica controller's steps are not in any node's log";
  auto groups = cluster.groups();
  ASSERT_EQ(groups.size(), 3u);
  size_t on_4 = 0;
  for (const auto& g : groups) {
    EXPECT_EQ(g.size(), 3u);
    on_4 += g.contains(4) ? 1 : 0;
  }
  EXPECT_EQ(on_4, 2u) << "9 replicas over 4 nodes: node 4 gets 2";
  ports.push_back(cluster.port(4));
  clients.set_ports(ports);
  std::this_thread::sleep_for(500ms);

  // Node 1 goes: its replicas move to the others first (it may lead groups:
  // leadership is handed over before it is removed).
  clients.set_ports({cluster.port(2), cluster.port(3), cluster.port(4)});
  // remove-node deletes node 1's directory, its log with it, and node 1 may
  // have led the metadata group (and run the replica controller) throughout:
  // a file opened now still reads after the unlink.
  std::ifstream node1_log(cluster.data + "/node1/statekv.log");
  ASSERT_TRUE(node1_log.is_open());
  started = std::chrono::steady_clock::now();
  auto remove = run_statekv({"cluster", "remove-node", "--id", "1", "--data", cluster.data});
  ASSERT_EQ(remove.first, 0) << remove.second;
  std::printf("remove-node (move 3 replicas, leave, stop): %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - started)
                                         .count()));
  if (remove.second.find("moving replicas of keyspace rep: shard") != std::string::npos) {
    EXPECT_NE(remove.second.find("every shard at its target"), std::string::npos)
        << remove.second;
  }
  EXPECT_NE(remove.second.find("replicas moved in keyspace rep: 3 of 3 shard(s)"),
            std::string::npos)
      << remove.second;
  std::stringstream node1_lines;
  node1_lines << node1_log.rdbuf();
  EXPECT_NE((cluster.logs() + node1_lines.str()).find("removing node 1 from the group"),
            std::string::npos)
      << "the replica controller's steps are not in any node's log";
  ASSERT_NO_FATAL_FAILURE(stop_and_judge(cluster, clients, {2, 3, 4}));
}

INSTANTIATE_TEST_SUITE_P(Partitioners, ReplicaMove, ::testing::Values("hash", "ring"),
                         [](const auto& info) { return info.param; });

TEST(ReplicaMoveDead, AKilledNodeIsRemovedAndItsReplicasAreRecreatedFromTheSurvivors) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  Cluster cluster("replica-dead");
  ASSERT_NO_FATAL_FAILURE(cluster.up());
  auto add = run_statekv({"cluster", "add-node", "--data", cluster.data});
  ASSERT_EQ(add.first, 0) << add.second;
  std::vector<uint16_t> ports = {cluster.port(1), cluster.port(2), cluster.port(3),
                                 cluster.port(4)};
  HistoryClients clients(ports, 6, kKeys, kPrefix);
  std::this_thread::sleep_for(500ms);

  // Node 3 dies (it holds replicas of the rep groups, and the only copy of
  // one shard of the single-copy default keyspace).
  auto before = cluster.groups();
  size_t on_3 = 0;
  for (const auto& g : before) on_3 += g.contains(3) ? 1 : 0;
  ASSERT_GT(on_3, 0u);
  clients.set_ports({cluster.port(1), cluster.port(2), cluster.port(4)});
  ASSERT_EQ(::kill(node_pid(cluster.data, 3), SIGKILL), 0);
  std::this_thread::sleep_for(300ms);

  // Refused, naming what has no surviving copy; nothing changes.
  auto refused = run_statekv({"cluster", "remove-node", "--id", "3", "--data", cluster.data});
  EXPECT_NE(refused.first, 0) << refused.second;
  EXPECT_NE(refused.second.find("only copy of 1 shard(s) (keyspace 'default' shard"),
            std::string::npos)
      << refused.second;
  EXPECT_NE(refused.second.find("--force"), std::string::npos) << refused.second;

  // Accepted with --force: the rep groups drop node 3 and take a new member
  // from the survivors; the default keyspace's shard starts empty elsewhere.
  const auto started = std::chrono::steady_clock::now();
  auto removed =
      run_statekv({"cluster", "remove-node", "--id", "3", "--force", "--data", cluster.data});
  ASSERT_EQ(removed.first, 0) << removed.second;
  std::printf("remove-node of the killed node (re-create its replicas): %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - started)
                                         .count()));
  EXPECT_NE(cluster.logs().find("removing node 3 (down) from the group"), std::string::npos)
      << "the survivors' logs do not show node 3 removed as down";
  EXPECT_NE(removed.second.find(fmt::format("replicas moved in keyspace rep: {} of 3 shard(s)",
                                            on_3)),
            std::string::npos)
      << removed.second;
  ASSERT_NO_FATAL_FAILURE(stop_and_judge(cluster, clients, {1, 2, 4}));
}

// Kills node 3, its clients sent to nodes 1 and 2 first, and deletes `what`
// in its directory (empty: all of it).
void kill_node3_and_delete(const Cluster& cluster, HistoryClients& clients,
                           const std::string& what) {
  clients.set_ports({cluster.port(1), cluster.port(2)});
  ASSERT_EQ(::kill(node_pid(cluster.data, 3), SIGKILL), 0);
  std::this_thread::sleep_for(300ms);
  std::filesystem::remove_all(cluster.data + "/node3" + (what.empty() ? "" : "/" + what));
}

// A node whose data directory is lost (a wiped disk) and started again under
// its id would vote again in terms it voted in and stand in majorities for
// entries it no longer holds: its peers know it by the incarnation of its old
// directory and refuse it (net/peer_incarnations.h), and it stops, saying how
// to replace it; add-node then remove-node bring the groups back to factor 3
// while clients run, and nothing acknowledged is lost.
TEST(ReplicaMoveDead, ANodeThatLostItsDataIsRefusedThenReplacedUnderLoadLinearizably) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  Cluster cluster("replica-lost-disk");
  cluster.default_replication = "consensus";  // every shard has three copies
  ASSERT_NO_FATAL_FAILURE(cluster.up());
  HistoryClients clients({cluster.port(1), cluster.port(2), cluster.port(3)}, 6, kKeys, kPrefix);
  std::this_thread::sleep_for(500ms);

  // Node 3's disk is lost: killed, its whole directory gone.
  ASSERT_NO_FATAL_FAILURE(kill_node3_and_delete(cluster, clients, ""));

  // Started again, it is disowned by its peers and stops, saying what to do.
  auto restarted = run_statekv({"cluster", "restart-missing", "--data", cluster.data});
  EXPECT_NE(restarted.first, 0) << restarted.second;
  EXPECT_NE(restarted.second.find("node 3 exited while starting"), std::string::npos)
      << restarted.second;
  EXPECT_NE(restarted.second.find("refused the handshake as disowned"), std::string::npos)
      << restarted.second;
  EXPECT_NE(restarted.second.find("`statekv cluster add-node`, then `statekv cluster "
                                  "remove-node --id 3`"),
            std::string::npos)
      << restarted.second;
  EXPECT_NE(cluster.logs().find("knew node 3 with data directory incarnation"), std::string::npos)
      << "the peers' logs do not say why they refuse node 3";
  // It never took part: the groups' members and their data are as they were.
  std::this_thread::sleep_for(300ms);
  for (int n : {1, 2}) ASSERT_NO_FATAL_FAILURE(cluster.writable(cluster.port(n)));

  // A new node takes its place while it is down (as both survivors see it:
  // CLUSTER INFO's statekv_down_nodes, the replica controller's view), then
  // it is removed.
  for (int n : {1, 2}) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    std::string info;
    while (std::chrono::steady_clock::now() < deadline) {
      auto c = RedisClient::connect(cluster.port(n), 1s);
      if (c.ok()) {
        auto r = c->bulk({"CLUSTER", "INFO"});
        if (r.ok()) info = *r;
      }
      if (info.find("statekv_down_nodes:3\r\n") != std::string::npos) break;
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_NE(info.find("statekv_down_nodes:3\r\n"), std::string::npos) << n << ": " << info;
  }
  auto started = std::chrono::steady_clock::now();
  auto add = run_statekv({"cluster", "add-node", "--data", cluster.data});
  ASSERT_EQ(add.first, 0) << add.second;
  // Node 4's share came from node 3, which is down (coord/replica_moves.h,
  // replica_targets): each move gave a shard back its third live replica, and
  // no group gave up a live one on node 1 or 2.
  const auto after_add = cluster.groups();
  ASSERT_FALSE(after_add.empty());
  size_t on_4 = 0;
  for (const auto& g : after_add) {
    EXPECT_TRUE(g.contains(1) && g.contains(2)) << "a live replica moved while node 3 was down:\n"
                                                << add.second << "\n"
                                                << cluster.logs();
    on_4 += g.contains(4) ? 1 : 0;
  }
  EXPECT_GT(on_4, 0u) << add.second;
  clients.set_ports({cluster.port(1), cluster.port(2), cluster.port(4)});
  auto remove = run_statekv({"cluster", "remove-node", "--id", "3", "--data", cluster.data});
  ASSERT_EQ(remove.first, 0) << remove.second;
  std::printf("add-node, then remove-node of the node that lost its data: %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - started)
                                         .count()));
  ASSERT_NO_FATAL_FAILURE(stop_and_judge(cluster, clients, {1, 2, 4}));
}

// A node whose store (RocksDB) was lost but whose log was kept keeps its raft
// votes and log: its peers take it back, and each of its replicas, its log
// compacted past what the store holds, takes the shard from its leader as a
// snapshot before it serves or leads again (raft.h, "A machine that lost its
// kept state"). Clients run throughout; the history is judged linearizable,
// and node 3's own replicas then answer every key as the leaders do.
TEST(ReplicaMoveDead, ANodeThatLostItsStoreButKeptItsLogTakesSnapshotsAndServesAgain) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  Cluster cluster("replica-lost-store");
  cluster.engine = "rocksdb";
  cluster.compact_entries = 100;  // the groups' logs compact behind store flushes soon
  ASSERT_NO_FATAL_FAILURE(cluster.up());
  HistoryClients clients({cluster.port(1), cluster.port(2), cluster.port(3)}, 6, kKeys, kPrefix);
  std::this_thread::sleep_for(2s);

  ASSERT_NO_FATAL_FAILURE(kill_node3_and_delete(cluster, clients, "rocksdb"));
  auto restarted = run_statekv({"cluster", "restart-missing", "--data", cluster.data});
  ASSERT_EQ(restarted.first, 0) << restarted.second;
  clients.set_ports({cluster.port(1), cluster.port(2), cluster.port(3)});

  // Node 3's replicas said what happened, and took snapshots.
  const auto node3_log = [&] {
    std::ifstream in(cluster.data + "/node3/statekv.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline &&
         node3_log().find("restored a snapshot") == std::string::npos) {
    std::this_thread::sleep_for(50ms);
  }
  const std::string log = node3_log();
  EXPECT_NE(log.find("the store lost data"), std::string::npos)
      << "no group of node 3 had its log compacted past the lost store: the test tests nothing";
  EXPECT_NE(log.find("restored a snapshot"), std::string::npos) << log.substr(log.size() / 2);
  // Received into a file, not memory (coord/snapshot_staging.h), which is
  // gone once restored.
  EXPECT_NE(log.find("in the background, staged in a file"), std::string::npos)
      << log.substr(log.size() / 2);
  std::this_thread::sleep_for(1s);
  for (const auto& staged :
       std::filesystem::directory_iterator(cluster.data + "/node3/snapshot-staging")) {
    ADD_FAILURE() << "a staged snapshot outlived its restore: " << staged.path();
  }
  ASSERT_NO_FATAL_FAILURE(stop_and_judge(cluster, clients, {1, 2, 3}));

  // Its own replicas (eventual reads: served by the member asked) hold what
  // the leaders hold.
  auto three = RedisClient::connect(cluster.port(3));
  auto one = RedisClient::connect(cluster.port(1));
  ASSERT_TRUE(three.ok() && one.ok());
  for (size_t k = 0; k < kKeys; ++k) {
    const std::string key = kPrefix + "k" + std::to_string(k);
    const std::string leaders = one->cmd({"GET", key});
    std::string local;
    for (int attempt = 0; attempt < 50; ++attempt) {  // applying the last entries
      local = three->cmd({"WITH", "eventual", "GET", key});
      if (local == leaders) break;
      std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(local, leaders) << key;
  }
}

// A follower restores a snapshot in pieces (one engine write each, so that no
// one write holds the node's others for the whole shard), the group's position
// replaced by a restoring mark until the last piece writes the snapshot's.
// Node 3 is killed, 4,500 keys written (about 1,500 a shard: two pieces each),
// and node 3 started again with the fault that makes it exit after the first
// piece of a restore, as a kill -9 there would. Started once more, its replica
// finds the mark, keeps its log and votes, serves nothing until its leader's
// snapshot is restored whole, and then answers every key as the leaders do.
// Clients run throughout; their history is judged linearizable.
TEST(ReplicaMoveDead, ARestoreCutShortBetweenItsPiecesIsTakenAgainWholeAfterARestart) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  Cluster cluster("replica-restore-cut");
  cluster.engine = "rocksdb";
  cluster.compact_entries = 500;  // node 3 will need snapshots: its leaders compact
  ASSERT_NO_FATAL_FAILURE(cluster.up());
  HistoryClients clients({cluster.port(1), cluster.port(2), cluster.port(3)}, 6, kKeys, kPrefix);
  std::this_thread::sleep_for(1s);

  clients.set_ports({cluster.port(1), cluster.port(2)});
  const pid_t killed = node_pid(cluster.data, 3);
  ASSERT_EQ(::kill(killed, SIGKILL), 0);
  constexpr int kBulk = 4500;
  const auto load_started = std::chrono::steady_clock::now();
  {
    // In batches of 500; what a group refuses while it elects a leader in
    // node 3's place is sent again.
    auto c = RedisClient::connect(cluster.port(1));
    ASSERT_TRUE(c.ok());
    std::vector<int> pending(kBulk);
    for (int i = 0; i < kBulk; ++i) pending[i] = i;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!pending.empty() && std::chrono::steady_clock::now() < deadline) {
      std::vector<int> again;
      for (size_t from = 0; from < pending.size(); from += 500) {
        const size_t to = std::min(pending.size(), from + 500);
        for (size_t j = from; j < to; ++j) {
          const int i = pending[j];
          c->append({"SET", fmt::format("{}bulk:{}", kPrefix, i), std::string(100, 'a' + i % 26)});
        }
        for (size_t j = from; j < to; ++j) {
          auto reply = c->read_reply();
          ASSERT_TRUE(reply.ok()) << reply.status().to_string();
          if (*reply != "+OK") again.push_back(pending[j]);
        }
      }
      pending = std::move(again);
      if (!pending.empty()) std::this_thread::sleep_for(100ms);
    }
    ASSERT_TRUE(pending.empty()) << pending.size() << " SETs not acknowledged in 30 s";
  }
  std::printf("%d SETs through node 1 while node 3 is down: %lld ms\n", kBulk,
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - load_started)
                                         .count()));
  const std::string node3_log_path = cluster.data + "/node3/statekv.log";
  const auto node3_log = [&] {
    std::ifstream in(node3_log_path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  const auto wait_for = [&](const std::string& line, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline &&
           node3_log().find(line) == std::string::npos) {
      std::this_thread::sleep_for(20ms);
    }
    return node3_log().find(line) != std::string::npos;
  };

  // Back with the fault: it exits after the first piece of its first restore.
  ::setenv("STATEKV_FAULT_RESTORE_EXIT_AFTER_PIECES", "1", 1);
  auto t0 = std::chrono::steady_clock::now();
  auto faulty = run_statekv({"cluster", "restart-missing", "--data", cluster.data});
  ::unsetenv("STATEKV_FAULT_RESTORE_EXIT_AFTER_PIECES");
  std::printf("faulty restart-missing: exit %d after %lld ms\n", faulty.first,
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - t0)
                                         .count()));
  ASSERT_TRUE(wait_for("exiting after piece 1 of a snapshot's restore", 20s))
      << faulty.second << node3_log();
  const pid_t faulty_pid = node_pid(cluster.data, 3);
  for (int i = 0; i < 500 && faulty_pid != killed && ::kill(faulty_pid, 0) == 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  const std::string cut_log = node3_log();

  // Back without it: the cut restore is found and taken again, whole.
  auto restarted = run_statekv({"cluster", "restart-missing", "--data", cluster.data});
  ASSERT_EQ(restarted.first, 0) << restarted.second;
  clients.set_ports({cluster.port(1), cluster.port(2), cluster.port(3)});
  ASSERT_TRUE(wait_for("a snapshot's restore was cut short here", 10s))
      << "no group of node 3 found the restoring mark:\n"
      << node3_log();
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  std::string log = node3_log();
  while (std::chrono::steady_clock::now() < deadline &&
         log.find("restored a snapshot", log.find("was cut short here")) == std::string::npos) {
    std::this_thread::sleep_for(50ms);
    log = node3_log();
  }
  ASSERT_NE(log.find("restored a snapshot", log.find("was cut short here")), std::string::npos)
      << log;
  std::this_thread::sleep_for(1s);
  ASSERT_NO_FATAL_FAILURE(stop_and_judge(cluster, clients, {1, 2, 3}));

  // Node 3's replicas (eventual reads: served by the member asked) hold every
  // key as the leaders do.
  auto three = RedisClient::connect(cluster.port(3));
  auto one = RedisClient::connect(cluster.port(1));
  ASSERT_TRUE(three.ok() && one.ok());
  std::vector<std::string> keys;
  for (size_t k = 0; k < kKeys; ++k) keys.push_back(kPrefix + "k" + std::to_string(k));
  for (int i = 0; i < kBulk; ++i) keys.push_back(fmt::format("{}bulk:{}", kPrefix, i));
  size_t differ = 0;
  for (int attempt = 0; attempt < 50; ++attempt) {  // applying the last entries
    for (const std::string& key : keys) {
      one->append({"GET", key});
      three->append({"WITH", "eventual", "GET", key});
    }
    differ = 0;
    std::string first_differing;
    for (const std::string& key : keys) {
      auto leaders = one->read_reply();
      auto local = three->read_reply();
      ASSERT_TRUE(leaders.ok() && local.ok());
      if (*leaders != *local) {
        if (differ++ == 0) first_differing = key + ": " + *leaders + " / " + *local;
      }
    }
    if (differ == 0) break;
    if (attempt == 49) ADD_FAILURE() << differ << " keys differ, first " << first_differing;
    std::this_thread::sleep_for(100ms);
  }
  std::printf(
      "node 3 cut after one piece of a restore, restarted: %zu keys all equal to the "
      "leaders'\n",
      keys.size());
  (void)cut_log;
}

// Replicas moving while nodes fail: a seeded schedule adds nodes and removes
// others (add-node, remove-node) while, beside it, a member is killed with
// SIGKILL and started again (`cluster restart-missing`) or paused with
// SIGSTOP and continued, one at a time; a removal may find its node killed or
// paused (it then goes as a dead node, its replicas re-created from the
// others). Clients run throughout; every group ends at factor 3 on the
// members, and the history, with a read of every key through every member,
// is judged linearizable. STATEKV_NEMESIS_SEED replays a schedule.
void run_moves_nemesis(int cycles) {
  Cluster cluster("replica-move-nemesis");
  cluster.default_replication = "consensus";
  cluster.ports_needed = static_cast<uint16_t>(3 + cycles);  // a node added per cycle
  // The nodes' logs, kept when the run fails (its directory goes with it).
  struct KeepLogs {
    const Cluster& cluster;
    ~KeepLogs() {
      if (!::testing::Test::HasFailure()) return;
      const std::string kept = fmt::format("/tmp/statekv-moves-nemesis-logs-{}", ::getpid());
      std::filesystem::create_directories(kept);
      for (int n = 1; n <= 16; ++n) {
        std::error_code ec;
        std::filesystem::copy_file(cluster.data + "/node" + std::to_string(n) + "/statekv.log",
                                   kept + "/node" + std::to_string(n) + ".log",
                                   std::filesystem::copy_options::overwrite_existing, ec);
      }
      std::printf("node logs kept in %s\n", kept.c_str());
    }
  } keep{cluster};
  ASSERT_NO_FATAL_FAILURE(cluster.up());
  const uint64_t seed = nemesis_seed();
  std::printf("moves nemesis seed %llu (STATEKV_NEMESIS_SEED replays it), %d cycles\n",
              static_cast<unsigned long long>(seed), cycles);
  std::mutex mu;
  std::set<int> members = {1, 2, 3};
  const auto ports_of = [&](const std::set<int>& nodes) {
    std::vector<uint16_t> out;
    for (int n : nodes) out.push_back(cluster.port(n));
    return out;
  };
  HistoryClients clients(ports_of(members), 6, kKeys, kPrefix);
  // A cluster command that found another one running (they take the data
  // directory's start lock) is tried again.
  const auto cluster_command = [&](const std::vector<std::string>& args) {
    std::pair<int, std::string> r;
    for (int attempt = 0; attempt < 600; ++attempt) {
      r = run_statekv(args);
      if (r.first == 0 || r.second.find("another command is starting nodes") == std::string::npos) {
        return r;
      }
      std::this_thread::sleep_for(100ms);
    }
    return r;
  };

  std::atomic<bool> stop{false};
  std::vector<std::string> faults;
  std::thread nemesis([&] {
    std::mt19937_64 rng(seed * 7 + 1);
    const auto pick = [&](int lo, int hi) {
      return std::uniform_int_distribution<int>(lo, hi)(rng);
    };
    while (!stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(pick(300, 1200)));
      int node = 0;
      {
        std::lock_guard lock(mu);
        auto it = members.begin();
        std::advance(it, pick(0, static_cast<int>(members.size()) - 1));
        node = *it;
      }
      const pid_t pid = node_pid(cluster.data, node);
      if (pid <= 0) continue;
      const auto held = std::chrono::milliseconds(pick(500, 2000));
      if (pick(0, 1) == 0) {
        faults.push_back("kill node " + std::to_string(node));
        ::kill(pid, SIGKILL);
        std::this_thread::sleep_for(held);
        cluster_command({"cluster", "restart-missing", "--data", cluster.data});
      } else {
        faults.push_back("pause node " + std::to_string(node));
        ::kill(pid, SIGSTOP);
        std::this_thread::sleep_for(held);
        ::kill(pid, SIGCONT);
      }
    }
  });

  std::mt19937_64 rng(seed);
  int next_node = 4;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    auto add = cluster_command({"cluster", "add-node", "--data", cluster.data});
    EXPECT_EQ(add.first, 0) << add.second;
    if (add.first != 0) break;
    {
      std::lock_guard lock(mu);
      members.insert(next_node++);
      clients.set_ports(ports_of(members));
    }
    int leaving = 0;
    {
      std::lock_guard lock(mu);
      auto it = members.begin();
      std::advance(
          it, std::uniform_int_distribution<int>(0, static_cast<int>(members.size()) - 2)(rng));
      leaving = *it;  // never the node just added
      std::set<int> staying = members;
      staying.erase(leaving);
      clients.set_ports(ports_of(staying));
    }
    auto remove = cluster_command(
        {"cluster", "remove-node", "--id", std::to_string(leaving), "--data", cluster.data});
    EXPECT_EQ(remove.first, 0) << remove.second;
    if (remove.first != 0) break;
    std::lock_guard lock(mu);
    members.erase(leaving);
    std::printf("  cycle %d: added node %d, removed node %d\n", cycle + 1, next_node - 1, leaving);
  }
  stop = true;
  nemesis.join();
  for (const std::string& f : faults) std::printf("  fault: %s\n", f.c_str());
  // Everything back: paused nodes continued, killed ones started.
  for (int n : members) {
    const pid_t pid = node_pid(cluster.data, n);
    if (pid > 0) ::kill(pid, SIGCONT);
  }
  auto restarted = cluster_command({"cluster", "restart-missing", "--data", cluster.data});
  EXPECT_EQ(restarted.first, 0) << restarted.second;
  for (int n : members) ASSERT_NO_FATAL_FAILURE(cluster.writable(cluster.port(n)));
  ASSERT_NO_FATAL_FAILURE(stop_and_judge(cluster, clients, members));
}

TEST(ReplicaMoveNemesis, MovesUnderKillsAndPausesKeepTheHistoryLinearizable) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  run_moves_nemesis(2);
}

TEST(ReplicaMoveNemesis, SoakMovesUnderKillsAndPausesKeepTheHistoryLinearizable) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  const char* c = std::getenv("STATEKV_NEMESIS_CYCLES");
  run_moves_nemesis(c != nullptr ? std::atoi(c) : 12);
}

}  // namespace
}  // namespace statekv::itest
