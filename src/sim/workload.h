// The client workload: which operation, on which key, with which value.
//
// Values written are unique within a run ("v1", "v2", ...), so every read names
// the one write it saw; checkers rely on that. Keys are "k0".."k{n-1}", chosen
// uniformly or with a zipf-like skew (weight of key i is 1/(i+1)^s).
// Not thread-safe; every draw comes from the Random it is given.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/random.h"
#include "replication/env.h"

namespace statekv::sim {

enum class KeySkew : unsigned char { kUniform, kZipf };

struct WorkloadOptions {
  size_t keys = 5;
  KeySkew skew = KeySkew::kUniform;
  double zipf_s = 1.0;
  // Operation mix, in percent; the rest are deletes.
  unsigned read_pct = 45;
  unsigned write_pct = 30;
  unsigned cas_pct = 15;
};

class Workload {
 public:
  Workload(WorkloadOptions options, Random rng);

  // The next operation (request id left for the caller to fill).
  replication::ClientRequest next();

  const WorkloadOptions& options() const { return options_; }

 private:
  size_t pick_key();
  WorkloadOptions options_;
  Random rng_;
  std::vector<double> cdf_;  // zipf only
  uint64_t next_value_ = 1;
  // The last value this workload wrote to each key: a cas usually expects it, so
  // that cas operations succeed often enough to matter.
  std::vector<std::optional<std::string>> last_written_;
};

}  // namespace statekv::sim
