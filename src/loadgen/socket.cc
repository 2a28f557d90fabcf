#include "loadgen/socket.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace statekv::loadgen {

Result<int> connect_tcp(const HostPort& endpoint, std::chrono::milliseconds connect_timeout,
                        std::chrono::milliseconds io_timeout, const std::string& who) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addrs = nullptr;
  const std::string port = std::to_string(endpoint.port);
  if (int rc = ::getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &addrs); rc != 0) {
    return Status::InvalidArgument(who + ": cannot resolve: " + ::gai_strerror(rc));
  }
  std::string last_error = "no address";
  bool timed_out = false;
  int out = -1;
  for (addrinfo* a = addrs; a != nullptr && out < 0; a = a->ai_next) {
    const int fd =
        ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) {
      last_error = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    // Non-blocking connect, so that an unreachable address fails within the timeout.
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = ::poll(&p, 1, static_cast<int>(connect_timeout.count()));
      if (rc == 0) {
        timed_out = true;
        last_error = "connect timed out";
        ::close(fd);
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      if (rc < 0) {
        err = errno;
      } else {
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      }
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc != 0) {
      last_error = std::string("connect: ") + std::strerror(errno);
      ::close(fd);
      continue;
    }
    // Blocking from here on, bounded by the I/O timeout on each send and receive.
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(io_timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((io_timeout.count() % 1000) * 1000);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    const int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    out = fd;
  }
  ::freeaddrinfo(addrs);
  if (out < 0) {
    return timed_out ? Status::Timeout(who + ": " + last_error)
                     : Status::Unavailable(who + ": " + last_error);
  }
  return out;
}

Status send_all(int fd, std::string_view bytes, const std::string& who) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::Timeout(who + ": send timed out");
      return Status::IOError(who + ": send: " + std::strerror(errno));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

Result<size_t> recv_some(int fd, char* buf, size_t size, std::chrono::milliseconds io_timeout,
                         const std::string& who) {
  while (true) {
    const ssize_t n = ::recv(fd, buf, size, 0);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return Status::Timeout(fmt::format("{}: no reply within {} ms", who, io_timeout.count()));
    }
    return Status::IOError(who + ": recv: " + std::strerror(errno));
  }
}

}  // namespace statekv::loadgen
