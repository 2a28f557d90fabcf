#include "coord/leader_balance.h"

#include <gtest/gtest.h>

#include <set>

namespace statekv::coord {
namespace {

LeaderBalanceView view_with(std::set<NodeId> up) {
  LeaderBalanceView v;
  v.self = NodeId(2);
  v.members = {NodeId(1), NodeId(2), NodeId(3)};
  v.match = {{NodeId(1), LogIndex(40)}, {NodeId(3), LogIndex(40)}};
  v.last_index = LogIndex(40);
  v.reachable = [up](NodeId n) { return up.contains(n); };
  return v;
}

TEST(LeaderBalance, HandsOverToAnUpToDateReachablePreferredLeader) {
  EXPECT_EQ(leadership_handover_target(view_with({NodeId(1), NodeId(3)})), NodeId(1));
}

// The CI failure: an idle group's preferred leader cut off by a partition
// still matches the leader's whole log; a handover to it would leave the
// majority side unable to write.
TEST(LeaderBalance, NeverHandsOverToAnUnreachablePreferredLeaderEvenIfItMatchesTheLog) {
  EXPECT_EQ(leadership_handover_target(view_with({NodeId(3)})), std::nullopt);
  LeaderBalanceView v = view_with({});
  v.reachable = nullptr;
  EXPECT_EQ(leadership_handover_target(v), std::nullopt);
}

// Receiving or restoring a snapshot busies the preferred leader's node (its
// restore held the data loop, which all of its groups share, until it moved
// to a thread of its own): the group waits until it is done.
TEST(LeaderBalance, KeepsLeadershipWhileThePreferredLeaderReceivesASnapshotElsewhere) {
  LeaderBalanceView v = view_with({NodeId(1), NodeId(3)});
  v.receiving_snapshot = [](NodeId n) { return n == NodeId(1); };
  EXPECT_EQ(leadership_handover_target(v), std::nullopt);
  v.receiving_snapshot = [](NodeId n) { return n == NodeId(3); };
  EXPECT_EQ(leadership_handover_target(v), NodeId(1));
}

TEST(LeaderBalance, KeepsLeadershipWhileThePreferredLeaderLacksEntries) {
  LeaderBalanceView v = view_with({NodeId(1), NodeId(3)});
  v.match[NodeId(1)] = LogIndex(39);
  EXPECT_EQ(leadership_handover_target(v), std::nullopt);
  v.match.erase(NodeId(1));  // not heard from since this leader's term began
  EXPECT_EQ(leadership_handover_target(v), std::nullopt);
}

// A handover while another member catches up (after a snapshot, say) would
// cost it another snapshot: the new leader's log starts where it compacted.
TEST(LeaderBalance, KeepsLeadershipWhileAnotherReachableMemberOrLearnerLacksEntries) {
  LeaderBalanceView v = view_with({NodeId(1), NodeId(3), NodeId(4)});
  v.match[NodeId(3)] = LogIndex(38);
  EXPECT_EQ(leadership_handover_target(v), std::nullopt);
  v.match[NodeId(3)] = LogIndex(40);
  v.learners[NodeId(4)] = LogIndex(12);  // joining: restored a snapshot at 12
  EXPECT_EQ(leadership_handover_target(v), std::nullopt);
  v.learners[NodeId(4)] = LogIndex(40);
  EXPECT_EQ(leadership_handover_target(v), NodeId(1));
  // One that is down waits for nothing.
  v.learners[NodeId(4)] = LogIndex(12);
  v.reachable = [](NodeId n) { return n != NodeId(4); };
  EXPECT_EQ(leadership_handover_target(v), NodeId(1));
}

TEST(LeaderBalance, ThePreferredLeaderItselfAndAGroupWithoutMembersKeepTheirLeadership) {
  LeaderBalanceView v = view_with({NodeId(1), NodeId(3)});
  v.self = NodeId(1);
  EXPECT_EQ(leadership_handover_target(v), std::nullopt);
  v.members.clear();
  EXPECT_EQ(leadership_handover_target(v), std::nullopt);
}

TEST(LeaderBalance, APlannedStopHandsToTheReachableFollowerFurthestAlong) {
  LeaderBalanceView v = view_with({NodeId(1), NodeId(3)});
  v.match = {{NodeId(1), LogIndex(38)}, {NodeId(3), LogIndex(40)}};
  EXPECT_EQ(stop_handover_target(v), NodeId(3));
  v.reachable = [](NodeId n) { return n == NodeId(1); };  // node 3 is cut off
  EXPECT_EQ(stop_handover_target(v), NodeId(1));
  v.reachable = [](NodeId) { return false; };
  EXPECT_EQ(stop_handover_target(v), std::nullopt);
  v.reachable = [](NodeId) { return true; };
  v.match.clear();
  EXPECT_EQ(stop_handover_target(v), std::nullopt);
}

// A preferred leader that can be heard but cannot win (a one-way partition):
// each failed handover doubles the wait before the next, up to a limit;
// another target, or the group led elsewhere, starts afresh.
TEST(HandoverBackoff, FailedHandoversToOneNodeAreSpacedOutAndSuccessForgetsThem) {
  using namespace std::chrono_literals;
  HandoverBackoff b;
  const auto t0 = HandoverBackoff::Clock::now();
  EXPECT_TRUE(b.may_try(7, NodeId(1), t0));
  b.tried(7, NodeId(1), t0);
  EXPECT_FALSE(b.may_try(7, NodeId(1), t0 + 500ms)) << "one try at a time";
  b.leading(7, t0 + 1s);  // still leading a round later: it failed
  EXPECT_EQ(b.failures(7), 1u);
  EXPECT_FALSE(b.may_try(7, NodeId(1), t0 + 2s));
  EXPECT_TRUE(b.may_try(7, NodeId(1), t0 + 3s));
  EXPECT_TRUE(b.may_try(7, NodeId(3), t0 + 1s)) << "another target is not held back";
  EXPECT_TRUE(b.may_try(8, NodeId(1), t0 + 1s)) << "another group is not held back";
  // Failing again and again: 4 s, 8 s, ... at most kMaxWait.
  auto now = t0 + 3s;
  std::vector<std::chrono::seconds> waits;
  for (int i = 0; i < 8; ++i) {
    b.tried(7, NodeId(1), now);
    now += 1s;
    b.leading(7, now);
    auto next = now;
    while (!b.may_try(7, NodeId(1), next)) next += 1s;
    waits.push_back(std::chrono::duration_cast<std::chrono::seconds>(next - now));
    now = next;
  }
  EXPECT_EQ(waits.front(), 4s);
  EXPECT_EQ(waits[1], 8s);
  EXPECT_EQ(waits.back(), HandoverBackoff::kMaxWait);
  // Leading without a try outstanding is no failure.
  const uint32_t failures = b.failures(7);
  b.leading(7, now + 10s);
  EXPECT_EQ(b.failures(7), failures);
  // The group led elsewhere (the handover took): forgotten.
  b.not_leading(7);
  EXPECT_EQ(b.failures(7), 0u);
  EXPECT_TRUE(b.may_try(7, NodeId(1), now));
  // A try to another node starts its own count.
  b.tried(9, NodeId(1), now);
  b.leading(9, now + 1s);
  b.tried(9, NodeId(3), now + 1s);
  b.leading(9, now + 2s);
  EXPECT_EQ(b.failures(9), 1u);
}

}  // namespace
}  // namespace statekv::coord
