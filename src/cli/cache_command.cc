// `statekv cache` — a RESP server that clients use in place of a node: reads
// served from memory (cache/cache.h), loaded from the store on a miss, writes
// passed through to the store (cache/cache_service.h). See docs/cache.md.
#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <iostream>
#include <memory>
#include <random>
#include <string>

#include "cache/cache_service.h"
#include "cache/invalidation.h"
#include "cache/upstream.h"
#include "cli/shutdown_signal.h"
#include "cli/subcommand.h"
#include "server/client_registry.h"
#include "server/config.h"
#include "server/context.h"
#include "server/logging.h"
#include "server/network.h"
#include "storage/engine.h"

namespace statekv::cli {
namespace {

struct CacheFlags {
  std::string upstream;
  std::string bind = "127.0.0.1";
  uint16_t port = 6380;
  std::string max_memory = "64mb";
  std::string policy = "w-tinylfu";
  int64_t ttl_ms = 5000;
  std::string coalesce = "on";
  std::string track = "on";
  double xfetch_beta = 0;
  int64_t stale_ms = 0;
  int64_t negative_ttl_ms = 0;
  unsigned upstream_connections = 8;
  unsigned io_threads = 1;
  unsigned busy_poll_us = 20;
  uint64_t seed = 0;
  int64_t inject_upstream_delay_ms = 0;
  std::string leases = "off";
  int64_t lease_ms = 2000;
  std::string loglevel = "info";
};

// "1048576", "64kb", "64mb", "1gb" (Redis's units: k/kb = 1024).
Result<uint64_t> parse_bytes(std::string_view text) {
  uint64_t n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || p == text.data()) {
    return Status::InvalidArgument("--max-memory '" + std::string(text) + "' is not a size");
  }
  std::string unit(p, text.data() + text.size());
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  uint64_t mult = 1;
  if (unit.empty() || unit == "b") {
    mult = 1;
  } else if (unit == "k" || unit == "kb") {
    mult = 1ull << 10;
  } else if (unit == "m" || unit == "mb") {
    mult = 1ull << 20;
  } else if (unit == "g" || unit == "gb") {
    mult = 1ull << 30;
  } else {
    return Status::InvalidArgument("--max-memory unit '" + unit + "' is not b, kb, mb or gb");
  }
  return n * mult;
}

int run_cache(const CacheFlags& f) {
  if (Status s = server::init_logging(f.loglevel, ""); !s.ok()) {
    std::cerr << "statekv cache: " << s.message() << "\n";
    return 1;
  }
  auto fail = [](const std::string& message) {
    std::cerr << "statekv cache: " << message << "\n";
    return 1;
  };
  auto endpoints = cache::parse_endpoints(f.upstream);
  if (!endpoints.ok()) return fail(endpoints.status().message());
  auto max_memory = parse_bytes(f.max_memory);
  if (!max_memory.ok()) return fail(max_memory.status().message());
  const bool track = f.track == "on";
  if (f.ttl_ms < 0 || (!track && f.ttl_ms == 0)) {
    // Without invalidation from the store the TTL is what bounds staleness.
    return fail(
        "--ttl-ms must be > 0 with --track off (then the cache TTL is what bounds how "
        "stale a value can be), and >= 0 otherwise");
  }
  cache::CacheOptions options;
  options.store.max_bytes = *max_memory;
  options.store.policy = f.policy == "lru" ? cache::Policy::kLru : cache::Policy::kWTinyLfu;
  options.ttl_us = f.ttl_ms * 1000;
  options.coalesce = f.coalesce == "on";
  options.xfetch_beta = f.xfetch_beta;
  options.stale_us = f.stale_ms * 1000;
  options.negative_ttl_us = f.negative_ttl_ms * 1000;
  if (f.stale_ms < 0 || f.negative_ttl_ms < 0 || f.inject_upstream_delay_ms < 0) {
    return fail("--stale-ms, --negative-ttl-ms and --inject-upstream-delay-ms must be >= 0");
  }
  if (f.lease_ms < 10) {
    return fail("--lease-ms must be at least 10 (a holder must have time to load the key)");
  }
  if (Status s = options.validate(); !s.ok()) return fail(s.message());
  const uint64_t seed = f.seed != 0 ? f.seed : std::random_device{}();

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  cache::UpstreamOptions uo;
  uo.endpoints = *endpoints;
  uo.connections = f.upstream_connections;
  uo.inject_delay = std::chrono::milliseconds(f.inject_upstream_delay_ms);
  cache::Upstream upstream(uo);
  if (Status s = upstream.probe(); !s.ok()) {
    spdlog::error("no upstream answers PING: {}", s.message());
    return 1;
  }
  upstream.start();

  server::ServerConfig config;
  config.bind = f.bind;
  config.port = f.port;
  config.engine = "memory";
  config.fsync = storage::FsyncPolicy::kNever;
  config.io_threads = f.io_threads;
  // The networking layer asks an engine whether replies may leave; the cache
  // writes nothing to it, so every reply may leave at once.
  std::unique_ptr<storage::Engine> engine = storage::open_memory_engine();
  server::ConfigStore store(config);
  server::ServerStats stats;
  server::ClientRegistryImpl registry;
  server::ServerContext ctx;
  ctx.config = &store;
  ctx.engine = engine.get();
  ctx.clients = &registry;
  ctx.stats = &stats;
  ctx.io_threads = std::max(1u, f.io_threads);
  static constexpr char kHex[] = "0123456789abcdef";
  Random id_random(seed);
  for (int i = 0; i < 40; ++i) ctx.run_id.push_back(kHex[id_random.uniform(16)]);

  cache::LeaseOptions leases;
  leases.enabled = f.leases == "on";
  leases.lease_ms = f.lease_ms;
  {
    // Unique among the caches of a store even when they share --seed (the
    // run id derives from it): a lease value names its holder.
    std::random_device rd;
    leases.owner =
        fmt::format("{}-{}-{:08x}{:08x}", ctx.run_id.substr(0, 8), ::getpid(), rd(), rd());
  }
  // SHUTDOWN from a client: the same stop as SIGTERM (cli/shutdown_signal.h).
  ShutdownSignal shutdown;
  ctx.shutdown = shutdown.handler("the cache keeps nothing on disk");
  cache::CacheService service(ctx, upstream, options, seed, leases);
  // Writes made anywhere reach the cache through the nodes' CLIENT TRACKING;
  // lease fills through a subscription on the same connections.
  cache::InvalidationListener listener(
      *endpoints,
      {[&service](const std::vector<std::string>& keys) { service.invalidate(keys); },
       [&service] { service.invalidate_all(); },
       [&service](std::string_view payload) { service.on_fill(payload); }},
      {track, leases.enabled ? leases.channel : std::string()});
  if (track || leases.enabled) {
    service.set_listener(&listener, track);
    listener.start();
  }
  server::NetworkServer network(ctx, service, registry);
  network.set_busy_poll(std::chrono::microseconds(f.busy_poll_us));
  if (Status s = network.start(); !s.ok()) {
    spdlog::error("{}", s.message());
    listener.stop();
    service.stop();
    upstream.stop();
    return 1;
  }
  spdlog::info(
      "statekv cache ready: bind={} port={} upstream={} max-memory={} policy={} ttl-ms={} "
      "track={} coalesce={} xfetch-beta={} stale-ms={} negative-ttl-ms={} leases={} lease-ms={} "
      "seed={} pid={}",
      f.bind, network.port(), f.upstream, *max_memory, cache::policy_name(options.store.policy),
      f.ttl_ms, f.track, f.coalesce, f.xfetch_beta, f.stale_ms, f.negative_ttl_ms, f.leases,
      f.lease_ms, seed, ::getpid());

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received {}, shutting down", shutdown.cause(sig));
  listener.stop();  // no more invalidations
  network.stop();   // no connection calls into the service any more
  service.stop();   // no lease timer asks the store again
  upstream.stop();  // callbacks of queued jobs run (their connections are gone: skipped)
  spdlog::info("statekv cache stopped");
  spdlog::default_logger()->flush();
  return 0;
}

const SubcommandRegistration kRegistration([](CLI::App& app, int* exit_code) {
  auto f = std::make_shared<CacheFlags>();
  CLI::App* cmd = app.add_subcommand(
      "cache",
      "Run a cache in front of statekv nodes: clients connect to it as to a node (docs/cache.md)");
  cmd->add_option("--upstream", f->upstream, "The store's nodes, HOST:PORT[,HOST:PORT...]")
      ->required();
  cmd->add_option("--bind", f->bind, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", f->port, "TCP port to listen on (0: any free port)")
      ->capture_default_str();
  cmd->add_option("--max-memory", f->max_memory,
                  "Bytes the cached entries may take (key + value + 96 per entry): 1048576, "
                  "512kb, 64mb, 1gb")
      ->capture_default_str();
  cmd->add_option("--policy", f->policy, "Eviction: w-tinylfu (Caffeine's) or lru")
      ->check(CLI::IsMember({"w-tinylfu", "lru"}))
      ->capture_default_str();
  cmd->add_option("--ttl-ms", f->ttl_ms,
                  "How long a loaded value is served before it is loaded again (0: until "
                  "invalidated or evicted, only with --track on)")
      ->capture_default_str();
  cmd->add_option("--track", f->track,
                  "Subscribe to every upstream node's CLIENT TRACKING (BCAST) so a write made "
                  "anywhere drops the cached copy: on or off")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  cmd->add_option("--coalesce", f->coalesce,
                  "Concurrent misses on one key make one upstream load: on or off")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  cmd->add_option("--xfetch-beta", f->xfetch_beta,
                  "Probabilistic early refresh (XFetch); 0 = off, 1 = the paper's default")
      ->capture_default_str();
  cmd->add_option("--stale-ms", f->stale_ms,
                  "Stale-while-revalidate: serve an expired value this long while one load "
                  "refreshes it (0 = off)")
      ->capture_default_str();
  cmd->add_option("--negative-ttl-ms", f->negative_ttl_ms,
                  "Remember that a key does not exist for this long (0 = off)")
      ->capture_default_str();
  cmd->add_option("--upstream-connections", f->upstream_connections,
                  "Connections (and loader threads) to the store")
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
  cmd->add_option("--io-threads", f->io_threads, "I/O threads serving clients")
      ->check(CLI::Range(1u, 64u))
      ->capture_default_str();
  cmd->add_option("--busy-poll-us", f->busy_poll_us,
                  "After a pass of work, each I/O thread polls its sockets this long before "
                  "it sleeps (0 = sleep at once; docs/cache.md, \"Throughput\")")
      ->check(CLI::Range(0u, 10000u))
      ->capture_default_str();
  cmd->add_option("--seed", f->seed, "Seed of the random source (XFetch); 0 = pick one and log it")
      ->capture_default_str();
  cmd->add_option("--inject-upstream-delay-ms", f->inject_upstream_delay_ms,
                  "Testing and benchmarks: delay every upstream request by this much")
      ->capture_default_str();
  cmd->add_option("--leases", f->leases,
                  "Leases across cache processes in front of one store: one cache loads a "
                  "missing key, the others wait for its fill (docs/cache.md): on or off")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  cmd->add_option("--lease-ms", f->lease_ms,
                  "How long a lease holds a key: the longest a holder that died delays the "
                  "others")
      ->capture_default_str();
  cmd->add_option("--loglevel", f->loglevel, "Log level: debug, info, warn or error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}))
      ->capture_default_str();
  cmd->callback([f, exit_code] { *exit_code = run_cache(*f); });
});

}  // namespace
}  // namespace statekv::cli
