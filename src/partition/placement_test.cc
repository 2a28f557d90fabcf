// Placement: each partitioner's documented rules, checked against direct
// computations of them; determinism; owners; what moves on joins and leaves;
// ordered scans over range; geo keeping keys in their region; and the errors.
#include "partition/placement.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <map>
#include <set>

#include "partition/analysis.h"
#include "partition/slots.h"

namespace statekv::partition {
namespace {

using meta::Partitioner;

meta::PartitionerSpec spec_of(Partitioner kind, uint32_t vnodes = 64) {
  meta::PartitionerSpec s;
  s.kind = kind;
  s.vnodes = vnodes;
  return s;
}

std::vector<NodeInfo> nodes_of(std::initializer_list<uint64_t> ids,
                               const std::string& region = "default") {
  std::vector<NodeInfo> out;
  for (uint64_t id : ids) out.push_back({NodeId(id), region});
  return out;
}

std::vector<NodeInfo> first_nodes(size_t n) {
  std::vector<NodeInfo> out;
  for (size_t i = 1; i <= n; ++i) out.push_back({NodeId(i), "default"});
  return out;
}

Placement must_place(const meta::PartitionerSpec& spec, const std::vector<NodeInfo>& nodes,
                     const Placement* previous = nullptr, uint32_t factor = 1,
                     std::span<const std::string> sample = {}) {
  Result<Placement> p = place(spec, nodes, previous, factor, sample);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return std::move(p).value();
}

const std::vector<std::string>& keys() {
  static const std::vector<std::string> k = generate_keys(20000, 42);
  return k;
}

std::set<NodeId> ids_of(const std::vector<NodeInfo>& nodes) {
  std::set<NodeId> out;
  for (const NodeInfo& n : nodes) out.insert(n.id);
  return out;
}

// Every shard has `factor` distinct owners, all among `nodes`; every key lands
// in a shard that exists and locate() agrees with shard_of() and owners().
void expect_well_formed(const Placement& p, const std::vector<NodeInfo>& nodes, uint32_t factor) {
  const std::set<NodeId> ids = ids_of(nodes);
  ASSERT_GT(p.shard_count(), 0u);
  for (uint32_t s = 0; s < p.shard_count(); ++s) {
    const std::vector<NodeId>& owners = p.owners(s);
    ASSERT_EQ(owners.size(), factor) << "shard " << s;
    EXPECT_EQ(std::set<NodeId>(owners.begin(), owners.end()).size(), factor) << "shard " << s;
    for (NodeId o : owners) EXPECT_TRUE(ids.count(o)) << "owner " << o << " is not a node";
  }
  for (const std::string& key : keys()) {
    const Location loc = p.locate(key);
    ASSERT_LT(loc.shard, p.shard_count());
    EXPECT_EQ(loc.shard, p.shard_of(key));
    EXPECT_EQ(loc.owners, p.owners(loc.shard));
    EXPECT_EQ(p.primary_of(key), loc.owners[0]);
  }
}

meta::PartitionerSpec geo_spec(Partitioner inner) {
  meta::PartitionerSpec s = spec_of(Partitioner::kGeo);
  s.inner = inner;
  s.geo_rules = {{"", "us"}, {"key:0", "eu"}, {"key:00", "ap"}, {"key:1", "eu"}};
  return s;
}

std::vector<NodeInfo> geo_nodes() {
  std::vector<NodeInfo> out;
  for (uint64_t i = 1; i <= 9; ++i) {
    out.push_back({NodeId(i), i <= 3 ? "eu" : i <= 6 ? "us" : "ap"});
  }
  return out;
}

// ---- every kind --------------------------------------------------------------

TEST(Placement, EveryKindIsWellFormedWithReplicas) {
  const std::vector<NodeInfo> nodes = first_nodes(5);
  for (Partitioner kind :
       {Partitioner::kHash, Partitioner::kRing, Partitioner::kSlots, Partitioner::kRange}) {
    for (uint32_t factor : {1u, 3u, 5u}) {
      SCOPED_TRACE(std::string(meta::to_string(kind)) + " factor " + std::to_string(factor));
      expect_well_formed(must_place(spec_of(kind), nodes, nullptr, factor, keys()), nodes, factor);
    }
  }
  for (Partitioner inner :
       {Partitioner::kHash, Partitioner::kRing, Partitioner::kSlots, Partitioner::kRange}) {
    SCOPED_TRACE(std::string("geo over ") + std::string(meta::to_string(inner)));
    expect_well_formed(must_place(geo_spec(inner), geo_nodes(), nullptr, 2, keys()), geo_nodes(),
                       2);
  }
}

TEST(Placement, SameInputsInAnyNodeOrderGiveTheSamePlacement) {
  std::vector<NodeInfo> nodes = first_nodes(6);
  std::vector<NodeInfo> shuffled = {nodes[3], nodes[0], nodes[5], nodes[2], nodes[4], nodes[1]};
  std::vector<meta::PartitionerSpec> specs;
  for (Partitioner kind :
       {Partitioner::kHash, Partitioner::kRing, Partitioner::kSlots, Partitioner::kRange}) {
    specs.push_back(spec_of(kind));
  }
  for (const meta::PartitionerSpec& spec : specs) {
    SCOPED_TRACE(std::string(meta::to_string(spec.kind)));
    const Placement a = must_place(spec, nodes, nullptr, 2, keys());
    const Placement b = must_place(spec, shuffled, nullptr, 2, keys());
    EXPECT_TRUE(a == b);
    // And the same after a change that starts from it.
    std::vector<NodeInfo> more = nodes;
    more.push_back({NodeId(9), "default"});
    EXPECT_TRUE(must_place(spec, more, &a, 2, keys()) == must_place(spec, more, &b, 2, keys()));
  }
  std::vector<NodeInfo> g = geo_nodes();
  std::reverse(g.begin(), g.end());
  EXPECT_TRUE(must_place(geo_spec(Partitioner::kRing), geo_nodes(), nullptr, 2, keys()) ==
              must_place(geo_spec(Partitioner::kRing), g, nullptr, 2, keys()));
}

TEST(Placement, NodeListIsKeptInIdOrder) {
  const Placement p = must_place(spec_of(Partitioner::kHash), nodes_of({30, 10, 20}));
  ASSERT_EQ(p.nodes().size(), 3u);
  EXPECT_EQ(p.nodes()[0].id, NodeId(10));
  EXPECT_EQ(p.nodes()[2].id, NodeId(30));
}

// ---- hash --------------------------------------------------------------------

TEST(HashPlacement, ShardIsXxh3ModNOwnedByTheIthNodeInIdOrder) {
  const Placement p = must_place(spec_of(Partitioner::kHash), nodes_of({7, 3, 12, 5}), nullptr, 2);
  ASSERT_EQ(p.shard_count(), 4u);
  const NodeId by_id[] = {NodeId(3), NodeId(5), NodeId(7), NodeId(12)};
  for (uint32_t s = 0; s < 4; ++s) {
    EXPECT_EQ(p.owners(s), (std::vector<NodeId>{by_id[s], by_id[(s + 1) % 4]}));
  }
  for (const std::string& key : keys()) {
    EXPECT_EQ(p.shard_of(key), XXH3_64bits(key.data(), key.size()) % 4);
  }
}

// ---- ring --------------------------------------------------------------------

uint64_t documented_token(uint64_t node, uint32_t replica) {
  unsigned char b[12];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(node >> (8 * i));
  for (int i = 0; i < 4; ++i) b[8 + i] = static_cast<unsigned char>(replica >> (8 * i));
  return XXH3_64bits(b, sizeof b);
}

TEST(RingPlacement, TokensAreTheDocumentedHashesOfNodeAndReplica) {
  const Placement p = must_place(spec_of(Partitioner::kRing, 16), first_nodes(4));
  std::vector<uint64_t> expected;
  std::map<uint64_t, NodeId> node_of;
  for (uint64_t n = 1; n <= 4; ++n) {
    for (uint32_t r = 0; r < 16; ++r) {
      expected.push_back(documented_token(n, r));
      node_of[expected.back()] = NodeId(n);
    }
  }
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(p.tokens(), expected);
  ASSERT_EQ(p.shard_count(), 64u);
  for (uint32_t s = 0; s < p.shard_count(); ++s) EXPECT_EQ(p.owners(s)[0], node_of[p.tokens()[s]]);
}

TEST(RingPlacement, KeyGoesToFirstTokenClockwiseAndReplicasAreNextDistinctNodes) {
  const Placement p = must_place(spec_of(Partitioner::kRing, 8), first_nodes(5), nullptr, 3);
  const std::vector<uint64_t>& t = p.tokens();
  for (const std::string& key : keys()) {
    const uint64_t h = XXH3_64bits(key.data(), key.size());
    size_t want = 0;  // wraps to the first token when h is past the last
    for (size_t i = 0; i < t.size(); ++i) {
      if (t[i] >= h) {
        want = i;
        break;
      }
    }
    ASSERT_EQ(p.shard_of(key), want);
  }
  for (uint32_t s = 0; s < p.shard_count(); ++s) {
    std::vector<NodeId> walk;
    for (size_t step = 0; walk.size() < 3; ++step) {
      const NodeId n = p.owners((s + step) % p.shard_count())[0];
      if (std::find(walk.begin(), walk.end(), n) == walk.end()) walk.push_back(n);
    }
    EXPECT_EQ(p.owners(s), walk);
  }
}

TEST(RingPlacement, JoinMovesKeysOnlyToTheJoinerAndLeaveOnlyFromTheLeaver) {
  const meta::PartitionerSpec spec = spec_of(Partitioner::kRing, 64);
  const Placement five = must_place(spec, first_nodes(5));
  const Placement six = must_place(spec, first_nodes(6), &five);
  std::vector<NodeInfo> without3 = first_nodes(5);
  without3.erase(without3.begin() + 2);
  const Placement four = must_place(spec, without3, &five);
  size_t joined = 0;
  for (const std::string& key : keys()) {
    const NodeId before = five.primary_of(key);
    if (six.primary_of(key) != before) {
      EXPECT_EQ(six.primary_of(key), NodeId(6));
      ++joined;
    }
    if (before != NodeId(3)) {
      EXPECT_EQ(four.primary_of(key), before);
    } else {
      EXPECT_NE(four.primary_of(key), NodeId(3));
    }
  }
  EXPECT_GT(joined, 0u);
}

// ---- slots -------------------------------------------------------------------

std::map<NodeId, size_t> slots_per_node(const Placement& p) {
  std::map<NodeId, size_t> out;
  for (const NodeInfo& n : p.nodes()) out[n.id] = 0;
  for (const SlotRange& r : p.slot_ranges()) out[r.owners[0]] += r.end - r.start + 1;
  return out;
}

void expect_within_one_slot(const Placement& p) {
  const auto counts = slots_per_node(p);
  const size_t n = counts.size();
  for (const auto& [id, c] : counts) {
    EXPECT_GE(c, kSlotCount / n) << "node " << id;
    EXPECT_LE(c, kSlotCount / n + 1) << "node " << id;
  }
}

TEST(SlotsPlacement, FreshLayoutMatchesRedisCliClusterCreate) {
  // The ranges `redis-cli --cluster create` prints for 3, 4 and 5 masters.
  const std::vector<std::vector<std::pair<uint32_t, uint32_t>>> want = {
      {{0, 5460}, {5461, 10922}, {10923, 16383}},
      {{0, 4095}, {4096, 8191}, {8192, 12287}, {12288, 16383}},
      {{0, 3276}, {3277, 6553}, {6554, 9829}, {9830, 13106}, {13107, 16383}},
  };
  for (const auto& ranges : want) {
    const Placement p = must_place(spec_of(Partitioner::kSlots), first_nodes(ranges.size()));
    const std::vector<SlotRange> got = p.slot_ranges();
    ASSERT_EQ(got.size(), ranges.size());
    for (size_t i = 0; i < ranges.size(); ++i) {
      EXPECT_EQ(got[i].start, ranges[i].first);
      EXPECT_EQ(got[i].end, ranges[i].second);
      EXPECT_EQ(got[i].shard, i);
      EXPECT_EQ(got[i].owners[0], NodeId(i + 1));
    }
  }
}

TEST(SlotsPlacement, KeysFollowTheirSlot) {
  const Placement p = must_place(spec_of(Partitioner::kSlots), first_nodes(7), nullptr, 2);
  for (const std::string& key : keys()) EXPECT_EQ(p.shard_of(key), p.shard_of_slot(key_slot(key)));
  EXPECT_EQ(p.shard_of("{user1000}.following"), p.shard_of("{user1000}.followers"));
  const std::vector<SlotRange> ranges = p.slot_ranges();
  EXPECT_EQ(ranges.front().start, 0u);
  EXPECT_EQ(ranges.back().end, kSlotCount - 1);
  for (size_t i = 1; i < ranges.size(); ++i) EXPECT_EQ(ranges[i].start, ranges[i - 1].end + 1);
  for (const SlotRange& r : ranges) EXPECT_EQ(r.owners, p.owners(r.shard));
}

TEST(SlotsPlacement, JoinTakesOnlyWhatMustMoveAndEndsWithinOneSlot) {
  const meta::PartitionerSpec spec = spec_of(Partitioner::kSlots);
  for (size_t n = 1; n <= 10; ++n) {
    SCOPED_TRACE("join at " + std::to_string(n));
    const Placement before = must_place(spec, first_nodes(n));
    const Placement after = must_place(spec, first_nodes(n + 1), &before);
    expect_within_one_slot(after);
    size_t moved = 0;
    for (uint32_t s = 0; s < kSlotCount; ++s) {
      const NodeId was = before.owners(before.shard_of_slot(s))[0];
      const NodeId now = after.owners(after.shard_of_slot(s))[0];
      if (was != now) {
        EXPECT_EQ(now, NodeId(n + 1));  // slots only move to the joiner
        ++moved;
      }
    }
    EXPECT_EQ(moved, slots_per_node(after)[NodeId(n + 1)]);
    EXPECT_EQ(moved, kSlotCount / (n + 1));  // the fewest: a floor share
  }
}

TEST(SlotsPlacement, LeaveSpreadsOnlyTheLeaversSlots) {
  const meta::PartitionerSpec spec = spec_of(Partitioner::kSlots);
  // Grown one node at a time, as a cluster is, so ranges are fragmented.
  Placement p = must_place(spec, first_nodes(3));
  for (size_t n = 4; n <= 8; ++n) p = must_place(spec, first_nodes(n), &p);
  std::vector<NodeInfo> rest = first_nodes(8);
  rest.erase(rest.begin() + 3);  // node 4 leaves
  const Placement after = must_place(spec, rest, &p);
  expect_within_one_slot(after);
  for (uint32_t s = 0; s < kSlotCount; ++s) {
    const NodeId was = p.owners(p.shard_of_slot(s))[0];
    const NodeId now = after.owners(after.shard_of_slot(s))[0];
    if (was != NodeId(4)) {
      EXPECT_EQ(now, was) << "slot " << s;
    }
    EXPECT_NE(now, NodeId(4));
  }
}

TEST(SlotsPlacement, UnchangedNodesKeepTheSameLayout) {
  const meta::PartitionerSpec spec = spec_of(Partitioner::kSlots);
  Placement p = must_place(spec, first_nodes(3));
  p = must_place(spec, first_nodes(4), &p);
  EXPECT_TRUE(must_place(spec, first_nodes(4), &p) == p);
}

// ---- range -------------------------------------------------------------------

meta::PartitionerSpec range_spec(std::vector<std::string> splits) {
  meta::PartitionerSpec s = spec_of(Partitioner::kRange);
  s.shards = static_cast<uint32_t>(splits.size() + 1);
  s.split_points = std::move(splits);
  return s;
}

TEST(RangePlacement, SplitPointsBoundShardsBytewise) {
  const Placement p = must_place(range_spec({"g", "p", "p\x80"}), first_nodes(2));
  ASSERT_EQ(p.shard_count(), 4u);
  EXPECT_EQ(p.shard_of(""), 0u);
  EXPECT_EQ(p.shard_of("apple"), 0u);
  EXPECT_EQ(p.shard_of("g"), 1u);  // a split point starts its shard
  EXPECT_EQ(p.shard_of("o\xff"), 1u);
  EXPECT_EQ(p.shard_of("p"), 2u);
  EXPECT_EQ(p.shard_of("p\x7f"), 2u);  // bytes compare unsigned
  EXPECT_EQ(p.shard_of("p\x80"), 3u);
  EXPECT_EQ(p.shard_of("\xff"), 3u);
  // Four shards over two nodes: contiguous blocks in id order.
  EXPECT_EQ(p.owners(0)[0], NodeId(1));
  EXPECT_EQ(p.owners(1)[0], NodeId(1));
  EXPECT_EQ(p.owners(2)[0], NodeId(2));
  EXPECT_EQ(p.owners(3)[0], NodeId(2));
}

TEST(RangePlacement, ScansVisitShardsInKeyOrder) {
  const Placement p = must_place(range_spec({"c", "f", "k", "q"}), first_nodes(5));
  using V = std::vector<uint32_t>;
  EXPECT_EQ(p.shards_for_range("", ""), (V{0, 1, 2, 3, 4}));
  EXPECT_EQ(p.shards_for_range("d", "m"), (V{1, 2, 3}));
  EXPECT_EQ(p.shards_for_range("d", "k"), (V{1, 2}));  // end is exclusive
  EXPECT_EQ(p.shards_for_range("k", "k\x01"), (V{3}));
  EXPECT_EQ(p.shards_for_range("r", ""), (V{4}));
  EXPECT_EQ(p.shards_for_range("m", "d"), V{});
  EXPECT_EQ(p.shards_for_range("m", "m"), V{});

  // Against the keys themselves: a sorted scan's keys fall in the returned
  // shards, in the returned order, and the first and last shards hold a key.
  const Placement q = must_place(spec_of(Partitioner::kRange), first_nodes(8), nullptr, 1, keys());
  std::vector<std::string> sorted = keys();
  std::sort(sorted.begin(), sorted.end());
  for (size_t a = 0; a + 1 < sorted.size(); a += 997) {
    const size_t b = std::min(sorted.size() - 1, a + 3 * a % 7001);
    const std::vector<uint32_t> visit = q.shards_for_range(sorted[a], sorted[b]);
    if (a == b) continue;
    ASSERT_FALSE(visit.empty());
    EXPECT_EQ(visit.front(), q.shard_of(sorted[a]));
    EXPECT_EQ(visit.back(), q.shard_of(sorted[b - 1]));
    for (size_t i = 1; i < visit.size(); ++i) EXPECT_EQ(visit[i], visit[i - 1] + 1);
    size_t pos = 0;
    for (size_t k = a; k < b; ++k) {
      while (pos < visit.size() && visit[pos] != q.shard_of(sorted[k])) ++pos;
      ASSERT_LT(pos, visit.size()) << "key " << sorted[k] << " out of scan order";
    }
  }
}

TEST(RangePlacement, SampleQuantilesGiveEachNodeAnEqualShare) {
  const Placement p = must_place(spec_of(Partitioner::kRange), first_nodes(7), nullptr, 1, keys());
  ASSERT_EQ(p.shard_count(), 7u);
  EXPECT_LE(imbalance(p, keys()), 1.001);
  for (uint32_t s = 0; s < 7; ++s) EXPECT_EQ(p.owners(s)[0], NodeId(s + 1));
  // Few distinct sample keys: as many shards as there are distinct quantiles.
  const std::vector<std::string> few = {"a", "a", "a", "b", "b", "b"};
  EXPECT_EQ(must_place(spec_of(Partitioner::kRange), first_nodes(6), nullptr, 1, few).shard_count(),
            2u);
}

TEST(RangePlacement, JoinSplitsTheFullestShardAtItsMedian) {
  const meta::PartitionerSpec spec = spec_of(Partitioner::kRange);
  // Shard 1 of [.., key:3) [key:3, key:9) [key:9, ..) holds the most keys.
  const Placement three = must_place(range_spec({"key:3", "key:9"}), first_nodes(3));
  const Placement four = must_place(spec, first_nodes(4), &three, 1, keys());
  ASSERT_EQ(four.shard_count(), 4u);
  EXPECT_EQ(four.split_points()[0], "key:3");
  EXPECT_EQ(four.split_points()[2], "key:9");
  size_t in_old = 0;
  size_t moved = 0;
  for (const std::string& key : keys()) {
    if (three.primary_of(key) == NodeId(2)) ++in_old;
    if (four.primary_of(key) != three.primary_of(key)) {
      EXPECT_EQ(three.primary_of(key), NodeId(2));
      EXPECT_EQ(four.primary_of(key), NodeId(4));
      EXPECT_GE(key, four.split_points()[1]);  // the upper half
      ++moved;
    }
  }
  EXPECT_NEAR(static_cast<double>(moved), in_old / 2.0, 1.0);
}

TEST(RangePlacement, WithoutKeysToSplitByAJoinerTakesAWholeShardOrWaits) {
  // No split points and no sample keys: the one shard such a spec asks for.
  const Placement one = must_place(spec_of(Partitioner::kRange), first_nodes(3), nullptr, 2);
  ASSERT_EQ(one.shard_count(), 1u);
  EXPECT_EQ(one.owners(0), (std::vector<NodeId>{NodeId(1), NodeId(2)}));
  // Four shards over two nodes (1 1 2 2): node 3 joins with no sample keys, so
  // nothing is split; it takes node 1's upper shard (1 and 2 tie at two each:
  // the lower id gives), and nothing else moves.
  const Placement two = must_place(range_spec({"c", "f", "k"}), first_nodes(2));
  const Placement three = must_place(spec_of(Partitioner::kRange), first_nodes(3), &two);
  EXPECT_EQ(three.split_points(), two.split_points());
  ASSERT_EQ(three.shard_count(), 4u);
  EXPECT_EQ(three.owners(0)[0], NodeId(1));
  EXPECT_EQ(three.owners(1)[0], NodeId(3));
  EXPECT_EQ(three.owners(2)[0], NodeId(2));
  EXPECT_EQ(three.owners(3)[0], NodeId(2));
  // Node 4 joins: node 2 now holds the most, and gives its last shard.
  const Placement four = must_place(spec_of(Partitioner::kRange), first_nodes(4), &three);
  EXPECT_EQ(four.owners(3)[0], NodeId(4));
  EXPECT_EQ(four.owners(2)[0], NodeId(2));
  // Node 5 joins with no node holding two shards: the layout stays; node 5
  // owns no shard of its own yet.
  const Placement five = must_place(spec_of(Partitioner::kRange), first_nodes(5), &four);
  EXPECT_EQ(five.split_points(), four.split_points());
  for (uint32_t s = 0; s < 4; ++s) EXPECT_EQ(five.owners(s), four.owners(s)) << s;
  // Sample keys that fall in no shard with room to split leave the same choice.
  const std::vector<std::string> same = {"c", "c", "c"};
  const Placement by_samples =
      must_place(spec_of(Partitioner::kRange), first_nodes(3), &two, 1, same);
  EXPECT_EQ(by_samples.split_points(), two.split_points());
  EXPECT_EQ(by_samples.owners(1)[0], NodeId(3));
}

TEST(RangePlacement, LeaveHandsShardsToNeighbours) {
  const meta::PartitionerSpec spec = spec_of(Partitioner::kRange);
  const Placement five = must_place(spec, first_nodes(5), nullptr, 1, keys());
  // Node 3 in the middle: its shard splits between nodes 2 and 4 at its median.
  std::vector<NodeInfo> rest = first_nodes(5);
  rest.erase(rest.begin() + 2);
  const Placement mid = must_place(spec, rest, &five, 1, keys());
  ASSERT_EQ(mid.shard_count(), 4u);
  size_t to2 = 0;
  size_t to4 = 0;
  for (const std::string& key : keys()) {
    const NodeId was = five.primary_of(key);
    const NodeId now = mid.primary_of(key);
    if (was != NodeId(3)) {
      EXPECT_EQ(now, was);
    } else {
      (now == NodeId(2) ? to2 : to4) += 1;
      EXPECT_TRUE(now == NodeId(2) || now == NodeId(4));
    }
  }
  EXPECT_NEAR(static_cast<double>(to2), static_cast<double>(to4), 1.0);
  // Node 1 at the bottom: only a right neighbour, which takes all of it.
  std::vector<NodeInfo> top = first_nodes(5);
  top.erase(top.begin());
  const Placement edge = must_place(spec, top, &five, 1, keys());
  for (const std::string& key : keys()) {
    const NodeId was = five.primary_of(key);
    EXPECT_EQ(edge.primary_of(key), was == NodeId(1) ? NodeId(2) : was);
  }
  // Two neighbours leave at once: their shards still reach live nodes.
  const Placement both = must_place(spec, nodes_of({1, 4, 5}), &five, 1, keys());
  expect_well_formed(both, nodes_of({1, 4, 5}), 1);
}

// ---- geo ---------------------------------------------------------------------

TEST(GeoPlacement, LongestPrefixWinsAndUnmatchedKeysGoToTheFirstRulesRegion) {
  const Placement p = must_place(geo_spec(Partitioner::kHash), geo_nodes());
  EXPECT_EQ(p.regions(), (std::vector<std::string>{"ap", "eu", "us"}));
  EXPECT_EQ(p.region_of("key:0123"), "eu");
  EXPECT_EQ(p.region_of("key:0012"), "ap");  // "key:00" is longer than "key:0"
  EXPECT_EQ(p.region_of("key:1"), "eu");
  EXPECT_EQ(p.region_of("key:2"), "us");  // the empty prefix
  // Without an empty-prefix rule, the first rule's region takes the rest.
  meta::PartitionerSpec s = geo_spec(Partitioner::kHash);
  s.geo_rules = {{"key:1", "eu"}, {"key:2", "us"}, {"key:00", "ap"}};
  EXPECT_EQ(must_place(s, geo_nodes()).region_of("zzz"), "eu");
}

TEST(GeoPlacement, EveryKeyStaysInItsRegion) {
  for (Partitioner inner :
       {Partitioner::kHash, Partitioner::kRing, Partitioner::kSlots, Partitioner::kRange}) {
    SCOPED_TRACE(std::string(meta::to_string(inner)));
    const meta::PartitionerSpec spec = geo_spec(inner);
    const std::vector<NodeInfo> nodes = geo_nodes();
    std::map<NodeId, std::string> region_of_node;
    for (const NodeInfo& n : nodes) region_of_node[n.id] = n.region;
    const Placement p = must_place(spec, nodes, nullptr, 3, keys());
    std::map<std::string, size_t> per_region;
    for (const std::string& key : keys()) {
      const std::string region(p.region_of(key));
      ++per_region[region];
      for (NodeId o : p.locate(key).owners) ASSERT_EQ(region_of_node[o], region) << key;
      // The global shard id is the region's inner shard shifted by its offset.
      EXPECT_EQ(p.shard_of(key), p.region_first_shard(region) + p.region(region)->shard_of(key));
    }
    EXPECT_EQ(per_region.size(), 3u);
    // A fourth "eu" node joins: keys keep their region.
    std::vector<NodeInfo> more = nodes;
    more.push_back({NodeId(10), "eu"});
    const Placement after = must_place(spec, more, &p, 3, keys());
    for (const std::string& key : keys()) {
      for (NodeId o : after.locate(key).owners) {
        const std::string want = o == NodeId(10) ? "eu" : region_of_node[o];
        ASSERT_EQ(want, after.region_of(key));
      }
      if (p.region_of(key) != "eu") {
        EXPECT_EQ(after.primary_of(key), p.primary_of(key));
      }
    }
  }
}

// ---- errors ------------------------------------------------------------------

void expect_invalid(const Result<Placement>& r, const std::string& words) {
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_invalid_argument()) << r.status().to_string();
  EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().message();
}

TEST(PlacementErrors, RefusesWhatCannotBePlaced) {
  const meta::PartitionerSpec hash = spec_of(Partitioner::kHash);
  expect_invalid(place(hash, {}), "no nodes");
  expect_invalid(place(hash, nodes_of({1, 2, 1})), "node 1 is listed twice");
  expect_invalid(place(hash, nodes_of({0, 2})), "node id 0");
  expect_invalid(place(hash, nodes_of({1, 2}), nullptr, 0), "replication factor must be");
  expect_invalid(place(hash, nodes_of({1, 2}), nullptr, 3), "replication factor 3 needs");
  expect_invalid(place(spec_of(Partitioner::kRing, 0), nodes_of({1})), "vnodes");
  expect_invalid(place(range_spec({"b", "a"}), nodes_of({1})), "strictly increasing");
  expect_invalid(place(range_spec({""}), nodes_of({1})), "empty key");

  const Placement ring = must_place(spec_of(Partitioner::kRing), nodes_of({1, 2}));
  expect_invalid(place(hash, nodes_of({1, 2}), &ring), "change of partitioner");

  meta::PartitionerSpec geo = geo_spec(Partitioner::kHash);
  std::vector<NodeInfo> no_ap = geo_nodes();
  no_ap.resize(6);
  expect_invalid(place(geo, no_ap), "region 'ap' has no nodes");
  expect_invalid(place(geo, geo_nodes(), nullptr, 4), "region 'ap'");
  geo.inner = Partitioner::kGeo;
  expect_invalid(place(geo, geo_nodes()), "inside a region");
  geo.inner = Partitioner::kHash;
  geo.geo_rules.push_back({"key:1", "us"});
  expect_invalid(place(geo, geo_nodes()), "two rules for prefix 'key:1'");
  geo.geo_rules.clear();
  expect_invalid(place(geo, geo_nodes()), "rule");
  meta::PartitionerSpec geo_range = geo_spec(Partitioner::kRange);
  geo_range.split_points = {"key:5", "key:4"};
  expect_invalid(place(geo_range, geo_nodes()),
                 "strictly increasing ('key:5' then 'key:4') (in region 'ap')");
  // A recorded layout (region_shards) must match the regions and split points.
  geo_range.split_points = {"key:5"};
  geo_range.region_shards = {1, 2};
  expect_invalid(place(geo_range, geo_nodes()), "region_shards lists 2 regions, the rules name 3");
  geo_range.region_shards = {1, 2, 2};
  expect_invalid(place(geo_range, geo_nodes()), "need 2 split points, the spec has 1");
}

// ---- hash tags -----------------------------------------------------------------

// Keys that share a non-empty {tag}, each with the tag somewhere else.
std::vector<std::string> tagged(const std::string& tag) {
  return {"{" + tag + "}", "{" + tag + "}.a", "x{" + tag + "}", "key:{" + tag + "}:9",
          "{" + tag + "}{other}"};
}

TEST(HashTags, KeysSharingATagShareAShardInEveryKind) {
  std::vector<std::pair<std::string, meta::PartitionerSpec>> specs = {
      {"hash", spec_of(Partitioner::kHash)},
      {"ring", spec_of(Partitioner::kRing, 16)},
      {"slots", spec_of(Partitioner::kSlots)},
      {"range", range_spec({"g", "p"})},
      {"geo over hash", geo_spec(Partitioner::kHash)},
      {"geo over ring", geo_spec(Partitioner::kRing)},
      {"geo over range", geo_spec(Partitioner::kRange)}};
  specs.back().second.split_points = {"g", "p"};
  for (const auto& [what, spec] : specs) {
    SCOPED_TRACE(what);
    const bool geo = spec.kind == Partitioner::kGeo;
    const Placement p = must_place(spec, geo ? geo_nodes() : first_nodes(5));
    std::set<uint32_t> shards;
    for (int i = 0; i < 200; ++i) {
      const std::string tag = std::string(1, static_cast<char>('a' + i % 26)) + std::to_string(i);
      std::vector<std::string> same = tagged(tag);
      // Geo: the region comes from the whole key, so compare keys of one region.
      if (geo) same = {"key:1{" + tag + "}", "key:1{" + tag + "}.b", "key:1x{" + tag + "}"};
      for (const std::string& key : same) {
        EXPECT_EQ(p.shard_of(key), p.shard_of(same.front())) << key;
        EXPECT_EQ(p.locate(key), p.locate(same.front())) << key;
      }
      shards.insert(p.shard_of(same.front()));
    }
    EXPECT_GT(shards.size(), 1u) << "tags spread over shards";
  }
}

TEST(HashTags, HashAndRingHashTheTagAndAKeyWithoutOneWhole) {
  const Placement hash = must_place(spec_of(Partitioner::kHash), first_nodes(4));
  const Placement ring = must_place(spec_of(Partitioner::kRing, 16), first_nodes(4));
  for (const std::string& key : {std::string("{user1000}.following"), std::string("a{b}c"),
                                 std::string("{}x"), std::string("x{y"), std::string("plain")}) {
    const std::string_view bytes = hash_tag(key);
    EXPECT_EQ(hash.shard_of(key), XXH3_64bits(bytes.data(), bytes.size()) % 4) << key;
    EXPECT_EQ(ring.shard_of(key), ring.shard_of(std::string(bytes))) << key;
  }
  EXPECT_EQ(hash.shard_of("{}x"), XXH3_64bits("{}x", 3) % 4);  // an empty tag: the whole key
}

TEST(HashTags, RangePlacesATaggedKeyAtItsTagAfterTheKeyPrefix) {
  // place() knows no keyspace prefix: a tagged key sits at its tag (restore()
  // gives the keyspace's prefix: layout_test.cc and coord's routing_table_test.cc).
  const Placement p = must_place(range_spec({"g", "p"}), first_nodes(3));
  EXPECT_TRUE(p.key_prefix().empty());
  EXPECT_EQ(p.shard_of("{zebra}"), 2u);
  EXPECT_EQ(p.shard_of("a{zebra}"), 2u);  // by its bytes, shard 0
  EXPECT_EQ(p.shard_of("{apple}zzz"), 0u);
  EXPECT_EQ(p.shard_of("z{}"), 2u);  // no tag: its bytes
  // A scan's bounds are not keys: "{" sorts after "p".
  EXPECT_EQ(p.shards_for_range("{a}", ""), std::vector<uint32_t>{2});
}

TEST(HashTags, RangeSplitsSampleKeysWhereItPlacesThem) {
  // Three tags, five keys each: the quantiles fall between tags, so each tag
  // gets a shard of its own. By the keys' bytes ("{b}1" ...) the splits would
  // start with '{' and put every key, placed by its tag, in shard 0.
  std::vector<std::string> sample;
  for (const std::string tag : {"a", "b", "c"}) {
    for (int i = 0; i < 5; ++i) sample.push_back("{" + tag + "}" + std::to_string(i));
  }
  const Placement p = must_place(spec_of(Partitioner::kRange), first_nodes(3), nullptr, 1, sample);
  EXPECT_EQ(p.split_points(), (std::vector<std::string>{"b", "c"}));
  for (const std::string& key : sample) {
    EXPECT_EQ(p.shard_of(key), static_cast<uint32_t>(hash_tag(key)[0] - 'a')) << key;
  }
}

}  // namespace
}  // namespace statekv::partition
