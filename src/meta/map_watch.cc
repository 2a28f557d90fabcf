#include "meta/map_watch.h"

#include <vector>

namespace statekv::meta {

Result<bool> MapWatch::on_apply(const std::optional<std::string_view>& bytes) {
  if (!bytes) return false;
  std::lock_guard publishing(publish_mu_);
  // Cheap rejection first: most applies touch other keys and leave "meta" as it
  // was, so compare before paying for a decode.
  {
    std::lock_guard lock(mu_);
    if (current_ && last_bytes_ == *bytes) return false;
  }
  Result<ClusterMap> decoded = decode(*bytes);
  if (!decoded.ok()) return decoded.status();
  auto next = std::make_shared<const ClusterMap>(std::move(decoded).value());
  std::vector<std::shared_ptr<const Callback>> callbacks;
  {
    std::lock_guard lock(mu_);
    if (current_ && next->epoch <= current_->epoch) return false;
    current_ = next;
    last_bytes_ = std::string(*bytes);
    callbacks.reserve(subscribers_.size());
    for (const auto& [id, cb] : subscribers_) callbacks.push_back(cb);
  }
  // Outside mu_ so that a callback may read current() or (un)subscribe; still
  // under publish_mu_, so the next publication waits and order is kept.
  for (const auto& cb : callbacks) (*cb)(next);
  return true;
}

std::shared_ptr<const ClusterMap> MapWatch::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

MapWatch::Subscription MapWatch::subscribe(Callback callback) {
  std::lock_guard lock(mu_);
  const uint64_t id = next_id_++;
  subscribers_.emplace(id, std::make_shared<const Callback>(std::move(callback)));
  return Subscription{id, current_};
}

void MapWatch::unsubscribe(uint64_t id) {
  std::lock_guard lock(mu_);
  subscribers_.erase(id);
}

}  // namespace statekv::meta
