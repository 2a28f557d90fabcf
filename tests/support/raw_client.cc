#include "support/raw_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "support/net.h"

namespace statekv::itest {

using Clock = std::chrono::steady_clock;

std::string encode_command(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) {
    out += "$" + std::to_string(a.size()) + "\r\n";
    out += a;
    out += "\r\n";
  }
  return out;
}

Result<RawClient> RawClient::connect(uint16_t port, std::chrono::milliseconds timeout) {
  Result<int> fd = connect_localhost(port, timeout);
  if (!fd.ok()) return fd.status();
  return RawClient(*fd);
}

RawClient::RawClient(RawClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), buf_(std::move(other.buf_)) {}

RawClient& RawClient::operator=(RawClient&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    buf_ = std::move(other.buf_);
  }
  return *this;
}

RawClient::~RawClient() {
  if (fd_ >= 0) close(fd_);
}

Status RawClient::send(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IOError(std::string("send: ") + std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

Status RawClient::send_command(const std::vector<std::string>& args) {
  return send(encode_command(args));
}

Result<size_t> RawClient::fill(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  pollfd p{fd_, POLLIN, 0};
  int r = poll(&p, 1, static_cast<int>(std::max<long long>(0, left.count())));
  if (r == 0) return Status::Timeout("no reply before the deadline");
  if (r < 0) return Status::IOError(std::string("poll: ") + std::strerror(errno));
  char chunk[64 * 1024];
  ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
  if (n < 0) {
    if (errno == ECONNRESET) return size_t{0};
    return Status::IOError(std::string("recv: ") + std::strerror(errno));
  }
  buf_.append(chunk, static_cast<size_t>(n));
  return static_cast<size_t>(n);
}

Result<RawReply> RawClient::read_reply(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  // Replies from a server are not bounded by the request limits.
  resp::Limits limits;
  limits.max_bulk_len = ~size_t{0} >> 1;
  limits.max_multibulk_len = ~size_t{0} >> 1;
  for (;;) {
    if (!buf_.empty()) {
      RawReply out;
      resp::ParseResult pr = resp::parse_value(buf_, out.value, limits);
      if (pr.status == resp::ParseStatus::kComplete) {
        out.bytes = buf_.substr(0, pr.consumed);
        buf_.erase(0, pr.consumed);
        return out;
      }
      if (pr.status == resp::ParseStatus::kError) {
        return Status::Corruption("invalid reply (" + pr.error + "): " + buf_.substr(0, 200));
      }
    }
    Result<size_t> n = fill(deadline);
    if (!n.ok()) return n.status();
    if (*n == 0) return Status::Unavailable("connection closed by the server");
  }
}

Result<RawReply> RawClient::call(const std::vector<std::string>& args) {
  Status st = send_command(args);
  if (!st.ok()) return st;
  return read_reply();
}

bool RawClient::closed_by_peer(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    buf_.clear();
    Result<size_t> n = fill(deadline);
    if (!n.ok()) return n.status().code() != Status::Code::kTimeout;  // I/O error: gone too
    if (*n == 0) return true;
  }
  return false;
}

}  // namespace statekv::itest
