#include "loadgen/load.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/random.h"

namespace statekv::loadgen {

Connection::~Connection() = default;

Status Connection::put_batch(std::span<const Put> puts, std::span<LoadClock::time_point> acked) {
  for (size_t i = 0; i < puts.size(); ++i) {
    if (Status s = put(puts[i].key, puts[i].value); !s.ok()) return s;
    acked[i] = LoadClock::now();
  }
  return Status::OK();
}

namespace {

using Clock = std::chrono::steady_clock;

// What one client thread measured; merged by run_load once every thread joined.
struct ClientOutcome {
  std::vector<uint64_t> latencies_ns;
  uint64_t ok = 0;
  uint64_t errors = 0;
  Clock::time_point end;
};

// Keeps the first failure of the run, from whichever thread saw it first.
class FirstError {
 public:
  void record(size_t client, const Status& status) {
    std::lock_guard lock(mu_);
    if (message_.empty()) message_ = fmt::format("client {}: {}", client, status.to_string());
  }
  std::string take() {
    std::lock_guard lock(mu_);
    return std::move(message_);
  }

 private:
  std::mutex mu_;
  std::string message_;
};

// One client: its connection, its key sequence and its value buffer.
class Client {
 public:
  Client(size_t id, const LoadOptions& options, const ConnectionFactory& factory,
         std::unique_ptr<Connection> conn)
      : id_(id),
        options_(options),
        factory_(factory),
        conn_(std::move(conn)),
        // Distinct, reproducible key sequences per client for one seed.
        rng_(options.seed ^ (0x9e3779b97f4a7c15ULL * (id + 1))) {
    values_.resize(std::max<size_t>(1, options.pipeline), std::string(options.value_size, 'a'));
    for (std::string& value : values_) {
      for (char& c : value) c = static_cast<char>('a' + rng_.uniform(26));
    }
  }

  // A batch of `n` (at most options.pipeline) puts with fresh keys. Appends
  // each put's latency to *latencies_ns when the batch succeeds; otherwise
  // returns the failure (after which the connection is dropped and the next
  // call reconnects first).
  Status put_batch(size_t n, std::vector<uint64_t>* latencies_ns) {
    if (!conn_) {
      auto reopened = factory_(id_);
      if (!reopened.ok()) {
        backoff();
        return reopened.status();
      }
      conn_ = std::move(*reopened);
      backoff_ms_ = 0;
    }
    keys_.resize(n);
    puts_.resize(n);
    acked_.assign(n, Clock::time_point());
    for (size_t i = 0; i < n; ++i) {
      keys_[i] = key_for(rng_.uniform(options_.key_space));
      stamp_value(values_[i]);
      puts_[i] = Put{keys_[i], values_[i]};
    }
    const auto start = Clock::now();
    Status status = n == 1 ? conn_->put(puts_[0].key, puts_[0].value)
                           : conn_->put_batch(puts_, acked_);
    if (n == 1) acked_[0] = Clock::now();
    if (!status.ok()) {
      conn_.reset();
      return status;
    }
    for (const Clock::time_point& t : acked_) {
      latencies_ns->push_back(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(t - start).count()));
    }
    return Status::OK();
  }

 private:
  // Each write carries a different value (its client and sequence number in
  // front), so no store can skip a write that repeats the previous value.
  void stamp_value(std::string& value) {
    const std::string stamp = fmt::format("{:x}.{:x}.", id_, ++sequence_);
    std::copy_n(stamp.begin(), std::min(stamp.size(), value.size()), value.begin());
  }

  // A store that refuses connections must not be hammered in a tight loop:
  // wait 1, 2, 4 ... 100 ms between failed reconnects.
  void backoff() {
    backoff_ms_ = std::clamp<int>(backoff_ms_ * 2, 1, 100);
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms_));
  }

  const size_t id_;
  const LoadOptions& options_;
  const ConnectionFactory& factory_;
  std::unique_ptr<Connection> conn_;
  Random rng_;
  std::vector<std::string> values_;  // one per put of a batch
  std::vector<std::string> keys_;
  std::vector<Put> puts_;
  std::vector<Clock::time_point> acked_;
  uint64_t sequence_ = 0;
  int backoff_ms_ = 0;
};

}  // namespace

Status validate(const LoadOptions& options) {
  if (options.clients == 0) return Status::InvalidArgument("clients must be at least 1");
  if (options.requests == 0) return Status::InvalidArgument("requests must be at least 1");
  if (options.key_space == 0) return Status::InvalidArgument("key_space must be at least 1");
  if (options.pipeline == 0) return Status::InvalidArgument("pipeline must be at least 1");
  if (!(options.warmup_seconds >= 0) || !std::isfinite(options.warmup_seconds)) {
    return Status::InvalidArgument("warmup_seconds must be a finite number >= 0");
  }
  return Status::OK();
}

Result<LoadResult> run_load(const LoadOptions& options, const ConnectionFactory& factory) {
  if (Status valid = validate(options); !valid.ok()) return valid;

  // Connect every client before any thread starts, so that a store that is not
  // there fails the run at once instead of producing a run of errors.
  std::vector<std::unique_ptr<Client>> clients;
  clients.reserve(options.clients);
  for (size_t c = 0; c < options.clients; ++c) {
    auto conn = factory(c);
    if (!conn.ok()) return conn.status();
    clients.push_back(std::make_unique<Client>(c, options, factory, std::move(*conn)));
  }

  const auto warmup = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(options.warmup_seconds));
  Clock::time_point warmup_end;
  Clock::time_point start;
  // Completion steps run once, before any thread passes the barrier.
  std::barrier warmup_line(static_cast<std::ptrdiff_t>(options.clients),
                           [&]() noexcept { warmup_end = Clock::now() + warmup; });
  std::barrier start_line(static_cast<std::ptrdiff_t>(options.clients),
                          [&]() noexcept { start = Clock::now(); });
  std::atomic<uint64_t> next_request{0};
  FirstError first_error;
  std::vector<ClientOutcome> outcomes(options.clients);

  std::vector<std::thread> threads;
  threads.reserve(options.clients);
  for (size_t c = 0; c < options.clients; ++c) {
    threads.emplace_back([&, c] {
      Client& client = *clients[c];
      ClientOutcome& out = outcomes[c];
      out.latencies_ns.reserve(options.requests / options.clients + options.pipeline);
      std::vector<uint64_t> unmeasured;
      warmup_line.arrive_and_wait();
      while (Clock::now() < warmup_end) {
        unmeasured.clear();
        (void)client.put_batch(options.pipeline, &unmeasured);
      }
      start_line.arrive_and_wait();
      while (true) {
        // A batch claims its puts from the run's total; the last may be short.
        const uint64_t first = next_request.fetch_add(options.pipeline, std::memory_order_relaxed);
        if (first >= options.requests) break;
        const size_t n = static_cast<size_t>(
            std::min<uint64_t>(options.pipeline, options.requests - first));
        if (Status s = client.put_batch(n, &out.latencies_ns); s.ok()) {
          out.ok += n;
        } else {
          out.errors += n;
          first_error.record(c, s);
        }
      }
      out.end = Clock::now();
    });
  }
  for (auto& t : threads) t.join();

  LoadResult result;
  std::vector<uint64_t> latencies;
  latencies.reserve(options.requests);
  Clock::time_point end = start;
  for (auto& out : outcomes) {
    result.ok += out.ok;
    result.errors += out.errors;
    end = std::max(end, out.end);
    latencies.insert(latencies.end(), out.latencies_ns.begin(), out.latencies_ns.end());
  }
  result.seconds = std::chrono::duration<double>(end - start).count();
  result.ops_per_sec = result.seconds > 0 ? static_cast<double>(result.ok) / result.seconds : 0;
  summarize_latencies(latencies, result);
  result.first_error = first_error.take();
  return result;
}

std::string key_for(uint64_t i) {
  return fmt::format("key:{:012d}", i);
}

uint64_t nearest_rank(const std::vector<uint64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double n = static_cast<double>(sorted.size());
  // The rank ceil(q * n), 1-based; the small epsilon keeps 0.99 * 100 at rank
  // 99 although the product is 99.00000000000001 in binary floating point.
  double rank = std::ceil(q * n - 1e-9);
  rank = std::clamp(rank, 1.0, n);
  return sorted[static_cast<size_t>(rank) - 1];
}

void summarize_latencies(std::vector<uint64_t>& latencies_ns, LoadResult& result) {
  std::sort(latencies_ns.begin(), latencies_ns.end());
  auto ms = [&](double q) { return static_cast<double>(nearest_rank(latencies_ns, q)) / 1e6; };
  result.p50_ms = ms(0.50);
  result.p90_ms = ms(0.90);
  result.p99_ms = ms(0.99);
  result.p999_ms = ms(0.999);
  result.max_ms = latencies_ns.empty() ? 0 : static_cast<double>(latencies_ns.back()) / 1e6;
}

std::string format_json(std::string_view target, const LoadOptions& options,
                        const LoadResult& result, std::string_view route) {
  nlohmann::ordered_json j;
  j["target"] = target;
  if (!route.empty()) j["route"] = route;
  j["clients"] = options.clients;
  j["requests"] = options.requests;
  j["value_size"] = options.value_size;
  j["key_space"] = options.key_space;
  j["seed"] = options.seed;
  j["warmup_seconds"] = options.warmup_seconds;
  j["pipeline"] = options.pipeline;
  j["ok"] = result.ok;
  j["errors"] = result.errors;
  j["seconds"] = result.seconds;
  j["ops_per_sec"] = result.ops_per_sec;
  j["p50_ms"] = result.p50_ms;
  j["p90_ms"] = result.p90_ms;
  j["p99_ms"] = result.p99_ms;
  j["p999_ms"] = result.p999_ms;
  j["max_ms"] = result.max_ms;
  j["first_error"] = result.first_error;
  // Replace, not throw, on invalid UTF-8 in an error message from the wire.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string format_table(std::string_view target, const LoadOptions& options,
                         const LoadResult& result, std::string_view route) {
  std::string out =
      fmt::format("{} puts of {}-byte values over {} keys, {} clients{}{} (seed {}, warmup {} s)\n",
                  options.requests, options.value_size, options.key_space, options.clients,
                  route.empty() ? std::string() : fmt::format(", route {}", route),
                  options.pipeline > 1 ? fmt::format(", pipeline {}", options.pipeline)
                                       : std::string(),
                  options.seed, options.warmup_seconds);
  out +=
      fmt::format("{:<10} {:>8} {:>6} {:>8} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}\n", "target", "ok",
                  "errors", "seconds", "ops/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms");
  out += fmt::format(
      "{:<10} {:>8} {:>6} {:>8.3f} {:>10.1f} {:>8.3f} {:>8.3f} {:>8.3f} {:>8.3f} {:>8.3f}\n",
      target, result.ok, result.errors, result.seconds, result.ops_per_sec, result.p50_ms,
      result.p90_ms, result.p99_ms, result.p999_ms, result.max_ms);
  if (!result.first_error.empty()) out += fmt::format("first error: {}\n", result.first_error);
  return out;
}

}  // namespace statekv::loadgen
