// `statekv server` — runs one node: opens the engine, serves the Redis protocol
// until SIGINT or SIGTERM, then shuts down cleanly.
//
// Settings come from built-in defaults, then the TOML file of --config, then
// the flags given on the command line (a flag always wins over the file).
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "cli/shutdown_signal.h"
#include "cli/subcommand.h"
#include "coord/coordinator.h"
#include "coord/group_scopes.h"
#include "coord/replica_controller.h"
#include "meta/cluster_map.h"
#include "node/cluster_acl.h"
#include "node/cluster_node.h"
#include "server/acl.h"
#include "server/client_registry.h"
#include "server/config.h"
#include "server/context.h"
#include "server/logging.h"
#include "server/network.h"
#include "server/record.h"
#include "server/store.h"
#include "storage/engine.h"
#include "storage/memory_engine.h"

namespace statekv::cli {
namespace {

#ifdef STATEKV_VERSION
constexpr std::string_view kVersion = STATEKV_VERSION;
#else
constexpr std::string_view kVersion = "0.1.0";  // keep in step with project(VERSION) in CMake
#endif

// Flag values as parsed; each applies only if the flag was given.
struct ServerFlags {
  server::ServerConfig values;
  std::string fsync = "batch";
  std::string config_file;
  // Cluster mode (on when --node-id is given).
  uint64_t node_id = 0;
  uint16_t peer_port = 0;  // 0: port + 10000
  std::string peers;       // "1=127.0.0.1:17001,2=..."
  bool join = false;
  std::string secret;
  std::string region = "default";
  std::string cluster_id = "statekv";
  uint64_t election_timeout_ms = 150;
  // Replica groups carry the clients' load: a leader busy serving it must not
  // lose its followers to a timeout a loaded machine's scheduling can exceed.
  uint64_t group_election_timeout_ms = 500;
  uint64_t keyspace_create_limit_ms = 30000;
  uint64_t group_compact_entries = coord::ReplicaGroupsOptions{}.compact_after_entries;
  uint64_t group_compact_bytes = coord::ReplicaGroupsOptions{}.compact_after_bytes;
  uint64_t group_max_write_bytes = coord::ReplicaGroupsOptions{}.max_write_bytes;
  std::string default_partitioner = "hash";
  std::string default_replication = "none";
  bool redirects = false;
  uint64_t snapshot_entries = 1024;
};

// Parses --peers: "ID=HOST:PORT,ID=HOST:PORT,...".
Result<std::map<NodeId, std::string>> parse_peers(const std::string& text) {
  std::map<NodeId, std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = text.substr(pos, comma - pos);
    pos = comma + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    char* end = nullptr;
    const uint64_t id = eq == std::string::npos ? 0 : std::strtoull(item.c_str(), &end, 10);
    if (eq == std::string::npos || id == 0 || end != item.c_str() + eq ||
        item.find(':', eq) == std::string::npos) {
      return Status::InvalidArgument("--peers: '" + item + "' is not ID=HOST:PORT (ID >= 1)");
    }
    if (!out.emplace(NodeId(id), item.substr(eq + 1)).second) {
      return Status::InvalidArgument("--peers: node " + std::to_string(id) + " given twice");
    }
  }
  return out;
}

// The cluster secret: the flag, else the environment.
std::string cluster_secret_of(const ServerFlags& flags) {
  if (!flags.secret.empty()) return flags.secret;
  const char* env = std::getenv("STATEKV_CLUSTER_SECRET");
  return env ? std::string(env) : std::string();
}

// Why this node must stop though nobody asked: a peer disowned it
// (net/raft_node.h on_disowned), its write-ahead log failed (on_log_failed),
// or its store could not write a committed entry (coord/replica_groups.h
// on_store_failed). The process then stops as on SIGTERM and exits 1, saying
// what to do.
class FatalStop {
 public:
  enum class Cause { kDisowned, kLogFailed, kStoreFailed };
  struct Reason {
    Cause cause;
    std::string detail;
  };
  // What happened, for the log line that begins the stop.
  static std::string_view what(Cause cause) {
    switch (cause) {
      case Cause::kDisowned:
        return "disowned by a peer";
      case Cause::kLogFailed:
        return "the write-ahead log failed";
      case Cause::kStoreFailed:
        break;
    }
    return "the store cannot write committed entries";
  }
  // Any thread, once or more (the first reason is kept).
  void stop(Cause cause, const std::string& detail) {
    {
      std::lock_guard lock(mu_);
      if (reason_) return;
      reason_ = Reason{cause, detail};
    }
    ::kill(::getpid(), SIGTERM);  // sigwait() in main takes it
  }
  std::optional<Reason> reason() const {
    std::lock_guard lock(mu_);
    return reason_;
  }

 private:
  mutable std::mutex mu_;
  std::optional<Reason> reason_;
};

// What a node that stopped on its own says last: what happened, and what to do.
std::string fatal_stop_advice(const FatalStop::Reason& why, const std::string& data_dir,
                              uint64_t node_id) {
  switch (why.cause) {
    case FatalStop::Cause::kLogFailed:
      return fmt::format(
          "this node's write-ahead log ({}/wal) failed ({}), so nothing it wrote after that is "
          "durable and it could keep no vote or acknowledgement. The other members serve its "
          "replica groups. Free space or repair the disk, then start it again with its data "
          "directory (`statekv cluster restart-missing`): it recovers its log up to the failure "
          "and catches up from the others (docs/cluster.md, \"A node whose disk fails\")",
          data_dir, why.detail);
    case FatalStop::Cause::kStoreFailed:
      return fmt::format(
          "this node's store ({}) could not write committed entries ({}), so its replicas no "
          "longer followed their logs. The other members serve its replica groups. Free space "
          "or repair the disk, then start it again with its data directory (`statekv cluster "
          "restart-missing`): it replays each group's log from what the store holds and catches "
          "up from the others (docs/cluster.md, \"A node whose disk fails\")",
          data_dir, why.detail);
    case FatalStop::Cause::kDisowned:
      break;
  }
  return fmt::format(
      "this node's write-ahead log ({}/wal) is not the one node {} had, so without the votes and "
      "log entries it acknowledged it cannot take part as node {}. Start it with its old data "
      "directory, or bring it back as a new node: `statekv cluster add-node`, then `statekv "
      "cluster remove-node --id {}` (docs/cluster.md, \"A node that lost its data\")",
      data_dir, node_id, node_id, node_id);
}

// Starts this node's membership in its cluster (raft replica, map watch).
Result<std::unique_ptr<node::ClusterNode>> start_cluster_node(const ServerFlags& flags,
                                                              const server::ServerConfig& config,
                                                              uint16_t resp_port,
                                                              FatalStop& fatal) {
  node::ClusterNodeOptions o;
  o.raft.on_disowned = [&fatal](const std::string& reason) {
    fatal.stop(FatalStop::Cause::kDisowned, reason);
  };
  o.raft.on_log_failed = [&fatal](const std::string& reason) {
    fatal.stop(FatalStop::Cause::kLogFailed, reason);
  };
  o.raft.self = NodeId(flags.node_id);
  o.raft.data_dir = config.data_dir;
  o.raft.peer_bind = config.bind;
  o.raft.resp_port = resp_port;
  o.raft.peer_port =
      flags.peer_port != 0 ? flags.peer_port : static_cast<uint16_t>(resp_port + 10000);
  o.raft.secret = cluster_secret_of(flags);
  if (o.raft.secret.empty()) {
    return Status::InvalidArgument(
        "cluster mode needs a secret: --cluster-secret or STATEKV_CLUSTER_SECRET");
  }
  auto peers = parse_peers(flags.peers);
  if (!peers.ok()) return peers.status();
  o.raft.peers = *peers;
  if (!flags.join) {
    for (const auto& [id, address] : *peers) o.raft.bootstrap_voters.push_back(id);
    if (o.raft.bootstrap_voters.empty()) o.raft.bootstrap_voters.push_back(o.raft.self);
    if (std::find(o.raft.bootstrap_voters.begin(), o.raft.bootstrap_voters.end(), o.raft.self) ==
        o.raft.bootstrap_voters.end()) {
      return Status::InvalidArgument("--peers must list this node (" +
                                     std::to_string(flags.node_id) + ") unless --join is given");
    }
  }
  o.raft.fsync = config.fsync != storage::FsyncPolicy::kNever;
  o.raft.raft.election_timeout = std::chrono::milliseconds(flags.election_timeout_ms);
  // Heartbeats well inside the election timeout, as Raft needs.
  o.raft.raft.heartbeat_interval =
      std::chrono::milliseconds(std::max<uint64_t>(1, flags.election_timeout_ms / 7));
  o.raft.raft.snapshot_threshold = flags.snapshot_entries;
  o.resp_address = config.bind + ":" + std::to_string(resp_port);
  o.region = flags.region;
  o.cluster_id = flags.cluster_id;
  o.default_partitioner = *meta::parse_partitioner(flags.default_partitioner);  // checked by CLI11
  o.default_replication = *meta::parse_replication(flags.default_replication);  // checked by CLI11
  if (!config.requirepass.empty())
    o.requirepass_hash = server::acl_password_hash(config.requirepass);
  return node::ClusterNode::start(std::move(o));
}

std::string new_run_id() {
  std::random_device rd;
  std::string id;
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 40; ++i) id.push_back(kHex[rd() % 16]);
  return id;
}

std::string executable_path() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.string();
}

// Checks that dir exists (creating it) and that we can write in it, so that a
// bad --data fails with a clear message before the engine tries.
Status prepare_data_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError(fmt::format("cannot create data dir '{}': {}", dir, ec.message()));
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return Status::IOError(fmt::format("data dir '{}' is not writable: {}", dir, strerror(errno)));
  }
  return Status::OK();
}

// A collection's element keys ("m" + generation + ...) share one memory-engine
// stripe per collection, and a sorted set's score-index keys ("z" + generation +
// ..., server/record.h) another, so SPOP's random seek, HGETALL's scan and
// ZRANGE's seek read one stripe's index instead of merging all of them.
size_t element_group(std::string_view key) {
  return server::collection_group_length(key);
}

// Score-index entries are only written and scanned (the store never looks one up
// by key), and an ordered list's elements are pushed, popped and read at its
// ends, which a B-tree descent finds in cache: the memory engine keeps both out
// of its hash index, a slot less each.
bool ordered_only(std::string_view key) {
  return server::is_score_index_key(key) || server::is_ordered_element_key(key);
}

// scoped: a cluster node, whose store keeps its replica groups' records under
// their groups' prefixes (server/key_scopes.h).
Result<std::unique_ptr<storage::Engine>> open_engine(const server::ServerConfig& config,
                                                     bool scoped) {
  if (config.engine == "memory") {
    return storage::open_memory_engine({}, element_group, ordered_only);
  }
  if (config.engine != "rocksdb") {
    return Status::InvalidArgument(fmt::format("unknown engine '{}'", config.engine));
  }
  if (Status s = prepare_data_dir(config.data_dir); !s.ok()) return s;
  storage::RocksDbEngineOptions options;
  options.path = (std::filesystem::path(config.data_dir) / "rocksdb").string();
  // Both always and batch group-commit in the engine's sync thread; always adds
  // that every reply (reads included) waits until the writes it could reflect are
  // durable, which the network layer enforces (ConnectionLimits). Syncing each
  // write on its own instead would cost one fsync per command of a pipeline.
  options.fsync = config.fsync == storage::FsyncPolicy::kNever ? storage::FsyncPolicy::kNever
                                                               : storage::FsyncPolicy::kBatch;
  auto engine = storage::open_rocksdb_engine(options);
  if (!engine.ok()) {
    // RocksDB reports a second process on the same directory as a LOCK error.
    return Status::IOError(
        fmt::format("cannot open data dir '{}' (is another statekv using it?): {}", options.path,
                    engine.status().to_string()));
  }
  if (Status s = server::Store::check_layout(**engine, scoped); !s.ok()) {
    return Status::InvalidArgument(
        fmt::format("cannot open data dir '{}': {}", config.data_dir, s.message()));
  }
  return engine;
}

int run_server(const ServerFlags& flags, const CLI::App& cmd) {
  // Defaults < file < flags.
  server::ServerConfig config;
  if (!flags.config_file.empty()) {
    if (Status s = server::load_toml_config(flags.config_file, config); !s.ok()) {
      std::cerr << "statekv server: " << s.message() << "\n";
      return 1;
    }
  }
  auto given = [&](const char* name) { return cmd.get_option(name)->count() > 0; };
  const auto& f = flags.values;
  if (given("--bind")) config.bind = f.bind;
  if (given("--port")) config.port = f.port;
  if (given("--data")) config.data_dir = f.data_dir;
  if (given("--engine")) config.engine = f.engine;
  if (given("--fsync")) config.fsync = *server::parse_fsync(flags.fsync);  // validated by CLI11
  if (given("--requirepass")) {
    config.requirepass = f.requirepass;
  } else if (const char* env = std::getenv("STATEKV_REQUIREPASS"); env != nullptr && *env != '\0') {
    // How `statekv cluster up --requirepass` hands the password to its
    // nodes: never in argv, which any local user can read in ps.
    config.requirepass = env;
  }
  if (given("--io-threads")) config.io_threads = f.io_threads;
  if (given("--maxclients")) config.maxclients = f.maxclients;
  if (given("--timeout")) config.timeout_seconds = f.timeout_seconds;
  if (given("--loglevel")) config.loglevel = f.loglevel;
  if (given("--logfile")) config.logfile = f.logfile;

  if (Status s = server::init_logging(config.loglevel, config.logfile); !s.ok()) {
    std::cerr << "statekv server: " << s.message() << "\n";
    return 1;
  }
  if (given("--group-compact-entries") && config.engine != "rocksdb") {
    // The memory engine keeps nothing across a restart: its groups compact by
    // snapshot, which this setting does not steer.
    std::cerr << "statekv server: --group-compact-entries applies to --engine rocksdb only\n";
    return 1;
  }

  if (flags.node_id == 0) {
    // A standalone server would take these and do nothing with them.
    for (const char* name :
         {"--peer-port", "--peers", "--join", "--cluster-secret", "--region", "--cluster-id",
          "--default-replication", "--default-partitioner", "--cluster-redirects",
          "--raft-election-timeout-ms", "--raft-snapshot-entries", "--group-compact-entries",
          "--group-compact-bytes", "--group-max-write-bytes", "--group-election-timeout-ms",
          "--keyspace-create-limit-ms"}) {
      if (given(name)) {
        std::cerr << "statekv server: " << name
                  << " applies to a cluster node only (give --node-id)\n";
        return 1;
      }
    }
  }

  // Block the shutdown signals before any thread starts, so every thread
  // inherits the mask and only sigwait() below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A client that disconnects mid-write must not kill the server.
  signal(SIGPIPE, SIG_IGN);

  auto engine = open_engine(config, flags.node_id != 0);
  if (!engine.ok()) {
    spdlog::error("{}", engine.status().message());
    return 1;
  }

  const unsigned io_threads = config.io_threads != 0
                                  ? config.io_threads
                                  : std::max(1u, std::thread::hardware_concurrency());
  server::ConfigStore store(config);
  server::ServerStats stats;
  server::ClientRegistryImpl registry;
  server::ServerContext ctx;
  ctx.config = &store;
  ctx.engine = engine->get();
  ctx.clients = &registry;
  ctx.stats = &stats;
  ctx.run_id = new_run_id();
  ctx.io_threads = io_threads;
  ctx.executable = executable_path();
  // SHUTDOWN from a client: the same stop as SIGTERM (cli/shutdown_signal.h).
  ShutdownSignal shutdown;
  ctx.shutdown = shutdown.handler(
      config.engine == "memory" ? "the memory engine keeps nothing on disk" : "");
  ctx.config_file = flags.config_file.empty()
                        ? std::string()
                        : std::filesystem::absolute(flags.config_file).string();

  std::unique_ptr<node::ClusterNode> cluster;
  FatalStop fatal;
  if (flags.node_id != 0) {
    if (Status s = prepare_data_dir(config.data_dir); !s.ok()) {
      spdlog::error("{}", s.message());
      return 1;
    }
    auto started = start_cluster_node(flags, config, config.port, fatal);
    if (!started.ok()) {
      spdlog::error("cannot join the cluster: {}", started.status().message());
      return 1;
    }
    cluster = std::move(started).value();
  }

  // Node ids fit the store's 16-bit generation space (checked: ids are small).
  ctx.generation_space = static_cast<uint16_t>(flags.node_id & 0xffff);
  // A cluster node keeps each replica group's records under the group's
  // prefix; the coordinator updates it from every map, before the groups.
  coord::GroupScopes scopes;
  if (cluster) ctx.key_scopes = &scopes;
  std::unique_ptr<node::ClusterAclStore> acl_store;
  if (cluster) {
    // The users and passwords are the cluster's (node/cluster_acl.h).
    acl_store = std::make_unique<node::ClusterAclStore>(*cluster, cluster_secret_of(flags));
    ctx.acl_store = acl_store.get();
  }
  std::unique_ptr<server::Service> service = server::make_service(ctx);
  if (cluster) {
    cluster->set_acl_listener([acl = service->acl()](const std::string& bytes) {
      if (Status s = acl->load(bytes); !s.ok()) {
        spdlog::error("the cluster's users do not load here (the previous ones stay): {}",
                      s.to_string());
      }
    });
  }
  std::unique_ptr<coord::Coordinator> coordinator;
  if (cluster) {
    coord::CoordinatorOptions co;
    co.self = NodeId(flags.node_id);
    co.secret = cluster_secret_of(flags);
    co.redirects = flags.redirects;
    co.workers = std::max(8u, 2 * io_threads);  // some may wait at a frozen gate
    coord::ReplicaGroupsOptions groups;
    groups.self = NodeId(flags.node_id);
    groups.data_dir = config.data_dir;
    groups.fsync = config.fsync != storage::FsyncPolicy::kNever;
    groups.raft.election_timeout = std::chrono::milliseconds(flags.group_election_timeout_ms);
    groups.raft.heartbeat_interval =
        std::chrono::milliseconds(std::max<uint64_t>(1, flags.group_election_timeout_ms / 7));
    groups.compact_after_entries = flags.group_compact_entries;
    groups.compact_after_bytes = flags.group_compact_bytes;
    groups.max_write_bytes = flags.group_max_write_bytes;
    groups.on_store_failed = [&fatal](const std::string& reason) {
      fatal.stop(FatalStop::Cause::kStoreFailed, reason);
    };
    groups.raft.snapshot_threshold_bytes = flags.group_compact_bytes;
    co.replica_groups = groups;
    co.scopes = &scopes;
    co.creation_limit = std::chrono::milliseconds(flags.keyspace_create_limit_ms);
    coordinator = std::make_unique<coord::Coordinator>(*cluster, *service, ctx, co);
    ctx.router = coordinator.get();
    ctx.cluster = coordinator.get();
  }
  // On the metadata leader, the replicas of consensus keyspaces follow the
  // map (coord/replica_controller.h).
  std::unique_ptr<coord::ReplicaControllerThread> replica_controller;
  if (cluster) {
    coord::ReplicaControllerOptions rc;
    rc.secret = cluster_secret_of(flags);
    node::ClusterNode* node = cluster.get();
    rc.leads_metadata = [node] { return node->leads_metadata(); };
    rc.map = [node] { return node->map(); };
    rc.down = [node] { return node->down_members(); };
    replica_controller = std::make_unique<coord::ReplicaControllerThread>(std::move(rc));
  }
  server::NetworkServer network(ctx, *service, registry);
  if (Status s = network.start(); !s.ok()) {
    spdlog::error("{}", s.message());
    return 1;
  }
  service->start();
  spdlog::info("statekv {} ready: bind={} port={} engine={} fsync={} data={} io-threads={} pid={}",
               kVersion, config.bind, network.port(), config.engine,
               server::fsync_name(config.fsync), config.data_dir, io_threads, ::getpid());

  int sig = 0;
  sigwait(&signals, &sig);
  const std::optional<server::ShutdownRequest> requested = shutdown.taken();
  const std::optional<FatalStop::Reason> fatal_why = fatal.reason();
  const bool disowned = fatal_why && fatal_why->cause == FatalStop::Cause::kDisowned;
  const bool disk_failed = fatal_why && !disowned;  // the log's, or the store's
  if (fatal_why) {
    spdlog::error("{}, shutting down: {}", FatalStop::what(fatal_why->cause), fatal_why->detail);
  } else {
    spdlog::info("received {}, shutting down", shutdown.cause(sig));
  }

  // A planned stop: the replica groups this node leads get other leaders
  // first, so their keys stay writable (a kill costs an election instead),
  // unless SHUTDOWN NOW asked to stop at once. A node whose log failed hands
  // over too: its followers hold what it could not log, and an election
  // would cost its groups a timeout.
  replica_controller.reset();  // no replica moves while this node stops
  if (coordinator && !(requested && requested->now) && !disowned) {
    coordinator->hand_over_leadership(std::chrono::milliseconds(2000));
  }
  network.stop();   // no new clients, every connection closed, I/O threads joined
  service->stop();  // background work (active expiry) ends before the engine closes
  if (Status s = (*engine)->sync(); !s.ok()) {
    spdlog::error("final sync failed: {}", s.to_string());
    // The same full disk, likely: the first failure is what to say last.
    if (!disk_failed) return 1;
  }
  coordinator.reset();  // no more routed commands
  cluster.reset();      // leaves the raft group's event loop and syncs its log
  if (fatal_why) {
    // The last line of the log: what the operator reads first.
    spdlog::critical("statekv stopped: {}",
                     fatal_stop_advice(*fatal_why, config.data_dir, flags.node_id));
    spdlog::default_logger()->flush();
    return 1;
  }
  spdlog::info("statekv stopped");
  spdlog::default_logger()->flush();
  return 0;
}

const SubcommandRegistration kRegistration([](CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<ServerFlags>();
  CLI::App* cmd = app.add_subcommand(
      "server",
      "Run a statekv node that speaks the Redis protocol (redis-cli -p PORT connects to it)");
  auto& v = flags->values;
  cmd->add_option("--config", flags->config_file,
                  "TOML file with settings (keys are the CONFIG names, e.g. port = 7001, "
                  "appendfsync = \"always\"); flags given here override it")
      ->check(CLI::ExistingFile);
  cmd->add_option("--bind", v.bind, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", v.port, "TCP port to listen on")->capture_default_str();
  cmd->add_option("--data", v.data_dir,
                  "Data directory; the rocksdb engine keeps its files in DATA/rocksdb")
      ->capture_default_str();
  cmd->add_option("--engine", v.engine,
                  "Storage engine: rocksdb (on disk) or memory (nothing survives a restart)")
      ->check(CLI::IsMember({"rocksdb", "memory"}))
      ->capture_default_str();
  cmd->add_option("--fsync", flags->fsync,
                  "When replies wait for fsync: always (every reply, reads included, waits until "
                  "the writes it could reflect are on disk: no client sees data a crash could "
                  "lose), batch (a write is acknowledged after the group fsync that covers it; "
                  "reads may see writes not yet on disk), never (at once; a crash may lose "
                  "recent writes)")
      ->check(CLI::IsMember({"always", "batch", "never"}))
      ->capture_default_str();
  cmd->add_option("--requirepass", v.requirepass,
                  "Password clients must give with AUTH before other commands (default: "
                  "$STATEKV_REQUIREPASS, else none). In a cluster it seeds the cluster's password "
                  "when the cluster forms; afterwards the cluster's (kept by the metadata "
                  "service) holds");
  cmd->add_option("--io-threads", v.io_threads,
                  "Number of I/O threads, each running its own event loop (0: one per hardware "
                  "thread)")
      ->check(CLI::Range(0u, 64u))
      ->capture_default_str();
  cmd->add_option("--maxclients", v.maxclients,
                  "Most simultaneous clients; more are refused with "
                  "'ERR max number of clients reached'")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--timeout", v.timeout_seconds,
                  "Close a client after this many idle seconds (0: never)")
      ->capture_default_str();
  cmd->add_option("--loglevel", v.loglevel,
                  "Log level: debug (Redis's verbose), info (Redis's notice), warn (or warning) "
                  "or error")
      ->check(CLI::IsMember({"debug", "verbose", "info", "notice", "warn", "warning", "error"}))
      ->capture_default_str();
  cmd->add_option("--logfile", v.logfile, "Append the log to this file (default: stderr)");
  cmd->add_option("--node-id", flags->node_id,
                  "Run as node ID (>= 1) of a cluster; without it the server is standalone");
  cmd->add_option("--peer-port", flags->peer_port,
                  "Port for other nodes and cluster clients (default: --port + 10000)");
  cmd->add_option("--peers", flags->peers,
                  "The cluster's founding members as ID=HOST:PEERPORT,... (this node included); "
                  "used on the first start only");
  cmd->add_flag(
      "--join", flags->join,
      "Start empty and wait to be added to an existing cluster (statekv cluster add-node)");
  cmd->add_option("--cluster-secret", flags->secret,
                  "Secret every node and cluster client must prove it knows "
                  "(default: $STATEKV_CLUSTER_SECRET)");
  cmd->add_option("--region", flags->region, "Region label of this node")->capture_default_str();
  cmd->add_option("--cluster-id", flags->cluster_id, "Name of the cluster")->capture_default_str();
  cmd->add_option("--default-replication", flags->default_replication,
                  "Replication of the default keyspace when this node forms the cluster: none, "
                  "or consensus (raft per shard, factor min(3, founding members))")
      ->check(CLI::IsMember({"none", "consensus"}))
      ->capture_default_str();
  cmd->add_option("--default-partitioner", flags->default_partitioner,
                  "Partitioner of the 'default' keyspace when the cluster is first formed: hash, "
                  "ring or slots (slots: Redis Cluster clients see every key)")
      ->check(CLI::IsMember({"hash", "ring", "slots"}))
      ->capture_default_str();
  cmd->add_flag("--cluster-redirects", flags->redirects,
                "Answer MOVED for keys of slots keyspaces that another node serves, instead of "
                "routing them (per connection: CLUSTER REDIRECTS ON)");
  cmd->add_option("--raft-election-timeout-ms", flags->election_timeout_ms,
                  "Election timeout T of the metadata raft group: each one is drawn from [T, 2T); "
                  "heartbeats every T/7")
      ->check(CLI::Range(10, 60000))
      ->capture_default_str();
  cmd->add_option("--group-compact-entries", flags->group_compact_entries,
                  "With --engine rocksdb: once the replica groups together applied this many "
                  "entries past their logs' compaction points, the store is flushed to disk and "
                  "every group's log compacted (docs/replication.md, \"Compaction without "
                  "copying the shard\")")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40))
      ->capture_default_str();
  cmd->add_option("--group-compact-bytes", flags->group_compact_bytes,
                  "The same once those entries hold this many bytes (a group's log is in memory "
                  "until compacted: large values fill it long before the entry count); with "
                  "--engine memory, a group whose log holds this many bytes past its snapshot "
                  "takes a snapshot. 0: no bound")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 50))
      ->capture_default_str();
  cmd->add_option("--group-max-write-bytes", flags->group_max_write_bytes,
                  "The largest effect one command may write to a consensus keyspace (one raft "
                  "entry); a larger write is refused with an error, before anything happens")
      ->check(CLI::Range(uint64_t{1} << 10, uint64_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--group-election-timeout-ms", flags->group_election_timeout_ms,
                  "Election timeout T of the replica groups (consensus keyspaces): each one is "
                  "drawn from [T, 2T); heartbeats every T/7. A follower takes over a killed "
                  "leader's shards within about 2T")
      ->check(CLI::Range(10, 60000))
      ->capture_default_str();
  cmd->add_option("--keyspace-create-limit-ms", flags->keyspace_create_limit_ms,
                  "A keyspace created over a prefix whose keys cannot move in refuses its keys "
                  "until its creation ends (milliseconds, normally); one still under way this "
                  "long after this node saw it begin (the node creating it stopped) is "
                  "abandoned, and the prefix is served where it was")
      ->check(CLI::Range(100, 3600000))
      ->capture_default_str();
  cmd->add_option("--raft-snapshot-entries", flags->snapshot_entries,
                  "Applied raft entries after which the log is compacted into a snapshot")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  cmd->callback([flags, cmd, exit_code] { *exit_code = run_server(*flags, *cmd); });
});

}  // namespace
}  // namespace statekv::cli
