// Operations: a history's invoke events paired with their completions.
//
// Every checker works on operations rather than raw events. Pairing follows the
// history's per-process order: a process has at most one operation in flight, and
// its next ok/fail/info event completes it. An invoke that never completes is an
// `info` operation (it may or may not have happened), exactly like a timeout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "check/history.h"
#include "core/status.h"

namespace statekv::check {

// The completion time of an operation that never completed (info): it may take
// effect at any later instant.
inline constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

struct Op {
  size_t id = 0;  // position in the vector pair_operations returns (invoke order)
  int64_t process = 0;
  OpFunction f = OpFunction::kRead;
  EventType outcome = EventType::kInfo;  // kOk, kFail or kInfo
  std::string key;
  // read: the value read (ok reads only; nullopt = absent); write: the value
  // written; cas: the new value; delete: nullopt.
  std::optional<std::string> value;
  std::optional<std::string> cas_expected;  // cas only
  int64_t invoke_time = 0;
  int64_t complete_time = kNever;  // kNever unless the outcome is kOk or kFail
  size_t invoke_event = 0;         // index of the invoke in the history
  int64_t node = -1;               // from the completion, else the invoke
  std::string session;             // likewise
  size_t session_index = 0;        // how many earlier operations this process invoked
};

// Pairs events into operations, in invoke order. InvalidArgument names the event
// (1-based, counting events, not blank lines) when the history is inconsistent:
// a completion with no operation in flight, a second invoke while one is in flight,
// or a completion whose f or key differs from its invoke.
Result<std::vector<Op>> pair_operations(const History& history);

// "process 3 read k7 = \"v42\" [1300..2100 ok]" — for explanations.
std::string describe(const Op& op);
// "\"v42\"" or "absent".
std::string describe_value(const std::optional<std::string>& value);

}  // namespace statekv::check
