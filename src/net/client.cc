#include "net/client.h"

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
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "net/frame.h"
#include "net/handshake.h"

namespace statekv::net {

using Clock = std::chrono::steady_clock;
using replication::ClientOp;
using replication::ClientRequest;
using replication::ClientResponse;

// One authenticated blocking connection to one endpoint.
class Client::Connection {
 public:
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }

  static Result<std::unique_ptr<Connection>> open(const std::string& endpoint,
                                                  const std::string& secret,
                                                  Clock::time_point deadline) {
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
    auto conn = std::unique_ptr<Connection>(new Connection());
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
    hs_options.self = NodeId(0);
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
        return Status::Aborted("handshake with " + endpoint + " failed: " +
                               std::string(handshake.refusal_reason()));
      }
      if (handshake.accepted()) break;
      auto frame = conn->read_frame(deadline);
      if (!frame.ok()) {
        return Status::Aborted("handshake with " + endpoint + " failed: " +
                               frame.status().message() + " (is the cluster secret right?)");
      }
      handshake.on_frame(*frame);
    }
    conn->node_ = *handshake.peer();
    return conn;
  }

  Status send(const WireMessage& msg, Clock::time_point deadline) {
    return write_all(encode_frame(encode_wire(msg)), deadline);
  }

  Result<WireMessage> receive(Clock::time_point deadline) {
    auto frame = read_frame(deadline);
    if (!frame.ok()) return frame.status();
    return decode_wire(*frame);
  }

  NodeId node() const { return node_; }

  // False once the peer closed or reset the connection (checked without
  // blocking), so that a request is never sent into a connection known dead:
  // such a request would certainly not have happened, yet look unanswered.
  bool alive() const {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return true;
    if (p.revents & (POLLERR | POLLHUP)) return false;
    char c;
    const ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR));
  }

 private:
  Connection() : reader_(64u << 20) {}

  Status wait(short events, Clock::time_point deadline) {
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return Status::Timeout("no answer from " + endpoint_ + " in time");
      pollfd p{fd_, events, 0};
      int rc = ::poll(&p, 1, static_cast<int>(left.count()));
      if (rc > 0) return Status::OK();
      if (rc < 0 && errno != EINTR) return Status::IOError(std::strerror(errno));
    }
  }

  Status write_all(const std::string& bytes, Clock::time_point deadline) {
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

  Result<std::string> read_frame(Clock::time_point deadline) {
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

  std::string endpoint_;
  int fd_ = -1;
  FrameReader reader_;
  NodeId node_;
};

Client::Client(ClientOptions options) : options_(std::move(options)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::create(ClientOptions options) {
  if (options.endpoints.empty()) return Status::InvalidArgument("no endpoints given");
  if (options.secret.empty()) {
    return Status::InvalidArgument("no cluster secret given (--secret or STATEKV_CLUSTER_SECRET)");
  }
  return std::unique_ptr<Client>(new Client(std::move(options)));
}

Result<Client::Connection*> Client::connection(const std::string& endpoint) {
  auto it = connections_.find(endpoint);
  if (it != connections_.end()) {
    if (it->second->alive()) return it->second.get();
    connections_.erase(it);
  }
  auto conn = Connection::open(endpoint, options_.secret, Clock::now() + options_.connect_timeout);
  if (!conn.ok()) return conn.status();
  endpoint_of_[(*conn)->node()] = endpoint;
  Connection* raw = conn->get();
  connections_[endpoint] = std::move(conn).value();
  return raw;
}

NodeId Client::node_at(const std::string& endpoint) const {
  auto it = connections_.find(endpoint);
  return it == connections_.end() ? NodeId() : it->second->node();
}

std::string Client::pick(const std::optional<NodeId>& hint) {
  if (hint) {
    // Learn the ids behind endpoints not connected yet until the hinted one shows.
    for (size_t i = 0; i < options_.endpoints.size() && !endpoint_of_.count(*hint); ++i) {
      if (!connections_.count(options_.endpoints[i])) (void)connection(options_.endpoints[i]);
    }
    auto it = endpoint_of_.find(*hint);
    if (it != endpoint_of_.end()) return it->second;
  }
  return options_.endpoints[next_++ % options_.endpoints.size()];
}

Result<ClientResponse> Client::call(ClientRequest request) {
  const auto deadline = Clock::now() + options_.deadline;
  std::optional<NodeId> hint;
  std::set<std::string> unreachable;
  std::string last_unreachable, last_refusal;
  int attempt = 0;
  while (Clock::now() < deadline) {
    const std::string endpoint = pick(hint);
    auto conn = connection(endpoint);
    if (!conn.ok()) {
      // A refused handshake will be refused again: the secret is wrong.
      if (conn.status().code() == Status::Code::kAborted) return conn.status();
      unreachable.insert(endpoint);
      last_unreachable = conn.status().message();
      hint.reset();
      if (++attempt % options_.endpoints.size() == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      continue;
    }
    const uint64_t call_id = ++next_call_;
    RequestFrame frame{call_id, request};
    Status sent = (*conn)->send(frame, deadline);
    if (!sent.ok()) {
      // Nothing was answered: unless the request never left, it may have happened.
      connections_.erase(endpoint);
      return Status::Unavailable(sent.message() + "; the operation may or may not have happened");
    }
    auto reply = (*conn)->receive(deadline);
    if (!reply.ok()) {
      connections_.erase(endpoint);
      return Status::Timeout(reply.status().message() +
                             "; the operation may or may not have happened (a leader that lost "
                             "its majority cannot commit, or the node is overloaded)");
    }
    auto* response = std::get_if<ResponseFrame>(&*reply);
    if (response == nullptr || response->call != call_id) {
      connections_.erase(endpoint);
      return Status::Internal("unexpected frame from " + endpoint);
    }
    if (!response->status.ok()) return response->status;
    const ClientResponse& r = response->response;
    if (r.outcome == ClientResponse::Outcome::kFail && r.not_served) {
      // Certainly did not happen there: try the leader it names, or another node.
      unreachable.erase(endpoint);
      last_refusal = "node " + std::to_string((*conn)->node().value()) +
                     (r.leader_hint ? " named node " + std::to_string(r.leader_hint->value()) +
                                          " as leader"
                                    : std::string(" knows no leader"));
      const bool same = r.leader_hint && endpoint_of_.count(*r.leader_hint) &&
                        endpoint_of_[*r.leader_hint] == endpoint;
      hint = same ? std::nullopt : r.leader_hint;
      if (!hint || same) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    return r;
  }
  // Certainly not done anywhere: say what was seen.
  std::string seen = std::to_string(unreachable.size()) + " of " +
                     std::to_string(options_.endpoints.size()) + " endpoints unreachable";
  if (!last_unreachable.empty()) seen += " (" + last_unreachable + ")";
  if (!last_refusal.empty()) seen += "; " + last_refusal;
  return Status::Unavailable("no leader could serve the request within " +
                             std::to_string(options_.deadline.count()) + " ms: " + seen +
                             "; a majority of the voters may be down or cut off");
}

Status Client::put(const std::string& key, const std::string& value) {
  ClientRequest r;
  r.op = ClientOp::kWrite;
  r.key = key;
  r.value = value;
  auto resp = call(std::move(r));
  return resp.ok() ? Status::OK() : resp.status();
}

Result<std::optional<std::string>> Client::get(const std::string& key) {
  ClientRequest r;
  r.op = ClientOp::kRead;
  r.key = key;
  auto resp = call(std::move(r));
  if (!resp.ok()) return resp.status();
  return resp->value;
}

Result<bool> Client::cas(const std::string& key, const std::optional<std::string>& expected,
                         const std::string& value) {
  ClientRequest r;
  r.op = ClientOp::kCas;
  r.key = key;
  r.expected = expected;
  r.value = value;
  auto resp = call(std::move(r));
  if (!resp.ok()) return resp.status();
  return resp->outcome == ClientResponse::Outcome::kOk;
}

Result<std::string> Client::status(const std::string& endpoint) {
  const auto deadline = Clock::now() + options_.connect_timeout + std::chrono::seconds(2);
  auto conn = connection(endpoint);
  if (!conn.ok()) return conn.status();
  const uint64_t call_id = ++next_call_;
  if (Status s = (*conn)->send(AdminFrame{call_id, AdminOp::kStatus, NodeId(), ""}, deadline);
      !s.ok()) {
    connections_.erase(endpoint);
    return s;
  }
  auto reply = (*conn)->receive(deadline);
  if (!reply.ok()) {
    connections_.erase(endpoint);
    return reply.status();
  }
  auto* r = std::get_if<AdminReplyFrame>(&*reply);
  if (r == nullptr || r->call != call_id) {
    connections_.erase(endpoint);
    return Status::Internal("unexpected frame from " + endpoint);
  }
  if (!r->status.ok()) return r->status;
  return r->body;
}

Status Client::admin_on_leader(AdminOp op, NodeId node) {
  const auto deadline = Clock::now() + options_.deadline;
  Status last = Status::Unavailable("no endpoint answered");
  std::optional<NodeId> hint;
  while (Clock::now() < deadline) {
    const std::string endpoint = pick(hint);
    hint.reset();
    auto conn = connection(endpoint);
    if (!conn.ok()) {
      last = conn.status();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    const uint64_t call_id = ++next_call_;
    if (Status s = (*conn)->send(AdminFrame{call_id, op, node, ""}, deadline); !s.ok()) {
      connections_.erase(endpoint);
      last = s;
      continue;
    }
    auto reply = (*conn)->receive(deadline);
    if (!reply.ok()) {
      connections_.erase(endpoint);
      return reply.status();
    }
    auto* r = std::get_if<AdminReplyFrame>(&*reply);
    if (r == nullptr || r->call != call_id) {
      connections_.erase(endpoint);
      return Status::Internal("unexpected frame from " + endpoint);
    }
    if (r->status.code() == Status::Code::kUnavailable) {
      // Not the leader: find it through that node's status.
      last = r->status;
      auto status_json = status(endpoint);
      if (status_json.ok()) {
        auto j = nlohmann::json::parse(*status_json, nullptr, /*allow_exceptions=*/false);
        if (j.is_object() && j["leader"].is_number_unsigned() && j["leader"].get<uint64_t>() != 0) {
          hint = NodeId(j["leader"].get<uint64_t>());
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    return r->status;
  }
  return last;
}

Status Client::add_voter(NodeId node) { return admin_on_leader(AdminOp::kAddVoter, node); }
Status Client::remove_voter(NodeId node) { return admin_on_leader(AdminOp::kRemoveVoter, node); }
Status Client::transfer_leader(NodeId to) { return admin_on_leader(AdminOp::kTransferLeader, to); }

}  // namespace statekv::net
