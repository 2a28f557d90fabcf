#include "check/generate.h"

#include <algorithm>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace statekv::check {
namespace {

struct GenOp {
  int64_t process = 0;
  OpFunction f = OpFunction::kRead;
  std::string key;
  int64_t invoke = 0, point = 0, end = 0;  // point: when it takes effect
  EventType outcome = EventType::kOk;
  bool applies = true;  // an info op: whether it took effect at `point`
  std::optional<std::string> value, expected;
};

}  // namespace

GeneratedHistory generate_etcd_register(const EtcdGenOptions& o, Random& rng) {
  const int clients = std::max(1, o.clients);
  const int values = std::max(2, o.values);
  const std::string last = std::to_string(values - 1);
  auto draw_value = [&](bool restricted) {
    return std::to_string(rng.uniform(static_cast<uint64_t>(restricted ? values - 1 : values)));
  };

  std::vector<int64_t> cursor(clients, 0), process(clients);
  for (int c = 0; c < clients; ++c) process[c] = c;
  std::vector<GenOp> gen;
  gen.reserve(o.ops);
  for (int i = 0; i < o.ops; ++i) {
    const int c = static_cast<int>(std::min_element(cursor.begin(), cursor.end()) - cursor.begin());
    GenOp g;
    g.process = process[c];
    g.key = "k" + std::to_string(rng.uniform(static_cast<uint64_t>(std::max(1, o.keys))));
    g.invoke = cursor[c] + static_cast<int64_t>(rng.range(1, std::max<int64_t>(1, o.max_gap)));
    const double x = rng.unit();
    g.f = x < o.p_read               ? OpFunction::kRead
          : x < o.p_read + o.p_write ? OpFunction::kWrite
                                     : OpFunction::kCas;
    const bool info = rng.chance(o.p_info);
    if (info) {
      g.outcome = EventType::kInfo;
      g.end = g.invoke + o.timeout;
      // A timed-out op may still take effect, even after the client gave up.
      g.applies = rng.chance(0.5);
      g.point = g.invoke + static_cast<int64_t>(rng.uniform(static_cast<uint64_t>(2 * o.timeout)));
      // Jepsen's convention: the client continues as a new process.
      process[c] += clients;
    } else {
      g.end = g.invoke + static_cast<int64_t>(rng.range(1, std::max<int64_t>(1, o.latency)));
      g.point =
          g.invoke + static_cast<int64_t>(rng.uniform(static_cast<uint64_t>(g.end - g.invoke + 1)));
    }
    if (g.f != OpFunction::kRead) {
      // Planting: the last value is written only early on, and never by an op
      // that may take effect at an unknown later instant.
      const bool restricted = o.plant_violation && (info || i >= o.ops / 3);
      g.value = draw_value(restricted);
      if (g.f == OpFunction::kCas) g.expected = draw_value(false);
    }
    cursor[c] = g.end;
    gen.push_back(std::move(g));
  }

  // Run the register: every op that applies takes effect at its point.
  std::vector<size_t> order(gen.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return gen[a].point < gen[b].point; });
  std::unordered_map<std::string, std::optional<std::string>> state;
  for (size_t i : order) {
    GenOp& g = gen[i];
    auto& s = state[g.key];
    switch (g.f) {
      case OpFunction::kRead:
        g.value = g.outcome == EventType::kOk ? s : std::nullopt;
        break;
      case OpFunction::kWrite:
        if (g.applies) s = g.value;
        break;
      case OpFunction::kCas:
        if (s != g.expected) {
          g.applies = false;
          if (g.outcome == EventType::kOk) g.outcome = EventType::kFail;
        }
        if (g.applies) s = g.value;
        break;
      case OpFunction::kDelete:
        break;
    }
  }

  GeneratedHistory out;
  if (o.plant_violation) {
    // The last instant any op that could install `last` completed, per key.
    std::unordered_map<std::string, int64_t> last_written;
    for (const GenOp& g : gen) {
      if (g.f != OpFunction::kRead && g.value == last) {
        auto& t = last_written[g.key];
        t = std::max(t, g.end);
      }
    }
    // The latest ok read that an ok overwrite separates from every writer of `last`.
    for (auto it = gen.rbegin(); it != gen.rend() && !out.planted; ++it) {
      GenOp& r = *it;
      if (r.f != OpFunction::kRead || r.outcome != EventType::kOk) continue;
      auto lw = last_written.find(r.key);
      if (lw == last_written.end()) continue;
      for (const GenOp& w : gen) {
        if (w.key == r.key && w.f != OpFunction::kRead && w.outcome == EventType::kOk &&
            w.value != last && w.invoke > lw->second && w.end < r.invoke) {
          r.value = last;
          out.planted = true;
          break;
        }
      }
    }
  }

  struct Timed {
    int64_t time;
    size_t seq;
    Event e;
  };
  std::vector<Timed> events;
  events.reserve(2 * gen.size());
  for (size_t i = 0; i < gen.size(); ++i) {
    const GenOp& g = gen[i];
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
    e.value = g.value;
    e.time = g.end;
    events.push_back({e.time, 2 * i + 1, e});
  }
  std::sort(events.begin(), events.end(), [](const Timed& a, const Timed& b) {
    return a.time != b.time ? a.time < b.time : a.seq < b.seq;
  });
  out.history.reserve(events.size());
  for (auto& t : events) out.history.push_back(std::move(t.e));
  return out;
}

}  // namespace statekv::check
