// StateMachine — what a replication protocol applies committed commands to.
//
// DESIGN.md, "Replication: replica groups": a protocol decides when a command
// is committed and in which order; the state machine applies it. The protocol
// never sees what the commands mean — a register map for the cluster metadata
// (raft/kv_state_machine.h), a shard's records for data (later) — and the
// state machine never sees messages, terms or timers. The host owns both and
// hands the state machine to the protocol; it must outlive the protocol.
//
// Determinism: every replica that applies the same commands in the same order
// must hold the same state and compute the same responses (a cas that fails on
// one fails on all), which is what lets any replica answer for the leader.
//
// Thread safety: none; the protocol calls it from its one thread (env.h).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "replication/env.h"

namespace statekv::replication {

// A snapshot read piece by piece (StateMachine::open_snapshot): the state as
// of the moment it was opened, whatever the machine applies meanwhile.
class SnapshotReader {
 public:
  virtual ~SnapshotReader() = default;
  // The snapshot's next bytes, about max_bytes of them (more when one record
  // is larger); empty at the end. The pieces concatenated are a snapshot that
  // restore() takes. An error ends the read (the protocol opens another).
  virtual Result<std::string> next(size_t max_bytes) = 0;
  // Whether next() would answer without waiting. A reader that reads ahead
  // on another thread (coord/snapshot_prefetch.h) says false while it has
  // nothing read; the protocol then sends the bytes it holds as a shorter
  // chunk instead of waiting on its shared thread for a whole one.
  virtual bool ready() const { return true; }
};

// Where a follower stages the chunks of a snapshot it receives
// (StateMachine::open_snapshot_sink) instead of the protocol's memory: a
// shard's snapshot may be larger than a node should hold in memory. The
// bytes come in order, each once. Destroyed when the transfer is given up
// (another snapshot, another leader, the log overtaking it); handed to
// StateMachine::begin_restore_staged once the last chunk came.
class SnapshotSink {
 public:
  virtual ~SnapshotSink() = default;
  // Appends the snapshot's next bytes. An error ends the transfer: the
  // protocol drops the sink, and the leader starts the snapshot over.
  virtual Status append(std::string_view bytes) = 0;
};

class StateMachine {
 public:
  virtual ~StateMachine() = default;

  // Applies one committed command (a write, cas or delete), in log order, and
  // returns what its client should hear. A cas whose expectation fails changes
  // nothing and answers kFail.
  virtual ClientResponse apply(const ClientRequest& command) = 0;
  // Answers a read against everything applied so far. The protocol calls it
  // only once the read may be served at its level (raft: after ReadIndex).
  virtual ClientResponse read(const ClientRequest& request) const = 0;

  // The whole applied state as bytes (a snapshot), and back: restore replaces
  // the state with the snapshot's, which covers the log through `index`.
  // Corruption on bytes snapshot() did not make; the state is then unchanged.
  // A machine that keeps its own state (raft's RaftOptions::machine_keeps_state)
  // has the restored state durable when restore returns.
  virtual std::string snapshot() const = 0;
  virtual Status restore(std::string_view snapshot, LogIndex index) = 0;
  // restore() that may finish later, off the protocol's thread: a large
  // shard's restore would otherwise hold every group its host runs on that
  // thread (coord/replica_groups.cc). kDone: restored, as restore() would
  // have. kStarted: the machine took the snapshot and restores it elsewhere;
  // once the state is durable (or could not be restored, unchanged) the host
  // calls Raft::on_restored from the protocol's thread, and until then the
  // protocol applies nothing to the machine. Only with
  // RaftOptions::machine_keeps_state; the default restores at once.
  enum class RestoreProgress { kDone, kStarted };
  virtual Result<RestoreProgress> begin_restore(std::string snapshot, LogIndex index) {
    if (Status s = restore(snapshot, index); !s.ok()) return s;
    return RestoreProgress::kDone;
  }
  // The state as of now, to be read a piece at a time while apply() goes on,
  // so that sending it to a follower holds one piece in memory instead of the
  // whole state (raft, with RaftOptions::machine_keeps_state). nullptr when the
  // machine cannot: snapshot() is taken whole then.
  virtual std::unique_ptr<SnapshotReader> open_snapshot() const { return nullptr; }
  // With RaftOptions::machine_keeps_state: the log index the kept state
  // reflects when it is ahead of the protocol's applied index (a machine
  // started from a state kept through index K while the protocol's log
  // starts before K: it skips those entries as it applies them again).
  // open_snapshot() reads that state, so raft starts no snapshot transfer,
  // labelled with its applied index, until its applied index reaches this
  // one: a follower would apply the entries in between a second time.
  virtual LogIndex kept_index() const { return LogIndex(0); }
  // With RaftOptions::machine_keeps_state: where a follower stages the
  // chunks of a snapshot of the log through `index` as they arrive. nullptr
  // (the default, or when the machine cannot open one): the protocol stages
  // them in its memory and hands them to begin_restore whole.
  virtual std::unique_ptr<SnapshotSink> open_snapshot_sink(LogIndex /*index*/) { return nullptr; }
  // begin_restore for a snapshot staged in `sink` (one open_snapshot_sink
  // returned, every chunk appended), with the same answers and duties.
  virtual Result<RestoreProgress> begin_restore_staged(std::unique_ptr<SnapshotSink> /*sink*/,
                                                       LogIndex /*index*/) {
    return Status::InvalidArgument("this state machine opens no snapshot sink");
  }
};

}  // namespace statekv::replication
