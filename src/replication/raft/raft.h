// Raft consensus (Ongaro & Ousterhout; Ongaro's thesis) as a sans-IO state
// machine. It orders commands and applies the committed ones to a StateMachine
// it is handed (replication/state_machine.h) and never looks inside them.
// RaftKv (below) is raft over a key-value register map (kv_state_machine.h): it
// implements the ReplicationProtocol concept of replication/env.h, so the
// simulator (sim/) and the real runtime (net/) drive it unchanged.
//
// What it does:
//   * leader election with randomised timeouts drawn from env.random(), PreVote
//     (a node asks "would you vote for me?" before bumping its term, so a node
//     that was cut off cannot depose a working leader when it comes back) and
//     CheckQuorum (a leader that has not heard from a majority within an
//     election timeout steps down, so clients stop waiting on it);
//   * log replication with batching (up to max_batch entries per AppendEntries;
//     a host that proposes a pass's requests together through on_requests gets
//     them persisted as one record and sent as one AppendEntries per follower)
//     and pipelining (up to max_inflight AppendEntries in flight per follower,
//     next_index advanced optimistically; a reject carries a conflict hint and
//     the leader backs off a term at a time);
//   * commit by majority match on entries of the current term (§5.4.2), apply in
//     log order; a write, cas or delete is answered when its entry is applied on
//     the node that accepted it;
//   * snapshots: once snapshot_threshold entries (or entries holding
//     snapshot_threshold_bytes) were applied past the last snapshot, the
//     state machine is snapshotted (StateMachine::snapshot), the log compacted, and
//     the whole node state written as one checkpoint record (Env::persist_checkpoint) that replaces
//     every earlier record; a follower that needs compacted entries gets the snapshot instead,
//     in InstallSnapshot chunks of at most snapshot_chunk_bytes, one in flight per follower:
//     the follower acknowledges each (InstallSnapshotReply with the bytes it holds), stages
//     them, and restores and checkpoints only when the last one arrives. The leader pins the
//     snapshot it started sending (a newer one does not restart the transfer) and resumes
//     from whatever offset the follower reports (a lost, duplicated or reordered chunk costs
//     one resend); the follower drops its staged chunks on a new term or another snapshot,
//     so a new leader's transfer starts over;
//   * linearizable reads by ReadIndex (thesis §6.4): the leader notes its commit
//     index, confirms it is still leader by a heartbeat round a majority echoes,
//     and answers once it has applied up to that index. There are no lease reads:
//     they rely on a bound on clock drift that statekv does not state or
//     enforce yet.
//
// Durability: persist before send. Term and vote (HardState) and log entries
// are appended through Env::persist (records.h). Any message that promises
// durable state — a granted vote, a successful AppendEntries reply, a candidate's
// RequestVote (its own vote must be durable before it can count it) — is held
// back until on_persisted covers every record appended before it. A leader
// counts its own log towards a majority only up to the index it knows durable.
//
// Client answers: kFail means "certainly did not happen": a request to a node
// that is not leader (with leader_hint when known), a cas whose expectation did
// not hold, a read whose leader lost office before confirming it. A write whose
// leader loses office is never failed (its entry may still commit): it is
// answered if that entry is applied here, otherwise the client times out.
//
// Leadership transfer (transfer_leadership): the leader stops taking requests,
// brings the target's log up to date, and sends it TimeoutNow; the target
// campaigns at once without PreVote. A transfer not done within an election
// timeout is abandoned (checked on the CheckQuorum period, so within two).
//
// Membership changes, one server at a time (thesis §4.1) through
// change_membership: the new member list is a kConfig log entry that takes
// effect as soon as it is appended (on every node: a truncated config entry
// reverts it); a leader proposes one only after an entry of its own term has
// committed (the fix for the single-server-change bug, raft-dev 2015) and
// while no earlier change is uncommitted. A leader that removed itself keeps
// leading until the change commits, not counting itself, then steps down; a
// node outside its own latest config never campaigns.
//
// Quiescence (RaftOptions::quiesce; CockroachDB's, etcd's "hibernation"): a
// group with nothing to do sends nothing. When every member holds the leader's
// whole log, committed, with no read, transfer or change pending, the leader's
// next heartbeat carries `quiesce` and it stops its heartbeat and CheckQuorum
// timers; a follower that accepts it stops its election timer. Anything wakes
// the group again: a request or membership change or transfer at the leader,
// any message other than an answer to its heartbeats, an AppendEntries without
// the flag at a follower. Safety does not depend on timers, so quiescence
// changes only liveness, which the host keeps: a quiesced follower cannot tell
// a silent leader from a dead one, so the host, which hears every peer node
// (one heartbeat per node pair, not per group), calls on_peer_down(leader)
// when the leader's node goes quiet; the follower then campaigns after its
// election timeout as usual. A vote request reaching a quiesced member wakes it
// (and a pre-vote from its own leader, restarted, finds it willing to vote).
//
// Learners (thesis §4.2.1, "catching up new servers"): add_learner has the
// leader replicate its log (or snapshot) to a node outside the config, which
// counts toward nothing — not commit, not ReadIndex rounds, not CheckQuorum,
// not votes (it is not asked, and never campaigns: it is outside its config).
// change_membership(node, add) then promotes it once it is within
// learner_catch_up entries of the leader's log, so a slow joiner never sits in
// the majority while it catches up. Learners are the leader's volatile state:
// a new leader has none (whoever drives the move adds the learner again).
//
// A machine that keeps its own state (RaftOptions::machine_keeps_state;
// CockroachDB and TiKV keep their state machines so): copying the whole state
// into the log every snapshot_threshold entries costs O(state) per compaction,
// which a machine whose state is durable on its own need not pay. The host
// makes the machine's state durable through some applied index (RocksDB: a
// memtable flush, for every group at once) and calls compact(index): the log
// is dropped through it and the checkpoint record holds no state. A restart
// starts from that point without restore(): the machine's kept state already
// reflects it (and possibly later entries: applying those again must leave
// the same state, which effects — puts and erases of whole values — do). A
// follower that needs compacted entries gets the machine's state as of the
// leader's applied index, taken when the transfer starts: read a piece at a
// time (StateMachine::open_snapshot), each chunk's piece read when the one
// before is acknowledged, so the leader holds about two chunks of it at once
// (the one in flight, which a lost chunk resends, and the next); snapshot()
// whole when the machine cannot. A reader that would wait (SnapshotReader::
// ready: it reads ahead on a thread of its own) is not waited for: bytes held
// go as a shorter chunk (and a transfer whose last bytes went so ends with an
// empty one); with none held, nothing is sent until the next heartbeat or
// resume_snapshot_sends(), which the host calls when the reader has some.
// While a snapshot is being sent, the log is not compacted past its index
// (compaction_limit): the follower needs the entries after it. A follower
// that reports an offset the leader no longer holds (it dropped its staged
// chunks) gets a new transfer of the state as it is then. A transfer starts
// only to a member heard from since the last CheckQuorum check, and a read
// one to a member that goes quiet for a whole check period is dropped (the
// reader may pin resources: a store view). The follower assembles the chunks
// and restores the whole state durably before it checkpoints: at once, or,
// when its machine says so (StateMachine::begin_restore), in the background
// while its host's thread serves other groups; on_restored then finishes the
// install, and until it does this member's log, applied index and role stay
// as they were.
//
// A machine that lost its kept state (RaftOptions::machine_state_lost: the
// host found its store behind the log's compaction point, say a store directory
// lost while the log was kept): the member keeps its log, term and vote — its
// promises to the others — and takes entries as before (it still counts toward
// commits), but applies nothing, serves nothing, never campaigns nor takes a
// leadership handed to it, and says so in every AppendReply (needs_snapshot):
// its leader sends it the machine's state as a snapshot whatever its log holds.
// Once a snapshot at or past the log's compaction point is installed, it is an
// ordinary member again. Throwing the log away instead would let it vote for a
// candidate that lacks entries it acknowledged. A crash before then finds the
// store behind the log again: the same start.
//
// A follower stages a snapshot's chunks where its machine says
// (StateMachine::open_snapshot_sink: a replica group's, a file), or else in
// memory, and hands them over once the last one came.
//
// The constructor's Membership is the bootstrap config: it applies until a
// snapshot or a kConfig entry says otherwise.
//
// Thread safety: none; a runtime calls one callback at a time (env.h).
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "replication/env.h"
#include "replication/raft/kv_state_machine.h"
#include "replication/raft/log.h"
#include "replication/raft/messages.h"
#include "replication/raft/records.h"
#include "replication/state_machine.h"

namespace statekv::replication::raft {

struct RaftOptions {
  Duration heartbeat_interval = std::chrono::milliseconds(20);
  // Each election timeout is drawn uniformly from [election_timeout, 2 x election_timeout).
  Duration election_timeout = std::chrono::milliseconds(150);
  size_t max_batch = 64;    // entries per AppendEntries
  size_t max_inflight = 4;  // AppendEntries with entries in flight per follower
  bool pre_vote = true;
  bool check_quorum = true;
  // Applied entries past the last snapshot that trigger the next one.
  size_t snapshot_threshold = 1024;
  // Or the bytes those entries hold (RaftLog::bytes_between; 0: no bound):
  // the log is in memory, and 1,024 entries of 1 MB values are a gigabyte.
  uint64_t snapshot_threshold_bytes = uint64_t{64} << 20;
  // The most snapshot bytes one InstallSnapshot carries (at least 1).
  size_t snapshot_chunk_bytes = size_t{1} << 20;
  // A learner is promoted (change_membership) only once its log is within this
  // many entries of the leader's.
  uint64_t learner_catch_up = 256;
  // Stop heartbeating while the group is idle (see Quiescence above). Only
  // for hosts that call on_peer_down, or a dead leader is never replaced.
  bool quiesce = false;
  // The state machine keeps its own state on disk (a shard's records in
  // RocksDB; see "A machine that keeps its own state" above): raft then never
  // snapshots it to compact (snapshot_threshold does not apply); the host calls
  // compact() once the machine's state is durable through an index.
  bool machine_keeps_state = false;
  // This start only, with machine_keeps_state and a log compacted past 0: the
  // machine holds none of its state (see "A machine that lost its kept state"
  // above); it waits for a snapshot from its leader.
  bool machine_state_lost = false;
  // This start only, with machine_keeps_state: the machine holds part of a
  // state newer than its log (a restore of a snapshot cut short by a crash),
  // which replaying even a whole log would not rebuild: it waits for a
  // snapshot as with machine_state_lost, whatever its log's compaction point.
  bool machine_state_partial = false;
};

class Raft {
 public:
  using Message = raft::Message;
  enum class Role : unsigned char { kFollower, kPreCandidate, kCandidate, kLeader };

  // Starts, or restarts from the records that survived on this node's disk.
  // Aborts (SKV_ASSERT) if the records do not replay: the disk checksums them,
  // so that is a bug, and serving from a half-read log could lose commits.
  // `sm` holds the state the recovered records' snapshot restores and every
  // committed command is applied to; it must outlive the Raft.
  Raft(Env<Message>& env, const Membership& membership, std::vector<std::string> recovered,
       StateMachine& sm, RaftOptions options = {});

  Raft(const Raft&) = delete;
  Raft& operator=(const Raft&) = delete;

  void on_message(NodeId from, const Message& msg);
  void on_request(const ClientRequest& req);
  // Many requests at once, as a host that gathers the requests of one pass of
  // its event loop hands them over: what on_request does for each of them, in
  // order, except that the writes (cas and delete included) are appended as
  // ONE persist record and replicated once, so a follower receives them in as
  // few AppendEntries as max_batch allows (one for up to max_batch) and
  // acknowledges them with one reply. On a leader that takes them, the writes
  // sit at consecutive indexes ending at log().last_index(), in the order
  // given; each is answered when its entry is applied, like on_request's. Reads
  // keep ReadIndex: all of the batch's wait for the same heartbeat round. The
  // batch is refused whole (each request answered kFail) on a node that is not
  // leader (leader_hint: the leader, when known) or during a leadership
  // transfer (leader_hint: the target); then nothing was appended. A request
  // wakes a quiesced leader. on_request(r) is on_requests of {r}.
  void on_requests(std::span<const ClientRequest> reqs);
  void on_timer(TimerId id);
  void on_persisted(PersistToken token);
  // The host suspects `peer`'s node is down (it heard nothing from it for a
  // while). A quiesced follower of `peer` wakes and, still hearing nothing from
  // it, campaigns after an election timeout. Otherwise nothing happens.
  void on_peer_down(NodeId peer);
  // The machine finished the restore it started in the background
  // (StateMachine::begin_restore answered kStarted) of the snapshot at
  // `index`: with OK the state is durable there, and this member drops the
  // log it replaces, checkpoints and acknowledges the snapshot to the leader
  // that sent it; otherwise the transfer is forgotten (the leader sends it
  // again) and the state is as `failure` says: unchanged, or lost (the
  // restore had replaced part of it: this member then waits for a snapshot as
  // one started with RaftOptions::machine_state_lost does). Until then this
  // member appends nothing (AppendEntries and snapshot chunks go unanswered,
  // so the leader sends them again later), applies nothing, and neither
  // campaigns nor takes a leadership handed to it; it still votes, from its
  // log as it was. Nothing happens for another index or with no restore under way.
  enum class RestoreFailure : unsigned char { kStateUnchanged, kStateLost };
  void on_restored(LogIndex index, Status restored,
                   RestoreFailure failure = RestoreFailure::kStateUnchanged);

  // machine_keeps_state only: the machine's state is durable through `index`
  // (the host saw it applied through there before making the state durable).
  // Drops the log through it and writes a checkpoint without the state.
  // Nothing happens at or below the snapshot point, above the applied index,
  // without machine_keeps_state, or while a restore is under way
  // (on_restored). Held back to compaction_limit().
  void compact(LogIndex index);
  // The highest index compact() drops the log through: the applied index, or
  // below it the oldest snapshot a follower is being sent as leader. Once it
  // installs that snapshot the follower needs the entries after it; compacted
  // meanwhile, it would need another snapshot at once (measured: a 146k-key
  // shard restored twice within a second under load). And as leader, the
  // match index of a follower that is only slower (heard from within an
  // election timeout, at most snapshot_threshold_bytes of entries behind):
  // it catches up from the log, not from a snapshot of the whole shard.
  LogIndex compaction_limit() const;

  // Asks this leader to hand leadership to `target`, a member up to date or
  // brought up to date first. Until the target takes over (or an election
  // timeout passes and the transfer is abandoned) client requests fail with the
  // target as leader_hint. InvalidArgument if this node is not leader or
  // `target` is not another member; Busy if a transfer is under way.
  Status transfer_leadership(NodeId target);

  // Asks this leader to add (`add`) or remove one member. InvalidArgument if
  // not leader, or adding a member / removing a non-member; Busy if the leader
  // has not committed an entry of its term yet or an earlier change is not
  // committed. OK means the change was appended, not that it committed.
  //
  // Adding a learner (add_learner) promotes it: Busy while it is more than
  // options.learner_catch_up entries behind. Removing a learner drops it.
  Status change_membership(NodeId node, bool add);
  // A leader: sends the next chunk of every snapshot transfer that has none
  // in flight (one passed over because its reader had nothing ready: the
  // host calls this once it has). Nothing on other roles.
  void resume_snapshot_sends();
  // Asks this leader to replicate to `node`, outside the config, as a learner
  // (it counts toward no majority). OK if it already is one; InvalidArgument if
  // not leader or `node` is a member.
  Status add_learner(NodeId node);
  // The learners of this leader (empty on other roles), and the highest index
  // known replicated on each.
  std::map<NodeId, LogIndex> learner_match() const;
  // The members in effect (the latest config in the log).
  const std::vector<NodeId>& config() const { return config_; }
  // The index of config()'s entry (0: the snapshot's or the bootstrap config);
  // the change is committed once commit_index() reaches it.
  LogIndex config_index() const { return config_index_; }

  // Inspection (status pages, tests' global invariant checks). Cheap, const.
  Role role() const { return role_; }
  // Quiesced (options.quiesce): idle, the whole log committed everywhere as far
  // as this member knows, and no timer of this member running.
  bool quiesced() const { return quiesced_; }
  // Why this node took its current role, in words ("no message from a leader
  // within the election timeout", "node 3 leads term 7", ...): logged with
  // leader changes so an operator sees what moved leadership.
  const std::string& role_reason() const { return role_reason_; }
  Term term() const { return term_; }
  std::optional<NodeId> leader() const { return leader_; }
  LogIndex commit_index() const { return commit_; }
  LogIndex applied_index() const { return applied_; }
  // Followers: when this node last heard from its leader (this node's clock),
  // and the commit index that leader announced in that message. A follower
  // whose applied index reaches it held, at that moment, everything the leader
  // had committed when it sent the message (bounded-staleness reads).
  Instant last_heard_from_leader() const { return last_heard_leader_; }
  LogIndex leader_commit_seen() const { return leader_commit_seen_; }
  // Everything appended, durable or not; entries up to commit_index() are committed.
  const RaftLog& log() const { return log_; }
  // Snapshot transfers, this incarnation (status pages, tests).
  struct SnapshotStats {
    uint64_t chunks_sent = 0;        // InstallSnapshot chunks sent as leader, resends included
    uint64_t chunks_accepted = 0;    // chunks staged in order as follower
    uint64_t chunks_refused = 0;     // chunks out of order, duplicated, or of a dropped transfer
    uint64_t installed = 0;          // snapshots restored from staged chunks
    uint64_t most_chunks = 0;        // the most chunks one installed snapshot took
    uint64_t transfers_read = 0;     // transfers read piece by piece (open_snapshot) as leader
    uint64_t reads_failed = 0;       // of those, ended by a read error (a new one follows)
    uint64_t transfers_dropped = 0;  // of those, dropped: the member went quiet
    uint64_t sends_deferred = 0;     // chunks not sent yet: their reader had nothing ready
    uint64_t restores_in_background = 0;  // installs the machine restored off this thread
    uint64_t restores_failed = 0;         // of those, the machine could not restore
  };
  const SnapshotStats& snapshot_stats() const { return snapshot_stats_; }
  // A follower: whether it is receiving a snapshot (chunks staged, the last
  // within `quiet` of `now`: a transfer its leader dropped stops counting),
  // restoring one (on_restored), or waiting for one (state_lost): it cannot
  // lead until it is done, and its host tells its peers, so that none hands it
  // a group's leadership meanwhile (coord/leader_balance.h).
  bool receiving_snapshot(Instant now, Duration quiet) const {
    return installing_ || state_lost_ || (staging_ && now - staging_->last_chunk < quiet);
  }
  // A follower whose machine restores a snapshot in the background (on_restored).
  bool installing_snapshot() const { return installing_.has_value(); }
  // Started with RaftOptions::machine_state_lost (or _partial), or a restore
  // failed with RestoreFailure::kStateLost, and no snapshot installed since:
  // the machine's state is not the applied index's, so nothing may be read
  // from it.
  bool state_lost() const { return state_lost_; }
  // On a leader: the highest index known replicated on each other member, not
  // counting learners (its
  // lag is log().last_index() minus that). Empty on other roles.
  std::map<NodeId, LogIndex> follower_match() const;
  // On a leader: each other member's applied index as of its latest reply
  // (AppendReply::applied_index; 0 until it answered this leader). Empty on
  // other roles.
  std::map<NodeId, LogIndex> follower_applied() const;

 private:
  // A snapshot as the leader holds it while sending it: shared, so that a
  // transfer keeps the one it started even after the leader takes a newer one.
  struct Snapshot {
    LogIndex index{};
    Term term{};
    std::vector<NodeId> config{};
    std::shared_ptr<const std::string> state{};
  };
  // A transfer to one follower: `offset` is where the next chunk starts (what
  // the follower last reported holding), `inflight` whether a chunk is out.
  struct SnapshotSend {
    Snapshot snapshot{};  // state: the whole snapshot, unless read from `reader`
    uint64_t offset = 0;
    bool inflight = false;
    // A snapshot read piece by piece (StateMachine::open_snapshot): `buffer`
    // holds its bytes from `buffer_start` (what the follower may still ask
    // again: the chunk in flight, and what was read ahead), `ended` once the
    // reader returned its last piece.
    std::shared_ptr<SnapshotReader> reader{};
    std::string buffer{};
    uint64_t buffer_start = 0;
    bool ended = false;
  };
  // The follower's chunks of the snapshot at `index` sent by the leader of
  // `term`, assembled in order.
  struct SnapshotStaging {
    Term term{};
    LogIndex index{};
    Term last_term{};
    uint64_t total = 0;  // InstallSnapshot::kUnknownTotal until the last chunk of a read one
    // The machine's sink (StateMachine::open_snapshot_sink), or else `data`.
    std::unique_ptr<SnapshotSink> sink{};
    std::string data{};
    uint64_t size = 0;  // bytes staged
    uint64_t chunks = 0;
    Instant last_chunk{};  // when the last chunk was staged
  };
  // A snapshot whose chunks all came, restored by the machine in the
  // background (StateMachine::begin_restore): what installing it needs once
  // the machine is done.
  struct Installing {
    NodeId from{};  // the leader that sent it: told when it is installed
    LogIndex index{};
    Term last_term{};
    std::vector<NodeId> config{};
    uint64_t round = 0;
    uint64_t chunks = 0;
  };
  struct Progress {
    LogIndex next{};                  // next index to send
    LogIndex match{};                 // highest index known replicated (durably) there
    LogIndex applied{};               // highest applied index it reported
    std::deque<LogIndex> inflight{};  // last index of each AppendEntries in flight
    uint64_t acked_round = 0;         // highest heartbeat round echoed this term
    bool active = false;              // heard from since the last CheckQuorum check
    Instant last_heard{};             // its last answer (compaction_limit)
    bool progressed = false;          // match advanced since the last heartbeat
    // Sending a snapshot: nothing else is sent until its last chunk is
    // acknowledged by an AppendReply reaching its index.
    std::optional<SnapshotSend> snapshot{};
    bool learner = false;  // outside the config: counts toward nothing
    // It said its machine lost its state (AppendReply::needs_snapshot): it
    // gets a snapshot, whatever its log holds.
    bool needs_snapshot = false;
  };
  struct PendingRead {
    ClientRequest req{};
    LogIndex read_index{};
    uint64_t round = 0;
  };
  struct Deferred {
    PersistToken after;
    NodeId to;
    Message msg;
  };

  void handle(NodeId from, const VoteRequest& m);
  void handle(NodeId from, const VoteReply& m);
  void handle(NodeId from, const AppendEntries& m);
  void handle(NodeId from, const AppendReply& m);
  // For a reply to the leader (AppendReply, InstallSnapshotReply): steps down
  // on a higher term; the sender's progress when this node leads in the
  // reply's term and replicates to it, nullptr otherwise (nothing to do).
  Progress* progress_for_reply(NodeId from, Term term);
  void handle(NodeId from, const InstallSnapshot& m);
  void handle(NodeId from, const InstallSnapshotReply& m);
  // Restores the completely staged snapshot and checkpoints it (at once, or
  // in finish_install once the machine restored it in the background).
  void install_staged(NodeId from, const InstallSnapshot& last_chunk);
  void finish_install(const Installing& done, std::string state);
  void handle(NodeId from, const TimeoutNow& m);
  void maybe_send_timeout_now(NodeId peer);

  // Roles.
  void become_follower(Term term, std::optional<NodeId> leader);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void maybe_win();

  // Timers.
  Duration random_election_timeout();
  void reset_election_deadline();
  void arm_election_timer(Duration delay);
  void on_election_timer();
  void on_heartbeat_timer();

  // Persistence.
  void persist_hard_state();
  void persist_entries(LogIndex first, const std::vector<Entry>& entries);
  void send_durable(NodeId to, Message msg);
  // Writes the whole node state as one checkpoint record (records.h).
  void persist_checkpoint();
  // Records still in flight no longer vouch for entries from `first` on.
  void forget_durability_from(LogIndex first);
  void maybe_snapshot();

  // Leader.
  void append_as_leader(Entry e);
  void send_append(NodeId peer);
  void replicate();  // send_append to every member and learner
  void send_snapshot_chunk(NodeId peer, SnapshotSend& s);
  // The same for a snapshot read piece by piece: reads what the chunk needs.
  void send_read_snapshot_chunk(NodeId peer, SnapshotSend& s);
  void broadcast_round(bool quiesce = false);
  void maybe_commit();
  uint64_t quorum_round() const;
  void serve_reads();
  void fail_reads();
  bool committed_in_current_term() const { return log_.term_at(commit_) == term_; }

  // All roles.
  void apply_committed();
  bool recently_heard_from_leader() const;
  // Quiescence.
  bool can_quiesce() const;
  void wake();  // leader: resumes its timers; follower: re-arms its election timer
  std::vector<NodeId> peers() const;

  // Membership.
  bool in_config(NodeId n) const;
  size_t majority() const { return config_.size() / 2 + 1; }
  // Members in effect at index i (>= snapshot index): the latest config entry
  // at or before i, else the snapshot's.
  std::vector<NodeId> config_at(LogIndex i) const;
  // Recomputes config_ after the log changed; a leader adds and drops progress.
  // Entries from `changed_from` on were appended or replaced (0: anything may
  // have changed: a full scan).
  void refresh_config(LogIndex changed_from = LogIndex(0));
  size_t votes_from_members() const;

  Env<Message>& env_;
  Membership members_;
  RaftOptions options_;

  // Persistent state (mirrored in records).
  Term term_;
  NodeId voted_for_;
  RaftLog log_;

  // Volatile state.
  Role role_ = Role::kFollower;
  std::optional<NodeId> leader_;
  LogIndex commit_;
  LogIndex applied_;
  StateMachine& sm_;
  // sm_'s snapshot at log_.snapshot_index() (empty without one, and always
  // with machine_keeps_state); shared with the transfers that send it.
  std::shared_ptr<const std::string> snapshot_state_ = std::make_shared<const std::string>();
  std::vector<NodeId> snapshot_config_;  // members at log_.snapshot_index()
  std::string role_reason_ = "started";
  std::vector<NodeId> config_;  // members in effect
  LogIndex config_index_;       // index of config_'s entry (0: snapshot/bootstrap)
  Instant last_heard_leader_{};
  bool quiesced_ = false;
  LogIndex leader_commit_seen_{};
  std::optional<SnapshotStaging> staging_;  // a follower's partly received snapshot
  // The machine's sink refused a chunk (a full disk, say): the transfers that
  // follow stage in memory until one is installed, since a sink that keeps
  // refusing would start every transfer over, for ever.
  bool stage_in_memory_ = false;
  std::optional<Installing> installing_;    // a follower's snapshot being restored
  bool state_lost_ = false;                 // RaftOptions::machine_state_lost, until a snapshot
  SnapshotStats snapshot_stats_;

  // Persist-before-send bookkeeping. Tokens count from 1 per incarnation.
  PersistToken last_token_;
  PersistToken durable_token_;
  LogIndex durable_index_;  // the log prefix known durable (leader's own match)
  std::deque<std::pair<PersistToken, LogIndex>> log_records_;  // log end after each record
  std::deque<Deferred> deferred_;

  // Timers.
  TimerId election_timer_;
  Instant election_deadline_{};
  std::optional<TimerId> heartbeat_timer_;

  // Candidates.
  std::set<NodeId> votes_;  // granted by others, this term (or the next, for PreVote)
  PersistToken vote_token_;

  // Leader.
  std::map<NodeId, Progress> progress_;
  uint64_t round_ = 0;
  std::vector<ClientRequest> reads_before_first_commit_;
  std::deque<PendingRead> reads_;
  // Writes this node accepted as leader, by log index: answered when the entry
  // at their index is applied — with its result if it is still theirs, failed
  // (certainly never applied) if another leader's entry was committed there.
  std::map<LogIndex, RequestId> pending_writes_;
  // Leadership transfer under way: to whom, until when, and whether TimeoutNow left.
  std::optional<NodeId> transferee_;
  Instant transfer_deadline_{};
  bool timeout_now_sent_ = false;
};

namespace detail {
// Base-from-member: the map is built before the Raft that restores into it.
struct KvHolder {
  KvStateMachine kv;
};
}  // namespace detail

// Raft replicating a key-value register map: the protocol of the cluster
// metadata group (net/raft_node.h) and of `statekv sim --protocol raft`.
class RaftKv : private detail::KvHolder, public Raft {
 public:
  RaftKv(Env<Message>& env, const Membership& membership, std::vector<std::string> recovered,
         RaftOptions options = {})
      : KvHolder{}, Raft(env, membership, std::move(recovered), kv, options) {}

  const KvStateMachine& state_machine() const { return kv; }
};

}  // namespace statekv::replication::raft
