#include "sim/network.h"

#include <fmt/format.h>

#include "core/assert.h"

namespace statekv::sim {

Network::Network(size_t nodes, std::vector<std::vector<SimTime>> base, DelayModel delay)
    : nodes_(nodes),
      base_(std::move(base)),
      blocked_(nodes, std::vector<bool>(nodes, false)),
      delay_(delay) {
  SKV_ASSERT(base_.size() == nodes_, "base delay matrix has the wrong size");
}

size_t Network::index(NodeId n) const {
  SKV_ASSERT(n.value() >= 1 && n.value() <= nodes_, "node id out of range");
  return n.value() - 1;
}

std::vector<SimTime> Network::route(NodeId from, NodeId to, Random& rng) const {
  std::vector<SimTime> out;
  const size_t a = index(from), b = index(to);
  if (blocked_[a][b] || rng.chance(faults_.loss)) return out;
  const int copies = rng.chance(faults_.duplicate) ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    SimTime d = base_[a][b];
    if (delay_.jitter > 0) d += static_cast<SimTime>(rng.uniform(delay_.jitter));
    if (delay_.tail_max > 0 && rng.chance(delay_.tail_p)) {
      d += static_cast<SimTime>(rng.uniform(delay_.tail_max));
    }
    if (delay_.reorder_max > 0 && rng.chance(faults_.reorder)) {
      d += static_cast<SimTime>(rng.uniform(delay_.reorder_max));
    }
    out.push_back(d);
  }
  return out;
}

void Network::partition(const std::vector<std::vector<NodeId>>& groups) {
  // group_of[i] = group number; unnamed nodes share group groups.size().
  std::vector<size_t> group_of(nodes_, groups.size());
  for (size_t g = 0; g < groups.size(); ++g) {
    for (NodeId n : groups[g]) group_of[index(n)] = g;
  }
  for (size_t a = 0; a < nodes_; ++a) {
    for (size_t b = 0; b < nodes_; ++b) {
      if (group_of[a] != group_of[b]) blocked_[a][b] = true;
    }
  }
}

void Network::block(NodeId from, NodeId to) {
  blocked_[index(from)][index(to)] = true;
}
void Network::unblock(NodeId from, NodeId to) {
  blocked_[index(from)][index(to)] = false;
}

void Network::heal() {
  for (auto& row : blocked_) row.assign(nodes_, false);
}

bool Network::blocked(NodeId from, NodeId to) const {
  return blocked_[index(from)][index(to)];
}

std::string Network::describe() const {
  std::string out;
  for (size_t a = 0; a < nodes_; ++a) {
    out += fmt::format("  link base delay from {}:", a + 1);
    for (size_t b = 0; b < nodes_; ++b) out += fmt::format(" {}us", base_[a][b] / 1000);
    out += "\n";
  }
  out += fmt::format(
      "  jitter {}us, tail p={:.3f} up to {}us, reorder up to {}us\n"
      "  initial loss {:.3f}, duplicate {:.3f}, reorder {:.3f}\n",
      delay_.jitter / 1000, delay_.tail_p, delay_.tail_max / 1000, delay_.reorder_max / 1000,
      faults_.loss, faults_.duplicate, faults_.reorder);
  return out;
}

}  // namespace statekv::sim
