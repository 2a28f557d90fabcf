#include "server/context.h"

namespace statekv::server {

ServerStats::Slot& ServerStats::local() {
  thread_local Slot* slot = nullptr;
  thread_local const ServerStats* owner = nullptr;
  if (owner != this) {
    slot = &slots_[next_.fetch_add(1, std::memory_order_relaxed) % kSlots];
    owner = this;
  }
  return *slot;
}

uint64_t ServerStats::sum(std::atomic<uint64_t> Slot::*field) const {
  uint64_t total = 0;
  for (const auto& slot : slots_) total += (slot.*field).load(std::memory_order_relaxed);
  return total;
}

}  // namespace statekv::server
