// Histories: what clients saw, one event per line of JSON (Jepsen style).
//
//   {"process":3,"type":"invoke","f":"write","key":"k7","value":"v42","time":1200}
//   {"process":3,"type":"ok","f":"write","key":"k7","value":"v42","time":1950}
//
// type: invoke | ok | fail (certainly did not happen) | info (may or may not have
// happened). f: read | write | cas (value is [expected, new]) | delete. time is in
// nanoseconds from the recording runtime's clock. A read's value is null when the
// key was absent; an invoke of a read carries null. Optional fields: node, session,
// level. Every runtime writes this format; `statekv check MODEL FILE` judges it.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace statekv::check {

enum class EventType : unsigned char { kInvoke, kOk, kFail, kInfo };
enum class OpFunction : unsigned char { kRead, kWrite, kCas, kDelete };

struct Event {
  int64_t process = 0;
  EventType type = EventType::kInvoke;
  OpFunction f = OpFunction::kRead;
  std::string key;
  // read: the value read (nullopt = absent); write: the value written;
  // cas: the new value (expected is in cas_expected); delete: nullopt.
  std::optional<std::string> value;
  std::optional<std::string> cas_expected;  // cas only; nullopt = "expected absent"
  int64_t time = 0;
  // Optional annotations; empty / -1 when absent.
  int64_t node = -1;
  std::string session;
  std::string level;
};

std::string_view to_string(EventType type);
std::string_view to_string(OpFunction f);

// One JSON object, no trailing newline.
std::string to_json_line(const Event& event);

// Parses one line. InvalidArgument explains what is wrong with it.
Result<Event> parse_json_line(std::string_view line);

using History = std::vector<Event>;

// Reads a whole JSON Lines history; blank lines are skipped. On a bad line the
// status message starts with "line N: ".
Result<History> read_history(std::istream& in);
Result<History> read_history_file(const std::string& path);
// Writes one line per event.
void write_history(std::ostream& out, const History& history);
Status write_history_file(const std::string& path, const History& history);

}  // namespace statekv::check
