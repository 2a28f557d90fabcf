#include "replication/raft/log.h"

#include "core/assert.h"

namespace statekv::replication::raft {

Term RaftLog::term_at(LogIndex i) const {
  if (i == snapshot_index_) return snapshot_term_;
  if (i < snapshot_index_ || i > last_index()) return Term(0);
  return entries_[i.value() - snapshot_index_.value() - 1].term;
}

const Entry& RaftLog::at(LogIndex i) const {
  SKV_ASSERT(i > snapshot_index_ && i <= last_index(), "log index out of range");
  return entries_[i.value() - snapshot_index_.value() - 1];
}

namespace {

// What an entry holds in memory, about: its strings and members, and a fixed
// part for the rest.
uint64_t entry_bytes(const Entry& e) {
  const ClientRequest& c = e.command;
  return 64 + c.key.size() + (c.value ? c.value->size() : 0) +
         (c.expected ? c.expected->size() : 0) + c.session.size() +
         e.members.size() * sizeof(NodeId);
}

}  // namespace

void RaftLog::append(Entry e) {
  ends_.push_back(bytes_through(last_index()) + entry_bytes(e));
  entries_.push_back(std::move(e));
}

void RaftLog::replace_from(LogIndex first, std::vector<Entry> entries) {
  SKV_ASSERT(first > snapshot_index_ && first <= last_index().next(), "gap in the raft log");
  entries_.resize(first.value() - snapshot_index_.value() - 1);
  ends_.resize(entries_.size());
  for (Entry& e : entries) {
    SKV_ASSERT(last_term() <= e.term, "log terms must not decrease");
    append(std::move(e));
  }
}

uint64_t RaftLog::bytes_through(LogIndex i) const {
  if (i == snapshot_index_) return bytes_through_snapshot_;
  return ends_[i.value() - snapshot_index_.value() - 1];
}

uint64_t RaftLog::bytes_between(LogIndex from, LogIndex to) const {
  SKV_ASSERT(from >= snapshot_index_ && from <= to && to <= last_index(),
             "log byte range out of range");
  return bytes_through(to) - bytes_through(from);
}

void RaftLog::compact_to(LogIndex index) {
  SKV_ASSERT(index >= snapshot_index_ && index <= last_index(), "compaction out of range");
  const Term t = term_at(index);
  bytes_through_snapshot_ = bytes_through(index);
  const auto dropped = static_cast<std::ptrdiff_t>(index.value() - snapshot_index_.value());
  entries_.erase(entries_.begin(), entries_.begin() + dropped);
  ends_.erase(ends_.begin(), ends_.begin() + dropped);
  snapshot_index_ = index;
  snapshot_term_ = t;
}

void RaftLog::reset_to_snapshot(LogIndex index, Term term) {
  if (index >= snapshot_index_ && index <= last_index() && term_at(index) == term) {
    // The same history through `index`: what follows it stays (a snapshot at
    // the compaction point itself changes nothing).
    if (index > snapshot_index_) compact_to(index);
    return;
  }
  entries_.clear();
  ends_.clear();
  snapshot_index_ = index;
  snapshot_term_ = term;
}

std::vector<Entry> RaftLog::slice(LogIndex first, size_t max) const {
  SKV_ASSERT(first > snapshot_index_, "slice of compacted entries");
  std::vector<Entry> out;
  for (uint64_t i = first.value(); i <= last_index().value() && out.size() < max; ++i) {
    out.push_back(at(LogIndex(i)));
  }
  return out;
}

LogIndex RaftLog::first_index_of_term_at(LogIndex i) const {
  const Term t = term_at(i);
  uint64_t k = i.value();
  while (k > snapshot_index_.value() + 1 && term_at(LogIndex(k - 1)) == t) --k;
  return LogIndex(k);
}

LogIndex RaftLog::last_index_of_term(Term term) const {
  for (uint64_t k = last_index().value(); k > snapshot_index_.value(); --k) {
    const Term t = term_at(LogIndex(k));
    if (t == term) return LogIndex(k);
    if (t < term) break;  // terms do not decrease: no earlier entry can match
  }
  return LogIndex(0);
}

bool RaftLog::candidate_up_to_date(Term last_term, LogIndex last_index) const {
  if (last_term != this->last_term()) return last_term > this->last_term();
  return last_index >= this->last_index();
}

}  // namespace statekv::replication::raft
