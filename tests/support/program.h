// Child programs for tests: run one with a timeout and its output captured,
// and install an npm test package (a directory of tests/ with package.json and
// a committed package-lock.json) offline-safely.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/status.h"

namespace statekv::itest {

struct ProgramOutput {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// True if `name` is an executable file in a directory of $PATH.
bool on_path(const std::string& name);

// Runs argv (looked up on $PATH) in `cwd` with stdout and stderr captured. The
// child leads its own process group, so a run past `timeout` is ended with
// everything it started: Timeout then.
Result<ProgramOutput> run_program(const std::vector<std::string>& args, const std::string& cwd,
                                  std::chrono::milliseconds timeout);

// A directory holding `source_dir`'s files with node_modules installed by
// `npm ci` from its committed lock, cached beside the test binary under
// `cache_name` and reinstalled when package-lock.json changes; `module` is a
// package whose presence means the install is complete. Unavailable when the
// npm registry cannot be reached (the caller skips), another error when npm
// fails otherwise.
Result<std::string> npm_installed(const std::string& source_dir, const std::string& cache_name,
                                  const std::string& module);

}  // namespace statekv::itest
