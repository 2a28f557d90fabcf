// What a client sees of the cluster over RESP: Redis Cluster's CLUSTER
// SLOTS / SHARDS / NODES / KEYSLOT / MYID, and statekv's LOCATE and KEYSPACE.
//
// Redis Cluster clients see one keyspace: "default" when it is partitioned by
// slots, else the first slots keyspace, else none (empty slot lists). Node
// ids are 40 hex digits, as Redis Cluster's are: the statekv node id,
// zero-padded.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "coord/coordinator.h"
#include "coord/replica_controller.h"
#include "coord/replica_moves.h"
#include "meta/meta_client.h"
#include "meta/transitions.h"
#include "node/raft_register_client.h"
#include "partition/layout.h"
#include "partition/slots.h"
#include "resp/value.h"

namespace statekv::coord {

namespace {

std::string redis_id(NodeId id) {
  return fmt::format("{:040x}", id.value());
}

// host and port of a "host:port" address.
std::pair<std::string, int64_t> split_address(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return {address, 0};
  return {address.substr(0, colon), std::strtoll(address.c_str() + colon + 1, nullptr, 10)};
}

const meta::Keyspace* redis_keyspace(const meta::ClusterMap& map) {
  const meta::Keyspace* first = nullptr;
  for (const meta::Keyspace& k : map.keyspaces) {
    if (k.spec.partitioner.kind != meta::Partitioner::kSlots) continue;
    if (k.spec.key_prefix.empty()) return &k;
    if (first == nullptr) first = &k;
  }
  return first;
}

struct SlotSpan {
  uint32_t start, end;  // inclusive
  std::vector<NodeId> owners;
};

// The slot ranges of a slots keyspace, from its recorded layout.
std::vector<SlotSpan> slot_spans(const meta::Keyspace& k) {
  std::vector<SlotSpan> out;
  const auto& starts = k.spec.partitioner.split_points;
  for (size_t i = 0; i < k.shards.size() && i < starts.size(); ++i) {
    const uint32_t start = static_cast<uint32_t>(std::stoul(starts[i]));
    const uint32_t end = i + 1 < starts.size()
                             ? static_cast<uint32_t>(std::stoul(starts[i + 1])) - 1
                             : meta::kSlotCount - 1;
    out.push_back(SlotSpan{start, end, k.shards[i].owners});
  }
  return out;
}

void write_node_entry(resp::Writer& out, const meta::Member* m, NodeId id) {
  const auto [host, port] = split_address(m ? m->address : std::string("?:0"));
  out.array(3);
  out.bulk(host);
  out.integer(port);
  out.bulk(redis_id(id));
}

}  // namespace

std::string Coordinator::my_id() const {
  return redis_id(options_.self);
}

void Coordinator::cluster_keyslot(std::string_view key, resp::Writer& out) const {
  out.integer(partition::key_slot(key));
}

void Coordinator::cluster_slots(resp::Writer& out) const {
  auto t = table();
  const meta::Keyspace* k = t ? redis_keyspace(t->map()) : nullptr;
  if (k == nullptr) {
    out.array(0);
    return;
  }
  const std::vector<SlotSpan> spans = slot_spans(*k);
  out.array(spans.size());
  for (const SlotSpan& s : spans) {
    out.array(2 + s.owners.size());
    out.integer(s.start);
    out.integer(s.end);
    for (NodeId owner : s.owners) write_node_entry(out, t->member(owner), owner);
  }
}

void Coordinator::cluster_shards(resp::Writer& out) const {
  auto t = table();
  const meta::Keyspace* k = t ? redis_keyspace(t->map()) : nullptr;
  if (k == nullptr) {
    out.array(0);
    return;
  }
  // One entry per primary, with every slot range it serves.
  std::map<NodeId, std::vector<SlotSpan>> by_primary;
  for (const SlotSpan& s : slot_spans(*k)) by_primary[s.owners.front()].push_back(s);
  out.array(by_primary.size());
  for (const auto& [primary, spans] : by_primary) {
    out.map(2);
    out.bulk("slots");
    out.array(spans.size() * 2);
    for (const SlotSpan& s : spans) {
      out.integer(s.start);
      out.integer(s.end);
    }
    out.bulk("nodes");
    out.array(1);
    const meta::Member* m = t->member(primary);
    const auto [host, port] = split_address(m ? m->address : std::string("?:0"));
    out.map(7);
    out.bulk("id");
    out.bulk(redis_id(primary));
    out.bulk("port");
    out.integer(port);
    out.bulk("ip");
    out.bulk(host);
    out.bulk("endpoint");
    out.bulk(host);
    out.bulk("role");
    out.bulk("master");
    out.bulk("replication-offset");
    out.integer(0);
    out.bulk("health");
    out.bulk("online");
  }
}

void Coordinator::cluster_nodes(resp::Writer& out) const {
  auto t = table();
  if (!t) {
    out.error("CLUSTERDOWN the cluster map is not known yet");
    return;
  }
  const meta::Keyspace* k = redis_keyspace(t->map());
  std::map<NodeId, std::string> slots;
  if (k != nullptr) {
    for (const SlotSpan& s : slot_spans(*k)) {
      std::string& text = slots[s.owners.front()];
      text +=
          s.start == s.end ? fmt::format(" {}", s.start) : fmt::format(" {}-{}", s.start, s.end);
    }
  }
  std::string text;
  const uint64_t epoch = t->epoch().value();
  for (const meta::Member& m : t->map().members) {
    if (m.state != meta::MemberState::kActive && m.state != meta::MemberState::kJoining) continue;
    const auto [host, port] = split_address(m.address);
    const auto [peer_host, peer_port] = split_address(m.peer_address);
    text += fmt::format("{} {}:{}@{} {}master - 0 0 {} connected{}\n", redis_id(m.id), host, port,
                        peer_port, m.id == options_.self ? "myself," : "", epoch, slots[m.id]);
  }
  out.verbatim("txt", text);
}

void Coordinator::locate(std::string_view key, resp::Writer& out) const {
  write_locate(key, out, nullptr);
}

bool Coordinator::locate_asks_leader(std::string_view key) const {
  auto t = table();
  if (!t) return false;
  const Route r = t->route(key);
  if (r.keyspace->spec.replication.kind != meta::Replication::kConsensus) return false;
  auto g = groups();
  if (!g) return false;
  const GroupId group = ReplicaGroups::group_id(r.keyspace->spec.name, r.shard);
  for (const GroupStatus& s : g->status()) {
    if (s.id == group) return s.role != "leader";
  }
  return true;  // no member here: only the leader knows its replicas
}

void Coordinator::locate_at_leader(std::string key, int resp,
                                   std::function<void(std::string)> done) {
  auto t = table();
  if (!t) {
    done("-CLUSTERDOWN the cluster map is not known yet\r\n");
    return;
  }
  const Route r = t->route(key);
  auto call = std::make_shared<GroupCall>();
  call->group = ReplicaGroups::group_id(r.keyspace->spec.name, r.shard);
  call->members = r.owners;
  call->resp = resp;
  call->epoch = t->epoch().value();
  call->argv = {std::string(kReplicasVerb), "status"};
  // A status page: a leader that does not answer soon is shown as unknown.
  call->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  call->done = [this, key = std::move(key), resp, done = std::move(done)](std::string reply,
                                                                          storage::Sequence) {
    std::optional<GroupView> view;
    if (reply.size() > 3 && reply[0] == '+') {
      auto parsed = parse_group_view(reply.substr(1, reply.size() - 3));
      if (parsed.ok()) view = std::move(parsed).value();
    }
    std::string out;
    resp::Writer w(&out, resp);
    write_locate(key, w, view ? &*view : nullptr);
    done(std::move(out));
  };
  send_group_call(call, NodeId());
}

void Coordinator::write_locate(std::string_view key, resp::Writer& out,
                               const GroupView* leader_view) const {
  auto t = table();
  if (!t) {
    out.error("CLUSTERDOWN the cluster map is not known yet");
    return;
  }
  const Route r = t->route(key);
  const bool slots = r.keyspace->spec.partitioner.kind == meta::Partitioner::kSlots;
  const bool replicated = r.keyspace->spec.replication.kind == meta::Replication::kConsensus;
  out.map((slots ? 8 : 7) + (replicated ? 3 : 0));
  out.bulk("keyspace");
  out.bulk(r.keyspace->spec.name);
  out.bulk("partitioner");
  out.bulk(meta::to_string(r.keyspace->spec.partitioner.kind));
  out.bulk("shard");
  out.integer(r.shard);
  if (slots) {
    out.bulk("slot");
    out.integer(partition::key_slot(key));
  }
  out.bulk("owners");
  out.array(r.owners.size());
  for (NodeId o : r.owners) out.integer(static_cast<int64_t>(o.value()));
  out.bulk("addresses");
  out.array(r.owners.size());
  for (NodeId o : r.owners) {
    const meta::Member* m = t->member(o);
    out.bulk(m ? m->address : "");
  }
  out.bulk("replication");
  out.bulk(meta::to_string(r.keyspace->spec.replication.kind));
  out.bulk("epoch");
  out.integer(static_cast<int64_t>(t->epoch().value()));
  if (!replicated) return;
  // The replica group: the leader knows each member's applied index (as of
  // its last answer: raft's AppendReply::applied_index) and how far behind
  // its log each member is; asked of another node, that is the leader's
  // view (leader_view, from `__replicas status`), else what this node sees:
  // a member knows the leader and its own applied index.
  const GroupId group = ReplicaGroups::group_id(r.keyspace->spec.name, r.shard);
  std::optional<GroupStatus> mine;
  if (auto g = groups()) {
    for (GroupStatus& s : g->status()) {
      if (s.id == group) mine = std::move(s);
    }
  }
  std::optional<NodeId> leader;
  if (leader_view != nullptr) {
    leader = leader_view->leader;
  } else if (mine) {
    leader = mine->leader;
  }
  const bool leads_here = mine && mine->role == "leader";
  out.bulk("group");
  out.integer(static_cast<int64_t>(group.value()));
  out.bulk("leader");
  if (leader) {
    out.integer(static_cast<int64_t>(leader->value()));
  } else {
    out.null();  // not known here (this node is not a member, or an election runs)
  }
  out.bulk("replicas");
  out.array(r.owners.size());
  for (NodeId o : r.owners) {
    const bool is_self = o == options_.self;
    out.map(4);
    out.bulk("node");
    out.integer(static_cast<int64_t>(o.value()));
    out.bulk("role");
    out.bulk(!leader ? "unknown" : *leader == o ? "leader" : "follower");
    out.bulk("applied");
    std::optional<uint64_t> applied;
    if (mine && is_self) {
      applied = mine->applied_index;  // its own: the freshest there is
    } else if (leader_view != nullptr && leader_view->applied.contains(o)) {
      applied = leader_view->applied.at(o);
    } else if (mine && mine->applied.contains(o)) {
      applied = mine->applied.at(o);
    }
    if (applied) {
      out.integer(static_cast<int64_t>(*applied));
    } else {
      out.null();  // only the leader hears it (from each member's answers)
    }
    out.bulk("lag");
    std::optional<uint64_t> lag;
    if (leads_here && leader_view == nullptr) {
      if (is_self) {
        lag = 0;
      } else if (auto it = mine->match.find(o); it != mine->match.end()) {
        lag = mine->last_index - std::min(mine->last_index, it->second);
      }
    } else if (leader_view != nullptr && leader_view->last_index != 0) {
      if (o == leader_view->leader) {
        lag = 0;
      } else if (auto it = leader_view->match.find(o); it != leader_view->match.end()) {
        lag = leader_view->last_index - std::min(leader_view->last_index, it->second);
      }
    }
    if (lag) {
      out.integer(static_cast<int64_t>(*lag));
    } else {
      out.null();  // only the leader measures it (entries behind its log)
    }
  }
}

namespace {

// "a,b,,c" -> {"a", "b", "", "c"}: empty items are kept (validation judges them).
std::vector<std::string> split_commas(std::string_view text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string_view::npos) comma = text.size();
    out.emplace_back(text.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

// KEYSPACE CREATE name [PREFIX p] [PARTITIONER kind] [VNODES n] [SPLITS a,b,...]
//   [REPLICATION kind] [FACTOR n] [CONSISTENCY level] [PARTITION-MODE mode]
// (SPLITS relative to the prefix: meta::split_points_under)
Result<meta::KeyspaceSpec> parse_create(std::span<const std::string_view> argv) {
  meta::KeyspaceSpec spec;
  spec.name = std::string(argv[1]);
  spec.replication.kind = meta::Replication::kNone;
  spec.replication.factor = 1;
  spec.key_prefix = spec.name + ":";
  for (size_t i = 2; i < argv.size(); i += 2) {
    const std::string_view opt = argv[i];
    if (i + 1 >= argv.size()) {
      return Status::InvalidArgument("option " + std::string(opt) + " needs a value");
    }
    const std::string_view v = argv[i + 1];
    auto number = [&](uint32_t* out) -> Status {
      char* end = nullptr;
      const std::string text(v);
      const unsigned long n = std::strtoul(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || n > UINT32_MAX) {
        return Status::InvalidArgument(std::string(opt) + " needs a number, not '" + text + "'");
      }
      *out = static_cast<uint32_t>(n);
      return Status::OK();
    };
    Status s;
    if (server::iequals(opt, "prefix")) {
      spec.key_prefix = std::string(v);
    } else if (server::iequals(opt, "partitioner")) {
      auto p = meta::parse_partitioner(v);
      if (!p.ok()) return p.status();
      spec.partitioner.kind = *p;
    } else if (server::iequals(opt, "vnodes")) {
      s = number(&spec.partitioner.vnodes);
    } else if (server::iequals(opt, "splits")) {
      spec.partitioner.split_points = split_commas(v);
    } else if (server::iequals(opt, "geo")) {
      // GEO prefix=region,prefix=region,...; "=region" is the catch-all.
      for (const std::string& rule : split_commas(v)) {
        const size_t eq = rule.rfind('=');
        if (eq == std::string::npos) {
          return Status::InvalidArgument("GEO rule '" + rule + "' is not PREFIX=REGION");
        }
        spec.partitioner.geo_rules.push_back(
            meta::GeoRule{rule.substr(0, eq), rule.substr(eq + 1)});
      }
    } else if (server::iequals(opt, "inner")) {
      auto p = meta::parse_partitioner(v);
      if (!p.ok()) return p.status();
      spec.partitioner.inner = *p;
    } else if (server::iequals(opt, "replication")) {
      auto r = meta::parse_replication(v);
      if (!r.ok()) return r.status();
      spec.replication.kind = *r;
    } else if (server::iequals(opt, "factor")) {
      s = number(&spec.replication.factor);
    } else if (server::iequals(opt, "consistency")) {
      auto c = meta::parse_consistency(v);
      if (!c.ok()) return c.status();
      spec.consistency = *c;
    } else if (server::iequals(opt, "partition-mode")) {
      auto m = meta::parse_partition_mode(v);
      if (!m.ok()) return m.status();
      spec.partition_mode = *m;
    } else {
      return Status::InvalidArgument("unknown option '" + std::string(opt) + "'");
    }
    if (!s.ok()) return s;
  }
  if (Status served = meta::check_replication_served(spec.replication); !served.ok()) {
    return served;
  }
  if (spec.partitioner.kind == meta::Partitioner::kRange ||
      (spec.partitioner.kind == meta::Partitioner::kGeo &&
       spec.partitioner.inner == meta::Partitioner::kRange)) {
    // SPLITS are relative to the prefix (PREFIX may come after SPLITS).
    spec.partitioner.split_points =
        meta::split_points_under(spec.key_prefix, std::move(spec.partitioner.split_points));
    spec.partitioner.shards = static_cast<uint32_t>(spec.partitioner.split_points.size() + 1);
  }
  return spec;
}

void write_keyspace_info(const meta::Keyspace& k, resp::Writer& out) {
  std::map<NodeId, size_t> per_node;
  for (const meta::Shard& s : k.shards) ++per_node[s.owners.front()];
  // vnodes only where they place keys: a ring (also inside geo).
  const meta::PartitionerSpec& p = k.spec.partitioner;
  const bool ring = p.kind == meta::Partitioner::kRing ||
                    (p.kind == meta::Partitioner::kGeo && p.inner == meta::Partitioner::kRing);
  out.map(ring ? 9 : 8);
  out.bulk("name");
  out.bulk(k.spec.name);
  out.bulk("prefix");
  out.bulk(k.spec.key_prefix);
  out.bulk("partitioner");
  out.bulk(meta::to_string(k.spec.partitioner.kind));
  if (ring) {
    out.bulk("vnodes");
    out.integer(k.spec.partitioner.vnodes);
  }
  out.bulk("shards");
  out.integer(static_cast<int64_t>(k.shards.size()));
  out.bulk("replication");
  out.bulk(meta::to_string(k.spec.replication.kind));
  out.bulk("factor");
  out.integer(k.spec.replication.factor);
  out.bulk("consistency");
  out.bulk(meta::to_string(k.spec.consistency));
  out.bulk("shards_per_node");
  out.map(per_node.size());
  for (const auto& [node, count] : per_node) {
    out.bulk(std::to_string(node.value()));
    out.integer(static_cast<int64_t>(count));
  }
}

}  // namespace

void Coordinator::keyspace(std::span<const std::string_view> argv, resp::Writer& out) {
  auto t = table();
  if (!t) {
    out.error("CLUSTERDOWN the cluster map is not known yet");
    return;
  }
  const std::string_view sub = argv[0];
  // Every KEYSPACE subcommand but HELP talks to the metadata raft group: reads
  // are linearizable (this node's own map may trail by a moment), changes go
  // through the leader.
  node::RaftRegisterClient client(node::member_endpoints(t->map()), options_.secret,
                                  std::chrono::milliseconds(5000));
  if (server::iequals(sub, "list") || server::iequals(sub, "info")) {
    auto current = meta::fetch(client);
    if (!current.ok()) {
      out.error("CLUSTERDOWN cannot read the cluster map: " + current.status().message());
      return;
    }
    if (server::iequals(sub, "list")) {
      out.array(current->keyspaces.size());
      for (const meta::Keyspace& k : current->keyspaces) out.bulk(k.spec.name);
      return;
    }
    const meta::Keyspace* k = current->find_keyspace(argv[1]);
    if (k == nullptr) {
      out.error("ERR no such keyspace '" + std::string(argv[1]) + "'");
      return;
    }
    write_keyspace_info(*k, out);
    return;
  }
  if (server::iequals(sub, "help")) {
    static constexpr std::string_view kLines[] = {
        "KEYSPACE <subcommand> [<arg> ...]. Subcommands are:",
        "CREATE <name> [PREFIX <p>] [PARTITIONER range|hash|ring|slots] [VNODES <n>]",
        "       [SPLITS <a,b,...>] [REPLICATION <kind>] [FACTOR <n>] [CONSISTENCY <level>]",
        "       [PARTITION-MODE consistency|availability]",
        "       [GEO <prefix=region,...,=region>] [INNER range|hash|ring|slots] (PARTITIONER geo)",
        "    Create a keyspace; keys starting with its prefix (default '<name>:') belong to it",
        "    (the longest prefix wins). SPLITS are relative to the prefix: under 'orders:',",
        "    SPLITS m splits at 'orders:m'. Keys already under the prefix move into it.",
        "ALTER <name> CONSISTENCY <level> | PARTITION-MODE <mode>",
        "DROP <name>",
        "    Delete the keyspace and every key of it; the reply counts the keys deleted.",
        "LIST",
        "INFO <name>",
    };
    out.array(std::size(kLines));
    for (auto l : kLines) out.simple(l);
    return;
  }
  Result<meta::ClusterMap> result = Status::InvalidArgument("unknown KEYSPACE subcommand");
  if (server::iequals(sub, "create")) {
    auto spec = parse_create(argv);
    if (!spec.ok()) {
      out.error("ERR " + spec.status().message());
      return;
    }
    create_keyspace(std::move(spec).value(), client, out);
    return;
  } else if (server::iequals(sub, "drop")) {
    drop_keyspace(std::string(argv[1]), client, out);
    return;
  } else if (server::iequals(sub, "alter")) {
    meta::KeyspaceChanges changes;
    for (size_t i = 2; i + 1 < argv.size(); i += 2) {
      if (server::iequals(argv[i], "consistency")) {
        auto c = meta::parse_consistency(argv[i + 1]);
        if (!c.ok()) {
          out.error("ERR " + c.status().message());
          return;
        }
        changes.consistency = *c;
      } else if (server::iequals(argv[i], "partition-mode")) {
        auto m = meta::parse_partition_mode(argv[i + 1]);
        if (!m.ok()) {
          out.error("ERR " + m.status().message());
          return;
        }
        changes.partition_mode = *m;
      } else {
        out.error("ERR unknown option '" + std::string(argv[i]) + "'");
        return;
      }
    }
    result = meta::update(client, [&](const meta::ClusterMap& m) {
      return meta::alter_keyspace(m, argv[1], changes);
    });
  }
  if (!result.ok()) {
    out.error((result.status().is_invalid_argument() ? "ERR " : "CLUSTERDOWN ") +
              result.status().message());
    return;
  }
  // Answer once this node routes with the new map, so the caller's next
  // command already sees the keyspace.
  wait_for_epoch(result->epoch.value());
  out.simple("OK");
}

Coordinator::LocalStats Coordinator::local_stats() {
  std::lock_guard<std::mutex> lock(stats_mu_);
  const auto now = std::chrono::steady_clock::now();
  if (now - stats_at_ < std::chrono::milliseconds(250)) return stats_;
  const uint64_t commands = ctx_.stats->sum(&server::ServerStats::Slot::commands);
  LocalStats s;
  if (stats_at_ != std::chrono::steady_clock::time_point{}) {
    const double secs = std::chrono::duration<double>(now - stats_at_).count();
    s.ops_per_sec = static_cast<double>(commands - stats_commands_) / secs;
  }
  stats_commands_ = commands;
  stats_at_ = now;
  if (auto t = table()) {
    std::string cursor = "0";
    do {
      resp::Value v;
      const std::string reply = run_local({"SCAN", cursor, "COUNT", "1000"});
      if (resp::parse_value(reply, v).status != resp::ParseStatus::kComplete ||
          v.elements.size() != 2) {
        break;
      }
      cursor = v.elements[0].str;
      for (const resp::Value& k : v.elements[1].elements) {
        const Route r = t->route(k.str);
        ++s.keys;
        ++s.shard_keys[r.keyspace->spec.name][r.shard];
      }
    } while (cursor != "0");
  }
  stats_ = s;
  return stats_;
}

std::string Coordinator::local_stats_json() {
  const LocalStats s = local_stats();
  nlohmann::json j;
  j["node"] = options_.self.value();
  j["keys"] = s.keys;
  j["ops_per_sec"] = s.ops_per_sec;
  nlohmann::json shards = nlohmann::json::object();
  for (const auto& [keyspace, per_shard] : s.shard_keys) {
    nlohmann::json k = nlohmann::json::object();
    for (const auto& [shard, count] : per_shard) k[std::to_string(shard)] = count;
    shards[keyspace] = k;
  }
  j["shard_keys"] = shards;
  // This node's replica groups: `statekv cluster status` shows each group as
  // its leader sees it.
  nlohmann::json groups = nlohmann::json::array();
  if (auto g = this->groups()) {
    for (const GroupStatus& gs : g->status()) {
      nlohmann::json x;
      x["id"] = gs.id.value();
      x["keyspace"] = gs.keyspace;
      x["shard"] = gs.shard;
      x["role"] = gs.role;
      x["term"] = gs.term;
      x["leader"] = gs.leader ? gs.leader->value() : 0;
      x["commit"] = gs.commit_index;
      x["applied"] = gs.applied_index;
      x["last"] = gs.last_index;
      x["compacted"] = gs.compacted_index;
      nlohmann::json members = nlohmann::json::array();
      for (NodeId m : gs.members) members.push_back(m.value());
      x["members"] = members;
      nlohmann::json lag = nlohmann::json::object();
      for (const auto& [node, match] : gs.match) {
        lag[std::to_string(node.value())] = gs.last_index - match;
      }
      x["lag"] = lag;
      nlohmann::json applied = nlohmann::json::object();
      for (const auto& [node, index] : gs.applied) applied[std::to_string(node.value())] = index;
      x["member_applied"] = applied;
      x["epoch"] = gs.epoch;
      x["frames_refused_epoch"] = gs.frames_refused_epoch;
      x["steps_refused_epoch"] = gs.steps_refused_epoch;
      x["routes_refused_epoch"] = gs.routes_refused_epoch;
      x["quiesced"] = gs.quiesced;
      groups.push_back(std::move(x));
    }
  }
  j["groups"] = groups;
  return j.dump();
}

namespace {

// "db0:keys=K,expires=E" in an INFO keyspace text: {K, E}; {0, 0} when absent
// (Redis omits db0 when it is empty).
std::pair<uint64_t, uint64_t> db0_counts(std::string_view info) {
  const size_t at = info.find("db0:keys=");
  unsigned long long k = 0, e = 0;
  if (at == std::string_view::npos || std::sscanf(std::string(info.substr(at)).c_str(),
                                                  "db0:keys=%llu,expires=%llu", &k, &e) != 2) {
    return {0, 0};
  }
  return {k, e};
}

}  // namespace

std::string Coordinator::info_keyspace() {
  // This node's own store: INFO keyspace on an internal session is node-local.
  std::string own_info;
  {
    resp::Value v;
    const std::string reply = run_local({"INFO", "keyspace"});
    if (resp::parse_value(reply, v).status == resp::ParseStatus::kComplete) own_info = v.str;
  }
  const auto [own_keys, own_expires] = db0_counts(own_info);
  // db0 as DBSIZE counts it: each key once (count_cluster_keys).
  std::string out;
  auto counts = count_cluster_keys(nullptr);
  if (!counts.ok()) {
    out += "db0_error:cannot count every node's keys (" + counts.status().message() + ")\r\n";
  } else if (counts->keys > 0) {
    out += fmt::format("db0:keys={},expires={},avg_ttl=0\r\n", counts->keys, counts->expires);
  }
  const LocalStats s = local_stats();
  out += fmt::format("node_id:{}\r\nnode_keys:{}\r\nnode_expires:{}\r\nnode_ops_per_sec:{:.1f}\r\n",
                     options_.self.value(), own_keys, own_expires, s.ops_per_sec);
  for (const auto& [keyspace, per_shard] : s.shard_keys) {
    uint64_t keys = 0;
    std::string shards;
    for (const auto& [shard, count] : per_shard) {
      keys += count;
      shards += fmt::format("{}{}={}", shards.empty() ? "" : ",", shard, count);
    }
    out += fmt::format("keyspace_{}:keys={},shards={},per_shard={}\r\n", keyspace, keys,
                       per_shard.size(), shards);
  }
  return out;
}

}  // namespace statekv::coord

namespace statekv::coord {

std::string Coordinator::info_replication() {
  auto groups = this->groups();
  if (!groups) return {};
  const auto all = groups->status();
  std::string s;
  size_t leading = 0;
  for (const GroupStatus& g : all) leading += g.role == "leader" ? 1 : 0;
  s += fmt::format("statekv_groups:{}\r\nstatekv_groups_leading:{}\r\n", all.size(), leading);
  s += fmt::format("statekv_partition_refused:{}\r\nstatekv_partition_degraded_reads:{}\r\n",
                   partition_refused_.load(), partition_degraded_reads_.load());
  std::string receiving;
  for (NodeId n : groups->peers_receiving_snapshot()) {
    receiving += (receiving.empty() ? "" : ",") + std::to_string(n.value());
  }
  s += fmt::format("statekv_snapshot_reads_waiting:{}\r\nstatekv_peers_receiving_snapshot:{}\r\n",
                   groups->snapshot_reads_waiting(), receiving);
  for (const GroupStatus& g : all) {
    std::string members;
    for (NodeId m : g.members) {
      if (!members.empty()) members += ';';
      members += std::to_string(m.value());
      // The leader knows each member's applied index and how far behind its
      // log each is (entries).
      auto a = g.applied.find(m);
      if (a != g.applied.end()) members += fmt::format("@applied={}", a->second);
      auto it = g.match.find(m);
      if (it != g.match.end()) members += fmt::format("@lag={}", g.last_index - it->second);
    }
    s += fmt::format(
        "statekv_group_{}:keyspace={},shard={},role={},term={},leader={},commit={},applied={},"
        "last={},members={},reads_leader={},reads_local={},writes={},quiesced={},epoch={},"
        "epoch_refused_frames={},epoch_refused_steps={},epoch_refused_routes={},proposals={},"
        "proposed={},compacted={},"
        "snapshots_streamed={},snapshots_installed={},receiving_snapshot={},"
        "snapshot_sends_deferred={},state_lost={}\r\n",
        g.id.value(), g.keyspace, g.shard, g.role, g.term,
        g.leader ? std::to_string(g.leader->value()) : std::string("none"), g.commit_index,
        g.applied_index, g.last_index, members, g.reads_barrier, g.reads_local, g.writes,
        g.quiesced ? 1 : 0, g.epoch, g.frames_refused_epoch, g.steps_refused_epoch,
        g.routes_refused_epoch, g.proposals, g.proposed, g.compacted_index, g.snapshots_streamed,
        g.snapshots_installed, g.receiving_snapshot ? 1 : 0, g.snapshot_sends_deferred,
        g.state_lost ? 1 : 0);
  }
  return s;
}

std::string Coordinator::info_stats() {
  return fmt::format("statekv_forwarded_commands:{}\r\n", forwarded_commands_.load());
}

server::ClusterView::PrimaryView Coordinator::primary_view() const {
  PrimaryView view;
  auto groups = this->groups();
  auto t = table();
  if (!groups || !t) return view;
  std::map<NodeId, uint64_t> replicated;  // each other member: its entries of the groups led here
  for (const GroupStatus& g : groups->status()) {
    if (g.role != "leader") continue;
    view.offset += g.last_index;
    for (const auto& [node, match] : g.match) replicated[node] += match;
  }
  for (const auto& [node, offset] : replicated) {
    // Like a Redis primary, list the replicas connected now.
    if (node_.reachable({node}) == 0) continue;
    const meta::Member* m = t->member(node);
    const auto [host, port] = split_address(m ? m->address : std::string("?:0"));
    view.replicas.push_back({host, port, offset});
  }
  return view;
}

}  // namespace statekv::coord
