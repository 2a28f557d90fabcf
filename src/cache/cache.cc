#include "cache/cache.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace statekv::cache {

Status CacheOptions::validate() const {
  if (store.max_bytes < BoundedStore::kEntryOverhead * 16) {
    return Status::InvalidArgument("max-memory must be at least " +
                                   std::to_string(BoundedStore::kEntryOverhead * 16) + " bytes");
  }
  if (ttl_us < 0 || stale_us < 0 || negative_ttl_us < 0) {
    return Status::InvalidArgument("ttl, stale and negative ttl must not be negative");
  }
  if (!(xfetch_beta >= 0) || !std::isfinite(xfetch_beta)) {
    return Status::InvalidArgument("xfetch beta must be a finite number >= 0");
  }
  if (xfetch_beta > 0 && ttl_us == 0) {
    // Without a cache TTL only keys with their own TTL expire; XFetch would
    // apply to those alone, which is not what someone asking for it expects.
    return Status::InvalidArgument("xfetch needs a cache ttl");
  }
  if (stale_us > 0 && ttl_us == 0) {
    return Status::InvalidArgument("stale-while-revalidate needs a cache ttl");
  }
  if (!(store.window_fraction > 0 && store.window_fraction < 1) ||
      !(store.protected_fraction > 0 && store.protected_fraction < 1)) {
    return Status::InvalidArgument("window and protected fractions must be in (0, 1)");
  }
  return Status::OK();
}

Cache::Cache(const CacheOptions& options, Random random)
    : options_(options), random_(random), store_(options.store) {}

uint64_t Cache::start_flight(std::string_view key) {
  const uint64_t token = ++next_token_;
  Flight& flight = flights_[token];
  flight.key = std::string(key);
  current_flights_[flight.key].push_back(token);
  ++stats_.loads;
  return token;
}

bool Cache::xfetch_due(const Entry& entry, int64_t expiry, int64_t now_us) {
  if (options_.xfetch_beta <= 0 || expiry == 0) return false;
  const double u = 1.0 - random_.unit();  // (0, 1]
  const double early =
      -static_cast<double>(entry.load_cost_us) * options_.xfetch_beta * std::log(u);
  return static_cast<double>(now_us) + early >= static_cast<double>(expiry);
}

Cache::Lookup Cache::get(std::string_view key, int64_t now_us, uint64_t waiter) {
  Entry* entry = store_.find(key);
  auto in_flight = [&]() -> Flight* {
    if (!options_.coalesce) return nullptr;
    auto it = current_flights_.find(key);
    if (it == current_flights_.end() || it->second.empty()) return nullptr;
    return &flights_.at(it->second.front());
  };
  if (entry != nullptr) {
    const bool hard_ok = entry->hard_expiry == 0 || now_us < entry->hard_expiry;
    const bool soft_ok = entry->soft_expiry == 0 || now_us < entry->soft_expiry;
    if (hard_ok && soft_ok) {
      if (entry->absent) {
        ++stats_.negative_hits;
        return {Action::kHitAbsent, {}, false, 0, 0};
      }
      ++stats_.hits;
      Lookup hit{Action::kHit, entry->value, false, 0, 0};
      int64_t expiry = entry->soft_expiry;
      if (entry->hard_expiry != 0 && (expiry == 0 || entry->hard_expiry < expiry)) {
        expiry = entry->hard_expiry;
      }
      if (xfetch_due(*entry, expiry, now_us) && in_flight() == nullptr) {
        ++stats_.early_refreshes;
        hit.refresh_token = start_flight(key);  // touches no entry: hit.value stays valid
      }
      return hit;
    }
    const bool stale_ok = !entry->absent && hard_ok && options_.stale_us > 0 &&
                          entry->soft_expiry != 0 &&
                          now_us < entry->soft_expiry + options_.stale_us;
    if (stale_ok) {
      ++stats_.stale_hits;
      Lookup hit{Action::kHit, entry->value, true, 0, 0};
      if (in_flight() == nullptr) {
        ++stats_.stale_refreshes;
        hit.refresh_token = start_flight(key);
      }
      return hit;
    }
    store_.erase(key);
  }
  ++stats_.misses;
  if (Flight* flight = in_flight()) {
    flight->waiters.push_back(waiter);
    ++stats_.coalesced_waits;
    return {Action::kWait, {}, false, 0, 0};
  }
  return {Action::kLoad, {}, false, start_flight(key), 0};
}

Entry Cache::make_entry(std::string value, int64_t expires_at_us, int64_t cost_us,
                        int64_t now_us) const {
  Entry entry;
  entry.value = std::move(value);
  entry.hard_expiry = expires_at_us;
  entry.soft_expiry = options_.ttl_us > 0 ? now_us + options_.ttl_us : 0;
  entry.load_cost_us = cost_us;
  return entry;
}

std::vector<uint64_t> Cache::complete(uint64_t token, std::string_view key, Loaded loaded,
                                      int64_t now_us) {
  auto it = flights_.find(token);
  if (it == flights_.end()) return {};
  Flight flight = std::move(it->second);
  flights_.erase(it);
  if (!flight.current) {
    ++stats_.discarded_loads;
    return std::move(flight.waiters);
  }
  forget_current(flight.key, token);
  if (loaded.value.has_value()) {
    if (!store_.put(key, make_entry(std::move(*loaded.value), loaded.expires_at_us,
                                    loaded.load_cost_us, now_us))) {
      ++stats_.rejected;
    }
  } else if (options_.negative_ttl_us > 0) {
    Entry entry;
    entry.absent = true;
    entry.soft_expiry = now_us + options_.negative_ttl_us;
    if (!store_.put(key, std::move(entry))) ++stats_.rejected;
  } else {
    store_.erase(key);
  }
  return std::move(flight.waiters);
}

std::vector<uint64_t> Cache::fail(uint64_t token) {
  auto it = flights_.find(token);
  if (it == flights_.end()) return {};
  Flight flight = std::move(it->second);
  flights_.erase(it);
  ++stats_.load_failures;
  if (flight.current) forget_current(flight.key, token);
  return std::move(flight.waiters);
}

void Cache::forget_current(const std::string& key, uint64_t token) {
  auto cur = current_flights_.find(key);
  if (cur == current_flights_.end()) return;
  std::erase(cur->second, token);
  if (cur->second.empty()) current_flights_.erase(cur);
}

void Cache::detach_flight(std::string_view key) {
  auto cur = current_flights_.find(key);
  if (cur == current_flights_.end()) return;
  for (uint64_t token : cur->second) flights_.at(token).current = false;
  current_flights_.erase(cur);
}

void Cache::invalidate(std::string_view key) {
  detach_flight(key);
  if (store_.erase(key)) ++stats_.invalidations;
}

void Cache::invalidate_all() {
  for (auto& [token, flight] : flights_) flight.current = false;
  current_flights_.clear();
  stats_.invalidations += store_.size();
  store_.clear();
}

void Cache::put(std::string_view key, std::string value, int64_t expires_at_us, int64_t now_us) {
  detach_flight(key);
  if (!store_.put(key, make_entry(std::move(value), expires_at_us, 0, now_us))) ++stats_.rejected;
}

CacheStats Cache::stats() const {
  CacheStats s = stats_;
  s.evictions = store_.evictions();
  s.entries = store_.size();
  s.bytes = store_.bytes();
  return s;
}

}  // namespace statekv::cache
