#include "net/log_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <system_error>

namespace statekv::net::log_files {

namespace fs = std::filesystem;

Status io_error(std::string_view what, const fs::path& path, int err) {
  return Status::IOError(
      fmt::format("{} {}: {}", what, path.string(), std::generic_category().message(err)));
}

Status write_all(int fd, std::string_view bytes, const fs::path& path) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("write", path, errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

Status pwrite_all(int fd, std::string_view bytes, uint64_t offset, const fs::path& path) {
  while (!bytes.empty()) {
    ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error("write", path, errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::OK();
}

Result<std::string> read_file(const fs::path& path, uint64_t limit) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return io_error("open", path, errno);
  std::string data;
  struct stat st {};
  if (::fstat(fd, &st) == 0) {
    data.reserve(static_cast<size_t>(std::min<uint64_t>(static_cast<uint64_t>(st.st_size), limit)));
  }
  char buf[1 << 16];
  while (data.size() < limit) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(sizeof buf, limit - data.size()));
    ssize_t n = ::read(fd, buf, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return io_error("read", path, err);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

Status replace_file(const fs::path& path, std::string_view bytes, bool fsync) {
  fs::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("open", tmp, errno);
  Status written = write_all(fd, bytes, tmp);
  if (written.ok() && fsync && ::fsync(fd) != 0) written = io_error("fsync", tmp, errno);
  ::close(fd);
  if (!written.ok()) return written;
  if (::rename(tmp.c_str(), path.c_str()) != 0) return io_error("rename", tmp, errno);
  if (!fsync) return Status::OK();
  // The rename is durable once the directory is.
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return io_error("open", dir, errno);
  Status synced = ::fsync(dir_fd) == 0 ? Status::OK() : io_error("fsync", dir, errno);
  ::close(dir_fd);
  return synced;
}

Status rewrite_tail(const fs::path& path, uint64_t size, std::string_view tail, bool fsync) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return io_error("open", path, errno);
  Status s;
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
    s = io_error("ftruncate", path, errno);
  } else if (!tail.empty() && ::lseek(fd, static_cast<off_t>(size), SEEK_SET) < 0) {
    s = io_error("lseek", path, errno);
  } else if (!tail.empty()) {
    s = write_all(fd, tail, path);
  }
  if (s.ok() && fsync && ::fdatasync(fd) != 0) s = io_error("fdatasync", path, errno);
  ::close(fd);
  return s;
}

std::optional<uint64_t> parse_numbered_name(std::string_view name, std::string_view prefix,
                                            std::string_view suffix) {
  if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) ||
      !name.ends_with(suffix)) {
    return std::nullopt;
  }
  std::string_view digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  uint64_t number = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
  if (ec != std::errc() || end != digits.data() + digits.size() || number == 0) {
    return std::nullopt;
  }
  return number;
}

}  // namespace statekv::net::log_files
