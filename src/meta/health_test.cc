#include "meta/health.h"

#include <gtest/gtest.h>

#include <set>

namespace statekv::meta {
namespace {

Member member(uint64_t id) {
  Member m;
  m.id = NodeId(id);
  m.state = MemberState::kActive;
  return m;
}

// Three members; keyspace "default" with one owner per shard (0 on node 1,
// 1 on node 2, 2 on node 3); keyspace "rep" with factor 2 and shards owned by
// {1,2} and {2,3}.
ClusterMap three_nodes() {
  ClusterMap m;
  m.cluster_id = "t";
  m.members = {member(1), member(2), member(3)};
  Keyspace d;
  d.spec.name = "default";
  d.spec.replication.factor = 1;
  for (uint64_t i = 0; i < 3; ++i) d.shards.push_back(Shard{ShardId(i), {NodeId(i + 1)}, {}});
  Keyspace r;
  r.spec.name = "rep";
  // Served at the first owner (not a consensus group, which needs a majority).
  r.spec.replication.kind = Replication::kPrimaryBackupSync;
  r.spec.replication.factor = 2;
  r.shards = {Shard{ShardId(0), {NodeId(1), NodeId(2)}, {}},
              Shard{ShardId(1), {NodeId(2), NodeId(3)}, {}}};
  m.keyspaces = {d, r};
  return m;
}

std::function<bool(NodeId)> all_but(std::set<uint64_t> down) {
  return [down](NodeId id) { return down.count(id.value()) == 0; };
}

TEST(Health, EveryOwnerUpIsOk) {
  Health h = assess_health(three_nodes(), all_but({}));
  EXPECT_EQ(h.state, HealthState::kOk);
  EXPECT_TRUE(h.unavailable.empty());
  EXPECT_TRUE(h.degraded.empty());
  EXPECT_TRUE(h.down.empty());
}

TEST(Health, AShardWhoseOnlyOwnerIsDownFailsAndNamesIt) {
  Health h = assess_health(three_nodes(), all_but({3}));
  EXPECT_EQ(h.state, HealthState::kFail);
  ASSERT_EQ(h.unavailable.size(), 1u);
  EXPECT_EQ(h.unavailable[0].describe(), "default/2 (owner node 3 down)");
  // rep/1 keeps node 2: served, below its factor.
  ASSERT_EQ(h.degraded.size(), 1u);
  EXPECT_EQ(h.degraded[0].keyspace, "rep");
  EXPECT_EQ(h.degraded[0].shard, ShardId(1));
  EXPECT_EQ(h.down, std::vector<NodeId>{NodeId(3)});
}

TEST(Health, AGroupBelowItsFactorButServedIsDegraded) {
  ClusterMap m = three_nodes();
  m.keyspaces.erase(m.keyspaces.begin());  // only "rep": every shard has two owners
  Health h = assess_health(m, all_but({3}));
  EXPECT_EQ(h.state, HealthState::kDegraded);
  EXPECT_TRUE(h.unavailable.empty());
  ASSERT_EQ(h.degraded.size(), 1u);
  EXPECT_EQ(h.degraded[0].describe(), "rep/1 (owner node 3 down)");
  EXPECT_EQ(h.degraded[0].up, 1u);
}

TEST(Health, AConsensusGroupServesWhileAMajorityIsUp) {
  ClusterMap m = three_nodes();
  Keyspace c;
  c.spec.name = "raft";
  c.spec.replication.kind = Replication::kConsensus;
  c.spec.replication.factor = 3;
  c.shards = {Shard{ShardId(0), {NodeId(1), NodeId(2), NodeId(3)}, {}}};
  m.keyspaces = {c};
  Health one_down = assess_health(m, all_but({1}));  // its first owner, even
  EXPECT_EQ(one_down.state, HealthState::kDegraded);
  ASSERT_EQ(one_down.degraded.size(), 1u);
  EXPECT_EQ(one_down.degraded[0].keyspace, "raft");
  Health two_down = assess_health(m, all_but({1, 3}));
  EXPECT_EQ(two_down.state, HealthState::kFail);
  ASSERT_EQ(two_down.unavailable.size(), 1u);
  EXPECT_EQ(two_down.unavailable[0].keyspace, "raft");
}

TEST(Health, AShardWhoseFirstOwnerIsDownIsUnavailableWhileNothingFailsOver) {
  ClusterMap m = three_nodes();
  m.keyspaces.erase(m.keyspaces.begin());
  // rep/0 is owned by {1, 2}: node 2 is up, but keys are served at node 1 only.
  Health h = assess_health(m, all_but({1}));
  EXPECT_EQ(h.state, HealthState::kFail);
  ASSERT_EQ(h.unavailable.size(), 1u);
  EXPECT_EQ(h.unavailable[0].describe(), "rep/0 (owner node 1 down)");
}

TEST(Health, AGroupWithFewerOwnersThanItsFactorIsDegradedEvenWithAllUp) {
  ClusterMap m = three_nodes();
  m.keyspaces[1].shards[0].owners = {NodeId(1)};
  Health h = assess_health(m, all_but({}));
  EXPECT_EQ(h.state, HealthState::kDegraded);
  ASSERT_EQ(h.degraded.size(), 1u);
  EXPECT_EQ(h.degraded[0].describe(), "rep/0");
}

TEST(Health, TheSourceOfAMoveCountsUntilItEnds) {
  ClusterMap m = three_nodes();
  m.keyspaces.pop_back();
  // Keys of shard 0 still live on node 3 while they move to node 1.
  m.keyspaces[0].moving_from = SourceLayout{{}, {Shard{ShardId(0), {NodeId(3)}, {}}}, {}, {}};
  m.keyspaces[0].shards[2].owners = {NodeId(1)};
  Health h = assess_health(m, all_but({3}));
  EXPECT_EQ(h.state, HealthState::kFail);
  ASSERT_EQ(h.unavailable.size(), 1u);
  EXPECT_TRUE(h.unavailable[0].source);
  EXPECT_EQ(h.unavailable[0].describe(), "default/0 (moving away) (owner node 3 down)");
}

TEST(Health, AnOwnerMissingFromTheMembersCountsAsDown) {
  ClusterMap m = three_nodes();
  m.members.pop_back();  // node 3 gone from the members, still named as an owner
  Health h = assess_health(m, all_but({}));
  EXPECT_EQ(h.state, HealthState::kFail);
  EXPECT_TRUE(h.down.empty());
}

}  // namespace
}  // namespace statekv::meta
