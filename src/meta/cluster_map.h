// The cluster metadata document: members, keyspaces (how each is partitioned
// and replicated), each keyspace's shard map, and the epoch every change bumps.
//
// There is one such document per cluster. It lives as the value of the raft key
// "meta" (meta_client.h) and changes only by read-modify-CAS of the whole
// document, so its history is a register history that the linearizability
// checker can judge. This header holds the document as plain values, the names
// of its enums (for the CLI and RESP), its invariants (validate) and its bytes
// (encode / decode); changes to it are in transitions.h.
//
// Bytes: encode() writes compact JSON with object keys sorted and every field
// present, so the same map always gives the same bytes (CAS compares bytes).
// The document carries "format": kFormatVersion; decode() refuses any other
// version, any unknown or missing field, any unknown enum name, and any map
// that breaks an invariant of validate(), with Corruption and a message that
// names the field. Strings must be UTF-8 (JSON text); validate() refuses others.
//
// Invariants (validate):
//   * cluster_id and every name are 1..64 characters of [A-Za-z0-9._-]; epoch >= 1;
//     last_change is one line.
//   * member ids are non-zero and unique; removed members stay as tombstones so
//     that an id is never reused; live (not removed) members have distinct
//     addresses and peer addresses ("host:port"); at least one live voter;
//     removed members are not voters.
//   * keyspace names are unique; exactly one keyspace, "default", has the empty
//     key prefix; other prefixes are non-empty and distinct. Prefixes may nest
//     ("users:" and "users:vip:"): a key belongs to the keyspace with the
//     longest prefix it starts with, or to "default" when there is none.
//   * partitioner parameters fit the kind (partitioner_shard_count has the
//     shard count); replication factor 1..64 (1 for kNone); quorum sizes only for
//     kQuorum, each 1..factor; the default consistency is one the replication and
//     partition mode can serve (see validate() in the .cc for the table).
//   * a keyspace's shards have ids 0..n-1 in order, n = partitioner_shard_count;
//     each shard has 1..factor distinct owners (a consensus shard 1..factor+1
//     while a replica is being added), all live members; in a geo
//     keyspace every owner of a shard is in that shard's region.
//   * moving_from.from_keyspace, when set, names another keyspace, which is
//     neither moving nor dropping, and whose prefix is the longest other one
//     that the keyspace's prefix starts with; a keyspace that is dropping
//     is not "default", does not move, and no keyspace moves keys out of it;
//     a keyspace being created (creating) is not "default", and neither moves
//     nor is dropping.
//   * a shard's config_epoch is <= epoch.
//   * recent_changes: at most kMaxRecentChanges, epochs strictly increasing and
//     <= epoch, ids non-empty.
//
// Thread safety: plain values; the functions are pure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ids.h"
#include "core/status.h"

namespace statekv::meta {

inline constexpr uint64_t kFormatVersion = 1;
// How many (epoch, change id) stamps a document keeps: the window in which a
// writer whose CAS timed out can still learn whether it took effect.
inline constexpr size_t kMaxRecentChanges = 16;
// The one keyspace that always exists and takes every key no other prefix claims.
inline constexpr std::string_view kDefaultKeyspace = "default";
// Redis Cluster's slot count: a slots keyspace has at most this many shards.
inline constexpr uint32_t kSlotCount = 16384;

// ---- enums, and their names for the CLI and RESP ---------------------------

enum class MemberState : unsigned char { kJoining, kActive, kLeaving, kRemoved };
enum class Partitioner : unsigned char { kRange, kHash, kRing, kSlots, kGeo };
enum class Replication : unsigned char {
  kNone,
  kPrimaryBackupAsync,
  kPrimaryBackupSync,
  kMultiPrimary,
  kChain,
  kQuorum,
  kConsensus,
};
enum class Consistency : unsigned char { kLinearizable, kSequential, kCausal, kFifo, kEventual };
enum class PartitionMode : unsigned char { kConsistency, kAvailability };

// Names: joining active leaving removed | range hash ring slots geo |
// none primary-backup-async primary-backup-sync multi-primary chain quorum
// consensus | linearizable sequential causal fifo eventual | consistency
// availability. Parsing also accepts "raft" for consensus and "cp" / "ap" for
// the partition modes; printing always gives the names above. An unknown name is
// InvalidArgument listing the names that are accepted.
std::string_view to_string(MemberState v);
std::string_view to_string(Partitioner v);
std::string_view to_string(Replication v);
std::string_view to_string(Consistency v);
std::string_view to_string(PartitionMode v);
Result<MemberState> parse_member_state(std::string_view name);
Result<Partitioner> parse_partitioner(std::string_view name);
Result<Replication> parse_replication(std::string_view name);
Result<Consistency> parse_consistency(std::string_view name);
Result<PartitionMode> parse_partition_mode(std::string_view name);

// ---- the document -----------------------------------------------------------

struct Member {
  NodeId id;
  std::string address;       // RESP host:port that clients connect to
  std::string peer_address;  // host:port of the node-to-node transport
  std::string region = "default";
  MemberState state = MemberState::kJoining;
  bool voter = true;  // takes part in the metadata raft group's votes
  bool operator==(const Member&) const = default;
};

// Geo partitioning: a key whose prefix matches `prefix` lives in `region`; the
// longest matching prefix wins; a rule with the empty prefix must exist and
// takes the rest.
struct GeoRule {
  std::string prefix;
  std::string region;
  bool operator==(const GeoRule&) const = default;
};

struct PartitionerSpec {
  Partitioner kind = Partitioner::kHash;
  // range, hash, ring, slots: shards in the keyspace; geo: shards per region.
  uint32_t shards = 1;
  // ring (or geo with inner ring): points per shard on the ring.
  uint32_t vnodes = 256;
  // range (or geo with inner range): shards - 1 strictly increasing keys,
  // whole keys (the keyspace's prefix included: what users type is relative
  // to the prefix, see split_points_under); shard i holds
  // [split_points[i-1], split_points[i]). slots, once placed:
  // each shard's first slot. geo, once placed (region_shards set): each
  // region's split points (range: its shards - 1) or first slots (slots: one
  // per shard, from 0), one region after the other. Empty for other kinds.
  std::vector<std::string> split_points;
  // geo only: prefix -> region rules; empty for other kinds.
  std::vector<GeoRule> geo_rules;
  // geo, once placed: each region's shard count, regions in geo_regions()
  // order (a region's inner partitioner decides it); it also says how
  // split_points divide among the regions. Empty: `shards` each.
  std::vector<uint32_t> region_shards;
  // ring (or geo over ring), REPLICATION consensus, once a replica has moved:
  // the nodes whose tokens make the ring, in id order (geo: every region's,
  // each node in its member's region). Until then the ring is made by the
  // shards' distinct owners; a replica move records them first
  // (set_replica_target, set_replica_owners), so the tokens, and with them
  // every key's shard, stay put while owners come and go. Empty otherwise.
  std::vector<NodeId> ring_nodes;
  // geo only: the partitioner inside each region (range, hash, ring or slots),
  // with shards / vnodes / split_points above; must stay kHash for other kinds.
  Partitioner inner = Partitioner::kHash;
  bool operator==(const PartitionerSpec&) const = default;
};

struct ReplicationSpec {
  Replication kind = Replication::kConsensus;
  uint32_t factor = 3;  // copies of each shard (N)
  // kQuorum only (R and W, each 1..factor); 0 for every other kind.
  uint32_t read_quorum = 0;
  uint32_t write_quorum = 0;
  bool operator==(const ReplicationSpec&) const = default;
};

struct KeyspaceSpec {
  std::string name;
  // Keys starting with it belong to this keyspace; "" only for "default".
  std::string key_prefix;
  PartitionerSpec partitioner;
  ReplicationSpec replication;
  // The level a request gets when it does not ask for one.
  Consistency consistency = Consistency::kLinearizable;
  PartitionMode partition_mode = PartitionMode::kConsistency;
  bool operator==(const KeyspaceSpec&) const = default;
};

struct Shard {
  ShardId id;                  // its index in the keyspace's shard map
  std::vector<NodeId> owners;  // replicas, in preference order (first: preferred primary)
  // REPLICATION consensus: the owners a replica move under way takes the shard
  // to (coord/replica_controller.h); empty when none is. Kept in the map so
  // that a new metadata leader finishes the move it finds, not another one.
  std::vector<NodeId> moving_to;
  // The shard's configuration epoch: the map epoch that last changed its
  // owners or moving_to, or the keys it holds (a keyspace created over part
  // of its keyspace's prefix, or its keyspace being dropped: transitions.h,
  // begin_create and begin_drop) (transitions.h stamps it; 0 in a map written before
  // epochs existed, until the shard's owners next change). A REPLICATION
  // consensus shard's replica group carries it on its frames and on its
  // `__replicas` steps (coord/replica_groups.h), so that a member refuses
  // what was decided on an older view of the group, and a command routed by
  // an older map. In the JSON only when
  // non-zero ("config_epoch").
  uint64_t config_epoch = 0;
  // The shard's placement: its id, owners and moving_to. config_epoch is
  // bookkeeping that follows them, so a layout computed afresh (config_epoch
  // 0) equals the map's when it places the shard alike.
  bool operator==(const Shard& o) const {
    return id == o.id && owners == o.owners && moving_to == o.moving_to;
  }
};

// A layout a keyspace is moving away from (rebalancing): until the move
// finishes, keys are served where this layout puts them, and `shards` (with
// the spec's split points) is where they are going (coord/ and
// docs/routing.md describe the protocol).
struct SourceLayout {
  std::vector<std::string> split_points;
  std::vector<Shard> shards;
  std::vector<uint32_t> region_shards;  // geo only
  // Set when the keys come from another keyspace, not from another layout of
  // this one: KEYSPACE CREATE over keys that `from_keyspace` (the keyspace
  // that owned the new prefix until then) holds. The layout above is then
  // that keyspace's, and keys are served where it puts them until the move
  // finishes (docs/routing.md, "Keyspaces"). Empty for a rebalance.
  std::string from_keyspace;
  bool operator==(const SourceLayout&) const = default;
};

struct Keyspace {
  KeyspaceSpec spec;
  std::vector<Shard> shards;
  // Set while a rebalance, or the move of a new keyspace's keys out of the
  // keyspace that held them (from_keyspace), is under way.
  std::optional<SourceLayout> moving_from;
  // KEYSPACE DROP under way: every node deletes the keyspace's keys, and
  // commands on them wait (or are refused) until the keyspace is gone.
  bool dropping = false;
  // Created over a prefix whose keys cannot move in (a REPLICATION consensus
  // keyspace, or one carved out of one: transitions.h, begin_create): every
  // command on its keys is refused (TRYAGAIN) until the keyspace that owned
  // the prefix is fenced and found to hold none of them (finish_create).
  bool creating = false;
  bool operator==(const Keyspace&) const = default;
};

// Who wrote the version of one epoch: see meta_client.h (update) for why.
struct ChangeStamp {
  Epoch epoch;
  std::string change_id;
  bool operator==(const ChangeStamp&) const = default;
};

struct ClusterMap {
  std::string cluster_id;
  Epoch epoch;  // bumped by exactly one on every change
  std::vector<Member> members;
  std::vector<Keyspace> keyspaces;
  std::string last_change;  // one line: what the last change did
  // The writers of the most recent epochs, oldest first (meta_client.h stamps
  // them; transitions leave them alone).
  std::vector<ChangeStamp> recent_changes;

  // nullptr when absent. Pointers are invalidated by any change to the vectors.
  const Member* find_member(NodeId id) const;
  const Keyspace* find_keyspace(std::string_view name) const;

  bool operator==(const ClusterMap&) const = default;
};

// ---- derived facts ------------------------------------------------------------

// The regions of a geo partitioner: the distinct regions of its rules, sorted by
// name. Empty for other kinds.
std::vector<std::string> geo_regions(const PartitionerSpec& p);
// The number of shards the partitioner asks for: shards, or shards x regions for geo.
uint32_t partitioner_shard_count(const PartitionerSpec& p);
// The split points the map keeps for split points a user typed (KEYSPACE
// CREATE ... SPLITS, a keyspace file's `splits`) for a range keyspace (or geo
// over range) with key prefix `prefix`: typed split points are relative to the
// prefix, so under "orders:" the split "m" is the key "orders:m". One that
// already starts with the prefix is taken as the whole key (as split points
// were read before they were relative: "orders:m" stays "orders:m"); an empty
// one stays empty (validate refuses it).
std::vector<std::string> split_points_under(std::string_view prefix,
                                            std::vector<std::string> typed);
// The region of shard `index` of a geo keyspace (shards of region r are
// [r * shards, (r + 1) * shards)); empty for other kinds.
std::string shard_region(const PartitionerSpec& p, uint32_t index);

// ---- invariants and bytes -----------------------------------------------------

// OK when `map` holds every invariant listed at the top of this file; otherwise
// InvalidArgument saying which one and where ("keyspace 'users': ...").
Status validate(const ClusterMap& map);
// Only the keyspace-level invariants (name, prefix, partitioner, replication,
// consistency) of one spec, for checking input before it meets a map.
Status validate_spec(const KeyspaceSpec& spec);

// What this release's data path serves: one copy of each shard (replication
// none, factor 1). A user's keyspace definition (KEYSPACE CREATE, a keyspace
// file) asking for more is refused with InvalidArgument naming what is served,
// rather than recorded and not honoured; the map format itself keeps every
// kind, for the protocols as they land (docs/replication.md).
Status check_replication_served(const ReplicationSpec& replication);

// The document as JSON text. Deterministic. Meant for maps validate() accepts
// (strings that are not UTF-8 would be replaced, so such a map would not round
// trip: validate refuses them).
std::string encode(const ClusterMap& map);
// The map in `bytes`; Corruption naming what is wrong on anything encode() of a
// valid map could not have produced (bad JSON, format version, missing or
// unknown field, wrong type, unknown enum name, broken invariant).
Result<ClusterMap> decode(std::string_view bytes);

}  // namespace statekv::meta
