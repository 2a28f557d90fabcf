#include "support/redis_cli.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/temp_dir.h"

namespace statekv::itest {

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Result<CliOutput> run_redis_cli(uint16_t port, const std::vector<std::string>& args,
                                const std::string& stdin_data, std::chrono::milliseconds timeout) {
  // Files rather than pipes: no risk of a deadlock on a full pipe, any size.
  TempDir dir("cli");
  const std::string in_path = dir.path() + "/stdin";
  const std::string out_path = dir.path() + "/stdout";
  const std::string err_path = dir.path() + "/stderr";
  {
    std::ofstream in(in_path, std::ios::binary);
    in << stdin_data;
  }
  std::vector<std::string> argv_s = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port)};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);

  pid_t pid = fork();
  if (pid < 0) return Status::IOError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    int in = open(in_path.c_str(), O_RDONLY);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    syscall(SYS_close_range, 3U, ~0U, 0U);
    execvp("redis-cli", argv.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int st = 0;
  for (;;) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      return Status::Timeout("redis-cli did not finish: " + slurp(err_path));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CliOutput result;
  result.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  return result;
}

}  // namespace statekv::itest
