// `statekv bench --target etcd|statekv --endpoints A,B,C`: a closed-loop write
// load through a store's own client path, measured by src/loadgen's harness.
// The same harness drives etcd (through its HTTP/JSON gateway) and statekv
// (through its raft group over the network), so the two sets of figures compare.
// Exit 0 when every put was acknowledged, 1 when the run finished with failed
// puts (figures still printed, with the first error), 2 when it could not run.
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/subcommand.h"
#include "loadgen/etcd_connection.h"
#include "loadgen/load.h"
#include "net/bench_client.h"

namespace statekv::cli {
namespace {

struct BenchFlags {
  std::string target;
  std::vector<std::string> endpoints;
  std::string secret;
  loadgen::LoadOptions load;
  bool json = false;
};

Result<loadgen::ConnectionFactory> make_factory(const BenchFlags& flags) {
  if (flags.target == "etcd") return loadgen::make_etcd_connection_factory(flags.endpoints);
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
    std::fprintf(stderr, "statekv bench: %s at %zu endpoint(s), %zu clients, %zu puts ...\n",
                 flags.target.c_str(), flags.endpoints.size(), flags.load.clients,
                 flags.load.requests);
  }
  auto result = loadgen::run_load(flags.load, *factory);
  if (!result.ok()) {
    std::fprintf(stderr, "statekv bench: %s\n", result.status().to_string().c_str());
    return 2;
  }
  if (flags.json) {
    fmt::print("{}\n", loadgen::format_json(flags.target, flags.load, *result));
  } else {
    fmt::print("{}", loadgen::format_table(flags.target, flags.load, *result));
  }
  std::fflush(stdout);
  return result->errors == 0 ? 0 : 1;
}

const SubcommandRegistration kRegistration([](CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Closed-loop write benchmark through etcd's or statekv's client path");
  cmd->add_option("--target", flags->target, "Store to drive: etcd or statekv")
      ->required()
      ->check(CLI::IsMember({"etcd", "statekv"}));
  cmd->add_option("--endpoints", flags->endpoints,
                  "Comma-separated host:port list: etcd client URLs, or statekv peer addresses")
      ->required()
      ->delimiter(',');
  cmd->add_option("--secret", flags->secret, "statekv cluster secret (--target statekv)")
      ->envname("STATEKV_CLUSTER_SECRET");
  cmd->add_option("--clients", flags->load.clients, "Concurrent clients, one connection each")
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
      "Each client waits for its put to be acknowledged before sending the next (closed loop).\n"
      "Clients are spread over the endpoints (client c uses endpoint c % N). Latency\n"
      "percentiles are nearest-rank over every acknowledged put of the measured phase.\n"
      "etcd is driven through its HTTP/JSON gateway (POST /v3/kv/put).\n"
      "\nExit status: 0 every put acknowledged, 1 some puts failed (figures printed\n"
      "with the first error), 2 the run could not start.");
  cmd->callback([flags, exit_code] { *exit_code = run_bench(*flags); });
});

}  // namespace
}  // namespace statekv::cli
