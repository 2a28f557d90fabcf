// `statekv partition report`: what each partitioner costs on a set of keys — the
// fraction of keys that change primary when the 4th, 8th and 11th node joins
// (and when a node leaves), against the ideal, and how evenly keys spread.
// `statekv partition locate`: which shard and owners keys get. Both are pure
// computations over src/partition (no cluster needed).
// Exit 0 on success, 2 when the input cannot be used (unreadable key file, a
// layout that cannot be placed).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "cli/subcommand.h"
#include "partition/analysis.h"
#include "partition/placement.h"
#include "partition/slots.h"

namespace statekv::cli {
namespace {

using meta::Partitioner;

struct ReportFlags {
  size_t keys = 1'000'000;
  std::string key_file;
  uint64_t seed = 1;
};

struct LocateFlags {
  std::string partitioner = "ring";
  size_t nodes = 3;
  uint32_t vnodes = 256;
  uint32_t replicas = 1;
  std::vector<std::string> split_points;
  std::vector<std::string> geo_rules;  // PREFIX=REGION
  std::string inner = "hash";
  std::vector<std::string> keys;
};

// One key per line; a trailing '\r' is dropped, empty lines are skipped.
Result<std::vector<std::string>> read_keys(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError(fmt::format("cannot open '{}'", path));
  std::vector<std::string> keys;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) keys.push_back(std::move(line));
  }
  if (in.bad()) return Status::IOError(fmt::format("error reading '{}'", path));
  if (keys.empty()) return Status::InvalidArgument(fmt::format("'{}' holds no keys", path));
  return keys;
}

struct Row {
  std::string name;
  meta::PartitionerSpec spec;
};

std::vector<Row> report_rows() {
  std::vector<Row> rows;
  const auto add = [&](std::string name, Partitioner kind, uint32_t vnodes) {
    meta::PartitionerSpec s;
    s.kind = kind;
    s.vnodes = vnodes;
    rows.push_back({std::move(name), s});
  };
  add("hash (xxh3 mod N)", Partitioner::kHash, 256);
  add("ring, 1 vnode", Partitioner::kRing, 1);
  add("ring, 16 vnodes", Partitioner::kRing, 16);
  add("ring, 256 vnodes", Partitioner::kRing, 256);
  add("slots (16384, CRC16)", Partitioner::kSlots, 256);
  add("range (key quantiles)", Partitioner::kRange, 256);
  return rows;
}

// "3→4" for a join at 3 nodes, "3→2" for a leave.
std::string change_label(const std::string& change, size_t n) {
  return fmt::format("{}→{}", n, change == "join" ? n + 1 : n - 1);
}

std::string moved_cell(double moved, double ideal) {
  return fmt::format("{:.3f} ({:.2f}x)", moved, moved / ideal);
}

int run_report(const ReportFlags& flags) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> keys;
  std::string source;
  if (!flags.key_file.empty()) {
    auto read = read_keys(flags.key_file);
    if (!read.ok()) {
      std::fprintf(stderr, "statekv partition report: %s\n", read.status().to_string().c_str());
      return 2;
    }
    keys = std::move(*read);
    source = fmt::format("from {}", flags.key_file);
  } else {
    if (flags.keys == 0) {
      std::fprintf(stderr, "statekv partition report: --keys must be at least 1\n");
      return 2;
    }
    keys = partition::generate_keys(flags.keys, flags.seed);
    source = fmt::format("generated as key:<12 random digits>, seed {}", flags.seed);
  }

  const std::vector<size_t> counts = {3, 7, 10};
  // Cells of one table row each; joined as markdown at the end.
  std::vector<std::vector<std::string>> join_rows, leave_rows;
  std::vector<std::string> join_ideal = {"ideal"}, leave_ideal = {"ideal"};
  for (size_t n : counts) {
    join_ideal.push_back(moved_cell(1.0 / (n + 1), 1.0 / (n + 1)));
    leave_ideal.push_back(moved_cell(1.0 / n, 1.0 / n));
  }
  for (size_t i = 0; i < counts.size(); ++i) {
    join_ideal.push_back("1.00 → 1.00");
    leave_ideal.push_back("1.00 → 1.00");
  }
  join_rows.push_back(join_ideal);
  leave_rows.push_back(leave_ideal);

  for (const Row& row : report_rows()) {
    auto costs = partition::analyze(row.spec, keys, counts);
    if (!costs.ok()) {
      std::fprintf(stderr, "statekv partition report: %s: %s\n", row.name.c_str(),
                   costs.status().to_string().c_str());
      return 2;
    }
    std::vector<std::string> join = {row.name}, leave = {row.name};
    for (const partition::NodeCountCost& c : *costs) {
      join.push_back(moved_cell(c.join_moved, c.join_ideal));
      leave.push_back(moved_cell(c.leave_moved, c.leave_ideal));
    }
    for (const partition::NodeCountCost& c : *costs) {
      join.push_back(fmt::format("{:.2f} → {:.2f}", c.imbalance, c.imbalance_after_join));
      leave.push_back(fmt::format("{:.2f} → {:.2f}", c.imbalance, c.imbalance_after_leave));
    }
    join_rows.push_back(std::move(join));
    leave_rows.push_back(std::move(leave));
  }
  const auto table = [&](const std::string& change, const auto& rows) {
    std::vector<std::string> header = {"partitioner"};
    for (size_t n : counts) header.push_back(fmt::format("moved {}", change_label(change, n)));
    for (size_t n : counts) header.push_back(fmt::format("imbalance {}", change_label(change, n)));
    std::string out = fmt::format("| {} |\n|---|", fmt::join(header, " | "));
    for (size_t i = 1; i < header.size(); ++i) out += "---:|";
    out += "\n";
    for (const auto& cells : rows) out += fmt::format("| {} |\n", fmt::join(cells, " | "));
    return out;
  };
  const std::string join_table = table("join", join_rows);
  const std::string leave_table = table("leave", leave_rows);

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print(
      "Partitioner costs on {} keys ({}).\n"
      "Nodes have ids 1..N; node N+1 joins, node N leaves; each change is placed from the\n"
      "N-node placement. moved = fraction of keys whose primary changed (ratio to the ideal:\n"
      "1/(N+1) for a join, 1/N for a leave). imbalance = max keys on a node / mean, before → "
      "after.\n\n"
      "Join:\n\n{}\nLeave:\n\n{}\ntime: {:.1f} s\n",
      keys.size(), source, join_table, leave_table, seconds);
  return 0;
}

Result<meta::PartitionerSpec> locate_spec(const LocateFlags& flags) {
  meta::PartitionerSpec spec;
  auto kind = meta::parse_partitioner(flags.partitioner);
  if (!kind.ok()) return kind.status();
  spec.kind = *kind;
  spec.vnodes = flags.vnodes;
  spec.split_points = flags.split_points;
  if (spec.kind == Partitioner::kGeo) {
    auto inner = meta::parse_partitioner(flags.inner);
    if (!inner.ok()) return inner.status();
    spec.inner = *inner;
    for (const std::string& rule : flags.geo_rules) {
      const size_t eq = rule.rfind('=');
      if (eq == std::string::npos) {
        return Status::InvalidArgument(fmt::format("--geo-rule '{}' is not PREFIX=REGION", rule));
      }
      spec.geo_rules.push_back({rule.substr(0, eq), rule.substr(eq + 1)});
    }
  }
  return spec;
}

int run_locate(const LocateFlags& flags) {
  auto spec = locate_spec(flags);
  if (!spec.ok()) {
    std::fprintf(stderr, "statekv partition locate: %s\n", spec.status().to_string().c_str());
    return 2;
  }
  const std::vector<partition::NodeInfo> nodes = partition::numbered_nodes(*spec, flags.nodes);
  auto placement = partition::place(*spec, nodes, nullptr, flags.replicas);
  if (!placement.ok()) {
    std::fprintf(stderr, "statekv partition locate: %s\n", placement.status().to_string().c_str());
    return 2;
  }
  fmt::print("# {} over {} nodes: {} shards, replication factor {}\n", flags.partitioner,
             flags.nodes, placement->shard_count(), flags.replicas);
  for (const std::string& key : flags.keys) {
    const partition::Location loc = placement->locate(key);
    std::string extra;
    if (spec->kind == Partitioner::kSlots)
      extra = fmt::format(" slot={}", partition::key_slot(key));
    if (spec->kind == Partitioner::kGeo)
      extra = fmt::format(" region={}", placement->region_of(key));
    std::vector<uint64_t> owners;
    for (NodeId id : loc.owners) owners.push_back(id.value());
    fmt::print("{} shard={} owners={}{}\n", key, loc.shard, fmt::join(owners, ","), extra);
  }
  return 0;
}

const SubcommandRegistration kRegistration([](CLI::App& app, int* exit_code) {
  CLI::App* cmd = app.add_subcommand(
      "partition", "Partitioners: what each costs on a set of keys, and where keys go");
  cmd->require_subcommand(1);

  auto report = std::make_shared<ReportFlags>();
  CLI::App* rep = cmd->add_subcommand(
      "report", "Markdown table: keys moved per join and leave, and balance, per partitioner");
  auto* keys_opt =
      rep->add_option("--keys", report->keys, "How many keys to generate")->capture_default_str();
  rep->add_option("--key-file", report->key_file, "Measure these keys instead (one per line)")
      ->excludes(keys_opt);
  rep->add_option("--seed", report->seed, "Seed of the generated keys")->capture_default_str();
  rep->callback([report, exit_code] { *exit_code = run_report(*report); });

  auto locate = std::make_shared<LocateFlags>();
  CLI::App* loc = cmd->add_subcommand("locate", "Show the shard and owners of keys");
  loc->add_option("--partitioner", locate->partitioner, "hash, ring, slots, range or geo")
      ->capture_default_str();
  loc->add_option("--nodes", locate->nodes, "Nodes, with ids 1..N")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{4096}));
  loc->add_option("--vnodes", locate->vnodes, "Tokens per node (ring)")->capture_default_str();
  loc->add_option("--replicas", locate->replicas, "Owners per shard")->capture_default_str();
  // One value per occurrence, so the keys after them stay keys.
  loc->add_option("--split", locate->split_points, "A split point (range; repeat, increasing)")
      ->allow_extra_args(false);
  loc->add_option("--geo-rule", locate->geo_rules,
                  "PREFIX=REGION (geo; repeat; nodes go round robin over the regions)")
      ->allow_extra_args(false);
  loc->add_option("--inner", locate->inner, "Partitioner inside each region (geo)")
      ->capture_default_str();
  loc->add_option("KEY", locate->keys, "Keys to locate")->required();
  loc->callback([locate, exit_code] { *exit_code = run_locate(*locate); });
});

}  // namespace
}  // namespace statekv::cli
