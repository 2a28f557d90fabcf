// LocalCluster — a statekv cluster of real `statekv server` processes on
// 127.0.0.1, for tests that need several nodes (client tracking, the cache
// tier): picks the ports, starts every node, waits until all route with one
// map listing every member, and stops them by pid when destroyed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "support/server_process.h"

namespace statekv::itest {

// The flags that make a `statekv server` node `index` (0-based: statekv id
// index + 1) of the cluster whose nodes listen for peers on `peer_ports`
// (127.0.0.1, one per node, in id order), with `secret` and raft elections
// after `election_ms`. Callers append flags of their own.
std::vector<std::string> cluster_node_args(size_t index, const std::vector<uint16_t>& peer_ports,
                                           const std::string& secret, int election_ms = 300);

class LocalCluster {
 public:
  // n nodes on `engine`; `extra` is appended to every node's command line.
  explicit LocalCluster(size_t n, std::vector<std::string> extra = {},
                        std::string engine = "memory");

  // Starts every node (again, after a kill, for those not running) and waits
  // until each routes with a map listing every member, all at one epoch. The
  // first start picks new peer ports, up to twice, when a node cannot listen
  // on its own (another test's process took it between the pick and the
  // listen: pick_free_low_port reserves nothing).
  Status start(std::chrono::milliseconds timeout = std::chrono::seconds(20));

  size_t size() const { return nodes_.size(); }
  ServerProcess& node(size_t i) { return *nodes_[i]; }
  uint16_t port(size_t i) const { return nodes_[i]->port(); }
  std::string address(size_t i) const;
  // Index of the node that owns key (LOCATE asked of node `via`).
  Result<size_t> owner_of(const std::string& key, size_t via = 0);
  // A key with the given prefix that node `owner` owns.
  Result<std::string> key_on(size_t owner, const std::string& prefix, size_t via = 0);

 private:
  bool converged(std::string* why);
  // Picks a peer port per node and sets every node's arguments with them.
  void pick_peer_ports();

  std::vector<std::string> extra_;
  bool started_ = false;  // start() succeeded once: the peer ports are the cluster's
  std::vector<uint16_t> peer_ports_;
  std::vector<std::unique_ptr<ServerProcess>> nodes_;
};

}  // namespace statekv::itest
