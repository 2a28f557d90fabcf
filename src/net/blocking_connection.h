// One authenticated, blocking connection to a node's peer port: the
// handshake of handshake.h as node `self` (0 for a client), then frames of
// wire.h, with a deadline on every call.
//
// Used by the client (client.h) and by nodes routing commands to the owner of
// their keys. Thread safety: none; one thread at a time per connection.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/ids.h"
#include "core/status.h"
#include "net/frame.h"
#include "net/wire.h"

namespace statekv::net {

class BlockingConnection {
 public:
  using Clock = std::chrono::steady_clock;

  // Connects and authenticates. Aborted when the handshake is refused (a wrong
  // secret: retrying will not help), Unavailable when the node cannot be reached,
  // drops the connection before the handshake ends (stopping, restarting), or
  // says nothing before the deadline (a paused or stalled node): another may
  // answer.
  // As a node (`self` not 0) it states that node's `incarnation`
  // (net/peer_incarnations.h), which must then not be 0.
  static Result<std::unique_ptr<BlockingConnection>> open(const std::string& endpoint,
                                                          const std::string& secret,
                                                          Clock::time_point deadline,
                                                          NodeId self = NodeId(0),
                                                          uint64_t incarnation = 0);
  ~BlockingConnection();
  BlockingConnection(const BlockingConnection&) = delete;
  BlockingConnection& operator=(const BlockingConnection&) = delete;

  // InvalidArgument, with nothing sent and the connection still usable, when
  // the message is over the frame limit (frame.h frame_fits).
  Status send(const WireMessage& msg, Clock::time_point deadline);
  Result<WireMessage> receive(Clock::time_point deadline);

  // Sends a request and waits for its answer: the reply frame of the matching
  // kind and call id. An error means the connection is no longer usable
  // (send or receive failed, or an unexpected frame came: Internal), except
  // InvalidArgument from send(): the request was too large and not sent.
  Result<AdminReplyFrame> call(const AdminFrame& request, Clock::time_point deadline);
  Result<ForwardReplyFrame> call(const ForwardFrame& request, Clock::time_point deadline);

  // The node behind the connection (proven by the handshake).
  NodeId node() const { return node_; }
  const std::string& endpoint() const { return endpoint_; }

  // False once the peer closed or reset the connection (checked without
  // blocking), so that a request is never sent into a connection known dead:
  // such a request would certainly not have happened, yet look unanswered.
  bool alive() const;

 private:
  BlockingConnection() : reader_(kHandshakeMaxFrameBytes) {}
  Status wait(short events, Clock::time_point deadline);
  Status write_all(const std::string& bytes, Clock::time_point deadline);
  Result<std::string> read_frame(Clock::time_point deadline);

  std::string endpoint_;
  int fd_ = -1;
  FrameReader reader_;
  NodeId node_;
};

}  // namespace statekv::net
