// Sends a data command to the node that owns its keys and waits for the reply
// (the router's side of net/wire.h ForwardFrame).
//
// Blocking, over the peer transport: each calling thread keeps its own
// authenticated connection per peer (net/blocking_connection.h), so I/O
// threads never share a socket and need no lock on the hot path. A connection
// that broke is replaced on the next call.
//
// Thread safety: call() may be called from any thread.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "net/wire.h"

namespace statekv::coord {

class Forwarder {
 public:
  Forwarder(NodeId self, std::string secret, std::chrono::milliseconds timeout);

  // Runs `frame` on `node` (reachable at `peer_address`). The reply is the
  // command's whole RESP reply. Errors: Unavailable when the node cannot be
  // reached (the command did not run), Timeout when it did not answer (it may
  // have run), or the owner's refusal (a stale route: the status says so).
  Result<std::string> call(NodeId node, const std::string& peer_address, net::ForwardFrame frame);

 private:
  NodeId self_;
  std::string secret_;
  std::chrono::milliseconds timeout_;
};

}  // namespace statekv::coord
