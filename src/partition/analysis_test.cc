// The cost of each partitioner on 100,000 generated keys at 3..10 nodes:
// balance, and the keys that change primary when a node joins or leaves.
//
// Bounds and why (see analysis.h for the measures):
//   hash    imbalance <= 1.05; a join or leave moves more than half the keys.
//   ring    256 vnodes: moves <= 1.1 x ideal. Its balance is bounded by the
//           tokens themselves: 256 random tokens give each node a share with a
//           relative spread of about 1/sqrt(256) = 6%, so the worst of N nodes
//           is often 1.1 or more (1.13 at some N here, measured on the arcs
//           alone, before any key sampling). The test holds every N to 1.15 and
//           the mean over N to 1.1, and checks that vnodes buy balance.
//   slots   moves <= 1.1 x ideal; the layout itself is within one slot of equal
//           (imbalance in slots <= 1.001). In keys, 100,000 random keys spread
//           over N nodes vary by about sqrt(keys per node), 1% at N = 10, so the
//           key imbalance is held to the same 1.05 as hash.
#include "partition/analysis.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

namespace statekv::partition {
namespace {

using meta::Partitioner;

const std::vector<std::string>& keys() {
  static const std::vector<std::string> k = generate_keys(100'000, 2024);
  return k;
}

const std::vector<size_t>& three_to_ten() {
  static const std::vector<size_t> n = {3, 4, 5, 6, 7, 8, 9, 10};
  return n;
}

meta::PartitionerSpec spec_of(Partitioner kind, uint32_t vnodes = 256) {
  meta::PartitionerSpec s;
  s.kind = kind;
  s.vnodes = vnodes;
  return s;
}

std::vector<NodeCountCost> must_analyze(const meta::PartitionerSpec& spec) {
  Result<std::vector<NodeCountCost>> r = analyze(spec, keys(), three_to_ten());
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : std::vector<NodeCountCost>{};
}

TEST(GenerateKeys, DistinctAndTheSameForTheSameSeed) {
  const std::vector<std::string> a = generate_keys(5000, 9);
  EXPECT_EQ(a, generate_keys(5000, 9));
  EXPECT_NE(a, generate_keys(5000, 10));
  EXPECT_EQ(std::set<std::string>(a.begin(), a.end()).size(), a.size());
  for (const std::string& k : a) {
    ASSERT_EQ(k.size(), 16u);
    EXPECT_EQ(k.substr(0, 4), "key:");
  }
}

TEST(Measures, ImbalanceAndMovedFractionCountPrimaries) {
  meta::PartitionerSpec range;
  range.kind = Partitioner::kRange;
  range.split_points = {"key:5"};
  const std::vector<NodeInfo> two = numbered_nodes(range, 2);
  const Placement p = *place(range, two);
  size_t low = 0;
  for (const std::string& k : keys()) low += k < "key:5" ? 1 : 0;
  const double mean = keys().size() / 2.0;
  EXPECT_DOUBLE_EQ(imbalance(p, keys()), std::max<double>(low, keys().size() - low) / mean);
  // Giving shard 1 to another node moves exactly shard 1's keys.
  std::vector<NodeInfo> swapped = {{NodeId(3), "default"}, {NodeId(1), "default"}};
  const Placement q = *place(range, swapped);  // shard 0 -> node 1, shard 1 -> node 3
  EXPECT_DOUBLE_EQ(moved_fraction(p, q, keys()), 1.0 - static_cast<double>(low) / keys().size());
  EXPECT_DOUBLE_EQ(moved_fraction(p, p, keys()), 0.0);
  // A node with no key counts in the mean.
  const Placement three = *place(range, numbered_nodes(range, 3));
  EXPECT_NEAR(imbalance(three, keys()),
              std::max<double>(low, keys().size() - low) / (keys().size() / 3.0), 1e-9);
}

TEST(Analyze, RefusesWhatItCannotMeasure) {
  const std::vector<size_t> one = {1};
  EXPECT_TRUE(analyze(spec_of(Partitioner::kHash), keys(), one).status().is_invalid_argument());
  const std::vector<size_t> three = {3};
  EXPECT_TRUE(analyze(spec_of(Partitioner::kHash), {}, three).status().is_invalid_argument());
  EXPECT_TRUE(
      analyze(spec_of(Partitioner::kRing, 0), keys(), three).status().is_invalid_argument());
}

TEST(Analyze, IdealsAreOneOverTheNodeCounts) {
  for (const NodeCountCost& c : must_analyze(spec_of(Partitioner::kHash))) {
    EXPECT_DOUBLE_EQ(c.join_ideal, 1.0 / (c.nodes + 1));
    EXPECT_DOUBLE_EQ(c.leave_ideal, 1.0 / c.nodes);
  }
}

TEST(Analyze, HashIsBalancedButMovesMostKeys) {
  for (const NodeCountCost& c : must_analyze(spec_of(Partitioner::kHash))) {
    SCOPED_TRACE("N = " + std::to_string(c.nodes));
    EXPECT_LE(c.imbalance, 1.05);
    EXPECT_LE(c.imbalance_after_join, 1.05);
    EXPECT_GT(c.join_moved, 0.5);
    EXPECT_GT(c.leave_moved, 0.5);
  }
}

TEST(Analyze, RingWith256VnodesMovesNearTheIdeal) {
  const std::vector<NodeCountCost> costs = must_analyze(spec_of(Partitioner::kRing, 256));
  double sum = 0;
  for (const NodeCountCost& c : costs) {
    SCOPED_TRACE("N = " + std::to_string(c.nodes));
    EXPECT_LE(c.join_moved, 1.1 * c.join_ideal);
    EXPECT_LE(c.leave_moved, 1.1 * c.leave_ideal);
    EXPECT_LE(c.imbalance, 1.15);
    sum += c.imbalance;
  }
  EXPECT_LE(sum / costs.size(), 1.1);
}

TEST(Analyze, MoreVnodesGiveBetterBalance) {
  const auto mean_imbalance = [](uint32_t vnodes) {
    double sum = 0;
    for (const NodeCountCost& c : must_analyze(spec_of(Partitioner::kRing, vnodes))) {
      sum += c.imbalance;
    }
    return sum / three_to_ten().size();
  };
  const double one = mean_imbalance(1);
  const double sixteen = mean_imbalance(16);
  const double many = mean_imbalance(256);
  EXPECT_GT(one, sixteen);
  EXPECT_GT(sixteen, many);
  EXPECT_GT(one, 1.5);  // one token per node: some node owns a far larger arc
}

TEST(Analyze, SlotsAreEvenAndMoveNearTheIdeal) {
  for (const NodeCountCost& c : must_analyze(spec_of(Partitioner::kSlots))) {
    SCOPED_TRACE("N = " + std::to_string(c.nodes));
    EXPECT_LE(c.join_moved, 1.1 * c.join_ideal);
    EXPECT_LE(c.leave_moved, 1.1 * c.leave_ideal);
    EXPECT_LE(c.imbalance, 1.05);
    EXPECT_LE(c.imbalance_after_join, 1.05);
  }
  // The layout itself, in slots: every node within one slot of 16384 / N.
  for (size_t n : three_to_ten()) {
    const meta::PartitionerSpec spec = spec_of(Partitioner::kSlots);
    const Placement before = *place(spec, numbered_nodes(spec, n));
    for (const Placement& p : {before, *place(spec, numbered_nodes(spec, n + 1), &before)}) {
      std::map<NodeId, size_t> slots;
      for (const SlotRange& r : p.slot_ranges()) slots[r.owners[0]] += r.end - r.start + 1;
      size_t max = 0;
      for (const auto& [id, count] : slots) max = std::max(max, count);
      EXPECT_LE(max / (16384.0 / p.nodes().size()), 1.001) << p.nodes().size() << " nodes";
    }
  }
}

TEST(Analyze, RangeStartsEvenAndAJoinTakesHalfAShard) {
  meta::PartitionerSpec range;
  range.kind = Partitioner::kRange;
  for (const NodeCountCost& c : must_analyze(range)) {
    SCOPED_TRACE("N = " + std::to_string(c.nodes));
    EXPECT_LE(c.imbalance, 1.001);  // quantiles of the keys themselves
    // The joiner takes half of one node's 1/N: less than the ideal, and the
    // node it split from stays at 1/N, so the cluster is no better balanced.
    EXPECT_NEAR(c.join_moved, 0.5 / c.nodes, 1e-3);
    EXPECT_NEAR(c.imbalance_after_join, (c.nodes + 1.0) / c.nodes, 1e-2);
    EXPECT_NEAR(c.leave_moved, c.leave_ideal, 1e-3);  // only the leaver's keys
  }
}

TEST(Analyze, EveryKeyLandsOnANodeThatExists) {
  for (Partitioner kind :
       {Partitioner::kHash, Partitioner::kRing, Partitioner::kSlots, Partitioner::kRange}) {
    const meta::PartitionerSpec spec = spec_of(kind);
    for (size_t n : {3, 10}) {
      const std::vector<NodeInfo> nodes = numbered_nodes(spec, n);
      const Placement p = *place(spec, nodes, nullptr, 1, keys());
      std::vector<size_t> per_node(n + 1, 0);
      for (const std::string& k : keys()) {
        const uint64_t id = p.primary_of(k).value();
        ASSERT_TRUE(id >= 1 && id <= n) << meta::to_string(kind) << " sent " << k << " to " << id;
        ++per_node[id];
      }
      // ... and every node gets some.
      for (size_t id = 1; id <= n; ++id) EXPECT_GT(per_node[id], 0u) << meta::to_string(kind);
    }
  }
}

TEST(Analyze, GeoMeasuresOverRegions) {
  meta::PartitionerSpec geo;
  geo.kind = Partitioner::kGeo;
  geo.inner = Partitioner::kSlots;
  geo.geo_rules = {{"", "us"},      {"key:0", "eu"}, {"key:1", "eu"},
                   {"key:2", "eu"}, {"key:3", "eu"}, {"key:4", "eu"}};
  const std::vector<size_t> counts = {4};
  Result<std::vector<NodeCountCost>> r = analyze(geo, keys(), counts);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  // Two nodes per region, half the keys each: balanced. Node 5 joins "eu" and
  // takes a third of eu's half.
  EXPECT_LE((*r)[0].imbalance, 1.05);
  EXPECT_NEAR((*r)[0].join_moved, 0.5 / 3, 0.02);
}

}  // namespace
}  // namespace statekv::partition
