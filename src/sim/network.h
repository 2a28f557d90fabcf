// The simulated network between nodes: per-link delay, loss, duplication,
// reordering, and partitions of any shape.
//
// Delay of one copy of a message on link a->b:
//   base(a,b) + uniform[0, jitter) + (with probability tail_p) uniform[0, tail_max)
//   + (with probability reorder) uniform[0, reorder_max)
// Jitter alone already reorders messages on a link; `reorder` adds occasional
// large hops past later messages. Each send is lost with probability `loss`;
// otherwise it is delivered once, and again (an independent copy with its own
// delay) with probability `duplicate`.
//
// Partitions are a set of blocked directed links, checked when a message is sent
// (a message already in flight when a partition starts still arrives). Node ids
// are 1..N. Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/random.h"
#include "sim/event_queue.h"

namespace statekv::sim {

struct LinkFaults {
  double loss = 0;
  double duplicate = 0;
  double reorder = 0;
};

struct DelayModel {
  SimTime jitter = 0;
  double tail_p = 0;
  SimTime tail_max = 0;
  SimTime reorder_max = 0;
};

class Network {
 public:
  // `base[a][b]` is the base delay of link a+1 -> b+1.
  Network(size_t nodes, std::vector<std::vector<SimTime>> base, DelayModel delay);

  size_t nodes() const { return nodes_; }

  // The delivery delays of one send from -> to: empty when dropped, one entry
  // normally, two when duplicated.
  std::vector<SimTime> route(NodeId from, NodeId to, Random& rng) const;

  // Blocks every link between different groups, both directions. Nodes not named
  // in any group form one extra group together.
  void partition(const std::vector<std::vector<NodeId>>& groups);
  // Blocks from -> to only (an asymmetric partition).
  void block(NodeId from, NodeId to);
  void unblock(NodeId from, NodeId to);
  // Unblocks every link.
  void heal();
  bool blocked(NodeId from, NodeId to) const;

  LinkFaults& faults() { return faults_; }
  const LinkFaults& faults() const { return faults_; }

  // One line per link with its base delay, then the shared model; for the run's
  // parameter dump.
  std::string describe() const;

 private:
  size_t index(NodeId n) const;
  size_t nodes_;
  std::vector<std::vector<SimTime>> base_;
  std::vector<std::vector<bool>> blocked_;
  DelayModel delay_;
  LinkFaults faults_;
};

}  // namespace statekv::sim
