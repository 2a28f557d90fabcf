// KeyScopes — which scope a key's record is kept under (server/record.h,
// "Scopes"): 0, the "d" family, or a replica group's id, whose records share
// the prefix "D" + be64(id) so that the group's shard is one range of the
// engine.
//
// A cluster node gives its Store one (coord/group_scopes.h: a REPLICATION
// consensus keyspace's key -> its shard's group); a standalone server none
// (every key in scope 0).
#pragma once

#include <cstdint>
#include <string_view>

namespace statekv::server {

class KeyScopes {
 public:
  virtual ~KeyScopes() = default;
  // The scope of key's record under the node's map. Its layout never changes
  // while a consensus keyspace exists, and keys do not move into or out of
  // one; a keyspace created over part of one's prefix holds none of its keys
  // (docs/routing.md), and the groups pin their own scope (ScopePin). Called on every read and
  // write of a record, from any thread: cheap and thread-safe.
  virtual uint64_t scope_of(std::string_view key) const = 0;
};

// Pins the scope of every record the calling thread reads or writes through a
// Store while it lives (the innermost pin wins), whatever the store's
// KeyScopes says. A replica group evaluates, applies and serves its commands
// in its own scope (coord/replica_groups.cc): the scope a node's map gives a
// key changes when a keyspace is created over part of a consensus keyspace's
// prefix (docs/routing.md), and a group that applies an entry after its node
// learned of that keyspace must keep the record where its other members keep
// it and where its own reads look for it.
class ScopePin {
 public:
  explicit ScopePin(uint64_t scope) : previous_(pinned_) { pinned_ = Pinned{true, scope}; }
  ~ScopePin() { pinned_ = previous_; }
  ScopePin(const ScopePin&) = delete;
  ScopePin& operator=(const ScopePin&) = delete;

  // The calling thread's pinned scope; false when none is.
  static bool pinned(uint64_t* scope) {
    if (!pinned_.set) return false;
    *scope = pinned_.scope;
    return true;
  }

 private:
  struct Pinned {
    bool set;
    uint64_t scope;
  };
  static inline thread_local Pinned pinned_;  // zero-initialized: none
  Pinned previous_;
};

}  // namespace statekv::server
