// Whether a cluster serves every key, judged from the map and a view of which
// members are up: the rule behind CLUSTER INFO's cluster_state and
// `statekv cluster status`'s exit status.
//
//   fail      some shard has no serving owner: its keys, and every
//             cluster-wide command (DBSIZE, KEYS, SCAN), fail. Redis Cluster
//             says cluster_state:fail for a slot without a serving node; so
//             does statekv. A shard of a REPLICATION consensus keyspace is a
//             raft group: served while a majority of its owners is up. Any
//             other shard is served at its first owner only
//             (coord/routing_table.h: no failover for them), so it is
//             unavailable when that owner is down, even with others up.
//   degraded  every shard is served, but some group has fewer owners up than
//             its keyspace's replication factor.
//   ok        every shard of every group has factor owners up.
//
// A rebalance's source layout (Keyspace::moving_from) counts too: its keys are
// served there until the move ends.
//
// Thread safety: plain values and functions.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ids.h"
#include "meta/cluster_map.h"

namespace statekv::meta {

enum class HealthState : unsigned char { kOk, kDegraded, kFail };
std::string_view to_string(HealthState s);

struct ShardHealth {
  std::string keyspace;
  ShardId shard;
  bool source = false;           // a shard of the layout a rebalance moves away from
  size_t up = 0;                 // owners up
  size_t factor = 0;             // what the keyspace asks for
  std::vector<NodeId> down;      // owners not serving
  std::string describe() const;  // "default/2 (owner node 2 down)"
};

struct Health {
  HealthState state = HealthState::kOk;
  std::vector<ShardHealth> unavailable;  // no serving owner
  std::vector<ShardHealth> degraded;     // below the factor, but served
  std::vector<NodeId> down;              // members judged down, by id
};

// `up(id)` says whether member `id` is up and serving. Members not in the map
// are never asked about.
Health assess_health(const ClusterMap& map, const std::function<bool(NodeId)>& up);

}  // namespace statekv::meta
