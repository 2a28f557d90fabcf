#include "server/transaction.h"

#include <algorithm>

namespace statekv::server {

// ---- WatchTable ----

void WatchTable::watch(uint64_t watcher, std::string_view key, int64_t expire_ms) {
  std::lock_guard lock(mu_);
  auto [it, added] = by_watcher_.try_emplace(watcher);
  if (added) watchers_.fetch_add(1, std::memory_order_relaxed);
  Watcher& w = it->second;
  for (const auto& [k, ttl] : w.keys) {
    if (k == key) return;  // watched already: the first WATCH's view stands
  }
  w.keys.emplace_back(std::string(key), expire_ms);
  by_key_[std::string(key)].push_back(watcher);
}

void WatchTable::unwatch(uint64_t watcher) {
  std::lock_guard lock(mu_);
  auto it = by_watcher_.find(watcher);
  if (it == by_watcher_.end()) return;
  for (const auto& [key, ttl] : it->second.keys) {
    auto k = by_key_.find(key);
    if (k == by_key_.end()) continue;
    auto& ids = k->second;
    ids.erase(std::remove(ids.begin(), ids.end(), watcher), ids.end());
    if (ids.empty()) by_key_.erase(k);
  }
  by_watcher_.erase(it);
  watchers_.fetch_sub(1, std::memory_order_relaxed);
}

std::vector<std::string> WatchTable::keys(uint64_t watcher) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  auto it = by_watcher_.find(watcher);
  if (it == by_watcher_.end()) return out;
  for (const auto& [key, ttl] : it->second.keys) out.push_back(key);
  return out;
}

bool WatchTable::changed(uint64_t watcher, int64_t now) const {
  std::lock_guard lock(mu_);
  auto it = by_watcher_.find(watcher);
  // Unknown: its watches were lost (a routed EXEC whose WATCH went to a node
  // that restarted since). Whether its keys changed cannot be known.
  if (it == by_watcher_.end()) return true;
  if (it->second.changed) return true;
  // Unchanged keys still carry the TTL they had when watched: one that has
  // passed means the key expired meanwhile, which Redis 7 counts as a change.
  for (const auto& [key, ttl] : it->second.keys) {
    if (ttl != 0 && ttl <= now) return true;
  }
  return false;
}

void WatchTable::on_write(std::span<const std::string_view> keys) {
  std::lock_guard lock(mu_);
  for (std::string_view key : keys) {
    auto k = by_key_.find(std::string(key));
    if (k == by_key_.end()) continue;
    for (uint64_t id : k->second) by_watcher_[id].changed = true;
  }
}

void WatchTable::on_flush(const std::function<bool(std::string_view key)>& exists) {
  std::lock_guard lock(mu_);
  for (const auto& [key, ids] : by_key_) {
    if (!exists(key)) continue;
    for (uint64_t id : ids) by_watcher_[id].changed = true;
  }
}

std::vector<std::string> encode_exec(const TransactionState& t, uint64_t watcher) {
  std::vector<std::string> out;
  out.emplace_back(kExecVerb);
  out.push_back(std::to_string(watcher));
  for (const auto& args : t.queue) {
    out.push_back(std::to_string(args.size()));
    out.insert(out.end(), args.begin(), args.end());
  }
  return out;
}

// ---- Transaction ----

void Transaction::stage(std::span<const Store::Write> writes) {
  for (const Store::Write& w : writes) {
    if (w.element) {
      elements_ = true;
      continue;
    }
    auto [it, added] = staged_.try_emplace(std::string(w.key));
    if (added) order_.push_back(it->first);
    it->second.erase = w.erase;
    it->second.value.assign(w.erase ? std::string_view() : w.value);
    it->second.expire_ms = w.erase ? 0 : w.expire_ms;
    it->second.type = w.erase ? ValueType::kString : w.type;
  }
}

void Transaction::stage_clear() {
  staged_.clear();
  order_.clear();
  cleared_ = true;
}

std::optional<bool> Transaction::read(std::string_view key, int64_t now, std::string* buf,
                                      RecordView* rec) const {
  auto it = staged_.find(std::string(key));
  if (it == staged_.end()) {
    if (cleared_) return false;
    return std::nullopt;
  }
  const Staged& s = it->second;
  if (s.erase || (s.expire_ms != 0 && s.expire_ms <= now)) return false;
  // Copied: a later staging of the key must not change what the caller read.
  buf->assign(s.value);
  rec->type = s.type;
  rec->expire_ms = s.expire_ms;
  rec->value = *buf;
  return true;
}

int64_t Transaction::key_delta(uint64_t store_keys,
                               const std::function<bool(std::string_view)>& physical) const {
  int64_t delta = cleared_ ? -static_cast<int64_t>(store_keys) : 0;
  for (const std::string& key : order_) {
    const bool before = !cleared_ && physical(key);
    const bool after = !staged_.at(key).erase;
    delta += static_cast<int64_t>(after) - static_cast<int64_t>(before);
  }
  return delta;
}

Result<std::vector<Store::Write>> Transaction::writes(
    Store& store, std::vector<std::string>* cleared_keys) const {
  if (elements_) {
    return Status::InvalidArgument(
        "a hash, set, list or sorted set past its compact size (over 128 elements, or a large "
        "element) cannot be written inside MULTI/EXEC yet; nothing was committed");
  }
  std::vector<Store::Write> out;
  out.reserve(order_.size());
  std::string buf;
  for (const std::string& key : order_) {
    const Staged& s = staged_.at(key);
    RecordView rec;
    Store::Meta old;
    // now = 0: what the store physically holds, as Store::apply reads it.
    auto found = store.get_locked(key, 0, &buf, &rec, &old);
    if (!found.ok()) return found.status();
    out.push_back(Store::Write{key, old, s.erase, s.value, s.expire_ms, s.type});
  }
  if (!cleared_) return out;
  // Every record the store holds that nothing staged since the clear replaces.
  std::vector<int64_t> ttls;
  cleared_keys->clear();
  Status st = store.scan({}, {}, 0, 0, [&](std::string_view key, const RecordView& r) {
    if (!staged_.contains(std::string(key))) {
      cleared_keys->emplace_back(key);
      ttls.push_back(r.expire_ms);
    }
    return true;
  });
  if (!st.ok()) return st;
  for (size_t i = 0; i < cleared_keys->size(); ++i) {
    out.push_back(Store::Write{(*cleared_keys)[i], Store::Meta{true, ttls[i]}, true, {}, 0});
  }
  return out;
}

}  // namespace statekv::server
