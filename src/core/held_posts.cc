#include "core/held_posts.h"

#include <utility>
#include <vector>

namespace statekv {
namespace {

struct Held {
  HeldPosts::Schedule schedule;  // empty: not holding
  bool flush_scheduled = false;
  // Each target with its handlers in post order; targets in first-post order
  // (a pass posts to one or two loops: a vector beats a map).
  std::vector<std::pair<asio::io_context*, std::vector<std::function<void()>>>> targets;
};
thread_local Held t_held;

}  // namespace

void HeldPosts::hold_on_this_thread(Schedule schedule) {
  if (!schedule) flush();
  t_held.schedule = std::move(schedule);
  t_held.flush_scheduled = false;
}

void HeldPosts::post(asio::io_context& target, std::function<void()> fn) {
  Held& held = t_held;
  if (!held.schedule) {
    asio::post(target, std::move(fn));
    return;
  }
  auto it = held.targets.begin();
  while (it != held.targets.end() && it->first != &target) ++it;
  if (it == held.targets.end()) {
    held.targets.emplace_back(&target, std::vector<std::function<void()>>{});
    it = held.targets.end() - 1;
  }
  it->second.push_back(std::move(fn));
  if (!held.flush_scheduled) {
    held.flush_scheduled = true;
    held.schedule([] { flush(); });
  }
}

void HeldPosts::flush() {
  Held& held = t_held;
  held.flush_scheduled = false;
  if (held.targets.empty()) return;
  auto targets = std::move(held.targets);
  held.targets.clear();
  for (auto& [target, fns] : targets) {
    if (fns.size() == 1) {
      asio::post(*target, std::move(fns.front()));
      continue;
    }
    asio::post(*target, [fns = std::move(fns)]() mutable {
      for (auto& fn : fns) fn();
    });
  }
}

}  // namespace statekv
