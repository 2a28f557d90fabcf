// Process-wide logging for `statekv server`, on spdlog.
//
// init_logging() installs the default logger once at start-up (before any
// thread that logs exists); after that, spdlog's own thread-safe functions
// (spdlog::info, spdlog::set_level) are used from any thread.
#pragma once

#include <spdlog/common.h>

#include <string>
#include <string_view>

#include "core/status.h"

namespace statekv::server {

// Accepts statekv's names (debug, info, warn, error) and Redis's (verbose,
// notice, warning), mapped to the nearest spdlog level.
Result<spdlog::level::level_enum> parse_loglevel(std::string_view name);

// Makes the default logger write to logfile (appending), or to stderr when
// logfile is empty, at the given level. Each line is flushed as it is logged.
// IOError when the file cannot be opened.
Status init_logging(std::string_view level, const std::string& logfile);

}  // namespace statekv::server
