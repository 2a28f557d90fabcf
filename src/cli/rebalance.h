// Rebalancing: moving every keyspace to the layout its partitioner gives over
// the current active members, while clients keep reading and writing
// (coord/mover.h describes each node's part; this drives the steps), and the
// replicas of REPLICATION consensus keyspaces to where replica_targets puts
// them (coord/replica_moves.h; the metadata leader's controller moves them,
// coord/replica_controller.h, and this waits for it).
//
// For each keyspace whose layout changes: begin the move in the map; prepare,
// copy (with a progress report) and freeze on every data node; finish the move
// in the map. Any failure abandons the move (keys stay where they were).
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "meta/cluster_map.h"

namespace statekv::cli {

struct RebalanceProgress {
  std::string keyspace;
  uint64_t moved = 0;  // keys copied so far, over all nodes (replicas: replicas moved)
  uint64_t total = 0;  // keys to copy, as far as known (replicas: replicas to move)
  // A REPLICATION consensus keyspace: its replicas move, not its keys, and
  // each step is one line here ("shard 2: adding node 4 to the group").
  std::string step;
};

struct RebalanceOptions {
  // Nodes known not to answer (a dead node being removed): nothing is copied
  // from them. (The replica controller judges by what its node hears.)
  std::set<NodeId> down;
  // Nodes on their way out whose replicas must move away (remove-node).
  std::set<NodeId> leaving;
};

// Whether member `m` answers on its peer port now (one that was killed does
// not; one that is unreachable is given 2 s).
bool member_answers(const meta::Member& m, const std::string& secret);

// `endpoints`: peer addresses of members; `on_progress` is called now and then.
// Single-copy keyspaces move their keys (coord/mover.h); the replicas of
// REPLICATION consensus keyspaces move one at a time, by membership changes of
// each shard's group (coord/replica_moves.h), driven by the metadata leader's
// controller (coord/replica_controller.h): this waits until each shard is at
// its target, reporting its progress, and fails after 60 s without any.
Status rebalance(const std::vector<std::string>& endpoints, const std::string& secret,
                 const std::function<void(const RebalanceProgress&)>& on_progress,
                 const RebalanceOptions& options = {});

}  // namespace statekv::cli
