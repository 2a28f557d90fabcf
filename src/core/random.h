// The only source of randomness a protocol or the simulator may use.
//
// xoshiro256** seeded through splitmix64: fast, small state, and the same
// seed gives the same sequence on every platform (no std:: distributions,
// whose output differs between standard libraries).
#pragma once

#include <cstdint>

namespace statekv {

class Random {
 public:
  explicit Random(uint64_t seed) {
    for (auto& word : s_) word = splitmix64(seed);
  }

  uint64_t next_u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, bound); bound must be > 0. Lemire's multiply-shift, unbiased.
  uint64_t uniform(uint64_t bound) {
    while (true) {
      __uint128_t m = static_cast<__uint128_t>(next_u64()) * bound;
      uint64_t low = static_cast<uint64_t>(m);
      if (low >= bound || low >= (-bound) % bound) return static_cast<uint64_t>(m >> 64);
    }
  }

  // Uniform in [lo, hi] inclusive.
  uint64_t range(uint64_t lo, uint64_t hi) { return lo + uniform(hi - lo + 1); }

  // Uniform double in [0, 1).
  double unit() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  // True with probability p.
  bool chance(double p) { return unit() < p; }

  // A new independent generator, for handing to a component without sharing state.
  Random fork() { return Random(next_u64()); }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  uint64_t s_[4];
};

}  // namespace statekv
