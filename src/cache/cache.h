// Cache — the sans-IO core of `statekv cache`: a BoundedStore plus everything
// that decides when to load from the store and who waits for whom.
//
// The caller owns the clock (every call takes now_us, a monotonic time in
// microseconds), the I/O (it performs the loads the core asks for) and the
// waiters (opaque ids the core hands back when a load completes). Randomness
// (XFetch) comes from the Random the caller hands in.
//
// A read is get(key, now, waiter):
//   kHit       value is fresh (or stale under stale-while-revalidate): answer it.
//              If refresh_token != 0 the caller should also load the key in
//              the background and call complete()/fail() with that token
//              (XFetch early refresh, or a stale value being revalidated).
//   kHitAbsent a negative entry: the store had no such key a moment ago.
//   kLoad      the caller must load the key and call complete()/fail() with
//              load_token. With coalescing on, it is the only loader of the
//              key; later readers get kWait until it completes.
//   kWait      the waiter id was attached to the load in flight; complete()
//              or fail() returns it.
//
// Consistency: a load that was in flight when the key was invalidated (or
// written through with put()) still answers the readers that were waiting for
// it — they asked before the write finished — but its value is not stored, and
// readers arriving after the invalidation start a new load. This closes, inside
// one cache, the cache-aside race of "read old value, write+invalidate, store
// old value" (docs/cache.md).
//
// Thread safety: none; the owner serialises calls.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cache/bounded_store.h"
#include "core/random.h"
#include "core/status.h"

namespace statekv::cache {

struct CacheOptions {
  StoreOptions store;
  // How long a loaded value is fresh (µs); 0 = until evicted or invalidated.
  int64_t ttl_us = 0;
  // Concurrent misses on one key make one load; the rest wait for it.
  bool coalesce = true;
  // XFetch (Vattani, Chierichetti, Lowenstein: "Optimal Probabilistic Cache
  // Stampede Prevention"): a reader refreshes early when
  //   now - delta * beta * ln(u) >= expiry,  u uniform in (0, 1],
  // delta = the last load's duration. 0 = off; 1 is the paper's default.
  double xfetch_beta = 0;
  // Stale-while-revalidate: for this long after the cache TTL runs out the
  // old value is still served while one background load refreshes it
  // (never past the key's own TTL in the store). 0 = off.
  int64_t stale_us = 0;
  // Negative caching: a load that finds no key is remembered as absent for
  // this long. 0 = off.
  int64_t negative_ttl_us = 0;

  // Rejects combinations that cannot be honoured (InvalidArgument).
  Status validate() const;
};

struct CacheStats {
  uint64_t hits = 0;             // fresh values answered (includes early refresh triggers)
  uint64_t stale_hits = 0;       // values answered stale under stale-while-revalidate
  uint64_t negative_hits = 0;    // answered "no such key" from a negative entry
  uint64_t misses = 0;           // reads that found nothing usable (kLoad or kWait)
  uint64_t loads = 0;            // loads the core asked for (foreground and background)
  uint64_t coalesced_waits = 0;  // readers attached to another reader's load
  uint64_t early_refreshes = 0;  // XFetch refreshes started
  uint64_t stale_refreshes = 0;  // stale-while-revalidate refreshes started
  uint64_t load_failures = 0;
  uint64_t invalidations = 0;    // keys dropped by invalidate()/put()
  uint64_t discarded_loads = 0;  // loads whose result was not stored (invalidated meanwhile)
  uint64_t rejected = 0;         // values refused by the store (too large, or not admitted)
  uint64_t evictions = 0;
  uint64_t entries = 0;
  uint64_t bytes = 0;
};

class Cache {
 public:
  enum class Action { kHit, kHitAbsent, kLoad, kWait };
  struct Lookup {
    Action action;
    // kHit: the value; valid until the next non-const call on the cache.
    std::string_view value;
    bool stale = false;
    uint64_t load_token = 0;     // kLoad
    uint64_t refresh_token = 0;  // kHit that asks for a background load
  };
  struct Loaded {
    std::optional<std::string> value;  // nullopt: the store has no such key
    int64_t expires_at_us = 0;         // the key's own expiry in the store; 0 = none
    int64_t load_cost_us = 0;          // how long the load took (XFetch's delta)
  };

  Cache(const CacheOptions& options, Random random);
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  Lookup get(std::string_view key, int64_t now_us, uint64_t waiter);
  // A load finished: stores the value (unless the key was invalidated since the
  // load began) and returns the waiters to answer with it.
  std::vector<uint64_t> complete(uint64_t token, std::string_view key, Loaded loaded,
                                 int64_t now_us);
  // A load failed: nothing is stored; returns the waiters to answer with the error.
  std::vector<uint64_t> fail(uint64_t token);

  // The key changed in the store (a write through the cache, or an
  // invalidation message): drop the cached copy and detach the load in flight.
  void invalidate(std::string_view key);
  // Everything changed (FLUSHALL, or the connection that carried invalidations dropped).
  void invalidate_all();
  // A write through the cache succeeded with this value: drop any load in
  // flight and hold the new value (write-through update).
  void put(std::string_view key, std::string value, int64_t expires_at_us, int64_t now_us);

  CacheStats stats() const;
  const CacheOptions& options() const { return options_; }
  // Loads in flight (tests and INFO).
  size_t flights() const { return flights_.size(); }

 private:
  struct Flight {
    std::string key;
    std::vector<uint64_t> waiters;
    bool current = true;  // still the key's flight (not detached by an invalidation)
  };

  uint64_t start_flight(std::string_view key);
  bool xfetch_due(const Entry& entry, int64_t expiry, int64_t now_us);
  void detach_flight(std::string_view key);
  void forget_current(const std::string& key, uint64_t token);
  Entry make_entry(std::string value, int64_t expires_at_us, int64_t cost_us, int64_t now_us) const;

  CacheOptions options_;
  Random random_;
  BoundedStore store_;
  uint64_t next_token_ = 0;
  std::unordered_map<uint64_t, Flight> flights_;  // token -> flight
  // key -> tokens of its current flights: at most one with coalescing on.
  std::unordered_map<std::string, std::vector<uint64_t>, StringHash, std::equal_to<>>
      current_flights_;
  CacheStats stats_;
};

}  // namespace statekv::cache
