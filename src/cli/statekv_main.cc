// statekv — one binary, one subcommand per job (`statekv --help` lists them).
#include <CLI/CLI.hpp>

#include "cli/subcommand.h"

namespace statekv::cli {
std::vector<SubcommandSetup>& subcommand_registry() {
  static std::vector<SubcommandSetup> registry;
  return registry;
}
}  // namespace statekv::cli

int main(int argc, char** argv) {
  CLI::App app{"statekv: a distributed state store that speaks the Redis protocol"};
  app.require_subcommand(1);
  int exit_code = 0;
  for (auto& setup : statekv::cli::subcommand_registry()) setup(app, &exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}
