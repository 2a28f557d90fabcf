// Differential — redis-server 7 and the server under test side by side, one
// hiredis connection to each. run(args) sends the same command to both and
// fails the current test (with both replies printed) when the replies differ.
// statekv must answer exactly as Redis does; this is how the tests prove it.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/redis_client.h"
#include "support/server_process.h"

namespace statekv::itest {

class Differential {
 public:
  // Starts both servers; on failure, fails the test (check ok()).
  explicit Differential(ServerOptions subject);
  bool ok() const { return ok_; }

  // Sends args to both servers; returns redis's rendered reply. A difference
  // is a test failure (ADD_FAILURE) naming the command and both replies.
  std::string run(const std::vector<std::string>& args);
  // Sends to both and returns both replies without comparing (fields that
  // legitimately differ: INFO, CLIENT ID, TIME, RANDOMKEY ...).
  std::pair<std::string, std::string> both(const std::vector<std::string>& args);

  ServerProcess& redis() { return *redis_; }
  ServerProcess& subject() { return *subject_; }
  RedisClient& redis_client() { return *redis_client_; }
  RedisClient& subject_client() { return *subject_client_; }

 private:
  bool ok_ = false;
  std::unique_ptr<ServerProcess> redis_;
  std::unique_ptr<ServerProcess> subject_;
  std::unique_ptr<RedisClient> redis_client_;
  std::unique_ptr<RedisClient> subject_client_;
};

// Escapes a command for failure messages: SET "k\x00" "v".
std::string describe_command(const std::vector<std::string>& args);

}  // namespace statekv::itest
