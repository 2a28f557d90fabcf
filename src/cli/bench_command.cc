// `statekv bench --target etcd|statekv|resp --endpoints A,B,C`: a closed-loop
// write load through a store's own client path, measured by src/loadgen's
// harness. The same harness drives etcd (through its HTTP/JSON gateway),
// statekv's metadata raft group over the network, and any RESP server (statekv
// nodes, Redis, optionally with WAIT), so the sets of figures compare.
// With --target resp --route leader each client sends every key to the node
// that leads its replica group (loadgen/leader_route.h), as a smart Redis
// Cluster client does, instead of to one node that forwards it.
// Exit 0 when every put was acknowledged, 1 when the run finished with failed
// puts (figures still printed, with the first error), 2 when it could not run.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/subcommand.h"
#include "loadgen/etcd_connection.h"
#include "loadgen/leader_route.h"
#include "loadgen/load.h"
#include "loadgen/resp_connection.h"
#include "net/bench_client.h"

namespace statekv::cli {
namespace {

struct BenchFlags {
  std::string target;
  std::vector<std::string> endpoints;
  std::string secret;
  std::string key_prefix;
  std::string route = "spread";
  int64_t wait = 0;
  loadgen::LoadOptions load;
  bool json = false;
};

Result<loadgen::ConnectionFactory> make_factory(const BenchFlags& flags) {
  if (flags.target != "resp" && (!flags.key_prefix.empty() || flags.wait != 0 ||
                                 flags.route != "spread" || flags.load.pipeline != 1)) {
    // Only the RESP client pipelines; the others would send one put at a time.
    return Status::InvalidArgument(
        "--key-prefix, --wait, --route and --pipeline apply to --target resp only");
  }
  if (flags.target == "etcd") return loadgen::make_etcd_connection_factory(flags.endpoints);
  if (flags.target == "resp") {
    loadgen::RespOptions options;
    options.key_prefix = flags.key_prefix;
    options.wait_replicas = flags.wait;
    if (flags.route == "spread") {
      return loadgen::make_resp_connection_factory(flags.endpoints, options);
    }
    // --route leader: every key located once, before the run.
    auto endpoints = loadgen::parse_resp_endpoints(flags.endpoints);
    if (!endpoints.ok()) return endpoints.status();
    const auto start = std::chrono::steady_clock::now();
    auto table = loadgen::locate_keys(*endpoints, options, flags.load.key_space);
    if (!table.ok()) return table.status();
    const loadgen::LeaderTable::Counts counts = (*table)->counts();
    if (!flags.json) {
      std::string per_endpoint;
      for (size_t i = 0; i < counts.per_endpoint.size(); ++i) {
        per_endpoint += fmt::format("{}{}:{} {}", i == 0 ? "" : ", ", (*endpoints)[i].host,
                                    (*endpoints)[i].port, counts.per_endpoint[i]);
      }
      std::fprintf(stderr,
                   "statekv bench: --route leader: %zu keys located in %.2f s, %zu shard(s); "
                   "shards led per endpoint: %s\n",
                   counts.keys,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                   counts.shards, per_endpoint.c_str());
    }
    if (counts.direct < counts.keys) {
      // Not fatal (those keys go to the spread endpoint), but the figures are
      // then not those of a direct path: say so even with --json.
      std::fprintf(stderr,
                   "statekv bench: --route leader: %zu of %zu keys have no leader among "
                   "--endpoints (LOCATE names nodes by their RESP host:port); they go to the "
                   "client's spread endpoint\n",
                   counts.keys - counts.direct, counts.keys);
    }
    return loadgen::make_resp_leader_factory(*endpoints, options, std::move(*table));
  }
  if (flags.secret.empty()) {
    return Status::InvalidArgument(
        "--target statekv needs the cluster secret: --secret or STATEKV_CLUSTER_SECRET");
  }
  return net::make_statekv_connection_factory(flags.endpoints, flags.secret);
}

int run_bench(const BenchFlags& flags) {
  auto factory = make_factory(flags);
  if (!factory.ok()) {
    std::fprintf(stderr, "statekv bench: %s\n", factory.status().to_string().c_str());
    return 2;
  }
  if (!flags.json) {
    std::fprintf(stderr, "statekv bench: %s at %zu endpoint(s)%s, %zu clients, %zu puts ...\n",
                 flags.target.c_str(), flags.endpoints.size(),
                 flags.target == "resp" ? (", route " + flags.route).c_str() : "",
                 flags.load.clients, flags.load.requests);
  }
  auto result = loadgen::run_load(flags.load, *factory);
  if (!result.ok()) {
    std::fprintf(stderr, "statekv bench: %s\n", result.status().to_string().c_str());
    return 2;
  }
  const std::string route = flags.target == "resp" ? flags.route : std::string();
  if (flags.json) {
    fmt::print("{}\n", loadgen::format_json(flags.target, flags.load, *result, route));
  } else {
    fmt::print("{}", loadgen::format_table(flags.target, flags.load, *result, route));
  }
  std::fflush(stdout);
  return result->errors == 0 ? 0 : 1;
}

const SubcommandRegistration kRegistration([](CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Closed-loop write benchmark through etcd's, statekv's or a RESP server's client path");
  cmd->add_option("--target", flags->target,
                  "Store to drive: etcd, statekv (its metadata raft group over the peer "
                  "transport) or resp (SET through the Redis protocol)")
      ->required()
      ->check(CLI::IsMember({"etcd", "statekv", "resp"}));
  cmd->add_option("--endpoints", flags->endpoints,
                  "Comma-separated host:port list: etcd client URLs, statekv peer addresses, "
                  "or RESP addresses")
      ->required()
      ->delimiter(',');
  cmd->add_option("--secret", flags->secret, "statekv cluster secret (--target statekv)")
      ->envname("STATEKV_CLUSTER_SECRET");
  cmd->add_option("--key-prefix", flags->key_prefix,
                  "Prepended to every key (--target resp), e.g. a keyspace's prefix r:");
  cmd->add_option("--route", flags->route,
                  "How each client picks the node for a key (--target resp): spread (client c "
                  "talks to endpoint c % N only; a statekv node forwards what it does not lead) "
                  "or leader (a connection to every endpoint, each SET to the node that leads "
                  "the key's replica group, learnt by LOCATE before the run, as a smart Redis "
                  "Cluster client sends to the slot's master; --endpoints must cover the "
                  "cluster's nodes)")
      ->capture_default_str()
      ->check(CLI::IsMember({"spread", "leader"}));
  cmd->add_option("--wait", flags->wait,
                  "After each SET send WAIT N 0; the put counts only if WAIT answers >= N "
                  "(--target resp; for Redis primary + replicas)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1000}));
  cmd->add_option("--pipeline", flags->load.pipeline,
                  "Puts each client sends before waiting for their acknowledgements (--target "
                  "resp: the SETs in one send, with --wait one WAIT after them)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1024}));
  cmd->add_option("--clients", flags->load.clients,
                  "Concurrent clients, one connection each (one per endpoint with --route leader)")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{4096}));
  cmd->add_option("--requests", flags->load.requests, "Measured puts in total")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--value-size", flags->load.value_size, "Bytes per value")
      ->capture_default_str()
      ->check(CLI::Range(size_t{0}, size_t{1} << 20));
  cmd->add_option("--key-space", flags->load.key_space, "Distinct keys (key:%012d)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", flags->load.seed, "Seed for the key sequence")->capture_default_str();
  cmd->add_option("--warmup", flags->load.warmup_seconds,
                  "Seconds of unmeasured writes before the clock starts")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  cmd->add_flag("--json", flags->json, "Print one JSON object instead of a table");
  cmd->footer(
      "Each client waits for its put to be acknowledged before sending the next (closed loop);\n"
      "with --pipeline N, for its N puts before sending the next N. A put's latency runs from\n"
      "the send of its batch to its own acknowledgement (+OK, or with --wait the WAIT's answer).\n"
      "Clients are spread over the endpoints (client c uses endpoint c % N). Latency\n"
      "percentiles are nearest-rank over every acknowledged put of the measured phase.\n"
      "--route leader (statekv nodes): LOCATE <key-prefix><key> is asked once per key of\n"
      "--key-space before the run (pipelined, through the first endpoint that answers); a\n"
      "key goes to the endpoint whose host:port LOCATE gives for its group's leader (its\n"
      "owner for a keyspace that is not replicated), or, when that node is none of\n"
      "--endpoints or does not answer, to the client's spread endpoint (c % N, or the next\n"
      "one that answers), which forwards it. After a failed put the key's shard is located\n"
      "again (through the spread endpoint); a leader that moved without an error is\n"
      "followed only after one (the old leader forwards meanwhile).\n"
      "etcd is driven through its HTTP/JSON gateway (POST /v3/kv/put); resp sends\n"
      "SET <key-prefix><key> <value> and expects +OK (then WAIT N 0 with --wait N).\n"
      "\nExit status: 0 every put acknowledged, 1 some puts failed (figures printed\n"
      "with the first error), 2 the run could not start.");
  cmd->callback([flags, exit_code] { *exit_code = run_bench(*flags); });
});

}  // namespace
}  // namespace statekv::cli
