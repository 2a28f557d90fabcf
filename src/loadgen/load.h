// A closed-loop write load against any store, measured the same way for each.
//
// The harness knows nothing about the store: it is handed a ConnectionFactory
// and drives one blocking Connection per client thread. Because statekv and its
// peers (etcd, ...) are driven by this same code, with the same clock, key
// choice, value size and percentile definition, their figures can be compared.
//
// Model: `clients` threads; each opens its own connection, then all of them
// write for `warmup_seconds` (not measured), then all start together and issue
// `requests` puts in total, each waiting for its previous put to be acknowledged
// before sending the next (closed loop: offered load = what the store sustains).
// With `pipeline` N > 1 a client sends N puts at once and waits until all N
// are acknowledged before sending the next N (Connection::put_batch), as a
// pipelining Redis client does. Every acknowledged put's latency
// (std::chrono::steady_clock, from the send of its batch to its own
// acknowledgement) is kept; the percentiles come from all samples sorted,
// never from a histogram.
//
// Thread safety: run_load is reentrant. The factory is called from the client
// threads, concurrently; each Connection it returns is used by one thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace statekv::loadgen {

using LoadClock = std::chrono::steady_clock;

// One put of a batch (Connection::put_batch).
struct Put {
  std::string_view key;
  std::string_view value;
};

// One client's link to the store under test. Not thread-safe: one per thread.
class Connection {
 public:
  virtual ~Connection();

  // Writes key = value and returns only once the store acknowledged it as
  // committed (for a replicated store: durable on a quorum). Blocking. After a
  // non-OK status the harness discards this connection and asks the factory
  // for a new one.
  virtual Status put(std::string_view key, std::string_view value) = 0;

  // Writes every put of `puts` and returns once each was answered; acked[i]
  // (acked.size() == puts.size()) is when puts[i] was acknowledged. OK when
  // every put was; otherwise the first failure, and the harness counts the
  // whole batch failed (some of it may have taken effect). A connection that
  // pipelines sends them all before it reads any reply (RespConnection); this
  // default sends one at a time, so the harness's callers allow a pipeline
  // only for connections that do (bench_command.cc).
  virtual Status put_batch(std::span<const Put> puts, std::span<LoadClock::time_point> acked);
};

// Opens the connection for client number `client` (0-based). Called once per
// client before the run, and again after that client's connection failed.
using ConnectionFactory = std::function<Result<std::unique_ptr<Connection>>(size_t client)>;

struct LoadOptions {
  size_t clients = 16;        // concurrent clients, one thread and connection each
  size_t requests = 20000;    // measured puts in total, over all clients
  size_t value_size = 256;    // bytes per value
  size_t key_space = 1000;    // keys are key:%012d, drawn uniformly from [0, key_space)
  uint64_t seed = 1;          // with the client number, decides each client's keys
  double warmup_seconds = 1;  // unmeasured writes before the clock starts; 0 skips
  size_t pipeline = 1;        // puts a client sends before it waits for their acknowledgements
};

struct LoadResult {
  uint64_t ok = 0;         // measured puts acknowledged
  uint64_t errors = 0;     // measured puts that failed, plus failed reconnects
  double seconds = 0;      // wall time of the measured phase
  double ops_per_sec = 0;  // ok / seconds
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0;
  std::string first_error;  // the first failure's message, empty when none
};

// Checks the options (clients, requests, key_space, pipeline > 0; warmup >= 0).
Status validate(const LoadOptions& options);

// Runs the load and returns its figures. Fails (and runs nothing) when the
// options are invalid or a client's first connection cannot be opened; once
// running, failures are counted in `errors` and the run goes on: each put of a
// failed batch (a failed reconnect fails its batch) uses up one of the
// `requests`, so ok + errors == requests.
Result<LoadResult> run_load(const LoadOptions& options, const ConnectionFactory& factory);

// The key for index i: "key:" and i as 12 zero-padded digits (16 bytes).
std::string key_for(uint64_t i);

// The nearest-rank percentile of samples sorted ascending: the smallest sample
// with at least q of all samples at or below it (q in [0, 1]; q = 0.5 of
// 1..100 is 50, q = 0.999 is 100). 0 for no samples.
uint64_t nearest_rank(const std::vector<uint64_t>& sorted, double q);

// Fills the latency fields of `result` (in milliseconds) from per-put
// latencies in nanoseconds; sorts `latencies_ns` in place.
void summarize_latencies(std::vector<uint64_t>& latencies_ns, LoadResult& result);

// One JSON object on one line: "target", "route" (when not empty: how the
// clients picked their server, e.g. spread or leader), the options, then every
// LoadResult field under the same name (ops_per_sec, p50_ms, ..., first_error).
std::string format_json(std::string_view target, const LoadOptions& options,
                        const LoadResult& result, std::string_view route = {});

// A short human-readable table of the same figures.
std::string format_table(std::string_view target, const LoadOptions& options,
                         const LoadResult& result, std::string_view route = {});

}  // namespace statekv::loadgen
