// ReplicaGroups — this node's members of the raft groups that replicate
// `REPLICATION consensus` keyspaces: raft per shard (docs/replication.md).
//
// Each shard of a consensus keyspace is one replica group whose members are
// the shard's owners in the cluster map; its GroupId is derived from the
// keyspace's name and the shard's index (group_id), so every node names it
// alike without asking. A node runs one raft replica (replication/raft/raft.h,
// unchanged from the simulator) for every group it is a member of:
//
//   transport  the node's one peer transport: group messages travel as
//              wire.h GroupFrames through net::RaftNode (send_group);
//   epochs     each member knows its group's configuration epoch
//              (meta::Shard::config_epoch: the map epoch that last changed
//              the shard's owners or moving_to), from its map or, newer,
//              learned from a frame or a step that carried it. It stamps every
//              frame it sends with it; a frame (or a __replicas step) carrying
//              an older epoch than the member knows was sent from an older view
//              of the group (a removed member, a node or controller whose map
//              lags) and is refused: a frame is dropped (raft treats it as
//              lost; the sender learns the newer epoch from the map or from the
//              frames of the members that know it), a step answered Aborted.
//              Each refusal is counted (GroupStatus) and logged (the 1st, 2nd,
//              4th, ... of each group). A frame of an older version carries no
//              epoch and reads as epoch 0;
//   log        the node's one write-ahead log, net::SharedLog in <data>/wal,
//              opened by net::RaftNode, whose metadata replica logs there as
//              group 0: each group appends through its own GroupLog handle, one sync
//              thread writes and fdatasyncs what every group has pending at
//              once (group commit across groups), and a segment is deleted
//              once no group needs a record in it. A group dropped here (its
//              keyspace dropped, its replica moved away) has its records
//              dropped from the log. Per-group logs of older data directories
//              (<data>/groups/<group id>) are moved into it at start;
//   liveness   idle groups quiesce (raft.h): their leaders stop heartbeating.
//              The transport's pings, one per pair of nodes, stand in for
//              them: every 100 ms the groups of a peer not heard from for
//              peer_down_after are told (Raft::on_peer_down).
//   thread     one event loop for every group of the node: the node's data
//              loop (net::RaftNode::data_loop()), where the transport runs
//              too, so a group's frame reaches its protocol, and its protocol's
//              message the socket, without a thread hop. The protocols, their
//              timers and the commands they run are called from it, one
//              callback at a time (env.h);
//   state      the node's one shard store (server/store.h): a group's state is
//              its shard's records there. A committed entry is a Mutation
//              (replication/mutation.h) applied with Store::apply, unlogged by
//              the engine (the raft log replays it after a restart); a snapshot is
//              the group's records as one Mutation of puts, and restoring one
//              erases the group's other records first (over RocksDB on a thread
//              of its own while raft holds the group's entries back:
//              docs/replication.md, "Restoring off the data loop").
//
// How a command runs (execute): only on the group's leader. The leader first
// takes a ReadIndex barrier through raft (leadership confirmed by a majority,
// everything committed before applied here), then evaluates the command with
// the node's command handlers against the applied store, with a session whose
// proposer captures the effect instead of writing it. No effect: the reply is
// final (a read). An effect becomes one log entry, and the reply is released
// when that entry is applied here. Entries are proposed in batches: an
// evaluated effect is queued on its group, and the first one queued posts a
// flush on the loop, which runs after the handlers already waiting there
// (other clients' commands, which queue theirs) and proposes everything queued
// for the group at once (Raft::on_requests: one log record, one AppendEntries
// per follower); the entry's index, the session's new position, is known from
// then. While an effect is queued or in flight its keys are latched (from the
// moment it is evaluated): a later command on one of them waits (parked) until
// it is applied, so every command evaluates against every effect ordered
// before it (two INCRs never read the same value). A queued effect is proposed
// only in the term it was evaluated in: if the leader loses office (or the
// group stops, or the node shuts down) first, or the command's request_timeout
// passes first, it is refused as not run (Unavailable, with the leader hint
// when known). A leader that loses office drops its latches and refuses the
// parked and queued commands (they did not run); its proposed entries may
// still commit, so their clients hear nothing until they time out ("may or
// may not have happened"), never a wrong answer. A leader handing over
// (a leadership transfer) refuses a batch whole: raft fails each entry, which
// did not run.
//
// Blocking commands (`__block TOKEN command...`, coordinator.h): evaluated
// like any write; one that finds all its keys empty (Session::poll_blocking)
// waits on the leader, in arrival order, until an applied effect touches one
// of its keys, when it is evaluated again (its pop queued and proposed like
// any write, and answered once applied, or it waits again in its place); or until its
// timeout (the timeout reply), `__unblock TOKEN` (its client went away: the
// timeout reply, no pop) or the end of this leader's office (Unavailable: it
// did not run, and its router hands it on to the next leader).
//
// Expiry: a replicated key is erased only by its group's leader, through the
// log (expire(): the node's active expirer hands such keys here).
//
// Thread safety: every public method may be called from any thread.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coord/routing_table.h"
#include "core/ids.h"
#include "core/status.h"
#include "replication/mutation.h"
#include "replication/raft/raft.h"

namespace statekv::net {
class RaftNode;
}
namespace statekv::server {
class Service;
class Store;
}  // namespace statekv::server

namespace statekv::coord {

class ReplicaGroup;

// The internal command that erases every record of a group (FLUSHALL and
// FLUSHDB in a cluster with consensus keyspaces): one Mutation through the
// group's log. Answered "+OK".
inline constexpr std::string_view kFlushGroupVerb = "__flushgroup";

// WATCH and EXEC on a consensus keyspace (docs/replication.md, "WATCH"),
// served by the group's leader:
//   __gwatch key...     erases the keys that have expired (through the log,
//                       as any read does) and answers "+INDEX TTL..." : the
//                       log index the watch saw (every effect on the keys up
//                       to it is applied) and each key's expiry then (0: none).
//   __gexec <n> (key index ttl)*n __exec ...
//                       with nothing of the group in flight, checks each
//                       watched key: changed when this member applied an
//                       effect on it past `index` (or cannot rule that out:
//                       it keeps the last change only of the keys changed
//                       most recently, up to 16,384 per group), or its `ttl`
//                       has passed.
//                       Then answers a null array, or runs the __exec.
// Every member records the index of the last effect it applied on each key,
// so the check holds on whichever member leads when EXEC arrives.
inline constexpr std::string_view kGroupWatchVerb = "__gwatch";
inline constexpr std::string_view kGroupExecVerb = "__gexec";

// The internal command that fences a group against commands routed by maps
// older than a change of the keys it holds (a keyspace created over part of
// its keyspace's prefix, or its keyspace being dropped: meta/transitions.h,
// begin_create and begin_drop), served by the group's leader:
//   __gfence EPOCH PREFIX
//                      EPOCH: the shard's config_epoch in that change's map:
//                      the leader learns it (an older one than it knows is
//                      refused, Aborted), waits until nothing of the group is
//                      in flight, and commits an entry that erases the expired
//                      records under PREFIX (it may be empty) and nothing
//                      else: a majority holds the epoch from then (every frame
//                      carries it), so any later leader does too, and every
//                      command evaluated before it is applied. Answers ":N",
//                      the records left under PREFIX: exact, where a scan of
//                      every member would also count keys a follower has not
//                      seen deleted yet.
// From then on the group refuses every command whose router's map is older
// than EPOCH (a stale route: the router catches up and routes it again).
inline constexpr std::string_view kGroupFenceVerb = "__gfence";

// The internal command that moves a group's replicas (coord/replica_moves.h),
// sent as a group frame by whoever drives the move (cli/rebalance.cc), and
// served only by the group's leader (elsewhere: Unavailable with a hint):
//   __replicas status          one line: leader=N commit=I config=A,B,C
//                              committed=0|1 match=B:I,C:I [learners=D:I] epoch=E
//                              applied=A:I,B:I,C:I last=I
//   __replicas learn NODE EPOCH     raft's add_learner: replicate to NODE, outside
//                                   the config (OK if it already is a learner)
//   __replicas add NODE EPOCH       raft's change_membership; promotes a learner
//                                   once caught up (Busy: try again)
//   __replicas remove NODE EPOCH    removes a member, or drops a learner
//   __replicas transfer NODE EPOCH  raft's transfer_leadership
// EPOCH is the shard's config_epoch in the map the step was decided from: a
// leader that knows a newer one refuses the step (Aborted, nothing done), a
// newer one it learns.
inline constexpr std::string_view kReplicasVerb = "__replicas";

struct ReplicaGroupsOptions {
  NodeId self;
  // Every group's raft log lives in the node's write-ahead log (the
  // transport's, net::RaftNode::wal()); per-group logs of older data
  // directories, data_dir / "groups", are moved into it.
  std::filesystem::path data_dir;
  bool fsync = true;
  replication::raft::RaftOptions raft = [] {
    replication::raft::RaftOptions o;
    // A snapshot scans the shard's records: take one every this many entries
    // (an engine that does not keep its state); with one that does (RocksDB),
    // a group this many entries past its compaction point has the store made
    // durable and every log compacted.
    o.snapshot_threshold = 16384;
    // Idle groups send nothing (raft.h, "Quiescence"): a node holds many.
    o.quiesce = true;
    return o;
  }();
  // A peer node not heard from (any frame: the transport pings every peer)
  // for this long is down: the quiesced groups it leads wake and elect
  // another leader. Should exceed the transport's ping interval (200 ms) a
  // few times over, and an election timeout.
  std::chrono::milliseconds peer_down_after{600};
  // With an engine that keeps its state (RocksDB): once the groups together
  // applied this many entries past their compaction points, the store is made
  // durable (a memtable flush) and every group's log compacted through what it
  // had applied (docs/replication.md, "Compaction without copying the shard").
  uint64_t compact_after_entries = 65536;
  // Or once those entries hold this many bytes (RaftLog::bytes_between; 0: no
  // bound): a group's log is in memory until compacted, and 65,536 entries of
  // 100 KB values are 6.5 GB.
  uint64_t compact_after_bytes = uint64_t{64} << 20;
  // The largest effect one command may propose (its encoded Mutation): one
  // raft entry, copied into the log, each follower's AppendEntries and the
  // store on the data loop every group of the node shares. A larger write is
  // refused before it is proposed. 16 MB writes left the groups' leaders in
  // place on a 2-core machine, 32 MB ones started elections.
  uint64_t max_write_bytes = uint64_t{16} << 20;
  // A command without an answer within this long gets Timeout.
  std::chrono::milliseconds request_timeout{5000};
  // Called (on the data loop; maybe more than once) when the store cannot
  // write a committed entry's effects for an I/O reason (a full disk, the
  // engine stopped by a background error): the replica's state no longer
  // follows its log, and it would serve reads, lead and count in majorities
  // with an entry missing. The server stops (exit 1); a restart replays the
  // log from the last position the store holds (docs/cluster.md, "A node
  // whose disk fails"). Null: only logged. An entry the store refuses as
  // malformed (InvalidArgument) is refused alike on every member and only
  // logged.
  std::function<void(const std::string& reason)> on_store_failed;
};

// Where a read-only command may be served (consistency per request,
// server/consistency.h). Writes, and reads without `local`, run on the leader
// behind the ReadIndex barrier (linearizable).
struct ReadPolicy {
  // Served by this member from its applied state, if that covers min_index
  // (waiting a little for it) and, with max_staleness_ms > 0, is no staler
  // than that: its leader's last message announced a commit index it has
  // applied, at most max_staleness_ms ago (the message's one-way delay is not
  // counted; a leader counts as fresh). Otherwise Unavailable, hinting at the
  // leader. Expired records read as absent; nothing is proposed.
  bool local = false;
  uint64_t min_index = 0;
  int64_t max_staleness_ms = 0;
};

// A command's place in its client's pipeline to one group (coordinator.h,
// "Pipelines to a replica group"): `stream` (0: none) names the pipeline on
// its router, `router` the peer connection its commands came on (0: this
// node's own router), `seq` counts its commands from 1. The leader begins a
// pipeline's commands in that order, each once the one before it is
// evaluated (its effect queued for the log, or its reply known), so that they
// take effect in the order sent while many are in flight. A command of the
// pipeline that does not run (Unavailable, Aborted: refused before it was
// evaluated, or evaluated and never proposed) or a gap in `seq` breaks it:
// every later command of it not proposed yet is refused without running
// (Unavailable), and its router sends them again, one after another.
struct PipelinePlace {
  uint64_t router = 0;
  uint64_t stream = 0;
  uint64_t seq = 0;
};

// What a command sent to a group came to.
struct GroupReply {
  // OK: the command ran on the group's leader and its effect, if any, is
  // committed; `reply` is its RESP reply.
  // Unavailable: it did not run (this node does not lead the group, or is not
  // a member); leader_hint names who may lead it (0: not known).
  // Aborted: it did not run: routed by a map older than the group's
  // configuration (execute's routed_epoch).
  // Timeout: no answer in time; it may or may not have taken effect.
  Status status;
  std::string reply;
  NodeId leader_hint;
  // OK: the log position the reply reflects: a write's entry, the applied
  // index a read was served at (0 when nothing was read or written).
  uint64_t index = 0;
};

// One group this node is a member of, for status pages (LOCATE, INFO
// replication, `statekv cluster status`).
struct GroupStatus {
  GroupId id;
  std::string keyspace;
  uint32_t shard = 0;
  std::vector<NodeId> members;
  std::string role;  // "leader", "follower", "candidate", "pre-candidate"
  uint64_t term = 0;
  std::optional<NodeId> leader;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  uint64_t last_index = 0;
  // The log is compacted through this index: a snapshot's point (with an
  // engine that keeps its state, the store was made durable through it).
  uint64_t compacted_index = 0;
  // Snapshots this replica sent as leader read a piece at a time from a store
  // view (RocksDB; coord/shard_snapshot.h), and installed as follower, since
  // it started.
  uint64_t snapshots_streamed = 0;
  uint64_t snapshots_installed = 0;
  // Follower: receiving a snapshot now (its peers hand it no leadership
  // meanwhile). Leader: chunks passed over because the transfer's reader had
  // nothing read yet (it waits its turn for the node's snapshot threads).
  bool receiving_snapshot = false;
  // Follower: its store lost the state it held (behind its log's compaction
  // point): it serves nothing until a snapshot from its leader is installed
  // (docs/raft.md, "A machine that lost its kept state"); applied_index reads 0.
  bool state_lost = false;
  uint64_t snapshot_sends_deferred = 0;
  std::map<NodeId, uint64_t> match;  // leader only: each other member's replicated index
  // Leader only: each other member's applied index, as of its latest answer
  // to this leader (raft's AppendReply::applied_index; 0 until it answered).
  std::map<NodeId, uint64_t> applied;
  bool quiesced = false;             // idle: no heartbeats (raft.h, "Quiescence")
  uint64_t epoch = 0;                // the configuration epoch this member knows
  uint64_t frames_refused_epoch = 0;  // frames dropped: an older epoch than `epoch`
  uint64_t steps_refused_epoch = 0;   // __replicas steps refused for it
  uint64_t routes_refused_epoch = 0;  // commands refused: routed by an older map
  // Served by this node's replica since it started.
  uint64_t reads_barrier = 0;  // on the leader, behind the ReadIndex barrier
  uint64_t reads_local = 0;    // from this member's applied state (below linearizable)
  uint64_t writes = 0;         // effects committed (applied here as leader)
  // Writes proposed as leader, in batches (one per pass of the event loop
  // that evaluated any: one log record, one AppendEntries per follower):
  // proposed / proposals is the mean batch.
  uint64_t proposals = 0;
  uint64_t proposed = 0;
};

class ReplicaGroups {
 public:
  // `transport` carries the groups' messages; `service` runs commands on the
  // leader (its store() must be non-null). All must outlive this object.
  ReplicaGroups(ReplicaGroupsOptions options, net::RaftNode& transport, server::Service& service);
  ~ReplicaGroups();  // stops every group and closes its log
  ReplicaGroups(const ReplicaGroups&) = delete;
  ReplicaGroups& operator=(const ReplicaGroups&) = delete;

  // The group of shard `shard` of keyspace `keyspace` (never 0: group 0 is the
  // metadata group).
  static GroupId group_id(std::string_view keyspace, uint32_t shard);

  // A new map: starts a replica of every consensus shard this node owns (one
  // listed past the factor, a member being added, starts outside the group's
  // configuration), and stops every group whose keyspace is gone or whose
  // owners no longer list this node (its replica moved away), deleting its log
  // and erasing its records here.
  void on_table(std::shared_ptr<const RoutingTable> table);

  // Runs one command (argv[0] the name) on `group`'s leader, here; `done` is
  // called once, on the groups' thread (it must not block), with the outcome.
  // `resp` is the protocol the reply is encoded in. `origin`: the tracking
  // client that sent a write (its entry carries it: every member applying it
  // leaves that client out of its invalidations when it asked for NOLOOP).
  // `routed_epoch`: the epoch of the map its router routed it by (0: an
  // internal call that names its group itself): older than the group's
  // configuration epoch, it is refused without running (Aborted, a message
  // starting with STALEROUTE): the keys it names may belong to another group
  // now.
  // `place`: its place in a client's pipeline (PipelinePlace), if any.
  void execute(GroupId group, int resp, std::vector<std::string> argv, ReadPolicy policy,
               std::function<void(GroupReply)> done, replication::WriteOrigin origin = {},
               uint64_t routed_epoch = 0, PipelinePlace place = {});

  // WAIT: on `group`'s leader, here, calls `done` with a RESP integer reply:
  // how many members other than the leader have the log up to `index`, once
  // at least `numreplicas` do or `timeout` passed (0: no limit). Unavailable
  // with a hint when this node does not lead the group.
  void wait_replicas(GroupId group, uint64_t index, int64_t numreplicas,
                     std::chrono::milliseconds timeout, std::function<void(GroupReply)> done);

  // The node's active expirer found `key` due. True when the key belongs to a
  // consensus keyspace: then its group's leader erases it (if this node is that
  // leader: soon, through the log) and the caller must not. Never blocks.
  bool expire(std::string_view key);

  // Calls fn(true) on the groups' thread after `delay` (it must not block), or
  // fn(false) at once when this object is being destroyed first.
  void run_after(std::chrono::milliseconds delay, std::function<void(bool run)> fn);

  // Before a planned stop: stops handing leadership back to preferred leaders
  // and asks every group this node leads to transfer leadership to an
  // up-to-date member; waits until it leads none or `limit` passed. Returns
  // how many it still leads.
  size_t hand_over_leadership(std::chrono::milliseconds limit);

  // Whether this node is a member of `group`.
  bool hosts(GroupId group) const;
  // Who this node believes leads `group`; nullopt when not known or not a member.
  std::optional<NodeId> leader(GroupId group) const;
  std::vector<GroupStatus> status() const;
  // Snapshot transfers of the groups led here waiting for a read thread
  // (coord/snapshot_prefetch.h), and the peers whose pings say they are
  // receiving a snapshot. Thread-safe.
  size_t snapshot_reads_waiting() const;
  std::vector<NodeId> peers_receiving_snapshot() const;

 private:
  friend class ReplicaGroup;
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace statekv::coord
