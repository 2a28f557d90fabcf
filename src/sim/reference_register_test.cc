// The simulator and the linearizability checker against two reference
// registers: one correct, one that serves stale reads. If the machinery could
// not tell them apart, no other protocol's passing run would mean anything.
//
// Seed counts: STATEKV_SIM_SEEDS overrides the number of seeds of the
// correct-register sweep (the CTest `soak` entry sets 2000).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "check/operation.h"
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
  EXPECT_GE(r->ok_fraction(), default_min_ok(o)) << "a correct register under faults serves";
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
    ASSERT_GE(report->run.ok_fraction(), default_min_ok(o))
        << "seed " << seed << ": too few operations succeeded\n"
        << report->run.parameters << report->run.schedule.to_text();
    events += report->run.events;
    cpu += report->run.cpu_seconds;
  }
  std::cout << "[ measure ] " << seeds << " seeds, " << events << " events in " << cpu
            << "s cpu of simulation: " << static_cast<uint64_t>(events / cpu) << " events/s\n";
}

// ---- the simulated clients ----------------------------------------------------
// The correct register's leader is node 1 and its followers refuse everything
// as not served, naming node 1: what its clients see is the client's doing.

// Operations by outcome and function, from a history.
struct Tally {
  size_t ok = 0, fail = 0, info = 0, fail_not_cas = 0;
};
Tally tally(const check::History& h) {
  Tally t;
  for (const check::Event& e : h) {
    t.ok += e.type == check::EventType::kOk;
    t.info += e.type == check::EventType::kInfo;
    if (e.type == check::EventType::kFail) {
      ++t.fail;
      t.fail_not_cas += e.f != check::OpFunction::kCas;
    }
  }
  return t;
}

TEST(SimClients, RefusedRequestsFollowTheLeaderHint) {
  ProtocolRegistry reg = test_registry();
  SimOptions o = faulty(5);
  o.faults = FaultSet{};
  auto r = run_simulation(*reg.find("correct-register"), o);
  ASSERT_TRUE(r.ok());
  const Tally t = tally(r->history);
  // Some requests reached a follower first (new clients pick any node, and one
  // in four later operations too); each was redirected to node 1 and served.
  EXPECT_GT(r->refusals, 0u);
  EXPECT_EQ(r->attempts, o.ops + r->refusals);
  EXPECT_EQ(t.info, 0u);
  EXPECT_EQ(t.fail_not_cas, 0u) << "only a cas whose expectation failed may fail";
  EXPECT_GE(r->ok_fraction(), default_min_ok(o));
  for (const check::Event& e : r->history) {
    if (e.type == check::EventType::kOk) {
      EXPECT_EQ(e.node, 1) << "served by the leader";
    }
  }
  auto v = judge_linearizable(r->history);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->valid) << v->explanation;
}

TEST(SimClients, ADownNodeRefusesConnectionsAndClientsGoElsewhere) {
  // Node 2 is down for the whole run: a request sent there is refused at once
  // (nothing listens) and certainly went nowhere, so the client tries another
  // node instead of waiting for a timeout.
  ProtocolRegistry reg = test_registry();
  SimOptions o = faulty(8);
  o.faults = FaultSet{};
  o.schedule = *parse_schedule("at 0ns crash 2\n", 3);
  auto r = run_simulation(*reg.find("correct-register"), o);
  ASSERT_TRUE(r.ok());
  const Tally t = tally(r->history);
  EXPECT_EQ(t.info, 0u) << "nothing waits on a node that is down";
  EXPECT_EQ(t.fail_not_cas, 0u);
  EXPECT_GT(r->refusals, 0u);
}

TEST(SimClients, RefusedUntilTheDeadlineIsFailAndATimeoutIsInfo) {
  // The leader is down from 1s to 4s: nobody can serve, every follower names
  // node 1, node 1 refuses connections. An operation invoked then is retried
  // until SimOptions::retry_deadline and recorded `fail` (certainly not done),
  // never `info`. Then node 1 is cut off from 4.5s to 6s: it accepts writes it
  // cannot make durable on a majority, so those attempts go unanswered and
  // are `info` after client_timeout, and their processes never act again.
  ProtocolRegistry reg = test_registry();
  SimOptions o = faulty(9);
  o.faults = FaultSet{};
  o.ops = 1000;
  o.schedule = *parse_schedule(
      "at 1s crash 1\nat 4s restart 1\nat 4500ms partition {1} | {2,3}\nat 6s heal\n", 3);
  auto r = run_simulation(*reg.find("correct-register"), o);
  ASSERT_TRUE(r.ok());
  auto ops = check::pair_operations(r->history);
  ASSERT_TRUE(ops.ok()) << ops.status().to_string();
  size_t failed_while_down = 0, info = 0;
  std::map<int64_t, int64_t> retired;  // process -> invoke time of its `info` operation
  for (const check::Op& op : *ops) {
    if (op.invoke_time > 1'100'000'000 && op.invoke_time < 2'900'000'000) {
      ASSERT_EQ(op.outcome, check::EventType::kFail) << check::describe(op);
      EXPECT_GE(op.complete_time - op.invoke_time, o.retry_deadline - o.retry_backoff * 3 / 2)
          << check::describe(op);
      ++failed_while_down;
    }
    if (op.outcome == check::EventType::kInfo) {
      ++info;
      // In flight at node 1 when it crashed, or sent to it while it was cut off.
      EXPECT_TRUE(op.invoke_time < 1'000'000'000 || op.invoke_time > 4'400'000'000)
          << check::describe(op);
      EXPECT_TRUE(retired.emplace(op.process, op.invoke_time).second)
          << "a process with two operations that timed out";
    }
  }
  EXPECT_GE(failed_while_down, 4u);  // each takes the whole deadline: ~2 per client
  EXPECT_GT(info, 0u);
  for (const check::Op& op : *ops) {
    auto it = retired.find(op.process);
    EXPECT_FALSE(it != retired.end() && op.invoke_time > it->second)
        << "a process acted after its operation timed out: " << check::describe(op);
  }
  auto v = judge_linearizable(r->history);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->valid) << v->explanation;
}

TEST(SimClients, FaultySeedsMostOperationsSucceed) {
  // The example: under every fault, most operations of every seed
  // succeed (before clients followed hints: 30-65% failed, some seeds nearly all).
  ProtocolRegistry reg = test_registry();
  double lowest = 1;
  size_t ok = 0, ops = 0;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    SimOptions o = faulty(seed);
    o.ops = 200;
    o.workload.keys = 5;
    auto r = run_simulation(*reg.find("correct-register"), o);
    ASSERT_TRUE(r.ok());
    EXPECT_GE(r->ok_fraction(), default_min_ok(o)) << "seed " << seed;
    lowest = std::min(lowest, r->ok_fraction());
    ok += r->ok;
    ops += o.ops;
  }
  // What fails now is a cas whose expectation did not hold (3%), and what got
  // no answer while the leader was down or cut off (under 1%).
  EXPECT_GE(static_cast<double>(ok) / static_cast<double>(ops), 0.9);
  std::cout << "[ measure ] correct register, 50 faulty seeds: " << ok << "/" << ops
            << " ok, fewest in a seed " << lowest << "\n";
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

TEST(SimCli, PrintsTheFractionOkAndFailsASeedBelowTheFloor) {
  ProtocolRegistry reg = test_registry();
  std::ostringstream out, err;
  ASSERT_EQ(run_sim_cli({"--protocol", "correct-register", "--seeds", "1..3", "--faults", "all"},
                        reg, out, err),
            0)
      << out.str() << err.str();
  EXPECT_NE(out.str().find("% ok) events "), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("(floor 50.0% ok per seed)"), std::string::npos) << out.str();
  std::ostringstream calm;
  ASSERT_EQ(run_sim_cli({"--protocol", "correct-register", "--seeds", "1"}, reg, calm, err), 0);
  EXPECT_NE(calm.str().find("(floor 80.0% ok per seed)"), std::string::npos) << calm.str();

  // Every seed has some cas whose expectation fails: a floor of 1 fails them,
  // though each history is linearizable.
  std::ostringstream strict;
  EXPECT_EQ(run_sim_cli({"--protocol", "correct-register", "--seeds", "1..2", "--faults", "all",
                         "--min-ok", "1"},
                        reg, strict, err),
            1);
  EXPECT_NE(strict.str().find("seed 1: FAIL"), std::string::npos) << strict.str();
  EXPECT_NE(strict.str().find("too few operations succeeded"), std::string::npos);
  EXPECT_EQ(strict.str().find("not linearizable"), std::string::npos);
  EXPECT_NE(strict.str().find(",clock --min-ok 1\n"), std::string::npos) << strict.str();

  for (const char* bad : {"1.5", "-0.1", "half", ""}) {
    std::ostringstream e;
    EXPECT_EQ(run_sim_cli({"--protocol", "correct-register", "--min-ok", bad}, reg, out, e), 2);
    EXPECT_NE(e.str().find("--min-ok wants a fraction in 0..1"), std::string::npos) << bad;
  }
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
