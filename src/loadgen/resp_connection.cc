#include "loadgen/resp_connection.h"

#include <fmt/format.h>
#include <unistd.h>

#include "loadgen/leader_route.h"  // parse_resp_endpoints
#include "loadgen/socket.h"
#include "resp/writer.h"

namespace statekv::loadgen {
namespace {

// A reply's text for messages: errors and simple strings as they are, other
// types by name.
std::string describe_reply(const resp::Value& v) {
  using T = resp::Value::Type;
  switch (v.type) {
    case T::kSimple:
      return "+" + v.str.substr(0, 200);
    case T::kError:
      return "-" + v.str.substr(0, 200);
    case T::kInteger:
      return fmt::format(":{}", v.integer);
    case T::kBulk:
      return fmt::format("a bulk string of {} bytes", v.str.size());
    case T::kNull:
      return "a null";
    case T::kArray:
      return fmt::format("an array of {}", v.elements.size());
    default:
      return "a reply of another type";
  }
}

}  // namespace

Status check_wait_reply(const resp::Value& reply, int64_t n) {
  if (reply.type == resp::Value::Type::kError) {
    return Status::Unavailable("WAIT failed: -" + reply.str.substr(0, 200));
  }
  if (reply.type != resp::Value::Type::kInteger) {
    return Status::Corruption("WAIT answered " + describe_reply(reply) + ", not an integer");
  }
  if (reply.integer < n) {
    return Status::Unavailable(
        fmt::format("WAIT {}: only {} replica(s) acknowledged the write", n, reply.integer));
  }
  return Status::OK();
}

Result<std::unique_ptr<RespConnection>> RespConnection::connect(const HostPort& endpoint,
                                                                const RespOptions& options) {
  std::unique_ptr<RespConnection> conn(new RespConnection(endpoint, options));
  if (Status s = conn->open(); !s.ok()) return s;
  return conn;
}

std::unique_ptr<RespConnection> RespConnection::unopened(const HostPort& endpoint,
                                                         const RespOptions& options) {
  return std::unique_ptr<RespConnection>(new RespConnection(endpoint, options));
}

RespConnection::~RespConnection() {
  close_socket();
}

std::string RespConnection::describe() const {
  return fmt::format("resp {}:{}", endpoint_.host, endpoint_.port);
}

void RespConnection::close_socket() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  input_.clear();
}

Status RespConnection::open() {
  close_socket();
  auto fd = connect_tcp(endpoint_, options_.connect_timeout, options_.io_timeout, describe());
  if (!fd.ok()) return fd.status();
  fd_ = *fd;
  ++connects_;
  return Status::OK();
}

Result<resp::Value> RespConnection::read_reply(bool last) {
  char buf[16 * 1024];
  while (true) {
    if (!input_.empty()) {
      resp::Value value;
      const resp::ParseResult r = resp::parse_value(input_, value);
      if (r.status == resp::ParseStatus::kComplete) {
        // No command in flight after this one: anything after its reply is a
        // protocol error.
        if (last && r.consumed != input_.size()) {
          return Status::Corruption(describe() + ": bytes after the reply");
        }
        input_.erase(0, r.consumed);
        return value;
      }
      if (r.status == resp::ParseStatus::kError) {
        return Status::Corruption(describe() + ": bad reply: " + r.error);
      }
    }
    auto n = recv_some(fd_, buf, sizeof(buf), options_.io_timeout, describe());
    if (!n.ok()) return n.status();
    if (*n == 0) {
      return Status::Unavailable(describe() +
                                 (input_.empty() ? ": connection closed before a reply"
                                                 : ": connection closed in the middle of a reply"));
    }
    input_.append(buf, *n);
  }
}

Result<resp::Value> RespConnection::command(const std::vector<std::string_view>& args) {
  if (fd_ < 0) {
    if (Status s = open(); !s.ok()) return s;
  }
  request_.clear();
  resp::Writer w(&request_);
  w.array(args.size());
  for (std::string_view a : args) w.bulk(a);
  ++commands_;
  Status io = send_all(fd_, request_, describe());
  if (!io.ok()) {
    close_socket();
    return io;
  }
  auto reply = read_reply();
  if (!reply.ok()) close_socket();
  return reply;
}

Result<std::vector<resp::Value>> RespConnection::pipeline(
    const std::vector<std::vector<std::string>>& commands) {
  if (fd_ < 0) {
    if (Status s = open(); !s.ok()) return s;
  }
  request_.clear();
  resp::Writer w(&request_);
  for (const auto& args : commands) {
    w.array(args.size());
    for (const std::string& a : args) w.bulk(a);
  }
  commands_ += commands.size();
  if (Status io = send_all(fd_, request_, describe()); !io.ok()) {
    close_socket();
    return io;
  }
  std::vector<resp::Value> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) {
    auto reply = read_reply(i + 1 == commands.size());
    if (!reply.ok()) {
      close_socket();
      return reply.status();
    }
    replies.push_back(std::move(*reply));
  }
  return replies;
}

Status RespConnection::put(std::string_view key, std::string_view value) {
  key_.assign(options_.key_prefix);
  key_.append(key);
  auto reply = command({"SET", key_, value});
  if (!reply.ok()) return reply.status();
  if (reply->type == resp::Value::Type::kError) {
    return Status::Unavailable(describe() + ": SET: -" + reply->str.substr(0, 200));
  }
  if (reply->type != resp::Value::Type::kSimple || reply->str != "OK") {
    return Status::Corruption(describe() + ": SET answered " + describe_reply(*reply));
  }
  if (options_.wait_replicas <= 0) return Status::OK();
  const std::string n = std::to_string(options_.wait_replicas);
  const std::string timeout = std::to_string(options_.wait_timeout_ms);
  auto waited = command({"WAIT", n, timeout});
  if (!waited.ok()) return waited.status();
  if (Status s = check_wait_reply(*waited, options_.wait_replicas); !s.ok()) {
    const std::string msg = describe() + ": " + s.message();
    return s.code() == Status::Code::kCorruption ? Status::Corruption(msg)
                                                 : Status::Unavailable(msg);
  }
  return Status::OK();
}

Status RespConnection::send_puts(std::span<const Put> puts, std::span<const size_t> which) {
  if (which.empty()) return Status::OK();
  if (fd_ < 0) {
    if (Status s = open(); !s.ok()) return s;
  }
  broken_ = Status::OK();
  request_.clear();
  resp::Writer w(&request_);
  for (size_t i : which) {
    key_.assign(options_.key_prefix);
    key_.append(puts[i].key);
    w.array(3);
    w.bulk("SET");
    w.bulk(key_);
    w.bulk(puts[i].value);
    due_.push_back(i);
  }
  commands_ += which.size();
  if (options_.wait_replicas > 0) {
    const std::string n = std::to_string(options_.wait_replicas);
    const std::string timeout = std::to_string(options_.wait_timeout_ms);
    w.array(3);
    w.bulk("WAIT");
    w.bulk(n);
    w.bulk(timeout);
    due_.push_back(kWaitReply);
    ++commands_;
  }
  if (Status io = send_all(fd_, request_, describe()); !io.ok()) {
    close_socket();
    due_.clear();
    waited_.clear();
    return io;
  }
  return Status::OK();
}

Status RespConnection::receive() {
  char buf[16 * 1024];
  auto n = recv_some(fd_, buf, sizeof(buf), options_.io_timeout, describe());
  if (n.ok() && *n > 0) {
    input_.append(buf, *n);
    return Status::OK();
  }
  broken_ = !n.ok() ? n.status()
                    : Status::Unavailable(describe() + (input_.empty()
                                                            ? ": connection closed before a reply"
                                                            : ": connection closed in the middle "
                                                              "of a reply"));
  close_socket();
  return broken_;
}

std::vector<RespConnection::Refused> RespConnection::take_replies(
    std::span<LoadClock::time_point> acked) {
  std::vector<Refused> refused;
  // Every put still due (and every one a WAIT still owed) fails with `why`.
  auto abandon = [&](const Status& why) {
    for (size_t i : waited_) refused.push_back({i, why});
    for (size_t i : due_) {
      if (i != kWaitReply) refused.push_back({i, why});
    }
    due_.clear();
    waited_.clear();
  };
  while (!due_.empty() && !input_.empty()) {
    resp::Value reply;
    const resp::ParseResult r = resp::parse_value(input_, reply);
    if (r.status == resp::ParseStatus::kIncomplete) break;
    if (r.status == resp::ParseStatus::kError) {
      close_socket();
      abandon(Status::Corruption(describe() + ": bad reply: " + r.error));
      return refused;
    }
    input_.erase(0, r.consumed);
    const size_t put = due_.front();
    due_.pop_front();
    const auto now = LoadClock::now();
    if (put == kWaitReply) {
      Status s = check_wait_reply(reply, options_.wait_replicas);
      for (size_t i : waited_) {
        if (s.ok()) {
          acked[i] = now;
        } else {
          refused.push_back({i, Status::Unavailable(describe() + ": " + s.message())});
        }
      }
      waited_.clear();
    } else if (reply.type == resp::Value::Type::kError) {
      refused.push_back(
          {put, Status::Unavailable(describe() + ": SET: -" + reply.str.substr(0, 200))});
    } else if (reply.type != resp::Value::Type::kSimple || reply.str != "OK") {
      refused.push_back(
          {put, Status::Corruption(describe() + ": SET answered " + describe_reply(reply))});
    } else if (options_.wait_replicas > 0) {
      waited_.push_back(put);
    } else {
      acked[put] = now;
    }
  }
  if (due_.empty() && !input_.empty()) {
    // Nothing is in flight: bytes after the last reply break the protocol.
    close_socket();
    // (Every put had its answer: the failure goes with the batch's first.)
    if (refused.empty()) {
      refused.push_back({0, Status::Corruption(describe() + ": bytes after the reply")});
    }
  } else if (!due_.empty() && !broken_.ok()) {
    abandon(broken_);
  }
  return refused;
}

Status RespConnection::put_batch(std::span<const Put> puts,
                                 std::span<LoadClock::time_point> acked) {
  std::vector<size_t> all(puts.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  if (Status s = send_puts(puts, all); !s.ok()) return s;
  Status first;
  while (true) {
    for (Refused& r : take_replies(acked)) {
      if (first.ok()) first = std::move(r.status);
    }
    if (due_.empty()) return first;
    (void)receive();  // a failure comes back from take_replies
  }
}

Result<ConnectionFactory> make_resp_connection_factory(const std::vector<std::string>& endpoints,
                                                       const RespOptions& options) {
  if (options.wait_replicas < 0) return Status::InvalidArgument("--wait must be >= 0");
  auto endpoints_ok = parse_resp_endpoints(endpoints);
  if (!endpoints_ok.ok()) return endpoints_ok.status();
  std::vector<HostPort> parsed = std::move(*endpoints_ok);
  return ConnectionFactory(
      [parsed = std::move(parsed), options](size_t client) -> Result<std::unique_ptr<Connection>> {
        auto conn = RespConnection::connect(parsed[client % parsed.size()], options);
        if (!conn.ok()) return conn.status();
        return std::unique_ptr<Connection>(std::move(*conn));
      });
}

}  // namespace statekv::loadgen
