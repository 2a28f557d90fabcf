#include "support/statekv_cli.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <random>

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

LocalClusterGuard::~LocalClusterGuard() { run_statekv({"cluster", "down", "--data", data}); }

}  // namespace statekv::itest
