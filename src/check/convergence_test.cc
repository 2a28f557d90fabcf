#include <gtest/gtest.h>

#include "check/checkers.h"
#include "check/test_histories.h"

namespace statekv::check {
namespace {

using testing::HistoryBuilder;

TEST(ConvergenceTest, ReplicasDivergedAfterTheHeal) {
  HistoryBuilder b;
  b.write(1, "k", "a", 0, 10)
      .write(2, "k", "b", 0, 10)
      .read(3, "k", "a", 100, 110)
      .node(1)
      .read(4, "k", "b", 100, 110)
      .node(2);
  auto r = check_convergence(b.ops());
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.explanation.find("replicas diverged on key k"), std::string::npos) << r.explanation;
}

TEST(ConvergenceTest, OnlyTheLastReadOfEachNodeCounts) {
  HistoryBuilder b;
  b.read(3, "k", "a", 50, 60)
      .node(1)
      .read(3, "k", "b", 100, 110)
      .node(1)
      .read(4, "k", "b", 100, 110)
      .node(2)
      .read(4, "j", std::nullopt, 100, 110)
      .node(2);
  auto r = check_convergence(b.ops());
  EXPECT_TRUE(r.valid) << r.explanation;
  EXPECT_EQ(r.stats.keys, 2);
}

TEST(ConvergenceTest, FinalSessionWhenMarked) {
  // The unmarked later read on node 2 is ignored once reads are marked final.
  HistoryBuilder b;
  b.read(3, "k", "b", 50, 60)
      .node(1)
      .session("final")
      .read(4, "k", "b", 50, 60)
      .node(2)
      .session("final")
      .read(4, "k", "a", 100, 110)
      .node(2);
  EXPECT_TRUE(check_convergence(b.ops()).valid);
  HistoryBuilder c;
  c.read(3, "k", "b", 50, 60)
      .node(1)
      .session("final")
      .read(4, "k", std::nullopt, 50, 60)
      .node(2)
      .session("final");
  EXPECT_FALSE(check_convergence(c.ops()).valid);
}

TEST(ConvergenceTest, NoFinalReadsIsNotConvergence) {
  HistoryBuilder b;
  b.write(1, "k", "a", 0, 10).read(2, "k", "a", 20, 30);
  auto r = check_convergence(b.ops());
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.explanation.find("no final reads"), std::string::npos);
}

}  // namespace
}  // namespace statekv::check
