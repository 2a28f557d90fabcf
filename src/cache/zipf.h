// Zipf-distributed key ranks for hit-ratio tests and benchmarks: rank r in
// [0, n) with probability proportional to 1 / (r + 1)^s. Draws come from the
// Random the caller passes (never a global source), so a trace is a function
// of its seed. Builds the CDF once (8 bytes per key) and draws by binary search.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/random.h"

namespace statekv::cache {

class Zipf {
 public:
  Zipf(uint64_t n, double s) : cdf_(n) {
    double sum = 0;
    for (uint64_t i = 0; i < n; ++i) {
      sum += 1.0 / std::pow(static_cast<double>(i + 1), s);
      cdf_[i] = sum;
    }
    for (auto& c : cdf_) c /= sum;
  }

  uint64_t next(Random& random) const {
    const double u = random.unit();
    auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
    if (it == cdf_.end()) --it;
    return static_cast<uint64_t>(it - cdf_.begin());
  }

 private:
  std::vector<double> cdf_;
};

}  // namespace statekv::cache
