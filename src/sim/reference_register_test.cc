// The simulator and the linearizability checker against two reference
// registers: one correct, one that serves stale reads. If the machinery could
// not tell them apart, no other protocol's passing run would mean anything.
//
// Seed counts: STATEKV_SIM_SEEDS overrides the number of seeds of the
// correct-register sweep (the CTest `soak` entry sets 2000).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "sim/judge.h"
#include "sim/sim_cli.h"
#include "sim/testing/reference_registers.h"

namespace statekv::sim {
namespace {

ProtocolRegistry test_registry() {
  ProtocolRegistry r;
  r.add<testing::CorrectRegister>("correct-register",
                                  "test-only fixed-leader register, majority reads and writes");
  r.add<testing::BrokenRegister>("broken-register",
                                 "test-only register whose followers serve stale reads");
  return r;
}

SimOptions faulty(uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.nodes = 3;
  o.clients = 4;
  o.ops = 300;
  o.workload.keys = 3;
  o.faults = *parse_fault_set("all");
  return o;
}

uint64_t seeds_from_env(uint64_t fallback) {
  const char* v = std::getenv("STATEKV_SIM_SEEDS");
  return v ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST(ReferenceRegister, SameSeedSameHistoryByteForByte) {
  ProtocolRegistry reg = test_registry();
  auto a = run_simulation(*reg.find("correct-register"), faulty(17));
  auto b = run_simulation(*reg.find("correct-register"), faulty(17));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->history_hash, b->history_hash);
  EXPECT_EQ(a->events, b->events);
  ASSERT_EQ(a->history.size(), b->history.size());
  for (size_t i = 0; i < a->history.size(); ++i) {
    ASSERT_EQ(check::to_json_line(a->history[i]), check::to_json_line(b->history[i])) << i;
  }
  EXPECT_EQ(a->parameters, b->parameters);
}

TEST(ReferenceRegister, DifferentSeedsGiveDifferentHistories) {
  ProtocolRegistry reg = test_registry();
  std::set<uint64_t> hashes;
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    auto r = run_simulation(*reg.find("correct-register"), faulty(seed));
    ASSERT_TRUE(r.ok());
    hashes.insert(r->history_hash);
  }
  EXPECT_EQ(hashes.size(), 10u);
}

TEST(ReferenceRegister, HistoryIsWellFormedAndTheWorkloadCompletes) {
  ProtocolRegistry reg = test_registry();
  SimOptions o = faulty(3);
  auto r = run_simulation(*reg.find("correct-register"), o);
  ASSERT_TRUE(r.ok());
  size_t invokes = 0;
  for (const auto& e : r->history) invokes += e.type == check::EventType::kInvoke;
  EXPECT_EQ(invokes, o.ops);
  EXPECT_EQ(r->ok + r->fail + r->info, o.ops);
  EXPECT_GT(r->ok, o.ops / 4) << "a correct register under faults still makes progress";
  // Time in the history is true simulated time: non-decreasing.
  for (size_t i = 1; i < r->history.size(); ++i) {
    EXPECT_LE(r->history[i - 1].time, r->history[i].time);
  }
}

TEST(ReferenceRegister, NoFaultsMeansNoInfoAndEveryOpAnswered) {
  ProtocolRegistry reg = test_registry();
  SimOptions o = faulty(5);
  o.faults = FaultSet{};
  auto r = run_simulation(*reg.find("correct-register"), o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->info, 0u);
  EXPECT_EQ(r->crashes, 0u);
  EXPECT_EQ(r->messages_dropped, 0u);
  auto v = judge_linearizable(r->history);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->valid) << v->explanation;
}

TEST(ReferenceRegister, BrokenRegisterIsCaughtWithin50Seeds) {
  ProtocolRegistry reg = test_registry();
  uint64_t caught_at = 0;
  for (uint64_t seed = 1; seed <= 50 && caught_at == 0; ++seed) {
    auto report = simulate_and_judge(*reg.find("broken-register"), faulty(seed));
    ASSERT_TRUE(report.ok()) << report.status().to_string();
    if (!report->verdict.valid) {
      caught_at = seed;
      EXPECT_FALSE(report->verdict.explanation.empty());
    }
  }
  ASSERT_NE(caught_at, 0u) << "a register serving stale reads passed 50 faulty seeds";
  std::cout << "[ measure ] broken register caught at seed " << caught_at << " (seeds 1..)\n";
}

TEST(ReferenceRegister, HandWrittenScheduleReplaysAStaleRead) {
  // The shape of the bug, as a regression scenario: follower 3 is cut off while
  // writes go on, and reads still reach it.
  ProtocolRegistry reg = test_registry();
  SimOptions o = faulty(1);
  o.faults = FaultSet{};
  o.clients = 3;
  o.ops = 300;
  o.workload.keys = 1;
  o.schedule = *parse_schedule("at 100ms partition {1,2} | {3}\nat 3s heal\n", 3);
  auto broken = simulate_and_judge(*reg.find("broken-register"), o);
  ASSERT_TRUE(broken.ok());
  EXPECT_FALSE(broken->verdict.valid);
  auto correct = simulate_and_judge(*reg.find("correct-register"), o);
  ASSERT_TRUE(correct.ok());
  EXPECT_TRUE(correct->verdict.valid) << correct->verdict.explanation;
}

TEST(ReferenceRegister, CorrectRegisterPassesManyFaultySeeds) {
  ProtocolRegistry reg = test_registry();
  const uint64_t seeds = seeds_from_env(200);
  uint64_t events = 0;
  double cpu = 0;
  for (uint64_t seed = 1; seed <= seeds; ++seed) {
    SimOptions o = faulty(seed);
    // Vary the shape too: 3 or 5 nodes, uniform or skewed keys.
    o.nodes = seed % 3 == 0 ? 5 : 3;
    o.workload.skew = seed % 2 == 0 ? KeySkew::kZipf : KeySkew::kUniform;
    auto report = simulate_and_judge(*reg.find("correct-register"), o);
    ASSERT_TRUE(report.ok()) << "seed " << seed << ": " << report.status().to_string();
    ASSERT_TRUE(report->verdict.valid)
        << "seed " << seed << ": " << report->verdict.explanation << "\n"
        << report->run.parameters << report->run.schedule.to_text();
    events += report->run.events;
    cpu += report->run.cpu_seconds;
  }
  std::cout << "[ measure ] " << seeds << " seeds, " << events << " events in " << cpu
            << "s cpu of simulation: " << static_cast<uint64_t>(events / cpu) << " events/s\n";
}

TEST(SimCli, RunsSeedsAndPrintsHashesAndReplay) {
  ProtocolRegistry reg = test_registry();
  std::ostringstream out, err;
  int rc = run_sim_cli({"--protocol", "correct-register", "--seeds", "4..6", "--ops", "60",
                        "--faults", "loss,crash"},
                       reg, out, err);
  EXPECT_EQ(rc, 0) << out.str() << err.str();
  EXPECT_NE(out.str().find("seed 4: PASS hash "), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("seed 6: PASS"), std::string::npos);
  EXPECT_NE(out.str().find("3 seed(s): 3 passed, 0 failed"), std::string::npos);

  std::ostringstream out2;
  rc = run_sim_cli({"--protocol", "broken-register", "--seeds", "1..50", "--ops", "300", "--keys",
                    "3", "--faults", "all"},
                   reg, out2, err);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out2.str().find("FAIL"), std::string::npos);
  EXPECT_NE(out2.str().find("replay: statekv sim --protocol broken-register --seeds "),
            std::string::npos);
  EXPECT_NE(out2.str().find("first failing seed"), std::string::npos);
}

TEST(SimCli, SameSeedPrintsTheSameHash) {
  ProtocolRegistry reg = test_registry();
  auto hash_line = [&] {
    std::ostringstream out, err;
    EXPECT_EQ(run_sim_cli({"--protocol", "correct-register", "--seeds", "9", "--faults", "all"},
                          reg, out, err),
              0);
    const std::string s = out.str();
    const size_t at = s.find("hash ");
    return s.substr(at, 21);
  };
  EXPECT_EQ(hash_line(), hash_line());
}

TEST(SimCli, UsageErrorsAndEmptyRegistry) {
  ProtocolRegistry reg = test_registry();
  std::ostringstream out, err;
  EXPECT_EQ(run_sim_cli({"--protocol", "nope"}, reg, out, err), 2);
  EXPECT_NE(err.str().find("unknown protocol 'nope'"), std::string::npos);
  EXPECT_EQ(run_sim_cli({"--protocol", "correct-register", "--seeds", "5..2"}, reg, out, err), 2);
  EXPECT_EQ(run_sim_cli({"--protocol", "correct-register", "--faults", "fire"}, reg, out, err), 2);
  EXPECT_EQ(run_sim_cli({"--protocol", "correct-register", "--seeds", "1..2", "--history", "h"},
                        reg, out, err),
            2);

  std::ostringstream listed;
  EXPECT_EQ(run_sim_cli({"--list"}, reg, listed, err), 0);
  EXPECT_NE(listed.str().find("broken-register"), std::string::npos);

  ProtocolRegistry empty;
  std::ostringstream none;
  EXPECT_EQ(run_sim_cli({"--list"}, empty, none, err), 0);
  EXPECT_NE(none.str().find("no protocols are registered"), std::string::npos);
}

TEST(SimCli, WritesTheHistoryAndReadsAScheduleFile) {
  ProtocolRegistry reg = test_registry();
  const std::string dir = ::testing::TempDir();
  const std::string schedule = dir + "/sim_cli_schedule.txt";
  {
    std::ofstream f(schedule);
    f << "at 50ms crash 2\nat 300ms restart 2\n";
  }
  std::ostringstream out, err;
  ASSERT_EQ(run_sim_cli({"--protocol", "correct-register", "--seeds", "2..3", "--ops", "40",
                         "--schedule", schedule, "--history", dir + "/h-{seed}.jsonl"},
                        reg, out, err),
            0)
      << out.str() << err.str();
  auto h = check::read_history_file(dir + "/h-3.jsonl");
  ASSERT_TRUE(h.ok()) << h.status().to_string();
  EXPECT_EQ(h->size(), 80u);  // 40 invokes, 40 completions
  std::ostringstream bad_err;
  {
    std::ofstream f(schedule);
    f << "at 50ms crash 9\n";
  }
  EXPECT_EQ(
      run_sim_cli({"--protocol", "correct-register", "--schedule", schedule}, reg, out, bad_err),
      2);
  EXPECT_NE(bad_err.str().find("line 1: node 9 out of range"), std::string::npos);
}

}  // namespace
}  // namespace statekv::sim
