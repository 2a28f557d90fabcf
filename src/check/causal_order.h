// The causal order of a unique-value history, as vector clocks.
//
// Causal order: session order (a process's operations in invoke order) plus
// reads-from (a read, or a successful cas, follows the write whose value it
// observed), closed transitively. Operations that certainly did not happen (`fail`)
// and `info` operations nobody observed are left out; an `info` write whose value
// was read certainly happened and is kept. Used by the session and causal checkers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "check/operation.h"

namespace statekv::check {

// writer_of values for observations that name no single write.
inline constexpr int32_t kInitial = -1;    // read absent (the initial state or a delete)
inline constexpr int32_t kAmbiguous = -2;  // the value was written more than once

class CausalOrder {
 public:
  explicit CausalOrder(const std::vector<Op>& ops);

  // Non-empty when the history cannot be judged causally: a value observed that
  // was never written, or a cycle in session order + reads-from.
  const std::string& violation() const { return violation_; }

  bool included(size_t op) const { return included_[op]; }
  // For an included ok read or cas: the op whose value it observed, or kInitial /
  // kAmbiguous. Meaningless for other ops.
  int32_t writer_of(size_t op) const { return writer_[op]; }
  // True when a causally precedes b (a != b).
  bool precedes(size_t a, size_t b) const {
    return a != b && clock(b)[lane_[a]] > ops_[a].session_index;
  }
  // "u is older than w": u (a writer_of value) is the initial state, or u's write
  // causally precedes w. has_deletes: absent may also come from a delete, so an
  // absent read names no write and is never called older.
  bool older(int32_t u, size_t w, bool has_deletes) const {
    if (u == kInitial) return !has_deletes && ops_[w].f != OpFunction::kDelete;
    return u >= 0 && precedes(static_cast<size_t>(u), w);
  }
  bool key_has_deletes(const std::string& key) const;

  size_t lanes() const { return lanes_; }
  size_t lane(size_t op) const { return lane_[op]; }
  // clock(op)[l]: how many of lane l's operations (by session index) are in op's
  // causal past, op itself included.
  const uint32_t* clock(size_t op) const { return &clocks_[op * lanes_]; }

 private:
  const std::vector<Op>& ops_;
  size_t lanes_ = 0;
  std::vector<uint32_t> lane_;
  std::vector<char> included_;
  std::vector<int32_t> writer_;
  std::vector<uint32_t> clocks_;          // ops x lanes: memory grows with both
  std::vector<std::string> delete_keys_;  // sorted
  std::string violation_;
};

}  // namespace statekv::check
