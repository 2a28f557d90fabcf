#include "cache/frequency_sketch.h"

#include <gtest/gtest.h>

namespace statekv::cache {
namespace {

uint64_t h(uint64_t i) {
  return i * 0x9e3779b97f4a7c15ULL + 17;
}

TEST(FrequencySketch, FirstOccurrenceGoesToTheDoorkeeperOnly) {
  FrequencySketch sketch(1024);
  EXPECT_EQ(sketch.frequency(h(1)), 0u);
  sketch.increment(h(1));
  EXPECT_EQ(sketch.frequency(h(1)), 1u);  // the doorkeeper's bit
  sketch.increment(h(1));
  EXPECT_EQ(sketch.frequency(h(1)), 2u);
}

TEST(FrequencySketch, CountsSaturateAtFifteenPlusTheDoorkeeper) {
  FrequencySketch sketch(1024);
  for (int i = 0; i < 100; ++i) sketch.increment(h(7));
  EXPECT_EQ(sketch.frequency(h(7)), 16u);
}

TEST(FrequencySketch, HotKeysEstimateAboveColdOnes) {
  FrequencySketch sketch(4096);
  for (uint64_t i = 0; i < 2000; ++i) sketch.increment(h(100000 + i));  // one-hit wonders
  for (int r = 0; r < 8; ++r) {
    for (uint64_t i = 0; i < 50; ++i) sketch.increment(h(i));
  }
  for (uint64_t i = 0; i < 50; ++i) EXPECT_GE(sketch.frequency(h(i)), 8u) << i;
  int overestimated = 0;
  for (uint64_t i = 0; i < 2000; ++i) overestimated += sketch.frequency(h(100000 + i)) > 2;
  EXPECT_LT(overestimated, 20);
}

TEST(FrequencySketch, AgingHalvesCountsAndClearsTheDoorkeeper) {
  FrequencySketch sketch(16);                           // sample size 160
  for (int i = 0; i < 11; ++i) sketch.increment(h(1));  // 10 in the sketch + doorkeeper
  ASSERT_EQ(sketch.frequency(h(1)), 11u);
  ASSERT_EQ(sketch.resets(), 0u);
  for (uint64_t i = 0; sketch.resets() == 0; ++i) sketch.increment(h(1000 + i));
  // 10 halves to 5 (collisions can only raise it a little); the doorkeeper is empty.
  EXPECT_GE(sketch.frequency(h(1)), 5u);
  EXPECT_LE(sketch.frequency(h(1)), 7u);
}

}  // namespace
}  // namespace statekv::cache
