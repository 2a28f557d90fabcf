#include "sim/network.h"

#include <gtest/gtest.h>

namespace statekv::sim {
namespace {

Network three() {
  return Network(3, std::vector<std::vector<SimTime>>(3, std::vector<SimTime>(3, 1000)),
                 DelayModel{});
}

TEST(Network, PartitionBlocksBetweenGroupsOnlyAndUnnamedNodesFormAGroup) {
  Network net = three();
  net.partition({{NodeId(1)}});  // {1} | {2,3}
  EXPECT_TRUE(net.blocked(NodeId(1), NodeId(2)));
  EXPECT_TRUE(net.blocked(NodeId(3), NodeId(1)));
  EXPECT_FALSE(net.blocked(NodeId(2), NodeId(3)));
  EXPECT_FALSE(net.blocked(NodeId(1), NodeId(1)));
  net.heal();
  EXPECT_FALSE(net.blocked(NodeId(1), NodeId(2)));
}

TEST(Network, OnewayBlocksOneDirection) {
  Network net = three();
  net.block(NodeId(1), NodeId(3));
  Random rng(1);
  EXPECT_TRUE(net.route(NodeId(1), NodeId(3), rng).empty());
  EXPECT_EQ(net.route(NodeId(3), NodeId(1), rng).size(), 1u);
  net.unblock(NodeId(1), NodeId(3));
  EXPECT_EQ(net.route(NodeId(1), NodeId(3), rng).size(), 1u);
}

TEST(Network, LossDuplicationAndDelay) {
  Network net(2, {{1000, 1000}, {1000, 1000}},
              DelayModel{.jitter = 500, .tail_p = 0, .tail_max = 0, .reorder_max = 0});
  Random rng(7);
  net.faults().duplicate = 1.0;
  auto copies = net.route(NodeId(1), NodeId(2), rng);
  ASSERT_EQ(copies.size(), 2u);
  for (SimTime d : copies) {
    EXPECT_GE(d, 1000);
    EXPECT_LT(d, 1500);
  }
  net.faults().loss = 1.0;
  EXPECT_TRUE(net.route(NodeId(1), NodeId(2), rng).empty());
  net.faults().loss = 0.3;
  net.faults().duplicate = 0;
  int delivered = 0;
  for (int i = 0; i < 10000; ++i) delivered += !net.route(NodeId(1), NodeId(2), rng).empty();
  EXPECT_NEAR(delivered / 10000.0, 0.7, 0.03);
}

}  // namespace
}  // namespace statekv::sim
