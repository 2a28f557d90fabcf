// Where every key lives under one epoch of the cluster map: which keyspace a
// key belongs to, its shard, the shard's owners and how to reach them.
//
// How a key finds its keyspace: the keyspace whose key_prefix is the longest
// prefix of the key; keys that match no prefix belong to "default" (whose
// prefix is empty). Within the keyspace, its placement (partition/placement.h,
// rebuilt from the map's layout) gives the shard; the map's shard list gives
// the owners (owners[0] serves the key). While a keyspace moves, a key is
// served where the layout it moves from puts it (Route::owners) until the move
// finishes; Route::target says where it goes. A keyspace created over keys
// that another keyspace held moves them in the same way, from where that
// keyspace's layout puts them (meta::SourceLayout::from_keyspace).
//
// Built once per map epoch and then immutable: share it as
// shared_ptr<const RoutingTable> across threads.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "meta/cluster_map.h"
#include "partition/placement.h"

namespace statekv::coord {

struct Route {
  const meta::Keyspace* keyspace = nullptr;
  uint32_t shard = 0;
  std::vector<NodeId> owners;  // owners[0] serves the key
  // While the keyspace moves (meta::Keyspace::moving_from): where the key is
  // going. Empty when it does not move (target == where it is served).
  std::vector<NodeId> target;
  // The keyspace is being dropped (meta::Keyspace::dropping): its owner
  // holds commands on the key at the mover's gate while it deletes the keys.
  bool dropping = false;
  NodeId primary() const { return owners.empty() ? NodeId() : owners.front(); }
  bool moving() const { return !target.empty(); }
  NodeId target_primary() const { return target.empty() ? primary() : target.front(); }
};

class RoutingTable {
 public:
  // Corruption if a keyspace's layout cannot be rebuilt from the map.
  static Result<std::shared_ptr<const RoutingTable>> build(
      std::shared_ptr<const meta::ClusterMap> map);

  Epoch epoch() const { return map_->epoch; }
  const meta::ClusterMap& map() const { return *map_; }

  const meta::Keyspace& keyspace_of(std::string_view key) const;
  Route route(std::string_view key) const;
  const partition::Placement& placement(const meta::Keyspace& keyspace) const;
  // Some keyspace moves or is being dropped: some commands may need the gate.
  bool any_moving() const { return !sources_.empty() || any_dropping_; }

  // Members that serve data (active), in id order.
  const std::vector<NodeId>& data_nodes() const { return data_nodes_; }
  // Nodes that may hold keys under this map, in id order: the active members
  // and every owner in a keyspace's layout or in the layout it moves from
  // (a leaving node serves its keys until they moved away).
  const std::vector<NodeId>& holders() const { return holders_; }
  const meta::Member* member(NodeId id) const { return map_->find_member(id); }

 private:
  RoutingTable() = default;
  std::shared_ptr<const meta::ClusterMap> map_;
  // Keyspaces by descending prefix length, so the first match is the longest.
  std::vector<const meta::Keyspace*> by_prefix_;
  std::map<std::string, partition::Placement, std::less<>> placements_;
  // Moving keyspaces: the placement they move away from (where keys are served).
  std::map<std::string, partition::Placement, std::less<>> sources_;
  std::vector<NodeId> data_nodes_;
  std::vector<NodeId> holders_;
  bool any_dropping_ = false;
};

}  // namespace statekv::coord
