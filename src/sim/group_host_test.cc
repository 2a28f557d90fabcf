#include "sim/group_host.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace statekv::sim {
namespace {

using replication::ClientRequest;
using replication::ClientResponse;
using replication::PersistToken;
using replication::TimerId;

// The node's environment, recording what the host did with it.
class FakeNodeEnv final : public ByteEnv {
 public:
  void send_bytes(NodeId to, std::string bytes) override { sent.emplace_back(to, bytes); }
  void reply(RequestId id, ClientResponse r) override { replies.emplace_back(id, r); }
  TimerId set_timer(replication::Duration) override { return TimerId(++timer); }
  void cancel_timer(TimerId id) override { cancelled.push_back(id); }
  replication::Instant now() const override { return replication::Instant(0); }
  PersistToken persist(std::string record) override {
    log.push_back(record);
    return PersistToken(log.size());
  }
  PersistToken persist_checkpoint(std::string) override {
    ADD_FAILURE() << "the host must never checkpoint the shared log";
    return PersistToken(0);
  }
  Random& random() override { return rng; }

  std::vector<std::pair<NodeId, std::string>> sent;
  std::vector<std::pair<RequestId, ClientResponse>> replies;
  std::vector<TimerId> cancelled;
  std::vector<std::string> log;
  uint64_t timer = 0;
  Random rng{1};
};

// A protocol that records every callback and echoes through its env.
struct Recorder {
  std::vector<std::string> recovered;
  std::vector<std::string> delivered;
  std::vector<std::string> requests;
  std::vector<uint64_t> min_indexes;
  std::vector<TimerId> timers;
  std::vector<uint64_t> persisted;
  ByteEnv* env = nullptr;
};

class RecordingProtocol final : public HostedNode {
 public:
  RecordingProtocol(ByteEnv& env, Recorder& rec) : rec_(rec) { rec_.env = &env; }
  Status deliver(NodeId, std::string_view bytes) override {
    rec_.delivered.emplace_back(bytes);
    return Status::OK();
  }
  void on_request(const ClientRequest& req) override {
    rec_.requests.push_back(req.key);
    rec_.min_indexes.push_back(req.min_index);
  }
  void on_timer(TimerId id) override { rec_.timers.push_back(id); }
  void on_persisted(PersistToken t) override { rec_.persisted.push_back(t.value()); }

 private:
  Recorder& rec_;
};

struct Fixture {
  // Node 1 hosts groups 1 and 2; group 3 lives on nodes 2 and 3.
  explicit Fixture(std::vector<std::string> recovered = {}) {
    GroupHostOptions o;
    o.groups = {{GroupId(1), {NodeId(1), NodeId(2)}},
                {GroupId(2), {NodeId(3), NodeId(1)}},
                {GroupId(3), {NodeId(2), NodeId(3)}}};
    o.route = [](std::string_view key) { return GroupId(key.empty() ? 1 : key[0] - '0'); };
    o.factory = [this](GroupId g, ByteEnv& env, const replication::Membership& m,
                       std::vector<std::string> records) {
      Recorder& r = recorders[g.value()];
      r.recovered = std::move(records);
      members[g.value()] = m;
      return std::make_unique<RecordingProtocol>(env, r);
    };
    host = std::make_unique<GroupHost>(env, NodeId(1), std::move(o), std::move(recovered));
  }
  FakeNodeEnv env;
  std::map<uint64_t, Recorder> recorders;
  std::map<uint64_t, replication::Membership> members;
  std::unique_ptr<GroupHost> host;
};

TEST(GroupHost, RunsOnlyTheGroupsThisNodeIsAMemberOf) {
  Fixture f;
  EXPECT_EQ(f.host->groups_hosted(), 2u);
  EXPECT_EQ(f.recorders.count(3), 0u);
  EXPECT_EQ(f.members[2].self, NodeId(1));
  EXPECT_EQ(f.members[2].nodes, (std::vector<NodeId>{NodeId(3), NodeId(1)}));
}

TEST(GroupHost, FramesCarryTheirGroupBothWays) {
  Fixture f;
  f.recorders[2].env->send_bytes(NodeId(3), "append");
  ASSERT_EQ(f.env.sent.size(), 1u);
  auto tagged = untag_group(f.env.sent[0].second);
  ASSERT_TRUE(tagged.ok());
  EXPECT_EQ(tagged->group, GroupId(2));
  EXPECT_EQ(tagged->payload, "append");

  ASSERT_TRUE(f.host->deliver(NodeId(2), tag_with_group(GroupId(1), 0, "vote")).ok());
  EXPECT_EQ(f.recorders[1].delivered, std::vector<std::string>{"vote"});
  EXPECT_TRUE(f.recorders[2].delivered.empty());
  // A group this node does not host: dropped and counted, never misdelivered.
  ASSERT_TRUE(f.host->deliver(NodeId(2), tag_with_group(GroupId(3), 0, "x")).ok());
  EXPECT_EQ(f.host->frames_for_unknown_groups(), 1u);
  EXPECT_EQ(f.recorders[1].delivered.size() + f.recorders[2].delivered.size(), 1u);
  // A frame without a whole group id is refused.
  EXPECT_FALSE(f.host->deliver(NodeId(2), std::string(1, '\x80')).ok());
}

TEST(GroupHost, RequestsGoToTheirKeysGroupOrAreRefusedWithAMemberAsHint) {
  Fixture f;
  f.host->on_request(ClientRequest{.id = RequestId(7),
                                   .op = replication::ClientOp::kRead,
                                   .key = "2abc",
                                   .value = {},
                                   .expected = {},
                                   .session = {}});
  EXPECT_EQ(f.recorders[2].requests, std::vector<std::string>{"2abc"});
  f.host->on_request(ClientRequest{.id = RequestId(8),
                                   .op = replication::ClientOp::kRead,
                                   .key = "3abc",
                                   .value = {},
                                   .expected = {},
                                   .session = {}});
  ASSERT_EQ(f.env.replies.size(), 1u);
  const ClientResponse& r = f.env.replies[0].second;
  EXPECT_EQ(r.outcome, ClientResponse::Outcome::kFail);
  EXPECT_TRUE(r.not_served);
  ASSERT_TRUE(r.leader_hint.has_value());
  EXPECT_TRUE(*r.leader_hint == NodeId(2) || *r.leader_hint == NodeId(3));
}

TEST(GroupHost, EachGroupHasItsOwnPersistTokensOverOneSharedLog) {
  Fixture f;
  ByteEnv& g1 = *f.recorders[1].env;
  ByteEnv& g2 = *f.recorders[2].env;
  EXPECT_EQ(g1.persist("a1").value(), 1u);
  EXPECT_EQ(g2.persist("b1").value(), 1u);
  EXPECT_EQ(g1.persist_checkpoint("a2").value(), 2u);  // appended, never a node checkpoint
  EXPECT_EQ(g2.persist("b2").value(), 2u);
  ASSERT_EQ(f.env.log.size(), 4u);
  // Node records 1..3 durable: group 1 has both of its records, group 2 its first.
  f.host->on_persisted(PersistToken(3));
  EXPECT_EQ(f.recorders[1].persisted, std::vector<uint64_t>{2});
  EXPECT_EQ(f.recorders[2].persisted, std::vector<uint64_t>{1});
  // Nothing new for group 1: it is not told again.
  f.host->on_persisted(PersistToken(4));
  EXPECT_EQ(f.recorders[1].persisted, std::vector<uint64_t>{2});
  EXPECT_EQ(f.recorders[2].persisted, (std::vector<uint64_t>{1, 2}));

  // A restart hands each group its own records, in append order.
  Fixture again(f.env.log);
  EXPECT_EQ(again.recorders[1].recovered, (std::vector<std::string>{"a1", "a2"}));
  EXPECT_EQ(again.recorders[2].recovered, (std::vector<std::string>{"b1", "b2"}));
}

TEST(GroupHost, TimersFireInTheGroupThatSetThem) {
  Fixture f;
  TimerId t1 = f.recorders[1].env->set_timer(replication::Duration(5));
  TimerId t2 = f.recorders[2].env->set_timer(replication::Duration(5));
  TimerId t3 = f.recorders[2].env->set_timer(replication::Duration(5));
  f.recorders[2].env->cancel_timer(t3);
  f.host->on_timer(t2);
  f.host->on_timer(t1);
  f.host->on_timer(t3);  // cancelled: nobody hears of it
  EXPECT_EQ(f.recorders[1].timers, std::vector<TimerId>{t1});
  EXPECT_EQ(f.recorders[2].timers, std::vector<TimerId>{t2});
  EXPECT_EQ(f.env.cancelled, std::vector<TimerId>{t3});
}

TEST(GroupHost, FramesOlderThanTheReplicaAreDroppedNewerOnesDelivered) {
  Fixture f;
  // Group 4 placed on node 1 at epoch 5: its replica is born at 5.
  f.host->place(GroupPlacement{GroupId(4), {NodeId(2), NodeId(1)}, 5}, {NodeId(2)});
  ASSERT_TRUE(f.host->hosts(GroupId(4)));
  EXPECT_EQ(f.host->born(GroupId(4)), 5u);
  EXPECT_EQ(f.members[4].nodes, std::vector<NodeId>{NodeId(2)}) << "the bootstrap membership";
  ASSERT_TRUE(f.host->deliver(NodeId(2), tag_with_group(GroupId(4), 4, "old")).ok());
  EXPECT_TRUE(f.recorders[4].delivered.empty()) << "a frame from before this replica";
  EXPECT_EQ(f.host->frames_from_older_epochs(), 1u);
  ASSERT_TRUE(f.host->deliver(NodeId(2), tag_with_group(GroupId(4), 5, "now")).ok());
  ASSERT_TRUE(f.host->deliver(NodeId(2), tag_with_group(GroupId(4), 9, "ahead")).ok());
  EXPECT_EQ(f.recorders[4].delivered, (std::vector<std::string>{"now", "ahead"}));
  // Its frames carry the newest epoch the node knows of the group.
  f.host->place(GroupPlacement{GroupId(4), {NodeId(2), NodeId(1)}, 7}, {});
  f.recorders[4].env->send_bytes(NodeId(2), "x");
  auto sent = untag_group(f.env.sent.back().second);
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ(sent->epoch, 7u);
  EXPECT_EQ(f.host->born(GroupId(4)), 5u);
}

TEST(GroupHost, AnUnplacedReplicaIsErasedAndARestartHostsWhatTheNodeHosted) {
  Fixture f;
  f.recorders[1].env->persist("a1");
  f.host->place(GroupPlacement{GroupId(4), {NodeId(1), NodeId(3)}, 2}, {NodeId(3)});
  f.recorders[4].env->persist("d1");
  f.host->unplace(GroupId(1));
  EXPECT_FALSE(f.host->hosts(GroupId(1)));
  // Placed again later: a new replica, born at the new epoch, recovers nothing
  // of the earlier one.
  f.host->place(GroupPlacement{GroupId(1), {NodeId(1), NodeId(2)}, 6}, {NodeId(2)});
  f.recorders[1].env->persist("a2");
  f.host->unplace(GroupId(2));
  f.host->place(GroupPlacement{GroupId(3), {NodeId(2), NodeId(3)}, 3}, {});  // not listed
  EXPECT_FALSE(f.host->hosts(GroupId(3)));

  Fixture again(f.env.log);
  EXPECT_TRUE(again.host->hosts(GroupId(1)));
  EXPECT_FALSE(again.host->hosts(GroupId(2))) << "stopped before the crash";
  EXPECT_TRUE(again.host->hosts(GroupId(4)));
  EXPECT_EQ(again.host->born(GroupId(1)), 6u);
  EXPECT_EQ(again.recorders[1].recovered, std::vector<std::string>{"a2"});
  EXPECT_EQ(again.members[1].nodes, std::vector<NodeId>{NodeId(2)});
  EXPECT_EQ(again.recorders[4].recovered, std::vector<std::string>{"d1"});
}

TEST(GroupHost, SessionTokensCarryEachGroupsPosition) {
  Fixture f;
  ClientRequest req;
  req.id = RequestId(1);
  req.op = replication::ClientOp::kWrite;
  req.key = "1k";
  f.host->on_request(req);
  ClientResponse ok;
  ok.index = 12;
  f.recorders[1].env->reply(RequestId(1), ok);
  ASSERT_EQ(f.env.replies.size(), 1u);
  const std::string token = f.env.replies[0].second.session;
  auto positions = decode_session(token);
  ASSERT_TRUE(positions.ok());
  EXPECT_EQ(*positions, (std::map<GroupId, uint64_t>{{GroupId(1), 12}}));

  // A read of group 2 with that token: no position there yet; its answer adds one.
  req.id = RequestId(2);
  req.op = replication::ClientOp::kRead;
  req.key = "2k";
  req.session = token;
  f.host->on_request(req);
  ok.index = 3;
  f.recorders[2].env->reply(RequestId(2), ok);
  positions = decode_session(f.env.replies[1].second.session);
  ASSERT_TRUE(positions.ok());
  EXPECT_EQ(*positions, (std::map<GroupId, uint64_t>{{GroupId(1), 12}, {GroupId(2), 3}}));

  // Group 1 gets its position as min_index; a lower answer never lowers it.
  req.id = RequestId(3);
  req.key = "1k";
  req.session = f.env.replies[1].second.session;
  f.host->on_request(req);
  EXPECT_EQ(f.recorders[1].min_indexes.back(), 12u);
  EXPECT_EQ(f.recorders[2].min_indexes.back(), 0u);
  ok.index = 9;
  f.recorders[1].env->reply(RequestId(3), ok);
  positions = decode_session(f.env.replies[2].second.session);
  ASSERT_TRUE(positions.ok());
  EXPECT_EQ(positions->at(GroupId(1)), 12u);

  // A token the host did not make is refused, not served without its session.
  req.id = RequestId(4);
  req.session = "\x05";
  f.host->on_request(req);
  ASSERT_EQ(f.env.replies.size(), 4u);
  EXPECT_EQ(f.env.replies[3].second.outcome, ClientResponse::Outcome::kFail);
  EXPECT_FALSE(f.env.replies[3].second.not_served);
}

}  // namespace
}  // namespace statekv::sim
