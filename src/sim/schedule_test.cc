#include "sim/schedule.h"

#include <gtest/gtest.h>

namespace statekv::sim {
namespace {

constexpr SimTime kMs = 1'000'000;

TEST(Schedule, ParsesTheDocumentedExample) {
  auto s = parse_schedule(R"(
# a comment
at 1.5s partition {1,2} | {3}
at 2s   oneway 1 -> 3 drop
at 3s   crash 2
at 3.5s restart 2
at 4s   heal
at 4s   loss 0.05   # trailing comment
at 200ms dup 0.1
)",
                          3);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  ASSERT_EQ(s->actions.size(), 7u);
  // Sorted by time; equal times keep their written order.
  EXPECT_EQ(s->actions[0].kind, FaultAction::Kind::kDuplicate);
  EXPECT_EQ(s->actions[0].at, 200 * kMs);
  EXPECT_EQ(s->actions[1].kind, FaultAction::Kind::kPartition);
  EXPECT_EQ(s->actions[1].at, 1500 * kMs);
  ASSERT_EQ(s->actions[1].groups.size(), 2u);
  EXPECT_EQ(s->actions[1].groups[0], (std::vector<NodeId>{NodeId(1), NodeId(2)}));
  EXPECT_EQ(s->actions[2].kind, FaultAction::Kind::kOnewayDrop);
  EXPECT_EQ(s->actions[2].node, NodeId(1));
  EXPECT_EQ(s->actions[2].to, NodeId(3));
  EXPECT_EQ(s->actions[3].kind, FaultAction::Kind::kCrash);
  EXPECT_EQ(s->actions[4].kind, FaultAction::Kind::kRestart);
  EXPECT_EQ(s->actions[5].kind, FaultAction::Kind::kHeal);
  EXPECT_EQ(s->actions[6].kind, FaultAction::Kind::kLoss);
  EXPECT_DOUBLE_EQ(s->actions[6].probability, 0.05);
}

TEST(Schedule, TextRoundTrips) {
  auto s = parse_schedule(
      "at 1ms partition {1} | {2,3}\nat 2ms oneway 2 -> 1 pass\nat 3us crash 3\nat 5s reorder "
      "0.25\n",
      3);
  ASSERT_TRUE(s.ok());
  auto again = parse_schedule(s->to_text(), 3);
  ASSERT_TRUE(again.ok()) << again.status().to_string() << "\n" << s->to_text();
  EXPECT_EQ(again->to_text(), s->to_text());
}

TEST(Schedule, ErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* fragment;
  };
  for (const Case& c : {Case{"at 1s heal\nat 2s crash 4\n", "line 2: node 4 out of range"},
                        Case{"at 1x heal\n", "line 1: '1x' is not a duration"},
                        Case{"at 1s explode 2\n", "unknown action 'explode'"},
                        Case{"at 1s loss 1.5\n", "not a probability"},
                        Case{"at 1s partition {1,2} | {2}\n", "node 2 in two groups"},
                        Case{"at 1s oneway 1 3 drop\n", "expected 'oneway A -> B"},
                        Case{"heal\n", "expected 'at TIME ACTION"}}) {
    auto s = parse_schedule(c.text, 3);
    ASSERT_FALSE(s.ok()) << c.text;
    EXPECT_NE(s.status().message().find(c.fragment), std::string::npos)
        << s.status().message() << " should contain " << c.fragment;
  }
}

TEST(Schedule, RandomScheduleKeepsAMajorityUpAndEndsHealed) {
  FaultSet all = *parse_fault_set("all");
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Random rng(seed);
    const SimTime horizon = 5000 * kMs;
    FaultSchedule s = random_schedule(rng, 5, all, horizon);
    std::vector<bool> down(6, false);
    bool healed_at_end = false;
    for (const FaultAction& a : s.actions) {
      ASSERT_LE(a.at, horizon);
      if (a.kind == FaultAction::Kind::kCrash) down[a.node.value()] = true;
      if (a.kind == FaultAction::Kind::kRestart) down[a.node.value()] = false;
      ASSERT_LE(std::count(down.begin(), down.end(), true), 2) << "seed " << seed;
      if (a.at == horizon && a.kind == FaultAction::Kind::kHeal) healed_at_end = true;
    }
    EXPECT_EQ(std::count(down.begin(), down.end(), true), 0) << "seed " << seed;
    EXPECT_TRUE(healed_at_end);
    // Replayable: the text form parses back to the same schedule.
    auto again = parse_schedule(s.to_text(), 5);
    ASSERT_TRUE(again.ok()) << again.status().to_string();
    EXPECT_EQ(again->to_text(), s.to_text());
  }
}

TEST(Schedule, FaultSetParsing) {
  auto f = parse_fault_set("loss,crash,clock");
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->loss && f->crash && f->clock);
  EXPECT_FALSE(f->partition);
  EXPECT_EQ(f->to_string(), "loss,crash,clock");
  EXPECT_FALSE(parse_fault_set("none")->any());
  EXPECT_FALSE(parse_fault_set("loss,bogus").ok());
}

}  // namespace
}  // namespace statekv::sim
