// A placement as the cluster map records it, and back.
//
// The map keeps, per keyspace, its shard list (meta::Shard: id, owners) and,
// where the layout cannot be derived from the owners alone, the split points:
//   hash, ring  nothing more: both are functions of the set of nodes (the
//               distinct owners) and the spec (vnodes); but REPLICATION
//               consensus keeps its shards while replicas move
//               (coord/replica_moves.h): hash the map's shard count, ring the
//               tokens of spec.ring_nodes once recorded (a move records them);
//   range       spec.split_points = the placement's splits (shard i is
//               [split[i-1], split[i]));
//   slots       spec.split_points = the first slot of each shard, in decimal, in
//               slot order (shard i is [start[i], start[i+1]) );
//   geo         the regions' shards one region after the other (regions sorted
//               by name, meta::geo_regions), spec.region_shards = each region's
//               count, and spec.split_points = each region's own record as
//               above, one region after the other: inner range, the region's
//               region_shards[r] - 1 splits; inner slots, its region_shards[r]
//               start slots (the first 0: slots are per region, each region
//               covers all 16384); inner hash and ring, nothing (they derive
//               from the region's nodes; under consensus, inner hash keeps
//               region_shards[r] and inner ring the tokens of the region's
//               ring_nodes).
// So every node rebuilds the same placement from the map, whatever history
// produced it, and the next rebalance starts from what the map says. (A
// placement's spec() is the spec it was placed from; the map's spec also
// carries the layout, so compare a restored placement with the original by
// layout_of and by where keys go, or with restore() of its own record.)
//
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "meta/cluster_map.h"
#include "partition/placement.h"

namespace statekv::partition {

struct Layout {
  std::vector<std::string> split_points;
  std::vector<meta::Shard> shards;
  std::vector<uint32_t> region_shards;  // geo only
};

// What the map records of `p`.
Result<Layout> layout_of(const Placement& p);

// Rebuilds keyspace `k`'s placement from the map; `members` gives regions.
// The nodes are the shards' distinct owners; the key prefix (where range puts
// tagged keys: placement.h, "Hash tags") is k's. Geo over range or slots: each
// region's inner placement from its slice (its shards renumbered from 0, its
// split points or start slots). Corruption when the record is inconsistent (a
// shard count or owners that do not match what the spec derives, start slots
// that do not begin at 0 and rise); what place() refuses (split points that do
// not rise) comes back as place() says it. A keyspace replicated by
// consensus keeps the map's shards and owners (its replicas move, its shards
// do not: coord/replica_moves.h): hash (also inside geo) the map's shard
// count, ring (also inside geo) the tokens of its ring nodes.
Result<Placement> restore(const meta::Keyspace& k, const std::vector<meta::Member>& members);

// The change that creates keyspace `spec` and places it over the active
// members in one step (one epoch): meta::create_keyspace, then the layout.
Result<meta::ClusterMap> create_placed_keyspace(const meta::ClusterMap& map,
                                                const meta::KeyspaceSpec& spec);

// The nodes a keyspace can be placed on: the active members (of the region
// rules' regions, for geo), in id order.
std::vector<NodeInfo> placeable_nodes(const std::vector<meta::Member>& members);

}  // namespace statekv::partition
