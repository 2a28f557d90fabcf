#include "replication/raft/records.h"

namespace statekv::replication::raft {
namespace {

constexpr uint8_t kHardState = 1;
constexpr uint8_t kEntries = 2;
constexpr uint8_t kCheckpoint = 3;

}  // namespace

std::string encode_hard_state(const HardState& hs) {
  Writer w;
  w.u8(kHardState);
  w.varint(hs.term.value());
  w.varint(hs.voted_for.value());
  return std::move(w).take();
}

std::string encode_entries(LogIndex first, const std::vector<Entry>& entries) {
  Writer w;
  w.u8(kEntries);
  w.varint(first.value());
  w.varint(entries.size());
  for (const Entry& e : entries) e.encode(w);
  return std::move(w).take();
}

std::string encode_checkpoint(const HardState& hs, const RaftLog& log,
                              const std::vector<NodeId>& snapshot_config, std::string_view state) {
  Writer w;
  w.u8(kCheckpoint);
  w.varint(hs.term.value());
  w.varint(hs.voted_for.value());
  w.varint(log.snapshot_index().value());
  w.varint(log.snapshot_term().value());
  encode_nodes(w, snapshot_config);
  w.bytes(state);
  const std::vector<Entry> tail = log.slice(log.snapshot_index().next(), SIZE_MAX);
  w.varint(tail.size());
  for (const Entry& e : tail) e.encode(w);
  return std::move(w).take();
}

Result<RecoveredState> recover(const std::vector<std::string>& records) {
  RecoveredState state;
  for (size_t k = 0; k < records.size(); ++k) {
    Reader r(records[k]);
    Result<uint8_t> kind = r.u8();
    if (!kind.ok()) return kind.status();
    if (*kind == kHardState) {
      Result<uint64_t> term = r.varint();
      if (!term.ok()) return term.status();
      Result<uint64_t> vote = r.varint();
      if (!vote.ok()) return vote.status();
      state.hard_state = HardState{Term(*term), NodeId(*vote)};
    } else if (*kind == kEntries) {
      Result<uint64_t> first = r.varint();
      if (!first.ok()) return first.status();
      Result<uint64_t> n = r.varint();
      if (!n.ok()) return n.status();
      if (*first <= state.log.snapshot_index().value() ||
          *first > state.log.last_index().value() + 1) {
        return Status::Corruption("raft record " + std::to_string(k) + " leaves a gap in the log");
      }
      std::vector<Entry> entries;
      for (uint64_t i = 0; i < *n; ++i) {
        Result<Entry> e = Entry::decode(r);
        if (!e.ok()) return e.status();
        entries.push_back(std::move(e).value());
      }
      if (!entries.empty() && entries.front().term < state.log.term_at(LogIndex(*first - 1))) {
        return Status::Corruption("raft record " + std::to_string(k) + " decreases the term");
      }
      state.log.replace_from(LogIndex(*first), std::move(entries));
    } else if (*kind == kCheckpoint) {
      uint64_t v[4];
      for (uint64_t& x : v) {
        Result<uint64_t> f = r.varint();
        if (!f.ok()) return f.status();
        x = *f;
      }
      Result<std::vector<NodeId>> config = decode_nodes(r);
      if (!config.ok()) return config.status();
      Result<std::string> snapshot = r.bytes();
      if (!snapshot.ok()) return snapshot.status();
      Result<uint64_t> n = r.varint();
      if (!n.ok()) return n.status();
      RecoveredState fresh;
      fresh.hard_state = HardState{Term(v[0]), NodeId(v[1])};
      fresh.log.reset_to_snapshot(LogIndex(v[2]), Term(v[3]));
      fresh.snapshot = std::move(snapshot).value();
      fresh.snapshot_config = std::move(config).value();
      std::vector<Entry> entries;
      for (uint64_t i = 0; i < *n; ++i) {
        Result<Entry> e = Entry::decode(r);
        if (!e.ok()) return e.status();
        entries.push_back(std::move(e).value());
      }
      if (!entries.empty() && entries.front().term < fresh.log.snapshot_term()) {
        return Status::Corruption("raft checkpoint " + std::to_string(k) + " decreases the term");
      }
      fresh.log.replace_from(fresh.log.snapshot_index().next(), std::move(entries));
      state = std::move(fresh);
    } else {
      return Status::Corruption("unknown raft record kind " + std::to_string(*kind));
    }
    if (!r.at_end()) return Status::Corruption("trailing bytes in raft record");
  }
  return state;
}

}  // namespace statekv::replication::raft
