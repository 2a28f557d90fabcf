// Transitions: each applies its change, bumps the epoch by exactly one, says
// what it did, and refuses what it must with a message a user can act on.
#include "meta/transitions.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace statekv::meta {
namespace {

Member member(uint64_t id, std::string region = "default") {
  Member m;
  m.id = NodeId(id);
  m.address = fmt::format("10.0.0.{}:6379", id);
  m.peer_address = fmt::format("10.0.0.{}:7000", id);
  m.region = std::move(region);
  return m;
}

ClusterMap three() {
  Result<ClusterMap> m = bootstrap("prod", {member(1), member(2), member(3)});
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  return *m;
}

KeyspaceSpec spec(std::string name, std::string prefix) {
  KeyspaceSpec s;
  s.name = std::move(name);
  s.key_prefix = std::move(prefix);
  return s;
}

// KeyspaceChanges, one field at a time.
struct Changes {
  KeyspaceChanges c;
  Changes& consistency(Consistency v) {
    c.consistency = v;
    return *this;
  }
  Changes& partition_mode(PartitionMode v) {
    c.partition_mode = v;
    return *this;
  }
  Changes& factor(uint32_t v) {
    c.replication_factor = v;
    return *this;
  }
  Changes& read_quorum(uint32_t v) {
    c.read_quorum = v;
    return *this;
  }
  operator const KeyspaceChanges&() const { return c; }  // NOLINT: implicit by design
};

KeyspaceSpec users(uint32_t shards = 4) {
  KeyspaceSpec s = spec("users", "user:");
  s.partitioner.shards = shards;
  s.replication.factor = 2;
  return s;
}

// The common contract of every successful transition.
ClusterMap expect_next(const ClusterMap& before, const Result<ClusterMap>& after,
                       std::string_view said) {
  EXPECT_TRUE(after.ok()) << after.status().to_string();
  if (!after.ok()) return before;
  EXPECT_EQ(after->epoch, before.epoch.next());
  EXPECT_EQ(after->last_change, said);
  EXPECT_EQ(after->recent_changes, before.recent_changes) << "stamps are the writer's job";
  EXPECT_EQ(after->cluster_id, before.cluster_id);
  EXPECT_TRUE(validate(*after).ok()) << validate(*after).to_string();
  return *after;
}

void expect_refused(const Result<ClusterMap>& r, std::string_view message) {
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_invalid_argument()) << r.status().to_string();
  EXPECT_EQ(r.status().message(), message);
}

std::vector<NodeId> ids(std::initializer_list<uint64_t> v) {
  std::vector<NodeId> out;
  for (uint64_t x : v) out.emplace_back(x);
  return out;
}

TEST(Bootstrap, FirstMapHasEpochOneAndTheDefaultKeyspace) {
  const ClusterMap m = three();
  EXPECT_EQ(m.epoch, Epoch(1));
  EXPECT_EQ(m.last_change, "bootstrap cluster 'prod' with nodes 1,2,3");
  for (const Member& x : m.members) EXPECT_EQ(x.state, MemberState::kActive);
  ASSERT_EQ(m.keyspaces.size(), 1u);
  const Keyspace& d = m.keyspaces[0];
  EXPECT_EQ(d.spec.name, "default");
  EXPECT_EQ(d.spec.key_prefix, "");
  EXPECT_EQ(d.spec.partitioner.kind, Partitioner::kHash);
  EXPECT_EQ(d.spec.replication.kind, Replication::kConsensus);
  EXPECT_EQ(d.spec.replication.factor, 3u);
  EXPECT_EQ(d.spec.consistency, Consistency::kLinearizable);
  // One shard per member, shard i led by the i-th member, round robin.
  ASSERT_EQ(d.shards.size(), 3u);
  EXPECT_EQ(d.shards[0].owners, ids({1, 2, 3}));
  EXPECT_EQ(d.shards[1].owners, ids({2, 3, 1}));
  EXPECT_EQ(d.shards[2].owners, ids({3, 1, 2}));
}

TEST(Bootstrap, DefaultReplicationCanBeChosen) {
  ReplicationSpec one_owner;
  one_owner.kind = Replication::kNone;
  one_owner.factor = 1;
  Result<ClusterMap> m = bootstrap("prod", {member(1), member(2), member(3)}, one_owner);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const Keyspace& d = m->keyspaces[0];
  EXPECT_EQ(d.spec.replication.kind, Replication::kNone);
  ASSERT_EQ(d.shards.size(), 3u);
  EXPECT_EQ(d.shards[0].owners, ids({1}));
  EXPECT_EQ(d.shards[1].owners, ids({2}));
  EXPECT_EQ(d.shards[2].owners, ids({3}));
}

TEST(Bootstrap, SmallClusterGetsASmallerFactor) {
  Result<ClusterMap> m = bootstrap("solo", {member(7)});
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(m->keyspaces[0].spec.replication.factor, 1u);
  EXPECT_EQ(m->keyspaces[0].shards[0].owners, ids({7}));
}

TEST(Bootstrap, Refusals) {
  expect_refused(bootstrap("prod", {}), "a cluster needs at least one member");
  expect_refused(bootstrap("prod", {member(1), member(1)}), "node 1 is listed twice");
  Member nv = member(1);
  nv.voter = false;
  expect_refused(bootstrap("prod", {nv}), "the cluster needs at least one voter");
  expect_refused(bootstrap("my cluster", {member(1)}),
                 "cluster id 'my cluster' must be 1..64 characters of letters, digits, '.', '_' "
                 "or '-'");
}

TEST(Members, AddSetStateRemove) {
  ClusterMap m = three();
  m = expect_next(m, add_member(m, member(4)),
                  "add node 4 (10.0.0.4:6379, peer 10.0.0.4:7000, region default, joining, voter)");
  EXPECT_EQ(m.find_member(NodeId(4))->state, MemberState::kJoining);
  m = expect_next(m, set_member_state(m, NodeId(4), MemberState::kActive),
                  "node 4: joining -> active");
  m = expect_next(m, set_member_state(m, NodeId(4), MemberState::kLeaving),
                  "node 4: active -> leaving");
  m = expect_next(m, set_member_state(m, NodeId(4), MemberState::kActive),
                  "node 4: leaving -> active");
  m = expect_next(m, remove_member(m, NodeId(4)), "remove node 4");
  EXPECT_EQ(m.find_member(NodeId(4))->state, MemberState::kRemoved);
  EXPECT_FALSE(m.find_member(NodeId(4))->voter);
  EXPECT_EQ(m.epoch, Epoch(6));
}

// A node that starts records where it is reached and goes active; one being
// removed (leaving) stays leaving however it restarts: remove-node found its
// node, killed and started again meanwhile, active again, and its replicas
// never moved (the replica-move nemesis).
TEST(Members, ANodeDescribingItselfGoesActiveUnlessItIsLeaving) {
  ClusterMap m = three();
  m = *add_member(m, member(4));
  m = expect_next(m,
                  describe_member(m, NodeId(4), "10.0.0.4:6380", "10.0.0.4:7000", "default",
                                  MemberState::kActive),
                  "node 4 describes itself: 10.0.0.4:6380 (peer 10.0.0.4:7000), region default, "
                  "active");
  m = *set_member_state(m, NodeId(4), MemberState::kLeaving);
  m = expect_next(m,
                  describe_member(m, NodeId(4), "10.0.0.4:6381", "10.0.0.4:7000", "default",
                                  MemberState::kActive),
                  "node 4 describes itself: 10.0.0.4:6381 (peer 10.0.0.4:7000), region default, "
                  "leaving");
  EXPECT_EQ(m.find_member(NodeId(4))->state, MemberState::kLeaving);
  expect_refused(describe_member(m, NodeId(4), "10.0.0.4:6381", "10.0.0.4:7000", "default",
                                 MemberState::kActive),
                 "node 4 is already described so");
}

TEST(Members, AddRefusals) {
  const ClusterMap m = three();
  expect_refused(add_member(m, member(2)), "node 2 is already a member");
  Member dup = member(5);
  dup.address = "10.0.0.1:6379";
  expect_refused(add_member(m, dup),
                 "node 5: address 10.0.0.1:6379 is already used by another member");
  Member leaving = member(5);
  leaving.state = MemberState::kLeaving;
  expect_refused(add_member(m, leaving), "a new member starts as joining or active, not leaving");
  Member bad = member(5);
  bad.peer_address = "nowhere";
  expect_refused(add_member(m, bad),
                 "node 5: peer address 'nowhere' must be host:port with a port in 1..65535");
  // Ids are never reused.
  ClusterMap r = *add_member(m, member(5));
  r = *remove_member(r, NodeId(5));
  expect_refused(add_member(r, member(5)), "node 5 was removed, and node ids are never reused");
}

TEST(Members, StateRefusals) {
  ClusterMap m = three();
  expect_refused(set_member_state(m, NodeId(9), MemberState::kActive), "node 9 is not a member");
  expect_refused(set_member_state(m, NodeId(1), MemberState::kActive), "node 1 is already active");
  expect_refused(set_member_state(m, NodeId(1), MemberState::kJoining),
                 "node 1 cannot go from active to joining");
  expect_refused(set_member_state(m, NodeId(1), MemberState::kRemoved),
                 "node 1 is removed with remove_member, which checks what it owns");
  m = *add_member(m, member(4));
  m = *remove_member(m, NodeId(4));
  expect_refused(set_member_state(m, NodeId(4), MemberState::kActive), "node 4 is not a member");
}

TEST(Members, RemoveRefusesTheLastVoterAndOwners) {
  ClusterMap m = three();
  expect_refused(remove_member(m, NodeId(9)), "node 9 is not a member");
  expect_refused(remove_member(m, NodeId(2)),
                 "node 2 still owns 3 shard(s) (default/0, default/1, default/2): move them with "
                 "assign_shards first, or drop its ownership");
  // Told to, it drops the member from every owner list.
  ClusterMap dropped = expect_next(m, remove_member(m, NodeId(2), OwnedShards::kDrop),
                                   "remove node 2, dropping it from 3 shard(s)");
  for (const Shard& s : dropped.keyspaces[0].shards) {
    EXPECT_EQ(std::count(s.owners.begin(), s.owners.end(), NodeId(2)), 0);
    EXPECT_EQ(s.owners.size(), 2u);
  }
  // ... unless a shard would be left with no owner.
  Result<ClusterMap> solo = bootstrap("solo", {member(1), member(2)});
  ASSERT_TRUE(solo.ok());
  ClusterMap s = *solo;
  s = *assign_shards(s, "default", {{ShardId(0), ids({1}), {}}, {ShardId(1), ids({1, 2}), {}}});
  expect_refused(remove_member(s, NodeId(1), OwnedShards::kDrop),
                 "removing node 1 would leave shard 0 of keyspace 'default' without an owner: "
                 "assign it elsewhere first");
  // The last voter stays, whatever it owns.
  Member nv = member(2);
  nv.voter = false;
  Result<ClusterMap> one_voter = bootstrap("v", {member(1), nv});
  ASSERT_TRUE(one_voter.ok());
  expect_refused(remove_member(*one_voter, NodeId(1), OwnedShards::kDrop),
                 "node 1 is the last voter: add another voter first");
  // A member that owns nothing goes without being told.
  ClusterMap four = *add_member(m, member(4));
  expect_next(four, remove_member(four, NodeId(4)), "remove node 4");
}

TEST(Keyspaces, CreatePlacesShardsRoundRobin) {
  ClusterMap m = three();
  m = expect_next(
      m, create_keyspace(m, users()),
      "create keyspace 'users' (prefix 'user:', hash, 4 shards, consensus x2, linearizable, "
      "consistency)");
  const Keyspace* k = m.find_keyspace("users");
  ASSERT_NE(k, nullptr);
  ASSERT_EQ(k->shards.size(), 4u);
  EXPECT_EQ(k->shards[0].owners, ids({1, 2}));
  EXPECT_EQ(k->shards[1].owners, ids({2, 3}));
  EXPECT_EQ(k->shards[2].owners, ids({3, 1}));
  EXPECT_EQ(k->shards[3].owners, ids({1, 2}));
  for (size_t i = 0; i < k->shards.size(); ++i) EXPECT_EQ(k->shards[i].id, ShardId(i));
}

TEST(Keyspaces, PlacementUsesActiveMembersOnly) {
  ClusterMap m = three();
  m = *add_member(m, member(4));  // joining: not placed on
  m = *set_member_state(m, NodeId(2), MemberState::kLeaving);
  m = *create_keyspace(m, users(2));
  EXPECT_EQ(m.find_keyspace("users")->shards[0].owners, ids({1, 3}));
  EXPECT_EQ(m.find_keyspace("users")->shards[1].owners, ids({3, 1}));
}

TEST(Keyspaces, GeoPlacesEachShardInItsRegion) {
  Result<ClusterMap> m0 =
      bootstrap("geo", {member(1, "eu"), member(2, "us"), member(3, "eu"), member(4, "us")});
  ASSERT_TRUE(m0.ok());
  KeyspaceSpec g = spec("people", "p:");
  g.partitioner.kind = Partitioner::kGeo;
  g.partitioner.shards = 2;
  g.partitioner.geo_rules = {{"p:eu:", "eu"}, {"", "us"}};
  g.replication.factor = 2;
  ClusterMap m = *create_keyspace(*m0, g);
  const Keyspace* k = m.find_keyspace("people");
  ASSERT_EQ(k->shards.size(), 4u);
  EXPECT_EQ(k->shards[0].owners, ids({1, 3}));  // eu, shard 0 of the region
  EXPECT_EQ(k->shards[1].owners, ids({3, 1}));
  EXPECT_EQ(k->shards[2].owners, ids({2, 4}));  // us
  EXPECT_EQ(k->shards[3].owners, ids({4, 2}));
  g.name = "asia";
  g.key_prefix = "a:";
  g.partitioner.geo_rules = {{"", "ap"}};
  expect_refused(create_keyspace(m, g),
                 "keyspace 'asia': there is no active member in region 'ap'");
}

TEST(Keyspaces, CreateRefusals) {
  const ClusterMap m = three();
  ClusterMap with = *create_keyspace(m, users());
  expect_refused(create_keyspace(with, users()), "keyspace 'users' exists");
  expect_refused(create_keyspace(m, spec("default", "")), "keyspace 'default' exists");
  KeyspaceSpec same = spec("people", "user:");
  expect_refused(create_keyspace(with, same),
                 "keyspace 'users' has the same prefix 'user:' as keyspace 'people': a key could "
                 "belong to both");
  expect_refused(create_keyspace(m, spec("x", "")),
                 "keyspace 'x': needs a non-empty key prefix (only 'default' takes the keys no "
                 "prefix claims)");
  KeyspaceSpec ap = users();
  ap.partition_mode = PartitionMode::kAvailability;
  expect_refused(create_keyspace(m, ap),
                 "keyspace 'users': linearizable consistency needs partition mode 'consistency' "
                 "(a side of a partition that keeps serving cannot be linearizable)");
  // No active member at all.
  ClusterMap idle = m;
  for (Member& x : idle.members) x.state = MemberState::kLeaving;
  expect_refused(create_keyspace(idle, users()),
                 "keyspace 'users': there is no active member to place shards on");
}

// docs/routing.md: the longest prefix wins, so prefixes may nest, either way
// round (the inner one created first or second), and each drops on its own.
TEST(Keyspaces, NestedPrefixesAreKeyspacesOfTheirOwn) {
  const ClusterMap m = three();
  Result<ClusterMap> outer_first =
      create_keyspace(*create_keyspace(m, users()), spec("admins", "user:admin:"));
  ASSERT_TRUE(outer_first.ok()) << outer_first.status().to_string();
  EXPECT_TRUE(validate(*outer_first).ok());
  Result<ClusterMap> inner_first =
      create_keyspace(*create_keyspace(m, spec("admins", "user:admin:")), users());
  ASSERT_TRUE(inner_first.ok()) << inner_first.status().to_string();
  Result<ClusterMap> dropped = drop_keyspace(*outer_first, "users");
  ASSERT_TRUE(dropped.ok()) << dropped.status().to_string();
  EXPECT_NE(dropped->find_keyspace("admins"), nullptr);
  EXPECT_EQ(dropped->find_keyspace("users"), nullptr);
  ASSERT_TRUE(drop_keyspace(*outer_first, "admins").ok());
}

TEST(Keyspaces, AlterChangesOnlyWhatItMay) {
  ClusterMap m = *create_keyspace(three(), users());
  m = expect_next(
      m,
      alter_keyspace(
          m, "users",
          Changes().consistency(Consistency::kCausal).partition_mode(PartitionMode::kAvailability)),
      "alter keyspace 'users': consistency causal, partition mode availability");
  EXPECT_EQ(m.find_keyspace("users")->spec.consistency, Consistency::kCausal);
  // A bigger factor extends owner lists in placement order; a smaller one trims.
  m = expect_next(m, alter_keyspace(m, "users", Changes().factor(3)),
                  "alter keyspace 'users': replication factor 3");
  EXPECT_EQ(m.find_keyspace("users")->shards[0].owners, ids({1, 2, 3}));
  EXPECT_EQ(m.find_keyspace("users")->shards[2].owners, ids({3, 1, 2}));
  m = expect_next(m, alter_keyspace(m, "users", Changes().factor(1)),
                  "alter keyspace 'users': replication factor 1");
  EXPECT_EQ(m.find_keyspace("users")->shards[1].owners, ids({2}));
}

TEST(Keyspaces, AlterRefusals) {
  ClusterMap m = *create_keyspace(three(), users());
  expect_refused(alter_keyspace(m, "nope", Changes().consistency(Consistency::kFifo)),
                 "there is no keyspace 'nope'");
  expect_refused(alter_keyspace(m, "users", KeyspaceChanges{}),
                 "alter keyspace 'users': nothing changes");
  expect_refused(alter_keyspace(m, "users", Changes().consistency(Consistency::kLinearizable)),
                 "alter keyspace 'users': nothing changes");
  expect_refused(alter_keyspace(m, "users", Changes().partition_mode(PartitionMode::kAvailability)),
                 "keyspace 'users': linearizable consistency needs partition mode 'consistency' "
                 "(a side of a partition that keeps serving cannot be linearizable)");
  expect_refused(alter_keyspace(m, "users", Changes().read_quorum(2)),
                 "keyspace 'users': read/write quorum sizes apply to quorum replication only");
  expect_refused(alter_keyspace(m, "users", Changes().factor(0)),
                 "keyspace 'users': replication factor must be in 1..64");
}

TEST(Keyspaces, DropRefusesDefaultAndUnknown) {
  ClusterMap m = *create_keyspace(three(), users());
  ClusterMap dropped = expect_next(m, drop_keyspace(m, "users"), "drop keyspace 'users'");
  EXPECT_EQ(dropped.find_keyspace("users"), nullptr);
  expect_refused(drop_keyspace(m, "default"), "the default keyspace cannot be dropped");
  expect_refused(drop_keyspace(dropped, "users"), "there is no keyspace 'users'");
}

TEST(Shards, AssignReplacesTheShardMap) {
  ClusterMap m = *create_keyspace(three(), users(2));
  m = expect_next(
      m, assign_shards(m, "users", {{ShardId(0), ids({3, 1}), {}}, {ShardId(1), ids({2, 3}), {}}}),
      "assign shards of keyspace 'users': 1 of 2 change");
  EXPECT_EQ(m.find_keyspace("users")->shards[0].owners, ids({3, 1}));
}

TEST(Shards, AssignRefusals) {
  ClusterMap m = *create_keyspace(three(), users(2));
  m = *add_member(m, member(4));  // joining
  const auto two = [](std::vector<NodeId> a, std::vector<NodeId> b) {
    return std::vector<Shard>{{ShardId(0), std::move(a), {}}, {ShardId(1), std::move(b), {}}};
  };
  expect_refused(assign_shards(m, "nope", two(ids({1}), ids({2}))), "there is no keyspace 'nope'");
  expect_refused(assign_shards(m, "users", {{ShardId(0), ids({1}), {}}}),
                 "keyspace 'users' has 2 partitions: give 2 shards, not 1");
  expect_refused(assign_shards(m, "users", two(ids({1}), ids({9}))), "node 9 is not a member");
  expect_refused(assign_shards(m, "users", two(ids({1}), ids({4}))),
                 "node 4 is joining: only active members can own shards");
  expect_refused(assign_shards(m, "users", two(ids({1, 2, 3}), ids({2}))),
                 "keyspace 'users': shard 0 has 3 owners, more than the replication factor 2");
  expect_refused(assign_shards(m, "users", two(ids({1, 1}), ids({2}))),
                 "keyspace 'users': shard 0 lists node 1 twice");
  expect_refused(assign_shards(m, "users", two(ids({}), ids({2}))),
                 "keyspace 'users': shard 0 has no owner");
  expect_refused(
      assign_shards(m, "users", {{ShardId(1), ids({1}), {}}, {ShardId(0), ids({2}), {}}}),
      "keyspace 'users': shard at position 0 has id 1 (ids are 0..1 in order)");
  expect_refused(assign_shards(m, "users", m.find_keyspace("users")->shards),
                 "assign shards of keyspace 'users': nothing changes");
}

TEST(Epochs, EveryTransitionBumpsByExactlyOne) {
  ClusterMap m = three();
  std::vector<std::function<Result<ClusterMap>(const ClusterMap&)>> steps = {
      [](const ClusterMap& x) { return add_member(x, member(4)); },
      [](const ClusterMap& x) { return set_member_state(x, NodeId(4), MemberState::kActive); },
      [](const ClusterMap& x) { return create_keyspace(x, users()); },
      [](const ClusterMap& x) {
        return alter_keyspace(x, "users", Changes().consistency(Consistency::kSequential));
      },
      [](const ClusterMap& x) {
        return assign_shards(x, "users",
                             {{ShardId(0), ids({4}), {}},
                              {ShardId(1), ids({4}), {}},
                              {ShardId(2), ids({4}), {}},
                              {ShardId(3), ids({4}), {}}});
      },
      [](const ClusterMap& x) { return remove_member(x, NodeId(1), OwnedShards::kDrop); },
      [](const ClusterMap& x) { return drop_keyspace(x, "users"); },
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    Result<ClusterMap> next = steps[i](m);
    ASSERT_TRUE(next.ok()) << i << ": " << next.status().to_string();
    EXPECT_EQ(next->epoch.value(), m.epoch.value() + 1) << i;
    EXPECT_NE(next->last_change, m.last_change) << i;
    m = *next;
  }
  EXPECT_EQ(m.epoch, Epoch(1 + steps.size()));
}

TEST(Epochs, ARefusalLeavesTheInputAlone) {
  const ClusterMap m = three();
  const ClusterMap copy = m;
  ASSERT_FALSE(remove_member(m, NodeId(1)).ok());
  ASSERT_FALSE(create_keyspace(m, spec("x", "")).ok());
  EXPECT_EQ(m, copy);
}

}  // namespace
}  // namespace statekv::meta

namespace statekv::meta {
namespace {

ClusterMap three_one_owner() {
  ReplicationSpec one;
  one.kind = Replication::kNone;
  one.factor = 1;
  Result<ClusterMap> m = bootstrap("prod", {member(1), member(2), member(3)}, one);
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  return *m;
}

TEST(Layout, SetLayoutReplacesShardsAndSplitPoints) {
  ClusterMap m = three_one_owner();
  KeyspaceSpec slots = spec("users", "u:");
  slots.partitioner.kind = Partitioner::kSlots;
  m = expect_next(
      m, create_keyspace(m, slots),
      "create keyspace 'users' (prefix 'u:', slots, 1 shard, consensus x3, linearizable, "
      "consistency)");
  std::vector<Shard> shards = {{ShardId(0), ids({2}), {}}, {ShardId(1), ids({3}), {}}};
  m = expect_next(m, set_layout(m, "users", {"0", "8192"}, shards),
                  "layout of keyspace 'users': 2 shards, 2 changed");
  EXPECT_EQ(m.find_keyspace("users")->shards, shards);
  expect_refused(set_layout(m, "users", {"0", "8192"}, shards),
                 "layout of keyspace 'users': nothing changes");
  expect_refused(set_layout(m, "nope", {}, shards), "there is no keyspace 'nope'");
  expect_refused(set_layout(m, "users", {}, {{ShardId(0), ids({9}), {}}}),
                 "node 9 is not a member");
}

TEST(Layout, MoveBeginsFinishesAndAborts) {
  ClusterMap m = three_one_owner();
  const std::vector<Shard> before = m.find_keyspace("default")->shards;
  std::vector<Shard> after = {{ShardId(0), ids({1}), {}}, {ShardId(1), ids({2}), {}}};
  m = expect_next(m, begin_move(m, "default", {}, after),
                  "keyspace 'default' starts moving: 3 shards to 2");
  const Keyspace* k = m.find_keyspace("default");
  ASSERT_TRUE(k->moving_from.has_value());
  EXPECT_EQ(k->moving_from->shards, before);
  EXPECT_EQ(k->shards, after);
  expect_refused(begin_move(m, "default", {}, before), "keyspace 'default' is already moving");
  // The document keeps the move across encode and decode.
  Result<ClusterMap> decoded = decode(encode(m));
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  EXPECT_EQ(*decoded, m);

  ClusterMap aborted =
      expect_next(m, abort_move(m, "default"), "keyspace 'default' abandoned its move");
  EXPECT_EQ(aborted.find_keyspace("default")->shards, before);
  EXPECT_FALSE(aborted.find_keyspace("default")->moving_from.has_value());

  ClusterMap done = expect_next(m, finish_move(m, "default"), "keyspace 'default' finished moving");
  EXPECT_EQ(done.find_keyspace("default")->shards, after);
  EXPECT_FALSE(done.find_keyspace("default")->moving_from.has_value());
  expect_refused(finish_move(done, "default"), "keyspace 'default' is not moving");
}

// KEYSPACE CREATE over keys: the new keyspace takes the layout of the one
// that owned its prefix as moving_from, in the creating change.
ClusterMap adopting(const ClusterMap& m, const KeyspaceSpec& s) {
  Result<ClusterMap> next = create_keyspace(m, s);
  EXPECT_TRUE(next.ok()) << next.status().to_string();
  EXPECT_TRUE(begin_adopt(*next, s.name).ok());
  EXPECT_TRUE(validate(*next).ok()) << validate(*next).to_string();
  return *next;
}

TEST(KeyspaceChanges, CreateOverKeysMovesThemInFromTheOwnerOfThePrefix) {
  ClusterMap m = three_one_owner();
  KeyspaceSpec zz = spec("zz", "zz:");
  zz.replication = m.find_keyspace("default")->spec.replication;
  ClusterMap a = adopting(m, zz);
  const Keyspace* k = a.find_keyspace("zz");
  ASSERT_TRUE(k->moving_from.has_value());
  EXPECT_EQ(k->moving_from->from_keyspace, "default");
  EXPECT_EQ(k->moving_from->shards, m.find_keyspace("default")->shards);
  EXPECT_NE(a.last_change.find("its keys move in from keyspace 'default'"), std::string::npos);
  Result<ClusterMap> decoded = decode(encode(a));
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  EXPECT_EQ(*decoded, a);

  // One change at a time: no rebalance, drop or other creation meanwhile.
  expect_refused(begin_move(a, "default", {}, {{ShardId(0), ids({1}), {}}}),
                 "keyspace 'default' cannot move while keyspace 'zz' is taking over its keys: "
                 "try again once that is done");
  expect_refused(begin_drop(a, "zz"),
                 "cannot drop keyspace 'zz' while keyspace 'zz' is taking over its keys: try "
                 "again once that is done");
  Result<ClusterMap> other = create_keyspace(a, spec("yy", "yy:"));
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(begin_adopt(*other, "yy").ok());

  ClusterMap done =
      expect_next(a, finish_move(a, "zz"),
                  "create keyspace 'zz' (prefix 'zz:', hash, 1 shard, none x1, linearizable, "
                  "consistency); its keys moved in from keyspace 'default'");
  EXPECT_FALSE(done.find_keyspace("zz")->moving_from.has_value());
  ClusterMap aborted =
      expect_next(a, abort_move(a, "zz"),
                  "keyspace 'zz' not created: moving its keys in from 'default' was abandoned");
  EXPECT_EQ(aborted.find_keyspace("zz"), nullptr);
}

TEST(KeyspaceChanges, NestedPrefixTakesItsKeysFromTheLongestOwner) {
  ClusterMap m = three_one_owner();
  KeyspaceSpec users = spec("users", "users:");
  users.replication = m.find_keyspace("default")->spec.replication;
  m = *create_keyspace(m, users);
  KeyspaceSpec vip = spec("vip", "users:vip:");
  vip.replication = users.replication;
  ClusterMap a = adopting(m, vip);
  EXPECT_EQ(a.find_keyspace("vip")->moving_from->from_keyspace, "users");
  // The keyspace the keys come from cannot go while they do.
  EXPECT_FALSE(drop_keyspace(a, "users").ok());
  // validate() holds the map to it.
  ClusterMap wrong = a;
  for (Keyspace& k : wrong.keyspaces) {
    if (k.spec.name == "vip") k.moving_from->from_keyspace = "default";
  }
  EXPECT_FALSE(validate(wrong).ok());
}

// KEYSPACE CREATE over a prefix whose keys cannot move in: the keyspace is
// created refusing commands, and the shards of the keyspace that owned the
// prefix are stamped with the epoch, so that their replica groups refuse what
// older maps route to them.
TEST(KeyspaceChanges, CreateOverKeysThatCannotMoveRefusesUntilFinishedAndRestampsTheOwner) {
  ClusterMap m = three_one_owner();
  const uint64_t owner_stamp = m.find_keyspace("default")->shards[0].config_epoch;
  KeyspaceSpec cz = spec("cz", "cz:");
  cz.replication = m.find_keyspace("default")->spec.replication;
  Result<ClusterMap> next = create_keyspace(m, cz);
  ASSERT_TRUE(next.ok()) << next.status().to_string();
  ASSERT_TRUE(begin_create(*next, "cz").ok());
  const ClusterMap& c = *next;
  EXPECT_TRUE(c.find_keyspace("cz")->creating);
  EXPECT_LT(owner_stamp, c.epoch.value());
  for (const Shard& sh : c.find_keyspace("default")->shards) {
    EXPECT_EQ(sh.config_epoch, c.epoch.value());
  }
  EXPECT_NE(c.last_change.find("serving once keyspace 'default' is found to hold no keys under "
                               "'cz:'"),
            std::string::npos)
      << c.last_change;
  Result<ClusterMap> decoded = decode(encode(c));
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  EXPECT_EQ(*decoded, c);
  EXPECT_EQ(encode(m).find("creating"), std::string::npos);

  // One change at a time.
  Result<ClusterMap> other = create_keyspace(c, spec("yy", "yy:"));
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(begin_create(*other, "yy").ok());
  expect_refused(begin_drop(c, "default"), "the default keyspace cannot be dropped");

  ClusterMap done = expect_next(c, finish_create(c, "cz"), "keyspace 'cz' created: it serves");
  EXPECT_FALSE(done.find_keyspace("cz")->creating);
  expect_refused(finish_create(done, "cz"), "keyspace 'cz' is not being created");

  // A creation left half-way is dropped like any keyspace, its shards
  // stamped as every dropped keyspace's are.
  ClusterMap d = expect_next(c, begin_drop(c, "cz"), "keyspace 'cz' is being dropped");
  EXPECT_FALSE(d.find_keyspace("cz")->creating);
  EXPECT_TRUE(d.find_keyspace("cz")->dropping);
  for (const Shard& sh : d.find_keyspace("cz")->shards) EXPECT_EQ(sh.config_epoch, d.epoch.value());

  // validate() holds the map to it.
  ClusterMap wrong = c;
  for (Keyspace& k : wrong.keyspaces) {
    if (k.spec.name == "cz") k.dropping = true;
  }
  EXPECT_FALSE(validate(wrong).ok());
}

TEST(KeyspaceChanges, DropBeginsThenRemovesOrIsAbandoned) {
  ClusterMap m = three_one_owner();
  m = *create_keyspace(m, spec("zz", "zz:"));
  ClusterMap d = expect_next(m, begin_drop(m, "zz"), "keyspace 'zz' is being dropped");
  EXPECT_TRUE(d.find_keyspace("zz")->dropping);
  Result<ClusterMap> decoded = decode(encode(d));
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  EXPECT_EQ(*decoded, d);
  // Maps without the new fields encode as before.
  EXPECT_EQ(encode(m).find("dropping"), std::string::npos);
  EXPECT_EQ(encode(m).find("from_keyspace"), std::string::npos);

  expect_refused(begin_drop(m, "default"), "the default keyspace cannot be dropped");
  expect_refused(begin_drop(d, "zz"),
                 "cannot drop keyspace 'zz' while keyspace 'zz' is being dropped: try again "
                 "once that is done");
  expect_refused(begin_move(d, "default", {}, {{ShardId(0), ids({1}), {}}}),
                 "keyspace 'default' cannot move while keyspace 'zz' is being dropped: try "
                 "again once that is done");
  ClusterMap gone = expect_next(d, drop_keyspace(d, "zz"), "drop keyspace 'zz'");
  EXPECT_EQ(gone.find_keyspace("zz"), nullptr);
  ClusterMap kept = expect_next(d, abort_drop(d, "zz"), "keyspace 'zz': its drop was abandoned");
  EXPECT_FALSE(kept.find_keyspace("zz")->dropping);
  expect_refused(abort_drop(kept, "zz"), "keyspace 'zz' is not being dropped");
}

}  // namespace
}  // namespace statekv::meta

namespace statekv::meta {
namespace {

// The replica controller's tick: several shards' changes written as one, one
// epoch more, each changed shard stamped with it, the others as they were.
TEST(ReplicaTarget, ChangesOfManyShardsBecomeOneChangeOfTheMap) {
  ClusterMap m = three();
  Member four = member(4);
  four.state = MemberState::kActive;
  m = *add_member(m, four);
  const Keyspace& ks = *m.find_keyspace("default");
  ASSERT_GE(ks.shards.size(), 3u);
  ClusterMap after = m;
  for (uint32_t shard : {0u, 1u}) {
    std::vector<NodeId> target = ks.shards[shard].owners;
    target.back() = NodeId(4);
    Result<ClusterMap> next = set_replica_target(after, "default", shard, target);
    ASSERT_TRUE(next.ok()) << next.status().to_string();
    after = *next;
  }
  EXPECT_EQ(after.epoch.value(), m.epoch.value() + 2);
  const ClusterMap one = expect_next(m, as_one_change(m, after, "two shards"), "two shards");
  const Keyspace& k = *one.find_keyspace("default");
  EXPECT_EQ(k.shards[0].config_epoch, one.epoch.value());
  EXPECT_EQ(k.shards[1].config_epoch, one.epoch.value());
  EXPECT_EQ(k.shards[2].config_epoch, ks.shards[2].config_epoch);
  EXPECT_EQ(k.shards[0].moving_to, after.find_keyspace("default")->shards[0].moving_to);
  expect_refused(as_one_change(m, m, "nothing"), "as_one_change: nothing changed");
}

TEST(ReplicaTarget, AMovesTargetIsKeptInTheDocumentAndEndsWhenTheOwnersReachIt) {
  ClusterMap m = three();  // the default keyspace: consensus, factor 3 on 1, 2, 3
  Member four = member(4);
  four.state = MemberState::kActive;
  m = *add_member(m, four);
  const std::vector<NodeId> owners = m.find_keyspace("default")->shards[0].owners;
  std::vector<NodeId> target = owners;
  target.back() = NodeId(4);
  m = expect_next(m, set_replica_target(m, "default", 0, target),
                  fmt::format("replicas of keyspace 'default' shard 0: moving from [{},{},{}] to "
                              "[{},{},4]",
                              owners[0].value(), owners[1].value(), owners[2].value(),
                              owners[0].value(), owners[1].value()));
  expect_refused(set_replica_target(m, "default", 0, target), "keyspace 'default' shard 0: the target is already this");
  expect_refused(set_replica_target(m, "default", 0, {NodeId(1), NodeId(1), NodeId(4)}),
                 "keyspace 'default' shard 0: node 1 twice in the target");
  expect_refused(set_replica_target(m, "default", 0, {NodeId(1), NodeId(4)}),
                 "keyspace 'default' shard 0: a target of 2 replicas for factor 3");
  Result<ClusterMap> decoded = decode(encode(m));
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  EXPECT_EQ(decoded->find_keyspace("default")->shards[0].moving_to, target);
  // The owners pass through factor + 1 to the target, which ends the move.
  std::vector<NodeId> more = owners;
  more.push_back(NodeId(4));
  m = *set_replica_owners(m, "default", 0, more);
  EXPECT_EQ(m.find_keyspace("default")->shards[0].moving_to, target);
  m = *set_replica_owners(m, "default", 0, target);
  EXPECT_TRUE(m.find_keyspace("default")->shards[0].moving_to.empty());
  EXPECT_FALSE(decode(encode(m))->find_keyspace("default")->shards[0].moving_to.size());
}

}  // namespace
}  // namespace statekv::meta

namespace statekv::meta {
namespace {

// A shard's configuration epoch (Shard::config_epoch) is the map epoch that
// last changed its owners or moving_to: replica groups refuse frames and steps
// of an older one (coord/replica_groups.h).
TEST(ConfigEpoch, IsStampedWhenAShardsOwnersOrTargetChangeAndOnlyThen) {
  ClusterMap m = three();  // bootstrap: the default keyspace's shards are new
  for (const Shard& sh : m.find_keyspace("default")->shards) EXPECT_EQ(sh.config_epoch, 1u);
  Member four = member(4);
  four.state = MemberState::kActive;
  m = *add_member(m, four);  // owners unchanged: stamps unchanged
  const Shard& s0 = m.find_keyspace("default")->shards[0];
  EXPECT_EQ(s0.config_epoch, 1u);
  EXPECT_EQ(m.epoch, Epoch(2));
  std::vector<NodeId> target = s0.owners;
  target.back() = NodeId(4);
  m = *set_replica_target(m, "default", 0, target);
  EXPECT_EQ(m.find_keyspace("default")->shards[0].config_epoch, 3u);
  EXPECT_EQ(m.find_keyspace("default")->shards[1].config_epoch, 1u) << "another shard moved";
  std::vector<NodeId> more = m.find_keyspace("default")->shards[0].owners;
  more.push_back(NodeId(4));
  m = *set_replica_owners(m, "default", 0, more);
  EXPECT_EQ(m.find_keyspace("default")->shards[0].config_epoch, 4u);
  m = *set_replica_owners(m, "default", 0, target);
  EXPECT_EQ(m.find_keyspace("default")->shards[0].config_epoch, 5u);
  m = *create_keyspace(m, users());
  for (const Shard& sh : m.find_keyspace("users")->shards) EXPECT_EQ(sh.config_epoch, 6u);
  EXPECT_EQ(m.find_keyspace("default")->shards[0].config_epoch, 5u);

  // The bytes keep it; a map written before epochs (no field) reads as 0.
  Result<ClusterMap> back = decode(encode(m));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->find_keyspace("default")->shards[0].config_epoch, 5u);
  EXPECT_EQ(back->find_keyspace("users")->shards[2].config_epoch, 6u);
  // Keys are sorted: the field opens each shard's object, a comma follows.
  std::string old = encode(m);
  for (size_t at; (at = old.find("\"config_epoch\":")) != std::string::npos;) {
    old.erase(at, old.find(',', at) - at + 1);
  }
  Result<ClusterMap> before = decode(old);
  ASSERT_TRUE(before.ok()) << before.status().to_string();
  EXPECT_EQ(before->find_keyspace("default")->shards[0].config_epoch, 0u);

  // Never past the map's epoch.
  ClusterMap bad = m;
  bad.keyspaces[0].shards[0].config_epoch = m.epoch.value() + 1;
  EXPECT_TRUE(validate(bad).is_invalid_argument()) << validate(bad).to_string();
}

}  // namespace
}  // namespace statekv::meta
