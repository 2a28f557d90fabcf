#include "server/scan_cursors.h"

namespace statekv::server {

ScanCursors::ScanCursors(size_t capacity, uint64_t first_id)
    : capacity_(capacity == 0 ? 1 : capacity), next_id_(first_id == 0 ? 1 : first_id) {}

uint64_t ScanCursors::issue(std::string_view last_key) {
  std::lock_guard lock(mu_);
  uint64_t id = next_id_++;
  if (id == 0) id = next_id_++;  // 0 means "start/finished" to clients
  while (keys_.size() >= capacity_ && !order_.empty()) {
    keys_.erase(order_.front());
    order_.pop_front();
  }
  keys_[id] = std::string(last_key);
  order_.push_back(id);
  return id;
}

std::optional<std::string> ScanCursors::find(uint64_t cursor) const {
  std::lock_guard lock(mu_);
  auto it = keys_.find(cursor);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

size_t ScanCursors::size() const {
  std::lock_guard lock(mu_);
  return keys_.size();
}

}  // namespace statekv::server
