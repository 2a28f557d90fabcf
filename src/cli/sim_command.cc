// `statekv sim`: run a registered protocol in the deterministic simulator over a
// range of seeds and judge each history (src/sim/sim_cli.h has the options).
//
// The protocols the binary can simulate are registered below, explicitly, as
// they land (see docs/simulation.md, "Adding a protocol"). The reference
// registers are test-only and live in src/sim/testing/.
#include <iostream>
#include <string>
#include <vector>

#include "cli/subcommand.h"
#include "replication/raft/raft.h"
#include "sim/group_host.h"
#include "sim/registry.h"
#include "sim/sim_cli.h"

namespace statekv::cli {
namespace {

sim::ProtocolRegistry binary_protocols() {
  sim::ProtocolRegistry registry;
  // One line per protocol.
  registry.add<replication::raft::RaftKv>(
      "raft", "raft consensus: PreVote, CheckQuorum, pipelined replication, ReadIndex reads");
  registry.add(sim::group_host_entry(
      "raft-groups",
      "raft per shard: 8 raft groups of 3 spread over the nodes, one host and one log per node",
      [](GroupId) { return sim::ProtocolFactory(&sim::host<replication::raft::RaftKv>); }, 8, 3));
  return registry;
}

SubcommandRegistration sim_command([](CLI::App& app, int* exit_code) {
  CLI::App* sub = app.add_subcommand(
      "sim", "run a protocol in the deterministic simulator (statekv sim --help for options)");
  // sim_cli parses its own options (the same code runs in tests), so hand it everything.
  sub->set_help_flag();
  sub->allow_extras();
  sub->callback([sub, exit_code] {
    *exit_code = sim::run_sim_cli(sub->remaining(), binary_protocols(), std::cout, std::cerr);
  });
});

}  // namespace
}  // namespace statekv::cli
