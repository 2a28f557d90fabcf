// RedisClient — a blocking hiredis (0.14, RESP2) connection to 127.0.0.1:port
// (or host:port).
// Arguments are sent as binary-safe bulk strings. Replies come back rendered
// (support/reply.h) because tests compare and print them; the raw hiredis
// reply is not exposed.
// Thread safety: none; one thread per client.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

struct redisContext;
struct redisReply;

namespace statekv::itest {

class RedisClient {
 public:
  // Connects with the given connect and per-command timeout.
  static Result<RedisClient> connect(uint16_t port,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The same at host:port (a node inside a test's network namespace).
  static Result<RedisClient> connect(const std::string& host, uint16_t port,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(10));
  RedisClient(RedisClient&&) noexcept = default;
  RedisClient& operator=(RedisClient&&) noexcept = default;
  ~RedisClient();

  // Sends one command and returns its rendered reply ("+OK", "\"v\"", "-ERR ...").
  // An error Status means the connection failed (closed, timed out), not a
  // -ERR reply: those are values.
  Result<std::string> command(const std::vector<std::string>& args);
  // Convenience for tests: the reply, or "<io error: ...>" when the connection failed.
  std::string cmd(const std::vector<std::string>& args);

  // Pipelining: queue commands, then read their replies in order.
  void append(const std::vector<std::string>& args);
  Result<std::string> read_reply();

  // Integer reply of a command, or an error Status if the reply is not :N.
  Result<long long> integer(const std::vector<std::string>& args);
  // Bulk reply bytes of a command (unescaped), NotFound for nil.
  Result<std::string> bulk(const std::vector<std::string>& args);
  // Array of bulk strings (e.g. KEYS, MGET without nils, SCAN page elements).
  Result<std::vector<std::string>> bulk_array(const std::vector<std::string>& args);
  // SCAN-style reply: [cursor, [elements...]].
  struct ScanPage {
    std::string cursor;
    std::vector<std::string> elements;
  };
  Result<ScanPage> scan(const std::vector<std::string>& args);

 private:
  struct Free {
    void operator()(redisContext* c) const;
  };
  using ReplyPtr = std::unique_ptr<redisReply, void (*)(void*)>;
  explicit RedisClient(redisContext* c) : ctx_(c) {}
  Result<ReplyPtr> raw_command(const std::vector<std::string>& args);
  Result<ReplyPtr> raw_read();
  Status io_error() const;

  std::unique_ptr<redisContext, Free> ctx_;
};

}  // namespace statekv::itest
