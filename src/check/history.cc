// JSON Lines reading and writing for histories (format in history.h).
#include "check/history.h"

#include <fmt/format.h>

#include <fstream>
#include <istream>
#include <nlohmann/json.hpp>
#include <ostream>

namespace statekv::check {
namespace {

using Json = nlohmann::json;

Result<std::optional<std::string>> parse_nullable_string(const Json& j, std::string_view what) {
  if (j.is_null()) return std::optional<std::string>();
  if (j.is_string()) return std::optional<std::string>(j.get<std::string>());
  return Status::InvalidArgument(fmt::format("{} must be a string or null", what));
}

Result<int64_t> parse_integer(const Json& object, const char* field, bool required,
                              int64_t fallback) {
  auto it = object.find(field);
  if (it == object.end()) {
    if (required) return Status::InvalidArgument(fmt::format("missing field \"{}\"", field));
    return fallback;
  }
  if (!it->is_number_integer()) {
    return Status::InvalidArgument(fmt::format("\"{}\" must be an integer", field));
  }
  return it->get<int64_t>();
}

Result<std::string> parse_optional_string(const Json& object, const char* field) {
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return Status::InvalidArgument(fmt::format("\"{}\" must be a string", field));
  }
  return it->get<std::string>();
}

std::optional<EventType> event_type_from(std::string_view s) {
  if (s == "invoke") return EventType::kInvoke;
  if (s == "ok") return EventType::kOk;
  if (s == "fail") return EventType::kFail;
  if (s == "info") return EventType::kInfo;
  return std::nullopt;
}

std::optional<OpFunction> function_from(std::string_view s) {
  if (s == "read") return OpFunction::kRead;
  if (s == "write") return OpFunction::kWrite;
  if (s == "cas") return OpFunction::kCas;
  if (s == "delete") return OpFunction::kDelete;
  return std::nullopt;
}

Json nullable(const std::optional<std::string>& v) {
  return v ? Json(*v) : Json(nullptr);
}

}  // namespace

std::string_view to_string(EventType type) {
  switch (type) {
    case EventType::kInvoke:
      return "invoke";
    case EventType::kOk:
      return "ok";
    case EventType::kFail:
      return "fail";
    case EventType::kInfo:
      return "info";
  }
  return "?";
}

std::string_view to_string(OpFunction f) {
  switch (f) {
    case OpFunction::kRead:
      return "read";
    case OpFunction::kWrite:
      return "write";
    case OpFunction::kCas:
      return "cas";
    case OpFunction::kDelete:
      return "delete";
  }
  return "?";
}

std::string to_json_line(const Event& event) {
  // ordered_json keeps the field order of DESIGN.md, which makes files easy to read.
  nlohmann::ordered_json j;
  j["process"] = event.process;
  j["type"] = to_string(event.type);
  j["f"] = to_string(event.f);
  j["key"] = event.key;
  if (event.f == OpFunction::kCas) {
    j["value"] = Json::array({nullable(event.cas_expected), nullable(event.value)});
  } else {
    j["value"] = nullable(event.value);
  }
  j["time"] = event.time;
  if (event.node >= 0) j["node"] = event.node;
  if (!event.session.empty()) j["session"] = event.session;
  if (!event.level.empty()) j["level"] = event.level;
  return j.dump();
}

Result<Event> parse_json_line(std::string_view line) {
  Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("not valid JSON");
  if (!j.is_object()) return Status::InvalidArgument("not a JSON object");

  Event event;
  auto process = parse_integer(j, "process", true, 0);
  if (!process.ok()) return process.status();
  event.process = *process;
  auto time = parse_integer(j, "time", true, 0);
  if (!time.ok()) return time.status();
  event.time = *time;
  auto node = parse_integer(j, "node", false, -1);
  if (!node.ok()) return node.status();
  event.node = *node;

  auto type_it = j.find("type");
  if (type_it == j.end() || !type_it->is_string()) {
    return Status::InvalidArgument("missing or non-string field \"type\"");
  }
  auto type = event_type_from(type_it->get_ref<const std::string&>());
  if (!type) {
    return Status::InvalidArgument(
        fmt::format("unknown type \"{}\" (invoke|ok|fail|info)", type_it->get<std::string>()));
  }
  event.type = *type;

  auto f_it = j.find("f");
  if (f_it == j.end() || !f_it->is_string()) {
    return Status::InvalidArgument("missing or non-string field \"f\"");
  }
  auto f = function_from(f_it->get_ref<const std::string&>());
  if (!f) {
    return Status::InvalidArgument(
        fmt::format("unknown f \"{}\" (read|write|cas|delete)", f_it->get<std::string>()));
  }
  event.f = *f;

  auto key_it = j.find("key");
  if (key_it == j.end() || !key_it->is_string()) {
    return Status::InvalidArgument("missing or non-string field \"key\"");
  }
  event.key = key_it->get<std::string>();

  auto value_it = j.find("value");
  static const Json kNull = nullptr;
  const Json& value = value_it == j.end() ? kNull : *value_it;
  if (event.f == OpFunction::kCas) {
    if (!value.is_array() || value.size() != 2) {
      return Status::InvalidArgument("cas value must be [expected, new]");
    }
    auto expected = parse_nullable_string(value[0], "cas expected value");
    if (!expected.ok()) return expected.status();
    auto next = parse_nullable_string(value[1], "cas new value");
    if (!next.ok()) return next.status();
    event.cas_expected = std::move(*expected);
    event.value = std::move(*next);
  } else {
    auto v = parse_nullable_string(value, "value");
    if (!v.ok()) return v.status();
    event.value = std::move(*v);
  }

  auto session = parse_optional_string(j, "session");
  if (!session.ok()) return session.status();
  event.session = std::move(*session);
  auto level = parse_optional_string(j, "level");
  if (!level.ok()) return level.status();
  event.level = std::move(*level);
  return event;
}

Result<History> read_history(std::istream& in) {
  History history;
  std::string line;
  int64_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto event = parse_json_line(line);
    if (!event.ok()) {
      return Status::InvalidArgument(
          fmt::format("line {}: {}", line_number, event.status().message()));
    }
    history.push_back(std::move(*event));
  }
  if (in.bad()) {
    return Status::IOError(fmt::format("line {}: read error", line_number + 1));
  }
  return history;
}

Result<History> read_history_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::IOError(fmt::format("cannot open {}", path));
  return read_history(in);
}

void write_history(std::ostream& out, const History& history) {
  for (const Event& event : history) out << to_json_line(event) << '\n';
}

Status write_history_file(const std::string& path, const History& history) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return Status::IOError(fmt::format("cannot create {}", path));
  write_history(out, history);
  out.flush();
  if (!out) return Status::IOError(fmt::format("write to {} failed", path));
  return Status::OK();
}

}  // namespace statekv::check
