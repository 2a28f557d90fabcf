// The fingerprint of a history: XXH64 (seed 0) of its JSON Lines text, each
// line followed by '\n' — the same bytes write_history() produces. Two runs
// that print the same hash recorded the same history, byte for byte.
#pragma once

#include <cstdint>

#include "check/history.h"

namespace statekv::sim {

uint64_t history_hash(const check::History& history);

}  // namespace statekv::sim
