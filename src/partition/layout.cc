#include "partition/layout.h"

#include <algorithm>
#include <charconv>

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
  std::sort(out.begin(), out.end(), [](const NodeInfo& a, const NodeInfo& b) { return a.id < b.id; });
  return out;
}

Result<Layout> layout_of(const Placement& p) {
  Layout layout;
  switch (p.kind()) {
    case meta::Partitioner::kGeo:
      if (p.spec().inner != meta::Partitioner::kHash && p.spec().inner != meta::Partitioner::kRing) {
        return Status::InvalidArgument(
            "a geo keyspace places keys inside a region with hash or ring (for now)");
      }
      for (const std::string& region : p.regions()) {
        layout.region_shards.push_back(static_cast<uint32_t>(p.region(region)->shard_count()));
      }
      break;
    case meta::Partitioner::kRange:
      layout.split_points = p.split_points();
      break;
    case meta::Partitioner::kSlots:
      for (const SlotRange& r : p.slot_ranges()) layout.split_points.push_back(std::to_string(r.start));
      break;
    case meta::Partitioner::kHash:
    case meta::Partitioner::kRing:
      break;
  }
  for (uint32_t i = 0; i < p.shard_count(); ++i) {
    layout.shards.push_back(meta::Shard{ShardId(i), p.owners(i)});
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
  std::sort(nodes.begin(), nodes.end(), [](const NodeInfo& a, const NodeInfo& b) { return a.id < b.id; });
  const uint32_t rf = static_cast<uint32_t>(k.shards.front().owners.size());

  if (spec.kind == meta::Partitioner::kSlots) {
    // Shard i covers [start[i], start[i+1]).
    if (spec.split_points.size() != k.shards.size()) {
      return inconsistent(k, "a slots keyspace needs one start slot per shard");
    }
    Placement p;
    p.spec_ = spec;
    p.nodes_ = nodes;
    p.replication_factor_ = rf;
    p.slot_shard_.assign(meta::kSlotCount, 0);
    uint32_t previous = 0;
    for (size_t i = 0; i < k.shards.size(); ++i) {
      uint32_t start = 0;
      const std::string& text = spec.split_points[i];
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), start);
      if (ec != std::errc() || end != text.data() + text.size() || start >= meta::kSlotCount ||
          (i == 0 ? start != 0 : start <= previous)) {
        return inconsistent(k, "bad start slot '" + text + "'");
      }
      previous = start;
      const uint32_t stop =
          i + 1 < k.shards.size() ? static_cast<uint32_t>(std::stoul(spec.split_points[i + 1]))
                                  : meta::kSlotCount;
      for (uint32_t slot = start; slot < std::min(stop, meta::kSlotCount); ++slot) {
        p.slot_shard_[slot] = static_cast<uint16_t>(i);
      }
      p.owners_.push_back(k.shards[i].owners);
    }
    return p;
  }

  // hash, ring and range derive their shards from the nodes (and the splits).
  auto p = place(spec, nodes, nullptr, rf);
  if (!p.ok()) return p.status();
  if (spec.kind == meta::Partitioner::kRange) {
    // The map's owners win over the default dealing in id order.
    if (p->shard_count() != k.shards.size()) {
      return inconsistent(k, "the split points give " + std::to_string(p->shard_count()) +
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
  auto placed = place(spec.partitioner, placeable_nodes(map.members), nullptr,
                      spec.replication.factor);
  if (!placed.ok()) return placed.status();
  auto layout = layout_of(*placed);
  if (!layout.ok()) return layout.status();
  meta::ClusterMap next = std::move(created).value();
  for (meta::Keyspace& k : next.keyspaces) {
    if (k.spec.name == spec.name) {
      meta::record_layout(k, std::move(layout->split_points), std::move(layout->shards),
                          std::move(layout->region_shards));
    }
  }
  if (Status s = meta::validate(next); !s.ok()) return s;
  return next;
}

}  // namespace statekv::partition
