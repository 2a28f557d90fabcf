// The cluster map's record of a placement (layout.h), for geo keyspaces over
// every inner kind: place -> layout_of -> a map that validates -> restore gives
// the same placement; a node joining one region moves keys only inside that
// region and the result records and restores too; bad records are refused.
#include "partition/layout.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <span>

#include "meta/transitions.h"
#include "partition/analysis.h"

namespace statekv::partition {
namespace {

using meta::Partitioner;

const std::vector<std::string>& keys() {
  static const std::vector<std::string> k = generate_keys(10000, 7);
  return k;
}

// Keys are "key:" and 12 digits: ap takes "key:00", eu the rest of "key:0"
// and "key:1", us everything else.
meta::PartitionerSpec geo_spec(Partitioner inner) {
  meta::PartitionerSpec s;
  s.kind = Partitioner::kGeo;
  s.inner = inner;
  s.vnodes = 16;
  s.geo_rules = {{"", "us"}, {"key:0", "eu"}, {"key:00", "ap"}, {"key:1", "eu"}};
  return s;
}

// The same split points in every region (as a user gives them): 3 shards each.
meta::PartitionerSpec geo_range_with_splits() {
  meta::PartitionerSpec s = geo_spec(Partitioner::kRange);
  s.shards = 3;
  s.split_points = {"key:0", "key:5"};
  return s;
}

struct NodeSet {
  std::string name;
  std::vector<NodeInfo> nodes;
  uint32_t factor;
};

std::vector<NodeSet> node_sets() {
  const auto set = [](std::string name, std::vector<std::pair<uint64_t, std::string>> list,
                      uint32_t factor) {
    NodeSet s{std::move(name), {}, factor};
    for (auto& [id, region] : list) s.nodes.push_back({NodeId(id), region});
    return s;
  };
  return {
      set("one per region", {{1, "ap"}, {2, "eu"}, {3, "us"}}, 1),
      set("uneven", {{1, "ap"}, {2, "eu"}, {3, "eu"}, {4, "us"}, {5, "us"}, {6, "us"}}, 1),
      set("interleaved ids, two copies",
          {{7, "ap"}, {8, "ap"}, {1, "eu"}, {4, "eu"}, {9, "eu"}, {2, "us"}, {3, "us"}, {5, "us"}},
          2),
  };
}

// Every spec the tests place: geo over each inner kind, range both with the
// user's split points and with none (one shard per region unless sample keys
// choose).
std::vector<std::pair<std::string, meta::PartitionerSpec>> specs() {
  return {{"hash", geo_spec(Partitioner::kHash)},
          {"ring", geo_spec(Partitioner::kRing)},
          {"slots", geo_spec(Partitioner::kSlots)},
          {"range", geo_spec(Partitioner::kRange)},
          {"range with split points", geo_range_with_splits()}};
}

std::vector<meta::Member> members_of(const std::vector<NodeInfo>& nodes) {
  std::vector<meta::Member> out;
  for (const NodeInfo& n : nodes) {
    meta::Member m;
    m.id = n.id;
    m.address = fmt::format("10.0.0.{}:6379", n.id.value());
    m.peer_address = fmt::format("10.0.0.{}:7000", n.id.value());
    m.region = n.region;
    m.state = meta::MemberState::kActive;
    out.push_back(std::move(m));
  }
  return out;
}

// A map over `nodes` holding keyspace "g" with `spec`, and `p`'s layout
// recorded on it, as create_placed_keyspace records it.
meta::ClusterMap map_with(const meta::PartitionerSpec& spec, const std::vector<NodeInfo>& nodes,
                          const Placement& p) {
  Result<meta::ClusterMap> map = meta::bootstrap("c1", members_of(nodes));
  EXPECT_TRUE(map.ok()) << map.status().to_string();
  meta::Keyspace k;
  k.spec.name = "g";
  k.spec.key_prefix = "key:";
  k.spec.partitioner = spec;
  k.spec.replication.kind = meta::Replication::kNone;
  k.spec.replication.factor = p.replication_factor();
  if (p.replication_factor() > 1) k.spec.replication.kind = meta::Replication::kChain;
  Result<Layout> layout = layout_of(p);
  EXPECT_TRUE(layout.ok()) << layout.status().to_string();
  meta::record_layout(k, layout->split_points, layout->shards, layout->region_shards);
  map->keyspaces.push_back(std::move(k));
  return std::move(map).value();
}

void expect_same_layout(const Placement& a, const Placement& b) {
  Result<Layout> la = layout_of(a);
  Result<Layout> lb = layout_of(b);
  ASSERT_TRUE(la.ok() && lb.ok());
  EXPECT_EQ(la->split_points, lb->split_points);
  EXPECT_EQ(la->shards, lb->shards);
  EXPECT_EQ(la->region_shards, lb->region_shards);
}

void expect_same_keys(const Placement& a, const Placement& b) {
  for (const std::string& key : keys()) {
    ASSERT_EQ(a.locate(key), b.locate(key)) << key;
    ASSERT_EQ(a.region_of(key), b.region_of(key)) << key;
  }
}

// Records `p` in a map, checks the map, restores it; the restored placement
// records the same layout, sends every key to the same shard and owners, and
// is a fixed point of record -> restore.
Placement round_trip(const meta::PartitionerSpec& spec, const std::vector<NodeInfo>& nodes,
                     const Placement& p) {
  const meta::ClusterMap map = map_with(spec, nodes, p);
  EXPECT_TRUE(meta::validate(map).ok()) << meta::validate(map).to_string();
  const meta::Keyspace& k = *map.find_keyspace("g");
  Result<Placement> restored = restore(k, map.members);
  EXPECT_TRUE(restored.ok()) << restored.status().to_string();
  if (!restored.ok()) return p;
  expect_same_layout(*restored, p);
  expect_same_keys(*restored, p);
  Result<Placement> again =
      restore(*map_with(k.spec.partitioner, nodes, *restored).find_keyspace("g"), map.members);
  EXPECT_TRUE(again.ok()) << again.status().to_string();
  if (again.ok()) {
    EXPECT_TRUE(*again == *restored);
  }
  return std::move(restored).value();
}

TEST(GeoLayout, EveryInnerKindRecordsAndRestoresTheSamePlacement) {
  for (const auto& [what, spec] : specs()) {
    for (const NodeSet& set : node_sets()) {
      for (bool with_sample : {false, true}) {
        SCOPED_TRACE(fmt::format("geo over {}, {}, {}", what, set.name,
                                 with_sample ? "sample keys" : "no sample keys"));
        const std::span<const std::string> sample =
            with_sample ? std::span<const std::string>(keys()) : std::span<const std::string>();
        Result<Placement> p = place(spec, set.nodes, nullptr, set.factor, sample);
        ASSERT_TRUE(p.ok()) << p.status().to_string();
        const Placement restored = round_trip(spec, set.nodes, *p);
        // Placing with the spec as the map records it gives exactly the
        // restored placement (spec included), when every node owns a shard
        // (restore knows only the owners).
        const meta::PartitionerSpec recorded =
            map_with(spec, set.nodes, *p).find_keyspace("g")->spec.partitioner;
        if (restored.nodes().size() == set.nodes.size() && !with_sample) {
          Result<Placement> fresh = place(recorded, set.nodes, nullptr, set.factor);
          ASSERT_TRUE(fresh.ok()) << fresh.status().to_string();
          fresh->set_key_prefix("key:");  // the keyspace's, which restore() knows
          EXPECT_TRUE(*fresh == restored);
        }
      }
    }
  }
}

TEST(GeoLayout, InnerRangeAndSlotsRecordEachRegionsOwnSplits) {
  const std::vector<NodeInfo> nodes = node_sets()[1].nodes;  // ap 1, eu 2 3, us 4 5 6
  const Placement range = *place(geo_range_with_splits(), nodes);
  Result<Layout> l = layout_of(range);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->region_shards, (std::vector<uint32_t>{3, 3, 3}));
  EXPECT_EQ(l->split_points,
            (std::vector<std::string>{"key:0", "key:5", "key:0", "key:5", "key:0", "key:5"}));
  const Placement slots = *place(geo_spec(Partitioner::kSlots), nodes);
  l = layout_of(slots);
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->region_shards, (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_EQ(l->split_points, (std::vector<std::string>{"0", "0", "8192", "0", "5461", "10923"}));
  // Shard ids run region after region; owners stay in their region.
  EXPECT_EQ(l->shards[0].owners, (std::vector<NodeId>{NodeId(1)}));
  EXPECT_EQ(l->shards[2].owners, (std::vector<NodeId>{NodeId(3)}));
  EXPECT_EQ(l->shards[5].owners, (std::vector<NodeId>{NodeId(6)}));
}

TEST(GeoLayout, ANodeJoiningOneRegionMovesKeysOnlyInsideIt) {
  for (const auto& [what, spec] : specs()) {
    for (const NodeSet& set : node_sets()) {
      SCOPED_TRACE(fmt::format("geo over {}, {}", what, set.name));
      // As the cluster map holds it, then as rebalance does it: restore,
      // place over the nodes with the joiner and no sample keys, record.
      Result<Placement> first = place(spec, set.nodes, nullptr, set.factor);
      ASSERT_TRUE(first.ok()) << first.status().to_string();
      meta::ClusterMap map = map_with(spec, set.nodes, *first);
      const meta::Keyspace& k = *map.find_keyspace("g");
      Result<Placement> before = restore(k, map.members);
      ASSERT_TRUE(before.ok()) << before.status().to_string();
      std::vector<NodeInfo> more = set.nodes;
      const NodeId joiner(20);
      more.push_back({joiner, "eu"});
      Result<Placement> after = place(k.spec.partitioner, more, &*before, set.factor);
      ASSERT_TRUE(after.ok()) << after.status().to_string();

      std::map<NodeId, std::string> region_of_node;
      for (const NodeInfo& n : more) region_of_node[n.id] = n.region;
      size_t to_joiner = 0;
      for (const std::string& key : keys()) {
        const std::string region(before->region_of(key));
        ASSERT_EQ(after->region_of(key), region) << key;
        const std::vector<NodeId>& owners = after->locate(key).owners;
        for (NodeId o : owners) ASSERT_EQ(region_of_node[o], region) << key;
        if (region != "eu") {
          ASSERT_EQ(owners, before->locate(key).owners) << key;
        } else if (spec.inner != Partitioner::kHash && set.factor == 1) {
          // Ring, slots and range only hand keys to the joiner.
          if (owners[0] != before->primary_of(key)) {
            ASSERT_EQ(owners[0], joiner) << key;
          }
        }
        to_joiner += owners[0] == joiner;
      }
      // Slots, ring and hash always give the joiner keys; range gives it a
      // whole shard when a node of the region holds two or more (there is no
      // key to split by).
      if (spec.inner == Partitioner::kSlots || spec.inner == Partitioner::kRing ||
          spec.inner == Partitioner::kHash) {
        EXPECT_GT(to_joiner, 0u);
      }
      const Placement* eu_before = before->region("eu");
      std::map<NodeId, size_t> held;
      for (uint32_t s = 0; s < eu_before->shard_count(); ++s) ++held[eu_before->owners(s)[0]];
      const bool spare =
          std::any_of(held.begin(), held.end(), [](auto& h) { return h.second > 1; });
      if (spec.inner == Partitioner::kRange) {
        // (Which keys that shard holds the placement cannot know: it may hold
        // none of this region's, as [key:5, ..) in eu.)
        const Placement* eu_after = after->region("eu");
        bool owns = false;
        for (uint32_t s = 0; s < eu_after->shard_count(); ++s)
          owns |= eu_after->owners(s)[0] == joiner;
        EXPECT_EQ(owns, spare);
      }

      // The new layout goes into the map as rebalance records it (begin_move),
      // validates, and restores to the same placement.
      Result<Layout> layout = layout_of(*after);
      ASSERT_TRUE(layout.ok()) << layout.status().to_string();
      meta::ClusterMap grown = map;
      meta::Member m = members_of({{joiner, "eu"}}).front();
      grown.members.push_back(m);
      Result<meta::ClusterMap> moving =
          meta::begin_move(grown, "g", layout->split_points, layout->shards, layout->region_shards);
      if (!moving.ok()) {
        // Only when nothing changed (range with no shard to spare, one copy).
        EXPECT_NE(moving.status().message().find("nothing to move"), std::string::npos)
            << moving.status().to_string();
        EXPECT_FALSE(spare);
        continue;
      }
      Result<Placement> restored = restore(*moving->find_keyspace("g"), moving->members);
      ASSERT_TRUE(restored.ok()) << restored.status().to_string();
      expect_same_layout(*restored, *after);
      expect_same_keys(*restored, *after);
      Result<meta::ClusterMap> done = meta::finish_move(*moving, "g");
      EXPECT_TRUE(done.ok()) << done.status().to_string();
    }
  }
}

// The record of a geo range keyspace over node set "uneven" with the user's
// split points, and of a geo slots one.
meta::ClusterMap recorded(const meta::PartitionerSpec& spec) {
  const std::vector<NodeInfo> nodes = node_sets()[1].nodes;
  return map_with(spec, nodes, *place(spec, nodes));
}

void expect_refused(const meta::ClusterMap& map, const std::string& words) {
  SCOPED_TRACE(words);
  const Status v = meta::validate(map);
  EXPECT_FALSE(v.ok());
  EXPECT_NE(v.message().find(words), std::string::npos) << v.to_string();
  Result<Placement> r = restore(*map.find_keyspace("g"), map.members);
  EXPECT_FALSE(r.ok()) << "restore took a record validate refuses";
}

TEST(GeoLayout, BadRecordsAreRefusedByValidateAndRestore) {
  const meta::ClusterMap range = recorded(geo_range_with_splits());
  const meta::ClusterMap slots = recorded(geo_spec(Partitioner::kSlots));
  ASSERT_TRUE(meta::validate(range).ok());
  ASSERT_TRUE(meta::validate(slots).ok());
  const auto edit = [](meta::ClusterMap m, auto change) {
    change(m.keyspaces.back().spec.partitioner);
    return m;
  };
  // One split point too few: the regions' counts need 6.
  expect_refused(edit(range, [](auto& p) { p.split_points.pop_back(); }), "need 6, got 5");
  // The right total, but counts that moved between regions: ap's slice then
  // runs into eu's, and "key:0" comes after "key:5".
  expect_refused(edit(range,
                      [](auto& p) {
                        p.region_shards = {4, 3, 2};
                      }),
                 "region 'ap': split points must be strictly increasing ('key:5' then 'key:0')");
  // Decreasing inside one region.
  expect_refused(edit(range, [](auto& p) { std::swap(p.split_points[2], p.split_points[3]); }),
                 "region 'eu': split points must be strictly increasing");
  expect_refused(edit(range, [](auto& p) { p.split_points[4] = ""; }),
                 "region 'us': a split point cannot be the empty key");
  // A slots region that does not start at slot 0, or whose starts fall back.
  expect_refused(edit(slots, [](auto& p) { p.split_points[1] = "5"; }),
                 "region 'eu': start slot '5' at position 0");
  expect_refused(edit(slots, [](auto& p) { p.split_points[5] = "5000"; }),
                 "region 'us': start slot '5000' at position 2");
  expect_refused(edit(slots, [](auto& p) { p.split_points[5] = "16384"; }),
                 "region 'us': start slot '16384'");
  expect_refused(edit(slots, [](auto& p) { p.split_points.push_back("12000"); }), "need 6, got 7");
}

TEST(GeoLayout, HashAndRingKeepTheirRecordUnchanged) {
  // What the map held before inner range and slots: no split points.
  for (Partitioner inner : {Partitioner::kHash, Partitioner::kRing}) {
    const meta::ClusterMap m = recorded(geo_spec(inner));
    const meta::Keyspace& k = *m.find_keyspace("g");
    EXPECT_TRUE(k.spec.partitioner.split_points.empty());
    EXPECT_EQ(k.spec.partitioner.region_shards.size(), 3u);
    ASSERT_TRUE(restore(k, m.members).ok());
    meta::ClusterMap bad = m;
    bad.keyspaces.back().spec.partitioner.split_points = {"a"};
    EXPECT_FALSE(meta::validate(bad).ok());
    EXPECT_FALSE(restore(bad.keyspaces.back(), bad.members).ok());
  }
}

// Range puts a tagged key at the keyspace's prefix + its tag: restore() gives
// the placement (and each geo region's) the keyspace's prefix, and a placement
// built from a restored one keeps it.
TEST(Layout, RestoreGivesRangeTheKeyspacePrefixForTaggedKeys) {
  const std::vector<NodeInfo> nodes = node_sets()[0].nodes;
  meta::PartitionerSpec range;
  range.kind = Partitioner::kRange;
  range.shards = 2;
  range.split_points = {"key:5"};
  for (const meta::PartitionerSpec& spec : {range, geo_range_with_splits()}) {
    SCOPED_TRACE(meta::to_string(spec.kind));
    Result<Placement> p = place(spec, nodes, nullptr, 1);
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    const meta::ClusterMap map = map_with(spec, nodes, *p);
    Result<Placement> restored = restore(*map.find_keyspace("g"), map.members);
    ASSERT_TRUE(restored.ok()) << restored.status().to_string();
    EXPECT_EQ(restored->key_prefix(), "key:");
    // "key:2{9}" sits where "key:9" would (by its bytes, with "key:2").
    for (std::string_view key : {"key:2{9}", "key:{9}x", "key:9"}) {
      EXPECT_EQ(restored->shard_of(key), restored->shard_of("key:9")) << key;
    }
    for (std::string_view key : {"key:9{2}", "key:{2}x", "key:2"}) {
      EXPECT_EQ(restored->shard_of(key), restored->shard_of("key:2")) << key;
    }
    EXPECT_NE(restored->shard_of("key:2"), restored->shard_of("key:9"));
    for (const std::string& region : restored->regions()) {
      EXPECT_EQ(restored->region(region)->key_prefix(), "key:") << region;
    }
    Result<Placement> next = place(spec, nodes, &*restored, 1);
    ASSERT_TRUE(next.ok()) << next.status().to_string();
    EXPECT_EQ(next->key_prefix(), "key:");
  }
}

TEST(GeoLayout, CreatePlacedKeyspaceTakesInnerRangeAndSlots) {
  // As KEYSPACE CREATE does it: no sample keys, so range without split points
  // is one shard per region.
  const std::vector<NodeInfo> nodes = node_sets()[2].nodes;
  Result<meta::ClusterMap> map = meta::bootstrap("c1", members_of(nodes));
  ASSERT_TRUE(map.ok());
  for (const auto& [what, spec] : specs()) {
    SCOPED_TRACE(what);
    meta::KeyspaceSpec s;
    s.name = "g";
    s.key_prefix = "key:";
    s.partitioner = spec;
    s.replication.kind = meta::Replication::kNone;
    s.replication.factor = 1;
    Result<meta::ClusterMap> made = create_placed_keyspace(*map, s);
    ASSERT_TRUE(made.ok()) << made.status().to_string();
    const meta::Keyspace& k = *made->find_keyspace("g");
    // Placed in this change: each shard's configuration epoch is its epoch.
    for (const meta::Shard& sh : k.shards) EXPECT_EQ(sh.config_epoch, made->epoch.value());
    Result<Placement> p = restore(k, made->members);
    ASSERT_TRUE(p.ok()) << p.status().to_string();
    std::map<NodeId, std::string> region_of_node;
    for (const NodeInfo& n : nodes) region_of_node[n.id] = n.region;
    for (const std::string& key : keys()) {
      ASSERT_EQ(region_of_node[p->primary_of(key)], p->region_of(key)) << key;
    }
    // And it survives the document's bytes.
    Result<meta::ClusterMap> decoded = meta::decode(meta::encode(*made));
    ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
    EXPECT_EQ(*decoded, *made);
  }
}

}  // namespace
}  // namespace statekv::partition
