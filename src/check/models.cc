// The model registry behind `statekv check MODEL FILE`.
#include <fmt/format.h>

#include "check/checkers.h"

namespace statekv::check {
namespace {

using CheckFn = CheckResult (*)(const std::vector<Op>&);

struct Model {
  ModelInfo info;
  CheckFn fn;
};

const std::vector<Model>& registry() {
  static const std::vector<Model> kModels = {
      {{"linearizable",
        "every operation takes effect at one instant between its invoke and completion "
        "(per key)"},
       check_linearizable},
      {{"sequential", "one order of each key's operations that respects every process's own order"},
       check_sequential},
      {{"read-your-writes", "a process never reads a value older than one it wrote"},
       check_read_your_writes},
      {{"monotonic-reads", "a process never reads a value older than one it already read"},
       check_monotonic_reads},
      {{"monotonic-writes",
        "once a process read p's later write, it never reads p's earlier write (or older)"},
       check_monotonic_writes},
      {{"writes-follow-reads",
        "once a process read a write, it never reads what that write's author had read "
        "before it (or older)"},
       check_writes_follow_reads},
      {{"session", "all four session guarantees above"}, check_session},
      {{"causal",
        "no read returns a value overwritten by a write in its causal past (session order + "
        "reads-from)"},
       check_causal},
      {{"convergence", "the final reads of each key agree across nodes"}, check_convergence},
  };
  return kModels;
}

}  // namespace

std::string CheckStats::to_string() const {
  std::string out = fmt::format("operations={} keys={}", operations, keys);
  if (explored > 0) out += fmt::format(" explored={}", explored);
  if (segments > 0) out += fmt::format(" segments={}", segments);
  if (max_in_flight > 0) out += fmt::format(" max_in_flight={}", max_in_flight);
  return out;
}

const std::vector<ModelInfo>& models() {
  static const std::vector<ModelInfo> kInfos = [] {
    std::vector<ModelInfo> infos;
    for (const Model& m : registry()) infos.push_back(m.info);
    return infos;
  }();
  return kInfos;
}

Result<CheckResult> run_model(std::string_view model, const History& history) {
  for (const Model& m : registry()) {
    if (m.info.name != model) continue;
    auto ops = pair_operations(history);
    if (!ops.ok()) return ops.status();
    return m.fn(*ops);
  }
  return Status::InvalidArgument(fmt::format("unknown model \"{}\"", model));
}

}  // namespace statekv::check
