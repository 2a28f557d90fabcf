// ServerConfig parsing: the TOML file, and CONFIG GET / CONFIG SET.
//
// One table (kSettings) describes every setting once: its CONFIG name, whether it
// may change at run time, how to print it and how to parse it. The TOML loader,
// names(), get() and set() all read that table, so a setting cannot be settable
// in one place and missing in another.
//
// Error texts follow Redis 7 so that clients see the same wording:
//   ERR Unknown option or number of arguments for CONFIG SET - 'foo'
//   ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config
//   ERR CONFIG SET failed (possibly related to argument 'hz') - argument must be between 1 and 500
//   inclusive
// The Status message of set() is that whole reply text (with the "ERR " prefix),
// ready for resp::Writer::error().
#include "server/config.h"

#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "server/logging.h"

namespace statekv::server {
namespace {

// Parses a plain non-negative decimal integer (no sign, no suffix).
std::optional<uint64_t> parse_u64(std::string_view text) {
  if (text.empty()) return std::nullopt;
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return v;
}

// Redis's memory values: "1024", "100k" (1000), "100kb" (1024), "5mb", "1gb", any case.
std::optional<uint64_t> parse_memory(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  struct Unit {
    std::string_view suffix;
    uint64_t mul;
  };
  static constexpr Unit kUnits[] = {{"kb", 1024ull},       {"mb", 1024ull * 1024},
                                    {"gb", 1024ull << 20}, {"k", 1000ull},
                                    {"m", 1000ull * 1000}, {"g", 1000ull * 1000 * 1000}};
  std::string_view view = lower;
  uint64_t mul = 1;
  for (const auto& u : kUnits) {
    if (view.size() > u.suffix.size() && view.ends_with(u.suffix)) {
      view.remove_suffix(u.suffix.size());
      mul = u.mul;
      break;
    }
  }
  auto v = parse_u64(view);
  if (!v || *v > std::numeric_limits<uint64_t>::max() / mul) return std::nullopt;
  return *v * mul;
}

// Why a value was refused, in Redis's words (the text after " - ").
using ParseError = std::string;

struct Setting {
  std::string_view name;
  bool mutable_at_runtime;
  std::function<std::string(const ServerConfig&)> get;
  // Parses text into config; returns an empty string on success, else the reason.
  std::function<ParseError(std::string_view text, ServerConfig&)> set;
  // TOML values that are not strings (integers) are turned into text first;
  // kind says which TOML types are accepted for this key.
  enum class TomlKind { kString, kInteger } toml_kind;
};

ParseError range_error(uint64_t lo, uint64_t hi) {
  return fmt::format("argument must be between {} and {} inclusive", lo, hi);
}

// An integer setting stored in a field of type T, within [lo, hi].
template <typename T>
Setting integer_setting(std::string_view name, bool mut, T ServerConfig::*field, uint64_t lo,
                        uint64_t hi) {
  return Setting{name, mut, [field](const ServerConfig& c) { return std::to_string(c.*field); },
                 [field, lo, hi](std::string_view text, ServerConfig& c) -> ParseError {
                   auto v = parse_u64(text);
                   if (!v) return "argument couldn't be parsed into an integer";
                   if (*v < lo || *v > hi) return range_error(lo, hi);
                   c.*field = static_cast<T>(*v);
                   return {};
                 },
                 Setting::TomlKind::kInteger};
}

// A memory-sized setting ("512mb") stored in bytes, at least lo.
Setting memory_setting(std::string_view name, bool mut, uint64_t ServerConfig::*field,
                       uint64_t lo) {
  return Setting{name, mut, [field](const ServerConfig& c) { return std::to_string(c.*field); },
                 [field, lo](std::string_view text, ServerConfig& c) -> ParseError {
                   auto v = parse_memory(text);
                   if (!v) return "argument must be a memory value";
                   if (*v < lo) {
                     return range_error(lo, std::numeric_limits<int64_t>::max());
                   }
                   c.*field = *v;
                   return {};
                 },
                 Setting::TomlKind::kInteger};
}

Setting string_setting(std::string_view name, bool mut, std::string ServerConfig::*field,
                       std::function<ParseError(std::string_view)> validate = nullptr) {
  return Setting{name, mut, [field](const ServerConfig& c) { return c.*field; },
                 [field, validate](std::string_view text, ServerConfig& c) -> ParseError {
                   if (validate) {
                     if (auto err = validate(text); !err.empty()) return err;
                   }
                   c.*field = std::string(text);
                   return {};
                 },
                 Setting::TomlKind::kString};
}

Setting fsync_setting(std::string_view name) {
  // The engine is opened with its policy; changing it later would silently not
  // apply, so it is immutable at run time.
  return Setting{name, false,
                 [](const ServerConfig& c) { return std::string(fsync_name(c.fsync)); },
                 [](std::string_view text, ServerConfig& c) -> ParseError {
                   auto p = parse_fsync(text);
                   if (!p.ok())
                     return "argument(s) must be one of the following: always, batch, never";
                   c.fsync = *p;
                   return {};
                 },
                 Setting::TomlKind::kString};
}

const std::vector<Setting>& settings() {
  static const std::vector<Setting> kSettings = [] {
    std::vector<Setting> s;
    s.push_back(string_setting("bind", false, &ServerConfig::bind));
    s.push_back(integer_setting("port", false, &ServerConfig::port, 0, 65535));
    s.push_back(string_setting("dir", false, &ServerConfig::data_dir, [](std::string_view t) {
      return t.empty() ? ParseError("argument must not be empty") : ParseError();
    }));
    s.push_back(string_setting("engine", false, &ServerConfig::engine, [](std::string_view t) {
      return (t == "rocksdb" || t == "memory")
                 ? ParseError()
                 : ParseError("argument(s) must be one of the following: rocksdb, memory");
    }));
    s.push_back(fsync_setting("appendfsync"));
    s.push_back(fsync_setting("fsync"));
    s.push_back(string_setting("requirepass", true, &ServerConfig::requirepass));
    // 0 means one per hardware thread; ServerStats has 64 slots, more threads
    // would share slots (correct, but contended), so 64 is the ceiling.
    s.push_back(integer_setting("io-threads", false, &ServerConfig::io_threads, 0, 64));
    s.push_back(integer_setting("maxclients", true, &ServerConfig::maxclients, 1,
                                std::numeric_limits<int64_t>::max()));
    s.push_back(integer_setting("timeout", true, &ServerConfig::timeout_seconds, 0,
                                std::numeric_limits<int32_t>::max()));
    s.push_back(
        memory_setting("proto-max-bulk-len", true, &ServerConfig::proto_max_bulk_len, 1024 * 1024));
    s.push_back(integer_setting("proto-max-multibulk-len", true, &ServerConfig::max_multibulk_len,
                                1, std::numeric_limits<int32_t>::max()));
    s.push_back(memory_setting("proto-inline-max-size", true, &ServerConfig::max_inline_len, 1));
    s.push_back(memory_setting("client-query-buffer-limit", true,
                               &ServerConfig::client_query_buffer_limit, 1024 * 1024));
    s.push_back(memory_setting("client-output-buffer-limit", true,
                               &ServerConfig::client_output_buffer_limit, 16 * 1024));
    s.push_back(memory_setting("pubsub-output-buffer-limit", true,
                               &ServerConfig::pubsub_output_buffer_limit, 16 * 1024));
    s.push_back(memory_setting("pubsub-output-buffer-soft-limit", true,
                               &ServerConfig::pubsub_output_buffer_soft_limit, 16 * 1024));
    s.push_back(integer_setting("pubsub-output-buffer-soft-seconds", true,
                                &ServerConfig::pubsub_output_buffer_soft_seconds, 0,
                                std::numeric_limits<int32_t>::max()));
    // Redis accepts 0..INT_MAX and clamps to [1, 500]; refusing is clearer.
    s.push_back(integer_setting("hz", true, &ServerConfig::hz, 1, 500));
    s.push_back(integer_setting("active-expire-keys-per-cycle", true,
                                &ServerConfig::active_expire_keys_per_cycle, 1, 1000000));
    s.push_back(integer_setting("tracking-table-max-keys", true,
                                &ServerConfig::tracking_table_max_keys, 0,
                                std::numeric_limits<int64_t>::max()));
    s.push_back(string_setting("loglevel", true, &ServerConfig::loglevel, [](std::string_view t) {
      return parse_loglevel(t).ok()
                 ? ParseError()
                 : ParseError(
                       "argument(s) must be one of the following: debug, verbose, info, notice, "
                       "warn, warning, error");
    }));
    s.push_back(string_setting("logfile", false, &ServerConfig::logfile));
    // Read-only views that Redis tools ask for (redis-benchmark reads "save" and
    // "appendonly" at start). statekv has no RDB snapshots; its durable log is the
    // RocksDB engine's WAL, so appendonly mirrors the engine.
    s.push_back(Setting{"save", false, [](const ServerConfig&) { return std::string(); },
                        [](std::string_view, ServerConfig&) -> ParseError {
                          return "statekv has no RDB snapshots; durability is set by fsync";
                        },
                        Setting::TomlKind::kString});
    s.push_back(Setting{
        "appendonly", false,
        [](const ServerConfig& c) { return std::string(c.engine == "rocksdb" ? "yes" : "no"); },
        [](std::string_view, ServerConfig&) -> ParseError {
          return "follows the engine: rocksdb keeps a write-ahead log, memory none";
        },
        Setting::TomlKind::kString});
    return s;
  }();
  return kSettings;
}

const Setting* find_setting(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const auto& s : settings()) {
    if (s.name == lower) return &s;
  }
  return nullptr;
}

}  // namespace

std::string_view fsync_name(storage::FsyncPolicy policy) {
  switch (policy) {
    case storage::FsyncPolicy::kAlways:
      return "always";
    case storage::FsyncPolicy::kBatch:
      return "batch";
    case storage::FsyncPolicy::kNever:
      return "never";
  }
  return "batch";
}

Result<storage::FsyncPolicy> parse_fsync(std::string_view text) {
  if (text == "always") return storage::FsyncPolicy::kAlways;
  if (text == "batch") return storage::FsyncPolicy::kBatch;
  if (text == "never") return storage::FsyncPolicy::kNever;
  return Status::InvalidArgument(
      fmt::format("invalid fsync policy '{}' (expected always, batch or never)", text));
}

Status load_toml_config(const std::string& path, ServerConfig& config) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return Status::InvalidArgument(
        fmt::format("{}:{}:{}: {}", path, where.line, where.column, e.description()));
  }
  // Apply to a copy so that a bad file leaves config untouched.
  ServerConfig next = config;
  for (const auto& [key, node] : table) {
    const std::string_view name = key.str();
    const Setting* setting = find_setting(name);
    if (setting == nullptr || setting->name != name) {
      return Status::InvalidArgument(fmt::format("{}: unknown key '{}'", path, name));
    }
    std::string text;
    if (setting->toml_kind == Setting::TomlKind::kString) {
      if (!node.is_string()) {
        return Status::InvalidArgument(fmt::format("{}: key '{}' must be a string", path, name));
      }
      text = *node.value<std::string>();
    } else if (node.is_integer()) {
      int64_t v = *node.value<int64_t>();
      if (v < 0) {
        return Status::InvalidArgument(
            fmt::format("{}: key '{}' must not be negative", path, name));
      }
      text = std::to_string(v);
    } else if (node.is_string() && setting->toml_kind == Setting::TomlKind::kInteger &&
               setting->name != "port") {
      // Memory-sized and integer settings also take Redis's strings ("512mb").
      text = *node.value<std::string>();
    } else {
      return Status::InvalidArgument(fmt::format("{}: key '{}' must be an integer", path, name));
    }
    if (auto err = setting->set(text, next); !err.empty()) {
      return Status::InvalidArgument(fmt::format("{}: key '{}': {}", path, name, err));
    }
  }
  config = std::move(next);
  return Status::OK();
}

std::vector<std::string> ConfigStore::names() const {
  std::vector<std::string> out;
  for (const auto& s : settings()) out.emplace_back(s.name);
  return out;
}

Result<std::string> ConfigStore::get(std::string_view name) const {
  const Setting* setting = find_setting(name);
  if (setting == nullptr) return Status::NotFound(fmt::format("no setting '{}'", name));
  std::lock_guard lock(mu_);
  return setting->get(config_);
}

Status ConfigStore::set(std::string_view name, std::string_view value) {
  const Setting* setting = find_setting(name);
  if (setting == nullptr) {
    return Status::InvalidArgument(
        fmt::format("ERR Unknown option or number of arguments for CONFIG SET - '{}'", name));
  }
  auto failed = [&](std::string_view why) {
    return Status::InvalidArgument(fmt::format(
        "ERR CONFIG SET failed (possibly related to argument '{}') - {}", setting->name, why));
  };
  if (!setting->mutable_at_runtime) return failed("can't set immutable config");
  {
    std::lock_guard lock(mu_);
    if (auto err = setting->set(value, config_); !err.empty()) return failed(err);
    generation_.fetch_add(1, std::memory_order_release);
  }
  // The log level is process-wide state owned by spdlog; apply it now so that
  // CONFIG SET loglevel takes effect without a restart.
  if (setting->name == "loglevel") spdlog::set_level(*parse_loglevel(value));
  return Status::OK();
}

}  // namespace statekv::server
