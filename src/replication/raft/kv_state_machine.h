// A replicated key-value register map: the StateMachine (state_machine.h) of
// the cluster metadata group and of the simulator's register workloads.
// Applies committed writes, cas and deletes in log order and says what each
// one's client should hear.
//
// Thread safety: a plain value.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "replication/env.h"
#include "replication/state_machine.h"

namespace statekv::replication::raft {

class KvStateMachine final : public StateMachine {
 public:
  // Applies a write, cas or delete; a cas whose expectation fails changes
  // nothing and answers kFail. A read must not be applied (reads go through
  // ReadIndex, not the log).
  ClientResponse apply(const ClientRequest& command) override;
  // The value of request.key.
  ClientResponse read(const ClientRequest& request) const override;
  std::string snapshot() const override { return encode(); }
  Status restore(std::string_view snapshot, LogIndex index) override;

  std::optional<std::string> read(const std::string& key) const;
  size_t size() const { return map_.size(); }

  // The whole map as bytes (a snapshot), and back. decode fails with
  // Corruption on bytes encode did not produce.
  std::string encode() const;
  static Result<KvStateMachine> decode(std::string_view bytes);

  bool operator==(const KvStateMachine& other) const { return map_ == other.map_; }

  // The registers in key order, and one set outside the log: for the
  // simulator, which mixes two states to model a restore cut short.
  const std::map<std::string, std::string>& registers() const { return map_; }
  void put_register(const std::string& key, std::string value) { map_[key] = std::move(value); }

 private:
  std::map<std::string, std::string> map_;
};

}  // namespace statekv::replication::raft
