// Convergence: after the heal, every node's final read of a key returns the same
// value. Which reads are final is defined in checkers.h.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "check/checkers.h"

namespace statekv::check {

CheckResult check_convergence(const std::vector<Op>& ops) {
  CheckResult result;
  result.stats.operations = static_cast<int64_t>(ops.size());
  auto final_read = [](const Op& op) {
    return op.outcome == EventType::kOk && op.f == OpFunction::kRead && op.node >= 0;
  };
  const bool marked = std::any_of(ops.begin(), ops.end(), [&](const Op& op) {
    return final_read(op) && op.session == "final";
  });
  // key -> node -> the final read (the latest completion wins when unmarked).
  std::map<std::string_view, std::map<int64_t, const Op*>> finals;
  for (const Op& op : ops) {
    if (!final_read(op) || (marked && op.session != "final")) continue;
    const Op*& slot = finals[op.key][op.node];
    if (slot == nullptr || op.complete_time >= slot->complete_time) slot = &op;
  }
  result.stats.keys = static_cast<int64_t>(finals.size());
  if (finals.empty()) {
    result.valid = false;
    result.explanation =
        "no final reads to compare: convergence needs ok reads carrying a \"node\" field "
        "(optionally marked with session \"final\")";
    return result;
  }
  for (const auto& [key, by_node] : finals) {
    const Op* first = by_node.begin()->second;
    for (const auto& [node, op] : by_node) {
      if (op->value == first->value) continue;
      std::string lines;
      for (const auto& [n, o] : by_node) {
        lines += fmt::format("\n  - node {}: {} ({})", n, describe_value(o->value), describe(*o));
      }
      result.valid = false;
      result.explanation = fmt::format(
          "replicas diverged on key {}: node {} has {} but node {} has {}; final reads:{}", key,
          first->node, describe_value(first->value), node, describe_value(op->value), lines);
      return result;
    }
  }
  return result;
}

}  // namespace statekv::check
