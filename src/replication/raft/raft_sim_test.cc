// Raft in the deterministic simulator: every seed's client history is judged
// linearizable AND a global observer (testing/observed_raft.h) checks election
// safety, state machine safety and leader completeness after every callback.
//
// Odd seeds of the sweeps propose requests in batches (Raft::on_requests).
//
// Seed counts: STATEKV_RAFT_SEEDS overrides both sweeps, the faulty one (200
// by default) and the leadership-transfer one (20); the CTest `soak` entry sets
// 2000.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

#include "core/assert.h"
#include "replication/raft/raft.h"
#include "replication/raft/testing/observed_raft.h"
#include "sim/judge.h"
#include "sim/sim_cli.h"

namespace statekv::replication::raft {
namespace {

using sim::SimOptions;
using testing::Observer;

SimOptions faulty(uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.nodes = seed % 3 == 0 ? 5 : 3;
  o.clients = 4;
  o.ops = 300;
  o.workload.keys = 3;
  o.workload.skew = seed % 2 == 0 ? sim::KeySkew::kZipf : sim::KeySkew::kUniform;
  o.faults = *sim::parse_fault_set("all");
  return o;
}

uint64_t seeds_from_env(uint64_t fallback) {
  const char* v = std::getenv("STATEKV_RAFT_SEEDS");
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

// Half the seeds snapshot every few entries, so that compaction, checkpoint
// records and InstallSnapshot run under every fault too, in chunks of a few
// bytes (a snapshot of the few keys takes several), so that lost, duplicated
// and reordered chunks and transfers cut short by a new leader happen.
RaftOptions sweep_options(uint64_t seed) {
  RaftOptions options;
  if (seed % 2 == 1) {
    options.snapshot_threshold = 4 + seed % 13;
    options.snapshot_chunk_bytes = 4 + seed % 13;
  }
  return options;
}

// Odd seeds: each node holds the requests reaching it for a few ms and
// proposes them together (Raft::on_requests), as replica groups propose the
// writes of one pass of their event loop.
testing::Chaos sweep_chaos(uint64_t seed, testing::Chaos chaos = {}) {
  if (seed % 2 == 1) chaos.batch_window = std::chrono::milliseconds(1 + seed % 5);
  return chaos;
}

struct Outcome {
  sim::SeedReport report;
  std::shared_ptr<Observer> observer;
};

Outcome run(const SimOptions& o, RaftOptions options = {}, testing::Chaos chaos = {}) {
  auto observer = std::make_shared<Observer>();
  sim::ProtocolEntry entry = testing::observed_raft_entry(observer, options, chaos);
  Result<sim::SeedReport> report = sim::simulate_and_judge(entry, o);
  SKV_ASSERT(report.ok(), "the simulation itself broke");
  return Outcome{std::move(report).value(), observer};
}

std::string describe(const Outcome& out) {
  std::ostringstream os;
  os << "history: " << out.report.verdict.explanation << "\nobserver: " << out.observer->violation()
     << "\n"
     << out.report.run.parameters << out.report.run.schedule.to_text();
  return os.str();
}

TEST(RaftSim, NoFaultsEveryOperationAnsweredAndLinearizable) {
  SimOptions o = faulty(1);
  o.faults = sim::FaultSet{};
  Outcome out = run(o);
  EXPECT_TRUE(out.report.verdict.valid) << describe(out);
  EXPECT_TRUE(out.observer->ok()) << describe(out);
  EXPECT_EQ(out.report.run.info, 0u) << "without faults every request is answered";
  // Requests that reach a follower are redirected by the client: the only
  // fails left are cas mismatches.
  EXPECT_GE(out.report.run.ok_fraction(), sim::default_min_ok(o));
  EXPECT_GT(out.report.run.refusals, 0u) << "some requests reached a follower first";
  EXPECT_EQ(out.observer->terms_with_leader(), 1u) << "a stable cluster elects once";
}

TEST(RaftSim, SameSeedSameHistory) {
  Outcome a = run(faulty(7));
  Outcome b = run(faulty(7));
  EXPECT_EQ(a.report.run.history_hash, b.report.run.history_hash);
  EXPECT_EQ(a.report.run.events, b.report.run.events);
}

// Dueling candidates and a leader cut off: node 1 (whoever leads) is isolated
// and later rejoins; the majority side elects and keeps committing, the
// minority neither commits nor answers reads, and nobody loses a commit.
TEST(RaftSim, LeaderCutOffMajorityMovesOnAndMinorityServesNothing) {
  for (const char* schedule :
       {"at 1s partition {1} | {2,3}\nat 4s heal\n", "at 1s partition {2} | {1,3}\nat 4s heal\n",
        "at 1s partition {3} | {1,2}\nat 4s heal\n"}) {
    SimOptions o = faulty(11);
    o.nodes = 3;
    o.faults = sim::FaultSet{};
    o.ops = 400;
    o.schedule = *sim::parse_schedule(schedule, 3);
    Outcome out = run(o);
    EXPECT_TRUE(out.report.verdict.valid) << schedule << describe(out);
    EXPECT_TRUE(out.observer->ok()) << schedule << describe(out);
    EXPECT_GE(out.report.run.ok_fraction(), sim::default_min_ok(o)) << schedule;
  }
}

// ReadIndex on its own (CheckQuorum off, so a cut-off leader keeps believing
// it leads): the old leader must not answer a read, because its heartbeat round
// cannot reach a majority, while the other side elects a leader and writes.
TEST(RaftSim, CutOffLeaderWithoutCheckQuorumServesNoStaleRead) {
  for (const char* schedule :
       {"at 1s partition {1} | {2,3}\nat 4s heal\n", "at 1s partition {2} | {1,3}\nat 4s heal\n",
        "at 1s partition {3} | {1,2}\nat 4s heal\n"}) {
    SimOptions o = faulty(11);
    o.nodes = 3;
    o.faults = sim::FaultSet{};
    o.ops = 600;
    o.workload.keys = 1;
    o.schedule = *sim::parse_schedule(schedule, 3);
    auto observer = std::make_shared<Observer>();
    RaftOptions options;
    options.check_quorum = false;
    Result<sim::SeedReport> report =
        sim::simulate_and_judge(testing::observed_raft_entry(observer, options), o);
    ASSERT_TRUE(report.ok());
    Outcome out{std::move(report).value(), observer};
    EXPECT_TRUE(out.report.verdict.valid) << schedule << describe(out);
    EXPECT_TRUE(out.observer->ok()) << schedule << describe(out);
  }
}

// Crashes lose writes that were never confirmed durable; a node that promised
// (voted, acknowledged) only after on_persisted never forgets a promise.
TEST(RaftSim, CrashesThatLoseUnsyncedTailsLoseNoCommit) {
  SimOptions o = faulty(5);
  o.nodes = 3;
  o.faults = sim::FaultSet{};
  o.ops = 600;
  o.schedule = *sim::parse_schedule(
      "at 200ms crash 1\nat 400ms restart 1\nat 600ms crash 2\nat 700ms restart 2\n"
      "at 900ms crash 3\nat 950ms restart 3\nat 1200ms crash 1\nat 1300ms restart 1\n",
      3);
  Outcome out = run(o);
  EXPECT_TRUE(out.report.verdict.valid) << describe(out);
  EXPECT_TRUE(out.observer->ok()) << describe(out);
  EXPECT_GE(out.report.run.crashes, 4u);
  EXPECT_GT(out.observer->committed(), 100u);
}

// A follower cut off for a long stretch misses many entries and catches up:
// by the leader backing off with conflict hints and pipelining batches to it,
// or, when the leader compacted them away, by InstallSnapshot in 8-byte chunks.
TEST(RaftSim, FollowerThatMissesEntriesCatchesUp) {
  for (size_t threshold : {size_t{1024}, size_t{8}}) {
    SimOptions o = faulty(3);
    o.nodes = 3;
    o.faults = sim::FaultSet{};
    o.ops = 1000;
    o.schedule = *sim::parse_schedule(
        "at 100ms partition {3} | {1,2}\nat 1s heal\nat 1200ms partition {1} | {2,3}\n", 3);
    RaftOptions options;
    options.snapshot_threshold = threshold;
    options.snapshot_chunk_bytes = 8;
    Outcome out = run(o, options);
    EXPECT_TRUE(out.report.verdict.valid) << threshold << describe(out);
    EXPECT_TRUE(out.observer->ok()) << threshold << describe(out);
    // From 1.2s only {2,3} can commit: node 3 must have caught up to take part.
    size_t late_writes = 0;
    for (const check::Event& e : out.report.run.history) {
      late_writes += e.type == check::EventType::kOk && e.f != check::OpFunction::kRead &&
                     e.time > 1'500'000'000;
    }
    EXPECT_GT(late_writes, 50u) << threshold;
    if (threshold == 8) {
      EXPECT_GT(out.observer->snapshots_installed(), 0u);
      EXPECT_GT(out.observer->most_snapshot_chunks(), 2u) << "the snapshot took several chunks";
    }
  }
}

// Regression seed: with votes and acknowledgements sent before they were
// durable (send_durable sending at once), this seed of the sweep is the first to
// fail: a crash loses an acknowledged entry and a leader of term 2 lacks a
// committed index. Kept so that the default run always includes it.
TEST(RaftSim, Seed461PromisesOnlyWhatIsDurable) {
  Outcome out = run(faulty(461), sweep_options(461));
  EXPECT_TRUE(out.report.verdict.valid) << describe(out);
  EXPECT_TRUE(out.observer->ok()) << describe(out);
  EXPECT_GT(out.report.run.crashes, 0u);
}

// Leadership handed around every 200ms, with and without faults: each transfer
// is an election in a new term, and nothing committed may be lost on the way.
TEST(RaftSim, RepeatedLeadershipTransfersLoseNothing) {
  testing::Chaos chaos{.transfer_every = std::chrono::milliseconds(200)};
  const uint64_t seeds = seeds_from_env(20);
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    SimOptions o = faulty(seed);
    if (seed <= 2) o.faults = sim::FaultSet{};
    o.ops = 600;
    Outcome out = run(o, sweep_options(seed), sweep_chaos(seed, chaos));
    ASSERT_TRUE(out.report.verdict.valid) << "seed " << seed << ": " << describe(out);
    ASSERT_TRUE(out.observer->ok()) << "seed " << seed << ": " << describe(out);
    // A leader handing over refuses requests, naming its successor: clients follow.
    ASSERT_GE(out.report.run.ok_fraction(), sim::default_min_ok(o)) << "seed " << seed;
    if (seed <= 2) {
      EXPECT_GT(out.observer->terms_with_leader(), 3u) << "leadership never moved";
    }
  }
}

// Members removed and added back every 150ms (the leader itself included) while
// leadership also moves: one server at a time, each change decided by a leader
// that committed an entry of its own term first.
TEST(RaftSim, MembershipChangesUnderFaultsLoseNothing) {
  testing::Chaos chaos{.transfer_every = std::chrono::milliseconds(350),
                       .membership_every = std::chrono::milliseconds(150)};
  const uint64_t seeds = seeds_from_env(20);
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    SimOptions o = faulty(seed);
    if (seed <= 2) o.faults = sim::FaultSet{};
    o.ops = 600;
    Outcome out = run(o, sweep_options(seed), sweep_chaos(seed, chaos));
    ASSERT_TRUE(out.report.verdict.valid) << "seed " << seed << ": " << describe(out);
    ASSERT_TRUE(out.observer->ok()) << "seed " << seed << ": " << describe(out);
    ASSERT_GE(out.report.run.ok_fraction(), sim::default_min_ok(o)) << "seed " << seed;
    if (seed <= 2) {
      EXPECT_GT(out.observer->committed_config_changes(), 3u) << "seed " << seed;
    }
  }
}

TEST(RaftSim, ManyFaultySeedsLinearizableAndSafe) {
  const uint64_t seeds = seeds_from_env(200);
  uint64_t events = 0, ok = 0, fail = 0, info = 0, ops = 0;
  uint64_t installed = 0, chunks = 0, refused = 0, most_chunks = 0;
  uint64_t batches = 0, batches_of_many = 0, most_batched = 0;
  double cpu = 0, min_ok = 1;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    SimOptions o = faulty(seed);
    Outcome out = run(o, sweep_options(seed), sweep_chaos(seed));
    batches += out.observer->batches();
    batches_of_many += out.observer->batches_of_many();
    most_batched = std::max(most_batched, out.observer->most_batched());
    installed += out.observer->snapshots_installed();
    chunks += out.observer->snapshot_chunks_accepted();
    refused += out.observer->snapshot_chunks_refused();
    most_chunks = std::max(most_chunks, out.observer->most_snapshot_chunks());
    ASSERT_TRUE(out.report.verdict.valid) << "seed " << seed << ": " << describe(out);
    ASSERT_TRUE(out.observer->ok()) << "seed " << seed << ": " << describe(out);
    // A linearizable history of operations that all failed would prove little.
    ASSERT_GE(out.report.run.ok_fraction(), sim::default_min_ok(o))
        << "seed " << seed << ": too few operations succeeded\n"
        << describe(out);
    min_ok = std::min(min_ok, out.report.run.ok_fraction());
    events += out.report.run.events;
    cpu += out.report.run.cpu_seconds;
    ok += out.report.run.ok;
    fail += out.report.run.fail;
    info += out.report.run.info;
    ops += o.ops;
  }
  std::cout << "[ measure ] raft: " << seeds << " faulty seeds, ops " << ok << " ok, " << fail
            << " fail, " << info << " info of " << ops << " (fewest ok in a seed: " << min_ok
            << "), " << events << " events in " << cpu
            << "s cpu: " << static_cast<uint64_t>(events / cpu)
            << " events/s; snapshots: " << installed << " installed from " << chunks << " chunks ("
            << refused << " chunks refused, at most " << most_chunks
            << " in one snapshot); batches: " << batches << " proposed, " << batches_of_many
            << " of several requests (at most " << most_batched << ")\n";
  if (seeds >= 20) {
    // The sweep must really send snapshots in several chunks, and lose or
    // reorder some of them.
    EXPECT_GT(installed, 0u);
    EXPECT_GT(chunks, 2 * installed);
    EXPECT_GT(refused, 0u);
    // The odd seeds' batches must really hold several requests at times.
    EXPECT_GT(batches_of_many, 0u);
  }
}

TEST(RaftSim, CliRunsRaft) {
  sim::ProtocolRegistry reg;
  reg.add<RaftKv>("raft", "raft consensus");
  std::ostringstream out, err;
  // Seed 7 is the example: 12 of its 200 operations ok, when clients
  // gave up at the first node that refused them.
  int rc =
      sim::run_sim_cli({"--protocol", "raft", "--seeds", "5..7", "--faults", "all"}, reg, out, err);
  EXPECT_EQ(rc, 0) << out.str() << err.str();
  EXPECT_NE(out.str().find("3 seed(s): 3 passed, 0 failed"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("(floor 50.0% ok per seed)"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace statekv::replication::raft
