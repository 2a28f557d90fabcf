// Linearizability: per key, a Wing–Gong/Lowe search over independent segments.
// The algorithm and its complexity are described in checkers.h and
// docs/checkers.md; comments here say why each step is sound.
#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "check/checkers.h"
#include "check/register_key.h"

namespace statekv::check {
namespace {

// Info ops with the same effect are interchangeable, and any placement of a later
// one is also open to an earlier one (both may take effect at any instant after
// their invoke), so within a class they are applied in invoke order and the search
// only needs to remember how many were applied.
struct OptionalClass {
  OpFunction f;
  int32_t value;
  int32_t expected;
  std::vector<uint32_t> members;  // indices into RegisterKey::optional, by invoke
};

class KeySearch {
 public:
  KeySearch(const std::vector<Op>& ops, const RegisterKey& reg) : ops_(ops), reg_(reg) {
    for (uint32_t i = 0; i < reg.optional.size(); ++i) {
      const RegOp& r = reg.optional[i];
      auto it = std::find_if(classes_.begin(), classes_.end(), [&](const OptionalClass& c) {
        return c.f == r.f && c.value == r.value && c.expected == r.expected;
      });
      if (it == classes_.end()) {
        classes_.push_back({r.f, r.value, r.expected, {}});
        it = classes_.end() - 1;
      }
      it->members.push_back(i);
    }
    linearized_.assign(reg.required.size(), 0);
    pending_required_.assign(reg.values.size(), 0);
    pending_optional_.assign(reg.values.size(), 0);
    for (const RegOp& r : reg.required) {
      if (r.is_observer()) ++pending_required_[r.observes()];
    }
  }

  // Returns an empty string when the key is linearizable, else the explanation.
  std::string run(CheckStats& stats) {
    const auto& req = reg_.required;
    // Independent segments, for the statistics: cuts where every required op
    // before i must take effect before op i is invoked. The search needs no
    // special case for them: the window never reaches across a cut.
    int64_t max_deadline = 0;
    for (size_t i = 0; i < req.size(); ++i) {
      if (i == 0 || max_deadline < req[i].invoke) ++stats.segments;
      max_deadline = i == 0 ? req[i].deadline : std::max(max_deadline, req[i].deadline);
    }
    applied_.assign(classes_.size(), 0);
    for (const OptionalClass& c : classes_) {
      if (c.f == OpFunction::kCas) {
        pending_optional_[c.expected] += static_cast<int32_t>(c.members.size());
      }
    }
    bool found = dfs();
    stats.explored += explored_;
    memo_.clear();
    return found ? std::string() : explain();
  }

 private:
  struct Undo {
    int32_t child;  // >= 0: index in required; < 0: optional class -(child + 1)
    int32_t state;
    size_t prefix;
    bool must_observe;
  };
  struct Frame {
    size_t children_begin, children_end, next;
    Undo undo;
  };

  // Depth first, stopping at the first order that places every required op.
  bool dfs() {
    children_.clear();
    std::vector<Frame> stack;
    stack.push_back(expand(Undo{0, 0, 0, false}));
    if (found_) return true;
    while (!stack.empty()) {
      Frame& top = stack.back();
      if (top.next == top.children_end) {
        if (stack.size() > 1) undo(top.undo);
        children_.resize(top.children_begin);
        stack.pop_back();
        continue;
      }
      int32_t child = children_[top.next++];
      Undo u = apply(child);
      stack.push_back(expand(u));
      if (found_) return true;
    }
    return false;
  }

  // Whether this configuration (or one it dominates) was visited before; records
  // it if not. The key is (prefix, value, must_observe, linearized ops past the
  // prefix); per key, the applied-count vectors seen. A configuration that applied
  // at least as many of every info class as a visited one with the same key is
  // dominated: the visited one can do everything it can (it may skip the extra
  // info ops, which may never have happened, and each class's members go in
  // invoke order, so its next members were invoked no later), and a visited
  // configuration either led to success (the search stopped) or was exhausted
  // (or is an ancestor still being explored, whose other branches then cover the
  // same continuations).
  bool seen_or_dominated() {
    std::string encoded(reinterpret_cast<const char*>(key_.data()), key_.size() * 4);
    auto [it, inserted] = memo_.try_emplace(std::move(encoded));
    std::vector<std::vector<uint32_t>>& seen = it->second;
    if (!inserted) {
      for (const auto& v : seen) {
        bool le = true;
        for (size_t c = 0; c < v.size() && le; ++c) le = v[c] <= applied_[c];
        if (le) return true;
      }
      // Keep the list short: drop what the new vector dominates.
      std::erase_if(seen, [&](const std::vector<uint32_t>& v) {
        for (size_t c = 0; c < v.size(); ++c) {
          if (applied_[c] > v[c]) return false;
        }
        return true;
      });
    }
    seen.push_back(applied_);
    ++explored_;
    return false;
  }

  Undo apply(int32_t child) {
    Undo u{child, state_, prefix_, must_observe_};
    // An info op is applied only to be observed by the very next op (see expand).
    must_observe_ = child < 0;
    if (child >= 0) {
      const RegOp& r = reg_.required[child];
      linearized_[child] = 1;
      if (r.is_observer()) --pending_required_[r.observes()];
      if (r.changes_state()) state_ = r.value;
      while (prefix_ < reg_.required.size() && linearized_[prefix_]) ++prefix_;
    } else {
      const OptionalClass& c = classes_[-child - 1];
      ++applied_[-child - 1];
      if (c.f == OpFunction::kCas) --pending_optional_[c.expected];
      state_ = c.value;
    }
    return u;
  }

  void undo(const Undo& u) {
    if (u.child >= 0) {
      const RegOp& r = reg_.required[u.child];
      linearized_[u.child] = 0;
      if (r.is_observer()) ++pending_required_[r.observes()];
    } else {
      const OptionalClass& c = classes_[-u.child - 1];
      --applied_[-u.child - 1];
      if (c.f == OpFunction::kCas) ++pending_optional_[c.expected];
    }
    state_ = u.state;
    prefix_ = u.prefix;
    must_observe_ = u.must_observe;
  }

  // Leaving a unique value while an op that must observe it is pending is a dead end:
  // the value can never come back.
  // `self` counts the op's own observation (a required cas observes what it leaves).
  bool may_leave_state(int32_t next_state, int32_t self = 0) const {
    return next_state == state_ || reg_.producers[state_] != 1 || pending_required_[state_] == self;
  }

  bool legal(const RegOp& r) const {
    if (r.f == OpFunction::kRead) return r.value == state_;
    if (r.f == OpFunction::kCas && r.expected != state_) return false;
    return may_leave_state(r.value, r.f == OpFunction::kCas ? 1 : 0);
  }

  Frame expand(Undo undo) {
    Frame frame{children_.size(), children_.size(), children_.size(), undo};
    if (prefix_ == reg_.required.size()) {
      // An info op applied last and observed by nobody: the same order without it
      // is also explored (see the rule for info ops below).
      if (!must_observe_) found_ = true;
      return frame;
    }
    // Just-in-time linearization: an op may go next only if it was invoked no later
    // than the earliest deadline M of the ops still pending. Scanning by invoke
    // stops at the first op invoked after M; every linearized op past the prefix
    // lies before that point, because M only grows as ops are linearized.
    window_.clear();
    extras_.clear();
    int64_t m = kNever;
    for (size_t j = prefix_; j < reg_.required.size() && reg_.required[j].invoke <= m; ++j) {
      if (linearized_[j]) {
        extras_.push_back(static_cast<uint32_t>(j));
      } else {
        window_.push_back(static_cast<uint32_t>(j));
        m = std::min(m, reg_.required[j].deadline);
      }
    }
    max_in_flight_ = std::max<int64_t>(max_in_flight_, window_.size() + extras_.size());

    key_.clear();
    key_.push_back(static_cast<uint32_t>(prefix_));
    key_.push_back(static_cast<uint32_t>(state_) | (must_observe_ ? 0x80000000u : 0));
    key_.insert(key_.end(), extras_.begin(), extras_.end());
    if (seen_or_dominated()) return frame;

    size_t depth = prefix_ + extras_.size();
    bool record = depth > best_depth_ || !have_best_;
    if (record) {
      have_best_ = true;
      best_depth_ = depth;
      best_state_ = state_;
      best_window_ = window_;
      best_prefix_ = prefix_;
      best_extras_ = extras_;
    }

    // A legal pending read can go first without loss: it changes nothing, and
    // everything that had to precede it already has.
    for (uint32_t j : window_) {
      const RegOp& r = reg_.required[j];
      if (r.f == OpFunction::kRead && r.value == state_) {
        children_.push_back(static_cast<int32_t>(j));
        frame.children_end = children_.size();
        return frame;
      }
    }
    // Info ops are applied lazily: only to be observed by the very next op, and only
    // if they change the value. Sound: take a legal order with the fewest info ops
    // applied. If an applied info op O (installing v) were not followed at once by
    // a read of v or a cas expecting v, the next op is a write or delete or
    // nothing, and every op up to the next change of value is a read of v: there
    // is none, so dropping O leaves every other op legal (info ops may not have
    // happened), with fewer applied; likewise if O did not change the value. The
    // observer is either an op that certainly happened or another info cas, whose
    // value in turn must be observed next.
    if (must_observe_) {
      for (uint32_t j : window_) {
        const RegOp& r = reg_.required[j];
        if (r.f == OpFunction::kCas && legal(r) && !has_earlier_twin(j)) {
          children_.push_back(static_cast<int32_t>(j));
        }
      }
      push_optional_children(m, /*cas_only=*/true);
      frame.children_end = children_.size();
      return frame;
    }
    // A write nobody observes can go first when nothing pending needs the current
    // value: any order placing it later can move it here and stay legal (it goes
    // right after an op that certainly happened, so info ops stay lazy).
    if (pending_required_[state_] == 0 && pending_optional_[state_] == 0) {
      for (uint32_t j : window_) {
        const RegOp& r = reg_.required[j];
        if (r.dead && r.f != OpFunction::kCas) {
          children_.push_back(static_cast<int32_t>(j));
          frame.children_end = children_.size();
          return frame;
        }
      }
    }
    for (uint32_t j : window_) {
      const RegOp& r = reg_.required[j];
      if (r.changes_state() && legal(r) && !has_earlier_twin(j)) {
        children_.push_back(static_cast<int32_t>(j));
      }
    }
    // Earliest deadline first: in a real history that is usually the next op.
    std::sort(children_.begin() + frame.children_begin, children_.end(), [&](int32_t a, int32_t b) {
      return reg_.required[a].deadline < reg_.required[b].deadline;
    });
    push_optional_children(m, /*cas_only=*/false);
    frame.children_end = children_.size();
    return frame;
  }

  // Whether the window holds another pending op with the same effect (function,
  // value, expected) and an earlier deadline (ties: earlier in invoke order); then
  // only that twin needs trying here. Sound: take a legal order that puts j here and
  // its twin t later; swap them. The values the register takes are unchanged. t
  // here is fine: it may go now (it is in the window), and every op after it is
  // still pending, with a deadline at least M, which is at least t's invoke; ops
  // before t's old place precede j's too. j in t's old place is fine: ops before it
  // were invoked by t's deadline, hence by j's, and ops after it are pending now,
  // so their deadlines are at least M, at least j's invoke.
  bool has_earlier_twin(uint32_t j) const {
    const RegOp& r = reg_.required[j];
    for (uint32_t k : window_) {
      if (k == j) continue;
      const RegOp& t = reg_.required[k];
      if (t.f != r.f || t.value != r.value || t.expected != r.expected) continue;
      if (t.deadline < r.deadline || (t.deadline == r.deadline && k < j)) return true;
    }
    return false;
  }

  // The info classes whose next member may go now (invoked by m), change the value
  // and can be observed (see the lazy rule in expand).
  //
  // Two more choices are never needed, each by swapping two ops with the same
  // effect on the value (the register then takes the same values throughout; the
  // op moved later was invoked by M now, and M only grows, so it may go there; the
  // op moved here may go now; an info op moved later still installs what the op it
  // replaces installed, so it is still observed at once):
  //  - an info op when a pending required op with the same effect may go now: put
  //    the required op here and the info op where the required one was;
  //  - an info write of v when an info cas from the current value to v may go now:
  //    put the cas here and the write where the cas (its class's next member) was,
  //    or nowhere if the cas was never applied (a write may go in any state).
  void push_optional_children(int64_t m, bool cas_only) {
    const size_t first = children_.size();
    for (size_t c = 0; c < classes_.size(); ++c) {
      const OptionalClass& cls = classes_[c];
      if (!optional_may_go(c, m)) continue;
      if (cas_only && cls.f != OpFunction::kCas) continue;
      if (cls.value == state_) continue;
      if (pending_required_[cls.value] == 0 && pending_optional_[cls.value] == 0) continue;
      if (!may_leave_state(cls.value)) continue;
      bool required_twin = false;
      for (uint32_t j : window_) {
        const RegOp& r = reg_.required[j];
        if (r.f == cls.f && r.value == cls.value && r.expected == cls.expected) {
          required_twin = true;
          break;
        }
      }
      if (required_twin) continue;
      children_.push_back(-static_cast<int32_t>(c) - 1);
    }
    // Drop the info writes that an available info cas to the same value replaces.
    auto replaced = [&](int32_t child) {
      const OptionalClass& w = classes_[-child - 1];
      if (w.f != OpFunction::kWrite) return false;
      for (size_t i = first; i < children_.size(); ++i) {
        const OptionalClass& c = classes_[-children_[i] - 1];
        if (c.f == OpFunction::kCas && c.value == w.value) return true;
      }
      return false;
    };
    children_.erase(std::remove_if(children_.begin() + static_cast<std::ptrdiff_t>(first),
                                   children_.end(), replaced),
                    children_.end());
  }

  // Class c has a member left, invoked by m, and legal on the current value.
  bool optional_may_go(size_t c, int64_t m) const {
    const OptionalClass& cls = classes_[c];
    if (applied_[c] == cls.members.size()) return false;
    if (reg_.optional[cls.members[applied_[c]]].invoke > m) return false;
    return cls.f != OpFunction::kCas || cls.expected == state_;
  }

  std::string pending_observer_of(int32_t value) const {
    for (size_t j = best_prefix_; j < reg_.required.size(); ++j) {
      const RegOp& r = reg_.required[j];
      if (r.is_observer() && r.observes() == value && !linearized_at_best(j)) {
        return describe(ops_[r.op]);
      }
    }
    return "a pending read";
  }
  bool linearized_at_best(size_t j) const {
    return std::find(best_extras_.begin(), best_extras_.end(), j) != best_extras_.end();
  }

  std::string value_with_source(int32_t value) const {
    std::string v = describe_value(reg_.values[value]);
    int32_t producer = reg_.unique_producer[value];
    if (producer >= 0) {
      return fmt::format("{} (written by {})", v, describe(ops_[reg_.required[producer].op]));
    }
    if (value == kAbsent && reg_.producers[kAbsent] == 1) return v + " (initial state)";
    return v;
  }

  std::string explain() const {
    std::vector<uint32_t> window = best_window_;
    std::sort(window.begin(), window.end(), [&](uint32_t a, uint32_t b) {
      return reg_.required[a].deadline < reg_.required[b].deadline;
    });
    std::string out = fmt::format(
        "key {} is not linearizable: {} of its {} operations that certainly happened can be "
        "ordered, then none can go next.\n  The register then holds {}.\n  Operations that "
        "must go next, and why none can:",
        reg_.key, best_depth_, reg_.required.size(), value_with_source(best_state_));
    size_t shown = 0;
    for (uint32_t j : window) {
      if (shown++ == 4) {
        out += fmt::format("\n  - ... and {} more", window.size() - 4);
        break;
      }
      const RegOp& r = reg_.required[j];
      std::string why;
      if (r.f == OpFunction::kRead && r.value != best_state_) {
        why = fmt::format("it read {}", value_with_source(r.value));
        if (reg_.producers[r.value] == 1) why += ", which had already been overwritten";
      } else if (r.f == OpFunction::kCas && r.expected != best_state_) {
        why = fmt::format("it succeeded, so the register held {}", value_with_source(r.expected));
      } else if (r.changes_state() && reg_.producers[best_state_] == 1 && r.value != best_state_) {
        why =
            fmt::format("it would overwrite {} before {} observed it",
                        describe_value(reg_.values[best_state_]), pending_observer_of(best_state_));
      } else {
        why = "every order that puts it next fails later";
      }
      out += fmt::format("\n  - {}: {}", describe(ops_[r.op]), why);
    }
    return out;
  }

 public:
  int64_t max_in_flight() const { return max_in_flight_; }

 private:
  const std::vector<Op>& ops_;
  const RegisterKey& reg_;
  std::vector<OptionalClass> classes_;
  std::vector<uint32_t> applied_;
  std::vector<char> linearized_;
  std::vector<int32_t> pending_required_, pending_optional_;
  int32_t state_ = kAbsent;
  bool must_observe_ = false;  // the last op applied was an info op
  size_t prefix_ = 0;
  bool found_ = false;
  int64_t explored_ = 0;
  std::unordered_map<std::string, std::vector<std::vector<uint32_t>>> memo_;
  std::vector<int32_t> children_;
  std::vector<uint32_t> window_, extras_, key_;
  int64_t max_in_flight_ = 0;
  bool have_best_ = false;
  size_t best_depth_ = 0, best_prefix_ = 0;
  int32_t best_state_ = kAbsent;
  std::vector<uint32_t> best_window_, best_extras_;
};

}  // namespace

CheckResult check_linearizable(const std::vector<Op>& ops) {
  return check_each_register_key<KeySearch>(ops, /*real_time=*/true);
}

}  // namespace statekv::check
