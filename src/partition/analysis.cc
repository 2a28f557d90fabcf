#include "partition/analysis.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "core/random.h"

namespace statekv::partition {
namespace {

// The primary of every key, in key order.
std::vector<NodeId> primaries(const Placement& p, std::span<const std::string> keys) {
  std::vector<NodeId> out;
  out.reserve(keys.size());
  for (const std::string& key : keys) out.push_back(p.primary_of(key));
  return out;
}

double imbalance_of(const Placement& p, const std::vector<NodeId>& primary) {
  std::unordered_map<NodeId, size_t> per_node;
  for (const NodeInfo& n : p.nodes()) per_node[n.id] = 0;
  for (NodeId id : primary) ++per_node[id];
  size_t max = 0;
  for (const auto& [id, count] : per_node) max = std::max(max, count);
  const double mean = static_cast<double>(primary.size()) / static_cast<double>(p.nodes().size());
  return mean == 0 ? 0 : static_cast<double>(max) / mean;
}

double moved_of(const std::vector<NodeId>& before, const std::vector<NodeId>& after) {
  size_t moved = 0;
  for (size_t i = 0; i < before.size(); ++i) moved += before[i] != after[i] ? 1 : 0;
  return before.empty() ? 0 : static_cast<double>(moved) / static_cast<double>(before.size());
}

}  // namespace

std::vector<std::string> generate_keys(size_t count, uint64_t seed) {
  Random rng(seed);
  std::vector<std::string> keys;
  keys.reserve(count);
  std::unordered_set<std::string> seen;
  seen.reserve(count);
  while (keys.size() < count) {
    std::string key = fmt::format("key:{:012}", rng.uniform(1'000'000'000'000ULL));
    if (seen.insert(key).second) keys.push_back(std::move(key));
  }
  return keys;
}

std::vector<NodeInfo> numbered_nodes(const meta::PartitionerSpec& spec, size_t n) {
  const std::vector<std::string> regions = meta::geo_regions(spec);
  std::vector<NodeInfo> nodes;
  for (size_t i = 1; i <= n; ++i) {
    nodes.push_back({NodeId(i), regions.empty() ? "default" : regions[(i - 1) % regions.size()]});
  }
  return nodes;
}

double imbalance(const Placement& placement, std::span<const std::string> keys) {
  return imbalance_of(placement, primaries(placement, keys));
}

double moved_fraction(const Placement& before, const Placement& after,
                      std::span<const std::string> keys) {
  return moved_of(primaries(before, keys), primaries(after, keys));
}

Result<std::vector<NodeCountCost>> analyze(const meta::PartitionerSpec& spec,
                                           std::span<const std::string> keys,
                                           std::span<const size_t> node_counts) {
  if (keys.empty()) return Status::InvalidArgument("partition: analysis needs keys");
  // Range splits at quantiles of its sample: sort once here rather than in
  // every place() call.
  std::vector<std::string> sorted;
  std::span<const std::string> sample;
  const bool ranged =
      spec.kind == meta::Partitioner::kRange ||
      (spec.kind == meta::Partitioner::kGeo && spec.inner == meta::Partitioner::kRange);
  if (ranged) {
    sorted.assign(keys.begin(), keys.end());
    std::sort(sorted.begin(), sorted.end());
    sample = sorted;
  }

  std::vector<NodeCountCost> out;
  for (size_t n : node_counts) {
    if (n < 2) {
      return Status::InvalidArgument(
          fmt::format("partition: analysis needs at least 2 nodes so one can leave (got {})", n));
    }
    Result<Placement> base = place(spec, numbered_nodes(spec, n), nullptr, 1, sample);
    if (!base.ok()) return base.status();
    Result<Placement> joined = place(spec, numbered_nodes(spec, n + 1), &*base, 1, sample);
    if (!joined.ok()) return joined.status();
    Result<Placement> left = place(spec, numbered_nodes(spec, n - 1), &*base, 1, sample);
    if (!left.ok()) return left.status();

    const std::vector<NodeId> at_n = primaries(*base, keys);
    const std::vector<NodeId> at_join = primaries(*joined, keys);
    const std::vector<NodeId> at_leave = primaries(*left, keys);
    NodeCountCost c;
    c.nodes = n;
    c.imbalance = imbalance_of(*base, at_n);
    c.join_moved = moved_of(at_n, at_join);
    c.join_ideal = 1.0 / static_cast<double>(n + 1);
    c.imbalance_after_join = imbalance_of(*joined, at_join);
    c.leave_moved = moved_of(at_n, at_leave);
    c.leave_ideal = 1.0 / static_cast<double>(n);
    c.imbalance_after_leave = imbalance_of(*left, at_leave);
    out.push_back(c);
  }
  return out;
}

}  // namespace statekv::partition
