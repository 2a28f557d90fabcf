// The test harness's LocalCluster: its first start survives a peer port that
// another process took between the pick and the node's listen (the
// "Address already in use" seen when two tests picked the same port), and the
// port reservations that keep test processes run side by side from picking the
// same port in the first place.
#include "support/local_cluster.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "support/net.h"
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

// Another test process (a child here) holds a reservation: this one cannot take
// those ports until it exits, and never picks one of them.
TEST(TestPorts, APortAnotherTestProcessReservedIsNotPickedUntilItExits) {
  int to_child[2];
  int from_child[2];
  ASSERT_EQ(::pipe(to_child), 0);
  ASSERT_EQ(::pipe(from_child), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Another test process picks a port, and so holds it.
    auto picked = pick_free_low_port();
    const uint16_t port = picked.ok() ? *picked : 0;
    (void)!::write(from_child[1], &port, sizeof port);
    char go;
    (void)!::read(to_child[0], &go, 1);  // held until the parent says
    ::_exit(0);
  }
  uint16_t held = 0;
  ASSERT_EQ(::read(from_child[0], &held, sizeof held), static_cast<ssize_t>(sizeof held));
  ASSERT_NE(held, 0);
  EXPECT_FALSE(reserve_ports(held, 1));
  EXPECT_FALSE(reserve_ports(static_cast<uint16_t>(held - 1), 2));  // a range that overlaps it
  for (int i = 0; i < 300; ++i) {
    auto port = pick_free_low_port();
    ASSERT_TRUE(port.ok());
    EXPECT_NE(*port, held);
  }
  (void)!::write(to_child[1], "x", 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  // Released by the kernel when the holder exited.
  EXPECT_TRUE(reserve_ports(held, 1));
  // Once reserved here, not again, even by this process.
  EXPECT_FALSE(reserve_ports(held, 1));
  for (int fd : {to_child[0], to_child[1], from_child[0], from_child[1]}) ::close(fd);
}

}  // namespace
}  // namespace statekv::itest
