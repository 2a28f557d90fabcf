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
    value_.resize(options.value_size);
    for (char& c : value_) c = static_cast<char>('a' + rng_.uniform(26));
  }

  // One put with a fresh key. Returns its latency, or the failure (after which
  // the connection is dropped and the next call reconnects first).
  Result<uint64_t> put_once() {
    if (!conn_) {
      auto reopened = factory_(id_);
      if (!reopened.ok()) {
        backoff();
        return reopened.status();
      }
      conn_ = std::move(*reopened);
      backoff_ms_ = 0;
    }
    const std::string key = key_for(rng_.uniform(options_.key_space));
    stamp_value();
    const auto start = Clock::now();
    Status status = conn_->put(key, value_);
    const auto elapsed = Clock::now() - start;
    if (!status.ok()) {
      conn_.reset();
      return status;
    }
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
  }

 private:
  // Each write carries a different value (its client and sequence number in
  // front), so no store can skip a write that repeats the previous value.
  void stamp_value() {
    const std::string stamp = fmt::format("{:x}.{:x}.", id_, ++sequence_);
    std::copy_n(stamp.begin(), std::min(stamp.size(), value_.size()), value_.begin());
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
  std::string value_;
  uint64_t sequence_ = 0;
  int backoff_ms_ = 0;
};

}  // namespace

Status validate(const LoadOptions& options) {
  if (options.clients == 0) return Status::InvalidArgument("clients must be at least 1");
  if (options.requests == 0) return Status::InvalidArgument("requests must be at least 1");
  if (options.key_space == 0) return Status::InvalidArgument("key_space must be at least 1");
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
      out.latencies_ns.reserve(options.requests / options.clients + 1);
      warmup_line.arrive_and_wait();
      while (Clock::now() < warmup_end) (void)client.put_once();
      start_line.arrive_and_wait();
      while (next_request.fetch_add(1, std::memory_order_relaxed) < options.requests) {
        auto latency = client.put_once();
        if (latency.ok()) {
          out.latencies_ns.push_back(*latency);
          ++out.ok;
        } else {
          ++out.errors;
          first_error.record(c, latency.status());
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
      fmt::format("{} puts of {}-byte values over {} keys, {} clients{} (seed {}, warmup {} s)\n",
                  options.requests, options.value_size, options.key_space, options.clients,
                  route.empty() ? std::string() : fmt::format(", route {}", route), options.seed,
                  options.warmup_seconds);
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
