// FrequencySketch — TinyLFU's popularity estimate (Einziger, Friedman, Manes:
// "TinyLFU: A Highly Efficient Cache Admission Policy", and Caffeine's
// FrequencySketch): a count-min sketch of 4-bit counters, depth 4, in front of
// which sits a doorkeeper (a one-bit Bloom filter) that absorbs keys seen only
// once, and which ages by halving every counter after `sample_size` increments
// so that yesterday's popularity fades.
//
// Keys are given as 64-bit hashes; the caller hashes. Not thread-safe.
//
// Invariants: every counter is in [0, 15]; additions_ < sample_size_ between
// calls; after reset() (aging) every counter is the floor of half its old value
// and the doorkeeper is empty.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace statekv::cache {

class FrequencySketch {
 public:
  // Sized for about `expected_entries` distinct resident keys: a table of the
  // next power of two >= expected_entries 64-bit words (16 counters each) and a
  // doorkeeper of 8 bits per entry. Aging every 10 * expected_entries additions
  // (Caffeine's sample size).
  explicit FrequencySketch(size_t expected_entries);

  // Records one occurrence of the key.
  void increment(uint64_t hash);
  // Estimated occurrences since the last aging, 0..16 (15 from the sketch plus
  // one from the doorkeeper).
  uint32_t frequency(uint64_t hash) const;

  size_t expected_entries() const { return expected_entries_; }
  // Number of agings so far (for tests and INFO).
  uint64_t resets() const { return resets_; }

 private:
  void reset();
  bool doorkeeper_contains(uint64_t hash) const;
  // Returns true if the key was already present.
  bool doorkeeper_put(uint64_t hash);
  size_t counter_index(uint64_t hash, int row) const;
  uint32_t counter_at(size_t index) const;

  size_t expected_entries_;
  uint64_t table_mask_;  // number of counters - 1 (a power of two minus one)
  std::vector<uint64_t> table_;
  std::vector<uint64_t> doorkeeper_;
  uint64_t doorkeeper_mask_;
  uint64_t sample_size_;
  uint64_t additions_ = 0;
  uint64_t resets_ = 0;
};

}  // namespace statekv::cache
