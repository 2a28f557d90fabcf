// Sorted-set commands — Redis 7.0 semantics over Collection (collection.h):
// small sorted sets are one listpack record, large ones one engine entry per
// member (member -> score). The value of a member is its score as 8 bytes
// (the IEEE-754 bits, big-endian).
//
// Range commands (ZRANGE and its forms, ZRANK, ZCOUNT, ZPOP*, ZREMRANGE*) read
// the members and order them by (score, member) as Redis's skiplist does; on
// the element layout that is O(n log n) per command until the score index of
// docs/data-types.md is written (listed there under "Not yet").
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "server/collection_command.h"
#include "server/number.h"

namespace statekv::server {
namespace {

constexpr std::string_view kNotFloat = "ERR value is not a valid float";
constexpr std::string_view kNanResult = "ERR resulting score is not a number (NaN)";
constexpr std::string_view kMinMaxNotFloat = "ERR min or max is not a float";
constexpr std::string_view kMinMaxNotLex = "ERR min or max not valid string range item";

std::string encode_score(double score) {
  uint64_t bits = 0;
  std::memcpy(&bits, &score, sizeof bits);
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<size_t>(i)] = static_cast<char>(bits & 0xff);
    bits >>= 8;
  }
  return out;
}

std::optional<double> decode_score(std::string_view v) {
  if (v.size() != 8) return std::nullopt;
  uint64_t bits = 0;
  for (char ch : v) bits = (bits << 8) | static_cast<uint8_t>(ch);
  double d = 0;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// Redis's string2d: strtod over the whole text, no leading space, no NaN, no
// overflow.
std::optional<double> parse_score(std::string_view text) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return std::nullopt;
  std::string buf(text);
  char* end = nullptr;
  errno = 0;
  double d = std::strtod(buf.c_str(), &end);
  if (static_cast<size_t>(end - buf.c_str()) != buf.size()) return std::nullopt;
  if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL || std::fpclassify(d) == FP_ZERO)) {
    return std::nullopt;
  }
  if (std::isnan(d)) return std::nullopt;
  return d;
}

struct Scored {
  double score;
  std::string member;
};

bool score_order(const Scored& a, const Scored& b) {
  if (a.score != b.score) return a.score < b.score;
  return a.member < b.member;
}

// Every member of z in (score, member) order.
Result<std::vector<Scored>> sorted_members(Collection& z) {
  std::vector<Scored> out;
  out.reserve(z.size());
  bool bad = false;
  Status s = z.for_each([&](std::string_view f, std::string_view v) {
    auto d = decode_score(v);
    if (!d) {
      bad = true;
      return false;
    }
    out.push_back(Scored{*d, std::string(f)});
    return true;
  });
  if (!s.ok()) return s;
  if (bad) return Status::Corruption("malformed sorted-set score");
  std::sort(out.begin(), out.end(), score_order);
  return out;
}

// The stored form of score for member in z. A listpack stores a zero score as
// the integer 0 (Redis reads -0 back as 0); the skiplist keeps the double.
std::string stored_score(const Collection& z, std::string_view member, bool is_new, double score) {
  const bool stays_compact = z.encoding() != Encoding::kElements &&
                             member.size() <= kZsetMaxListpackValue &&
                             (!is_new || z.size() + 1 <= kZsetMaxListpackEntries);
  if (stays_compact && score == 0) score = 0.0;
  return encode_score(score);
}

Result<std::optional<double>> score_of(Collection& z, std::string_view member) {
  auto v = z.get(member);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return std::optional<double>();
  auto d = decode_score(**v);
  if (!d) return Status::Corruption("malformed sorted-set score");
  return std::optional<double>(*d);
}

std::optional<Collection> open_zset(CommandContext& c, std::string_view key,
                                    const LockedRead& locked) {
  return open_collection(c, key, locked, ValueType::kZset);
}
std::optional<Collection> open_zset_for_read(CommandContext& c, std::string_view key,
                                             const LockedRead& locked) {
  c.count_lookup(locked.live);
  return open_collection(c, key, locked, ValueType::kZset);
}

// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]
void cmd_zadd_generic(CommandContext& c, bool incr_command) {
  bool nx = false, xx = false, gt = false, lt = false, ch = false, incr = incr_command;
  size_t i = 2;
  if (!incr_command) {
    for (; i < c.argv.size(); ++i) {
      std::string_view a = c.argv[i];
      if (iequals(a, "nx")) {
        nx = true;
      } else if (iequals(a, "xx")) {
        xx = true;
      } else if (iequals(a, "gt")) {
        gt = true;
      } else if (iequals(a, "lt")) {
        lt = true;
      } else if (iequals(a, "ch")) {
        ch = true;
      } else if (iequals(a, "incr")) {
        incr = true;
      } else {
        break;
      }
    }
  }
  const size_t elements = c.argv.size() - i;
  if (elements == 0 || elements % 2 != 0) return c.out.error(kSyntaxError);
  if (nx && xx) {
    return c.out.error("ERR XX and NX options at the same time are not compatible");
  }
  if ((gt && nx) || (lt && nx) || (gt && lt)) {
    return c.out.error("ERR GT, LT, and/or NX options at the same time are not compatible");
  }
  if (incr && elements > 2) {
    return c.out.error("ERR INCR option supports a single increment-element pair");
  }
  std::vector<double> scores;
  for (size_t j = i; j < c.argv.size(); j += 2) {
    auto d = parse_score(c.argv[j]);
    if (!d) return c.out.error(kNotFloat);
    scores.push_back(*d);
  }
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto z = open_zset(c, key, *locked);
  if (!z) return;
  int64_t added = 0, updated = 0;
  bool performed = false;
  double result = 0;
  for (size_t j = i, k = 0; j + 1 < c.argv.size(); j += 2, ++k) {
    std::string_view member = c.argv[j + 1];
    double score = scores[k];
    auto cur = score_of(*z, member);
    if (!c.ok(cur)) return;
    if (cur->has_value()) {
      if (nx) continue;
      const double old = **cur;
      if (incr) {
        score += old;
        if (std::isnan(score)) return c.out.error(kNanResult);
      }
      if ((gt && score <= old) || (lt && score >= old)) continue;
      performed = true;
      result = score;
      if (score != old) {
        if (!c.ok(z->put(member, stored_score(*z, member, false, score)))) return;
        ++updated;
      }
    } else {
      if (xx) continue;
      if (!c.ok(z->put(member, stored_score(*z, member, true, score)))) return;
      ++added;
      performed = true;
      result = score;
    }
  }
  if (!commit_collection(c, *z)) return;
  if (incr) {
    if (!performed) return c.out.null();
    return c.out.dbl(result);
  }
  c.out.integer(ch ? added + updated : added);
}
void cmd_zadd(CommandContext& c) {
  cmd_zadd_generic(c, false);
}

void cmd_zincrby(CommandContext& c) {
  auto incr = parse_score(c.argv[2]);
  if (!incr) return c.out.error(kNotFloat);
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto z = open_zset(c, key, *locked);
  if (!z) return;
  auto cur = score_of(*z, c.argv[3]);
  if (!c.ok(cur)) return;
  // A new member takes the increment itself (so -0 stays -0 in the reply).
  double score = cur->has_value() ? **cur + *incr : *incr;
  if (std::isnan(score)) return c.out.error(kNanResult);
  if (!cur->has_value() || **cur != score) {
    if (!c.ok(z->put(c.argv[3], stored_score(*z, c.argv[3], !cur->has_value(), score)))) {
      return;
    }
  }
  if (!commit_collection(c, *z)) return;
  c.out.dbl(score);
}

void cmd_zcard(CommandContext& c) {
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto z = open_zset_for_read(c, c.argv[1], *locked);
  if (!z) return;
  c.out.integer(static_cast<int64_t>(z->size()));
}

void cmd_zscore(CommandContext& c) {
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto z = open_zset_for_read(c, c.argv[1], *locked);
  if (!z) return;
  auto s = score_of(*z, c.argv[2]);
  if (!c.ok(s)) return;
  if (!s->has_value()) return c.out.null();
  c.out.dbl(**s);
}

void cmd_zmscore(CommandContext& c) {
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto z = open_zset_for_read(c, c.argv[1], *locked);
  if (!z) return;
  std::vector<std::optional<double>> scores;
  for (size_t i = 2; i < c.argv.size(); ++i) {
    auto s = score_of(*z, c.argv[i]);
    if (!c.ok(s)) return;
    scores.push_back(*s);
  }
  c.out.array(scores.size());
  for (const auto& s : scores) {
    if (s) {
      c.out.dbl(*s);
    } else {
      c.out.null();
    }
  }
}

void cmd_zrem(CommandContext& c) {
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto z = open_zset(c, key, *locked);
  if (!z) return;
  int64_t deleted = 0;
  for (size_t i = 2; i < c.argv.size() && z->size() > 0; ++i) {
    auto r = z->erase(c.argv[i]);
    if (!c.ok(r)) return;
    deleted += *r;
  }
  if (!commit_collection(c, *z)) return;
  c.out.integer(deleted);
}

}  // namespace

void add_zset_commands(std::vector<CommandSpec>& out) {
  const std::string_view g = "sorted-set";
  constexpr uint32_t kWF = kWrite | kDenyOom | kFast;
  constexpr uint32_t kRF = kReadonly | kFast;
  out.push_back({"zadd", -4, kWF, 1, 1, 1, g,
                 "Adds one or more members to a sorted set, or updates their scores. Creates the "
                 "key if it doesn't exist.",
                 "1.2.0",
                 "O(log(N)) for each item added, where N is the number of elements in the "
                 "sorted set.",
                 "key:key [condition:oneof(nx:pure-token xx:pure-token)] "
                 "[comparison:oneof(gt:pure-token lt:pure-token)] [change:pure-token] "
                 "[increment:pure-token] (data: score:double member:string)...",
                 cmd_zadd});
  out.push_back({"zincrby", 4, kWF, 1, 1, 1, g, "Increments the score of a member in a sorted set.",
                 "1.2.0", "O(log(N)) where N is the number of elements in the sorted set.",
                 "key:key increment:integer member:string", cmd_zincrby});
  out.push_back({"zcard", 2, kRF, 1, 1, 1, g, "Returns the number of members in a sorted set.",
                 "1.2.0", "O(1)", "key:key", cmd_zcard});
  out.push_back({"zscore", 3, kRF, 1, 1, 1, g, "Returns the score of a member in a sorted set.",
                 "1.2.0", "O(1)", "key:key member:string", cmd_zscore});
  out.push_back({"zmscore", -3, kRF, 1, 1, 1, g,
                 "Returns the score of one or more members in a sorted set.", "6.2.0",
                 "O(N) where N is the number of members being requested.",
                 "key:key member:string...", cmd_zmscore});
  out.push_back({"zrem", -3, kWrite | kFast, 1, 1, 1, g,
                 "Removes one or more members from a sorted set. Deletes the sorted set if all "
                 "members were removed.",
                 "1.2.0",
                 "O(M*log(N)) with N being the number of elements in the sorted set and M the "
                 "number of elements to be removed.",
                 "key:key member:string...", cmd_zrem});
}

}  // namespace statekv::server
