// Fault schedules: what goes wrong, and when, in one simulated run.
//
// A schedule is either drawn from the run's seed (random_schedule) or written by
// hand in a small text format, one action per line, so that a failing seed can
// be replayed, edited down to the faults that matter, and kept as a regression:
//
//   # comments and blank lines are ignored
//   at 1.5s  partition {1,2} | {3}     groups cannot talk to each other; nodes
//                                      left out form one more group
//   at 2s    oneway 1 -> 3 drop        block messages from 1 to 3 only
//   at 2.2s  oneway 1 -> 3 pass        unblock them again
//   at 3s    crash 2                   power cut: volatile state and unsynced writes go
//   at 3.5s  restart 2                 restart from what the disk kept
//   at 4s    heal                      every link unblocked
//   at 4s    loss 0.05                 probability a message is lost (all links)
//   at 4s    dup 0.01                  probability a message is delivered twice
//   at 4s    reorder 0.1               probability a message is held back
//
// Times take a unit: ns, us, ms or s (fractions allowed). Nodes are numbered 1..N.
// Actions at the same time apply in the order written. to_text() prints this same
// format, so a random schedule can be saved and replayed exactly.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/ids.h"
#include "core/random.h"
#include "core/status.h"
#include "sim/event_queue.h"

namespace statekv::sim {

struct FaultAction {
  enum class Kind : unsigned char {
    kPartition,
    kOnewayDrop,
    kOnewayPass,
    kHeal,
    kCrash,
    kRestart,
    kLoss,
    kDuplicate,
    kReorder
  };
  SimTime at = 0;
  Kind kind = Kind::kHeal;
  std::vector<std::vector<NodeId>> groups;  // kPartition
  NodeId node;                              // kCrash, kRestart; `from` of a oneway
  NodeId to;                                // oneway
  double probability = 0;                   // kLoss, kDuplicate, kReorder
};

struct FaultSchedule {
  std::vector<FaultAction> actions;  // sorted by time (stable)
  std::string to_text() const;
};

// Which kinds of fault a random run may use.
struct FaultSet {
  bool loss = false;
  bool duplicate = false;
  bool reorder = false;
  bool delay = false;      // long jitter and a long tail on links
  bool partition = false;  // symmetric partitions
  bool oneway = false;     // asymmetric partitions
  bool crash = false;      // crash and restart, at most a minority down at once
  bool clock = false;      // per-node clock offset and drift
  bool any() const {
    return loss || duplicate || reorder || delay || partition || oneway || crash || clock;
  }
  std::string to_string() const;
};

// "none", "all", or a comma list of: loss, dup, reorder, delay, partition,
// oneway, crash, clock.
Result<FaultSet> parse_fault_set(std::string_view list);

// Parses the text format; node ids must lie in 1..nodes. Errors name the line.
Result<FaultSchedule> parse_schedule(std::string_view text, size_t nodes);

// Draws a schedule over [0, horizon) using only the enabled scheduled faults
// (loss, dup, reorder, partition, oneway, crash). It never has more than a
// minority of nodes down at once, and ends at `horizon` with everything healed,
// restarted and loss-free, so the cluster can finish the workload.
FaultSchedule random_schedule(Random& rng, size_t nodes, const FaultSet& faults, SimTime horizon);

// "1.5s", "200ms", "30us", "7ns".
Result<SimTime> parse_duration(std::string_view text);
std::string format_duration(SimTime t);

}  // namespace statekv::sim
