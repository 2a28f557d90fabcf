#include "support/small_disk.h"

#include <chrono>

#include "support/program.h"

namespace statekv::itest {

std::pair<int, std::string> shell(const std::string& command) {
  auto r = run_program({"sh", "-c", command}, ".", std::chrono::milliseconds(30000));
  if (!r.ok()) return {-1, r.status().to_string()};
  return {r->exit_code, r->out + r->err};
}

std::optional<std::string> SmallDisk::mount(const std::string& at, int megabytes) {
  dir_ = at;
  auto [code, out] =
      shell("mount -t tmpfs -o size=" + std::to_string(megabytes) + "m statekv-itest " + at);
  if (code != 0) return "cannot mount a tmpfs (needs root): " + out;
  mounted_ = true;
  return std::nullopt;
}

bool SmallDisk::grow(int megabytes) {
  return shell("mount -o remount,size=" + std::to_string(megabytes) + "m " + dir_).first == 0;
}

SmallDisk::~SmallDisk() {
  if (mounted_) shell("umount -l " + dir_);
  if (!leftover_.empty()) shell("rm -rf " + leftover_);
}

}  // namespace statekv::itest
