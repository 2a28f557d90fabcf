// The client workload: which operation, on which key, with which value.
//
// Values written are unique within a run ("v1", "v2", ...), so every read names
// the one write it saw; checkers rely on that. Keys are "k0".."k{n-1}", chosen
// uniformly or with a zipf-like skew (weight of key i is 1/(i+1)^s).
// Not thread-safe; every draw comes from the Random it is given.
//
// A test can replace the generator with its own OperationSource (below), for
// clients that act on what they observed, such as a cas against the value a
// client last read. Without one, nothing here changes: the same seed gives the
// same operations as before sources existed.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/random.h"
#include "replication/env.h"

namespace statekv::sim {

enum class KeySkew : unsigned char { kUniform, kZipf };

// What became of an operation, as its client saw it.
enum class OpOutcome : unsigned char {
  kOk,    // took effect (a read: `value` is what it read)
  kFail,  // certainly did not take effect
  kInfo,  // no answer in time: may or may not take effect
};

// A pluggable source of client operations. The simulator calls next(c) each
// time client c (0-based, fixed for the run, across the new process a timeout
// starts) issues an operation, and observe(c, ...) once that operation
// completes, before c's next call to next(). Operations still open when the
// run ends are not observed. The source must keep written values unique within
// a run (checkers rely on it) and draw randomness only from the Random its
// factory is handed, so that runs stay deterministic.
class OperationSource {
 public:
  virtual ~OperationSource() = default;
  // The next operation of client c (request id left for the simulator to fill).
  virtual replication::ClientRequest next(size_t client) = 0;
  // `value`: what a read returned (kOk only); nullopt otherwise.
  virtual void observe(size_t client, const replication::ClientRequest& op, OpOutcome outcome,
                       const std::optional<std::string>& value) = 0;
};

// Builds a run's source from the workload's seeded Random.
using OperationSourceFactory = std::function<std::unique_ptr<OperationSource>(Random rng)>;

struct WorkloadOptions {
  size_t keys = 5;
  KeySkew skew = KeySkew::kUniform;
  double zipf_s = 1.0;
  // Operation mix, in percent; the rest are deletes.
  unsigned read_pct = 45;
  unsigned write_pct = 30;
  unsigned cas_pct = 15;
  // When set, operations come from this source instead (keys, skew and the mix
  // above are then unused).
  OperationSourceFactory source;
};

class Workload {
 public:
  Workload(WorkloadOptions options, Random rng);

  // The next operation (request id left for the caller to fill).
  replication::ClientRequest next();
  // The next operation of client c: from the source when there is one, else next().
  replication::ClientRequest next(size_t client);
  // Tells the source (if any) how client c's operation ended.
  void observe(size_t client, const replication::ClientRequest& op, OpOutcome outcome,
               const std::optional<std::string>& value);

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
  std::unique_ptr<OperationSource> source_;
};

}  // namespace statekv::sim
