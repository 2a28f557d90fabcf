#include "replication/raft/kv_state_machine.h"

#include "core/assert.h"
#include "replication/codec.h"

namespace statekv::replication::raft {

ClientResponse KvStateMachine::apply(const ClientRequest& command) {
  switch (command.op) {
    case ClientOp::kWrite:
      SKV_ASSERT(command.value.has_value(), "a write without a value");
      map_[command.key] = *command.value;
      return ClientResponse{};
    case ClientOp::kCas: {
      SKV_ASSERT(command.value.has_value(), "a cas without a new value");
      if (read(command.key) != command.expected) {
        ClientResponse mismatch;
        mismatch.outcome = ClientResponse::Outcome::kFail;
        return mismatch;
      }
      map_[command.key] = *command.value;
      return ClientResponse{};
    }
    case ClientOp::kDelete:
      map_.erase(command.key);
      return ClientResponse{};
    case ClientOp::kRead:
      break;
  }
  SKV_ASSERT(false, "a read was put in the raft log");
  return ClientResponse{};
}

ClientResponse KvStateMachine::read(const ClientRequest& request) const {
  ClientResponse r;
  r.value = read(request.key);
  return r;
}

Status KvStateMachine::restore(std::string_view snapshot, LogIndex) {
  Result<KvStateMachine> decoded = decode(snapshot);
  if (!decoded.ok()) return decoded.status();
  map_ = std::move(decoded->map_);
  return Status::OK();
}

std::optional<std::string> KvStateMachine::read(const std::string& key) const {
  auto it = map_.find(key);
  if (it == map_.end()) return std::nullopt;
  return it->second;
}

std::string KvStateMachine::encode() const {
  Writer w;
  w.varint(map_.size());
  for (const auto& [key, value] : map_) {
    w.bytes(key);
    w.bytes(value);
  }
  return std::move(w).take();
}

Result<KvStateMachine> KvStateMachine::decode(std::string_view bytes) {
  Reader r(bytes);
  Result<uint64_t> n = r.varint();
  if (!n.ok()) return n.status();
  KvStateMachine sm;
  for (uint64_t i = 0; i < *n; ++i) {
    Result<std::string> key = r.bytes();
    if (!key.ok()) return key.status();
    Result<std::string> value = r.bytes();
    if (!value.ok()) return value.status();
    sm.map_.emplace_hint(sm.map_.end(), std::move(key).value(), std::move(value).value());
  }
  if (!r.at_end()) return Status::Corruption("trailing bytes after the key-value snapshot");
  return sm;
}

}  // namespace statekv::replication::raft
