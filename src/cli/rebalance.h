// Rebalancing: moving every keyspace (but REPLICATION consensus ones, whose
// shards are replica groups that do not move yet) to the layout its partitioner gives over
// the current active members, while clients keep reading and writing
// (coord/mover.h describes each node's part; this drives the steps).
//
// For each keyspace whose layout changes: begin the move in the map; prepare,
// copy (with a progress report) and freeze on every data node; finish the move
// in the map. Any failure abandons the move (keys stay where they were).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace statekv::cli {

struct RebalanceProgress {
  std::string keyspace;
  uint64_t moved = 0;  // keys copied so far, over all nodes
  uint64_t total = 0;  // keys to copy, as far as known
};

// `endpoints`: peer addresses of members; `on_progress` is called now and then.
Status rebalance(const std::vector<std::string>& endpoints, const std::string& secret,
                 const std::function<void(const RebalanceProgress&)>& on_progress);

}  // namespace statekv::cli
