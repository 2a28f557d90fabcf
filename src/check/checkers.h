// Consistency checkers: each judges a history against one model and explains a
// violation in a few human-readable lines (the key, the operations, and why).
//
// All checkers are pure functions of the history: no I/O, no threads, safe to
// call concurrently on different histories. They assume what statekv's clients
// guarantee: every written value is unique per key (a read then names the write it
// saw). Checkers that depend on this say so; see docs/checkers.md for the exact
// guarantee, algorithm and limits of each.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "check/history.h"
#include "check/operation.h"
#include "core/status.h"

namespace statekv::check {

struct CheckStats {
  int64_t operations = 0;  // operations judged (after pairing)
  int64_t keys = 0;        // distinct keys
  int64_t explored = 0;    // search configurations visited (search-based models)
  int64_t segments = 0;    // independent per-key segments (linearizable)
  // linearizable: widest window of ops searched at once (in flight + linearized
  // ahead); sequential: most processes on one key.
  int64_t max_in_flight = 0;
  std::string to_string() const;
};

struct CheckResult {
  bool valid = true;
  std::string explanation;  // empty when valid
  CheckStats stats;
};

// Linearizability of a set of registers, checked per key (linearizability is
// compositional). Per key: operations are sorted by invoke and searched depth
// first Wing–Gong/Lowe style until the first full order (just-in-time
// linearization: an operation may go next only if no pending operation completed
// before it was invoked), memoizing (linearized set, register value, info ops
// applied), skipping a configuration that applied more info ops than a visited one
// that is otherwise equal. The linearized set is stored as (prefix length, the few
// linearized ops past it). An info op is applied only when it changes the value
// and the very next op observes it; of identical pending ops only the one with the
// earliest deadline is tried.
// Pruning from unique values: a read of v can only go while the register holds v;
// a write of v must be linearized before any read of v completes; the register may
// not leave v while a read of v is pending; a pending read that is legal, and a
// write nobody reads, are applied without branching. `fail` ops never happened;
// `info` ops may take effect at any instant after their invoke, or never.
// Time O(C·W) per key, where W is the number in flight and C the configurations
// visited — linear in the operations for ordinary histories, exponential in W in
// the worst case (a linearizability search is NP-complete in general).
CheckResult check_linearizable(const std::vector<Op>& ops);

// Sequential consistency, per key: one total order of each key's operations that
// respects every process's own order (not real time) and the register's semantics.
// Searched like check_linearizable with (position in each process, register value,
// info ops applied) as the configuration. Per key only: SC is not compositional, so
// a history can pass this and still have no single order across keys.
CheckResult check_sequential(const std::vector<Op>& ops);

// Session guarantees (Terry et al.), per process and per key, on unique-value
// histories. "u is older than v" means u's write causally precedes v's write
// (session order plus reads-from, transitively), or u is the initial absent value.
//   read-your-writes: after writing v, the process never reads a value older than v.
//   monotonic-reads: after reading v, the process never reads a value older than v.
//   monotonic-writes: if p wrote v1 then v2, a process that has read v2 never
//     afterwards reads v1 or a value older than v1.
//   writes-follow-reads: if p read v1 then wrote v2, a process that has read v2
//     never afterwards reads v1 or a value older than v1.
CheckResult check_read_your_writes(const std::vector<Op>& ops);
CheckResult check_monotonic_reads(const std::vector<Op>& ops);
CheckResult check_monotonic_writes(const std::vector<Op>& ops);
CheckResult check_writes_follow_reads(const std::vector<Op>& ops);
// All four; the explanation names the first guarantee broken.
CheckResult check_session(const std::vector<Op>& ops);

// Causal consistency ("causal visibility", for unique-value histories): the causal
// order is session order plus reads-from (a read follows the write it read), closed
// transitively, and must be acyclic; no read may return a value overwritten by a
// write in its own causal past (its write causally precedes a write to the same key
// that causally precedes the read), nor absent once a write of its key is in its
// causal past. Checked across keys with vector clocks.
CheckResult check_causal(const std::vector<Op>& ops);

// Convergence: the final reads agree per key across nodes. Final reads are the ok
// reads with session "final" if there are any; otherwise the last ok read (by
// completion time) of each key by each node (reads carrying a node field).
CheckResult check_convergence(const std::vector<Op>& ops);

// Model names accepted by run_model, with a one-line description each.
struct ModelInfo {
  std::string_view name;
  std::string_view description;
};
const std::vector<ModelInfo>& models();

// Pairs the history's events and runs the named model. InvalidArgument for an
// unknown model or an inconsistent history (see pair_operations).
Result<CheckResult> run_model(std::string_view model, const History& history);

}  // namespace statekv::check
