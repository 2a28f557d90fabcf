#include "meta/cluster_map.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <utility>

namespace statekv::meta {
namespace {

using Json = nlohmann::json;

// ---- enum names ---------------------------------------------------------------

template <typename E, size_t N>
struct Names {
  std::array<std::pair<E, std::string_view>, N> names;
  std::array<std::pair<std::string_view, E>, 4> aliases{};  // empty names are unused
  size_t alias_count = 0;
  std::string_view what;

  std::string_view print(E v) const {
    for (const auto& [e, name] : names) {
      if (e == v) return name;
    }
    return "?";
  }
  Result<E> parse(std::string_view s) const {
    for (const auto& [e, name] : names) {
      if (name == s) return e;
    }
    for (size_t i = 0; i < alias_count; ++i) {
      if (aliases[i].first == s) return aliases[i].second;
    }
    std::string expected;
    for (const auto& [e, name] : names) {
      if (!expected.empty()) expected += ", ";
      expected += name;
    }
    return Status::InvalidArgument(
        fmt::format("unknown {} '{}' (expected one of: {})", what, s, expected));
  }
};

constexpr Names<MemberState, 4> kMemberStates{{{{MemberState::kJoining, "joining"},
                                                {MemberState::kActive, "active"},
                                                {MemberState::kLeaving, "leaving"},
                                                {MemberState::kRemoved, "removed"}}},
                                              {},
                                              0,
                                              "member state"};
constexpr Names<Partitioner, 5> kPartitioners{{{{Partitioner::kRange, "range"},
                                                {Partitioner::kHash, "hash"},
                                                {Partitioner::kRing, "ring"},
                                                {Partitioner::kSlots, "slots"},
                                                {Partitioner::kGeo, "geo"}}},
                                              {},
                                              0,
                                              "partitioner"};
constexpr Names<Replication, 7> kReplications{
    {{{Replication::kNone, "none"},
      {Replication::kPrimaryBackupAsync, "primary-backup-async"},
      {Replication::kPrimaryBackupSync, "primary-backup-sync"},
      {Replication::kMultiPrimary, "multi-primary"},
      {Replication::kChain, "chain"},
      {Replication::kQuorum, "quorum"},
      {Replication::kConsensus, "consensus"}}},
    {{{"raft", Replication::kConsensus}}},
    1,
    "replication"};
constexpr Names<Consistency, 5> kConsistencies{{{{Consistency::kLinearizable, "linearizable"},
                                                 {Consistency::kSequential, "sequential"},
                                                 {Consistency::kCausal, "causal"},
                                                 {Consistency::kFifo, "fifo"},
                                                 {Consistency::kEventual, "eventual"}}},
                                               {},
                                               0,
                                               "consistency"};
constexpr Names<PartitionMode, 2> kPartitionModes{
    {{{PartitionMode::kConsistency, "consistency"},
      {PartitionMode::kAvailability, "availability"}}},
    {{{"cp", PartitionMode::kConsistency}, {"ap", PartitionMode::kAvailability}}},
    2,
    "partition mode"};

// ---- validation helpers ----------------------------------------------------------

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += len;
  }
  return true;
}

Status check_name(std::string_view what, std::string_view name) {
  const bool ok =
      !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
      });
  if (ok) return Status::OK();
  return Status::InvalidArgument(fmt::format(
      "{} '{}' must be 1..64 characters of letters, digits, '.', '_' or '-'", what, name));
}

Status check_host_port(std::string_view what, std::string_view s) {
  const size_t colon = s.rfind(':');
  uint32_t port = 0;
  if (colon != std::string_view::npos && colon > 0 && colon + 1 < s.size()) {
    const char* begin = s.data() + colon + 1;
    const char* end = s.data() + s.size();
    auto [p, ec] = std::from_chars(begin, end, port);
    if (ec == std::errc() && p == end && port >= 1 && port <= 65535 && valid_utf8(s) &&
        s.find_first_of(" \t\r\n") == std::string_view::npos) {
      return Status::OK();
    }
  }
  return Status::InvalidArgument(
      fmt::format("{} '{}' must be host:port with a port in 1..65535", what, s));
}

bool is_strong(Consistency c) {
  return c == Consistency::kLinearizable || c == Consistency::kSequential;
}

// Range split points: non-empty UTF-8 keys, strictly increasing. The problem,
// or an empty string.
std::string range_split_problem(std::span<const std::string> splits) {
  for (size_t i = 0; i < splits.size(); ++i) {
    if (!valid_utf8(splits[i])) return "split points must be UTF-8";
    if (splits[i].empty()) return "a split point cannot be the empty key";
    if (i > 0 && !(splits[i - 1] < splits[i])) {
      return fmt::format("split points must be strictly increasing ('{}' then '{}')", splits[i - 1],
                         splits[i]);
    }
  }
  return {};
}

// A slots layout: the first slot of each shard in decimal, the first 0, each
// above the one before, all below kSlotCount. The problem, or an empty string.
std::string slot_starts_problem(std::span<const std::string> starts) {
  uint32_t previous = 0;
  for (size_t i = 0; i < starts.size(); ++i) {
    const std::string& text = starts[i];
    uint32_t slot = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), slot);
    if (ec != std::errc() || end != text.data() + text.size() || slot >= kSlotCount ||
        (i == 0 ? slot != 0 : slot <= previous)) {
      return fmt::format(
          "start slot '{}' at position {} is not a slot above the previous one (the first must "
          "be 0)",
          text, i);
    }
    previous = slot;
  }
  return {};
}

}  // namespace

std::string_view to_string(MemberState v) {
  return kMemberStates.print(v);
}
std::string_view to_string(Partitioner v) {
  return kPartitioners.print(v);
}
std::string_view to_string(Replication v) {
  return kReplications.print(v);
}
std::string_view to_string(Consistency v) {
  return kConsistencies.print(v);
}
std::string_view to_string(PartitionMode v) {
  return kPartitionModes.print(v);
}
Result<MemberState> parse_member_state(std::string_view n) {
  return kMemberStates.parse(n);
}
Result<Partitioner> parse_partitioner(std::string_view n) {
  return kPartitioners.parse(n);
}
Result<Replication> parse_replication(std::string_view n) {
  return kReplications.parse(n);
}
Result<Consistency> parse_consistency(std::string_view n) {
  return kConsistencies.parse(n);
}
Result<PartitionMode> parse_partition_mode(std::string_view n) {
  return kPartitionModes.parse(n);
}

const Member* ClusterMap::find_member(NodeId id) const {
  for (const Member& m : members) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

const Keyspace* ClusterMap::find_keyspace(std::string_view name) const {
  for (const Keyspace& k : keyspaces) {
    if (k.spec.name == name) return &k;
  }
  return nullptr;
}

std::vector<std::string> geo_regions(const PartitionerSpec& p) {
  if (p.kind != Partitioner::kGeo) return {};
  std::set<std::string> regions;
  for (const GeoRule& r : p.geo_rules) regions.insert(r.region);
  return {regions.begin(), regions.end()};
}

uint32_t partitioner_shard_count(const PartitionerSpec& p) {
  if (p.kind != Partitioner::kGeo) return p.shards;
  if (!p.region_shards.empty()) {
    uint32_t total = 0;
    for (uint32_t n : p.region_shards) total += n;
    return total;
  }
  return p.shards * static_cast<uint32_t>(geo_regions(p).size());
}

std::string shard_region(const PartitionerSpec& p, uint32_t index) {
  const std::vector<std::string> regions = geo_regions(p);
  if (!p.region_shards.empty()) {
    for (size_t r = 0; r < regions.size() && r < p.region_shards.size(); ++r) {
      if (index < p.region_shards[r]) return regions[r];
      index -= p.region_shards[r];
    }
    return {};
  }
  if (regions.empty() || p.shards == 0) return {};
  const size_t r = index / p.shards;
  return r < regions.size() ? regions[r] : std::string();
}

std::vector<std::string> split_points_under(std::string_view prefix,
                                            std::vector<std::string> typed) {
  for (std::string& split : typed) {
    if (split.empty() || split.starts_with(prefix)) continue;
    split.insert(0, prefix);
  }
  return typed;
}

// ---- validate ---------------------------------------------------------------------

Status check_replication_served(const ReplicationSpec& replication) {
  if (replication.kind == Replication::kNone && replication.factor == 1) return Status::OK();
  if (replication.kind == Replication::kConsensus && replication.factor >= 1 &&
      replication.factor <= 7) {
    return Status::OK();
  }
  if (replication.kind == Replication::kConsensus) {
    return Status::InvalidArgument(fmt::format(
        "replication 'consensus' with factor {} is not served: raft per shard takes factor 1 to 7",
        replication.factor));
  }
  return Status::InvalidArgument(fmt::format(
      "replication '{}' is not served yet: this release serves REPLICATION none (FACTOR 1) and "
      "REPLICATION consensus (raft per shard, FACTOR 1 to 7) (docs/replication.md)",
      to_string(replication.kind)));
}

Status validate_spec(const KeyspaceSpec& s) {
  if (Status st = check_name("keyspace name", s.name); !st.ok()) return st;
  const auto err = [&](const std::string& msg) {
    return Status::InvalidArgument(fmt::format("keyspace '{}': {}", s.name, msg));
  };
  if (s.name == kDefaultKeyspace) {
    if (!s.key_prefix.empty()) return err("the default keyspace has the empty key prefix");
  } else if (s.key_prefix.empty()) {
    return err("needs a non-empty key prefix (only 'default' takes the keys no prefix claims)");
  }
  if (s.key_prefix.size() > 256 || !valid_utf8(s.key_prefix)) {
    return err("key prefix must be UTF-8 of at most 256 bytes");
  }

  const PartitionerSpec& p = s.partitioner;
  const bool geo = p.kind == Partitioner::kGeo;
  const Partitioner placed = geo ? p.inner : p.kind;  // what splits keys into shards
  if (geo && p.inner == Partitioner::kGeo) return err("geo cannot partition inside a region");
  if (!geo && p.inner != Partitioner::kHash) {
    return err("an inner partitioner applies to geo partitioning only");
  }
  if (p.shards < 1) return err("needs at least 1 shard");
  if (p.shards > kSlotCount) return err(fmt::format("at most {} shards", kSlotCount));
  if (p.vnodes < 1 || p.vnodes > 65536) return err("vnodes must be in 1..65536");
  // A placed geo keyspace (region_shards set) records each region's layout:
  // checked with the regions below.
  const bool geo_layout = geo && !p.region_shards.empty();
  if (!geo_layout) {
    if (placed == Partitioner::kRange) {
      // (Geo not yet placed: the same split points in every region.)
      if (p.split_points.size() + 1 != p.shards) {
        return err(fmt::format("range partitioning into {} shards needs {} split points, got {}",
                               p.shards, p.shards - 1, p.split_points.size()));
      }
      if (std::string why = range_split_problem(p.split_points); !why.empty()) return err(why);
    } else if (placed == Partitioner::kSlots && !geo && !p.split_points.empty()) {
      // Recorded slot layout: the first slot of each shard, in slot order.
      if (p.split_points.size() != p.shards) {
        return err(
            fmt::format("a slots layout lists one start slot per shard: {} shards, {} starts",
                        p.shards, p.split_points.size()));
      }
      if (std::string why = slot_starts_problem(p.split_points); !why.empty()) return err(why);
    } else if (placed == Partitioner::kSlots && !p.split_points.empty()) {
      return err(
          "a geo keyspace over slots lists start slots only with its layout (region_shards), "
          "one region after the other");
    } else if (!p.split_points.empty()) {
      return err("split points apply to range and slots partitioning only");
    }
  }
  if (geo) {
    if (p.geo_rules.empty()) return err("geo partitioning needs region rules");
    std::set<std::string> prefixes;
    bool catch_all = false;
    for (const GeoRule& r : p.geo_rules) {
      if (Status st = check_name("region", r.region); !st.ok()) return err(st.message());
      if (!valid_utf8(r.prefix)) return err("geo rule prefixes must be UTF-8");
      if (!prefixes.insert(r.prefix).second) {
        return err(fmt::format("two geo rules for prefix '{}'", r.prefix));
      }
      catch_all |= r.prefix.empty();
    }
    if (!catch_all) {
      return err(
          "geo partitioning needs a rule for the empty prefix (the region of keys no "
          "other rule matches)");
    }
    if (!p.region_shards.empty() && p.region_shards.size() != geo_regions(p).size()) {
      return err(fmt::format("region_shards lists {} regions, the rules name {}",
                             p.region_shards.size(), geo_regions(p).size()));
    }
    for (uint32_t n : p.region_shards) {
      if (n == 0) return err("every region needs at least one shard");
    }
    if (geo_layout) {
      // Each region's split points (range: its shards - 1) or start slots
      // (slots: one per shard), one region after the other; hash and ring
      // record none.
      const std::vector<std::string> regions = geo_regions(p);
      const auto listed = [&](size_t r) -> size_t {
        if (placed == Partitioner::kRange) return p.region_shards[r] - 1;
        return placed == Partitioner::kSlots ? p.region_shards[r] : 0;
      };
      size_t want = 0;
      for (size_t r = 0; r < regions.size(); ++r) want += listed(r);
      if (p.split_points.size() != want) {
        if (placed != Partitioner::kRange && placed != Partitioner::kSlots) {
          return err("split points apply to range and slots partitioning only");
        }
        return err(fmt::format(
            "a geo keyspace over {} records each region's {} one region after the other: its "
            "region_shards need {}, got {}",
            to_string(placed),
            placed == Partitioner::kRange ? "split points (its shards - 1)"
                                          : "start slots (one per shard)",
            want, p.split_points.size()));
      }
      const std::span<const std::string> all(p.split_points);
      size_t first = 0;
      for (size_t r = 0; r < regions.size(); ++r) {
        const std::span<const std::string> mine = all.subspan(first, listed(r));
        first += listed(r);
        const std::string why =
            placed == Partitioner::kRange ? range_split_problem(mine) : slot_starts_problem(mine);
        if (!why.empty()) return err(fmt::format("region '{}': {}", regions[r], why));
      }
    }
    if (partitioner_shard_count(p) > kSlotCount) {
      return err(fmt::format("at most {} shards over all regions", kSlotCount));
    }
  } else if (!p.geo_rules.empty()) {
    return err("region rules apply to geo partitioning only");
  } else if (!p.region_shards.empty()) {
    return err("region shard counts apply to geo partitioning only");
  }

  if (!p.ring_nodes.empty()) {
    if (placed != Partitioner::kRing) return err("ring nodes apply to ring partitioning only");
    if (s.replication.kind != Replication::kConsensus) {
      return err("ring nodes are recorded for REPLICATION consensus only");
    }
    for (size_t i = 0; i < p.ring_nodes.size(); ++i) {
      if (p.ring_nodes[i].value() == 0 || (i > 0 && !(p.ring_nodes[i - 1] < p.ring_nodes[i]))) {
        return err("ring nodes must be node ids in rising order");
      }
    }
  }

  const ReplicationSpec& r = s.replication;
  if (r.factor < 1 || r.factor > 64) return err("replication factor must be in 1..64");
  if (r.kind == Replication::kNone && r.factor != 1) {
    return err("replication 'none' keeps one copy: factor must be 1");
  }
  if (r.kind == Replication::kQuorum) {
    if (r.read_quorum < 1 || r.read_quorum > r.factor || r.write_quorum < 1 ||
        r.write_quorum > r.factor) {
      return err(fmt::format("quorum replication needs R and W in 1..{} (got R={} W={})", r.factor,
                             r.read_quorum, r.write_quorum));
    }
  } else if (r.read_quorum != 0 || r.write_quorum != 0) {
    return err("read/write quorum sizes apply to quorum replication only");
  }

  // Which default consistency a keyspace can promise: a side of a partition that
  // keeps serving (availability) cannot be linearizable or sequential; neither
  // can protocols that acknowledge a write a failover may lose (async
  // primary-backup) or that take concurrent conflicting writes (multi-primary);
  // quorum replication needs overlapping quorums (R + W > N) even to try.
  if (is_strong(s.consistency)) {
    const std::string_view level = to_string(s.consistency);
    if (s.partition_mode == PartitionMode::kAvailability) {
      return err(fmt::format(
          "{} consistency needs partition mode 'consistency' (a side of a partition that keeps "
          "serving cannot be {})",
          level, level));
    }
    if (r.kind == Replication::kPrimaryBackupAsync || r.kind == Replication::kMultiPrimary) {
      return err(
          fmt::format("{} replication cannot serve {} consistency", to_string(r.kind), level));
    }
    if (r.kind == Replication::kQuorum && r.read_quorum + r.write_quorum <= r.factor) {
      return err(fmt::format("{} consistency over quorum replication needs R + W > N", level));
    }
  }
  return Status::OK();
}

namespace {

// The keyspace changes under way (moving_from.from_keyspace, dropping): see
// the invariants at the top of cluster_map.h.
Status validate_keyspace_changes(const ClusterMap& map) {
  for (const Keyspace& k : map.keyspaces) {
    const auto err = [&](const std::string& msg) {
      return Status::InvalidArgument(fmt::format("keyspace '{}': {}", k.spec.name, msg));
    };
    if (k.dropping) {
      if (k.spec.name == kDefaultKeyspace) return err("the default keyspace cannot be dropped");
      if (k.moving_from) return err("it cannot move while it is being dropped");
    }
    if (k.creating) {
      if (k.spec.name == kDefaultKeyspace) return err("the default keyspace is never created");
      if (k.moving_from || k.dropping) {
        return err("it cannot move or be dropped while it is being created");
      }
    }
    if (!k.moving_from || k.moving_from->from_keyspace.empty()) continue;
    const Keyspace* from = map.find_keyspace(k.moving_from->from_keyspace);
    if (from == nullptr || from == &k) {
      return err(fmt::format("its keys come from keyspace '{}', which is not another keyspace",
                             k.moving_from->from_keyspace));
    }
    if (from->moving_from || from->dropping) {
      return err(fmt::format("its keys come from keyspace '{}', which is itself changing",
                             from->spec.name));
    }
    // The keyspace that owned the prefix before: the longest other prefix
    // that this one starts with.
    const Keyspace* owner = nullptr;
    for (const Keyspace& o : map.keyspaces) {
      if (&o == &k || !k.spec.key_prefix.starts_with(o.spec.key_prefix)) continue;
      if (owner == nullptr || o.spec.key_prefix.size() > owner->spec.key_prefix.size()) owner = &o;
    }
    if (owner != from) {
      return err(fmt::format("its keys come from keyspace '{}', which does not own its prefix",
                             from->spec.name));
    }
  }
  return Status::OK();
}

}  // namespace

Status validate(const ClusterMap& map) {
  if (Status s = check_name("cluster id", map.cluster_id); !s.ok()) return s;
  if (map.epoch.value() < 1) return Status::InvalidArgument("epoch must be at least 1");
  if (map.last_change.find('\n') != std::string::npos || !valid_utf8(map.last_change)) {
    return Status::InvalidArgument("last_change must be one line of UTF-8");
  }

  // Members.
  std::set<NodeId> ids;
  std::set<std::string> addresses, peer_addresses;
  size_t live_voters = 0;
  for (const Member& m : map.members) {
    if (m.id.value() == 0) return Status::InvalidArgument("node id 0 is not a valid member id");
    if (!ids.insert(m.id).second) {
      return Status::InvalidArgument(fmt::format("node {} is listed twice", m.id.value()));
    }
    const auto err = [&](const Status& s) {
      return Status::InvalidArgument(fmt::format("node {}: {}", m.id.value(), s.message()));
    };
    if (Status s = check_host_port("address", m.address); !s.ok()) return err(s);
    if (Status s = check_host_port("peer address", m.peer_address); !s.ok()) return err(s);
    if (Status s = check_name("region", m.region); !s.ok()) return err(s);
    if (m.state == MemberState::kRemoved) {
      if (m.voter) return err(Status::InvalidArgument("a removed member cannot be a voter"));
      continue;
    }
    if (!addresses.insert(m.address).second) {
      return err(Status::InvalidArgument(
          fmt::format("address {} is already used by another member", m.address)));
    }
    if (!peer_addresses.insert(m.peer_address).second) {
      return err(Status::InvalidArgument(
          fmt::format("peer address {} is already used by another member", m.peer_address)));
    }
    live_voters += m.voter;
  }
  if (live_voters == 0) return Status::InvalidArgument("the cluster needs at least one voter");

  // Keyspaces.
  std::set<std::string> names;
  bool has_default = false;
  for (const Keyspace& k : map.keyspaces) {
    const KeyspaceSpec& s = k.spec;
    if (Status st = validate_spec(s); !st.ok()) return st;
    if (!names.insert(s.name).second) {
      return Status::InvalidArgument(fmt::format("keyspace '{}' is listed twice", s.name));
    }
    has_default |= s.name == kDefaultKeyspace;
    for (const Keyspace& other : map.keyspaces) {
      if (&other == &k || other.spec.key_prefix.empty() || s.key_prefix.empty()) continue;
      // Nested prefixes are fine (the longest prefix of a key wins); the same
      // prefix twice would leave a key two keyspaces.
      if (other.spec.key_prefix == s.key_prefix) {
        return Status::InvalidArgument(fmt::format(
            "keyspace '{}' has the same prefix '{}' as keyspace '{}': a key could belong to both",
            s.name, s.key_prefix, other.spec.name));
      }
    }

    const auto err = [&](const std::string& msg) {
      return Status::InvalidArgument(fmt::format("keyspace '{}': {}", s.name, msg));
    };
    const uint32_t want = partitioner_shard_count(s.partitioner);
    if (k.shards.size() != want) {
      return err(fmt::format("the partitioner asks for {} shards, the shard map has {}", want,
                             k.shards.size()));
    }
    for (size_t i = 0; i < k.shards.size(); ++i) {
      const Shard& shard = k.shards[i];
      if (shard.id.value() != i) {
        return err(fmt::format("shard at position {} has id {} (ids are 0..{} in order)", i,
                               shard.id.value(), k.shards.size() - 1));
      }
      if (shard.owners.empty()) return err(fmt::format("shard {} has no owner", i));
      if (shard.config_epoch > map.epoch.value()) {
        return err(fmt::format("shard {} has config_epoch {}, past the map's epoch {}", i,
                               shard.config_epoch, map.epoch.value()));
      }
      // A consensus shard may list one owner more while a replica is added
      // (coord/replica_moves.h): the new member, last.
      const size_t most =
          s.replication.factor + (s.replication.kind == Replication::kConsensus ? 1 : 0);
      if (shard.owners.size() > most) {
        return err(fmt::format("shard {} has {} owners, more than the replication factor {}{}", i,
                               shard.owners.size(), s.replication.factor,
                               most > s.replication.factor ? " plus one being added" : ""));
      }
      const std::string region = shard_region(s.partitioner, static_cast<uint32_t>(i));
      std::set<NodeId> seen;
      for (NodeId owner : shard.owners) {
        if (!seen.insert(owner).second) {
          return err(fmt::format("shard {} lists node {} twice", i, owner.value()));
        }
        const Member* m = map.find_member(owner);
        if (m == nullptr || m->state == MemberState::kRemoved) {
          return err(
              fmt::format("shard {} is owned by node {}, which is not a member", i, owner.value()));
        }
        if (!region.empty() && m->region != region) {
          return err(fmt::format("shard {} belongs to region '{}' but node {} is in region '{}'", i,
                                 region, owner.value(), m->region));
        }
      }
    }
  }
  if (!has_default) return Status::InvalidArgument("there is no 'default' keyspace");
  if (Status st = validate_keyspace_changes(map); !st.ok()) return st;

  // Change stamps.
  if (map.recent_changes.size() > kMaxRecentChanges) {
    return Status::InvalidArgument(
        fmt::format("more than {} recent change stamps", kMaxRecentChanges));
  }
  for (size_t i = 0; i < map.recent_changes.size(); ++i) {
    const ChangeStamp& c = map.recent_changes[i];
    if (c.change_id.empty() || c.change_id.size() > 128 || !valid_utf8(c.change_id) ||
        c.epoch > map.epoch || c.epoch.value() < 1 ||
        (i > 0 && !(map.recent_changes[i - 1].epoch < c.epoch))) {
      return Status::InvalidArgument(
          "recent change stamps need non-empty ids and strictly increasing epochs up to the "
          "current one");
    }
  }
  return Status::OK();
}

// ---- encode -----------------------------------------------------------------------

namespace {

Json ids_json(const std::vector<NodeId>& ids) {
  Json a = Json::array();
  for (NodeId id : ids) a.push_back(id.value());
  return a;
}

Json shards_json(const std::vector<Shard>& shards) {
  Json shard_list = Json::array();
  for (const Shard& sh : shards) {
    Json j{{"id", sh.id.value()}, {"owners", ids_json(sh.owners)}};
    if (!sh.moving_to.empty()) j["moving_to"] = ids_json(sh.moving_to);
    if (sh.config_epoch != 0) j["config_epoch"] = sh.config_epoch;
    shard_list.push_back(std::move(j));
  }
  return shard_list;
}

Json to_json(const Keyspace& k) {
  const KeyspaceSpec& s = k.spec;
  Json geo = Json::array();
  for (const GeoRule& r : s.partitioner.geo_rules) {
    geo.push_back(Json{{"prefix", r.prefix}, {"region", r.region}});
  }
  Json shard_list = shards_json(k.shards);
  Json out = Json{
      {"name", s.name},
      {"key_prefix", s.key_prefix},
      {"partitioner", Json{{"kind", to_string(s.partitioner.kind)},
                           {"shards", s.partitioner.shards},
                           {"vnodes", s.partitioner.vnodes},
                           {"split_points", s.partitioner.split_points},
                           {"geo_rules", geo},
                           {"inner", to_string(s.partitioner.inner)}}},
      {"replication", Json{{"kind", to_string(s.replication.kind)},
                           {"factor", s.replication.factor},
                           {"read_quorum", s.replication.read_quorum},
                           {"write_quorum", s.replication.write_quorum}}},
      {"consistency", to_string(s.consistency)},
      {"partition_mode", to_string(s.partition_mode)},
      {"shards", shard_list},
  };
  if (!s.partitioner.region_shards.empty()) {
    out["partitioner"]["region_shards"] = s.partitioner.region_shards;
  }
  if (!s.partitioner.ring_nodes.empty()) {
    out["partitioner"]["ring_nodes"] = ids_json(s.partitioner.ring_nodes);
  }
  if (k.moving_from) {
    out["moving_from"] = Json{{"split_points", k.moving_from->split_points},
                              {"shards", shards_json(k.moving_from->shards)}};
    if (!k.moving_from->region_shards.empty()) {
      out["moving_from"]["region_shards"] = k.moving_from->region_shards;
    }
    // Only when set, as the two fields below: maps written before they
    // existed decode unchanged.
    if (!k.moving_from->from_keyspace.empty()) {
      out["moving_from"]["from_keyspace"] = k.moving_from->from_keyspace;
    }
  }
  if (k.dropping) out["dropping"] = true;
  if (k.creating) out["creating"] = true;
  return out;
}

}  // namespace

std::string encode(const ClusterMap& map) {
  Json members = Json::array();
  for (const Member& m : map.members) {
    members.push_back(Json{{"id", m.id.value()},
                           {"address", m.address},
                           {"peer_address", m.peer_address},
                           {"region", m.region},
                           {"state", to_string(m.state)},
                           {"voter", m.voter}});
  }
  Json keyspaces = Json::array();
  for (const Keyspace& k : map.keyspaces) keyspaces.push_back(to_json(k));
  Json stamps = Json::array();
  for (const ChangeStamp& c : map.recent_changes) {
    stamps.push_back(Json{{"epoch", c.epoch.value()}, {"id", c.change_id}});
  }
  const Json doc{{"format", kFormatVersion},   {"cluster_id", map.cluster_id},
                 {"epoch", map.epoch.value()}, {"members", members},
                 {"keyspaces", keyspaces},     {"last_change", map.last_change},
                 {"recent_changes", stamps}};
  // nlohmann::json keeps object keys sorted, and the compact form has no
  // whitespace choices: the same map gives the same bytes. `replace` instead of
  // throwing on bad UTF-8: validate() keeps such strings out of real documents.
  return doc.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// ---- decode -----------------------------------------------------------------------

namespace {

// Reads the fields of one JSON object, remembering the first error (with the
// object's path) and which fields were read, so that finish() can refuse
// unknown ones. After an error every accessor returns a default value.
class Fields {
 public:
  Fields(const Json& j, std::string path, Status* error)
      : j_(j), path_(std::move(path)), error_(error) {
    if (!j_.is_object()) fail(fmt::format("{} must be an object", path_));
  }

  std::string str(const char* key) {
    const Json* v = get(key);
    if (v == nullptr) return {};
    if (!v->is_string()) return fail(type_error(key, "a string")), std::string();
    return v->get<std::string>();
  }
  uint64_t u64(const char* key, uint64_t max = UINT64_MAX) {
    const Json* v = get(key);
    if (v == nullptr) return 0;
    if (!v->is_number_unsigned() || v->get<uint64_t>() > max) {
      return fail(type_error(key, fmt::format("an integer in 0..{}", max))), 0;
    }
    return v->get<uint64_t>();
  }
  uint32_t u32(const char* key) { return static_cast<uint32_t>(u64(key, UINT32_MAX)); }
  bool boolean(const char* key) {
    const Json* v = get(key);
    if (v == nullptr) return false;
    if (!v->is_boolean()) return fail(type_error(key, "true or false")), false;
    return v->get<bool>();
  }
  // True if the optional field `key` is present (and marks it read).
  bool has(const char* key) {
    read_.insert(key);
    return j_.contains(key);
  }
  const Json& array(const char* key) {
    static const Json kEmpty = Json::array();
    const Json* v = get(key);
    if (v == nullptr) return kEmpty;
    if (!v->is_array()) return fail(type_error(key, "an array")), kEmpty;
    return *v;
  }
  const Json& object(const char* key) {
    static const Json kEmpty = Json::object();
    const Json* v = get(key);
    if (v == nullptr) return kEmpty;
    if (!v->is_object()) return fail(type_error(key, "an object")), kEmpty;
    return *v;
  }
  template <typename E>
  E enumeration(const char* key, Result<E> (*parse)(std::string_view), E fallback) {
    const std::string name = str(key);
    if (!ok()) return fallback;
    Result<E> e = parse(name);
    if (!e.ok()) return fail(fmt::format("{}.{}: {}", path_, key, e.status().message())), fallback;
    return *e;
  }
  std::string path(const char* key) const { return fmt::format("{}.{}", path_, key); }

  // Refuses fields that were not read: an unknown field is a document this
  // version does not understand, and silently dropping it would lose it on the
  // next write.
  void finish() {
    if (!ok()) return;
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!read_.contains(it.key())) {
        fail(fmt::format("{}: unknown field \"{}\"", path_, it.key()));
        return;
      }
    }
  }
  bool ok() const { return error_->ok(); }
  void fail(std::string msg) {
    if (error_->ok()) *error_ = Status::Corruption("meta document: " + msg);
  }

 private:
  const Json* get(const char* key) {
    if (!ok()) return nullptr;
    read_.insert(key);
    auto it = j_.find(key);
    if (it == j_.end()) {
      fail(fmt::format("{}: missing field \"{}\"", path_, key));
      return nullptr;
    }
    return &*it;
  }
  std::string type_error(const char* key, std::string_view want) const {
    return fmt::format("{}.{} must be {}", path_, key, want);
  }

  const Json& j_;
  std::string path_;
  Status* error_;
  std::set<std::string> read_;
};

std::vector<NodeId> decode_ids(const Json& a, const std::string& path, Status* error) {
  std::vector<NodeId> ids;
  for (const Json& v : a) {
    if (!v.is_number_unsigned()) {
      if (error->ok())
        *error = Status::Corruption("meta document: " + path + " must hold node ids");
      return {};
    }
    ids.emplace_back(v.get<uint64_t>());
  }
  return ids;
}

std::vector<std::string> decode_strings(const Json& a, const std::string& path, Status* error) {
  std::vector<std::string> out;
  for (const Json& v : a) {
    if (!v.is_string()) {
      if (error->ok()) *error = Status::Corruption("meta document: " + path + " must hold strings");
      return {};
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

std::vector<Shard> decode_shards(const Json& shards, const std::string& path, Status* error) {
  std::vector<Shard> out;
  for (size_t i = 0; i < shards.size() && error->ok(); ++i) {
    const std::string shard_path = fmt::format("{}[{}]", path, i);
    Fields sh(shards[i], shard_path, error);
    Shard shard;
    shard.id = ShardId(sh.u64("id"));
    shard.owners = decode_ids(sh.array("owners"), shard_path + ".owners", error);
    if (sh.has("moving_to")) {
      shard.moving_to = decode_ids(sh.array("moving_to"), shard_path + ".moving_to", error);
    }
    if (sh.has("config_epoch")) shard.config_epoch = sh.u64("config_epoch");
    sh.finish();
    out.push_back(std::move(shard));
  }
  return out;
}

Keyspace decode_keyspace(const Json& j, const std::string& path, Status* error) {
  Keyspace k;
  Fields f(j, path, error);
  KeyspaceSpec& s = k.spec;
  s.name = f.str("name");
  s.key_prefix = f.str("key_prefix");
  {
    Fields p(f.object("partitioner"), f.path("partitioner"), error);
    s.partitioner.kind = p.enumeration("kind", &parse_partitioner, Partitioner::kHash);
    s.partitioner.shards = p.u32("shards");
    s.partitioner.vnodes = p.u32("vnodes");
    s.partitioner.split_points =
        decode_strings(p.array("split_points"), p.path("split_points"), error);
    const Json& rules = p.array("geo_rules");
    for (size_t i = 0; i < rules.size() && p.ok(); ++i) {
      Fields r(rules[i], fmt::format("{}[{}]", p.path("geo_rules"), i), error);
      GeoRule rule;
      rule.prefix = r.str("prefix");
      rule.region = r.str("region");
      r.finish();
      s.partitioner.geo_rules.push_back(std::move(rule));
    }
    s.partitioner.inner = p.enumeration("inner", &parse_partitioner, Partitioner::kHash);
    if (p.has("region_shards")) {
      const Json& counts = p.array("region_shards");
      for (const Json& c : counts) {
        if (!c.is_number_unsigned() || c.get<uint64_t>() > UINT32_MAX) {
          p.fail(p.path("region_shards") + " must hold shard counts");
          break;
        }
        s.partitioner.region_shards.push_back(c.get<uint32_t>());
      }
    }
    if (p.has("ring_nodes")) {
      s.partitioner.ring_nodes = decode_ids(p.array("ring_nodes"), p.path("ring_nodes"), error);
    }
    p.finish();
  }
  {
    Fields r(f.object("replication"), f.path("replication"), error);
    s.replication.kind = r.enumeration("kind", &parse_replication, Replication::kConsensus);
    s.replication.factor = r.u32("factor");
    s.replication.read_quorum = r.u32("read_quorum");
    s.replication.write_quorum = r.u32("write_quorum");
    r.finish();
  }
  s.consistency = f.enumeration("consistency", &parse_consistency, Consistency::kLinearizable);
  s.partition_mode =
      f.enumeration("partition_mode", &parse_partition_mode, PartitionMode::kConsistency);
  k.shards = decode_shards(f.array("shards"), f.path("shards"), error);
  if (f.has("moving_from")) {
    Fields m(f.object("moving_from"), f.path("moving_from"), error);
    SourceLayout source;
    source.split_points = decode_strings(m.array("split_points"), m.path("split_points"), error);
    source.shards = decode_shards(m.array("shards"), m.path("shards"), error);
    if (m.has("region_shards")) {
      for (const Json& c : m.array("region_shards")) {
        if (!c.is_number_unsigned() || c.get<uint64_t>() > UINT32_MAX) {
          m.fail(m.path("region_shards") + " must hold shard counts");
          break;
        }
        source.region_shards.push_back(c.get<uint32_t>());
      }
    }
    if (m.has("from_keyspace")) source.from_keyspace = m.str("from_keyspace");
    m.finish();
    k.moving_from = std::move(source);
  }
  if (f.has("dropping")) k.dropping = f.boolean("dropping");
  if (f.has("creating")) k.creating = f.boolean("creating");
  f.finish();
  return k;
}

}  // namespace

Result<ClusterMap> decode(std::string_view bytes) {
  const Json doc = Json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Status::Corruption("meta document: not valid JSON");
  Status error;
  Fields f(doc, "document", &error);
  if (!f.ok()) return error;
  // The version first: a newer document may differ in any field after it.
  const uint64_t format = f.u64("format");
  if (!f.ok()) return error;
  if (format != kFormatVersion) {
    return Status::Corruption(fmt::format(
        "meta document: format version {} is not supported (this build reads version {})", format,
        kFormatVersion));
  }

  ClusterMap map;
  map.cluster_id = f.str("cluster_id");
  map.epoch = Epoch(f.u64("epoch"));
  const Json& members = f.array("members");
  for (size_t i = 0; i < members.size() && f.ok(); ++i) {
    Fields m(members[i], fmt::format("members[{}]", i), &error);
    Member member;
    member.id = NodeId(m.u64("id"));
    member.address = m.str("address");
    member.peer_address = m.str("peer_address");
    member.region = m.str("region");
    member.state = m.enumeration("state", &parse_member_state, MemberState::kJoining);
    member.voter = m.boolean("voter");
    m.finish();
    map.members.push_back(std::move(member));
  }
  const Json& keyspaces = f.array("keyspaces");
  for (size_t i = 0; i < keyspaces.size() && f.ok(); ++i) {
    map.keyspaces.push_back(decode_keyspace(keyspaces[i], fmt::format("keyspaces[{}]", i), &error));
  }
  map.last_change = f.str("last_change");
  const Json& stamps = f.array("recent_changes");
  for (size_t i = 0; i < stamps.size() && f.ok(); ++i) {
    Fields c(stamps[i], fmt::format("recent_changes[{}]", i), &error);
    ChangeStamp stamp;
    stamp.epoch = Epoch(c.u64("epoch"));
    stamp.change_id = c.str("id");
    c.finish();
    map.recent_changes.push_back(std::move(stamp));
  }
  f.finish();
  if (!error.ok()) return error;
  if (Status s = validate(map); !s.ok()) return Status::Corruption("meta document: " + s.message());
  return map;
}

}  // namespace statekv::meta
