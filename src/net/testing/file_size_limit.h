// FileSizeLimit — a real write error for tests of the node's logs: while it
// lives, this process may not grow a file past a size (RLIMIT_FSIZE), and a
// write past it fails with EFBIG (SIGXFSZ, which would kill the process, is
// ignored meanwhile). The destructor puts the old limit and handler back, so
// an ASSERT that leaves the test early leaves nothing behind.
#pragma once

#include <signal.h>
#include <sys/resource.h>

#include <cstdint>

namespace statekv::net::testing {

class FileSizeLimit {
 public:
  explicit FileSizeLimit(uint64_t bytes) {
    if (::getrlimit(RLIMIT_FSIZE, &old_limit_) != 0) return;
    struct rlimit limit = old_limit_;
    limit.rlim_cur = bytes;
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    ok_ = ::setrlimit(RLIMIT_FSIZE, &limit) == 0;
  }
  ~FileSizeLimit() {
    if (old_handler_ == SIG_ERR) return;
    ::setrlimit(RLIMIT_FSIZE, &old_limit_);
    ::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

  // False if the limit could not be set (the test cannot provoke the error).
  bool ok() const { return ok_; }

 private:
  struct rlimit old_limit_ {};
  sighandler_t old_handler_ = SIG_ERR;
  bool ok_ = false;
};

}  // namespace statekv::net::testing
