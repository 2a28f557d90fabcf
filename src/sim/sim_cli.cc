#include "sim/sim_cli.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>

#include "sim/judge.h"

namespace statekv::sim {
namespace {

constexpr const char* kUsage =
    "usage: statekv sim --protocol NAME [--seeds A..B] [--ops N] [--nodes K] [--clients C]\n"
    "                   [--keys N] [--skew uniform|zipf] [--faults LIST] [--history FILE]\n"
    "                   [--schedule FILE] [--min-ok F] [--verbose] [--list]\n"
    "  --seeds A..B     seeds to run, inclusive (or one seed A); default 1\n"
    "  --ops N          operations per seed over all clients; default 200\n"
    "  --nodes K        replicas; default 3\n"
    "  --clients C      concurrent client processes; default 4\n"
    "  --keys N         key set size; default 5\n"
    "  --skew S         uniform or zipf; default uniform\n"
    "  --faults LIST    none, all, or a comma list of loss,dup,reorder,delay,partition,\n"
    "                   oneway,crash,clock; default none\n"
    "  --history FILE   write each seed's history as JSON Lines; with several seeds\n"
    "                   FILE must contain {seed}, replaced by the seed\n"
    "  --schedule FILE  a hand-written fault schedule instead of the random one\n"
    "  --min-ok F       a seed fails when less than this fraction (0..1) of its\n"
    "                   operations succeeded; default 0.5 with faults or a schedule,\n"
    "                   0.8 without\n"
    "  --verbose        print every derived parameter of every seed\n"
    "  --list           list the registered protocols\n";

struct CliOptions {
  std::string protocol;
  uint64_t first_seed = 1, last_seed = 1;
  SimOptions sim;
  std::string faults_text = "none";
  std::string history_path;
  std::string schedule_path;
  std::optional<double> min_ok;  // nullopt: default_min_ok()
  bool verbose = false;
  bool list = false;
  bool help = false;
};

bool parse_u64(std::string_view s, uint64_t& v) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

Result<CliOptions> parse(const std::vector<std::string>& args) {
  CliOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> Result<std::string> {
      if (i + 1 >= args.size()) return Status::InvalidArgument(a + " needs a value");
      return args[++i];
    };
    auto number = [&](size_t& out, uint64_t min) -> Status {
      Result<std::string> v = value();
      if (!v.ok()) return v.status();
      uint64_t n = 0;
      if (!parse_u64(*v, n) || n < min) {
        return Status::InvalidArgument(
            fmt::format("{} wants a number >= {}, got '{}'", a, min, *v));
      }
      out = n;
      return Status::OK();
    };
    Status s;
    if (a == "--protocol") {
      Result<std::string> v = value();
      if (!v.ok()) return v.status();
      o.protocol = *v;
    } else if (a == "--seeds") {
      Result<std::string> v = value();
      if (!v.ok()) return v.status();
      const size_t dots = v->find("..");
      const bool ok = dots == std::string::npos
                          ? parse_u64(*v, o.first_seed) && parse_u64(*v, o.last_seed)
                          : parse_u64(v->substr(0, dots), o.first_seed) &&
                                parse_u64(v->substr(dots + 2), o.last_seed);
      if (!ok || o.first_seed > o.last_seed) {
        return Status::InvalidArgument("--seeds wants A..B with A <= B, or one seed");
      }
    } else if (a == "--ops") {
      s = number(o.sim.ops, 1);
    } else if (a == "--nodes") {
      s = number(o.sim.nodes, 1);
    } else if (a == "--clients") {
      s = number(o.sim.clients, 1);
    } else if (a == "--keys") {
      s = number(o.sim.workload.keys, 1);
    } else if (a == "--skew") {
      Result<std::string> v = value();
      if (!v.ok()) return v.status();
      if (*v == "uniform") {
        o.sim.workload.skew = KeySkew::kUniform;
      } else if (*v == "zipf") {
        o.sim.workload.skew = KeySkew::kZipf;
      } else {
        return Status::InvalidArgument("--skew is uniform or zipf");
      }
    } else if (a == "--faults") {
      Result<std::string> v = value();
      if (!v.ok()) return v.status();
      o.faults_text = *v;
    } else if (a == "--history") {
      Result<std::string> v = value();
      if (!v.ok()) return v.status();
      o.history_path = *v;
    } else if (a == "--schedule") {
      Result<std::string> v = value();
      if (!v.ok()) return v.status();
      o.schedule_path = *v;
    } else if (a == "--min-ok") {
      Result<std::string> v = value();
      if (!v.ok()) return v.status();
      double f = 0;
      auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), f);
      if (ec != std::errc() || p != v->data() + v->size() || !(f >= 0 && f <= 1)) {
        return Status::InvalidArgument("--min-ok wants a fraction in 0..1, got '" + *v + "'");
      }
      o.min_ok = f;
    } else if (a == "--verbose") {
      o.verbose = true;
    } else if (a == "--list") {
      o.list = true;
    } else if (a == "--help" || a == "-h") {
      o.help = true;
    } else {
      return Status::InvalidArgument("unknown argument '" + a + "'");
    }
    if (!s.ok()) return s;
  }
  Result<FaultSet> faults = parse_fault_set(o.faults_text);
  if (!faults.ok()) return faults.status();
  o.sim.faults = *faults;
  if (!o.history_path.empty() && o.first_seed != o.last_seed &&
      o.history_path.find("{seed}") == std::string::npos) {
    return Status::InvalidArgument("--history with several seeds needs {seed} in the file name");
  }
  return o;
}

std::string replay_command(const CliOptions& o, uint64_t seed) {
  std::string cmd = fmt::format(
      "statekv sim --protocol {} --seeds {} --ops {} --nodes {} --clients {} --keys {} "
      "--skew {} --faults {}",
      o.protocol, seed, o.sim.ops, o.sim.nodes, o.sim.clients, o.sim.workload.keys,
      o.sim.workload.skew == KeySkew::kZipf ? "zipf" : "uniform", o.sim.faults.to_string());
  if (!o.schedule_path.empty()) cmd += " --schedule " + o.schedule_path;
  if (o.min_ok) cmd += fmt::format(" --min-ok {}", *o.min_ok);
  return cmd;
}

std::string seed_path(const std::string& pattern, uint64_t seed) {
  std::string out = pattern;
  const size_t at = out.find("{seed}");
  if (at != std::string::npos) out.replace(at, 6, std::to_string(seed));
  return out;
}

void list_protocols(const ProtocolRegistry& registry, std::ostream& out) {
  if (registry.entries().empty()) {
    out << "no protocols are registered in this build: statekv's replication protocols "
           "are added to the registry in src/cli/sim_command.cc as they land (the reference "
           "registers are test-only; see docs/simulation.md)\n";
    return;
  }
  out << "protocols:\n";
  for (const ProtocolEntry& e : registry.entries()) {
    out << fmt::format("  {:<20} {}\n", e.name, e.description);
  }
}

}  // namespace

int run_sim_cli(const std::vector<std::string>& args, const ProtocolRegistry& registry,
                std::ostream& out, std::ostream& err) {
  Result<CliOptions> parsed = parse(args);
  if (!parsed.ok()) {
    err << "statekv sim: " << parsed.status().message() << "\n" << kUsage;
    return 2;
  }
  CliOptions& o = *parsed;
  if (o.help) {
    out << kUsage;
    list_protocols(registry, out);
    return 0;
  }
  if (o.list) {
    list_protocols(registry, out);
    return 0;
  }
  const ProtocolEntry* protocol = registry.find(o.protocol);
  if (protocol == nullptr) {
    err << "statekv sim: "
        << (o.protocol.empty() ? std::string("--protocol is required")
                               : "unknown protocol '" + o.protocol + "'")
        << "\n";
    list_protocols(registry, err);
    return 2;
  }
  if (!o.schedule_path.empty()) {
    std::ifstream in(o.schedule_path);
    if (!in) {
      err << "statekv sim: cannot read " << o.schedule_path << "\n";
      return 2;
    }
    std::stringstream text;
    text << in.rdbuf();
    Result<FaultSchedule> schedule = parse_schedule(text.str(), o.sim.nodes);
    if (!schedule.ok()) {
      err << "statekv sim: " << o.schedule_path << ": " << schedule.status().message() << "\n";
      return 2;
    }
    o.sim.schedule = std::move(schedule).value();
  }

  const double min_ok = o.min_ok ? *o.min_ok : default_min_ok(o.sim);
  uint64_t passed = 0, failed = 0, total_events = 0, total_ok = 0, total_fail = 0, total_info = 0;
  double total_cpu = 0;
  std::optional<uint64_t> first_failure;
  for (uint64_t seed = o.first_seed;; ++seed) {
    o.sim.seed = seed;
    Result<SeedReport> report = simulate_and_judge(*protocol, o.sim);
    if (!report.ok()) {
      ++failed;
      if (!first_failure) first_failure = seed;
      out << fmt::format("seed {}: ERROR {}\n  replay: {}\n", seed, report.status().to_string(),
                         replay_command(o, seed));
    } else {
      const SimResult& r = report->run;
      total_events += r.events;
      total_cpu += r.cpu_seconds;
      total_ok += r.ok;
      total_fail += r.fail;
      total_info += r.info;
      const bool linearizable = report->verdict.valid;
      const bool enough_ok = r.ok_fraction() >= min_ok;
      const bool ok = linearizable && enough_ok;
      ok ? ++passed : ++failed;
      if (!ok && !first_failure) first_failure = seed;
      out << fmt::format(
          "seed {}: {} hash {:016x} ops {} (ok {}, fail {}, info {}; {:.1f}% ok) events {} in "
          "{:.3f}s cpu ({:.0f} events/s) simulated {:.3f}s\n",
          seed, ok ? "PASS" : "FAIL", r.history_hash, r.ok + r.fail + r.info, r.ok, r.fail, r.info,
          100 * r.ok_fraction(), r.events, r.cpu_seconds,
          r.cpu_seconds > 0 ? r.events / r.cpu_seconds : 0.0,
          static_cast<double>(r.simulated_time) / 1e9);
      if (o.verbose || !ok) {
        out << r.parameters;
        out << fmt::format(
            "  crashes {}, torn records {}, messages sent {}, dropped {}; client attempts {}, "
            "refused as not served {}\n  schedule:\n",
            r.crashes, r.torn_records, r.messages_sent, r.messages_dropped, r.attempts, r.refusals);
        std::istringstream lines(r.schedule.to_text());
        for (std::string line; std::getline(lines, line);) out << "    " << line << "\n";
      }
      if (!linearizable) out << "  not linearizable: " << report->verdict.explanation << "\n";
      if (!enough_ok) {
        out << fmt::format(
            "  too few operations succeeded: {:.1f}% ok, below the floor of {:.1f}% (--min-ok): "
            "a history of operations that did nothing proves little\n",
            100 * r.ok_fraction(), 100 * min_ok);
      }
      if (!ok) {
        out << "  replay: " << replay_command(o, seed) << "\n"
            << "  (save the schedule above to a file and pass --schedule FILE to edit it down)\n";
      }
      if (!o.history_path.empty()) {
        const std::string path = seed_path(o.history_path, seed);
        if (Status s = check::write_history_file(path, r.history); !s.ok()) {
          err << "statekv sim: writing " << path << ": " << s.to_string() << "\n";
          return 2;
        }
      }
    }
    if (seed == o.last_seed) break;
  }
  const double total_ops = std::max<double>(1, total_ok + total_fail + total_info);
  out << fmt::format(
      "{} seed(s): {} passed, {} failed; operations {:.1f}% ok, {:.1f}% fail, {:.1f}% info "
      "(floor {:.1f}% ok per seed); {} events in {:.3f}s cpu of simulation ({:.0f} events/s)\n",
      passed + failed, passed, failed, 100 * total_ok / total_ops, 100 * total_fail / total_ops,
      100 * total_info / total_ops, 100 * min_ok, total_events, total_cpu,
      total_cpu > 0 ? total_events / total_cpu : 0.0);
  if (first_failure) out << "first failing seed: " << *first_failure << "\n";
  return failed == 0 ? 0 : 1;
}

}  // namespace statekv::sim
