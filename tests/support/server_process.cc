#include "support/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
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

#include "core/assert.h"
#include "support/net.h"

#ifndef STATEKV_BIN
#error "STATEKV_BIN must be defined by the build (path of the statekv binary)"
#endif

namespace statekv::itest {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string statekv_binary() {
  const char* env = std::getenv("STATEKV_BIN");
  return env && *env ? env : STATEKV_BIN;
}

ServerKind subject_kind() {
  const char* env = std::getenv("STATEKV_ITEST_SUBJECT");
  return env && std::string_view(env) == "redis" ? ServerKind::kRedis : ServerKind::kStatekv;
}

ServerOptions subject_options(const std::string& engine, const std::string& fsync) {
  ServerOptions o;
  o.kind = subject_kind();
  o.engine = engine;
  o.fsync = fsync;
  return o;
}

ServerProcess::ServerProcess(ServerOptions options)
    : options_(std::move(options)), data_("data"), work_("work") {}

ServerProcess::~ServerProcess() {
  if (running()) (void)stop(5s);
}

std::string ServerProcess::describe() const {
  if (options_.kind == ServerKind::kRedis) {
    return "redis-server" + (options_.fsync.empty() ? std::string() : " aof=" + options_.fsync);
  }
  if (options_.kind == ServerKind::kStatekvCache) return "statekv cache";
  return "statekv " + options_.engine + (options_.fsync.empty() ? "" : " fsync=" + options_.fsync);
}

std::vector<std::string> ServerProcess::command_line() const {
  std::vector<std::string> argv;
  const std::string port = std::to_string(port_);
  if (options_.kind == ServerKind::kRedis) {
    argv = {"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--dir",
            data_.path(), "--daemonize", "no", "--logfile", "",
            // statekv has database 0 only; so has every redis the tests compare with.
            "--databases", "1"};
    if (options_.fsync.empty()) {
      argv.insert(argv.end(), {"--appendonly", "no"});
    } else {
      const std::string mode = options_.fsync == "everysec" ? "everysec" : "always";
      argv.insert(argv.end(), {"--appendonly", "yes", "--appendfsync", mode});
    }
    if (!options_.requirepass.empty()) {
      argv.insert(argv.end(), {"--requirepass", options_.requirepass});
    }
  } else if (options_.kind == ServerKind::kStatekvCache) {
    argv = {statekv_binary(), "cache", "--bind", "127.0.0.1", "--port", port};
  } else {
    argv = {statekv_binary(), "server",     "--bind",   "127.0.0.1",    "--port", port,
            "--data",         data_.path(), "--engine", options_.engine};
    if (!options_.fsync.empty()) argv.insert(argv.end(), {"--fsync", options_.fsync});
    if (!options_.requirepass.empty()) {
      argv.insert(argv.end(), {"--requirepass", options_.requirepass});
    }
  }
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  return argv;
}

Status ServerProcess::spawn() {
  const std::vector<std::string> args = command_line();
  const std::string log_path = work_.path() + "/server.log";
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return Status::IOError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int devnull = open("/dev/null", O_RDONLY);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
    if (devnull >= 0) dup2(devnull, 0);
    syscall(SYS_close_range, 3U, ~0U, 0U);  // no test sockets leak into the server
    if (args[0].find('/') != std::string::npos) {
      execv(argv[0], argv.data());
    } else {
      execvp(argv[0], argv.data());
    }
    _exit(127);
  }
  pid_ = pid;
  return Status::OK();
}

bool ServerProcess::reap_if_exited(int* wait_status) {
  if (pid_ <= 0) return true;
  int st = 0;
  pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    pid_ = -1;
    if (wait_status) *wait_status = st;
    return true;
  }
  return false;
}

Status ServerProcess::wait_ready(Clock::time_point deadline) {
  while (Clock::now() < deadline) {
    int st = 0;
    if (reap_if_exited(&st)) {
      return Status::Unavailable(describe() + " exited before it was ready (status " +
                                 std::to_string(st) + "): " + log_tail(1500));
    }
    Result<int> fd = connect_localhost(port_, 200ms);
    if (fd.ok()) {
      // A reply to PING proves the server serves commands, not only accepts
      // (redis answers -LOADING while it replays its AOF).
      timeval tv{1, 0};
      setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      char buf[64] = {};
      ssize_t n = -1;
      if (write(*fd, "PING\r\n", 6) == 6) n = read(*fd, buf, sizeof(buf) - 1);
      close(*fd);
      std::string_view reply(buf, n > 0 ? static_cast<size_t>(n) : 0);
      if (reply.starts_with("+PONG") || reply.starts_with("-NOAUTH")) return Status::OK();
    }
    std::this_thread::sleep_for(20ms);
  }
  return Status::Timeout(describe() + " not ready before the deadline: " + log_tail(1500));
}

Status ServerProcess::start(std::chrono::milliseconds deadline) {
  if (running()) return Status::InvalidArgument("already running");
  const bool restart = port_ != 0;
  // A fresh start retries on a new port: the picked port may have been taken
  // between pick_free_port() and the server's bind.
  for (int attempt = 0; attempt < (restart ? 1 : 3); ++attempt) {
    if (!restart) {
      Result<uint16_t> port = pick_free_port();
      if (!port.ok()) return port.status();
      port_ = *port;
    }
    Status st = spawn();
    if (!st.ok()) return st;
    st = wait_ready(Clock::now() + deadline);
    if (st.ok()) return st;
    if (running()) kill();
    if (restart || attempt == 2) return st;
  }
  return Status::Internal("unreachable");
}

void ServerProcess::reset(std::vector<std::string> extra_args) {
  SKV_ASSERT(!running(), "reset a running server");
  options_.extra_args = std::move(extra_args);
  port_ = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(data_.path(), ec)) {
    std::filesystem::remove_all(entry.path(), ec);
  }
}

Status ServerProcess::stop(std::chrono::milliseconds grace) {
  if (!running()) return Status::OK();
  ::kill(pid_, SIGTERM);
  return await_exit(grace, " after SIGTERM");
}

Status ServerProcess::wait_exit(std::chrono::milliseconds limit) {
  if (!running()) return Status::OK();
  return await_exit(limit, "");
}

Status ServerProcess::await_exit(std::chrono::milliseconds limit, const std::string& after) {
  const auto deadline = Clock::now() + limit;
  int st = 0;
  while (Clock::now() < deadline) {
    if (reap_if_exited(&st)) {
      if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return Status::OK();
      return Status::Aborted(describe() + " exited with status " + std::to_string(st) + after);
    }
    std::this_thread::sleep_for(10ms);
  }
  kill();
  return Status::Timeout(describe() + " still ran " + std::to_string(limit.count()) + "ms" +
                         after + "; killed");
}

void ServerProcess::kill() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  waitpid(pid_, &st, 0);
  pid_ = -1;
}

Result<uint64_t> ServerProcess::rss_kb() const {
  if (!running()) return Status::Unavailable("not running");
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) return std::stoull(line.substr(6));
  }
  return Status::NotFound("no VmRSS line");
}

std::string ServerProcess::log_tail(size_t max_bytes) const {
  std::ifstream in(work_.path() + "/server.log", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string all = ss.str();
  return all.size() > max_bytes ? all.substr(all.size() - max_bytes) : all;
}

}  // namespace statekv::itest
