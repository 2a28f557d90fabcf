// A blocking RESP client for the load harness: one TCP connection, one command
// in flight, replies read with src/resp's value parser.
//
// It drives anything that speaks the Redis protocol — statekv nodes, and Redis
// itself — so that both are measured by the same harness as etcd. A put is
// `SET <key_prefix><key> <value>`, acknowledged on +OK. With wait_replicas N > 0
// every SET is followed by `WAIT N <wait_timeout_ms>`, and the put counts as
// acknowledged only if WAIT answers an integer >= N (Redis primary + replicas:
// the write then reached N replicas before the client moves on).
//
// Pipelined (put_batch): every SET of the batch goes in one send, then, with
// wait_replicas N > 0, one WAIT for the whole batch (WAIT counts the replicas
// that hold every earlier write of the connection: Redis's best use of it,
// where a WAIT after each SET would hold each pipelined SET behind the
// previous one's WAIT). A put is acknowledged when its +OK arrives, or with
// WAIT when WAIT's answer does.
//
// Thread safety: a RespConnection is used by one thread at a time. The factory
// from make_resp_connection_factory may be called concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "loadgen/etcd_connection.h"  // HostPort, parse_endpoint
#include "loadgen/load.h"
#include "resp/value.h"

namespace statekv::loadgen {

struct RespOptions {
  std::chrono::milliseconds connect_timeout{3000};
  // A send or receive that stalls for longer fails the command with kTimeout.
  std::chrono::milliseconds io_timeout{10000};
  std::string key_prefix;  // prepended to every key the harness puts
  int64_t wait_replicas = 0;
  int64_t wait_timeout_ms = 0;  // WAIT's own timeout; 0 = block until N replicas
};

class RespConnection final : public Connection {
 public:
  // Opens a TCP connection to one RESP server.
  static Result<std::unique_ptr<RespConnection>> connect(const HostPort& endpoint,
                                                         const RespOptions& options = {});
  // A connection that opens its socket on its first command (a server that is
  // down now fails that command, not this call).
  static std::unique_ptr<RespConnection> unopened(const HostPort& endpoint,
                                                  const RespOptions& options = {});
  ~RespConnection() override;
  RespConnection(const RespConnection&) = delete;
  RespConnection& operator=(const RespConnection&) = delete;

  // SET key_prefix+key value, then WAIT when wait_replicas > 0. Error replies
  // come back as Unavailable (the message carries the server's text), a reply
  // of the wrong shape as Corruption, a WAIT below N as Unavailable. The
  // connection stays usable after an error reply; after a transport failure or
  // an unparsable reply the socket is closed and the next call reconnects.
  Status put(std::string_view key, std::string_view value) override;
  Status put_batch(std::span<const Put> puts, std::span<LoadClock::time_point> acked) override;

  // The parts of put_batch, for a caller that pipelines over several
  // connections at once (leader_route.cc): send_puts sends puts[i] for each i
  // of `which` (and WAIT after them with wait_replicas), take_replies checks
  // what has come, and receive() waits for more while replies_due() > 0.
  // take_replies sets acked[i] for each put acknowledged and returns the
  // first put that was not, with its failure (a transport failure closes the
  // socket: no reply is due after it). Indexes are into the caller's batch.
  Status send_puts(std::span<const Put> puts, std::span<const size_t> which);
  size_t replies_due() const { return due_.size(); }
  struct Refused {
    size_t put = 0;  // the index into the batch
    Status status;
  };
  std::vector<Refused> take_replies(std::span<LoadClock::time_point> acked);
  // Waits for bytes (up to io_timeout). A failure closes the socket; the
  // next take_replies refuses every put still due with it.
  Status receive();
  int fd() const { return fd_; }

  // Sends one command (as a RESP array of bulk strings) and returns its reply,
  // error replies included (type kError). Transport and protocol failures are
  // a non-OK status.
  Result<resp::Value> command(const std::vector<std::string_view>& args);

  // Sends every command at once (a pipeline) and returns their replies in
  // order, error replies included. A transport or protocol failure fails the
  // whole call (and closes the socket).
  Result<std::vector<resp::Value>> pipeline(const std::vector<std::vector<std::string>>& commands);

  // Opens the socket unless it is open (commands do that themselves; this
  // tells a caller whether the server answers before it sends anything).
  Status ensure_open() { return fd_ >= 0 ? Status::OK() : open(); }

  const HostPort& endpoint() const { return endpoint_; }

  // Commands sent so far on this object, and TCP connections it opened.
  uint64_t commands() const { return commands_; }
  uint64_t connects() const { return connects_; }

 private:
  RespConnection(HostPort endpoint, RespOptions options)
      : endpoint_(std::move(endpoint)), options_(std::move(options)) {}
  Status open();
  void close_socket();
  // The next reply; `last`: no bytes may follow it (one command in flight, or
  // the last of a pipeline).
  Result<resp::Value> read_reply(bool last = true);
  std::string describe() const;

  HostPort endpoint_;
  RespOptions options_;
  int fd_ = -1;
  std::string request_;  // reused buffer for the command bytes
  std::string input_;    // bytes received and not yet parsed
  std::string key_;      // reused buffer for key_prefix + key
  // Replies due, in order: a SET's (its put's index) or a WAIT's (kWaitReply,
  // covering the SETs sent before it since the last WAIT, in waited_).
  static constexpr size_t kWaitReply = SIZE_MAX;
  std::deque<size_t> due_;
  std::vector<size_t> waited_;  // puts whose +OK came, acknowledged by the next WAIT
  Status broken_;               // why the replies still due will not come
  uint64_t commands_ = 0;
  uint64_t connects_ = 0;
};

// Checks a reply to `WAIT n ...`: OK when it is an integer >= n; otherwise an
// error naming what came back. Exposed for tests.
Status check_wait_reply(const resp::Value& reply, int64_t n);

// A factory over RESP endpoints ("host:port"): client c talks to endpoint
// c % endpoints.size().
Result<ConnectionFactory> make_resp_connection_factory(const std::vector<std::string>& endpoints,
                                                       const RespOptions& options = {});

}  // namespace statekv::loadgen
