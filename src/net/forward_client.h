// ForwardClient — routed commands to other nodes, many in flight at once.
//
// A node routes a client's command to the key's owner (coord/). Waiting for
// each reply would hold the client's I/O thread for a round trip, so this
// client keeps one authenticated connection per peer (the handshake of
// handshake.h, as node `self`), writes every request as soon as it is given
// (batched into one write when several are queued), and matches replies to
// requests by call id: the owner may answer out of order.
//
// Every call completes exactly once, on the client's own thread, never inside
// call():
//   ok           the owner's ForwardReplyFrame (its status may be the owner's
//                refusal, e.g. a stale route: passed through as is);
//   Unavailable  the request was certainly not sent: the node cannot be
//                reached, refused the handshake, is another node, or the
//                client is shutting down;
//   InvalidArgument  the request is over the frame limit (frame.h): it was
//                not sent, so it certainly did not run;
//   Timeout      the request was written but no reply came within the
//                timeout, or the connection broke after it was written: it
//                may or may not have run.
// The answer to a batch (ForwardFrame::kBatch) may come in parts: `done` runs
// once per part with `more` set, then completes as above (the last part, or
// an error for whatever of the batch got no reply yet).
// A request is never written twice; a late reply (after its timeout) is
// dropped. A connection that fails is replaced on the next call.
//
// Thread safety: call() and stats() may be called from any thread, also from
// a callback. A callback must not throw, nor destroy the client (the
// destructor joins the thread the callback runs on).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/ids.h"
#include "core/status.h"
#include "net/frame.h"
#include "net/wire.h"

namespace statekv::net {

struct ForwardClientOptions {
  NodeId self;  // NodeId(0): connect as a client, as routers do
  std::string secret;
  std::chrono::milliseconds timeout{5000};  // per call, from call() to its reply
  uint32_t max_frame_bytes = kDefaultMaxFrameBytes;
};

class ForwardClient {
 public:
  using Callback = std::function<void(Result<ForwardReplyFrame>)>;

  // Starts the client's thread.
  explicit ForwardClient(ForwardClientOptions options);
  // Completes every call still pending (Unavailable if not yet written, else
  // Timeout) and joins the thread.
  ~ForwardClient();
  ForwardClient(const ForwardClient&) = delete;
  ForwardClient& operator=(const ForwardClient&) = delete;

  // Sends `frame` (its call id is assigned here) to `node` at `address`
  // ("host:port"). Never blocks; `done` must not block for long.
  void call(NodeId node, const std::string& address, ForwardFrame frame, Callback done);
  // The same with a timeout of the call's own instead of the options' one
  // (kNoTimeout: none; the call still fails when its connection breaks). For
  // blocking commands (BLPOP...), which the owner answers when served or
  // when their own timeout passed: they share the connection with every
  // other call (replies are matched by call id, so a call waiting long holds
  // up no other), but not the timeout sweep's order.
  static constexpr std::chrono::milliseconds kNoTimeout = std::chrono::milliseconds::max();
  void call(NodeId node, const std::string& address, ForwardFrame frame, Callback done,
            std::chrono::milliseconds timeout);

  struct Stats {
    uint64_t connects = 0;
    uint64_t calls = 0;
    uint64_t timeouts = 0;  // written calls that got no reply in time
  };
  Stats stats() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace statekv::net
