#include "sim/history_hash.h"

#include <xxhash.h>

#include <memory>

namespace statekv::sim {

uint64_t history_hash(const check::History& history) {
  std::unique_ptr<XXH64_state_t, decltype(&XXH64_freeState)> state(XXH64_createState(),
                                                                   &XXH64_freeState);
  XXH64_reset(state.get(), 0);
  for (const check::Event& e : history) {
    const std::string line = check::to_json_line(e);
    XXH64_update(state.get(), line.data(), line.size());
    XXH64_update(state.get(), "\n", 1);
  }
  return XXH64_digest(state.get());
}

}  // namespace statekv::sim
