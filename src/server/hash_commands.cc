// Hash commands — Redis 7.0 semantics over Collection (collection.h): compact
// hashes are one record, large ones one engine entry per field.
//
// Every command locks its key's stripe from the read to the commit; reads take
// the lock too, so that a multi-field read never sees half of another
// command's change.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "server/collection_command.h"
#include "server/glob.h"
#include "server/number.h"

namespace statekv::server {
namespace {

void arity_error(CommandContext& c) {
  c.out.error("ERR wrong number of arguments for '" + std::string(c.fullname) + "' command");
}

// HSET / HMSET: key field value [field value ...].
void hset_generic(CommandContext& c, bool hmset) {
  if (c.argv.size() % 2 == 1) return arity_error(c);
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto h = open_collection(c, key, *locked, ValueType::kHash);
  if (!h) return;
  int64_t created = 0;
  for (size_t i = 2; i + 1 < c.argv.size(); i += 2) {
    auto r = h->put(c.argv[i], c.argv[i + 1]);
    if (!c.ok(r)) return;
    created += *r;
  }
  if (!commit_collection(c, *h)) return;
  if (hmset) return c.out.simple("OK");
  c.out.integer(created);
}
void cmd_hset(CommandContext& c) {
  hset_generic(c, false);
}
void cmd_hmset(CommandContext& c) {
  hset_generic(c, true);
}

void cmd_hsetnx(CommandContext& c) {
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto h = open_collection(c, key, *locked, ValueType::kHash);
  if (!h) return;
  auto old = h->get(c.argv[2]);
  if (!c.ok(old)) return;
  if (old->has_value()) return c.out.integer(0);
  if (!c.ok(h->put(c.argv[2], c.argv[3]))) return;
  if (!commit_collection(c, *h)) return;
  c.out.integer(1);
}

// Opens key for a read-only command; counts the lookup. nullopt when replied.
std::optional<Collection> open_for_read(CommandContext& c, std::string_view key,
                                        const LockedRead& locked) {
  c.count_lookup(locked.live);
  return open_collection(c, key, locked, ValueType::kHash);
}

void cmd_hget(CommandContext& c) {
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto h = open_for_read(c, c.argv[1], *locked);
  if (!h) return;
  auto v = h->get(c.argv[2]);
  if (!c.ok(v)) return;
  if (!v->has_value()) return c.out.null();
  c.out.bulk(**v);
}

void cmd_hmget(CommandContext& c) {
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto h = open_for_read(c, c.argv[1], *locked);
  if (!h) return;
  std::vector<std::optional<std::string>> values;
  for (size_t i = 2; i < c.argv.size(); ++i) {
    auto v = h->get(c.argv[i]);
    if (!c.ok(v)) return;
    values.push_back(std::move(*v));
  }
  c.out.array(values.size());
  for (const auto& v : values) {
    if (v) {
      c.out.bulk(*v);
    } else {
      c.out.null();
    }
  }
}

void cmd_hdel(CommandContext& c) {
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto h = open_collection(c, key, *locked, ValueType::kHash);
  if (!h) return;
  int64_t deleted = 0;
  for (size_t i = 2; i < c.argv.size() && h->size() > 0; ++i) {
    auto r = h->erase(c.argv[i]);
    if (!c.ok(r)) return;
    deleted += *r;
  }
  if (!commit_collection(c, *h)) return;
  c.out.integer(deleted);
}

void cmd_hlen(CommandContext& c) {
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto h = open_for_read(c, c.argv[1], *locked);
  if (!h) return;
  c.out.integer(static_cast<int64_t>(h->size()));
}

void cmd_hstrlen(CommandContext& c) {
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto h = open_for_read(c, c.argv[1], *locked);
  if (!h) return;
  auto v = h->get(c.argv[2]);
  if (!c.ok(v)) return;
  c.out.integer(v->has_value() ? static_cast<int64_t>((*v)->size()) : 0);
}

void cmd_hexists(CommandContext& c) {
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto h = open_for_read(c, c.argv[1], *locked);
  if (!h) return;
  auto v = h->get(c.argv[2]);
  if (!c.ok(v)) return;
  c.out.integer(v->has_value() ? 1 : 0);
}

enum class Part { kKeys, kValues, kBoth };

void hgetall_generic(CommandContext& c, Part part) {
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto h = open_for_read(c, c.argv[1], *locked);
  if (!h) return;
  std::vector<std::string> items;
  items.reserve(h->size() * (part == Part::kBoth ? 2 : 1));
  Status s = h->for_each([&](std::string_view f, std::string_view v) {
    if (part != Part::kValues) items.emplace_back(f);
    if (part != Part::kKeys) items.emplace_back(v);
    return true;
  });
  if (!c.ok(s)) return;
  if (part == Part::kBoth) {
    c.out.map(items.size() / 2);
  } else {
    c.out.array(items.size());
  }
  for (const auto& item : items) c.out.bulk(item);
}
void cmd_hgetall(CommandContext& c) {
  hgetall_generic(c, Part::kBoth);
}
void cmd_hkeys(CommandContext& c) {
  hgetall_generic(c, Part::kKeys);
}
void cmd_hvals(CommandContext& c) {
  hgetall_generic(c, Part::kValues);
}

void cmd_hincrby(CommandContext& c) {
  auto incr = parse_int64(c.argv[3]);
  if (!incr) return c.out.error(kNotInteger);
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto h = open_collection(c, key, *locked, ValueType::kHash);
  if (!h) return;
  auto old = h->get(c.argv[2]);
  if (!c.ok(old)) return;
  int64_t value = 0;
  if (old->has_value()) {
    auto v = parse_int64(**old);
    if (!v) return c.out.error("ERR hash value is not an integer");
    value = *v;
  }
  if ((*incr < 0 && value < 0 && *incr < std::numeric_limits<int64_t>::min() - value) ||
      (*incr > 0 && value > 0 && *incr > std::numeric_limits<int64_t>::max() - value)) {
    return c.out.error(kOverflow);
  }
  value += *incr;
  if (!c.ok(h->put(c.argv[2], std::to_string(value)))) return;
  if (!commit_collection(c, *h)) return;
  c.out.integer(value);
}

void cmd_hincrbyfloat(CommandContext& c) {
  auto incr = parse_long_double(c.argv[3]);
  if (!incr) return c.out.error(kNotFloat);
  if (std::isnan(*incr) || std::isinf(*incr)) return c.out.error("ERR value is NaN or Infinity");
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto h = open_collection(c, key, *locked, ValueType::kHash);
  if (!h) return;
  auto old = h->get(c.argv[2]);
  if (!c.ok(old)) return;
  long double value = 0;
  if (old->has_value()) {
    auto v = parse_long_double(**old);
    if (!v) return c.out.error("ERR hash value is not a float");
    value = *v;
  }
  value += *incr;
  if (std::isnan(value) || std::isinf(value)) {
    return c.out.error("ERR increment would produce NaN or Infinity");
  }
  // The text is decided here, once: replicas store these bytes.
  std::string text = format_long_double(value);
  if (!c.ok(h->put(c.argv[2], text))) return;
  if (!commit_collection(c, *h)) return;
  c.out.bulk(text);
}

void cmd_hrandfield(CommandContext& c) {
  Random& rng = command_random();
  if (c.argv.size() == 2) {
    auto locked = lock_and_read(c, c.argv[1]);
    if (!locked) return;
    auto h = open_for_read(c, c.argv[1], *locked);
    if (!h) return;
    if (h->size() == 0) return c.out.null();
    auto e = h->random_one(rng);
    if (!c.ok(e)) return;
    return c.out.bulk(e->first);
  }
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  auto l = parse_int64(c.argv[2]);
  if (!l) return c.out.error(kNotInteger);
  if (*l < -kMax) {
    return c.out.error(
        "ERR value is out of range, value must between -9223372036854775807 and "
        "9223372036854775807");
  }
  bool withvalues = false;
  if (c.argv.size() > 4 || (c.argv.size() == 4 && !iequals(c.argv[3], "withvalues"))) {
    return c.out.error(kSyntaxError);
  }
  if (c.argv.size() == 4) {
    withvalues = true;
    if (*l < -kMax / 2 || *l > kMax / 2) return c.out.error("ERR value is out of range");
  }
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto h = open_for_read(c, c.argv[1], *locked);
  if (!h) return;
  const bool unique = *l >= 0;
  const uint64_t count = unique ? static_cast<uint64_t>(*l) : static_cast<uint64_t>(-*l);
  if (h->size() == 0 || count == 0) return c.out.array(0);
  std::vector<Collection::Element> picked;
  if (!unique || count == 1) {
    if (count > kMaxRandomReply) return c.out.error(kRandomReplyTooLarge);
    for (uint64_t i = 0; i < count; ++i) {
      auto e = h->random_one(rng);
      if (!c.ok(e)) return;
      picked.push_back(std::move(*e));
    }
  } else if (count >= h->size()) {
    Status s = h->for_each([&](std::string_view f, std::string_view v) {
      picked.emplace_back(std::string(f), std::string(v));
      return true;
    });
    if (!c.ok(s)) return;
  } else {
    auto r = h->random_distinct(count, rng);
    if (!c.ok(r)) return;
    picked = std::move(*r);
  }
  const bool resp3 = c.session.resp > 2;
  c.out.array(withvalues && !resp3 ? picked.size() * 2 : picked.size());
  for (const auto& [f, v] : picked) {
    if (withvalues && resp3) c.out.array(2);
    c.out.bulk(f);
    if (withvalues) c.out.bulk(v);
  }
}

void cmd_hscan(CommandContext& c) {
  auto cursor = parse_cursor(c.argv[2]);
  if (!cursor) return c.out.error("ERR invalid cursor");
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto h = open_for_read(c, c.argv[1], *locked);
  if (!h) return;
  if (!locked->live) {
    c.out.array(2);
    c.out.bulk("0");
    return c.out.array(0);
  }
  ElementScanOptions options;
  if (!parse_element_scan_options(c, c.argv.subspan(3), &options)) return;
  std::vector<std::string> items;
  uint64_t next = 0;
  Status s = h->scan(
      *cursor, options.count,
      [&](std::string_view f, std::string_view v) {
        if (options.use_pattern && !glob_match(options.pattern, f)) return true;
        items.emplace_back(f);
        items.emplace_back(v);
        return true;
      },
      &next);
  if (!c.ok(s)) return;
  c.out.array(2);
  c.out.bulk(std::to_string(next));
  c.out.array(items.size());
  for (const auto& item : items) c.out.bulk(item);
}

}  // namespace

void add_hash_commands(std::vector<CommandSpec>& out) {
  const std::string_view g = "hash";
  constexpr uint32_t kWF = kWrite | kDenyOom | kFast;
  constexpr uint32_t kRF = kReadonly | kFast;
  out.push_back({"hset", -4, kWF, 1, 1, 1, g, "Creates or modifies the value of a field in a hash.",
                 "2.0.0",
                 "O(1) for each field/value pair added, so O(N) to add N field/value pairs when "
                 "the command is called with multiple field/value pairs.",
                 "key:key (data: field:string value:string)...", cmd_hset});
  out.push_back({"hmset", -4, kWF, 1, 1, 1, g, "Sets the values of multiple fields.", "2.0.0",
                 "O(N) where N is the number of fields being set.",
                 "key:key (data: field:string value:string)...", cmd_hmset});
  out.push_back({"hsetnx", 4, kWF, 1, 1, 1, g,
                 "Sets the value of a field in a hash only when the field doesn't exist.", "2.0.0",
                 "O(1)", "key:key field:string value:string", cmd_hsetnx});
  out.push_back({"hget", 3, kRF, 1, 1, 1, g, "Returns the value of a field in a hash.", "2.0.0",
                 "O(1)", "key:key field:string", cmd_hget});
  out.push_back({"hmget", -3, kRF, 1, 1, 1, g, "Returns the values of all fields in a hash.",
                 "2.0.0", "O(N) where N is the number of fields being requested.",
                 "key:key field:string...", cmd_hmget});
  out.push_back({"hdel", -3, kWrite | kFast, 1, 1, 1, g,
                 "Deletes one or more fields and their values from a hash. Deletes the hash if no "
                 "fields remain.",
                 "2.0.0", "O(N) where N is the number of fields to be removed.",
                 "key:key field:string...", cmd_hdel});
  out.push_back({"hlen", 2, kRF, 1, 1, 1, g, "Returns the number of fields in a hash.", "2.0.0",
                 "O(1)", "key:key", cmd_hlen});
  out.push_back({"hstrlen", 3, kRF, 1, 1, 1, g, "Returns the length of the value of a field.",
                 "3.2.0", "O(1)", "key:key field:string", cmd_hstrlen});
  out.push_back({"hexists", 3, kRF, 1, 1, 1, g, "Determines whether a field exists in a hash.",
                 "2.0.0", "O(1)", "key:key field:string", cmd_hexists});
  out.push_back({"hgetall", 2, kReadonly, 1, 1, 1, g, "Returns all fields and values in a hash.",
                 "2.0.0", "O(N) where N is the size of the hash.", "key:key", cmd_hgetall});
  out.back().tips = "nondeterministic_output_order";
  out.push_back({"hkeys", 2, kReadonly, 1, 1, 1, g, "Returns all fields in a hash.", "2.0.0",
                 "O(N) where N is the size of the hash.", "key:key", cmd_hkeys});
  out.back().tips = "nondeterministic_output_order";
  out.push_back({"hvals", 2, kReadonly, 1, 1, 1, g, "Returns all values in a hash.", "2.0.0",
                 "O(N) where N is the size of the hash.", "key:key", cmd_hvals});
  out.back().tips = "nondeterministic_output_order";
  out.push_back({"hincrby", 4, kWF, 1, 1, 1, g,
                 "Increments the integer value of a field in a hash by a number. Uses 0 as "
                 "initial value if the field doesn't exist.",
                 "2.0.0", "O(1)", "key:key field:string increment:integer", cmd_hincrby});
  out.push_back({"hincrbyfloat", 4, kWF, 1, 1, 1, g,
                 "Increments the floating point value of a field by a number. Uses 0 as initial "
                 "value if the field doesn't exist.",
                 "2.6.0", "O(1)", "key:key field:string increment:double", cmd_hincrbyfloat});
  out.push_back({"hrandfield", -2, kReadonly, 1, 1, 1, g,
                 "Returns one or more random fields from a hash.", "6.2.0",
                 "O(N) where N is the number of fields returned",
                 "key:key [options: count:integer [WITHVALUES]]", cmd_hrandfield});
  out.back().tips = "nondeterministic_output";
  out.push_back(
      {"hscan", -3, kReadonly, 1, 1, 1, g, "Iterates over fields and values of a hash.", "2.8.0",
       "O(1) for every call. O(N) for a complete iteration, including enough command "
       "calls for the cursor to return back to 0. N is the number of elements inside "
       "the collection.",
       "key:key cursor:integer [MATCH=pattern:pattern] [COUNT=count:integer]", cmd_hscan});
  out.back().tips = "nondeterministic_output";
}

}  // namespace statekv::server
