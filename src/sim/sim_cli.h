// The `statekv sim` command line, as a library function.
//
//   statekv sim --protocol NAME [--seeds A..B] [--ops N] [--nodes K] [--clients C]
//               [--keys N] [--skew uniform|zipf] [--faults LIST] [--history FILE]
//               [--schedule FILE] [--min-ok F] [--verbose] [--list]
//
// It lives here rather than in src/cli/ so that tests can run the very same
// command against protocols registered only in tests (the reference registers):
// the `statekv` binary and a test differ only in the registry they pass.
// A seed passes when its history is linearizable AND at least --min-ok of its
// operations succeeded (default_min_ok() in judge.h unless given).
// Output: one line per seed (PASS/FAIL, the history hash, operations ok / fail /
// info and the fraction ok, events per second), then a summary with the
// fractions over all seeds; on failure, the reason (not linearizable, or too
// few operations ok), every derived parameter, the fault schedule, and the
// command that replays the seed.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "sim/registry.h"

namespace statekv::sim {

// args: the arguments after "sim". Returns the exit code: 0 when every seed
// passed (or for --list / --help), 1 when a seed failed the checker or the
// floor, or broke the simulator, 2 for bad usage (message on `err`).
int run_sim_cli(const std::vector<std::string>& args, const ProtocolRegistry& registry,
                std::ostream& out, std::ostream& err);

}  // namespace statekv::sim
