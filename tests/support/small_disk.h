// A small tmpfs mounted over a directory, for tests of a disk that fills: a
// node's data directory, or a part of it. Needs root (CAP_SYS_ADMIN); a test
// that cannot mount skips and says why.
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace statekv::itest {

// `sh -c command`: its exit status and its output (stdout, then stderr).
std::pair<int, std::string> shell(const std::string& command);

// Unmounted (lazily: a server may still hold it) when destroyed.
class SmallDisk {
 public:
  SmallDisk() = default;
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;
  ~SmallDisk();

  // Mounts `megabytes` of tmpfs at `at`; the reason when it cannot.
  std::optional<std::string> mount(const std::string& at, int megabytes);
  // Room again: the same tmpfs, `megabytes` large, its files kept.
  bool grow(int megabytes);
  // A directory to delete once unmounted: the temp dir holding the mount point,
  // which its own cleanup could not remove while the tmpfs was mounted there.
  void remove_after_unmount(std::string path) { leftover_ = std::move(path); }

 private:
  std::string dir_;
  std::string leftover_;
  bool mounted_ = false;
};

}  // namespace statekv::itest
