// Listener — the one listening socket of `statekv server`. It accepts on its
// home thread and hands each connection to the next NetworkThread in round
// robin; the accepted socket is created directly on that thread's io_context,
// so the connection never migrates.
//
// maxclients: when the live connection count has reached it, the new client is
// sent "-ERR max number of clients reached" and closed, as Redis does.
//
// Thread safety: listen() is called before the threads start; start() and
// stop() from any thread (they post to the home thread); port() any time after
// listen().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "server/connection.h"
#include "server/network_asio.h"
#include "server/network_thread.h"

namespace statekv::server {

class Listener {
 public:
  Listener(std::vector<std::shared_ptr<NetworkThread>> threads, const ConnectionEnv& env);
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds bind:port (port 0 picks a free port) and listens. A clear IOError
  // ("cannot listen on 127.0.0.1:7001: Address already in use") on failure.
  Status listen(const std::string& bind, uint16_t port);
  uint16_t port() const { return port_; }

  void start();
  // Stops accepting; connections already accepted are not touched.
  void stop();

 private:
  void accept_next();
  void reject(asio::ip::tcp::socket& socket);

  std::vector<std::shared_ptr<NetworkThread>> threads_;
  NetworkThread& home_;
  ConnectionEnv env_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  uint16_t port_ = 0;
  size_t next_thread_ = 0;
  uint64_t next_id_ = 1;  // CLIENT ID: 1, 2, 3, ... like Redis
};

}  // namespace statekv::server
