#include "meta/transitions.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace statekv::meta {
namespace {

// Live active members, in the region when one is given, in id order (the order
// placement walks, independent of the order of the members list).
std::vector<NodeId> active_ids(const std::vector<Member>& members, const std::string& region) {
  std::vector<NodeId> ids;
  for (const Member& m : members) {
    if (m.state == MemberState::kActive && (region.empty() || m.region == region)) {
      ids.push_back(m.id);
    }
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

// Where shard `index` starts its walk over the candidates: its position within
// its region (geo) or keyspace, so that every region's shard 0 starts at that
// region's first member.
size_t rotation(const PartitionerSpec& p, uint32_t index) {
  return p.kind == Partitioner::kGeo ? index % p.shards : index;
}

// Every shard whose configuration (owners, moving_to) differs from the one it
// had in `before`, or that is new, gets `next`'s epoch as its config_epoch; the
// others keep theirs (a transition that rebuilt a shard keeps its stamp when
// its owners stayed).
void stamp_config_epochs(const ClusterMap& before, ClusterMap& next) {
  for (Keyspace& k : next.keyspaces) {
    const Keyspace* old = before.find_keyspace(k.spec.name);
    for (size_t i = 0; i < k.shards.size(); ++i) {
      Shard& sh = k.shards[i];
      const Shard* was = old != nullptr && i < old->shards.size() ? &old->shards[i] : nullptr;
      if (was != nullptr && was->owners == sh.owners && was->moving_to == sh.moving_to) {
        sh.config_epoch = was->config_epoch;
      } else {
        sh.config_epoch = next.epoch.value();
      }
    }
  }
}

// The one place a transition's result is finished: bump the epoch, stamp the
// shards whose configuration changed, say what happened, and refuse a result
// that breaks an invariant.
Result<ClusterMap> finish(const ClusterMap& before, ClusterMap next, std::string what) {
  next.epoch = next.epoch.next();
  stamp_config_epochs(before, next);
  next.last_change = std::move(what);
  if (Status s = validate(next); !s.ok()) return s;
  return next;
}

Status not_a_member(NodeId id) {
  return Status::InvalidArgument(fmt::format("node {} is not a member", id.value()));
}

Member* live_member(ClusterMap& map, NodeId id) {
  for (Member& m : map.members) {
    if (m.id == id && m.state != MemberState::kRemoved) return &m;
  }
  return nullptr;
}

Keyspace* find_keyspace(ClusterMap& map, std::string_view name) {
  for (Keyspace& k : map.keyspaces) {
    if (k.spec.name == name) return &k;
  }
  return nullptr;
}

Status no_keyspace(std::string_view name) {
  return Status::InvalidArgument(fmt::format("there is no keyspace '{}'", name));
}

std::string join_ids(const std::vector<NodeId>& ids) {
  std::string out;
  for (NodeId id : ids) {
    if (!out.empty()) out += ",";
    out += std::to_string(id.value());
  }
  return out;
}

std::string describe(const KeyspaceSpec& s) {
  const PartitionerSpec& p = s.partitioner;
  // Shard counts as KEYSPACE INFO gives them: the whole keyspace's.
  const uint32_t shards = partitioner_shard_count(p);
  const std::string count = fmt::format("{} shard{}", shards, shards == 1 ? "" : "s");
  std::string partitioning = p.kind == Partitioner::kGeo
                                 ? fmt::format("geo over {} region(s), {} inside, {}",
                                               geo_regions(p).size(), to_string(p.inner), count)
                                 : fmt::format("{}, {}", to_string(p.kind), count);
  if (p.kind == Partitioner::kRing ||
      (p.kind == Partitioner::kGeo && p.inner == Partitioner::kRing)) {
    partitioning += fmt::format(", {} vnodes", p.vnodes);
  }
  return fmt::format("prefix '{}', {}, {} x{}, {}, {}", s.key_prefix, partitioning,
                     to_string(s.replication.kind), s.replication.factor, to_string(s.consistency),
                     to_string(s.partition_mode));
}

bool lifecycle_allows(MemberState from, MemberState to) {
  using S = MemberState;
  return (from == S::kJoining && (to == S::kActive || to == S::kLeaving)) ||
         (from == S::kActive && to == S::kLeaving) || (from == S::kLeaving && to == S::kActive);
}

}  // namespace

std::string create_keyspace_change(const KeyspaceSpec& spec) {
  return fmt::format("create keyspace '{}' ({})", spec.name, describe(spec));
}

Result<std::vector<Shard>> default_placement(const std::vector<Member>& members,
                                             const KeyspaceSpec& spec) {
  const PartitionerSpec& p = spec.partitioner;
  const uint32_t count = partitioner_shard_count(p);
  std::vector<Shard> shards;
  shards.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    const std::string region = shard_region(p, i);
    const std::vector<NodeId> candidates = active_ids(members, region);
    if (candidates.empty()) {
      return Status::InvalidArgument(
          region.empty()
              ? fmt::format("keyspace '{}': there is no active member to place shards on",
                            spec.name)
              : fmt::format("keyspace '{}': there is no active member in region '{}'", spec.name,
                            region));
    }
    const size_t n = candidates.size();
    const size_t k = std::min<size_t>(spec.replication.factor, n);
    Shard shard;
    shard.id = ShardId(i);
    for (size_t j = 0; j < k; ++j) shard.owners.push_back(candidates[(rotation(p, i) + j) % n]);
    shards.push_back(std::move(shard));
  }
  return shards;
}

Result<ClusterMap> bootstrap(std::string cluster_id, std::vector<Member> members,
                             std::optional<ReplicationSpec> default_replication) {
  if (members.empty()) return Status::InvalidArgument("a cluster needs at least one member");
  ClusterMap map;
  map.cluster_id = std::move(cluster_id);
  map.epoch = Epoch(0);  // finish() makes it 1
  std::vector<NodeId> ids;
  for (Member& m : members) {
    m.state = MemberState::kActive;
    ids.push_back(m.id);
  }
  map.members = std::move(members);

  KeyspaceSpec spec;
  spec.name = std::string(kDefaultKeyspace);
  spec.partitioner.kind = Partitioner::kHash;
  spec.partitioner.shards = static_cast<uint32_t>(map.members.size());
  if (default_replication) {
    spec.replication = *default_replication;
  } else {
    spec.replication.kind = Replication::kConsensus;
    spec.replication.factor = static_cast<uint32_t>(std::min<size_t>(3, map.members.size()));
  }
  spec.consistency = Consistency::kLinearizable;
  spec.partition_mode = PartitionMode::kConsistency;
  Result<std::vector<Shard>> shards = default_placement(map.members, spec);
  if (!shards.ok()) return shards.status();
  map.keyspaces.push_back(Keyspace{std::move(spec), std::move(shards).value(), std::nullopt});
  const std::string cluster = map.cluster_id;
  return finish(ClusterMap{}, std::move(map),
                fmt::format("bootstrap cluster '{}' with nodes {}", cluster, join_ids(ids)));
}

Result<ClusterMap> add_member(const ClusterMap& map, Member member) {
  if (member.state != MemberState::kJoining && member.state != MemberState::kActive) {
    return Status::InvalidArgument(
        fmt::format("a new member starts as joining or active, not {}", to_string(member.state)));
  }
  if (const Member* old = map.find_member(member.id)) {
    return Status::InvalidArgument(
        old->state == MemberState::kRemoved
            ? fmt::format("node {} was removed, and node ids are never reused", member.id.value())
            : fmt::format("node {} is already a member", member.id.value()));
  }
  const std::string what = fmt::format(
      "add node {} ({}, peer {}, region {}, {}{})", member.id.value(), member.address,
      member.peer_address, member.region, to_string(member.state), member.voter ? ", voter" : "");
  ClusterMap next = map;
  next.members.push_back(std::move(member));
  return finish(map, std::move(next), what);
}

Result<ClusterMap> set_member_state(const ClusterMap& map, NodeId id, MemberState state) {
  ClusterMap next = map;
  Member* m = live_member(next, id);
  if (m == nullptr) return not_a_member(id);
  if (state == MemberState::kRemoved) {
    return Status::InvalidArgument(fmt::format(
        "node {} is removed with remove_member, which checks what it owns", id.value()));
  }
  if (m->state == state) {
    return Status::InvalidArgument(
        fmt::format("node {} is already {}", id.value(), to_string(state)));
  }
  if (!lifecycle_allows(m->state, state)) {
    return Status::InvalidArgument(fmt::format("node {} cannot go from {} to {}", id.value(),
                                               to_string(m->state), to_string(state)));
  }
  const std::string what =
      fmt::format("node {}: {} -> {}", id.value(), to_string(m->state), to_string(state));
  m->state = state;
  return finish(map, std::move(next), what);
}

Result<ClusterMap> remove_member(const ClusterMap& map, NodeId id, OwnedShards owned) {
  ClusterMap next = map;
  Member* m = live_member(next, id);
  if (m == nullptr) return not_a_member(id);
  if (m->voter) {
    const size_t voters =
        std::count_if(next.members.begin(), next.members.end(),
                      [](const auto& x) { return x.voter && x.state != MemberState::kRemoved; });
    if (voters == 1) {
      return Status::InvalidArgument(
          fmt::format("node {} is the last voter: add another voter first", id.value()));
    }
  }
  std::vector<std::string> owned_shards;
  for (Keyspace& k : next.keyspaces) {
    for (Shard& s : k.shards) {
      auto it = std::find(s.owners.begin(), s.owners.end(), id);
      if (it == s.owners.end()) continue;
      owned_shards.push_back(fmt::format("{}/{}", k.spec.name, s.id.value()));
      if (owned == OwnedShards::kDrop) {
        s.owners.erase(it);
        if (s.owners.empty()) {
          return Status::InvalidArgument(
              fmt::format("removing node {} would leave shard {} of keyspace '{}' without an "
                          "owner: assign it elsewhere first",
                          id.value(), s.id.value(), k.spec.name));
        }
      }
    }
  }
  if (!owned_shards.empty() && owned == OwnedShards::kRefuse) {
    std::string list;
    for (size_t i = 0; i < owned_shards.size() && i < 5; ++i) {
      list += (i ? ", " : "") + owned_shards[i];
    }
    if (owned_shards.size() > 5) list += ", ...";
    return Status::InvalidArgument(fmt::format(
        "node {} still owns {} shard(s) ({}): move them with assign_shards first, or drop its "
        "ownership",
        id.value(), owned_shards.size(), list));
  }
  m->state = MemberState::kRemoved;
  m->voter = false;
  return finish(map, std::move(next),
                owned_shards.empty() ? fmt::format("remove node {}", id.value())
                                     : fmt::format("remove node {}, dropping it from {} shard(s)",
                                                   id.value(), owned_shards.size()));
}

Result<ClusterMap> create_keyspace(const ClusterMap& map, KeyspaceSpec spec) {
  if (Status s = validate_spec(spec); !s.ok()) return s;
  if (map.find_keyspace(spec.name) != nullptr) {
    return Status::InvalidArgument(fmt::format("keyspace '{}' exists", spec.name));
  }
  Result<std::vector<Shard>> shards = default_placement(map.members, spec);
  if (!shards.ok()) return shards.status();
  const std::string what = create_keyspace_change(spec);
  ClusterMap next = map;
  next.keyspaces.push_back(Keyspace{std::move(spec), std::move(shards).value(), std::nullopt});
  return finish(map, std::move(next), what);
}

Result<ClusterMap> alter_keyspace(const ClusterMap& map, std::string_view name,
                                  const KeyspaceChanges& changes) {
  ClusterMap next = map;
  Keyspace* k = find_keyspace(next, name);
  if (k == nullptr) return no_keyspace(name);
  KeyspaceSpec& s = k->spec;
  const KeyspaceSpec before = s;
  std::vector<std::string> said;
  if (changes.consistency) {
    s.consistency = *changes.consistency;
    said.push_back(fmt::format("consistency {}", to_string(s.consistency)));
  }
  if (changes.partition_mode) {
    s.partition_mode = *changes.partition_mode;
    said.push_back(fmt::format("partition mode {}", to_string(s.partition_mode)));
  }
  if (changes.replication_factor) {
    s.replication.factor = *changes.replication_factor;
    said.push_back(fmt::format("replication factor {}", s.replication.factor));
  }
  if (changes.read_quorum) {
    s.replication.read_quorum = *changes.read_quorum;
    said.push_back(fmt::format("read quorum {}", s.replication.read_quorum));
  }
  if (changes.write_quorum) {
    s.replication.write_quorum = *changes.write_quorum;
    said.push_back(fmt::format("write quorum {}", s.replication.write_quorum));
  }
  if (s == before) {
    return Status::InvalidArgument(fmt::format("alter keyspace '{}': nothing changes", name));
  }
  if (Status st = validate_spec(s); !st.ok()) return st;
  if (s.replication.factor != before.replication.factor) {
    for (Shard& shard : k->shards) {
      const uint32_t i = static_cast<uint32_t>(shard.id.value());
      if (shard.owners.size() > s.replication.factor) shard.owners.resize(s.replication.factor);
      const std::vector<NodeId> candidates =
          active_ids(next.members, shard_region(s.partitioner, i));
      for (size_t j = 0; j < candidates.size() && shard.owners.size() < s.replication.factor; ++j) {
        const NodeId c = candidates[(rotation(s.partitioner, i) + j) % candidates.size()];
        if (std::find(shard.owners.begin(), shard.owners.end(), c) == shard.owners.end()) {
          shard.owners.push_back(c);
        }
      }
    }
  }
  std::string what = fmt::format("alter keyspace '{}':", name);
  for (size_t i = 0; i < said.size(); ++i) what += (i ? ", " : " ") + said[i];
  return finish(map, std::move(next), what);
}

Result<ClusterMap> drop_keyspace(const ClusterMap& map, std::string_view name) {
  if (name == kDefaultKeyspace) {
    return Status::InvalidArgument("the default keyspace cannot be dropped");
  }
  ClusterMap next = map;
  auto it = std::find_if(next.keyspaces.begin(), next.keyspaces.end(),
                         [&](const Keyspace& k) { return k.spec.name == name; });
  if (it == next.keyspaces.end()) return no_keyspace(name);
  next.keyspaces.erase(it);
  return finish(map, std::move(next), fmt::format("drop keyspace '{}'", name));
}

const Keyspace* prefix_owner(const ClusterMap& map, std::string_view prefix,
                             std::string_view except) {
  const Keyspace* owner = nullptr;
  for (const Keyspace& k : map.keyspaces) {
    if (k.spec.name == except || !prefix.starts_with(k.spec.key_prefix)) continue;
    if (owner == nullptr || k.spec.key_prefix.size() > owner->spec.key_prefix.size()) owner = &k;
  }
  return owner;
}

const Keyspace* change_under_way(const ClusterMap& map) {
  for (const Keyspace& k : map.keyspaces) {
    if (k.moving_from || k.dropping || k.creating) return &k;
  }
  return nullptr;
}

namespace {

// `except`: a keyspace whose own change does not count (dropping a keyspace
// whose creation was left half-way).
Status refuse_while_changing(const ClusterMap& map, std::string_view what,
                             std::string_view except = {}) {
  const Keyspace* busy = nullptr;
  for (const Keyspace& k : map.keyspaces) {
    if ((k.moving_from || k.dropping || k.creating) && (except.empty() || k.spec.name != except)) {
      busy = &k;
      break;
    }
  }
  if (busy == nullptr) return Status::OK();
  return Status::InvalidArgument(fmt::format(
      "cannot {} while keyspace '{}' is {}: try again once that is done", what, busy->spec.name,
      busy->dropping                             ? "being dropped"
      : busy->creating                           ? "being created"
      : busy->moving_from->from_keyspace.empty() ? "moving (rebalance)"
                                                 : "taking over its keys"));
}

// Every shard of `k` gets `next`'s epoch as its configuration epoch: what it
// holds changed, and its replica groups refuse what an older map routed.
void restamp_shards(const ClusterMap& next, Keyspace& k) {
  for (Shard& sh : k.shards) sh.config_epoch = next.epoch.value();
}

}  // namespace

Status begin_create(ClusterMap& next, std::string_view name) {
  if (Status s = refuse_while_changing(next, fmt::format("create keyspace '{}'", name)); !s.ok()) {
    return s;
  }
  Keyspace* k = find_keyspace(next, name);
  if (k == nullptr) return no_keyspace(name);
  const Keyspace* owner = prefix_owner(next, k->spec.key_prefix, name);
  if (owner == nullptr) return no_keyspace(kDefaultKeyspace);
  k->creating = true;
  Keyspace& from = *find_keyspace(next, owner->spec.name);
  restamp_shards(next, from);
  next.last_change +=
      fmt::format("; serving once keyspace '{}' is found to hold no keys under '{}'",
                  from.spec.name, k->spec.key_prefix);
  return validate(next);
}

Result<ClusterMap> finish_create(const ClusterMap& map, std::string_view name) {
  ClusterMap next = map;
  Keyspace* k = find_keyspace(next, name);
  if (k == nullptr) return no_keyspace(name);
  if (!k->creating) {
    return Status::InvalidArgument(fmt::format("keyspace '{}' is not being created", name));
  }
  k->creating = false;
  return finish(map, std::move(next), fmt::format("keyspace '{}' created: it serves", name));
}

Status begin_adopt(ClusterMap& next, std::string_view name) {
  if (Status s = refuse_while_changing(next, fmt::format("create keyspace '{}'", name)); !s.ok()) {
    return s;
  }
  Keyspace* k = find_keyspace(next, name);
  if (k == nullptr) return no_keyspace(name);
  const Keyspace* from = prefix_owner(next, k->spec.key_prefix, name);
  if (from == nullptr) return no_keyspace(kDefaultKeyspace);
  k->moving_from = SourceLayout{from->spec.partitioner.split_points, from->shards,
                                from->spec.partitioner.region_shards, from->spec.name};
  next.last_change += fmt::format("; its keys move in from keyspace '{}'", from->spec.name);
  return Status::OK();
}

Result<ClusterMap> begin_drop(const ClusterMap& map, std::string_view name) {
  if (name == kDefaultKeyspace) {
    return Status::InvalidArgument("the default keyspace cannot be dropped");
  }
  // A creation left half-way (its driver died) is dropped like any keyspace:
  // it served nothing.
  const Keyspace* was = map.find_keyspace(name);
  const bool half_created = was != nullptr && was->creating;
  if (Status s = refuse_while_changing(map, fmt::format("drop keyspace '{}'", name),
                                       half_created ? name : std::string_view());
      !s.ok()) {
    return s;
  }
  ClusterMap next = map;
  Keyspace* k = find_keyspace(next, name);
  if (k == nullptr) return no_keyspace(name);
  k->creating = false;
  k->dropping = true;
  auto begun = finish(map, std::move(next), fmt::format("keyspace '{}' is being dropped", name));
  if (!begun.ok()) return begun;
  // Its replica groups refuse what older maps route to them from here on.
  restamp_shards(*begun, *find_keyspace(*begun, name));
  return begun;
}

Result<ClusterMap> abort_drop(const ClusterMap& map, std::string_view name) {
  ClusterMap next = map;
  Keyspace* k = find_keyspace(next, name);
  if (k == nullptr) return no_keyspace(name);
  if (!k->dropping) {
    return Status::InvalidArgument(fmt::format("keyspace '{}' is not being dropped", name));
  }
  k->dropping = false;
  return finish(map, std::move(next), fmt::format("keyspace '{}': its drop was abandoned", name));
}

Result<ClusterMap> assign_shards(const ClusterMap& map, std::string_view name,
                                 std::vector<Shard> shards) {
  ClusterMap next = map;
  Keyspace* k = find_keyspace(next, name);
  if (k == nullptr) return no_keyspace(name);
  const uint32_t want = partitioner_shard_count(k->spec.partitioner);
  if (shards.size() != want) {
    return Status::InvalidArgument(
        fmt::format("keyspace '{}' has {} partitions: give {} shards, not {}", name, want, want,
                    shards.size()));
  }
  size_t changed = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    // One past the factor is only a replica being added (set_replica_owners).
    if (shards[i].owners.size() > k->spec.replication.factor) {
      return Status::InvalidArgument(
          fmt::format("keyspace '{}': shard {} has {} owners, more than the replication factor {}",
                      name, i, shards[i].owners.size(), k->spec.replication.factor));
    }
    for (NodeId owner : shards[i].owners) {
      const Member* m = map.find_member(owner);
      if (m == nullptr || m->state == MemberState::kRemoved) return not_a_member(owner);
      if (m->state != MemberState::kActive) {
        return Status::InvalidArgument(
            fmt::format("node {} is {}: only active members can own shards", owner.value(),
                        to_string(m->state)));
      }
    }
    changed += !(shards[i] == k->shards[i]);
  }
  if (changed == 0) {
    return Status::InvalidArgument(
        fmt::format("assign shards of keyspace '{}': nothing changes", name));
  }
  k->shards = std::move(shards);
  return finish(
      map, std::move(next),
      fmt::format("assign shards of keyspace '{}': {} of {} change", name, changed, want));
}

namespace {

// A ring's tokens come from its nodes: until a replica moves, from the
// shards' distinct owners (partition/layout.h). Recorded before the first
// change of owners, so that the nodes coming and going change no key's shard.
void pin_ring_nodes(Keyspace& k) {
  const PartitionerSpec& p = k.spec.partitioner;
  const bool ring = p.kind == Partitioner::kRing ||
                    (p.kind == Partitioner::kGeo && p.inner == Partitioner::kRing);
  if (!ring || !p.ring_nodes.empty()) return;
  std::set<NodeId> nodes;
  for (const Shard& s : k.shards) nodes.insert(s.owners.begin(), s.owners.end());
  k.spec.partitioner.ring_nodes.assign(nodes.begin(), nodes.end());
}

// Shard `shard` of REPLICATION consensus keyspace `name` in `map`, or why
// there is none to change; a ring's nodes are recorded first (pin_ring_nodes).
Result<Shard*> consensus_shard(ClusterMap& map, std::string_view name, uint32_t shard) {
  Keyspace* k = find_keyspace(map, name);
  if (k == nullptr) return no_keyspace(name);
  if (k->spec.replication.kind != Replication::kConsensus) {
    return Status::InvalidArgument(fmt::format(
        "keyspace '{}' is not REPLICATION consensus: its shards move by rebalancing", name));
  }
  if (shard >= k->shards.size()) {
    return Status::InvalidArgument(
        fmt::format("keyspace '{}' has no shard {} (it has {})", name, shard, k->shards.size()));
  }
  pin_ring_nodes(*k);
  return &k->shards[shard];
}

}  // namespace

Result<ClusterMap> set_replica_owners(const ClusterMap& map, std::string_view name, uint32_t shard,
                                      std::vector<NodeId> owners) {
  ClusterMap next = map;
  auto found = consensus_shard(next, name, shard);
  if (!found.ok()) return found.status();
  Shard& s = **found;
  for (NodeId owner : owners) {
    const Member* m = map.find_member(owner);
    if (m == nullptr || m->state == MemberState::kRemoved) return not_a_member(owner);
    const bool had = std::find(s.owners.begin(), s.owners.end(), owner) != s.owners.end();
    if (!had && m->state != MemberState::kActive) {
      return Status::InvalidArgument(
          fmt::format("node {} is {}: only an active member can get a new replica", owner.value(),
                      to_string(m->state)));
    }
  }
  if (owners == s.owners) {
    return Status::InvalidArgument(
        fmt::format("keyspace '{}' shard {}: the owners are already these", name, shard));
  }
  const auto ids = [](const std::vector<NodeId>& v) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i].value());
    return out;
  };
  std::string what = fmt::format("replicas of keyspace '{}' shard {}: [{}] -> [{}]", name, shard,
                                 ids(s.owners), ids(owners));
  s.owners = std::move(owners);
  if (s.owners == s.moving_to) s.moving_to.clear();
  return finish(map, std::move(next), std::move(what));
}

Result<ClusterMap> set_replica_target(const ClusterMap& map, std::string_view name, uint32_t shard,
                                      std::vector<NodeId> target) {
  ClusterMap next = map;
  auto found = consensus_shard(next, name, shard);
  if (!found.ok()) return found.status();
  Shard& s = **found;
  if (!target.empty()) {
    const uint32_t factor = map.find_keyspace(name)->spec.replication.factor;
    if (target.size() != factor) {
      return Status::InvalidArgument(fmt::format(
          "keyspace '{}' shard {}: a target of {} replicas for factor {}", name, shard,
          target.size(), factor));
    }
    std::set<NodeId> seen;
    for (NodeId n : target) {
      const Member* m = map.find_member(n);
      if (m == nullptr || m->state == MemberState::kRemoved) return not_a_member(n);
      const bool had = std::find(s.owners.begin(), s.owners.end(), n) != s.owners.end();
      if (!had && m->state != MemberState::kActive) {
        return Status::InvalidArgument(
            fmt::format("node {} is {}: only an active member can get a new replica", n.value(),
                        to_string(m->state)));
      }
      if (!seen.insert(n).second) {
        return Status::InvalidArgument(
            fmt::format("keyspace '{}' shard {}: node {} twice in the target", name, shard,
                        n.value()));
      }
    }
  }
  if (target == s.moving_to) {
    return Status::InvalidArgument(
        fmt::format("keyspace '{}' shard {}: the target is already this", name, shard));
  }
  const auto ids = [](const std::vector<NodeId>& v) {
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i].value());
    return out;
  };
  std::string what =
      target.empty()
          ? fmt::format("replicas of keyspace '{}' shard {}: move to [{}] abandoned", name, shard,
                        ids(s.moving_to))
          : fmt::format("replicas of keyspace '{}' shard {}: moving from [{}] to [{}]", name,
                        shard, ids(s.owners), ids(target));
  s.moving_to = std::move(target);
  return finish(map, std::move(next), std::move(what));
}

Result<ClusterMap> begin_move(const ClusterMap& map, std::string_view name,
                              std::vector<std::string> split_points, std::vector<Shard> shards,
                              std::vector<uint32_t> region_shards) {
  ClusterMap next = map;
  Keyspace* k = find_keyspace(next, name);
  if (k == nullptr) return no_keyspace(name);
  if (k->moving_from) {
    return Status::InvalidArgument(fmt::format("keyspace '{}' is already moving", name));
  }
  if (const Keyspace* busy = change_under_way(map);
      busy != nullptr && (busy->dropping || !busy->moving_from->from_keyspace.empty())) {
    return Status::InvalidArgument(fmt::format(
        "keyspace '{}' cannot move while keyspace '{}' is {}: try again once that is done", name,
        busy->spec.name, busy->dropping ? "being dropped" : "taking over its keys"));
  }
  if (shards == k->shards && split_points == k->spec.partitioner.split_points) {
    return Status::InvalidArgument(fmt::format("keyspace '{}': nothing to move", name));
  }
  for (const Shard& shard : shards) {
    for (NodeId owner : shard.owners) {
      const Member* m = map.find_member(owner);
      if (m == nullptr || m->state != MemberState::kActive) {
        return Status::InvalidArgument(
            fmt::format("node {} is not an active member: it cannot own shards", owner.value()));
      }
    }
  }
  k->moving_from = SourceLayout{
      k->spec.partitioner.split_points, k->shards, k->spec.partitioner.region_shards, {}};
  const size_t from = k->shards.size();
  record_layout(*k, std::move(split_points), std::move(shards), std::move(region_shards));
  return finish(
      map, std::move(next),
      fmt::format("keyspace '{}' starts moving: {} shards to {}", name, from, k->shards.size()));
}

Result<ClusterMap> as_one_change(const ClusterMap& before, ClusterMap after, std::string what) {
  if (after.epoch.value() <= before.epoch.value()) {
    return Status::InvalidArgument("as_one_change: nothing changed");
  }
  // finish() stamps every shard anew against `before`: the changed ones with
  // the one epoch, the others with theirs.
  after.epoch = before.epoch;
  return finish(before, std::move(after), std::move(what));
}

Result<ClusterMap> finish_move(const ClusterMap& map, std::string_view name) {
  ClusterMap next = map;
  Keyspace* k = find_keyspace(next, name);
  if (k == nullptr) return no_keyspace(name);
  if (!k->moving_from) {
    return Status::InvalidArgument(fmt::format("keyspace '{}' is not moving", name));
  }
  const std::string from = std::move(k->moving_from->from_keyspace);
  k->moving_from.reset();
  if (!from.empty()) {
    // The change that completes the creation: it says what was created again
    // (with the placed shard count), as the one that began it did.
    return finish(map, std::move(next),
                  fmt::format("{}; its keys moved in from keyspace '{}'",
                              create_keyspace_change(k->spec), from));
  }
  return finish(map, std::move(next), fmt::format("keyspace '{}' finished moving", name));
}

Result<ClusterMap> abort_move(const ClusterMap& map, std::string_view name) {
  ClusterMap next = map;
  Keyspace* k = find_keyspace(next, name);
  if (k == nullptr) return no_keyspace(name);
  if (!k->moving_from) {
    return Status::InvalidArgument(fmt::format("keyspace '{}' is not moving", name));
  }
  if (!k->moving_from->from_keyspace.empty()) {
    // A keyspace created over keys: they stay where they are, and it goes.
    const std::string from = k->moving_from->from_keyspace;
    std::erase_if(next.keyspaces, [&](const Keyspace& o) { return o.spec.name == name; });
    return finish(map, std::move(next),
                  fmt::format("keyspace '{}' not created: moving its keys in from '{}' was "
                              "abandoned",
                              name, from));
  }
  SourceLayout source = std::move(*k->moving_from);
  k->moving_from.reset();
  record_layout(*k, std::move(source.split_points), std::move(source.shards),
                std::move(source.region_shards));
  return finish(map, std::move(next), fmt::format("keyspace '{}' abandoned its move", name));
}

void record_layout(Keyspace& k, std::vector<std::string> split_points, std::vector<Shard> shards,
                   std::vector<uint32_t> region_shards) {
  if (k.spec.partitioner.kind == Partitioner::kGeo) {
    k.spec.partitioner.region_shards = std::move(region_shards);
  } else {
    k.spec.partitioner.shards = static_cast<uint32_t>(shards.size());
  }
  k.spec.partitioner.split_points = std::move(split_points);
  k.shards = std::move(shards);
}

Result<ClusterMap> set_layout(const ClusterMap& map, std::string_view name,
                              std::vector<std::string> split_points, std::vector<Shard> shards) {
  ClusterMap next = map;
  Keyspace* k = find_keyspace(next, name);
  if (k == nullptr) return no_keyspace(name);
  if (k->spec.partitioner.kind == Partitioner::kGeo) {
    return Status::InvalidArgument(
        fmt::format("keyspace '{}' is geo: set its shards with assign_shards", name));
  }
  if (shards.empty()) return Status::InvalidArgument("a layout needs at least one shard");
  for (const Shard& shard : shards) {
    for (NodeId owner : shard.owners) {
      const Member* m = map.find_member(owner);
      if (m == nullptr || m->state == MemberState::kRemoved) return not_a_member(owner);
      if (m->state != MemberState::kActive) {
        return Status::InvalidArgument(
            fmt::format("node {} is {}: only active members can own shards", owner.value(),
                        to_string(m->state)));
      }
    }
  }
  size_t moved = 0;
  for (size_t i = 0; i < shards.size(); ++i) {
    moved += i >= k->shards.size() || !(shards[i] == k->shards[i]);
  }
  if (moved == 0 && shards.size() == k->shards.size() &&
      split_points == k->spec.partitioner.split_points) {
    return Status::InvalidArgument(fmt::format("layout of keyspace '{}': nothing changes", name));
  }
  const size_t count = shards.size();
  record_layout(*k, std::move(split_points), std::move(shards));
  return finish(map, std::move(next),
                fmt::format("layout of keyspace '{}': {} shards, {} changed", name, count, moved));
}

Result<ClusterMap> describe_member(const ClusterMap& map, NodeId id, std::string address,
                                   std::string peer_address, std::string region,
                                   MemberState state) {
  ClusterMap next = map;
  Member* m = live_member(next, id);
  if (m == nullptr) return not_a_member(id);
  // A node that starts while it is being removed stays leaving: only the
  // operator takes a removal back (set_member_state), never a restart (which
  // would leave remove-node waiting for replicas that no longer move).
  if (m->state == MemberState::kLeaving && state == MemberState::kActive) {
    state = MemberState::kLeaving;
  }
  if (m->address == address && m->peer_address == peer_address && m->region == region &&
      m->state == state) {
    return Status::InvalidArgument(fmt::format("node {} is already described so", id.value()));
  }
  if (m->state != state && !lifecycle_allows(m->state, state)) {
    return Status::InvalidArgument(fmt::format("node {} cannot go from {} to {}", id.value(),
                                               to_string(m->state), to_string(state)));
  }
  const std::string what = fmt::format("node {} describes itself: {} (peer {}), region {}, {}",
                                       id.value(), address, peer_address, region, to_string(state));
  m->address = std::move(address);
  m->peer_address = std::move(peer_address);
  m->region = std::move(region);
  m->state = state;
  return finish(map, std::move(next), what);
}

}  // namespace statekv::meta
