// Leases across several `statekv cache` processes (memcache's leases), the
// parts that are pure functions or plain bookkeeping; the I/O is in
// cache_service.cc. The protocol (docs/cache.md, "Leases across cache
// processes"):
//
//  * a cache whose core asks for a load of key first asks the store for the
//    lease: `SET __lease:{key} <run id>:<flight token> NX GET PX <lease-ms>`,
//    pipelined with `PTTL __lease:{key}`;
//  * nil (or its own value, when the SET was sent twice) — it holds the lease:
//    it loads the key (PTTL + GET), then releases the lease with a
//    compare-and-delete and publishes its fill, on one upstream connection:
//    `WATCH __lease:{key}`, `GET __lease:{key}`; if that is still its own
//    value, `MULTI`, `DEL __lease:{key}`, `EXEC` (which runs nothing if the
//    lease key was written or ran out after the WATCH), else `UNWATCH`; then
//    `PUBLISH <channel> <fill>`. A holder whose lease ran out and was taken
//    by another cache never deletes the new holder's lease;
//  * another value — another cache holds it: wait for that holder's fill on
//    the channel (every cache subscribes to it), and ask again once the
//    lease's remaining PTTL has passed (a holder that died holds the key at
//    most lease-ms);
//  * a fill is used only if no invalidation of the key reached this cache
//    since the holder may have taken its lease (RecentInvalidations): the
//    holder read the key after taking the lease, so a write after that read
//    is reported to this cache after that moment, and a fill that could be
//    older than a write this cache has already been told of is refused (the
//    cache asks for the lease again and loads the key itself).
//
// Thread safety: none; the owner serialises calls.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace statekv::cache {

// The store key that holds key's lease.
std::string lease_key(std::string_view key);

// What a holder publishes when its load is done.
struct Fill {
  enum class Kind : unsigned char {
    kValue,     // the key's value (value, pttl_ms)
    kAbsent,    // the store has no such key
    kReleased,  // the holder gave the lease up without a value (its load failed)
  };
  std::string key;
  std::string holder;  // the lease value: "<run id>:<token>"
  Kind kind = Kind::kReleased;
  std::string value;
  int64_t pttl_ms = -1;  // the key's own TTL when the holder read it; -1 = none
};

// A fill as a channel message (a RESP array of five bulk strings) and back.
std::string encode_fill(const Fill& fill);
// InvalidArgument for anything that is not a fill (another publisher on the channel).
Result<Fill> decode_fill(std::string_view payload);

// When this cache last heard that a key changed, for keys grouped into a
// fixed number of slots by hash: bounded memory whatever the write rate of the
// store (every key written anywhere arrives here, BCAST). A key shares its
// slot with others, so changed_since() may answer yes for a key that did not
// change (the caller then loads it again: costs a load, never a stale value);
// it never answers no for a key that changed.
class RecentInvalidations {
 public:
  explicit RecentInvalidations(size_t slots = 1 << 16);
  void invalidated(std::string_view key, int64_t now_us);
  void invalidated_all(int64_t now_us);
  // Did key (or everything) change at or after since_us?
  bool changed_since(std::string_view key, int64_t since_us) const;

 private:
  size_t slot(std::string_view key) const;
  std::vector<int64_t> last_;
  int64_t all_;
};

}  // namespace statekv::cache
