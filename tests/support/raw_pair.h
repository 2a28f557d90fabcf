// RawPair — one raw connection to redis-server and one to the server under
// test. exchange() sends the same bytes to both and compares the replies byte
// for byte: the strictest differential check, used for RESP3, pipelining and
// inline commands where the exact encoding is the point.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "support/raw_client.h"
#include "support/server_process.h"

namespace statekv::itest {

class RawPair {
 public:
  // Connects to both servers.
  static Result<RawPair> connect(const ServerProcess& redis, const ServerProcess& subject);

  // Sends bytes to both, reads n replies from each, and fails the test when
  // any reply differs. Returns redis's replies (empty on an I/O failure).
  std::vector<RawReply> exchange(std::string_view bytes, size_t n);
  // Same for one command encoded as multibulk; returns redis's reply bytes.
  std::string call(const std::vector<std::string>& args);

  RawClient& redis() { return redis_; }
  RawClient& subject() { return subject_; }

 private:
  RawPair(RawClient redis, RawClient subject, std::string subject_name)
      : redis_(std::move(redis)),
        subject_(std::move(subject)),
        subject_name_(std::move(subject_name)) {}

  RawClient redis_;
  RawClient subject_;
  std::string subject_name_;
};

}  // namespace statekv::itest
