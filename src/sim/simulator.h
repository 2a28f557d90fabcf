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
// clock (what its protocol sees through Env::now) is skewed. A client whose
// operation gets no answer within client_timeout records `info` (may have
// happened) and continues as a new process, as in Jepsen.
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
  SimTime client_timeout = 500'000'000;  // 500ms
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
