#include "support/temp_dir.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <vector>

#include "core/assert.h"

namespace statekv::itest {

TempDir::TempDir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base && *base ? base : "/tmp") + "/statekv-itest-" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  char* made = mkdtemp(buf.data());
  SKV_ASSERT(made != nullptr, "mkdtemp failed");
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;  // best effort: a leftover temp dir must not fail a test
  std::filesystem::remove_all(path_, ec);
}

}  // namespace statekv::itest
