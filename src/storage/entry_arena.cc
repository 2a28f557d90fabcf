#include "storage/entry_arena.h"

#include <malloc.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "core/assert.h"

namespace statekv::storage {

namespace {

// Slabs are mapped this many at a time, aligned to their size so that a block's
// slab is its address rounded down.
constexpr size_t kRegionBytes = size_t{4} << 20;

class SlabPool {
 public:
  static SlabPool& instance() {
    static SlabPool* pool = new SlabPool();  // never destroyed: arenas may outlive statics
    return *pool;
  }

  void* take() {
    std::lock_guard lock(mu_);
    if (free_.empty()) map_region();
    void* slab = free_.back();
    free_.pop_back();
    handed_.fetch_add(EntryArena::kSlabBytes, std::memory_order_relaxed);
    return slab;
  }

  void give(void* slab) {
    // Its pages go back to the kernel now; the range stays mapped for reuse.
    ::madvise(slab, EntryArena::kSlabBytes, MADV_DONTNEED);
    std::lock_guard lock(mu_);
    free_.push_back(slab);
    handed_.fetch_sub(EntryArena::kSlabBytes, std::memory_order_relaxed);
  }

  size_t handed() const { return handed_.load(std::memory_order_relaxed); }

 private:
  void map_region() {
    // Map one slab more than the region and trim, for the alignment.
    const size_t span = kRegionBytes + EntryArena::kSlabBytes;
    void* raw = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned =
        (start + EntryArena::kSlabBytes - 1) & ~(uintptr_t{EntryArena::kSlabBytes} - 1);
    if (aligned > start) ::munmap(raw, aligned - start);
    const uintptr_t end = start + span;
    if (end > aligned + kRegionBytes) {
      ::munmap(reinterpret_cast<void*>(aligned + kRegionBytes), end - aligned - kRegionBytes);
    }
    // Handed out from the region's start: the pages touched first are together.
    for (size_t i = kRegionBytes / EntryArena::kSlabBytes; i-- > 0;) {
      free_.push_back(reinterpret_cast<void*>(aligned + i * EntryArena::kSlabBytes));
    }
  }

  std::mutex mu_;
  std::vector<void*> free_;  // guarded by mu_
  std::atomic<size_t> handed_{0};
};

}  // namespace

// The slab's header, at its start; blocks follow from kHeaderBytes.
struct EntryArena::Slab {
  Slab* prev_open = nullptr;  // in open_[class] while a block is free
  Slab* next_open = nullptr;
  Slab* prev_all = nullptr;  // in all_
  Slab* next_all = nullptr;
  char* free_list = nullptr;  // released blocks, each holding the next's address
  uint32_t live = 0;          // blocks handed out and not released
  uint32_t untouched = 0;     // offset of the space never handed out
  uint32_t block = 0;         // the class's block size
  bool open = false;

  bool full() const { return free_list == nullptr && untouched + block > kSlabBytes; }
};

namespace {
constexpr uint32_t kHeaderBytes = 64;  // the Slab header, padded to a cache line
}  // namespace

void EntryArena::link(Slab* slab) {
  const size_t c = class_of(slab->block);
  slab->prev_open = nullptr;
  slab->next_open = open_[c];
  if (open_[c] != nullptr) open_[c]->prev_open = slab;
  open_[c] = slab;
  slab->open = true;
}

void EntryArena::unlink(Slab* slab) {
  const size_t c = class_of(slab->block);
  if (slab->prev_open != nullptr) {
    slab->prev_open->next_open = slab->next_open;
  } else {
    open_[c] = slab->next_open;
  }
  if (slab->next_open != nullptr) slab->next_open->prev_open = slab->prev_open;
  slab->prev_open = slab->next_open = nullptr;
  slab->open = false;
}

char* EntryArena::allocate(size_t size) {
  if (size > kMaxSlabBlock) {
    char* block = static_cast<char*>(std::malloc(size));
    if (block == nullptr) throw std::bad_alloc();
    return block;
  }
  const size_t c = class_of(size);
  Slab* slab = open_[c];
  if (slab == nullptr) {
    static_assert(sizeof(Slab) <= kHeaderBytes);
    slab = new (SlabPool::instance().take()) Slab();
    slab->block = static_cast<uint32_t>((c + 1) * 8);
    slab->untouched = kHeaderBytes;
    slab->next_all = all_;
    if (all_ != nullptr) all_->prev_all = slab;
    all_ = slab;
    ++slabs_;
    link(slab);
  }
  char* block;
  if (slab->free_list != nullptr) {
    block = slab->free_list;
    std::memcpy(&slab->free_list, block, sizeof(char*));
  } else {
    block = reinterpret_cast<char*>(slab) + slab->untouched;
    slab->untouched += slab->block;
  }
  ++slab->live;
  if (slab->full()) unlink(slab);
  return block;
}

void EntryArena::release(char* block, size_t size) {
  if (size > kMaxSlabBlock) {
    std::free(block);
    return;
  }
  auto* slab = reinterpret_cast<Slab*>(reinterpret_cast<uintptr_t>(block) &
                                       ~(uintptr_t{kSlabBytes} - 1));
  SKV_ASSERT(slab->block == (class_of(size) + 1) * 8 && slab->live > 0,
             "entry arena: block released with another class");
  std::memcpy(block, &slab->free_list, sizeof(char*));
  slab->free_list = block;
  --slab->live;
  if (!slab->open) link(slab);
  // An empty slab goes back to the pool unless it is its class's only open
  // one: a block allocated and released over and over (a key set and deleted)
  // would otherwise take and give a slab, a page fault and a syscall, each time.
  if (slab->live == 0 && (slab->prev_open != nullptr || slab->next_open != nullptr)) {
    unlink(slab);
    if (slab->prev_all != nullptr) {
      slab->prev_all->next_all = slab->next_all;
    } else {
      all_ = slab->next_all;
    }
    if (slab->next_all != nullptr) slab->next_all->prev_all = slab->prev_all;
    --slabs_;
    slab->~Slab();
    SlabPool::instance().give(slab);
  }
}

bool EntryArena::same_block_class(size_t a, size_t b) {
  if (a > kMaxSlabBlock || b > kMaxSlabBlock) return a > kMaxSlabBlock && b > kMaxSlabBlock;
  return class_of(a) == class_of(b);
}

char* EntryArena::reallocate(char* block, size_t size) {
  SKV_ASSERT(size > kMaxSlabBlock, "entry arena: reallocate of a slab block");
  char* moved = static_cast<char*>(std::realloc(block, size));
  if (moved == nullptr) throw std::bad_alloc();
  return moved;
}

size_t EntryArena::held_bytes(const char* block, size_t size) {
  if (size <= kMaxSlabBlock) return (class_of(size) + 1) * 8;
  return usable_bytes(block) + sizeof(size_t);  // glibc's chunk header word
}

size_t EntryArena::usable_bytes(const char* block) {
  return malloc_usable_size(const_cast<char*>(block));
}

void EntryArena::release_all() {
  for (Slab* slab = all_; slab != nullptr;) {
    Slab* next = slab->next_all;
    slab->~Slab();
    SlabPool::instance().give(slab);
    slab = next;
  }
  all_ = nullptr;
  open_.fill(nullptr);
  slabs_ = 0;
}

size_t slab_pool_bytes() {
  return SlabPool::instance().handed();
}

}  // namespace statekv::storage
