#include "support/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <string>

namespace statekv::itest {

namespace {

sockaddr_in localhost(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

// The file whose bytes stand for ports (byte p: port p), opened once and never
// closed: closing any descriptor of a file drops every record lock this process
// holds on it. -1 if it cannot be opened (then nothing is reserved: every
// reservation succeeds, as before reservations existed).
int port_lock_file() {
  static const int fd = [] {
    const auto path = std::filesystem::temp_directory_path() / "statekv-test-ports.lock";
    return ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  }();
  return fd;
}

}  // namespace

bool reserve_ports(uint16_t first, uint16_t count) {
  // Record locks never conflict with the process's own, so the ports this
  // process reserved are remembered here too.
  static std::mutex mu;
  static std::set<uint32_t> mine;
  std::lock_guard lock(mu);
  for (uint32_t p = first; p < uint32_t{first} + count; ++p) {
    if (mine.count(p) != 0) return false;
  }
  const int fd = port_lock_file();
  if (fd >= 0) {
    struct flock range {};
    range.l_type = F_WRLCK;
    range.l_whence = SEEK_SET;
    range.l_start = first;
    range.l_len = count;
    if (::fcntl(fd, F_SETLK, &range) != 0) return false;  // another test process holds one
  }
  for (uint32_t p = first; p < uint32_t{first} + count; ++p) mine.insert(p);
  return true;
}

Result<uint16_t> pick_free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::IOError(errno_text("socket"));
  sockaddr_in addr = localhost(0);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Status st = Status::IOError(errno_text("bind/getsockname"));
    close(fd);
    return st;
  }
  close(fd);
  return static_cast<uint16_t>(ntohs(addr.sin_port));
}

Result<uint16_t> pick_free_low_port() {
  static std::atomic<uint32_t> salt{0};
  std::mt19937 rng(static_cast<unsigned>(getpid()) * 2654435761u + salt.fetch_add(7919));
  for (int attempt = 0; attempt < 200; ++attempt) {
    const uint16_t port = static_cast<uint16_t>(25000 + rng() % 7000);
    if (!reserve_ports(port, 1)) continue;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Status::IOError(errno_text("socket"));
    sockaddr_in addr = localhost(port);
    const bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (free) return port;
  }
  return Status::Unavailable("no free port in 25000..31999");
}

Result<int> connect_localhost(uint16_t port, std::chrono::milliseconds timeout) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::IOError(errno_text("socket"));
  sockaddr_in addr = localhost(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) {
      Status st = Status::Unavailable(errno_text("connect"));
      close(fd);
      return st;
    }
    pollfd p{fd, POLLOUT, 0};
    int n = poll(&p, 1, static_cast<int>(timeout.count()));
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (n <= 0 || err != 0) {
      close(fd);
      return n <= 0 ? Status::Timeout("connect timed out")
                    : Status::Unavailable(std::string("connect: ") + std::strerror(err));
    }
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

}  // namespace statekv::itest
