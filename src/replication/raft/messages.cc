#include "replication/raft/messages.h"

namespace statekv::replication::raft {
namespace {

// Reads one field or returns its error from the enclosing decode function.
#define RAFT_READ(dst, expr)                  \
  do {                                        \
    auto field_ = (expr);                     \
    if (!field_.ok()) return field_.status(); \
    dst = std::move(field_).value();          \
  } while (0)

template <typename Id>
Status read_id(Reader& r, Id& out) {
  Result<uint64_t> v = r.varint();
  if (!v.ok()) return v.status();
  out = Id(*v);
  return Status::OK();
}

#define RAFT_READ_ID(dst)        \
  do {                           \
    Status s_ = read_id(r, dst); \
    if (!s_.ok()) return s_;     \
  } while (0)

}  // namespace

void encode_nodes(Writer& w, const std::vector<NodeId>& nodes) {
  w.varint(nodes.size());
  for (NodeId n : nodes) w.varint(n.value());
}

Result<std::vector<NodeId>> decode_nodes(Reader& r) {
  uint64_t n = 0;
  RAFT_READ(n, r.varint());
  if (n > r.remaining()) return Status::Corruption("node count exceeds message size");
  std::vector<NodeId> nodes;
  for (uint64_t i = 0; i < n; ++i) {
    NodeId id;
    RAFT_READ_ID(id);
    nodes.push_back(id);
  }
  return nodes;
}

bool Entry::operator==(const Entry& o) const {
  return term == o.term && kind == o.kind && command.id == o.command.id &&
         command.op == o.command.op && command.key == o.command.key &&
         command.value == o.command.value && command.expected == o.command.expected &&
         members == o.members;
}

void Entry::encode(Writer& w) const {
  w.varint(term.value());
  w.u8(static_cast<uint8_t>(kind));
  if (kind == Kind::kCommand) {
    w.varint(command.id.value());
    w.u8(static_cast<uint8_t>(command.op));
    w.bytes(command.key);
    w.optional_bytes(command.value);
    w.optional_bytes(command.expected);
  } else if (kind == Kind::kConfig) {
    encode_nodes(w, members);
  }
}

Result<Entry> Entry::decode(Reader& r) {
  Entry e;
  RAFT_READ_ID(e.term);
  uint8_t kind = 0;
  RAFT_READ(kind, r.u8());
  if (kind > static_cast<uint8_t>(Kind::kConfig)) return Status::Corruption("bad entry kind");
  e.kind = static_cast<Kind>(kind);
  if (e.kind == Kind::kCommand) {
    RAFT_READ_ID(e.command.id);
    uint8_t op = 0;
    RAFT_READ(op, r.u8());
    if (op > static_cast<uint8_t>(ClientOp::kDelete)) return Status::Corruption("bad client op");
    e.command.op = static_cast<ClientOp>(op);
    RAFT_READ(e.command.key, r.bytes());
    RAFT_READ(e.command.value, r.optional_bytes());
    RAFT_READ(e.command.expected, r.optional_bytes());
  } else if (e.kind == Kind::kConfig) {
    RAFT_READ(e.members, decode_nodes(r));
  }
  return e;
}

void VoteRequest::encode(Writer& w) const {
  w.varint(term.value());
  w.varint(last_index.value());
  w.varint(last_term.value());
  w.boolean(pre_vote);
}

Result<VoteRequest> VoteRequest::decode(Reader& r) {
  VoteRequest m;
  RAFT_READ_ID(m.term);
  RAFT_READ_ID(m.last_index);
  RAFT_READ_ID(m.last_term);
  RAFT_READ(m.pre_vote, r.boolean());
  return m;
}

void VoteReply::encode(Writer& w) const {
  w.varint(term.value());
  w.boolean(granted);
  w.boolean(pre_vote);
}

Result<VoteReply> VoteReply::decode(Reader& r) {
  VoteReply m;
  RAFT_READ_ID(m.term);
  RAFT_READ(m.granted, r.boolean());
  RAFT_READ(m.pre_vote, r.boolean());
  return m;
}

void AppendEntries::encode(Writer& w) const {
  w.varint(term.value());
  w.varint(prev_index.value());
  w.varint(prev_term.value());
  w.varint(leader_commit.value());
  w.varint(round);
  w.varint(entries.size());
  for (const Entry& e : entries) e.encode(w);
  w.boolean(quiesce);
}

Result<AppendEntries> AppendEntries::decode(Reader& r) {
  AppendEntries m;
  RAFT_READ_ID(m.term);
  RAFT_READ_ID(m.prev_index);
  RAFT_READ_ID(m.prev_term);
  RAFT_READ_ID(m.leader_commit);
  RAFT_READ(m.round, r.varint());
  uint64_t n = 0;
  RAFT_READ(n, r.varint());
  // Every entry takes at least two bytes: a count beyond that is garbage, and
  // must not make us reserve memory for it.
  if (n > r.remaining() / 2) return Status::Corruption("entry count exceeds message size");
  m.entries.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    Result<Entry> e = Entry::decode(r);
    if (!e.ok()) return e.status();
    m.entries.push_back(std::move(e).value());
  }
  RAFT_READ(m.quiesce, r.boolean());
  return m;
}

void AppendReply::encode(Writer& w) const {
  w.varint(term.value());
  w.boolean(success);
  w.varint(match_index.value());
  w.varint(conflict_index.value());
  w.varint(conflict_term.value());
  w.varint(round);
  w.varint(applied_index.value());
  w.boolean(needs_snapshot);
}

Result<AppendReply> AppendReply::decode(Reader& r) {
  AppendReply m;
  RAFT_READ_ID(m.term);
  RAFT_READ(m.success, r.boolean());
  RAFT_READ_ID(m.match_index);
  RAFT_READ_ID(m.conflict_index);
  RAFT_READ_ID(m.conflict_term);
  RAFT_READ(m.round, r.varint());
  if (!r.at_end()) RAFT_READ_ID(m.applied_index);
  if (!r.at_end()) RAFT_READ(m.needs_snapshot, r.boolean());
  return m;
}

void InstallSnapshot::encode(Writer& w) const {
  w.varint(term.value());
  w.varint(last_index.value());
  w.varint(last_term.value());
  w.varint(round);
  encode_nodes(w, config);
  w.bytes(state);
  w.varint(offset);
  w.varint(total);
}

Result<InstallSnapshot> InstallSnapshot::decode(Reader& r) {
  InstallSnapshot m;
  RAFT_READ_ID(m.term);
  RAFT_READ_ID(m.last_index);
  RAFT_READ_ID(m.last_term);
  RAFT_READ(m.round, r.varint());
  RAFT_READ(m.config, decode_nodes(r));
  RAFT_READ(m.state, r.bytes());
  RAFT_READ(m.offset, r.varint());
  RAFT_READ(m.total, r.varint());
  if (m.offset > m.total || m.state.size() > m.total - m.offset) {
    return Status::Corruption("snapshot chunk reaches past the snapshot's end");
  }
  return m;
}

void InstallSnapshotReply::encode(Writer& w) const {
  w.varint(term.value());
  w.varint(last_index.value());
  w.varint(offset);
  w.varint(round);
}

Result<InstallSnapshotReply> InstallSnapshotReply::decode(Reader& r) {
  InstallSnapshotReply m;
  RAFT_READ_ID(m.term);
  RAFT_READ_ID(m.last_index);
  RAFT_READ(m.offset, r.varint());
  RAFT_READ(m.round, r.varint());
  return m;
}

void TimeoutNow::encode(Writer& w) const {
  w.varint(term.value());
}

Result<TimeoutNow> TimeoutNow::decode(Reader& r) {
  TimeoutNow m;
  RAFT_READ_ID(m.term);
  return m;
}

#undef RAFT_READ
#undef RAFT_READ_ID

}  // namespace statekv::replication::raft
