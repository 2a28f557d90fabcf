#include "server/client_registry.h"

#include <algorithm>
#include <vector>

#include "core/assert.h"

namespace statekv::server {

void ClientRegistryImpl::add(const Session* session) {
  std::lock_guard lock(mu_);
  bool inserted = sessions_.emplace(session->id, session).second;
  SKV_ASSERT(inserted, "session id registered twice");
}

void ClientRegistryImpl::remove(uint64_t id) {
  std::lock_guard lock(mu_);
  sessions_.erase(id);
}

size_t ClientRegistryImpl::count() const {
  std::lock_guard lock(mu_);
  return sessions_.size();
}

void ClientRegistryImpl::for_each(const std::function<void(const Session&)>& fn) const {
  std::lock_guard lock(mu_);
  // CLIENT LIST prints clients in id order, as Redis does (oldest first).
  std::vector<const Session*> ordered;
  ordered.reserve(sessions_.size());
  for (const auto& [id, s] : sessions_) ordered.push_back(s);
  std::sort(ordered.begin(), ordered.end(),
            [](const Session* a, const Session* b) { return a->id < b->id; });
  for (const Session* s : ordered) fn(*s);
}

}  // namespace statekv::server
