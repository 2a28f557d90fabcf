// Memory for the memory engine's entries (storage/memory_entry.h).
//
// An entry of up to kMaxSlabBlock bytes is a block of a slab: 64 KiB holding
// blocks of one size class (a multiple of 8 bytes), with no header per block.
// malloc would round the same entry up to a 16-byte step and add its 8-byte
// chunk header: a 31-byte entry costs 48 bytes there and 32 here, a 23-byte
// one 32 and 24. Across the engine's entries that is 8 to 16 bytes each, what
// keeps a large collection under Redis's memory (docs/data-types.md,
// "Memory"). Larger entries are malloc's.
//
// Each memory-engine stripe owns one arena and uses it under its lock: an arena
// is not thread-safe. Its slabs come from a process-wide pool (slab_pool_bytes)
// that maps memory in 4 MiB regions and takes a slab back as soon as its last
// block is released, returning its pages to the kernel, so deleting data lowers
// the resident size as free() would. A slab with free blocks is reused before a
// new one is taken; a freed block is reused before untouched space.
//
// A block is released with the size it was allocated for, or with any size of
// the same class (block_capacity): the caller keeps an entry in its block only
// while its size stays in that class. Entries need no alignment beyond 8.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace statekv::storage {

class EntryArena {
 public:
  // Blocks up to this size come from slabs; larger ones from malloc.
  static constexpr size_t kMaxSlabBlock = 256;
  static constexpr size_t kSlabBytes = size_t{64} << 10;

  EntryArena() = default;
  ~EntryArena() { release_all(); }
  EntryArena(const EntryArena&) = delete;
  EntryArena& operator=(const EntryArena&) = delete;

  // A block of at least `size` bytes (size >= 1). Throws std::bad_alloc when
  // memory runs out, as operator new does.
  char* allocate(size_t size);
  // Returns a block allocate(size) handed out (or allocate(s) with s of the
  // same class: same_block_class(s, size)).
  void release(char* block, size_t size);
  // Whether a block allocated for `a` bytes may keep holding `b` bytes: the
  // same slab class, or both above kMaxSlabBlock (malloc's, whose block grows
  // and shrinks through realloc: reallocate).
  static bool same_block_class(size_t a, size_t b);
  // A malloc'd block (sizes above kMaxSlabBlock) resized to `size` (> kMaxSlabBlock).
  char* reallocate(char* block, size_t size);
  // Bytes the block holds for an entry of `size` bytes: its class, or malloc's
  // usable size plus glibc's chunk header word (8 bytes too many on jemalloc,
  // which keeps its metadata apart: core/allocator.h).
  static size_t held_bytes(const char* block, size_t size);
  // Bytes a malloc'd block may hold (sizes above kMaxSlabBlock only).
  static size_t usable_bytes(const char* block);

  // Every block this arena handed out is released at once (the blocks are not
  // visited: malloc'd ones must have been released one by one first).
  void release_all();
  // Slabs this arena holds, in bytes.
  size_t slab_bytes() const { return slabs_ * kSlabBytes; }

 private:
  struct Slab;
  static constexpr size_t kClasses = kMaxSlabBlock / 8;
  static size_t class_of(size_t size) { return (size + 7) / 8 - 1; }

  void unlink(Slab* slab);
  void link(Slab* slab);

  // Per class: the slabs with a free block, most recently changed first.
  std::array<Slab*, kClasses> open_{};
  // Every slab this arena holds (release_all walks them).
  Slab* all_ = nullptr;
  size_t slabs_ = 0;
};

// Bytes of slabs the pool has handed out to arenas and not taken back (for INFO
// used_memory, beside malloc's own count).
size_t slab_pool_bytes();

}  // namespace statekv::storage
