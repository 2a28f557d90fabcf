#include "cli/keyspace_config.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <chrono>
#include <iterator>

#include "meta/meta_client.h"
#include "meta/transitions.h"
#include "net/blocking_connection.h"
#include "node/raft_register_client.h"
#include "partition/layout.h"

namespace statekv::cli {

namespace {

template <typename E>
Status parse_enum(const toml::table& t, const char* key, Result<E> (*parse)(std::string_view),
                  E* out) {
  const auto* node = t.get(key);
  if (node == nullptr) return Status::OK();
  const auto* text = node->as_string();
  if (text == nullptr) return Status::InvalidArgument(std::string(key) + " must be a string");
  auto v = parse(text->get());
  if (!v.ok()) return Status::InvalidArgument(std::string(key) + ": " + v.status().message());
  *out = *v;
  return Status::OK();
}

// The keys a [[keyspace]] table may have (geo's table holds prefixes: any key).
constexpr std::string_view kKeyspaceKeys[] = {
    "name",   "prefix",      "partitioner", "vnodes",         "splits", "replication",
    "factor", "consistency", "geo",         "partition_mode", "inner"};

// InvalidArgument naming the first key of `t` not in `known` and its line, so
// a typo ("partitoner") is an error rather than a setting silently left out.
template <size_t N>
Status check_keys(const toml::table& t, const std::string_view (&known)[N],
                  std::string_view where) {
  for (const auto& [key, value] : t) {
    if (std::find(std::begin(known), std::end(known), key.str()) != std::end(known)) continue;
    std::string names;
    for (std::string_view k : known) names += (names.empty() ? "" : ", ") + std::string(k);
    return Status::InvalidArgument(fmt::format("line {}: unknown key '{}' in {} (known: {})",
                                               key.source().begin.line, key.str(), where, names));
  }
  return Status::OK();
}

Result<meta::KeyspaceSpec> spec_of(const toml::table& t) {
  meta::KeyspaceSpec s;
  const auto name = t["name"].value<std::string>();
  if (!name) {
    return Status::InvalidArgument(
        fmt::format("line {}: a keyspace needs name = \"...\"", t.source().begin.line));
  }
  s.name = *name;
  if (Status st = check_keys(t, kKeyspaceKeys, "keyspace '" + s.name + "'"); !st.ok()) return st;
  // A key of the wrong type is an error too (value_or / value<> would skip it).
  for (const auto& [key, value] : t) {
    const std::string_view k = key.str();
    const bool ok = k == "vnodes" || k == "factor" ? value.is_integer()
                    : k == "splits"                ? value.is_array()
                    : k == "geo"                   ? value.is_table()
                                                   : value.is_string();
    if (!ok) {
      return Status::InvalidArgument(fmt::format("keyspace '{}': line {}: {} has the wrong type",
                                                 s.name, key.source().begin.line, k));
    }
  }
  s.key_prefix = t["prefix"].value_or(s.name + ":");
  s.replication.kind = meta::Replication::kNone;
  s.replication.factor = 1;
  const auto err = [&](const Status& st) {
    return Status::InvalidArgument("keyspace '" + s.name + "': " + st.message());
  };
  if (Status st = parse_enum(t, "partitioner", &meta::parse_partitioner, &s.partitioner.kind); !st.ok()) return err(st);
  if (Status st = parse_enum(t, "inner", &meta::parse_partitioner, &s.partitioner.inner); !st.ok()) return err(st);
  if (Status st = parse_enum(t, "replication", &meta::parse_replication, &s.replication.kind); !st.ok()) return err(st);
  if (Status st = parse_enum(t, "consistency", &meta::parse_consistency, &s.consistency); !st.ok()) return err(st);
  if (Status st = parse_enum(t, "partition_mode", &meta::parse_partition_mode, &s.partition_mode); !st.ok()) return err(st);
  if (auto v = t["vnodes"].value<int64_t>()) {
    if (*v < 1 || *v > 65536) return err(Status::InvalidArgument("vnodes must be in 1..65536"));
    s.partitioner.vnodes = static_cast<uint32_t>(*v);
  }
  if (auto v = t["factor"].value<int64_t>()) {
    if (*v < 1 || *v > 64) return err(Status::InvalidArgument("factor must be in 1..64"));
    s.replication.factor = static_cast<uint32_t>(*v);
  }
  if (const auto* splits = t["splits"].as_array()) {
    for (const auto& v : *splits) {
      const auto* text = v.as_string();
      if (text == nullptr) return err(Status::InvalidArgument("splits must be strings"));
      s.partitioner.split_points.push_back(text->get());
    }
    s.partitioner.shards = static_cast<uint32_t>(s.partitioner.split_points.size() + 1);
  }
  const bool ranged = s.partitioner.kind == meta::Partitioner::kRange ||
                      (s.partitioner.kind == meta::Partitioner::kGeo &&
                       s.partitioner.inner == meta::Partitioner::kRange);
  if (ranged) {  // relative to the prefix, as KEYSPACE CREATE's SPLITS
    s.partitioner.split_points =
        meta::split_points_under(s.key_prefix, std::move(s.partitioner.split_points));
  }
  if (const auto* geo = t["geo"].as_table()) {
    for (const auto& [prefix, region] : *geo) {
      const auto* text = region.as_string();
      if (text == nullptr) return err(Status::InvalidArgument("geo regions must be strings"));
      s.partitioner.geo_rules.push_back(meta::GeoRule{std::string(prefix.str()), text->get()});
    }
  }
  if (Status st = meta::validate_spec(s); !st.ok()) return st;
  if (Status st = meta::check_replication_served(s.replication); !st.ok()) return err(st);
  return s;
}

}  // namespace

Result<std::vector<meta::KeyspaceSpec>> read_keyspace_config(const std::string& path) {
  toml::table parsed;
  try {
    parsed = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    // toml++ reports syntax errors by exception; they stop here.
    return Status::InvalidArgument(fmt::format("{}: {} (line {})", path, e.description(),
                                               e.source().begin.line));
  }
  static constexpr std::string_view kTopKeys[] = {"keyspace"};
  if (Status st = check_keys(parsed, kTopKeys, "the file"); !st.ok()) {
    return Status::InvalidArgument(path + ": " + st.message());
  }
  std::vector<meta::KeyspaceSpec> out;
  const auto* list = parsed["keyspace"].as_array();
  if (list == nullptr) return Status::InvalidArgument(path + ": no [[keyspace]] entries");
  for (const auto& entry : *list) {
    const auto* t = entry.as_table();
    if (t == nullptr) return Status::InvalidArgument(path + ": [[keyspace]] entries must be tables");
    auto spec = spec_of(*t);
    if (!spec.ok()) return Status::InvalidArgument(path + ": " + spec.status().message());
    out.push_back(std::move(spec).value());
  }
  return out;
}

namespace {

// Runs `__keyspace argv...` (coord/keyspace_change.cc) on one node, the
// first that answers; its reply once it is done.
Result<std::string> keyspace_verb(const std::vector<std::string>& endpoints,
                                  const std::string& secret, std::vector<std::string> argv) {
  Status last = Status::Unavailable("no node answers");
  for (const std::string& endpoint : endpoints) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(180);
    auto conn = net::BlockingConnection::open(endpoint, secret, deadline);
    if (!conn.ok()) {
      last = conn.status();
      continue;
    }
    net::ForwardFrame frame;
    frame.call = 1;
    frame.argv = {"__keyspace"};
    frame.argv.insert(frame.argv.end(), argv.begin(), argv.end());
    auto r = (*conn)->call(frame, deadline);
    if (!r.ok()) return r.status();  // it may be under way: not asked twice
    if (!r->status.ok()) return r->status;
    return r->reply;
  }
  return last;
}

// Asks a node to move the keys of keyspace `name`, whose creation began in
// the map, into it (`__keyspace adopt NAME`).
Status adopt_keys(const std::vector<std::string>& endpoints, const std::string& secret,
                  const std::string& name) {
  auto r = keyspace_verb(endpoints, secret, {"adopt", name});
  return r.ok() ? Status::OK() : r.status();
}

}  // namespace

Status apply_keyspace_config(const std::vector<std::string>& endpoints, const std::string& secret,
                             const std::vector<meta::KeyspaceSpec>& specs) {
  node::RaftRegisterClient client(endpoints, secret, std::chrono::milliseconds(10000));
  for (const meta::KeyspaceSpec& spec : specs) {
    auto current = meta::fetch(client);
    if (!current.ok()) return current.status();
    if (current->find_keyspace(spec.name) != nullptr) {
      fmt::print("keyspace {}: exists, left as it is\n", spec.name);
      continue;
    }
    // Keys already under the prefix move into the new keyspace, as KEYSPACE
    // CREATE moves them (docs/routing.md): the map begins it, a node drives
    // it. Keys do not move into or out of a consensus keyspace yet.
    const auto consensus = [](const meta::KeyspaceSpec& s) {
      return s.replication.kind == meta::Replication::kConsensus;
    };
    // Keys under the prefix that a consensus keyspace would strand: refused.
    const meta::Keyspace* owner = meta::prefix_owner(*current, spec.key_prefix);
    // (A consensus keyspace's keys are counted by its groups' leaders, once
    // fenced: `__keyspace create` below.)
    if (owner != nullptr && !consensus(owner->spec) && consensus(spec)) {
      auto n = keyspace_verb(endpoints, secret, {"count", owner->spec.name, spec.key_prefix});
      if (!n.ok()) return n.status();
      if (*n != ":0\r\n") {
        return Status::InvalidArgument(fmt::format(
            "keyspace '{}' not created: {} keys under '{}' are in keyspace '{}', and keys do not "
            "move into or out of a REPLICATION consensus keyspace yet",
            spec.name, n->substr(1, n->find('\r') - 1), spec.key_prefix, owner->spec.name));
      }
    }
    bool adopt = false;
    bool fenced = false;  // created over keys that cannot move in: a node finishes it
    auto made = meta::update(client, [&](const meta::ClusterMap& m) -> Result<meta::ClusterMap> {
      auto next = partition::create_placed_keyspace(m, spec);
      if (!next.ok()) return next.status();
      const meta::Keyspace* from = meta::prefix_owner(m, spec.key_prefix);
      adopt = from != nullptr && !consensus(from->spec) && !consensus(spec);
      fenced = from != nullptr && !adopt;
      if (fenced) {
        if (Status s = meta::begin_create(*next, spec.name); !s.ok()) return s;
        return next;
      }
      if (!adopt) return next;
      if (Status s = meta::begin_adopt(*next, spec.name); !s.ok()) return s;
      if (Status s = meta::validate(*next); !s.ok()) return s;
      return next;
    });
    if (!made.ok()) {
      return Status::InvalidArgument("keyspace '" + spec.name + "': " + made.status().message());
    }
    if (fenced) {
      // The node fences the keyspace that held the prefix, counts what it
      // holds there, and lets the keyspace serve or removes it again.
      auto r = keyspace_verb(endpoints, secret, {"create", spec.name});
      if (!r.ok()) {
        return Status::InvalidArgument(
            r.status().is_invalid_argument()
                ? r.status().message()
                : fmt::format("keyspace '{}': {} (if it is left being created, KEYSPACE DROP {} "
                              "removes it)",
                              spec.name, r.status().message(), spec.name));
      }
    }
    if (adopt) {
      if (Status s = adopt_keys(endpoints, secret, spec.name); !s.ok()) {
        // No node took the move on: abandon it (the keys stay where they were).
        (void)meta::update(
            client, [&](const meta::ClusterMap& m) { return meta::abort_move(m, spec.name); });
        return Status::InvalidArgument("keyspace '" + spec.name + "': " + s.message());
      }
    }
    fmt::print("keyspace {}: created (epoch {})\n", spec.name, made->epoch.value());
  }
  return Status::OK();
}

}  // namespace statekv::cli
