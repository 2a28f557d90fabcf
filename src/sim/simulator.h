// The deterministic simulator: a whole replica group and its clients in one
// thread, driven by one seed.
//
// run_simulation() builds N nodes of a registered protocol, a simulated network
// (network.h), a simulated disk per node (disk.h), a clock per node with its own
// offset and drift, and a population of clients that each run one operation at a
// time (workload.h). Faults follow a schedule (schedule.h): random from the seed
// or written by hand. Everything random is drawn from one Random seeded with
// SimOptions::seed and forked once per component, and all events run from one
// queue ordered by (time, sequence number), so the same seed and options give
// the same history byte for byte.
//
// The recorded history (check/history.h) uses true simulated time; a node's own
// clock (what its protocol sees through Env::now) is skewed.
//
// Clients behave like statekv's real client (net/client.h). An operation is one
// invoke in the history however many attempts it takes. An attempt refused as
// not served (ClientResponse::not_served: not the leader, no leader yet, lost
// office; or the node is down, so the connection is refused) certainly did not
// happen, so the client tries again: at once at the node the refusal names as
// leader, or after a short backoff at another node (or the named one, if it
// named itself), until retry_deadline has passed since the invoke; then the
// operation is `fail`. Any other answer completes it: `ok`, or `fail` for a
// definite refusal such as a cas whose expectation did not hold. An attempt
// with no answer within client_timeout records `info` (may have happened) and
// is never retried; the client continues as a new process, as in Jepsen. The
// next operation goes to the node that last served or was named as leader
// (three times in four; otherwise to a random node, so that followers keep
// receiving requests they must refuse). Every choice is drawn from the seed.
// Each client keeps the session token the nodes hand back with ok answers
// (ClientResponse::session) and sends it with every request; the history's
// `level` field holds the level of every read below linearizable.
//
// Not thread-safe; independent runs may go on different threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "check/history.h"
#include "core/status.h"
#include "sim/registry.h"
#include "sim/schedule.h"
#include "sim/workload.h"

namespace statekv::sim {

struct SimOptions {
  uint64_t seed = 1;
  size_t nodes = 3;
  size_t clients = 4;
  size_t ops = 200;  // operations invoked in total over all clients
  WorkloadOptions workload;
  FaultSet faults;
  // A hand-written schedule replaces the random one (the other enabled faults,
  // such as clock skew and long delays, still come from the seed).
  std::optional<FaultSchedule> schedule;
  // How long a client waits for the answer to one attempt before it records
  // `info` (the operation may have happened) and moves on.
  SimTime client_timeout = 500'000'000;  // 500ms
  // How long after its invoke an operation whose attempts are refused as not
  // served is retried (the next attempt must start within it); then `fail`.
  SimTime retry_deadline = 1'000'000'000;  // 1s
  // The mean pause before a retry that follows no fresh hint (drawn from
  // [backoff/2, 3*backoff/2)).
  SimTime retry_backoff = 20'000'000;  // 20ms, as net/client.cc
  // Simulated time after which the run stops; operations still open become `info`.
  SimTime time_limit = 300'000'000'000;  // 300s
};

struct SimResult {
  check::History history;
  uint64_t history_hash = 0;  // history_hash() of `history`
  uint64_t events = 0;        // simulator events executed
  double wall_seconds = 0;
  // CPU time of the simulating thread: the fair measure on a shared machine.
  double cpu_seconds = 0;
  SimTime simulated_time = 0;
  size_t ok = 0, fail = 0, info = 0;  // completions by type
  size_t attempts = 0;                // requests sent to nodes, retries included
  size_t refusals = 0;                // attempts refused as not served (then retried or failed)
  // ok / (ok + fail + info): the fraction of completed operations that
  // succeeded (0 when none completed). judge.h sets a floor on it.
  double ok_fraction() const {
    const size_t done = ok + fail + info;
    return done == 0 ? 0.0 : static_cast<double>(ok) / static_cast<double>(done);
  }
  size_t crashes = 0, torn_records = 0, messages_sent = 0, messages_dropped = 0;
  // Every parameter derived from the seed, one per line: printed so a run can be
  // understood and replayed (`statekv sim` shows it on failure).
  std::string parameters;
  FaultSchedule schedule;  // the schedule that ran
};

// Runs one simulation to completion. An error status means the run itself broke
// (a message that does not survive the codec, bad options), not that the
// history is wrong: judging the history is the caller's job.
Result<SimResult> run_simulation(const ProtocolEntry& protocol, const SimOptions& options);

}  // namespace statekv::sim
