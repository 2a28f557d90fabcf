// NetnsLab — real network partitions between real processes: one network
// namespace per node, joined by a bridge in the test's own namespace, and
// nftables rules that cut traffic between nodes (both ways or one way).
//
// Layout for lab number L (unique per process): bridge "skvbr<L>" with
// 10.<200+L%50>.<L/50>.254/24; namespace "skv<L>n<k>" with veth "skv<L>v<k>"
// (the peer "skv<L>p<k>" on the bridge) and address 10.<..>.<..>.<k>/24, lo up.
// The test process reaches every node through the bridge; partitions only cut
// node-to-node traffic, so a test can watch both sides.
//
// Everything is created by create() and removed by the destructor (the
// namespaces, so their veths, nft tables and processes' sockets go with them;
// then the bridge). Needs root, `ip` and `nft`: create() returns Unavailable
// with the reason otherwise, and the test skips with that message.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace statekv::itest {

class NetnsLab {
 public:
  // `nodes` namespaces (1-based node numbers).
  static Result<std::unique_ptr<NetnsLab>> create(int nodes);
  ~NetnsLab();
  NetnsLab(const NetnsLab&) = delete;
  NetnsLab& operator=(const NetnsLab&) = delete;

  int nodes() const { return nodes_; }
  std::string ip(int node) const;
  std::string netns(int node) const;

  // Starts `argv` inside node's namespace (ip netns exec); the child dies with
  // the test (PR_SET_PDEATHSIG). stdout+stderr go to log_path. Its pid.
  Result<pid_t> spawn(int node, const std::vector<std::string>& argv, const std::string& log_path);

  // Starts `statekv server` as node `node` of a cluster of every namespace of
  // the lab (spawn): RESP on the lab's resp port, peers on port 17001, data in
  // `data_dir`, output to `log_path`.
  Result<pid_t> spawn_statekv(int node, const std::string& data_dir, const std::string& engine,
                              const std::string& secret, const std::string& log_path);

  // Drops every packet node `to` receives from node `from` (one way).
  Status drop(int from, int to);
  // Both ways between `a` and every node in `others`.
  Status isolate(int a, const std::vector<int>& others);
  // Removes every rule: the network heals.
  Status heal();

  // The RESP port every node listens on in its namespace (the tests' choice).
  void set_resp_port(uint16_t port) { resp_port_ = port; }
  // One command through node `node` (support/redis_client.h's reply text;
  // "<connect: why>" when it cannot connect).
  std::string cmd(int node, const std::vector<std::string>& args,
                  std::chrono::milliseconds timeout = std::chrono::seconds(3));
  // Until `args` through `node` replies `want` (or the deadline; the failure
  // then names the last reply, which says why).
  ::testing::AssertionResult eventually(int node, const std::vector<std::string>& args,
                                        const std::string& want, std::chrono::seconds deadline);

 private:
  NetnsLab(int lab, int nodes) : lab_(lab), nodes_(nodes) {}
  std::string subnet() const;  // "10.X.Y"
  int lab_;
  int nodes_;
  uint16_t resp_port_ = 7001;
  bool bridge_made_ = false;
  std::vector<int> namespaces_made_;
};

// Runs a shell command; OK when it exits 0, else the command and its output.
Status run_shell(const std::string& command);

}  // namespace statekv::itest
