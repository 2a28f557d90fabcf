// Server commands: INFO, CONFIG, COMMAND.
#include <fmt/format.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <set>
#include <string>

#include "core/allocator.h"
#include "server/command.h"
#include "server/command_docs.h"
#include "server/command_table.h"
#include "server/glob.h"
#include "server/number.h"
#include "storage/entry_arena.h"

namespace statekv::server {
namespace {

constexpr std::string_view kRedisCompatVersion = "7.0.15";
constexpr std::string_view kStatekvVersion = "0.1.0";

// ---- INFO ----

std::string human_bytes(uint64_t n) {
  const double d = static_cast<double>(n);
  if (n < 1024) return fmt::format("{}B", n);
  if (n < 1024ull * 1024) return fmt::format("{:.2f}K", d / 1024);
  if (n < 1024ull * 1024 * 1024) return fmt::format("{:.2f}M", d / (1024.0 * 1024));
  return fmt::format("{:.2f}G", d / (1024.0 * 1024 * 1024));
}

uint64_t resident_bytes() {
  // /proc/self/statm: size resident shared ... (in pages)
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return static_cast<uint64_t>(resident) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

void line(std::string& s, std::string_view key, const auto& value) {
  fmt::format_to(std::back_inserter(s), "{}:{}\r\n", key, value);
}

void section_server(CommandContext& c, std::string& s) {
  using namespace std::chrono;
  const ServerContext& ctx = c.state.ctx;
  const ServerConfig config = ctx.config->snapshot();
  struct utsname u {};
  uname(&u);
  const auto now = system_clock::now();
  const int64_t uptime = duration_cast<seconds>(now - ctx.started).count();
  s += "# Server\r\n";
  line(s, "redis_version", kRedisCompatVersion);
  line(s, "statekv_version", kStatekvVersion);
  line(s, "redis_mode", ctx.cluster != nullptr ? "cluster" : "standalone");
  line(s, "os", fmt::format("{} {} {}", u.sysname, u.release, u.machine));
  line(s, "arch_bits", sizeof(void*) * 8);
  line(s, "gcc_version", fmt::format("{}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__));
  line(s, "process_id", getpid());
  line(s, "run_id", ctx.run_id);
  line(s, "tcp_port", config.port);
  line(s, "server_time_usec", duration_cast<microseconds>(now.time_since_epoch()).count());
  line(s, "uptime_in_seconds", uptime);
  line(s, "uptime_in_days", uptime / 86400);
  line(s, "hz", config.hz);
  line(s, "io_threads_active", ctx.io_threads);
  line(s, "executable", ctx.executable);
  line(s, "config_file", ctx.config_file);
}

void section_clients(CommandContext& c, std::string& s) {
  const ServerConfig config = c.state.ctx.config->snapshot();
  s += "# Clients\r\n";
  line(s, "connected_clients", c.state.ctx.clients != nullptr ? c.state.ctx.clients->count() : 0);
  line(s, "maxclients", config.maxclients);
  line(s, "blocked_clients", c.state.blocking.blocked_clients());
  // This node's own clients with CLIENT TRACKING on (other nodes tracking
  // here are not counted).
  line(s, "tracking_clients", c.state.tracking.tracking_clients());
}

void section_memory(CommandContext& c, std::string& s) {
  // malloc's count, and the memory engine's slabs (mapped beside malloc).
  const AllocatorStats allocator = allocator_stats();
  const uint64_t used = allocator.allocated_bytes + storage::slab_pool_bytes();
  const uint64_t rss = resident_bytes();
  const storage::EngineStats es = c.store().engine().stats();
  s += "# Memory\r\n";
  line(s, "used_memory", used);
  line(s, "used_memory_human", human_bytes(used));
  line(s, "used_memory_rss", rss);
  line(s, "used_memory_rss_human", human_bytes(rss));
  line(s, "engine_memory", es.memory_bytes);
  line(s, "engine_memory_human", human_bytes(es.memory_bytes));
  line(s, "mem_fragmentation_ratio",
       fmt::format("{:.2f}", used == 0 ? 0.0 : static_cast<double>(rss) / used));
  line(s, "mem_allocator", allocator.name);
  // Deleted collections whose elements are not reclaimed yet (docs/data-types.md).
  line(s, "lazyfree_pending_objects", c.store().garbage_count());
}

void section_persistence(CommandContext& c, std::string& s) {
  const ServerConfig config = c.state.ctx.config->snapshot();
  const storage::EngineStats es = c.store().engine().stats();
  s += "# Persistence\r\n";
  line(s, "loading", 0);
  line(s, "engine", c.store().engine().name());
  line(s, "fsync", fsync_name(config.fsync));
  line(s, "engine_disk_bytes", es.disk_bytes);
  line(s, "engine_fsyncs", es.fsyncs);
  line(s, "engine_last_sequence", es.last_sequence);
  line(s, "engine_durable_sequence", es.durable_sequence);
}

void section_stats(CommandContext& c, std::string& s) {
  using S = ServerStats::Slot;
  const ServiceState& st = c.state;
  s += "# Stats\r\n";
  line(s, "total_connections_received", st.stat(&S::connections_received));
  line(s, "total_commands_processed", st.stat(&S::commands));
  line(s, "total_net_input_bytes", st.stat(&S::net_input_bytes));
  line(s, "total_net_output_bytes", st.stat(&S::net_output_bytes));
  line(s, "rejected_connections", st.stat(&S::rejected_connections));
  line(s, "expired_keys", st.stat(&S::expired_keys));
  line(s, "keyspace_hits", st.stat(&S::keyspace_hits));
  line(s, "keyspace_misses", st.stat(&S::keyspace_misses));
  // This node's subscriptions (in a cluster, as Redis Cluster: per node).
  line(s, "pubsub_channels", st.ctx.pubsub->channel_count());
  line(s, "pubsub_patterns", st.ctx.pubsub->pattern_count());
  // CLIENT TRACKING's table: keys recorded, and (key, reader) pairs.
  line(s, "tracking_total_keys", st.tracking.tracked_keys());
  line(s, "tracking_total_items", st.tracking.tracked_items());
  line(s, "total_protocol_errors", st.stat(&S::protocol_errors));
  if (st.ctx.cluster != nullptr) s += st.ctx.cluster->info_stats();
}

void section_cluster(CommandContext& c, std::string& s) {
  s += "# Cluster\r\n";
  line(s, "cluster_enabled", c.state.ctx.cluster != nullptr ? 1 : 0);
}

void section_replication(CommandContext& c, std::string& s) {
  s += "# Replication\r\n";
  // Redis's fields, as a primary without replicas: what Redis clients read.
  // A statekv node leads some replica groups and follows others; each group's
  // own role follows (statekv_group_<id>).
  const ClusterView::PrimaryView view = c.state.ctx.cluster != nullptr
                                            ? c.state.ctx.cluster->primary_view()
                                            : ClusterView::PrimaryView{};
  line(s, "role", "master");
  line(s, "connected_slaves", view.replicas.size());
  for (size_t i = 0; i < view.replicas.size(); ++i) {
    const ClusterView::ReplicaOffset& r = view.replicas[i];
    // Redis's lag is seconds since the replica's last ack; statekv's is
    // entries behind (statekv_lag_entries), measured by the groups' leaders.
    s +=
        fmt::format("slave{}:ip={},port={},state=online,offset={},lag=0,statekv_lag_entries={}\r\n",
                    i, r.host, r.port, r.offset, view.offset - std::min(view.offset, r.offset));
  }
  line(s, "master_failover_state", "no-failover");
  line(s, "master_repl_offset", view.offset);
  if (c.state.ctx.cluster != nullptr) s += c.state.ctx.cluster->info_replication();
}

// ROLE: Redis's primary form, ["master", offset, [[ip, port, offset], ...]]
// (ClusterView::primary_view says what the offsets count here).
void cmd_role(CommandContext& c) {
  const ClusterView::PrimaryView view = c.state.ctx.cluster != nullptr
                                            ? c.state.ctx.cluster->primary_view()
                                            : ClusterView::PrimaryView{};
  c.out.array(3);
  c.out.bulk("master");
  c.out.integer(static_cast<int64_t>(view.offset));
  c.out.array(view.replicas.size());
  for (const ClusterView::ReplicaOffset& r : view.replicas) {
    c.out.array(3);
    c.out.bulk(r.host);
    c.out.bulk(std::to_string(r.port));
    c.out.bulk(std::to_string(r.offset));
  }
}

void section_keyspace(CommandContext& c, std::string& s) {
  s += "# Keyspace\r\n";
  // In a cluster, db0 counts what DBSIZE counts (every node's keys: any node
  // serves any key), and node_keys this node's own (ClusterView::info_keyspace);
  // asked by another node adding them up (a routed or internal session), db0
  // is this node's own store.
  if (c.state.ctx.cluster != nullptr && !c.session.internal && c.session.routed_epoch == 0) {
    s += c.state.ctx.cluster->info_keyspace();
    return;
  }
  const uint64_t keys = c.store().key_count();
  if (keys > 0) {
    fmt::format_to(std::back_inserter(s), "db0:keys={},expires={},avg_ttl=0\r\n", keys,
                   c.store().expire_count());
  }
}

using SectionFn = void (*)(CommandContext&, std::string&);
struct Section {
  std::string_view name;
  SectionFn fn;
};
constexpr Section kSections[] = {
    {"server", section_server},   {"clients", section_clients},
    {"memory", section_memory},   {"persistence", section_persistence},
    {"stats", section_stats},     {"replication", section_replication},
    {"cluster", section_cluster}, {"keyspace", section_keyspace},
};

void cmd_info(CommandContext& c) {
  std::set<std::string_view> wanted;
  bool all = c.argv.size() == 1;
  for (size_t i = 1; i < c.argv.size(); ++i) {
    std::string_view a = c.argv[i];
    if (iequals(a, "all") || iequals(a, "default") || iequals(a, "everything")) {
      all = true;
      continue;
    }
    for (const Section& sec : kSections) {
      if (iequals(a, sec.name)) wanted.insert(sec.name);
    }
  }
  std::string text;
  for (const Section& sec : kSections) {
    if (!all && !wanted.count(sec.name)) continue;
    if (!text.empty()) text += "\r\n";
    sec.fn(c, text);
  }
  c.out.verbatim("txt", text);
}

// ---- CONFIG ----

void cmd_config_get(CommandContext& c) {
  ConfigStore& config = *c.state.ctx.config;
  std::vector<std::string> names = config.names();
  std::vector<std::pair<std::string, std::string>> found;
  std::set<std::string> seen;
  for (size_t i = 2; i < c.argv.size(); ++i) {
    for (const std::string& name : names) {
      if (seen.count(name) || !glob_match(c.argv[i], name, true)) continue;
      auto value = config.get(name);
      if (!value.ok()) continue;
      seen.insert(name);
      // A cluster node keeps no password in clear: the cluster's is a hash
      // in the metadata service, and Redis too answers "" for a password
      // set through ACL SETUSER default.
      if (name == "requirepass" && c.state.ctx.acl_store != nullptr) *value = "";
      found.emplace_back(name, *value);
    }
  }
  c.out.map(found.size());
  for (const auto& [name, value] : found) {
    c.out.bulk(name);
    c.out.bulk(value);
  }
}

void cmd_config_set(CommandContext& c) {
  if (c.argv.size() % 2 != 0) {
    return c.out.error("ERR wrong number of arguments for 'config|set' command");
  }
  ConfigStore& config = *c.state.ctx.config;
  std::set<std::string> names;
  for (size_t i = 2; i < c.argv.size(); i += 2) {
    std::string lower(c.argv[i]);
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!names.insert(lower).second) {
      return c.out.error("ERR Duplicate parameter - " + std::string(c.argv[i]));
    }
  }
  // On a cluster node requirepass is the cluster's: it changes through the
  // metadata service, for every node (docs/security.md), after the others.
  std::optional<std::string> cluster_password;
  // All or nothing, as in Redis: on a failure, restore what was already set.
  std::vector<std::pair<std::string_view, std::string>> applied;
  for (size_t i = 2; i < c.argv.size(); i += 2) {
    if (c.state.ctx.acl_store != nullptr && iequals(c.argv[i], "requirepass")) {
      cluster_password = std::string(c.argv[i + 1]);
      continue;
    }
    auto old = config.get(c.argv[i]);
    Status s = config.set(c.argv[i], c.argv[i + 1]);
    if (!s.ok()) {
      for (auto it = applied.rbegin(); it != applied.rend(); ++it) {
        (void)config.set(it->first, it->second);
      }
      c.state.refresh_config();
      return c.out.error(s.message());
    }
    if (old.ok()) applied.emplace_back(c.argv[i], *old);
  }
  if (cluster_password) {
    const std::string& password = *cluster_password;
    Status s = c.state.change_users([&](std::map<std::string, AclUser>& users) {
      auto it = users.find("default");
      if (it == users.end()) return Status::Corruption("the cluster has no default user");
      const AclCommands& commands = c.state.acl.commands();
      Status applied = acl_apply(it->second, "resetpass", commands);
      if (applied.ok()) {
        applied = acl_apply(it->second, password.empty() ? "nopass" : ">" + password, commands);
      }
      return applied;
    });
    if (!s.ok()) {
      for (auto it = applied.rbegin(); it != applied.rend(); ++it) {
        (void)config.set(it->first, it->second);
      }
      c.state.refresh_config();
      return c.out.error(
          "ERR CONFIG SET failed (possibly related to argument 'requirepass') - "
          "the cluster's password could not be changed: " +
          s.to_string());
    }
  }
  c.state.refresh_config();
  c.out.simple("OK");
}

void cmd_config_resetstat(CommandContext& c) {
  c.state.reset_stats();
  c.out.simple("OK");
}

void cmd_config_help(CommandContext& c) {
  static constexpr std::string_view kLines[] = {
      "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "GET <pattern>",
      "    Return parameters matching the glob-like <pattern> and their values.",
      "SET <directive> <value>",
      "    Set the configuration <directive> to <value>.",
      "RESETSTAT",
      "    Reset statistics reported by the INFO command.",
      "HELP",
      "    Print this help.",
  };
  c.out.array(std::size(kLines));
  for (auto l : kLines) c.out.simple(l);
}

// ---- COMMAND ----

// Resolves "get" or "client|list" (any case) to a spec and its parent.
const CommandSpec* resolve(const CommandTable& table, std::string_view name,
                           const CommandSpec** parent) {
  *parent = nullptr;
  auto bar = name.find('|');
  if (bar == std::string_view::npos) return table.find(name);
  const CommandSpec* container = table.find(name.substr(0, bar));
  if (container == nullptr) return nullptr;
  *parent = container;
  return CommandTable::find_sub(*container, name.substr(bar + 1));
}

void cmd_command(CommandContext& c) {
  const auto& all = c.state.table.all();
  c.out.array(all.size());
  for (const CommandSpec& spec : all) write_command_info(c.out, spec, nullptr);
}

void cmd_command_count(CommandContext& c) {
  c.out.integer(static_cast<int64_t>(c.state.table.all().size()));
}

void cmd_command_info(CommandContext& c) {
  if (c.argv.size() == 2) return cmd_command(c);
  c.out.array(c.argv.size() - 2);
  for (size_t i = 2; i < c.argv.size(); ++i) {
    const CommandSpec* parent;
    const CommandSpec* spec = resolve(c.state.table, c.argv[i], &parent);
    if (spec == nullptr) {
      c.out.null_array();
    } else {
      write_command_info(c.out, *spec, parent);
    }
  }
}

// COMMAND GETKEYS command [arg ...]: the keys of a command line, found as
// the cluster router and ACL key rules find them (key_positions). Redis
// Cluster clients ask it for commands whose keys move (SINTERCARD, ZUNION,
// LMPOP...: `movablekeys` in COMMAND INFO). Errors as Redis 7's.
void cmd_command_getkeys(CommandContext& c) {
  const std::span<const std::string_view> line = c.argv.subspan(2);
  const CommandSpec* spec = c.state.table.find(line[0]);
  if (spec != nullptr && !spec->subcommands.empty() && line.size() >= 2) {
    spec = CommandTable::find_sub(*spec, line[1]);
  }
  if (spec == nullptr) return c.out.error("ERR Invalid command specified");
  if (spec->first_key <= 0 && spec->numkeys_index <= 0) {
    return c.out.error("ERR The command has no key arguments");
  }
  const int argc = static_cast<int>(line.size());
  if ((spec->arity > 0 && argc != spec->arity) || argc < -spec->arity) {
    return c.out.error("ERR Invalid number of arguments specified for command");
  }
  const std::vector<size_t> keys = key_positions(*spec, line);
  // A numkeys that is not a count of the arguments after it names no key.
  bool numkeys_ok = true;
  if (spec->numkeys_index > 0) {
    const auto n = parse_int64(line[static_cast<size_t>(spec->numkeys_index)]);
    numkeys_ok = n && *n > 0 && *n <= static_cast<int64_t>(line.size()) - spec->numkeys_index - 1;
  }
  if (keys.empty() || !numkeys_ok) {
    return c.out.error("ERR Invalid arguments specified for command");
  }
  c.out.array(keys.size());
  for (size_t k : keys) c.out.bulk(line[k]);
}

void cmd_command_docs(CommandContext& c) {
  std::vector<std::pair<const CommandSpec*, const CommandSpec*>> specs;
  if (c.argv.size() == 2) {
    for (const CommandSpec& spec : c.state.table.all()) specs.emplace_back(&spec, nullptr);
  } else {
    for (size_t i = 2; i < c.argv.size(); ++i) {
      const CommandSpec* parent;
      const CommandSpec* spec = resolve(c.state.table, c.argv[i], &parent);
      if (spec != nullptr) specs.emplace_back(spec, parent);
    }
  }
  c.out.map(specs.size());
  for (const auto& [spec, parent] : specs) {
    c.out.bulk(parent != nullptr ? std::string(parent->name) + "|" + std::string(spec->name)
                                 : std::string(spec->name));
    write_command_docs(c.out, *spec, parent);
  }
}

void cmd_command_help(CommandContext& c) {
  static constexpr std::string_view kLines[] = {
      "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "(no subcommand)",
      "    Return details about all Redis commands.",
      "COUNT",
      "    Return the total number of commands in this Redis server.",
      "INFO [<command-name> ...]",
      "    Return details about multiple Redis commands.",
      "    If no command names are given, documentation details for all",
      "    commands are returned.",
      "DOCS [<command-name> ...]",
      "    Return documentation details about multiple Redis commands.",
      "    If no command names are given, documentation details for all",
      "    commands are returned.",
      "GETKEYS <full-command>",
      "    Return the keys from a full Redis command.",
      "HELP",
      "    Print this help.",
  };
  c.out.array(std::size(kLines));
  for (auto l : kLines) c.out.simple(l);
}

void cmd_shutdown(CommandContext& c) {
  shutdown_command(c.state.ctx, c.session, c.argv, c.out);
}

}  // namespace

void add_server_commands(std::vector<CommandSpec>& out) {
  const std::string_view g = "server";
  out.push_back({"info", -1, kLoading | kStale | kSentinel, 0, 0, 0, g,
                 "Returns information and statistics about the server.", "1.0.0", "O(1)",
                 "[section:string...]", cmd_info});
  out.push_back({"role", 1, kNoscript | kLoading | kStale | kFast | kSentinel, 0, 0, 0, g,
                 "Returns the replication role.", "2.8.12", "O(1)", "", cmd_role});
  out.push_back({"shutdown", -1, kAdmin | kNoscript | kLoading | kStale | kNoMulti | kAllowBusy,
                 0, 0, 0, g, "Synchronously saves the database(s) to disk and shuts down the "
                 "server.", "1.0.0",
                 "O(N) when saving, where N is the total number of keys in all databases when "
                 "saving data, otherwise O(1)",
                 "[nosave_save: NOSAVE | SAVE] [NOW] [FORCE] [ABORT]", cmd_shutdown});

  CommandSpec config{"config", -2,
                     0,        0,
                     0,        0,
                     g,        "A container for server configuration commands.",
                     "2.0.0",  "Depends on subcommand.",
                     "",       nullptr};
  config.subcommands.push_back({"get", -3, kAdmin | kNoscript | kLoading | kStale, 0, 0, 0, g,
                                "Returns the effective values of configuration parameters.",
                                "2.0.0",
                                "O(N) when N is the number of configuration parameters "
                                "provided",
                                "parameter:string...", cmd_config_get});
  config.subcommands.push_back({"set", -4, kAdmin | kNoscript | kLoading | kStale, 0, 0, 0, g,
                                "Sets configuration parameters in-flight.", "2.0.0",
                                "O(N) when N is the number of configuration parameters provided",
                                "(data: parameter:string value:string)...", cmd_config_set});
  config.subcommands.push_back({"resetstat", 2, kAdmin | kNoscript | kLoading | kStale, 0, 0, 0, g,
                                "Resets the server's statistics.", "2.0.0", "O(1)", "",
                                cmd_config_resetstat});
  config.subcommands.push_back({"help", 2, kLoading | kStale, 0, 0, 0, g,
                                "Returns helpful text about the different subcommands.", "5.0.0",
                                "O(1)", "", cmd_config_help});
  out.push_back(std::move(config));

  CommandSpec command{"command",
                      -1,
                      kLoading | kStale | kSentinel,
                      0,
                      0,
                      0,
                      g,
                      "Returns detailed information about all commands.",
                      "2.8.13",
                      "O(N) where N is the total number of Redis commands",
                      "",
                      cmd_command};
  command.subcommands.push_back({"count", 2, kLoading | kStale | kSentinel, 0, 0, 0, g,
                                 "Returns a count of commands.", "2.8.13", "O(1)", "",
                                 cmd_command_count});
  command.subcommands.push_back({"info", -2, kLoading | kStale | kSentinel, 0, 0, 0, g,
                                 "Returns information about one, multiple or all commands.",
                                 "2.8.13", "O(N) where N is the number of commands to look up",
                                 "[command-name:string...]", cmd_command_info});
  command.subcommands.push_back({"docs", -2, kLoading | kStale | kSentinel, 0, 0, 0, g,
                                 "Returns documentary information about one, multiple or all "
                                 "commands.",
                                 "7.0.0", "O(N) where N is the number of commands to look up",
                                 "[command-name:string...]", cmd_command_docs});
  command.subcommands.push_back({"getkeys", -4, kLoading | kStale, 0, 0, 0, g,
                                 "Extracts the key names from an arbitrary command.", "2.8.13",
                                 "O(N) where N is the number of arguments to the command", "",
                                 cmd_command_getkeys});
  command.subcommands.push_back({"help", 2, kLoading | kStale | kSentinel, 0, 0, 0, g,
                                 "Returns helpful text about the different subcommands.", "5.0.0",
                                 "O(1)", "", cmd_command_help});
  out.push_back(std::move(command));
}

// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: a planned stop of this
// process, the way SIGTERM stops it (on a cluster node the groups it leads
// are handed over first, unless NOW). Redis answers nothing when it stops: the
// connection closes. A rocksdb store has every acknowledged write on disk
// already, so NOSAVE loses nothing; SAVE is refused where there is no disk to
// save to (the process says so through ServerContext::shutdown). ABORT
// cancels Redis's wait for lagging replicas; statekv's stop does not wait that
// way, so there is never a shutdown to abort.
void shutdown_command(ServerContext& ctx, Session& session, std::span<const std::string_view> argv,
                      resp::Writer& out) {
  ShutdownRequest request;
  bool abort = false;
  for (size_t i = 1; i < argv.size(); ++i) {
    const std::string_view a = argv[i];
    if (iequals(a, "nosave") || iequals(a, "save")) {
      const auto save = iequals(a, "save") ? ShutdownRequest::Save::kSave
                                           : ShutdownRequest::Save::kNoSave;
      // Redis: a modifier may repeat; SAVE and NOSAVE together are an error.
      if (request.save != ShutdownRequest::Save::kDefault && request.save != save) {
        return out.error("ERR syntax error");
      }
      request.save = save;
    } else if (iequals(a, "now")) {
      request.now = true;
    } else if (iequals(a, "force")) {
      request.force = true;
    } else if (iequals(a, "abort")) {
      abort = true;
    } else {
      return out.error("ERR syntax error");
    }
  }
  if (abort) {
    // Redis: ABORT takes no other modifier.
    if (argv.size() != 2) return out.error("ERR syntax error");
    return out.error("ERR No shutdown in progress.");
  }
  if (!ctx.shutdown) {
    return out.error("ERR SHUTDOWN is not available: this server does not own its process");
  }
  if (Status s = ctx.shutdown(request); !s.ok()) {
    return out.error("ERR Errors trying to SHUTDOWN: " + std::string(s.message()));
  }
  session.close_after_reply = true;  // no reply: the connection closes
}

}  // namespace statekv::server
