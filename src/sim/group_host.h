// GroupHost — many replica groups on one node, over one environment.
//
// DESIGN.md, "One host per node": a node holds many replica groups (one per
// shard it has a replica of), each running one instance of its protocol. The
// host gives every group an environment of its own and multiplexes them onto
// the node's single one:
//
//   messages  every frame carries its GroupId: varint group, then the group
//             protocol's own encoded message. A frame for a group this node
//             does not host is dropped and counted (a peer with a newer or
//             older placement), never handed to another group.
//   requests  a client request goes to the group of its key (`route`); a node
//             that is not a member of that group refuses it as not served,
//             hinting at a member, so the client moves on.
//   records   one shared durable log: each record is tagged with its GroupId
//             (varint group, then the record), so every group commits through
//             the node's one group commit. Recovery splits the records back by
//             group. A group's checkpoint is appended like any record: it must
//             not drop other groups' records, and the env contract lets a
//             protocol see records from before its checkpoint (it treats a
//             checkpoint as a full reset). Per-group truncation of the shared
//             log belongs to the real WAL (net/shared_log.h), not to this
//             contract.
//   tokens    each group sees persist tokens 1, 2, 3, ... of its own; when the
//             node's log reports token T durable, each group learns the highest
//             of its tokens appended at or before T.
//   timers    node timer ids are unique per incarnation, so a group's timer id
//             is the node's; the host remembers which group set it.
//   clock, randomness: the node's (one seeded source: the run stays
//             deterministic).
//   peers     with peer_ping_interval set, the host pings every node it
//             shares a group with (a frame of group 0, empty) and tells every
//             group it hosts with that node as a member when the node was not
//             heard from (any frame) for peer_down_after: one heartbeat per
//             pair of nodes, however many groups they share, so that groups
//             may go quiet when idle (raft's quiescence).
//
// The host is runtime-independent (it sees only a ByteEnv): the simulator runs
// it as one HostedNode per simulated node, and a crash takes down every group
// of the node at once. Not thread-safe (one callback at a time, env.h).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ids.h"
#include "sim/protocol_host.h"
#include "sim/registry.h"

namespace statekv::sim {

// One group's placement: its id and its members, in the order every member agrees on.
struct GroupPlacement {
  GroupId id;
  std::vector<NodeId> members;
};

// Builds (or, after a crash, rebuilds) group `group`'s protocol instance on
// this node, over the group's own environment.
using GroupFactory = std::function<std::unique_ptr<HostedNode>(
    GroupId group, ByteEnv& env, const replication::Membership& membership,
    std::vector<std::string> recovered)>;

struct GroupHostOptions {
  // Every group of the cluster (the host runs those it is a member of).
  std::vector<GroupPlacement> groups;
  // The group a key belongs to; must name one of `groups`.
  std::function<GroupId(std::string_view key)> route;
  // Builds one group's protocol instance.
  GroupFactory factory;
  // Peer heartbeats (see the header); zero: off.
  replication::Duration peer_ping_interval{0};
  replication::Duration peer_down_after{0};
};

// Encodes and decodes the host's framing (frames and records share it).
std::string tag_with_group(GroupId group, std::string_view payload);
// Corruption on a truncated or overlong group id.
Result<std::pair<GroupId, std::string_view>> untag_group(std::string_view bytes);

class GroupHost final : public HostedNode {
 public:
  // `recovered` is the node's whole log (every group's records, tagged).
  GroupHost(ByteEnv& env, NodeId self, GroupHostOptions options,
            std::vector<std::string> recovered);
  ~GroupHost() override;
  GroupHost(const GroupHost&) = delete;
  GroupHost& operator=(const GroupHost&) = delete;

  Status deliver(NodeId from, std::string_view bytes) override;
  void on_request(const replication::ClientRequest& req) override;
  void on_timer(replication::TimerId id) override;
  void on_persisted(replication::PersistToken token) override;

  size_t groups_hosted() const { return groups_.size(); }
  // Frames that named a group this node does not host.
  uint64_t frames_for_unknown_groups() const { return unknown_frames_; }

 private:
  class GroupEnv;
  struct Group;

  Group* find(GroupId id);
  void ping_peers();

  ByteEnv& env_;
  NodeId self_;
  GroupHostOptions options_;
  std::map<GroupId, std::unique_ptr<Group>> groups_;
  std::map<replication::TimerId, GroupId> timers_;
  uint64_t unknown_frames_ = 0;
  // Peer heartbeats.
  std::vector<NodeId> peers_;
  std::map<NodeId, replication::Instant> last_heard_;
  replication::Instant started_{};
  std::optional<replication::TimerId> ping_timer_;
};

// The placement group_host_entry uses: `groups` groups with ids 1..groups over
// `nodes`; group g's members are `factor` consecutive nodes starting at the
// ((g - 1) mod n)-th. A key belongs to group (hash(key) mod groups) + 1.
std::vector<GroupPlacement> spread_groups(const std::vector<NodeId>& nodes, size_t groups,
                                          size_t factor);
GroupId group_of_key(std::string_view key, size_t groups);

// A registry entry for `groups` replica groups of `factor` members spread over
// the simulator's nodes (spread_groups), one GroupHost per node; group g runs
// the protocol factory_of(g) builds.
ProtocolEntry group_host_entry(std::string name, std::string description,
                               std::function<ProtocolFactory(GroupId)> factory_of, size_t groups,
                               size_t factor);

}  // namespace statekv::sim
