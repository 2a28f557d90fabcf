#include <gtest/gtest.h>

#include "check/checkers.h"
#include "check/test_histories.h"

namespace statekv::check {
namespace {

using testing::HistoryBuilder;
constexpr auto kInfo = EventType::kInfo;
constexpr auto kFail = EventType::kFail;

CheckResult lin(const HistoryBuilder& b) {
  return check_linearizable(b.ops());
}

void expect_invalid(const CheckResult& r, std::initializer_list<const char*> mentions) {
  EXPECT_FALSE(r.valid);
  for (const char* m : mentions) {
    EXPECT_NE(r.explanation.find(m), std::string::npos) << "missing '" << m << "' in:\n"
                                                        << r.explanation;
  }
}

TEST(LinearizableTest, SequentialHistoryIsValid) {
  HistoryBuilder b;
  b.read(1, "k", std::nullopt, 0, 1).write(1, "k", "a", 2, 3).read(2, "k", "a", 4, 5);
  auto r = lin(b);
  EXPECT_TRUE(r.valid) << r.explanation;
  EXPECT_EQ(r.stats.keys, 1);
}

TEST(LinearizableTest, StaleReadIsCaught) {
  HistoryBuilder b;
  b.write(1, "k7", "a", 0, 10).write(1, "k7", "b", 20, 30).read(2, "k7", "a", 40, 50);
  expect_invalid(
      lin(b), {"key k7", "holds \"a\"", "would overwrite \"a\" before process 2 read k7 = \"a\""});
}

TEST(LinearizableTest, LostAcknowledgedWriteIsCaught) {
  // b was acknowledged, yet a later read sees the older a.
  HistoryBuilder b;
  b.write(1, "k", "a", 0, 10)
      .write(2, "k", "b", 15, 25)
      .read(3, "k", "a", 30, 40)
      .read(3, "k", "a", 50, 60);
  expect_invalid(lin(b), {"key k"});
  // Same with the register going back to absent.
  HistoryBuilder c;
  c.write(1, "k", "a", 0, 10).read(2, "k", std::nullopt, 20, 30);
  expect_invalid(lin(c), {"absent (initial state)"});
}

TEST(LinearizableTest, ValueNeverWrittenIsCaught) {
  HistoryBuilder b;
  b.write(1, "k", "a", 0, 10).read(2, "k", "zz", 20, 30);
  expect_invalid(lin(b), {"\"zz\"", "no operation ever wrote it"});
  HistoryBuilder c;
  c.write(1, "k", "a", 0, 10, kFail).read(2, "k", "a", 20, 30);
  expect_invalid(lin(c), {"failed"});
  // A value written to another key does not count.
  HistoryBuilder d;
  d.write(1, "other", "a", 0, 10).read(2, "k", "a", 20, 30);
  EXPECT_FALSE(lin(d).valid);
}

TEST(LinearizableTest, ReadFromTheFutureIsCaught) {
  HistoryBuilder b;
  b.read(2, "k", "a", 0, 10).write(1, "k", "a", 20, 30);
  expect_invalid(lin(b), {"before it was written"});
}

TEST(LinearizableTest, ConcurrentOperationsMayBeOrderedEitherWay) {
  // w(a) and w(b) overlap; readers see b then a: order w(b) r(b) w(a) r(a).
  HistoryBuilder b;
  b.write(1, "k", "a", 0, 100)
      .write(2, "k", "b", 10, 90)
      .read(3, "k", "b", 20, 30)
      .read(4, "k", "a", 40, 50)
      .read(3, "k", "a", 95, 99);
  EXPECT_TRUE(lin(b).valid) << lin(b).explanation;
  // And the other way round.
  HistoryBuilder c;
  c.write(1, "k", "a", 0, 100)
      .write(2, "k", "b", 10, 90)
      .read(3, "k", "a", 20, 30)
      .read(4, "k", "b", 40, 50);
  EXPECT_TRUE(lin(c).valid) << lin(c).explanation;
  // But once b is read after a completed, a can no longer be read.
  HistoryBuilder d;
  d.write(1, "k", "a", 0, 100)
      .write(2, "k", "b", 10, 90)
      .read(3, "k", "a", 20, 30)
      .read(4, "k", "b", 40, 50)
      .read(5, "k", "a", 60, 70);
  expect_invalid(lin(d), {"process 5 read k = \"a\""});
}

TEST(LinearizableTest, CompareAndSet) {
  HistoryBuilder ok;
  ok.write(1, "k", "a", 0, 10).cas(2, "k", "a", "b", 20, 30).read(3, "k", "b", 40, 50);
  EXPECT_TRUE(lin(ok).valid) << lin(ok).explanation;
  // A cas that succeeded although the register held something else.
  HistoryBuilder bad;
  bad.write(1, "k", "a", 0, 10).write(1, "k", "c", 11, 15).cas(2, "k", "a", "b", 20, 30);
  expect_invalid(lin(bad), {"before process 2 cas k \"a\" -> \"b\""});
  // A failed cas never happened: its value must not be visible.
  HistoryBuilder failed;
  failed.write(1, "k", "a", 0, 10).cas(2, "k", "x", "b", 20, 30, kFail).read(3, "k", "a", 40, 50);
  EXPECT_TRUE(lin(failed).valid);
  HistoryBuilder seen;
  seen.write(1, "k", "a", 0, 10).cas(2, "k", "x", "b", 20, 30, kFail).read(3, "k", "b", 40, 50);
  EXPECT_FALSE(lin(seen).valid);
  // cas from absent.
  HistoryBuilder absent;
  absent.cas(1, "k", std::nullopt, "a", 0, 10).read(2, "k", "a", 20, 30);
  EXPECT_TRUE(lin(absent).valid) << lin(absent).explanation;
}

TEST(LinearizableTest, Delete) {
  HistoryBuilder ok;
  ok.write(1, "k", "a", 0, 10)
      .del(2, "k", 20, 30)
      .read(3, "k", std::nullopt, 40, 50)
      .write(1, "k", "b", 60, 70)
      .read(3, "k", "b", 80, 90);
  EXPECT_TRUE(lin(ok).valid) << lin(ok).explanation;
  HistoryBuilder bad;
  bad.write(1, "k", "a", 0, 10).del(2, "k", 20, 30).read(3, "k", "a", 40, 50);
  EXPECT_FALSE(lin(bad).valid);
  // Absent, then a, then absent again needs a delete in between: two deletes serve.
  HistoryBuilder two;
  two.del(1, "k", 0, 5)
      .write(2, "k", "a", 10, 20)
      .del(1, "k", 21, 29)
      .read(3, "k", std::nullopt, 30, 40);
  EXPECT_TRUE(lin(two).valid) << lin(two).explanation;
}

TEST(LinearizableTest, InfoOperationsMayOrMayNotHaveHappened) {
  // Took effect (and late: after the first read).
  HistoryBuilder happened;
  happened.write(1, "k", "a", 0, 10, kInfo)
      .read(2, "k", std::nullopt, 20, 30)
      .read(2, "k", "a", 1000, 1010);
  EXPECT_TRUE(lin(happened).valid) << lin(happened).explanation;
  // Never took effect.
  HistoryBuilder never;
  never.write(1, "k", "a", 0, 10, kInfo)
      .read(2, "k", std::nullopt, 20, 30)
      .read(2, "k", std::nullopt, 1000, 1010);
  EXPECT_TRUE(lin(never).valid);
  // Cannot un-happen: read a, then absent again with no delete.
  HistoryBuilder undone;
  undone.write(1, "k", "a", 0, 10, kInfo)
      .read(2, "k", "a", 20, 30)
      .read(2, "k", std::nullopt, 40, 50);
  EXPECT_FALSE(lin(undone).valid);
  // An info delete may explain absent after a write, at any later instant.
  HistoryBuilder info_delete;
  info_delete.del(1, "k", 0, 10, kInfo)
      .write(2, "k", "a", 20, 30)
      .read(3, "k", "a", 40, 50)
      .read(3, "k", std::nullopt, 60, 70);
  EXPECT_TRUE(lin(info_delete).valid) << lin(info_delete).explanation;
  // An info cas whose effect is read.
  HistoryBuilder info_cas;
  info_cas.write(1, "k", "a", 0, 10)
      .cas(2, "k", "a", "b", 20, 30, kInfo)
      .read(3, "k", "b", 500, 510);
  EXPECT_TRUE(lin(info_cas).valid) << lin(info_cas).explanation;
  // But an info op cannot take effect before it was invoked.
  HistoryBuilder early;
  early.read(3, "k", "a", 0, 5).write(1, "k", "a", 10, 20, kInfo);
  EXPECT_FALSE(lin(early).valid);
}

TEST(LinearizableTest, KeysAreIndependent) {
  HistoryBuilder b;
  b.write(1, "x", "a", 0, 10)
      .write(2, "y", "b", 0, 10)
      .read(3, "x", "a", 20, 30)
      .read(3, "y", "b", 20, 30);
  auto r = lin(b);
  EXPECT_TRUE(r.valid);
  EXPECT_EQ(r.stats.keys, 2);
}

TEST(LinearizableTest, AcceptsEveryGeneratedLinearizableHistory) {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    Random rng(seed);
    testing::GenOptions o;
    o.processes = 2 + static_cast<int>(rng.uniform(6));
    o.keys = 1 + static_cast<int>(rng.uniform(3));
    o.ops = 10 + static_cast<int>(rng.uniform(200));
    o.p_info = rng.chance(0.5) ? 0.15 : 0.02;
    History h = testing::generate_linearizable(o, rng);
    auto r = run_model("linearizable", h);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->valid) << "seed " << seed << ":\n" << r->explanation;
  }
}

TEST(LinearizableTest, RejectsEveryStaleReadMutation) {
  int mutated = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Random rng(seed);
    testing::GenOptions o;
    o.processes = 3;
    o.ops = 40;
    o.p_cas = 0.05;
    History h = testing::generate_linearizable(o, rng);
    if (!testing::make_stale_read(h)) continue;
    ++mutated;
    auto r = run_model("linearizable", h);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->valid) << "seed " << seed;
  }
  EXPECT_GT(mutated, 100);
}

// Small random histories, some linearizable and some not, judged by the fast
// search and by brute force: the verdicts must agree.
TEST(LinearizableTest, AgreesWithBruteForceOnSmallHistories) {
  int invalid = 0;
  for (uint64_t seed = 1; seed <= 1500; ++seed) {
    Random rng(seed);
    testing::GenOptions o;
    o.processes = 2 + static_cast<int>(rng.uniform(3));
    o.keys = 1;
    o.ops = 3 + static_cast<int>(rng.uniform(5));
    o.p_info = 0.2;
    o.p_fail = 0.1;
    History h = testing::generate_linearizable(o, rng);
    // Corrupt some read results with other values of the key (or absent).
    std::vector<std::optional<std::string>> values = {std::nullopt};
    for (const Event& e : h) {
      if (e.f != OpFunction::kRead && e.value) values.push_back(e.value);
    }
    for (Event& e : h) {
      if (e.f == OpFunction::kRead && e.type == EventType::kOk && rng.chance(0.3)) {
        e.value = values[rng.uniform(values.size())];
      }
    }
    auto ops = pair_operations(h);
    ASSERT_TRUE(ops.ok());
    bool expected = testing::brute_force_linearizable(*ops);
    invalid += !expected;
    auto r = check_linearizable(*ops);
    ASSERT_EQ(r.valid, expected) << "seed " << seed << "\n" << r.explanation;
    EXPECT_EQ(r.valid, r.explanation.empty());
  }
  EXPECT_GT(invalid, 150);
}

}  // namespace
}  // namespace statekv::check
