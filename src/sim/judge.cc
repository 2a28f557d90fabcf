#include "sim/judge.h"

#include "check/checkers.h"

namespace statekv::sim {

double default_min_ok(const SimOptions& options) {
  return options.faults.any() || options.schedule ? kMinOkUnderFaults : kMinOkWithoutFaults;
}

Result<Verdict> judge_linearizable(const check::History& history) {
  Result<check::CheckResult> r = check::run_model("linearizable", history);
  if (!r.ok()) return r.status();
  return Verdict{r->valid, r->explanation};
}

Result<SeedReport> simulate_and_judge(const ProtocolEntry& protocol, const SimOptions& options) {
  Result<SimResult> run = run_simulation(protocol, options);
  if (!run.ok()) return run.status();
  Result<Verdict> verdict = judge_linearizable(run->history);
  if (!verdict.ok()) return verdict.status();
  return SeedReport{std::move(run).value(), std::move(verdict).value()};
}

}  // namespace statekv::sim
