#include <gtest/gtest.h>

#include "check/checkers.h"
#include "check/test_histories.h"

namespace statekv::check {
namespace {

using testing::HistoryBuilder;

TEST(CausalTest, EffectSeenBeforeItsCause) {
  // p1 writes x=1 then y=1; p2 sees y=1 but then x absent: the write of x is in
  // its causal past.
  HistoryBuilder b;
  b.write(1, "x", "x1", 0, 10)
      .write(1, "y", "y1", 20, 30)
      .read(2, "y", "y1", 40, 50)
      .read(2, "x", std::nullopt, 60, 70);
  auto r = check_causal(b.ops());
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.explanation.find("causal order broken on key x"), std::string::npos) << r.explanation;
  // With x=1 visible, all is well.
  HistoryBuilder ok;
  ok.write(1, "x", "x1", 0, 10)
      .write(1, "y", "y1", 20, 30)
      .read(2, "y", "y1", 40, 50)
      .read(2, "x", "x1", 60, 70);
  EXPECT_TRUE(check_causal(ok.ops()).valid);
}

TEST(CausalTest, OverwrittenValueInCausalPast) {
  // p3 overwrote a with b after reading a; p2 sees p3's later write on z, then a.
  HistoryBuilder b;
  b.write(1, "x", "a", 0, 10)
      .read(3, "x", "a", 20, 30)
      .write(3, "x", "b", 40, 50)
      .write(3, "z", "z1", 60, 70)
      .read(2, "z", "z1", 80, 90)
      .read(2, "x", "a", 100, 110);
  EXPECT_FALSE(check_causal(b.ops()).valid);
  // Concurrent writes may be seen in any order.
  HistoryBuilder c;
  c.write(1, "x", "a", 0, 10)
      .write(3, "x", "b", 0, 10)
      .read(2, "x", "b", 20, 30)
      .read(2, "x", "a", 40, 50);
  EXPECT_TRUE(check_causal(c.ops()).valid);
}

TEST(CausalTest, CausalCycle) {
  // Each process reads the other's write before making it: impossible.
  HistoryBuilder b;
  b.read(1, "x", "a", 0, 10)
      .write(1, "y", "b", 20, 30)
      .read(2, "y", "b", 0, 10)
      .write(2, "x", "a", 20, 30);
  auto r = check_causal(b.ops());
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.explanation.find("cycle"), std::string::npos) << r.explanation;
}

TEST(CausalTest, NeverWrittenValue) {
  HistoryBuilder b;
  b.write(1, "x", "a", 0, 10, EventType::kFail).read(2, "x", "a", 20, 30);
  EXPECT_FALSE(check_causal(b.ops()).valid);
  EXPECT_FALSE(check_session(b.ops()).valid);
}

}  // namespace
}  // namespace statekv::check
