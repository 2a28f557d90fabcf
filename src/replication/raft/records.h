// Raft's durable records: what it hands to Env::persist, and how a restarting
// node rebuilds its term, vote and log from what survived.
//
// Three kinds, in one append-only stream:
//   HardState  u8 1 | varint term | varint voted_for (0 = nobody)
//              the latest one wins.
//   Entries    u8 2 | varint first | varint n | n x Entry
//              entries first, first+1, ...; everything the log held at or after
//              `first` is replaced (this is how a follower's conflicting suffix
//              is overwritten, durably, in one record).
//   Checkpoint u8 3 | varint term | varint voted_for | varint snapshot_index |
//              varint snapshot_term | members at the snapshot point |
//              bytes state machine | varint n | n x Entry
//              the node's whole state: it resets everything, and is written with
//              Env::persist_checkpoint so that it also drops every earlier record.
// Replaying the surviving records in order gives exactly the state the node had
// after the last surviving record: a lost or torn tail (env.h) simply rolls the
// node back to an earlier state it really had, never to a mixture.
//
// Thread safety: plain functions over values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "replication/raft/log.h"
#include "replication/raft/messages.h"

namespace statekv::replication::raft {

struct HardState {
  Term term;
  NodeId voted_for;  // NodeId(0): no vote in `term`
};

std::string encode_hard_state(const HardState& hs);
std::string encode_entries(LogIndex first, const std::vector<Entry>& entries);
// `log` gives the snapshot point and the entries after it; `state` is the state
// machine at the snapshot point (StateMachine::snapshot).
std::string encode_checkpoint(const HardState& hs, const RaftLog& log,
                              const std::vector<NodeId>& snapshot_config, std::string_view state);

struct RecoveredState {
  HardState hard_state;
  RaftLog log;
  // The state machine and the members at log.snapshot_index() (both empty when
  // there is no snapshot).
  std::string snapshot;
  std::vector<NodeId> snapshot_config;
};

// Replays records in append order. Corruption if a record does not decode or an
// Entries record would leave a gap (the disk checksums records, so either means
// a bug, not a bad disk).
Result<RecoveredState> recover(const std::vector<std::string>& records);

}  // namespace statekv::replication::raft
