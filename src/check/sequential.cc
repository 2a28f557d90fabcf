// Sequential consistency per key: a search over (position in each process,
// register value, info ops applied), with the pruning of linearizable.cc minus
// real time. See checkers.h and docs/checkers.md.
#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "check/checkers.h"
#include "check/register_key.h"

namespace statekv::check {
namespace {

class SequentialSearch {
 public:
  SequentialSearch(const std::vector<Op>& ops, const RegisterKey& reg) : ops_(ops), reg_(reg) {
    std::unordered_map<int64_t, size_t> lane_of;
    auto lane = [&](int64_t process) {
      auto [it, inserted] = lane_of.try_emplace(process, lanes_.size());
      if (inserted) lanes_.emplace_back();
      return it->second;
    };
    // Session order is invoke order within a process; both lists are invoke-sorted.
    std::vector<std::pair<uint64_t, uint32_t>> order;  // (session index, required idx)
    for (uint32_t i = 0; i < reg.required.size(); ++i) {
      order.emplace_back(ops[reg.required[i].op].session_index, i);
    }
    std::sort(order.begin(), order.end());
    // Info ops float: a timed-out write may take effect after its process's later
    // ops, so it is ordered only after the ops its process invoked before it.
    std::vector<const RegOp*> floating;
    for (auto [_, i] : order) {
      const RegOp& r = reg.required[i];
      if (ops[r.op].outcome == EventType::kInfo) {
        floating.push_back(&r);
      } else {
        lanes_[lane(r.process)].push_back(i);
      }
    }
    for (const RegOp& r : reg.optional) floating.push_back(&r);
    for (const RegOp* r : floating) {
      size_t l = lane(r->process);
      const uint64_t at = ops[r->op].session_index;
      size_t after = std::count_if(lanes_[l].begin(), lanes_[l].end(), [&](uint32_t i) {
        return ops[reg.required[i].op].session_index < at;
      });
      bool required = r >= reg.required.data() && r < reg.required.data() + reg.required.size();
      floating_.push_back({r, l, after, required});
    }
    pos_.assign(lanes_.size(), 0);
    applied_.assign(floating_.size(), 0);
    pending_required_.assign(reg.values.size(), 0);
    pending_optional_.assign(reg.values.size(), 0);
    for (const RegOp& r : reg.required) {
      if (r.is_observer()) ++pending_required_[r.observes()];
    }
    for (const RegOp& r : reg.optional) {
      if (r.f == OpFunction::kCas) ++pending_optional_[r.expected];
    }
    remaining_ = reg.required.size();
  }

  std::string run(CheckStats& stats) {
    bool ok = dfs();
    stats.explored += static_cast<int64_t>(memo_.size());
    stats.max_in_flight = std::max<int64_t>(stats.max_in_flight, lanes_.size());
    return ok ? std::string() : explain();
  }

 private:
  struct Floating {
    const RegOp* op;
    size_t lane;
    size_t after;  // may go once its lane has applied this many ops
    bool required;
  };
  struct Undo {
    int32_t child;  // >= 0: lane whose head was applied; < 0: optional -(i + 1)
    int32_t state;
  };
  struct Frame {
    size_t children_begin, children_end, next;
    Undo undo;
  };

  bool dfs() {
    std::vector<Frame> stack;
    bool done = false;
    stack.push_back(expand(Undo{0, 0}, done));
    while (!stack.empty() && !done) {
      Frame& top = stack.back();
      if (top.next == top.children_end) {
        if (stack.size() > 1) undo(top.undo);
        children_.resize(top.children_begin);
        stack.pop_back();
        continue;
      }
      Undo u = apply(children_[top.next++]);
      stack.push_back(expand(u, done));
    }
    return done;
  }

  const RegOp& op_of(int32_t child) const {
    return child >= 0 ? reg_.required[lanes_[child][pos_[child]]] : *floating_[-child - 1].op;
  }

  Undo apply(int32_t child) {
    Undo u{child, state_};
    const RegOp& r = op_of(child);
    if (child >= 0) {
      ++pos_[child];
      --remaining_;
      if (r.is_observer()) --pending_required_[r.observes()];
    } else {
      applied_[-child - 1] = 1;
      if (floating_[-child - 1].required) {
        --remaining_;
        if (r.is_observer()) --pending_required_[r.observes()];
      } else if (r.f == OpFunction::kCas) {
        --pending_optional_[r.expected];
      }
    }
    if (r.changes_state()) state_ = r.value;
    return u;
  }

  void undo(const Undo& u) {
    if (u.child >= 0) {
      --pos_[u.child];
      ++remaining_;
      const RegOp& r = op_of(u.child);
      if (r.is_observer()) ++pending_required_[r.observes()];
    } else {
      applied_[-u.child - 1] = 0;
      const RegOp& r = *floating_[-u.child - 1].op;
      if (floating_[-u.child - 1].required) {
        ++remaining_;
        if (r.is_observer()) ++pending_required_[r.observes()];
      } else if (r.f == OpFunction::kCas) {
        ++pending_optional_[r.expected];
      }
    }
    state_ = u.state;
  }

  bool legal(const RegOp& r) const {
    if (r.f == OpFunction::kRead) return r.value == state_;
    if (r.f == OpFunction::kCas && r.expected != state_) return false;
    // The register may not leave a unique value some pending op must still observe.
    // A required cas observes the value it leaves; it does not block itself.
    const bool self = r.f == OpFunction::kCas && (&r >= reg_.required.data() &&
                                                  &r < reg_.required.data() + reg_.required.size());
    return r.value == state_ || reg_.producers[state_] != 1 ||
           pending_required_[state_] == (self ? 1 : 0);
  }

  Frame expand(Undo undo, bool& done) {
    Frame frame{children_.size(), children_.size(), children_.size(), undo};
    if (remaining_ == 0) {
      done = true;
      return frame;
    }
    key_.clear();
    key_.push_back(static_cast<uint32_t>(state_));
    key_.insert(key_.end(), pos_.begin(), pos_.end());
    for (size_t i = 0; i < applied_.size(); i += 32) {
      uint32_t word = 0;
      for (size_t b = 0; b < 32 && i + b < applied_.size(); ++b) word |= applied_[i + b] << b;
      key_.push_back(word);
    }
    std::string encoded(reinterpret_cast<const char*>(key_.data()), key_.size() * 4);
    if (!memo_.insert(std::move(encoded)).second) return frame;
    size_t depth = reg_.required.size() - remaining_;
    if (depth > best_depth_ || !have_best_) {
      have_best_ = true;
      best_depth_ = depth;
      best_state_ = state_;
      best_pos_ = pos_;
    }

    // Forced moves (see linearizable.cc): a legal head read, then a head write
    // nobody observes when nothing pending needs the current value.
    for (size_t l = 0; l < lanes_.size(); ++l) {
      if (pos_[l] == lanes_[l].size()) continue;
      const RegOp& r = reg_.required[lanes_[l][pos_[l]]];
      if (r.f == OpFunction::kRead && r.value == state_) {
        children_.push_back(static_cast<int32_t>(l));
        frame.children_end = children_.size();
        return frame;
      }
    }
    if (pending_required_[state_] == 0 && pending_optional_[state_] == 0) {
      for (size_t l = 0; l < lanes_.size(); ++l) {
        if (pos_[l] == lanes_[l].size()) continue;
        const RegOp& r = reg_.required[lanes_[l][pos_[l]]];
        if (r.dead && r.f != OpFunction::kCas) {
          children_.push_back(static_cast<int32_t>(l));
          frame.children_end = children_.size();
          return frame;
        }
      }
    }
    for (size_t l = 0; l < lanes_.size(); ++l) {
      if (pos_[l] == lanes_[l].size()) continue;
      const RegOp& r = reg_.required[lanes_[l][pos_[l]]];
      if (r.changes_state() && legal(r)) children_.push_back(static_cast<int32_t>(l));
    }
    for (size_t i = 0; i < floating_.size(); ++i) {
      if (applied_[i] || pos_[floating_[i].lane] < floating_[i].after) continue;
      if (legal(*floating_[i].op)) children_.push_back(-static_cast<int32_t>(i) - 1);
    }
    frame.children_end = children_.size();
    return frame;
  }

  std::string explain() const {
    std::string v = describe_value(reg_.values[best_state_]);
    int32_t producer = reg_.unique_producer[best_state_];
    if (producer >= 0)
      v += fmt::format(" (written by {})", describe(ops_[reg_.required[producer].op]));
    std::string out = fmt::format(
        "key {} is not sequentially consistent: {} of its {} operations that certainly "
        "happened can be put in one order respecting each process's order, then none can go "
        "next.\n  The register then holds {}.\n  Next operation of each process:",
        reg_.key, best_depth_, reg_.required.size(), v);
    size_t shown = 0;
    for (size_t l = 0; l < lanes_.size(); ++l) {
      if (best_pos_[l] == lanes_[l].size()) continue;
      if (shown++ == 4) {
        out += "\n  - ...";
        break;
      }
      const RegOp& r = reg_.required[lanes_[l][best_pos_[l]]];
      std::string why;
      if (r.f == OpFunction::kRead) {
        why = fmt::format("needs {}", describe_value(reg_.values[r.value]));
      } else if (r.f == OpFunction::kCas && r.expected != best_state_) {
        why = fmt::format("needs {}", describe_value(reg_.values[r.expected]));
      } else {
        why = fmt::format("would overwrite {} before a pending read of it",
                          describe_value(reg_.values[best_state_]));
      }
      out += fmt::format("\n  - {}: {}", describe(ops_[r.op]), why);
    }
    return out;
  }

  const std::vector<Op>& ops_;
  const RegisterKey& reg_;
  std::vector<std::vector<uint32_t>> lanes_;  // per process: required indices in order
  std::vector<Floating> floating_;            // per optional op
  std::vector<uint32_t> pos_;
  std::vector<uint32_t> applied_;
  std::vector<int32_t> pending_required_, pending_optional_;
  size_t remaining_ = 0;
  int32_t state_ = kAbsent;
  std::unordered_set<std::string> memo_;
  std::vector<int32_t> children_;
  std::vector<uint32_t> key_;
  bool have_best_ = false;
  size_t best_depth_ = 0;
  int32_t best_state_ = kAbsent;
  std::vector<uint32_t> best_pos_;
};

}  // namespace

CheckResult check_sequential(const std::vector<Op>& ops) {
  return check_each_register_key<SequentialSearch>(ops, /*real_time=*/false);
}

}  // namespace statekv::check
