#include "storage/durability_tracker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace statekv::storage {
namespace {

TEST(DurabilityTracker, RunsCoveredCallbacksOnceInOrder) {
  DurabilityTracker t;
  std::vector<int> ran;
  t.when_durable(0, [&] { ran.push_back(0); });  // already covered: runs now
  EXPECT_EQ(ran, std::vector<int>{0});
  t.when_durable(5, [&] { ran.push_back(5); });
  t.when_durable(2, [&] { ran.push_back(2); });
  t.when_durable(9, [&] { ran.push_back(9); });
  EXPECT_EQ(t.pending(), 3u);
  t.advance(6);
  EXPECT_EQ(ran, (std::vector<int>{0, 2, 5}));
  t.advance(3);  // never goes back
  EXPECT_EQ(t.durable(), 6u);
  t.advance(9);
  EXPECT_EQ(ran, (std::vector<int>{0, 2, 5, 9}));
  EXPECT_EQ(t.pending(), 0u);
}

// Registration racing with advance() must never strand a callback.
TEST(DurabilityTracker, NoCallbackStrandedUnderRaces) {
  DurabilityTracker t;
  constexpr int kSeqs = 20000;
  std::atomic<int> ran{0};
  std::thread advancer([&] {
    for (Sequence s = 1; s <= kSeqs; ++s) t.advance(s);
  });
  std::vector<std::thread> registrars;
  for (int r = 0; r < 2; ++r) {
    registrars.emplace_back([&, r] {
      for (Sequence s = 1 + r; s <= kSeqs; s += 2) t.when_durable(s, [&] { ran.fetch_add(1); });
    });
  }
  for (auto& th : registrars) th.join();
  advancer.join();
  // Every sequence was covered by the advancer's last call; nothing may still wait.
  EXPECT_EQ(t.pending(), 0u);
  EXPECT_EQ(ran.load(), kSeqs);
}

// A failed sync: whoever waits hears at once, and so does whoever asks later;
// the durable point stays where it was, which is how a callback tells.
TEST(DurabilityTracker, AFailureReleasesEveryWaiterWithoutCoveringIt) {
  DurabilityTracker t;
  t.advance(5);
  int ran = 0;
  t.when_durable(7, [&] { ++ran; });
  t.when_durable(9, [&] { ++ran; });
  EXPECT_EQ(ran, 0);
  t.fail();
  EXPECT_TRUE(t.failed());
  EXPECT_EQ(ran, 2);
  EXPECT_EQ(t.pending(), 0u);
  EXPECT_EQ(t.durable(), 5u);
  t.when_durable(12, [&] { ++ran; });
  EXPECT_EQ(ran, 3);
}

// The engine resumed (the disk had room again): what it wrote is durable up
// to the point it gives, and a later waiter waits again.
TEST(DurabilityTracker, ARecoveryCoversItsPointAndWaitsAgainAfter) {
  DurabilityTracker t;
  t.advance(5);
  t.fail();
  t.recover(8);
  EXPECT_FALSE(t.failed());
  EXPECT_EQ(t.durable(), 8u);
  int ran = 0;
  t.when_durable(8, [&] { ++ran; });
  EXPECT_EQ(ran, 1);  // covered
  t.when_durable(10, [&] { ++ran; });
  EXPECT_EQ(ran, 1);  // waits, as before the failure
  EXPECT_EQ(t.pending(), 1u);
  t.advance(10);
  EXPECT_EQ(ran, 2);
}

// fail() racing registrations: no callback is stranded.
TEST(DurabilityTracker, AFailureRacingRegistrationsStrandsNothing) {
  for (int round = 0; round < 50; ++round) {
    DurabilityTracker t;
    std::atomic<int> ran{0};
    std::thread registrar([&] {
      for (Sequence s = 1; s <= 2000; ++s) t.when_durable(s, [&] { ran.fetch_add(1); });
    });
    t.fail();
    registrar.join();
    EXPECT_EQ(ran.load(), 2000);
    EXPECT_EQ(t.pending(), 0u);
  }
}

}  // namespace
}  // namespace statekv::storage
