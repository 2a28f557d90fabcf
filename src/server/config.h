// ServerConfig — every setting of `statekv server`, settable by flag, by the TOML
// file given to --config, and (the ones marked mutable) by CONFIG SET at run time.
//
// Precedence: built-in default < TOML file < command-line flag.
// Thread safety: ConfigStore guards the values with a mutex; hot paths copy the
// few numbers they need (limits) when a connection starts or on change.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"
#include "storage/engine.h"

namespace statekv::server {

struct ServerConfig {
  std::string bind = "127.0.0.1";
  uint16_t port = 7001;
  std::string data_dir = "./data";
  std::string engine = "rocksdb";  // "rocksdb" | "memory"
  storage::FsyncPolicy fsync = storage::FsyncPolicy::kBatch;
  std::string requirepass;  // empty: no AUTH required
  unsigned io_threads = 0;  // 0: one per hardware thread
  uint64_t maxclients = 10000;
  uint64_t timeout_seconds = 0;  // close clients idle this long; 0 = never (Redis default)
  uint64_t proto_max_bulk_len = 512ull * 1024 * 1024;
  uint64_t max_multibulk_len = 2147483647;  // INT_MAX, as Redis 7
  uint64_t max_inline_len = 64 * 1024;
  uint64_t client_query_buffer_limit = 1024ull * 1024 * 1024;
  // A client whose unsent replies exceed this is disconnected (Redis's
  // client-output-buffer-limit for normal clients is unlimited; statekv bounds it
  // so that a client that stops reading cannot grow the server without limit).
  uint64_t client_output_buffer_limit = 256ull * 1024 * 1024;
  // A subscribed client (SUBSCRIBE, PSUBSCRIBE) whose unsent messages exceed
  // the hard limit, or stay above the soft limit for the soft seconds, is
  // disconnected: Redis's "client-output-buffer-limit pubsub 32mb 8mb 60".
  uint64_t pubsub_output_buffer_limit = 32ull * 1024 * 1024;
  uint64_t pubsub_output_buffer_soft_limit = 8ull * 1024 * 1024;
  uint64_t pubsub_output_buffer_soft_seconds = 60;
  unsigned hz = 10;                             // active expiry cycles per second
  unsigned active_expire_keys_per_cycle = 200;  // bounded work per cycle
  std::string loglevel = "info";                // debug | info | warn | error
  std::string logfile;                          // empty: stderr
  // CLIENT TRACKING: keys remembered in the tracking table; over it, random
  // keys are invalidated (sent to their readers) and forgotten. 0: no limit.
  uint64_t tracking_table_max_keys = 1000000;
};

// Text form of a FsyncPolicy: "always" | "batch" | "never".
std::string_view fsync_name(storage::FsyncPolicy policy);
Result<storage::FsyncPolicy> parse_fsync(std::string_view text);

// Loads a TOML file onto config (keys are the CONFIG names below, e.g.
// port = 7001, fsync = "always", requirepass = "secret"). Unknown keys are errors.
Status load_toml_config(const std::string& path, ServerConfig& config);

// The run-time view used by CONFIG GET / CONFIG SET.
class ConfigStore {
 public:
  explicit ConfigStore(ServerConfig initial) : config_(std::move(initial)) {}

  ServerConfig snapshot() const {
    std::lock_guard lock(mu_);
    return config_;
  }

  // Names known to CONFIG (Redis spelling: "port", "requirepass", "maxclients",
  // "proto-max-bulk-len", "appendfsync" as an alias of fsync, ...).
  std::vector<std::string> names() const;
  // The value of one setting as CONFIG GET prints it; NotFound if unknown.
  Result<std::string> get(std::string_view name) const;
  // Sets a mutable setting. On failure the Status message is the whole error
  // reply text, "ERR " prefix included (Redis's wording), ready for Writer::error().
  // InvalidArgument with Redis's wording when the value
  // is bad, or when the setting cannot change at run time.
  Status set(std::string_view name, std::string_view value);
  // Counts successful set()s. A reader that caches numbers from snapshot()
  // compares it to see a CONFIG SET before its next command, not a tick later
  // (one atomic load; set() raises it before it returns, so before the reply).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  mutable std::mutex mu_;
  ServerConfig config_;
  std::atomic<uint64_t> generation_{0};
};

}  // namespace statekv::server
