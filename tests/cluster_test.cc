// Real `statekv server` processes forming a raft group on loopback: leader
// crashes (SIGKILL), catching up by snapshot, losing a majority, peers without
// the secret, garbled frames, and a torn log tail.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "net/client.h"
#include "net/disk_log.h"
#include "net/frame.h"
#include "net/handshake.h"
#include "net/raft_node.h"
#include "net/shared_log.h"
#include "support/local_cluster.h"
#include "support/net.h"
#include "support/redis_client.h"
#include "support/server_process.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kSecret = "cluster-test-secret";
constexpr int kElectionMs = 300;

// N statekv nodes forming one raft group; stopped by pid when destroyed.
class NodeSet {
 public:
  NodeSet(size_t n, std::vector<std::string> extra = {}, std::string secret = kSecret)
      : secret_(std::move(secret)) {
    for (size_t i = 0; i < n; ++i) {
      auto port = pick_free_low_port();
      EXPECT_TRUE(port.ok());
      peer_ports_.push_back(*port);
    }
    for (size_t i = 0; i < n; ++i) {
      ServerOptions o;
      o.kind = ServerKind::kStatekv;
      o.engine = "memory";
      o.fsync = "batch";
      o.extra_args = cluster_node_args(i, peer_ports_, secret_, kElectionMs);
      o.extra_args.insert(o.extra_args.end(), extra.begin(), extra.end());
      nodes_.push_back(std::make_unique<ServerProcess>(o));
    }
    for (auto& node : nodes_) {
      Status s = node->start();
      EXPECT_TRUE(s.ok()) << s.to_string();
    }
  }

  std::string endpoint(size_t i) const { return "127.0.0.1:" + std::to_string(peer_ports_[i]); }
  std::vector<std::string> endpoints() const {
    std::vector<std::string> out;
    for (size_t i = 0; i < peer_ports_.size(); ++i) out.push_back(endpoint(i));
    return out;
  }

  std::unique_ptr<net::Client> client(std::chrono::milliseconds deadline = 10s) const {
    net::ClientOptions o;
    o.endpoints = endpoints();
    o.secret = secret_;
    o.deadline = deadline;
    o.connect_timeout = 300ms;
    return std::move(net::Client::create(o)).value();
  }

  // Node i's status (net::RaftNodeStatus as JSON), or nullopt if it does not answer.
  std::optional<nlohmann::json> status(size_t i) const {
    auto c = client(1s);
    auto body = c->status(endpoint(i));
    if (!body.ok()) return std::nullopt;
    return nlohmann::json::parse(*body);
  }

  // Index of the node that is leader (and says so), waiting up to `timeout`.
  std::optional<size_t> leader(std::chrono::milliseconds timeout = 10s) const {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      for (size_t i = 0; i < nodes_.size(); ++i) {
        if (!nodes_[i]->running()) continue;
        auto s = status(i);
        if (s && (*s)["role"] == "leader") return i;
      }
      std::this_thread::sleep_for(20ms);
    }
    return std::nullopt;
  }

  // Waits until node i has applied at least `index`.
  bool wait_applied(size_t i, uint64_t index, std::chrono::milliseconds timeout) const {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      auto s = status(i);
      if (s && (*s)["applied_index"].get<uint64_t>() >= index) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  ServerProcess& node(size_t i) { return *nodes_[i]; }
  size_t size() const { return nodes_.size(); }

 private:
  std::string secret_;
  std::vector<uint16_t> peer_ports_;
  std::vector<std::unique_ptr<ServerProcess>> nodes_;
};

// Writers that put unique values and remember what was acknowledged.
class WriteLoad {
 public:
  WriteLoad(const NodeSet& nodes, size_t writers) {
    for (size_t w = 0; w < writers; ++w) {
      threads_.emplace_back([this, &nodes, w] {
        auto client = nodes.client(3s);
        for (uint64_t i = 0; !stop_; ++i) {
          const std::string key = "w" + std::to_string(w) + "-" + std::to_string(i);
          Status s = client->put(key, "v" + std::to_string(i));
          std::lock_guard<std::mutex> lock(mu_);
          if (s.ok()) {
            acked_.push_back(key);
          } else {
            ++errors_;
          }
        }
      });
    }
  }
  ~WriteLoad() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::vector<std::string> acked() {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  size_t errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::vector<std::string> acked_;
  size_t errors_ = 0;
};

void expect_all_readable(const NodeSet& nodes, const std::vector<std::string>& keys) {
  auto client = nodes.client(10s);
  size_t missing = 0;
  for (const std::string& key : keys) {
    auto v = client->get(key);
    ASSERT_TRUE(v.ok()) << key << ": " << v.status().to_string();
    if (!v->has_value()) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "acknowledged writes lost";
}

TEST(Cluster, LeaderKilledNewLeaderCommitsFastNothingLostAndItCatchesUpBySnapshot) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  NodeSet nodes(3, {"--raft-snapshot-entries", "64"});
  auto old_leader = nodes.leader();
  ASSERT_TRUE(old_leader);

  WriteLoad load(nodes, 4);
  std::this_thread::sleep_for(700ms);
  const auto killed_at = Clock::now();
  nodes.node(*old_leader).kill();

  // A new leader commits: the first write after the kill that succeeds.
  auto probe = nodes.client(10s);
  ASSERT_TRUE(probe->put("probe", "after-kill").ok());
  const auto committed_after = Clock::now() - killed_at;
  // An election timeout is drawn from [T, 2T): two of them are at most 4T.
  EXPECT_LT(committed_after, std::chrono::milliseconds(4 * kElectionMs))
      << "took " << std::chrono::duration_cast<std::chrono::milliseconds>(committed_after).count()
      << " ms";

  std::this_thread::sleep_for(1500ms);  // enough writes for several snapshots
  load.stop();
  const auto acked = load.acked();
  ASSERT_GT(acked.size(), 200u);
  expect_all_readable(nodes, acked);

  // The killed node restarts from its log, and catches up: the entries it
  // lacks were compacted away, so by snapshot.
  auto leader = nodes.leader();
  ASSERT_TRUE(leader);
  const uint64_t commit = (*nodes.status(*leader))["commit_index"].get<uint64_t>();
  ASSERT_TRUE(nodes.node(*old_leader).start().ok());
  ASSERT_TRUE(nodes.wait_applied(*old_leader, commit, 15s));
  auto s = nodes.status(*old_leader);
  ASSERT_TRUE(s);
  EXPECT_GE((*s)["snapshots_received"].get<uint64_t>(), 1u) << s->dump();
}

TEST(Cluster, FiveNodesCommitWithTwoKilledAndRefuseClearlyWithThree) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  NodeSet nodes(5);
  auto client = nodes.client(10s);
  ASSERT_TRUE(client->put("a", "1").ok());
  auto leader = nodes.leader();
  ASSERT_TRUE(leader);
  // Kill the leader and one more: three of five remain, a majority.
  nodes.node(*leader).kill();
  nodes.node((*leader + 1) % 5).kill();
  ASSERT_TRUE(client->put("b", "2").ok());
  auto b = client->get("b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, std::optional<std::string>("2"));

  // A third: two remain, no majority. Writes fail with an error that says why.
  nodes.node((*leader + 2) % 5).kill();
  auto short_client = nodes.client(3s);
  Status s = short_client->put("c", "3");
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.code() == Status::Code::kUnavailable || s.code() == Status::Code::kTimeout)
      << s.to_string();
  EXPECT_NE(s.message().find("majority"), std::string::npos) << s.to_string();

  // RESP clients see it in CLUSTER INFO.
  const size_t survivor = (*leader + 3) % 5;
  auto redis = RedisClient::connect(nodes.node(survivor).port());
  ASSERT_TRUE(redis.ok());
  const auto deadline = Clock::now() + 5s;
  std::string info;
  while (Clock::now() < deadline) {
    info = redis->cmd({"CLUSTER", "INFO"});
    if (info.find("cluster_state:fail") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(info.find("cluster_state:fail"), std::string::npos) << info;
  EXPECT_NE(info.find("raft_leader:none"), std::string::npos) << info;
}

TEST(Cluster, PeerWithoutTheSecretIsRefusedAndLogged) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  NodeSet nodes(3);
  ASSERT_TRUE(nodes.client()->put("a", "1").ok());

  // A client with the wrong secret is refused at the handshake, at once.
  net::ClientOptions o;
  o.endpoints = nodes.endpoints();
  o.secret = "wrong-secret";
  o.deadline = 5s;
  auto wrong = std::move(net::Client::create(o)).value();
  const auto started = Clock::now();
  Status s = wrong->put("a", "2");
  EXPECT_EQ(s.code(), Status::Code::kAborted) << s.to_string();
  EXPECT_LT(Clock::now() - started, 2s);

  // A node process with the wrong secret cannot join either.
  auto peer_port = pick_free_low_port();
  ASSERT_TRUE(peer_port.ok());
  ServerOptions rogue_options;
  rogue_options.kind = ServerKind::kStatekv;
  rogue_options.engine = "memory";
  rogue_options.extra_args = {
      "--node-id",        "2",
      "--peer-port",      std::to_string(*peer_port),
      "--peers",          "1=" + nodes.endpoint(0) + ",2=127.0.0.1:" + std::to_string(*peer_port),
      "--cluster-secret", "wrong-secret"};
  ServerProcess rogue(rogue_options);
  ASSERT_TRUE(rogue.start().ok());
  std::this_thread::sleep_for(1500ms);
  EXPECT_NE(nodes.node(0).log_tail(20000).find("refused peer connection"), std::string::npos);
  // The cluster's data is untouched and it keeps serving.
  auto v = nodes.client()->get("a");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, std::optional<std::string>("1"));
}

// Reads until EOF or timeout; true if the peer closed the connection.
bool closed_by_peer(int fd, std::chrono::milliseconds timeout) {
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[4096];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

// Authenticates a raw socket as a client; false if the handshake failed.
bool authenticate(int fd, const std::string& secret) {
  net::HandshakeOptions o;
  o.secret = secret;
  o.self = NodeId(0);
  o.role = net::HandshakeRole::kInitiator;
  auto hs = net::Handshake::start(o);
  if (!hs.ok()) return false;
  net::FrameReader reader;
  while (!hs->done()) {
    for (const std::string& out : hs->take_outgoing()) {
      std::string frame = net::encode_frame(out);
      if (::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(frame.size())) {
        return false;
      }
    }
    if (hs->done()) break;
    auto next = reader.next();
    if (!next.ok()) return false;
    if (next->has_value()) {
      hs->on_frame(**next);
      continue;
    }
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    reader.feed(std::string_view(buf, static_cast<size_t>(n)));
  }
  for (const std::string& out : hs->take_outgoing()) {
    std::string frame = net::encode_frame(out);
    ::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL);
  }
  return hs->accepted();
}

TEST(Cluster, GarbledOrTruncatedFrameClosesThatConnectionOnly) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  NodeSet nodes(3);
  auto good = nodes.client();
  ASSERT_TRUE(good->put("a", "1").ok());
  const uint16_t port = static_cast<uint16_t>(std::stoi(nodes.endpoint(0).substr(10)));

  // Garbage instead of a handshake.
  {
    auto fd = connect_localhost(port, 1s);
    ASSERT_TRUE(fd.ok());
    const std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    ::send(*fd, junk.data(), junk.size(), MSG_NOSIGNAL);
    EXPECT_TRUE(closed_by_peer(*fd, 3s));
    ::close(*fd);
  }
  // An authenticated connection, then a frame whose checksum does not match.
  {
    auto fd = connect_localhost(port, 1s);
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE(authenticate(*fd, kSecret));
    std::string frame = net::encode_frame("hello, this payload gets flipped");
    frame[frame.size() - 3] ^= 0x5a;
    ::send(*fd, frame.data(), frame.size(), MSG_NOSIGNAL);
    EXPECT_TRUE(closed_by_peer(*fd, 3s));
    ::close(*fd);
  }
  // An authenticated connection that sends half a frame and hangs up.
  {
    auto fd = connect_localhost(port, 1s);
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE(authenticate(*fd, kSecret));
    std::string frame = net::encode_frame(std::string(1000, 'x'));
    ::send(*fd, frame.data(), frame.size() / 2, MSG_NOSIGNAL);
    ::close(*fd);
  }
  // The node, and the good client's connection, carry on.
  ASSERT_TRUE(good->put("b", "2").ok());
  auto v = good->get("a");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, std::optional<std::string>("1"));
  EXPECT_TRUE(nodes.node(0).running());
}

// Issue "Operating statekv without surprises", item 12: a Redis client at the
// peer port got a protocol error (the node's binary Hello). Now it reads one
// clear RESP error naming the RESP port, for a command array and an inline
// command alike, and the node keeps serving its peers.
TEST(Cluster, ARedisClientAtThePeerPortIsToldWhereToConnect) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  NodeSet nodes(3);
  ASSERT_TRUE(nodes.client()->put("a", "1").ok());
  const uint16_t peer_port = static_cast<uint16_t>(std::stoi(nodes.endpoint(0).substr(10)));
  const std::string expected = "-ERR this is statekv's peer port";
  const std::string names_port = "RESP port " + std::to_string(nodes.node(0).port());

  auto redis = RedisClient::connect(peer_port);
  ASSERT_TRUE(redis.ok()) << redis.status().to_string();
  const std::string got = redis->cmd({"PING"});
  EXPECT_EQ(got.substr(0, expected.size()), expected) << got;
  EXPECT_NE(got.find(names_port), std::string::npos) << got;

  auto fd = connect_localhost(peer_port, 1s);
  ASSERT_TRUE(fd.ok());
  const std::string inline_ping = "PING\r\n";
  ::send(*fd, inline_ping.data(), inline_ping.size(), MSG_NOSIGNAL);
  std::string answer;
  timeval tv{3, 0};
  ::setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[512];
  for (ssize_t n; (n = ::recv(*fd, buf, sizeof buf, 0)) > 0;)
    answer.append(buf, static_cast<size_t>(n));
  ::close(*fd);
  EXPECT_EQ(answer.substr(0, expected.size()), expected) << answer;
  EXPECT_EQ(answer.substr(answer.size() - 2), "\r\n") << "one whole RESP error, then close";

  ASSERT_TRUE(nodes.client()->put("b", "2").ok());
  EXPECT_TRUE(nodes.node(0).running());
}

TEST(Cluster, TornLogTailIsCutWithoutLosingAcknowledgedEntries) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  NodeSet nodes(3);
  auto client = nodes.client();
  std::vector<std::string> keys;
  for (int i = 0; i < 100; ++i) {
    keys.push_back("k" + std::to_string(i));
    ASSERT_TRUE(client->put(keys.back(), "v").ok());
  }
  auto leader = nodes.leader();
  ASSERT_TRUE(leader);
  const size_t victim = (*leader + 1) % 3;
  nodes.node(victim).kill();

  // A crash in the middle of a write: half a record at the end of the node's
  // write-ahead log (the metadata group's records are its group 0).
  const std::filesystem::path wal_dir =
      std::filesystem::path(nodes.node(victim).data_dir()) / "wal";
  std::filesystem::path last;
  for (const auto& entry : std::filesystem::directory_iterator(wal_dir)) {
    if (entry.path().extension() == ".skv" && entry.path() > last) last = entry.path();
  }
  ASSERT_FALSE(last.empty());
  const auto size_before = std::filesystem::file_size(last);
  const char torn_tail[] = {0x40, 0x00, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x01, 'x'};
  {
    std::ofstream out(last, std::ios::app | std::ios::binary);
    out.write(torn_tail, sizeof torn_tail);
  }
  ASSERT_TRUE(nodes.node(victim).start().ok());
  auto s = nodes.status(victim);
  ASSERT_TRUE(s);
  EXPECT_GT((*s)["torn_bytes_at_start"].get<uint64_t>(), 0u) << s->dump();
  {
    // Cut back to its last good record (before size_before: the file may have ended in
    // preallocated zeros), so the torn bytes are gone even once the node writes again.
    std::ifstream in(last, std::ios::binary);
    const std::string now{std::istreambuf_iterator<char>(in), {}};
    EXPECT_NE(now.substr(std::min<size_t>(now.size(), size_before), sizeof torn_tail),
              std::string(torn_tail, sizeof torn_tail))
        << "the torn tail was not cut off";
  }
  EXPECT_NE(nodes.node(victim).log_tail(20000).find("torn"), std::string::npos);

  // It rejoins with everything it had acknowledged, and catches up.
  const uint64_t commit = (*nodes.status(*leader))["commit_index"].get<uint64_t>();
  ASSERT_TRUE(nodes.wait_applied(victim, commit, 10s));
  // With the leader gone, the victim and the third node still hold every write.
  nodes.node(*leader).kill();
  expect_all_readable(nodes, keys);
}

// Rewrites a stopped node's data directory into the layout before the metadata
// group moved into the shared write-ahead log: its records in a DiskLog of their
// own, <data>/raft; the data groups' records stay in <data>/wal.
void metadata_log_to_old_layout(const std::filesystem::path& data_dir) {
  std::vector<std::string> records;
  {
    auto log = net::SharedLog::open(net::SharedLogOptions{data_dir / "wal"});
    ASSERT_TRUE(log.ok()) << log.status().to_string();
    {
      auto group = (*log)->open_group(net::kMetadataGroup, {}, &records);
      ASSERT_TRUE(group.ok()) << group.status().to_string();
    }
    ASSERT_TRUE((*log)->drop_group(net::kMetadataGroup).ok());
  }
  ASSERT_FALSE(records.empty());
  net::Recovery none;
  auto old = net::DiskLog::open(net::DiskLogOptions{data_dir / "raft"}, {}, &none);
  ASSERT_TRUE(old.ok()) << old.status().to_string();
  for (const std::string& r : records) (*old)->append(r);
}

// Whether every running node's map lists `keyspace`, within `timeout`.
bool every_node_lists(NodeSet& nodes, const std::string& keyspace,
                      std::chrono::milliseconds timeout = 10s) {
  const auto deadline = Clock::now() + timeout;
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (;;) {
      auto c = RedisClient::connect(nodes.node(i).port(), 2s);
      if (c.ok() && c->cmd({"KEYSPACE", "LIST"}).find(keyspace) != std::string::npos) break;
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(20ms);
    }
  }
  return true;
}

// Sends `args` to node i until it answers something other than a transient
// refusal (no connection, CLUSTERDOWN or TRYAGAIN while a node learns the map,
// TIMEOUT while a new group elects), within `timeout`; that answer, or the last.
std::string reply_within(NodeSet& nodes, size_t i, const std::vector<std::string>& args,
                         std::chrono::milliseconds timeout = 10s) {
  const auto deadline = Clock::now() + timeout;
  std::string last;
  while (Clock::now() < deadline) {
    auto c = RedisClient::connect(nodes.node(i).port(), 2s);
    if (c.ok()) {
      last = c->cmd(args);
      const bool transient = last.rfind("<io error", 0) == 0 ||
                             last.rfind("-CLUSTERDOWN", 0) == 0 ||
                             last.rfind("-TRYAGAIN", 0) == 0 || last.rfind("-TIMEOUT", 0) == 0;
      if (!transient) break;
    }
    std::this_thread::sleep_for(20ms);
  }
  return last;
}

// Creates a consensus keyspace of factor 3 through node i: OK, or it exists
// already (an attempt that timed out may have created it).
::testing::AssertionResult create_keyspace(NodeSet& nodes, size_t i, const std::string& name,
                                           const std::string& prefix) {
  const std::string r = reply_within(
      nodes, i,
      {"KEYSPACE", "CREATE", name, "PREFIX", prefix, "REPLICATION", "consensus", "FACTOR", "3"});
  if (r == "+OK" || r.find("exists") != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "KEYSPACE CREATE " << name << ": " << r;
}

// Data directories from before the shared metadata log: every node finds its
// metadata log in <data>/raft next to the data groups' <data>/wal. At start it is
// moved into the write-ahead log and removed; the cluster map (keyspaces created
// before and after the move) and the replicated keys survive SIGKILL of every node
// and a restart from the logs alone.
TEST(Cluster, OldMetadataLogIsMovedIntoTheWriteAheadLogAndTheMapSurvivesKill9) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  NodeSet nodes(3);
  ASSERT_TRUE(create_keyspace(nodes, 0, "before", "b:"));
  ASSERT_TRUE(every_node_lists(nodes, "before"));
  ASSERT_EQ(reply_within(nodes, 0, {"SET", "b:1", "one"}), "+OK");
  // Crashed (acknowledged records were synced before the acknowledgement), then
  // rewritten to the old layout.
  for (size_t i = 0; i < nodes.size(); ++i) nodes.node(i).kill();
  for (size_t i = 0; i < nodes.size(); ++i) {
    metadata_log_to_old_layout(nodes.node(i).data_dir());
    if (HasFatalFailure()) return;
  }

  for (size_t i = 0; i < nodes.size(); ++i) ASSERT_TRUE(nodes.node(i).start().ok());
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::filesystem::path data = nodes.node(i).data_dir();
    EXPECT_FALSE(std::filesystem::exists(data / "raft")) << "node " << i + 1;
    EXPECT_NE(nodes.node(i).log_tail(size_t{64} << 20).find("moved the metadata log"),
              std::string::npos)
        << nodes.node(i).log_tail();
  }
  ASSERT_TRUE(every_node_lists(nodes, "before"));
  ASSERT_TRUE(create_keyspace(nodes, 1, "after", "a:"));
  ASSERT_TRUE(every_node_lists(nodes, "after"));
  ASSERT_EQ(reply_within(nodes, 1, {"SET", "a:1", "two"}), "+OK");

  // kill -9 of every node at once: nothing to catch up from but the logs.
  for (size_t i = 0; i < nodes.size(); ++i) nodes.node(i).kill();
  for (size_t i = 0; i < nodes.size(); ++i) ASSERT_TRUE(nodes.node(i).start().ok());
  EXPECT_TRUE(every_node_lists(nodes, "before"));
  EXPECT_TRUE(every_node_lists(nodes, "after"));
  for (size_t i = 0; i < nodes.size(); ++i) {
    // The server's log holds every start of the node: the move happened once.
    const std::string log = nodes.node(i).log_tail(size_t{64} << 20);
    size_t moves = 0;
    for (size_t at = log.find("moved the metadata log"); at != std::string::npos;
         at = log.find("moved the metadata log", at + 1)) {
      ++moves;
    }
    EXPECT_EQ(moves, 1u) << "node " << i + 1;
  }
  EXPECT_EQ(reply_within(nodes, 2, {"GET", "b:1"}), "\"one\"");
  EXPECT_EQ(reply_within(nodes, 2, {"GET", "a:1"}), "\"two\"");
}

}  // namespace
}  // namespace statekv::itest
