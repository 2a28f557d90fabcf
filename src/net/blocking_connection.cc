#include "net/blocking_connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "net/handshake.h"

namespace statekv::net {

BlockingConnection::~BlockingConnection() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<BlockingConnection>> BlockingConnection::open(const std::string& endpoint,
                                                                     const std::string& secret,
                                                                     Clock::time_point deadline,
                                                                     NodeId self,
                                                                     uint64_t incarnation) {
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos) {
    return Status::InvalidArgument("endpoint '" + endpoint + "' is not host:port");
  }
  const std::string host = endpoint.substr(0, colon);
  const std::string port = endpoint.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return Status::InvalidArgument("cannot resolve '" + endpoint + "': " + gai_strerror(rc));
  }
  auto conn = std::unique_ptr<BlockingConnection>(new BlockingConnection());
  conn->endpoint_ = endpoint;
  conn->fd_ = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int rc = ::connect(conn->fd_, res->ai_addr, res->ai_addrlen);
  ::freeaddrinfo(res);
  if (rc != 0 && errno != EINPROGRESS) {
    return Status::Unavailable("cannot connect to " + endpoint + ": " + std::strerror(errno));
  }
  if (Status s = conn->wait(POLLOUT, deadline); !s.ok()) return s;
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(conn->fd_, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    return Status::Unavailable("cannot connect to " + endpoint + ": " + std::strerror(err));
  }
  int one = 1;
  ::setsockopt(conn->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  HandshakeOptions hs_options;
  hs_options.secret = secret;
  hs_options.self = self;
  hs_options.incarnation = incarnation;
  hs_options.role = HandshakeRole::kInitiator;
  hs_options.peer_address = endpoint;
  auto hs = Handshake::start(std::move(hs_options));
  if (!hs.ok()) return hs.status();
  Handshake handshake = std::move(hs).value();
  while (true) {
    for (std::string& out : handshake.take_outgoing()) {
      if (Status s = conn->write_all(encode_frame(out), deadline); !s.ok()) return s;
    }
    if (handshake.refused()) {
      return Status::Aborted("handshake with " + endpoint +
                             " failed: " + std::string(handshake.refusal_reason()));
    }
    if (handshake.accepted()) break;
    auto frame = conn->read_frame(deadline);
    if (!frame.ok()) {
      // A refusal (a wrong secret) comes as a frame saying so (handshake.h),
      // above. A node that said nothing before the deadline is stalled
      // (paused, overloaded), and one that dropped the connection is stopping
      // or restarting: another may answer, or this one a moment later.
      return Status::Unavailable("handshake with " + endpoint +
                                 " failed: " + frame.status().message() +
                                 (frame.status().code() == Status::Code::kTimeout
                                      ? " (the node may be stalled)"
                                      : " (the node may be restarting; is the cluster secret "
                                        "right?)"));
    }
    handshake.on_frame(*frame);
  }
  conn->node_ = *handshake.peer();
  conn->reader_.set_max_frame_bytes(kMaxFrameBytes);  // authenticated: frame.h
  return conn;
}

Status BlockingConnection::send(const WireMessage& msg, Clock::time_point deadline) {
  const std::string payload = encode_wire(msg);
  if (Status fits = frame_fits(payload.size(), "the request"); !fits.ok()) return fits;
  return write_all(encode_frame(payload), deadline);
}

Result<WireMessage> BlockingConnection::receive(Clock::time_point deadline) {
  auto frame = read_frame(deadline);
  if (!frame.ok()) return frame.status();
  return decode_wire(*frame);
}

namespace {

template <typename Reply, typename Request>
Result<Reply> round_trip(BlockingConnection& conn, const Request& request,
                         BlockingConnection::Clock::time_point deadline) {
  if (Status s = conn.send(request, deadline); !s.ok()) return s;
  auto reply = conn.receive(deadline);
  if (!reply.ok()) return reply.status();
  auto* r = std::get_if<Reply>(&*reply);
  if (r == nullptr || r->call != request.call) {
    return Status::Internal("unexpected frame from " + conn.endpoint());
  }
  return std::move(*r);
}

}  // namespace

Result<AdminReplyFrame> BlockingConnection::call(const AdminFrame& request,
                                                 Clock::time_point deadline) {
  return round_trip<AdminReplyFrame>(*this, request, deadline);
}

Result<ForwardReplyFrame> BlockingConnection::call(const ForwardFrame& request,
                                                   Clock::time_point deadline) {
  return round_trip<ForwardReplyFrame>(*this, request, deadline);
}

bool BlockingConnection::alive() const {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return true;
  if (p.revents & (POLLERR | POLLHUP)) return false;
  char c;
  const ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR));
}

Status BlockingConnection::wait(short events, Clock::time_point deadline) {
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Status::Timeout("no answer from " + endpoint_ + " in time");
    pollfd p{fd_, events, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc > 0) return Status::OK();
    if (rc < 0 && errno != EINTR) return Status::IOError(std::strerror(errno));
  }
}

Status BlockingConnection::write_all(const std::string& bytes, Clock::time_point deadline) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (Status s = wait(POLLOUT, deadline); !s.ok()) return s;
      continue;
    }
    return Status::Unavailable("connection to " + endpoint_ + " broke: " + std::strerror(errno));
  }
  return Status::OK();
}

Result<std::string> BlockingConnection::read_frame(Clock::time_point deadline) {
  while (true) {
    auto frame = reader_.next();
    if (!frame.ok()) return frame.status();
    if (frame->has_value()) return std::move(**frame);
    char buf[64 * 1024];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      reader_.feed(std::string_view(buf, static_cast<size_t>(n)));
      continue;
    }
    if (n == 0) return Status::Unavailable("connection to " + endpoint_ + " closed");
    if (errno == EAGAIN || errno == EINTR) {
      if (Status s = wait(POLLIN, deadline); !s.ok()) return s;
      continue;
    }
    return Status::Unavailable("connection to " + endpoint_ + " broke: " + std::strerror(errno));
  }
}

}  // namespace statekv::net
