#include "cli/keyspace_config.h"

#include <fmt/format.h>

#include <chrono>
#include <toml++/toml.h>

#include "meta/meta_client.h"
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

Result<meta::KeyspaceSpec> spec_of(const toml::table& t) {
  meta::KeyspaceSpec s;
  const auto name = t["name"].value<std::string>();
  if (!name) return Status::InvalidArgument("a keyspace needs name = \"...\"");
  s.name = *name;
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
  if (const auto* geo = t["geo"].as_table()) {
    for (const auto& [prefix, region] : *geo) {
      const auto* text = region.as_string();
      if (text == nullptr) return err(Status::InvalidArgument("geo regions must be strings"));
      s.partitioner.geo_rules.push_back(meta::GeoRule{std::string(prefix.str()), text->get()});
    }
  }
  if (Status st = meta::validate_spec(s); !st.ok()) return st;
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
    auto made = meta::update(client, [&](const meta::ClusterMap& m) {
      return partition::create_placed_keyspace(m, spec);
    });
    if (!made.ok()) return Status::InvalidArgument("keyspace '" + spec.name + "': " + made.status().message());
    fmt::print("keyspace {}: created (epoch {})\n", spec.name, made->epoch.value());
  }
  return Status::OK();
}

}  // namespace statekv::cli
