#include "server/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>

namespace statekv::server {

Result<spdlog::level::level_enum> parse_loglevel(std::string_view name) {
  if (name == "debug" || name == "verbose") return spdlog::level::debug;
  if (name == "info" || name == "notice") return spdlog::level::info;
  if (name == "warn" || name == "warning") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  return Status::InvalidArgument(
      fmt::format("invalid log level '{}' (expected debug, info, warn or error)", name));
}

Status init_logging(std::string_view level, const std::string& logfile) {
  auto parsed = parse_loglevel(level);
  if (!parsed.ok()) return parsed.status();
  std::shared_ptr<spdlog::logger> logger;
  try {
    if (logfile.empty()) {
      logger = spdlog::stderr_color_mt("statekv");
    } else {
      logger = spdlog::basic_logger_mt("statekv", logfile, /*truncate=*/false);
    }
  } catch (const spdlog::spdlog_ex& e) {
    return Status::IOError(fmt::format("cannot open log file '{}': {}", logfile, e.what()));
  }
  // Redis-like lines: pid, time with milliseconds, level.
  logger->set_pattern("%P:%t %d %b %Y %H:%M:%S.%e %^%l%$ %v");
  logger->set_level(*parsed);
  // Every line goes to the file as it is logged (one write per line; lines
  // are rare: start-up, map changes, failures), so the log is readable while
  // the node runs and a crash (even SIGKILL) loses no line already logged.
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  spdlog::set_level(*parsed);
  return Status::OK();
}

}  // namespace statekv::server
