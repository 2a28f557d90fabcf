// Test support (header-only, used by src/check/*_test.cc): a small builder for
// hand-written histories, a generator of random linearizable register histories,
// mutations that certainly break linearizability, and a brute-force reference
// search to compare the fast checkers against on small histories.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "check/checkers.h"
#include "check/history.h"
#include "check/operation.h"
#include "core/random.h"

namespace statekv::check::testing {

using V = std::optional<std::string>;

// Appends whole operations (invoke + completion); checkers use times, not the
// order of lines, so operations may overlap freely across processes.
class HistoryBuilder {
 public:
  HistoryBuilder& read(int64_t p, std::string key, V value, int64_t t0, int64_t t1,
                       EventType end = EventType::kOk) {
    return add(p, OpFunction::kRead, std::move(key), std::nullopt, std::move(value), std::nullopt,
               t0, t1, end);
  }
  HistoryBuilder& write(int64_t p, std::string key, std::string value, int64_t t0, int64_t t1,
                        EventType end = EventType::kOk) {
    V v = std::move(value);
    return add(p, OpFunction::kWrite, std::move(key), v, v, std::nullopt, t0, t1, end);
  }
  HistoryBuilder& cas(int64_t p, std::string key, V expected, V next, int64_t t0, int64_t t1,
                      EventType end = EventType::kOk) {
    return add(p, OpFunction::kCas, std::move(key), next, next, expected, t0, t1, end);
  }
  HistoryBuilder& del(int64_t p, std::string key, int64_t t0, int64_t t1,
                      EventType end = EventType::kOk) {
    return add(p, OpFunction::kDelete, std::move(key), std::nullopt, std::nullopt, std::nullopt, t0,
               t1, end);
  }
  // Annotates the last operation's events.
  HistoryBuilder& node(int64_t n) {
    events_[events_.size() - 1].node = n;
    events_[events_.size() - 2].node = n;
    return *this;
  }
  HistoryBuilder& session(std::string s) {
    events_[events_.size() - 1].session = s;
    events_[events_.size() - 2].session = s;
    return *this;
  }
  const History& history() const { return events_; }
  std::vector<Op> ops() const {
    auto ops = pair_operations(events_);
    EXPECT_TRUE(ops.ok()) << ops.status().to_string();
    return ops.ok() ? *ops : std::vector<Op>{};
  }

 private:
  HistoryBuilder& add(int64_t p, OpFunction f, std::string key, V invoke_value, V end_value,
                      V expected, int64_t t0, int64_t t1, EventType end) {
    Event e;
    e.process = p;
    e.f = f;
    e.key = std::move(key);
    e.type = EventType::kInvoke;
    e.value = std::move(invoke_value);
    e.cas_expected = expected;
    e.time = t0;
    events_.push_back(e);
    e.type = end;
    e.value = std::move(end_value);
    e.time = t1;
    events_.push_back(e);
    return *this;
  }
  History events_;
};

struct GenOptions {
  int processes = 4;
  int keys = 1;
  int ops = 30;
  double p_read = 0.45, p_write = 0.3, p_cas = 0.15;  // the rest: delete
  double p_info = 0.05, p_fail = 0.03;
  int64_t max_gap = 20, max_latency = 40;
  double hot_fraction = 0.0;  // share of ops on key "k0"
  int64_t hot_latency_factor = 1;
};

// A history of an atomic register: each op takes effect at a random instant
// inside its [invoke, completion] interval, in that global order, so the result is
// linearizable by construction. Info ops took effect or not at random; fail ops
// did not. Written values are unique.
inline History generate_linearizable(const GenOptions& o, Random& rng) {
  struct G {
    int64_t process, invoke, point, end;
    OpFunction f;
    std::string key;
    EventType outcome = EventType::kOk;
    bool applies = true;
    V value, expected;
  };
  std::vector<G> gen;
  std::vector<int64_t> cursor(o.processes, 0);
  for (int i = 0; i < o.ops; ++i) {
    int64_t p = std::min_element(cursor.begin(), cursor.end()) - cursor.begin();
    G g;
    g.process = p;
    bool hot = o.hot_fraction > 0 && rng.chance(o.hot_fraction);
    g.key = hot ? "k0" : "k" + std::to_string(rng.uniform(o.keys));
    int64_t latency = o.max_latency * (hot ? o.hot_latency_factor : 1);
    g.invoke = cursor[p] + 1 + static_cast<int64_t>(rng.uniform(o.max_gap));
    g.point = g.invoke + static_cast<int64_t>(rng.uniform(latency));
    g.end = g.point + static_cast<int64_t>(rng.uniform(latency));
    double x = rng.unit();
    g.f = x < o.p_read                         ? OpFunction::kRead
          : x < o.p_read + o.p_write           ? OpFunction::kWrite
          : x < o.p_read + o.p_write + o.p_cas ? OpFunction::kCas
                                               : OpFunction::kDelete;
    if (rng.chance(o.p_info)) {
      g.outcome = EventType::kInfo;
      g.applies = rng.chance(0.5);
    } else if (g.f != OpFunction::kRead && rng.chance(o.p_fail)) {
      g.outcome = EventType::kFail;
      g.applies = false;
    }
    if (g.f == OpFunction::kWrite || g.f == OpFunction::kCas) g.value = "v" + std::to_string(i);
    cursor[p] = g.end;
    gen.push_back(std::move(g));
  }
  std::vector<size_t> order(gen.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return gen[a].point < gen[b].point; });
  std::unordered_map<std::string, V> state;
  std::unordered_map<std::string, std::vector<std::string>> written;
  for (size_t i : order) {
    G& g = gen[i];
    V& s = state[g.key];
    switch (g.f) {
      case OpFunction::kRead:
        g.value = s;
        break;
      case OpFunction::kWrite:
        if (g.applies) s = g.value;
        break;
      case OpFunction::kDelete:
        if (g.applies) s = std::nullopt;
        break;
      case OpFunction::kCas: {
        auto& old = written[g.key];
        g.expected = rng.chance(0.6) || old.empty() ? s : V(old[rng.uniform(old.size())]);
        if (g.expected != s && g.outcome == EventType::kOk) g.outcome = EventType::kFail;
        if (g.expected != s) g.applies = false;
        if (g.applies) s = g.value;
        break;
      }
    }
    if (g.value && g.f != OpFunction::kRead) written[g.key].push_back(*g.value);
  }
  struct Timed {
    int64_t time;
    size_t seq;
    Event e;
  };
  std::vector<Timed> events;
  for (size_t i = 0; i < gen.size(); ++i) {
    const G& g = gen[i];
    Event e;
    e.process = g.process;
    e.f = g.f;
    e.key = g.key;
    e.type = EventType::kInvoke;
    e.value = g.f == OpFunction::kRead ? std::nullopt : g.value;
    e.cas_expected = g.expected;
    e.time = g.invoke;
    events.push_back({e.time, 2 * i, e});
    e.type = g.outcome;
    e.value = (g.f == OpFunction::kRead && g.outcome != EventType::kOk) ? std::nullopt : g.value;
    e.time = g.end;
    events.push_back({e.time, 2 * i + 1, e});
  }
  std::sort(events.begin(), events.end(), [](const Timed& a, const Timed& b) {
    return a.time != b.time ? a.time < b.time : a.seq < b.seq;
  });
  History h;
  for (auto& t : events) h.push_back(std::move(t.e));
  return h;
}

// Rewrites one ok read so that it returns a value overwritten before the read
// began: w_old completed before w_new was invoked, and w_new (an ok write)
// completed before the read was invoked. Never linearizable with unique values.
// Returns false when the history offers no such triple.
inline bool make_stale_read(History& h) {
  auto ops = pair_operations(h);
  if (!ops.ok()) return false;
  // The latest read first: the search must then get through nearly everything.
  for (auto it = ops->rbegin(); it != ops->rend(); ++it) {
    const Op& r = *it;
    if (r.f != OpFunction::kRead || r.outcome != EventType::kOk) continue;
    for (const Op& w_new : *ops) {
      if (w_new.key != r.key || w_new.f != OpFunction::kWrite || w_new.outcome != EventType::kOk ||
          w_new.complete_time >= r.invoke_time) {
        continue;
      }
      for (const Op& w_old : *ops) {
        if (w_old.key != r.key || w_old.f != OpFunction::kWrite ||
            w_old.outcome != EventType::kOk || w_old.complete_time >= w_new.invoke_time) {
          continue;
        }
        // Find the read's completion event and change its value.
        for (size_t i = r.invoke_event + 1; i < h.size(); ++i) {
          if (h[i].process == r.process) {
            h[i].value = w_old.value;
            return true;
          }
        }
      }
    }
  }
  return false;
}

// Brute force: tries every order of the operations that certainly happened plus
// any subset of the info ops, respecting `before(a, b)` (a must precede b when both
// are placed) and register semantics. Exponential; for histories of ~8 operations.
inline bool brute_force_orderable(const std::vector<Op>& all,
                                  const std::function<bool(const Op&, const Op&)>& before) {
  std::vector<Op> ops;
  for (const Op& op : all) {
    if (op.outcome == EventType::kFail) continue;
    if (op.outcome == EventType::kInfo && op.f == OpFunction::kRead) continue;
    ops.push_back(op);
  }
  std::vector<char> placed(ops.size(), 0);
  std::unordered_map<std::string, V> state;
  std::function<bool()> go = [&]() -> bool {
    bool all_required = true;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (!placed[i] && ops[i].outcome == EventType::kOk) all_required = false;
    }
    if (all_required) return true;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (placed[i]) continue;
      bool ready = true;
      for (size_t j = 0; j < ops.size() && ready; ++j) {
        if (!placed[j] && j != i && ops[j].outcome == EventType::kOk && before(ops[j], ops[i])) {
          ready = false;
        }
      }
      if (!ready) continue;
      const Op& op = ops[i];
      V& s = state[op.key];
      V saved = s;
      if (op.f == OpFunction::kRead && s != op.value) continue;
      if (op.f == OpFunction::kCas && s != op.cas_expected) continue;
      if (op.f == OpFunction::kWrite || op.f == OpFunction::kCas) s = op.value;
      if (op.f == OpFunction::kDelete) s = std::nullopt;
      placed[i] = 1;
      bool ok = go();
      placed[i] = 0;
      state[op.key] = saved;
      if (ok) return true;
    }
    return false;
  };
  return go();
}

inline bool brute_force_linearizable(const std::vector<Op>& ops) {
  return brute_force_orderable(
      ops, [](const Op& a, const Op& b) { return a.complete_time < b.invoke_time; });
}

inline bool brute_force_sequential(const std::vector<Op>& ops) {
  return brute_force_orderable(ops, [](const Op& a, const Op& b) {
    return a.process == b.process && a.session_index < b.session_index &&
           a.outcome != EventType::kInfo;
  });
}

}  // namespace statekv::check::testing
