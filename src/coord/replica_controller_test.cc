// The replica controller driven tick by tick against a model of the replica
// groups (each group's leader, configuration and members' progress, as
// `__replicas` reports and changes them) and of the metadata group (the map
// it holds): each test names a property of the moves it makes.
#include "coord/replica_controller.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "coord/replica_groups.h"
#include "meta/transitions.h"

namespace statekv::coord {
namespace {

std::vector<NodeId> ids(std::initializer_list<uint64_t> v) {
  std::vector<NodeId> out;
  for (uint64_t n : v) out.push_back(NodeId(n));
  return out;
}

meta::Member member(uint64_t id) {
  meta::Member m;
  m.id = NodeId(id);
  m.address = "127.0.0.1:" + std::to_string(7000 + id);
  m.peer_address = "127.0.0.1:" + std::to_string(17000 + id);
  m.state = meta::MemberState::kActive;
  return m;
}

// `nodes` active members; keyspace "rep": `shards` shards of factor 3.
meta::ClusterMap cluster(size_t nodes, uint32_t shards) {
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
  spec.replication.factor = 3;
  auto next = meta::create_keyspace(*map, spec);
  EXPECT_TRUE(next.ok()) << next.status().to_string();
  return *next;
}

// The metadata group and every replica group, as the controller sees them
// through ReplicaMoveIo. A new member joins as a learner and catches up after
// `catch_up_asks` status reports; adding it before then is refused (Busy, as
// raft refuses it) and counted; a change is committed at once. Like a real
// leader, a group knows its configuration epoch (the map's, as the map
// changes) and refuses a step that carries an older one (Aborted) or none.
class Model final : public ReplicaMoveIo {
 public:
  struct Group {
    NodeId leader;
    std::vector<NodeId> config;
    std::map<NodeId, int> behind;    // status asks until caught up
    std::map<NodeId, int> learners;  // status asks until caught up
    uint64_t epoch = 0;
  };

  explicit Model(meta::ClusterMap map) : map(std::move(map)) {
    const meta::Keyspace& k = *this->map.find_keyspace("rep");
    for (size_t i = 0; i < k.shards.size(); ++i) {
      Group& g = groups[ReplicaGroups::group_id("rep", static_cast<uint32_t>(i))];
      g.config = k.shards[i].owners;
      g.leader = g.config.front();
      g.epoch = k.shards[i].config_epoch;
    }
  }

  Result<std::string> ask_leader(const meta::ClusterMap&, GroupId group,
                                 const std::vector<NodeId>& members, const std::set<NodeId>& down,
                                 const std::vector<std::string>& args, NodeId& leader) override {
    Group& g = groups.at(group);
    if (down.contains(g.leader) || dead.contains(g.leader) ||
        std::find(members.begin(), members.end(), g.leader) == members.end()) {
      return Status::Unavailable("no leader answers");
    }
    leader = g.leader;
    const NodeId node(args.size() > 1 ? std::stoull(args[1]) : 0);
    if (args[0] == "status") {
      const uint64_t commit = 100;
      std::string config, match;
      for (NodeId n : g.config) {
        config += (config.empty() ? "" : ",") + std::to_string(n.value());
        if (n == g.leader) continue;
        int& behind = g.behind[n];
        const uint64_t at = dead.contains(n) ? 0 : behind > 0 ? 1 : commit;
        if (behind > 0) --behind;
        match += (match.empty() ? "" : ",") + std::to_string(n.value()) + ":" + std::to_string(at);
      }
      std::string learners;
      for (auto& [n, behind] : g.learners) {
        const uint64_t at = dead.contains(n) ? 0 : behind > 0 ? 1 : commit;
        if (behind > 0) --behind;
        learners += (learners.empty() ? " learners=" : ",") + std::to_string(n.value()) + ":" +
                    std::to_string(at);
      }
      return "leader=" + std::to_string(g.leader.value()) + " commit=" + std::to_string(commit) +
             " config=" + config + " committed=1 match=" + match + learners;
    }
    if (args.size() != 3) return Status::InvalidArgument("a step without its epoch");
    const uint64_t epoch = std::stoull(args[2]);
    if (epoch < g.epoch) {
      ++steps_refused;
      return Status::Aborted("decided on configuration epoch " + args[2] + ", older than " +
                             std::to_string(g.epoch));
    }
    g.epoch = epoch;
    ++steps;
    if (args[0] == "learn") {
      g.learners.try_emplace(node, catch_up_asks);
      ++learns;
    } else if (args[0] == "add") {
      auto l = g.learners.find(node);
      if (l == g.learners.end() || l->second > 0) {
        ++added_early;
        return Status::Busy("not a caught-up learner");
      }
      g.learners.erase(l);
      g.config.push_back(node);
    } else if (args[0] == "remove") {
      if (node == g.leader) return Status::InvalidArgument("the leader does not remove itself here");
      std::erase(g.config, node);
    } else if (args[0] == "transfer") {
      g.leader = node;
      g.learners.clear();  // a learner is the old leader's volatile state
    }
    smallest_group = std::min(smallest_group, live_members(g));
    return std::string("OK");
  }

  Status update_map(const meta::ClusterMap&, const MapChange& change) override {
    auto next = change(map);
    if (!next.ok()) {
      return next.status().message().find("already") != std::string::npos ? Status::OK()
                                                                          : next.status();
    }
    // As the metadata group's register: a write takes one epoch.
    if (next->epoch.value() != map.epoch.value() + 1) {
      return Status::InvalidArgument("a metadata change must bump the epoch by exactly one");
    }
    map = *next;
    ++map_changes;
    // Every member learns the new map (at once, in this model).
    const meta::Keyspace& k = *map.find_keyspace("rep");
    for (size_t i = 0; i < k.shards.size(); ++i) {
      Group& g = groups.at(ReplicaGroups::group_id("rep", static_cast<uint32_t>(i)));
      g.epoch = std::max(g.epoch, k.shards[i].config_epoch);
    }
    return Status::OK();
  }

  size_t live_members(const Group& g) const {
    return static_cast<size_t>(std::count_if(g.config.begin(), g.config.end(), [&](NodeId n) {
      return !dead.contains(n);
    }));
  }

  // Ticks `controller` until no shard moves; false after `limit` ticks.
  bool run(ReplicaController& controller, int limit = 200) {
    for (int i = 0; i < limit; ++i) {
      const meta::ClusterMap seen = map;  // the controller's own copy, as the thread's
      if (controller.tick(seen, dead).shards_moving == 0) return true;
    }
    return false;
  }

  meta::ClusterMap map;
  std::map<GroupId, Group> groups;
  std::set<NodeId> dead;
  int catch_up_asks = 3;
  int learns = 0;       // learn steps run
  int added_early = 0;  // adds refused: not a caught-up learner
  size_t smallest_group = 3;
  size_t map_changes = 0;
  int steps = 0;          // add, remove and transfer steps taken
  int steps_refused = 0;  // refused for their epoch
};

TEST(ReplicaController, ALeavingNodesReplicasMoveAddBeforeRemoveAndTheMapFollowsTheGroups) {
  Model model(cluster(4, 4));
  auto leaving = meta::set_member_state(model.map, NodeId(1), meta::MemberState::kLeaving);
  ASSERT_TRUE(leaving.ok());
  model.map = *leaving;
  ReplicaController controller(model);
  ASSERT_TRUE(model.run(controller));
  const meta::Keyspace& k = *model.map.find_keyspace("rep");
  for (size_t i = 0; i < k.shards.size(); ++i) {
    const auto& owners = k.shards[i].owners;
    EXPECT_EQ(owners.size(), 3u);
    EXPECT_EQ(std::count(owners.begin(), owners.end(), NodeId(1)), 0) << "shard " << i;
    EXPECT_TRUE(k.shards[i].moving_to.empty()) << "a finished move leaves no target";
    const Model::Group& g = model.groups.at(ReplicaGroups::group_id("rep", static_cast<uint32_t>(i)));
    EXPECT_EQ(std::set<NodeId>(g.config.begin(), g.config.end()),
              std::set<NodeId>(owners.begin(), owners.end()))
        << "the map's owners are the group's members";
  }
  EXPECT_GE(model.smallest_group, 3u) << "a group went below its factor while it moved";
  EXPECT_GT(model.learns, 0) << "new members join as learners";
  EXPECT_EQ(model.added_early, 0) << "a member was added before it caught up as a learner";
  EXPECT_GT(model.steps, 0);
  EXPECT_EQ(model.steps_refused, 0) << "a step carried an older epoch than the map it came from";
}

// A step decided on a map older than the group's configuration (the member
// learned a newer epoch than the controller's map shows) is refused, reported,
// and changes nothing; once the controller's map shows it, the move goes on.
TEST(ReplicaController, AStepDecidedOnAnOlderConfigurationEpochIsRefused) {
  Model model(cluster(4, 1));
  model.map = *meta::set_member_state(model.map, NodeId(1), meta::MemberState::kLeaving);
  ReplicaController controller(model);
  const GroupId group = ReplicaGroups::group_id("rep", 0);
  // Tick until the map lists the new member (target, then publish): the next
  // step is the group's add.
  for (int i = 0; i < 10 && model.map.find_keyspace("rep")->shards[0].owners.size() < 4; ++i) {
    controller.tick(meta::ClusterMap(model.map), {});
  }
  ASSERT_EQ(model.map.find_keyspace("rep")->shards[0].owners.size(), 4u);
  const meta::ClusterMap stale = model.map;
  // Meanwhile the shard's configuration changed again (another controller
  // moved it on): its members know that newer epoch.
  model.map = *meta::set_replica_target(model.map, "rep", 0, {});
  Model::Group& g = model.groups.at(group);
  g.epoch = model.map.find_keyspace("rep")->shards[0].config_epoch;
  ASSERT_GT(g.epoch, stale.find_keyspace("rep")->shards[0].config_epoch);
  const std::vector<NodeId> before = g.config;
  const ReplicaTick t = controller.tick(stale, {});
  EXPECT_EQ(model.steps_refused, 1);
  EXPECT_EQ(g.config, before) << "a stale step changed the group";
  ASSERT_EQ(t.errors.size(), 1u);
  EXPECT_NE(t.errors[0].find("older than"), std::string::npos) << t.errors[0];
  // With the map as it is now, the controller finishes the move.
  ASSERT_TRUE(model.run(controller));
  EXPECT_EQ(std::count(g.config.begin(), g.config.end(), NodeId(1)), 0);
}

TEST(ReplicaController, ANewMetadataLeaderFinishesTheMoveItFindsNotAnother) {
  Model model(cluster(3, 1));
  model.map = *meta::add_member(model.map, member(4));
  model.map = *meta::add_member(model.map, member(5));
  model.map = *meta::set_member_state(model.map, NodeId(1), meta::MemberState::kLeaving);
  // A controller elsewhere chose node 5 (this one would pick node 4, the
  // lowest id of the least loaded) and was halfway there: the group has node 5
  // as a fourth member, the map lists it last.
  const GroupId group = ReplicaGroups::group_id("rep", 0);
  std::vector<NodeId> target = model.map.find_keyspace("rep")->shards[0].owners;
  std::replace(target.begin(), target.end(), NodeId(1), NodeId(5));
  model.map = *meta::set_replica_target(model.map, "rep", 0, target);
  std::vector<NodeId> owners = model.map.find_keyspace("rep")->shards[0].owners;
  owners.push_back(NodeId(5));
  model.map = *meta::set_replica_owners(model.map, "rep", 0, owners);
  model.groups.at(group).config.push_back(NodeId(5));
  ReplicaController controller(model);
  ASSERT_TRUE(model.run(controller));
  const meta::Shard& shard = model.map.find_keyspace("rep")->shards[0];
  EXPECT_EQ(std::set<NodeId>(shard.owners.begin(), shard.owners.end()),
            std::set<NodeId>(target.begin(), target.end()))
      << "the new controller took the shard somewhere else";
  EXPECT_TRUE(shard.moving_to.empty());
  EXPECT_EQ(model.groups.at(group).config.size(), 3u);
}

TEST(ReplicaController, ATargetNamingANodeThatNowLeavesIsReplaced) {
  Model model(cluster(3, 1));
  model.map = *meta::add_member(model.map, member(4));
  model.map = *meta::add_member(model.map, member(5));
  model.map = *meta::set_member_state(model.map, NodeId(1), meta::MemberState::kLeaving);
  std::vector<NodeId> target = model.map.find_keyspace("rep")->shards[0].owners;
  std::replace(target.begin(), target.end(), NodeId(1), NodeId(5));
  model.map = *meta::set_replica_target(model.map, "rep", 0, target);
  model.map = *meta::set_member_state(model.map, NodeId(5), meta::MemberState::kLeaving);
  ReplicaController controller(model);
  ASSERT_TRUE(model.run(controller));
  const auto& owners = model.map.find_keyspace("rep")->shards[0].owners;
  const std::vector<NodeId> expected = ids({2, 3, 4});
  EXPECT_EQ(std::set<NodeId>(owners.begin(), owners.end()),
            std::set<NodeId>(expected.begin(), expected.end()));
}

TEST(ReplicaController, ADeadMemberIsRemovedFirstAndItsReplacementCatchesUp) {
  Model model(cluster(4, 1));
  const GroupId group = ReplicaGroups::group_id("rep", 0);
  const NodeId victim = model.map.find_keyspace("rep")->shards[0].owners.back();
  ASSERT_NE(victim, model.groups.at(group).leader);
  model.dead.insert(victim);
  model.map = *meta::set_member_state(model.map, victim, meta::MemberState::kLeaving);
  ReplicaController controller(model);
  ASSERT_TRUE(model.run(controller));
  const auto& owners = model.map.find_keyspace("rep")->shards[0].owners;
  EXPECT_EQ(owners.size(), 3u);
  EXPECT_EQ(std::count(owners.begin(), owners.end(), victim), 0);
  // Two live members throughout: removing the dead one first kept the group
  // writable (a majority of 3 live members of 4 would have needed the new one).
  EXPECT_GE(model.smallest_group, 2u);
}

// Shards whose moves are under way (a target recorded, not reached) in `map`,
// and which of those hold `node`.
std::vector<uint32_t> moves_under_way(const meta::ClusterMap& map) {
  std::vector<uint32_t> out;
  const meta::Keyspace& k = *map.find_keyspace("rep");
  for (size_t i = 0; i < k.shards.size(); ++i) {
    const meta::Shard& sh = k.shards[i];
    if (!sh.moving_to.empty() && sh.owners != sh.moving_to) out.push_back(static_cast<uint32_t>(i));
  }
  return out;
}

// A node leaving a keyspace of many shards: each new member catches up from a
// snapshot, so the moves go a few at a time, and every shard gets its turn.
TEST(ReplicaController, AtMostMaxMovesShardsMoveAtOnceAndEveryShardGetsItsTurn) {
  Model model(cluster(4, 12));
  model.map = *meta::set_member_state(model.map, NodeId(1), meta::MemberState::kLeaving);
  ReplicaController controller(model, 2);
  size_t most = 0, waited = 0;
  bool done = false;
  for (int i = 0; i < 1000 && !done; ++i) {
    const meta::ClusterMap seen = model.map;
    const ReplicaTick t = controller.tick(seen, model.dead);
    EXPECT_TRUE(t.errors.empty()) << t.errors.front();
    most = std::max(most, moves_under_way(model.map).size());
    waited = std::max(waited, t.shards_waiting);
    done = t.shards_moving == 0;
  }
  ASSERT_TRUE(done);
  EXPECT_EQ(most, 2u) << "moves under way at once";
  EXPECT_GT(waited, 0u) << "no shard waited its turn";
  for (const meta::Shard& sh : model.map.find_keyspace("rep")->shards) {
    EXPECT_EQ(std::count(sh.owners.begin(), sh.owners.end(), NodeId(1)), 0) << sh.id.value();
    EXPECT_EQ(sh.owners.size(), 3u);
  }
  EXPECT_GE(model.smallest_group, 3u);
}

// A tick's map changes (targets recorded, owners published) of every shard
// go in one write of the map: each write is a metadata put of the whole map
// that every node applies, and a ring keyspace moves hundreds of shards.
TEST(ReplicaController, EveryShardsMapChangeOfATickIsOneWrite) {
  Model model(cluster(4, 12));
  model.map = *meta::set_member_state(model.map, NodeId(1), meta::MemberState::kLeaving);
  ReplicaController controller(model, 8);
  size_t steps = 0, ticks = 0, most_steps_in_a_write = 0;
  bool done = false;
  for (int i = 0; i < 1000 && !done; ++i) {
    const meta::ClusterMap seen = model.map;
    const size_t writes_before = model.map_changes;
    const ReplicaTick t = controller.tick(seen, model.dead);
    EXPECT_TRUE(t.errors.empty()) << t.errors.front();
    EXPECT_LE(model.map_changes - writes_before, 1u) << "tick " << i;
    size_t map_steps = 0;
    for (const std::string& step : t.steps) {
      map_steps += step.find("moving [") != std::string::npos ||
                           step.find("starts a replica") != std::string::npos ||
                           step.find("map owners") != std::string::npos
                       ? 1
                       : 0;
    }
    steps += map_steps;
    ticks += model.map_changes - writes_before;
    most_steps_in_a_write = std::max(most_steps_in_a_write, map_steps);
    done = t.shards_moving == 0;
  }
  ASSERT_TRUE(done);
  EXPECT_GT(most_steps_in_a_write, 1u) << "no write carried more than one shard's change";
  std::printf("%zu map changes in %zu writes\n", steps, ticks);
  for (const meta::Shard& sh : model.map.find_keyspace("rep")->shards) {
    EXPECT_EQ(std::count(sh.owners.begin(), sh.owners.end(), NodeId(1)), 0) << sh.id.value();
  }
}

// With moves waiting their turn, the shards a dead member leaves a replica
// short go before those that only rebalance onto a new node.
TEST(ReplicaController, ShardsShortOfAReplicaMoveFirst) {
  Model model(cluster(4, 8));
  model.map = *meta::add_member(model.map, member(5));
  model.map = *meta::add_member(model.map, member(6));
  model.dead.insert(NodeId(2));
  for (auto& [id, g] : model.groups) {  // the groups it led elected another leader
    if (g.leader == NodeId(2)) g.leader = g.config[1];
  }
  model.map = *meta::set_member_state(model.map, NodeId(2), meta::MemberState::kLeaving);
  ReplicaController controller(model, 1);
  std::vector<bool> started_short;  // per move started: whether node 2 was an owner
  std::set<uint32_t> started;
  bool done = false;
  for (int i = 0; i < 1000 && !done; ++i) {
    const meta::ClusterMap seen = model.map;
    const ReplicaTick t = controller.tick(seen, model.dead);
    for (uint32_t shard : moves_under_way(model.map)) {
      if (!started.insert(shard).second) continue;
      const auto& owners = model.map.find_keyspace("rep")->shards[shard].owners;
      started_short.push_back(std::count(owners.begin(), owners.end(), NodeId(2)) > 0);
    }
    done = t.shards_moving == 0;
  }
  ASSERT_TRUE(done);
  const auto first_full = std::find(started_short.begin(), started_short.end(), false);
  ASSERT_NE(first_full, started_short.begin()) << "no shard was short of a replica";
  ASSERT_NE(first_full, started_short.end()) << "no shard moved only to rebalance";
  EXPECT_EQ(std::count(first_full, started_short.end(), true), 0)
      << "a shard short of a replica waited behind one that was not";
}

TEST(ReplicaController, ALeaderThatIsLeavingHandsOverBeforeItIsRemoved) {
  Model model(cluster(4, 1));
  const GroupId group = ReplicaGroups::group_id("rep", 0);
  const NodeId leader = model.groups.at(group).leader;
  model.map = *meta::set_member_state(model.map, leader, meta::MemberState::kLeaving);
  ReplicaController controller(model);
  ASSERT_TRUE(model.run(controller));
  EXPECT_NE(model.groups.at(group).leader, leader);
  const auto& config = model.groups.at(group).config;
  EXPECT_EQ(std::count(config.begin(), config.end(), leader), 0);
}

TEST(ReplicaController, NothingMovesWhenEveryShardIsAtItsTarget) {
  Model model(cluster(3, 4));
  ReplicaController controller(model);
  EXPECT_EQ(controller.tick(model.map, {}).shards_moving, 0u);
  EXPECT_EQ(model.map_changes, 0);
}

TEST(ReplicaController, AGroupWithNoLeaderAnsweringWaitsAndMovesOnceOneDoes) {
  Model model(cluster(4, 1));
  const GroupId group = ReplicaGroups::group_id("rep", 0);
  model.map = *meta::set_member_state(model.map, NodeId(3), meta::MemberState::kLeaving);
  const NodeId leader = model.groups.at(group).leader;
  model.dead.insert(leader);  // an election is under way
  ReplicaController controller(model);
  for (int i = 0; i < 10; ++i) {
    const ReplicaTick t = controller.tick(meta::ClusterMap(model.map), {});
    EXPECT_TRUE(t.errors.empty()) << t.errors.front();
  }
  EXPECT_EQ(model.groups.at(group).config.size(), 3u) << "changed a group with no leader";
  model.dead.clear();
  EXPECT_TRUE(model.run(controller));
}

TEST(GroupView, ParsesTheStatusLineAndRefusesAGarbledOne) {
  auto v = parse_group_view(
      "leader=2 commit=40 config=1,2,3 committed=0 match=1:39,3:40 learners=4:12");
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  EXPECT_EQ(v->learners.at(NodeId(4)), 12u);
  EXPECT_FALSE(v->match.contains(NodeId(4)));
  EXPECT_TRUE(parse_group_view("leader=2 commit=40 config=1,2,3 match=1:39")->learners.empty());
  EXPECT_FALSE(parse_group_view("leader=1 commit=1 config=1 learners=4").ok());
  EXPECT_EQ(v->leader, NodeId(2));
  EXPECT_EQ(v->commit_index, 40u);
  EXPECT_EQ(v->config, ids({1, 2, 3}));
  EXPECT_FALSE(v->config_committed);
  EXPECT_EQ(v->match.at(NodeId(1)), 39u);
  EXPECT_FALSE(parse_group_view("leader=x commit=1 config=1").ok());
  EXPECT_FALSE(parse_group_view("leader=1 commit=1 config=1 match=2:").ok());
  EXPECT_FALSE(parse_group_view("garbage").ok());
  // What LOCATE asked of another node reads (each member's applied index, the
  // leader's last index); a garbled one is refused like any field.
  auto a = parse_group_view(
      "leader=2 commit=40 config=1,2,3 match=1:39,3:40 applied=1:38,2:40,3:40 last=41");
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_EQ(a->applied.at(NodeId(1)), 38u);
  EXPECT_EQ(a->applied.at(NodeId(2)), 40u);
  EXPECT_EQ(a->last_index, 41u);
  EXPECT_EQ(v->last_index, 0u);  // absent from an older node's line
  EXPECT_FALSE(parse_group_view("leader=1 commit=1 config=1 applied=1:x").ok());
  EXPECT_FALSE(parse_group_view("leader=1 commit=1 config=1 last=").ok());
}

}  // namespace
}  // namespace statekv::coord
