// Replica groups on the data path, whole, in the deterministic simulator
// (issue 10, "Done means", simulation): G data groups (raft per shard) and the
// metadata group, hosted as group 0, on one GroupHost per node (3-5 nodes),
// with the replicas of the data groups moving while clients run, under every
// fault the simulator has (loss, duplication, reordering, long delays,
// partitions both ways and one way, crashes that lose unsynced writes, clock
// offset and drift).
//
// The pieces, as the real cluster has them (docs/simulation.md, "Replica
// groups with the metadata group"):
//   * the placement map lives in group 0 (key "placement"): per data group its
//     owners, its epoch (bumped whenever its owners change) and how many
//     targets it has reached. Every node reads it from its own replica of
//     group 0 and starts and stops its data replicas to match
//     (GroupHost::place / unplace, every 10 ms).
//   * the controller (coord/replica_moves.h, next_replica_step) runs on the
//     leader of group 0 every 30 ms. Each data group's leader reports its
//     GroupView to it; it publishes owners through group 0 (a CAS of the whole
//     map) and sends add, remove and transfer commands to the data group's
//     leader, stamped with the group's epoch in the map it decided from. Each
//     group walks through targets: the window of `factor` consecutive nodes
//     shifted by one node per target, so one replica moves per target and
//     every node leaves and rejoins every group.
//   * epochs: a command is refused unless its map epoch is the one the
//     leader's node knows for the group (older: decided from a map that moved
//     on; newer: this node has not seen that map yet) and its membership epoch
//     is the group's own (the configuration it was decided from is still in
//     effect); a frame older than the replica it reaches (GroupHost's born
//     epoch) is dropped. Nodes deliver frames again long after (replays), so
//     old commands do arrive.
//   * reads at every level, with session tokens (GroupHost): linearizable and
//     causal reads at the leader behind ReadIndex; sequential and fifo reads at
//     any member whose applied index covers the session's position in the
//     group, waiting up to 200 ms, then refused with the leader as hint, as
//     coord/replica_groups.cc serves them.
//
// Judges, per seed: the history without its sequential and fifo reads must be
// linearizable; the whole history must keep the session guarantees
// (read-your-writes, monotonic reads, monotonic writes, writes-follow-reads)
// and be sequentially consistent per key; the history without sequential and
// fifo reads must be causal. Raft's own invariants per group (an observer after
// every callback), and the moves' own: the configuration of a group's leader
// (of the newest term) never has fewer than `factor` members and never a member
// the newest published map does not list. Most operations must succeed.
//
// Planted bugs, each a switch below, each caught within a bounded number of
// seeds: an old epoch accepted (commands and frames), a sequential read served
// behind the session (no wait). The third, a message delivered to the wrong
// group, is replication/raft/raft_groups_sim_test.cc's.
//
// Odd seeds: data replicas hold their requests a few ms and propose them
// together (Raft::on_requests), as replica_groups.cc proposes a pass's writes.
//
// Seed count: STATEKV_GROUPS_SIM_SEEDS (default below; the CTest `soak` entry
// runs 3,000).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "check/checkers.h"
#include "check/operation.h"
#include "coord/replica_moves.h"
#include "core/assert.h"
#include "replication/codec.h"
#include "replication/raft/raft.h"
#include "replication/raft/testing/observed_raft.h"
#include "sim/group_host.h"
#include "sim/judge.h"
#include "sim/workload.h"

namespace statekv::coord {
namespace {

using replication::ClientOp;
using replication::ClientRequest;
using replication::ClientResponse;
using replication::Duration;
using replication::Instant;
using replication::Membership;
using replication::PersistToken;
using replication::ReadLevel;
using replication::TimerId;
using replication::raft::Message;
using replication::raft::Raft;
using replication::raft::RaftKv;
using replication::raft::RaftOptions;
using replication::raft::testing::Observer;
using namespace std::chrono_literals;

constexpr GroupId kMeta{0};
constexpr std::string_view kPlacementKey = "placement";
// Group 0's requests from the controller: ids no client uses.
constexpr uint64_t kInternalRequests = uint64_t{1} << 62;
// Kinds of the frames a replica gets (the first byte of the group's payload).
constexpr char kRaftFrame = 0;
constexpr char kSideFrame = 1;  // meta: a data leader's report; data: a controller's command

enum class Bug {
  kNone,
  kOldEpochAccepted,
  kReadBehindSession,
  kCompactedBeyondKept,
  kCompactedPastStored,    // the log compacted through raft's applied index, past the store's
                           // position
  kRestoreFailureIgnored,  // a background restore that failed reported as done
  kLostStateIgnored,       // a replica whose kept state was lost starts as if it held it
  kPartialRestoreIgnored,  // a restore that failed midway reported as leaving the state as it was
  kProposedRefusedWhenUnplaced,  // a replica leaving a node answers its proposed writes "did not
                                 // run" (their clients send them again)
};

// ---- the placement map (group 0's value of kPlacementKey) ------------------

struct GroupEntry {
  uint64_t epoch = 1;
  std::vector<NodeId> owners;
  uint64_t targets_reached = 0;
  bool operator==(const GroupEntry&) const = default;
};
using PlacementMap = std::map<GroupId, GroupEntry>;

void write_nodes(replication::Writer& w, const std::vector<NodeId>& nodes) {
  w.varint(nodes.size());
  for (NodeId n : nodes) w.varint(n.value());
}

std::vector<NodeId> read_nodes(replication::Reader& r) {
  std::vector<NodeId> out;
  const uint64_t n = r.varint().value();
  for (uint64_t i = 0; i < n; ++i) out.emplace_back(r.varint().value());
  return out;
}

std::string encode_map(const PlacementMap& m) {
  replication::Writer w;
  w.varint(m.size());
  for (const auto& [g, e] : m) {
    w.varint(g.value());
    w.varint(e.epoch);
    write_nodes(w, e.owners);
    w.varint(e.targets_reached);
  }
  return std::move(w).take();
}

// Only this test writes the map: bytes that do not decode are a bug (Result's
// value() asserts).
PlacementMap decode_map(std::string_view bytes) {
  replication::Reader r(bytes);
  PlacementMap m;
  const uint64_t n = r.varint().value();
  for (uint64_t i = 0; i < n; ++i) {
    const GroupId g(r.varint().value());
    GroupEntry e;
    e.epoch = r.varint().value();
    e.owners = read_nodes(r);
    e.targets_reached = r.varint().value();
    m[g] = std::move(e);
  }
  return m;
}

// ---- one run's shared facts --------------------------------------------------

struct Config {
  size_t nodes = 3;
  size_t groups = 4;
  uint32_t factor = 2;
  Bug bug = Bug::kNone;
  bool replays = true;  // frames delivered again long after (ScenarioNode::replay)
  RaftOptions raft;
  // When set: a data replica holds the requests raft serves (all but
  // sequential and fifo reads) this long after the first arrived and proposes
  // them together (Raft::on_requests), as coord/replica_groups.cc proposes
  // the writes of one pass of its event loop.
  std::optional<Duration> batch_window;
  // Data replicas keep their state machine's state on the node's "store",
  // which a crash does not erase (Run::kept), as replica groups over RocksDB
  // do (docs/replication.md, "Compaction without copying the shard"): raft's
  // machine_keeps_state. Now and then a replica persists its state with the
  // index it reflects, and compacts its log there (or not yet).
  bool machine_keeps_state = false;
  // With machine_keeps_state: a data replica restores a snapshot in the
  // background (StateMachine::begin_restore), done up to 400 ms later, and
  // one time in eight it fails, as ReplicaGroups restores on a thread of its
  // own: half of those with the state unchanged, half midway (the restore in
  // pieces wrote some: half of the snapshot's registers over the state, the
  // store marked restoring), which raft hears as RestoreFailure::kStateLost;
  // a restart then finds the mark (machine_state_partial). A crash meanwhile
  // loses the restore.
  bool restores_in_background = false;
  uint64_t restore_fails_one_in = 8;  // restores_in_background
  // With machine_keeps_state: a follower stages a snapshot's chunks in its
  // machine's sink (StateMachine::open_snapshot_sink, as ReplicaGroups stages
  // them in a file), which refuses one chunk in sink_fails_one_in (a full
  // disk): the transfer starts over, in memory (raft.h, stage_in_memory_).
  bool stages_in_sink = false;
  uint64_t sink_fails_one_in = 16;
  // With machine_keeps_state: one restart in four of a replica with kept
  // state finds it gone (its store lost, its log kept). Past its log's
  // compaction point the replica starts with raft's machine_state_lost (it
  // waits for a snapshot from its leader), as replica_groups.cc starts one
  // whose store is behind its log's compaction point.
  bool loses_kept_state = false;
};

// Target k of group g: `factor` consecutive nodes from node (g - 1 + k) mod n.
std::vector<NodeId> target_of(const Config& c, GroupId g, uint64_t k) {
  std::vector<NodeId> out;
  for (size_t i = 0; i < c.factor; ++i) out.emplace_back((g.value() - 1 + k + i) % c.nodes + 1);
  return out;
}

// What every node of a run shares: the observers, the newest map any node
// applied (the truth the moves' invariants hold against), counters.
struct Run {
  explicit Run(Config c) : config(std::move(c)) {
    for (size_t g = 0; g <= config.groups; ++g)
      observers[GroupId(g)] = std::make_shared<Observer>();
  }
  Config config;
  std::map<GroupId, std::shared_ptr<Observer>> observers;
  PlacementMap newest;  // per group, the entry of the highest epoch applied anywhere
  std::map<GroupId, uint64_t> leader_term;  // per data group, the highest term a leader had
  std::string violation;                    // the first broken invariant of the moves
  uint64_t commands_refused_epoch = 0, commands_run = 0;
  uint64_t commands_older_epoch = 0;  // arrived with an older epoch than the node's
  uint64_t stale_commands_run = 0;    // run although stale (the planted bug)
  uint64_t local_reads = 0, local_reads_waited = 0, local_reads_refused = 0;
  uint64_t stale_frames = 0, unplaced = 0, placed = 0, replays = 0;
  uint64_t batches = 0, batches_of_many = 0;  // Config::batch_window
  // Config::machine_keeps_state: each node's persisted state of each data
  // group (what survives its crashes), and how often it was written, compacted
  // behind, and started from.
  struct Kept {
    std::string state;
    uint64_t index = 0;
    // A restore in pieces cut short (Store::mark_restoring); index is then the
    // position the store held before it (what a store without the mark keeps).
    bool partial = false;
  };
  std::map<std::pair<uint64_t, uint64_t>, Kept> kept;  // by (node, group)
  uint64_t persists = 0, compactions = 0, kept_starts = 0, kept_skipped = 0;
  uint64_t snapshot_reads = 0;  // snapshots a leader read a piece at a time (open_snapshot)
  uint64_t background_restores = 0, background_restores_failed = 0;  // restores_in_background
  uint64_t staged_in_sink = 0,
           sink_refusals = 0;  // stages_in_sink: snapshots restored, chunks refused
  // Of those: failed midway (state lost), replicas restarted with the mark,
  // and replicas that failed midway and installed a snapshot after.
  uint64_t restores_failed_midway = 0, partial_starts = 0, midway_recovered = 0;
  // loses_kept_state: states lost, replicas started so, and of those, the
  // ones that installed a snapshot and served again.
  uint64_t kept_lost = 0, lost_starts = 0, lost_recovered = 0;
  // The replicas whose kept state the fault erased, until they persist again.
  std::set<std::pair<uint64_t, uint64_t>> kept_erased;  // by (node, group)

  // State machine safety, checked as it happens: the hash of each data
  // group's register map after each index a replica applied (the first to
  // apply it records it). Every replica that applies that index, restores a
  // snapshot at it or serves a read at it must hold the same state; a read at
  // an index no command reached (a no-op's, a configuration's) is judged
  // against the last command's before it. A replica serving or applying from
  // a state no log prefix gives (a restore cut short, a lost state) fails.
  std::map<GroupId, std::map<uint64_t, size_t>> states;
  uint64_t states_checked = 0;
  void check_state(GroupId g, uint64_t node, uint64_t index,
                   const replication::raft::KvStateMachine& kv, const char* what, bool record) {
    auto& at = states[g];
    if (at.empty()) at[0] = std::hash<std::string>{}(replication::raft::KvStateMachine{}.encode());
    const size_t h = std::hash<std::string>{}(kv.encode());
    auto it = at.upper_bound(index);
    --it;  // at[0] is there
    if (it->first != index && record) {
      at.emplace(index, h);
      return;
    }
    ++states_checked;
    if (it->second != h) {
      fail(
          fmt::format("group {} on node {}: its state when it {} at index {} is not the state "
                      "at that index (recorded at index {})",
                      g.value(), node, what, index, it->first));
    }
  }

  void fail(std::string what) {
    if (violation.empty()) violation = std::move(what);
  }
  void saw_map(const PlacementMap& m) {
    for (const auto& [g, e] : m) {
      auto it = newest.find(g);
      if (it == newest.end() || e.epoch > it->second.epoch ||
          (e.epoch == it->second.epoch && e.targets_reached > it->second.targets_reached)) {
        newest[g] = e;
      }
    }
  }
  bool observers_ok() const {
    for (const auto& [g, o] : observers) {
      if (!o->ok()) return false;
    }
    return true;
  }
};

class ScenarioNode;

// Raft's typed env over a group's byte env: raft frames get their kind byte;
// answers pass through `on_reply` first (false: swallowed).
class Channel final : public replication::Env<Message> {
 public:
  using ReplyHook = std::function<bool(RequestId, ClientResponse&)>;
  Channel(sim::ByteEnv& inner, ReplyHook on_reply)
      : inner_(inner), on_reply_(std::move(on_reply)) {}
  void send(NodeId to, const Message& msg) override {
    std::string bytes(1, kRaftFrame);
    bytes += replication::encode_message(msg);
    inner_.send_bytes(to, std::move(bytes));
  }
  void reply(RequestId request, ClientResponse response) override {
    if (on_reply_(request, response)) inner_.reply(request, std::move(response));
  }
  TimerId set_timer(Duration delay) override { return inner_.set_timer(delay); }
  void cancel_timer(TimerId id) override { inner_.cancel_timer(id); }
  Instant now() const override { return inner_.now(); }
  PersistToken persist(std::string record) override { return inner_.persist(std::move(record)); }
  PersistToken persist_checkpoint(std::string record) override {
    return inner_.persist_checkpoint(std::move(record));
  }
  Random& random() override { return inner_.random(); }
  sim::ByteEnv& bytes() { return inner_; }

 private:
  sim::ByteEnv& inner_;
  ReplyHook on_reply_;
};

// A group's membership epoch: the position of the configuration in effect
// in the group's own log (its config entry's index and term, or, once that is
// compacted, the snapshot's that holds it). It changes with every membership
// change, also one that a new leader truncates, and never comes back.
struct MembershipEpoch {
  uint64_t index = 0, term = 0;
  bool operator==(const MembershipEpoch&) const = default;
};

MembershipEpoch membership_epoch(const Raft& r) {
  if (r.config_index().value() > r.log().snapshot_index().value()) {
    return {r.config_index().value(), r.log().term_at(r.config_index()).value()};
  }
  return {r.log().snapshot_index().value(), r.log().snapshot_term().value()};
}

Status deliver_raft(Raft& raft, NodeId from, std::string_view payload) {
  Result<Message> msg = replication::decode_message<Message>(payload);
  if (!msg.ok()) return msg.status();
  raft.on_message(from, *msg);
  return Status::OK();
}

// ---- the node: a GroupHost, and the map followed ----------------------------

class ScenarioNode final : public sim::HostedNode {
 public:
  ScenarioNode(sim::ByteEnv& env, NodeId self, std::shared_ptr<Run> run,
               std::vector<std::string> recovered);

  Status deliver(NodeId from, std::string_view bytes) override {
    // Every command (a side frame of a data group) is kept; other frames now and then.
    auto t = sim::untag_group(bytes);
    const bool command =
        t.ok() && t->group != kMeta && !t->payload.empty() && t->payload[0] == kSideFrame;
    if (command || env_.random().chance(kKeepForReplay)) {
      replays_[next_replay_++ % replays_.size()] = Replay{from, std::string(bytes), env_.now()};
    }
    return deliver_now(from, bytes);
  }
  Status deliver_now(NodeId from, std::string_view bytes) {
    if (run_->config.bug == Bug::kOldEpochAccepted) {
      // Planted bug: every frame passes as if stamped with the newest epoch.
      auto t = sim::untag_group(bytes);
      if (!t.ok()) return t.status();
      return host_->deliver(from, sim::tag_with_group(t->group, ~uint64_t{0} >> 1, t->payload));
    }
    return host_->deliver(from, bytes);
  }
  void on_request(const ClientRequest& req) override { host_->on_request(req); }
  void on_timer(TimerId id) override {
    if (id == sync_timer_) {
      replay();
      sync();
      sync_timer_ = env_.set_timer(10ms);
      return;
    }
    host_->on_timer(id);
  }
  void on_persisted(PersistToken t) override { host_->on_persisted(t); }
  void on_peer_down(NodeId) override {}

  NodeId self() const { return self_; }
  sim::GroupHost& host() { return *host_; }
  Run& run() { return *run_; }
  // A frame outside any protocol's own messages (a report, a command).
  void send_side(NodeId to, GroupId group, uint64_t epoch, std::string payload) {
    std::string bytes(1, kSideFrame);
    bytes += payload;
    env_.send_bytes(to, sim::tag_with_group(group, epoch, bytes));
  }
  // Who this node believes leads group 0 (from its own replica).
  std::optional<NodeId> meta_leader();

 private:
  void sync();
  void replay();

  // Replays: a frame this node received comes again much later, as a
  // duplicate held up in the network would (the simulator's own duplicates
  // arrive within its delay bounds). Every command and a sample of the other
  // frames are kept; now and then one at least 100 ms old is delivered again,
  // once.
  static constexpr double kKeepForReplay = 0.1;
  static constexpr double kReplayPerTick = 0.2;
  struct Replay {
    NodeId from;
    std::string bytes;
    Instant at{};
  };
  std::array<std::optional<Replay>, 32> replays_;
  uint64_t next_replay_ = 0;

  sim::ByteEnv& env_;
  NodeId self_;
  std::shared_ptr<Run> run_;
  std::unique_ptr<sim::GroupHost> host_;
  TimerId sync_timer_;
  std::string synced_;  // the map bytes last followed
  uint64_t stale_reported_ = 0;
};

// ---- group 0: the metadata replica and the controller -----------------------

class MetaReplica final : public sim::HostedNode {
 public:
  MetaReplica(ScenarioNode& node, sim::ByteEnv& env, const Membership& m,
              std::vector<std::string> recovered)
      : node_(node),
        chan_(env, [](RequestId id, ClientResponse&) { return id.value() < kInternalRequests; }),
        raft_(chan_, m, std::move(recovered), node.run().config.raft),
        observer_(node.run().observers.at(kMeta)) {
    observer_->restarted(node_.self());
    tick_ = chan_.set_timer(30ms);
    observer_->check(node_.self(), raft_);
  }

  Status deliver(NodeId from, std::string_view bytes) override {
    if (bytes.empty()) return Status::Corruption("an empty group 0 frame");
    Status s = Status::OK();
    if (bytes[0] == kRaftFrame) {
      s = deliver_raft(raft_, from, bytes.substr(1));
    } else {
      on_report(bytes.substr(1));
    }
    observer_->check(node_.self(), raft_);
    return s;
  }
  void on_request(const ClientRequest& req) override {
    raft_.on_request(req);
    observer_->check(node_.self(), raft_);
  }
  void on_timer(TimerId id) override {
    if (id == tick_) {
      if (raft_.role() == Raft::Role::kLeader) control();
      tick_ = chan_.set_timer(30ms);
    } else {
      raft_.on_timer(id);
    }
    observer_->check(node_.self(), raft_);
  }
  void on_persisted(PersistToken t) override {
    raft_.on_persisted(t);
    observer_->check(node_.self(), raft_);
  }
  void on_peer_down(NodeId peer) override { raft_.on_peer_down(peer); }

  const RaftKv& raft() const { return raft_; }

 private:
  struct Report {
    uint64_t term = 0;
    GroupView view;
    MembershipEpoch membership;
    Instant at{};
  };

  void on_report(std::string_view bytes) {
    replication::Reader r(bytes);
    const GroupId g(r.varint().value());
    Report rep;
    rep.term = r.varint().value();
    rep.view.leader = NodeId(r.varint().value());
    rep.view.config = read_nodes(r);
    rep.view.config_committed = r.boolean().value();
    rep.view.commit_index = r.varint().value();
    rep.membership.index = r.varint().value();
    rep.membership.term = r.varint().value();
    const uint64_t n = r.varint().value();
    for (uint64_t i = 0; i < n; ++i) {
      const NodeId m(r.varint().value());
      rep.view.match[m] = r.varint().value();
    }
    const uint64_t learners = r.varint().value();
    for (uint64_t i = 0; i < learners; ++i) {
      const NodeId m(r.varint().value());
      rep.view.learners[m] = r.varint().value();
    }
    rep.at = chan_.now();
    Report& mine = reports_[g];
    // An older report (reordered, duplicated, or a deposed leader's) does not
    // replace a fresh newer one: a map published from a stale view would drop
    // a member the group has added since.
    if (std::pair(rep.term, rep.view.commit_index) < std::pair(mine.term, mine.view.commit_index) &&
        rep.at - mine.at < 300ms) {
      return;
    }
    mine = std::move(rep);
  }

  // One step of the controller for every data group.
  void control() {
    const Instant now = chan_.now();
    const std::optional<std::string> current =
        raft_.state_machine().read(std::string(kPlacementKey));
    // One map change at a time: until it is applied here (or, lost, 200 ms passed).
    if (cas_in_flight_ && current == cas_base_ && now - cas_sent_ < 200ms) return;
    cas_in_flight_ = false;
    Run& run = node_.run();
    const Config& c = run.config;
    PlacementMap map;
    if (!current) {
      // The first leader of group 0 writes the initial map (the hosts start
      // with the same placement).
      for (size_t g = 1; g <= c.groups; ++g) {
        map[GroupId(g)] = GroupEntry{1, target_of(c, GroupId(g), 0), 0};
      }
      propose(std::nullopt, map);
      return;
    }
    map = decode_map(*current);
    run.saw_map(map);
    PlacementMap next = map;
    for (auto& [g, entry] : map) {
      auto rep = reports_.find(g);
      if (rep == reports_.end() || now - rep->second.at > 300ms) continue;
      const std::vector<NodeId> target = target_of(c, g, entry.targets_reached + 1);
      auto s = next_replica_step(target, entry.owners, rep->second.view, c.factor, {}, 8);
      if (!s.ok()) {
        run.fail(fmt::format("group {}: the controller cannot go on: {}", g.value(),
                             s.status().to_string()));
        continue;
      }
      switch (s->kind) {
        case ReplicaStep::Kind::kDone:
          ++next[g].targets_reached;
          break;
        case ReplicaStep::Kind::kPublish:
          next[g].owners = s->owners;
          ++next[g].epoch;
          break;
        case ReplicaStep::Kind::kWait:
          break;
        case ReplicaStep::Kind::kLearn:
        case ReplicaStep::Kind::kAdd:
        case ReplicaStep::Kind::kRemove:
        case ReplicaStep::Kind::kTransfer: {
          replication::Writer w;
          w.u8(static_cast<uint8_t>(s->kind));
          w.varint(s->node.value());
          w.varint(entry.epoch);
          w.varint(rep->second.membership.index);
          w.varint(rep->second.membership.term);
          node_.send_side(rep->second.view.leader, g, entry.epoch, std::move(w).take());
          break;
        }
      }
    }
    if (next != map) propose(current, next);
  }

  void propose(const std::optional<std::string>& expected, const PlacementMap& next) {
    ClientRequest req;
    req.id = RequestId(kInternalRequests + ++internal_);
    req.op = ClientOp::kCas;
    req.key = std::string(kPlacementKey);
    req.expected = expected;
    req.value = encode_map(next);
    cas_in_flight_ = true;
    cas_base_ = expected;
    cas_sent_ = chan_.now();
    raft_.on_request(req);
  }

  ScenarioNode& node_;
  Channel chan_;
  RaftKv raft_;
  std::shared_ptr<Observer> observer_;
  TimerId tick_;
  std::map<GroupId, Report> reports_;
  uint64_t internal_ = 0;
  bool cas_in_flight_ = false;
  std::optional<std::string> cas_base_;
  Instant cas_sent_{};
};

// ---- a data group's replica ----------------------------------------------------

// A data replica's state machine: the register map, which with
// Config::machine_keeps_state starts from the node's kept state and index
// (coord/replica_groups.cc's ReplicaGroup over RocksDB): entries up to that
// index are in it already and are not applied again; a restored snapshot is
// persisted before raft checkpoints it.
class KeptKv final : public replication::StateMachine {
 public:
  KeptKv(Run& run, uint64_t node, GroupId group) : run_(run), node_(node), group_(group) {}
  ClientResponse apply(const ClientRequest& command) override {
    if (raft->applied_index().value() <= kept_through) {
      ++run_.kept_skipped;
      return ClientResponse{};  // no one waits: a restarted replica has no pending writes
    }
    // The store writes the entry's position with its effects; raft's no-op
    // and configuration entries never get here and write none.
    stored_through = raft->applied_index().value();
    ClientResponse response = kv.apply(command);
    run_.check_state(group_, node_, stored_through, kv, "applied an entry", /*record=*/true);
    return response;
  }
  ClientResponse read(const ClientRequest& request) const override { return kv.read(request); }
  std::string snapshot() const override { return kv.snapshot(); }
  // With kept state, as ReplicaGroups over RocksDB: the state as of now, read
  // a piece at a time (pieces of another size than the chunks, so chunks span
  // pieces and pieces span chunks), saying every other time that the next
  // piece would wait (as the prefetching reader does): shorter chunks, and
  // transfers that end with an empty chunk.
  LogIndex kept_index() const override { return LogIndex(kept_through); }
  std::unique_ptr<replication::SnapshotReader> open_snapshot() const override {
    if (!run_.config.machine_keeps_state) return nullptr;
    struct Pieces final : replication::SnapshotReader {
      explicit Pieces(std::string state) : state(std::move(state)) {}
      Result<std::string> next(size_t max_bytes) override {
        const size_t n = std::min(state.size() - at, max_bytes / 3 + 1);
        std::string piece = state.substr(at, n);
        at += n;
        return piece;
      }
      bool ready() const override { return (++asked % 2) == 0; }
      std::string state;
      size_t at = 0;
      mutable uint64_t asked = 0;
    };
    ++run_.snapshot_reads;
    return std::make_unique<Pieces>(kv.snapshot());
  }
  Status restore(std::string_view snapshot, LogIndex index) override {
    if (Status s = kv.restore(snapshot, index); !s.ok()) return s;
    run_.check_state(group_, node_, index.value(), kv, "restored a snapshot", /*record=*/true);
    kept_through = 0;
    stored_through = index.value();
    if (run_.config.machine_keeps_state) persist();
    return Status::OK();
  }
  // Config::stages_in_sink: the chunks in a sink of the machine's.
  struct StagingSink final : replication::SnapshotSink {
    explicit StagingSink(KeptKv& m) : machine(m) {}
    Status append(std::string_view bytes) override {
      if (machine.sink_refuses && machine.sink_refuses()) {
        ++machine.run_.sink_refusals;
        return Status::IOError("the simulator's full disk");
      }
      staged += bytes;
      return Status::OK();
    }
    KeptKv& machine;
    std::string staged;
  };
  std::unique_ptr<replication::SnapshotSink> open_snapshot_sink(LogIndex) override {
    if (!run_.config.stages_in_sink) return nullptr;
    return std::make_unique<StagingSink>(*this);
  }
  Result<RestoreProgress> begin_restore_staged(std::unique_ptr<replication::SnapshotSink> sink,
                                               LogIndex index) override {
    auto* staged = dynamic_cast<StagingSink*>(sink.get());
    SKV_ASSERT(staged != nullptr, "a sink of this machine's");
    ++run_.staged_in_sink;
    return begin_restore(std::move(staged->staged), index);
  }
  // Config::restores_in_background: the snapshot is taken now and restored
  // when its host's timer fires (finish_restore).
  Result<RestoreProgress> begin_restore(std::string snapshot, LogIndex index) override {
    if (!run_.config.restores_in_background) return StateMachine::begin_restore(snapshot, index);
    restoring = std::pair(std::move(snapshot), index);
    ++run_.background_restores;
    if (on_begin) on_begin();
    return RestoreProgress::kStarted;
  }
  // What the host tells raft (Raft::on_restored). A failure leaves the state
  // as it was, or with `midway` half of the snapshot's registers written over
  // it and the store marked (as a restore in pieces whose write failed).
  Status finish_restore(bool fail, bool midway) {
    if (fail) {
      ++run_.background_restores_failed;
      if (midway) {
        ++run_.restores_failed_midway;
        cut_short();
      }
      restoring.reset();
      return Status::IOError("the simulator's planned restore failure");
    }
    auto [bytes, index] = std::move(*restoring);
    restoring.reset();
    return restore(bytes, index);
  }
  // The restore under way stops midway: every other register of the snapshot
  // written over the state, and the store marked (Run::Kept::partial).
  void cut_short() {
    auto incoming = replication::raft::KvStateMachine::decode(restoring->first);
    SKV_ASSERT(incoming.ok(), "the simulator's snapshot does not decode");
    size_t n = 0;
    for (const auto& [key, value] : incoming->registers()) {
      if (n++ % 2 == 0) kv.put_register(key, value);
    }
    if (run_.config.machine_keeps_state) {
      run_.kept[{node_, group_.value()}] = Run::Kept{kv.encode(), stored_through, /*partial=*/true};
    }
    // The mark holds no position (the planted bug goes on from the old one).
    if (run_.config.bug != Bug::kPartialRestoreIgnored) kept_through = stored_through = 0;
  }
  std::optional<std::pair<std::string, LogIndex>> restoring;  // begun, not finished
  std::function<void()> on_begin;                             // arms the host's timer
  std::function<bool()> sink_refuses;  // Config::sink_fails_one_in, drawn by the host
  // Writes the state to the node's store, with the position it holds.
  void persist() {
    run_.kept[{node_, group_.value()}] = Run::Kept{kv.encode(), stored_through};
    run_.kept_erased.erase({node_, group_.value()});
    ++run_.persists;
  }
  // The index the state reflects: what a local read covers.
  uint64_t state_index() const { return std::max(raft->applied_index().value(), kept_through); }

  replication::raft::KvStateMachine kv;
  uint64_t kept_through = 0;
  // The highest index whose position the store holds (replica_groups.cc's
  // ReplicaGroup::stored_through): the log never compacts past it.
  uint64_t stored_through = 0;
  const Raft* raft = nullptr;

 private:
  Run& run_;
  uint64_t node_;
  GroupId group_;
};

// What a data replica starts from: its log's records, and whether its
// machine lost its kept state (raft's machine_state_lost) or holds a partial
// one (machine_state_partial).
struct KeptStart {
  std::vector<std::string> records;
  bool state_lost = false;
  bool partial = false;
};

// Config::machine_keeps_state: the node's kept state of `group` loaded into
// `sm`, when the replica's records are not new (an unplaced replica's records
// are erased, and so is its kept state, as replica_groups.cc forgets its
// applied position). Fails the run when the kept state is older than the
// log's compaction point (replica_groups.cc refuses to start such a replica)
// unless the planted bug made it so. With Config::loses_kept_state the kept
// state is lost now and then (drawn from `rng`): a replica whose log was
// compacted then starts with its machine's state lost.
KeptStart load_kept(Run& run, uint64_t node, GroupId group, KeptKv& sm,
                    std::vector<std::string> recovered, Random& rng) {
  if (!run.config.machine_keeps_state) return {std::move(recovered)};
  auto it = run.kept.find({node, group.value()});
  if (recovered.empty()) {
    if (it != run.kept.end()) run.kept.erase(it);
    return {std::move(recovered)};
  }
  const std::pair<uint64_t, uint64_t> key{node, group.value()};
  if (it != run.kept.end() && run.config.loses_kept_state && rng.next_u64() % 4 == 0) {
    run.kept.erase(it);
    it = run.kept.end();
    run.kept_erased.insert(key);
    ++run.kept_lost;
  }
  auto state = replication::raft::recover(recovered);
  SKV_ASSERT(state.ok(), "the simulator's records do not replay");
  const uint64_t compacted = state->log.snapshot_index().value();
  if (it != run.kept.end() && it->second.partial) {
    // A restore cut short: the marked records wait for a snapshot, whatever
    // the log (replica_groups.cc's start_group), unless the planted bug
    // starts from them as if they were the log's.
    ++run.partial_starts;
    if (run.config.bug == Bug::kPartialRestoreIgnored) {
      // As a store without the mark would start: from its records, at the
      // position it held before the restore.
      auto kv = replication::raft::KvStateMachine::decode(it->second.state);
      SKV_ASSERT(kv.ok(), "the simulator's kept state does not decode");
      sm.kv = std::move(kv).value();
      sm.kept_through = sm.stored_through = it->second.index;
      it->second.partial = false;
      return {std::move(recovered)};
    }
    KeptStart start{std::move(recovered), true, true};
    ++run.lost_starts;
    return start;
  }
  if (it == run.kept.end() && compacted == 0) {
    return {std::move(recovered)};  // no state kept: the whole log rebuilds it
  }
  if (it == run.kept.end() || it->second.index < compacted) {
    // Behind the compaction point: the state must come from the leader
    // (unless the planted bug forgets so). Safe, but without the fault it is
    // the host's bug (it compacted past what its store holds: every restart
    // would cost a snapshot), and fails the run.
    if (!run.kept_erased.contains(key)) {
      run.fail(fmt::format(
          "group {} on node {}: kept state at {} but the log compacted through {}", group.value(),
          node, it == run.kept.end() ? std::string("none") : std::to_string(it->second.index),
          compacted));
    }
    if (it != run.kept.end()) run.kept.erase(it);  // of no use now
    ++run.lost_starts;
    return {std::move(recovered), run.config.bug != Bug::kLostStateIgnored};
  }
  auto kv = replication::raft::KvStateMachine::decode(it->second.state);
  SKV_ASSERT(kv.ok(), "the simulator's kept state does not decode");
  sm.kv = std::move(kv).value();
  sm.kept_through = it->second.index;
  sm.stored_through = it->second.index;
  ++run.kept_starts;
  return {std::move(recovered)};
}

class DataReplica final : public sim::HostedNode {
 public:
  DataReplica(ScenarioNode& node, GroupId group, sim::ByteEnv& env, const Membership& m,
              std::vector<std::string> recovered)
      : node_(node),
        group_(group),
        chan_(env,
              [this](RequestId id, ClientResponse& r) {
                proposed_.erase(id);
                // Raft answers a write while applying its entry and a read at
                // its applied state: either way, the applied index.
                if (r.outcome == ClientResponse::Outcome::kOk && r.index == 0) {
                  r.index = raft_.applied_index().value();
                }
                return true;
              }),
        sm_(node.run(), node.self().value(), group),
        start_(load_kept(node.run(), node.self().value(), group, sm_, std::move(recovered),
                         chan_.random())),
        raft_(chan_, m, std::move(start_.records), sm_, raft_options(node.run().config, start_)),
        observer_(node.run().observers.at(group)) {
    sm_.raft = &raft_;
    sm_.on_begin = [this] {
      restore_timer_ = chan_.set_timer(std::chrono::milliseconds(chan_.random().uniform(400)));
    };
    sm_.sink_refuses = [this] {
      return chan_.random().next_u64() % node_.run().config.sink_fails_one_in == 0;
    };
    observer_->restarted(node_.self());
    tick_ = chan_.set_timer(30ms);
    after();
  }
  // Unplaced (its replica here moved away) or crashed: the reads waiting here
  // did not happen; refusing them sends their clients to another member. A
  // restore under way is lost, or half the time cut short midway (a crash
  // between its pieces: the store keeps the half written and the mark).
  ~DataReplica() override {
    if (sm_.restoring && chan_.random().next_u64() % 2 == 0) sm_.cut_short();
    for (auto& [timer, req] : waiting_) {
      ClientResponse refused;
      refused.outcome = ClientResponse::Outcome::kFail;
      refused.not_served = true;
      chan_.reply(req.id, std::move(refused));
    }
    // Held for a batch: they never reached raft either.
    for (const ClientRequest& req : held_) {
      ClientResponse refused;
      refused.outcome = ClientResponse::Outcome::kFail;
      refused.not_served = true;
      chan_.reply(req.id, std::move(refused));
    }
    // Proposed writes may still commit under the next leader: unanswered, their
    // clients time out (maybe happened), unless the planted bug refuses them.
    if (node_.run().config.bug == Bug::kProposedRefusedWhenUnplaced) {
      for (RequestId id : std::set<RequestId>(proposed_)) {
        ClientResponse refused;
        refused.outcome = ClientResponse::Outcome::kFail;
        refused.not_served = true;
        chan_.reply(id, std::move(refused));
      }
    }
  }

  Status deliver(NodeId from, std::string_view bytes) override {
    if (bytes.empty()) return Status::Corruption("an empty group frame");
    Status s = Status::OK();
    if (bytes[0] == kRaftFrame) {
      s = deliver_raft(raft_, from, bytes.substr(1));
    } else {
      on_command(bytes.substr(1));
    }
    after();
    return s;
  }
  void on_request(const ClientRequest& req) override {
    if (req.op == ClientOp::kRead &&
        (req.level == ReadLevel::kSequential || req.level == ReadLevel::kFifo)) {
      read_locally(req);
    } else if (const auto window = node_.run().config.batch_window) {
      held_.push_back(req);
      if (!batch_timer_) batch_timer_ = chan_.set_timer(*window);
    } else {
      if (req.op != ClientOp::kRead) proposed_.insert(req.id);
      raft_.on_request(req);  // linearizable and causal reads: ReadIndex at the leader
    }
    after();
  }
  void on_timer(TimerId id) override {
    if (id == tick_) {
      if (raft_.role() == Raft::Role::kLeader) report();
      if (node_.run().config.machine_keeps_state) maybe_persist();
      tick_ = chan_.set_timer(30ms);
    } else if (restore_timer_ && id == *restore_timer_) {
      restore_timer_.reset();
      const LogIndex index = sm_.restoring->second;
      const bool fail = chan_.random().next_u64() % node_.run().config.restore_fails_one_in == 0;
      const bool midway = fail && chan_.random().next_u64() % 2 == 0;
      Status restored = sm_.finish_restore(fail, midway);
      const Bug bug = node_.run().config.bug;
      if (bug == Bug::kRestoreFailureIgnored) restored = Status::OK();
      raft_.on_restored(index, restored,
                        midway && bug != Bug::kPartialRestoreIgnored
                            ? Raft::RestoreFailure::kStateLost
                            : Raft::RestoreFailure::kStateUnchanged);
      if (midway) lost_midway_ = true;
    } else if (batch_timer_ && id == *batch_timer_) {
      batch_timer_.reset();
      std::vector<ClientRequest> batch;
      batch.swap(held_);
      ++node_.run().batches;
      node_.run().batches_of_many += batch.size() > 1 ? 1 : 0;
      for (const ClientRequest& req : batch) {
        if (req.op != ClientOp::kRead) proposed_.insert(req.id);
      }
      raft_.on_requests(batch);
    } else if (auto it = waiting_.find(id); it != waiting_.end()) {
      // Not covered within 200 ms: the leader serves it.
      ClientResponse refused;
      refused.outcome = ClientResponse::Outcome::kFail;
      refused.not_served = true;
      refused.leader_hint = raft_.leader();
      ++node_.run().local_reads_refused;
      const RequestId rid = it->second.id;
      waiting_.erase(it);
      chan_.reply(rid, std::move(refused));
    } else {
      raft_.on_timer(id);
    }
    after();
  }
  void on_persisted(PersistToken t) override {
    raft_.on_persisted(t);
    after();
  }
  void on_peer_down(NodeId peer) override { raft_.on_peer_down(peer); }

 private:
  // A sequential or fifo read: from this member's applied state once it
  // covers the session's position in the group (coord/replica_groups.cc,
  // try_local).
  static RaftOptions raft_options(const Config& c, const KeptStart& start) {
    RaftOptions o = c.raft;
    o.machine_keeps_state = c.machine_keeps_state;
    o.machine_state_lost = start.state_lost && !start.partial;
    o.machine_state_partial = start.partial;
    return o;
  }
  // Config::machine_keeps_state: one tick in three the state is persisted with
  // the position the store holds (a store flush), and then, two times in
  // three, the log compacted there (not at raft's applied index, which may be
  // a no-op's or a configuration's past it). The planted bugs compact without
  // persisting, or at the applied index.
  void maybe_persist() {
    Random& rng = chan_.random();
    if (rng.next_u64() % 3 != 0) return;
    if (raft_.state_lost()) return;  // nothing to persist, nothing to compact behind
    const Bug bug = node_.run().config.bug;
    const uint64_t applied = raft_.applied_index().value();
    if (bug != Bug::kCompactedBeyondKept) sm_.persist();
    if (rng.next_u64() % 3 == 0) return;
    const uint64_t at =
        bug == Bug::kCompactedBeyondKept || bug == Bug::kCompactedPastStored
            ? applied
            : std::min(applied, sm_.stored_through);
    if (at > raft_.log().snapshot_index().value()) ++node_.run().compactions;
    raft_.compact(LogIndex(at));
  }

  // Whether this member's state covers `min_index` (a machine that lost its
  // state covers nothing until its snapshot is installed).
  bool covers(uint64_t min_index) const {
    return !raft_.state_lost() && sm_.state_index() >= min_index;
  }
  void read_locally(const ClientRequest& req) {
    if (covers(req.min_index) || node_.run().config.bug == Bug::kReadBehindSession) {
      serve(req);
      return;
    }
    ++node_.run().local_reads_waited;
    waiting_.emplace(chan_.set_timer(200ms), req);
  }
  void serve(const ClientRequest& req) {
    ClientResponse r = sm_.read(req);
    r.index = sm_.state_index();
    node_.run().check_state(group_, node_.self().value(), r.index, sm_.kv, "served a read",
                            /*record=*/false);
    ++node_.run().local_reads;
    chan_.reply(req.id, std::move(r));
  }

  void on_command(std::string_view bytes) {
    replication::Reader r(bytes);
    const auto kind = static_cast<ReplicaStep::Kind>(r.u8().value());
    const NodeId node(r.varint().value());
    const uint64_t epoch = r.varint().value();
    MembershipEpoch membership;
    membership.index = r.varint().value();
    membership.term = r.varint().value();
    Run& run = node_.run();
    const sim::GroupPlacement* p = node_.host().placement(group_);
    // Decided from another map than this node's: an older one that moved on
    // (the planted bug accepts it), or a newer one this node has not applied
    // yet (the controller asks again).
    const bool older = p != nullptr && epoch < p->epoch;
    run.commands_older_epoch += older;
    if (p == nullptr || epoch > p->epoch || (older && run.config.bug != Bug::kOldEpochAccepted)) {
      ++run.commands_refused_epoch;
      return;
    }
    if (raft_.role() != Raft::Role::kLeader) return;
    const MembershipEpoch before = membership_epoch(raft_);
    // Decided from another configuration than the group's own: the map this
    // node knows may be as old as the command (a node cut off from group 0),
    // the group's log is not. The planted bug skips this check too.
    if (membership != membership_epoch(raft_) && run.config.bug != Bug::kOldEpochAccepted) {
      ++run.commands_refused_epoch;
      return;
    }
    // Busy or no longer applicable: the controller looks again.
    const Status s = kind == ReplicaStep::Kind::kTransfer ? raft_.transfer_leadership(node)
                     : kind == ReplicaStep::Kind::kLearn
                         ? raft_.add_learner(node)
                         : raft_.change_membership(node, kind == ReplicaStep::Kind::kAdd);
    if (s.ok()) {
      ++run.commands_run;
      if (older || membership != before) ++run.stale_commands_run;
    }
  }

  void report() {
    replication::Writer w;
    w.varint(group_.value());
    w.varint(raft_.term().value());
    w.varint(node_.self().value());
    write_nodes(w, raft_.config());
    w.boolean(raft_.config_index() <= raft_.commit_index());
    w.varint(raft_.commit_index().value());
    const MembershipEpoch m = membership_epoch(raft_);
    w.varint(m.index);
    w.varint(m.term);
    const auto match = raft_.follower_match();
    w.varint(match.size());
    for (const auto& [n, i] : match) {
      w.varint(n.value());
      w.varint(i.value());
    }
    const auto learners = raft_.learner_match();
    w.varint(learners.size());
    for (const auto& [n, i] : learners) {
      w.varint(n.value());
      w.varint(i.value());
    }
    const std::string bytes = std::move(w).take();
    if (auto leader = node_.meta_leader()) {
      node_.send_side(*leader, kMeta, 0, bytes);
    } else {
      for (size_t n = 1; n <= node_.run().config.nodes; ++n) {
        node_.send_side(NodeId(n), kMeta, 0, bytes);
      }
    }
  }

  // After every callback: waiting reads now covered, the observer, the moves'
  // invariants.
  void after() {
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (covers(it->second.min_index)) {
        chan_.cancel_timer(it->first);
        const ClientRequest req = it->second;
        it = waiting_.erase(it);
        serve(req);
      } else {
        ++it;
      }
    }
    observer_->check(node_.self(), raft_);
    if (start_.state_lost && !raft_.state_lost()) {
      start_.state_lost = false;
      ++node_.run().lost_recovered;
    }
    if (lost_midway_ && !raft_.state_lost()) {
      lost_midway_ = false;
      ++node_.run().midway_recovered;
    }
    if (raft_.role() != Raft::Role::kLeader) return;
    Run& run = node_.run();
    uint64_t& newest_term = run.leader_term[group_];
    if (raft_.term().value() < newest_term) return;  // deposed, not knowing it yet
    newest_term = raft_.term().value();
    const std::vector<NodeId>& config = raft_.config();
    if (config.size() < run.config.factor) {
      run.fail(fmt::format("group {}: leader {} of term {} has {} members, fewer than {}",
                           group_.value(), node_.self().value(), raft_.term().value(),
                           config.size(), run.config.factor));
    }
    auto it = run.newest.find(group_);
    if (it == run.newest.end()) return;
    for (NodeId n : config) {
      if (std::find(it->second.owners.begin(), it->second.owners.end(), n) ==
          it->second.owners.end()) {
        run.fail(
            fmt::format("group {}: leader {} of term {} has member {}, which the map of "
                        "epoch {} does not list",
                        group_.value(), node_.self().value(), raft_.term().value(), n.value(),
                        it->second.epoch));
      }
    }
  }

  ScenarioNode& node_;
  GroupId group_;
  Channel chan_;
  KeptKv sm_;
  KeptStart start_;  // its records moved into raft_
  Raft raft_;
  std::shared_ptr<Observer> observer_;
  TimerId tick_;
  std::map<TimerId, ClientRequest> waiting_;  // local reads, by their timeout
  std::vector<ClientRequest> held_;           // Config::batch_window: not yet proposed
  std::set<RequestId> proposed_;              // writes handed to raft, not answered yet
  std::optional<TimerId> batch_timer_;
  std::optional<TimerId> restore_timer_;  // Config::restores_in_background
  bool lost_midway_ = false;              // a restore failed midway: state lost until a snapshot
};

// ---- ScenarioNode ---------------------------------------------------------------

ScenarioNode::ScenarioNode(sim::ByteEnv& env, NodeId self, std::shared_ptr<Run> run,
                           std::vector<std::string> recovered)
    : env_(env), self_(self), run_(std::move(run)) {
  const Config& c = run_->config;
  sim::GroupHostOptions o;
  std::vector<NodeId> all;
  for (size_t n = 1; n <= c.nodes; ++n) all.emplace_back(n);
  o.groups.push_back(sim::GroupPlacement{kMeta, all, 0});
  for (size_t g = 1; g <= c.groups; ++g) {
    o.groups.push_back(sim::GroupPlacement{GroupId(g), target_of(c, GroupId(g), 0), 1});
  }
  const size_t groups = c.groups;
  o.route = [groups](std::string_view key) { return sim::group_of_key(key, groups); };
  if (c.raft.quiesce) {
    o.peer_ping_interval = 50ms;
    o.peer_down_after = 200ms;
  }
  o.factory = [this](GroupId g, sim::ByteEnv& group_env, const Membership& m,
                     std::vector<std::string> records) -> std::unique_ptr<sim::HostedNode> {
    if (g == kMeta) return std::make_unique<MetaReplica>(*this, group_env, m, std::move(records));
    return std::make_unique<DataReplica>(*this, g, group_env, m, std::move(records));
  };
  host_ = std::make_unique<sim::GroupHost>(env_, self_, std::move(o), std::move(recovered));
  sync_timer_ = env_.set_timer(10ms);
}

std::optional<NodeId> ScenarioNode::meta_leader() {
  auto* meta = static_cast<MetaReplica*>(host_->protocol(kMeta));
  return meta == nullptr ? std::nullopt : meta->raft().leader();
}

void ScenarioNode::replay() {
  if (!run_->config.replays || !env_.random().chance(kReplayPerTick)) return;
  std::optional<Replay>& slot = replays_[env_.random().uniform(replays_.size())];
  if (!slot || env_.now() - slot->at < 100ms) return;
  const Replay r = std::move(*slot);
  slot.reset();
  ++run_->replays;
  // A frame that decoded once decodes again.
  SKV_ASSERT(deliver_now(r.from, r.bytes).ok(), "a replayed frame no longer decodes");
}

void ScenarioNode::sync() {
  run_->stale_frames += host_->frames_from_older_epochs() - stale_reported_;
  stale_reported_ = host_->frames_from_older_epochs();
  auto* meta = static_cast<MetaReplica*>(host_->protocol(kMeta));
  auto bytes = meta->raft().state_machine().read(std::string(kPlacementKey));
  if (!bytes || *bytes == synced_) return;
  synced_ = *bytes;
  const PlacementMap map = decode_map(*bytes);
  run_->saw_map(map);
  const uint32_t factor = run_->config.factor;
  for (const auto& [g, e] : map) {
    const sim::GroupPlacement* p = host_->placement(g);
    if (p != nullptr && e.epoch < p->epoch) continue;  // this node's map is behind
    const bool listed = std::find(e.owners.begin(), e.owners.end(), self_) != e.owners.end();
    if (!listed) {
      if (p != nullptr) {
        // Its replica here moved away (removed from the group, then from the
        // owners): stop it and erase it.
        host_->unplace(g);
        ++run_->unplaced;
      }
      host_->place(sim::GroupPlacement{g, e.owners, e.epoch}, {});  // remembered for hints
      continue;
    }
    std::vector<NodeId> bootstrap = e.owners;
    if (p == nullptr) {
      // A replica that starts after the first placement is a member being
      // added: empty, outside the configuration until the leader's config
      // entry or snapshot takes it in.
      if (e.epoch > 1 || std::find(e.owners.begin(), e.owners.end(), self_) - e.owners.begin() >=
                             static_cast<std::ptrdiff_t>(factor)) {
        bootstrap.erase(std::find(bootstrap.begin(), bootstrap.end(), self_));
      }
      ++run_->placed;
    }
    host_->place(sim::GroupPlacement{g, e.owners, e.epoch}, bootstrap);
  }
}

// ---- the clients ------------------------------------------------------------------

// Reads at every level, writes, compare-and-sets and deletes on `keys` keys;
// values unique within the run.
class LevelSource final : public sim::OperationSource {
 public:
  LevelSource(Random rng, size_t keys) : rng_(rng), keys_(keys), last_(keys) {}
  ClientRequest next(size_t) override {
    ClientRequest req;
    const size_t k = rng_.uniform(keys_);
    req.key = fmt::format("k{}", k);
    const uint64_t roll = rng_.uniform(100);
    if (roll < 50) {
      req.op = ClientOp::kRead;
      const uint64_t l = rng_.uniform(100);
      req.level = l < 35   ? ReadLevel::kLinearizable
                  : l < 50 ? ReadLevel::kCausal
                  : l < 75 ? ReadLevel::kSequential
                           : ReadLevel::kFifo;
    } else if (roll < 78) {
      req.op = ClientOp::kWrite;
      req.value = fmt::format("v{}", next_value_++);
      last_[k] = req.value;
    } else if (roll < 92) {
      req.op = ClientOp::kCas;
      req.expected = last_[k];
      req.value = fmt::format("v{}", next_value_++);
      last_[k] = req.value;
    } else {
      req.op = ClientOp::kDelete;
      last_[k].reset();
    }
    return req;
  }
  void observe(size_t, const ClientRequest& op, sim::OpOutcome outcome,
               const std::optional<std::string>& value) override {
    if (op.op == ClientOp::kRead && outcome == sim::OpOutcome::kOk) {
      last_[std::stoul(op.key.substr(1))] = value;
    }
  }

 private:
  Random rng_;
  size_t keys_;
  std::vector<std::optional<std::string>> last_;
  uint64_t next_value_ = 1;
};

// ---- one seed -----------------------------------------------------------------------

struct Verdicts {
  sim::SeedReport report;
  std::shared_ptr<Run> run;
  std::string linearizable, session, sequential, causal;  // empty: passed

  bool history_ok() const {
    return linearizable.empty() && session.empty() && sequential.empty() && causal.empty();
  }
  bool ok() const { return history_ok() && run->violation.empty() && run->observers_ok(); }
  std::string describe() const {
    std::ostringstream os;
    os << "linearizable: " << linearizable << "\nsession: " << session
       << "\nsequential: " << sequential << "\ncausal: " << causal << "\nmoves: " << run->violation
       << "\n";
    for (const auto& [g, o] : run->observers) {
      if (!o->ok()) os << "raft of group " << g << ": " << o->violation() << "\n";
    }
    os << report.run.parameters << report.run.schedule.to_text();
    return os.str();
  }
};

bool weak(const check::Event& e) {
  return e.level == "sequential" || e.level == "fifo";
}

std::string judge(const check::History& h, std::string_view model) {
  Result<check::CheckResult> r = check::run_model(model, h);
  SKV_ASSERT(r.ok(), "the simulator recorded a malformed history");
  return r->valid ? std::string() : r->explanation;
}

Config config_for(uint64_t seed) {
  Config c;
  c.nodes = 3 + seed % 3;
  c.groups = 4 + seed % 5;
  c.factor = c.nodes >= 4 ? 3 : 2;
  if (seed % 2 == 1) {
    c.raft.snapshot_threshold = 4 + seed % 13;    // checkpoints, InstallSnapshot
    c.raft.snapshot_chunk_bytes = 8 + seed % 57;  // a shard's snapshot in several chunks
  }
  c.raft.quiesce = seed % 4 >= 2;
  c.machine_keeps_state = seed % 3 == 0;
  c.restores_in_background = c.machine_keeps_state && (seed / 3) % 2 == 1;
  c.stages_in_sink = c.machine_keeps_state && (seed / 3) % 4 < 2;
  c.loses_kept_state = c.machine_keeps_state && (seed / 6) % 2 == 1;
  if (seed % 2 == 1) c.batch_window = std::chrono::milliseconds(1 + seed % 5);
  return c;
}

sim::SimOptions options_for(uint64_t seed, const Config& c) {
  sim::SimOptions o;
  o.seed = seed;
  o.nodes = c.nodes;
  o.clients = 6;
  o.ops = 300;
  o.faults = *sim::parse_fault_set("all");
  o.workload.source = [](Random rng) { return std::make_unique<LevelSource>(rng, 16); };
  return o;
}

Verdicts run_seed(const sim::SimOptions& o, Config c) {
  auto run = std::make_shared<Run>(std::move(c));
  sim::ProtocolEntry entry{
      "replica-groups", "data groups and the metadata group, replicas moving",
      [run](sim::ByteEnv& env, const Membership& m, std::vector<std::string> recovered) {
        return std::make_unique<ScenarioNode>(env, m.self, run, std::move(recovered));
      }};
  Result<sim::SimResult> result = sim::run_simulation(entry, o);
  SKV_ASSERT(result.ok(), "the simulation itself broke");
  Verdicts v;
  v.run = run;
  v.report.run = std::move(result).value();
  const check::History& all = v.report.run.history;
  check::History strong;
  for (const check::Event& e : all) {
    if (!weak(e)) strong.push_back(e);
  }
  v.linearizable = judge(strong, "linearizable");
  v.session = judge(all, "session");
  v.sequential = judge(all, "sequential");
  v.causal = judge(strong, "causal");
  v.report.verdict.valid = v.history_ok();
  return v;
}

uint64_t seeds_from_env(uint64_t fallback) {
  const char* v = std::getenv("STATEKV_GROUPS_SIM_SEEDS");
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST(ReplicaGroupsSim, WithoutFaultsReplicasMoveAndEveryLevelIsServed) {
  Config c = config_for(4);  // 4 nodes, factor 3
  c.nodes = 4;
  c.factor = 3;
  c.replays = false;
  sim::SimOptions o = options_for(4, c);
  o.faults = sim::FaultSet{};
  o.ops = 600;
  Verdicts v = run_seed(o, c);
  ASSERT_TRUE(v.ok()) << v.describe();
  EXPECT_EQ(v.report.run.info, 0u) << "without faults every request is answered";
  EXPECT_GE(v.report.run.ok_fraction(), sim::default_min_ok(o));
  uint64_t reached = 0;
  for (const auto& [g, e] : v.run->newest) reached += e.targets_reached;
  EXPECT_GE(reached, c.groups) << "every group should reach a target";
  EXPECT_GT(v.run->unplaced, 0u) << "replicas moved away and were erased";
  EXPECT_GT(v.run->local_reads, 0u) << "sequential and fifo reads are served by members";
  std::printf(
      "[ measure ] no faults: %zu groups reached %llu targets, %llu commands, %llu local "
      "reads\n",
      c.groups, static_cast<unsigned long long>(reached),
      static_cast<unsigned long long>(v.run->commands_run),
      static_cast<unsigned long long>(v.run->local_reads));
}

TEST(ReplicaGroupsSim, SameSeedSameHistory) {
  Verdicts a = run_seed(options_for(5, config_for(5)), config_for(5));
  Verdicts b = run_seed(options_for(5, config_for(5)), config_for(5));
  EXPECT_EQ(a.report.run.history_hash, b.report.run.history_hash);
  EXPECT_EQ(a.report.run.events, b.report.run.events);
}

TEST(ReplicaGroupsSim, ManyFaultySeedsAreLinearizableSessionConsistentAndSafe) {
  const uint64_t seeds = seeds_from_env(500);
  uint64_t ok = 0, total = 0, reached = 0, commands = 0, refused = 0, local = 0, waited = 0,
           stale = 0, unplaced = 0, replays = 0, older = 0, installed = 0, chunks = 0,
           most_chunks = 0, batches_of_many = 0, persists = 0, compactions = 0, kept_starts = 0,
           kept_skipped = 0, snapshot_reads = 0, background_restores = 0,
           background_restores_failed = 0, kept_lost = 0, lost_starts = 0, lost_recovered = 0,
           failed_midway = 0, partial_starts = 0, midway_recovered = 0, states_checked = 0,
           staged_in_sink = 0, sink_refusals = 0;
  const auto wall_start = std::chrono::steady_clock::now();
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    const Config c = config_for(seed);
    const sim::SimOptions o = options_for(seed, c);
    Verdicts v = run_seed(o, c);
    ASSERT_TRUE(v.ok()) << "seed " << seed << "\n" << v.describe();
    ASSERT_GE(v.report.run.ok_fraction(), sim::default_min_ok(o)) << "seed " << seed << "\n"
                                                                  << v.describe();
    ok += v.report.run.ok;
    total += v.report.run.ok + v.report.run.fail + v.report.run.info;
    for (const auto& [g, e] : v.run->newest) reached += e.targets_reached;
    commands += v.run->commands_run;
    refused += v.run->commands_refused_epoch;
    local += v.run->local_reads;
    waited += v.run->local_reads_waited;
    stale += v.run->stale_frames;
    unplaced += v.run->unplaced;
    replays += v.run->replays;
    older += v.run->commands_older_epoch;
    batches_of_many += v.run->batches_of_many;
    persists += v.run->persists;
    compactions += v.run->compactions;
    kept_starts += v.run->kept_starts;
    kept_skipped += v.run->kept_skipped;
    snapshot_reads += v.run->snapshot_reads;
    background_restores += v.run->background_restores;
    background_restores_failed += v.run->background_restores_failed;
    kept_lost += v.run->kept_lost;
    lost_starts += v.run->lost_starts;
    lost_recovered += v.run->lost_recovered;
    failed_midway += v.run->restores_failed_midway;
    partial_starts += v.run->partial_starts;
    midway_recovered += v.run->midway_recovered;
    states_checked += v.run->states_checked;
    staged_in_sink += v.run->staged_in_sink;
    sink_refusals += v.run->sink_refusals;
    for (const auto& [g, obs] : v.run->observers) {
      installed += obs->snapshots_installed();
      chunks += obs->snapshot_chunks_accepted();
      most_chunks = std::max(most_chunks, obs->most_snapshot_chunks());
    }
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  std::printf(
      "[ measure ] replica groups: %llu seeds in %.1fs, %llu of %llu operations ok (%.1f%%); "
      "targets reached %llu, membership commands run %llu, refused for their epoch %llu (older "
      "%llu), replicas erased %llu, frames replayed %llu, frames older than their replica %llu; "
      "member reads %llu (waited for the session %llu); snapshots installed %llu from %llu "
      "chunks (at most %llu in one); %llu batches of several requests; kept state (every "
      "third seed): %llu persists, %llu compactions behind them, %llu replicas started from "
      "it, %llu entries it held not applied again, %llu snapshots read a piece at a time, %llu "
      "restored in the background (%llu of them failed, %llu midway: %llu recovered by a "
      "snapshot, %llu replicas restarted with the restoring mark); kept states lost %llu, "
      "replicas started with their state lost %llu (%llu installed a snapshot and served "
      "again); replica states compared with the state at their index %llu; snapshots staged in "
      "the machine's sink %llu (chunks it refused %llu)\n",
      static_cast<unsigned long long>(seeds), wall, static_cast<unsigned long long>(ok),
      static_cast<unsigned long long>(total), 100.0 * ok / total,
      static_cast<unsigned long long>(reached), static_cast<unsigned long long>(commands),
      static_cast<unsigned long long>(refused), static_cast<unsigned long long>(older),
      static_cast<unsigned long long>(unplaced), static_cast<unsigned long long>(replays),
      static_cast<unsigned long long>(stale), static_cast<unsigned long long>(local),
      static_cast<unsigned long long>(waited), static_cast<unsigned long long>(installed),
      static_cast<unsigned long long>(chunks), static_cast<unsigned long long>(most_chunks),
      static_cast<unsigned long long>(batches_of_many), static_cast<unsigned long long>(persists),
      static_cast<unsigned long long>(compactions), static_cast<unsigned long long>(kept_starts),
      static_cast<unsigned long long>(kept_skipped),
      static_cast<unsigned long long>(snapshot_reads),
      static_cast<unsigned long long>(background_restores),
      static_cast<unsigned long long>(background_restores_failed),
      static_cast<unsigned long long>(failed_midway),
      static_cast<unsigned long long>(midway_recovered),
      static_cast<unsigned long long>(partial_starts), static_cast<unsigned long long>(kept_lost),
      static_cast<unsigned long long>(lost_starts), static_cast<unsigned long long>(lost_recovered),
      static_cast<unsigned long long>(states_checked),
      static_cast<unsigned long long>(staged_in_sink),
      static_cast<unsigned long long>(sink_refusals));
  EXPECT_GT(reached, seeds) << "replicas must really move under faults";
  if (seeds >= 20) {
    EXPECT_GT(installed, 0u) << "new replicas must catch up from snapshots too";
    // (Most installs are of small shards, or on even seeds' 1 MB chunks.)
    EXPECT_GT(chunks, installed) << "snapshots must take several chunks";
    EXPECT_GT(most_chunks, 2u);
    EXPECT_GT(batches_of_many, 0u) << "the odd seeds' batches never held several requests";
    EXPECT_GT(kept_starts, 0u) << "no replica ever restarted from its kept state";
    EXPECT_GT(kept_skipped, 0u) << "no restart found its kept state ahead of its log's";
    EXPECT_GT(snapshot_reads, 0u) << "no leader read a snapshot a piece at a time";
    EXPECT_GT(background_restores_failed, 0u) << "no restore in the background failed";
    EXPECT_GT(background_restores, background_restores_failed)
        << "no restore in the background succeeded";
    EXPECT_GT(staged_in_sink, 0u) << "no follower staged a snapshot in its machine's sink";
    EXPECT_GT(sink_refusals, 0u) << "no sink refused a chunk";
  }
  if (seeds >= 100) {
    EXPECT_GT(lost_starts, 0u) << "no replica ever started with its kept state lost";
    EXPECT_GT(lost_recovered, 0u) << "no replica whose state was lost got it back";
    EXPECT_GT(failed_midway, 0u) << "no restore in the background failed midway";
    EXPECT_GT(midway_recovered, 0u) << "no restore that failed midway was made good";
  }
}

// Planted bug: commands and frames stamped with an older epoch of the group's
// placement are accepted. A command decided from a map that moved on then
// removes a member that was added back, or adds one that was removed since:
// the moves' invariants (or raft's, or the history) must catch it. (Since new
// members join as learners first, a move takes more steps and fewer moves run
// per seed: the first seed that shows it is 114, it was 10.)
TEST(ReplicaGroupsSim, AnOldEpochAcceptedIsCaught) {
  uint64_t caught_at = 0;
  for (uint64_t seed = 1; seed <= 400 && caught_at == 0; ++seed) {
    Config c = config_for(seed);
    c.machine_keeps_state = false;  // the seeds as they were before that mode
    c.bug = Bug::kOldEpochAccepted;
    Verdicts v = run_seed(options_for(seed, c), c);
    if (!v.ok()) {
      caught_at = seed;
      std::printf("[ measure ] old epoch accepted: caught at seed %llu: %s\n",
                  static_cast<unsigned long long>(seed),
                  (v.run->violation.empty() ? v.describe() : v.run->violation).c_str());
    }
  }
  EXPECT_NE(caught_at, 0u) << "commands and frames of old epochs went unnoticed for 400 seeds";
}

// Planted bug: a sequential or fifo read is served by a member whose applied
// index does not cover the session's position (no wait). The session checker
// must catch it.
TEST(ReplicaGroupsSim, AFollowerReadBehindTheSessionIsCaught) {
  uint64_t caught_at = 0;
  std::string why;
  for (uint64_t seed = 1; seed <= 40 && caught_at == 0; ++seed) {
    Config c = config_for(seed);
    c.bug = Bug::kReadBehindSession;
    Verdicts v = run_seed(options_for(seed, c), c);
    if (!v.session.empty()) {
      caught_at = seed;
      why = v.session;
    }
  }
  ASSERT_NE(caught_at, 0u) << "reads behind the session went unnoticed for 40 seeds";
  std::printf(
      "[ measure ] read behind the session: caught at seed %llu by the session "
      "checker: %s\n",
      static_cast<unsigned long long>(caught_at), why.c_str());
}

// Config::machine_keeps_state, and its planted bug: a replica that compacts its
// log without having persisted its state through the compaction point loses,
// at its next crash, the entries in between. The judges must catch it; the
// same seeds without the bug must pass (ManyFaultySeeds... runs them too).
TEST(ReplicaGroupsSim, ALogCompactedBeyondTheKeptStateIsCaught) {
  uint64_t caught_at = 0;
  std::string why;
  for (uint64_t seed = 3; seed <= 300 && caught_at == 0; seed += 3) {
    Config c = config_for(seed);
    ASSERT_TRUE(c.machine_keeps_state);
    Verdicts honest = run_seed(options_for(seed, c), c);
    ASSERT_TRUE(honest.ok()) << "seed " << seed << ": " << honest.describe();
    ASSERT_TRUE(honest.run->violation.empty()) << honest.run->violation;
    if (seed == 3) {
      std::printf(
          "[ measure ] kept state, seed 3: %llu persists, %llu compactions, %llu replicas "
          "started from kept state, %llu entries not applied again\n",
          static_cast<unsigned long long>(honest.run->persists),
          static_cast<unsigned long long>(honest.run->compactions),
          static_cast<unsigned long long>(honest.run->kept_starts),
          static_cast<unsigned long long>(honest.run->kept_skipped));
    }
    c.bug = Bug::kCompactedBeyondKept;
    Verdicts v = run_seed(options_for(seed, c), c);
    if (!v.ok()) {
      caught_at = seed;
      why = v.describe();
    }
  }
  ASSERT_NE(caught_at, 0u) << "a log compacted past the kept state went unnoticed";
  std::printf("[ measure ] log compacted beyond the kept state: caught at seed %llu: %s\n",
              static_cast<unsigned long long>(caught_at), why.substr(0, 300).c_str());
}

// The first seed from `from` to `to` (every `step`-th) whose run with `bug`
// planted the judges or the run's own checks reject, and why (seed 0: none).
// `shape` adjusts a seed's Config, false to skip the seed; `seen` sees each run.
struct Caught {
  uint64_t seed = 0;
  std::string why;
};
Caught first_caught(uint64_t from, uint64_t to, uint64_t step, Bug bug,
                    const std::function<bool(Config&)>& shape = {},
                    const std::function<void(const Verdicts&)>& seen = {}) {
  for (uint64_t seed = from; seed <= to; seed += step) {
    Config c = config_for(seed);
    if (shape && !shape(c)) continue;
    c.bug = bug;
    Verdicts v = run_seed(options_for(seed, c), c);
    if (seen) seen(v);
    if (!v.ok() || !v.run->violation.empty()) {
      return {seed, v.run->violation.empty() ? v.describe() : v.run->violation};
    }
  }
  return {};
}

// Planted bug: a restore in the background that failed (the state as it was)
// reported to raft as done. The member then acknowledges a snapshot it does
// not hold and applies the entries after it to the old state.
TEST(ReplicaGroupsSim, ABackgroundRestoreFailureReportedAsDoneIsCaught) {
  const auto [caught_at, why] = first_caught(3, 900, 3, Bug::kRestoreFailureIgnored,
                                             [](Config& c) { return c.restores_in_background; });
  ASSERT_NE(caught_at, 0u) << "a failed restore reported as done went unnoticed";
  std::printf("[ measure ] failed background restore reported as done: caught at seed %llu: %s\n",
              static_cast<unsigned long long>(caught_at), why.substr(0, 300).c_str());
}

// Planted bug: a restore in pieces that failed midway (half of the snapshot
// written over the state, the store marked) reported to raft as leaving the
// state as it was, and a restart from the marked store started from it: the
// member applies older entries over newer registers and serves the mix.
TEST(ReplicaGroupsSim, ARestoreFailedMidwayTreatedAsUnchangedIsCaught) {
  uint64_t midway = 0;
  const auto [caught_at, why] = first_caught(
      3, 1800, 3, Bug::kPartialRestoreIgnored,
      [](Config& c) {
        c.restore_fails_one_in = 2;
        return c.restores_in_background;
      },
      [&midway](const Verdicts& v) { midway += v.run->restores_failed_midway; });
  ASSERT_NE(caught_at, 0u) << "a partial restore served from went unnoticed (" << midway
                           << " restores failed midway)";
  std::printf("[ measure ] a restore failed midway treated as unchanged: caught at seed %llu: %s\n",
              static_cast<unsigned long long>(caught_at), why.substr(0, 300).c_str());
}

// Planted bug: a replica leaving a node (moved away, or its node crashed)
// answers the writes it proposed "did not run", as ReplicaGroups' stop_group
// did before 2026-12-07: their clients send them again, and an entry that
// still commits under the next leader takes effect twice.
TEST(ReplicaGroupsSim, ProposedWritesRefusedWhenAReplicaLeavesAreCaught) {
  const auto [caught_at, why] = first_caught(1, 2000, 1, Bug::kProposedRefusedWhenUnplaced);
  ASSERT_NE(caught_at, 0u) << "proposed writes refused when a replica left went unnoticed";
  std::printf(
      "[ measure ] proposed writes refused when a replica leaves: caught at seed %llu: %s\n",
      static_cast<unsigned long long>(caught_at), why.substr(0, 300).c_str());
}

// Planted bug: a replica whose kept state was lost (its store gone, its log
// compacted) starts as if its machine held the state at the compaction point,
// and serves from an empty one.
TEST(ReplicaGroupsSim, ALostKeptStateIgnoredIsCaught) {
  uint64_t lost_starts = 0;
  const auto [caught_at, why] = first_caught(
      3, 1200, 3, Bug::kLostStateIgnored, [](Config& c) { return c.loses_kept_state; },
      [&lost_starts](const Verdicts& v) { lost_starts += v.run->lost_starts; });
  ASSERT_NE(caught_at, 0u) << "a replica serving from a lost state went unnoticed (" << lost_starts
                           << " such starts)";
  std::printf("[ measure ] a lost kept state ignored: caught at seed %llu: %s\n",
              static_cast<unsigned long long>(caught_at), why.substr(0, 300).c_str());
}

// Planted bug (found with real processes: a killed node's group refused to
// start, its store one entry behind its log's compaction point): compacting
// through raft's applied index, which a no-op or configuration entry can put
// past the position the store holds. A restart then finds the store behind.
TEST(ReplicaGroupsSim, ALogCompactedPastTheStoresPositionIsCaught) {
  bool all_keep_state = true;
  const auto [caught_at, why] =
      first_caught(3, 600, 3, Bug::kCompactedPastStored, [&all_keep_state](Config& c) {
        all_keep_state = all_keep_state && c.machine_keeps_state;
        return true;
      });
  ASSERT_TRUE(all_keep_state) << "every third seed keeps its state";
  ASSERT_NE(caught_at, 0u) << "a log compacted past the store's position went unnoticed";
  std::printf("[ measure ] log compacted past the store's position: caught at seed %llu: %s\n",
              static_cast<unsigned long long>(caught_at), why.substr(0, 300).c_str());
}

}  // namespace
}  // namespace statekv::coord
