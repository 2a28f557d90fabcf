// Leader balance: when a replica group's leader hands leadership to the
// group's preferred leader. Placement spreads the shards' first owners over
// the nodes (replica_moves.h), so moving each group's leadership to its first
// owner spreads the leaders, and the work only a leader does, too.
//
// A handover stops the leader taking requests until the target campaigns and
// wins, or an election timeout passes (replication/raft/raft.h, "Leadership
// transfer"); requests meanwhile fail with the target as the leader hint. So
// it is worth it only to a target that can win at once: one whose log is the
// leader's whole log (it needs nothing sent first) and that this node hears
// from. An idle group's follower cut off by a partition still shows the
// leader's whole log as matched; handing to it would make the group refuse
// writes for an election timeout out of every balance round for as long as the
// partition lasts (seen in CI: the majority side of a partition could not
// write an idle keyspace).
//
// Thread safety: a pure function.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "core/ids.h"

namespace statekv::coord {

struct LeaderBalanceView {
  NodeId self;                            // the group's leader, asking
  std::vector<NodeId> members;            // the map's owners; the first is preferred
  std::map<NodeId, LogIndex> match;       // what each follower is known to hold
  LogIndex last_index;                    // the leader's last log index
  std::function<bool(NodeId)> reachable;  // heard from recently (the transport)
};

// The member to hand leadership to now, or nothing: nothing when this node is
// the preferred leader (or no member is), when the preferred leader lacks any
// of the leader's log, or when it is not reachable.
std::optional<NodeId> leadership_handover_target(const LeaderBalanceView& view);

// Before a planned stop (the node leads nothing when it goes): the reachable
// follower furthest along (a transfer brings it up to date first; `members`
// is not consulted), or nothing when no follower is reachable — a transfer
// to a node that cannot hear it only holds the group's requests back for an
// election timeout, and the stop then goes ahead with the leadership here.
std::optional<NodeId> stop_handover_target(const LeaderBalanceView& view);

}  // namespace statekv::coord
