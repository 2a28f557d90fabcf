// GroupHost — many replica groups on one node, over one environment.
//
// DESIGN.md, "One host per node": a node holds many replica groups (one per
// shard it has a replica of), each running one instance of its protocol. The
// host gives every group an environment of its own and multiplexes them onto
// the node's single one:
//
//   messages  every frame carries its GroupId and the sender's placement epoch
//             of that group: varint group, varint epoch, then the group
//             protocol's own encoded message. A frame for a group this node
//             does not host is dropped and counted (a peer with a newer or
//             older placement), never handed to another group. A frame whose
//             epoch is older than the placement that started this node's
//             replica of the group (its `born` epoch) is dropped and counted
//             too: it was sent by a node whose map predates this replica, so
//             it may address an earlier replica of the group here, one that
//             was removed and erased (a vote or an acknowledgement that replica
//             gave is forgotten; the frame must not be answered as if it were
//             not). A frame with a newer epoch is delivered: the sender's map
//             is ahead of this node's, which learns it soon.
//   requests  a client request goes to the group of its key (`route`); a node
//             that is not a member of that group refuses it as not served,
//             hinting at a member, so the client moves on.
//   sessions  the client's session token (ClientRequest::session) is the host's:
//             per group, the highest log index the session wrote or observed.
//             A request goes to its group with `min_index` set to the token's
//             entry for that group; an ok answer comes back with the token
//             raised to the answer's index (ClientResponse::index) in that
//             group. A token the host cannot decode is refused (kFail, not
//             retried).
//   records   one shared durable log: each record is tagged with its GroupId
//             and its replica's born epoch (varint group, varint epoch, then
//             the record), so every group commits through the node's one group
//             commit. Recovery splits the records back by group and keeps only
//             those of the replica that is current. A group's checkpoint is
//             appended like any record: it must not drop other groups'
//             records, and the env contract lets a protocol see records from
//             before its checkpoint (it treats a checkpoint as a full reset).
//             Per-group truncation of the shared log belongs to the real WAL
//             (net/shared_log.h), not to this contract.
//   placement the groups of `options.groups` are hosted from the start; place()
//             and unplace() start and stop replicas as the map moves them (one
//             host record each, tagged with group kHostRecords, so that a
//             restart hosts what the node hosted before its crash, and a
//             replica that was stopped and started again recovers nothing of
//             the earlier one: unplace erases).
//   tokens    each group sees persist tokens 1, 2, 3, ... of its own; when the
//             node's log reports token T durable, each group learns the highest
//             of its tokens appended at or before T.
//   timers    node timer ids are unique per incarnation, so a group's timer id
//             is the node's; the host remembers which group set it.
//   clock, randomness: the node's (one seeded source: the run stays
//             deterministic).
//   peers     with peer_ping_interval set, the host pings every node it
//             shares a group with (a frame of group 0, epoch 0, empty: no
//             protocol message is empty) and tells every group it hosts with
//             that node as a member when the node was not heard from (any
//             frame) for peer_down_after: one heartbeat per pair of nodes,
//             however many groups they share, so that groups may go quiet when
//             idle (raft's quiescence).
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

// One group's placement: its id, its members, in the order every member agrees
// on, and its epoch: the map bumps it whenever the group's members change.
struct GroupPlacement {
  GroupId id;
  std::vector<NodeId> members;
  uint64_t epoch = 0;
};

// The group id of the host's own records (which replicas it hosts); never a
// replica group's.
inline constexpr GroupId kHostRecords{~uint64_t{0}};

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

// Encodes and decodes the host's framing (frames and records share it): the
// group, an epoch (a frame's: the sender's placement epoch; a record's: its
// replica's born epoch), then the payload.
struct Tagged {
  GroupId group;
  uint64_t epoch = 0;
  std::string_view payload;
};
std::string tag_with_group(GroupId group, uint64_t epoch, std::string_view payload);
// Corruption on a truncated or overlong group id or epoch.
Result<Tagged> untag_group(std::string_view bytes);

// The session token of requests (see the header): per group, an index.
// decode_session("") is the empty session; Corruption on bytes
// encode_session did not produce.
std::string encode_session(const std::map<GroupId, uint64_t>& positions);
Result<std::map<GroupId, uint64_t>> decode_session(std::string_view token);

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

  // Starts a replica of `placement` here, born at its epoch, when this node is
  // one of its members and hosts none yet; `bootstrap` is the replica's
  // starting membership (a member being added starts outside the group's
  // configuration). A group hosted already takes the placement's members and,
  // if newer, its epoch (epochs only move up). A placement that does not list
  // this node starts nothing (unplace() stops a replica); the host remembers
  // the newest placement of every group to hint at a member of it.
  void place(const GroupPlacement& placement, const std::vector<NodeId>& bootstrap);
  // Stops this node's replica of `group` and erases it (its records are never
  // recovered again). No-op when not hosted.
  void unplace(GroupId group);

  size_t groups_hosted() const { return groups_.size(); }
  bool hosts(GroupId group) const { return groups_.contains(group); }
  // The placement this node knows of a hosted group (nullptr: not hosted), and
  // the epoch its replica was born at.
  const GroupPlacement* placement(GroupId group) const;
  uint64_t born(GroupId group) const;
  // The hosted group's protocol instance (nullptr: not hosted).
  HostedNode* protocol(GroupId group);
  // Frames that named a group this node does not host.
  uint64_t frames_for_unknown_groups() const { return unknown_frames_; }
  // Frames dropped because their epoch predates the replica here.
  uint64_t frames_from_older_epochs() const { return stale_frames_; }

 private:
  class GroupEnv;
  struct Group;

  Group* find(GroupId id);
  void start(const GroupPlacement& placement, uint64_t born, const std::vector<NodeId>& bootstrap,
             std::vector<std::string> records);
  void stop(GroupId id);
  void refresh_peers();
  void ping_peers();
  void host_reply(GroupId group, RequestId request, replication::ClientResponse response);

  ByteEnv& env_;
  NodeId self_;
  GroupHostOptions options_;
  std::map<GroupId, std::unique_ptr<Group>> groups_;
  std::map<GroupId, GroupPlacement> known_;  // every group's newest placement seen
  std::map<replication::TimerId, GroupId> timers_;
  // Requests handed to a group: the session each came with (answers raise it).
  std::map<RequestId, std::string> sessions_;
  uint64_t unknown_frames_ = 0;
  uint64_t stale_frames_ = 0;
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
