// The protocols `statekv sim` (and run_sim_cli) can run, by name.
//
// A registry is an explicit value, filled by whoever builds the runner: the
// `statekv` binary fills one in src/cli/sim_command.cc, tests fill their own with
// the test-only reference registers. There is deliberately no global
// self-registration: protocols live in static libraries, and the linker drops a
// static registrar nothing references.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sim/protocol_host.h"

namespace statekv::sim {

using ProtocolFactory = std::function<std::unique_ptr<HostedNode>(
    ByteEnv& env, const replication::Membership& membership, std::vector<std::string> recovered)>;

struct ProtocolEntry {
  std::string name;
  std::string description;  // one line, shown by `statekv sim --list`
  ProtocolFactory factory;
};

class ProtocolRegistry {
 public:
  // Adds a protocol; the name must not be registered already.
  void add(ProtocolEntry entry);

  template <replication::ReplicationProtocol P>
  void add(std::string name, std::string description) {
    add(ProtocolEntry{std::move(name), std::move(description), &host<P>});
  }

  // nullptr when no protocol has that name.
  const ProtocolEntry* find(std::string_view name) const;
  const std::vector<ProtocolEntry>& entries() const { return entries_; }

 private:
  std::vector<ProtocolEntry> entries_;
};

}  // namespace statekv::sim
