#include "sim/workload.h"

#include <algorithm>
#include <cmath>

#include "core/assert.h"

namespace statekv::sim {

Workload::Workload(WorkloadOptions options, Random rng)
    : options_(options), rng_(rng), last_written_(options.keys) {
  SKV_ASSERT(options_.keys > 0, "a workload needs at least one key");
  SKV_ASSERT(options_.read_pct + options_.write_pct + options_.cas_pct <= 100, "mix over 100%");
  if (options_.skew == KeySkew::kZipf) {
    double sum = 0;
    for (size_t i = 0; i < options_.keys; ++i) {
      sum += 1.0 / std::pow(static_cast<double>(i + 1), options_.zipf_s);
      cdf_.push_back(sum);
    }
    for (double& c : cdf_) c /= sum;
  }
  // The source takes the workload's stream; the built-in generator then draws nothing.
  if (options_.source) source_ = options_.source(rng_);
}

replication::ClientRequest Workload::next(size_t client) {
  return source_ ? source_->next(client) : next();
}

void Workload::observe(size_t client, const replication::ClientRequest& op, OpOutcome outcome,
                       const std::optional<std::string>& value) {
  if (source_) source_->observe(client, op, outcome, value);
}

size_t Workload::pick_key() {
  if (options_.skew == KeySkew::kUniform) return rng_.uniform(options_.keys);
  const double u = rng_.unit();
  auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
  return std::min<size_t>(it - cdf_.begin(), options_.keys - 1);
}

replication::ClientRequest Workload::next() {
  using replication::ClientOp;
  replication::ClientRequest req;
  const size_t k = pick_key();
  req.key = "k" + std::to_string(k);
  const uint64_t roll = rng_.uniform(100);
  if (roll < options_.read_pct) {
    req.op = ClientOp::kRead;
  } else if (roll < options_.read_pct + options_.write_pct) {
    req.op = ClientOp::kWrite;
    req.value = "v" + std::to_string(next_value_++);
    last_written_[k] = req.value;
  } else if (roll < options_.read_pct + options_.write_pct + options_.cas_pct) {
    req.op = ClientOp::kCas;
    req.expected = rng_.chance(0.8) ? last_written_[k] : std::nullopt;
    req.value = "v" + std::to_string(next_value_++);
    last_written_[k] = req.value;
  } else {
    req.op = ClientOp::kDelete;
    last_written_[k].reset();
  }
  return req;
}

}  // namespace statekv::sim
