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
// Nor to a node receiving or restoring a snapshot in any of its groups: the
// restore used to hold the node's data loop, which every group there shares,
// for as long as it took (a few hundred ms for a 146k-key shard), and a group
// handed to it meanwhile waited that long for its writes (a node back from a
// restart catches one group up from the log while another still needs a
// snapshot). It runs on a thread of its own now (docs/replication.md,
// "Restoring off the data loop"), but still busies the node's disk and cores.
//
// A preferred leader this node hears may still be unable to win: under a
// one-way partition it hears this node but not the others, or they do not
// hear it. Each handover to it then holds the group's requests for an
// election timeout and fails; HandoverBackoff spaces such tries out.
//
// Thread safety: pure functions; a HandoverBackoff is one thread's.
#pragma once

#include <chrono>
#include <cstdint>
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
  std::map<NodeId, LogIndex> learners;    // what each learner (joining) is known to hold
  LogIndex last_index;                    // the leader's last log index
  std::function<bool(NodeId)> reachable;  // heard from recently (the transport)
  // Receiving a snapshot in some group of its node (its pings say so:
  // net/wire.h, kPing); may be empty: none is.
  std::function<bool(NodeId)> receiving_snapshot;
};

// The member to hand leadership to now, or nothing: nothing when this node is
// the preferred leader (or no member is), when the preferred leader lacks any
// of the leader's log, when it is not reachable, or while it receives a
// snapshot. Nor while another reachable member or learner lacks any of it
// (one catching up after a snapshot, say): the new leader, a follower until
// then, compacted its own log up to its applied index, and that member would
// need another snapshot (seen moving replicas: a 98k-key shard restored at
// index N and again at N + 1). An unreachable one waits for nothing.
std::optional<NodeId> leadership_handover_target(const LeaderBalanceView& view);

// Before a planned stop (the node leads nothing when it goes): the reachable
// follower furthest along (a transfer brings it up to date first; `members`
// is not consulted), or nothing when no follower is reachable — a transfer
// to a node that cannot hear it only holds the group's requests back for an
// election timeout, and the stop then goes ahead with the leadership here.
std::optional<NodeId> stop_handover_target(const LeaderBalanceView& view);

// Handovers that did not take, per group: a leader that handed a group over
// and still leads it when it looks again (the balancer looks every second; a
// transfer is won or abandoned within about an election timeout) failed. The
// next try to the same node waits 2 s after the first failure, 4 s after the
// second, ... at most kMaxWait; a try to another node, or the group led
// elsewhere, starts afresh. So a preferred leader that cannot win costs the
// group one election timeout of refused writes per wait, not per second.
class HandoverBackoff {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kMaxWait{64};

  // Whether handing `group` to `target` may be tried at `now`.
  bool may_try(uint64_t group, NodeId target, Clock::time_point now) const;
  // This node handed `group` to `target` at `now`.
  void tried(uint64_t group, NodeId target, Clock::time_point now);
  // This node leads `group` at `now`: a try made before failed.
  void leading(uint64_t group, Clock::time_point now);
  // This node no longer leads `group` (a handover took, or it lost office):
  // what was noted of it is forgotten.
  void not_leading(uint64_t group);
  // How many handovers of `group` failed in a row (status, tests).
  uint32_t failures(uint64_t group) const;

 private:
  struct Tries {
    NodeId target;
    uint32_t failures = 0;
    bool outstanding = false;  // tried, not yet seen to fail
    Clock::time_point next{};  // no try before this
  };
  std::map<uint64_t, Tries> groups_;
};

}  // namespace statekv::coord
