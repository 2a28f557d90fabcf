#include "server/listener.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "core/assert.h"
#include "core/ephemeral_ports.h"

namespace statekv::server {

Listener::Listener(std::vector<std::shared_ptr<NetworkThread>> threads, const ConnectionEnv& env)
    : threads_(std::move(threads)),
      home_(*threads_.at(0)),
      env_(env),
      acceptor_(home_.context()),
      retry_timer_(home_.context()) {}

Status Listener::listen(const std::string& bind, uint16_t port) {
  asio::error_code ec;
  auto address = asio::ip::make_address(bind == "*" ? "0.0.0.0" : bind, ec);
  if (ec) return Status::InvalidArgument(fmt::format("invalid bind address '{}'", bind));
  asio::ip::tcp::endpoint endpoint(address, port);
  auto fail = [&](std::string_view step) {
    return Status::IOError(
        fmt::format("cannot listen on {}:{}: {} ({}){}", bind, port, ec.message(), step,
                    ec == asio::error::address_in_use ? ephemeral_port_hint(port) : ""));
  };
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) return fail("socket");
  // Restarting right after a stop must not fail on TIME_WAIT connections.
  acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (ec) return fail("SO_REUSEADDR");
  acceptor_.bind(endpoint, ec);
  if (ec) return fail("bind");
  acceptor_.listen(511, ec);  // Redis's default tcp-backlog
  if (ec) return fail("listen");
  port_ = acceptor_.local_endpoint(ec).port();
  return Status::OK();
}

void Listener::start() {
  asio::post(home_.context(), [this] { accept_next(); });
}

void Listener::stop() {
  asio::post(home_.context(), [this] {
    asio::error_code ec;
    acceptor_.close(ec);
    retry_timer_.cancel(ec);
  });
}

void Listener::accept_next() {
  NetworkThread& target = *threads_[next_thread_];
  next_thread_ = (next_thread_ + 1) % threads_.size();
  acceptor_.async_accept(
      target.context(), [this, &target](const asio::error_code& ec, asio::ip::tcp::socket s) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
        if (ec) {
          // Typically EMFILE: log, back off briefly, keep serving.
          spdlog::warn("accept failed: {}", ec.message());
          retry_timer_.expires_after(std::chrono::milliseconds(100));
          retry_timer_.async_wait([this](const asio::error_code& tec) {
            if (!tec) accept_next();
          });
          return;
        }
        if (env_.live->load(std::memory_order_relaxed) >= env_.config->snapshot().maxclients) {
          reject(s);
        } else {
          bump(env_.stats->local().connections_received);
          uint64_t id = next_id_++;
          ConnectionEnv env = env_;
          // The socket already belongs to target's io_context;
          // build and start the connection over there.
          // Count it as live now so a burst cannot pass maxclients.
          env.live->fetch_add(1, std::memory_order_relaxed);
          asio::post(target.context(), [&target, env, id, sock = std::move(s)]() mutable {
            env.live->fetch_sub(1, std::memory_order_relaxed);
            if (target.stopping()) return;  // shutting down: drop it
            auto conn = std::make_shared<Connection>(target, std::move(sock), env, id);
            target.adopt(conn);
            conn->start();
          });
        }
        accept_next();
      });
}

void Listener::reject(asio::ip::tcp::socket& socket) {
  bump(env_.stats->local().rejected_connections);
  static constexpr std::string_view kError = "-ERR max number of clients reached\r\n";
  asio::error_code ec;
  // Best effort, as Redis: one non-blocking write into an empty socket buffer.
  socket.non_blocking(true, ec);
  socket.write_some(asio::buffer(kError.data(), kError.size()), ec);
  socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket.close(ec);
  spdlog::warn("rejected connection: max number of clients reached");
}

}  // namespace statekv::server
