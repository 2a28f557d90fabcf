#include "core/allocator.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

namespace statekv {
namespace {

// Test binaries are not linked with jemalloc: glibc's counters answer.
TEST(Allocator, CountsWhatTheProgramHolds) {
  const AllocatorStats before = allocator_stats();
  EXPECT_EQ(before.name, "libc");
  constexpr size_t kBytes = 16u << 20;
  char* block = static_cast<char*>(std::malloc(kBytes));
  ASSERT_NE(block, nullptr);
  std::memset(block, 1, kBytes);
  const AllocatorStats holding = allocator_stats();
  EXPECT_GE(holding.allocated_bytes, before.allocated_bytes + kBytes);
  std::free(block);
  EXPECT_LT(allocator_stats().allocated_bytes, holding.allocated_bytes);
}

}  // namespace
}  // namespace statekv
