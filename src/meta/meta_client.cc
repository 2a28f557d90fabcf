#include "meta/meta_client.h"

#include <fmt/format.h>

#include <atomic>
#include <random>

#include "core/assert.h"

namespace statekv::meta {

std::string new_writer_id() {
  // Once per process from the OS (this is client code, not a sans-IO protocol):
  // two processes share a prefix with probability 2^-64.
  static const uint64_t process = [] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }();
  static std::atomic<uint64_t> counter{0};
  return fmt::format("{:016x}-{}", process, counter.fetch_add(1) + 1);
}

UpdateLoop::UpdateLoop(Change change, std::string writer, int max_attempts)
    : change_(std::move(change)),
      writer_(std::move(writer)),
      max_attempts_(std::max(1, max_attempts)) {
  start_read();
}

void UpdateLoop::start_read() {
  ++attempts_;
  op_ = Op{};
}

void UpdateLoop::end_attempt(Status why) {
  last_error_ = std::move(why);
  in_flight_.reset();
  if (settling_) {
    finish(give_up());
  } else if (attempts_ < max_attempts_) {
    start_read();
  } else if (!unsure_.empty()) {
    // Out of attempts, but one more read may still tell whether an attempt whose
    // outcome was unknown took effect: worth it, the answer differs.
    settling_ = true;
    op_ = Op{};
  } else {
    finish(give_up());
  }
}

Status UpdateLoop::give_up() const {
  if (!unsure_.empty()) {
    return Status::Unavailable(fmt::format(
        "metadata change outcome unknown: the CAS writing epoch {} got no answer ({}) and no "
        "later read settled whether it took effect; fetch the map before retrying",
        unsure_.back().epoch.value(), unsure_.back().cause));
  }
  if (last_error_.code() == Status::Code::kAborted) {
    return Status::Aborted(fmt::format(
        "metadata change gave up after {} attempts: the map kept changing under it", attempts_));
  }
  return Status::Unavailable(fmt::format("metadata change gave up after {} attempts: {}", attempts_,
                                         last_error_.to_string()));
}

void UpdateLoop::on_read(const Result<std::optional<std::string>>& value) {
  SKV_ASSERT(!done() && op_.kind == Op::Kind::kRead, "on_read without a pending read");
  if (!value.ok()) {
    // Aborted from the register is a refused connection (a wrong secret): the
    // next attempt would be refused too, and it is not the map changing.
    if (value.status().code() == Status::Code::kAborted) {
      finish(value.status());
      return;
    }
    end_attempt(value.status());
    return;
  }
  const std::optional<std::string>& bytes = *value;
  std::optional<ClusterMap> current;
  if (bytes) {
    Result<ClusterMap> decoded = decode(*bytes);
    if (!decoded.ok()) {
      finish(decoded.status());
      return;
    }
    current = std::move(decoded).value();
  }

  // Settle the attempts whose CAS outcome was unknown (see the header).
  for (size_t i = 0; i < unsure_.size();) {
    const Attempt& a = unsure_[i];
    if (current && current->epoch >= a.epoch) {
      const ChangeStamp* stamp = nullptr;
      for (const ChangeStamp& s : current->recent_changes) {
        if (s.epoch == a.epoch) stamp = &s;
      }
      if (stamp == nullptr) {
        finish(Status::Unavailable(fmt::format(
            "metadata change outcome unknown: the CAS writing epoch {} got no answer, and the "
            "map (now at epoch {}) no longer records who wrote that epoch; fetch the map before "
            "retrying",
            a.epoch.value(), current->epoch.value())));
        return;
      }
      if (stamp->change_id == a.id) {
        finish(a.map);  // it took effect
        return;
      }
      // Someone else wrote that epoch: ours expected the epoch before, which is gone.
      unsure_.erase(unsure_.begin() + static_cast<ptrdiff_t>(i));
    } else if (bytes != a.expected) {
      // Behind our attempt's epoch yet not the document it expects: it cannot
      // match unless epochs go backwards, which they never do.
      unsure_.erase(unsure_.begin() + static_cast<ptrdiff_t>(i));
    } else {
      ++i;  // still the document it expects: it may yet take effect
    }
  }
  if (settling_) {
    finish(give_up());
    return;
  }

  Result<ClusterMap> next = change_(current);
  if (!next.ok()) {
    if (!unsure_.empty()) {
      finish(Status::Unavailable(fmt::format(
          "metadata change outcome unknown: an earlier attempt may still take effect, and the "
          "change now says: {}",
          next.status().to_string())));
    } else {
      finish(next.status());
    }
    return;
  }
  const Epoch want = current ? current->epoch.next() : Epoch(1);
  if (next->epoch != want) {
    finish(Status::Internal(
        fmt::format("a metadata change must bump the epoch by exactly one (from {} to {}, not {})",
                    current ? current->epoch.value() : 0, want.value(), next->epoch.value())));
    return;
  }
  ClusterMap map = std::move(next).value();
  const std::string id = fmt::format("{}/{}", writer_, attempts_);
  map.recent_changes.push_back(ChangeStamp{map.epoch, id});
  if (map.recent_changes.size() > kMaxRecentChanges) {
    map.recent_changes.erase(map.recent_changes.begin(),
                             map.recent_changes.end() - kMaxRecentChanges);
  }
  if (Status s = validate(map); !s.ok()) {
    finish(s);
    return;
  }
  op_ = Op{Op::Kind::kCas, bytes, encode(map)};
  in_flight_ = Attempt{map.epoch, id, bytes, std::move(map), {}};
}

void UpdateLoop::on_cas(const Result<bool>& applied) {
  SKV_ASSERT(!done() && op_.kind == Op::Kind::kCas && in_flight_, "on_cas without a pending cas");
  if (applied.ok() && *applied) {
    finish(std::move(in_flight_->map));
    return;
  }
  if (applied.ok()) {
    end_attempt(Status::Aborted("another change came first"));
    return;
  }
  if (applied.status().code() == Status::Code::kAborted && unsure_.empty()) {
    finish(applied.status());  // refused before it was sent (see on_read)
    return;
  }
  in_flight_->cause = applied.status().to_string();
  unsure_.push_back(std::move(*in_flight_));
  end_attempt(applied.status());
}

namespace {

Result<ClusterMap> run(UpdateLoop& loop, RegisterClient& client) {
  const std::string key(kMetaKey);
  while (!loop.done()) {
    const UpdateLoop::Op& op = loop.next_op();
    if (op.kind == UpdateLoop::Op::Kind::kRead) {
      loop.on_read(client.read(key));
    } else {
      loop.on_cas(client.cas(key, op.expected, op.value));
    }
  }
  return loop.result();
}

}  // namespace

Result<ClusterMap> fetch(RegisterClient& client) {
  Result<std::optional<std::string>> bytes = client.read(std::string(kMetaKey));
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) {
    return Status::NotFound("the cluster has no metadata document yet (not bootstrapped)");
  }
  return decode(**bytes);
}

Result<ClusterMap> update(RegisterClient& client,
                          const std::function<Result<ClusterMap>(const ClusterMap&)>& change,
                          int max_attempts) {
  UpdateLoop loop(
      [&change](const std::optional<ClusterMap>& current) -> Result<ClusterMap> {
        if (!current) {
          return Status::NotFound("the cluster has no metadata document yet (not bootstrapped)");
        }
        return change(*current);
      },
      new_writer_id(), max_attempts);
  return run(loop, client);
}

Result<ClusterMap> initialize(RegisterClient& client,
                              const std::function<Result<ClusterMap>()>& make, int max_attempts) {
  UpdateLoop loop(
      [&make](const std::optional<ClusterMap>& current) -> Result<ClusterMap> {
        if (current) {
          return Status::InvalidArgument(
              fmt::format("the cluster is already bootstrapped (cluster '{}', epoch {})",
                          current->cluster_id, current->epoch.value()));
        }
        return make();
      },
      new_writer_id(), max_attempts);
  return run(loop, client);
}

}  // namespace statekv::meta
