// Moving the replicas of REPLICATION consensus keyspaces (rebalancing,
// add-node, remove-node): where each shard's replicas should be, and, one step
// at a time, how a shard's replica group gets there. Sans-IO: these functions
// read values and return a decision; the driver (today `statekv cluster`'s
// rebalance, cli/rebalance.cc; later a controller on the metadata leader)
// carries each step out and asks again.
//
// A shard's group moves one replica at a time, through raft's one-at-a-time
// membership changes (replication/raft/raft.h):
//
//   1. publish  the map lists the new member as an extra owner, last (the
//               shard then has factor + 1 owners): its node starts a replica
//               of the group, empty, outside the group's configuration;
//   2. learn    the group's leader replicates to it as a learner (raft.h:
//               outside the config, counted in no majority); it catches up
//               from a snapshot and the log;
//   3. wait     until it is caught up (its match index within `slack` of the
//               leader's commit index);
//   4. add      the leader promotes it to a member (a config entry);
//   5. transfer if the member to remove leads the group, leadership goes first
//               to the most up-to-date member that stays;
//   6. remove   the leader removes the old member; once that commits,
//   7. publish  the map drops it: its node stops its replica and erases it.
//
// So a live group never has fewer than its factor of voting members while it
// moves (add before remove), and a slow joiner is not among them until it has
// caught up (a learner is the leader's volatile state: under a new leader the
// step is "learn" again). A member that is down is removed first: it serves
// nothing, and a group of n members with one down needs every live member to
// commit an add (a majority of n + 1), so removing it first keeps the group
// writable while the new member catches up. The map's owners follow the
// group's configuration (routing, LOCATE and the partition check use them),
// ordered as the target orders them so its first owner, the preferred leader,
// is one that stays.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "meta/cluster_map.h"

namespace statekv::coord {

// Where keyspace `ks`'s replicas should be: for each shard, `factor` distinct
// active members (in a geo keyspace, of the shard's region), keeping every
// current owner that is active and not in `leaving`, filling each shard with
// the least-loaded candidates, then evening out how many replicas each
// candidate holds (at most one apart) by moving as few as it takes. A kept
// owner keeps its position; a new one takes the position of the one it
// replaces, so the preferred leaders stay spread. InvalidArgument naming the
// keyspace and shard when too few candidates remain for its factor.
//
// `down`: members that do not answer now. They keep their replicas unless a
// move is due anyway, and then give theirs first: a new node added while one
// is down takes the down node's replicas, each move bringing a shard back to
// its factor of live replicas, not a live replica of a shard already one
// short. A member that is down never gains a replica.
Result<std::vector<std::vector<NodeId>>> replica_targets(const meta::ClusterMap& map,
                                                         const meta::Keyspace& ks,
                                                         const std::set<NodeId>& leaving = {},
                                                         const std::set<NodeId>& down = {});

// What a shard's group looks like, as its leader reports it.
struct GroupView {
  NodeId leader;
  std::vector<NodeId> config;    // members in effect
  bool config_committed = true;  // no membership change in flight
  uint64_t commit_index = 0;
  std::map<NodeId, uint64_t> match;  // each other member's replicated index
  std::map<NodeId, uint64_t> learners;  // each learner's replicated index
  // Each member's applied index as the leader last heard it (the leader's
  // own included), and the leader's last log index (a member's lag is
  // last_index minus its match). Absent from the reports of older nodes.
  std::map<NodeId, uint64_t> applied;
  uint64_t last_index = 0;
};

struct ReplicaStep {
  enum class Kind : unsigned char {
    kDone,      // the group and the map are at the target
    kWait,      // a change commits or a member catches up: ask again soon
    kPublish,   // write `owners` as the shard's owners in the map
    kAdd,       // the leader adds `node`
    kRemove,    // the leader removes `node` (a member, or a learner that no longer joins)
    kTransfer,  // the leader hands leadership to `node`
    kLearn,     // the leader replicates to `node` as a learner (kAdd promotes it)
  };
  Kind kind = Kind::kDone;
  NodeId node;
  std::vector<NodeId> owners;  // kPublish
  std::string why;             // one line for progress output
};

// The next step for a shard whose target owners are `target`, whose owners in
// the map are `map_owners`, and whose group's leader reports `view`. `down`:
// nodes known not to answer. `slack`: how far behind the commit index a new
// member may be and count as caught up. InvalidArgument when the move cannot
// go on (a node it must add is down).
Result<ReplicaStep> next_replica_step(const std::vector<NodeId>& target,
                                      const std::vector<NodeId>& map_owners, const GroupView& view,
                                      uint32_t factor, const std::set<NodeId>& down = {},
                                      uint64_t slack = 64);

}  // namespace statekv::coord
