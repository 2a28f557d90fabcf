// How a subcommand of `statekv` plugs in: a file src/cli/NAME_command.cc defines
// a static SubcommandRegistration whose setup adds a CLI11 subcommand to the app.
// The callback it installs writes the process exit code to *exit_code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <vector>

namespace statekv::cli {

using SubcommandSetup = std::function<void(CLI::App& app, int* exit_code)>;

std::vector<SubcommandSetup>& subcommand_registry();

struct SubcommandRegistration {
  explicit SubcommandRegistration(SubcommandSetup setup) {
    subcommand_registry().push_back(std::move(setup));
  }
};

}  // namespace statekv::cli
