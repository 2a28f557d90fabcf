// Raft per shard: many raft groups on one host per node (sim/group_host.h), in
// the deterministic simulator under every fault. A crash takes down every group
// of the node at once, and every group shares the node's one durable log. Each
// seed's client history is judged linearizable (every key belongs to one
// group), each group's raft is watched by its own observer (election safety,
// state machine safety, leader completeness), and most operations must succeed.
//
// Odd seeds propose requests in batches (Raft::on_requests).
//
// Seed count: STATEKV_RAFT_GROUP_SEEDS (500 by default; the CTest `soak` entry
// runs 5,000).
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <sstream>

#include "core/assert.h"
#include "replication/raft/raft.h"
#include "replication/raft/testing/observed_raft.h"
#include "sim/group_host.h"
#include "sim/judge.h"

namespace statekv::replication::raft {
namespace {

using sim::SimOptions;
using testing::Observer;

constexpr size_t kGroups = 8;
constexpr size_t kFactor = 3;

SimOptions faulty(uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.nodes = seed % 2 == 0 ? 5 : 3;
  o.clients = 6;
  o.ops = 300;
  o.workload.keys = 16;  // spread over the groups
  o.faults = *sim::parse_fault_set("all");
  return o;
}

uint64_t seeds_from_env(uint64_t fallback) {
  const char* v = std::getenv("STATEKV_RAFT_GROUP_SEEDS");
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

struct Outcome {
  sim::SeedReport report;
  std::map<GroupId, std::shared_ptr<Observer>> observers;

  bool observers_ok() const {
    for (const auto& [g, o] : observers) {
      if (!o->ok()) return false;
    }
    return true;
  }
  std::string describe() const {
    std::ostringstream os;
    os << "history: " << report.verdict.explanation << "\n";
    for (const auto& [g, o] : observers) {
      if (!o->ok()) os << "group " << g << ": " << o->violation() << "\n";
    }
    os << report.run.parameters << report.run.schedule.to_text();
    return os.str();
  }
};

// A node environment that re-tags every frame it sends with the next group's
// id (a planted bug: messages delivered to the wrong group).
class MisdeliveringEnv final : public sim::ByteEnv {
 public:
  explicit MisdeliveringEnv(sim::ByteEnv& inner) : inner_(inner) {}
  void send_bytes(NodeId to, std::string bytes) override {
    auto tagged = sim::untag_group(bytes);
    SKV_ASSERT(tagged.ok(), "the host sends tagged frames");
    const GroupId next(tagged->group.value() % kGroups + 1);
    inner_.send_bytes(to, sim::tag_with_group(next, tagged->epoch, tagged->payload));
  }
  void reply(RequestId r, ClientResponse c) override { inner_.reply(r, std::move(c)); }
  TimerId set_timer(Duration d) override { return inner_.set_timer(d); }
  void cancel_timer(TimerId id) override { inner_.cancel_timer(id); }
  Instant now() const override { return inner_.now(); }
  PersistToken persist(std::string r) override { return inner_.persist(std::move(r)); }
  PersistToken persist_checkpoint(std::string r) override {
    return inner_.persist_checkpoint(std::move(r));
  }
  Random& random() override { return inner_.random(); }

 private:
  sim::ByteEnv& inner_;
};

// The host and the env it runs over, kept alive together.
class Misdelivering final : public sim::HostedNode {
 public:
  Misdelivering(sim::ByteEnv& env, NodeId self, sim::GroupHostOptions o,
                std::vector<std::string> recovered)
      : env_(env), host_(env_, self, std::move(o), std::move(recovered)) {}
  Status deliver(NodeId from, std::string_view b) override { return host_.deliver(from, b); }
  void on_request(const ClientRequest& r) override { host_.on_request(r); }
  void on_timer(TimerId id) override { host_.on_timer(id); }
  void on_persisted(PersistToken t) override { host_.on_persisted(t); }

 private:
  MisdeliveringEnv env_;
  sim::GroupHost host_;
};

enum class Bug { kNone, kRequestToWrongGroup, kFrameToWrongGroup };

// Builds the groups the way sim::group_host_entry does, with one observer per
// group. Planted bugs: node 1's host hands each request to the next group
// instead of its key's, or node 1 sends every frame to the next group.
Outcome run(const SimOptions& o, RaftOptions options = {}, Bug bug = Bug::kNone,
            testing::Chaos chaos = {}) {
  Outcome out;
  for (size_t g = 1; g <= kGroups; ++g) out.observers[GroupId(g)] = std::make_shared<Observer>();
  sim::ProtocolEntry entry;
  entry.name = "raft-groups";
  entry.factory = [&out, options, bug, chaos](
                      sim::ByteEnv& env, const Membership& m,
                      std::vector<std::string> recovered) -> std::unique_ptr<sim::HostedNode> {
    sim::GroupHostOptions host;
    host.groups = sim::spread_groups(m.nodes, kGroups, kFactor);
    const bool wrong = bug == Bug::kRequestToWrongGroup && m.self == NodeId(1);
    host.route = [wrong](std::string_view key) {
      GroupId g = sim::group_of_key(key, kGroups);
      return wrong ? GroupId(g.value() % kGroups + 1) : g;
    };
    if (options.quiesce) {
      // Idle groups go quiet; the hosts' peer heartbeats notice a dead leader.
      host.peer_ping_interval = std::chrono::milliseconds(50);
      host.peer_down_after = std::chrono::milliseconds(200);
    }
    host.factory = [&out, options, chaos](GroupId g, sim::ByteEnv& group_env,
                                          const Membership& members,
                                          std::vector<std::string> records) {
      return testing::observed_raft_entry(out.observers.at(g), options, chaos)
          .factory(group_env, members, std::move(records));
    };
    if (bug == Bug::kFrameToWrongGroup && m.self == NodeId(1)) {
      return std::make_unique<Misdelivering>(env, m.self, std::move(host), std::move(recovered));
    }
    return std::make_unique<sim::GroupHost>(env, m.self, std::move(host), std::move(recovered));
  };
  Result<sim::SeedReport> report = sim::simulate_and_judge(entry, o);
  SKV_ASSERT(report.ok(), "the simulation itself broke");
  out.report = std::move(report).value();
  return out;
}

TEST(RaftGroupsSim, NoFaultsEveryGroupServesItsKeys) {
  SimOptions o = faulty(1);
  o.faults = sim::FaultSet{};
  Outcome out = run(o);
  EXPECT_TRUE(out.report.verdict.valid) << out.describe();
  EXPECT_TRUE(out.observers_ok()) << out.describe();
  EXPECT_EQ(out.report.run.info, 0u) << "without faults every request is answered";
  EXPECT_GE(out.report.run.ok_fraction(), sim::default_min_ok(o));
  size_t groups_that_led = 0;
  for (const auto& [g, obs] : out.observers) groups_that_led += obs->terms_with_leader() > 0;
  EXPECT_EQ(groups_that_led, kGroups) << "every group elects its own leader";
}

TEST(RaftGroupsSim, QuiescingGroupsServeEveryKeyWithoutFaults) {
  SimOptions o = faulty(1);
  o.faults = sim::FaultSet{};
  RaftOptions options;
  options.quiesce = true;
  Outcome out = run(o, options);
  EXPECT_TRUE(out.report.verdict.valid) << out.describe();
  EXPECT_TRUE(out.observers_ok()) << out.describe();
  EXPECT_EQ(out.report.run.info, 0u) << "without faults every request is answered";
  EXPECT_GE(out.report.run.ok_fraction(), sim::default_min_ok(o));
  uint64_t quiesced = 0;
  for (const auto& [g, obs] : out.observers) quiesced += obs->quiesced_views();
  EXPECT_GT(quiesced, 0u) << "no group ever went quiet";
}

TEST(RaftGroupsSim, SameSeedSameHistory) {
  Outcome a = run(faulty(4));
  Outcome b = run(faulty(4));
  EXPECT_EQ(a.report.run.history_hash, b.report.run.history_hash);
  EXPECT_EQ(a.report.run.events, b.report.run.events);
}

TEST(RaftGroupsSim, ManyGroupsOnFaultySeedsStayLinearizableAndSafe) {
  const uint64_t seeds = seeds_from_env(500);
  uint64_t ok = 0, total = 0, installed = 0, chunks = 0, batches_of_many = 0;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    RaftOptions options;
    if (seed % 2 == 1) {
      options.snapshot_threshold = 4 + seed % 13;    // checkpoints in the shared log
      options.snapshot_chunk_bytes = 4 + seed % 13;  // InstallSnapshot in several chunks
    }
    options.quiesce = seed % 4 >= 2;  // half the seeds: idle groups quiesce
    // Odd seeds: each group holds the requests reaching it for a few ms and
    // proposes them together (Raft::on_requests), as replica groups do.
    testing::Chaos chaos;
    if (seed % 2 == 1) chaos.batch_window = std::chrono::milliseconds(1 + seed % 5);
    Outcome out = run(faulty(seed), options, Bug::kNone, chaos);
    ASSERT_TRUE(out.report.verdict.valid) << "seed " << seed << "\n" << out.describe();
    ASSERT_TRUE(out.observers_ok()) << "seed " << seed << "\n" << out.describe();
    ASSERT_GE(out.report.run.ok_fraction(), sim::default_min_ok(faulty(seed)))
        << "seed " << seed << "\n"
        << out.describe();
    ok += out.report.run.ok;
    total += out.report.run.ok + out.report.run.fail + out.report.run.info;
    for (const auto& [g, obs] : out.observers) {
      installed += obs->snapshots_installed();
      chunks += obs->snapshot_chunks_accepted();
      batches_of_many += obs->batches_of_many();
    }
  }
  std::printf(
      "raft groups: %llu seeds, %llu of %llu operations ok (%.1f%%); snapshots installed %llu "
      "from %llu chunks; %llu batches of several requests\n",
      static_cast<unsigned long long>(seeds), static_cast<unsigned long long>(ok),
      static_cast<unsigned long long>(total), 100.0 * ok / total,
      static_cast<unsigned long long>(installed), static_cast<unsigned long long>(chunks),
      static_cast<unsigned long long>(batches_of_many));
  if (seeds >= 20) {
    EXPECT_GT(batches_of_many, 0u) << "the odd seeds' batches never held several requests";
    EXPECT_GT(installed, 0u);
    EXPECT_GT(chunks, 2 * installed) << "snapshots must take several chunks";
  }
}

// Planted bug: one node's host hands requests to the wrong group. The keys'
// histories then mix two registers, which the checker must notice.
TEST(RaftGroupsSim, ARequestHandedToTheWrongGroupIsCaught) {
  int caught = 0;
  for (uint64_t seed = 1; seed <= 20 && caught == 0; ++seed) {
    SimOptions o = faulty(seed);
    o.faults = sim::FaultSet{};
    Outcome out = run(o, {}, Bug::kRequestToWrongGroup);
    if (!out.report.verdict.valid) ++caught;
  }
  EXPECT_GT(caught, 0) << "a request served by the wrong group went unnoticed for 20 seeds";
}

// Planted bug: one node delivers its raft messages to the wrong group. Raft's
// always-on invariants (two leaders in one term, a log that does not match)
// or the checkers stop it; either way the process must not carry on quietly.
TEST(RaftGroupsSimDeathTest, AMessageDeliveredToTheWrongGroupIsCaught) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        for (uint64_t seed = 1; seed <= 50; ++seed) {
          Outcome out = run(faulty(seed), {}, Bug::kFrameToWrongGroup);
          if (!out.report.verdict.valid || !out.observers_ok()) {
            std::fprintf(stderr, "caught by the checkers at seed %llu\n",
                         static_cast<unsigned long long>(seed));
            std::abort();
          }
        }
      },
      "invariant failed|caught by the checkers");
}

}  // namespace
}  // namespace statekv::replication::raft
