// One key's operations, prepared for a register search (linearizable, sequential).
//
// Values are interned to small integers (0 = absent). Operations that cannot
// matter are removed first: `fail` ops (they never happened), `info` reads (they
// constrain nothing), and `info` writes, cas and deletes whose resulting value no
// operation ever observes (dropping them preserves every legal order: the value
// they install must be overwritten before anyone looks). What remains is split into
// operations that certainly happened (`required`) and info operations that may be
// applied or not (`optional`).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "check/checkers.h"
#include "check/operation.h"

namespace statekv::check {

inline constexpr int32_t kAbsent = 0;  // value id of "no value"

struct RegOp {
  uint32_t op = 0;  // index in the ops vector
  OpFunction f = OpFunction::kRead;
  int32_t value = kAbsent;  // read: value read; write, cas: new value; delete: kAbsent
  int32_t expected = -1;    // cas: expected value id
  int64_t invoke = 0;
  // The latest instant the op can take effect: its completion, or earlier when a
  // read of its (unique) value completed earlier. kNever for optional ops.
  int64_t deadline = kNever;
  int64_t process = 0;
  bool dead = false;  // changes the value to one nobody observes

  bool is_observer() const { return f == OpFunction::kRead || f == OpFunction::kCas; }
  int32_t observes() const { return f == OpFunction::kRead ? value : expected; }
  bool changes_state() const { return f != OpFunction::kRead; }
};

struct RegisterKey {
  std::string key;
  std::vector<RegOp> required;  // sorted by invoke, then deadline
  std::vector<RegOp> optional;  // sorted by invoke
  // Per value id: how many kept ops produce it (for absent, +1 for the initial
  // state). A value with exactly one producer is unique: once the register leaves
  // it, it never comes back.
  std::vector<int32_t> producers;
  // Per value id: the required op producing it if it is unique, else -1 (index in
  // `required`); for absent with no deletes, -1 as well (the initial state).
  std::vector<int32_t> unique_producer;
  std::vector<std::optional<std::string>> values;  // id -> value, for explanations
  int64_t ops_on_key = 0;                          // before anything was dropped
};

struct PreparedKey {
  RegisterKey reg;
  std::string violation;  // non-empty: the key is certainly invalid, and why
};

// key_ops: indices into ops of one key's operations, in invoke order. When
// real_time is set (linearizability), a producer's deadline is tightened to the
// earliest completion of a read of its unique value, and a read that completed
// before its value's only write was invoked is reported at once.
PreparedKey prepare_register_key(const std::vector<Op>& ops, const std::vector<uint32_t>& key_ops,
                                 bool real_time);

// Groups op indices by key, each group in invoke order, groups in order of first use.
std::vector<std::vector<uint32_t>> ops_by_key(const std::vector<Op>& ops);

// Runs Search over every key's prepared register; the first key that fails
// decides the result. Search is built from (ops, reg) and its run(stats) returns
// a violation text, empty when the key holds; a search that tracks concurrency
// reports it through max_in_flight().
template <typename Search>
CheckResult check_each_register_key(const std::vector<Op>& ops, bool real_time) {
  CheckResult result;
  result.stats.operations = static_cast<int64_t>(ops.size());
  auto groups = ops_by_key(ops);
  result.stats.keys = static_cast<int64_t>(groups.size());
  for (const auto& group : groups) {
    PreparedKey prepared = prepare_register_key(ops, group, real_time);
    std::string violation = std::move(prepared.violation);
    if (violation.empty()) {
      Search search(ops, prepared.reg);
      violation = search.run(result.stats);
      if constexpr (requires { search.max_in_flight(); }) {
        result.stats.max_in_flight = std::max(result.stats.max_in_flight, search.max_in_flight());
      }
    }
    if (!violation.empty()) {
      result.valid = false;
      result.explanation = std::move(violation);
      return result;
    }
  }
  return result;
}

}  // namespace statekv::check
