// ScanCursors — numeric SCAN cursors over an ordered keyspace.
//
// Redis clients require SCAN cursors to be integers, but the Engine is ordered by
// key, so the natural resume point is "the last key returned". This table maps a
// cursor id to that key. It is bounded: the oldest cursors are forgotten first,
// and a forgotten or never-issued cursor is an error ("ERR invalid cursor").
// Entries stay valid after use, so a client may retry a SCAN call.
//
// Thread safety: every method may be called from any thread (one mutex; SCAN is
// not on the hot path).
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace statekv::server {

class ScanCursors {
 public:
  explicit ScanCursors(size_t capacity = 16384, uint64_t first_id = 1);

  // A new cursor (never 0) that resumes after last_key.
  uint64_t issue(std::string_view last_key);
  // The key cursor resumes after; nullopt when unknown (never issued or evicted).
  std::optional<std::string> find(uint64_t cursor) const;
  size_t size() const;

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  uint64_t next_id_;
  std::unordered_map<uint64_t, std::string> keys_;
  std::deque<uint64_t> order_;  // oldest first, for eviction
};

}  // namespace statekv::server
