#include "coord/replica_groups.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <xxhash.h>

#include <algorithm>
#include <asio.hpp>
#include <atomic>
#include <cstdlib>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <span>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "coord/cluster_scan.h"
#include "coord/leader_balance.h"
#include "coord/routing_errors.h"
#include "coord/shard_snapshot.h"
#include "coord/snapshot_prefetch.h"
#include "coord/snapshot_staging.h"
#include "core/assert.h"
#include "core/held_posts.h"
#include "core/thread_name.h"
#include "net/raft_node.h"
#include "net/shared_log.h"
#include "replication/codec.h"
#include "replication/mutation.h"
#include "resp/writer.h"
#include "server/blocking.h"
#include "server/command_table.h"
#include "server/context.h"
#include "server/key_page.h"
#include "server/number.h"
#include "server/proposer.h"
#include "server/record.h"
#include "server/store.h"
#include "server/transaction.h"

namespace statekv::coord {

namespace {

using replication::ClientOp;
using replication::ClientRequest;
using replication::ClientResponse;
using replication::Duration;
using replication::Instant;
using replication::PersistToken;
using replication::TimerId;
using replication::raft::Raft;
namespace raft = replication::raft;

// Snapshot transfers this node's leaders read at once (SnapshotReadPool):
// each holds a store view and two chunks read ahead; the rest wait their turn.
constexpr size_t kSnapshotReadThreads = 2;

std::string_view role_name(Raft::Role r) {
  switch (r) {
    case Raft::Role::kLeader:
      return "leader";
    case Raft::Role::kFollower:
      return "follower";
    case Raft::Role::kCandidate:
      return "candidate";
    case Raft::Role::kPreCandidate:
      return "pre-candidate";
  }
  return "?";
}

// Captures the effects of the commands a leader evaluates: the group's log
// orders them, and every member (the leader too) applies them at commit.
class CaptureProposer final : public server::Proposer {
 public:
  Result<server::CommitTicket> propose(int64_t time_ms,
                                       std::span<const server::Store::Write> writes) override {
    if (!writes.empty()) {
      mutations_.push_back(replication::encode_mutation(server::to_mutation(time_ms, writes)));
    }
    return server::CommitTicket{};
  }
  Result<server::CommitTicket> propose_clear(int64_t) override {
    return Status::InvalidArgument(
        "FLUSHALL and FLUSHDB are not served on nodes with REPLICATION consensus keyspaces yet: "
        "delete their keys with DEL or UNLINK");
  }
  std::vector<std::string> take() { return std::exchange(mutations_, {}); }
  // Applied at commit, on every member: tracking clients are told there.
  bool applies_now() const override { return false; }

 private:
  std::vector<std::string> mutations_;
};

// Several captured mutations as one: a command that erased an expired key and
// then wrote it gives one put. The last effect on a record (or on one element
// of a collection) wins; a record's prior is what its first effect saw (what
// the key held before the command: nothing is applied between the captures).
Result<std::string> merge_mutations(std::vector<std::string> parts) {
  if (parts.size() == 1) return std::move(parts.front());
  std::vector<replication::DecodedMutation> decoded;
  decoded.reserve(parts.size());
  for (std::string& p : parts) {
    auto d = replication::DecodedMutation::decode(std::move(p));
    if (!d.ok()) return d.status();
    decoded.push_back(std::move(d).value());
  }
  replication::Mutation merged;
  merged.time_ms = decoded.front().mutation().time_ms;
  // What an effect changes: a key's record, or one element of a generation.
  const auto target = [](const replication::Effect& e) {
    using Kind = replication::Effect::Kind;
    std::string t;
    if (e.kind == Kind::kPutElement || e.kind == Kind::kEraseElement) {
      t.push_back('m');
      t.append(reinterpret_cast<const char*>(&e.generation), sizeof(e.generation));
      t.append(e.field);
    } else {
      t.push_back('d');
      t.append(e.key);
    }
    return t;
  };
  std::unordered_map<std::string, size_t> at;
  bool priors = true;  // every part carries its records' priors
  for (const auto& d : decoded) {
    const replication::Mutation& part = d.mutation();
    priors = priors && (part.priors.size() == replication::record_effects(part));
    size_t record = 0;  // the index of the part's record effect, for its prior
    for (const replication::Effect& e : part.effects) {
      const bool is_record = e.kind != replication::Effect::Kind::kPutElement &&
                             e.kind != replication::Effect::Kind::kEraseElement;
      auto [it, fresh] = at.emplace(target(e), merged.effects.size());
      if (fresh) {
        merged.effects.push_back(e);
        if (is_record && priors) merged.priors.push_back(part.priors[record]);
      } else {
        merged.effects[it->second] = e;
      }
      if (is_record) ++record;
    }
  }
  if (!priors) merged.priors.clear();
  return replication::encode_mutation(merged);
}

// What restoring a shard snapshot did (the restore's log line), or why it
// failed, and whether it left the group's records partial then.
struct RestoreReport {
  size_t bytes = 0, effects = 0, unchanged = 0, removed = 0, pieces = 0;
  bool from_file = false;  // a follower's snapshot staged in a file (snapshot_staging.h)
  int64_t decode_ms = 0, compare_ms = 0, write_ms = 0, sync_ms = 0;
  Status status = Status::OK();
  // Failed after the restoring mark (Store::mark_restoring): some pieces may
  // be written, the group's position is gone, and only a whole snapshot can
  // make its records one state again (Raft's RestoreFailure::kStateLost).
  bool partial = false;
};

// A restore that keeps a position writes the difference in pieces of about
// this many effects or bytes, each one engine write: RocksDB writes one batch
// at a time, and a 98k-record shard in one write held the node's other writes
// (every group's applies, every single-copy SET) for 150-450 ms.
constexpr size_t kRestorePieceEffects = 1024;
constexpr size_t kRestorePieceBytes = size_t{1} << 20;

// Fault injection for tests (docs/replication.md, "Restoring in pieces"):
// with STATEKV_FAULT_RESTORE_EXIT_AFTER_PIECES=N in its environment, the
// process exits at once (as if killed) once the N-th piece of a restore in
// pieces that has more than N is durable, so that a test can restart a node
// whose records a restore left partial. Unset (0): never.
size_t restore_exit_after_pieces() {
  static const size_t n = [] {
    const char* v = std::getenv("STATEKV_FAULT_RESTORE_EXIT_AFTER_PIECES");
    return v == nullptr ? size_t{0} : static_cast<size_t>(std::strtoull(v, nullptr, 10));
  }();
  return n;
}

// Replaces the records of scope `scope` in `store` with a shard snapshot's
// (its pieces read one at a time: from memory, or from the file a follower
// staged them in), writing only what differs (ShardRestorePlanner). With the
// applied position `position` (an engine that keeps its state): the group's
// position is replaced by the restoring mark before the first write, the
// difference written as it is planned in pieces of kRestorePieceEffects, the
// last of them carrying `position`, then synced; raft checkpoints the
// snapshot point once this is durable. A crash in between leaves the mark,
// and the replica starts as one whose store lost its state
// (ReplicaGroups::Impl::start_group). Without a position (the memory engine,
// which keeps nothing across a crash, and holds the snapshot in memory
// anyway), one engine write.
// Reads and writes nothing but the store: any thread. `locking` kOwnedKeys
// only while nothing else writes the scope (ReplicaGroup::begin_restore).
RestoreReport restore_shard(server::Store& store, uint64_t scope, SnapshotPieces pieces,
                            std::optional<server::Store::AppliedPosition> position,
                            server::Store::Locking locking) {
  using Clock = std::chrono::steady_clock;
  // Summed over the pieces, each far under a millisecond.
  Clock::duration decoding{}, comparing{}, writing{};
  const auto ms = [](Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  server::ScopePin pin(scope);  // the group's records, whatever the map says of their keys
  RestoreReport report;
  bool marked = false;
  const auto failed = [&report, &marked](Status s) {
    report.status = std::move(s);
    report.partial = marked;
    return report;
  };
  const auto timed = [&](Clock::duration* total, Clock::time_point started) {
    *total += Clock::now() - started;
  };
  ShardRestorePlanner plan(
      [&](std::string_view from, const auto& visit) {
        return store.scan_scope(scope, from, 0, visit);
      },
      [&](uint64_t gen, const auto& visit) {
        return store.scan_elements(gen, 0, 0,
                                   [&](std::string_view field, std::string_view, uint32_t) {
                                     visit(field);
                                     return true;
                                   });
      });
  std::deque<replication::DecodedMutation> planned;  // what the plan's batch views
  // Writes what is planned so far; the last write carries the position.
  const auto write = [&](bool last) -> Status {
    const auto started = Clock::now();
    ShardRestorePlanner::Batch batch = plan.take();
    if (position && !marked) {
      if (Status s = store.mark_restoring(position->group); !s.ok()) return s;
      marked = true;
    }
    // Without a position (the memory engine) the one write goes to the replica log.
    auto written = store.apply(
        batch.mutation,
        position ? server::Store::Logging::kInEngineLog : server::Store::Logging::kInReplicaLog,
        last ? position : std::nullopt, &batch.known, locking);
    planned.clear();
    timed(&writing, started);
    if (!written.ok()) return written.status();
    ++report.pieces;
    if (position && !last && report.pieces == restore_exit_after_pieces()) {
      // As a crash once the pieces so far reached the disk: with `--fsync
      // batch` logged writes wait in the engine's buffer for the sync thread,
      // and a kill before it ran would find none of them (the state as it was).
      (void)store.engine().sync();
      spdlog::critical(
          "group {}: exiting after piece {} of a snapshot's restore "
          "(STATEKV_FAULT_RESTORE_EXIT_AFTER_PIECES)",
          scope, report.pieces);
      spdlog::shutdown();
      std::_Exit(137);
    }
    return Status::OK();
  };
  for (;;) {
    auto started = Clock::now();
    auto piece = pieces.next();
    timed(&decoding, started);
    if (!piece.ok()) return failed(piece.status());
    if (!*piece) break;
    started = Clock::now();
    planned.push_back(std::move(**piece));
    Status added = plan.add(planned.back().mutation());
    timed(&comparing, started);
    if (!added.ok()) return failed(added);
    const ShardRestorePlanner::Batch& batch = plan.batch();
    if (position && (batch.mutation.effects.size() >= kRestorePieceEffects ||
                     batch.bytes >= kRestorePieceBytes)) {
      if (Status s = write(/*last=*/false); !s.ok()) return failed(s);
    }
  }
  auto started = Clock::now();
  Status finished = plan.finish();
  timed(&comparing, started);
  if (!finished.ok()) return failed(finished);
  if (Status s = write(/*last=*/true); !s.ok()) return failed(s);
  report.bytes = pieces.bytes_read();
  report.effects = plan.effects();
  report.unchanged = plan.unchanged();
  report.removed = plan.removed();
  report.decode_ms = ms(decoding);
  report.compare_ms = ms(comparing);
  report.write_ms = ms(writing);
  if (!position) return report;
  started = Clock::now();
  if (Status synced = store.engine().sync(); !synced.ok()) {
    // Written, perhaps not durable: a crash may leave the mark.
    return failed(synced);
  }
  report.sync_ms = ms(Clock::now() - started);
  return report;
}

// The answer to a command of a client's pipeline that is not run because an
// earlier one did not (or after a gap): its router sends it again.
GroupReply pipeline_refused() {
  return GroupReply{Status::Unavailable("an earlier command of this client's pipeline did not "
                                        "run, so this one did not either"),
                    {},
                    {}};
}

}  // namespace

GroupId ReplicaGroups::group_id(std::string_view keyspace, uint32_t shard) {
  std::string tag(keyspace);
  tag.push_back('\0');
  tag += std::to_string(shard);
  // 62 bits: small varints, never 0 (the metadata group).
  const uint64_t h = XXH3_64bits(tag.data(), tag.size()) >> 2;
  return GroupId(h == 0 ? 1 : h);
}

// ------------------------------------------------------------------ one group

class ReplicaGroup;

struct GroupCounters {
  std::atomic<uint64_t> reads_barrier{0}, reads_local{0}, writes{0};
  std::atomic<uint64_t> proposals{0}, proposed{0};  // batches of writes proposed, writes in them
};

class ReplicaGroups::Impl {
 public:
  Impl(ReplicaGroupsOptions options, net::RaftNode& transport, server::Service& service);
  // On the loop: stops every group and answers what is pending (not served).
  void shutdown();
  asio::io_context& loop() { return io_; }

  void on_table(std::shared_ptr<const RoutingTable> table);
  void execute(GroupId group, int resp, std::vector<std::string> argv, ReadPolicy policy,
               std::function<void(GroupReply)> done, replication::WriteOrigin origin,
               uint64_t routed_epoch, PipelinePlace place);
  bool expire(std::string_view key);
  bool hosts(GroupId group) const;
  size_t hand_over_leadership(std::chrono::milliseconds limit);
  void wait_replicas(GroupId group, uint64_t index, int64_t numreplicas,
                     std::chrono::milliseconds timeout, std::function<void(GroupReply)> done);
  void run_after(std::chrono::milliseconds delay, std::function<void(bool)> fn);
  std::optional<NodeId> leader(GroupId group) const;
  std::vector<GroupStatus> status() const;
  size_t snapshot_reads_waiting() const { return snapshot_reads_.waiting(); }
  std::vector<NodeId> peers_receiving_snapshot() const {
    const std::set<NodeId> peers = transport_.status().receiving_snapshot;
    return {peers.begin(), peers.end()};
  }

  // ---- loop thread ----
  friend class ReplicaGroup;
  void deliver(NodeId from, uint64_t group, uint64_t epoch, std::string message);
  // A frame or step of group `g` carries configuration epoch `epoch`: true
  // when it may go on (not older than the one `g` knows; a newer one is
  // learned), false when it must be refused (counted in `refused`, logged).
  // `what` names it for the log ("a frame from node 3").
  bool check_epoch(ReplicaGroup& g, uint64_t epoch, const std::string& what, uint64_t& refused);
  void on_reply(GroupId group, RequestId id, ClientResponse response);
  void after_callback(ReplicaGroup& g);
  // status() reads a copy: every group's after a map change, one group's
  // after each of its callbacks (O(1), not O(groups), per message).
  void publish_status();
  void publish_status(const ReplicaGroup& g);

 private:
  struct Pending {
    GroupId group;
    int resp = 2;
    std::vector<std::string> argv;
    std::vector<std::string> keys;
    std::function<void(GroupReply)> done;  // null once answered (a timed-out write)
    ReadPolicy policy;
    // kLocal: a read served from this member's applied state, waiting for it
    // to cover policy.min_index.
    // kConfirming: a command evaluated without the barrier that turned out
    // to change nothing: its reply is a read, released after a barrier.
    // kBlocked: a blocking command that found its keys empty, waiting in
    // the group's `blocked` for an effect on one of them (reply: its
    // timeout reply).
    // kQueued: evaluated, its effect captured (`proposal`) and its keys
    // latched, waiting in the group's `queued` for the flush that proposes
    // the pass's writes together (propose_queued); kCommitting from there.
    // kInLine: a command of a client's pipeline waiting for the one before
    // it to be evaluated (PipelinePlace), not begun yet.
    enum class Phase : uint8_t {
      kBarrier,
      kParked,
      kQueued,
      kCommitting,
      kLocal,
      kConfirming,
      kBlocked,
      kInLine
    } phase = Phase::kBarrier;
    bool blocking = false;        // BLPOP and the like, sent as kBlockVerb (until proposed)
    bool block_expired = false;   // its timeout passed while it was being evaluated
    bool woken = false;           // evaluated again after it blocked
    std::string token;            // its router's name for it (kUnblockVerb)
    bool write = false;           // a write command (it may skip the barrier)
    bool all_keys = false;        // latched by any effect in flight (a transaction)
    bool barrier_passed = false;  // leadership confirmed since it arrived
    uint64_t index = 0;           // the write's entry, once proposed
    uint64_t term = 0;            // kQueued: the leader's term it was evaluated in
    uint64_t routed_epoch = 0;    // its router's map epoch (0: not routed by a key)
    std::string proposal;         // kQueued: its effect, the entry to propose
    replication::WriteOrigin origin;  // a tracking client's write: its entry names it
    std::string reply;
    std::vector<std::string> latched;
    std::vector<int64_t> watch_ttls;  // kGroupWatchVerb: each key's TTL when watched
    std::unique_ptr<asio::steady_timer> timer;
    std::pair<uint64_t, uint64_t> pipeline{0, 0};  // (router, stream) of its PipelinePlace
  };

  // A client's pipeline to one group as its leader sees it (PipelinePlace).
  struct Pipeline {
    GroupId group;
    uint64_t last_seq = 0;         // of the last command that arrived
    uint64_t unevaluated = 0;      // the command begun and not evaluated yet (0: none)
    std::deque<uint64_t> in_line;  // arrived behind it, not begun (Phase::kInLine)
    bool broken = false;           // a command did not run: the later ones do not either
    bool stepping = false;         // pipeline_step is running (it loops again, not recursing)
    bool step_again = false;
    std::chrono::steady_clock::time_point last_used;
  };
  using PipelineKey = std::pair<uint64_t, uint64_t>;
  // Begins the commands of pipeline `key` in line while the one before is
  // evaluated; forgets pipelines idle for a while.
  void pipeline_step(PipelineKey key);
  // A command of pipeline `key` did not run: its later commands that are not
  // proposed yet are refused without running, and so is every one to come.
  void break_pipeline(PipelineKey key);
  std::map<PipelineKey, Pipeline> pipelines_;
  std::chrono::steady_clock::time_point pipelines_swept_{};

  ReplicaGroup* find(GroupId id);
  void apply_table(std::shared_ptr<const RoutingTable> table);
  void start_group(GroupId id, const meta::Keyspace& ks, uint32_t shard,
                   const std::vector<NodeId>& members, std::shared_ptr<const RoutingTable> table,
                   uint64_t epoch);
  // Hands leadership of groups this node leads to their preferred leader (the
  // shard's first owner: placement spreads those over the nodes) once it is
  // up to date, so leaders, and the work they do, spread too.
  void balance_leaders();
  // With an engine that keeps its state: once enough entries were applied
  // past the groups' compaction points, makes the store durable (off the loop)
  // and compacts every group's log through what it had applied before.
  void compact_logs();
  void on_store_persisted(const std::vector<std::tuple<GroupId, uint64_t, uint64_t>>& applied,
                          const Status& persisted);
  // Whether a peer node was heard from within peer_down_after, as of now (a
  // copy of the transport's times: leader_balance.h's `reachable`).
  std::function<bool(NodeId)> peer_reachable() const;
  // Whether a peer's latest ping said it is receiving a snapshot (a copy of
  // the transport's set: leader_balance.h's `receiving_snapshot`).
  std::function<bool(NodeId)> peer_receiving_snapshot() const;
  // After a snapshot chunk reached `g`: notes whether it is receiving one
  // now; the first group of the node to start pings the peers at once, so
  // that none hands this node a leadership before its restore is done.
  void note_snapshot_reception(ReplicaGroup& g);
  // What this node's pings say (net::RaftNode::set_ping_probe): a group here
  // receives a snapshot (a transfer gone quiet stops counting).
  bool receiving_snapshots();
  // Every 100 ms: quiesced groups learn which peers are down.
  void watch_peers();
  void stop_group(GroupId id, bool remove_files);
  // The records of a group that left this node, erased on a thread of their
  // own (erasing_); wait_for_erase(id) before a replica of it starts here.
  void erase_scope_in_background(GroupId id);
  void wait_for_erase(GroupId id);
  // Opens the node's write-ahead log (and moves per-group logs of older data
  // directories into it) the first time; false if it cannot be opened.
  bool open_wal();
  void begin(uint64_t id);
  // evaluate_command, then the next command in line of its pipeline, if any.
  void evaluate(uint64_t id);
  void evaluate_command(uint64_t id);
  // The flush evaluate() posts when it queues a group's first write: proposes
  // every write queued for the group as one batch (Raft::on_requests: one log
  // record, one AppendEntries per follower), those of a term that ended
  // refused as not run.
  void propose_queued(GroupId group);
  // A local read: served now if this member may, else left waiting or refused.
  void try_local(uint64_t id);
  // Answers the command `id` as a stale route (true) when its router's map is
  // older than the group's configuration epoch: its keys may belong to
  // another group now (kGroupFenceVerb).
  bool refuse_stale_route(ReplicaGroup& g, uint64_t id);
  void retry_local_reads(ReplicaGroup& g);
  // kReplicasVerb: the group's view, or a membership step, on its leader.
  void membership(ReplicaGroup& g, const std::vector<std::string>& argv,
                  std::function<void(GroupReply)> done);
  const server::CommandSpec* spec_of(const std::vector<std::string>& argv) const;
  // Runs a command of group `scope` against applied state (the group's
  // records: server::ScopePin) with effects captured; the reply.
  // would_block: set when a blocking command found its keys empty (its
  // reply is then the timeout reply; nothing was captured).
  std::string run_captured(uint64_t scope, int resp, std::span<const std::string> argv,
                           std::vector<std::string>* effects, bool* would_block = nullptr);
  // kGroupWatchVerb on the leader (request id): reads the keys' TTLs into watch_ttls and
  // captures the erase of those expired (*effects); sets p.reply when nothing
  // is to be proposed. False when it finished the request (an error).
  bool watch_keys(ReplicaGroup& g, uint64_t id, std::vector<std::string>* effects);
  // The group's own reads of its whole scope, from what this member applied
  // (coord/cluster_scan.h): kGroupScanVerb's page of its records,
  // kGroupCountVerb's count of them, kGroupRandomVerb's random one. nullopt
  // for any other command.
  std::optional<std::string> scope_read(const ReplicaGroup& g,
                                        const std::vector<std::string>& argv);
  static bool is_scope_read(const std::vector<std::string>& argv) {
    return !argv.empty() &&
           (argv[0] == kGroupScanVerb || argv[0] == kGroupCountVerb || argv[0] == kGroupRandomVerb);
  }
  static std::string watch_reply(uint64_t index, const std::vector<int64_t>& ttls);
  // kGroupExecVerb on the leader, with nothing in flight: whether a watched
  // key changed since it was watched. InvalidArgument when malformed.
  Result<bool> watched_changed(const ReplicaGroup& g, const std::vector<std::string>& argv) const;
  // How many trailing arguments of a kGroupExecVerb command are its __exec.
  static size_t exec_args(const std::vector<std::string>& argv);
  void finish(uint64_t id, GroupReply reply);
  // A request's timer fired (its request_timeout, a local read's wait, a
  // blocking command's own timeout).
  void on_timeout(uint64_t id);
  void release_latches(ReplicaGroup& g, Pending& p);
  void unpark(ReplicaGroup& g);
  void lost_leadership(ReplicaGroup& g);
  // Blocking commands: those waiting on keys an applied effect touched are
  // evaluated again, in arrival order; kUnblockVerb finishes one.
  void wake_blocked(ReplicaGroup& g);
  void unblock(ReplicaGroup& g, const std::string& token, bool error);
  std::vector<std::string> latch_keys(const std::vector<std::string>& argv) const;

  ReplicaGroupsOptions options_;
  net::RaftNode& transport_;
  server::Service& service_;
  server::Store& store_;
  server::CommandTable commands_;

  // The node's data loop (net::RaftNode::data_loop()), where the transport
  // runs too: a group's frames reach its protocol and its socket without a
  // thread hop.
  asio::io_context& io_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  Random random_;

  // Expires with the host: handlers posted from other threads check it.
  std::shared_ptr<void> alive_ = std::make_shared<int>(0);
  // Reads the snapshots this node's groups send, a few at a time, off the
  // loop (coord/snapshot_prefetch.h). Before groups_: their transfers' readers
  // go first.
  SnapshotReadPool snapshot_reads_{kSnapshotReadThreads};

  // Loop thread only.
  std::map<GroupId, std::unique_ptr<ReplicaGroup>> groups_;
  std::unordered_map<uint64_t, Pending> pending_;
  uint64_t next_request_ = 0;
  std::unordered_map<std::string, uint64_t> blocked_tokens_;  // blocking commands' tokens
  CaptureProposer capture_;
  std::unordered_set<std::string> expiring_;  // keys with an expiry check under way
  asio::steady_timer balance_timer_{io_};
  asio::steady_timer peer_timer_{io_};
  // The store keeps its state across restarts (RocksDB): groups write their
  // applied positions with their effects, and their logs compact behind store
  // flushes instead of copying the shard (raft's machine_keeps_state).
  const bool keeps_state_ = store_.engine().survives_restart();
  // Where followers stage the snapshots they receive (coord/snapshot_staging.h).
  std::filesystem::path staging_dir() const { return options_.data_dir / "snapshot-staging"; }
  // A committed entry's effects could not be written (ReplicaGroupsOptions::
  // on_store_failed): an I/O error stops the node.
  void store_failed(const Status& s) {
    if (s.is_io_error() && options_.on_store_failed) {
      options_.on_store_failed(s.to_string());
    }
  }
  asio::steady_timer compact_timer_{io_};
  HandoverBackoff handover_backoff_;  // balance_leaders(): handovers that did not take
  // The groups receiving a snapshot (note_snapshot_reception).
  std::set<GroupId> receiving_snapshots_;
  std::map<GroupId, std::future<void>> erasing_;  // erase_scope_in_background
  std::thread persister_;         // the store flush under way, if any
  bool persisting_ = false;       // loop thread: a flush is under way
  uint64_t next_serial_ = 0;
  // The node's one write-ahead log, shared by every group and the metadata
  // group (opened by the transport, net::RaftNode; taken by the first group
  // that starts, after moving old per-group logs in: open_wal()).
  std::shared_ptr<net::SharedLog> wal_;
  Status wal_error_;  // why it could not be opened (logged once per table)
  uint64_t next_delayed_ = 0;
  std::unordered_map<uint64_t,
                     std::pair<std::unique_ptr<asio::steady_timer>, std::function<void(bool)>>>
      delayed_;
  bool stopping_ = false;
  bool handing_over_ = false;  // a planned stop: lead nothing, balance nothing

  // Any thread.
  mutable std::mutex mu_;
  std::shared_ptr<const RoutingTable> table_;
  // Each group's status as of its last callback, and its live counters.
  std::map<GroupId, std::pair<GroupStatus, std::shared_ptr<const GroupCounters>>> status_;
};

// A group's replica on this node: its raft, its environment and its state
// machine (the shard's records in the store). Loop thread only.
class ReplicaGroup final : public replication::Env<raft::Message>,
                           public replication::StateMachine {
 public:
  ReplicaGroup(ReplicaGroups::Impl& host, GroupId id, std::string keyspace, uint32_t shard,
               std::vector<NodeId> members, std::shared_ptr<const RoutingTable> table,
               Random random)
      : host(host),
        id(id),
        keyspace(std::move(keyspace)),
        shard(shard),
        members(std::move(members)),
        table(std::move(table)),
        random_(random) {}

  // ---- Env ----
  void send(NodeId to, const raft::Message& msg) override {
    host.transport_.send_group(to, id.value(), replication::encode_message(msg), epoch);
  }
  void reply(RequestId request, ClientResponse response) override {
    // Never call back into the protocol from inside its callback (env.h).
    asio::post(host.io_, [h = &host, g = id, request, response = std::move(response)]() mutable {
      h->on_reply(g, request, std::move(response));
    });
  }
  TimerId set_timer(Duration delay) override {
    const TimerId tid(++next_timer);
    auto timer = std::make_unique<asio::steady_timer>(host.io_);
    timer->expires_after(delay);
    timer->async_wait([this, tid](const asio::error_code& ec) {
      if (ec) return;
      if (timers.erase(tid.value()) == 0) return;
      raft->on_timer(tid);
      host.after_callback(*this);
    });
    timers[tid.value()] = std::move(timer);
    return tid;
  }
  void cancel_timer(TimerId tid) override {
    auto it = timers.find(tid.value());
    if (it == timers.end()) return;
    it->second->cancel();
    timers.erase(it);
  }
  Instant now() const override {
    return std::chrono::duration_cast<Instant>(std::chrono::steady_clock::now() - host.started_);
  }
  PersistToken persist(std::string record) override { return PersistToken(log->append(record)); }
  PersistToken persist_checkpoint(std::string record) override {
    return PersistToken(log->append_checkpoint(record));
  }
  Random& random() override { return random_; }

  // ---- StateMachine ----
  ClientResponse apply(const ClientRequest& command) override {
    // The group's records stay in its scope, whatever the node's map says
    // of their keys now (server::ScopePin).
    server::ScopePin pin(id.value());
    if (command.op == ClientOp::kWrite && command.value) {
      auto m = replication::DecodedMutation::decode(*command.value);
      if (!m.ok()) {
        // The leader encoded it: a bug or a version mismatch. Applying half of
        // it is worse than skipping it; say so loudly.
        spdlog::error("group {}: a committed entry does not decode: {}", id.value(),
                      m.status().to_string());
      } else {
        // Raft counts the entry applied before it calls apply().
        const uint64_t index = raft->applied_index().value();
        // The raft log holds the entry and replays it after a restart (from
        // the last snapshot, or the compaction point the store kept): the
        // engine need not log it too. An entry the store's kept state already
        // reflects (a restart) is not applied again: its keys may have moved
        // on since, and reads here would see them go back for a while.
        const replication::DecodedMutation* entry = &*m;
        bool in_run = false;
        if (index > kept_through) {
          if (server::Store::applies_in_run(m->mutation()) && !in_pending_run(m->mutation())) {
            // Written with the other entries of this callback (flush_applies).
            pending_run.push_back(std::move(m).value());
            entry = &pending_run.back();
            for (const replication::Effect& e : entry->mutation().effects) {
              pending_keys.insert(e.key);
            }
            pending_through = index;
            in_run = true;
          } else {
            flush_applies();
            std::optional<server::Store::AppliedPosition> position;
            if (host.keeps_state_) position = server::Store::AppliedPosition{id.value(), index};
            if (auto applied = host.store_.apply(m->mutation(),
                                                 server::Store::Logging::kInReplicaLog, position);
                !applied.ok()) {
              spdlog::error("group {}: applying a committed entry failed: {}", id.value(),
                            applied.status().to_string());
              host.store_failed(applied.status());
            } else if (position) {
              stored_through = index;
            }
          }
        }
        note_changes(entry->mutation(), index);
        // Tracking clients hear of a write once it is in the store (a client
        // told earlier could read the old value again and keep it).
        if (!in_run) tell_trackers(entry->mutation());
        if (!blocked.empty()) {
          for (const replication::Effect& e : entry->mutation().effects) touched.emplace(e.key);
        }
      }
    }
    return ClientResponse{};
  }
  // Committed entries of the current protocol callback whose effects wait to
  // be written as one engine write (Store::apply_run): entries whose records
  // carry their priors, so none needs to read what an earlier one wrote. The
  // host writes them at the end of the callback (after_callback), before
  // anything on the loop reads the store; the snapshot and restore paths
  // write them first too. An entry that cannot join (another kind of effect,
  // or a key already in the run) writes the run, then itself.
  std::deque<replication::DecodedMutation> pending_run;  // deque: the views stay put
  std::unordered_set<std::string_view> pending_keys;     // views into pending_run
  uint64_t pending_through = 0;                          // the run's last index

  bool in_pending_run(const replication::Mutation& m) const {
    if (pending_keys.empty()) return false;
    return std::any_of(m.effects.begin(), m.effects.end(),
                       [&](const replication::Effect& e) { return pending_keys.contains(e.key); });
  }
  // Writes the pending run: one engine write, and this group's applied
  // position once (the run's last index).
  void flush_applies() {
    if (pending_run.empty()) return;
    server::ScopePin pin(id.value());
    std::vector<const replication::Mutation*> run;
    run.reserve(pending_run.size());
    for (const auto& d : pending_run) run.push_back(&d.mutation());
    std::optional<server::Store::AppliedPosition> position;
    if (host.keeps_state_) position = server::Store::AppliedPosition{id.value(), pending_through};
    if (auto applied =
            host.store_.apply_run(run, server::Store::Logging::kInReplicaLog, position);
        !applied.ok()) {
      spdlog::error("group {}: applying {} committed entries through index {} failed: {}",
                    id.value(), run.size(), pending_through, applied.status().to_string());
      host.store_failed(applied.status());
    } else if (position) {
      stored_through = pending_through;
    }
    for (const auto& d : pending_run) tell_trackers(d.mutation());
    pending_keys.clear();
    pending_run.clear();
  }

  ClientResponse read(const ClientRequest&) const override {
    // The barrier: raft calls this once the read may be served (ReadIndex);
    // the command itself is evaluated right after, on the loop (on_reply).
    return ClientResponse{};
  }
  std::string snapshot() const override {
    // The state as of the applied index: the pending run written first
    // (what it writes is applied already; no ReplicaGroup is ever const).
    const_cast<ReplicaGroup*>(this)->flush_applies();
    // Every record of the shard, and the elements of its large collections.
    using Kind = replication::Effect::Kind;
    struct Held {
      replication::Effect effect;
      std::string key, value, field;
    };
    std::deque<Held> held;  // stable addresses: the effects view these strings
    for_each_record([&](std::string_view key, const server::RecordView& rec) {
      Held& r = held.emplace_back();
      r.key = key;
      r.value = rec.value;
      r.effect = rec.type == server::ValueType::kString
                     ? replication::Effect(Kind::kPut, {}, {}, rec.expire_ms)
                     : replication::Effect(Kind::kPutTyped, {}, {}, rec.expire_ms,
                                           static_cast<uint8_t>(rec.type));
      const uint64_t gen = server::record_generation(rec.type, rec.value);
      if (gen == 0) return;
      const std::string owner(key);
      Status s = host.store_.scan_elements(
          gen, 0, 0, [&](std::string_view field, std::string_view value, uint32_t) {
            Held& e = held.emplace_back();
            e.key = owner;
            e.value = value;
            e.field = field;
            e.effect = replication::Effect(Kind::kPutElement, {}, {}, 0, 0, gen, {});
            return true;
          });
      if (!s.ok()) {
        spdlog::error("group {}: reading a collection's elements failed: {}", id.value(),
                      s.to_string());
      }
    });
    replication::Mutation m;
    m.effects.reserve(held.size());
    for (Held& h : held) {
      h.effect.key = h.key;
      h.effect.value = h.value;
      h.effect.field = h.field;
      m.effects.push_back(h.effect);
    }
    return replication::encode_mutation(m);
  }
  // With an engine that has read views (RocksDB): the shard as of now, read
  // a piece at a time while this member goes on applying (shard_snapshot.h).
  LogIndex kept_index() const override { return LogIndex(kept_through); }
  std::unique_ptr<replication::SnapshotReader> open_snapshot() const override {
    if (!host.keeps_state_) return nullptr;
    // The view must hold every entry through the applied index it is sent as.
    const_cast<ReplicaGroup*>(this)->flush_applies();
    auto view = host.store_.engine().view();
    if (!view.ok()) return nullptr;
    // Read on the node's snapshot threads, two chunks ahead of raft's
    // asking: a chunk's read is a scan of the shard's records and the
    // collections' elements, which on this loop would hold up every group of
    // the node (coord/snapshot_prefetch.h). Raft
    // passes over a transfer whose reader has nothing yet; told when it has.
    constexpr size_t kPieceBytes = 64 * 1024;
    auto wake = [&host = host, alive = std::weak_ptr<void>(host.alive_), group = id,
                 serial = serial] {
      // On a pool thread: what it posts may run after the host is gone (it
      // is destroyed on the loop, behind the handlers already queued there).
      asio::post(host.io_, [&host, alive, group, serial] {
        if (alive.expired()) return;
        ReplicaGroup* g = host.find(group);
        if (g == nullptr || !g->raft || g->serial != serial || host.stopping_) return;
        g->raft->resume_snapshot_sends();
        host.after_callback(*g);
      });
    };
    return host.snapshot_reads_.open(
        std::make_unique<ShardSnapshotReader>(std::move(view).value(), id.value()),
        kPieceBytes, 2 * host.options_.raft.snapshot_chunk_bytes, std::move(wake));
  }
  // At a start from a checkpoint that holds a state (raft's constructor), and
  // on the memory engine (which keeps nothing across restarts): at once, on
  // the data loop, which every group of the node shares.
  Status restore(std::string_view snapshot, LogIndex index) override {
    flush_applies();  // what it replaces is written first, as applied
    // The data loop holds the log's sync wake until the handlers queued
    // before the wake have run (net/shared_log.h): what they appended before
    // this need not wait for the restore, nor the replies held (core/held_posts.h).
    net::SharedLog::wake_held();
    HeldPosts::flush();
    RestoreReport report =
        restore_shard(host.store_, id.value(), SnapshotPieces::of_bytes(snapshot),
                      position_of(index), server::Store::Locking::kLockKeys);
    if (!report.status.ok()) return report.status;
    restored(report, index, /*in_background=*/false);
    return Status::OK();
  }
  // A follower's snapshot staged in memory (raft's, when no file could be
  // made): restore_in_background.
  Result<RestoreProgress> begin_restore(std::string snapshot, LogIndex index) override {
    if (!host.keeps_state_) return StateMachine::begin_restore(std::move(snapshot), index);
    auto held = std::make_shared<const std::string>(std::move(snapshot));
    return restore_in_background(SnapshotPieces::of_bytes(*held), held, index);
  }
  // With an engine that keeps its state: the chunks go to a file as they
  // come (coord/snapshot_staging.h), read back a piece at a time by the
  // restore, so that a follower holds no whole snapshot in memory. nullptr
  // (raft stages them in memory) when no file can be made.
  std::unique_ptr<replication::SnapshotSink> open_snapshot_sink(LogIndex index) override {
    if (!host.keeps_state_ || host.options_.data_dir.empty()) return nullptr;
    auto sink = FileSnapshotSink::create(host.staging_dir() /
                                         fmt::format("{}-{}.snapshot", id.value(), index.value()));
    if (!sink.ok()) {
      spdlog::warn("group {}: staging the snapshot at index {} in memory: {}", id.value(),
                   index.value(), sink.status().to_string());
      return nullptr;
    }
    return std::move(sink).value();
  }
  Result<RestoreProgress> begin_restore_staged(std::unique_ptr<replication::SnapshotSink> sink,
                                               LogIndex index) override {
    SKV_ASSERT(dynamic_cast<FileSnapshotSink*>(sink.get()) != nullptr,
               "a replica group's sinks are the files open_snapshot_sink makes");
    std::shared_ptr<const FileSnapshotSink> file(static_cast<FileSnapshotSink*>(sink.release()));
    auto pieces = file->pieces();
    if (!pieces.ok()) return pieces.status();
    return restore_in_background(std::move(pieces).value(), file, index);
  }
  // A follower's snapshot with an engine that keeps its state: restored on a
  // thread of its own (a 130k-record shard takes 300-400 ms: on the loop it
  // would hold every group of the node), and raft hears of it from
  // finish_restore on the loop. Meanwhile raft applies nothing here, local
  // reads wait (the store may already hold the snapshot's state, newer than
  // the applied index a read reports), and stop_group waits for the thread.
  // `held` keeps what `pieces` reads until the restore is done.
  Result<RestoreProgress> restore_in_background(SnapshotPieces pieces,
                                                std::shared_ptr<const void> held, LogIndex index) {
    flush_applies();  // what it replaces is written first, as applied
    restoring = true;
    server::Store& store = host.store_;
    const uint64_t scope = id.value();
    auto position = position_of(index);
    auto done = [&host = host, alive = std::weak_ptr<void>(host.alive_), group = id,
                 serial = serial, index](RestoreReport report) {
      asio::post(host.io_, [&host, alive, group, serial, index, report = std::move(report)] {
        if (alive.expired()) return;
        ReplicaGroup* g = host.find(group);
        if (g == nullptr || !g->raft || g->serial != serial) return;
        g->finish_restore(report, index);
      });
    };
    const bool from_file = pieces.from_file();
    restore_job = std::async(
        std::launch::async, [&store, scope, position, from_file, pieces = std::move(pieces),
                             held = std::move(held), done = std::move(done)]() mutable {
          name_this_thread("restore");
          // Its keys are this group's alone until finish_restore: raft applies
          // nothing meanwhile and local reads wait, so no stripe is held.
          RestoreReport report = restore_shard(store, scope, std::move(pieces), position,
                                               server::Store::Locking::kOwnedKeys);
          report.from_file = from_file;
          held.reset();  // the staged file goes before the loop hears
          done(std::move(report));
        });
    return RestoreProgress::kStarted;
  }
  // On the loop, once the restore thread is done.
  void finish_restore(const RestoreReport& report, LogIndex index) {
    restoring = false;
    if (restore_job.valid()) restore_job.get();
    if (!report.status.ok()) {
      spdlog::error(
          "group {}: restoring the snapshot at index {} failed after {} of its pieces (the "
          "leader sends it again){}: {}",
          id.value(), index.value(), report.pieces,
          report.partial ? "; its records are partial: this replica serves nothing until a "
                           "snapshot is restored whole"
                         : "",
          report.status.to_string());
      if (report.partial) kept_through = stored_through = 0;  // the mark holds no position
      raft->on_restored(index, report.status,
                        report.partial ? Raft::RestoreFailure::kStateLost
                                       : Raft::RestoreFailure::kStateUnchanged);
      if (report.partial) host.note_snapshot_reception(*this);  // it waits for one now
    } else {
      restored(report, index, /*in_background=*/true);
      raft->on_restored(index, Status::OK());
    }
    // The reads that waited for the restore: after_callback retries them
    // only when the applied index moved, which a failed restore does not.
    host.retry_local_reads(*this);
    host.after_callback(*this);
  }
  // The store's applied position a restore at `index` writes (none on an
  // engine that does not keep its state).
  std::optional<server::Store::AppliedPosition> position_of(LogIndex index) const {
    if (!host.keeps_state_) return std::nullopt;
    return server::Store::AppliedPosition{id.value(), index.value()};
  }
  // After the store holds a snapshot's state at `index`.
  void restored(const RestoreReport& r, LogIndex index, bool in_background) {
    // Which keys the snapshot changed is not known: every key may have
    // changed up to the snapshot's index (set once raft is done restoring).
    changes.clear();
    changes_floor_pending = true;
    if (host.keeps_state_) {
      kept_through = 0;  // what follows the snapshot is applied as it comes
      stored_through = index.value();
    }
    // Nor which keys tracking clients (here, or of nodes whose reads this
    // member served) may hold stale: they drop everything.
    host.service_.tracking_flushed(/*local_only=*/false);
    // The phases say where a slow restore went: decoding, comparing with the
    // shard's local records (a scan), writing the difference, syncing it.
    spdlog::info(
        "group {}: restored a snapshot at index {}{}{}: {} bytes, {} effects ({} records already "
        "held as they are), {} removed, {} ms (decode {} ms, compare {} ms, write {} ms in {} "
        "piece(s), sync {} ms)",
        id.value(), index.value(), in_background ? " in the background" : "",
        r.from_file ? ", staged in a file" : "", r.bytes, r.effects, r.unchanged, r.removed,
        r.decode_ms + r.compare_ms + r.write_ms + r.sync_ms, r.decode_ms, r.compare_ms, r.write_ms,
        r.pieces, r.sync_ms);
  }

  // CLIENT TRACKING (docs/cache.md, "Consensus keyspaces"): an applied entry
  // invalidates its keys for this node's tracking clients and for the nodes
  // whose reads this member served, on every member; the nodes with BCAST
  // clients that are not members are told by the leader only, so each hears
  // of the write once.
  void tell_trackers(const replication::Mutation& m) {
    std::vector<std::string_view> keys;
    keys.reserve(m.effects.size());
    for (const replication::Effect& e : m.effects) {
      if (e.kind == replication::Effect::Kind::kClear) {
        host.service_.tracking_flushed(/*local_only=*/false);
        return;
      }
      keys.push_back(e.key);
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    const bool leads = raft->role() == Raft::Role::kLeader;
    server::Service::AppliedWriter writer;
    if (m.origin.node == host.options_.self.value()) {
      writer.here = m.origin.client;
    } else {
      writer.node = m.origin.node;
      writer.client = m.origin.client;
    }
    host.service_.tracking_applied(
        keys,
        [&](uint64_t node) {
          return leads && std::find(members.begin(), members.end(), NodeId(node)) == members.end();
        },
        writer);
  }

  // ---- WATCH (docs/replication.md, "WATCH on consensus keyspaces") ----
  // Records the entry `index` as the last change of every key its effects
  // touch (a collection's element changes its key).
  void note_changes(const replication::Mutation& m, uint64_t index) {
    for (const replication::Effect& e : m.effects) {
      if (e.kind == replication::Effect::Kind::kClear) {
        changes.clear();
        changes_floor = index;
        continue;
      }
      changes[change_slot(e.key)] = index;
    }
    if (changes.size() > kMaxTrackedChanges) forget_older_changes();
  }
  // Keeps the memory bounded: forgets the older half of the changes, and
  // raises the floor to the newest index forgotten.
  void forget_older_changes() {
    std::vector<uint64_t> indexes;
    indexes.reserve(changes.size());
    for (const auto& [key, index] : changes) indexes.push_back(index);
    auto mid = indexes.begin() + static_cast<std::ptrdiff_t>(indexes.size() / 2);
    std::nth_element(indexes.begin(), mid, indexes.end());
    const uint64_t cut = *mid;
    std::erase_if(changes, [&](const auto& kv) { return kv.second <= cut; });
    changes_floor = std::max(changes_floor, cut);
  }
  // Keys are kept by a 64-bit hash: two keys sharing one only make a watch
  // of either count the other's changes (never miss one), and the table costs
  // 16 bytes an entry, not a copy of the key.
  static uint64_t change_slot(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }
  // The log index of the last applied effect on `key`, or an index at least
  // as high (the floor) when it is no longer or not yet known here.
  uint64_t last_change(std::string_view key) const {
    auto it = changes.find(change_slot(key));
    return it != changes.end() ? std::max(it->second, changes_floor) : changes_floor;
  }
  // After a callback or the replica's start: a restored snapshot's index is
  // the floor.
  void settle_changes_floor() {
    if (!changes_floor_pending || !raft) return;
    changes_floor_pending = false;
    changes_floor = std::max(changes_floor, raft->applied_index().value());
  }

  // Visits every record of this group's shard in the store (expired ones too:
  // they are state until their erase is applied): its scope's records
  // (server/record.h, "Scopes"; coord/group_scopes.h gives this group's keys
  // its id), one range of the store. The store's error.
  Status scan_records(
      const std::function<void(std::string_view, const server::RecordView&)>& fn) const {
    return host.store_.scan_scope(id.value(), {}, 0,
                                  [&](std::string_view key, const server::RecordView& rec) {
                                    fn(key, rec);
                                    return true;
                                  });
  }
  // scan_records, an error logged.
  void for_each_record(
      const std::function<void(std::string_view, const server::RecordView&)>& fn) const {
    if (Status s = scan_records(fn); !s.ok())
      spdlog::error("group {}: scanning its records failed: {}", id.value(), s.to_string());
  }

  ReplicaGroups::Impl& host;
  GroupId id;
  std::string keyspace;
  uint32_t shard;
  std::vector<NodeId> members;
  std::shared_ptr<const RoutingTable> table;
  // The group's configuration epoch (meta::Shard::config_epoch) as this member
  // knows it: the map's, or a newer one learned from a frame or a step. Frames
  // and steps of an older epoch are refused (check_epoch).
  uint64_t epoch = 0;
  uint64_t frames_refused_epoch = 0;  // frames dropped for their older epoch
  uint64_t steps_refused_epoch = 0;   // __replicas steps refused for it
  uint64_t routes_refused_epoch = 0;  // commands refused: routed by an older map
  Random random_;
  std::unique_ptr<net::GroupLog> log;
  std::unique_ptr<Raft> raft;
  // With an engine that keeps its state: the applied position the store held
  // when this replica started; entries up to it are not applied again.
  uint64_t kept_through = 0;
  // With an engine that keeps its state: the highest log index whose position
  // the store holds (written with an entry's effects, by a restore, or kept
  // from before a restart). Raft's applied index can be ahead of it: a
  // leader's no-op and configuration entries reach no apply() and write no
  // position. The log compacts through this, never past it (compact_logs):
  // past it, a restart would find the store behind the log's compaction point.
  uint64_t stored_through = 0;
  // The log index the store's state reflects: the applied index, or, just
  // after a restart, the kept position while raft has not caught up to it.
  // What a local read covers and reports (a session token built from the
  // applied index alone could move backwards on the next member).
  uint64_t state_index() const { return std::max(raft->applied_index().value(), kept_through); }
  // Tells this replica from a later one of the same group (a store flush
  // started for one must not compact the other's log).
  uint64_t serial = 0;
  uint64_t next_timer = 0;
  std::unordered_map<uint64_t, std::unique_ptr<asio::steady_timer>> timers;
  bool was_leader = false;
  std::optional<NodeId> known_leader;  // the leader last logged (leader changes are logged)
  // Keys with an effect queued or proposed and not yet applied here, and how many.
  std::unordered_map<std::string, int> latches;
  std::deque<uint64_t> parked;       // commands waiting for a latch
  // Writes evaluated and latched, not yet proposed (Pending::Phase::kQueued),
  // in evaluation order; a flush is posted on the loop while it is not empty.
  std::vector<uint64_t> queued;
  bool flush_posted = false;
  std::deque<uint64_t> local_reads;  // local reads waiting for applied to cover them
  // Blocking commands waiting on this leader, by request id (arrival order),
  // and the keys effects applied since the last callback touched.
  std::set<uint64_t> blocked;
  std::unordered_set<std::string> touched;
  // Served here; read by status() from other threads (a quiet group has no
  // callbacks to publish them with).
  std::shared_ptr<GroupCounters> counters = std::make_shared<GroupCounters>();
  // WAIT calls on this leader: answered when enough members hold `index`.
  struct Waiter {
    uint64_t id = 0;
    uint64_t index = 0;
    int64_t numreplicas = 0;
    std::function<void(GroupReply)> done;
    std::unique_ptr<asio::steady_timer> timer;
  };
  std::vector<Waiter> waiters;
  // Members other than this leader whose log reaches `index`.
  int64_t replicas_at(uint64_t index) const {
    int64_t n = 0;
    for (const auto& [node, match] : raft->follower_match()) n += match.value() >= index ? 1 : 0;
    return n;
  }
  uint64_t applied_seen = 0;
  // WATCH: the log index of the last effect applied here on each key (by
  // change_slot), for the keys changed since changes_floor (at most
  // kMaxTrackedChanges of them, about 0.6 MB); every other key last changed
  // at or below changes_floor.
  static constexpr size_t kMaxTrackedChanges = 16384;
  std::unordered_map<uint64_t, uint64_t> changes;
  uint64_t changes_floor = 0;
  bool changes_floor_pending = false;
  // A snapshot restored on a thread of its own (begin_restore), until
  // finish_restore; stop_group waits for the thread.
  bool restoring = false;
  std::future<void> restore_job;
};

// ------------------------------------------------------------------ Impl

ReplicaGroups::Impl::Impl(ReplicaGroupsOptions options, net::RaftNode& transport,
                          server::Service& service)
    : options_(std::move(options)),
      transport_(transport),
      service_(service),
      store_(*service.store()),
      io_(transport.data_loop()),
      random_(std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32)) {
  // Called on the data loop, where the transport reads the frame.
  transport_.set_group_handler(
      [this](NodeId from, uint64_t group, uint64_t epoch, std::string message) {
        deliver(from, group, epoch, std::move(message));
      });
  transport_.set_ping_probe([this] { return receiving_snapshots(); });
  if (keeps_state_ && !options_.data_dir.empty()) {
    if (const size_t left = clear_snapshot_staging(staging_dir()); left > 0) {
      spdlog::info("replica groups: removed {} snapshot files a transfer left in {}", left,
                   staging_dir().string());
    }
  }
  asio::post(io_, [this] {
    balance_leaders();
    watch_peers();
    compact_logs();
  });
}

void ReplicaGroups::Impl::compact_logs() {
  if (stopping_) return;
  if (keeps_state_ && !persisting_) {
    uint64_t behind = 0;
    uint64_t behind_bytes = 0;
    uint64_t most_behind = 0;
    std::vector<std::tuple<GroupId, uint64_t, uint64_t>> applied;  // group, serial, index
    for (const auto& [id, g] : groups_) {
      if (!g->raft) continue;
      // What the store holds the position of, not what raft applied: the
      // entries after it (no-ops, configurations) wrote no position.
      // Nor past a snapshot being sent (Raft::compaction_limit).
      const uint64_t index = std::min(g->raft->compaction_limit().value(), g->stored_through);
      const uint64_t compacted = g->raft->log().snapshot_index().value();
      if (index <= compacted) continue;
      const uint64_t past = index - compacted;
      behind += past;
      behind_bytes += g->raft->log().bytes_between(LogIndex(compacted), LogIndex(index));
      most_behind = std::max(most_behind, past);
      applied.emplace_back(id, g->serial, index);
    }
    if (behind >= options_.compact_after_entries ||
        most_behind >= options_.raft.snapshot_threshold ||
        (options_.compact_after_bytes != 0 && behind_bytes >= options_.compact_after_bytes)) {
      // Every effect applied so far is in the store; the flush covers it.
      persisting_ = true;
      if (persister_.joinable()) persister_.join();  // finished: persisting_ was false
      persister_ = std::thread([this, applied = std::move(applied)]() mutable {
        Status s = store_.engine().persist_all();
        asio::post(io_, [this, applied = std::move(applied), s] { on_store_persisted(applied, s); });
      });
    }
  }
  compact_timer_.expires_after(std::chrono::milliseconds(500));
  compact_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) compact_logs();
  });
}

void ReplicaGroups::Impl::on_store_persisted(
    const std::vector<std::tuple<GroupId, uint64_t, uint64_t>>& applied, const Status& persisted) {
  persisting_ = false;
  if (stopping_) return;
  if (!persisted.ok()) {
    // The logs keep everything; the next round tries again.
    spdlog::error("replica groups: making the store durable failed, logs not compacted: {}",
                  persisted.to_string());
    return;
  }
  for (const auto& [id, serial, index] : applied) {
    ReplicaGroup* g = find(id);
    if (g == nullptr || !g->raft || g->serial != serial) continue;
    g->raft->compact(LogIndex(index));
    after_callback(*g);
  }
}

void ReplicaGroups::Impl::watch_peers() {
  if (stopping_) return;
  const net::RaftNodeStatus s = transport_.status();
  const auto now = std::chrono::steady_clock::now();
  for (auto& [id, g] : groups_) {
    if (!g->raft || !g->raft->quiesced()) continue;
    for (NodeId m : g->members) {
      if (m == options_.self) continue;
      auto it = s.last_heard.find(m);
      const auto since = it != s.last_heard.end() ? std::max(it->second, s.started) : s.started;
      if (now - since < options_.peer_down_after) continue;
      g->raft->on_peer_down(m);
      after_callback(*g);
      break;
    }
  }
  peer_timer_.expires_after(std::chrono::milliseconds(100));
  peer_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) watch_peers();
  });
}

std::function<bool(NodeId)> ReplicaGroups::Impl::peer_reachable() const {
  return [last_heard = transport_.status().last_heard, now = std::chrono::steady_clock::now(),
          within = options_.peer_down_after](NodeId n) {
    auto it = last_heard.find(n);
    return it != last_heard.end() && now - it->second < within;
  };
}

void ReplicaGroups::Impl::balance_leaders() {
  if (stopping_) return;
  const auto reachable = peer_reachable();
  const auto receiving = peer_receiving_snapshot();
  const auto now = HandoverBackoff::Clock::now();
  for (auto& [id, g] : groups_) {
    if (handing_over_) break;
    if (!g->raft || g->raft->role() != Raft::Role::kLeader) {
      handover_backoff_.not_leading(id.value());
      continue;
    }
    handover_backoff_.leading(id.value(), now);
    const std::optional<NodeId> target = leadership_handover_target({
        .self = options_.self,
        .members = g->members,
        .match = g->raft->follower_match(),
        .learners = g->raft->learner_match(),
        .last_index = g->raft->log().last_index(),
        .reachable = reachable,
        .receiving_snapshot = receiving,
    });
    if (!target || !handover_backoff_.may_try(id.value(), *target, now)) continue;
    const NodeId preferred = *target;
    if (Status s = g->raft->transfer_leadership(preferred); s.ok()) {
      const uint32_t failed = handover_backoff_.failures(id.value());
      spdlog::info(
          "replica group {} ({} shard {}): handing leadership to node {}, its "
          "preferred leader, which is up to date{}",
          id.value(), g->keyspace, g->shard, preferred.value(),
          failed == 0 ? std::string()
                      : fmt::format(" (again: {} handovers to it did not take)", failed));
      handover_backoff_.tried(id.value(), preferred, now);
      after_callback(*g);
    }
  }
  balance_timer_.expires_after(std::chrono::seconds(1));
  balance_timer_.async_wait([this](const asio::error_code& ec) {
    if (!ec) balance_leaders();
  });
}

void ReplicaGroups::Impl::shutdown() {
  transport_.set_group_handler(nullptr);  // on the data loop: at once
  transport_.set_ping_probe(nullptr);
  {
    stopping_ = true;
    balance_timer_.cancel();
    peer_timer_.cancel();
    compact_timer_.cancel();
    if (persister_.joinable()) persister_.join();
    std::vector<GroupId> ids;
    for (const auto& [id, g] : groups_) ids.push_back(id);
    for (GroupId id : ids) stop_group(id, false);
    for (auto& [id, erase] : erasing_) erase.wait();  // they use the store
    erasing_.clear();
    pipelines_.clear();  // every command is answered below, none begun
    for (auto& [id, p] : pending_) {
      if (p.timer) p.timer->cancel();
      if (p.done) p.done(GroupReply{Status::Unavailable("node shutting down"), {}, {}});
    }
    pending_.clear();
    auto delayed = std::move(delayed_);
    for (auto& [id, d] : delayed) {
      d.first->cancel();
      d.second(false);
    }
  }
}

void ReplicaGroups::Impl::on_table(std::shared_ptr<const RoutingTable> table) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (table_ && table && table_->epoch() >= table->epoch()) return;
    table_ = table;
  }
  asio::post(io_, [this, table = std::move(table)]() mutable { apply_table(std::move(table)); });
}

void ReplicaGroups::Impl::apply_table(std::shared_ptr<const RoutingTable> table) {
  if (stopping_ || !table) return;
  wal_error_ = Status::OK();  // a log that could not be opened is tried again
  std::set<GroupId> wanted;
  for (const meta::Keyspace& ks : table->map().keyspaces) {
    if (ks.spec.replication.kind != meta::Replication::kConsensus) continue;
    for (const meta::Shard& shard : ks.shards) {
      if (std::find(shard.owners.begin(), shard.owners.end(), options_.self) ==
          shard.owners.end()) {
        continue;
      }
      const GroupId id = group_id(ks.spec.name, shard.id.value());
      wanted.insert(id);
      if (ReplicaGroup* g = find(id)) {
        // Its replicas move (replica_moves.h): the owners follow the group's
        // configuration; the first is the preferred leader.
        g->members = shard.owners;
        g->table = table;
        if (shard.config_epoch > g->epoch) g->epoch = shard.config_epoch;
        continue;
      }
      // A member being added is listed past the factor: it starts empty and
      // outside the configuration (it never campaigns) until the leader's
      // config entry or snapshot takes it in. A founding member starts with
      // the owners as the configuration.
      std::vector<NodeId> bootstrap = shard.owners;
      const auto at = std::find(bootstrap.begin(), bootstrap.end(), options_.self);
      if (static_cast<size_t>(at - bootstrap.begin()) >= ks.spec.replication.factor) {
        bootstrap.erase(at);
      }
      start_group(id, ks, shard.id.value(), bootstrap, table, shard.config_epoch);
    }
  }
  std::vector<GroupId> gone;
  for (const auto& [id, g] : groups_) {
    if (!wanted.contains(id)) gone.push_back(id);
  }
  for (GroupId id : gone) {
    // Its keyspace was dropped, or its replica here moved away (this node was
    // removed from the group, then from the shard's owners).
    const ReplicaGroup& g = *groups_.at(id);
    const bool dropped = table->map().find_keyspace(g.keyspace) == nullptr;
    spdlog::info(
        "replica group {} ({} shard {}): {}: stopping it and erasing its log and records here",
        id.value(), g.keyspace, g.shard,
        dropped ? "its keyspace was dropped" : "this node no longer holds one of its replicas");
    stop_group(id, true);
  }
  publish_status();
}

void ReplicaGroups::Impl::start_group(GroupId id, const meta::Keyspace& ks, uint32_t shard,
                                      const std::vector<NodeId>& members,
                                      std::shared_ptr<const RoutingTable> table, uint64_t epoch) {
  // Placed here again a moment after it left: its old records go first.
  wait_for_erase(id);
  auto g = std::make_unique<ReplicaGroup>(*this, id, ks.spec.name, shard, members, std::move(table),
                                          random_.fork());
  g->epoch = epoch;
  if (!open_wal()) return;
  std::vector<std::string> records;
  ReplicaGroup* raw = g.get();
  auto log = wal_->open_group(
      id.value(),
      [this, id](uint64_t seq) {
        asio::post(io_, [this, id, seq] {
          ReplicaGroup* group = find(id);
          if (group == nullptr || !group->raft) return;
          group->raft->on_persisted(PersistToken(seq));
          after_callback(*group);
        });
      },
      &records);
  if (!log.ok()) {
    spdlog::error("replica group {} ({} shard {}): cannot open its log: {}", id.value(),
                  ks.spec.name, shard, log.status().to_string());
    return;
  }
  g->log = std::move(log).value();
  g->serial = ++next_serial_;
  replication::raft::RaftOptions raft_options = options_.raft;
  raft_options.machine_keeps_state = keeps_state_;
  if (keeps_state_) {
    // The store must hold the state through the log's compaction point, or
    // entries before it are lost to this replica: then it takes the state
    // from its leader (raft's machine_state_lost), keeping its log and votes.
    auto state = store_.applied_state(id.value());
    auto recovered = replication::raft::recover(records);
    if (!state.ok() || !recovered.ok()) {
      spdlog::error("replica group {} ({} shard {}): cannot read its {}: {}", id.value(),
                    ks.spec.name, shard, state.ok() ? "log" : "applied position in the store",
                    (state.ok() ? recovered.status() : state.status()).to_string());
      return;
    }
    uint64_t kept = state->index;
    const uint64_t compacted = recovered->log.snapshot_index().value();
    if (state->restoring) {
      // A snapshot's restore in pieces was cut short: its records are part
      // the snapshot's, part what they held, through no log index, and
      // replaying the log over them would not rebuild a state.
      spdlog::warn(
          "replica group {} ({} shard {}): a snapshot's restore was cut short here (the process "
          "stopped between its pieces): this replica keeps its log and votes, serves nothing and "
          "leads nothing until it has the shard again as a snapshot from its leader "
          "(docs/replication.md, \"Restoring in pieces\")",
          id.value(), ks.spec.name, shard);
      raft_options.machine_state_partial = true;
    } else if (recovered->snapshot.empty() && kept < compacted) {
      spdlog::warn(
          "replica group {} ({} shard {}): the store holds its records only through log index "
          "{}, but its log was compacted through {}: the store lost data (was {} replaced or "
          "restored from a backup?). This replica keeps its log and votes, serves nothing and "
          "leads nothing until it has the shard again as a snapshot from its leader "
          "(docs/cluster.md, \"A node that lost its data\")",
          id.value(), ks.spec.name, shard, kept, compacted,
          (options_.data_dir / "rocksdb").string());
      raft_options.machine_state_lost = true;
      kept = 0;  // what the store holds of it is replaced by the snapshot
    }
    g->kept_through = kept;
    g->stored_through = kept;
  }
  replication::Membership membership{.self = options_.self, .nodes = members};
  groups_[id] = std::move(g);
  raw->raft = std::make_unique<Raft>(*raw, membership, std::move(records), *raw, raft_options);
  spdlog::info("replica group {} ({} shard {}) started: {} members, {} log records recovered",
               id.value(), ks.spec.name, shard, members.size(),
               raw->raft->log().last_index().value());
  // Waiting for a snapshot (its store lost the state): its peers hear so at
  // once, and hand it no leadership meanwhile.
  if (raw->raft->state_lost()) note_snapshot_reception(*raw);
  after_callback(*raw);
}

void ReplicaGroups::Impl::stop_group(GroupId id, bool remove_files) {
  auto it = groups_.find(id);
  if (it == groups_.end()) return;
  ReplicaGroup& g = *it->second;
  if (g.restore_job.valid()) {
    // Its records are being restored on another thread: erased or left
    // behind, they must be whole first (its completion, posted, finds no group).
    spdlog::info("replica group {}: stopping; waiting for its snapshot restore to end", id.value());
    g.restore_job.wait();
  }
  g.flush_applies();
  for (auto& [tid, timer] : g.timers) timer->cancel();
  g.timers.clear();
  for (auto& w : g.waiters) {
    if (w.timer) w.timer->cancel();
    w.done(GroupReply{Status::Unavailable("replica group stopped on this node"), {}, {}});
  }
  g.waiters.clear();
  lost_leadership(g);
  std::vector<uint64_t> mine;
  for (auto& [rid, p] : pending_) {
    if (p.group == id) mine.push_back(rid);
  }
  for (uint64_t rid : mine) {
    // A proposed write may still commit under the group's next leader: its
    // outcome is unknown, and a router that took "did not run" would send it
    // again, to take effect twice (seen: a value read, overwritten, then read
    // again, when node 3's replicas were removed under load). The rest never
    // reached the log.
    auto p = pending_.find(rid);
    const bool proposed = p != pending_.end() && p->second.phase == Pending::Phase::kCommitting;
    finish(rid, GroupReply{proposed ? Status::Timeout("replica group stopped on this node while "
                                                      "the write was being committed: it may "
                                                      "have taken effect")
                                    : Status::Unavailable("replica group stopped on this node"),
                           {},
                           {}});
  }
  g.raft.reset();
  g.log.reset();  // waits until its records are durable
  groups_.erase(it);
  if (remove_files) {
    // Its keyspace was dropped, or its replica here moved away. Its applied
    // position goes first: records no position vouches for are what a
    // replica of the group placed here again compares with its first
    // snapshot (or replays its whole log over), should a crash interrupt
    // their erase below.
    if (keeps_state_) {
      if (Status s = store_.forget_applied_position(id.value()); !s.ok()) {
        spdlog::error("replica group {}: erasing its applied position failed: {}", id.value(),
                      s.to_string());
      }
    }
    // Its records in the shared log are forgotten, and stop keeping segments.
    if (Status s = wal_->drop_group(id.value()); !s.ok()) {
      spdlog::error("replica group {}: dropping its records from the log failed: {}", id.value(),
                    s.to_string());
    }
    erase_scope_in_background(id);
  }
}

void ReplicaGroups::Impl::erase_scope_in_background(GroupId id) {
  // Finished erases are forgotten here; start_group and shutdown wait for
  // the others.
  std::erase_if(erasing_, [](const auto& e) {
    return e.second.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
  });
  // Its records go by its scope (a dropped keyspace is no longer in the map),
  // on a thread of their own: 98k of them took 1.7 s, which on the data loop
  // held every group of the node long enough for the followers of the groups
  // it leads to elect other leaders (seen moving a replica away). Nothing
  // else writes the scope meanwhile, and the node serves none of its keys.
  erasing_[id] = std::async(std::launch::async, [this, id] {
    name_this_thread("scope-erase");
    if (auto r = store_.erase_scope(id.value()); !r.ok()) {
      spdlog::error("replica group {}: erasing its records here failed: {}", id.value(),
                    r.status().to_string());
    } else if (*r != 0) {
      spdlog::info("replica group {}: erased its {} records here", id.value(), *r);
    }
  });
}

void ReplicaGroups::Impl::wait_for_erase(GroupId id) {
  auto e = erasing_.find(id);
  if (e == erasing_.end()) return;
  if (e->second.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    spdlog::info("replica group {}: waiting for the erase of its earlier records here", id.value());
  }
  e->second.wait();
  erasing_.erase(e);
}

bool ReplicaGroups::Impl::open_wal() {
  if (wal_) return true;
  if (!wal_error_.ok()) return false;  // logged when it failed
  // The node's one write-ahead log, opened by the metadata replica (its group 0).
  std::shared_ptr<net::SharedLog> wal = transport_.wal();
  SKV_ASSERT(wal != nullptr, "a started RaftNode has its write-ahead log open");
  // Data directories written before the shared log kept one DiskLog per group.
  auto moved = net::migrate_group_logs(*wal, options_.data_dir / "groups", options_.fsync);
  if (!moved.ok()) {
    wal_error_ = moved.status();
    spdlog::error(
        "replica groups: cannot move the per-group logs of {} into the write-ahead "
        "log: {}; no replica group can start on this node",
        (options_.data_dir / "groups").string(), wal_error_.to_string());
    return false;
  }
  if (*moved > 0) {
    spdlog::info("replica groups: moved the logs of {} groups from {} into the write-ahead log",
                 *moved, (options_.data_dir / "groups").string());
  }
  wal_ = std::move(wal);
  spdlog::info(
      "replica groups: write-ahead log open, {} groups with records (the metadata "
      "group's included)",
      wal_->groups().size());
  return true;
}

ReplicaGroup* ReplicaGroups::Impl::find(GroupId id) {
  auto it = groups_.find(id);
  return it == groups_.end() ? nullptr : it->second.get();
}

bool ReplicaGroups::Impl::check_epoch(ReplicaGroup& g, uint64_t epoch, const std::string& what,
                                      uint64_t& refused) {
  if (epoch < g.epoch) {
    ++refused;
    // Logged on the 1st, 2nd, 4th, 8th, ... refusal: a lagging peer sends many.
    if ((refused & (refused - 1)) == 0) {
      spdlog::warn(
          "replica group {} ({} shard {}): refused {} of configuration epoch {}: this member "
          "knows epoch {} ({} refused so far)",
          g.id.value(), g.keyspace, g.shard, what, epoch, g.epoch, refused);
    }
    return false;
  }
  if (epoch > g.epoch) {
    spdlog::info("replica group {} ({} shard {}): learned configuration epoch {} (was {}) from {}",
                 g.id.value(), g.keyspace, g.shard, epoch, g.epoch, what);
    g.epoch = epoch;
  }
  return true;
}

void ReplicaGroups::Impl::deliver(NodeId from, uint64_t group, uint64_t epoch,
                                  std::string message) {
  ReplicaGroup* g = find(GroupId(group));
  if (g == nullptr || !g->raft) return;  // not (or no longer) a member: raft retries
  // A frame sent from an older view of the group's configuration (a removed
  // member, a sender whose map lags) is dropped: raft treats it as lost.
  // (Most frames carry the epoch known here: no string built for them.)
  if (epoch != g->epoch &&
      !check_epoch(*g, epoch, "a frame from node " + std::to_string(from.value()),
                   g->frames_refused_epoch)) {
    publish_status(*g);
    return;
  }
  auto msg = replication::decode_message<raft::Message>(message);
  if (!msg.ok()) {
    spdlog::warn("group {}: message from node {} does not decode: {}", group, from.value(),
                 msg.status().to_string());
    return;
  }
  const bool chunk = std::holds_alternative<raft::InstallSnapshot>(*msg);
  g->raft->on_message(from, *msg);
  if (chunk) note_snapshot_reception(*g);
  after_callback(*g);
}

namespace {
// A snapshot transfer with no chunk for this long no longer counts as one
// being received (its leader dropped it, or lost office).
constexpr std::chrono::seconds kSnapshotQuiet{2};
}  // namespace

void ReplicaGroups::Impl::note_snapshot_reception(ReplicaGroup& g) {
  if (!g.raft->receiving_snapshot(g.now(), kSnapshotQuiet)) {
    receiving_snapshots_.erase(g.id);
    return;
  }
  if (receiving_snapshots_.insert(g.id).second && receiving_snapshots_.size() == 1) {
    transport_.ping_now();
  }
}

bool ReplicaGroups::Impl::receiving_snapshots() {
  std::erase_if(receiving_snapshots_, [&](GroupId id) {
    ReplicaGroup* g = find(id);
    return g == nullptr || !g->raft || !g->raft->receiving_snapshot(g->now(), kSnapshotQuiet);
  });
  return !receiving_snapshots_.empty();
}

std::function<bool(NodeId)> ReplicaGroups::Impl::peer_receiving_snapshot() const {
  return [receiving = transport_.status().receiving_snapshot](NodeId n) {
    return receiving.contains(n);
  };
}

void ReplicaGroups::Impl::after_callback(ReplicaGroup& g) {
  // The entries this callback applied reach the store before anything reads it.
  g.flush_applies();
  g.settle_changes_floor();
  const bool leading = g.raft->role() == Raft::Role::kLeader;
  if (g.was_leader && !leading) lost_leadership(g);
  if (!g.touched.empty()) wake_blocked(g);
  const std::optional<NodeId> leader = g.raft->leader();
  if (leading != g.was_leader || (leader && leader != g.known_leader)) {
    // Every leader change, with what caused it as this member saw it.
    spdlog::info("replica group {} ({} shard {}): node {} is {} in term {}, leader {}: {}",
                 g.id.value(), g.keyspace, g.shard, options_.self.value(),
                 role_name(g.raft->role()), g.raft->term().value(),
                 leader ? std::to_string(leader->value()) : std::string("unknown"),
                 g.raft->role_reason());
  }
  g.was_leader = leading;
  if (leader) g.known_leader = leader;
  if (!g.waiters.empty()) {
    std::vector<ReplicaGroup::Waiter> settled;
    for (auto it = g.waiters.begin(); it != g.waiters.end();) {
      if (!leading || g.replicas_at(it->index) >= it->numreplicas) {
        settled.push_back(std::move(*it));
        it = g.waiters.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& w : settled) {
      if (w.timer) w.timer->cancel();
      if (!leading) {
        w.done(GroupReply{Status::Unavailable("lost the leadership of replica group " +
                                              std::to_string(g.id.value())),
                          {},
                          g.raft->leader().value_or(NodeId())});
      } else {
        w.done(GroupReply{Status::OK(), ":" + std::to_string(g.replicas_at(w.index)) + "\r\n", {}});
      }
    }
  }
  if (!g.local_reads.empty() && g.raft->applied_index().value() != g.applied_seen) {
    g.applied_seen = g.raft->applied_index().value();
    retry_local_reads(g);
  }
  publish_status(g);
}

namespace {

GroupStatus status_of(GroupId id, const ReplicaGroup& g) {
  GroupStatus s;
  s.id = id;
  s.keyspace = g.keyspace;
  s.shard = g.shard;
  s.members = g.raft->config();
  s.role = std::string(role_name(g.raft->role()));
  s.term = g.raft->term().value();
  s.leader = g.raft->leader();
  s.commit_index = g.raft->commit_index().value();
  s.state_lost = g.raft->state_lost();
  s.applied_index = s.state_lost ? 0 : g.raft->applied_index().value();
  s.last_index = g.raft->log().last_index().value();
  s.compacted_index = g.raft->log().snapshot_index().value();
  s.snapshots_streamed = g.raft->snapshot_stats().transfers_read;
  s.snapshots_installed = g.raft->snapshot_stats().installed;
  s.receiving_snapshot = g.raft->receiving_snapshot(g.now(), kSnapshotQuiet);
  s.snapshot_sends_deferred = g.raft->snapshot_stats().sends_deferred;
  for (const auto& [n, m] : g.raft->follower_match()) s.match[n] = m.value();
  for (const auto& [n, a] : g.raft->follower_applied()) s.applied[n] = a.value();
  s.quiesced = g.raft->quiesced();
  s.epoch = g.epoch;
  s.frames_refused_epoch = g.frames_refused_epoch;
  s.steps_refused_epoch = g.steps_refused_epoch;
  s.routes_refused_epoch = g.routes_refused_epoch;
  return s;
}

}  // namespace

void ReplicaGroups::Impl::publish_status() {
  std::map<GroupId, std::pair<GroupStatus, std::shared_ptr<const GroupCounters>>> all;
  for (const auto& [id, g] : groups_) {
    if (g->raft) all.emplace(id, std::pair{status_of(id, *g), g->counters});
  }
  std::lock_guard<std::mutex> lock(mu_);
  status_ = std::move(all);
}

void ReplicaGroups::Impl::publish_status(const ReplicaGroup& g) {
  if (!g.raft) return;
  GroupStatus s = status_of(g.id, g);
  std::lock_guard<std::mutex> lock(mu_);
  status_[g.id] = std::pair{std::move(s), g.counters};
}

const server::CommandSpec* ReplicaGroups::Impl::spec_of(
    const std::vector<std::string>& argv) const {
  if (argv.empty()) return nullptr;
  const server::CommandSpec* spec = commands_.find(argv[0]);
  if (spec != nullptr && !spec->subcommands.empty() && argv.size() > 1) {
    spec = server::CommandTable::find_sub(*spec, argv[1]);
  }
  return spec;
}

std::vector<std::string> ReplicaGroups::Impl::latch_keys(
    const std::vector<std::string>& argv) const {
  std::vector<std::string> keys;
  const server::CommandSpec* spec = spec_of(argv);
  if (spec == nullptr) return keys;
  std::vector<std::string_view> views(argv.begin(), argv.end());
  for (size_t i : server::key_positions(*spec, views)) keys.push_back(argv[i]);
  return keys;
}

void ReplicaGroups::Impl::execute(GroupId group, int resp, std::vector<std::string> argv,
                                  ReadPolicy policy, std::function<void(GroupReply)> done,
                                  replication::WriteOrigin origin, uint64_t routed_epoch,
                                  PipelinePlace place) {
  // From an I/O thread, with the other commands of its pass: one wake of the
  // loop for them all, and their effects in one proposal (core/held_posts.h).
  HeldPosts::post(io_, [this, group, resp, policy, origin, routed_epoch, place,
                        argv = std::move(argv), done = std::move(done)]() mutable {
    PipelineKey in_pipeline{0, 0};
    if (place.stream != 0 && !policy.local) {
      // A command of a client's pipeline (PipelinePlace): refused without
      // running behind one that did not run, or after a gap; otherwise it
      // waits in line behind the one not evaluated yet.
      in_pipeline = PipelineKey{place.router, place.stream};
      const auto now = std::chrono::steady_clock::now();
      if (now - pipelines_swept_ > std::chrono::seconds(1)) {
        // A pipeline quiet for a while is forgotten: a later command of it
        // (a slow client's) then finds a gap and is refused, and sent again
        // alone, as is one that outlived a restart of this node.
        pipelines_swept_ = now;
        std::erase_if(pipelines_, [&](const auto& kv) {
          const Pipeline& pl = kv.second;
          return pl.unevaluated == 0 && pl.in_line.empty() &&
                 now - pl.last_used > std::chrono::seconds(5);
        });
      }
      Pipeline& pl = pipelines_[in_pipeline];
      pl.group = group;
      pl.last_used = now;
      if (pl.broken || place.seq != pl.last_seq + 1) {
        pl.broken = true;
        pl.last_seq = std::max(pl.last_seq, place.seq);
        done(pipeline_refused());
        return;
      }
      pl.last_seq = place.seq;
      // Whatever way it ends without running (refused here, timed out before
      // it was proposed, its leader deposed), the rest of the pipeline stops.
      done = [this, in_pipeline, inner = std::move(done)](GroupReply r) {
        const bool not_run = r.status.code() == Status::Code::kUnavailable ||
                             r.status.code() == Status::Code::kAborted;
        inner(std::move(r));
        if (not_run) break_pipeline(in_pipeline);
        pipeline_step(in_pipeline);
      };
    }
    if (stopping_) {
      done(GroupReply{Status::Unavailable("node shutting down"), {}, {}});
      return;
    }
    ReplicaGroup* g = find(group);
    if (g == nullptr || !g->raft) {
      done(GroupReply{
          Status::Unavailable("node " + std::to_string(options_.self.value()) +
                              " is not a member of replica group " + std::to_string(group.value())),
          {},
          {}});
      return;
    }
    if (!argv.empty() && argv[0] == kReplicasVerb) {
      membership(*g, argv, std::move(done));
      return;
    }
    if (!argv.empty() && argv[0] == kGroupFenceVerb) {
      const auto epoch = argv.size() == 3 ? server::parse_int64(argv[1]) : std::nullopt;
      if (!epoch || *epoch <= 0) {
        done(GroupReply{Status::InvalidArgument("usage: " + std::string(kGroupFenceVerb) +
                                                " EPOCH PREFIX (a positive configuration epoch)"),
                        {},
                        {}});
        return;
      }
      if (g->raft->role() != Raft::Role::kLeader) {
        done(GroupReply{
            Status::Unavailable("not the leader of replica group " + std::to_string(group.value())),
            {},
            g->raft->leader().value_or(NodeId())});
        return;
      }
      // Learned here, before anything else is evaluated: every command
      // evaluated from now on is held to it (evaluate).
      if (!check_epoch(*g, static_cast<uint64_t>(*epoch), "a fence", g->steps_refused_epoch)) {
        done(GroupReply{Status::Aborted(fmt::format(
                            "replica group {} knows configuration epoch {}, newer than the "
                            "fence's {}",
                            group.value(), g->epoch, *epoch)),
                        {},
                        {}});
        return;
      }
      publish_status(*g);
    }
    if (policy.local && !is_scope_read(argv)) {
      const server::CommandSpec* spec = spec_of(argv);
      if (spec == nullptr || (spec->flags & server::kReadonly) == 0) {
        done(GroupReply{Status::InvalidArgument("only a read-only command may be served below "
                                                "linearizable"),
                        {},
                        {}});
        return;
      }
    } else if (g->raft->role() != Raft::Role::kLeader) {
      done(GroupReply{
          Status::Unavailable("not the leader of replica group " + std::to_string(group.value())),
          {},
          g->raft->leader().value_or(NodeId())});
      return;
    }
    if ((argv.size() == 2 || argv.size() == 3) && argv[0] == kUnblockVerb) {
      unblock(*g, argv[1], argv.size() == 3);
      done(GroupReply{Status::OK(), "+OK\r\n", {}});
      return;
    }
    std::string token;
    int64_t block_ms = -1;  // a blocking command: its timeout (0: none)
    if (argv.size() >= 3 && argv[0] == kBlockVerb && !policy.local) {
      token = std::move(argv[1]);
      argv.erase(argv.begin(), argv.begin() + 2);
      std::vector<std::string_view> views(argv.begin(), argv.end());
      std::string error;
      const auto at = server::blocking_timeout_at(views);
      const auto ms = at ? server::parse_block_timeout(argv[*at], &error) : std::nullopt;
      block_ms = ms ? std::max<int64_t>(*ms, 0) : 0;
    }
    const uint64_t id = ++next_request_;
    Pending p;
    p.group = group;
    p.resp = resp;
    p.origin = origin;
    p.keys = latch_keys(argv);
    p.blocking = block_ms >= 0;
    p.token = token;
    if (p.blocking) blocked_tokens_[token] = id;
    // A transaction's keys are inside its encoding: it waits until nothing
    // of the group is in flight.
    p.all_keys = !argv.empty() && (argv[0] == server::kExecVerb || argv[0] == kFlushGroupVerb ||
                                   argv[0] == kGroupExecVerb || argv[0] == kGroupFenceVerb);
    p.routed_epoch = routed_epoch;
    if (!argv.empty() && argv[0] == kGroupWatchVerb) {
      // Waits for effects in flight on its keys: they would count as changes.
      p.keys.assign(argv.begin() + 1, argv.end());
    }
    if (const server::CommandSpec* spec = spec_of(argv)) {
      p.write = (spec->flags & server::kWrite) != 0;
    }
    // The fence's entry is a write (it changes nothing but the log).
    if (!argv.empty() && argv[0] == kGroupFenceVerb) p.write = true;
    p.argv = std::move(argv);
    p.done = std::move(done);
    p.policy = policy;
    p.pipeline = in_pipeline;
    p.timer = std::make_unique<asio::steady_timer>(io_);
    // A local read waits only briefly for this member to catch up: the
    // leader can serve it instead. A blocking command: its own timeout.
    p.timer->expires_after(policy.local ? std::chrono::milliseconds(200)
                           : p.blocking ? std::chrono::milliseconds(block_ms)
                                        : options_.request_timeout);
    if (p.blocking && block_ms == 0) p.timer.reset();  // waits until served, or leadership ends
    if (p.timer) {
      p.timer->async_wait([this, id](const asio::error_code& ec) {
        if (!ec) on_timeout(id);
      });
    }
    const bool local = policy.local;
    if (local) p.phase = Pending::Phase::kLocal;
    if (in_pipeline.second != 0) {
      Pipeline& pl = pipelines_.at(in_pipeline);
      if (pl.unevaluated != 0 || !pl.in_line.empty()) {
        p.phase = Pending::Phase::kInLine;
        pending_.emplace(id, std::move(p));
        pl.in_line.push_back(id);
        return;
      }
      pl.unevaluated = id;
    }
    pending_.emplace(id, std::move(p));
    if (local) {
      try_local(id);
    } else {
      begin(id);
    }
    if (in_pipeline.second != 0) pipeline_step(in_pipeline);
  });
}

void ReplicaGroups::Impl::pipeline_step(PipelineKey key) {
  auto it = pipelines_.find(key);
  if (it == pipelines_.end()) return;
  Pipeline& pl = it->second;
  if (pl.stepping) {
    pl.step_again = true;
    return;
  }
  pl.stepping = true;
  do {
    pl.step_again = false;
    if (pl.unevaluated != 0) {
      auto p = pending_.find(pl.unevaluated);
      const bool evaluated = p == pending_.end() || (p->second.phase != Pending::Phase::kBarrier &&
                                                     p->second.phase != Pending::Phase::kParked);
      if (!evaluated) break;
      pl.unevaluated = 0;
    }
    if (pl.broken || pl.in_line.empty()) break;
    const uint64_t next = pl.in_line.front();
    pl.in_line.pop_front();
    auto n = pending_.find(next);
    if (n == pending_.end()) {
      pl.step_again = true;
      continue;
    }
    n->second.phase = Pending::Phase::kBarrier;
    pl.unevaluated = next;
    begin(next);
    pl.step_again = true;  // it may be evaluated already
  } while (pl.step_again);
  pl.stepping = false;
}

void ReplicaGroups::Impl::break_pipeline(PipelineKey key) {
  auto it = pipelines_.find(key);
  if (it == pipelines_.end() || it->second.broken) return;
  Pipeline& pl = it->second;
  pl.broken = true;
  const auto refuse = [this](uint64_t id) { finish(id, pipeline_refused()); };
  std::deque<uint64_t> in_line;
  in_line.swap(pl.in_line);
  for (uint64_t id : in_line) refuse(id);
  // Evaluated and not proposed yet (behind the one that did not run): never
  // proposed now. Begun and not evaluated yet: refused before it is.
  std::vector<uint64_t> later;
  for (const auto& [id, p] : pending_) {
    if (p.pipeline == key && p.done &&
        (p.phase == Pending::Phase::kQueued || p.phase == Pending::Phase::kBarrier ||
         p.phase == Pending::Phase::kParked)) {
      later.push_back(id);
    }
  }
  std::sort(later.begin(), later.end());
  ReplicaGroup* g = find(pl.group);
  for (uint64_t id : later) {
    auto p = pending_.find(id);
    if (p == pending_.end()) continue;
    if (g != nullptr) {
      release_latches(*g, p->second);
      auto& parked = g->parked;
      parked.erase(std::remove(parked.begin(), parked.end(), id), parked.end());
    }
    refuse(id);
  }
  if (g != nullptr && !later.empty()) unpark(*g);
}

void ReplicaGroups::Impl::on_timeout(uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end() || !it->second.done) return;
  if (it->second.blocking) {
    // Its timeout passed: the timeout reply if it waits; one being
    // evaluated answers that when it finds nothing (block_expired).
    if (it->second.phase != Pending::Phase::kBlocked) {
      it->second.block_expired = true;
      return;
    }
    if (ReplicaGroup* g = find(it->second.group)) g->blocked.erase(id);
    finish(id, GroupReply{Status::OK(), std::move(it->second.reply), {}, 0});
    return;
  }
  auto done = std::move(it->second.done);
  it->second.done = nullptr;
  if (it->second.phase == Pending::Phase::kLocal) {
    ReplicaGroup* g = find(it->second.group);
    if (g != nullptr) {
      auto& q = g->local_reads;
      q.erase(std::remove(q.begin(), q.end(), id), q.end());
    }
    const NodeId hint = g != nullptr ? g->raft->leader().value_or(NodeId()) : NodeId();
    pending_.erase(it);
    done(GroupReply{Status::Unavailable("this member has not applied what the session "
                                        "already observed: ask the leader"),
                    {},
                    hint});
    return;
  }
  if (it->second.phase == Pending::Phase::kQueued) {
    // Evaluated but not proposed yet (the loop fell that far behind): it never
    // will be now (the flush skips it), so it did not run. Its latches go.
    ReplicaGroup* g = find(it->second.group);
    if (g != nullptr) release_latches(*g, it->second);
    pending_.erase(it);
    done(GroupReply{Status::Unavailable("the replica group's leader did not propose the "
                                        "command in time; the command did not run"),
                    {},
                    {}});
    if (g != nullptr) unpark(*g);
    return;
  }
  if (it->second.phase != Pending::Phase::kCommitting) {
    // Parked, waiting for the barrier or in its pipeline's line: nothing was
    // proposed (the pipeline breaks: done's wrapper).
    ReplicaGroup* g = find(it->second.group);
    if (g != nullptr) {
      auto& q = g->parked;
      q.erase(std::remove(q.begin(), q.end(), id), q.end());
    }
    if (it->second.phase == Pending::Phase::kInLine) {
      auto pl = pipelines_.find(it->second.pipeline);
      if (pl != pipelines_.end()) {
        auto& line = pl->second.in_line;
        line.erase(std::remove(line.begin(), line.end(), id), line.end());
      }
    }
    pending_.erase(it);
    done(GroupReply{Status::Unavailable("the replica group did not confirm its leader in time "
                                        "(it may have lost its majority); the command did "
                                        "not run"),
                    {},
                    {}});
    return;
  }
  // Its entry may still commit: keep the latches until it is applied.
  done(GroupReply{Status::Timeout("no answer from the replica group within " +
                                  std::to_string(options_.request_timeout.count()) +
                                  " ms: the command may or may not have taken effect"),
                  {},
                  {}});
}

void ReplicaGroups::Impl::membership(ReplicaGroup& g, const std::vector<std::string>& argv,
                                     std::function<void(GroupReply)> done) {
  Raft& raft = *g.raft;
  if (raft.role() != Raft::Role::kLeader) {
    done(GroupReply{
        Status::Unavailable("not the leader of replica group " + std::to_string(g.id.value())),
        {},
        raft.leader().value_or(NodeId())});
    return;
  }
  const std::string verb = argv.size() > 1 ? argv[1] : "";
  if (verb == "status" && argv.size() == 2) {
    std::string config;
    for (NodeId n : raft.config()) {
      config += (config.empty() ? "" : ",") + std::to_string(n.value());
    }
    const auto pairs = [](const std::map<NodeId, LogIndex>& m) {
      std::string out;
      for (const auto& [n, i] : m) {
        out += (out.empty() ? "" : ",") + std::to_string(n.value()) + ":" + std::to_string(i.value());
      }
      return out;
    };
    // One line of `name=value` fields (coord/replica_controller.cc parses it).
    std::string line = fmt::format("leader={} commit={} config={} committed={} match={}",
                                   options_.self.value(), raft.commit_index().value(), config,
                                   raft.config_index() <= raft.commit_index() ? 1 : 0,
                                   pairs(raft.follower_match()));
    if (const auto learners = raft.learner_match(); !learners.empty()) {
      line += " learners=" + pairs(learners);
    }
    line += fmt::format(" epoch={}", g.epoch);
    // What LOCATE asked of another member shows (coord/cluster_view.cc).
    std::map<NodeId, LogIndex> applied = raft.follower_applied();
    applied[options_.self] = raft.applied_index();
    line += fmt::format(" applied={} last={}", pairs(applied), raft.log().last_index().value());
    done(GroupReply{Status::OK(), "+" + line + "\r\n", {}, raft.commit_index().value()});
    return;
  }
  std::optional<int64_t> node, epoch;
  if (argv.size() == 4) {
    node = server::parse_int64(argv[2]);
    epoch = server::parse_int64(argv[3]);
  }
  if ((verb != "add" && verb != "remove" && verb != "transfer" && verb != "learn") || !node ||
      *node <= 0 || !epoch || *epoch < 0) {
    done(GroupReply{Status::InvalidArgument("usage: " + std::string(kReplicasVerb) +
                                            " status | learn NODE EPOCH | add NODE EPOCH | "
                                            "remove NODE EPOCH | transfer NODE EPOCH"),
                    {},
                    {}});
    return;
  }
  const NodeId target(static_cast<uint64_t>(*node));
  if (!check_epoch(g, static_cast<uint64_t>(*epoch),
                   fmt::format("the step '{} {}'", verb, target.value()), g.steps_refused_epoch)) {
    publish_status(g);
    done(GroupReply{Status::Aborted(fmt::format(
                        "replica group {}: the step '{} {}' was decided on configuration epoch "
                        "{}, older than epoch {} this member knows: look at the map again",
                        g.id.value(), verb, target.value(), *epoch, g.epoch)),
                    {},
                    {}});
    return;
  }
  const bool was_learner = raft.learner_match().contains(target);
  Status s = verb == "transfer" ? raft.transfer_leadership(target)
             : verb == "learn"  ? raft.add_learner(target)
                                : raft.change_membership(target, verb == "add");
  if (s.ok() && !(verb == "learn" && was_learner)) {
    spdlog::info("replica group {} ({} shard {}): {} node {}, a replica moves", g.id.value(),
                 g.keyspace, g.shard,
                 verb == "learn"                   ? "catching up the learner"
                 : verb == "add" && was_learner    ? "promoting the caught-up learner"
                 : verb == "add"                   ? "adding"
                 : verb == "remove" && was_learner ? "dropping the learner"
                 : verb == "remove"                ? "removing"
                                                   : "handing leadership to",
                 target.value());
  }
  after_callback(g);
  if (!s.ok()) {
    // Busy: try again shortly; InvalidArgument: the step does not apply.
    done(GroupReply{s, {}, {}});
    return;
  }
  done(GroupReply{Status::OK(), "+OK\r\n", {}, raft.log().last_index().value()});
}

bool ReplicaGroups::Impl::refuse_stale_route(ReplicaGroup& g, uint64_t id) {
  Pending& p = pending_.at(id);
  if (p.routed_epoch == 0 || p.routed_epoch >= g.epoch) return false;
  ++g.routes_refused_epoch;
  publish_status(g);
  finish(id, GroupReply{Status::Aborted(fmt::format(
                            "STALEROUTE epoch {}: replica group {} ({} shard {}) is at "
                            "configuration epoch {}, newer than the map the command was routed by",
                            p.routed_epoch, g.id.value(), g.keyspace, g.shard, g.epoch)),
                        {},
                        {}});
  return true;
}

void ReplicaGroups::Impl::try_local(uint64_t id) {
  Pending& p = pending_.at(id);
  ReplicaGroup* g = find(p.group);
  if (g == nullptr || !g->raft) return;
  Raft& raft = *g->raft;
  if (refuse_stale_route(*g, id)) return;
  // Restoring a snapshot: the store may hold its state already, newer than
  // the index a read here would report; the read waits (finish_restore). A
  // member whose store lost the state waits for one (raft's state_lost).
  if (g->restoring || g->raft->state_lost() || g->state_index() < p.policy.min_index) {
    g->local_reads.push_back(id);
    return;
  }
  if (p.policy.max_staleness_ms > 0 && raft.role() != Raft::Role::kLeader) {
    auto since = std::chrono::duration_cast<std::chrono::milliseconds>(
        g->now() - raft.last_heard_from_leader());
    bool caught_up =
        raft.leader_commit_seen().value() > 0 && raft.applied_index() >= raft.leader_commit_seen();
    if (raft.quiesced() && raft.leader()) {
      // The leader said this member holds its whole log, committed, and has
      // sent nothing since; its node's last frame (a ping at least) is how
      // recently that was still true. A write after it reaches this member
      // on the same connection, before any later ping.
      const net::RaftNodeStatus s = transport_.status();
      auto it = s.last_heard.find(*raft.leader());
      if (it != s.last_heard.end()) {
        caught_up = true;
        since = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - it->second);
      }
    }
    if (!caught_up || since.count() > p.policy.max_staleness_ms) {
      finish(id, GroupReply{Status::Unavailable(
                                "this member may be staler than MAX-STALENESS allows (last "
                                "heard from its leader " +
                                std::to_string(since.count()) + " ms ago" +
                                (caught_up ? "" : ", not caught up with it") + ")"),
                            {},
                            raft.leader().value_or(NodeId())});
      return;
    }
  }
  std::vector<std::string> effects;  // a lazy erase of an expired key: not ours to propose
  std::string reply = is_scope_read(p.argv) ? *scope_read(*g, p.argv)
                                            : run_captured(g->id.value(), p.resp, p.argv, &effects);
  g->counters->reads_local.fetch_add(1, std::memory_order_relaxed);
  finish(id, GroupReply{Status::OK(), std::move(reply), {}, g->state_index()});
}

void ReplicaGroups::Impl::retry_local_reads(ReplicaGroup& g) {
  std::deque<uint64_t> waiting;
  waiting.swap(g.local_reads);
  for (uint64_t id : waiting) {
    if (pending_.contains(id)) try_local(id);
  }
}

std::string ReplicaGroups::Impl::run_captured(uint64_t scope, int resp,
                                              std::span<const std::string> argv,
                                              std::vector<std::string>* effects,
                                              bool* would_block) {
  server::ScopePin pin(scope);
  server::Session session;
  session.authenticated = true;
  session.internal = true;
  session.resp = resp;
  session.proposer = &capture_;
  session.poll_blocking = would_block != nullptr;
  std::vector<std::string_view> views(argv.begin(), argv.end());
  std::string out;
  resp::Writer writer(&out, resp);
  service_.execute(session, views, writer);
  *effects = capture_.take();
  if (would_block != nullptr) *would_block = session.would_block;
  return out;
}

bool ReplicaGroups::Impl::watch_keys(ReplicaGroup& g, uint64_t id,
                                     std::vector<std::string>* effects) {
  Pending& p = pending_.at(id);
  // Each key's TTL as watched: one that passes before EXEC counts as a
  // change (Redis 7). Read before the keys' expired records are erased, so a
  // key that expires between the two reads is seen with its TTL, passed.
  const int64_t now = server::unix_time_ms();
  p.watch_ttls.clear();
  std::string buf;
  server::ScopePin pin(g.id.value());
  for (size_t i = 1; i < p.argv.size(); ++i) {
    server::RecordView rec;
    auto live = store_.get(p.argv[i], now, &buf, &rec);
    if (!live.ok()) {
      finish(id, GroupReply{live.status(), {}, {}});
      return false;
    }
    p.watch_ttls.push_back(*live ? rec.expire_ms : 0);
  }
  // An expired key is erased when watched, as any read of it does (a lazy
  // erase through the log): its erase is then no change after the watch.
  std::vector<std::string> exists{"EXISTS"};
  exists.insert(exists.end(), p.argv.begin() + 1, p.argv.end());
  run_captured(g.id.value(), p.resp, exists, effects);
  if (effects->empty()) p.reply = watch_reply(g.raft->applied_index().value(), p.watch_ttls);
  return true;
}

std::optional<std::string> ReplicaGroups::Impl::scope_read(const ReplicaGroup& g,
                                                           const std::vector<std::string>& argv) {
  if (!is_scope_read(argv)) return std::nullopt;
  if (argv[0] == kGroupCountVerb || argv[0] == kGroupRandomVerb) {
    if (argv.size() != 1) return "-ERR usage: " + argv[0] + "\r\n";
    if (argv[0] == kGroupCountVerb) return encode_key_counts(store_.scope_counts(g.id.value()));
    RandomKeyOffer offer;
    offer.keys = store_.scope_counts(g.id.value()).keys;
    auto picked = server::random_key(store_, server::unix_time_ms(), g.id.value());
    if (!picked.ok()) return "-ERR " + picked.status().message() + "\r\n";
    offer.key = std::move(picked).value();
    return encode_random_offer(offer);
  }
  auto request = decode_page_request(argv);
  if (!request.ok()) return "-ERR " + request.status().message() + "\r\n";
  server::ScopePin pin(g.id.value());  // positions in the group's scope (Store::position_of)
  auto page = server::scan_key_page(store_, *request, server::unix_time_ms(), g.id.value());
  if (!page.ok()) return "-ERR " + page.status().message() + "\r\n";
  NodeScanPage reply;
  reply.node = options_.self;
  reply.page = std::move(page).value();
  return encode_node_page(reply);
}

std::string ReplicaGroups::Impl::watch_reply(uint64_t index, const std::vector<int64_t>& ttls) {
  std::string line = "+" + std::to_string(index);
  for (int64_t ttl : ttls) line += " " + std::to_string(ttl);
  return line + "\r\n";
}

Result<bool> ReplicaGroups::Impl::watched_changed(const ReplicaGroup& g,
                                                  const std::vector<std::string>& argv) const {
  const auto malformed = [] {
    return Status::InvalidArgument("malformed " + std::string(kGroupExecVerb));
  };
  const auto n = argv.size() > 1 ? server::parse_int64(argv[1]) : std::nullopt;
  if (!n || *n < 0 || static_cast<uint64_t>(*n) > (argv.size() - 2) / 3) return malformed();
  const size_t exec_at = 2 + 3 * static_cast<size_t>(*n);
  if (exec_at >= argv.size() || argv[exec_at] != server::kExecVerb) return malformed();
  const int64_t now = server::unix_time_ms();
  bool changed = false;
  for (size_t i = 2; i < exec_at; i += 3) {
    const auto index = server::parse_int64(argv[i + 1]);
    const auto ttl = server::parse_int64(argv[i + 2]);
    if (!index || !ttl || *index < 0) return malformed();
    // Changed: an effect on the key applied after the entry the watch saw
    // (or perhaps so: its last change is no longer known here), or its TTL
    // as watched has passed.
    changed = changed || g.last_change(argv[i]) > static_cast<uint64_t>(*index) ||
              (*ttl != 0 && *ttl <= now);
  }
  return changed;
}

size_t ReplicaGroups::Impl::exec_args(const std::vector<std::string>& argv) {
  // Called once watched_changed() accepted argv.
  const size_t n = static_cast<size_t>(*server::parse_int64(argv[1]));
  return argv.size() - 2 - 3 * n;
}

void ReplicaGroups::Impl::begin(uint64_t id) {
  Pending& p = pending_.at(id);
  ReplicaGroup* g = find(p.group);
  const Raft& raft = *g->raft;
  // A write needs no barrier before it is evaluated once this leader has
  // committed an entry of its term and applied everything committed: its
  // state then holds every committed effect (its own in flight are latched),
  // and an effect it proposes commits only if it still leads. A deposed
  // leader's proposal never commits. A write that changes nothing answers
  // from state, like a read: it passes a barrier before it replies.
  if (p.write && raft.log().term_at(raft.commit_index()) == raft.term() &&
      raft.applied_index() == raft.commit_index()) {
    evaluate(id);
    return;
  }
  ClientRequest barrier;
  barrier.id = RequestId(id);
  barrier.op = ClientOp::kRead;
  g->raft->on_request(barrier);
  after_callback(*g);
}

void ReplicaGroups::Impl::on_reply(GroupId group, RequestId rid, ClientResponse response) {
  const uint64_t id = rid.value();
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending& p = it->second;
  ReplicaGroup* g = find(group);
  if (g == nullptr) return;
  if (p.phase == Pending::Phase::kCommitting) {
    // The entry was applied here (kOk), or certainly not appended (kFail).
    release_latches(*g, p);
    if (response.outcome == ClientResponse::Outcome::kOk) {
      g->counters->writes.fetch_add(1, std::memory_order_relaxed);
      finish(id, GroupReply{Status::OK(), std::move(p.reply), {}, p.index});
    } else {
      finish(id, GroupReply{Status::Unavailable("not the leader of replica group " +
                                                std::to_string(group.value())),
                            {},
                            response.leader_hint.value_or(NodeId())});
    }
    unpark(*g);
    return;
  }
  if (p.phase != Pending::Phase::kBarrier && p.phase != Pending::Phase::kConfirming) return;
  if (response.outcome != ClientResponse::Outcome::kOk) {
    finish(id, GroupReply{Status::Unavailable("not the leader of replica group " +
                                              std::to_string(group.value())),
                          {},
                          response.leader_hint.value_or(NodeId())});
    return;
  }
  p.barrier_passed = true;
  if (p.phase == Pending::Phase::kConfirming) {
    g->counters->reads_barrier.fetch_add(1, std::memory_order_relaxed);
    finish(id, GroupReply{Status::OK(), std::move(p.reply), {}, g->raft->applied_index().value()});
    return;
  }
  evaluate(id);
}

void ReplicaGroups::Impl::evaluate(uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  const PipelineKey key = it->second.pipeline;
  evaluate_command(id);
  if (key.second != 0) pipeline_step(key);
}

void ReplicaGroups::Impl::evaluate_command(uint64_t id) {
  Pending& p = pending_.at(id);
  ReplicaGroup* g = find(p.group);
  if (g == nullptr || !g->raft) return;
  if (g->raft->role() != Raft::Role::kLeader) {
    finish(id, GroupReply{Status::Unavailable("not the leader of replica group " +
                                              std::to_string(p.group.value())),
                          {},
                          g->raft->leader().value_or(NodeId())});
    return;
  }
  if (refuse_stale_route(*g, id)) return;
  if (p.all_keys && !g->latches.empty()) {
    p.phase = Pending::Phase::kParked;
    g->parked.push_back(id);
    return;
  }
  for (const std::string& k : p.keys) {
    if (g->latches.contains(k)) {
      p.phase = Pending::Phase::kParked;
      g->parked.push_back(id);
      return;
    }
  }
  std::vector<std::string> effects;
  std::string out;
  if (p.argv.size() == 1 && p.argv[0] == kFlushGroupVerb) {
    // Every record of the group, erased as one effect (a collection's
    // elements go with its record: its generation is retired).
    std::vector<std::string> keys;
    g->for_each_record(
        [&](std::string_view key, const server::RecordView&) { keys.emplace_back(key); });
    if (!keys.empty()) {
      replication::Mutation erase;
      erase.time_ms = 0;
      for (const std::string& k : keys) {
        erase.effects.push_back({replication::Effect::Kind::kErase, k, {}, 0});
      }
      effects.push_back(replication::encode_mutation(erase));
    }
    out = "+OK\r\n";
  } else if (!p.argv.empty() && p.argv[0] == kGroupFenceVerb) {
    // An entry that erases the expired records under the prefix and nothing
    // else; the reply counts the others (kGroupFenceVerb).
    const std::string& prefix = p.argv[2];
    const int64_t now = server::unix_time_ms();
    std::vector<std::string> expired;
    uint64_t live = 0;
    Status scanned = store_.scan_scope(g->id.value(), prefix, 0,
                                       [&](std::string_view key, const server::RecordView& rec) {
                                         if (!key.starts_with(prefix)) return false;
                                         if (rec.expire_ms != 0 && rec.expire_ms <= now) {
                                           expired.emplace_back(key);
                                         } else {
                                           ++live;
                                         }
                                         return true;
                                       });
    if (!scanned.ok()) {
      finish(id, GroupReply{scanned, {}, {}});
      return;
    }
    replication::Mutation fence;
    fence.time_ms = now;
    for (const std::string& k : expired) {
      fence.effects.push_back({replication::Effect::Kind::kErase, k, {}, 0});
    }
    effects.push_back(replication::encode_mutation(fence));
    out = ":" + std::to_string(live) + "\r\n";
  } else if (!p.argv.empty() && p.argv[0] == kGroupWatchVerb) {
    if (!watch_keys(*g, id, &effects)) return;
    out = p.reply;
  } else if (is_scope_read(p.argv)) {
    out = *scope_read(*g, p.argv);
  } else if (!p.argv.empty() && p.argv[0] == kGroupExecVerb) {
    auto changed = watched_changed(*g, p.argv);
    if (!changed.ok()) {
      finish(id, GroupReply{changed.status(), {}, {}});
      return;
    }
    if (*changed) {
      resp::Writer(&out, p.resp).null_array();  // EXEC's answer when a watched key changed
    } else {
      out = run_captured(g->id.value(), p.resp,
                         std::span(p.argv).subspan(p.argv.size() - exec_args(p.argv)), &effects);
    }
  } else {
    bool would_block = false;
    out =
        run_captured(g->id.value(), p.resp, p.argv, &effects, p.blocking ? &would_block : nullptr);
    // Woken by an effect that left one of its keys of another type: it
    // keeps waiting, as in Redis (WRONGTYPE only when it first looks).
    const bool other_type = p.woken && effects.empty() && out.starts_with("-WRONGTYPE");
    if ((would_block || other_type) && effects.empty()) {
      if (other_type) {
        // Its reply if it times out: a null (BLMOVE, BRPOPLPUSH) or a null array.
        out.clear();
        resp::Writer w(&out, p.resp);
        const server::CommandSpec* spec = spec_of(p.argv);
        if (spec != nullptr && (spec->name == "blmove" || spec->name == "brpoplpush")) {
          w.null();
        } else {
          w.null_array();
        }
      }
      if (p.block_expired) {
        finish(id, GroupReply{Status::OK(), std::move(out), {}, 0});  // the timeout reply
        return;
      }
      // Its keys are empty: it waits here, in arrival order, until an effect
      // applied on one of them (wake_blocked), its timeout, an unblock, or
      // the end of this leader's office.
      p.reply = std::move(out);
      p.phase = Pending::Phase::kBlocked;
      g->blocked.insert(id);
      return;
    }
  }
  if (effects.empty()) {
    if (!p.barrier_passed) {
      // Evaluated without the barrier (a write that changed nothing): confirm
      // leadership before this answer, read from state, goes out.
      p.reply = std::move(out);
      p.phase = Pending::Phase::kConfirming;
      ClientRequest barrier;
      barrier.id = RequestId(id);
      barrier.op = ClientOp::kRead;
      g->raft->on_request(barrier);
      after_callback(*g);
      return;
    }
    g->counters->reads_barrier.fetch_add(1, std::memory_order_relaxed);
    finish(id, GroupReply{Status::OK(), std::move(out), {}, g->raft->applied_index().value()});
    return;
  }
  auto merged = merge_mutations(std::move(effects));
  if (!merged.ok()) {
    finish(id, GroupReply{Status::Internal("cannot encode the command's effect: " +
                                           merged.status().message()),
                          {},
                          {}});
    return;
  }
  if (merged->size() > options_.max_write_bytes) {
    // Refused before it is proposed, so nothing happened: an entry this large
    // holds the node's data loop and its peer connections long enough for
    // the other groups' followers to time out (32 MB did, here).
    finish(id, GroupReply{Status::InvalidArgument(fmt::format(
                              "the write's effect is {} bytes, over the {}-byte limit of a "
                              "replicated write (statekv server --group-max-write-bytes)",
                              merged->size(), options_.max_write_bytes)),
                          {},
                          {}});
    return;
  }
  // A write names its tracking client (a read that erased an expired key
  // does not: Redis tells every tracker, the reader too, of an expiry).
  if (p.write || p.all_keys) replication::append_write_origin(*merged, p.origin);
  // Latch what the effect writes (not only the command's keys: a lazy erase).
  auto decoded = replication::DecodedMutation::decode(*merged);
  if (decoded.ok()) {
    for (const auto& e : decoded->mutation().effects) {
      std::string k(e.key);
      ++g->latches[k];
      p.latched.push_back(std::move(k));
    }
  }
  p.reply = std::move(out);
  p.phase = Pending::Phase::kQueued;
  p.term = g->raft->term().value();
  p.proposal = std::move(merged).value();
  if (p.blocking) {
    // Its pop is proposed: from here it is a write like any, answered when
    // applied or after request_timeout.
    p.blocking = false;
    p.timer = std::make_unique<asio::steady_timer>(io_);
    p.timer->expires_after(options_.request_timeout);
    p.timer->async_wait([this, id](const asio::error_code& ec) {
      if (!ec) on_timeout(id);
    });
  }
  // Proposed with the other writes evaluated for the group before the flush
  // runs: the commands already waiting on the loop (other clients') join the
  // batch, and the pass costs one log record and one AppendEntries per
  // follower instead of one per write.
  g->queued.push_back(id);
  if (!g->flush_posted) {
    g->flush_posted = true;
    asio::post(io_, [this, group = g->id] { propose_queued(group); });
  }
}

void ReplicaGroups::Impl::propose_queued(GroupId group) {
  ReplicaGroup* g = find(group);
  if (g == nullptr || !g->raft) return;  // stopped: its commands were answered
  g->flush_posted = false;
  std::vector<uint64_t> queued;
  queued.swap(g->queued);
  const Raft& raft = *g->raft;
  std::vector<uint64_t> ids;
  std::vector<ClientRequest> writes;
  bool refused = false;
  for (uint64_t id : queued) {
    auto it = pending_.find(id);
    if (it == pending_.end() || it->second.phase != Pending::Phase::kQueued) continue;
    Pending& p = it->second;
    if (raft.role() != Raft::Role::kLeader || raft.term().value() != p.term) {
      // Evaluated in a term this member no longer leads (lost_leadership
      // refuses them first; this is the guard): proposing it now could write
      // an effect computed from state a later leader has changed.
      release_latches(*g, p);
      finish(id, GroupReply{Status::Unavailable("lost the leadership of replica group " +
                                                std::to_string(group.value())),
                            {},
                            raft.leader().value_or(NodeId())});
      refused = true;
      continue;
    }
    p.phase = Pending::Phase::kCommitting;
    ClientRequest write;
    write.id = RequestId(id);
    write.op = ClientOp::kWrite;
    write.value = std::move(p.proposal);
    p.proposal.clear();
    writes.push_back(std::move(write));
    ids.push_back(id);
  }
  if (refused) unpark(*g);  // their latches are gone (refused as not leader there)
  if (writes.empty()) return;
  const uint64_t before = raft.log().last_index().value();
  g->raft->on_requests(writes);
  // A leader appends the batch at once, in order: each entry's index is its
  // session's new position. A refused batch (a transfer under way) is failed
  // by raft's replies, which come later (on_reply).
  const bool appended = raft.log().last_index().value() == before + writes.size();
  if (appended) {
    g->counters->proposals.fetch_add(1, std::memory_order_relaxed);
    g->counters->proposed.fetch_add(writes.size(), std::memory_order_relaxed);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    Pending& p = pending_.at(ids[i]);  // raft's replies are posted, never inline
    if (appended) p.index = before + 1 + i;
    if (p.argv[0] == kGroupWatchVerb) {
      // The watch saw the state after the erase of its expired keys.
      p.reply = watch_reply(p.index, p.watch_ttls);
    }
  }
  after_callback(*g);
}

void ReplicaGroups::Impl::finish(uint64_t id, GroupReply reply) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  if (!it->second.token.empty()) {
    auto t = blocked_tokens_.find(it->second.token);
    if (t != blocked_tokens_.end() && t->second == id) blocked_tokens_.erase(t);
  }
  auto done = std::move(it->second.done);
  if (it->second.timer) it->second.timer->cancel();
  pending_.erase(it);
  if (done) done(std::move(reply));
}

void ReplicaGroups::Impl::release_latches(ReplicaGroup& g, Pending& p) {
  for (const std::string& k : p.latched) {
    auto it = g.latches.find(k);
    if (it != g.latches.end() && --it->second <= 0) g.latches.erase(it);
  }
  p.latched.clear();
}

void ReplicaGroups::Impl::unpark(ReplicaGroup& g) {
  std::deque<uint64_t> waiting;
  waiting.swap(g.parked);
  for (uint64_t id : waiting) {
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;
    it->second.phase = Pending::Phase::kBarrier;
    evaluate(id);
  }
}

void ReplicaGroups::Impl::lost_leadership(ReplicaGroup& g) {
  // Proposed entries may still commit under the next leader (raft answers them
  // when applied here) or be replaced by its entries (raft fails them then, and
  // their calls retry at the new leader); cut off from everyone, they time out. Nothing evaluated here from now on relies on the
  // latches: a new term's barrier waits for everything committed before it.
  g.latches.clear();
  for (auto& [rid, p] : pending_) {
    if (p.group == g.id) p.latched.clear();
  }
  // Blocked commands did not run: their routers hand them on to the next
  // leader (coordinator.h, "Blocking commands").
  std::set<uint64_t> blocked;
  blocked.swap(g.blocked);
  g.touched.clear();
  for (uint64_t id : blocked) {
    finish(id, GroupReply{Status::Unavailable("lost the leadership of replica group " +
                                              std::to_string(g.id.value()) +
                                              " while the command was blocked"),
                          {},
                          g.raft ? g.raft->leader().value_or(NodeId()) : NodeId()});
  }
  std::deque<uint64_t> waiting;
  waiting.swap(g.parked);
  // Evaluated and not proposed yet: never proposed now (in a later term its
  // effect could overwrite a newer leader's), so they did not run either.
  for (uint64_t id : g.queued) waiting.push_back(id);
  g.queued.clear();
  for (uint64_t id : waiting) {
    finish(id, GroupReply{Status::Unavailable("lost the leadership of replica group " +
                                              std::to_string(g.id.value())),
                          {},
                          g.raft ? g.raft->leader().value_or(NodeId()) : NodeId()});
  }
  // Timed-out writes whose latches are gone need no more bookkeeping.
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.group == g.id && !it->second.done) {
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

void ReplicaGroups::Impl::wake_blocked(ReplicaGroup& g) {
  std::unordered_set<std::string> touched;
  touched.swap(g.touched);
  if (g.blocked.empty() || g.raft->role() != Raft::Role::kLeader) return;
  std::vector<uint64_t> ready;
  for (uint64_t id : g.blocked) {
    auto it = pending_.find(id);
    if (it == pending_.end()) continue;
    for (const std::string& k : it->second.keys) {
      if (touched.contains(k)) {
        ready.push_back(id);
        break;
      }
    }
  }
  if (ready.empty()) return;
  for (uint64_t id : ready) {
    g.blocked.erase(id);
    pending_.at(id).phase = Pending::Phase::kBarrier;
    pending_.at(id).woken = true;
  }
  // After this callback (never inside the protocol's): in arrival order. The
  // first to pop latches the key; those behind it park until its effect is
  // applied, then look again (and block again, in their place, if nothing
  // is left).
  asio::post(io_, [this, ready = std::move(ready)] {
    for (uint64_t id : ready) {
      auto it = pending_.find(id);
      if (it == pending_.end() || it->second.phase != Pending::Phase::kBarrier) continue;
      evaluate(id);
    }
  });
}

void ReplicaGroups::Impl::unblock(ReplicaGroup& g, const std::string& token, bool error) {
  auto t = blocked_tokens_.find(token);
  if (t == blocked_tokens_.end()) return;
  const uint64_t id = t->second;
  auto it = pending_.find(id);
  if (it == pending_.end() || it->second.phase != Pending::Phase::kBlocked) return;
  g.blocked.erase(id);
  finish(id, GroupReply{Status::OK(),
                        error ? std::string("-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n")
                              : std::move(it->second.reply),
                        {},
                        0});
}

bool ReplicaGroups::Impl::expire(std::string_view key) {
  std::shared_ptr<const RoutingTable> table;
  {
    std::lock_guard<std::mutex> lock(mu_);
    table = table_;
  }
  if (!table) return false;
  const Route r = table->route(key);
  if (r.keyspace->spec.replication.kind != meta::Replication::kConsensus) return false;
  const GroupId group = group_id(r.keyspace->spec.name, r.shard);
  asio::post(io_, [this, group, key = std::string(key)]() mutable {
    ReplicaGroup* g = find(group);
    if (g == nullptr || !g->raft || g->raft->role() != Raft::Role::kLeader) return;
    if (!expiring_.insert(key).second) return;
    // Reading a key found expired erases it through the group (lazy expiry
    // on the leader): the erase is logged and applied on every member.
    execute(
        group, 2, {"EXISTS", key}, ReadPolicy{},
        [this, key](GroupReply) {
          expiring_.erase(key);  // on the loop: done runs there
        },
        replication::WriteOrigin{}, /*routed_epoch=*/0, PipelinePlace{});
  });
  return true;
}

void ReplicaGroups::Impl::run_after(std::chrono::milliseconds delay, std::function<void(bool)> fn) {
  asio::post(io_, [this, delay, fn = std::move(fn)]() mutable {
    if (stopping_) {
      fn(false);
      return;
    }
    const uint64_t id = ++next_delayed_;
    auto timer = std::make_unique<asio::steady_timer>(io_);
    timer->expires_after(delay);
    timer->async_wait([this, id](const asio::error_code& ec) {
      if (ec) return;
      auto it = delayed_.find(id);
      if (it == delayed_.end()) return;
      auto f = std::move(it->second.second);
      delayed_.erase(it);
      f(true);
    });
    delayed_.emplace(id, std::make_pair(std::move(timer), std::move(fn)));
  });
}

void ReplicaGroups::Impl::wait_replicas(GroupId group, uint64_t index, int64_t numreplicas,
                                        std::chrono::milliseconds timeout,
                                        std::function<void(GroupReply)> done) {
  // Behind the writes it waits for, when the same pass sent them.
  HeldPosts::post(io_, [this, group, index, numreplicas, timeout,
                        done = std::move(done)]() mutable {
    ReplicaGroup* g = stopping_ ? nullptr : find(group);
    if (g == nullptr || !g->raft || g->raft->role() != Raft::Role::kLeader) {
      done(GroupReply{
          Status::Unavailable("not the leader of replica group " + std::to_string(group.value())),
          {},
          g != nullptr && g->raft ? g->raft->leader().value_or(NodeId()) : NodeId()});
      return;
    }
    const int64_t now = g->replicas_at(index);
    if (now >= numreplicas) {
      done(GroupReply{Status::OK(), ":" + std::to_string(now) + "\r\n", {}});
      return;
    }
    ReplicaGroup::Waiter w;
    w.id = ++next_request_;
    w.index = index;
    w.numreplicas = numreplicas;
    w.done = std::move(done);
    if (timeout.count() > 0) {
      w.timer = std::make_unique<asio::steady_timer>(io_);
      w.timer->expires_after(timeout);
      w.timer->async_wait([this, group, id = w.id](const asio::error_code& ec) {
        if (ec) return;
        ReplicaGroup* g = find(group);
        if (g == nullptr) return;
        for (auto it = g->waiters.begin(); it != g->waiters.end(); ++it) {
          if (it->id != id) continue;
          auto done = std::move(it->done);
          const uint64_t index = it->index;
          g->waiters.erase(it);
          done(GroupReply{Status::OK(), ":" + std::to_string(g->replicas_at(index)) + "\r\n", {}});
          return;
        }
      });
    }
    g->waiters.push_back(std::move(w));
  });
}

size_t ReplicaGroups::Impl::hand_over_leadership(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    std::promise<size_t> leading;
    auto count = leading.get_future();
    asio::post(io_, [this, &leading] {
      handing_over_ = true;
      size_t n = 0;
      for (auto& [id, g] : groups_) {
        if (!g->raft || g->raft->role() != Raft::Role::kLeader) continue;
        ++n;
        const std::optional<NodeId> target = stop_handover_target({
            .self = options_.self,
            .members = g->members,
            .match = g->raft->follower_match(),
            .learners = {},  // not a voter: never the stop's target
            .last_index = g->raft->log().last_index(),
            .reachable = peer_reachable(),
            // The follower furthest along: one receiving a snapshot is not.
            .receiving_snapshot = {},
        });
        if (target && g->raft->transfer_leadership(*target).ok()) {
          spdlog::info(
              "replica group {} ({} shard {}): handing leadership to node {} before "
              "this node stops",
              id.value(), g->keyspace, g->shard, target->value());
          after_callback(*g);
        }
      }
      leading.set_value(n);
    });
    const size_t n = count.get();
    if (n == 0 || std::chrono::steady_clock::now() >= deadline) return n;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool ReplicaGroups::Impl::hosts(GroupId group) const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_.contains(group);
}

std::optional<NodeId> ReplicaGroups::Impl::leader(GroupId group) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = status_.find(group);
  if (it == status_.end()) return std::nullopt;
  return it->second.first.leader;
}

std::vector<GroupStatus> ReplicaGroups::Impl::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<GroupStatus> out;
  for (const auto& [id, entry] : status_) {
    GroupStatus s = entry.first;
    s.reads_barrier = entry.second->reads_barrier.load(std::memory_order_relaxed);
    s.reads_local = entry.second->reads_local.load(std::memory_order_relaxed);
    s.writes = entry.second->writes.load(std::memory_order_relaxed);
    s.proposals = entry.second->proposals.load(std::memory_order_relaxed);
    s.proposed = entry.second->proposed.load(std::memory_order_relaxed);
    out.push_back(std::move(s));
  }
  return out;
}

// ------------------------------------------------------------------ facade

ReplicaGroups::ReplicaGroups(ReplicaGroupsOptions options, net::RaftNode& transport,
                             server::Service& service)
    : impl_(std::make_unique<Impl>(std::move(options), transport, service)) {}

ReplicaGroups::~ReplicaGroups() {
  // Everything of the groups lives on the node's data loop: stopped there,
  // then destroyed there behind every handler already queued for it (a
  // cancelled timer's wait, a reply, a durability report), so none runs on a
  // destroyed Impl. Destroyed on the loop itself (the last holder was a
  // handler there), nothing can wait: the Impl goes when the loop gets to it.
  asio::io_context& loop = impl_->loop();
  std::shared_ptr<Impl> impl(std::move(impl_));
  if (loop.stopped()) {  // no loop any more (its RaftNode went first)
    impl->shutdown();
    return;
  }
  if (loop.get_executor().running_in_this_thread()) {
    impl->shutdown();
    asio::post(loop, [impl = std::move(impl)]() mutable { impl.reset(); });
    return;
  }
  std::promise<void> stopped;
  asio::post(loop, [&] {
    impl->shutdown();
    stopped.set_value();
  });
  stopped.get_future().wait();
  std::promise<void> gone;
  asio::post(loop, [&gone, impl = std::move(impl)]() mutable {
    impl.reset();
    gone.set_value();
  });
  gone.get_future().wait();
}

void ReplicaGroups::on_table(std::shared_ptr<const RoutingTable> table) {
  impl_->on_table(std::move(table));
}

void ReplicaGroups::execute(GroupId group, int resp, std::vector<std::string> argv,
                            ReadPolicy policy, std::function<void(GroupReply)> done,
                            replication::WriteOrigin origin, uint64_t routed_epoch,
                            PipelinePlace place) {
  impl_->execute(group, resp, std::move(argv), policy, std::move(done), origin, routed_epoch,
                 place);
}

bool ReplicaGroups::hosts(GroupId group) const {
  return impl_->hosts(group);
}

size_t ReplicaGroups::hand_over_leadership(std::chrono::milliseconds limit) {
  return impl_->hand_over_leadership(limit);
}

void ReplicaGroups::wait_replicas(GroupId group, uint64_t index, int64_t numreplicas,
                                  std::chrono::milliseconds timeout,
                                  std::function<void(GroupReply)> done) {
  impl_->wait_replicas(group, index, numreplicas, timeout, std::move(done));
}

bool ReplicaGroups::expire(std::string_view key) {
  return impl_->expire(key);
}

void ReplicaGroups::run_after(std::chrono::milliseconds delay, std::function<void(bool)> fn) {
  impl_->run_after(delay, std::move(fn));
}

std::optional<NodeId> ReplicaGroups::leader(GroupId group) const {
  return impl_->leader(group);
}

std::vector<GroupStatus> ReplicaGroups::status() const {
  return impl_->status();
}

size_t ReplicaGroups::snapshot_reads_waiting() const {
  return impl_->snapshot_reads_waiting();
}

std::vector<NodeId> ReplicaGroups::peers_receiving_snapshot() const {
  return impl_->peers_receiving_snapshot();
}

}  // namespace statekv::coord
