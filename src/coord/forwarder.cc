#include "coord/forwarder.h"

#include <map>
#include <memory>

#include "net/blocking_connection.h"

namespace statekv::coord {

namespace {

// This thread's connections, by (forwarder, node, address).
struct Key {
  const void* owner;
  uint64_t node;
  std::string address;
  bool operator<(const Key& o) const {
    return std::tie(owner, node, address) < std::tie(o.owner, o.node, o.address);
  }
};
thread_local std::map<Key, std::unique_ptr<net::BlockingConnection>> t_connections;
thread_local uint64_t t_next_call = 0;

}  // namespace

Forwarder::Forwarder(NodeId self, std::string secret, std::chrono::milliseconds timeout)
    : self_(self), secret_(std::move(secret)), timeout_(timeout) {}

Result<std::string> Forwarder::call(NodeId node, const std::string& peer_address,
                                    net::ForwardFrame frame) {
  const auto deadline = net::BlockingConnection::Clock::now() + timeout_;
  const Key key{this, node.value(), peer_address};
  auto it = t_connections.find(key);
  if (it != t_connections.end() && !it->second->alive()) {
    t_connections.erase(it);
    it = t_connections.end();
  }
  if (it == t_connections.end()) {
    // Routers connect as clients (node 0): a node's own outbound raft link to
    // that peer is a different connection, owned by the transport.
    auto conn = net::BlockingConnection::open(peer_address, secret_, deadline);
    if (!conn.ok()) {
      return Status::Unavailable("cannot reach node " + std::to_string(node.value()) + " at " +
                                 peer_address + ": " + conn.status().message());
    }
    if ((*conn)->node() != node) {
      return Status::Unavailable("the node at " + peer_address + " is node " +
                                 std::to_string((*conn)->node().value()) + ", not node " +
                                 std::to_string(node.value()));
    }
    it = t_connections.emplace(key, std::move(conn).value()).first;
  }
  frame.call = ++t_next_call;
  auto r = it->second->call(frame, deadline);
  if (!r.ok() && r.status().is_invalid_argument()) return r.status();  // too large: not sent
  if (!r.ok()) {
    t_connections.erase(it);
    return Status::Timeout("routing to node " + std::to_string(node.value()) +
                           " failed mid-request: " + r.status().message() +
                           "; it may or may not have run");
  }
  if (!r->status.ok()) return r->status;
  return std::move(r->reply);
}

}  // namespace statekv::coord
