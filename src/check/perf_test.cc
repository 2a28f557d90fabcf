// The checkers on 100,000-operation histories: 20 processes, 1,000 keys, uniform
// and skewed (one hot key takes half the operations with ~20 in flight at once).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "check/checkers.h"
#include "check/test_histories.h"

namespace statekv::check {
namespace {

History big_history(bool skewed, double p_info) {
  testing::GenOptions o;
  o.processes = 20;
  o.keys = 1000;
  o.ops = 100'000;
  o.p_info = p_info;
  o.p_fail = 0.01;
  if (skewed) {
    // Hot-key operations last 20x longer (contention), so nearly every process is
    // inside one at any instant.
    o.hot_fraction = 0.5;
    o.hot_latency_factor = 20;
  }
  Random rng(skewed ? 2 : 1);
  return testing::generate_linearizable(o, rng);
}

double timed(const char* what, const std::vector<Op>& ops,
             CheckResult (*fn)(const std::vector<Op>&), CheckResult* out) {
  auto start = std::chrono::steady_clock::now();
  *out = fn(ops);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%-22s %.3f s  %s  %s\n", what, s, out->valid ? "valid" : "INVALID",
              out->stats.to_string().c_str());
  return s;
}

void run_all(bool skewed, double p_info = 0.01) {
  History h = big_history(skewed, p_info);
  auto ops = pair_operations(h);
  ASSERT_TRUE(ops.ok());
  ASSERT_EQ(ops->size(), 100'000u);
  CheckResult r;
  double s = timed("linearizable", *ops, check_linearizable, &r);
  EXPECT_TRUE(r.valid) << r.explanation;
  EXPECT_LT(s, 10.0);
  if (skewed) {
    EXPECT_GE(r.stats.max_in_flight, 15);
  }
  s = timed("sequential", *ops, check_sequential, &r);
  EXPECT_TRUE(r.valid) << r.explanation;
  EXPECT_LT(s, 10.0);
  s = timed("session", *ops, check_session, &r);
  EXPECT_TRUE(r.valid) << r.explanation;
  EXPECT_LT(s, 10.0);
  s = timed("causal", *ops, check_causal, &r);
  EXPECT_TRUE(r.valid) << r.explanation;
  EXPECT_LT(s, 10.0);

  // A stale read planted late in the history is found, also quickly.
  History bad = h;
  ASSERT_TRUE(testing::make_stale_read(bad));
  auto bad_ops = pair_operations(bad);
  ASSERT_TRUE(bad_ops.ok());
  s = timed("linearizable (stale)", *bad_ops, check_linearizable, &r);
  EXPECT_FALSE(r.valid);
  EXPECT_LT(s, 10.0);
}

TEST(PerfTest, UniformKeys) {
  run_all(false);
}
TEST(PerfTest, OneHotKey) {
  run_all(true);
}
// One operation in ten times out: info ops linger across the search's cuts.
TEST(PerfTest, OneHotKeyManyTimeouts) {
  run_all(true, 0.1);
}

}  // namespace
}  // namespace statekv::check
