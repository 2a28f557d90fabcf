#include "coord/replica_moves.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "meta/transitions.h"
#include "partition/analysis.h"
#include "partition/layout.h"

namespace statekv::coord {
namespace {

using Kind = ReplicaStep::Kind;

std::vector<NodeId> ids(std::initializer_list<uint64_t> v) {
  std::vector<NodeId> out;
  for (uint64_t n : v) out.push_back(NodeId(n));
  return out;
}

// An active member with the usual addresses for its id.
meta::Member member(uint64_t id, std::string region = "default") {
  meta::Member m;
  m.id = NodeId(id);
  m.address = "127.0.0.1:" + std::to_string(7000 + id);
  m.peer_address = "127.0.0.1:" + std::to_string(17000 + id);
  m.region = std::move(region);
  m.state = meta::MemberState::kActive;
  return m;
}

// A cluster of `nodes` active members and a consensus keyspace "rep" of
// `shards` shards, factor `factor`, placed by the default placement.
meta::ClusterMap cluster(size_t nodes, uint32_t shards, uint32_t factor) {
  std::vector<meta::Member> members;
  for (size_t i = 1; i <= nodes; ++i) members.push_back(member(i));
  auto map = meta::bootstrap("c1", members, meta::ReplicationSpec{meta::Replication::kNone, 1});
  EXPECT_TRUE(map.ok()) << map.status().to_string();
  meta::KeyspaceSpec spec;
  spec.name = "rep";
  spec.key_prefix = "r:";
  spec.partitioner.kind = meta::Partitioner::kHash;
  spec.partitioner.shards = shards;
  spec.replication.kind = meta::Replication::kConsensus;
  spec.replication.factor = factor;
  auto next = meta::create_keyspace(*map, spec);
  EXPECT_TRUE(next.ok()) << next.status().to_string();
  return *next;
}

meta::ClusterMap add_node(const meta::ClusterMap& map, uint64_t id) {
  auto next = meta::add_member(map, member(id));
  EXPECT_TRUE(next.ok()) << next.status().to_string();
  return *next;
}

std::map<NodeId, size_t> loads(const std::vector<std::vector<NodeId>>& targets) {
  std::map<NodeId, size_t> out;
  for (const auto& t : targets) {
    for (NodeId n : t) ++out[n];
  }
  return out;
}

TEST(ReplicaTargets, ANewNodeGetsItsShareAndEveryOtherReplicaStays) {
  meta::ClusterMap map = add_node(cluster(3, 4, 3), 4);
  const meta::Keyspace& ks = *map.find_keyspace("rep");
  auto targets = replica_targets(map, ks);
  ASSERT_TRUE(targets.ok()) << targets.status().to_string();
  // 12 replicas over 4 nodes: 3 each, moving exactly 3.
  for (const auto& [node, n] : loads(*targets)) EXPECT_EQ(n, 3u) << node.value();
  size_t moved = 0;
  for (size_t i = 0; i < ks.shards.size(); ++i) {
    const auto& t = (*targets)[i];
    ASSERT_EQ(t.size(), 3u);
    EXPECT_EQ(std::set<NodeId>(t.begin(), t.end()).size(), 3u) << "distinct nodes";
    for (size_t p = 0; p < t.size(); ++p) moved += t[p] != ks.shards[i].owners[p] ? 1 : 0;
  }
  EXPECT_EQ(moved, 3u);
}

TEST(ReplicaTargets, ALeavingNodeIsReplacedWhereItWas) {
  meta::ClusterMap map = add_node(cluster(3, 3, 3), 4);
  const meta::Keyspace& ks = *map.find_keyspace("rep");
  auto targets = replica_targets(map, ks, {NodeId(2)});
  ASSERT_TRUE(targets.ok()) << targets.status().to_string();
  for (size_t i = 0; i < ks.shards.size(); ++i) {
    const auto& t = (*targets)[i];
    EXPECT_EQ(std::count(t.begin(), t.end(), NodeId(2)), 0);
    for (size_t p = 0; p < t.size(); ++p) {
      // Node 4 takes node 2's position; everything else stays.
      EXPECT_EQ(t[p], ks.shards[i].owners[p] == NodeId(2) ? NodeId(4) : ks.shards[i].owners[p]);
    }
  }
}

TEST(ReplicaTargets, TooFewNodesForTheFactorIsRefusedNamingTheShard) {
  meta::ClusterMap map = cluster(3, 2, 3);
  auto targets = replica_targets(map, *map.find_keyspace("rep"), {NodeId(3)});
  ASSERT_FALSE(targets.ok());
  EXPECT_NE(targets.status().message().find("keyspace 'rep' shard 0 needs 3 replicas"),
            std::string::npos)
      << targets.status().message();
}

// add-node while node 3 is down: the new node's share comes from node 3, so
// each move restores a shard to three live replicas; nodes 1 and 2 keep all
// of theirs. Without `down`, one of the two replicas to move is a live one.
TEST(ReplicaTargets, ANodeAddedWhileAnotherIsDownTakesTheDownNodesReplicas) {
  meta::ClusterMap map = add_node(cluster(3, 3, 3), 4);
  const meta::Keyspace& ks = *map.find_keyspace("rep");
  auto targets = replica_targets(map, ks, {}, {NodeId(3)});
  ASSERT_TRUE(targets.ok()) << targets.status().to_string();
  const auto load = loads(*targets);
  EXPECT_EQ(load.at(NodeId(1)), 3u);
  EXPECT_EQ(load.at(NodeId(2)), 3u);
  EXPECT_EQ(load.at(NodeId(3)), 1u);
  EXPECT_EQ(load.at(NodeId(4)), 2u);
  for (size_t i = 0; i < ks.shards.size(); ++i) {
    const auto& t = (*targets)[i];
    for (size_t p = 0; p < t.size(); ++p) {
      // Node 4 takes node 3's position where it goes; everything else stays.
      if (t[p] != ks.shards[i].owners[p]) {
        EXPECT_EQ(ks.shards[i].owners[p], NodeId(3)) << "shard " << i << " gave a live replica";
        EXPECT_EQ(t[p], NodeId(4));
      }
    }
  }

  auto blind = replica_targets(map, ks);
  ASSERT_TRUE(blind.ok());
  EXPECT_EQ(loads(*blind).at(NodeId(3)), 2u) << "the test no longer tells the two apart";

  // Once node 3 answers again, it gets its share back.
  meta::ClusterMap moved = map;
  auto rep = std::find_if(moved.keyspaces.begin(), moved.keyspaces.end(),
                          [](const meta::Keyspace& x) { return x.spec.name == "rep"; });
  ASSERT_NE(rep, moved.keyspaces.end());
  meta::Keyspace& k = *rep;
  for (size_t i = 0; i < k.shards.size(); ++i) k.shards[i].owners = (*targets)[i];
  auto back = replica_targets(moved, k);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(loads(*back).at(NodeId(3)), 2u);
  // While it is still down, nothing more moves: the targets are the owners.
  auto still = replica_targets(moved, k, {}, {NodeId(3)});
  ASSERT_TRUE(still.ok());
  for (size_t i = 0; i < k.shards.size(); ++i) EXPECT_EQ((*still)[i], k.shards[i].owners);
}

// A member that is down never gains a replica, even as the least loaded one,
// and fills a shard short of its factor only when no other node can.
TEST(ReplicaTargets, AMemberThatIsDownNeverGainsAReplica) {
  meta::ClusterMap map = add_node(cluster(3, 3, 3), 4);
  const meta::Keyspace& ks = *map.find_keyspace("rep");
  auto targets = replica_targets(map, ks, {}, {NodeId(4)});
  ASSERT_TRUE(targets.ok()) << targets.status().to_string();
  for (size_t i = 0; i < ks.shards.size(); ++i) EXPECT_EQ((*targets)[i], ks.shards[i].owners);

  // Node 2 leaves: its positions go to node 5, not to node 4, which is down.
  meta::ClusterMap five = add_node(map, 5);
  const meta::Keyspace& ks5 = *five.find_keyspace("rep");
  auto filled = replica_targets(five, ks5, {NodeId(2)}, {NodeId(4)});
  ASSERT_TRUE(filled.ok()) << filled.status().to_string();
  const auto load = loads(*filled);
  EXPECT_FALSE(load.contains(NodeId(4)));
  EXPECT_EQ(load.at(NodeId(5)), 3u);
  // With node 5 down too, a leaving node's positions can only go to a node
  // that is down: they do (next_replica_step then says it is down).
  auto forced = replica_targets(five, ks5, {NodeId(2)}, {NodeId(4), NodeId(5)});
  ASSERT_TRUE(forced.ok()) << forced.status().to_string();
  EXPECT_EQ(loads(*forced).at(NodeId(1)), 3u);
}

// Every partitioner: a consensus keyspace's replicas move onto new nodes and
// off leaving ones (the map's steps, as the controller publishes them) while
// every key stays in its shard; a ring's tokens stay its first nodes' (recorded
// at the first move), though one of them has left the cluster at the end.
TEST(ReplicaTargets, EveryPartitionerKeepsEachKeysShardWhileItsReplicasMove) {
  using meta::Partitioner;
  struct Case {
    std::string name;
    meta::PartitionerSpec spec;
    bool geo;
  };
  const auto spec = [](Partitioner kind, Partitioner inner, uint32_t shards) {
    meta::PartitionerSpec p;
    p.kind = kind;
    p.inner = inner;
    p.shards = shards;
    p.vnodes = 4;
    if (kind == Partitioner::kGeo) p.geo_rules = {{"", "us"}, {"key:0", "eu"}, {"key:1", "ap"}};
    if (kind == Partitioner::kRange || inner == Partitioner::kRange) {
      p.split_points = {"key:3", "key:6"};
    }
    return p;
  };
  const Partitioner kNoInner = Partitioner::kHash;
  const std::vector<Case> cases = {
      {"ring", spec(Partitioner::kRing, kNoInner, 1), false},
      {"hash", spec(Partitioner::kHash, kNoInner, 5), false},
      {"range", spec(Partitioner::kRange, kNoInner, 3), false},
      {"slots", spec(Partitioner::kSlots, kNoInner, 4), false},
      {"geo over hash", spec(Partitioner::kGeo, Partitioner::kHash, 1), true},
      {"geo over ring", spec(Partitioner::kGeo, Partitioner::kRing, 1), true},
      {"geo over range", spec(Partitioner::kGeo, Partitioner::kRange, 3), true},
  };
  const std::vector<std::string> keys = partition::generate_keys(3000, 11);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    // Two nodes per region (geo) or three; each region gains one, and the
    // lowest id of each region leaves.
    const std::vector<std::string> regions =
        c.geo ? std::vector<std::string>{"ap", "eu", "us"} : std::vector<std::string>{"default"};
    const size_t per_region = c.geo ? 2 : 3;
    std::vector<meta::Member> members;
    std::set<NodeId> leaving;
    uint64_t next_id = 1;
    for (const std::string& region : regions) {
      for (size_t i = 0; i < per_region; ++i) {
        if (i == 0) leaving.insert(NodeId(next_id));
        members.push_back(member(next_id++, region));
      }
    }
    // The default keyspace (one copy) on the nodes that stay, so they can go.
    std::vector<meta::Member> staying;
    for (const meta::Member& m : members) {
      if (!leaving.contains(m.id)) staying.push_back(m);
    }
    auto boot = meta::bootstrap("c1", staying, meta::ReplicationSpec{meta::Replication::kNone, 1});
    ASSERT_TRUE(boot.ok()) << boot.status().to_string();
    for (const meta::Member& m : members) {
      if (!leaving.contains(m.id)) continue;
      boot = meta::add_member(*boot, m);
      ASSERT_TRUE(boot.ok()) << boot.status().to_string();
    }
    meta::KeyspaceSpec ks;
    ks.name = "g";
    ks.key_prefix = "key:";
    ks.partitioner = c.spec;
    ks.replication.kind = meta::Replication::kConsensus;
    ks.replication.factor = 2;
    auto made = partition::create_placed_keyspace(*boot, ks);
    ASSERT_TRUE(made.ok()) << made.status().to_string();
    meta::ClusterMap map = *made;
    auto before = partition::restore(*map.find_keyspace("g"), map.members);
    ASSERT_TRUE(before.ok()) << before.status().to_string();
    std::vector<uint32_t> shard_of;
    for (const std::string& key : keys) shard_of.push_back(before->shard_of(key));
    std::set<NodeId> first_nodes;
    for (const meta::Shard& sh : map.find_keyspace("g")->shards) {
      first_nodes.insert(sh.owners.begin(), sh.owners.end());
    }
    for (const std::string& region : regions) {
      auto added = meta::add_member(map, member(next_id++, region));
      ASSERT_TRUE(added.ok()) << added.status().to_string();
      map = *added;
    }
    for (NodeId n : leaving) {
      auto marked = meta::set_member_state(map, n, meta::MemberState::kLeaving);
      ASSERT_TRUE(marked.ok()) << marked.status().to_string();
      map = *marked;
    }
    // The map's steps of each shard's move: its target, then its owners.
    auto targets = replica_targets(map, *map.find_keyspace("g"), leaving);
    ASSERT_TRUE(targets.ok()) << targets.status().to_string();
    size_t moved = 0;
    for (uint32_t i = 0; i < targets->size(); ++i) {
      const std::vector<NodeId>& target = (*targets)[i];
      if (map.find_keyspace("g")->shards[i].owners == target) continue;
      ++moved;
      for (bool publish : {false, true}) {
        auto next = publish ? meta::set_replica_owners(map, "g", i, target)
                            : meta::set_replica_target(map, "g", i, target);
        ASSERT_TRUE(next.ok()) << next.status().to_string();
        map = *next;
        ASSERT_TRUE(meta::validate(map).ok()) << meta::validate(map).to_string();
        auto now = partition::restore(*map.find_keyspace("g"), map.members);
        ASSERT_TRUE(now.ok()) << now.status().to_string();
        for (size_t k = 0; k < keys.size(); ++k) {
          ASSERT_EQ(now->shard_of(keys[k]), shard_of[k]) << keys[k];
        }
      }
    }
    EXPECT_GE(moved, leaving.size()) << "every leaving node's replicas moved";
    for (NodeId n : leaving) {
      auto removed = meta::remove_member(map, n);
      ASSERT_TRUE(removed.ok()) << removed.status().to_string();
      map = *removed;
    }
    const meta::Keyspace& k = *map.find_keyspace("g");
    auto after = partition::restore(k, map.members);
    ASSERT_TRUE(after.ok()) << after.status().to_string();
    for (size_t i = 0; i < keys.size(); ++i) {
      ASSERT_EQ(after->shard_of(keys[i]), shard_of[i]) << keys[i];
      EXPECT_EQ(after->locate(keys[i]).owners, k.shards[shard_of[i]].owners) << keys[i];
    }
    const bool ring = c.spec.kind == Partitioner::kRing || c.spec.inner == Partitioner::kRing;
    const std::vector<NodeId> recorded(first_nodes.begin(), first_nodes.end());
    EXPECT_EQ(k.spec.partitioner.ring_nodes, ring ? recorded : std::vector<NodeId>{});
    // And the map survives its bytes.
    auto decoded = meta::decode(meta::encode(map));
    ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
    EXPECT_EQ(*decoded, map);
  }
}

GroupView view(uint64_t leader, std::vector<NodeId> config, uint64_t commit = 100,
               std::map<NodeId, uint64_t> match = {}) {
  GroupView v;
  v.leader = NodeId(leader);
  v.config = std::move(config);
  v.commit_index = commit;
  for (NodeId n : v.config) {
    if (n != v.leader) v.match[n] = commit;
  }
  for (const auto& [n, m] : match) v.match[n] = m;
  return v;
}

// Runs the controller against a model of a group and the map until it is
// done, checking on every step that the group never has fewer live members
// than the factor, and that the map lists the configuration (plus at most
// the member being added, last).
struct Model {
  std::vector<NodeId> config, map;
  NodeId leader;
  std::set<NodeId> down;
  std::set<NodeId> learners;  // caught up at once in the model
  uint32_t factor = 3;
  std::vector<ReplicaStep> steps;

  void run(const std::vector<NodeId>& target, bool check_factor = true) {
    for (int i = 0; i < 50; ++i) {
      GroupView v = view(leader.value(), config);
      for (NodeId n : learners) v.learners[n] = v.commit_index;
      auto s = next_replica_step(target, map, v, factor, down);
      ASSERT_TRUE(s.ok()) << s.status().to_string();
      steps.push_back(*s);
      switch (s->kind) {
        case Kind::kDone:
          EXPECT_EQ(map, target);
          return;
        case Kind::kWait:
          FAIL() << "nothing to wait for in the model: " << s->why;
          return;
        case Kind::kPublish:
          ASSERT_LE(s->owners.size(), factor + 1);
          for (NodeId n : config) {
            EXPECT_NE(std::find(s->owners.begin(), s->owners.end(), n), s->owners.end())
                << "the map must list every member: " << s->why;
          }
          map = s->owners;
          break;
        case Kind::kLearn:
          EXPECT_EQ(map.back(), s->node) << "a learner joins once the map lists it last";
          EXPECT_GE(map.size(), factor + 1) << "listed past the factor: it starts outside";
          learners.insert(s->node);
          break;
        case Kind::kAdd:
          EXPECT_EQ(map.back(), s->node) << "a member is added once the map lists it last";
          EXPECT_EQ(learners.erase(s->node), 1u) << "a member is added as a caught-up learner";
          config.push_back(s->node);
          break;
        case Kind::kRemove:
          ASSERT_NE(s->node, leader) << "leadership goes first";
          std::erase(config, s->node);
          break;
        case Kind::kTransfer:
          leader = s->node;
          break;
      }
      size_t live = 0;
      for (NodeId n : config) live += down.contains(n) ? 0 : 1;
      if (check_factor && s->kind != Kind::kRemove) {
        EXPECT_GE(live, factor) << "after: " << s->why;
      }
    }
    FAIL() << "no end after 50 steps";
  }
};

TEST(ReplicaStepTest, AddsBeforeItRemovesAndNeverGoesBelowTheFactor) {
  Model m;
  m.config = ids({1, 2, 3});
  m.map = ids({1, 2, 3});
  m.leader = NodeId(1);
  m.run(ids({1, 2, 4}));
  // publish [1,2,3,4], learn 4, add 4, publish [1,2,4,3], remove 3, publish [1,2,4].
  ASSERT_GE(m.steps.size(), 6u);
  EXPECT_EQ(m.steps[0].kind, Kind::kPublish);
  EXPECT_EQ(m.steps[0].owners, ids({1, 2, 3, 4}));
  EXPECT_EQ(m.steps[1].kind, Kind::kLearn);
  EXPECT_EQ(m.steps[1].node, NodeId(4));
  EXPECT_EQ(m.steps[2].kind, Kind::kAdd);
  EXPECT_EQ(m.steps[2].node, NodeId(4));
  size_t live_min = 99;
  std::vector<NodeId> config = ids({1, 2, 3});
  for (const ReplicaStep& s : m.steps) {
    if (s.kind == Kind::kAdd) config.push_back(s.node);
    if (s.kind == Kind::kRemove) std::erase(config, s.node);
    live_min = std::min(live_min, config.size());
  }
  EXPECT_EQ(live_min, 3u);
  EXPECT_EQ(m.config, ids({1, 2, 4}));
}

TEST(ReplicaStepTest, ALeaderThatGoesHandsLeadershipToAMemberThatStaysFirst) {
  Model m;
  m.config = ids({1, 2, 3});
  m.map = ids({1, 2, 3});
  m.leader = NodeId(1);
  m.run(ids({4, 2, 3}));
  bool transferred = false;
  for (const ReplicaStep& s : m.steps) {
    if (s.kind == Kind::kTransfer) {
      transferred = true;
      EXPECT_NE(s.node, NodeId(1));
    }
    if (s.kind == Kind::kRemove) {
      EXPECT_TRUE(transferred) << "removed before the transfer";
    }
  }
  EXPECT_TRUE(transferred);
  EXPECT_EQ(m.map, ids({4, 2, 3})) << "node 4 takes node 1's place: the preferred leader";
}

TEST(ReplicaStepTest, ADeadMemberIsRemovedBeforeItsReplacementIsAdded) {
  Model m;
  m.config = ids({1, 2, 3});
  m.map = ids({1, 2, 3});
  m.leader = NodeId(1);
  m.down = {NodeId(3)};
  m.run(ids({1, 2, 4}), /*check_factor=*/false);
  ASSERT_GE(m.steps.size(), 3u);
  EXPECT_EQ(m.steps[0].kind, Kind::kRemove);
  EXPECT_EQ(m.steps[0].node, NodeId(3));
  // The new member is listed past the factor (behind the dead one), so its
  // node starts it outside the configuration.
  EXPECT_EQ(m.steps[1].kind, Kind::kPublish);
  EXPECT_EQ(m.steps[1].owners, ids({1, 2, 3, 4}));
  EXPECT_EQ(m.steps[2].kind, Kind::kLearn);
  EXPECT_EQ(m.steps[3].kind, Kind::kAdd);
  EXPECT_EQ(m.config, ids({1, 2, 4}));
}

TEST(ReplicaStepTest, ANewMemberJoinsAsALearnerAndIsAddedOnlyOnceCaughtUp) {
  // Listed last in the map, not a learner yet (or no more: a new leader has none).
  auto s = next_replica_step(ids({1, 2, 4}), ids({1, 2, 3, 4}), view(1, ids({1, 2, 3})), 3);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, Kind::kLearn);
  EXPECT_EQ(s->node, NodeId(4));
  // A learner far behind: wait; the group keeps its three voters meanwhile.
  GroupView behind = view(1, ids({1, 2, 3}), 5000);
  behind.learners[NodeId(4)] = 10;
  s = next_replica_step(ids({1, 2, 4}), ids({1, 2, 3, 4}), behind, 3);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, Kind::kWait);
  EXPECT_EQ(s->node, NodeId(4));
  EXPECT_NE(s->why.find("learner 4 is catching up"), std::string::npos) << s->why;
  // Within the slack: promoted.
  behind.learners[NodeId(4)] = 4990;
  s = next_replica_step(ids({1, 2, 4}), ids({1, 2, 3, 4}), behind, 3);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, Kind::kAdd);
  EXPECT_EQ(s->node, NodeId(4));
  // The target moved on (node 5 instead): the leader drops learner 4 first.
  s = next_replica_step(ids({1, 2, 5}), ids({1, 2, 3}), behind, 3);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, Kind::kRemove);
  EXPECT_EQ(s->node, NodeId(4));
  EXPECT_NE(s->why.find("dropping learner 4"), std::string::npos) << s->why;
}

TEST(ReplicaStepTest, WaitsForANewMemberToCatchUpAndForAChangeToCommit) {
  auto lagging = view(1, ids({1, 2, 3, 4}), 5000, {{NodeId(4), 10}});
  auto s = next_replica_step(ids({1, 2, 4}), ids({1, 2, 3, 4}), lagging, 3);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, Kind::kWait);
  EXPECT_EQ(s->node, NodeId(4));
  EXPECT_NE(s->why.find("catching up"), std::string::npos) << s->why;

  // A short log is matched whole: slack does not let an empty member pass.
  s = next_replica_step(ids({1, 2, 4}), ids({1, 2, 3, 4}),
                        view(1, ids({1, 2, 3, 4}), 27, {{NodeId(4), 0}}), 3);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, Kind::kWait);

  auto caught_up = view(1, ids({1, 2, 3, 4}), 5000, {{NodeId(4), 4990}});
  s = next_replica_step(ids({1, 2, 4}), ids({1, 2, 4, 3}), caught_up, 3);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, Kind::kRemove);
  EXPECT_EQ(s->node, NodeId(3));

  auto committing = caught_up;
  committing.config_committed = false;
  s = next_replica_step(ids({1, 2, 4}), ids({1, 2, 4, 3}), committing, 3);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, Kind::kWait);
}

TEST(ReplicaStepTest, ANodeToAddThatIsDownStopsTheMoveClearly) {
  auto s =
      next_replica_step(ids({1, 2, 4}), ids({1, 2, 3}), view(1, ids({1, 2, 3})), 3, {NodeId(4)});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("node 4"), std::string::npos);
}

TEST(ReplicaStepTest, AtItsTargetItIsDone) {
  auto s = next_replica_step(ids({1, 2, 3}), ids({1, 2, 3}), view(2, ids({1, 2, 3})), 3);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, Kind::kDone);
}

// Every target replica_targets gives for a growing and shrinking cluster is
// reached by the controller, one replica at a time.
TEST(ReplicaStepTest, ReachesEveryTargetOfAGrowingCluster) {
  meta::ClusterMap map = cluster(3, 6, 3);
  for (uint64_t id = 4; id <= 6; ++id) map = add_node(map, id);
  const meta::Keyspace& ks = *map.find_keyspace("rep");
  auto targets = replica_targets(map, ks);
  ASSERT_TRUE(targets.ok());
  for (const auto& [node, n] : loads(*targets)) EXPECT_EQ(n, 3u) << node.value();
  for (size_t i = 0; i < ks.shards.size(); ++i) {
    Model m;
    m.config = ks.shards[i].owners;
    std::sort(m.config.begin(), m.config.end());
    m.map = ks.shards[i].owners;
    m.leader = ks.shards[i].owners.front();
    ASSERT_NO_FATAL_FAILURE(m.run((*targets)[i]));
  }
}

TEST(SetReplicaOwners, AllowsOneExtraOwnerOnlyOnConsensusShards) {
  meta::ClusterMap map = add_node(cluster(3, 2, 3), 4);
  auto next = meta::set_replica_owners(map, "rep", 0, ids({1, 2, 3, 4}));
  ASSERT_TRUE(next.ok()) << next.status().to_string();
  EXPECT_EQ(next->find_keyspace("rep")->shards[0].owners, ids({1, 2, 3, 4}));
  EXPECT_EQ(next->epoch, map.epoch.next());
  // Two past the factor: refused by the map's invariants.
  map = add_node(*next, 5);
  EXPECT_FALSE(meta::set_replica_owners(map, "rep", 0, ids({1, 2, 3, 4, 5})).ok());
  // Single-copy keyspaces move by rebalancing, not this.
  EXPECT_FALSE(meta::set_replica_owners(map, "default", 0, ids({2})).ok());
  // A new owner must be active.
  auto leaving = meta::set_member_state(map, NodeId(5), meta::MemberState::kLeaving);
  ASSERT_TRUE(leaving.ok());
  auto refused = meta::set_replica_owners(*leaving, "rep", 1, ids({1, 2, 5}));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("node 5 is leaving"), std::string::npos)
      << refused.status().message();
}

}  // namespace
}  // namespace statekv::coord
