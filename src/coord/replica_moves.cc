#include "coord/replica_moves.h"

#include <fmt/format.h>

#include <algorithm>

namespace statekv::coord {

namespace {

bool contains(const std::vector<NodeId>& v, NodeId n) {
  return std::find(v.begin(), v.end(), n) != v.end();
}

std::string list(const std::vector<NodeId>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i].value());
  return out + "]";
}

}  // namespace

Result<std::vector<std::vector<NodeId>>> replica_targets(const meta::ClusterMap& map,
                                                         const meta::Keyspace& ks,
                                                         const std::set<NodeId>& leaving,
                                                         const std::set<NodeId>& down) {
  const uint32_t factor = ks.spec.replication.factor;
  // Candidates per shard: active members not leaving, in the shard's region.
  std::vector<std::vector<NodeId>> candidates(ks.shards.size());
  std::map<NodeId, size_t> load;
  for (size_t i = 0; i < ks.shards.size(); ++i) {
    const std::string region = meta::shard_region(ks.spec.partitioner, static_cast<uint32_t>(i));
    for (const meta::Member& m : map.members) {
      if (m.state != meta::MemberState::kActive || leaving.contains(m.id)) continue;
      if (!region.empty() && m.region != region) continue;
      candidates[i].push_back(m.id);
      load.emplace(m.id, 0);
    }
  }
  // Keep the owners that stay (their positions too); a free position is 0.
  std::vector<std::vector<NodeId>> targets(ks.shards.size());
  for (size_t i = 0; i < ks.shards.size(); ++i) {
    std::vector<NodeId>& t = targets[i];
    for (NodeId owner : ks.shards[i].owners) {
      if (t.size() == factor) break;
      t.push_back(contains(candidates[i], owner) ? owner : NodeId());
    }
    for (NodeId n : t) {
      if (n.value() != 0) ++load[n];
    }
  }
  // Fill the free positions, and shards short of their factor, with the
  // least-loaded candidates that answer (ties: the lowest id); one that is
  // down only when no other is left (next_replica_step then says it is down).
  for (size_t i = 0; i < ks.shards.size(); ++i) {
    std::vector<NodeId>& t = targets[i];
    const auto pick = [&]() -> std::optional<NodeId> {
      std::optional<NodeId> best;
      for (NodeId c : candidates[i]) {
        if (contains(t, c)) continue;
        if (!best ||
            std::pair(down.contains(c), load[c]) < std::pair(down.contains(*best), load[*best])) {
          best = c;
        }
      }
      return best;
    };
    while (t.size() < factor) t.push_back(NodeId());
    for (NodeId& slot : t) {
      if (slot.value() != 0) continue;
      auto c = pick();
      if (!c) {
        return Status::InvalidArgument(fmt::format(
            "keyspace '{}' shard {} needs {} replicas (REPLICATION consensus FACTOR {}), but only "
            "{} node(s) can hold one{}: add a node first",
            ks.spec.name, i, factor, factor, candidates[i].size(),
            leaving.empty() ? "" : " once the node(s) leaving are gone"));
      }
      slot = *c;
      ++load[*c];
    }
  }
  // Even out: move a replica to the least loaded candidate that answers from
  // the most loaded one while they are more than one apart and a shard allows
  // it. A member that is down never gains a replica (it could not catch up),
  // and gives one first while it holds more than the receiver:
  // the move then restores a shard to its factor of live replicas instead of
  // taking a live replica from a shard that is already one short (add-node
  // while a node is down replaces that node's replicas; once it answers
  // again, the evening out gives it its share back).
  const auto heavier = [](const auto& a, const auto& b) {
    return a.second < b.second || (a.second == b.second && a.first < b.first);
  };
  for (int round = 0; round < 10000; ++round) {
    auto hi = std::max_element(load.begin(), load.end(), heavier);
    auto lo = load.end();
    for (auto it = load.begin(); it != load.end(); ++it) {
      if (down.contains(it->first)) continue;
      if (lo == load.end() || it->second < lo->second) lo = it;
    }
    if (lo == load.end() || hi->second <= lo->second + 1) break;
    // Sources in order: the members down that hold more than `lo` (the most
    // loaded first), then the most loaded member.
    std::vector<std::map<NodeId, size_t>::iterator> sources;
    for (auto it = load.begin(); it != load.end(); ++it) {
      if (down.contains(it->first) && it->second > lo->second) sources.push_back(it);
    }
    std::sort(sources.begin(), sources.end(),
              [&](const auto& a, const auto& b) { return heavier(*b, *a); });
    sources.push_back(hi);
    bool moved = false;
    for (auto from : sources) {
      for (size_t i = 0; i < targets.size() && !moved; ++i) {
        std::vector<NodeId>& t = targets[i];
        auto at = std::find(t.begin(), t.end(), from->first);
        if (at == t.end() || contains(t, lo->first) || !contains(candidates[i], lo->first)) {
          continue;
        }
        *at = lo->first;
        --from->second;
        ++lo->second;
        moved = true;
      }
      if (moved) break;
    }
    if (!moved) break;
  }
  return targets;
}

Result<ReplicaStep> next_replica_step(const std::vector<NodeId>& target,
                                      const std::vector<NodeId>& map_owners, const GroupView& view,
                                      uint32_t factor, const std::set<NodeId>& down,
                                      uint64_t slack) {
  const std::vector<NodeId>& config = view.config;
  const auto step = [](ReplicaStep::Kind kind, NodeId node, std::string why) {
    ReplicaStep s;
    s.kind = kind;
    s.node = node;
    s.why = std::move(why);
    return s;
  };
  const auto publish = [](std::vector<NodeId> owners, std::string why) {
    ReplicaStep s;
    s.kind = ReplicaStep::Kind::kPublish;
    s.owners = std::move(owners);
    s.why = std::move(why);
    return s;
  };
  if (!view.config_committed) {
    return step(ReplicaStep::Kind::kWait, NodeId(), "a membership change is committing");
  }
  // The owners the map should list for this configuration: members that stay,
  // in the target's order (its first, the preferred leader, stays), then those
  // that go, in the map's order.
  std::vector<NodeId> ordered;
  for (NodeId n : target) {
    if (contains(config, n)) ordered.push_back(n);
  }
  for (NodeId n : map_owners) {
    if (contains(config, n) && !contains(ordered, n)) ordered.push_back(n);
  }
  for (NodeId n : config) {
    if (!contains(ordered, n)) ordered.push_back(n);
  }
  // Within `slack` of the commit index; a short log must be matched whole.
  const uint64_t enough =
      view.commit_index > 2 * slack ? view.commit_index - slack : view.commit_index;
  // 1. A member being added is listed last in the map (its node runs an empty
  //    replica, outside the configuration): it joins as a learner, catches
  //    up, and only then does the leader add it.
  if (!map_owners.empty()) {
    const NodeId last = map_owners.back();
    if (contains(target, last) && !contains(config, last) && !down.contains(last)) {
      auto learner = view.learners.find(last);
      if (learner == view.learners.end()) {
        return step(ReplicaStep::Kind::kLearn, last,
                    fmt::format("node {} joins the group as a learner", last.value()));
      }
      if (learner->second < enough) {
        return step(ReplicaStep::Kind::kWait, last,
                    fmt::format("learner {} is catching up ({} of {} entries)", last.value(),
                                learner->second, view.commit_index));
      }
      return step(ReplicaStep::Kind::kAdd, last,
                  fmt::format("adding node {} to the group (caught up as a learner)",
                              last.value()));
    }
  }
  // A learner that no longer joins (the target moved on while it caught up):
  //    the leader stops replicating to it.
  for (const auto& [n, match] : view.learners) {
    const bool joining = !map_owners.empty() && map_owners.back() == n && contains(target, n);
    if (!joining && !contains(config, n)) {
      return step(ReplicaStep::Kind::kRemove, n,
                  fmt::format("dropping learner {}: it no longer joins", n.value()));
    }
  }
  // 2. New members catch up before anything else changes.
  for (NodeId n : config) {
    if (n == view.leader || down.contains(n)) continue;
    auto it = view.match.find(n);
    const uint64_t match = it == view.match.end() ? 0 : it->second;
    if (match < enough) {
      return step(ReplicaStep::Kind::kWait, n,
                  fmt::format("node {} is catching up ({} of {} entries)", n.value(), match,
                              view.commit_index));
    }
  }
  std::vector<NodeId> to_add, to_remove;
  for (NodeId n : target) {
    if (!contains(config, n)) to_add.push_back(n);
  }
  for (NodeId n : config) {
    if (!contains(target, n)) to_remove.push_back(n);
  }
  // 3. A member that is down goes first: it serves nothing, and while it is a
  //    member an add needs every live member to commit.
  for (NodeId n : to_remove) {
    if (down.contains(n) && n != view.leader) {
      return step(ReplicaStep::Kind::kRemove, n,
                  fmt::format("removing node {} (down) from the group", n.value()));
    }
  }
  // 4. Add before remove: the map lists the new member last, past the members
  //    (and, up to the factor, past members already removed, so that the new
  //    one is always beyond the factor: its node then starts it outside the
  //    configuration).
  if (!to_add.empty() && config.size() <= factor) {
    std::optional<NodeId> add;
    for (NodeId n : to_add) {
      if (!down.contains(n)) {
        add = n;
        break;
      }
    }
    if (!add) {
      return Status::InvalidArgument(
          fmt::format("node {} should get a replica but is down", to_add.front().value()));
    }
    std::vector<NodeId> owners = ordered;
    for (NodeId n : map_owners) {
      if (owners.size() >= factor) break;
      if (!contains(owners, n) && !contains(target, n)) owners.push_back(n);
    }
    owners.push_back(*add);
    return publish(std::move(owners), fmt::format("node {} starts a replica (map owners {})",
                                                  add->value(), list(map_owners)));
  }
  // 5. The map follows the configuration.
  if (map_owners != ordered) {
    return publish(ordered, fmt::format("map owners {} -> {}", list(map_owners), list(ordered)));
  }
  // 6. Remove a member that does not stay; its leadership goes first.
  if (!to_remove.empty()) {
    NodeId remove = to_remove.front();
    for (NodeId n : to_remove) {
      if (n != view.leader) {
        remove = n;
        break;
      }
    }
    if (remove == view.leader) {
      std::optional<NodeId> heir;
      uint64_t best = 0;
      for (NodeId n : target) {
        if (!contains(config, n) || down.contains(n) || n == view.leader) continue;
        auto it = view.match.find(n);
        const uint64_t match = it == view.match.end() ? 0 : it->second;
        if (!heir || match > best) {
          heir = n;
          best = match;
        }
      }
      if (!heir) {
        return Status::InvalidArgument(fmt::format(
            "node {} leads the group and no member that stays can take over", remove.value()));
      }
      return step(ReplicaStep::Kind::kTransfer, *heir,
                  fmt::format("node {} leads and goes: handing leadership to node {}",
                              remove.value(), heir->value()));
    }
    return step(ReplicaStep::Kind::kRemove, remove,
                fmt::format("removing node {} from the group", remove.value()));
  }
  return step(ReplicaStep::Kind::kDone, NodeId(), "at its target " + list(target));
}

}  // namespace statekv::coord
