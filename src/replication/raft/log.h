// The in-memory raft log: a snapshot point (index and term of the last entry a
// snapshot covers; 0 and 0 for none) followed by entries snapshot_index+1 ..
// last_index.
//
// Invariant: terms never decrease along the log. The log holds everything the
// node has appended, durable or not; which prefix is durable is Raft's business
// (raft.h), not the log's. Entries at or below the snapshot point are gone:
// only their last term is known.
//
// Thread safety: a plain value.
#pragma once

#include <cstddef>
#include <vector>

#include "core/ids.h"
#include "replication/raft/messages.h"

namespace statekv::replication::raft {

class RaftLog {
 public:
  LogIndex snapshot_index() const { return snapshot_index_; }
  Term snapshot_term() const { return snapshot_term_; }
  LogIndex last_index() const { return LogIndex(snapshot_index_.value() + entries_.size()); }
  Term last_term() const { return term_at(last_index()); }
  // Term of entry i: the snapshot term at the snapshot point; Term(0) for index
  // 0, for an index past the end, and for an index compacted away.
  Term term_at(LogIndex i) const;
  // Entry i; snapshot_index() < i <= last_index().
  const Entry& at(LogIndex i) const;

  // Replaces everything from `first` on with `entries`; snapshot_index() <
  // first <= last_index() + 1 (no gaps, no rewriting what a snapshot covers).
  void replace_from(LogIndex first, std::vector<Entry> entries);
  void append(Entry e);

  // Drops entries up to `index` (snapshot_index() <= index <= last_index()),
  // which become the snapshot point.
  void compact_to(LogIndex index);
  // Starts over from a snapshot at (index, term): keeps the entries after it if
  // the log holds `index` with `term` (they extend the same history), else drops
  // them all.
  void reset_to_snapshot(LogIndex index, Term term);

  // Copies up to `max` entries starting at `first` (> snapshot_index()); none
  // when first > last.
  std::vector<Entry> slice(LogIndex first, size_t max) const;

  // The first index of the run of entries with the same term as entry i
  // (snapshot_index() < i), not reaching below the snapshot point.
  LogIndex first_index_of_term_at(LogIndex i) const;
  // The last index holding `term`, or 0 when the log has no entry of that term.
  LogIndex last_index_of_term(Term term) const;

  // The bytes the entries in (from, to] hold (their payloads, about: keys,
  // values, sessions, members); snapshot_index() <= from <= to <=
  // last_index(). O(1): what a host compares with a memory budget, where an
  // entry count says nothing of entries of 100 KB.
  uint64_t bytes_between(LogIndex from, LogIndex to) const;
  // The bytes of every entry the log holds.
  uint64_t bytes() const { return bytes_between(snapshot_index_, last_index()); }

  // Raft §5.4.1: is a log ending at (last_term, last_index) at least as
  // up-to-date as this one?
  bool candidate_up_to_date(Term last_term, LogIndex last_index) const;

 private:
  LogIndex snapshot_index_;
  Term snapshot_term_;
  // The running byte total through index i (bytes_through_snapshot_ at the
  // snapshot point): monotonic, so compaction drops a prefix of ends_ without
  // rewriting the rest.
  uint64_t bytes_through(LogIndex i) const;

  std::vector<Entry> entries_;  // entries_[k] is index snapshot_index_ + k + 1
  std::vector<uint64_t> ends_;  // ends_[k]: bytes_through(snapshot_index_ + k + 1)
  uint64_t bytes_through_snapshot_ = 0;
};

}  // namespace statekv::replication::raft
