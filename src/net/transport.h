// Authenticated, framed TCP connections between statekv nodes (and from the
// CLI and bench clients to a node).
//
// Every connection starts with the handshake of handshake.h: both sides prove
// they know the cluster secret before a single frame is handed on; a peer that
// cannot is refused, logged and disconnected. After it, each frame (frame.h)
// carries one payload (wire.h). A garbled or oversized frame closes that
// connection only.
//
// Direction: to send to node N the transport keeps one outbound connection
// to N's address, connecting on demand and reconnecting with exponential
// backoff (with jitter) after any failure; payloads queued meanwhile are kept
// up to a byte budget and then dropped (the protocols above tolerate loss).
// A partition does not leave a link waiting on TCP's own backoff once it
// heals: a connection with bytes unacknowledged for unacknowledged_timeout is
// closed and reconnected, and a connect that hangs is retried after
// connect_timeout.
// Inbound connections (from nodes, or clients that claim node 0) deliver their
// frames to the handler with a connection id, and answers can be sent back on
// the same connection with send_on.
//
// Thread safety: none. Everything runs on the io_context given at
// construction; call every method from that io_context's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/ids.h"
#include "core/random.h"
#include "core/status.h"
#include "net/asio.h"
#include "net/frame.h"
#include "net/handshake.h"

namespace statekv::net {

struct TransportOptions {
  NodeId self;
  std::string secret;
  std::string bind = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port
  // This node's RESP port, named to a Redis client that connects here by
  // mistake (handshake.h resp_client_notice); 0: not known.
  uint16_t resp_port = 0;
  // Frames over this are refused; before the handshake completes, frames over
  // kHandshakeMaxFrameBytes (frame.h).
  uint32_t max_frame_bytes = kMaxFrameBytes;
  // Per outbound link: what may wait while it is not connected.
  size_t max_queued_bytes = 64u << 20;
  std::chrono::milliseconds backoff_min{20};
  std::chrono::milliseconds backoff_max{1000};
  // A connection whose sent bytes stay unacknowledged this long (the peer's
  // packets, or ours, dropped: a partition) is closed by the kernel
  // (TCP_USER_TIMEOUT) and the link reconnects. Left to itself, TCP retries
  // with a timeout that doubles each time, so a link cut for 2-3 s would stay
  // silent for seconds more after the network healed. 0: the kernel's default
  // (about 15 minutes).
  std::chrono::milliseconds unacknowledged_timeout{1500};
  // A connect that has not completed in this long is abandoned and tried
  // again with a fresh SYN (the kernel's own SYN retries wait 1, 2, 4 s...).
  std::chrono::milliseconds connect_timeout{500};
  // Which node ids may connect (0 is a client). Default: anyone who knows the secret.
  std::function<bool(NodeId)> allow_peer;
  // This node's incarnation (net/peer_incarnations.h; 0: one drawn for this
  // process, for a node without a data directory), and what it makes of each
  // peer's (handshake.h); empty: any.
  uint64_t incarnation = 0;
  std::function<IncarnationVerdict(NodeId peer, uint64_t incarnation)> check_incarnation;
  // Called (on the transport's thread) each time a peer refuses this node as
  // disowned: it knew this node's id with another data directory.
  std::function<void(const std::string& reason)> on_disowned;
};

class Transport {
 public:
  using ConnectionId = uint64_t;
  // A frame's payload arrived on connection `conn` from authenticated `peer`.
  using FrameHandler = std::function<void(ConnectionId conn, NodeId peer, std::string payload)>;

  Transport(asio::io_context& io, TransportOptions options, FrameHandler handler);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Binds and starts accepting. IOError if the port is taken.
  Status listen();
  uint16_t port() const;

  // Where node `node` listens ("host:port"); a changed address resets the link.
  void set_address(NodeId node, const std::string& host_port);

  // Best effort, in order per destination. Unknown destination: dropped.
  void send(NodeId to, std::string payload);
  // Sends on an existing connection (an answer to a request that arrived on
  // it). False if that connection is gone.
  bool send_on(ConnectionId conn, std::string payload);

  // Closes the listener and every connection.
  void stop();

  // Counters, for tests and status.
  struct Stats {
    uint64_t refused_handshakes = 0;
    uint64_t bad_frames = 0;
    uint64_t connects = 0;
    uint64_t dropped_payloads = 0;
  };
  const Stats& stats() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace statekv::net
