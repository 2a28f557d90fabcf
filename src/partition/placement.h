// Placement: one keyspace's layout over a set of nodes — which shard a key is
// in, and which nodes own each shard. Pure and deterministic: place() with the
// same spec, nodes (in any order), previous placement, replication factor and
// sample keys gives an equal Placement on every run and platform (no clocks, no
// randomness, hashes with fixed byte encodings).
//
// Shards are numbered 0..shard_count()-1. A shard id names a position in THIS
// placement: after a join or leave the numbering may shift (range shards are
// renumbered in key order, ring arcs in token order), so compare placements by
// the owners of keys, never by shard ids.
//
// Owners: owners(s)[0] is the primary; the rest are replicas, all distinct.
// replication_factor (1..number of nodes; for geo 1..nodes of every region) is
// how many owners every shard has.
//
// What each partitioner does (meta::PartitionerSpec.kind; `N` = the nodes
// handed in, "id order" = ascending NodeId; for a key with a hash tag, read
// "key" below as what "Hash tags" further down says). spec.shards is not used: each kind
// below decides its shard count from the nodes, which is what lets the analysis
// (analysis.h) compare them at equal node counts.
//
//   hash   shard = XXH3_64(key) mod N; shard i is owned by the i-th node in id
//          order, replicas the next nodes in id order (wrapping). `previous` is
//          not used: when N changes, almost every key moves — the cost this
//          partitioner exists to show.
//   ring   consistent hashing. Each node has spec.vnodes tokens; token r of
//          node n is XXH3_64 of 12 bytes: n as 8 bytes little-endian, then r as 4
//          bytes little-endian. A key belongs to the first token clockwise from
//          XXH3_64(key) (the smallest token >= the hash, wrapping to the first).
//          Shard i is the arc that ends at the i-th token in ascending order
//          (ties between equal tokens: the lower node id keeps the token, the
//          other's arc is empty and dropped). Owners: the token's node, then the
//          next distinct nodes clockwise. `previous` is not needed: tokens depend
//          only on node ids, so a join takes keys only for the joiner's arcs.
//   slots  Redis Cluster: key -> slot as in slots.h; 16384 slots; a shard is a
//          maximal run of consecutive slots with one primary (shards in slot
//          order; a node may have several). Without `previous`, slots split
//          evenly in contiguous ranges the way `redis-cli --cluster create`
//          does. With `previous` (a slots placement), every node ends with
//          floor(16384/N) or that plus one slots; the nodes that already hold the
//          most keep the extra slot, so only the slots of nodes that left and the
//          surplus of nodes over their share move: surplus is taken from the top
//          of each donor's slots and handed out in slot order to the nodes below
//          their share, in id order. Replicas: the next nodes in id order.
//   range  ordered keys, compared bytewise. Shard i is [split[i-1], split[i])
//          (shard 0 starts at the empty key, the last shard has no end).
//          Without `previous`: the splits are spec.split_points when given
//          (strictly increasing, non-empty), shards dealt to nodes in id order
//          in contiguous blocks; otherwise the N-quantiles of sample_keys (one
//          shard per node; a quantile equal to the smallest sample key or to
//          the split before it is dropped, so fewer distinct sample keys than
//          nodes give fewer shards); with neither, the one shard a spec without
//          split points asks for, on the first node. With `previous`
//          (a range placement; its splits win over spec.split_points): each
//          shard of a node that left goes to its live neighbours — split at the
//          median of its sample keys when both neighbours are live (lower part
//          to the left one), else wholly to the live one; then each joining node,
//          in id order, takes the upper half of the shard holding the most
//          sample keys, split at its median. When no shard has a sample key to
//          split at (a rebalance from the cluster map knows no keys), the
//          joiner takes a whole shard instead: the last, in key order, of the
//          node holding the most shards (ties: the lower id), if it holds two
//          or more; else it gets no shard of its own this time (a node that
//          owns nothing is new again to the next change). Replicas: the next
//          nodes in id order.
//   geo    spec.geo_rules map a key prefix to a region: the longest matching
//          prefix wins; a key no rule matches goes to the FIRST rule's region
//          (meta's validate requires an empty-prefix rule, which matches every
//          key, so this only matters for specs that skip it). Inside a region,
//          spec.inner (range, hash, ring or slots, with the spec's vnodes and
//          split points) places keys over that region's nodes only, so every
//          owner of a key's shard is in the key's region. Regions are the
//          distinct regions of the rules sorted by name (meta::geo_regions);
//          region k's shards follow those of regions 0..k-1. Nodes in regions
//          no rule names own nothing. A named region with no node is
//          InvalidArgument. `previous` (a geo placement) is used region by
//          region. A spec that records a layout, as the cluster map keeps it
//          (spec.region_shards set: partition/layout.h), lists each region's
//          split points (inner range: region_shards[r] - 1 of them) or start
//          slots (inner slots: region_shards[r]) one region after the other, and
//          each region's inner spec takes only its own (and region_shards[r] as
//          its shard count); without region_shards every region takes all of
//          spec.split_points. (Inner slots build from `previous`, never from
//          recorded start slots: restore() in layout.h rebuilds those.)
//
// Hash tags: every kind honours Redis Cluster's `{tag}` (slots.h hash_tag: the
// bytes between the first '{' and the first '}' after it, when not empty), so
// keys sharing a tag are in one shard:
//   hash, ring  hash the tag instead of the key;
//   slots       the slot of the tag (as Redis Cluster);
//   range       a tagged key is placed as if it were key_prefix() + tag (the
//               keyspace's prefix, then the tag): "orders:{c42}:1" sits where
//               "orders:c42" would. The cost: tagged keys are not where their
//               own bytes would put them, so shards_for_range() does not cover
//               them (an ordered scan that must see tagged keys visits every
//               shard);
//   geo         the region from the whole key (the rules' prefixes), then the
//               inner kind as above: keys sharing a tag are together when they
//               are in one region.
// Keys without a tag are placed by their whole bytes, as before tags counted.
//
// Errors (InvalidArgument, with a message naming the problem): no nodes, a
// duplicate or zero node id, replication factor 0 or above the nodes available,
// vnodes 0 (ring), bad split points (range), geo without rules or with the
// inner kind geo, a region with no nodes, region_shards that do not match the
// rules' regions or the split points (geo), or a previous placement of another
// kind.
//
// Thread safety: a Placement is an immutable value; const methods may be called
// from any number of threads at once.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "meta/cluster_map.h"

namespace statekv::partition {

struct NodeInfo {
  NodeId id;
  std::string region = "default";
  bool operator==(const NodeInfo&) const = default;
};

struct Location {
  uint32_t shard = 0;
  std::vector<NodeId> owners;  // owners[0] is the primary
  bool operator==(const Location&) const = default;
};

// One run of slots for CLUSTER SLOTS: [start, end] inclusive.
struct SlotRange {
  uint32_t start = 0;
  uint32_t end = 0;
  uint32_t shard = 0;
  std::vector<NodeId> owners;  // owners[0] is the primary
  bool operator==(const SlotRange&) const = default;
};

class Placement;

// Builds the placement of `spec` over `nodes`, moving as little as the kind
// allows from `previous` (nullable; see the table above for what each kind
// takes from it). `sample_keys` tells range where to split; other kinds ignore
// it. Nothing is retained from the arguments.
Result<Placement> place(const meta::PartitionerSpec& spec, const std::vector<NodeInfo>& nodes,
                        const Placement* previous = nullptr, uint32_t replication_factor = 1,
                        std::span<const std::string> sample_keys = {});

class Placement {
 public:
  Placement(const Placement&) = default;
  Placement(Placement&&) noexcept = default;
  Placement& operator=(const Placement&) = default;
  Placement& operator=(Placement&&) noexcept = default;
  ~Placement() = default;

  // The spec this placement was built from (for a geo region's inner
  // placement: a spec of the inner kind).
  const meta::PartitionerSpec& spec() const { return spec_; }
  // The key prefix range puts tagged keys under (see "Hash tags" above): the
  // keyspace's, set by restore() (layout.h); place() takes `previous`'s, and
  // none without one. Only range (and geo over range) looks at it.
  const std::string& key_prefix() const { return key_prefix_; }
  // Sets key_prefix(), here and in every geo region's inner placement. Not
  // thread-safe: call it while building, before the placement is shared.
  void set_key_prefix(const std::string& prefix);
  meta::Partitioner kind() const { return spec_.kind; }
  // The nodes it was built over, in id order.
  const std::vector<NodeInfo>& nodes() const { return nodes_; }
  uint32_t replication_factor() const { return replication_factor_; }

  size_t shard_count() const { return owners_.size(); }
  // The shard `key` belongs to. Every key belongs to exactly one shard.
  uint32_t shard_of(std::string_view key) const;
  // The shard of `key` and its owners.
  Location locate(std::string_view key) const;
  // The primary owner of `key`'s shard (locate(key).owners[0], without a copy).
  NodeId primary_of(std::string_view key) const { return owners_[shard_of(key)][0]; }
  // The owners of `shard`; it must be < shard_count() (asserted).
  const std::vector<NodeId>& owners(uint32_t shard) const;

  // range: the shards an ordered scan of [start, end) visits, in key order
  // (an empty `end` means no upper bound; start >= end gives none); keys
  // with a hash tag are not covered (see "Hash tags"). Other
  // kinds scatter keys, so a scan visits every shard: all of them, in id order
  // (for geo: each region's answer, regions in order).
  std::vector<uint32_t> shards_for_range(std::string_view start, std::string_view end) const;
  // range: the split points (shard_count() - 1 of them). Empty for other kinds.
  const std::vector<std::string>& split_points() const { return splits_; }

  // slots: the slot runs in slot order, covering 0..16383. Empty for other
  // kinds (a geo keyspace over slots has one set per region: see region()).
  std::vector<SlotRange> slot_ranges() const;
  // slots: the shard holding `slot` (< 16384, asserted).
  uint32_t shard_of_slot(uint32_t slot) const;

  // ring: the tokens in ascending order; shard i ends at tokens()[i].
  const std::vector<uint64_t>& tokens() const { return tokens_; }

  // geo: the region `key` lives in; empty for other kinds.
  std::string_view region_of(std::string_view key) const;
  // geo: the regions, sorted by name; empty for other kinds.
  const std::vector<std::string>& regions() const { return region_names_; }
  // geo: the inner placement of `region` (its shard ids are local: add
  // region_first_shard), or nullptr when there is no such region.
  const Placement* region(std::string_view name) const;
  uint32_t region_first_shard(std::string_view name) const;

  bool operator==(const Placement& other) const;

 private:
  friend Result<Placement> place(const meta::PartitionerSpec&, const std::vector<NodeInfo>&,
                                 const Placement*, uint32_t, std::span<const std::string>);
  friend class PlacementBuilder;
  // partition/layout.h rebuilds a placement from what the cluster map records.
  friend Result<Placement> restore(const meta::Keyspace& k,
                                   const std::vector<meta::Member>& members);
  Placement() = default;

  size_t region_index_of(std::string_view key) const;

  meta::PartitionerSpec spec_;
  std::string key_prefix_;       // range: tagged keys sit at key_prefix_ + tag
  std::vector<NodeInfo> nodes_;  // id order
  uint32_t replication_factor_ = 1;
  std::vector<std::vector<NodeId>> owners_;  // per shard; [0] is the primary

  std::vector<uint64_t> tokens_;      // ring: ascending, one per shard
  std::vector<uint16_t> slot_shard_;  // slots: kSlotCount entries, the shard of each slot
  std::vector<std::string> splits_;   // range: strictly increasing, shard_count() - 1

  // geo: rules by descending prefix length (ties: rule order), each with the
  // index of its region; the region of keys no rule matches; per region its
  // name, inner placement and first shard id.
  struct GeoRule {
    std::string prefix;
    size_t region = 0;
    bool operator==(const GeoRule&) const = default;
  };
  std::vector<GeoRule> geo_rules_;
  size_t fallback_region_ = 0;
  std::vector<std::string> region_names_;
  std::vector<Placement> region_placements_;
  std::vector<uint32_t> region_offsets_;
};

}  // namespace statekv::partition
