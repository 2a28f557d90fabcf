// TempDir — a fresh directory under $TMPDIR (or /tmp) that is removed, with
// everything in it, when the object is destroyed. Integration tests use one per
// server so that tests running in parallel (ctest -j) never share data.
#pragma once

#include <string>

namespace statekv::itest {

class TempDir {
 public:
  // Creates "<tmp>/statekv-itest-<prefix>-XXXXXX". Aborts the test binary if the
  // directory cannot be created: nothing useful can run without it.
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace statekv::itest
