#include "partition/layout.h"

#include <algorithm>
#include <charconv>
#include <span>

#include "meta/transitions.h"
#include "partition/slots.h"

namespace statekv::partition {

namespace {

Status inconsistent(const meta::Keyspace& k, const std::string& why) {
  return Status::Corruption("keyspace '" + k.spec.name + "': " + why);
}

}  // namespace

std::vector<NodeInfo> placeable_nodes(const std::vector<meta::Member>& members) {
  std::vector<NodeInfo> out;
  for (const meta::Member& m : members) {
    if (m.state == meta::MemberState::kActive) out.push_back(NodeInfo{m.id, m.region});
  }
  std::sort(out.begin(), out.end(),
            [](const NodeInfo& a, const NodeInfo& b) { return a.id < b.id; });
  return out;
}

Result<Layout> layout_of(const Placement& p) {
  Layout layout;
  switch (p.kind()) {
    case meta::Partitioner::kGeo:
      // Each region's own layout, regions in order: what the region's inner
      // placement would record on its own, one region after the other.
      for (const std::string& region : p.regions()) {
        const Placement& inner = *p.region(region);
        layout.region_shards.push_back(static_cast<uint32_t>(inner.shard_count()));
        if (inner.kind() == meta::Partitioner::kRange) {
          const auto& splits = inner.split_points();
          layout.split_points.insert(layout.split_points.end(), splits.begin(), splits.end());
        } else if (inner.kind() == meta::Partitioner::kSlots) {
          for (const SlotRange& r : inner.slot_ranges()) {
            layout.split_points.push_back(std::to_string(r.start));
          }
        }
      }
      break;
    case meta::Partitioner::kRange:
      layout.split_points = p.split_points();
      break;
    case meta::Partitioner::kSlots:
      for (const SlotRange& r : p.slot_ranges()) {
        layout.split_points.push_back(std::to_string(r.start));
      }
      break;
    case meta::Partitioner::kHash:
    case meta::Partitioner::kRing:
      break;
  }
  for (uint32_t i = 0; i < p.shard_count(); ++i) {
    layout.shards.push_back(meta::Shard{ShardId(i), p.owners(i), {}});
  }
  return layout;
}

Result<Placement> restore(const meta::Keyspace& k, const std::vector<meta::Member>& members) {
  const meta::PartitionerSpec& spec = k.spec.partitioner;
  if (k.shards.empty()) return inconsistent(k, "no shards");
  // The nodes are the distinct owners, with their regions.
  std::vector<NodeInfo> nodes;
  for (const meta::Shard& s : k.shards) {
    for (NodeId id : s.owners) {
      if (std::none_of(nodes.begin(), nodes.end(), [&](const NodeInfo& n) { return n.id == id; })) {
        const meta::Member* m = nullptr;
        for (const meta::Member& x : members) {
          if (x.id == id) m = &x;
        }
        nodes.push_back(NodeInfo{id, m ? m->region : std::string("default")});
      }
    }
  }
  if (!spec.ring_nodes.empty()) {
    // A ring whose replicas have moved: its tokens are its recorded nodes',
    // whoever owns its shards now (a node that left the cluster included).
    nodes.clear();
    for (NodeId id : spec.ring_nodes) {
      const meta::Member* m = nullptr;
      for (const meta::Member& x : members) {
        if (x.id == id) m = &x;
      }
      nodes.push_back(NodeInfo{id, m ? m->region : std::string("default")});
    }
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const NodeInfo& a, const NodeInfo& b) { return a.id < b.id; });
  uint32_t rf = static_cast<uint32_t>(k.shards.front().owners.size());
  if (k.spec.replication.kind == meta::Replication::kConsensus) {
    // While a replica moves, shards list up to factor + 1 owners, and not
    // all alike.
    rf = std::min<uint32_t>(k.spec.replication.factor, static_cast<uint32_t>(nodes.size()));
  }

  // Gives the slots placement `p` (nodes, spec and factor set) the recorded
  // layout: shard i covers [starts[i], starts[i+1]) and has shards[i]'s owners.
  // `where` names the region, for geo.
  const auto fill_slots = [&](Placement& p, std::span<const std::string> starts,
                              std::span<const meta::Shard> shards,
                              const std::string& where) -> Status {
    if (starts.size() != shards.size()) {
      return inconsistent(k, where + "a slots layout needs one start slot per shard (" +
                                 std::to_string(shards.size()) + " shards, " +
                                 std::to_string(starts.size()) + " start slots)");
    }
    std::vector<uint32_t> first(starts.size());
    for (size_t i = 0; i < starts.size(); ++i) {
      const std::string& text = starts[i];
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), first[i]);
      if (ec != std::errc() || end != text.data() + text.size() || first[i] >= meta::kSlotCount ||
          (i == 0 ? first[i] != 0 : first[i] <= first[i - 1])) {
        return inconsistent(k, where + "bad start slot '" + text + "'");
      }
    }
    p.slot_shard_.assign(meta::kSlotCount, 0);
    p.owners_.clear();
    for (size_t i = 0; i < shards.size(); ++i) {
      const uint32_t stop = i + 1 < first.size() ? first[i + 1] : meta::kSlotCount;
      for (uint32_t slot = first[i]; slot < stop; ++slot) {
        p.slot_shard_[slot] = static_cast<uint16_t>(i);
      }
      p.owners_.push_back(shards[i].owners);
    }
    return Status::OK();
  };

  if (spec.kind == meta::Partitioner::kSlots) {
    Placement p;
    p.spec_ = spec;
    p.nodes_ = nodes;
    p.replication_factor_ = rf;
    p.key_prefix_ = k.spec.key_prefix;
    if (Status st = fill_slots(p, spec.split_points, k.shards, ""); !st.ok()) return st;
    return p;
  }

  // hash, ring and range derive their shards from the nodes (and the splits);
  // so does geo's frame (rules, regions, each region's nodes), and each region
  // inside it as its inner kind does.
  auto p = place(spec, nodes, nullptr, rf);
  if (!p.ok()) return p.status();
  p->set_key_prefix(k.spec.key_prefix);  // where range puts tagged keys
  const bool consensus = k.spec.replication.kind == meta::Replication::kConsensus;
  if (spec.kind == meta::Partitioner::kGeo &&
      (spec.inner == meta::Partitioner::kRange || spec.inner == meta::Partitioner::kSlots ||
       consensus)) {
    // Each region from its slice of the map: its shards (renumbered from 0)
    // and, for slots, its start slots (place() took range's splits already).
    // Consensus over hash or ring keeps the map's shards while replicas move
    // (coord/replica_moves.h): hash its recorded count, ring the tokens of
    // its recorded nodes.
    std::vector<uint32_t> counts = spec.region_shards;
    if (counts.empty()) {  // a map from before region_shards: hash and ring as their nodes give
      for (const Placement& inner : p->region_placements_) {
        const bool derived =
            spec.inner == meta::Partitioner::kHash || spec.inner == meta::Partitioner::kRing;
        counts.push_back(derived ? static_cast<uint32_t>(inner.shard_count()) : spec.shards);
      }
    }
    size_t total = 0;
    for (uint32_t n : counts) total += n;
    if (counts.size() != p->regions().size() || total != k.shards.size()) {
      return inconsistent(k, "its regions' shard counts add up to " + std::to_string(total) +
                                 ", the map lists " + std::to_string(k.shards.size()));
    }
    const std::span<const meta::Shard> all(k.shards);
    p->owners_.clear();
    size_t first = 0;
    for (size_t r = 0; r < counts.size(); ++r) {
      Placement& inner = p->region_placements_[r];
      const std::span<const meta::Shard> shards = all.subspan(first, counts[r]);
      const std::string where = "region '" + p->regions()[r] + "': ";
      if (spec.inner == meta::Partitioner::kSlots) {
        Status st = fill_slots(inner, inner.spec_.split_points, shards, where);
        if (!st.ok()) return st;
      } else if (spec.inner == meta::Partitioner::kHash) {
        // A key's shard is its hash modulo the region's count: the map's.
        inner.owners_.clear();
        for (const meta::Shard& sh : shards) inner.owners_.push_back(sh.owners);
      } else {
        if (inner.shard_count() != shards.size()) {
          return inconsistent(
              k, where +
                     (spec.inner == meta::Partitioner::kRing ? "its ring gives "
                                                             : "its split points give ") +
                     std::to_string(inner.shard_count()) + " shards, the map lists " +
                     std::to_string(shards.size()));
        }
        for (size_t i = 0; i < shards.size(); ++i) inner.owners_[i] = shards[i].owners;
      }
      p->region_offsets_[r] = static_cast<uint32_t>(first);
      p->owners_.insert(p->owners_.end(), inner.owners_.begin(), inner.owners_.end());
      first += counts[r];
    }
    return p;
  }
  if (spec.kind == meta::Partitioner::kRange) {
    // The map's owners win over the default dealing in id order.
    if (p->shard_count() != k.shards.size()) {
      return inconsistent(k, "the split points give " + std::to_string(p->shard_count()) +
                                 " shards, the map lists " + std::to_string(k.shards.size()));
    }
    for (size_t i = 0; i < k.shards.size(); ++i) p->owners_[i] = k.shards[i].owners;
    return p;
  }
  if (spec.kind == meta::Partitioner::kHash && consensus) {
    // A consensus keyspace keeps its shards while their replicas move
    // (coord/replica_moves.h): a key's shard is its hash modulo the map's
    // shard count, and the map's owners (a shard's replica group) win over
    // the dealing.
    p->owners_.clear();
    for (const meta::Shard& s : k.shards) p->owners_.push_back(s.owners);
    return p;
  }
  if (spec.kind == meta::Partitioner::kRing && consensus) {
    // Its tokens are its ring nodes' (above), its owners the map's.
    if (p->shard_count() != k.shards.size()) {
      return inconsistent(k, "its ring gives " + std::to_string(p->shard_count()) +
                                 " shards, the map lists " + std::to_string(k.shards.size()));
    }
    for (size_t i = 0; i < k.shards.size(); ++i) p->owners_[i] = k.shards[i].owners;
    return p;
  }
  if (p->shard_count() != k.shards.size()) {
    return inconsistent(k, "its nodes give " + std::to_string(p->shard_count()) +
                               " shards, the map lists " + std::to_string(k.shards.size()));
  }
  for (size_t i = 0; i < k.shards.size(); ++i) {
    if (p->owners(static_cast<uint32_t>(i)) != k.shards[i].owners) {
      return inconsistent(k, "shard " + std::to_string(i) + "'s owners differ from its placement");
    }
  }
  return p;
}

Result<meta::ClusterMap> create_placed_keyspace(const meta::ClusterMap& map,
                                                const meta::KeyspaceSpec& spec) {
  auto created = meta::create_keyspace(map, spec);
  if (!created.ok()) return created;
  auto placed =
      place(spec.partitioner, placeable_nodes(map.members), nullptr, spec.replication.factor);
  if (!placed.ok()) return placed.status();
  auto layout = layout_of(*placed);
  if (!layout.ok()) return layout.status();
  meta::ClusterMap next = std::move(created).value();
  for (meta::Keyspace& k : next.keyspaces) {
    if (k.spec.name == spec.name) {
      meta::record_layout(k, std::move(layout->split_points), std::move(layout->shards),
                          std::move(layout->region_shards));
      // Placed at this epoch: its configuration (meta::Shard::config_epoch).
      for (meta::Shard& sh : k.shards) sh.config_epoch = next.epoch.value();
      next.last_change = meta::create_keyspace_change(k.spec);  // the placed shard count
    }
  }
  if (Status s = meta::validate(next); !s.ok()) return s;
  return next;
}

}  // namespace statekv::partition
