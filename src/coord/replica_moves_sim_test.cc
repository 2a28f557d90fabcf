// The replica-move controller (replica_moves.h) driving real raft groups in the
// deterministic simulator while clients run: a group of 3 out of 5 nodes moves
// from one target to the next (add, catch up, hand leadership over, remove),
// under message loss, duplication, reordering, partitions and crashes. Each
// seed's client history is judged linearizable, a global observer checks raft's
// safety properties after every callback, and the group's configuration never
// has fewer than its factor of members. On odd seeds of the faulty sweep each
// node holds its requests a few ms and proposes them together
// (Raft::on_requests), as replica groups propose a pass's writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <sstream>

#include "coord/replica_moves.h"
#include "core/assert.h"
#include "replication/raft/raft.h"
#include "replication/raft/testing/observed_raft.h"
#include "sim/judge.h"
#include "sim/sim_cli.h"

namespace statekv::coord {
namespace {

using replication::Membership;
using replication::PersistToken;
using replication::TimerId;
using replication::raft::Message;
using replication::raft::Raft;
using replication::raft::RaftKv;
using replication::raft::RaftOptions;
using replication::raft::testing::Observer;

constexpr uint32_t kFactor = 3;

std::vector<NodeId> ids(std::initializer_list<uint64_t> v) {
  std::vector<NodeId> out;
  for (uint64_t n : v) out.push_back(NodeId(n));
  return out;
}

// What the controller's driver keeps between steps: the targets to reach in
// turn and the shard's owners in "the map" (shared by every node of a run, as
// the metadata service is).
struct Plan {
  std::vector<std::vector<NodeId>> targets = {ids({1, 2, 4}), ids({1, 4, 5}), ids({3, 4, 5}),
                                              ids({2, 3, 5}), ids({1, 2, 3})};
  size_t next = 0;
  std::vector<NodeId> map = ids({1, 2, 3});
  size_t reached = 0;
  size_t steps = 0;
  size_t learners = 0;  // learn steps taken
  size_t smallest_config = 99;
  std::string error;
};

// Raft under the observer, and on its leader, every 30 ms, one step of the
// controller. With a batch window, requests are held that long after the
// first arrives and proposed together.
class MovingRaft final : public sim::HostedNode {
 public:
  MovingRaft(sim::ByteEnv& env, const Membership& membership, std::vector<std::string> recovered,
             std::shared_ptr<Observer> observer, std::shared_ptr<Plan> plan, RaftOptions options,
             std::optional<replication::Duration> batch_window)
      : env_(env),
        // Nodes 1-3 found the group; 4 and 5 start outside it (as a member
        // being added does), until a config entry or snapshot takes them in.
        raft_(env_, Membership{.self = membership.self, .nodes = ids({1, 2, 3})},
              std::move(recovered), options),
        self_(membership.self),
        observer_(std::move(observer)),
        plan_(std::move(plan)),
        batch_window_(batch_window) {
    observer_->restarted(self_);
    timer_ = env_.set_timer(std::chrono::milliseconds(30));
    observe();
  }

  Status deliver(NodeId from, std::string_view bytes) override {
    Result<Message> msg = replication::decode_message<Message>(bytes);
    if (!msg.ok()) return msg.status();
    raft_.on_message(from, *msg);
    observe();
    return Status::OK();
  }
  void on_request(const replication::ClientRequest& req) override {
    if (batch_window_) {
      held_.push_back(req);
      if (!batch_timer_) batch_timer_ = env_.set_timer(*batch_window_);
      return;
    }
    raft_.on_request(req);
    observe();
  }
  void on_timer(TimerId id) override {
    if (id == timer_) {
      if (raft_.role() == Raft::Role::kLeader) step();
      timer_ = env_.set_timer(std::chrono::milliseconds(30));
    } else if (batch_timer_ && id == *batch_timer_) {
      batch_timer_.reset();
      std::vector<replication::ClientRequest> batch;
      batch.swap(held_);
      observer_->batched(batch.size());
      raft_.on_requests(batch);
    } else {
      raft_.on_timer(id);
    }
    observe();
  }
  void on_persisted(PersistToken token) override {
    raft_.on_persisted(token);
    observe();
  }

 private:
  void observe() {
    observer_->check(self_, raft_);
    if (raft_.role() == Raft::Role::kLeader) {
      plan_->smallest_config = std::min(plan_->smallest_config, raft_.config().size());
    }
  }

  void step() {
    Plan& p = *plan_;
    GroupView view;
    view.leader = self_;
    view.config = raft_.config();
    view.config_committed = raft_.config_index() <= raft_.commit_index();
    view.commit_index = raft_.commit_index().value();
    for (const auto& [n, m] : raft_.follower_match()) view.match[n] = m.value();
    for (const auto& [n, m] : raft_.learner_match()) view.learners[n] = m.value();
    const std::vector<NodeId>& target = p.targets[p.next % p.targets.size()];
    auto s = next_replica_step(target, p.map, view, kFactor, {}, 8);
    if (!s.ok()) {
      if (p.error.empty()) p.error = s.status().to_string();
      return;
    }
    ++p.steps;
    switch (s->kind) {
      case ReplicaStep::Kind::kDone:
        ++p.reached;
        ++p.next;
        break;
      case ReplicaStep::Kind::kWait:
        break;
      case ReplicaStep::Kind::kPublish:
        p.map = s->owners;
        break;
      // Busy (a change or transfer under way, this term's first entry not
      // committed) or not applicable any more: the next tick looks again.
      case ReplicaStep::Kind::kLearn:
        (void)raft_.add_learner(s->node);
        ++p.learners;
        break;
      case ReplicaStep::Kind::kAdd:
        (void)raft_.change_membership(s->node, true);
        break;
      case ReplicaStep::Kind::kRemove:
        (void)raft_.change_membership(s->node, false);
        break;
      case ReplicaStep::Kind::kTransfer:
        (void)raft_.transfer_leadership(s->node);
        break;
    }
  }

  sim::detail::TypedEnv<Message> env_;
  RaftKv raft_;
  NodeId self_;
  std::shared_ptr<Observer> observer_;
  std::shared_ptr<Plan> plan_;
  TimerId timer_;
  std::optional<replication::Duration> batch_window_;
  std::vector<replication::ClientRequest> held_;  // not yet proposed
  std::optional<TimerId> batch_timer_;
};

struct Outcome {
  sim::SeedReport report;
  std::shared_ptr<Observer> observer;
  std::shared_ptr<Plan> plan;
};

Outcome run(const sim::SimOptions& o, RaftOptions options,
            std::optional<replication::Duration> batch_window = std::nullopt) {
  auto observer = std::make_shared<Observer>();
  auto plan = std::make_shared<Plan>();
  sim::ProtocolEntry entry{
      "raft-moving", "raft with its replicas moving",
      [observer, plan, options, batch_window](sim::ByteEnv& env, const Membership& m,
                                              std::vector<std::string> rec) {
        return std::make_unique<MovingRaft>(env, m, std::move(rec), observer, plan, options,
                                            batch_window);
      }};
  Result<sim::SeedReport> report = sim::simulate_and_judge(entry, o);
  SKV_ASSERT(report.ok(), "the simulation itself broke");
  return Outcome{std::move(report).value(), observer, plan};
}

std::string describe(const Outcome& out) {
  std::ostringstream os;
  os << "history: " << out.report.verdict.explanation << "\nobserver: " << out.observer->violation()
     << "\ncontroller: " << out.plan->error << ", " << out.plan->reached << " targets reached in "
     << out.plan->steps << " steps\n"
     << out.report.run.parameters << out.report.run.schedule.to_text();
  return os.str();
}

sim::SimOptions options_for(uint64_t seed) {
  sim::SimOptions o;
  o.seed = seed;
  o.nodes = 5;
  o.clients = 4;
  o.ops = 400;
  o.workload.keys = 3;
  return o;
}

TEST(ReplicaMovesSim, WithoutFaultsTheGroupReachesTargetAfterTargetAndStaysLinearizable) {
  sim::SimOptions o = options_for(1);
  o.faults = sim::FaultSet{};
  RaftOptions options;
  options.snapshot_threshold = 16;   // new members catch up from a snapshot too,
  options.snapshot_chunk_bytes = 8;  // sent in several chunks
  Outcome out = run(o, options);
  EXPECT_TRUE(out.report.verdict.valid) << describe(out);
  EXPECT_TRUE(out.observer->ok()) << describe(out);
  EXPECT_TRUE(out.plan->error.empty()) << describe(out);
  EXPECT_GE(out.plan->reached, 3u) << describe(out);
  EXPECT_GE(out.observer->committed_config_changes(), 6u) << "replicas moved";
  EXPECT_EQ(out.plan->smallest_config, kFactor) << "never below the factor while moving";
  EXPECT_GE(out.report.run.ok_fraction(), sim::default_min_ok(o));
  EXPECT_GE(out.plan->learners, 3u) << "new members join as learners first";
  EXPECT_GT(out.observer->snapshots_installed(), 0u);
  EXPECT_GT(out.observer->most_snapshot_chunks(), 1u);
}

TEST(ReplicaMovesSim, UnderEveryFaultNoCommitIsLostAndNoHistoryBreaks) {
  const uint64_t seeds = 30;
  size_t reached = 0, changes = 0, batches_of_many = 0;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    sim::SimOptions o = options_for(seed);
    o.faults = *sim::parse_fault_set("all");
    RaftOptions options;
    if (seed % 2 == 1) {
      options.snapshot_threshold = 4 + seed % 13;
      options.snapshot_chunk_bytes = 4 + seed % 13;
    }
    std::optional<replication::Duration> batch_window;
    if (seed % 2 == 1) batch_window = std::chrono::milliseconds(1 + seed % 5);
    Outcome out = run(o, options, batch_window);
    ASSERT_TRUE(out.report.verdict.valid) << "seed " << seed << "\n" << describe(out);
    ASSERT_TRUE(out.observer->ok()) << "seed " << seed << "\n" << describe(out);
    ASSERT_TRUE(out.plan->error.empty()) << "seed " << seed << "\n" << describe(out);
    ASSERT_GE(out.plan->smallest_config, kFactor) << "seed " << seed << "\n" << describe(out);
    reached += out.plan->reached;
    changes += out.observer->committed_config_changes();
    batches_of_many += out.observer->batches_of_many();
  }
  std::printf(
      "%llu seeds: %zu targets reached, %zu membership changes committed, %zu batches of "
      "several requests\n",
      static_cast<unsigned long long>(seeds), reached, changes, batches_of_many);
  EXPECT_GE(reached, seeds) << "the controller should reach targets under faults too";
  EXPECT_GT(batches_of_many, 0u) << "the odd seeds' batches never held several requests";
}

}  // namespace
}  // namespace statekv::coord
