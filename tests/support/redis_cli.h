// Runs redis-cli (the real client users have) as a child process against
// 127.0.0.1:port and captures what it prints.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace statekv::itest {

struct CliOutput {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// `redis-cli -h 127.0.0.1 -p PORT <args...>` with stdin_data on its stdin.
// Killed (and an error returned) if it runs longer than timeout.
Result<CliOutput> run_redis_cli(uint16_t port, const std::vector<std::string>& args,
                                const std::string& stdin_data = "",
                                std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace statekv::itest
