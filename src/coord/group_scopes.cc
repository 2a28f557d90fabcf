#include "coord/group_scopes.h"

#include <algorithm>

#include "coord/replica_groups.h"

namespace statekv::coord {

void GroupScopes::on_table(const RoutingTable& table) {
  auto next = std::make_unique<Table>();
  for (const meta::Keyspace& k : table.map().keyspaces) {
    Keyspace& space = next->by_prefix.emplace_back();
    space.spec = k.spec;
    if (k.spec.replication.kind != meta::Replication::kConsensus) continue;
    space.placement = table.placement(k);
    space.groups.reserve(k.shards.size());
    for (const meta::Shard& shard : k.shards) {
      space.groups.push_back(ReplicaGroups::group_id(k.spec.name, shard.id.value()).value());
    }
  }
  // Longest first: the first prefix a key starts with is its keyspace's.
  std::stable_sort(next->by_prefix.begin(), next->by_prefix.end(),
                   [](const Keyspace& a, const Keyspace& b) {
                     return a.spec.key_prefix.size() > b.spec.key_prefix.size();
                   });
  std::lock_guard lock(mu_);
  const Table* now = current_.load(std::memory_order_acquire);
  if (now != nullptr && now->by_prefix.size() == next->by_prefix.size() &&
      std::equal(now->by_prefix.begin(), now->by_prefix.end(), next->by_prefix.begin(),
                 [](const Keyspace& a, const Keyspace& b) { return a.same_scopes(b); })) {
    return;
  }
  current_.store(next.get(), std::memory_order_release);
  kept_.push_back(std::move(next));
}

uint64_t GroupScopes::scope_of(std::string_view key) const {
  const Table* t = current_.load(std::memory_order_acquire);
  if (t == nullptr) return 0;
  for (const Keyspace& k : t->by_prefix) {
    if (!key.starts_with(k.spec.key_prefix)) continue;
    if (!k.placement) return 0;
    const uint32_t shard = k.placement->shard_of(key);
    return shard < k.groups.size() ? k.groups[shard] : 0;
  }
  return 0;
}

}  // namespace statekv::coord
