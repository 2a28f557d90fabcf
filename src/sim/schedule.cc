#include "sim/schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

namespace statekv::sim {
namespace {

constexpr SimTime kMs = 1'000'000;

std::vector<std::string_view> split_ws(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    size_t j = i;
    while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j]))) ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

Result<NodeId> parse_node(std::string_view s, size_t nodes) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) {
    return Status::InvalidArgument(fmt::format("'{}' is not a node id", s));
  }
  if (v < 1 || v > nodes) {
    return Status::InvalidArgument(fmt::format("node {} out of range 1..{}", v, nodes));
  }
  return NodeId(v);
}

Result<double> parse_probability(std::string_view s) {
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !(v >= 0 && v <= 1)) {
    return Status::InvalidArgument(fmt::format("'{}' is not a probability in [0,1]", s));
  }
  return v;
}

// "{1,2} | {3}" with arbitrary spacing.
Result<std::vector<std::vector<NodeId>>> parse_groups(std::string_view s, size_t nodes) {
  std::vector<std::vector<NodeId>> groups;
  std::vector<bool> seen(nodes + 1, false);
  size_t i = 0;
  auto skip = [&] {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  };
  while (true) {
    skip();
    if (i >= s.size() || s[i] != '{') return Status::InvalidArgument("expected '{' in partition");
    size_t close = s.find('}', i);
    if (close == std::string_view::npos) return Status::InvalidArgument("missing '}'");
    std::vector<NodeId> group;
    std::string_view body = s.substr(i + 1, close - i - 1);
    size_t start = 0;
    while (start <= body.size()) {
      size_t comma = body.find(',', start);
      if (comma == std::string_view::npos) comma = body.size();
      std::string_view item = body.substr(start, comma - start);
      while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front())))
        item.remove_prefix(1);
      while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back())))
        item.remove_suffix(1);
      if (!item.empty()) {
        Result<NodeId> n = parse_node(item, nodes);
        if (!n.ok()) return n.status();
        if (seen[n->value()]) {
          return Status::InvalidArgument(fmt::format("node {} in two groups", n->value()));
        }
        seen[n->value()] = true;
        group.push_back(*n);
      }
      start = comma + 1;
    }
    if (group.empty()) return Status::InvalidArgument("empty group in partition");
    groups.push_back(std::move(group));
    i = close + 1;
    skip();
    if (i >= s.size()) break;
    if (s[i] != '|') return Status::InvalidArgument("expected '|' between groups");
    ++i;
  }
  return groups;
}

Result<FaultAction> parse_action(std::string_view line, size_t nodes) {
  auto words = split_ws(line);
  if (words.size() < 3 || words[0] != "at") {
    return Status::InvalidArgument("expected 'at TIME ACTION ...'");
  }
  FaultAction a;
  Result<SimTime> t = parse_duration(words[1]);
  if (!t.ok()) return t.status();
  a.at = *t;
  std::string_view verb = words[2];
  auto want_args = [&](size_t n) -> Status {
    if (words.size() != 3 + n) {
      return Status::InvalidArgument(fmt::format("'{}' takes {} argument(s)", verb, n));
    }
    return Status::OK();
  };
  if (verb == "partition") {
    // The rest of the line after the verb, spaces and all.
    size_t pos = line.find("partition") + std::string_view("partition").size();
    auto groups = parse_groups(line.substr(pos), nodes);
    if (!groups.ok()) return groups.status();
    a.kind = FaultAction::Kind::kPartition;
    a.groups = std::move(groups).value();
  } else if (verb == "oneway") {
    if (words.size() != 7 || words[4] != "->") {
      return Status::InvalidArgument("expected 'oneway A -> B drop|pass'");
    }
    auto from = parse_node(words[3], nodes);
    if (!from.ok()) return from.status();
    auto to = parse_node(words[5], nodes);
    if (!to.ok()) return to.status();
    if (words[6] == "drop") {
      a.kind = FaultAction::Kind::kOnewayDrop;
    } else if (words[6] == "pass") {
      a.kind = FaultAction::Kind::kOnewayPass;
    } else {
      return Status::InvalidArgument("oneway ends with 'drop' or 'pass'");
    }
    a.node = *from;
    a.to = *to;
  } else if (verb == "heal") {
    if (Status s = want_args(0); !s.ok()) return s;
    a.kind = FaultAction::Kind::kHeal;
  } else if (verb == "crash" || verb == "restart") {
    if (Status s = want_args(1); !s.ok()) return s;
    auto n = parse_node(words[3], nodes);
    if (!n.ok()) return n.status();
    a.kind = verb == "crash" ? FaultAction::Kind::kCrash : FaultAction::Kind::kRestart;
    a.node = *n;
  } else if (verb == "loss" || verb == "dup" || verb == "reorder") {
    if (Status s = want_args(1); !s.ok()) return s;
    auto p = parse_probability(words[3]);
    if (!p.ok()) return p.status();
    a.kind = verb == "loss"  ? FaultAction::Kind::kLoss
             : verb == "dup" ? FaultAction::Kind::kDuplicate
                             : FaultAction::Kind::kReorder;
    a.probability = *p;
  } else {
    return Status::InvalidArgument(fmt::format("unknown action '{}'", verb));
  }
  return a;
}

std::string node_list(const std::vector<NodeId>& group) {
  std::string out = "{";
  for (size_t i = 0; i < group.size(); ++i) {
    if (i) out += ",";
    out += std::to_string(group[i].value());
  }
  return out + "}";
}

}  // namespace

Result<SimTime> parse_duration(std::string_view text) {
  struct Unit {
    std::string_view suffix;
    double ns;
  };
  // "ms" and "us" and "ns" before "s", since "s" is a suffix of each.
  static constexpr Unit kUnits[] = {{"ms", 1e6}, {"us", 1e3}, {"ns", 1}, {"s", 1e9}};
  for (const Unit& u : kUnits) {
    if (text.size() > u.suffix.size() && text.ends_with(u.suffix)) {
      std::string_view num = text.substr(0, text.size() - u.suffix.size());
      double v = 0;
      auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), v);
      if (ec != std::errc() || p != num.data() + num.size() || v < 0 || v > 1e6 * 1e9 / u.ns) {
        break;
      }
      return static_cast<SimTime>(std::llround(v * u.ns));
    }
  }
  return Status::InvalidArgument(
      fmt::format("'{}' is not a duration (a number with ns, us, ms or s)", text));
}

std::string format_duration(SimTime t) {
  if (t % kMs == 0) return fmt::format("{}ms", t / kMs);
  if (t % 1000 == 0) return fmt::format("{}us", t / 1000);
  return fmt::format("{}ns", t);
}

std::string FaultSet::to_string() const {
  std::string out;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!out.empty()) out += ",";
    out += name;
  };
  add(loss, "loss");
  add(duplicate, "dup");
  add(reorder, "reorder");
  add(delay, "delay");
  add(partition, "partition");
  add(oneway, "oneway");
  add(crash, "crash");
  add(clock, "clock");
  return out.empty() ? "none" : out;
}

Result<FaultSet> parse_fault_set(std::string_view list) {
  FaultSet f;
  if (list == "none") return f;
  if (list == "all") return FaultSet{true, true, true, true, true, true, true, true};
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    std::string_view w = list.substr(start, comma - start);
    if (w == "loss")
      f.loss = true;
    else if (w == "dup")
      f.duplicate = true;
    else if (w == "reorder")
      f.reorder = true;
    else if (w == "delay")
      f.delay = true;
    else if (w == "partition")
      f.partition = true;
    else if (w == "oneway")
      f.oneway = true;
    else if (w == "crash")
      f.crash = true;
    else if (w == "clock")
      f.clock = true;
    else {
      return Status::InvalidArgument(fmt::format(
          "unknown fault '{}' (none, all, loss, dup, reorder, delay, partition, oneway, crash, "
          "clock)",
          w));
    }
    start = comma + 1;
  }
  return f;
}

Result<FaultSchedule> parse_schedule(std::string_view text, size_t nodes) {
  FaultSchedule schedule;
  size_t line_no = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    if (split_ws(line).empty()) continue;
    Result<FaultAction> a = parse_action(line, nodes);
    if (!a.ok()) {
      return Status::InvalidArgument(fmt::format("line {}: {}", line_no, a.status().message()));
    }
    schedule.actions.push_back(std::move(a).value());
  }
  std::stable_sort(schedule.actions.begin(), schedule.actions.end(),
                   [](const FaultAction& a, const FaultAction& b) { return a.at < b.at; });
  return schedule;
}

std::string FaultSchedule::to_text() const {
  std::string out;
  for (const FaultAction& a : actions) {
    out += fmt::format("at {} ", format_duration(a.at));
    switch (a.kind) {
      case FaultAction::Kind::kPartition:
        out += "partition";
        for (size_t g = 0; g < a.groups.size(); ++g) {
          out += g ? " | " : " ";
          out += node_list(a.groups[g]);
        }
        break;
      case FaultAction::Kind::kOnewayDrop:
        out += fmt::format("oneway {} -> {} drop", a.node.value(), a.to.value());
        break;
      case FaultAction::Kind::kOnewayPass:
        out += fmt::format("oneway {} -> {} pass", a.node.value(), a.to.value());
        break;
      case FaultAction::Kind::kHeal:
        out += "heal";
        break;
      case FaultAction::Kind::kCrash:
        out += fmt::format("crash {}", a.node.value());
        break;
      case FaultAction::Kind::kRestart:
        out += fmt::format("restart {}", a.node.value());
        break;
      case FaultAction::Kind::kLoss:
        out += fmt::format("loss {}", a.probability);
        break;
      case FaultAction::Kind::kDuplicate:
        out += fmt::format("dup {}", a.probability);
        break;
      case FaultAction::Kind::kReorder:
        out += fmt::format("reorder {}", a.probability);
        break;
    }
    out += "\n";
  }
  return out;
}

FaultSchedule random_schedule(Random& rng, size_t nodes, const FaultSet& faults, SimTime horizon) {
  using K = FaultAction::Kind;
  std::vector<K> kinds;
  if (faults.loss) kinds.push_back(K::kLoss);
  if (faults.duplicate) kinds.push_back(K::kDuplicate);
  if (faults.reorder) kinds.push_back(K::kReorder);
  if (faults.partition && nodes > 1) kinds.push_back(K::kPartition);
  if (faults.oneway && nodes > 1) kinds.push_back(K::kOnewayDrop);
  if (faults.crash && nodes >= 3) kinds.push_back(K::kCrash);
  FaultSchedule s;
  if (kinds.empty()) return s;
  const size_t max_down = (nodes - 1) / 2;
  std::vector<SimTime> down_until(nodes + 1, -1);
  auto random_probability = [&rng] {
    static constexpr double kLevels[] = {0, 0.01, 0.05, 0.1, 0.2, 0.3};
    return kLevels[rng.uniform(std::size(kLevels))];
  };
  SimTime t = 0;
  while (true) {
    t += static_cast<SimTime>(rng.range(20 * kMs, 300 * kMs));
    if (t >= horizon) break;
    FaultAction a;
    a.at = t;
    a.kind = kinds[rng.uniform(kinds.size())];
    switch (a.kind) {
      case K::kLoss:
      case K::kDuplicate:
      case K::kReorder:
        a.probability = random_probability();
        break;
      case K::kPartition: {
        // Two non-empty groups; sometimes followed later by a heal.
        std::vector<NodeId> left, right;
        const uint64_t mask = rng.range(1, (uint64_t{1} << nodes) - 2);
        for (size_t n = 0; n < nodes; ++n) {
          ((mask >> n) & 1 ? left : right).push_back(NodeId(n + 1));
        }
        a.groups = {left, right};
        break;
      }
      case K::kOnewayDrop:
        a.node = NodeId(rng.range(1, nodes));
        a.to = NodeId(rng.range(1, nodes - 1));
        if (a.to >= a.node) a.to = a.to.next();
        break;
      case K::kCrash: {
        size_t down = 0;
        std::vector<size_t> up;
        for (size_t n = 1; n <= nodes; ++n) {
          if (down_until[n] > t)
            ++down;
          else
            up.push_back(n);
        }
        if (down >= max_down || up.empty()) continue;
        const size_t victim = up[rng.uniform(up.size())];
        a.node = NodeId(victim);
        const SimTime back =
            std::min(t + static_cast<SimTime>(rng.range(100 * kMs, 1500 * kMs)), horizon);
        down_until[victim] = back;
        FaultAction restart;
        restart.at = back;
        restart.kind = K::kRestart;
        restart.node = a.node;
        s.actions.push_back(restart);
        break;
      }
      default:
        break;
    }
    s.actions.push_back(std::move(a));
    // Partitions do not last forever: heal after a while (another partition may come first).
    if ((s.actions.back().kind == K::kPartition || s.actions.back().kind == K::kOnewayDrop) &&
        rng.chance(0.7)) {
      FaultAction heal;
      heal.at = std::min(t + static_cast<SimTime>(rng.range(100 * kMs, 2000 * kMs)), horizon);
      heal.kind = K::kHeal;
      s.actions.push_back(heal);
    }
  }
  // The end of the fault window: everything back to normal.
  for (K k : {K::kHeal, K::kLoss, K::kDuplicate, K::kReorder}) {
    FaultAction a;
    a.at = horizon;
    a.kind = k;
    s.actions.push_back(a);
  }
  std::stable_sort(s.actions.begin(), s.actions.end(),
                   [](const FaultAction& a, const FaultAction& b) { return a.at < b.at; });
  return s;
}

}  // namespace statekv::sim
