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
  // The scope of key's record. A key must keep its scope for as long as a
  // store holds its record (a consensus keyspace's layout never changes
  // while it exists, and keys do not move into or out of one), or the record
  // is lost to reads. Called on every read and write of a record, from any
  // thread: cheap and thread-safe.
  virtual uint64_t scope_of(std::string_view key) const = 0;
};

}  // namespace statekv::server
