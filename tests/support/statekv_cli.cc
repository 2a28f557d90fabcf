#include "support/statekv_cli.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <thread>

#include "support/net.h"
#include "support/server_process.h"

namespace statekv::itest {

std::pair<int, std::string> run_statekv(const std::vector<std::string>& args) {
  std::string cmd = statekv_binary();
  for (const std::string& a : args) cmd += " '" + a + "'";
  cmd += " 2>&1";
  std::string output;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, p)) output.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

uint16_t pick_cluster_base_port(uint16_t count) {
  using namespace std::chrono_literals;
  std::mt19937 rng(static_cast<unsigned>(::getpid()) * 7919u +
                   static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
  for (int attempt = 0; attempt < 50; ++attempt) {
    // Below the ephemeral range (32768..) and pick_free_low_port's ports
    // (25000..), peer ports (+10000) included.
    const uint16_t base = static_cast<uint16_t>(10000 + rng() % (5000 - count));
    // Held for the rest of this process: no other test process picks them.
    if (!reserve_ports(base, count) || !reserve_ports(static_cast<uint16_t>(base + 10000), count)) {
      continue;
    }
    bool free = true;
    for (uint16_t k = 0; k < count && free; ++k) {
      for (uint16_t port :
           {static_cast<uint16_t>(base + k), static_cast<uint16_t>(base + k + 10000)}) {
        auto fd = connect_localhost(port, 50ms);
        if (fd.ok()) {
          ::close(*fd);
          free = false;
        }
      }
    }
    if (free) return base;
  }
  return 0;
}

namespace {

// Whether process `pid` runs with `--data` inside `data` (its cmdline names it).
bool runs_under(pid_t pid, const std::string& data) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  const std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return !data.empty() && cmdline.find(data) != std::string::npos;
}

// SIGKILLs every node whose nodeK/pid file under `data` names a process of this
// cluster; what cluster down does when it can, without it.
void kill_nodes_by_pid_file(const std::string& data) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(data, ec)) {
    std::ifstream in(entry.path() / "pid");
    long pid = 0;
    if (!(in >> pid) || pid <= 0 || !runs_under(static_cast<pid_t>(pid), data)) continue;
    std::fprintf(stderr, "killing node pid %ld (%s)\n", pid, entry.path().c_str());
    ::kill(static_cast<pid_t>(pid), SIGKILL);
    for (int i = 0; i < 100 && ::kill(static_cast<pid_t>(pid), 0) == 0; ++i) {
      if (::waitpid(static_cast<pid_t>(pid), nullptr, WNOHANG) == pid) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

}  // namespace

// A test that fails half-way must not leave its nodes running: when `cluster
// down` itself cannot run (the binary relinked under a running test), the
// nodes are killed through their pid files.
LocalClusterGuard::~LocalClusterGuard() {
  auto [code, output] = run_statekv({"cluster", "down", "--data", data});
  if (code == 0) return;
  std::fprintf(stderr, "`statekv cluster down --data %s` failed (exit %d): %s\n", data.c_str(),
               code, output.c_str());
  kill_nodes_by_pid_file(data);
}

}  // namespace statekv::itest
