#include "partition/placement.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include "core/assert.h"
#include "partition/slots.h"

namespace statekv::partition {
namespace {

using meta::Partitioner;

Status invalid(const std::string& msg) {
  return Status::InvalidArgument("partition: " + msg);
}

// hash and ring hash a key's tag when it has one (slots.h), so keys sharing a
// tag share a shard.
uint64_t key_hash(std::string_view key) {
  const std::string_view bytes = hash_tag(key);
  return XXH3_64bits(bytes.data(), bytes.size());
}

bool has_tag(std::string_view key) {
  return hash_tag(key).size() != key.size();  // a tag leaves out at least its braces
}

// Where range puts `key`: a tagged key at prefix + tag, any other key at itself.
std::string_view range_position(std::string_view key, const std::string& prefix,
                                std::string& scratch) {
  if (!has_tag(key)) return key;
  const std::string_view tag = hash_tag(key);
  scratch.reserve(prefix.size() + tag.size());
  scratch.assign(prefix).append(tag);
  return scratch;
}

// The sorted range positions of `keys`; `owned` keeps the strings made for
// tagged keys alive as long as the views.
std::vector<std::string_view> range_positions(std::span<const std::string_view> keys,
                                              const std::string& prefix,
                                              std::deque<std::string>& owned) {
  std::vector<std::string_view> out;
  out.reserve(keys.size());
  for (std::string_view key : keys) {
    if (!has_tag(key)) {
      out.push_back(key);
      continue;
    }
    std::string& at = owned.emplace_back();
    out.push_back(range_position(key, prefix, at));
  }
  if (!std::is_sorted(out.begin(), out.end())) std::sort(out.begin(), out.end());
  return out;
}

// Token `replica` of `node`: the hash of a fixed little-endian encoding, so the
// ring is the same on every platform.
uint64_t ring_token(NodeId node, uint32_t replica) {
  unsigned char bytes[12];
  const uint64_t id = node.value();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(id >> (8 * i));
  for (int i = 0; i < 4; ++i) bytes[8 + i] = static_cast<unsigned char>(replica >> (8 * i));
  return XXH3_64bits(bytes, sizeof bytes);
}

// The node at `primary` (an index into `nodes`, which are in id order) and the
// next factor - 1 nodes in id order, wrapping.
std::vector<NodeId> with_successors(const std::vector<NodeInfo>& nodes, size_t primary,
                                    uint32_t factor) {
  std::vector<NodeId> owners;
  owners.reserve(factor);
  for (uint32_t k = 0; k < factor; ++k) owners.push_back(nodes[(primary + k) % nodes.size()].id);
  return owners;
}

size_t index_of(const std::vector<NodeInfo>& nodes, NodeId id) {
  auto it = std::lower_bound(nodes.begin(), nodes.end(), id,
                             [](const NodeInfo& n, NodeId v) { return n.id < v; });
  return it != nodes.end() && it->id == id ? static_cast<size_t>(it - nodes.begin()) : nodes.size();
}

Status check_previous(const meta::PartitionerSpec& spec, const Placement* previous) {
  if (previous == nullptr || previous->kind() == spec.kind) return Status::OK();
  return invalid(fmt::format(
      "the previous placement is '{}' and the spec is '{}': a change of partitioner cannot "
      "reuse it (build without a previous placement)",
      meta::to_string(previous->kind()), meta::to_string(spec.kind)));
}

// ---- range helpers ------------------------------------------------------------

using SortedKeys = std::span<const std::string_view>;

// The sample keys in [lo, hi); hi == nullopt means no upper bound.
SortedKeys keys_in(SortedKeys sorted, std::string_view lo, std::optional<std::string_view> hi) {
  auto first = std::lower_bound(sorted.begin(), sorted.end(), lo);
  auto last = hi ? std::lower_bound(first, sorted.end(), *hi) : sorted.end();
  return sorted.subspan(static_cast<size_t>(first - sorted.begin()),
                        static_cast<size_t>(last - first));
}

// A split point strictly inside [lo, hi) at the median of the sample keys there,
// or nullopt when no sample key there is above lo.
std::optional<std::string> median_split(SortedKeys in_shard, std::string_view lo) {
  if (in_shard.empty()) return std::nullopt;
  std::string_view candidate = in_shard[in_shard.size() / 2];
  if (candidate <= lo) {
    // Many copies of the shard's lower bound: the first larger key instead.
    auto it = std::upper_bound(in_shard.begin(), in_shard.end(), lo);
    if (it == in_shard.end()) return std::nullopt;
    candidate = *it;
  }
  return std::string(candidate);
}

// One range shard while a layout is being built: [lo, next segment's lo).
struct Segment {
  std::string lo;
  NodeId owner;
};

std::optional<std::string_view> upper_of(const std::vector<Segment>& segs, size_t i) {
  if (i + 1 < segs.size()) return std::string_view(segs[i + 1].lo);
  return std::nullopt;
}

// Hands each shard of a node no longer in `nodes` to its live neighbours.
void drop_leavers(std::vector<Segment>& segs, const std::vector<NodeInfo>& nodes,
                  SortedKeys sorted) {
  const auto live = [&](size_t i) { return index_of(nodes, segs[i].owner) < nodes.size(); };
  bool changed = true;
  while (changed) {
    changed = false;
    for (size_t i = 0; i < segs.size() && !changed; ++i) {
      if (live(i)) continue;
      const bool left = i > 0 && live(i - 1);
      const bool right = i + 1 < segs.size() && live(i + 1);
      if (left && right) {
        // Split between both neighbours so neither takes the whole shard.
        auto mid = median_split(keys_in(sorted, segs[i].lo, upper_of(segs, i)), segs[i].lo);
        if (mid) segs[i + 1].lo = std::move(*mid);  // else: all of it to the left
      } else if (right) {
        segs[i + 1].lo = std::move(segs[i].lo);
      } else if (!left) {
        continue;  // no live neighbour yet: a later pass reaches it
      }
      segs.erase(segs.begin() + static_cast<std::ptrdiff_t>(i));
      changed = true;
    }
  }
}

// Gives `joiner` the upper half of the shard with the most sample keys; when
// no shard has a sample key to split at (a rebalance knows no keys), a whole
// shard instead: the last one, in key order, of the node holding the most
// (ties: the lower id), if it holds two or more. Otherwise the joiner waits
// with no shard: a later change that knows keys, or has a shard to spare,
// gives it one.
void split_for(std::vector<Segment>& segs, NodeId joiner, SortedKeys sorted) {
  std::vector<size_t> counts(segs.size());
  for (size_t i = 0; i < segs.size(); ++i) {
    counts[i] = keys_in(sorted, segs[i].lo, upper_of(segs, i)).size();
  }
  std::vector<size_t> order(segs.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return counts[a] > counts[b]; });
  for (size_t i : order) {
    auto mid = median_split(keys_in(sorted, segs[i].lo, upper_of(segs, i)), segs[i].lo);
    if (!mid) continue;
    segs.insert(segs.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                Segment{std::move(*mid), joiner});
    return;
  }
  std::map<NodeId, size_t> held;
  for (const Segment& s : segs) ++held[s.owner];
  NodeId donor;
  size_t most = 0;
  for (const auto& [node, count] : held) {
    if (count > most) {  // map order: on a tie the lower id stays the donor
      donor = node;
      most = count;
    }
  }
  if (most < 2) return;
  for (size_t i = segs.size(); i-- > 0;) {
    if (segs[i].owner == donor) {
      segs[i].owner = joiner;
      return;
    }
  }
}

}  // namespace

// Fills in the kind-specific parts of a Placement whose spec_, nodes_ (id
// order, validated) and replication_factor_ are already set.
class PlacementBuilder {
 public:
  static Status build(Placement& p, const Placement* previous, SortedKeys sample) {
    if (Status st = check_previous(p.spec_, previous); !st.ok()) return st;
    switch (p.spec_.kind) {
      case Partitioner::kHash:
        return hash(p);
      case Partitioner::kRing:
        return ring(p);
      case Partitioner::kSlots:
        return slots(p, previous);
      case Partitioner::kRange:
        return range(p, previous, sample);
      case Partitioner::kGeo:
        return geo(p, previous, sample);
    }
    return invalid("unknown partitioner kind");
  }

 private:
  static Status hash(Placement& p) {
    for (size_t i = 0; i < p.nodes_.size(); ++i) {
      p.owners_.push_back(with_successors(p.nodes_, i, p.replication_factor_));
    }
    return Status::OK();
  }

  static Status ring(Placement& p) {
    if (p.spec_.vnodes == 0) return invalid("ring: vnodes must be at least 1");
    struct Token {
      uint64_t value;
      size_t node;  // index into nodes_
    };
    std::vector<Token> all;
    all.reserve(p.nodes_.size() * p.spec_.vnodes);
    for (size_t n = 0; n < p.nodes_.size(); ++n) {
      for (uint32_t r = 0; r < p.spec_.vnodes; ++r) {
        all.push_back({ring_token(p.nodes_[n].id, r), n});
      }
    }
    std::sort(all.begin(), all.end(), [](const Token& a, const Token& b) {
      return a.value != b.value ? a.value < b.value : a.node < b.node;
    });
    // Equal tokens: the first (lower node id) keeps it; the other arc is empty.
    all.erase(std::unique(all.begin(), all.end(),
                          [](const Token& a, const Token& b) { return a.value == b.value; }),
              all.end());
    const size_t n_tokens = all.size();
    for (size_t i = 0; i < n_tokens; ++i) {
      std::vector<NodeId> owners;
      std::vector<bool> taken(p.nodes_.size(), false);
      for (size_t step = 0; step < n_tokens && owners.size() < p.replication_factor_; ++step) {
        const size_t node = all[(i + step) % n_tokens].node;
        if (taken[node]) continue;
        taken[node] = true;
        owners.push_back(p.nodes_[node].id);
      }
      if (owners.size() < p.replication_factor_) {
        return Status::Internal(
            "partition: ring: fewer distinct nodes hold tokens than the replication factor");
      }
      p.tokens_.push_back(all[i].value);
      p.owners_.push_back(std::move(owners));
    }
    return Status::OK();
  }

  static Status slots(Placement& p, const Placement* previous) {
    const size_t n = p.nodes_.size();
    constexpr size_t kNone = std::numeric_limits<size_t>::max();
    std::vector<size_t> owner(kSlotCount, kNone);  // node index per slot
    if (previous == nullptr) {
      // As `redis-cli --cluster create`: a float cursor so rounding spreads out.
      const float per_node = static_cast<float>(kSlotCount) / static_cast<float>(n);
      float cursor = 0.0f;
      long first = 0;
      for (size_t i = 0; i < n; ++i) {
        long last = std::lround(cursor + per_node - 1);
        if (last > static_cast<long>(kSlotCount) - 1 || i == n - 1) last = kSlotCount - 1;
        if (last < first) last = first;
        for (long s = first; s <= last && s < static_cast<long>(kSlotCount); ++s) owner[s] = i;
        first = last + 1;
        cursor += per_node;
      }
    } else {
      for (uint32_t s = 0; s < kSlotCount; ++s) {
        owner[s] = index_of(p.nodes_, previous->owners_[previous->slot_shard_[s]][0]);
        if (owner[s] == n) owner[s] = kNone;  // its node left
      }
      rebalance_slots(owner, n);
    }
    p.slot_shard_.assign(kSlotCount, 0);
    for (uint32_t s = 0; s < kSlotCount; ++s) {
      SKV_ASSERT(owner[s] != kNone, "every slot has an owner after placement");
      if (s > 0 && owner[s] != owner[s - 1]) {
        p.owners_.push_back(with_successors(p.nodes_, owner[s - 1], p.replication_factor_));
      }
      p.slot_shard_[s] = static_cast<uint16_t>(p.owners_.size());
    }
    p.owners_.push_back(with_successors(p.nodes_, owner[kSlotCount - 1], p.replication_factor_));
    return Status::OK();
  }

  // Moves the fewest slots that leave every node within one slot of equal:
  // orphans (owner kNone) and each node's surplus over its target, handed out in
  // slot order to the nodes below theirs.
  static void rebalance_slots(std::vector<size_t>& owner, size_t n) {
    constexpr size_t kNone = std::numeric_limits<size_t>::max();
    std::vector<size_t> count(n, 0);
    for (size_t o : owner) {
      if (o != kNone) ++count[o];
    }
    // The kSlotCount % n nodes that hold the most now keep one slot more.
    std::vector<size_t> by_count(n);
    std::iota(by_count.begin(), by_count.end(), size_t{0});
    std::stable_sort(by_count.begin(), by_count.end(),
                     [&](size_t a, size_t b) { return count[a] > count[b]; });
    std::vector<size_t> target(n, kSlotCount / n);
    for (size_t k = 0; k < kSlotCount % n; ++k) ++target[by_count[k]];

    std::vector<uint32_t> pool;  // slots to hand out
    std::vector<size_t> surplus(n, 0);
    for (size_t i = 0; i < n; ++i) surplus[i] = count[i] > target[i] ? count[i] - target[i] : 0;
    for (uint32_t s = kSlotCount; s-- > 0;) {  // from the top of each donor's slots
      if (owner[s] == kNone) {
        pool.push_back(s);
      } else if (surplus[owner[s]] > 0) {
        --surplus[owner[s]];
        pool.push_back(s);
      }
    }
    std::reverse(pool.begin(), pool.end());
    size_t next = 0;
    for (size_t i = 0; i < n; ++i) {
      for (size_t c = count[i]; c < target[i]; ++c) owner[pool[next++]] = i;
    }
    SKV_ASSERT(next == pool.size(), "slot rebalance hands out exactly the slots it took");
  }

  static Status range(Placement& p, const Placement* previous, SortedKeys sorted) {
    const size_t n = p.nodes_.size();
    std::vector<Segment> segs;
    if (previous != nullptr) {
      for (size_t i = 0; i < previous->owners_.size(); ++i) {
        segs.push_back(
            {i == 0 ? std::string() : previous->splits_[i - 1], previous->owners_[i][0]});
      }
      drop_leavers(segs, p.nodes_, sorted);
      for (const NodeInfo& node : p.nodes_) {
        if (index_of(previous->nodes_, node.id) < previous->nodes_.size()) continue;  // not new
        split_for(segs, node.id, sorted);
      }
    } else {
      std::vector<std::string> splits = p.spec_.split_points;
      for (size_t i = 0; i < splits.size(); ++i) {
        if (splits[i].empty()) return invalid("range: a split point cannot be the empty key");
        if (i > 0 && !(splits[i - 1] < splits[i])) {
          return invalid(
              fmt::format("range: split points must be strictly increasing ('{}' then '{}')",
                          splits[i - 1], splits[i]));
        }
      }
      // No split points and no sample keys: the one shard the spec asks for.
      if (splits.empty() && n > 1 && !sorted.empty()) {
        for (size_t j = 1; j < n; ++j) {
          std::string_view q = sorted[j * sorted.size() / n];
          // A split must leave sample keys on both sides of it.
          if (q > sorted.front() && (splits.empty() || splits.back() < q)) splits.emplace_back(q);
        }
      }
      const size_t k = splits.size() + 1;
      for (size_t i = 0; i < k; ++i) {
        segs.push_back({i == 0 ? std::string() : std::move(splits[i - 1]),
                        p.nodes_[i * n / k].id});  // contiguous blocks in id order
      }
    }
    for (size_t i = 0; i < segs.size(); ++i) {
      if (i > 0) p.splits_.push_back(segs[i].lo);
      p.owners_.push_back(
          with_successors(p.nodes_, index_of(p.nodes_, segs[i].owner), p.replication_factor_));
    }
    return Status::OK();
  }

  static Status geo(Placement& p, const Placement* previous, SortedKeys sorted) {
    const meta::PartitionerSpec& spec = p.spec_;
    if (spec.geo_rules.empty()) return invalid("geo: needs at least one prefix -> region rule");
    if (spec.inner == Partitioner::kGeo) return invalid("geo: cannot partition inside a region");
    std::set<std::string> prefixes;
    for (const meta::GeoRule& r : spec.geo_rules) {
      if (r.region.empty()) return invalid("geo: a rule has an empty region name");
      if (!prefixes.insert(r.prefix).second) {
        return invalid(fmt::format("geo: two rules for prefix '{}'", r.prefix));
      }
    }
    p.region_names_ = meta::geo_regions(spec);
    const auto region_index = [&](const std::string& name) {
      return static_cast<size_t>(
          std::lower_bound(p.region_names_.begin(), p.region_names_.end(), name) -
          p.region_names_.begin());
    };
    for (const meta::GeoRule& r : spec.geo_rules) {
      p.geo_rules_.push_back({r.prefix, region_index(r.region)});
    }
    std::stable_sort(p.geo_rules_.begin(), p.geo_rules_.end(), [](const auto& a, const auto& b) {
      return a.prefix.size() > b.prefix.size();
    });
    p.fallback_region_ = region_index(spec.geo_rules.front().region);

    // A spec that records a layout (region_shards set, as the cluster map
    // keeps it) lists each region's split points (range) or start slots
    // (slots) one region after the other; a spec without lists the same split
    // points for every region.
    const bool recorded = !spec.region_shards.empty();
    if (recorded && spec.region_shards.size() != p.region_names_.size()) {
      return invalid(fmt::format("geo: region_shards lists {} regions, the rules name {}",
                                 spec.region_shards.size(), p.region_names_.size()));
    }
    const auto listed = [&](size_t r) -> size_t {  // split points region r records
      if (spec.inner == Partitioner::kRange) return spec.region_shards[r] - 1;
      return spec.inner == Partitioner::kSlots ? spec.region_shards[r] : 0;
    };
    if (recorded) {
      size_t want = 0;
      for (size_t r = 0; r < p.region_names_.size(); ++r) {
        if (spec.region_shards[r] == 0) return invalid("geo: a region records 0 shards");
        want += listed(r);
      }
      if (want != spec.split_points.size()) {
        return invalid(fmt::format("geo: its region_shards need {} split points, the spec has {}",
                                   want, spec.split_points.size()));
      }
    }
    meta::PartitionerSpec inner = spec;
    inner.kind = spec.inner;
    inner.inner = Partitioner::kHash;
    inner.geo_rules.clear();
    inner.region_shards.clear();
    size_t first_split = 0;
    for (size_t r = 0; r < p.region_names_.size(); ++r) {
      const std::string& name = p.region_names_[r];
      if (recorded) {
        const auto from = spec.split_points.begin() + static_cast<std::ptrdiff_t>(first_split);
        inner.split_points.assign(from, from + static_cast<std::ptrdiff_t>(listed(r)));
        inner.shards = spec.region_shards[r];
        first_split += listed(r);
      }
      std::vector<NodeInfo> members;
      for (const NodeInfo& node : p.nodes_) {
        if (node.region == name) members.push_back(node);
      }
      if (members.empty()) return invalid(fmt::format("geo: region '{}' has no nodes", name));
      if (members.size() < p.replication_factor_) {
        return invalid(
            fmt::format("geo: replication factor {} needs {} nodes in region '{}', which has {}",
                        p.replication_factor_, p.replication_factor_, name, members.size()));
      }
      // The region by the whole key; inside it, range places by position.
      std::vector<std::string_view> region_sample;
      for (std::string_view key : sorted) {
        if (p.region_index_of(key) == r) region_sample.push_back(key);
      }
      std::deque<std::string> owned;
      if (inner.kind == Partitioner::kRange) {
        region_sample = range_positions(region_sample, p.key_prefix_, owned);
      }
      Placement part;
      part.spec_ = inner;
      part.key_prefix_ = p.key_prefix_;
      part.nodes_ = std::move(members);
      part.replication_factor_ = p.replication_factor_;
      const Placement* before = previous != nullptr ? previous->region(name) : nullptr;
      if (Status st = build(part, before, region_sample); !st.ok()) {
        return Status::InvalidArgument(fmt::format("{} (in region '{}')", st.message(), name));
      }
      p.region_offsets_.push_back(static_cast<uint32_t>(p.owners_.size()));
      p.owners_.insert(p.owners_.end(), part.owners_.begin(), part.owners_.end());
      p.region_placements_.push_back(std::move(part));
    }
    return Status::OK();
  }
};

Result<Placement> place(const meta::PartitionerSpec& spec, const std::vector<NodeInfo>& nodes,
                        const Placement* previous, uint32_t replication_factor,
                        std::span<const std::string> sample_keys) {
  if (nodes.empty()) return invalid("no nodes to place shards on");
  Placement p;
  p.spec_ = spec;
  p.nodes_ = nodes;
  std::sort(p.nodes_.begin(), p.nodes_.end(),
            [](const NodeInfo& a, const NodeInfo& b) { return a.id < b.id; });
  for (size_t i = 0; i < p.nodes_.size(); ++i) {
    if (p.nodes_[i].id == NodeId(0)) return invalid("node id 0 is not a valid id");
    if (i > 0 && p.nodes_[i - 1].id == p.nodes_[i].id) {
      return invalid(fmt::format("node {} is listed twice", p.nodes_[i].id));
    }
  }
  if (replication_factor == 0) return invalid("replication factor must be at least 1");
  if (spec.kind != Partitioner::kGeo && replication_factor > p.nodes_.size()) {
    return invalid(fmt::format("replication factor {} needs at least {} nodes, got {}",
                               replication_factor, replication_factor, p.nodes_.size()));
  }
  p.replication_factor_ = replication_factor;
  if (previous != nullptr) p.key_prefix_ = previous->key_prefix_;

  // Only range (and geo over range) looks at the sample, and it needs it
  // sorted: range by where it places each key (geo finds each key's region
  // from the whole key first, then does the same per region).
  std::vector<std::string_view> sorted;
  std::deque<std::string> owned;
  const bool ranged = spec.kind == Partitioner::kRange ||
                      (spec.kind == Partitioner::kGeo && spec.inner == Partitioner::kRange);
  if (ranged) {
    sorted.assign(sample_keys.begin(), sample_keys.end());
    if (spec.kind == Partitioner::kRange) {
      sorted = range_positions(sorted, p.key_prefix_, owned);
    } else if (!std::is_sorted(sorted.begin(), sorted.end())) {
      std::sort(sorted.begin(), sorted.end());
    }
  }
  if (Status st = PlacementBuilder::build(p, previous, sorted); !st.ok()) return st;
  return p;
}

// ---- lookups --------------------------------------------------------------------

uint32_t Placement::shard_of(std::string_view key) const {
  switch (spec_.kind) {
    case Partitioner::kHash:
      return static_cast<uint32_t>(key_hash(key) % owners_.size());
    case Partitioner::kRing: {
      auto it = std::lower_bound(tokens_.begin(), tokens_.end(), key_hash(key));
      return it == tokens_.end() ? 0 : static_cast<uint32_t>(it - tokens_.begin());
    }
    case Partitioner::kSlots:
      return slot_shard_[key_slot(key)];
    case Partitioner::kRange: {
      // The number of split points <= the key's position.
      std::string scratch;
      const std::string_view at = range_position(key, key_prefix_, scratch);
      return static_cast<uint32_t>(std::upper_bound(splits_.begin(), splits_.end(), at) -
                                   splits_.begin());
    }
    case Partitioner::kGeo: {
      const size_t r = region_index_of(key);
      return region_offsets_[r] + region_placements_[r].shard_of(key);
    }
  }
  SKV_ASSERT(false, "unknown partitioner kind");
  return 0;
}

Location Placement::locate(std::string_view key) const {
  const uint32_t shard = shard_of(key);
  return Location{shard, owners_[shard]};
}

const std::vector<NodeId>& Placement::owners(uint32_t shard) const {
  SKV_ASSERT(shard < owners_.size(), "shard id out of range");
  return owners_[shard];
}

std::vector<uint32_t> Placement::shards_for_range(std::string_view start,
                                                  std::string_view end) const {
  std::vector<uint32_t> out;
  if (spec_.kind == Partitioner::kRange) {
    if (!end.empty() && start >= end) return out;
    // By the bounds' own bytes (a bound is not a key: its braces mean nothing).
    const uint32_t first = static_cast<uint32_t>(
        std::upper_bound(splits_.begin(), splits_.end(), start) - splits_.begin());
    // The last shard holding a key < end: the number of split points < end.
    const uint32_t last =
        end.empty() ? static_cast<uint32_t>(owners_.size() - 1)
                    : static_cast<uint32_t>(std::lower_bound(splits_.begin(), splits_.end(), end) -
                                            splits_.begin());
    for (uint32_t s = first; s <= last; ++s) out.push_back(s);
    return out;
  }
  if (spec_.kind == Partitioner::kGeo) {
    for (size_t r = 0; r < region_placements_.size(); ++r) {
      for (uint32_t s : region_placements_[r].shards_for_range(start, end)) {
        out.push_back(region_offsets_[r] + s);
      }
    }
    return out;
  }
  out.resize(owners_.size());
  std::iota(out.begin(), out.end(), uint32_t{0});
  return out;
}

std::vector<SlotRange> Placement::slot_ranges() const {
  std::vector<SlotRange> out;
  if (spec_.kind != Partitioner::kSlots) return out;
  for (uint32_t s = 0; s < kSlotCount; ++s) {
    if (s == 0 || slot_shard_[s] != slot_shard_[s - 1]) {
      out.push_back(SlotRange{s, s, slot_shard_[s], owners_[slot_shard_[s]]});
    } else {
      out.back().end = s;
    }
  }
  return out;
}

uint32_t Placement::shard_of_slot(uint32_t slot) const {
  SKV_ASSERT(spec_.kind == Partitioner::kSlots, "shard_of_slot needs a slots placement");
  SKV_ASSERT(slot < kSlotCount, "slot out of range");
  return slot_shard_[slot];
}

size_t Placement::region_index_of(std::string_view key) const {
  for (const GeoRule& rule : geo_rules_) {
    if (key.starts_with(rule.prefix)) return rule.region;
  }
  return fallback_region_;
}

void Placement::set_key_prefix(const std::string& prefix) {
  key_prefix_ = prefix;
  for (Placement& region : region_placements_) region.set_key_prefix(prefix);
}

std::string_view Placement::region_of(std::string_view key) const {
  if (spec_.kind != Partitioner::kGeo) return {};
  return region_names_[region_index_of(key)];
}

const Placement* Placement::region(std::string_view name) const {
  for (size_t r = 0; r < region_names_.size(); ++r) {
    if (region_names_[r] == name) return &region_placements_[r];
  }
  return nullptr;
}

uint32_t Placement::region_first_shard(std::string_view name) const {
  for (size_t r = 0; r < region_names_.size(); ++r) {
    if (region_names_[r] == name) return region_offsets_[r];
  }
  return 0;
}

bool Placement::operator==(const Placement& other) const = default;

}  // namespace statekv::partition
