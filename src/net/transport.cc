#include "net/transport.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <deque>
#include <random>
#include <unordered_map>

#include "core/assert.h"
#include "core/ephemeral_ports.h"
#include "net/frame.h"
#include "net/handshake.h"

namespace statekv::net {

namespace {

Result<std::pair<std::string, uint16_t>> split_host_port(const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == host_port.size()) {
    return Status::InvalidArgument("address '" + host_port + "' is not host:port");
  }
  const std::string port_text = host_port.substr(colon + 1);
  char* end = nullptr;
  const unsigned long port = std::strtoul(port_text.c_str(), &end, 10);
  if (*end != '\0' || port == 0 || port > 65535) {
    return Status::InvalidArgument("address '" + host_port + "' has a bad port");
  }
  return std::make_pair(host_port.substr(0, colon), static_cast<uint16_t>(port));
}

// TCP_USER_TIMEOUT (TransportOptions::unacknowledged_timeout); best effort:
// a kernel without it keeps its default.
void set_unacknowledged_timeout(asio::ip::tcp::socket& socket, std::chrono::milliseconds timeout) {
  if (timeout.count() <= 0 || !socket.is_open()) return;
  const unsigned int ms = static_cast<unsigned int>(timeout.count());
  ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
}

}  // namespace

class Transport::Impl : public std::enable_shared_from_this<Transport::Impl> {
 public:
  // One TCP connection: handshake first, then frames both ways.
  class Session : public std::enable_shared_from_this<Session> {
   public:
    Session(std::shared_ptr<Impl> owner, asio::ip::tcp::socket socket, ConnectionId id,
            HandshakeRole role, NodeId expected_peer)
        : owner_(std::move(owner)),
          socket_(std::move(socket)),
          id_(id),
          reader_(std::min(kHandshakeMaxFrameBytes, owner_->options_.max_frame_bytes)),
          expected_peer_(expected_peer),
          awaiting_first_bytes_(role == HandshakeRole::kAcceptor) {
      std::error_code ec;
      socket_.set_option(asio::ip::tcp::no_delay(true), ec);
      set_unacknowledged_timeout(socket_, owner_->options_.unacknowledged_timeout);
      auto remote = socket_.remote_endpoint(ec);
      remote_ = ec ? std::string("?") : remote.address().to_string() + ":" + std::to_string(remote.port());
      HandshakeOptions hs_options;
      hs_options.secret = owner_->options_.secret;
      hs_options.self = owner_->options_.self;
      hs_options.role = role;
      hs_options.peer_address = remote_;
      hs_options.allow_peer = owner_->options_.allow_peer;
      hs_options.incarnation = owner_->options_.incarnation;
      hs_options.check_incarnation = owner_->options_.check_incarnation;
      auto hs = Handshake::start(std::move(hs_options));
      SKV_ASSERT(hs.ok(), "the transport checks the secret before it accepts connections");
      handshake_ = std::make_unique<Handshake>(std::move(hs).value());
    }

    void start() {
      // An acceptor sends its Hello once the first bytes showed a statekv peer,
      // not a Redis client at the wrong port (handshake.h resp_client_notice).
      if (!awaiting_first_bytes_) flush_handshake();
      read();
    }

    // Queues a payload; sent once the handshake completed (handshake bytes first).
    void send(std::string payload) {
      if (closed_) return;
      queue_.push_back(encode_frame(payload));
      queued_bytes_ += queue_.back().size();
      if (authenticated_) write();
    }

    void close() {
      if (closed_) return;
      closed_ = true;
      std::error_code ec;
      socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
      socket_.close(ec);
      owner_->on_session_closed(shared_from_this());
    }

    bool authenticated() const { return authenticated_; }
    bool closed() const { return closed_; }
    ConnectionId id() const { return id_; }
    NodeId peer() const { return peer_; }
    size_t queued_bytes() const { return queued_bytes_; }
    const std::string& remote() const { return remote_; }

   private:
    void flush_handshake() {
      for (std::string& out : handshake_->take_outgoing()) {
        handshake_out_.push_back(encode_frame(out));
      }
      write();
    }

    void read() {
      auto self = shared_from_this();
      socket_.async_read_some(asio::buffer(buffer_), [this, self](std::error_code ec, size_t n) {
        if (closed_) return;
        if (ec) {
          close();
          return;
        }
        if (awaiting_first_bytes_) {
          awaiting_first_bytes_ = false;
          if (auto notice = resp_client_notice(std::string_view(buffer_.data(), n),
                                               owner_->options_.resp_port)) {
            ++owner_->stats_.refused_handshakes;
            spdlog::warn(
                "refused connection {} to the peer port: it speaks RESP (a Redis "
                "client at the wrong port?)",
                remote_);
            handshake_out_.push_back(std::move(*notice));
            refuse_after_write_ = true;
            write();
            return;
          }
          flush_handshake();
        }
        reader_.feed(std::string_view(buffer_.data(), n));
        while (!closed_) {
          Result<std::optional<std::string>> frame = reader_.next();
          if (!frame.ok()) {
            ++owner_->stats_.bad_frames;
            spdlog::warn("peer connection {} (node {}): {}; closing this connection", remote_,
                         peer_, frame.status().to_string());
            close();
            return;
          }
          if (!frame->has_value()) break;
          on_frame(std::move(**frame));
        }
        if (!closed_) read();
      });
    }

    void on_frame(std::string payload) {
      if (!authenticated_) {
        handshake_->on_frame(payload);
        flush_handshake();
        if (handshake_->refused()) {
          ++owner_->stats_.refused_handshakes;
          const auto& refused = std::get<HandshakeRefused>(handshake_->outcome());
          if (refused.disowned) {
            // Said once: every peer says it again at each reconnection.
            if (!owner_->disowned_) {
              spdlog::error("peer connection {}: {}", remote_, refused.reason);
            }
            owner_->disowned_ = true;
            if (owner_->options_.on_disowned) owner_->options_.on_disowned(refused.reason);
          } else {
            spdlog::warn("refused peer connection {}: {}", remote_, refused.reason);
          }
          // Let the refusal notice (if the handshake produced one) leave first.
          refuse_after_write_ = true;
          if (!writing_) close();
          return;
        }
        if (handshake_->accepted()) {
          peer_ = *handshake_->peer();
          authenticated_ = true;
          reader_.set_max_frame_bytes(owner_->options_.max_frame_bytes);
          owner_->on_session_authenticated(shared_from_this());
          write();
        }
        return;
      }
      owner_->handler_(id_, peer_, std::move(payload));
    }

    void write() {
      if (writing_ || closed_) return;
      std::deque<std::string>* source = nullptr;
      if (!handshake_out_.empty()) {
        source = &handshake_out_;
      } else if (authenticated_ && !queue_.empty()) {
        source = &queue_;
      } else {
        if (refuse_after_write_) close();
        return;
      }
      // Gather what is queued into one write.
      batch_.clear();
      while (!source->empty() && batch_.size() < (1u << 20)) {
        batch_ += source->front();
        if (source == &queue_) queued_bytes_ -= source->front().size();
        source->pop_front();
      }
      writing_ = true;
      auto self = shared_from_this();
      asio::async_write(socket_, asio::buffer(batch_), [this, self](std::error_code ec, size_t) {
        writing_ = false;
        if (closed_) return;
        if (ec) {
          close();
          return;
        }
        write();
      });
    }

    std::shared_ptr<Impl> owner_;
    asio::ip::tcp::socket socket_;
    ConnectionId id_;
    FrameReader reader_;
    NodeId expected_peer_;
    std::unique_ptr<Handshake> handshake_;
    std::array<char, 64 * 1024> buffer_{};
    std::deque<std::string> handshake_out_;
    std::deque<std::string> queue_;
    size_t queued_bytes_ = 0;
    std::string batch_;
    std::string remote_;
    NodeId peer_;
    bool authenticated_ = false;
    bool writing_ = false;
    bool closed_ = false;
    bool refuse_after_write_ = false;
    bool awaiting_first_bytes_ = false;  // an acceptor that has read nothing yet
  };

  // The outbound side towards one node: its address, the current session, and
  // what waits until a session is up.
  struct Link {
    std::string address;
    std::shared_ptr<Session> session;  // connecting, handshaking or up
    std::deque<std::string> pending;   // payloads waiting for an authenticated session
    size_t pending_bytes = 0;
    std::chrono::milliseconds backoff{0};
    std::unique_ptr<asio::steady_timer> retry;
    bool connecting = false;
  };

  Impl(asio::io_context& io, TransportOptions options, FrameHandler handler)
      : io_(io),
        options_(std::move(options)),
        handler_(std::move(handler)),
        acceptor_(io),
        rng_(std::random_device{}()) {
    // A node's transport without a durable incarnation (tests, tools): one of
    // this process's own.
    while (options_.self != NodeId(0) && options_.incarnation == 0) {
      options_.incarnation = std::uniform_int_distribution<uint64_t>()(rng_);
    }
  }

  Status listen() {
    if (options_.secret.empty()) return Status::InvalidArgument("the cluster secret must not be empty");
    std::error_code ec;
    auto address = asio::ip::make_address(options_.bind, ec);
    if (ec) return Status::InvalidArgument("bad peer bind address '" + options_.bind + "'");
    asio::ip::tcp::endpoint endpoint(address, options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::IOError(
          "cannot listen for peers on " + options_.bind + ":" + std::to_string(options_.port) +
          ": " + ec.message() +
          (ec == asio::error::address_in_use ? ephemeral_port_hint(options_.port) : ""));
    }
    port_ = acceptor_.local_endpoint().port();
    accept();
    return Status::OK();
  }

  void accept() {
    auto self = shared_from_this();
    acceptor_.async_accept([this, self](std::error_code ec, asio::ip::tcp::socket socket) {
      if (stopped_) return;
      if (!ec) {
        auto session = std::make_shared<Session>(self, std::move(socket), ++next_id_,
                                                 HandshakeRole::kAcceptor, NodeId());
        sessions_[session->id()] = session;
        session->start();
      }
      accept();
    });
  }

  void set_address(NodeId node, const std::string& address) {
    Link& link = links_[node];
    if (link.address == address) return;
    link.address = address;
    if (link.session) link.session->close();
    link.backoff = std::chrono::milliseconds(0);
    if (!link.pending.empty()) connect(node);
  }

  void send(NodeId to, std::string payload) {
    auto it = links_.find(to);
    if (it == links_.end() || it->second.address.empty()) {
      ++stats_.dropped_payloads;
      return;
    }
    Link& link = it->second;
    if (link.session && link.session->authenticated()) {
      if (link.session->queued_bytes() > options_.max_queued_bytes) {
        ++stats_.dropped_payloads;
        return;
      }
      link.session->send(std::move(payload));
      return;
    }
    if (link.pending_bytes + payload.size() > options_.max_queued_bytes) {
      ++stats_.dropped_payloads;
      return;
    }
    link.pending_bytes += payload.size();
    link.pending.push_back(std::move(payload));
    if (!link.session && !link.connecting && !link.retry) connect(to);
  }

  bool send_on(ConnectionId conn, std::string payload) {
    auto it = sessions_.find(conn);
    if (it == sessions_.end() || it->second->closed()) return false;
    it->second->send(std::move(payload));
    return true;
  }

  void connect(NodeId node) {
    Link& link = links_[node];
    if (stopped_ || link.connecting || link.session || link.address.empty()) return;
    auto hp = split_host_port(link.address);
    if (!hp.ok()) {
      spdlog::warn("node {}: {}", node, hp.status().to_string());
      return;
    }
    link.connecting = true;
    ++stats_.connects;
    auto socket = std::make_shared<asio::ip::tcp::socket>(io_);
    std::error_code ec;
    auto address = asio::ip::make_address(hp->first, ec);
    if (ec) {
      link.connecting = false;
      spdlog::warn("node {}: bad address '{}'", node, link.address);
      return;
    }
    asio::ip::tcp::endpoint endpoint(address, hp->second);
    const std::string target = link.address;
    auto self = shared_from_this();
    // A connect the network swallows (SYNs dropped) is abandoned after
    // connect_timeout: closing the socket completes it with an error, and the
    // retry sends a fresh SYN instead of waiting on the kernel's doubling
    // SYN retries.
    std::shared_ptr<asio::steady_timer> deadline;
    if (options_.connect_timeout.count() > 0) {
      deadline = std::make_shared<asio::steady_timer>(io_, options_.connect_timeout);
      deadline->async_wait([socket](std::error_code ec) {
        if (ec) return;  // connected (or failed) first
        std::error_code ignored;
        socket->close(ignored);
      });
    }
    socket->async_connect(endpoint, [this, self, socket, node, target,
                                     deadline](std::error_code ec) {
      if (deadline) deadline->cancel();
      Link& link = links_[node];
      link.connecting = false;
      if (stopped_) return;
      if (link.address != target) {  // readdressed meanwhile
        connect(node);
        return;
      }
      if (ec) {
        schedule_retry(node);
        return;
      }
      auto session = std::make_shared<Session>(self, std::move(*socket), ++next_id_,
                                               HandshakeRole::kInitiator, node);
      sessions_[session->id()] = session;
      link.session = session;
      session->start();
    });
  }

  void schedule_retry(NodeId node) {
    Link& link = links_[node];
    if (stopped_ || link.retry) return;
    // Exponential backoff with full jitter, so that restarted peers are not
    // hammered in lockstep.
    link.backoff = std::min(options_.backoff_max,
                            std::max(options_.backoff_min, link.backoff * 2));
    std::uniform_int_distribution<int64_t> jitter(link.backoff.count() / 2, link.backoff.count());
    link.retry = std::make_unique<asio::steady_timer>(io_, std::chrono::milliseconds(jitter(rng_)));
    auto self = shared_from_this();
    link.retry->async_wait([this, self, node](std::error_code ec) {
      Link& link = links_[node];
      link.retry.reset();
      if (ec || stopped_) return;
      connect(node);
    });
  }

  void on_session_authenticated(const std::shared_ptr<Session>& session) {
    for (auto& [node, link] : links_) {
      if (link.session != session) continue;
      if (session->peer() != node) {
        spdlog::warn("peer at {} proved the secret but is node {}, not node {}; closing",
                     link.address, session->peer(), node);
        session->close();
        return;
      }
      link.backoff = std::chrono::milliseconds(0);
      for (std::string& payload : link.pending) session->send(std::move(payload));
      link.pending.clear();
      link.pending_bytes = 0;
      return;
    }
  }

  void on_session_closed(const std::shared_ptr<Session>& session) {
    sessions_.erase(session->id());
    for (auto& [node, link] : links_) {
      if (link.session != session) continue;
      link.session.reset();
      // Unsent payloads of a broken session are lost, as the protocols allow.
      if (!stopped_) schedule_retry(node);
      return;
    }
  }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    std::error_code ec;
    acceptor_.close(ec);
    for (auto& [node, link] : links_) {
      if (link.retry) link.retry->cancel();
    }
    auto sessions = sessions_;
    for (auto& [id, s] : sessions) s->close();
    sessions_.clear();
    links_.clear();
  }

  asio::io_context& io_;
  TransportOptions options_;
  bool disowned_ = false;  // a peer refused this node as disowned (logged once)
  FrameHandler handler_;
  asio::ip::tcp::acceptor acceptor_;
  std::mt19937_64 rng_;
  uint16_t port_ = 0;
  ConnectionId next_id_ = 0;
  bool stopped_ = false;
  std::unordered_map<ConnectionId, std::shared_ptr<Session>> sessions_;
  std::map<NodeId, Link> links_;
  Stats stats_;
};

Transport::Transport(asio::io_context& io, TransportOptions options, FrameHandler handler)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(handler))) {}

Transport::~Transport() { impl_->stop(); }

Status Transport::listen() { return impl_->listen(); }
uint16_t Transport::port() const { return impl_->port_; }
void Transport::set_address(NodeId node, const std::string& host_port) {
  impl_->set_address(node, host_port);
}
void Transport::send(NodeId to, std::string payload) { impl_->send(to, std::move(payload)); }
bool Transport::send_on(ConnectionId conn, std::string payload) {
  return impl_->send_on(conn, std::move(payload));
}
void Transport::stop() { impl_->stop(); }
const Transport::Stats& Transport::stats() const { return impl_->stats_; }

}  // namespace statekv::net
