// Causal visibility: no read returns a value overwritten by a write in its causal
// past. Definition and limits in checkers.h and docs/checkers.md.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "check/causal_order.h"
#include "check/checkers.h"

namespace statekv::check {

CheckResult check_causal(const std::vector<Op>& ops) {
  CheckResult result;
  result.stats.operations = static_cast<int64_t>(ops.size());
  CausalOrder order(ops);
  if (!order.violation().empty()) {
    result.valid = false;
    result.explanation = order.violation();
    return result;
  }
  // Per key, per lane: the included writes (state changes) in session order. The
  // latest of a lane's writes in a read's causal past is the only one to test:
  // anything older than an earlier one is older than it too.
  std::map<std::string_view, std::vector<std::vector<uint32_t>>> writes;
  for (const Op& op : ops) {
    if (op.f == OpFunction::kRead || !order.included(op.id)) continue;
    auto& lanes = writes[op.key];
    if (lanes.empty()) lanes.resize(order.lanes());
    lanes[order.lane(op.id)].push_back(static_cast<uint32_t>(op.id));
  }
  result.stats.keys = static_cast<int64_t>(writes.size());
  for (const Op& op : ops) {
    if (op.outcome != EventType::kOk) continue;
    if (op.f != OpFunction::kRead && op.f != OpFunction::kCas) continue;
    const int32_t u = order.writer_of(op.id);
    const bool deletes = order.key_has_deletes(op.key);
    if (u == kAmbiguous || (u == kInitial && deletes)) continue;
    auto it = writes.find(op.key);
    if (it == writes.end()) continue;
    const uint32_t* clock = order.clock(op.id);
    for (size_t l = 0; l < it->second.size(); ++l) {
      const auto& lane = it->second[l];
      // Writes of lane l in the read's past: session index < clock[l], and for the
      // read's own lane strictly before the read itself.
      uint64_t bound = l == order.lane(op.id) ? op.session_index : clock[l];
      auto end = std::partition_point(lane.begin(), lane.end(),
                                      [&](uint32_t w) { return ops[w].session_index < bound; });
      if (end == lane.begin()) continue;
      const uint32_t w = *(end - 1);
      if (static_cast<int32_t>(w) == u) continue;
      if (!order.older(u, w, deletes)) continue;
      std::string seen =
          u == kInitial
              ? std::string("absent (the initial state)")
              : fmt::format("{} from {}",
                            describe_value(op.f == OpFunction::kRead ? op.value : op.cas_expected),
                            describe(ops[u]));
      result.valid = false;
      result.explanation = fmt::format(
          "causal order broken on key {}: {} observed {}, but {} is in its causal past and "
          "overwrote that value (the observed write causally precedes it)",
          op.key, describe(op), seen, describe(ops[w]));
      return result;
    }
  }
  return result;
}

}  // namespace statekv::check
