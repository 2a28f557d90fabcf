// NetworkThread — one I/O thread: its own asio::io_context, the connections that
// live on it, a scratch read buffer shared by those connections, and a periodic
// tick (idle timeout).
//
// Thread safety: start()/stop()/join() are called by the owner (NetworkServer).
// Everything else — limits(), scratch(), adopt(), forget(), the connection set —
// is confined to this thread: call it only from handlers running on context().
// Other threads talk to a NetworkThread only by posting to context().
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <thread>
#include <unordered_map>
#include <vector>

#include "resp/parser.h"
#include "server/config.h"
#include "server/network_asio.h"

namespace statekv::server {

class Connection;

// The numbers a connection checks on its hot path, copied from the ConfigStore
// when its generation changes, so a CONFIG SET applies to the next command
// without a lock per command.
struct ConnectionLimits {
  resp::Limits proto;
  resp::Limits proto_unauthenticated;  // proto with Redis's caps before AUTH
  uint64_t query_buffer_limit = 0;
  // Above this much pending output the connection stops reading and parsing
  // (it resumes when the client has drained half of it).
  uint64_t output_pause_bytes = 0;
  // Above this much pending output the client is disconnected.
  uint64_t output_hard_limit = 0;
  // The same for a subscribed client's messages (ServerConfig's pubsub_*).
  uint64_t pubsub_hard_limit = 0;
  uint64_t pubsub_soft_limit = 0;
  int64_t pubsub_soft_ms = 0;
  uint64_t timeout_ms = 0;  // 0: never close idle clients
  // --fsync always: no reply, to a read as much as to a write, leaves before every
  // write it could have observed is durable, so no client ever sees data that a
  // crash could take back (as with Redis's appendfsync always, whose replies all
  // wait for the fsync of their event-loop pass). Under batch only a write's own
  // reply waits.
  bool replies_wait_for_all_writes = false;

  static ConnectionLimits from(const ServerConfig& config);
};

// Milliseconds on the steady clock: the unit of Session::last_interaction_ms.
int64_t steady_now_ms();
// Microseconds on the same clock: the unit of Session::batch_started_us.
int64_t steady_now_us();

class NetworkThread : public std::enable_shared_from_this<NetworkThread> {
 public:
  // Bytes read from a socket at a time into the per-thread scratch buffer.
  static constexpr size_t kScratchBytes = 64 * 1024;

  NetworkThread(unsigned index, ConfigStore& config);
  NetworkThread(const NetworkThread&) = delete;
  NetworkThread& operator=(const NetworkThread&) = delete;
  ~NetworkThread();

  unsigned index() const { return index_; }
  asio::io_context& context() { return context_; }

  // Before start(): how long the loop polls after a pass that ran anything
  // before it sleeps (NetworkServer::set_busy_poll).
  void set_busy_poll(std::chrono::microseconds busy_poll) { busy_poll_ = busy_poll; }
  // Starts the thread running the event loop.
  void start();
  // Asks the thread to close every connection and leave its loop; join() waits.
  void stop();
  void join();

  // --- on this thread only ---
  // The current limits: refreshed first if a CONFIG SET happened since.
  const ConnectionLimits& limits() {
    if (const uint64_t g = config_.generation(); g != limits_generation_) refresh_limits(g);
    return limits_;
  }
  std::span<char> scratch() { return scratch_; }
  // The thread keeps connection alive until forget() is called with it.
  void adopt(std::shared_ptr<Connection> connection);
  void forget(Connection* connection);
  size_t connection_count() const { return connections_.size(); }
  // True once stop() has begun on this thread: accept no new connection.
  bool stopping() const { return stopping_; }

 private:
  void refresh_limits(uint64_t generation);
  void schedule_tick();
  void tick();
  // context_.run(), polling for busy_poll_ after each pass that ran anything.
  void run_loop();

  const unsigned index_;
  ConfigStore& config_;
  asio::io_context context_{1};  // concurrency hint 1: one thread runs it
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::steady_timer timer_;
  std::thread thread_;
  ConnectionLimits limits_;
  uint64_t limits_generation_ = 0;  // config_.generation() limits_ was read at
  std::vector<char> scratch_;
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections_;
  int64_t last_idle_check_ms_ = 0;
  bool stopping_ = false;
  std::chrono::microseconds busy_poll_{0};
};

}  // namespace statekv::server
