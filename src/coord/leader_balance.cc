#include "coord/leader_balance.h"

namespace statekv::coord {

std::optional<NodeId> leadership_handover_target(const LeaderBalanceView& view) {
  if (view.members.empty()) return std::nullopt;
  const NodeId preferred = view.members.front();
  if (preferred == view.self) return std::nullopt;
  auto it = view.match.find(preferred);
  if (it == view.match.end() || it->second != view.last_index) return std::nullopt;
  if (!view.reachable || !view.reachable(preferred)) return std::nullopt;
  return preferred;
}

std::optional<NodeId> stop_handover_target(const LeaderBalanceView& view) {
  std::optional<NodeId> target;
  LogIndex best;
  for (const auto& [node, match] : view.match) {
    if (node == view.self || !view.reachable || !view.reachable(node)) continue;
    if (!target || match > best) {
      target = node;
      best = match;
    }
  }
  return target;
}

}  // namespace statekv::coord
