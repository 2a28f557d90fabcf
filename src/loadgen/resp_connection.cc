#include "loadgen/resp_connection.h"

#include <fmt/format.h>
#include <unistd.h>

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

Result<resp::Value> RespConnection::read_reply() {
  char buf[16 * 1024];
  while (true) {
    if (!input_.empty()) {
      resp::Value value;
      const resp::ParseResult r = resp::parse_value(input_, value);
      if (r.status == resp::ParseStatus::kComplete) {
        // One command in flight: anything after its reply is a protocol error.
        if (r.consumed != input_.size()) {
          return Status::Corruption(describe() + ": bytes after the reply");
        }
        input_.clear();
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

Result<ConnectionFactory> make_resp_connection_factory(const std::vector<std::string>& endpoints,
                                                       const RespOptions& options) {
  if (endpoints.empty()) return Status::InvalidArgument("no RESP endpoints given");
  if (options.wait_replicas < 0) return Status::InvalidArgument("--wait must be >= 0");
  std::vector<HostPort> parsed;
  for (const auto& e : endpoints) {
    if (e.find("://") != std::string::npos) {
      return Status::InvalidArgument("RESP endpoint " + e + ": expected host:port");
    }
    auto hp = parse_endpoint(e);
    if (!hp.ok()) return hp.status();
    parsed.push_back(std::move(*hp));
  }
  return ConnectionFactory(
      [parsed = std::move(parsed), options](size_t client) -> Result<std::unique_ptr<Connection>> {
        auto conn = RespConnection::connect(parsed[client % parsed.size()], options);
        if (!conn.ok()) return conn.status();
        return std::unique_ptr<Connection>(std::move(*conn));
      });
}

}  // namespace statekv::loadgen
