// Raft over real TCP and real files, in one process: three RaftNodes on
// loopback ports, driven through the blocking Client as the CLI would.
#include "net/raft_node.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <thread>

#include "net/blocking_connection.h"
#include "net/client.h"
#include "net/disk_log.h"
#include "net/shared_log.h"

namespace statekv::net {
namespace {

using namespace std::chrono_literals;

class Cluster {
 public:
  explicit Cluster(size_t n, std::string secret = "s3cret") : secret_(std::move(secret)) {
    dir_ = std::filesystem::temp_directory_path() /
           ("statekv-raftnode-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::remove_all(dir_);
    for (size_t i = 1; i <= n; ++i) voters_.push_back(NodeId(i));
    for (size_t i = 1; i <= n; ++i) start(NodeId(i));
    connect_all();
  }
  ~Cluster() {
    nodes_.clear();
    std::filesystem::remove_all(dir_);
  }

  void start(NodeId id) {
    RaftNodeOptions o;
    o.self = id;
    o.data_dir = dir_ / ("node" + std::to_string(id.value()));
    o.peer_port = ports_.count(id) ? ports_[id] : 0;
    o.bootstrap_voters = voters_;
    o.secret = secret_;
    o.fsync = false;  // the page cache survives a node object's destruction
    o.request_timeout = 2000ms;
    o.raft = raft_options_;
    auto node = RaftNode::start(o);
    ASSERT_TRUE(node.ok()) << node.status().to_string();
    ports_[id] = (*node)->peer_port();
    nodes_[id] = std::move(node).value();
  }
  void stop(NodeId id) { nodes_.erase(id); }

  void connect_all() {
    for (auto& [id, node] : nodes_) {
      for (auto& [peer, port] : ports_) {
        node->set_peer_address(peer, "127.0.0.1:" + std::to_string(port));
      }
    }
  }

  std::vector<std::string> endpoints() const {
    std::vector<std::string> out;
    for (auto& [id, port] : ports_) out.push_back("127.0.0.1:" + std::to_string(port));
    return out;
  }

  std::unique_ptr<Client> client(std::chrono::milliseconds deadline = 5000ms) {
    ClientOptions o;
    o.endpoints = endpoints();
    o.secret = secret_;
    o.deadline = deadline;
    auto c = Client::create(o);
    EXPECT_TRUE(c.ok());
    return std::move(c).value();
  }

  std::optional<NodeId> leader() const {
    for (auto& [id, node] : nodes_) {
      auto s = node->status();
      if (s.role == "leader") return id;
    }
    return std::nullopt;
  }

  std::map<NodeId, std::unique_ptr<RaftNode>> nodes_;
  std::map<NodeId, uint16_t> ports_;
  std::vector<NodeId> voters_;
  replication::raft::RaftOptions raft_options_;
  std::filesystem::path dir_;
  std::string secret_;
  static inline int counter_ = 0;
};

TEST(RaftNode, ThreeNodesElectAndCommitOverTcp) {
  Cluster c(3);
  auto client = c.client();
  ASSERT_TRUE(client->put("a", "1").ok());
  auto v = client->get("a");
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  EXPECT_EQ(*v, std::optional<std::string>("1"));
  auto swapped = client->cas("a", std::string("1"), "2");
  ASSERT_TRUE(swapped.ok());
  EXPECT_TRUE(*swapped);
  auto again = client->cas("a", std::string("1"), "3");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again) << "a cas whose expectation fails is a definite answer";
}

// Every node pings every peer, so each hears from all (not only the leader
// from its followers), and a stopped peer's last_heard stops moving: what
// CLUSTER INFO's health is judged on.
TEST(RaftNode, EveryNodeHearsFromEveryPeerUntilOneStops) {
  Cluster c(3);
  auto heard_within = [&](NodeId at, NodeId from, std::chrono::milliseconds age) {
    const RaftNodeStatus s = c.nodes_[at]->status();
    auto it = s.last_heard.find(from);
    return it != s.last_heard.end() && std::chrono::steady_clock::now() - it->second < age;
  };
  auto eventually = [](const std::function<bool()>& cond) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline && !cond()) {
      std::this_thread::sleep_for(20ms);
    }
    return cond();
  };
  for (uint64_t a = 1; a <= 3; ++a) {
    for (uint64_t b = 1; b <= 3; ++b) {
      if (a == b) continue;
      EXPECT_TRUE(eventually([&] { return heard_within(NodeId(a), NodeId(b), 500ms); }))
          << "node " << a << " never heard from node " << b;
    }
  }
  // Followers included: whichever two are not leading hear from each other.
  c.stop(NodeId(3));
  std::this_thread::sleep_for(800ms);
  for (uint64_t a = 1; a <= 2; ++a) {
    EXPECT_FALSE(heard_within(NodeId(a), NodeId(3), 600ms)) << "node " << a;
    EXPECT_TRUE(heard_within(NodeId(a), NodeId(3 - a), 600ms)) << "node " << a;
  }
  EXPECT_NE(c.nodes_[NodeId(1)]->status().to_json().find("\"heard_ms_ago\""), std::string::npos);
}

TEST(RaftNode, LeaderStopsAnotherTakesOverNothingLost) {
  Cluster c(3);
  auto client = c.client();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(client->put("k" + std::to_string(i), "v").ok());
  auto leader = c.leader();
  ASSERT_TRUE(leader);
  c.stop(*leader);
  auto client2 = c.client();
  ASSERT_TRUE(client2->put("after", "x").ok());
  for (int i = 0; i < 50; ++i) {
    auto v = client2->get("k" + std::to_string(i));
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(*v, std::optional<std::string>("v"));
  }
  // The stopped node comes back with its log and catches up.
  c.start(*leader);
  c.connect_all();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline &&
         c.nodes_[*leader]->status().applied_index < c.nodes_[*c.leader()]->status().commit_index) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_GE(c.nodes_[*leader]->status().applied_index, 52u);
}

TEST(RaftNode, MajorityLostGivesAClearError) {
  Cluster c(3);
  auto client = c.client(1500ms);
  ASSERT_TRUE(client->put("a", "1").ok());
  auto leader = c.leader();
  ASSERT_TRUE(leader);
  for (auto id : {NodeId(1), NodeId(2), NodeId(3)}) {
    if (id != *leader) c.stop(id);
  }
  Status s = client->put("b", "2");
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.code() == Status::Code::kTimeout || s.code() == Status::Code::kUnavailable)
      << s.to_string();
  EXPECT_NE(s.message().find("may"), std::string::npos) << s.to_string();
}

TEST(RaftNode, WrongSecretIsRefused) {
  Cluster c(3);
  ClientOptions o;
  o.endpoints = c.endpoints();
  o.secret = "not-the-secret";
  o.deadline = 1000ms;
  auto client = Client::create(o);
  ASSERT_TRUE(client.ok());
  Status s = (*client)->put("a", "1");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("handshake"), std::string::npos) << s.to_string();
  // The cluster still serves those who know the secret.
  EXPECT_TRUE(c.client()->put("a", "1").ok());
}

// A node that accepts connections but says nothing (paused with SIGSTOP: its
// kernel still completes the TCP handshake) is passed over like one that is
// down: the client asks the others, and does not take the silence for a
// refused secret (found by the replica-move nemesis: add-node failed at once
// while the metadata leader was paused).
TEST(RaftNode, AClientPassesOverANodeThatAcceptsButNeverAnswers) {
  Cluster c(3);
  // Listening, never accepting: the kernel completes each connection into the
  // backlog, and nothing ever answers on it.
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io,
                                 asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::string stalled = "127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  auto direct =
      BlockingConnection::open(stalled, "s3cret", BlockingConnection::Clock::now() + 200ms);
  ASSERT_FALSE(direct.ok());
  EXPECT_EQ(direct.status().code(), Status::Code::kUnavailable) << direct.status().to_string();

  ClientOptions o;
  o.endpoints = {stalled};
  for (const std::string& e : c.endpoints()) o.endpoints.push_back(e);
  o.secret = "s3cret";
  o.deadline = 5000ms;
  o.connect_timeout = 200ms;
  auto client = Client::create(o);
  ASSERT_TRUE(client.ok());
  EXPECT_TRUE((*client)->put("a", "1").ok());
}

TEST(RaftNode, AddAndRemoveVoterLive) {
  Cluster c(3);
  auto client = c.client();
  ASSERT_TRUE(client->put("a", "1").ok());
  // A fourth node that joins: no bootstrap voters, it waits to be added.
  c.voters_.clear();
  c.start(NodeId(4));
  c.connect_all();
  ASSERT_TRUE(client->add_voter(NodeId(4)).ok());
  // The add committed on the leader; node 4 learns of it when it applies the
  // configuration entry (it joined as a learner, so it applied entries, the
  // learner's configuration among them, before that one).
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline &&
         c.nodes_[NodeId(4)]->status().voters.size() != 4) {
    std::this_thread::sleep_for(20ms);
  }
  auto s4 = c.nodes_[NodeId(4)]->status();
  EXPECT_EQ(s4.voters.size(), 4u);
  // Asked again (as `cluster add-node` does after a Timeout): the same change,
  // answered once it is committed.
  const Status again = client->add_voter(NodeId(4));
  EXPECT_TRUE(again.ok()) << again.to_string();
  // Node 4 may lead once node 1 is gone: the client must know its address
  // (a client follows leader hints only to endpoints it was given).
  client = c.client();
  ASSERT_TRUE(client->remove_voter(NodeId(1)).ok());
  Status put = client->put("b", "2");
  std::string states;
  for (auto& [id, node] : c.nodes_) {
    states += "\n  port " + std::to_string(node->peer_port()) + ": " + node->status().to_json();
  }
  ASSERT_TRUE(put.ok()) << put.to_string() << states;
  auto leader = c.leader();
  ASSERT_TRUE(leader);
  EXPECT_EQ(c.nodes_[*leader]->status().voters.size(), 3u);
}

// A joining node is a learner until it holds the leader's log: one that never
// answers is not made a voter (the group would need it in every majority of
// four), the add fails saying why, and the group goes on as it was.
TEST(RaftNode, ANodeThatNeverCatchesUpIsNotMadeAVoter) {
  Cluster c(3);
  c.raft_options_.learner_catch_up = 0;  // caught up: holds every entry
  for (NodeId id : {NodeId(1), NodeId(2), NodeId(3)}) {
    c.stop(id);
    c.start(id);
  }
  c.connect_all();
  auto client = c.client();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client->put("k" + std::to_string(i), "v").ok());
  // Node 5 is known by address but nothing listens there.
  for (auto& [id, node] : c.nodes_) node->set_peer_address(NodeId(5), "127.0.0.1:1");
  const Status added = client->add_voter(NodeId(5));
  EXPECT_FALSE(added.ok());
  EXPECT_NE(added.to_string().find("not caught up"), std::string::npos) << added.to_string();
  auto leader = c.leader();
  ASSERT_TRUE(leader);
  EXPECT_EQ(c.nodes_[*leader]->status().voters.size(), 3u);
  EXPECT_TRUE(client->put("after", "1").ok());
  // A node that does answer catches up as a learner and is then made a voter.
  c.voters_.clear();
  c.start(NodeId(4));
  c.connect_all();
  ASSERT_TRUE(client->add_voter(NodeId(4)).ok());
  EXPECT_EQ(c.nodes_[*c.leader()]->status().voters.size(), 4u);
}

// The metadata replica logs into the node's write-ahead log as group 0, with its own
// checkpoints there: its records survive a restart, and a checkpoint replaces only
// its own earlier records.
TEST(RaftNode, LogsIntoTheSharedWriteAheadLogAsGroupZero) {
  std::filesystem::path dir;
  {
    Cluster c(1);
    dir = c.dir_ / "node1";
    {
      // A data group's records in the same log (what coord::ReplicaGroups appends).
      std::shared_ptr<SharedLog> wal = c.nodes_[NodeId(1)]->wal();
      ASSERT_NE(wal, nullptr);
      std::vector<std::string> none;
      auto data = wal->open_group(42, {}, &none);
      ASSERT_TRUE(data.ok());
      (*data)->append("data record");
    }  // the log closes with its last holder
    c.nodes_.clear();
    c.raft_options_.snapshot_threshold = 10;
    c.start(NodeId(1));
    auto client = c.client();
    for (int i = 0; i < 40; ++i) ASSERT_TRUE(client->put("k" + std::to_string(i), "v").ok());
    EXPECT_GT(c.nodes_[NodeId(1)]->status().snapshot_index, 0u);
    c.nodes_.clear();
    EXPECT_TRUE(std::filesystem::exists(dir / "wal"));
    EXPECT_FALSE(std::filesystem::exists(dir / "raft"));
    {
      auto log = SharedLog::open(SharedLogOptions{dir / "wal"});
      ASSERT_TRUE(log.ok()) << log.status().to_string();
      std::vector<std::string> meta, data;
      auto gm = (*log)->open_group(kMetadataGroup, {}, &meta);
      auto gd = (*log)->open_group(42, {}, &data);
      ASSERT_TRUE(gm.ok() && gd.ok());
      EXPECT_LT(meta.size(), 40u) << "the metadata group's checkpoints truncate its records";
      EXPECT_EQ(data, std::vector<std::string>{"data record"});
    }
    c.start(NodeId(1));
    auto again = c.client();
    for (int i = 0; i < 40; ++i) {
      auto v = again->get("k" + std::to_string(i));
      ASSERT_TRUE(v.ok()) << v.status().to_string();
      EXPECT_EQ(*v, std::optional<std::string>("v")) << i;
    }
  }
}

// Rewrites a stopped node's data directory into the layout before the shared log: the
// metadata replica's records in a DiskLog of their own, <data>/raft, and no
// <data>/wal.
void to_old_layout(const std::filesystem::path& data_dir) {
  std::vector<std::string> records;
  {
    auto log = SharedLog::open(SharedLogOptions{data_dir / "wal"});
    ASSERT_TRUE(log.ok()) << log.status().to_string();
    auto group = (*log)->open_group(kMetadataGroup, {}, &records);
    ASSERT_TRUE(group.ok());
  }
  ASSERT_FALSE(records.empty());
  std::filesystem::remove_all(data_dir / "wal");
  Recovery none;
  auto old = DiskLog::open(DiskLogOptions{data_dir / "raft"}, {}, &none);
  ASSERT_TRUE(old.ok()) << old.status().to_string();
  for (const std::string& r : records) (*old)->append(r);
}

// A node whose data directory predates the shared log finds its metadata log in
// <data>/raft: it is moved into <data>/wal at start, then removed, and nothing
// acknowledged is lost, at that start or the next.
TEST(RaftNode, AnOldMetadataLogDirectoryIsMovedIntoTheSharedLog) {
  Cluster c(3);
  {
    auto client = c.client();
    for (int i = 0; i < 30; ++i) ASSERT_TRUE(client->put("k" + std::to_string(i), "v").ok());
  }
  // A put is acknowledged once a majority holds it: wait until the third
  // member does too, so that every node's old log has all 30.
  for (const auto until = std::chrono::steady_clock::now() + 5s;
       std::chrono::steady_clock::now() < until;) {
    bool all = true;
    for (auto& [id, node] : c.nodes_) all = all && node->status().last_index >= 30;
    if (all) break;
    std::this_thread::sleep_for(10ms);
  }
  c.nodes_.clear();
  for (int n = 1; n <= 3; ++n) {
    to_old_layout(c.dir_ / ("node" + std::to_string(n)));
    if (::testing::Test::HasFatalFailure()) return;
  }
  for (int restart = 0; restart < 2; ++restart) {
    for (int n = 1; n <= 3; ++n) c.start(NodeId(n));
    c.connect_all();
    for (int n = 1; n <= 3; ++n) {
      const auto dir = c.dir_ / ("node" + std::to_string(n));
      EXPECT_FALSE(std::filesystem::exists(dir / "raft")) << dir;
      EXPECT_TRUE(std::filesystem::exists(dir / "wal")) << dir;
      EXPECT_GE(c.nodes_[NodeId(n)]->status().last_index, 30u) << "node " << n;
    }
    auto client = c.client();
    for (int i = 0; i < 30; ++i) {
      auto v = client->get("k" + std::to_string(i));
      ASSERT_TRUE(v.ok()) << v.status().to_string();
      EXPECT_EQ(*v, std::optional<std::string>("v")) << i;
    }
    ASSERT_TRUE(client->put("after" + std::to_string(restart), "x").ok());
    c.nodes_.clear();
  }
}

}  // namespace
}  // namespace statekv::net
