// memory_footprint: what one key costs the memory engine, in resident memory.
//
// Loads N keys of 16 bytes with 66-byte values (a 64-byte user value plus the
// server's small record header) into a fresh memory engine, and prints the growth of
// VmRSS per key and the engine's own stats().memory_bytes per key. With
// --max-rss-per-key B it exits 1 when RSS per key exceeds B (the soak test uses 150;
// Redis needs ~189 for the same data). --shuffle inserts in scrambled key order,
// which leaves B-tree nodes less full than ascending inserts.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "storage/engine.h"

namespace {

// Resident set size of this process in bytes, from /proc/self/status.
long long rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  long long keys = 1'000'000;
  double max_per_key = 0;
  unsigned stripes = statekv::storage::MemoryEngineOptions{}.stripes;
  bool shuffle = false;
  for (int i = 1; i < argc; i += 2) {
    if (std::strcmp(argv[i], "--shuffle") == 0) {
      shuffle = true;
      --i;
    } else if (i + 1 >= argc) {
      std::fprintf(stderr, "%s needs a value\n", argv[i]);
      return 2;
    } else if (std::strcmp(argv[i], "--keys") == 0) {
      keys = std::atoll(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--max-rss-per-key") == 0) {
      max_per_key = std::atof(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--stripes") == 0) {
      stripes = static_cast<unsigned>(std::atoi(argv[i + 1]));
    } else {
      std::fprintf(stderr, "usage: %s [--keys N] [--max-rss-per-key B] [--stripes S] [--shuffle]\n",
                   argv[0]);
      return 2;
    }
  }
  auto engine = statekv::storage::open_memory_engine({.stripes = stripes});
  const long long before = rss_bytes();
  char key[32];  // room for any long long; keys use the first 16 bytes
  std::string value(66, 'v');
  for (long long i = 0; i < keys; ++i) {
    // --shuffle inserts in a scrambled order: i * 2654435761 mod N, a permutation when
    // N is coprime to that multiplier (any power of ten is). Default: ascending.
    const long long k =
        shuffle ? static_cast<long long>((static_cast<unsigned long long>(i) * 2654435761ULL) %
                                         static_cast<unsigned long long>(keys))
                : i;
    std::snprintf(key, sizeof(key), "key:%012lld", k);
    std::memcpy(value.data(), key, 16);  // distinct values, like real data
    auto r = engine->put(std::string_view(key, 16), value);
    if (!r.ok()) {
      std::fprintf(stderr, "put failed: %s\n", r.status().to_string().c_str());
      return 1;
    }
  }
  const long long after = rss_bytes();
  const auto stats = engine->stats();
  const double rss_per_key = static_cast<double>(after - before) / static_cast<double>(keys);
  const double stats_per_key = static_cast<double>(stats.memory_bytes) / static_cast<double>(keys);
  std::printf("keys=%llu stripes=%u rss_growth=%lld bytes rss/key=%.1f memory_bytes/key=%.1f\n",
              static_cast<unsigned long long>(stats.keys), stripes, after - before, rss_per_key,
              stats_per_key);
  if (stats.keys != static_cast<unsigned long long>(keys)) {
    std::fprintf(stderr, "expected %lld keys, engine holds %llu\n", keys,
                 static_cast<unsigned long long>(stats.keys));
    return 1;
  }
  if (max_per_key > 0 && rss_per_key > max_per_key) {
    std::fprintf(stderr, "rss/key %.1f is above the budget of %.1f\n", rss_per_key, max_per_key);
    return 1;
  }
  return 0;
}
