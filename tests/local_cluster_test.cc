// The test harness's LocalCluster: its first start survives a peer port that
// another process took between the pick and the node's listen (the
// "Address already in use" seen when two tests picked the same port).
#include "support/local_cluster.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "support/server_process.h"

namespace statekv::itest {
namespace {

// The --peer-port of a node's command line.
uint16_t peer_port_of(const ServerProcess& node) {
  const auto& args = node.options().extra_args;
  auto it = std::find(args.begin(), args.end(), "--peer-port");
  return it != args.end() && it + 1 != args.end() ? static_cast<uint16_t>(std::stoi(*(it + 1))) : 0;
}

TEST(LocalClusterHarness, APeerPortTakenBeforeTheFirstStartIsPickedAgain) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  LocalCluster cluster(3);
  const uint16_t taken = peer_port_of(cluster.node(2));
  ASSERT_NE(taken, 0);
  // Another process's listener on node 3's peer port.
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(taken);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  const Status started = cluster.start();
  ::close(fd);
  ASSERT_TRUE(started.ok()) << started.to_string();
  EXPECT_NE(peer_port_of(cluster.node(2)), taken);
  // Later starts keep the cluster's ports: a killed node comes back on its own.
  const uint16_t kept = peer_port_of(cluster.node(2));
  cluster.node(2).kill();
  ASSERT_TRUE(cluster.start().ok());
  EXPECT_EQ(peer_port_of(cluster.node(2)), kept);
}

}  // namespace
}  // namespace statekv::itest
