#include "coord/routing_table.h"

#include <algorithm>

#include "core/assert.h"
#include "partition/layout.h"

namespace statekv::coord {

Result<std::shared_ptr<const RoutingTable>> RoutingTable::build(
    std::shared_ptr<const meta::ClusterMap> map) {
  auto table = std::shared_ptr<RoutingTable>(new RoutingTable());
  table->map_ = std::move(map);
  const meta::ClusterMap& m = *table->map_;
  for (const meta::Member& member : m.members) {
    if (member.state == meta::MemberState::kActive) table->data_nodes_.push_back(member.id);
  }
  std::sort(table->data_nodes_.begin(), table->data_nodes_.end());
  bool has_default = false;
  for (const meta::Keyspace& k : m.keyspaces) {
    auto placement = partition::restore(k, m.members);
    if (!placement.ok()) {
      return Status::Corruption("keyspace '" + k.spec.name +
                                "': its layout does not rebuild: " + placement.status().message());
    }
    table->placements_.emplace(k.spec.name, std::move(placement).value());
    if (k.moving_from) {
      // Keys moving in from another keyspace (KEYSPACE CREATE over keys) are
      // served where that keyspace's partitioner puts them.
      const meta::Keyspace* owner =
          k.moving_from->from_keyspace.empty() ? &k : m.find_keyspace(k.moving_from->from_keyspace);
      if (owner == nullptr) {
        return Status::Corruption("keyspace '" + k.spec.name + "' moves keys in from keyspace '" +
                                  k.moving_from->from_keyspace + "', which is not in the map");
      }
      meta::Keyspace source = *owner;
      source.moving_from.reset();
      source.spec.partitioner.split_points = k.moving_from->split_points;
      if (source.spec.partitioner.kind == meta::Partitioner::kGeo) {
        source.spec.partitioner.region_shards = k.moving_from->region_shards;
      } else {
        source.spec.partitioner.shards = static_cast<uint32_t>(k.moving_from->shards.size());
      }
      source.shards = k.moving_from->shards;
      auto from = partition::restore(source, m.members);
      if (!from.ok()) {
        return Status::Corruption("keyspace '" + k.spec.name + "': the layout it moves from " +
                                  "does not rebuild: " + from.status().message());
      }
      table->sources_.emplace(k.spec.name, std::move(from).value());
    }
    table->by_prefix_.push_back(&k);
    table->any_dropping_ = table->any_dropping_ || k.dropping;
    has_default = has_default || k.spec.key_prefix.empty();
  }
  if (!has_default) return Status::Corruption("the map has no keyspace with the empty prefix");
  std::vector<NodeId>& holders = table->holders_;
  holders = table->data_nodes_;
  for (const meta::Keyspace& k : m.keyspaces) {
    for (const meta::Shard& s : k.shards)
      holders.insert(holders.end(), s.owners.begin(), s.owners.end());
    if (!k.moving_from) continue;
    for (const meta::Shard& s : k.moving_from->shards) {
      holders.insert(holders.end(), s.owners.begin(), s.owners.end());
    }
  }
  std::sort(holders.begin(), holders.end());
  holders.erase(std::unique(holders.begin(), holders.end()), holders.end());
  std::stable_sort(table->by_prefix_.begin(), table->by_prefix_.end(),
                   [](const meta::Keyspace* a, const meta::Keyspace* b) {
                     return a->spec.key_prefix.size() > b->spec.key_prefix.size();
                   });
  return std::shared_ptr<const RoutingTable>(std::move(table));
}

const meta::Keyspace& RoutingTable::keyspace_of(std::string_view key) const {
  for (const meta::Keyspace* k : by_prefix_) {
    if (key.starts_with(k->spec.key_prefix)) return *k;
  }
  SKV_ASSERT(false, "build() checked that a keyspace with the empty prefix exists");
  return *by_prefix_.back();
}

const partition::Placement& RoutingTable::placement(const meta::Keyspace& keyspace) const {
  auto it = placements_.find(keyspace.spec.name);
  SKV_ASSERT(it != placements_.end(), "every keyspace of the map has a placement");
  return it->second;
}

Route RoutingTable::route(std::string_view key) const {
  const meta::Keyspace& k = keyspace_of(key);
  Route r;
  r.keyspace = &k;
  r.shard = placement(k).shard_of(key);
  SKV_ASSERT(r.shard < k.shards.size(), "a placement's shard is in the map's shard list");
  r.owners = k.shards[r.shard].owners;
  r.dropping = k.dropping;
  if (k.moving_from) {
    const uint32_t from = sources_.find(k.spec.name)->second.shard_of(key);
    std::vector<NodeId> serving = k.moving_from->shards[from].owners;
    if (serving != r.owners) {
      r.target = std::move(r.owners);
      r.owners = std::move(serving);
      r.shard = from;
    }
  }
  return r;
}

}  // namespace statekv::coord
