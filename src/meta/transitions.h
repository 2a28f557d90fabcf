// Changes to the cluster map, as pure functions.
//
// Each transition takes the current map and its arguments and returns the next
// map, or InvalidArgument with a message a user can act on ("keyspace 'users'
// exists", "node 4 is not a member"). A returned map differs from the input by
// the change, an epoch one higher, last_change (one line saying what was
// done), and the new epoch as the config_epoch of every shard whose owners or
// moving_to changed (or that is new); it always passes validate()
// (cluster_map.h), since every transition checks its result. recent_changes is
// left alone: stamping who wrote a version is the writer's job
// (meta_client.h). The input is expected to be a valid map (decode() gives
// only those).
//
// Placement: bootstrap and create_keyspace place shards with
// default_placement(), the one function to replace when real placement comes:
// shard i of a keyspace is owned by the i-th active member in id order, round
// robin, and its next factor-1 successors (in a geo keyspace, the active members
// of the shard's region). A keyspace is refused when it cannot be placed (no
// active member, or none in a region).
//
// Member lifecycle: add_member brings a node in as joining (or active);
// set_member_state moves joining -> active, active <-> leaving, joining ->
// leaving; remove_member leaves a tombstone (state removed, not a voter) so the
// id is never reused.
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "meta/cluster_map.h"

namespace statekv::meta {

// The first map of a cluster (epoch 1). The founding members become active (they
// are the nodes that run the metadata raft group); at least one must be a voter.
// It has the "default" keyspace, which takes every key no other keyspace claims:
// hash partitioned into one shard per founding member (so each starts with an
// equal share), replicated as `default_replication` says (by default: by
// consensus with factor min(3, members)), linearizable, choosing consistency
// under partition.
Result<ClusterMap> bootstrap(std::string cluster_id, std::vector<Member> members,
                             std::optional<ReplicationSpec> default_replication = std::nullopt);

// Adds `member` (state joining or active). Its id must never have been used
// (removed members keep theirs) and its addresses must be free.
Result<ClusterMap> add_member(const ClusterMap& map, Member member);

// Moves a live member to `state` along the lifecycle above. Removal goes through
// remove_member.
Result<ClusterMap> set_member_state(const ClusterMap& map, NodeId id, MemberState state);

// What remove_member does with shards the member still owns.
enum class OwnedShards : bool {
  kRefuse,  // refuse while it owns any (move them first with assign_shards)
  kDrop,    // drop it from their owner lists (refused if a shard would have no owner left)
};

// Removes a live member (leaves a tombstone). Refused for the last voter, and
// for an owner of shards unless `owned` is kDrop.
Result<ClusterMap> remove_member(const ClusterMap& map, NodeId id,
                                 OwnedShards owned = OwnedShards::kRefuse);

// Adds a keyspace and places its shards with default_placement. The name and
// the prefix must be new; the prefix may nest in another or contain one (the
// longest prefix of a key wins: routing_table.h).
Result<ClusterMap> create_keyspace(const ClusterMap& map, KeyspaceSpec spec);

// What alter_keyspace may change; unset fields stay. The name, key prefix,
// partitioner and replication kind cannot change here: each moves data between
// shards or protocols, which is resharding's job, not a metadata edit.
struct KeyspaceChanges {
  std::optional<Consistency> consistency;
  std::optional<PartitionMode> partition_mode;
  // A new factor trims each shard's owner list to its first `factor` owners, or
  // extends it with the next active members in placement order (metadata only:
  // copying data to new owners is the replication layer's job).
  std::optional<uint32_t> replication_factor;
  std::optional<uint32_t> read_quorum;   // quorum replication only
  std::optional<uint32_t> write_quorum;  // quorum replication only
};

// Applies `changes` to keyspace `name`; refused when it changes nothing.
Result<ClusterMap> alter_keyspace(const ClusterMap& map, std::string_view name,
                                  const KeyspaceChanges& changes);

// Removes keyspace `name` from the map; "default" cannot be dropped. The
// keys stay where they are: KEYSPACE DROP deletes them first (begin_drop).
Result<ClusterMap> drop_keyspace(const ClusterMap& map, std::string_view name);

// ---- keyspace changes that move keys (docs/routing.md, "Keyspaces") ---------
// One at a time in the cluster: creating a keyspace over keys another one
// holds (begin_adopt, then finish_move or abort_move; or begin_create, then
// finish_create or drop_keyspace) and dropping one
// (begin_drop, then drop_keyspace) are refused while any keyspace moves or is
// being dropped, and a rebalance (begin_move) while one of them is under way.

// The keyspace that owns keys under `prefix` in `map`, `except` apart: the one
// with the longest prefix that `prefix` starts with ("default" at least;
// nullptr in a map without it). With `except` a keyspace's name and `prefix`
// its prefix: the keyspace that held its keys before it.
const Keyspace* prefix_owner(const ClusterMap& map, std::string_view prefix,
                             std::string_view except = {});

// The keyspace whose move or drop is under way (nullptr: none).
const Keyspace* change_under_way(const ClusterMap& map);

// For a transition that creates keyspace `name` (already in `next`, placed)
// and starts moving into it, in the same change, the keys that the keyspace
// which owned its prefix until then (the longest other prefix it starts
// with: "default" at least) holds: records that keyspace's layout as
// `name`'s moving_from (from_keyspace set), so the keys are served where they
// are until finish_move. In place, without bumping the epoch; InvalidArgument
// while another change is under way.
Status begin_adopt(ClusterMap& next, std::string_view name);

// For a transition that creates keyspace `name` (already in `next`, placed)
// over keys that cannot move in (coord/keyspace_change.cc: a REPLICATION
// consensus keyspace, or one whose prefix a consensus keyspace owned): sets
// `creating` (commands on its keys are refused) and gives the shards of the
// keyspace that owned the prefix until then `next`'s epoch as their
// configuration epoch, so that its replica groups refuse commands routed by
// an older map once they know it. In place, without bumping the epoch;
// InvalidArgument while another change is under way.
Status begin_create(ClusterMap& next, std::string_view name);
// Ends a creation begun by begin_create: the keyspace serves.
Result<ClusterMap> finish_create(const ClusterMap& map, std::string_view name);

// Starts dropping keyspace `name` (dropping set): nodes then delete its keys
// and hold commands on them until drop_keyspace removes it; its shards get the
// new epoch as their configuration epoch (what older maps route is refused).
// Refused for "default", and while another change is under way (a creation of
// `name` itself left half-way is dropped).
Result<ClusterMap> begin_drop(const ClusterMap& map, std::string_view name);
// Abandons a drop (a node could not delete its part): the keyspace stays,
// with the keys not deleted yet, and serves again.
Result<ClusterMap> abort_drop(const ClusterMap& map, std::string_view name);

// Replaces keyspace `name`'s shard map. There must be one shard per partition
// (ids 0..n-1 in order), and every owner must be an active member (in a geo
// keyspace, of the shard's region), 1..factor distinct owners per shard.
Result<ClusterMap> assign_shards(const ClusterMap& map, std::string_view name,
                                 std::vector<Shard> shards);

// Sets the owners of shard `shard` of REPLICATION consensus keyspace `name`
// as its replica group's membership moves (coord/replica_moves.h): 1..factor+1
// distinct live members (one past the factor while a replica is added); an
// owner the shard did not have must be active, one it keeps may be leaving
// (its replica is on its way out). Refused when nothing changes. Owners equal
// to the shard's `moving_to` end its move (moving_to is cleared). A ring
// keyspace's nodes are recorded first (PartitionerSpec::ring_nodes).
Result<ClusterMap> set_replica_owners(const ClusterMap& map, std::string_view name, uint32_t shard,
                                      std::vector<NodeId> owners);

// Records where a replica move takes shard `shard` of REPLICATION consensus
// keyspace `name` (Shard::moving_to): `target`, factor distinct members, each
// active unless the shard already has it; empty: no move under way. Refused
// when nothing changes. A ring keyspace's nodes are recorded first.
Result<ClusterMap> set_replica_target(const ClusterMap& map, std::string_view name, uint32_t shard,
                                      std::vector<NodeId> target);

// Transitions applied one after another to `before` (`after` is the last
// one's result, its epoch as many past before's as there were), as one change
// of the map: before's epoch plus one, each shard whose configuration changed
// stamped with it, `what` as the last change. For a writer with many changes
// at once (the replica controller's tick): the metadata group takes one epoch
// a write.
Result<ClusterMap> as_one_change(const ClusterMap& before, ClusterMap after, std::string what);

// Replaces keyspace `name`'s whole layout, as a partitioner placed it
// (partition/layout.h): its shard list (ids 0..n-1) and split points (range:
// the splits; slots: each shard's first slot). The shard count follows the
// list. Every owner must be an active member. Not for geo keyspaces.
Result<ClusterMap> set_layout(const ClusterMap& map, std::string_view name,
                              std::vector<std::string> split_points, std::vector<Shard> shards);

// Starts moving keyspace `name` to a new layout (rebalancing): the current
// layout becomes moving_from (keys stay served there) and the new one is
// recorded as where they go. Refused while a move is under way (or a
// keyspace is being created over keys, or dropped), or when the new layout
// equals the current one.
Result<ClusterMap> begin_move(const ClusterMap& map, std::string_view name,
                              std::vector<std::string> split_points, std::vector<Shard> shards,
                              std::vector<uint32_t> region_shards = {});
// Ends the move: keys are now served where the new layout puts them (by the
// new keyspace, after begin_adopt).
Result<ClusterMap> finish_move(const ClusterMap& map, std::string_view name);
// Abandons the move: keys stay where they were (moving_from becomes the layout
// again). After begin_adopt, the new keyspace is removed: its keys stay in the
// keyspace they were in.
Result<ClusterMap> abort_move(const ClusterMap& map, std::string_view name);

// The change-log line of creating a keyspace with `spec` ("create keyspace
// 'name' (prefix ..., hash, 4 shards, ...)"); its shard count is the spec's,
// so a transition that records a layout afterwards says it again.
std::string create_keyspace_change(const KeyspaceSpec& spec);

// Records a layout on keyspace `k` in place, without bumping the epoch: for a
// transition that creates the keyspace and places it in one change. The
// caller validates the map afterwards, and stamps the shards' config_epoch
// with the map's epoch (they are placed in that change).
// `region_shards`: geo only, each region's shard count (PartitionerSpec).
void record_layout(Keyspace& k, std::vector<std::string> split_points, std::vector<Shard> shards,
                   std::vector<uint32_t> region_shards = {});

// A member describes itself: where its clients and peers reach it, its region,
// and its state (a node that started records its addresses and goes active;
// one that is leaving stays leaving: a restart does not take a removal back).
// Refused when nothing would change, or the state change is not allowed.
Result<ClusterMap> describe_member(const ClusterMap& map, NodeId id, std::string address,
                                   std::string peer_address, std::string region, MemberState state);

// The default placement (see the top of this file) of `spec` over `members`.
// InvalidArgument when there is no active member to place a shard on.
Result<std::vector<Shard>> default_placement(const std::vector<Member>& members,
                                             const KeyspaceSpec& spec);

}  // namespace statekv::meta
