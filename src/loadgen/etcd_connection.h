// A blocking etcd v3 client for the load harness, over etcd's HTTP/JSON gateway.
//
// etcd (3.4, as Debian ships it) serves its v3 API as gRPC and, on the same
// client port, as JSON over HTTP/1.1 through an in-process grpc-gateway. This
// client speaks the latter with plain POSIX sockets: one keep-alive TCP
// connection (TCP_NODELAY), one request in flight, POST /v3/kv/put with
// {"key": base64, "value": base64}. A put succeeds only on HTTP 200 with a JSON
// body that carries etcd's response "header" (the gateway answers only after
// the put is committed by the raft group and applied).
//
// Fairness note: the gateway adds a JSON/HTTP hop inside etcd (it re-sends the
// request to etcd's own gRPC server over loopback), so etcd figures measured
// through it are somewhat below what a native gRPC client sees.
//
// Thread safety: an EtcdConnection is used by one thread at a time. The
// factory from make_etcd_connection_factory may be called concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "loadgen/load.h"

namespace statekv::loadgen {

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// Accepts "host:port" and "http://host:port" (etcd's client URL form; a
// trailing "/" is allowed). https is refused: this client has no TLS.
Result<HostPort> parse_endpoint(std::string_view endpoint);

// Base64 (RFC 4648, with padding), as etcd's JSON gateway wants bytes fields.
std::string base64_encode(std::string_view bytes);

// Parses one HTTP/1.1 response from bytes fed in arbitrary pieces: status line,
// headers, then a body framed by Content-Length, by chunked transfer coding
// (with trailers, which etcd's gateway sends on error replies), or, failing
// both, by the end of the connection. Limits: 64 KiB of headers, 64 MiB body.
class HttpResponseParser {
 public:
  enum class State { kNeedMore, kDone, kError };

  // Feeds the next bytes. Returns kDone once a whole response was read; bytes
  // past its end are an error (this client never pipelines). After kDone or
  // kError, feed() must not be called again before reset().
  State feed(std::string_view bytes);
  // The peer closed the connection: kDone if the body ran to the end of the
  // connection, kError if the response was cut short.
  State feed_eof();
  void reset();

  int status_code() const { return status_code_; }
  const std::string& body() const { return body_; }
  // The last value of a header, by case-insensitive name.
  std::optional<std::string> header(std::string_view name) const;
  // Whether the connection may carry another request after this response.
  bool keep_alive() const { return keep_alive_; }
  const std::string& error() const { return error_; }

 private:
  enum class Phase { kHead, kBodyLength, kChunkSize, kChunkData, kTrailers, kBodyToEof, kDone };
  State fail(std::string message);
  State parse_head();
  State advance();

  Phase phase_ = Phase::kHead;
  std::string buffer_;    // bytes received but not yet consumed
  size_t remaining_ = 0;  // bytes left in the body (kBodyLength) or chunk (kChunkData)
  int status_code_ = 0;
  bool keep_alive_ = true;
  std::vector<std::pair<std::string, std::string>> headers_;  // lower-case names
  std::string body_;
  std::string error_;
};

struct EtcdOptions {
  std::chrono::milliseconds connect_timeout{3000};
  // A send or receive that stalls for longer fails the put with kTimeout.
  std::chrono::milliseconds io_timeout{10000};
};

class EtcdConnection final : public Connection {
 public:
  // Opens a TCP connection to one etcd member's client URL.
  static Result<std::unique_ptr<EtcdConnection>> connect(const HostPort& endpoint,
                                                         const EtcdOptions& options = {});
  ~EtcdConnection() override;
  EtcdConnection(const EtcdConnection&) = delete;
  EtcdConnection& operator=(const EtcdConnection&) = delete;

  // PUT key = value; OK once etcd acknowledged it. On a transport failure the
  // socket is closed and the next put() reconnects; likewise after etcd asked
  // to close the connection ("Connection: close").
  Status put(std::string_view key, std::string_view value) override;

  // Requests sent so far on this object, and TCP connections it opened.
  uint64_t requests() const { return requests_; }
  uint64_t connects() const { return connects_; }

 private:
  EtcdConnection(HostPort endpoint, EtcdOptions options)
      : endpoint_(std::move(endpoint)), options_(options) {}
  Status open();
  void close_socket();
  Status send_all(std::string_view bytes);
  Status read_response();
  std::string describe() const;

  HostPort endpoint_;
  EtcdOptions options_;
  int fd_ = -1;
  std::string request_;  // reused buffer for the request bytes
  HttpResponseParser parser_;
  uint64_t requests_ = 0;
  uint64_t connects_ = 0;
};

// A factory over etcd members' client URLs: client c talks to endpoint
// c % endpoints.size(), spreading clients over the members as etcd's own
// benchmark tool does (a follower forwards the proposal to the leader).
Result<ConnectionFactory> make_etcd_connection_factory(const std::vector<std::string>& endpoints,
                                                       const EtcdOptions& options = {});

}  // namespace statekv::loadgen
