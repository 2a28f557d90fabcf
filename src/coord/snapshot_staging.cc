#include "coord/snapshot_staging.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

namespace statekv::coord {

Result<std::unique_ptr<FileSnapshotSink>> FileSnapshotSink::create(std::filesystem::path path) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec)
    return Status::IOError("cannot create " + path.parent_path().string() + ": " + ec.message());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return Status::IOError("cannot create " + path.string() + ": " + std::strerror(errno));
  return std::unique_ptr<FileSnapshotSink>(new FileSnapshotSink(std::move(path), fd));
}

FileSnapshotSink::~FileSnapshotSink() {
  ::close(fd_);
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

Status FileSnapshotSink::append(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      Status error = Status::IOError("writing " + path_.string() + ": " + std::strerror(errno));
      // Raft starts the transfer over in memory (raft.h, stage_in_memory_).
      spdlog::warn("cannot stage a snapshot in a file ({}): the transfer starts over in memory",
                   error.to_string());
      return error;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
    size_ += static_cast<uint64_t>(n);
  }
  return Status::OK();
}

size_t clear_snapshot_staging(const std::filesystem::path& dir) {
  std::error_code ec;
  size_t removed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::error_code gone;
    if (entry.is_regular_file(gone) && std::filesystem::remove(entry.path(), gone)) ++removed;
  }
  return removed;
}

}  // namespace statekv::coord
