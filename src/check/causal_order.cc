#include "check/causal_order.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

namespace statekv::check {
namespace {

bool produces_value(const Op& op) {
  return (op.f == OpFunction::kWrite || op.f == OpFunction::kCas) && op.value.has_value();
}

bool observes(const Op& op, const std::optional<std::string>** value) {
  if (op.outcome != EventType::kOk) return false;
  if (op.f == OpFunction::kRead) {
    *value = &op.value;
    return true;
  }
  if (op.f == OpFunction::kCas) {
    *value = &op.cas_expected;
    return true;
  }
  return false;
}

}  // namespace

CausalOrder::CausalOrder(const std::vector<Op>& ops) : ops_(ops) {
  const size_t n = ops.size();
  lane_.assign(n, 0);
  included_.assign(n, 0);
  writer_.assign(n, kAmbiguous);

  std::unordered_map<int64_t, uint32_t> lane_of;
  for (size_t i = 0; i < n; ++i) {
    auto [it, inserted] = lane_of.try_emplace(ops[i].process, lane_of.size());
    lane_[i] = it->second;
  }
  lanes_ = lane_of.size();

  // (key, value) -> the producing op, or -2 when produced twice. Failed ops never
  // happened; info ops may have.
  std::unordered_map<std::string, std::unordered_map<std::string, int32_t>> producer;
  for (size_t i = 0; i < n; ++i) {
    const Op& op = ops[i];
    if (op.f == OpFunction::kDelete && op.outcome != EventType::kFail) {
      delete_keys_.push_back(op.key);
    }
    if (op.outcome == EventType::kFail || !produces_value(op)) continue;
    auto [it, inserted] = producer[op.key].try_emplace(*op.value, static_cast<int32_t>(i));
    if (!inserted) it->second = kAmbiguous;
  }
  std::sort(delete_keys_.begin(), delete_keys_.end());
  delete_keys_.erase(std::unique(delete_keys_.begin(), delete_keys_.end()), delete_keys_.end());

  for (size_t i = 0; i < n; ++i) {
    if (ops[i].outcome == EventType::kOk) included_[i] = 1;
  }
  for (size_t i = 0; i < n; ++i) {
    const std::optional<std::string>* value = nullptr;
    if (!observes(ops[i], &value)) continue;
    if (!value->has_value()) {
      writer_[i] = kInitial;
      continue;
    }
    int32_t w = kAmbiguous;
    bool found = false;
    if (auto key_it = producer.find(ops[i].key); key_it != producer.end()) {
      if (auto it = key_it->second.find(**value); it != key_it->second.end()) {
        w = it->second;
        found = true;
      }
    }
    if (!found) {
      violation_ = fmt::format("{} observed {}, which no operation that may have happened wrote",
                               describe(ops[i]), describe_value(*value));
      return;
    }
    writer_[i] = w;
    if (w >= 0) included_[w] = 1;  // an observed info write certainly happened
  }

  // Vector clocks in a topological order of session order + reads-from (Kahn).
  std::vector<int32_t> lane_prev(n, -1), last_in_lane(lanes_, -1);
  std::vector<uint32_t> indegree(n, 0);
  std::vector<std::vector<uint32_t>> readers(n);
  for (size_t i = 0; i < n; ++i) {
    if (!included_[i]) continue;
    lane_prev[i] = last_in_lane[lane_[i]];
    last_in_lane[lane_[i]] = static_cast<int32_t>(i);
    if (lane_prev[i] >= 0) ++indegree[i];
    if (writer_[i] >= 0 && ops[i].outcome == EventType::kOk &&
        (ops[i].f == OpFunction::kRead || ops[i].f == OpFunction::kCas)) {
      readers[writer_[i]].push_back(static_cast<uint32_t>(i));
      ++indegree[i];
    }
  }
  std::vector<int32_t> lane_next(n, -1);
  for (size_t i = 0; i < n; ++i) {
    if (included_[i] && lane_prev[i] >= 0) lane_next[lane_prev[i]] = static_cast<int32_t>(i);
  }
  clocks_.assign(n * lanes_, 0);
  std::vector<uint32_t> ready;
  size_t total = 0, done = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!included_[i]) continue;
    ++total;
    if (indegree[i] == 0) ready.push_back(static_cast<uint32_t>(i));
  }
  auto merge = [&](size_t into, size_t from) {
    uint32_t* a = &clocks_[into * lanes_];
    const uint32_t* b = &clocks_[from * lanes_];
    for (size_t l = 0; l < lanes_; ++l) a[l] = std::max(a[l], b[l]);
  };
  while (!ready.empty()) {
    uint32_t i = ready.back();
    ready.pop_back();
    ++done;
    if (lane_prev[i] >= 0) merge(i, lane_prev[i]);
    const std::optional<std::string>* unused = nullptr;
    if (writer_[i] >= 0 && observes(ops[i], &unused)) merge(i, writer_[i]);
    clocks_[i * lanes_ + lane_[i]] = static_cast<uint32_t>(ops[i].session_index + 1);
    auto release = [&](uint32_t j) {
      if (--indegree[j] == 0) ready.push_back(j);
    };
    if (lane_next[i] >= 0) release(lane_next[i]);
    for (uint32_t r : readers[i]) release(r);
  }
  if (done < total) {
    const std::optional<std::string>* unused_value = nullptr;
    for (size_t i = 0; i < n; ++i) {
      if (included_[i] && indegree[i] > 0 && writer_[i] >= 0 && indegree[writer_[i]] > 0 &&
          observes(ops[i], &unused_value)) {
        violation_ = fmt::format(
            "causality has a cycle: {} observed the value of {}, which itself causally follows "
            "that read (through session order and reads-from)",
            describe(ops[i]), describe(ops[writer_[i]]));
        return;
      }
    }
    violation_ = "causality has a cycle (session order + reads-from)";
  }
}

bool CausalOrder::key_has_deletes(const std::string& key) const {
  return std::binary_search(delete_keys_.begin(), delete_keys_.end(), key);
}

}  // namespace statekv::check
