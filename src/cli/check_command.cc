// `statekv check MODEL FILE`: judge a JSON Lines history against a consistency model.
// Exit 0 when the history satisfies the model, 1 when it does not (with an
// explanation), 2 when the input cannot be read (with the line or event number).
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "check/checkers.h"
#include "check/history.h"
#include "cli/subcommand.h"

namespace statekv::cli {
namespace {

struct CheckFlags {
  std::string model;
  std::string file;
};

std::string models_help() {
  std::string out = "Models:\n";
  for (const auto& m : check::models()) out += fmt::format("  {:<20} {}\n", m.name, m.description);
  out +=
      "\nHistory format: JSON Lines, one event per line, e.g.\n"
      "  {\"process\":3,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k7\",\"value\":\"v42\","
      "\"time\":1200}\n"
      "type: invoke|ok|fail|info; f: read|write|cas|delete (cas value: [expected, new]).\n"
      "Written values are assumed unique per key. See docs/checkers.md.\n"
      "\nExit status: 0 the model holds, 1 violated (explained), 2 unreadable input\n"
      "(the message gives the line, or the event number for events that do not pair up).\n";
  return out;
}

int run_check(const CheckFlags& flags) {
  const auto start = std::chrono::steady_clock::now();
  auto history = check::read_history_file(flags.file);
  if (!history.ok()) {
    std::fprintf(stderr, "statekv check: %s: %s\n", flags.file.c_str(),
                 history.status().message().c_str());
    return 2;
  }
  const auto checking = std::chrono::steady_clock::now();
  auto result = check::run_model(flags.model, *history);
  // Judging alone, without reading the file (bench/compare_porcupine.sh uses it).
  const double check_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - checking).count();
  if (!result.ok()) {
    std::fprintf(stderr, "statekv check: %s: %s\n", flags.file.c_str(),
                 result.status().message().c_str());
    return 2;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (result->valid) {
    fmt::print("valid ({})\n{} time={:.6f}s check={:.6f}s\n", flags.model,
               result->stats.to_string(), seconds, check_seconds);
    return 0;
  }
  fmt::print("invalid ({})\n{}\n{} time={:.6f}s check={:.6f}s\n", flags.model, result->explanation,
             result->stats.to_string(), seconds, check_seconds);
  return 1;
}

const SubcommandRegistration kRegistration([](CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<CheckFlags>();
  CLI::App* cmd = app.add_subcommand(
      "check", "Judge a recorded history (JSON Lines) against a consistency model");
  cmd->add_option("MODEL", flags->model, "Consistency model (listed below)")->required();
  cmd->add_option("FILE", flags->file, "History file, one JSON event per line")->required();
  cmd->footer(models_help());
  cmd->callback([flags, exit_code] {
    bool known = false;
    for (const auto& m : check::models()) known = known || m.name == flags->model;
    if (!known) {
      std::fprintf(stderr, "statekv check: unknown model \"%s\"\n%s\n", flags->model.c_str(),
                   models_help().c_str());
      *exit_code = 2;
      return;
    }
    *exit_code = run_check(*flags);
  });
});

}  // namespace
}  // namespace statekv::cli
