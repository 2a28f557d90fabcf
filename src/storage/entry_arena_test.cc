#include "storage/entry_arena.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace statekv::storage {
namespace {

TEST(EntryArena, BlocksOfAClassShareSlabsWithoutHeaders) {
  EntryArena arena;
  EXPECT_EQ(arena.slab_bytes(), 0u);
  std::vector<char*> blocks;
  for (int i = 0; i < 100; ++i) blocks.push_back(arena.allocate(31));
  EXPECT_EQ(arena.slab_bytes(), EntryArena::kSlabBytes);
  // A 31-byte entry takes 32 bytes, next to the one before.
  for (size_t i = 1; i < blocks.size(); ++i) EXPECT_EQ(blocks[i] - blocks[i - 1], 32);
  EXPECT_EQ(EntryArena::held_bytes(blocks[0], 31), 32u);
  EXPECT_EQ(EntryArena::held_bytes(blocks[0], 24), 24u);
  EXPECT_EQ(EntryArena::held_bytes(blocks[0], 1), 8u);
  // Another class, another slab.
  char* other = arena.allocate(24);
  EXPECT_EQ(arena.slab_bytes(), 2 * EntryArena::kSlabBytes);
  arena.release(other, 24);
  // A released block is the next one handed out.
  arena.release(blocks[50], 31);
  EXPECT_EQ(arena.allocate(25), blocks[50]);  // 25..32 bytes: the same class
  for (char* b : blocks) arena.release(b, 32);
  EXPECT_EQ(arena.slab_bytes(), 2 * EntryArena::kSlabBytes);  // each class keeps one
}

TEST(EntryArena, SameBlockClass) {
  EXPECT_TRUE(EntryArena::same_block_class(25, 32));
  EXPECT_FALSE(EntryArena::same_block_class(24, 25));
  EXPECT_TRUE(EntryArena::same_block_class(1, 8));
  EXPECT_TRUE(EntryArena::same_block_class(EntryArena::kMaxSlabBlock + 1, 100000));
  EXPECT_FALSE(EntryArena::same_block_class(EntryArena::kMaxSlabBlock, 100000));
}

TEST(EntryArena, LargeBlocksAreMallocs) {
  EntryArena arena;
  char* big = arena.allocate(1000);
  EXPECT_EQ(arena.slab_bytes(), 0u);
  std::memset(big, 'x', 1000);
  big = arena.reallocate(big, 5000);
  EXPECT_EQ(big[999], 'x');
  EXPECT_GE(EntryArena::usable_bytes(big), 5000u);
  arena.release(big, 5000);
}

// Random allocations and releases of every class: no two live blocks overlap,
// every live block keeps its bytes, and emptied slabs go back to the pool
// (all of them once everything is released but one slab per class).
TEST(EntryArena, RandomChurnKeepsBlocksApartAndReturnsEmptySlabs) {
  EntryArena arena;
  const size_t pool_before = slab_pool_bytes();
  std::mt19937_64 rng(7);
  std::map<char*, size_t> live;  // block -> size
  auto check_apart = [&] {
    char* end = nullptr;
    for (const auto& [b, size] : live) {
      ASSERT_GE(b, end) << "blocks overlap";
      end = b + size;
      for (size_t i = 0; i < size; ++i) {
        ASSERT_EQ(b[i], static_cast<char>(size)) << "a block's bytes changed";
      }
    }
  };
  for (int step = 0; step < 200000; ++step) {
    if (live.empty() || rng() % 100 < 55) {
      const size_t size = 1 + rng() % EntryArena::kMaxSlabBlock;
      char* b = arena.allocate(size);
      std::memset(b, static_cast<char>(size), size);
      ASSERT_TRUE(live.emplace(b, size).second) << "a live block handed out twice";
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % std::min<size_t>(live.size(), 64)));
      arena.release(it->first, it->second);
      live.erase(it);
    }
    if (step % 50000 == 0) check_apart();
  }
  check_apart();
  EXPECT_GT(arena.slab_bytes(), 0u);
  EXPECT_EQ(slab_pool_bytes() - pool_before, arena.slab_bytes());
  for (const auto& [b, size] : live) arena.release(b, size);
  // One empty slab per class at most.
  EXPECT_LE(arena.slab_bytes(), 32 * EntryArena::kSlabBytes);
  arena.release_all();
  EXPECT_EQ(arena.slab_bytes(), 0u);
  EXPECT_EQ(slab_pool_bytes(), pool_before);
}

}  // namespace
}  // namespace statekv::storage
