#include <gtest/gtest.h>

#include "check/checkers.h"
#include "check/test_histories.h"

namespace statekv::check {
namespace {

using testing::HistoryBuilder;

TEST(SequentialTest, StaleReadInRealTimeIsStillSequential) {
  // Not linearizable (the read began after the write completed), but p2's read can
  // be ordered before p1's write: no process order forbids it.
  HistoryBuilder b;
  b.write(1, "k", "a", 0, 10).read(2, "k", std::nullopt, 20, 30);
  EXPECT_FALSE(check_linearizable(b.ops()).valid);
  auto r = check_sequential(b.ops());
  EXPECT_TRUE(r.valid) << r.explanation;
}

TEST(SequentialTest, ProcessOrderIsRespected) {
  // p1 writes a then b; p2 sees b then a: no single order allows it.
  HistoryBuilder b;
  b.write(1, "k", "a", 0, 10)
      .write(1, "k", "b", 20, 30)
      .read(2, "k", "b", 40, 50)
      .read(2, "k", "a", 60, 70);
  auto r = check_sequential(b.ops());
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.explanation.find("key k is not sequentially consistent"), std::string::npos)
      << r.explanation;
  // A process that wrote b never reads the older a again.
  HistoryBuilder c;
  c.write(2, "k", "a", 0, 10)
      .write(1, "k", "b", 20, 30)
      .read(1, "k", "a", 40, 50)
      .read(2, "k", "b", 60, 70);
  EXPECT_FALSE(check_sequential(c.ops()).valid);
}

TEST(SequentialTest, ValueNeverWrittenAndInfoWrites) {
  HistoryBuilder never;
  never.write(1, "k", "a", 0, 10).read(2, "k", "zz", 20, 30);
  EXPECT_FALSE(check_sequential(never.ops()).valid);
  // A timed-out write may take effect after its process's later ops.
  HistoryBuilder info;
  info.write(1, "k", "a", 0, 10, EventType::kInfo)
      .read(1, "k", std::nullopt, 20, 30)
      .read(2, "k", "a", 40, 50);
  auto r = check_sequential(info.ops());
  EXPECT_TRUE(r.valid) << r.explanation;
}

TEST(SequentialTest, AgreesWithBruteForceOnSmallHistories) {
  int invalid = 0;
  for (uint64_t seed = 1; seed <= 1500; ++seed) {
    Random rng(seed);
    testing::GenOptions o;
    o.processes = 2 + static_cast<int>(rng.uniform(3));
    o.ops = 3 + static_cast<int>(rng.uniform(5));
    o.p_info = 0.15;
    o.p_fail = 0.1;
    History h = testing::generate_linearizable(o, rng);
    std::vector<std::optional<std::string>> values = {std::nullopt};
    for (const Event& e : h) {
      if (e.f != OpFunction::kRead && e.value) values.push_back(e.value);
    }
    for (Event& e : h) {
      if (e.f == OpFunction::kRead && e.type == EventType::kOk && rng.chance(0.4)) {
        e.value = values[rng.uniform(values.size())];
      }
    }
    auto ops = pair_operations(h);
    ASSERT_TRUE(ops.ok());
    bool expected = testing::brute_force_sequential(*ops);
    invalid += !expected;
    auto r = check_sequential(*ops);
    ASSERT_EQ(r.valid, expected) << "seed " << seed << "\n" << r.explanation;
  }
  EXPECT_GT(invalid, 100);
}

TEST(SequentialTest, AcceptsGeneratedLinearizableHistories) {
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    Random rng(seed);
    testing::GenOptions o;
    o.processes = 5;
    o.keys = 3;
    o.ops = 300;
    History h = testing::generate_linearizable(o, rng);
    auto r = run_model("sequential", h);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->valid) << "seed " << seed << ":\n" << r->explanation;
  }
}

}  // namespace
}  // namespace statekv::check
