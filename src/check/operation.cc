#include "check/operation.h"

#include <fmt/format.h>

#include <unordered_map>

namespace statekv::check {

Result<std::vector<Op>> pair_operations(const History& history) {
  std::vector<Op> ops;
  ops.reserve(history.size() / 2 + 1);
  // process -> index in ops of its operation in flight.
  std::unordered_map<int64_t, size_t> in_flight;
  std::unordered_map<int64_t, size_t> invoked_count;
  for (size_t i = 0; i < history.size(); ++i) {
    const Event& e = history[i];
    if (e.type == EventType::kInvoke) {
      auto [it, inserted] = in_flight.try_emplace(e.process, ops.size());
      if (!inserted) {
        return Status::InvalidArgument(fmt::format(
            "event {}: process {} invokes while its operation from event {} is in flight", i + 1,
            e.process, ops[it->second].invoke_event + 1));
      }
      Op op;
      op.id = ops.size();
      op.process = e.process;
      op.f = e.f;
      op.key = e.key;
      op.value = e.f == OpFunction::kRead ? std::nullopt : e.value;
      op.cas_expected = e.cas_expected;
      op.invoke_time = e.time;
      op.invoke_event = i;
      op.node = e.node;
      op.session = e.session;
      op.session_index = invoked_count[e.process]++;
      ops.push_back(std::move(op));
      continue;
    }
    auto it = in_flight.find(e.process);
    if (it == in_flight.end()) {
      return Status::InvalidArgument(
          fmt::format("event {}: process {} completes ({}) with no "
                      "operation in flight",
                      i + 1, e.process, to_string(e.type)));
    }
    Op& op = ops[it->second];
    in_flight.erase(it);
    if (op.f != e.f || op.key != e.key) {
      return Status::InvalidArgument(
          fmt::format("event {}: completion {} {} does not match the invoke at event {} ({} {})",
                      i + 1, to_string(e.f), e.key, op.invoke_event + 1, to_string(op.f), op.key));
    }
    if (e.time < op.invoke_time) {
      return Status::InvalidArgument(
          fmt::format("event {}: completes at time {} before its invoke at time {}", i + 1, e.time,
                      op.invoke_time));
    }
    op.outcome = e.type;
    if (e.type != EventType::kInfo) op.complete_time = e.time;
    if (e.type == EventType::kOk && e.f == OpFunction::kRead) op.value = e.value;
    if (e.node >= 0) op.node = e.node;
    if (!e.session.empty()) op.session = e.session;
  }
  return ops;
}

std::string describe_value(const std::optional<std::string>& value) {
  return value ? fmt::format("\"{}\"", *value) : std::string("absent");
}

std::string describe(const Op& op) {
  std::string what;
  switch (op.f) {
    case OpFunction::kRead:
      what = op.outcome == EventType::kOk
                 ? fmt::format("read {} = {}", op.key, describe_value(op.value))
                 : fmt::format("read {}", op.key);
      break;
    case OpFunction::kWrite:
      what = fmt::format("write {} = {}", op.key, describe_value(op.value));
      break;
    case OpFunction::kCas:
      what = fmt::format("cas {} {} -> {}", op.key, describe_value(op.cas_expected),
                         describe_value(op.value));
      break;
    case OpFunction::kDelete:
      what = fmt::format("delete {}", op.key);
      break;
  }
  std::string end = op.complete_time == kNever ? "?" : std::to_string(op.complete_time);
  std::string node = op.node >= 0 ? fmt::format(" node {}", op.node) : std::string();
  return fmt::format("process {} {} [t={}..{} {}{}]", op.process, what, op.invoke_time, end,
                     to_string(op.outcome), node);
}

}  // namespace statekv::check
