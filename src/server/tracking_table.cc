#include "server/tracking_table.h"

#include <algorithm>

namespace statekv::server {

TrackingTable::TrackingTable(uint64_t max_keys, Random random)
    : max_keys_(max_keys), random_(random) {}

namespace {

// One of a and b starts with the other (Redis's stringCheckPrefix).
bool overlap(std::string_view a, std::string_view b) {
  return a.substr(0, b.size()) == b || b.substr(0, a.size()) == a;
}

std::string overlap_error(std::string_view prefix, std::string_view what, std::string_view other) {
  return "ERR Prefix '" + std::string(prefix) + "' overlaps with " + std::string(what) +
         " prefix '" + std::string(other) + "'. Prefixes for a single client must not overlap.";
}

}  // namespace

Status TrackingTable::enable(uint64_t client, TrackingMode mode) {
  if (!mode.bcast && !mode.prefixes.empty()) {
    return Status::InvalidArgument("ERR PREFIX option requires BCAST mode to be enabled");
  }
  std::lock_guard lock(mu_);
  std::vector<std::string> have;  // sorted, as Redis's rax of a client's prefixes
  if (auto it = clients_.find(client);
      it != clients_.end() && it->second.mode.bcast && mode.bcast) {
    have = it->second.mode.prefixes;
  }
  // Redis's checkPrefixCollisionsOrReply: each new prefix against the
  // client's existing ones (in their order), then against the new ones after it.
  for (size_t i = 0; i < mode.prefixes.size(); ++i) {
    for (const std::string& existing : have) {
      if (overlap(existing, mode.prefixes[i])) {
        return Status::InvalidArgument(overlap_error(mode.prefixes[i], "an existing", existing));
      }
    }
    for (size_t j = i + 1; j < mode.prefixes.size(); ++j) {
      if (overlap(mode.prefixes[i], mode.prefixes[j])) {
        return Status::InvalidArgument(
            overlap_error(mode.prefixes[i], "another provided", mode.prefixes[j]));
      }
    }
  }
  if (mode.bcast) {
    // BCAST without PREFIX registers the empty prefix (every key), unchecked,
    // as Redis does; prefixes accumulate across CLIENT TRACKING ON calls.
    if (mode.prefixes.empty()) mode.prefixes.emplace_back();
    have.insert(have.end(), std::make_move_iterator(mode.prefixes.begin()),
                std::make_move_iterator(mode.prefixes.end()));
    std::sort(have.begin(), have.end());
    have.erase(std::unique(have.begin(), have.end()), have.end());
    mode.prefixes = std::move(have);
  }
  clients_[client].mode = std::move(mode);
  return Status::OK();
}

void TrackingTable::disable(uint64_t client) {
  std::lock_guard lock(mu_);
  clients_.erase(client);
  // Keys it read are forgotten lazily: a message for a client no longer
  // tracking is dropped in add_message().
}

std::optional<TrackingMode> TrackingTable::mode(uint64_t client) const {
  std::lock_guard lock(mu_);
  auto it = clients_.find(client);
  if (it == clients_.end()) return std::nullopt;
  return it->second.mode;
}

void TrackingTable::on_read(uint64_t client, std::string_view key) {
  std::lock_guard lock(mu_);
  auto c = clients_.find(client);
  if (c == clients_.end() || c->second.mode.bcast) return;
  auto it = keys_.find(std::string(key));
  if (it == keys_.end()) {
    it = keys_.emplace(std::string(key), Readers{}).first;
    it->second.index = key_list_.size();
    key_list_.push_back(&it->first);
  }
  it->second.clients.insert(client);
}

void TrackingTable::add_message(std::unordered_map<uint64_t, Invalidation>& batch, uint64_t client,
                                std::string_view key) const {
  auto c = clients_.find(client);
  if (c == clients_.end()) return;  // stopped tracking since it read the key
  const uint64_t target = c->second.mode.redirect != 0 ? c->second.mode.redirect : client;
  Invalidation& inv = batch[target];
  inv.target = target;
  if (target != client && std::find(inv.redirected_from.begin(), inv.redirected_from.end(),
                                    client) == inv.redirected_from.end()) {
    inv.redirected_from.push_back(client);
  }
  if (std::find(inv.keys.begin(), inv.keys.end(), key) == inv.keys.end()) {
    inv.keys.emplace_back(key);
  }
}

void TrackingTable::forget_key(const std::string& key) {
  auto it = keys_.find(key);
  if (it == keys_.end()) return;
  const size_t index = it->second.index;
  // Swap-remove from the list, fixing the moved key's index.
  const std::string* last = key_list_.back();
  key_list_[index] = last;
  keys_.find(*last)->second.index = index;
  key_list_.pop_back();
  keys_.erase(it);
}

std::vector<Invalidation> TrackingTable::flatten(
    std::unordered_map<uint64_t, Invalidation>& batch) {
  std::vector<Invalidation> out;
  out.reserve(batch.size());
  for (auto& [target, inv] : batch) out.push_back(std::move(inv));
  std::sort(out.begin(), out.end(),
            [](const Invalidation& a, const Invalidation& b) { return a.target < b.target; });
  return out;
}

std::vector<Invalidation> TrackingTable::on_write(
    uint64_t writer, std::span<const std::string_view> keys, bool include_peers,
    const std::function<bool(uint64_t peer)>& tell_bcast_peer) {
  std::lock_guard lock(mu_);
  std::unordered_map<uint64_t, Invalidation> batch;
  const auto w = clients_.find(writer);
  const bool writer_noloop = w != clients_.end() && w->second.mode.noloop;
  for (std::string_view key : keys) {
    auto it = keys_.find(std::string(key));
    if (it != keys_.end()) {
      bool peers_left = false;
      for (auto r = it->second.clients.begin(); r != it->second.clients.end();) {
        const uint64_t client = *r;
        if (!include_peers && is_peer(client)) {
          peers_left = true;
          ++r;
          continue;
        }
        if (!(client == writer && writer_noloop)) add_message(batch, client, key);
        r = it->second.clients.erase(r);
      }
      if (!peers_left) forget_key(it->first);
    }
    for (const auto& [client, c] : clients_) {
      if (!c.mode.bcast || (client == writer && c.mode.noloop)) continue;
      if (is_peer(client) && (!include_peers || (tell_bcast_peer && !tell_bcast_peer(client))))
        continue;
      bool match = false;
      for (const std::string& p : c.mode.prefixes) {
        if (key.substr(0, p.size()) == p) match = true;
      }
      if (match) add_message(batch, client, key);
    }
  }
  return flatten(batch);
}

std::vector<Invalidation> TrackingTable::on_flush(uint64_t writer, bool local_only) {
  std::lock_guard lock(mu_);
  if (!local_only) {
    keys_.clear();
    key_list_.clear();
  } else {
    std::vector<std::string> empty;
    for (auto& [key, readers] : keys_) {
      std::erase_if(readers.clients, [](uint64_t c) { return !is_peer(c); });
      if (readers.clients.empty()) empty.push_back(key);
    }
    for (const std::string& key : empty) forget_key(key);
  }
  std::unordered_map<uint64_t, Invalidation> batch;
  for (const auto& [client, c] : clients_) {
    if (local_only && is_peer(client)) continue;
    // NOLOOP is not applied to a flush (Redis's trackingInvalidateKeysOnFlush
    // tells every tracking client, the one that flushed included).
    const uint64_t target = c.mode.redirect != 0 ? c.mode.redirect : client;
    Invalidation& inv = batch[target];
    inv.target = target;
    inv.flush = true;
    if (target != client) inv.redirected_from.push_back(client);
  }
  (void)writer;
  return flatten(batch);
}

std::vector<Invalidation> TrackingTable::enforce_limit() {
  std::lock_guard lock(mu_);
  std::unordered_map<uint64_t, Invalidation> batch;
  while (max_keys_ != 0 && keys_.size() > max_keys_) {
    const std::string key = *key_list_[random_.uniform(key_list_.size())];
    for (uint64_t client : keys_.find(key)->second.clients) add_message(batch, client, key);
    forget_key(key);
  }
  return flatten(batch);
}

void TrackingTable::set_max_keys(uint64_t max_keys) {
  std::lock_guard lock(mu_);
  max_keys_ = max_keys;
}

uint64_t TrackingTable::max_keys() const {
  std::lock_guard lock(mu_);
  return max_keys_;
}

TrackingTable::LocalNeeds TrackingTable::local_needs() const {
  std::lock_guard lock(mu_);
  LocalNeeds needs;
  for (const auto& [client, c] : clients_) {
    if (is_peer(client)) continue;
    needs.any = true;
    needs.bcast = needs.bcast || c.mode.bcast;
  }
  return needs;
}

uint64_t TrackingTable::tracked_keys() const {
  std::lock_guard lock(mu_);
  return keys_.size();
}

uint64_t TrackingTable::tracked_items() const {
  std::lock_guard lock(mu_);
  uint64_t n = 0;
  for (const auto& [key, readers] : keys_) n += readers.clients.size();
  return n;
}

uint64_t TrackingTable::tracking_clients() const {
  std::lock_guard lock(mu_);
  return static_cast<uint64_t>(std::count_if(clients_.begin(), clients_.end(),
                                             [](const auto& c) { return !is_peer(c.first); }));
}

}  // namespace statekv::server
