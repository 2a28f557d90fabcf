// BoundedStore — the memory-bounded map under the cache: key -> Entry, charged
// in bytes against a maximum, with one of two eviction policies:
//
//  * kWTinyLfu (default): Caffeine's W-TinyLFU (Einziger, Eytan, Friedman,
//    Manes: "Adaptive Software Cache Management", and Caffeine's
//    BoundedLocalCache). New entries enter a small LRU window (1% of the bytes);
//    what the window pushes out becomes a candidate for the main space, a
//    segmented LRU (probation 20%, protected 80%). When the cache is over its
//    bytes, a candidate is admitted only if its TinyLFU frequency (a
//    FrequencySketch, with doorkeeper and aging) is higher than that of the
//    victim at the LRU end of probation; otherwise the candidate is dropped.
//    A hit in probation promotes to protected; protected overflow is demoted to
//    probation. Every read (hit or miss) counts towards the key's frequency.
//  * kLru: one LRU list; evicts least recently used.
//
// Differences from Caffeine, on purpose for now: the window is a fixed
// fraction (no hill-climbing adaptation), and there is no random admission of
// warm candidates (Caffeine's defence against hash-flooding a hot victim).
//
// An entry is charged key.size() + value.size() + kEntryOverhead, the rough
// cost of its map node, list node and strings; an entry whose charge exceeds
// the maximum is refused (put returns false).
//
// Thread safety: none; the owner serialises calls. Pointers returned by find()
// stay valid until the next put/erase/clear.
//
// Invariants (checked by check_invariants() in tests): bytes() is the sum of
// the charges of the resident entries and, after every put, bytes() <=
// max_bytes(); the window, probation and protected lists hold each resident
// key exactly once.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "cache/frequency_sketch.h"

namespace statekv::cache {

// Transparent hashing, so string_view lookups need no temporary string.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

enum class Policy { kWTinyLfu, kLru };

// "w-tinylfu" / "lru".
const char* policy_name(Policy policy);

struct Entry {
  std::string value;
  bool absent = false;       // a negative entry: the store has no such key
  int64_t soft_expiry = 0;   // µs; the cache's own TTL (0 = none)
  int64_t hard_expiry = 0;   // µs; the key's TTL in the store (0 = none)
  int64_t load_cost_us = 0;  // how long the load that produced it took (XFetch's delta)
};

struct StoreOptions {
  Policy policy = Policy::kWTinyLfu;
  uint64_t max_bytes = 64ull << 20;
  double window_fraction = 0.01;    // of max_bytes, for the admission window
  double protected_fraction = 0.8;  // of the main space
};

class BoundedStore {
 public:
  static constexpr uint64_t kEntryOverhead = 96;

  explicit BoundedStore(const StoreOptions& options);
  BoundedStore(const BoundedStore&) = delete;
  BoundedStore& operator=(const BoundedStore&) = delete;

  // Looks the key up and records the access (frequency and recency); nullptr
  // when absent (the miss still counts towards the key's frequency).
  Entry* find(std::string_view key);
  // Inserts or replaces, then evicts down to max_bytes. Returns false (and
  // holds nothing for the key) when the entry alone is larger than max_bytes
  // or the admission policy rejected it.
  bool put(std::string_view key, Entry entry);
  // Drops the key; returns whether it was present.
  bool erase(std::string_view key);
  void clear();

  size_t size() const { return map_.size(); }
  uint64_t bytes() const { return bytes_; }
  uint64_t max_bytes() const { return options_.max_bytes; }
  uint64_t evictions() const { return evictions_; }
  Policy policy() const { return options_.policy; }

  static uint64_t charge(std::string_view key, const Entry& entry) {
    return key.size() + entry.value.size() + kEntryOverhead;
  }

  // Aborts (SKV_ASSERT) if an invariant above does not hold. O(n); tests only.
  void check_invariants() const;

 private:
  enum class Region : unsigned char { kWindow, kProbation, kProtected };
  struct Node;
  using List = std::list<Node*>;  // front = most recently used
  struct Node {
    Entry entry;
    const std::string* key = nullptr;  // the map's key, stable while resident
    uint64_t hash = 0;
    uint64_t charge = 0;
    Region region = Region::kWindow;
    List::iterator pos;
  };

  static uint64_t hash_key(std::string_view key);
  List& list_of(Region region);
  uint64_t& bytes_of(Region region);
  void move_to(Node& node, Region region);  // to the front of region's list
  void on_access(Node& node);
  void evict();
  void remove(Node& node, bool eviction);
  void record_frequency(uint64_t hash);

  StoreOptions options_;
  uint64_t window_max_;
  uint64_t protected_max_;
  std::unordered_map<std::string, Node, StringHash, std::equal_to<>> map_;
  List window_, probation_, protected_;
  uint64_t window_bytes_ = 0, probation_bytes_ = 0, protected_bytes_ = 0;
  uint64_t bytes_ = 0;
  uint64_t evictions_ = 0;
  std::unique_ptr<FrequencySketch> sketch_;  // W-TinyLFU only
};

}  // namespace statekv::cache
