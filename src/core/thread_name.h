// Names the calling thread, as `top -H`, `perf` and gdb show it: a node runs
// a dozen threads (I/O, replica groups, write-ahead log sync, ...), and a
// profile or a per-thread context-switch count is only readable by name.
#pragma once

#include <pthread.h>

#include <string>
#include <string_view>

namespace statekv {

// Linux keeps 15 bytes of a thread's name: longer names are cut there.
inline void name_this_thread(std::string_view name) {
  std::string cut(name.substr(0, 15));
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace statekv
