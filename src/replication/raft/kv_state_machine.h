// The replicated key-value state machine: applies committed commands in log
// order and says what each one's client should hear.
//
// Deterministic: every replica that applies the same commands in the same order
// holds the same map and computes the same responses (a cas that fails on one
// fails on all), which is what lets any replica answer for the leader.
//
// Thread safety: a plain value.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "replication/env.h"

namespace statekv::replication::raft {

class KvStateMachine {
 public:
  // Applies a write, cas or delete; a cas whose expectation fails changes
  // nothing and answers kFail. A read must not be applied (reads go through
  // ReadIndex, not the log).
  ClientResponse apply(const ClientRequest& command);

  std::optional<std::string> read(const std::string& key) const;
  size_t size() const { return map_.size(); }

  // The whole map as bytes (a snapshot), and back. decode fails with
  // Corruption on bytes encode did not produce.
  std::string encode() const;
  static Result<KvStateMachine> decode(std::string_view bytes);

  bool operator==(const KvStateMachine&) const = default;

 private:
  std::map<std::string, std::string> map_;
};

}  // namespace statekv::replication::raft
