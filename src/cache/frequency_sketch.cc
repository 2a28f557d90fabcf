#include "cache/frequency_sketch.h"

#include <algorithm>
#include <bit>

namespace statekv::cache {
namespace {

// Per-row seeds (Caffeine's), to derive four independent indexes from one hash.
constexpr uint64_t kSeeds[4] = {0xc3a5c85c97cb3127ULL, 0xb492b66fbe98f273ULL, 0x9ae16a3b2f90404fULL,
                                0xcbf29ce484222325ULL};

uint64_t mix(uint64_t x, uint64_t seed) {
  x = (x ^ seed) * 0x9e3779b97f4a7c15ULL;
  x ^= x >> 32;
  x *= 0xbf58476d1ce4e5b9ULL;
  return x ^ (x >> 29);
}

}  // namespace

FrequencySketch::FrequencySketch(size_t expected_entries)
    : expected_entries_(std::max<size_t>(expected_entries, 16)) {
  const uint64_t words = std::bit_ceil(static_cast<uint64_t>(expected_entries_));
  table_.assign(words, 0);
  table_mask_ = words * 16 - 1;
  const uint64_t door_bits = std::bit_ceil(static_cast<uint64_t>(expected_entries_) * 8);
  doorkeeper_.assign(door_bits / 64, 0);
  doorkeeper_mask_ = door_bits - 1;
  sample_size_ = 10 * static_cast<uint64_t>(expected_entries_);
}

size_t FrequencySketch::counter_index(uint64_t hash, int row) const {
  return static_cast<size_t>(mix(hash, kSeeds[row]) & table_mask_);
}

uint32_t FrequencySketch::counter_at(size_t index) const {
  return static_cast<uint32_t>((table_[index / 16] >> ((index % 16) * 4)) & 0xF);
}

bool FrequencySketch::doorkeeper_contains(uint64_t hash) const {
  for (int i = 0; i < 2; ++i) {
    const uint64_t bit = mix(hash, kSeeds[3 - i] + 1) & doorkeeper_mask_;
    if ((doorkeeper_[bit / 64] & (1ULL << (bit % 64))) == 0) return false;
  }
  return true;
}

bool FrequencySketch::doorkeeper_put(uint64_t hash) {
  bool present = true;
  for (int i = 0; i < 2; ++i) {
    const uint64_t bit = mix(hash, kSeeds[3 - i] + 1) & doorkeeper_mask_;
    uint64_t& word = doorkeeper_[bit / 64];
    if ((word & (1ULL << (bit % 64))) == 0) {
      present = false;
      word |= 1ULL << (bit % 64);
    }
  }
  return present;
}

void FrequencySketch::increment(uint64_t hash) {
  // The doorkeeper takes the first occurrence, so one-hit wonders never reach
  // the sketch's counters.
  if (doorkeeper_put(hash)) {
    // Conservative update: raise only the counters at the current minimum, which
    // keeps the overestimate of count-min small.
    size_t idx[4];
    uint32_t least = 15;
    for (int row = 0; row < 4; ++row) {
      idx[row] = counter_index(hash, row);
      least = std::min(least, counter_at(idx[row]));
    }
    if (least < 15) {
      for (int row = 0; row < 4; ++row) {
        if (counter_at(idx[row]) == least) table_[idx[row] / 16] += 1ULL << ((idx[row] % 16) * 4);
      }
    }
  }
  if (++additions_ >= sample_size_) reset();
}

uint32_t FrequencySketch::frequency(uint64_t hash) const {
  uint32_t least = 15;
  for (int row = 0; row < 4; ++row) least = std::min(least, counter_at(counter_index(hash, row)));
  return least + (doorkeeper_contains(hash) ? 1 : 0);
}

void FrequencySketch::reset() {
  // Halve every 4-bit counter at once: shift the word right by one and clear
  // the bit that moved in from the neighbouring counter.
  for (auto& word : table_) word = (word >> 1) & 0x7777777777777777ULL;
  std::fill(doorkeeper_.begin(), doorkeeper_.end(), 0);
  additions_ /= 2;
  ++resets_;
}

}  // namespace statekv::cache
