// NetworkServer — the part of `statekv server` between the socket and
// Service::execute(): N NetworkThreads (one io_context each), one Listener, and
// the ClientRegistry. See connection.h for what happens per connection and
// docs/threading.md for the whole threading model.
//
// Lifetime: ctx (with its engine, stats and config), service and registry must
// outlive the NetworkServer. stop() returns only when every I/O thread has
// exited, so after it no connection calls into the service any more.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/status.h"
#include "server/client_registry.h"
#include "server/context.h"
#include "server/listener.h"
#include "server/network_thread.h"

namespace statekv::server {

class NetworkServer {
 public:
  // Uses ctx.io_threads threads (at least 1), ctx.config for bind, port and
  // limits, ctx.engine for durability, ctx.stats for counters.
  NetworkServer(ServerContext& ctx, Service& service, ClientRegistryImpl& registry);
  NetworkServer(const NetworkServer&) = delete;
  NetworkServer& operator=(const NetworkServer&) = delete;
  ~NetworkServer();

  // Before start(): after a pass of its event loop that ran anything, an I/O
  // thread keeps polling its sockets for up to `busy_poll` before it sleeps in
  // epoll_wait (0, the default: it sleeps at once). A thread asleep is woken
  // by the kernel inside the client's send, at the client's expense: when the
  // client is the limit (a pipelining benchmark on a shared machine), a server
  // that sleeps after every pass makes it slower (docs/cache.md,
  // "Throughput"). The cost is CPU: up to `busy_poll` of polling per pass
  // that finds nothing more.
  void set_busy_poll(std::chrono::microseconds busy_poll);

  // Binds (failing with a clear IOError when the port is taken) and starts the
  // I/O threads and accepting.
  Status start();
  // The bound port (useful with port 0). Valid after start() succeeded.
  uint16_t port() const;
  // Number of live connections, including ones not yet registered.
  uint64_t live_connections() const { return live_.load(std::memory_order_relaxed); }

  // Stops accepting, closes every connection, joins the threads. Idempotent.
  void stop();

 private:
  ServerContext& ctx_;
  std::atomic<uint64_t> live_{0};
  std::vector<std::shared_ptr<NetworkThread>> threads_;
  std::unique_ptr<Listener> listener_;
  bool running_ = false;
};

}  // namespace statekv::server
