// Running the `statekv` binary's own subcommands from tests (cluster up /
// add-node / remove-node / down, check), and picking ports for a local cluster.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace statekv::itest {

// Runs `statekv ARGS...` and waits; its exit status and its stdout+stderr.
std::pair<int, std::string> run_statekv(const std::vector<std::string>& args);

// A base port for `statekv cluster up --base-port`: RESP ports base..base+count-1
// and peer ports +10000 free a moment ago, all below the ephemeral port range,
// and reserved for the rest of this process (net.h reserve_ports). 0 if none
// was found.
uint16_t pick_cluster_base_port(uint16_t count);

// Stops the local cluster under `data` (statekv cluster down) when destroyed.
struct LocalClusterGuard {
  std::string data;
  ~LocalClusterGuard();
};

}  // namespace statekv::itest
