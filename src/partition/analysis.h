// What a partitioner costs, measured on keys: how evenly it spreads them over
// the nodes, and how many of them change primary when one node joins or leaves.
//
// The measures, over the keys handed in (a key listed twice counts twice):
//   imbalance       max keys whose primary is one node / mean keys per node,
//                   the mean over every node of the placement (a node with no
//                   key counts as 0). 1.0 is perfect.
//   moved fraction  keys whose primary owner differs between two placements /
//                   all keys. The least a join N -> N+1 can move and still leave
//                   the joiner an equal share is 1/(N+1); a leave N -> N-1 must
//                   move at least the leaver's share, ideally 1/N.
//
// analyze() builds its own nodes (numbered_nodes): ids 1..N; the node that
// joins is N+1 and the node that leaves is N (the newest); each change is
// placed with the N-node placement as `previous` (so slots and range rebalance
// from it), and range takes the keys themselves as its sample.
//
// Thread safety: pure functions; the keys are only read.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "meta/cluster_map.h"
#include "partition/placement.h"

namespace statekv::partition {

// `count` distinct keys shaped like redis-benchmark's: "key:" and 12 decimal
// digits drawn from Random(seed). The same seed gives the same keys.
std::vector<std::string> generate_keys(size_t count, uint64_t seed);

// Nodes with ids 1..n. For a geo spec, node i is in region
// geo_regions(spec)[(i - 1) % regions] (so every region gets nodes round
// robin); otherwise in "default".
std::vector<NodeInfo> numbered_nodes(const meta::PartitionerSpec& spec, size_t n);

double imbalance(const Placement& placement, std::span<const std::string> keys);
double moved_fraction(const Placement& before, const Placement& after,
                      std::span<const std::string> keys);

// The costs at one node count N.
struct NodeCountCost {
  size_t nodes = 0;                  // N
  double imbalance = 0;              // at N
  double join_moved = 0;             // N -> N+1
  double join_ideal = 0;             // 1 / (N+1)
  double imbalance_after_join = 0;   // at N+1
  double leave_moved = 0;            // N -> N-1
  double leave_ideal = 0;            // 1 / N
  double imbalance_after_leave = 0;  // at N-1
};

// The costs of `spec` on `keys` at each of `node_counts` (each >= 2, so that a
// node can leave). Replication factor 1: only primaries are compared. Errors:
// InvalidArgument for no keys or a node count below 2, and whatever place()
// refuses.
Result<std::vector<NodeCountCost>> analyze(const meta::PartitionerSpec& spec,
                                           std::span<const std::string> keys,
                                           std::span<const size_t> node_counts);

}  // namespace statekv::partition
