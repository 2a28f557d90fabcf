#include "coord/leader_balance.h"

#include <algorithm>

namespace statekv::coord {

std::optional<NodeId> leadership_handover_target(const LeaderBalanceView& view) {
  if (view.members.empty()) return std::nullopt;
  const NodeId preferred = view.members.front();
  if (preferred == view.self) return std::nullopt;
  auto it = view.match.find(preferred);
  if (it == view.match.end() || it->second != view.last_index) return std::nullopt;
  if (!view.reachable || !view.reachable(preferred)) return std::nullopt;
  if (view.receiving_snapshot && view.receiving_snapshot(preferred)) return std::nullopt;
  for (const auto* others : {&view.match, &view.learners}) {
    for (const auto& [node, match] : *others) {
      if (node == preferred || node == view.self || !view.reachable(node)) continue;
      if (match != view.last_index) return std::nullopt;
    }
  }
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

bool HandoverBackoff::may_try(uint64_t group, NodeId target, Clock::time_point now) const {
  auto it = groups_.find(group);
  if (it == groups_.end() || it->second.target != target) return true;
  return !it->second.outstanding && now >= it->second.next;
}

void HandoverBackoff::tried(uint64_t group, NodeId target, Clock::time_point now) {
  Tries& t = groups_[group];
  if (t.target != target) t = Tries{.target = target};
  t.outstanding = true;
  t.next = now;
}

void HandoverBackoff::leading(uint64_t group, Clock::time_point now) {
  auto it = groups_.find(group);
  if (it == groups_.end() || !it->second.outstanding) return;
  Tries& t = it->second;
  t.outstanding = false;
  ++t.failures;
  // 2 s, 4 s, 8 s, ... kMaxWait.
  const auto wait = std::chrono::seconds(uint64_t{1} << std::min<uint32_t>(t.failures, 6));
  t.next = now + std::min<std::chrono::seconds>(wait, kMaxWait);
}

void HandoverBackoff::not_leading(uint64_t group) { groups_.erase(group); }

uint32_t HandoverBackoff::failures(uint64_t group) const {
  auto it = groups_.find(group);
  return it == groups_.end() ? 0 : it->second.failures;
}

}  // namespace statekv::coord
