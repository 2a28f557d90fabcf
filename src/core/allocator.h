// Which allocator this process runs on, and how much it holds for the program.
//
// The statekv binary links jemalloc (as Redis does): with glibc's malloc the
// data loop spent a fifth of its time in _int_malloc, malloc_consolidate and
// free on pipelined consensus writes, mostly blocks allocated on one thread and
// freed on another (docs/threading.md, "Allocator"). Test binaries and tools
// linked without it run on glibc's. INFO memory reports whichever is in use.
#pragma once

#include <cstdint>
#include <string>

namespace statekv {

struct AllocatorStats {
  // "jemalloc-5.3.0" or "libc", as Redis's INFO field mem_allocator.
  std::string name;
  // Bytes the program holds through malloc (jemalloc's stats.allocated; glibc:
  // the arenas' in-use bytes and mmapped blocks), not the allocator's overhead.
  uint64_t allocated_bytes = 0;
};

// Reads the allocator's counters now (jemalloc: refreshes its stats epoch,
// which costs a walk over its arenas: for INFO, not for a hot path).
AllocatorStats allocator_stats();

}  // namespace statekv
