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

// The default floor on SimResult::ok_fraction() for a run with these options:
// kMinOkUnderFaults when the run has any fault (random faults or a hand-written
// schedule), else kMinOkWithoutFaults. A run below its floor proves little even
// when its history is linearizable: most of what it judged are operations that
// did nothing. Without faults the only failures left are definite answers
// (a cas whose expectation did not hold): 3-8% of a default run, up to 12%
// with 16 clients on one key, and up to 20% of a run of only 10 operations.
inline constexpr double kMinOkUnderFaults = 0.5;
inline constexpr double kMinOkWithoutFaults = 0.8;
double default_min_ok(const SimOptions& options);

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
