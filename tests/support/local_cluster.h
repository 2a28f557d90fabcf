// LocalCluster — a statekv cluster of real `statekv server` processes on
// 127.0.0.1, for tests that need several nodes (client tracking, the cache
// tier): picks the ports, starts every node, waits until all route with one
// map listing every member, and stops them by pid when destroyed.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "support/server_process.h"

namespace statekv::itest {

class LocalCluster {
 public:
  // n nodes on `engine`; `extra` is appended to every node's command line.
  explicit LocalCluster(size_t n, std::vector<std::string> extra = {},
                        std::string engine = "memory");

  // Starts every node (again, after a kill, for those not running) and waits
  // until each routes with a map listing every member, all at one epoch.
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

  std::vector<uint16_t> peer_ports_;
  std::vector<std::unique_ptr<ServerProcess>> nodes_;
};

}  // namespace statekv::itest
