// GroupScopes — a cluster node's KeyScopes (server/key_scopes.h): a key of a
// REPLICATION consensus keyspace is kept under its shard's replica group id,
// every other key in scope 0. What lets a group read, compare or drop its
// shard as one range of the node's store (docs/data-types.md, "Scopes").
//
// Built from each routing table the node gets (on_table), before its replica
// groups see that table: a group applies entries only for a keyspace its
// node's table has. A consensus keyspace's layout does not change while it
// exists and keys never move into or out of one (docs/routing.md), so a key
// keeps its scope (a keyspace created over part of a consensus keyspace's
// prefix takes over none of its keys, and the groups pin their own scope
// while they work: server::ScopePin); a table whose keyspaces are the same as before (most map
// changes only move replicas) publishes nothing.
//
// Thread safety: scope_of from any thread, without a lock (it reads the last
// published table through an atomic pointer); on_table from one thread at a
// time. Every table published stays alive until the object is destroyed:
// they change only with the keyspaces (KEYSPACE CREATE and DROP).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coord/routing_table.h"
#include "partition/placement.h"
#include "server/key_scopes.h"

namespace statekv::coord {

class GroupScopes final : public server::KeyScopes {
 public:
  GroupScopes() = default;
  GroupScopes(const GroupScopes&) = delete;
  GroupScopes& operator=(const GroupScopes&) = delete;

  // Takes table's keyspaces (their prefixes, which are consensus, and those
  // keyspaces' placements and group ids).
  void on_table(const RoutingTable& table);
  // 0 until the first table, and for a key of a keyspace that is not
  // REPLICATION consensus; else ReplicaGroups::group_id of its shard.
  uint64_t scope_of(std::string_view key) const override;

 private:
  struct Keyspace {
    meta::KeyspaceSpec spec;                        // its prefix is spec.key_prefix
    std::optional<partition::Placement> placement;  // consensus keyspaces only
    std::vector<uint64_t> groups;                   // by shard; consensus only
    bool same_scopes(const Keyspace& o) const { return spec == o.spec && groups == o.groups; }
  };
  struct Table {
    std::vector<Keyspace> by_prefix;  // longest prefix first
  };

  std::atomic<const Table*> current_{nullptr};
  std::mutex mu_;                             // on_table
  std::vector<std::unique_ptr<Table>> kept_;  // every table published
};

}  // namespace statekv::coord
