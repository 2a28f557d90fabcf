// Session guarantees per process and key, on the causal order of causal_order.h.
// Definitions in checkers.h; docs/checkers.md has the reasoning and limits.
#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "check/causal_order.h"
#include "check/checkers.h"

namespace statekv::check {
namespace {

enum class Guarantee { kReadYourWrites, kMonotonicReads, kMonotonicWrites, kWritesFollowReads };

std::string_view name_of(Guarantee g) {
  switch (g) {
    case Guarantee::kReadYourWrites:
      return "read-your-writes";
    case Guarantee::kMonotonicReads:
      return "monotonic-reads";
    case Guarantee::kMonotonicWrites:
      return "monotonic-writes";
    case Guarantee::kWritesFollowReads:
      return "writes-follow-reads";
  }
  return "?";
}

bool is_read(const Op& op) {
  return op.outcome == EventType::kOk && op.f == OpFunction::kRead;
}
bool is_write(const Op& op, const CausalOrder& order) {
  return op.f != OpFunction::kRead && order.included(op.id);
}

// A floor: once a process passed it, it must never read `op`'s value (when
// `strict`) or anything older than `op`. `why` is the op that set it.
struct Floor {
  size_t op;
  size_t why;
};

class SessionChecker {
 public:
  SessionChecker(const std::vector<Op>& ops, const CausalOrder& order) : ops_(ops), order_(order) {}

  // Returns the explanation of the first violation of g, or empty.
  std::string check(Guarantee g) {
    // For monotonic-writes / writes-follow-reads: per write, the op of the same
    // process and key that it must follow (its previous write, resp. the write its
    // process last read on that key), or -1.
    std::vector<int32_t> predecessor(ops_.size(), -1);
    if (g == Guarantee::kMonotonicWrites || g == Guarantee::kWritesFollowReads) {
      struct Slot {
        int32_t op = -1;
      };
      std::unordered_map<int64_t, std::unordered_map<std::string_view, Slot>> last;
      for (const Op& op : ops_) {
        int32_t& slot = last[op.process][op.key].op;
        if (is_write(op, order_)) {
          predecessor[op.id] = slot;
          if (g == Guarantee::kMonotonicWrites) slot = static_cast<int32_t>(op.id);
        } else if (g == Guarantee::kWritesFollowReads && is_read(op) &&
                   order_.writer_of(op.id) >= 0) {
          slot = static_cast<int32_t>(op.id);  // the read; its writer is the floor
        }
      }
    }
    // Per (process, key): the floors in force, as an antichain.
    std::unordered_map<int64_t, std::unordered_map<std::string_view, std::vector<Floor>>> floors;
    for (const Op& op : ops_) {
      if (!order_.included(op.id)) continue;
      std::vector<Floor>& mine = floors[op.process][op.key];
      const bool deletes = order_.key_has_deletes(op.key);
      if (is_read(op)) {
        int32_t u = order_.writer_of(op.id);
        if (u != kAmbiguous && !(u == kInitial && deletes)) {
          for (const Floor& f : mine) {
            bool strict = g == Guarantee::kMonotonicWrites || g == Guarantee::kWritesFollowReads;
            if ((strict && u == static_cast<int32_t>(f.op)) || order_.older(u, f.op, deletes)) {
              return explain(g, op, u, f);
            }
          }
        }
        if (g == Guarantee::kMonotonicReads && u >= 0) add(mine, Floor{size_t(u), op.id});
        if ((g == Guarantee::kMonotonicWrites || g == Guarantee::kWritesFollowReads) && u >= 0) {
          int32_t p = predecessor[u];
          if (p >= 0) {
            size_t floor_op = g == Guarantee::kMonotonicWrites
                                  ? static_cast<size_t>(p)
                                  : static_cast<size_t>(order_.writer_of(p));
            add(mine, Floor{floor_op, op.id});
          }
        }
      } else if (g == Guarantee::kReadYourWrites && is_write(op, order_) &&
                 op.outcome == EventType::kOk) {
        add(mine, Floor{op.id, op.id});
      }
    }
    return {};
  }

 private:
  // Keeps the floors an antichain: a floor causally before another adds nothing
  // (anything older than it, or equal to it, is older than the later one).
  void add(std::vector<Floor>& floors, Floor f) {
    for (const Floor& g : floors) {
      if (g.op == f.op || order_.precedes(f.op, g.op)) return;
    }
    floors.erase(std::remove_if(floors.begin(), floors.end(),
                                [&](const Floor& g) { return order_.precedes(g.op, f.op); }),
                 floors.end());
    floors.push_back(f);
  }

  std::string read_value(int32_t u, const Op& read) const {
    if (u == kInitial) return "absent (the initial state)";
    return fmt::format("{}, written by {}", describe_value(read.value), describe(ops_[u]));
  }

  std::string explain(Guarantee g, const Op& read, int32_t u, const Floor& f) const {
    const Op& floor = ops_[f.op];
    const Op& why = ops_[f.why];
    std::string relation = u == static_cast<int32_t>(f.op)
                               ? std::string("which is that very write")
                               : fmt::format("which causally precedes {}", describe(floor));
    switch (g) {
      case Guarantee::kReadYourWrites:
        return fmt::format(
            "{} violated: process {} wrote {} = {} ({}), then read {} ({}): it read {}, {}",
            name_of(g), read.process, floor.key, describe_value(floor.value), describe(floor),
            read.key, describe(read), read_value(u, read), relation);
      case Guarantee::kMonotonicReads:
        return fmt::format(
            "{} violated: process {} read {} ({}), then read an older value ({}): "
            "{}, {}",
            name_of(g), read.process, describe_value(why.value), describe(why), describe(read),
            read_value(u, read), relation);
      case Guarantee::kMonotonicWrites:
      case Guarantee::kWritesFollowReads: {
        const Op& later_write = ops_[order_.writer_of(why.id)];
        std::string reason =
            g == Guarantee::kMonotonicWrites
                ? fmt::format("process {} wrote {} before {}", later_write.process, describe(floor),
                              describe(later_write))
                : fmt::format("process {} had read the value of {} before {}", later_write.process,
                              describe(floor), describe(later_write));
        return fmt::format(
            "{} violated: {}; process {} read the later write ({}), then read {} "
            "({}), {}",
            name_of(g), reason, read.process, describe(why), read_value(u, read), describe(read),
            relation);
      }
    }
    return {};
  }

  const std::vector<Op>& ops_;
  const CausalOrder& order_;
};

CheckResult run(const std::vector<Op>& ops, std::initializer_list<Guarantee> guarantees) {
  CheckResult result;
  result.stats.operations = static_cast<int64_t>(ops.size());
  std::unordered_set<std::string_view> keys;
  for (const Op& op : ops) keys.insert(op.key);
  result.stats.keys = static_cast<int64_t>(keys.size());
  CausalOrder order(ops);
  if (!order.violation().empty()) {
    result.valid = false;
    result.explanation = order.violation();
    return result;
  }
  SessionChecker checker(ops, order);
  for (Guarantee g : guarantees) {
    std::string violation = checker.check(g);
    if (!violation.empty()) {
      result.valid = false;
      result.explanation = std::move(violation);
      return result;
    }
  }
  return result;
}

}  // namespace

CheckResult check_read_your_writes(const std::vector<Op>& ops) {
  return run(ops, {Guarantee::kReadYourWrites});
}
CheckResult check_monotonic_reads(const std::vector<Op>& ops) {
  return run(ops, {Guarantee::kMonotonicReads});
}
CheckResult check_monotonic_writes(const std::vector<Op>& ops) {
  return run(ops, {Guarantee::kMonotonicWrites});
}
CheckResult check_writes_follow_reads(const std::vector<Op>& ops) {
  return run(ops, {Guarantee::kWritesFollowReads});
}
CheckResult check_session(const std::vector<Op>& ops) {
  return run(ops, {Guarantee::kReadYourWrites, Guarantee::kMonotonicReads,
                   Guarantee::kMonotonicWrites, Guarantee::kWritesFollowReads});
}

}  // namespace statekv::check
