// Raft per shard with real processes: a local cluster made by `statekv
// cluster up`, a REPLICATION consensus keyspace of factor 3, clients reading
// and writing through every node while each node in turn is killed with
// SIGKILL and restarted; the clients' history judged by `statekv check
// linearizable`, and what each kill cost measured.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "check/history.h"
#include "net/blocking_connection.h"
#include "net/peer_incarnations.h"
#include "net/wire.h"
#include "replication/codec.h"
#include "replication/raft/messages.h"
#include "support/history_clients.h"
#include "support/local_cluster.h"
#include "support/program.h"
#include "support/redis_client.h"
#include "support/server_process.h"
#include "support/small_disk.h"
#include "support/statekv_cli.h"
#include "support/temp_dir.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

pid_t node_pid(const std::string& data, int node) {
  std::ifstream in(data + "/node" + std::to_string(node) + "/pid");
  pid_t pid = 0;
  in >> pid;
  return pid;
}

// Until `key` can be written through `port`; how long that took.
Result<Clock::duration> time_until_writable(uint16_t port, const std::string& key,
                                            Clock::duration limit) {
  const auto start = Clock::now();
  while (Clock::now() - start < limit) {
    auto c = RedisClient::connect(port, 1s);
    if (c.ok()) {
      auto r = c->command({"SET", key, "probe"});
      if (r.ok() && *r == "+OK") return Clock::now() - start;
    }
    std::this_thread::sleep_for(10ms);
  }
  return Status::Timeout(key + " not writable through port " + std::to_string(port));
}

// A local 3-node cluster on the memory engine (a restarted node then has
// nothing but its raft logs, so what it serves after a restart came back
// through replication), stopped when the test ends.
struct ThreeNodes {
  explicit ThreeNodes(const std::string& name) : dir(name), data(dir.path() + "/data") {}

  // `cluster up` with `extra` flags; every node answers when it returns.
  void up(const std::vector<std::string>& extra = {}, const std::string& engine = "memory") {
    const uint16_t base = pick_cluster_base_port(3);
    ASSERT_NE(base, 0);
    std::vector<std::string> args = {
        "cluster", "up", "--nodes",  "3",    "--base-port", std::to_string(base),
        "--data",  data, "--engine", engine, "--detach"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto started = run_statekv(args);
    down.reset(new LocalClusterGuard{data});
    ASSERT_EQ(started.first, 0) << started.second;
    ports = {base, static_cast<uint16_t>(base + 1), static_cast<uint16_t>(base + 2)};
  }
  // Until `key` is writable through every node (leaders elected).
  void writable_everywhere(const std::string& key) {
    for (uint16_t port : ports) {
      auto t = time_until_writable(port, key, 10s);
      ASSERT_TRUE(t.ok()) << t.status().to_string();
    }
  }

  TempDir dir;
  std::string data;
  std::vector<uint16_t> ports;
  std::unique_ptr<LocalClusterGuard> down;  // destroyed first: the nodes stop before dir goes
};

// Every node answers GET r:k0 .. r:k<keys - 1> as the first one does.
void expect_every_node_answers_alike(const std::vector<uint16_t>& ports, int keys) {
  for (int k = 0; k < keys; ++k) {
    const std::string key = "r:k" + std::to_string(k);
    std::optional<std::string> first;
    for (uint16_t port : ports) {
      auto c = RedisClient::connect(port);
      ASSERT_TRUE(c.ok());
      auto v = c->command({"GET", key});
      ASSERT_TRUE(v.ok());
      if (!first) first = *v;
      EXPECT_EQ(*v, *first) << key << " through port " << port;
    }
  }
}

// Defined below.
void create_replicated_keyspace(uint16_t port, const std::vector<uint16_t>& ports);

TEST(Replication, ConsensusKeyspaceSurvivesSigkillOfEachNodeAndStaysLinearizable) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  ThreeNodes cluster("replication");
  ASSERT_NO_FATAL_FAILURE(cluster.up());
  const std::string& data = cluster.data;
  const std::vector<uint16_t>& ports = cluster.ports;
  const uint16_t base = ports[0];
  ASSERT_NO_FATAL_FAILURE(create_replicated_keyspace(base, ports));

  HistoryClients clients(ports, 6, 12, "r:");
  std::this_thread::sleep_for(700ms);
  for (int node = 1; node <= 3; ++node) {
    const pid_t pid = node_pid(data, node);
    ASSERT_GT(pid, 0);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    // Every shard writable again through a surviving node: 30 probe keys
    // cover the keyspace's 3 shards (each misses one with odds 5e-6).
    const uint16_t survivor = ports[static_cast<size_t>(node % 3)];
    Clock::duration worst{};
    for (int k = 0; k < 30; ++k) {
      auto t = time_until_writable(survivor, "r:probe" + std::to_string(k), 10s);
      ASSERT_TRUE(t.ok()) << t.status().to_string();
      worst = std::max(worst, *t);
    }
    const auto worst_ms = std::chrono::duration_cast<std::chrono::milliseconds>(worst).count();
    std::printf("node %d killed: every shard writable again after %lld ms\n", node,
                static_cast<long long>(worst_ms));
    EXPECT_LT(worst_ms, 3000) << "node " << node;
    std::this_thread::sleep_for(500ms);  // load goes on with the node down
    auto restarted = run_statekv({"cluster", "restart-missing", "--data", data});
    ASSERT_EQ(restarted.first, 0) << restarted.second;
    std::this_thread::sleep_for(700ms);
  }
  clients.stop();
  std::printf("clients: %zu operations acknowledged, %zu failed or unknown\n", clients.ok_count(),
              clients.error_count());
  EXPECT_GT(clients.ok_count(), 300u) << "too little load to mean anything";

  const check::History history = clients.history();
  const std::string file = cluster.dir.path() + "/history.jsonl";
  ASSERT_TRUE(check::write_history_file(file, history).ok());
  auto verdict = run_statekv({"check", "linearizable", file});
  EXPECT_EQ(verdict.first, 0) << verdict.second;

  // WAIT: how many replicas besides the leader hold this connection's last
  // write; with one node down, at most one can.
  {
    auto c = RedisClient::connect(base);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->cmd({"WAIT", "2", "100"}), ":0") << "nothing written yet";
    EXPECT_EQ(c->cmd({"SET", "r:waited", "1"}), "+OK");
    EXPECT_EQ(c->cmd({"WAIT", "2", "2000"}), ":2");
    auto locate = c->command({"LOCATE", "r:waited"});
    ASSERT_TRUE(locate.ok());
    EXPECT_NE(locate->find("replicas"), std::string::npos) << *locate;
    EXPECT_NE(locate->find("leader"), std::string::npos) << *locate;
    const pid_t pid = node_pid(data, 3);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    std::this_thread::sleep_for(300ms);
    auto written = c->command({"SET", "r:waited", "2"});
    ASSERT_TRUE(written.ok());
    if (*written == "+OK") {
      // The shard's leader may have been node 3: then this write went to the
      // new leader. Either way one follower at most can hold it now.
      EXPECT_EQ(c->cmd({"WAIT", "2", "300"}), ":1");
    }
    auto restarted = run_statekv({"cluster", "restart-missing", "--data", data});
    ASSERT_EQ(restarted.first, 0) << restarted.second;
    auto back = time_until_writable(ports[2], "r:back", 10s);  // it knows the map again
    ASSERT_TRUE(back.ok()) << back.status().to_string();
  }

  // Every node answers the same for every key (each asks the key's leader).
  expect_every_node_answers_alike(ports, 12);
}

// Where a test fills node 2's disk: the whole data directory (the
// write-ahead log fills first), or the RocksDB store's alone (a memtable
// flush fails while the log still has room).
struct DiskToFill {
  std::string engine;
  std::string subdir;       // under node2/: "wal" or "rocksdb"
  int megabytes;            // the tmpfs's size
  bool random_values;       // incompressible (RocksDB compresses its tables)
  std::string log_failure;  // what node 2's log says when it stops
};

// A node whose disk fills stops (what it can no longer write is what raft
// needs it to keep, or what its replicas must hold), the other two serve
// every shard, and once there is room again `cluster restart-missing` brings
// it back to catch up. Real processes; the clients' history is judged
// linearizable and every node answers every key alike at the end.
void disk_fills_then_room_again(const DiskToFill& fill) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  SmallDisk disk;  // unmounted after the cluster below is down
  ThreeNodes cluster("diskfull");
  disk.remove_after_unmount(cluster.dir.path());  // its mount point stays until then
  ASSERT_NO_FATAL_FAILURE(cluster.up({}, fill.engine));
  const std::string& data = cluster.data;
  const std::vector<uint16_t>& ports = cluster.ports;
  ASSERT_NO_FATAL_FAILURE(create_replicated_keyspace(ports[0], ports));

  // Node 2 onto the small disk: stopped, the directory moved aside, the tmpfs
  // mounted in its place, the files copied back, started again.
  const std::string node2 = data + "/node2";
  const std::string small = node2 + "/" + fill.subdir;
  const pid_t first = node_pid(data, 2);
  ASSERT_GT(first, 0);
  ASSERT_EQ(::kill(first, SIGTERM), 0);
  for (int i = 0; i < 500 && ::kill(first, 0) == 0; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_EQ(shell("mv " + small + " " + small + ".disk && mkdir " + small).first, 0);
  if (auto why = disk.mount(small, fill.megabytes)) {
    shell("rmdir " + small + " && mv " + small + ".disk " + small);
    GTEST_SKIP() << *why;
  }
  ASSERT_EQ(shell("cp -a " + small + ".disk/. " + small + "/").first, 0);
  auto restarted = run_statekv({"cluster", "restart-missing", "--data", data});
  ASSERT_EQ(restarted.first, 0) << restarted.second;
  const pid_t on_small_disk = node_pid(data, 2);
  ASSERT_GT(on_small_disk, 0);

  HistoryClients clients(ports, 6, 12, "r:");
  // Large writes through node 1 fill node 2's disk (every member logs and
  // stores them).
  std::atomic<bool> filling{true};
  std::thread filler([&] {
    auto c = RedisClient::connect(ports[0]);
    if (!c.ok()) return;
    std::mt19937_64 rng(7);
    std::string value(16 * 1024, 'x');
    for (int i = 0; filling.load(); ++i) {
      if (fill.random_values) {
        for (char& ch : value) ch = static_cast<char>('!' + rng() % 90);
      }
      (void)c->command({"SET", "r:big" + std::to_string(i % 200), value});
    }
  });
  const auto started = Clock::now();
  while (::kill(on_small_disk, 0) == 0 && Clock::now() - started < 60s) {
    std::this_thread::sleep_for(20ms);
  }
  const auto stopped_after = Clock::now() - started;
  filling = false;
  filler.join();
  ASSERT_NE(::kill(on_small_disk, 0), 0) << "node 2 still runs on a full disk";
  std::printf("node 2 stopped %.1f s into the load\n",
              std::chrono::duration<double>(stopped_after).count());
  std::string log;
  {
    std::ifstream in(node2 + "/statekv.log");
    log.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  EXPECT_NE(log.find(fill.log_failure), std::string::npos) << log;
  EXPECT_NE(log.find("No space left on device"), std::string::npos);
  EXPECT_NE(log.find("critical statekv stopped: this node's"), std::string::npos);

  // The other two serve every shard: 30 probe keys through node 1 and node 3.
  Clock::duration worst{};
  for (uint16_t port : {ports[0], ports[2]}) {
    for (int k = 0; k < 30; ++k) {
      auto t = time_until_writable(port, "r:probe" + std::to_string(k), 10s);
      ASSERT_TRUE(t.ok()) << t.status().to_string();
      worst = std::max(worst, *t);
    }
  }
  // (Node 2 hands its groups over before it exits: what the failure cost the
  // clients is the longest stretch without an acknowledged operation, below.)
  std::printf(
      "after node 2 stopped, every shard took a write through nodes 1 and 3 within %lld ms\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(worst).count()));
  EXPECT_LT(worst, 3s);

  // Room again: node 2 comes back with its directory and catches up.
  ASSERT_TRUE(disk.grow(512));
  restarted = run_statekv({"cluster", "restart-missing", "--data", data});
  ASSERT_EQ(restarted.first, 0) << restarted.second;
  auto back = time_until_writable(ports[1], "r:back", 10s);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  std::this_thread::sleep_for(1s);  // load on all three again

  clients.stop();
  const check::History history = clients.history();
  const auto gap = longest_gap_ms(history);
  std::printf(
      "clients: %zu operations acknowledged, %zu failed or unknown; longest time without an "
      "acknowledged operation: %lld ms\n",
      clients.ok_count(), clients.error_count(), static_cast<long long>(gap.first));
  EXPECT_GT(clients.ok_count(), 300u) << "too little load to mean anything";
  EXPECT_LT(gap.first, 3000) << "no operation acknowledged for that long";
  const std::string file = cluster.dir.path() + "/history.jsonl";
  ASSERT_TRUE(check::write_history_file(file, history).ok());
  auto verdict = run_statekv({"check", "linearizable", file});
  EXPECT_EQ(verdict.first, 0) << verdict.second;

  // Every node answers every key alike; node 2 from what it caught up on.
  expect_every_node_answers_alike(ports, 12);
}

// Node 2's write-ahead log directory on a 16 MB tmpfs: the log fills. (Its
// log file stays on the real disk: on a full one the node's last lines, which
// the test reads, may not fit.)
TEST(Replication, ANodeWhoseLogDiskFillsStopsAndComesBackOnceThereIsRoom) {
  disk_fills_then_room_again(
      DiskToFill{.engine = "memory",
                 .subdir = "wal",
                 .megabytes = 16,
                 .random_values = false,
                 .log_failure = "the write-ahead log failed, shutting down"});
}

// Node 2's RocksDB directory on an 8 MB tmpfs, its log on the real disk: a
// flush fails, the store refuses every write after, and applying a committed
// entry fails.
TEST(Replication, ANodeWhoseStoreDiskFillsStopsAndComesBackOnceThereIsRoom) {
  disk_fills_then_room_again(
      DiskToFill{.engine = "rocksdb",
                 .subdir = "rocksdb",
                 .megabytes = 8,
                 .random_values = true,
                 .log_failure = "the store cannot write committed entries, shutting down"});
}

// Reads served below linearizable, per member, from INFO replication: the
// sum of reads_local over the groups this node follows.
uint64_t follower_reads(uint16_t port) {
  auto c = RedisClient::connect(port);
  if (!c.ok()) return 0;
  auto info = c->bulk({"INFO", "replication"});
  if (!info.ok()) return 0;
  uint64_t total = 0;
  size_t at = 0;
  while ((at = info->find("statekv_group_", at)) != std::string::npos) {
    const size_t end = info->find("\r\n", at);
    const std::string line =
        info->substr(at, end == std::string::npos ? std::string::npos : end - at);
    at += 14;
    if (line.find("role=follower") == std::string::npos) continue;
    const size_t r = line.find("reads_local=");
    if (r != std::string::npos) total += std::stoull(line.substr(r + 12));
  }
  return total;
}

// Over INFO replication of the node at `port`: the sum of `field` (a number)
// over the groups of keyspace `keyspace`.
uint64_t sum_group_field(uint16_t port, const std::string& keyspace, const std::string& field) {
  auto c = RedisClient::connect(port);
  if (!c.ok()) return 0;
  auto info = c->bulk({"INFO", "replication"});
  if (!info.ok()) return 0;
  uint64_t total = 0;
  std::regex line_re("statekv_group_[0-9]+:keyspace=" + keyspace + ",[^\r\n]*");
  for (auto it = std::sregex_iterator(info->begin(), info->end(), line_re);
       it != std::sregex_iterator(); ++it) {
    const std::string line = it->str();
    const size_t at = line.find("," + field + "=");
    if (at != std::string::npos) total += std::stoull(line.substr(at + field.size() + 2));
  }
  return total;
}

// How many of `expected` (key -> value) `client` does not read back as they are.
size_t wrong_reads(RedisClient& client, const std::map<std::string, std::string>& expected) {
  size_t wrong = 0;
  for (const auto& [key, value] : expected) {
    auto got = client.bulk({"GET", key});
    if (!got.ok() || *got != value) ++wrong;
  }
  return wrong;
}

// Waits up to 10 s until every node's groups of keyspace "rep" have compacted
// their logs (past a store flush), then checks that they have.
void expect_every_node_compacted(const std::vector<uint16_t>& ports) {
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline &&
         std::any_of(ports.begin(), ports.end(),
                     [](uint16_t p) { return sum_group_field(p, "rep", "compacted") == 0; })) {
    std::this_thread::sleep_for(100ms);
  }
  for (uint16_t p : ports) {
    EXPECT_GT(sum_group_field(p, "rep", "compacted"), 0u) << "node on port " << p;
  }
}

// RocksDB nodes (docs/replication.md, "Compaction without copying the
// shard"): the groups' logs compact behind store flushes, a node killed after
// that restarts from its own store and what its log kept, catches up from
// snapshots its leaders stream from their stores where they compacted past it,
// and serves every acknowledged write from its own state.
// Pipelined SETs into `expected`, 100 at a time, of keys r:k0..r:k399:
// key k % 400 gets tag + k, then `pad` bytes.
void write_round(RedisClient& writer, std::map<std::string, std::string>& expected, int from,
                 int to, const std::string& tag, size_t pad = 0) {
  for (int i = from; i < to; i += 100) {
    for (int k = i; k < std::min(i + 100, to); ++k) {
      const std::string key = "r:k" + std::to_string(k % 400);
      std::string value = tag + std::to_string(k);
      value.append(pad, static_cast<char>('a' + k % 26));
      writer.append({"SET", key, value});
      expected[key] = std::move(value);
    }
    for (int k = i; k < std::min(i + 100, to); ++k) {
      auto r = writer.read_reply();
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      ASSERT_EQ(*r, "+OK");
    }
  }
}

// A client of the node on `port` that reads at the sequential level after
// `writer`'s session: served by that node once its applied state covers
// every write of the session.
void connect_sequential_reader_after(RedisClient& writer, uint16_t port,
                                     std::optional<RedisClient>& reader) {
  auto token = writer.bulk({"SESSION", "TOKEN"});
  ASSERT_TRUE(token.ok()) << token.status().to_string();
  auto connected = RedisClient::connect(port);
  ASSERT_TRUE(connected.ok());
  reader.emplace(std::move(connected).value());
  ASSERT_EQ(reader->cmd({"CONSISTENCY", "sequential"}), "+OK");
  ASSERT_EQ(reader->cmd({"SESSION", "AFTER", *token}), "+OK");
}

// A 3-node RocksDB cluster (--group-compact-entries 300) and the keyspace
// "rep"; writes until every node compacted, kills node 2, and writes on
// (values of `pad` bytes more) until the others compacted their logs past
// what it holds: started again, it needs snapshots. `before_restart` runs
// while it is down.
void restart_a_node_behind_the_compaction(LocalCluster& cluster, std::optional<RedisClient>& writer,
                                          std::map<std::string, std::string>& expected, size_t pad,
                                          const std::function<void()>& before_restart) {
  ASSERT_TRUE(cluster.start().ok());
  const std::vector<uint16_t> ports = {cluster.port(0), cluster.port(1), cluster.port(2)};
  ASSERT_NO_FATAL_FAILURE(create_replicated_keyspace(ports[0], ports));
  auto connected = RedisClient::connect(ports[0]);
  ASSERT_TRUE(connected.ok());
  writer.emplace(std::move(connected).value());
  // 400 keys written 8 times over.
  ASSERT_NO_FATAL_FAILURE(write_round(*writer, expected, 0, 3200, "a"));
  expect_every_node_compacted(ports);

  cluster.node(1).kill();
  // A leader keeps the entries a follower it heard from within an election
  // timeout (500 ms) lacks (Raft::compaction_limit): count the compactions
  // from when node 2 no longer counts as such. Counted from the kill, those
  // of the first half second (node 1's follower groups' among them) could end
  // the writes below with the leaders still holding all node 2 needs (a CI
  // run saw no snapshot).
  std::this_thread::sleep_for(1200ms);
  ASSERT_NO_FATAL_FAILURE(write_round(*writer, expected, 3200, 3300, "b", pad));
  const uint64_t compacted_before = sum_group_field(ports[0], "rep", "compacted");
  ASSERT_NO_FATAL_FAILURE(write_round(*writer, expected, 3300, 3600, "b", pad));
  for (int round = 0; round < 10 && sum_group_field(ports[0], "rep", "compacted") <=
                                        compacted_before + 300;
       ++round) {
    ASSERT_NO_FATAL_FAILURE(
        write_round(*writer, expected, 3600, 3900, "c" + std::to_string(round) + "-", pad));
    std::this_thread::sleep_for(600ms);
  }
  if (before_restart) {
    ASSERT_NO_FATAL_FAILURE(before_restart());
  }
  ASSERT_TRUE(cluster.start().ok());
}

TEST(Replication, RocksDbGroupsCompactBehindStoreFlushesAndAKilledNodeRestartsFromItsStore) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  LocalCluster cluster(3, {"--group-compact-entries", "300"}, "rocksdb");
  std::optional<RedisClient> writer;
  std::map<std::string, std::string> expected;
  // Node 2 catches up from snapshots the leaders read a piece at a time from
  // their stores (RocksDB views).
  ASSERT_NO_FATAL_FAILURE(restart_a_node_behind_the_compaction(cluster, writer, expected, 0, {}));
  const std::vector<uint16_t> ports = {cluster.port(0), cluster.port(1), cluster.port(2)};
  EXPECT_GT(sum_group_field(ports[1], "rep", "compacted"), 0u)
      << "the restarted node's logs start from a compaction point";
  const auto caught_up = Clock::now() + 10s;
  while (Clock::now() < caught_up && sum_group_field(ports[1], "rep", "snapshots_installed") == 0) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GT(sum_group_field(ports[1], "rep", "snapshots_installed"), 0u)
      << "the restarted node needed no snapshot: the test no longer covers one";
  EXPECT_GT(sum_group_field(ports[0], "rep", "snapshots_streamed") +
                sum_group_field(ports[2], "rep", "snapshots_streamed"),
            0u)
      << "the leaders built their snapshots whole";
  // INFO replication shows the transfers: once node 2 has installed them, no
  // group of it receives one, no read waits for a thread, and the others'
  // pings no longer say node 2 is receiving (a ping every 200 ms).
  const auto settled = Clock::now() + 5s;
  const auto info_of = [](uint16_t port) {
    auto c = RedisClient::connect(port);
    if (!c.ok()) return std::string();
    auto info = c->bulk({"INFO", "replication"});
    return info.ok() ? *info : std::string();
  };
  std::string node1, node2;
  while (Clock::now() < settled) {
    node1 = info_of(ports[0]);
    node2 = info_of(ports[1]);
    // A snapshot read can outlive the transfer that asked for it by a moment.
    if (node1.find("statekv_peers_receiving_snapshot:\r\n") != std::string::npos &&
        node1.find("statekv_snapshot_reads_waiting:0\r\n") != std::string::npos &&
        node2.find("receiving_snapshot=1") == std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(node1.find("statekv_peers_receiving_snapshot:\r\n"), std::string::npos) << node1;
  EXPECT_NE(node1.find("statekv_snapshot_reads_waiting:0\r\n"), std::string::npos) << node1;
  EXPECT_NE(node2.find("receiving_snapshot=0"), std::string::npos) << node2;
  EXPECT_EQ(node2.find("receiving_snapshot=1"), std::string::npos) << node2;

  // Reads of this session at node 2, from node 2's own state (sequential:
  // served by a member whose applied state covers the session).
  std::optional<RedisClient> reader;
  ASSERT_NO_FATAL_FAILURE(connect_sequential_reader_after(*writer, ports[1], reader));
  const uint64_t local_before = sum_group_field(ports[1], "rep", "reads_local") +
                                sum_group_field(ports[1], "rep", "reads_leader");
  EXPECT_EQ(wrong_reads(*reader, expected), 0u)
      << "of " << expected.size() << " keys read through the restarted node";
  const uint64_t served_here = sum_group_field(ports[1], "rep", "reads_local") +
                               sum_group_field(ports[1], "rep", "reads_leader") - local_before;
  std::printf("reads served by the restarted node itself: %llu of %zu\n",
              static_cast<unsigned long long>(served_here), expected.size());
  EXPECT_GT(served_here, expected.size() / 2) << "the reads were passed on, not served there";
}

// A follower whose disk cannot hold a snapshot's staging file (coord/
// snapshot_staging.h) takes the snapshot in memory: its transfer starts over
// once, not for ever. Node 2's snapshot-staging directory is a 1 MB tmpfs;
// the snapshots it needs hold 400 values of 32 KB over the shards.
TEST(Replication, AFollowerWhoseStagingDiskIsFullTakesItsSnapshotInMemory) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  SmallDisk disk;  // unmounted after the cluster below is down
  LocalCluster cluster(3, {"--group-compact-entries", "300"}, "rocksdb");
  std::optional<RedisClient> writer;
  std::map<std::string, std::string> expected;
  std::optional<std::string> cannot_mount;
  ASSERT_NO_FATAL_FAILURE(
      restart_a_node_behind_the_compaction(cluster, writer, expected, 32 * 1024, [&] {
        const std::string staging = cluster.node(1).data_dir() + "/snapshot-staging";
        ASSERT_EQ(shell("mkdir -p " + staging).first, 0);
        cannot_mount = disk.mount(staging, 1);
        disk.remove_after_unmount(cluster.node(1).data_dir());
      }));
  if (cannot_mount) GTEST_SKIP() << *cannot_mount;
  const std::vector<uint16_t> ports = {cluster.port(0), cluster.port(1), cluster.port(2)};
  const auto caught_up = Clock::now() + 30s;
  while (Clock::now() < caught_up && sum_group_field(ports[1], "rep", "snapshots_installed") == 0) {
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_GT(sum_group_field(ports[1], "rep", "snapshots_installed"), 0u)
      << "node 2 installed no snapshot in 30 s:\n"
      << cluster.node(1).log_tail();
  EXPECT_NE(cluster.node(1).log_tail(200000).find("cannot stage a snapshot"), std::string::npos)
      << "the staging disk never filled: the test no longer covers it\n"
      << cluster.node(1).log_tail();
  // Every key through node 2's own state once it holds the session's writes.
  std::optional<RedisClient> reader;
  ASSERT_NO_FATAL_FAILURE(connect_sequential_reader_after(*writer, ports[1], reader));
  EXPECT_EQ(wrong_reads(*reader, expected), 0u)
      << "of " << expected.size() << " keys read through the restarted node";
}

// A group's log is in memory until compacted: with values of 100 KB, a
// budget of entries (65,536 by default) would hold gigabytes first. Each
// node's groups compact once their entries hold --group-compact-bytes, here
// after about 20 of 60 writes, and every value reads back whole after.
TEST(Replication, LargeValuesCompactTheGroupsLogsByTheirBytes) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  LocalCluster cluster(3, {"--group-compact-bytes", "2000000"}, "rocksdb");
  ASSERT_TRUE(cluster.start().ok());
  const std::vector<uint16_t> ports = {cluster.port(0), cluster.port(1), cluster.port(2)};
  ASSERT_NO_FATAL_FAILURE(create_replicated_keyspace(ports[0], ports));
  auto writer = RedisClient::connect(ports[0]);
  ASSERT_TRUE(writer.ok());
  std::map<std::string, std::string> expected;
  for (int i = 0; i < 60; ++i) {
    const std::string key = "r:big" + std::to_string(i % 20);
    std::string value(100 * 1000, static_cast<char>('a' + i % 26));
    value += std::to_string(i);
    ASSERT_EQ(writer->cmd({"SET", key, value}), "+OK") << i;
    expected[key] = std::move(value);
  }
  expect_every_node_compacted(ports);
  for (uint16_t p : ports) {
    auto reader = RedisClient::connect(p);
    ASSERT_TRUE(reader.ok());
    EXPECT_EQ(wrong_reads(*reader, expected), 0u)
        << "of " << expected.size() << " keys read through port " << p;
  }
}

// A write whose effect is over --group-max-write-bytes is refused before it is
// proposed (one entry that large held every group's data loop and connections
// long enough for elections): a clear error, nothing written, the group
// serving on. Through the leader's node and through another.
TEST(Replication, AWriteOverTheSizeLimitIsRefusedAndNothingHappens) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  LocalCluster cluster(3, {"--group-max-write-bytes", "100000"}, "memory");
  ASSERT_TRUE(cluster.start().ok());
  const std::vector<uint16_t> ports = {cluster.port(0), cluster.port(1), cluster.port(2)};
  ASSERT_NO_FATAL_FAILURE(create_replicated_keyspace(ports[0], ports));
  for (uint16_t p : ports) {
    auto c = RedisClient::connect(p);
    ASSERT_TRUE(c.ok());
    ASSERT_EQ(c->cmd({"SET", "r:small", std::string(50000, 's')}), "+OK");
    const std::string big(200000, 'b');
    const std::string refused = c->cmd({"SET", "r:big", big});
    EXPECT_EQ(refused.rfind("-ERR the write's effect is ", 0), 0u) << refused;
    EXPECT_NE(refused.find("over the 100000-byte limit of a replicated write"), std::string::npos)
        << refused;
    EXPECT_EQ(c->cmd({"EXISTS", "r:big"}), ":0");
    // Many small effects adding up: one MULTI/EXEC is one entry.
    ASSERT_EQ(c->cmd({"MULTI"}), "+OK");
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(c->cmd({"SET", "r:{t}" + std::to_string(i), std::string(40000, 'm')}), "+QUEUED");
    }
    const std::string exec = c->cmd({"EXEC"});
    EXPECT_NE(exec.find("over the 100000-byte limit"), std::string::npos) << exec;
    EXPECT_EQ(c->cmd({"EXISTS", "r:{t}0"}), ":0");
    EXPECT_EQ(c->cmd({"SET", "r:after", "ok"}), "+OK");
    auto got = c->bulk({"GET", "r:small"});
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->size(), 50000u);
  }
}

void create_replicated_keyspace(uint16_t port, const std::vector<uint16_t>& ports) {
  auto c = RedisClient::connect(port);
  ASSERT_TRUE(c.ok());
  auto created = c->command(
      {"KEYSPACE", "CREATE", "rep", "PREFIX", "r:", "REPLICATION", "consensus", "FACTOR", "3"});
  ASSERT_TRUE(created.ok());
  ASSERT_EQ(*created, "+OK");
  for (uint16_t p : ports) {
    auto t = time_until_writable(p, "r:warmup", 10s);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
  }
}

// The shard of `key` by LOCATE through `port` (-1: not known).
int shard_of(uint16_t port, const std::string& key) {
  auto c = RedisClient::connect(port);
  if (!c.ok()) return -1;
  auto located = c->command({"LOCATE", key});
  std::smatch m;
  static const std::regex shard(R"("shard", :(\d+))");
  if (!located.ok() || !std::regex_search(*located, m, shard)) return -1;
  return std::stoi(m[1]);
}

// Pipelines on a consensus keyspace (coord/coordinator.h, "Pipelines to a
// replica group"): a client's commands to one group are in flight together,
// and take effect in the order sent, through leader changes. Each writer, on
// its own node, pipelines batches of `SET a i` then `SET b i` for i = 1, 2, ...
// (a and b in one shard: one pipeline); readers on every node read b, then a,
// and must find a >= b, unless a SET of a to a value in (a, b] got no +OK
// (an error: it did not run, or its outcome is unknown). Each node is killed
// with SIGKILL in turn and restarted. At the end each writer's a and b hold its
// last acknowledged values, or a later one whose outcome was unknown.
TEST(Replication, PipelinedWritesToOneGroupTakeEffectInOrderThroughLeaderChanges) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  ThreeNodes cluster("replication-pipeline");
  ASSERT_NO_FATAL_FAILURE(cluster.up());
  const std::vector<uint16_t>& ports = cluster.ports;
  ASSERT_NO_FATAL_FAILURE(create_replicated_keyspace(ports[0], ports));

  struct Writer {
    std::string a, b;
    uint16_t port = 0;
    std::mutex mu;
    std::set<int64_t> a_not_ok, b_not_ok;  // values whose SET got no +OK
    int64_t last_ok_a = 0, last_ok_b = 0;
    uint64_t acknowledged = 0;
  };
  constexpr int kWriters = 3;
  std::vector<std::unique_ptr<Writer>> writers;
  for (int w = 0; w < kWriters; ++w) {
    auto writer = std::make_unique<Writer>();
    writer->a = "r:pipe" + std::to_string(w) + ":a";
    const int shard = shard_of(ports[0], writer->a);
    ASSERT_GE(shard, 0);
    for (int k = 0; k < 200 && writer->b.empty(); ++k) {
      const std::string b = "r:pipe" + std::to_string(w) + ":b" + std::to_string(k);
      if (shard_of(ports[0], b) == shard) writer->b = b;
    }
    ASSERT_FALSE(writer->b.empty());
    writer->port = ports[static_cast<size_t>(w) % ports.size()];
    writers.push_back(std::move(writer));
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  // A failed assertion below returns early: the threads are stopped and joined
  // then too (an unjoined std::thread terminates the process, leaving the
  // cluster's nodes running: the guard never ran).
  struct StopAndJoin {
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~StopAndJoin() {
      stop = true;
      for (auto& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } joiner{stop, threads};
  for (auto& wp : writers) {
    threads.emplace_back([&stop, &ports, w = wp.get()] {
      constexpr int kPairs = 32;  // 64 commands a batch
      int64_t next = 1;
      size_t node = 0;
      while (!stop) {
        auto c = RedisClient::connect(ports[node % ports.size()], 1s);
        if (!c.ok()) {
          ++node;
          std::this_thread::sleep_for(20ms);
          continue;
        }
        while (!stop) {
          const int64_t from = next;
          for (int64_t i = from; i < from + kPairs; ++i) {
            c->append({"SET", w->a, std::to_string(i)});
            c->append({"SET", w->b, std::to_string(i)});
          }
          next = from + kPairs;
          bool broken = false;
          std::lock_guard lock(w->mu);
          for (int64_t i = from; i < from + kPairs; ++i) {
            for (int part = 0; part < 2; ++part) {
              auto reply = broken ? Result<std::string>(Status::IOError("gone")) : c->read_reply();
              if (!reply.ok()) broken = true;
              const bool ok = reply.ok() && *reply == "+OK";
              if (ok) {
                ++w->acknowledged;
                (part == 0 ? w->last_ok_a : w->last_ok_b) = i;
              } else {
                (part == 0 ? w->a_not_ok : w->b_not_ok).insert(i);
              }
            }
          }
          if (broken) break;
        }
        ++node;  // its node died: the next one
      }
    });
  }
  struct Seen {
    int w;
    int64_t a, b;
  };
  std::mutex seen_mu;
  std::vector<Seen> seen;
  for (size_t r = 0; r < ports.size(); ++r) {
    threads.emplace_back([&, r] {
      size_t node = r;
      while (!stop) {
        auto c = RedisClient::connect(ports[node % ports.size()], 1s);
        if (!c.ok()) {
          ++node;
          std::this_thread::sleep_for(20ms);
          continue;
        }
        while (!stop) {
          bool gone = false;
          for (int w = 0; w < kWriters && !gone; ++w) {
            // An error (an election, a dead node): a new connection, to the next node.
            auto b = c->bulk({"GET", writers[static_cast<size_t>(w)]->b});
            if (!b.ok() && b.status().code() != Status::Code::kNotFound) {
              gone = true;
              continue;
            }
            auto a = c->bulk({"GET", writers[static_cast<size_t>(w)]->a});
            if (!a.ok() && a.status().code() != Status::Code::kNotFound) {
              gone = true;
              continue;
            }
            std::lock_guard lock(seen_mu);
            seen.push_back(Seen{w, a.ok() ? std::stoll(*a) : 0, b.ok() ? std::stoll(*b) : 0});
          }
          if (gone) break;
        }
        ++node;
        std::this_thread::sleep_for(10ms);
      }
    });
  }
  std::this_thread::sleep_for(1500ms);
  for (int node = 1; node <= 3; ++node) {
    ASSERT_EQ(::kill(node_pid(cluster.data, node), SIGKILL), 0);
    std::this_thread::sleep_for(1500ms);
    auto restarted = run_statekv({"cluster", "restart-missing", "--data", cluster.data});
    ASSERT_EQ(restarted.first, 0) << restarted.second;
    std::this_thread::sleep_for(1s);
  }
  std::this_thread::sleep_for(1s);
  stop = true;
  for (auto& t : threads) t.join();  // (joiner then finds none joinable)

  uint64_t acknowledged = 0, not_ok = 0;
  for (auto& w : writers) {
    acknowledged += w->acknowledged;
    not_ok += w->a_not_ok.size() + w->b_not_ok.size();
  }
  size_t checked = 0, b_ahead = 0;
  for (const Seen& s : seen) {
    ++checked;
    if (s.a >= s.b) continue;
    ++b_ahead;
    const Writer& w = *writers[static_cast<size_t>(s.w)];
    auto unknown = w.a_not_ok.upper_bound(s.a);
    EXPECT_TRUE(unknown != w.a_not_ok.end() && *unknown <= s.b)
        << w.b << " = " << s.b << " was read before " << w.a << " = " << s.a
        << ", but every SET of " << w.a << " to a value in between got +OK before it";
  }
  std::printf(
      "pipelines: %llu SETs acknowledged, %llu errors (did not run or unknown), %zu "
      "reads of b then a (%zu with a behind b, each explained by an error)\n",
      static_cast<unsigned long long>(acknowledged), static_cast<unsigned long long>(not_ok),
      checked, b_ahead);
  EXPECT_GT(acknowledged, 2000u) << "too little load to mean anything";
  EXPECT_GT(checked, 100u);
  // The last values: the last acknowledged, or a later one that got no +OK.
  auto c = RedisClient::connect(ports[0]);
  ASSERT_TRUE(c.ok());
  for (auto& w : writers) {
    for (int part = 0; part < 2; ++part) {
      const std::string& key = part == 0 ? w->a : w->b;
      const int64_t last_ok = part == 0 ? w->last_ok_a : w->last_ok_b;
      const std::set<int64_t>& unknown = part == 0 ? w->a_not_ok : w->b_not_ok;
      auto v = c->bulk({"GET", key});
      ASSERT_TRUE(v.ok()) << key << ": " << v.status().to_string();
      const int64_t value = std::stoll(*v);
      EXPECT_TRUE(value == last_ok || (value > last_ok && unknown.contains(value)))
          << key << " = " << value << ", last acknowledged " << last_ok;
    }
  }
}

TEST(Replication, SequentialReadsComeFromEveryMemberAndKeepEachSession) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  ThreeNodes cluster("replication-levels");
  ASSERT_NO_FATAL_FAILURE(cluster.up());
  const std::vector<uint16_t>& ports = cluster.ports;
  const uint16_t base = ports[0];
  ASSERT_NO_FATAL_FAILURE(create_replicated_keyspace(base, ports));

  // Each client is one session throughout: hopping to another node, it
  // presents its SESSION TOKEN there.
  HistoryClients::Options options;
  options.clients = 6;
  options.keys = 6;
  options.key_prefix = "r:";
  options.consistency = "sequential";
  options.carry_session = true;
  HistoryClients clients(ports, options);
  std::this_thread::sleep_for(3s);
  clients.stop();
  EXPECT_GT(clients.ok_count(), 300u) << "too little load to mean anything";
  EXPECT_EQ(clients.error_count(), 0u);

  uint64_t from_followers = 0;
  for (uint16_t port : ports) from_followers += follower_reads(port);
  std::printf("reads served by followers: %llu\n", static_cast<unsigned long long>(from_followers));
  EXPECT_GT(from_followers, 0u) << "sequential reads should spread over the members";

  const std::string file = cluster.dir.path() + "/history.jsonl";
  ASSERT_TRUE(check::write_history_file(file, clients.history()).ok());
  // Causal is not promised at sequential: a session's positions are per
  // group, and its causes may lie in another group.
  for (const char* model : {"sequential", "session"}) {
    auto verdict = run_statekv({"check", model, file});
    EXPECT_EQ(verdict.first, 0) << model << ": " << verdict.second;
  }

  // Causal sessions, carried across nodes by their tokens.
  options.consistency = "causal";
  options.key_prefix = "r:causal:";  // keys the first run did not write
  HistoryClients causal(ports, options);
  std::this_thread::sleep_for(2s);
  causal.stop();
  EXPECT_GT(causal.ok_count(), 200u);
  const std::string causal_file = cluster.dir.path() + "/causal.jsonl";
  ASSERT_TRUE(check::write_history_file(causal_file, causal.history()).ok());
  for (const char* model : {"causal", "session"}) {
    auto verdict = run_statekv({"check", model, causal_file});
    EXPECT_EQ(verdict.first, 0) << model << ": " << verdict.second;
  }
}

// Idle groups quiesce (their leaders stop heartbeating, docs/replication.md):
// a follower of a quiet group still serves bounded-staleness reads itself,
// its leader's node's pings vouching for how fresh it is, and writes wake
// the group at once.
TEST(Replication, QuiescedGroupsServeBoundedStalenessReadsAtFollowersAndWakeOnAWrite) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  ThreeNodes cluster("replication-quiesce");
  ASSERT_NO_FATAL_FAILURE(cluster.up());
  const std::vector<uint16_t>& ports = cluster.ports;
  ASSERT_NO_FATAL_FAILURE(create_replicated_keyspace(ports[0], ports));
  auto w = RedisClient::connect(ports[0]);
  ASSERT_TRUE(w.ok());
  ASSERT_EQ(w->cmd({"SET", "r:q", "v1"}), "+OK");
  // Quiet within a few heartbeats; every member says so.
  bool all_quiet = false;
  for (int i = 0; i < 50 && !all_quiet; ++i) {
    std::this_thread::sleep_for(100ms);
    all_quiet = true;
    for (uint16_t port : ports) {
      auto c = RedisClient::connect(port);
      ASSERT_TRUE(c.ok());
      auto info = c->bulk({"INFO", "replication"});
      ASSERT_TRUE(info.ok());
      all_quiet = all_quiet && info->find("quiesced=0") == std::string::npos &&
                  info->find("quiesced=1") != std::string::npos;
    }
  }
  ASSERT_TRUE(all_quiet) << "idle groups did not quiesce";
  std::this_thread::sleep_for(500ms);  // longer than the staleness bound below
  const uint64_t before =
      follower_reads(ports[0]) + follower_reads(ports[1]) + follower_reads(ports[2]);
  for (uint16_t port : ports) {
    auto c = RedisClient::connect(port);
    ASSERT_TRUE(c.ok());
    for (int i = 0; i < 10; ++i) {
      EXPECT_EQ(c->cmd({"WITH", "eventual", "MAX-STALENESS", "300", "GET", "r:q"}), "\"v1\"");
    }
  }
  const uint64_t after =
      follower_reads(ports[0]) + follower_reads(ports[1]) + follower_reads(ports[2]);
  EXPECT_GE(after - before, 20u) << "followers of a quiet group passed bounded reads on";
  // A write wakes the group and is seen by the next bounded read everywhere.
  ASSERT_EQ(w->cmd({"SET", "r:q", "v2"}), "+OK");
  for (uint16_t port : ports) {
    auto c = RedisClient::connect(port);
    ASSERT_TRUE(c.ok());
    std::string got;
    for (int i = 0;
         i < 50 &&
         (got = c->cmd({"WITH", "eventual", "MAX-STALENESS", "300", "GET", "r:q"})) != "\"v2\"";
         ++i) {
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(got, "\"v2\"") << "port " << port;
  }
}

// KEYS, SCAN, DBSIZE, INFO keyspace and RANDOMKEY read each replica group where a read
// of its keys would run (the leader, behind the ReadIndex barrier, at the
// default linearizable): a key deleted through one node is gone from them on
// every node at once, though the followers apply the delete a heartbeat
// later. (They once took every member's keys, and reported the key in every
// round; INFO keyspace counted every key once per replica.)
TEST(Replication, KeysScanDbsizeAndInfoRightAfterADeleteNeverReportTheKey) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  ThreeNodes cluster("replication-scan-after-del");
  ASSERT_NO_FATAL_FAILURE(cluster.up({"--replication", "consensus"}));
  ASSERT_NO_FATAL_FAILURE(cluster.writable_everywhere("warmup"));
  const std::vector<uint16_t>& ports = cluster.ports;
  auto writer = RedisClient::connect(ports[0]);
  ASSERT_TRUE(writer.ok());
  ASSERT_EQ(writer->cmd({"DEL", "warmup"}), ":1");
  for (int i = 0; i < 30; ++i)
    ASSERT_EQ(writer->cmd({"SET", "kept:" + std::to_string(i), "v"}), "+OK");
  for (int round = 0; round < 30; ++round) {
    const std::string key = "gone:" + std::to_string(round);
    ASSERT_EQ(writer->cmd({"SET", key, "v"}), "+OK");
    auto deleter = RedisClient::connect(ports[1]);
    ASSERT_TRUE(deleter.ok());
    ASSERT_EQ(deleter->cmd({"DEL", key}), ":1");
    // Fresh connections, as separate redis-cli runs would be.
    auto reader = RedisClient::connect(ports[2]);
    ASSERT_TRUE(reader.ok());
    EXPECT_EQ(reader->cmd({"DBSIZE"}), ":30") << "round " << round;
    // INFO keyspace's db0 counts what DBSIZE counts: each key once, not once
    // per replica.
    auto info = reader->bulk({"INFO", "keyspace"});
    ASSERT_TRUE(info.ok()) << info.status().to_string();
    EXPECT_NE(info->find("db0:keys=30,expires=0,"), std::string::npos)
        << "round " << round << ": " << *info;
    auto keys = reader->bulk_array({"KEYS", "gone:*"});
    ASSERT_TRUE(keys.ok()) << keys.status().to_string();
    EXPECT_TRUE(keys->empty()) << "round " << round << ": KEYS reported the deleted key";
    auto scanned = reader->scan({"SCAN", "0", "MATCH", "gone:*", "COUNT", "1000"});
    ASSERT_TRUE(scanned.ok()) << scanned.status().to_string();
    EXPECT_TRUE(scanned->elements.empty())
        << "round " << round << ": SCAN reported the deleted key";
    auto random = reader->bulk({"RANDOMKEY"});
    ASSERT_TRUE(random.ok()) << random.status().to_string();
    EXPECT_EQ(random->rfind("kept:", 0), 0u) << "round " << round << ": RANDOMKEY " << *random;
  }
  // Below linearizable a scan may read any member: it still answers.
  auto reader = RedisClient::connect(ports[1]);
  ASSERT_TRUE(reader.ok());
  auto eventual = reader->integer({"WITH", "eventual", "DBSIZE"});
  ASSERT_TRUE(eventual.ok()) << eventual.status().to_string();
  EXPECT_GE(*eventual, 30);
}

// `cluster up --replication consensus`: the default keyspace itself is
// replicated (factor 3), so every key survives the loss of any one node.
TEST(Replication, ClusterUpWithConsensusReplicatesTheDefaultKeyspace) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  ThreeNodes cluster("replication-default");
  ASSERT_NO_FATAL_FAILURE(cluster.up({"--replication", "consensus"}));
  ASSERT_NO_FATAL_FAILURE(cluster.writable_everywhere("warmup"));
  const std::string& data = cluster.data;
  const std::vector<uint16_t>& ports = cluster.ports;
  const uint16_t base = ports[0];
  auto c = RedisClient::connect(base + 1);
  ASSERT_TRUE(c.ok());
  auto info = c->command({"KEYSPACE", "INFO", "default"});
  ASSERT_TRUE(info.ok());
  EXPECT_NE(info->find("consensus"), std::string::npos) << *info;
  // FLUSHALL: every group erases its records through its log.
  for (int i = 0; i < 600; ++i) c->append({"HSET", "big", "f" + std::to_string(i), "v"});
  for (int i = 0; i < 600; ++i) {
    auto reply = c->read_reply();
    ASSERT_TRUE(reply.ok());
    EXPECT_EQ(*reply, ":1") << "HSET " << i;
  }
  EXPECT_EQ(c->cmd({"HLEN", "big"}), ":600");
  EXPECT_EQ(c->cmd({"FLUSHALL"}), "+OK");
  EXPECT_EQ(c->cmd({"HLEN", "big"}), ":0");
  // Cluster-wide counts take each group's keys from its leader: the flush
  // is in them as soon as it was acknowledged.
  EXPECT_EQ(c->cmd({"DBSIZE"}), ":0");
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(c->cmd({"SET", "key:" + std::to_string(i), "v" + std::to_string(i)}), "+OK");
  }
  // Any one node may go: every key is still readable and writable.
  ASSERT_EQ(::kill(node_pid(data, 1), SIGKILL), 0);
  for (int i = 0; i < 30; ++i) {
    const std::string key = "key:" + std::to_string(i);
    auto t = time_until_writable(ports[1], key + ":after", 5s);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    auto r = RedisClient::connect(ports[2]);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->cmd({"GET", key}), "\"v" + std::to_string(i) + "\"") << key;
  }
  // Cluster-wide commands too: the down node's groups, led elsewhere now,
  // report its keys.
  {
    auto r = RedisClient::connect(ports[1]);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->cmd({"DBSIZE"}), ":60");  // 30 keys, 30 written after the kill
    auto keys = r->command({"KEYS", "key:1*"});
    ASSERT_TRUE(keys.ok());
    EXPECT_EQ(keys->rfind("-", 0), std::string::npos) << *keys;
  }
  // The data dir remembers it: another replication is refused, not ignored.
  auto again = run_statekv({"cluster", "up", "--data", data, "--replication", "none"});
  EXPECT_NE(again.first, 0);
  EXPECT_NE(again.second.find("--replication none (its default keyspace uses consensus)"),
            std::string::npos)
      << again.second;
}

// A planned stop (SHUTDOWN, as a Redis user stops a server; SIGTERM takes
// the same path) hands the leadership of the node's groups to up-to-date
// members first: their keys stay writable (a kill costs an election instead,
// measured above).
TEST(Replication, APlannedStopHandsLeadershipOverFirst) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  ThreeNodes cluster("replication-stop");
  ASSERT_NO_FATAL_FAILURE(cluster.up({"--replication", "consensus"}));
  ASSERT_NO_FATAL_FAILURE(cluster.writable_everywhere("warmup"));
  const std::string& data = cluster.data;
  const uint16_t node2 = cluster.ports[1], node3 = cluster.ports[2];
  // Leaders spread to each shard's first owner: node 2 leads one. Waited for
  // until it has led the same number of groups for a second: just after
  // start, a leader may still hand a group to its preferred node, and a node 2
  // that led nothing when SIGTERM came would have nothing to hand over.
  const auto until = Clock::now() + 15s;
  uint64_t leading = 0;
  int same = 0;
  while (Clock::now() < until && same < 4) {
    auto c = RedisClient::connect(node2);
    ASSERT_TRUE(c.ok());
    auto info = c->bulk({"INFO", "replication"});
    ASSERT_TRUE(info.ok());
    const size_t at = info->find("statekv_groups_leading:");
    const uint64_t now_leading = at == std::string::npos ? 0 : std::stoull(info->substr(at + 23));
    same = now_leading > 0 && now_leading == leading ? same + 1 : 0;
    leading = now_leading;
    std::this_thread::sleep_for(250ms);
  }
  ASSERT_GT(leading, 0u) << "node 2 never led a group";
  // ROLE and INFO replication in Redis's shapes: node 2 is the primary of the
  // groups it leads, with the two other members as its replicas.
  {
    auto c = RedisClient::connect(node2);
    ASSERT_TRUE(c.ok());
    const std::string role = c->cmd({"ROLE"});
    std::smatch m;
    ASSERT_TRUE(std::regex_match(
        role, m,
        std::regex(
            R"re(\["master", :(\d+), \[\["127\.0\.0\.1", "(\d+)", "(\d+)"\], \["127\.0\.0\.1", "(\d+)", "(\d+)"\]\]\])re")))
        << role;
    const uint64_t offset = std::stoull(m[1]);
    EXPECT_GT(offset, 0u) << role;
    const std::set<std::string> replica_ports = {m[2], m[4]};
    EXPECT_EQ(replica_ports,
              (std::set<std::string>{std::to_string(cluster.ports[0]), std::to_string(node3)}))
        << role;
    EXPECT_LE(std::stoull(m[3]), offset);
    EXPECT_LE(std::stoull(m[5]), offset);
    auto info = c->bulk({"INFO", "replication"});
    ASSERT_TRUE(info.ok());
    EXPECT_NE(info->find("role:master\r\nconnected_slaves:2\r\nslave0:ip=127.0.0.1,port="),
              std::string::npos)
        << *info;
    EXPECT_NE(info->find("master_repl_offset:"), std::string::npos) << *info;
  }
  {
    // Redis answers nothing to SHUTDOWN: the connection closes.
    auto c = RedisClient::connect(node2);
    ASSERT_TRUE(c.ok());
    EXPECT_FALSE(c->command({"SHUTDOWN"}).ok());
  }
  Clock::duration worst{};
  for (int k = 0; k < 30; ++k) {
    auto t = time_until_writable(node3, "k" + std::to_string(k), 10s);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    worst = std::max(worst, *t);
  }
  const auto worst_ms = std::chrono::duration_cast<std::chrono::milliseconds>(worst).count();
  std::printf("node 2 stopped (SHUTDOWN): slowest first write of a key %lld ms\n",
              static_cast<long long>(worst_ms));
  EXPECT_LT(worst_ms, 3000);
  std::ifstream log(data + "/node2/statekv.log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("received SHUTDOWN, shutting down"), std::string::npos) << text;
  EXPECT_NE(text.find("before this node stops"), std::string::npos)
      << "node 2 did not hand its leadership over";
  // Leader changes are logged with their cause: a member that took over says
  // it was handed leadership.
  std::string others;
  for (int n : {1, 3}) {
    std::ifstream in(data + "/node" + std::to_string(n) + "/statekv.log");
    others.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  EXPECT_TRUE(
      std::regex_search(others, std::regex("is leader in term \\d+, leader \\d+: node 2 handed "
                                           "leadership over; won term \\d+ with \\d+ of 3 votes")))
      << "no logged take-over from node 2";
}

// One group's line of INFO replication through `port` (empty: none).
std::string group_line(uint16_t port, const std::string& group) {
  auto c = RedisClient::connect(port);
  if (!c.ok()) return {};
  auto info = c->bulk({"INFO", "replication"});
  if (!info.ok()) return {};
  const size_t at = info->find("statekv_group_" + group + ":");
  if (at == std::string::npos) return {};
  return info->substr(at, info->find("\r\n", at) - at);
}

// A numeric field (`name=N`) of an INFO replication group line; -1 if absent.
int64_t group_field(const std::string& line, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(line, m, std::regex("[:,]" + name + "=(\\d+)"))) return -1;
  return std::stoll(m[1]);
}

// LOCATE through the leader of a key's group lists every replica's applied
// index (each follower reports it on its answers to the leader), and a
// follower's comes up to the leader's once a write is applied everywhere.
// Then the group's configuration epoch: a `__replicas` step stamped with an
// older epoch than the leader knows is refused, and so is a raft frame of an
// older epoch (it would otherwise have moved the follower's term).
TEST(Replication, LocateShowsEachReplicasAppliedIndexAndStaleEpochsAreRefused) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  ThreeNodes cluster("replication-locate");
  ASSERT_NO_FATAL_FAILURE(cluster.up());
  const std::vector<uint16_t>& ports = cluster.ports;
  ASSERT_NO_FATAL_FAILURE(create_replicated_keyspace(ports[0], ports));
  auto c = RedisClient::connect(ports[0]);
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 5; ++i) ASSERT_EQ(c->cmd({"SET", "r:x", std::to_string(i)}), "+OK");

  // Who leads r:x's group, once the same node has for a second (just after
  // the keyspace is created a leader may still hand the group to its
  // preferred member, which would move it under the checks below).
  std::string group;
  uint64_t leader = 0;
  int same = 0;
  for (const auto until = Clock::now() + 15s; Clock::now() < until && same < 5;) {
    const std::string where = c->cmd({"LOCATE", "r:x"});
    std::smatch m;
    uint64_t now_leader = 0;
    if (std::regex_search(where, m, std::regex(R"re("group", :(\d+), "leader", :(\d+))re"))) {
      group = m[1];
      now_leader = std::stoull(m[2]);
    }
    same = now_leader != 0 && now_leader == leader ? same + 1 : 0;
    leader = now_leader;
    std::this_thread::sleep_for(200ms);
  }
  ASSERT_GE(leader, 1u);
  ASSERT_LE(leader, 3u);
  const uint16_t leader_port = ports[leader - 1];
  const uint64_t follower = leader % 3 + 1;
  const uint16_t follower_port = ports[follower - 1];

  // Every replica's applied index, through the leader: the followers' reach
  // the leader's (they apply the last write on the leader's next message).
  const std::regex replica(
      R"re(\["node", :(\d+), "role", "(\w+)", "applied", (:\d+|\(nil\)), "lag", (:\d+|\(nil\))\])re");
  std::string where;
  bool caught_up = false;
  for (int i = 0; i < 200 && !caught_up; ++i) {
    auto l = RedisClient::connect(leader_port);
    ASSERT_TRUE(l.ok());
    where = l->cmd({"LOCATE", "r:x"});
    std::map<uint64_t, std::string> applied;
    for (auto it = std::sregex_iterator(where.begin(), where.end(), replica);
         it != std::sregex_iterator(); ++it) {
      applied[std::stoull((*it)[1])] = (*it)[3];
    }
    ASSERT_EQ(applied.size(), 3u) << where;
    caught_up = applied[leader] != "(nil)" && applied[follower] == applied[leader] &&
                applied[follower % 3 + 1] == applied[leader];
    if (!caught_up) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(caught_up) << "a follower's applied index never reached the leader's: " << where;
  // Asked of a follower, LOCATE shows the same: the leader tells it every
  // replica's applied index and lag (`__replicas status`).
  {
    auto f = RedisClient::connect(follower_port);
    ASSERT_TRUE(f.ok());
    const std::string seen = f->cmd({"LOCATE", "r:x"});
    // (The leadership may have moved meanwhile: leaders are balanced.)
    std::map<uint64_t, std::pair<std::string, std::string>> replicas;
    int leaders = 0;
    for (auto it = std::sregex_iterator(seen.begin(), seen.end(), replica);
         it != std::sregex_iterator(); ++it) {
      replicas[std::stoull((*it)[1])] = {(*it)[3], (*it)[4]};
      if ((*it)[2] == "leader") {
        ++leaders;
        EXPECT_EQ((*it)[4], ":0") << "the leader's lag: " << seen;
      } else {
        EXPECT_EQ((*it)[2], "follower") << seen;
      }
    }
    ASSERT_EQ(replicas.size(), 3u) << seen;
    EXPECT_EQ(leaders, 1) << seen;
    for (const auto& [node, fields] : replicas) {
      EXPECT_NE(fields.first, "(nil)") << "node " << node << "'s applied index: " << seen;
      EXPECT_NE(fields.second, "(nil)") << "node " << node << "'s lag: " << seen;
    }
  }
  // INFO replication on the leader says the same, per member.
  const std::string leader_line = group_line(leader_port, group);
  EXPECT_NE(leader_line.find(std::to_string(follower) + "@applied="), std::string::npos)
      << leader_line;

  // The group's configuration epoch, as its leader knows it.
  std::ifstream secret_file(cluster.data + "/cluster.secret");
  std::string secret;
  std::getline(secret_file, secret);
  ASSERT_FALSE(secret.empty());
  const auto peer = [&](uint16_t port) { return "127.0.0.1:" + std::to_string(port + 10000); };
  // A command for the group, sent to its leader as a router would, with the
  // epoch of the map it was routed by (0: an internal call).
  const auto routed = [&](uint64_t map_epoch,
                          std::vector<std::string> argv) -> net::ForwardReplyFrame {
    auto conn = net::BlockingConnection::open(peer(leader_port), secret, Clock::now() + 5s);
    EXPECT_TRUE(conn.ok()) << conn.status().to_string();
    if (!conn.ok()) return {};
    net::ForwardFrame f;
    f.call = 1;
    f.group = std::stoull(group);
    f.epoch = map_epoch;
    f.argv = std::move(argv);
    auto r = (*conn)->call(f, Clock::now() + 5s);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : net::ForwardReplyFrame{};
  };
  const auto step = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "__replicas");
    return routed(0, std::move(args));
  };
  const net::ForwardReplyFrame status = step({"status"});
  ASSERT_TRUE(status.status.ok()) << status.status.to_string();
  std::smatch em;
  ASSERT_TRUE(std::regex_search(status.reply, em, std::regex(R"( epoch=(\d+))"))) << status.reply;
  const uint64_t epoch = std::stoull(em[1]);
  ASSERT_GT(epoch, 0u) << "the keyspace's creation stamps its shards";

  // A step decided on an older view: refused, nothing changes.
  const net::ForwardReplyFrame stale =
      step({"remove", std::to_string(follower), std::to_string(epoch - 1)});
  EXPECT_EQ(stale.status.code(), Status::Code::kAborted) << stale.status.to_string();
  EXPECT_NE(stale.status.message().find("older than epoch"), std::string::npos)
      << stale.status.to_string();
  EXPECT_EQ(group_field(group_line(leader_port, group), "epoch_refused_steps"), 1);
  // The same epoch passes the check and reaches raft (which finds the node a
  // member already: nothing to add).
  const net::ForwardReplyFrame current =
      step({"add", std::to_string(follower), std::to_string(epoch)});
  EXPECT_EQ(current.status.code(), Status::Code::kInvalidArgument) << current.status.to_string();
  EXPECT_NE(current.status.message().find("already a member"), std::string::npos)
      << current.status.to_string();
  // A command routed by a map older than the group's configuration (its
  // keys may belong to another group under the newer one): refused as a
  // stale route without running; by the current map it runs.
  const net::ForwardReplyFrame old_route = routed(epoch - 1, {"SET", "r:x", "stale"});
  EXPECT_EQ(old_route.status.code(), Status::Code::kAborted) << old_route.status.to_string();
  EXPECT_EQ(old_route.status.message().rfind("STALEROUTE epoch " + std::to_string(epoch - 1), 0),
            0u)
      << old_route.status.to_string();
  EXPECT_EQ(group_field(group_line(leader_port, group), "epoch_refused_routes"), 1);
  EXPECT_EQ(routed(epoch, {"GET", "r:x"}).reply, "$1\r\n4\r\n");
  // A fence of an older epoch than the group knows is refused; one of the
  // current epoch commits an entry and counts the records under its prefix.
  EXPECT_EQ(routed(0, {"__gfence", std::to_string(epoch - 1), "r:"}).status.code(),
            Status::Code::kAborted);
  const net::ForwardReplyFrame fenced = routed(0, {"__gfence", std::to_string(epoch), "r:"});
  EXPECT_TRUE(fenced.status.ok()) << fenced.status.to_string();
  EXPECT_EQ(fenced.reply, ":1\r\n");  // r:x
  EXPECT_GT(fenced.index, 0u);
  EXPECT_EQ(routed(0, {"__gfence", std::to_string(epoch), "q:"}).reply, ":0\r\n");
  EXPECT_EQ(c->cmd({"GET", "r:x"}), "\"4\"");

  // A client's pipeline to the group (replica_groups.h, PipelinePlace), as a
  // router sends it: its commands run in order; a gap in their places, or one
  // that did not run (here a stale route), refuses every later one without
  // running it, even one that would run on its own.
  // One connection, as a router's: a pipeline is named by the connection too.
  auto router = net::BlockingConnection::open(peer(leader_port), secret, Clock::now() + 5s);
  ASSERT_TRUE(router.ok()) << router.status().to_string();
  uint64_t call = 100;
  const auto piped = [&](uint64_t stream, uint64_t seq, uint64_t map_epoch,
                         std::vector<std::string> argv) {
    auto& conn = router;
    net::ForwardFrame f;
    f.call = ++call;
    f.group = std::stoull(group);
    f.epoch = map_epoch;
    f.stream = stream;
    f.stream_seq = seq;
    f.argv = std::move(argv);
    auto r = (*conn)->call(f, Clock::now() + 5s);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : net::ForwardReplyFrame{};
  };
  const uint64_t stream = 1000 + static_cast<uint64_t>(::getpid());
  EXPECT_TRUE(piped(stream, 1, epoch, {"SET", "r:x", "p1"}).status.ok());
  EXPECT_TRUE(piped(stream, 2, epoch, {"SET", "r:x", "p2"}).status.ok());
  const net::ForwardReplyFrame gap = piped(stream, 4, epoch, {"SET", "r:x", "gap"});
  EXPECT_EQ(gap.status.code(), Status::Code::kUnavailable) << gap.status.to_string();
  const net::ForwardReplyFrame after_gap = piped(stream, 5, epoch, {"SET", "r:x", "after-gap"});
  EXPECT_EQ(after_gap.status.code(), Status::Code::kUnavailable) << after_gap.status.to_string();
  EXPECT_NE(after_gap.status.message().find("earlier command of this client's pipeline"),
            std::string::npos)
      << after_gap.status.to_string();
  EXPECT_EQ(c->cmd({"GET", "r:x"}), "\"p2\"");
  const net::ForwardReplyFrame stale_first = piped(stream + 1, 1, epoch - 1, {"SET", "r:x", "s1"});
  EXPECT_EQ(stale_first.status.code(), Status::Code::kAborted) << stale_first.status.to_string();
  const net::ForwardReplyFrame behind = piped(stream + 1, 2, epoch, {"SET", "r:x", "s2"});
  EXPECT_EQ(behind.status.code(), Status::Code::kUnavailable) << behind.status.to_string();
  EXPECT_EQ(c->cmd({"GET", "r:x"}), "\"p2\"") << "a command behind one that did not run ran";
  c->cmd({"SET", "r:x", "4"});

  const net::ForwardReplyFrame again = step({"status"});
  std::smatch cm;
  ASSERT_TRUE(std::regex_search(again.reply, cm, std::regex(R"(config=([\d,]+))"))) << again.reply;
  const std::string config = cm[1];
  EXPECT_EQ(std::count(config.begin(), config.end(), ','), 2) << again.reply;

  // A raft frame from "the leader" with a much higher term: at an older
  // epoch it is dropped (the follower's term stays), at the current one it
  // is taken (the term moves: the frame was one that counts).
  const std::string before = group_line(follower_port, group);
  const int64_t term = group_field(before, "term");
  ASSERT_GT(term, 0) << before;
  // The follower knows the leader by its data directory's incarnation too
  // (net/peer_incarnations.h): the forger states it.
  const std::string leader_dir = cluster.data + "/node" + std::to_string(leader);
  auto incarnations = net::PeerIncarnations::open(leader_dir + "/wal", false);
  ASSERT_TRUE(incarnations.ok()) << incarnations.status().to_string();
  ASSERT_FALSE((*incarnations)->fresh()) << "node " << leader << " has no incarnation yet";
  const uint64_t leader_incarnation = (*incarnations)->self();
  const auto forge = [&](uint64_t frame_epoch) {
    auto conn = net::BlockingConnection::open(peer(follower_port), secret, Clock::now() + 5s,
                                              NodeId(leader), leader_incarnation);
    ASSERT_TRUE(conn.ok()) << conn.status().to_string();
    replication::raft::AppendEntries ae;
    ae.term = decltype(ae.term)(static_cast<uint64_t>(term) + 50);
    net::GroupFrame f;
    f.group = std::stoull(group);
    f.message = replication::encode_message(replication::raft::Message(ae));
    f.epoch = frame_epoch;
    ASSERT_TRUE((*conn)->send(f, Clock::now() + 5s).ok());
    std::this_thread::sleep_for(300ms);  // delivered before the connection closes
  };
  ASSERT_NO_FATAL_FAILURE(forge(epoch - 1));
  const std::string dropped = group_line(follower_port, group);
  EXPECT_LT(group_field(dropped, "term"), term + 50) << dropped;
  EXPECT_GE(group_field(dropped, "epoch_refused_frames"), 1) << dropped;
  ASSERT_NO_FATAL_FAILURE(forge(epoch));
  int64_t moved = 0;
  for (int i = 0; i < 50 && moved < term + 50; ++i) {
    moved = group_field(group_line(follower_port, group), "term");
    if (moved < term + 50) std::this_thread::sleep_for(20ms);
  }
  EXPECT_GE(moved, term + 50) << "a frame of the current epoch was not taken";
  // The group elects again and serves.
  auto t = time_until_writable(ports[0], "r:x", 10s);
  EXPECT_TRUE(t.ok()) << t.status().to_string();
}

}  // namespace
}  // namespace statekv::itest
