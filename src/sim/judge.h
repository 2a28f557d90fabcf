// Running one seed and judging its history.
//
// The simulator records; the checkers of check/ judge. This is the one place
// the two meet, so swapping or adding a model for simulated runs is one edit.
#pragma once

#include <string>

#include "check/history.h"
#include "core/status.h"
#include "sim/simulator.h"

namespace statekv::sim {

struct Verdict {
  bool valid = false;
  std::string explanation;  // why not, when !valid
};

// Judges a history of single-key register operations for linearizability.
// An error status means the history itself is malformed (a simulator bug).
Result<Verdict> judge_linearizable(const check::History& history);

struct SeedReport {
  SimResult run;
  Verdict verdict;
};

// run_simulation() followed by judge_linearizable().
Result<SeedReport> simulate_and_judge(const ProtocolEntry& protocol, const SimOptions& options);

}  // namespace statekv::sim
