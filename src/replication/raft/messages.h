// Raft's log entries and wire messages, with their codec (replication/codec.h).
//
// Every message carries the sender's term; the receiver's first step is always
// the term rule of the Raft paper (§5.1): a higher term makes it a follower of
// that term, a lower one marks the message stale.
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "replication/codec.h"
#include "replication/env.h"

namespace statekv::replication::raft {

// One log entry. A leader appends a kNoop when it takes office (so that it can
// commit, and so serve ReadIndex reads, without waiting for a client write:
// Raft §8), a kCommand per client write, cas or delete, and a kConfig per
// membership change (the whole new member list; it takes effect on append).
struct Entry {
  enum class Kind : unsigned char { kNoop = 0, kCommand = 1, kConfig = 2 };
  Term term{};
  Kind kind = Kind::kNoop;
  ClientRequest command{};        // kCommand only; its id is how the leader finds who to answer
  std::vector<NodeId> members{};  // kConfig only

  bool operator==(const Entry& o) const;
  void encode(Writer& w) const;
  static Result<Entry> decode(Reader& r);
};

// RequestVote, and PreVote when `pre_vote` is set: a PreVote asks "would you vote
// for me in `term`?" without anyone changing their term (Raft thesis §9.6).
struct VoteRequest {
  static constexpr uint32_t kTag = 1;
  Term term{};
  LogIndex last_index{};
  Term last_term{};
  bool pre_vote = false;
  void encode(Writer& w) const;
  static Result<VoteRequest> decode(Reader& r);
};

struct VoteReply {
  static constexpr uint32_t kTag = 2;
  Term term{};  // a PreVote reply echoes the term asked about
  bool granted = false;
  bool pre_vote = false;
  void encode(Writer& w) const;
  static Result<VoteReply> decode(Reader& r);
};

// AppendEntries; with no entries it is a heartbeat. `round` numbers the leader's
// broadcasts: a follower echoes it, and a majority echoing round r proves the
// sender was still leader when it started round r (ReadIndex, Raft thesis §6.4).
struct AppendEntries {
  static constexpr uint32_t kTag = 3;
  Term term{};
  LogIndex prev_index{};
  Term prev_term{};
  LogIndex leader_commit{};
  uint64_t round = 0;
  std::vector<Entry> entries{};
  // The leader quiesces the group (Raft, "Quiescence"): every member holds
  // the whole log, committed; it sends no heartbeat until something happens.
  bool quiesce = false;
  void encode(Writer& w) const;
  static Result<AppendEntries> decode(Reader& r);
};

// The answer to AppendEntries. On success, match_index is the last index the
// follower now holds durably and that matches the leader's. On a log mismatch,
// the conflict hint lets the leader skip a whole term at a time (Raft §5.3,
// "optimisation"): conflict_term is the follower's term at prev_index (0 when
// the follower's log is too short) and conflict_index the first index it holds
// of that term (or its last index + 1). applied_index is how far the sender
// has applied its log when it answers (the leader reports it per member:
// LOCATE, INFO replication); on the wire after `round`, absent (read as 0) in
// replies of older versions (which refuse it as trailing bytes: a group's
// members run one version).
struct AppendReply {
  static constexpr uint32_t kTag = 4;
  Term term{};
  bool success = false;
  LogIndex match_index{};
  LogIndex conflict_index{};
  Term conflict_term{};
  uint64_t round = 0;
  LogIndex applied_index{};
  // The follower's machine lost its kept state (raft.h, "A machine that lost
  // its kept state"): send it a snapshot.
  bool needs_snapshot = false;
  void encode(Writer& w) const;
  static Result<AppendReply> decode(Reader& r);
};

// Sent instead of AppendEntries when the entries a follower needs were
// compacted away: the state machine at the snapshot point, in chunks. `state`
// holds bytes [offset, offset + state.size()) of the `total` bytes of
// StateMachine::snapshot() at last_index; the leader sends one chunk at a time
// and the next when the follower acknowledges this one (InstallSnapshotReply).
// The follower stages the chunks and installs the snapshot when the last one
// arrives, answering that one with an AppendReply whose match_index is
// last_index. A snapshot that fits one chunk is one message (offset 0, total =
// state.size()). A snapshot read piece by piece (StateMachine::open_snapshot)
// has no size until its end: its chunks carry total = kUnknownTotal, the last
// one its size (offset + state.size()).
struct InstallSnapshot {
  static constexpr uint32_t kTag = 5;
  Term term{};
  LogIndex last_index{};  // the snapshot point
  Term last_term{};
  uint64_t round = 0;
  std::vector<NodeId> config{};  // the members at last_index
  std::string state{};           // this chunk of StateMachine::snapshot() at last_index
  uint64_t offset = 0;           // where this chunk starts in the snapshot
  uint64_t total = 0;            // the snapshot's size in bytes, or kUnknownTotal
  static constexpr uint64_t kUnknownTotal = UINT64_MAX;
  // Whether this chunk ends the snapshot.
  bool completes() const { return total != kUnknownTotal && offset + state.size() == total; }
  void encode(Writer& w) const;
  static Result<InstallSnapshot> decode(Reader& r);
};

// The follower's answer to a chunk that did not complete the snapshot at
// last_index: it holds the snapshot's first `offset` bytes (in this term) and
// wants the chunk starting there next. An offset other than the one the leader
// expects — 0 after the follower dropped its staged chunks (a restart, another
// snapshot) or the end of what it holds after a lost or reordered chunk — makes
// the leader resume from it. Promises nothing durable: staged chunks are in
// memory until the last one arrives.
struct InstallSnapshotReply {
  static constexpr uint32_t kTag = 7;
  Term term{};
  LogIndex last_index{};
  uint64_t offset = 0;
  uint64_t round = 0;
  void encode(Writer& w) const;
  static Result<InstallSnapshotReply> decode(Reader& r);
};

// Leadership transfer (thesis §3.10): the leader, having brought the target up
// to date, tells it to start an election now, skipping PreVote.
struct TimeoutNow {
  static constexpr uint32_t kTag = 6;
  Term term{};
  void encode(Writer& w) const;
  static Result<TimeoutNow> decode(Reader& r);
};

// A member list: varint count, then each id.
void encode_nodes(Writer& w, const std::vector<NodeId>& nodes);
Result<std::vector<NodeId>> decode_nodes(Reader& r);

using Message = std::variant<VoteRequest, VoteReply, AppendEntries, AppendReply, InstallSnapshot,
                             TimeoutNow, InstallSnapshotReply>;

}  // namespace statekv::replication::raft
