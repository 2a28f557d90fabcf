#include "check/register_key.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

namespace statekv::check {

std::vector<std::vector<uint32_t>> ops_by_key(const std::vector<Op>& ops) {
  std::unordered_map<std::string_view, size_t> index;
  std::vector<std::vector<uint32_t>> groups;
  for (uint32_t i = 0; i < ops.size(); ++i) {
    auto [it, inserted] = index.try_emplace(ops[i].key, groups.size());
    if (inserted) groups.emplace_back();
    groups[it->second].push_back(i);
  }
  return groups;
}

PreparedKey prepare_register_key(const std::vector<Op>& ops, const std::vector<uint32_t>& key_ops,
                                 bool real_time) {
  PreparedKey out;
  RegisterKey& reg = out.reg;
  reg.key = ops[key_ops.front()].key;
  reg.ops_on_key = static_cast<int64_t>(key_ops.size());
  reg.values.push_back(std::nullopt);
  std::unordered_map<std::string_view, int32_t> ids;
  auto intern = [&](const std::optional<std::string>& v) -> int32_t {
    if (!v) return kAbsent;
    auto [it, inserted] = ids.try_emplace(*v, static_cast<int32_t>(reg.values.size()));
    if (inserted) reg.values.push_back(v);
    return it->second;
  };

  std::vector<RegOp> ok_ops, info_ops;
  std::unordered_map<int32_t, uint32_t> failed_producer;  // value -> a failed op writing it
  for (uint32_t i : key_ops) {
    const Op& op = ops[i];
    RegOp r;
    r.op = i;
    r.f = op.f;
    r.process = op.process;
    r.invoke = op.invoke_time;
    r.deadline = op.complete_time;
    r.value = op.f == OpFunction::kDelete ? kAbsent : intern(op.value);
    if (op.f == OpFunction::kCas) r.expected = intern(op.cas_expected);
    if (op.outcome == EventType::kFail) {
      if (op.f == OpFunction::kWrite || op.f == OpFunction::kCas) failed_producer[r.value] = i;
      continue;
    }
    if (op.outcome == EventType::kOk) {
      ok_ops.push_back(r);
    } else if (op.f != OpFunction::kRead) {
      info_ops.push_back(r);
    }
  }

  const size_t n_values = reg.values.size();
  std::vector<char> observed_ok(n_values, 0), observed(n_values, 0);
  for (const RegOp& r : ok_ops) {
    if (r.is_observer()) observed_ok[r.observes()] = observed[r.observes()] = 1;
  }
  // Keep an info op only if someone may observe what it installs; a kept info cas
  // observes its expected value in turn, so iterate to a fixpoint.
  std::vector<char> kept(info_ops.size(), 0);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = 0; i < info_ops.size(); ++i) {
      if (kept[i] || !observed[info_ops[i].value]) continue;
      kept[i] = 1;
      changed = true;
      if (info_ops[i].f == OpFunction::kCas) observed[info_ops[i].expected] = 1;
    }
  }

  reg.producers.assign(n_values, 0);
  reg.producers[kAbsent] = 1;  // the initial state
  for (const RegOp& r : ok_ops) {
    if (r.changes_state()) ++reg.producers[r.value];
  }
  for (size_t i = 0; i < info_ops.size(); ++i) {
    if (kept[i]) ++reg.producers[info_ops[i].value];
  }

  // A read (or cas) of a value nothing wrote can never be ordered.
  for (const RegOp& r : ok_ops) {
    if (!r.is_observer() || reg.producers[r.observes()] > 0) continue;
    const Op& op = ops[r.op];
    auto failed = failed_producer.find(r.observes());
    std::string why = failed != failed_producer.end()
                          ? fmt::format("the only write of it failed (so never happened): {}",
                                        describe(ops[failed->second]))
                          : std::string("no operation ever wrote it to this key");
    out.violation = fmt::format("key {}: {} observed {}, but {}", reg.key, describe(op),
                                describe_value(reg.values[r.observes()]), why);
    return out;
  }

  for (RegOp& r : ok_ops) reg.required.push_back(r);
  for (size_t i = 0; i < info_ops.size(); ++i) {
    if (!kept[i]) continue;
    RegOp r = info_ops[i];
    r.deadline = kNever;
    // An info op whose unique value an ok op observed certainly happened.
    if (r.value != kAbsent && reg.producers[r.value] == 1 && observed_ok[r.value]) {
      reg.required.push_back(r);
    } else {
      reg.optional.push_back(r);
    }
  }
  for (RegOp& r : reg.required) r.dead = r.changes_state() && !observed[r.value];
  for (RegOp& r : reg.optional) r.dead = !observed[r.value];

  if (real_time) {
    // A write of a unique value must take effect before any read of it completes.
    std::vector<int64_t> first_observer_end(n_values, kNever);
    std::vector<uint32_t> first_observer(n_values, 0);
    for (const RegOp& r : reg.required) {
      if (r.is_observer() && r.deadline < first_observer_end[r.observes()]) {
        first_observer_end[r.observes()] = r.deadline;
        first_observer[r.observes()] = r.op;
      }
    }
    for (RegOp& r : reg.required) {
      if (!r.changes_state() || r.value == kAbsent || reg.producers[r.value] != 1) continue;
      if (first_observer_end[r.value] < r.deadline) r.deadline = first_observer_end[r.value];
      if (r.deadline < r.invoke) {
        out.violation = fmt::format(
            "key {}: {} observed {} before it was written: it completed before {} was invoked",
            reg.key, describe(ops[first_observer[r.value]]), describe_value(reg.values[r.value]),
            describe(ops[r.op]));
        return out;
      }
    }
  }

  auto by_invoke = [](const RegOp& a, const RegOp& b) {
    if (a.invoke != b.invoke) return a.invoke < b.invoke;
    if (a.deadline != b.deadline) return a.deadline < b.deadline;
    return a.op < b.op;
  };
  std::sort(reg.required.begin(), reg.required.end(), by_invoke);
  std::sort(reg.optional.begin(), reg.optional.end(), by_invoke);
  reg.unique_producer.assign(n_values, -1);
  for (size_t i = 0; i < reg.required.size(); ++i) {
    const RegOp& r = reg.required[i];
    if (r.changes_state() && reg.producers[r.value] == 1) {
      reg.unique_producer[r.value] = static_cast<int32_t>(i);
    }
  }
  return out;
}

}  // namespace statekv::check
