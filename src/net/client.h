// A blocking client of a statekv raft group over the peer transport: what the
// CLI (`statekv cluster ...`), the bench tool and the real-process tests use.
//
// It authenticates like a peer (handshake.h) as node 0, so it needs the
// cluster secret. Given a few endpoints (peer addresses "host:port"), it learns
// each one's node id from the handshake and follows the leader: a request
// that a node did not serve (ClientResponse::not_served: not leader, lost
// office) is retried on the hinted leader, or the next endpoint, until the
// deadline. A request without any answer (the connection broke, or the node
// answered Timeout) is NOT retried: it may have happened, and the caller must
// decide (it gets Status::Timeout / Unavailable saying so).
//
// Thread safety: none; use one Client per thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "net/blocking_connection.h"
#include "net/wire.h"
#include "replication/env.h"

namespace statekv::net {

struct ClientOptions {
  std::vector<std::string> endpoints;  // peer addresses, host:port
  std::string secret;
  // How long one call may take in all, redirects and retries included.
  std::chrono::milliseconds deadline{10000};
  std::chrono::milliseconds connect_timeout{1000};
};

class Client {
 public:
  static Result<std::unique_ptr<Client>> create(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Runs one operation through the group's leader. A kFail answer that is a
  // definite answer (a cas mismatch) is returned as a response, not an error.
  Result<replication::ClientResponse> call(replication::ClientRequest request);

  // Convenience over call().
  Status put(const std::string& key, const std::string& value);
  Result<std::optional<std::string>> get(const std::string& key);
  // True if the cas took effect.
  Result<bool> cas(const std::string& key, const std::optional<std::string>& expected,
                   const std::string& value);

  // An admin operation: status goes to `endpoint` (one of the endpoints);
  // membership changes and transfers go to the leader. Returns the reply body.
  Result<std::string> status(const std::string& endpoint);
  Status add_voter(NodeId node);
  Status remove_voter(NodeId node);
  Status transfer_leader(NodeId to);

  // The node id behind an endpoint, once connected (0 if not yet known).
  NodeId node_at(const std::string& endpoint) const;

 private:
  explicit Client(ClientOptions options);
  Result<BlockingConnection*> connection(const std::string& endpoint);
  Status admin_on_leader(AdminOp op, NodeId node);
  // The endpoint to try next: the hinted leader's if known, else round robin.
  std::string pick(const std::optional<NodeId>& hint);

  ClientOptions options_;
  std::map<std::string, std::unique_ptr<BlockingConnection>> connections_;
  std::map<NodeId, std::string> endpoint_of_;
  size_t next_ = 0;
  uint64_t next_call_ = 0;
};

}  // namespace statekv::net
