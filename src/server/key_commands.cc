// Keyspace commands: DEL, EXISTS, TYPE, TTLs, KEYS, SCAN, RANDOMKEY, RENAME,
// DBSIZE, FLUSHDB/FLUSHALL — Redis 7.0 semantics over the ordered Store.
#include <algorithm>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <unordered_set>

#include "core/random.h"
#include "server/collection_command.h"
#include "server/command.h"
#include "server/key_page.h"
#include "server/list.h"
#include "server/number.h"

namespace statekv::server {
namespace {

// The deduplicated keys of argv[from..], in first-seen order.
std::vector<std::string_view> unique_keys(std::span<const std::string_view> keys) {
  std::vector<std::string_view> out;
  std::unordered_set<std::string_view> seen;
  for (auto k : keys) {
    if (seen.insert(k).second) out.push_back(k);
  }
  return out;
}

void cmd_del(CommandContext& c) {
  auto keys = unique_keys(c.argv.subspan(1));
  Store& store = c.store();
  auto guard = store.lock(keys);
  std::string& buf = read_buffer();
  std::vector<Store::Write> writes;
  writes.reserve(keys.size());
  for (auto key : keys) {
    RecordView rec;
    Store::Meta meta;
    auto live = c.read_locked(key, &buf, &rec, &meta);
    if (!live) return;
    if (*live) writes.push_back(Store::Write{key, meta, true, {}, 0});
  }
  if (!c.commit(writes)) return;
  c.out.integer(static_cast<int64_t>(writes.size()));
}

void cmd_exists(CommandContext& c) {
  std::string& buf = read_buffer();
  int64_t count = 0;
  for (auto key : c.argv.subspan(1)) {
    RecordView rec;
    auto live = c.read(key, &buf, &rec);
    if (!live) return;
    c.count_lookup(*live);
    if (*live) ++count;
  }
  c.out.integer(count);
}

void cmd_type(CommandContext& c) {
  std::string& buf = read_buffer();
  RecordView rec;
  auto live = c.read(c.argv[1], &buf, &rec);
  if (!live) return;
  c.count_lookup(*live);
  c.out.simple(*live ? type_name(rec.type) : "none");
}

// ---- expiry ----

void invalid_expire(CommandContext& c) {
  c.out.error("ERR invalid expire time in '" + std::string(c.fullname) + "' command");
}

enum ExpireFlag : uint32_t { kENX = 1, kEXX = 2, kEGT = 4, kELT = 8 };

void expire_generic(CommandContext& c, int64_t basetime, bool seconds) {
  uint32_t flags = 0;
  for (size_t j = 3; j < c.argv.size(); ++j) {
    std::string_view opt = c.argv[j];
    if (iequals(opt, "nx")) {
      flags |= kENX;
    } else if (iequals(opt, "xx")) {
      flags |= kEXX;
    } else if (iequals(opt, "gt")) {
      flags |= kEGT;
    } else if (iequals(opt, "lt")) {
      flags |= kELT;
    } else {
      return c.out.error("ERR Unsupported option " + std::string(opt));
    }
  }
  if ((flags & kENX) && (flags & (kEXX | kEGT | kELT))) {
    return c.out.error("ERR NX and XX, GT or LT options at the same time are not compatible");
  }
  if ((flags & kEGT) && (flags & kELT)) {
    return c.out.error("ERR GT and LT options at the same time are not compatible");
  }
  auto parsed = parse_int64(c.argv[2]);
  if (!parsed) return c.out.error(kNotInteger);
  int64_t when = *parsed;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  if (seconds) {
    if (when > kMax / 1000 || when < kMin / 1000) return invalid_expire(c);
    when *= 1000;
  }
  if (when > kMax - basetime) return invalid_expire(c);
  when += basetime;

  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  const RecordView& rec = locked->rec;
  const Store::Meta& meta = locked->meta;
  const bool live = locked->live;
  if (!live) return c.out.integer(0);
  const int64_t current = meta.expire_ms == 0 ? -1 : meta.expire_ms;
  if ((flags & kENX) && current != -1) return c.out.integer(0);
  if ((flags & kEXX) && current == -1) return c.out.integer(0);
  // No TTL counts as infinite: GT never beats it, LT always does.
  if ((flags & kEGT) && (current == -1 || when <= current)) return c.out.integer(0);
  if ((flags & kELT) && current != -1 && when >= current) return c.out.integer(0);
  if (when <= c.now_ms) {
    if (!c.erase(key, meta)) return;
  } else if (!c.put(key, meta, rec.value, when, rec.type)) {
    return;
  }
  c.out.integer(1);
}

void cmd_expire(CommandContext& c) {
  expire_generic(c, c.now_ms, true);
}
void cmd_pexpire(CommandContext& c) {
  expire_generic(c, c.now_ms, false);
}
void cmd_expireat(CommandContext& c) {
  expire_generic(c, 0, true);
}
void cmd_pexpireat(CommandContext& c) {
  expire_generic(c, 0, false);
}

enum class TtlOutput { kTtlSeconds, kTtlMs, kTimeSeconds, kTimeMs };

void ttl_generic(CommandContext& c, TtlOutput output) {
  std::string& buf = read_buffer();
  RecordView rec;
  auto live = c.read(c.argv[1], &buf, &rec);
  if (!live) return;
  if (!*live) {
    c.miss();
    return c.out.integer(-2);
  }
  c.hit();
  if (rec.expire_ms == 0) return c.out.integer(-1);
  switch (output) {
    case TtlOutput::kTimeSeconds:
      return c.out.integer(rec.expire_ms / 1000);
    case TtlOutput::kTimeMs:
      return c.out.integer(rec.expire_ms);
    case TtlOutput::kTtlMs:
      return c.out.integer(std::max<int64_t>(0, rec.expire_ms - c.now_ms));
    case TtlOutput::kTtlSeconds:
      return c.out.integer((std::max<int64_t>(0, rec.expire_ms - c.now_ms) + 500) / 1000);
  }
}

void cmd_ttl(CommandContext& c) {
  ttl_generic(c, TtlOutput::kTtlSeconds);
}
void cmd_pttl(CommandContext& c) {
  ttl_generic(c, TtlOutput::kTtlMs);
}
void cmd_expiretime(CommandContext& c) {
  ttl_generic(c, TtlOutput::kTimeSeconds);
}
void cmd_pexpiretime(CommandContext& c) {
  ttl_generic(c, TtlOutput::kTimeMs);
}

void cmd_persist(CommandContext& c) {
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  const RecordView& rec = locked->rec;
  const Store::Meta& meta = locked->meta;
  const bool live = locked->live;
  if (!live || meta.expire_ms == 0) return c.out.integer(0);
  if (!c.put(key, meta, rec.value, 0, rec.type)) return;
  c.out.integer(1);
}

// ---- iteration ----

// The smallest key greater than every key starting with prefix ("" when none:
// the prefix is all 0xff bytes, or empty).
void cmd_keys(CommandContext& c) {
  KeyPageRequest request;
  request.pattern = std::string(c.argv[1]);
  auto page = scan_key_page(c.store(), request, c.now_ms);
  if (!c.ok(page)) return;
  c.out.array(page->keys.size());
  for (const auto& k : page->keys) c.out.bulk(k);
}

void cmd_scan(CommandContext& c) {
  auto cursor = parse_cursor(c.argv[1]);
  if (!cursor) return c.out.error("ERR invalid cursor");
  auto parsed = parse_scan_options(c.argv.subspan(2));
  if (!parsed.ok()) return c.out.error(parsed.status().message());
  KeyPageRequest request = std::move(parsed).value();
  if (*cursor != 0) {
    request.after = c.state.cursors.find(*cursor);
    if (!request.after) return c.out.error("ERR invalid cursor");
  }
  auto page = scan_key_page(c.store(), request, c.now_ms);
  if (!c.ok(page)) return;
  const uint64_t next = page->end ? 0 : c.state.cursors.issue(page->last);
  c.out.array(2);
  c.out.bulk(std::to_string(next));
  c.out.array(page->keys.size());
  for (const auto& k : page->keys) c.out.bulk(k);
}

void cmd_randomkey(CommandContext& c) {
  auto picked = random_key(c.store(), c.now_ms);
  if (!c.ok(picked)) return;
  if (!*picked) return c.out.null();
  c.out.bulk(**picked);
}

// ---- rename ----

void rename_generic(CommandContext& c, bool nx) {
  std::string_view src = c.argv[1];
  std::string_view dst = c.argv[2];
  Store& store = c.store();
  std::string_view keys[2] = {src, dst};
  auto guard = store.lock(keys);
  std::string& buf = read_buffer();
  RecordView rec;
  Store::Meta src_meta;
  auto live = c.read_locked(src, &buf, &rec, &src_meta);
  if (!live) return;
  if (!*live) return c.out.error("ERR no such key");
  if (src == dst) {
    if (nx) return c.out.integer(0);
    return c.out.simple("OK");
  }
  std::string value(rec.value);
  const ValueType type = rec.type;
  Store::Meta dst_meta;
  auto dst_live = c.read_locked(dst, &buf, &rec, &dst_meta);
  if (!dst_live) return;
  if (nx && *dst_live) return c.out.integer(0);
  Store::Write writes[2] = {
      Store::Write{src, src_meta, true, {}, 0},
      Store::Write{dst, dst_meta, false, value, src_meta.expire_ms, type},
  };
  if (!c.commit(writes)) return;
  if (nx) return c.out.integer(1);
  c.out.simple("OK");
}
void cmd_rename(CommandContext& c) {
  rename_generic(c, false);
}
void cmd_renamenx(CommandContext& c) {
  rename_generic(c, true);
}

// ---- object / copy ----

// Redis's string encodings as tryObjectEncoding decides them for a value
// written whole (SET): an integer of up to 20 characters is "int", up to 44
// bytes "embstr", longer "raw". (Redis also answers "raw" for a short string
// grown in place by APPEND or SETRANGE; statekv does not keep that history.)
std::string_view string_encoding(std::string_view value) {
  if (value.size() <= 20 && parse_int64(value)) return "int";
  return value.size() <= 44 ? "embstr" : "raw";
}

void cmd_object_encoding(CommandContext& c) {
  std::string_view key = c.argv[2];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  if (!locked->live) return c.out.null();
  if (locked->rec.type == ValueType::kString) return c.out.bulk(string_encoding(locked->rec.value));
  if (locked->rec.type == ValueType::kList) {
    auto list = List::open(c.store(), key, locked->meta, &locked->rec, c.txn);
    if (!c.ok(list)) return;
    return c.out.bulk(list->encoding_name());
  }
  auto coll = open_collection(c, key, *locked, locked->rec.type);
  if (!coll) return;
  c.out.bulk(coll->encoding_name());
}

void cmd_object_help(CommandContext& c) {
  static constexpr std::string_view kLines[] = {
      "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "ENCODING <key>",
      "    Return the kind of internal representation used in order to store the value",
      "    associated with a <key>.",
      "HELP",
      "    Print this help.",
  };
  c.out.array(std::size(kLines));
  for (auto line : kLines) c.out.simple(line);
}

void cmd_copy(CommandContext& c) {
  std::string_view src = c.argv[1];
  std::string_view dst = c.argv[2];
  bool replace = false;
  for (size_t j = 3; j < c.argv.size(); ++j) {
    const bool more = j + 1 < c.argv.size();
    if (iequals(c.argv[j], "replace")) {
      replace = true;
    } else if (iequals(c.argv[j], "db") && more) {
      auto db = parse_int64(c.argv[++j]);
      if (!db || *db < std::numeric_limits<int>::min() || *db > std::numeric_limits<int>::max()) {
        return c.out.error(kNotInteger);
      }
      if (*db != 0) return c.out.error("ERR DB index is out of range");
    } else {
      return c.out.error(kSyntaxError);
    }
  }
  if (src == dst) return c.out.error("ERR source and destination objects are the same");
  std::string_view keys[2] = {src, dst};
  auto guard = c.store().lock(keys);
  std::string& buf = read_buffer();
  RecordView rec;
  Store::Meta src_meta;
  auto live = c.read_locked(src, &buf, &rec, &src_meta);
  if (!live) return;
  if (!*live) return c.out.integer(0);
  const ValueType type = rec.type;
  std::string value(rec.value);
  RecordView dst_rec;
  Store::Meta dst_meta;
  auto dst_live = c.read_locked(dst, &buf, &dst_rec, &dst_meta);
  if (!dst_live) return;
  if (*dst_live && !replace) return c.out.integer(0);
  if (record_generation(type, value) == 0) {
    // A string or a compact collection: the record is the whole value.
    if (!c.put(dst, dst_meta, value, src_meta.expire_ms, type)) return;
    return c.out.integer(1);
  }
  // The element layout: a copy of every element under a generation of its own.
  RecordView src_rec{type, src_meta.expire_ms, value};
  if (type == ValueType::kList) {
    auto from = List::open(c.store(), src, src_meta, &src_rec, c.txn);
    if (!c.ok(from)) return;
    auto to = List::open(c.store(), dst, dst_meta, nullptr, c.txn);
    if (!c.ok(to)) return;
    std::vector<std::string> items;
    if (!c.ok(from->range(0, from->size() - 1, &items))) return;
    for (const auto& item : items) to->push_back(item);
    to->set_expire(src_meta.expire_ms);
    std::vector<Store::Write> writes;
    to->writes(&writes);
    if (!c.commit(writes)) return;
    return c.out.integer(1);
  }
  auto from = Collection::open(c.store(), type, src, src_meta, &src_rec, c.txn);
  if (!c.ok(from)) return;
  auto to = Collection::open(c.store(), type, dst, dst_meta, nullptr, c.txn);
  if (!c.ok(to)) return;
  Status s = from->for_each([&](std::string_view f, std::string_view v) {
    auto r = to->put(f, v);
    if (!r.ok()) {
      c.fail(r.status());
      return false;
    }
    return true;
  });
  if (!c.ok(s)) return;
  to->set_expire(src_meta.expire_ms);
  if (!commit_collection(c, *to)) return;
  c.out.integer(1);
}

// ---- whole keyspace ----

void cmd_dbsize(CommandContext& c) {
  c.out.integer(static_cast<int64_t>(c.key_count()));
}

void flush_generic(CommandContext& c) {
  if (c.argv.size() > 2) return c.out.error(kSyntaxError);
  if (c.argv.size() == 2 && !iequals(c.argv[1], "async") && !iequals(c.argv[1], "sync")) {
    return c.out.error(kSyntaxError);
  }
  if (!c.commit_clear()) return;
  c.out.simple("OK");
}

}  // namespace

void add_key_commands(std::vector<CommandSpec>& out) {
  const std::string_view g = "generic";
  constexpr uint32_t kWF = kWrite | kFast;
  constexpr uint32_t kRF = kReadonly | kFast;
  out.push_back({"del", -2, kWrite, 1, -1, 1, g, "Deletes one or more keys.", "1.0.0",
                 "O(N) where N is the number of keys that will be removed.", "key:key...",
                 cmd_del});
  out.push_back({"unlink", -2, kWF, 1, -1, 1, g, "Asynchronously deletes one or more keys.",
                 "4.0.0", "O(1) for each key removed regardless of its size.", "key:key...",
                 cmd_del});
  out.push_back({"exists", -2, kRF, 1, -1, 1, g, "Determines whether one or more keys exist.",
                 "1.0.0", "O(N) where N is the number of keys to check.", "key:key...",
                 cmd_exists});
  // statekv keeps no access time (no OBJECT IDLETIME or FREQ): TOUCH only
  // counts, as EXISTS does.
  out.push_back({"touch", -2, kRF, 1, -1, 1, g,
                 "Returns the number of existing keys out of those specified after updating the "
                 "time they were last accessed.",
                 "3.2.1", "O(N) where N is the number of keys that will be touched.", "key:key...",
                 cmd_exists});
  out.push_back({"type", 2, kRF, 1, 1, 1, g, "Determines the type of value stored at a key.",
                 "1.0.0", "O(1)", "key:key", cmd_type});
  out.push_back({"expire", -3, kWF, 1, 1, 1, g, "Sets the expiration time of a key in seconds.",
                 "1.0.0", "O(1)", "key:key seconds:integer [condition: NX | XX | GT | LT]",
                 cmd_expire});
  out.push_back({"pexpire", -3, kWF, 1, 1, 1, g,
                 "Sets the expiration time of a key in milliseconds.", "2.6.0", "O(1)",
                 "key:key milliseconds:integer [condition: NX | XX | GT | LT]", cmd_pexpire});
  out.push_back({"expireat", -3, kWF, 1, 1, 1, g,
                 "Sets the expiration time of a key to a Unix timestamp.", "1.2.0", "O(1)",
                 "key:key unix-time-seconds:unix-time [condition: NX | XX | GT | LT]",
                 cmd_expireat});
  out.push_back({"pexpireat", -3, kWF, 1, 1, 1, g,
                 "Sets the expiration time of a key to a Unix milliseconds timestamp.", "2.6.0",
                 "O(1)", "key:key unix-time-milliseconds:unix-time [condition: NX | XX | GT | LT]",
                 cmd_pexpireat});
  out.push_back({"expiretime", 2, kRF, 1, 1, 1, g,
                 "Returns the expiration time of a key as a Unix timestamp.", "7.0.0", "O(1)",
                 "key:key", cmd_expiretime});
  out.push_back({"pexpiretime", 2, kRF, 1, 1, 1, g,
                 "Returns the expiration time of a key as a Unix milliseconds timestamp.", "7.0.0",
                 "O(1)", "key:key", cmd_pexpiretime});
  out.push_back({"ttl", 2, kRF, 1, 1, 1, g, "Returns the expiration time in seconds of a key.",
                 "1.0.0", "O(1)", "key:key", cmd_ttl});
  out.push_back({"pttl", 2, kRF, 1, 1, 1, g,
                 "Returns the expiration time in milliseconds of a key.", "2.6.0", "O(1)",
                 "key:key", cmd_pttl});
  out.push_back({"persist", 2, kWF, 1, 1, 1, g, "Removes the expiration time of a key.", "2.2.0",
                 "O(1)", "key:key", cmd_persist});
  out.push_back({"keys", 2, kReadonly, 0, 0, 0, g, "Returns all key names that match a pattern.",
                 "1.0.0",
                 "O(N) with N being the number of keys in the database, under the assumption "
                 "that the key names in the database and the given pattern have limited length.",
                 "pattern:pattern", cmd_keys});
  out.push_back({"scan", -2, kReadonly, 0, 0, 0, g, "Iterates over the key names in the database.",
                 "2.8.0",
                 "O(1) for every call. O(N) for a complete iteration, including enough command "
                 "calls for the cursor to return back to 0. N is the number of elements inside "
                 "the collection.",
                 "cursor:integer [MATCH=pattern:pattern] [COUNT=count:integer] "
                 "[TYPE=type:string]",
                 cmd_scan});
  out.push_back({"randomkey", 1, kReadonly, 0, 0, 0, g,
                 "Returns a random key name from the database.", "1.0.0", "O(1)", "",
                 cmd_randomkey});
  out.push_back({"rename", 3, kWrite, 1, 2, 1, g, "Renames a key and overwrites the destination.",
                 "1.0.0", "O(1)", "key:key newkey:key", cmd_rename});
  out.push_back({"renamenx", 3, kWF, 1, 2, 1, g,
                 "Renames a key only when the target key name doesn't exist.", "1.0.0", "O(1)",
                 "key:key newkey:key", cmd_renamenx});
  CommandSpec object{"object", -2,
                     0,        0,
                     0,        0,
                     g,        "A container for object introspection commands.",
                     "2.2.3",  "Depends on subcommand.",
                     "",       nullptr};
  object.subcommands.push_back({"encoding", 3, kReadonly, 2, 2, 1, g,
                                "Returns the internal encoding of a Redis object.", "2.2.3", "O(1)",
                                "key:key", cmd_object_encoding});
  object.subcommands.push_back({"help", 2, kLoading | kStale, 0, 0, 0, g,
                                "Returns helpful text about the different subcommands.", "6.2.0",
                                "O(1)", "", cmd_object_help});
  out.push_back(std::move(object));
  out.push_back({"copy", -3, kWrite | kDenyOom, 1, 2, 1, g,
                 "Copies the value of a key to a new key.", "6.2.0",
                 "O(N) worst case for collections, where N is the number of nested items. O(1) "
                 "for string values.",
                 "source:key destination:key [DB=destination-db:integer] [REPLACE]", cmd_copy});
  out.push_back({"dbsize", 1, kRF, 0, 0, 0, "server", "Returns the number of keys in the database.",
                 "1.0.0", "O(1)", "", cmd_dbsize});
  out.push_back({"flushdb", -1, kWrite, 0, 0, 0, "server",
                 "Remove all keys from the current database.", "1.0.0",
                 "O(N) where N is the number of keys in the selected database",
                 "[flush-type: ASYNC | SYNC]", flush_generic});
  out.push_back({"flushall", -1, kWrite, 0, 0, 0, "server", "Removes all keys from all databases.",
                 "1.0.0", "O(N) where N is the total number of keys in all databases",
                 "[flush-type: ASYNC | SYNC]", flush_generic});
}

}  // namespace statekv::server
