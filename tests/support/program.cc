#include "support/program.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/temp_dir.h"

namespace statekv::itest {

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// npm's words for "the registry could not be reached".
bool registry_unreachable(const std::string& npm_output) {
  for (const char* sign :
       {"ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH",
        "EHOSTUNREACH", "ERR_SOCKET_TIMEOUT", "network", "proxy"}) {
    if (npm_output.find(sign) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

bool on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return true;
  }
  return false;
}

Result<ProgramOutput> run_program(const std::vector<std::string>& args, const std::string& cwd,
                                  std::chrono::milliseconds timeout) {
  TempDir dir("prog");
  const std::string out_path = dir.path() + "/stdout";
  const std::string err_path = dir.path() + "/stderr";
  std::vector<std::string> argv_s = args;
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return Status::IOError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    setpgid(0, 0);
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) _exit(126);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    syscall(SYS_close_range, 3U, ~0U, 0U);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  setpgid(pid, pid);  // also from here, so the group exists whoever runs first
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int st = 0;
  for (;;) {
    if (waitpid(pid, &st, WNOHANG) == pid) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(-pid, SIGKILL);
      waitpid(pid, &st, 0);
      return Status::Timeout(args[0] + " did not finish within " + std::to_string(timeout.count()) +
                             " ms: " + slurp(err_path));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ProgramOutput result;
  result.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  return result;
}

Result<std::string> npm_installed(const std::string& source_dir, const std::string& cache_name,
                                  const std::string& module) {
  const fs::path src = source_dir;
  const std::string lock = slurp(src / "package-lock.json");
  if (lock.empty()) return Status::NotFound("no " + (src / "package-lock.json").string());
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  const fs::path cache = (ec ? fs::temp_directory_path() : exe.parent_path()) / cache_name;
  // The scripts are copied on every use (they change without the lock).
  auto copy_scripts = [&](const fs::path& dir) {
    for (const auto& entry : fs::directory_iterator(src, ec)) {
      if (entry.path().extension() == ".js") {
        fs::copy_file(entry.path(), dir / entry.path().filename(),
                      fs::copy_options::overwrite_existing, ec);
      }
    }
  };
  // Tests of one build run side by side (ctest -j): one installs while the
  // others wait, then use what it installed. Without the lock a second install
  // replaced the directory while the first test's node was loading from it
  // ("Cannot find module"). The lock goes with the descriptor.
  const fs::path lock_file = cache.string() + ".lock";
  const int lock_fd = ::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return Status::IOError("cannot open " + lock_file.string());
  struct Unlock {
    int fd;
    ~Unlock() { ::close(fd); }
  } unlock{lock_fd};
  while (::flock(lock_fd, LOCK_EX) != 0) {
    if (errno != EINTR) return Status::IOError("cannot lock " + lock_file.string());
  }
  if (slurp(cache / "package-lock.json") == lock &&
      fs::exists(cache / "node_modules" / module / "package.json")) {
    copy_scripts(cache);
    return cache.string();
  }
  // Install into a fresh directory, then move it into place whole.
  const fs::path staging = cache.string() + ".tmp-" + std::to_string(getpid());
  fs::remove_all(staging, ec);
  fs::create_directories(staging);
  for (const char* f : {"package.json", "package-lock.json"}) {
    fs::copy_file(src / f, staging / f, fs::copy_options::overwrite_existing);
  }
  // One quick retry: a registry that is down should skip the test in seconds.
  auto npm = run_program(
      {"npm", "ci", "--no-audit", "--no-fund", "--prefer-offline", "--fetch-retries=1",
       "--fetch-retry-mintimeout=1000", "--fetch-retry-maxtimeout=3000", "--fetch-timeout=30000"},
      staging.string(), std::chrono::seconds(90));
  if (!npm.ok()) {
    fs::remove_all(staging, ec);
    return Status::Unavailable("npm ci did not finish (registry unreachable?): " +
                               npm.status().message());
  }
  if (npm->exit_code != 0) {
    fs::remove_all(staging, ec);
    const std::string text = npm->out + npm->err;
    if (registry_unreachable(text)) return Status::Unavailable("npm ci: " + text);
    return Status::Aborted("npm ci failed (exit " + std::to_string(npm->exit_code) + "): " + text);
  }
  fs::remove_all(cache, ec);
  fs::rename(staging, cache, ec);
  if (ec) return Status::IOError("cannot move " + staging.string() + ": " + ec.message());
  copy_scripts(cache);
  return cache.string();
}

}  // namespace statekv::itest
