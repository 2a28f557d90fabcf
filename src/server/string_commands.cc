// String commands: GET, SET and its variants, counters, ranges — Redis 7.0 semantics.
//
// Read-modify-write commands hold the key's stripe lock from the read to the
// write (Store's contract); plain reads (GET, STRLEN, GETRANGE) take no lock.
#include <cmath>
#include <limits>
#include <string>
#include <unordered_map>

#include "server/command.h"
#include "server/number.h"

namespace statekv::server {
namespace {

// ---- SET / GETEX option parsing (Redis's parseExtendedStringArgumentsOrReply) ----

enum SetFlag : uint32_t {
  kNX = 1,
  kXX = 2,
  kGET = 4,
  kKEEPTTL = 8,
  kPERSIST = 16,
  kEX = 32,
  kPX = 64,
  kEXAT = 128,
  kPXAT = 256,
};
constexpr uint32_t kAnyExpire = kEX | kPX | kEXAT | kPXAT;

struct SetArgs {
  uint32_t flags = 0;
  std::string_view expire_text;  // the EX/PX/EXAT/PXAT argument, when given
  int64_t expire_ms = 0;         // absolute, once resolved
};

enum class OptionsOf { kSet, kGetex };

bool parse_set_options(CommandContext& c, size_t from, OptionsOf kind, SetArgs* a) {
  const bool set = kind == OptionsOf::kSet;
  for (size_t j = from; j < c.argv.size(); ++j) {
    std::string_view opt = c.argv[j];
    const bool has_next = j + 1 < c.argv.size();
    uint32_t& f = a->flags;
    if (iequals(opt, "nx") && !(f & kXX) && set) {
      f |= kNX;
    } else if (iequals(opt, "xx") && !(f & kNX) && set) {
      f |= kXX;
    } else if (iequals(opt, "get") && set) {
      f |= kGET;
    } else if (iequals(opt, "keepttl") && !(f & kPERSIST) && !(f & kAnyExpire) && set) {
      f |= kKEEPTTL;
    } else if (iequals(opt, "persist") && !set && !(f & kAnyExpire) && !(f & kKEEPTTL)) {
      f |= kPERSIST;
    } else if (iequals(opt, "ex") && !(f & (kKEEPTTL | kPERSIST | kEXAT | kPX | kPXAT)) &&
               has_next) {
      f |= kEX;
      a->expire_text = c.argv[++j];
    } else if (iequals(opt, "px") && !(f & (kKEEPTTL | kPERSIST | kEX | kEXAT | kPXAT)) &&
               has_next) {
      f |= kPX;
      a->expire_text = c.argv[++j];
    } else if (iequals(opt, "exat") && !(f & (kKEEPTTL | kPERSIST | kEX | kPX | kPXAT)) &&
               has_next) {
      f |= kEXAT;
      a->expire_text = c.argv[++j];
    } else if (iequals(opt, "pxat") && !(f & (kKEEPTTL | kPERSIST | kEX | kEXAT | kPX)) &&
               has_next) {
      f |= kPXAT;
      a->expire_text = c.argv[++j];
    } else {
      c.out.error(kSyntaxError);
      return false;
    }
  }
  return true;
}

void invalid_expire(CommandContext& c) {
  c.out.error("ERR invalid expire time in '" + std::string(c.fullname) + "' command");
}

// Redis's getExpireMillisecondsOrReply: text in seconds or ms, relative (EX/PX)
// or absolute; must be positive and must not overflow.
bool resolve_expire(CommandContext& c, std::string_view text, bool seconds, bool relative,
                    int64_t* out) {
  auto v = parse_int64(text);
  if (!v) {
    c.out.error(kNotInteger);
    return false;
  }
  int64_t ms = *v;
  if (ms <= 0 || (seconds && ms > std::numeric_limits<int64_t>::max() / 1000)) {
    invalid_expire(c);
    return false;
  }
  if (seconds) ms *= 1000;
  if (relative) {
    if (ms > std::numeric_limits<int64_t>::max() - c.now_ms) {
      invalid_expire(c);
      return false;
    }
    ms += c.now_ms;
  }
  *out = ms;
  return true;
}

bool resolve_set_expire(CommandContext& c, SetArgs* a) {
  if (!(a->flags & kAnyExpire)) return true;
  return resolve_expire(c, a->expire_text, (a->flags & (kEX | kEXAT)) != 0,
                        (a->flags & (kEX | kPX)) != 0, &a->expire_ms);
}

enum class Reply { kOk, kInteger };  // SET replies +OK/nil, SETNX :1/:0

void set_generic(CommandContext& c, std::string_view key, std::string_view value, const SetArgs& a,
                 Reply reply) {
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  const RecordView& rec = locked->rec;
  const Store::Meta& meta = locked->meta;
  const bool live = locked->live;
  if ((a.flags & kGET) && live && rec.type != ValueType::kString) return c.out.error(kWrongType);
  if (a.flags & kGET) {
    if (live) {
      c.hit();
      c.out.bulk(rec.value);
    } else {
      c.miss();
      c.out.null();
    }
  }
  if (((a.flags & kNX) && live) || ((a.flags & kXX) && !live)) {
    if (!(a.flags & kGET)) {
      if (reply == Reply::kOk) {
        c.out.null();
      } else {
        c.out.integer(0);
      }
    }
    return;
  }
  int64_t expire = 0;
  if (a.flags & kAnyExpire) {
    expire = a.expire_ms;
  } else if (a.flags & kKEEPTTL) {
    expire = meta.expire_ms;
  }
  // An absolute time already past: the key would expire at once; Redis's next
  // access would find nothing, so store nothing.
  if (expire != 0 && expire <= c.now_ms) {
    if (!c.erase(key, meta)) return;
  } else if (!c.put(key, meta, value, expire)) {
    return;
  }
  if (!(a.flags & kGET)) {
    if (reply == Reply::kOk) {
      c.out.simple("OK");
    } else {
      c.out.integer(1);
    }
  }
}

void cmd_get(CommandContext& c) {
  std::string& buf = read_buffer();
  RecordView rec;
  auto live = c.read(c.argv[1], &buf, &rec);
  if (!live) return;
  if (!*live) {
    c.miss();
    c.out.null();
    return;
  }
  c.hit();
  if (rec.type != ValueType::kString) return c.out.error(kWrongType);
  c.out.bulk(rec.value);
}

void cmd_set(CommandContext& c) {
  SetArgs a;
  if (!parse_set_options(c, 3, OptionsOf::kSet, &a)) return;
  if (!resolve_set_expire(c, &a)) return;
  set_generic(c, c.argv[1], c.argv[2], a, Reply::kOk);
}

void cmd_setnx(CommandContext& c) {
  SetArgs a;
  a.flags = kNX;
  set_generic(c, c.argv[1], c.argv[2], a, Reply::kInteger);
}

void setex_generic(CommandContext& c, bool seconds) {
  SetArgs a;
  a.flags = seconds ? kEX : kPX;
  if (!resolve_expire(c, c.argv[2], seconds, true, &a.expire_ms)) return;
  set_generic(c, c.argv[1], c.argv[3], a, Reply::kOk);
}
void cmd_setex(CommandContext& c) {
  setex_generic(c, true);
}
void cmd_psetex(CommandContext& c) {
  setex_generic(c, false);
}

void cmd_getset(CommandContext& c) {
  SetArgs a;
  a.flags = kGET;
  set_generic(c, c.argv[1], c.argv[2], a, Reply::kOk);
}

void cmd_getdel(CommandContext& c) {
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  const RecordView& rec = locked->rec;
  const Store::Meta& meta = locked->meta;
  const bool live = locked->live;
  if (!live) {
    c.miss();
    c.out.null();
    return;
  }
  c.hit();
  if (rec.type != ValueType::kString) return c.out.error(kWrongType);
  std::string value(rec.value);
  if (!c.erase(key, meta)) return;
  c.out.bulk(value);
}

void cmd_getex(CommandContext& c) {
  SetArgs a;
  if (!parse_set_options(c, 2, OptionsOf::kGetex, &a)) return;
  if (!resolve_set_expire(c, &a)) return;
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  const RecordView& rec = locked->rec;
  const Store::Meta& meta = locked->meta;
  const bool live = locked->live;
  if (!live) {
    c.miss();
    c.out.null();
    return;
  }
  c.hit();
  if (rec.type != ValueType::kString) return c.out.error(kWrongType);
  // Reply with the value as it was, then change its TTL (as Redis does).
  std::string value(rec.value);
  bool committed = true;
  if ((a.flags & (kEXAT | kPXAT)) && a.expire_ms <= c.now_ms) {
    committed = c.erase(key, meta);
  } else if (a.flags & kAnyExpire) {
    committed = c.put(key, meta, value, a.expire_ms);
  } else if ((a.flags & kPERSIST) && meta.expire_ms != 0) {
    committed = c.put(key, meta, value, 0);
  }
  if (!committed) return;
  c.out.bulk(value);
}

void cmd_mget(CommandContext& c) {
  auto keys = c.argv.subspan(1);
  // Locked so that an MGET never sees half of a concurrent MSET.
  auto guard = c.store().lock(keys);
  std::string& buf = read_buffer();
  // Collect first: a failing read must not leave a half-written array.
  std::vector<std::optional<std::string>> values;
  values.reserve(keys.size());
  for (std::string_view key : keys) {
    RecordView rec;
    Store::Meta meta;
    auto live = c.read_locked(key, &buf, &rec, &meta);
    if (!live) return;
    if (*live) {
      c.hit();
      // A key of another type reads as nil here, as in Redis.
      if (rec.type == ValueType::kString) {
        values.emplace_back(std::string(rec.value));
      } else {
        values.emplace_back();
      }
    } else {
      c.miss();
      values.emplace_back();
    }
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

void mset_generic(CommandContext& c, bool nx) {
  if (c.argv.size() % 2 == 0) {
    c.out.error("ERR wrong number of arguments for '" + std::string(c.fullname) + "' command");
    return;
  }
  // Later pairs win over earlier ones for the same key, as in Redis.
  std::vector<Store::Write> writes;
  std::unordered_map<std::string_view, size_t> index;
  std::vector<std::string_view> keys;
  for (size_t i = 1; i + 1 < c.argv.size(); i += 2) {
    auto [it, inserted] = index.emplace(c.argv[i], writes.size());
    if (inserted) {
      writes.push_back(Store::Write{c.argv[i], {}, false, c.argv[i + 1], 0});
      keys.push_back(c.argv[i]);
    } else {
      writes[it->second].value = c.argv[i + 1];
    }
  }
  Store& store = c.store();
  auto guard = store.lock(keys);
  std::string& buf = read_buffer();
  for (Store::Write& w : writes) {
    RecordView rec;
    auto live = c.read_locked(w.key, &buf, &rec, &w.old);
    if (!live) return;
    if (nx && *live) {
      c.out.integer(0);
      return;
    }
  }
  if (!c.commit(writes)) return;
  if (nx) {
    c.out.integer(1);
  } else {
    c.out.simple("OK");
  }
}
void cmd_mset(CommandContext& c) {
  mset_generic(c, false);
}
void cmd_msetnx(CommandContext& c) {
  mset_generic(c, true);
}

// ---- counters ----

void incr_generic(CommandContext& c, int64_t incr) {
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  const RecordView& rec = locked->rec;
  const Store::Meta& meta = locked->meta;
  const bool live = locked->live;
  int64_t value = 0;
  if (live && rec.type != ValueType::kString) return c.out.error(kWrongType);
  if (live) {
    auto v = parse_int64(rec.value);
    if (!v) {
      c.out.error(kNotInteger);
      return;
    }
    value = *v;
  }
  if ((incr < 0 && value < 0 && incr < std::numeric_limits<int64_t>::min() - value) ||
      (incr > 0 && value > 0 && incr > std::numeric_limits<int64_t>::max() - value)) {
    c.out.error(kOverflow);
    return;
  }
  value += incr;
  char text[24];
  int n = std::snprintf(text, sizeof(text), "%lld", static_cast<long long>(value));
  // INCR keeps the key's TTL (Redis overwrites the value in place).
  if (!c.put(key, meta, std::string_view(text, n), meta.expire_ms)) return;
  c.out.integer(value);
}

void cmd_incr(CommandContext& c) {
  incr_generic(c, 1);
}
void cmd_decr(CommandContext& c) {
  incr_generic(c, -1);
}
void cmd_incrby(CommandContext& c) {
  auto v = parse_int64(c.argv[2]);
  if (!v) return c.out.error(kNotInteger);
  incr_generic(c, *v);
}
void cmd_decrby(CommandContext& c) {
  auto v = parse_int64(c.argv[2]);
  if (!v) return c.out.error(kNotInteger);
  if (*v == std::numeric_limits<int64_t>::min()) return c.out.error("ERR decrement would overflow");
  incr_generic(c, -*v);
}

void cmd_incrbyfloat(CommandContext& c) {
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  const RecordView& rec = locked->rec;
  const Store::Meta& meta = locked->meta;
  const bool live = locked->live;
  long double value = 0;
  if (live && rec.type != ValueType::kString) return c.out.error(kWrongType);
  if (live) {
    auto v = parse_long_double(rec.value);
    if (!v) return c.out.error(kNotFloat);
    value = *v;
  }
  auto incr = parse_long_double(c.argv[2]);
  if (!incr) return c.out.error(kNotFloat);
  value += *incr;
  if (std::isnan(value) || std::isinf(value)) {
    return c.out.error("ERR increment would produce NaN or Infinity");
  }
  std::string text = format_long_double(value);
  if (!c.put(key, meta, text, meta.expire_ms)) return;
  c.out.bulk(text);
}

// ---- ranges ----

bool check_length(CommandContext& c, uint64_t size) {
  if (size > c.state.proto_max_bulk_len.load(std::memory_order_relaxed)) {
    c.out.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    return false;
  }
  return true;
}

void cmd_append(CommandContext& c) {
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  const RecordView& rec = locked->rec;
  const Store::Meta& meta = locked->meta;
  const bool live = locked->live;
  if (!live) {
    if (!c.put(key, meta, c.argv[2], 0)) return;
    c.out.integer(static_cast<int64_t>(c.argv[2].size()));
    return;
  }
  if (rec.type != ValueType::kString) return c.out.error(kWrongType);
  if (!check_length(c, rec.value.size() + c.argv[2].size())) return;
  std::string value;
  value.reserve(rec.value.size() + c.argv[2].size());
  value.append(rec.value).append(c.argv[2]);
  if (!c.put(key, meta, value, meta.expire_ms)) return;
  c.out.integer(static_cast<int64_t>(value.size()));
}

void cmd_strlen(CommandContext& c) {
  std::string& buf = read_buffer();
  RecordView rec;
  auto live = c.read(c.argv[1], &buf, &rec);
  if (!live) return;
  c.count_lookup(*live);
  if (*live && rec.type != ValueType::kString) return c.out.error(kWrongType);
  c.out.integer(*live ? static_cast<int64_t>(rec.value.size()) : 0);
}

void cmd_getrange(CommandContext& c) {
  auto start_arg = parse_int64(c.argv[2]);
  if (!start_arg) return c.out.error(kNotInteger);
  auto end_arg = parse_int64(c.argv[3]);
  if (!end_arg) return c.out.error(kNotInteger);
  int64_t start = *start_arg, end = *end_arg;
  std::string& buf = read_buffer();
  RecordView rec;
  auto live = c.read(c.argv[1], &buf, &rec);
  if (!live) return;
  if (!*live) {
    c.miss();
    return c.out.bulk("");
  }
  c.hit();
  if (rec.type != ValueType::kString) return c.out.error(kWrongType);
  if (start < 0 && end < 0 && start > end) return c.out.bulk("");
  const int64_t len = static_cast<int64_t>(rec.value.size());
  if (start < 0) start += len;
  if (end < 0) end += len;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= len) end = len - 1;
  if (start > end || len == 0) return c.out.bulk("");
  c.out.bulk(rec.value.substr(static_cast<size_t>(start), static_cast<size_t>(end - start + 1)));
}

void cmd_setrange(CommandContext& c) {
  auto offset_arg = parse_int64(c.argv[2]);
  if (!offset_arg) return c.out.error(kNotInteger);
  if (*offset_arg < 0) return c.out.error("ERR offset is out of range");
  const uint64_t offset = static_cast<uint64_t>(*offset_arg);
  std::string_view patch = c.argv[3];
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  const RecordView& rec = locked->rec;
  const Store::Meta& meta = locked->meta;
  const bool live = locked->live;
  if (live && rec.type != ValueType::kString) return c.out.error(kWrongType);
  std::string_view old = live ? rec.value : std::string_view();
  if (patch.empty()) return c.out.integer(static_cast<int64_t>(old.size()));
  if (!check_length(c, offset + patch.size())) return;
  std::string value(old);
  if (value.size() < offset + patch.size()) value.resize(offset + patch.size(), '\0');
  value.replace(offset, patch.size(), patch);
  if (!c.put(key, meta, value, meta.expire_ms)) return;
  c.out.integer(static_cast<int64_t>(value.size()));
}

}  // namespace

void add_string_commands(std::vector<CommandSpec>& out) {
  constexpr uint32_t kW = kWrite | kDenyOom;
  constexpr uint32_t kWF = kWrite | kDenyOom | kFast;
  constexpr uint32_t kRF = kReadonly | kFast;
  const std::string_view g = "string";
  out.push_back({"get", 2, kRF, 1, 1, 1, g, "Returns the string value of a key.", "1.0.0", "O(1)",
                 "key:key", cmd_get});
  out.push_back({"set", -3, kW, 1, 1, 1, g,
                 "Sets the string value of a key, ignoring its type. The key is created if it "
                 "doesn't exist.",
                 "1.0.0", "O(1)",
                 "key:key value:string [condition: NX | XX] [GET] [expiration: EX=seconds:integer "
                 "| PX=milliseconds:integer | EXAT=unix-time-seconds:unix-time | "
                 "PXAT=unix-time-milliseconds:unix-time | KEEPTTL]",
                 cmd_set});
  out.push_back({"setnx", 3, kWF, 1, 1, 1, g,
                 "Set the string value of a key only when the key doesn't exist.", "1.0.0", "O(1)",
                 "key:key value:string", cmd_setnx});
  out.push_back({"setex", 4, kW, 1, 1, 1, g,
                 "Sets the string value and expiration time of a key. Creates the key if it "
                 "doesn't exist.",
                 "2.0.0", "O(1)", "key:key seconds:integer value:string", cmd_setex});
  out.push_back({"psetex", 4, kW, 1, 1, 1, g,
                 "Sets both string value and expiration time in milliseconds of a key. The key is "
                 "created if it doesn't exist.",
                 "2.6.0", "O(1)", "key:key milliseconds:integer value:string", cmd_psetex});
  out.push_back({"getset", 3, kWF, 1, 1, 1, g,
                 "Returns the previous string value of a key after setting it to a new value.",
                 "1.0.0", "O(1)", "key:key value:string", cmd_getset});
  out.push_back({"getdel", 2, kWrite | kFast, 1, 1, 1, g,
                 "Returns the string value of a key after deleting the key.", "6.2.0", "O(1)",
                 "key:key", cmd_getdel});
  out.push_back({"getex", -2, kWrite | kFast, 1, 1, 1, g,
                 "Returns the string value of a key after setting its expiration time.", "6.2.0",
                 "O(1)",
                 "key:key [expiration: EX=seconds:integer | PX=milliseconds:integer | "
                 "EXAT=unix-time-seconds:unix-time | PXAT=unix-time-milliseconds:unix-time | "
                 "PERSIST]",
                 cmd_getex});
  out.push_back({"mget", -2, kRF, 1, -1, 1, g,
                 "Atomically returns the string values of one or more keys.", "1.0.0",
                 "O(N) where N is the number of keys to retrieve.", "key:key...", cmd_mget});
  out.push_back({"mset", -3, kW, 1, -1, 2, g,
                 "Atomically creates or modifies the string values of one or more keys.", "1.0.1",
                 "O(N) where N is the number of keys to set.", "(data: key:key value:string)...",
                 cmd_mset});
  out.push_back({"msetnx", -3, kW, 1, -1, 2, g,
                 "Atomically modifies the string values of one or more keys only when all keys "
                 "don't exist.",
                 "1.0.1", "O(N) where N is the number of keys to set.",
                 "(data: key:key value:string)...", cmd_msetnx});
  out.push_back({"incr", 2, kWF, 1, 1, 1, g,
                 "Increments the integer value of a key by one. Uses 0 as initial value if the "
                 "key doesn't exist.",
                 "1.0.0", "O(1)", "key:key", cmd_incr});
  out.push_back({"decr", 2, kWF, 1, 1, 1, g,
                 "Decrements the integer value of a key by one. Uses 0 as initial value if the "
                 "key doesn't exist.",
                 "1.0.0", "O(1)", "key:key", cmd_decr});
  out.push_back({"incrby", 3, kWF, 1, 1, 1, g,
                 "Increments the integer value of a key by a number. Uses 0 as initial value if "
                 "the key doesn't exist.",
                 "1.0.0", "O(1)", "key:key increment:integer", cmd_incrby});
  out.push_back({"decrby", 3, kWF, 1, 1, 1, g,
                 "Decrements a number from the integer value of a key. Uses 0 as initial value if "
                 "the key doesn't exist.",
                 "1.0.0", "O(1)", "key:key decrement:integer", cmd_decrby});
  out.push_back({"incrbyfloat", 3, kWF, 1, 1, 1, g,
                 "Increment the floating point value of a key by a number. Uses 0 as initial "
                 "value if the key doesn't exist.",
                 "2.6.0", "O(1)", "key:key increment:double", cmd_incrbyfloat});
  out.push_back({"append", 3, kWF, 1, 1, 1, g,
                 "Appends a string to the value of a key. Creates the key if it doesn't exist.",
                 "2.0.0",
                 "O(1). The amortized time complexity is O(1) assuming the appended value is "
                 "small and the already present value is of any size, since the dynamic string "
                 "library used by Redis will double the free space available on every "
                 "reallocation.",
                 "key:key value:string", cmd_append});
  out.push_back({"strlen", 2, kRF, 1, 1, 1, g, "Returns the length of a string value.", "2.2.0",
                 "O(1)", "key:key", cmd_strlen});
  out.push_back({"getrange", 4, kReadonly, 1, 1, 1, g,
                 "Returns a substring of the string stored at a key.", "2.4.0",
                 "O(N) where N is the length of the returned string. The complexity is "
                 "ultimately determined by the returned length, but because creating a substring "
                 "from an existing string is very cheap, it can be considered O(1) for small "
                 "strings.",
                 "key:key start:integer end:integer", cmd_getrange});
  out.push_back({"setrange", 4, kW, 1, 1, 1, g,
                 "Overwrites a part of a string value with another by an offset. Creates the key "
                 "if it doesn't exist.",
                 "2.2.0",
                 "O(1), not counting the time taken to copy the new string in place. Usually, "
                 "this string is very small so the amortized complexity is O(1). Otherwise, "
                 "complexity is O(M) with M being the length of the value argument.",
                 "key:key offset:integer value:string", cmd_setrange});
}

}  // namespace statekv::server
