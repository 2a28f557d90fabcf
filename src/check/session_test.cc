#include <gtest/gtest.h>

#include "check/checkers.h"
#include "check/test_histories.h"

namespace statekv::check {
namespace {

using testing::HistoryBuilder;

void expect_only(const HistoryBuilder& b, const char* broken) {
  for (const auto& m :
       {"read-your-writes", "monotonic-reads", "monotonic-writes", "writes-follow-reads"}) {
    auto r = run_model(m, b.history());
    ASSERT_TRUE(r.ok());
    if (std::string(m) == broken) {
      EXPECT_FALSE(r->valid) << m;
      EXPECT_NE(r->explanation.find(std::string(m) + " violated"), std::string::npos)
          << r->explanation;
    } else {
      EXPECT_TRUE(r->valid) << m << ": " << r->explanation;
    }
  }
  EXPECT_FALSE(check_session(b.ops()).valid);
}

TEST(SessionTest, ReadYourWritesBroken) {
  // p1 writes a then b, then reads its older a (a causally precedes b).
  HistoryBuilder b;
  b.write(1, "k", "a", 0, 10).write(1, "k", "b", 20, 30).read(1, "k", "a", 40, 50);
  expect_only(b, "read-your-writes");
  // Reading absent after one's own write.
  HistoryBuilder c;
  c.write(1, "k", "a", 0, 10).read(1, "k", std::nullopt, 20, 30);
  EXPECT_FALSE(check_read_your_writes(c.ops()).valid);
}

TEST(SessionTest, NonMonotonicRead) {
  // p2 wrote a, read it, wrote b; p1 reads b, then the older a.
  HistoryBuilder b;
  b.write(2, "k", "a", 0, 10)
      .read(3, "k", "a", 12, 14)
      .write(3, "k", "b", 20, 30)
      .read(1, "k", "b", 40, 50)
      .read(1, "k", "a", 60, 70);
  auto r = check_monotonic_reads(b.ops());
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.explanation.find("process 1 read \"b\""), std::string::npos) << r.explanation;
  // The same write order via another key's session order: still older.
  HistoryBuilder c;
  c.read(1, "k", "a", 0, 5).write(2, "k", "a", 0, 1);  // p1 reads a (concurrent with write)
  EXPECT_TRUE(check_monotonic_reads(c.ops()).valid);
}

TEST(SessionTest, MonotonicWritesBroken) {
  // p2 writes a then b; p1 sees b, then a: a was applied after b.
  HistoryBuilder b;
  b.write(2, "k", "a", 0, 10)
      .write(2, "k", "b", 20, 30)
      .read(1, "k", "b", 40, 50)
      .read(1, "k", "a", 60, 70);
  EXPECT_FALSE(check_monotonic_writes(b.ops()).valid);
  EXPECT_FALSE(check_monotonic_reads(b.ops()).valid);  // it is a non-monotonic read too
  EXPECT_TRUE(check_read_your_writes(b.ops()).valid);
  EXPECT_TRUE(check_writes_follow_reads(b.ops()).valid);
}

TEST(SessionTest, WritesFollowReadsBroken) {
  // p2 read a (from p3) and then wrote b; p1 sees b, then a.
  HistoryBuilder b;
  b.write(3, "k", "a", 0, 10)
      .read(2, "k", "a", 15, 18)
      .write(2, "k", "b", 20, 30)
      .read(1, "k", "b", 40, 50)
      .read(1, "k", "a", 60, 70);
  EXPECT_FALSE(check_writes_follow_reads(b.ops()).valid);
  EXPECT_TRUE(check_monotonic_writes(b.ops()).valid);
  EXPECT_TRUE(check_read_your_writes(b.ops()).valid);
}

TEST(SessionTest, ConcurrentWritesMayBeSeenInEitherOrder) {
  // a and b are causally unrelated: p1 sees a then b, p4 sees b then a. Not
  // linearizable, but every session guarantee holds.
  HistoryBuilder b;
  b.write(2, "k", "a", 0, 10)
      .write(3, "k", "b", 0, 10)
      .read(1, "k", "a", 20, 30)
      .read(1, "k", "b", 40, 50)
      .read(4, "k", "b", 20, 30)
      .read(4, "k", "a", 40, 50);
  auto r = check_session(b.ops());
  EXPECT_TRUE(r.valid) << r.explanation;
  EXPECT_FALSE(check_linearizable(b.ops()).valid);
}

TEST(SessionTest, AcceptsGeneratedLinearizableHistories) {
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    Random rng(seed);
    testing::GenOptions o;
    o.processes = 6;
    o.keys = 4;
    o.ops = 400;
    o.p_info = 0.1;
    History h = testing::generate_linearizable(o, rng);
    for (const char* m : {"session", "causal"}) {
      auto r = run_model(m, h);
      ASSERT_TRUE(r.ok());
      ASSERT_TRUE(r->valid) << m << " seed " << seed << ":\n" << r->explanation;
    }
  }
}

}  // namespace
}  // namespace statekv::check
