// The seed of a nemesis test's fault schedule: STATEKV_NEMESIS_SEED when set
// (to replay a schedule a run printed), else one drawn from the clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>

namespace statekv::itest {

inline uint64_t nemesis_seed() {
  if (const char* s = std::getenv("STATEKV_NEMESIS_SEED")) return std::strtoull(s, nullptr, 10);
  return static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) %
         1000000;
}

}  // namespace statekv::itest
