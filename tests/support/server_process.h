// ServerProcess — one redis-server or `statekv server` running as a child
// process on 127.0.0.1, for integration tests that drive the real binary.
//
// Lifetime: the destructor always stops the process by its pid (SIGTERM, then
// SIGKILL after a deadline) and removes its data directory. The child also gets
// PR_SET_PDEATHSIG=SIGKILL, so a crashing test binary never leaks a server.
// Thread safety: none; one test thread owns each ServerProcess.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "support/temp_dir.h"

namespace statekv::itest {

// kStatekvCache: `statekv cache` (give --upstream HOST:PORT in extra_args).
enum class ServerKind { kRedis, kStatekv, kStatekvCache };

struct ServerOptions {
  ServerKind kind = ServerKind::kRedis;
  // statekv: "memory" | "rocksdb". Ignored by redis.
  std::string engine = "memory";
  // statekv: passed as --fsync. redis: "" = no persistence at all; "always" and
  // "batch" turn on the AOF with appendfsync always (batch acknowledges only
  // after the covering fsync, which for redis is "always"); "everysec" as is.
  std::string fsync;
  std::string requirepass;
  // Appended verbatim to the command line.
  std::vector<std::string> extra_args;
};

class ServerProcess {
 public:
  explicit ServerProcess(ServerOptions options);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts the process on a free port and waits (deadline, polling PING) until it
  // answers PONG or NOAUTH. A second start() after stop()/kill() reuses the same
  // data directory and port: that is how durability tests restart a node.
  Status start(std::chrono::milliseconds deadline = std::chrono::seconds(20));
  // SIGTERM, wait up to grace, then SIGKILL. Returns the exit status text;
  // an error if the process had to be killed or exited non-zero.
  Status stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
  // Waits up to `limit` for the process to exit on its own (SHUTDOWN) and
  // reaps it: OK on exit status 0; an error on another status, or (the
  // process then killed) if it was still running at the limit.
  Status wait_exit(std::chrono::milliseconds limit);
  // SIGKILL now and reap: a crash at this instant.
  void kill();

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  const std::string& data_dir() const { return data_.path(); }
  const ServerOptions& options() const { return options_; }
  // Back to never started, with these extra arguments (a cluster re-picking
  // its peer ports): the next start() picks a port and finds the data
  // directory empty. Not while running.
  void reset(std::vector<std::string> extra_args);
  // "redis-server" or "statekv memory" etc, for messages.
  std::string describe() const;
  // VmRSS of the process in kB, from /proc/<pid>/status.
  Result<uint64_t> rss_kb() const;
  // The last max_bytes of the server's stdout+stderr, for failure messages.
  std::string log_tail(size_t max_bytes = 4000) const;

 private:
  std::vector<std::string> command_line() const;
  Status spawn();
  Status wait_ready(std::chrono::steady_clock::time_point deadline);
  // Waits up to limit for the running process to exit and reaps it (killed
  // at the limit); `after` ends the error text (" after SIGTERM").
  Status await_exit(std::chrono::milliseconds limit, const std::string& after);
  // Non-blocking reap; true if the child has exited (pid_ cleared).
  bool reap_if_exited(int* wait_status);

  ServerOptions options_;
  TempDir data_;
  TempDir work_;  // log file; kept apart so the data dir holds only server data
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// The binary the tests treat as "the server under test": STATEKV_BIN from the
// environment, else the path CMake compiled in ($<TARGET_FILE:statekv>).
std::string statekv_binary();

// The kind of server the differential tests compare against redis-server:
// kStatekv normally; kRedis when STATEKV_ITEST_SUBJECT=redis (runs the whole
// suite redis-against-redis, to validate the tests themselves).
ServerKind subject_kind();

// ServerOptions for the server under test with the given engine and fsync.
ServerOptions subject_options(const std::string& engine, const std::string& fsync = "");

}  // namespace statekv::itest
