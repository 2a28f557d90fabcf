// SKV_ASSERT: an invariant check that stays on in every build, release included.
// A failed invariant means statekv's own state is wrong; continuing could
// acknowledge a write it will lose, so it prints where and why and aborts.
#pragma once

#include <cstdio>
#include <cstdlib>

#define SKV_ASSERT(cond, msg)                                                                   \
  do {                                                                                          \
    if (!(cond)) [[unlikely]] {                                                                 \
      std::fprintf(stderr, "statekv: invariant failed at %s:%d: %s (%s)\n", __FILE__, __LINE__, \
                   #cond, msg);                                                                 \
      std::abort();                                                                             \
    }                                                                                           \
  } while (0)
