#include "core/allocator.h"

#include <malloc.h>

#include <cstddef>

// jemalloc's control interface, declared weak: null unless the process runs on
// jemalloc (linked into the binary, or preloaded), so this file needs no
// jemalloc headers and links into binaries without it.
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

namespace statekv {

AllocatorStats allocator_stats() {
  AllocatorStats out;
  if (mallctl != nullptr) {
    // Its statistics are a snapshot taken when the epoch advances.
    uint64_t epoch = 1;
    size_t len = sizeof(epoch);
    mallctl("epoch", &epoch, &len, &epoch, len);
    size_t allocated = 0;
    len = sizeof(allocated);
    const char* version = nullptr;
    size_t vlen = sizeof(version);
    if (mallctl("stats.allocated", &allocated, &len, nullptr, 0) == 0) {
      out.allocated_bytes = allocated;
    }
    // "5.3.0-0-g54eaed1d..." (git describe): the release, as Redis prints it.
    std::string release = mallctl("version", &version, &vlen, nullptr, 0) == 0 && version != nullptr
                              ? std::string(version)
                              : std::string();
    release = release.substr(0, release.find('-'));
    out.name = release.empty() ? "jemalloc" : "jemalloc-" + release;
    return out;
  }
  const struct mallinfo2 mi = mallinfo2();
  out.name = "libc";
  out.allocated_bytes = mi.uordblks + mi.hblkhd;
  return out;
}

}  // namespace statekv
