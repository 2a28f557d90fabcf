// `statekv check-gen`: write a generated register history (JSON Lines) shaped like
// Jepsen's etcd register tests, for measuring checkers (bench/compare_porcupine.sh)
// and reproducing a checker's behaviour from a seed. See check/generate.h.
#include <fmt/format.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "check/generate.h"
#include "check/history.h"
#include "cli/subcommand.h"

namespace statekv::cli {
namespace {

struct GenFlags {
  uint64_t seed = 1;
  check::EtcdGenOptions options;
  std::string out;
};

const SubcommandRegistration kRegistration([](CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<GenFlags>();
  CLI::App* cmd = app.add_subcommand(
      "check-gen",
      "Write a generated etcd-shaped register history (JSON Lines) for `statekv check`");
  auto& o = flags->options;
  cmd->add_option("--seed", flags->seed, "Random seed (the same seed gives the same history)");
  cmd->add_option("--ops", o.ops, "Operations")->check(CLI::Range(1, 10'000'000));
  cmd->add_option("--clients", o.clients, "Concurrent clients")->check(CLI::Range(1, 10'000));
  cmd->add_option("--keys", o.keys, "Keys")->check(CLI::Range(1, 1'000'000));
  cmd->add_option("--values", o.values, "Distinct values per key")->check(CLI::Range(2, 1'000'000));
  cmd->add_option("--info", o.p_info, "Share of ops that time out")->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--violate", o.plant_violation,
                "Plant a stale read, so the history is not linearizable (exit 3 if none fits)");
  cmd->add_option("-o,--out", flags->out, "Output file (default: standard output)");
  cmd->callback([flags, exit_code] {
    Random rng(flags->seed);
    check::GeneratedHistory g = check::generate_etcd_register(flags->options, rng);
    if (flags->out.empty()) {
      check::write_history(std::cout, g.history);
    } else if (Status s = check::write_history_file(flags->out, g.history); !s.ok()) {
      std::fprintf(stderr, "statekv check-gen: %s\n", s.to_string().c_str());
      *exit_code = 2;
      return;
    }
    *exit_code = flags->options.plant_violation && !g.planted ? 3 : 0;
  });
});

}  // namespace
}  // namespace statekv::cli
