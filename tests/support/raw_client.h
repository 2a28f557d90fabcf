// RawClient — a plain TCP connection that sends arbitrary bytes and parses the
// replies with statekv's own resp::parse_value. Used where hiredis cannot go:
// RESP3 (HELLO 3), malformed frames, inline commands, huge pipelines, and
// byte-exact comparison of two servers' replies.
// Thread safety: none; one thread per client.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "resp/value.h"

namespace statekv::itest {

struct RawReply {
  resp::Value value;
  std::string bytes;  // the exact bytes of this reply on the wire
};

class RawClient {
 public:
  static Result<RawClient> connect(uint16_t port,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5));
  RawClient(RawClient&& other) noexcept;
  RawClient& operator=(RawClient&& other) noexcept;
  ~RawClient();

  // Writes all of bytes (blocking).
  Status send(std::string_view bytes);
  // Encodes args as one RESP multibulk request and sends it.
  Status send_command(const std::vector<std::string>& args);
  // Reads until one whole reply is buffered, or the deadline passes (Timeout),
  // or the peer closes (Unavailable), or the bytes are not valid RESP (Corruption).
  Result<RawReply> read_reply(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Sends a command and reads its reply.
  Result<RawReply> call(const std::vector<std::string>& args);
  // True if the server closes the connection within timeout (after any replies
  // already in flight, which are discarded).
  bool closed_by_peer(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  int fd() const { return fd_; }

 private:
  explicit RawClient(int fd) : fd_(fd) {}
  // Reads what is available into buf_; 0 on EOF; Timeout if nothing came.
  Result<size_t> fill(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string buf_;
};

// RESP multibulk encoding of one request.
std::string encode_command(const std::vector<std::string>& args);

}  // namespace statekv::itest
