#include "storage/durability_tracker.h"

#include <utility>
#include <vector>

namespace statekv::storage {

void DurabilityTracker::advance(Sequence seq) {
  Sequence cur = durable_.load(std::memory_order_relaxed);
  while (cur < seq && !durable_.compare_exchange_weak(cur, seq, std::memory_order_seq_cst)) {
  }
  if (pending_.load(std::memory_order_seq_cst) == 0) return;
  release_covered();
}

void DurabilityTracker::when_durable(Sequence seq, std::function<void()> callback) {
  if (seq <= durable_.load(std::memory_order_seq_cst) || failed_.load(std::memory_order_seq_cst)) {
    callback();
    return;
  }
  {
    std::lock_guard lock(mu_);
    waiters_.emplace(seq, std::move(callback));
    pending_.fetch_add(1, std::memory_order_seq_cst);
  }
  // advance() may have raised durable_ between our first check and the insert
  // without seeing pending_ > 0; re-check so the callback is not stranded.
  if (seq <= durable_.load(std::memory_order_seq_cst)) release_covered();
  if (failed_.load(std::memory_order_seq_cst)) fail();  // fail() ran before the insert
}

void DurabilityTracker::fail() {
  failed_.store(true, std::memory_order_seq_cst);
  std::vector<std::function<void()>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [seq, cb] : waiters_) all.push_back(std::move(cb));
    waiters_.clear();
    pending_.fetch_sub(all.size(), std::memory_order_seq_cst);
  }
  for (auto& cb : all) cb();
}

void DurabilityTracker::recover(Sequence seq) {
  failed_.store(false, std::memory_order_seq_cst);
  advance(seq);
}

void DurabilityTracker::release_covered() {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lock(mu_);
    const Sequence durable = durable_.load(std::memory_order_seq_cst);
    auto end = waiters_.upper_bound(durable);
    for (auto it = waiters_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
    waiters_.erase(waiters_.begin(), end);
    pending_.fetch_sub(ready.size(), std::memory_order_seq_cst);
  }
  for (auto& cb : ready) cb();
}

}  // namespace statekv::storage
