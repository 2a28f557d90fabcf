#include "meta/health.h"

#include <algorithm>

namespace statekv::meta {

std::string_view to_string(HealthState s) {
  switch (s) {
    case HealthState::kOk:
      return "ok";
    case HealthState::kDegraded:
      return "degraded";
    case HealthState::kFail:
      return "fail";
  }
  return "unknown";
}

std::string ShardHealth::describe() const {
  std::string out = keyspace + "/" + std::to_string(shard.value());
  if (source) out += " (moving away)";
  if (!down.empty()) {
    out += down.size() == 1 ? " (owner node " : " (owner nodes ";
    for (size_t i = 0; i < down.size(); ++i) {
      out += (i == 0 ? "" : ",") + std::to_string(down[i].value());
    }
    out += " down)";
  }
  return out;
}

Health assess_health(const ClusterMap& map, const std::function<bool(NodeId)>& up) {
  Health h;
  for (const Member& m : map.members) {
    if (m.state != MemberState::kRemoved && !up(m.id)) h.down.push_back(m.id);
  }
  auto is_down = [&](NodeId id) {
    return std::find(h.down.begin(), h.down.end(), id) != h.down.end() ||
           map.find_member(id) == nullptr;
  };
  auto judge = [&](const Keyspace& k, const Shard& shard, bool source) {
    ShardHealth s;
    s.keyspace = k.spec.name;
    s.shard = shard.id;
    s.source = source;
    s.factor = std::max<size_t>(k.spec.replication.factor, 1);
    for (NodeId owner : shard.owners) {
      if (is_down(owner)) {
        s.down.push_back(owner);
      } else {
        ++s.up;
      }
    }
    // A consensus group serves while a majority of its members is up; other
    // keyspaces are served by their first owner (see the header).
    const bool served = k.spec.replication.kind == Replication::kConsensus
                            ? !shard.owners.empty() && s.up >= shard.owners.size() / 2 + 1
                            : !shard.owners.empty() && !is_down(shard.owners.front());
    if (!served) {
      h.unavailable.push_back(std::move(s));
    } else if (s.up < s.factor) {
      h.degraded.push_back(std::move(s));
    }
  };
  for (const Keyspace& k : map.keyspaces) {
    for (const Shard& shard : k.shards) judge(k, shard, false);
    if (k.moving_from) {
      for (const Shard& shard : k.moving_from->shards) judge(k, shard, true);
    }
  }
  h.state = !h.unavailable.empty() ? HealthState::kFail
            : !h.degraded.empty()  ? HealthState::kDegraded
                                   : HealthState::kOk;
  return h;
}

}  // namespace statekv::meta
