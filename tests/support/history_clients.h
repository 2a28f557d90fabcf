// Clients that read and write a few keys through random nodes of a cluster,
// recording a history (check/history.h) for `statekv check linearizable`.
//
// Each client thread connects to a node picked at random, hopping now and then,
// and does GET or SET on keys PREFIX + "k0".."k{keys-1}" with values unique to
// the client. A write whose outcome is unknown (an error reply, a broken
// connection) is recorded as info and the client continues as a new process
// (Jepsen's convention); a read that failed is recorded as fail.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "check/history.h"
#include "support/redis_client.h"

namespace statekv::itest {

class HistoryClients {
 public:
  struct Options {
    size_t clients = 6;
    size_t keys = 12;
    std::string key_prefix;
    // Sent as CONSISTENCY <level> on every new connection (empty: not sent).
    std::string consistency;
    // One session per client throughout: it takes its SESSION TOKEN after
    // every acknowledged operation and presents it (SESSION AFTER) on every
    // new connection, a hop's or one after a broken connection, so a read
    // through any node must observe what the client did before. A token it
    // cannot take ends the session (a new process in the history). Without
    // this, every new connection starts a new process.
    bool carry_session = false;
    // Commands sent at a time on one connection (redis pipelining), each its
    // own process in the history (a process has one operation in flight);
    // their replies come back in order. 1: one at a time. Not with
    // carry_session.
    size_t pipeline = 1;
    // Where each port listens (same length as the ports); empty: 127.0.0.1.
    std::vector<std::string> hosts;
  };
  HistoryClients(std::vector<uint16_t> ports, Options options);
  HistoryClients(std::vector<uint16_t> ports, size_t clients, size_t keys,
                 std::string key_prefix = "");
  ~HistoryClients();
  HistoryClients(const HistoryClients&) = delete;
  HistoryClients& operator=(const HistoryClients&) = delete;

  // The nodes new connections go to from now on.
  void set_ports(std::vector<uint16_t> ports);
  // Stops and joins every client (idempotent).
  void stop();
  check::History history();
  size_t ok_count() const { return ok_; }
  size_t error_count() const { return errors_; }
  // For operations the test itself runs beside the clients (a KEYSPACE DROP
  // is a delete of every key): the history's clock, and recording an event
  // (use process ids the clients do not: they count up from 0).
  int64_t now() const;
  void record(check::Event e);

 private:
  // A node to connect to: host and port.
  std::pair<std::string, uint16_t> pick_node(uint32_t random);
  void run(int64_t client);
  // A connection to a node picked by `random`, at options_.consistency;
  // nullopt when that fails.
  std::optional<RedisClient> connect_somewhere(uint32_t random);
  // run() for options_.pipeline > 1.
  void run_pipelined(int64_t client);
  // The outcome of one command whose reply is `reply` (invoke: its invocation,
  // recorded): recorded; false when the connection broke.
  bool complete(const check::Event& invoke, const Result<std::string>& reply);

  std::mutex mu_;
  std::vector<uint16_t> ports_;
  Options options_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> ok_{0};
  std::atomic<size_t> errors_{0};
  std::chrono::steady_clock::time_point start_;
  check::History history_;
};

// The longest stretch of `history` with no operation acknowledged: its length
// and where it began, in ms of the history's clock.
std::pair<int64_t, int64_t> longest_gap_ms(const check::History& history);

}  // namespace statekv::itest
