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
#include "server/zset.h"

namespace statekv::server {
namespace {

using namespace zset;  // NOLINT: this file is the sorted-set commands

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
        if (!c.ok(z->put_after_get(member, stored_score(*z, member, false, score), true))) return;
        ++updated;
      }
    } else {
      if (xx) continue;
      if (!c.ok(z->put_after_get(member, stored_score(*z, member, true, score), false))) return;
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
    if (!c.ok(z->put_after_get(c.argv[3], stored_score(*z, c.argv[3], !cur->has_value(), score),
                               cur->has_value()))) {
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

// ZRANGE and its older forms, and ZRANGESTORE (store: argv[1] is the
// destination, WITHSCORES is not an option). fixed_by / fixed_rev: the form's
// own range type and direction (nullopt: ZRANGE, read from the options).
void zrange_generic(CommandContext& c, std::optional<By> fixed_by, bool fixed_rev,
                    bool store = false) {
  const size_t src = store ? 2 : 1;
  RangeSpec spec;
  spec.rev = fixed_rev;
  bool by_given = fixed_by.has_value();
  spec.by = fixed_by.value_or(By::kRank);
  bool withscores = false;
  bool limit_given = false;
  for (size_t j = src + 3; j < c.argv.size(); ++j) {
    const size_t left = c.argv.size() - j - 1;
    std::string_view a = c.argv[j];
    if (!store && iequals(a, "withscores")) {
      withscores = true;
    } else if (iequals(a, "limit") && left >= 2) {
      auto offset = parse_int64(c.argv[j + 1]);
      if (!offset) return c.out.error(kNotInteger);
      auto limit = parse_int64(c.argv[j + 2]);
      if (!limit) return c.out.error(kNotInteger);
      spec.offset = *offset;
      spec.limit = *limit;
      limit_given = true;
      j += 2;
    } else if (!fixed_by && !spec.rev && iequals(a, "rev")) {
      spec.rev = true;
    } else if (!by_given && iequals(a, "bylex")) {
      spec.by = By::kLex;
      by_given = true;
    } else if (!by_given && iequals(a, "byscore")) {
      spec.by = By::kScore;
      by_given = true;
    } else {
      return c.out.error(kSyntaxError);
    }
  }
  if (limit_given && spec.by == By::kRank) {
    return c.out.error(
        "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
  }
  if (withscores && spec.by == By::kLex) {
    return c.out.error("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
  }
  std::string_view lo = c.argv[src + 1];
  std::string_view hi = c.argv[src + 2];
  // Reversed score and lex ranges name the maximum first.
  if (spec.rev && spec.by != By::kRank) std::swap(lo, hi);
  switch (spec.by) {
    case By::kRank: {
      auto start = parse_int64(lo);
      auto end = parse_int64(hi);
      if (!start || !end) return c.out.error(kNotInteger);
      spec.start = *start;
      spec.end = *end;
      break;
    }
    case By::kScore:
      if (!parse_score_range(lo, hi, &spec.score)) return c.out.error(kMinMaxNotFloat);
      break;
    case By::kLex:
      if (!parse_lex_range(lo, hi, &spec.lex)) return c.out.error(kMinMaxNotLex);
      break;
  }
  if (!store) {
    auto locked = lock_and_read(c, c.argv[1]);
    if (!locked) return;
    auto z = open_zset_for_read(c, c.argv[1], *locked);
    if (!z) return;
    auto items = range_of(*z, spec);
    if (!c.ok(items)) return;
    return reply_members(c, *items, withscores);
  }
  // ZRANGESTORE: the destination is replaced whatever it holds.
  std::string_view keys[2] = {c.argv[1], c.argv[2]};
  auto guard = c.store().lock(keys);
  std::string& buf = read_buffer();
  RecordView rec;
  Store::Meta dst_meta;
  if (!c.read_locked(c.argv[1], &buf, &rec, &dst_meta)) return;
  Store::Meta src_meta;
  auto live = c.read_locked(c.argv[2], &buf, &rec, &src_meta);
  if (!live) return;
  auto z = open_collection(c, c.argv[2], *live, rec, src_meta, ValueType::kZset);
  if (!z) return;
  auto items = range_of(*z, spec);
  if (!c.ok(items)) return;
  store_result(c, c.argv[1], dst_meta, *items);
}
void cmd_zrange(CommandContext& c) {
  zrange_generic(c, std::nullopt, false);
}
void cmd_zrangestore(CommandContext& c) {
  zrange_generic(c, std::nullopt, false, /*store=*/true);
}
void cmd_zrevrange(CommandContext& c) {
  zrange_generic(c, By::kRank, true);
}
void cmd_zrangebyscore(CommandContext& c) {
  zrange_generic(c, By::kScore, false);
}
void cmd_zrevrangebyscore(CommandContext& c) {
  zrange_generic(c, By::kScore, true);
}
void cmd_zrangebylex(CommandContext& c) {
  zrange_generic(c, By::kLex, false);
}
void cmd_zrevrangebylex(CommandContext& c) {
  zrange_generic(c, By::kLex, true);
}

void zrank_generic(CommandContext& c, bool rev) {
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto z = open_zset_for_read(c, c.argv[1], *locked);
  if (!z) return;
  auto score = score_of(*z, c.argv[2]);
  if (!c.ok(score)) return;
  if (!score->has_value()) return c.out.null();
  auto rank = rank_of(*z, c.argv[2], **score);
  if (!c.ok(rank)) return;
  const int64_t r = static_cast<int64_t>(*rank);
  c.out.integer(rev ? static_cast<int64_t>(z->size()) - 1 - r : r);
}
void cmd_zrank(CommandContext& c) {
  zrank_generic(c, false);
}
void cmd_zrevrank(CommandContext& c) {
  zrank_generic(c, true);
}

void zcount_generic(CommandContext& c, By by) {
  RangeSpec spec;
  spec.by = by;
  if (by == By::kScore && !parse_score_range(c.argv[2], c.argv[3], &spec.score)) {
    return c.out.error(kMinMaxNotFloat);
  }
  if (by == By::kLex && !parse_lex_range(c.argv[2], c.argv[3], &spec.lex)) {
    return c.out.error(kMinMaxNotLex);
  }
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto z = open_zset_for_read(c, c.argv[1], *locked);
  if (!z) return;
  auto items = range_of(*z, spec);
  if (!c.ok(items)) return;
  c.out.integer(static_cast<int64_t>(items->size()));
}
void cmd_zcount(CommandContext& c) {
  zcount_generic(c, By::kScore);
}
void cmd_zlexcount(CommandContext& c) {
  zcount_generic(c, By::kLex);
}

// ZPOPMIN / ZPOPMAX key [count]
void zpop_generic(CommandContext& c, bool max) {
  if (c.argv.size() > 3) return c.out.error(kSyntaxError);
  int64_t count = 1;
  const bool count_given = c.argv.size() == 3;
  if (count_given) {
    auto n = parse_int64(c.argv[2]);
    if (!n || *n < 0) return c.out.error("ERR value is out of range, must be positive");
    count = *n;
  }
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto z = open_zset(c, key, *locked);
  if (!z) return;
  if (!locked->live) return c.out.array(0);
  std::vector<Scored> popped;
  if (count > 0) {
    // The lowest (highest) count members: ranks 0..count-1 from that end.
    RangeSpec spec;
    spec.rev = max;
    spec.start = 0;
    spec.end = count - 1;
    auto items = range_of(*z, spec);
    if (!c.ok(items)) return;
    for (auto& e : *items) {
      if (!c.ok(z->erase(e.member))) return;
      popped.push_back(std::move(e));
    }
  }
  if (!commit_collection(c, *z)) return;
  if (count_given && c.out.protocol() == 3) return reply_members(c, popped, true);
  c.out.array(popped.size() * 2);
  for (const auto& e : popped) {
    c.out.bulk(e.member);
    c.out.dbl(e.score);
  }
}
void cmd_zpopmin(CommandContext& c) {
  zpop_generic(c, false);
}
void cmd_zpopmax(CommandContext& c) {
  zpop_generic(c, true);
}

// ZREMRANGEBYRANK / BYSCORE / BYLEX key a b
void zremrange_generic(CommandContext& c, By by) {
  RangeSpec spec;
  spec.by = by;
  if (by == By::kRank) {
    auto start = parse_int64(c.argv[2]);
    auto end = parse_int64(c.argv[3]);
    if (!start || !end) return c.out.error(kNotInteger);
    spec.start = *start;
    spec.end = *end;
  } else if (by == By::kScore) {
    if (!parse_score_range(c.argv[2], c.argv[3], &spec.score)) return c.out.error(kMinMaxNotFloat);
  } else if (!parse_lex_range(c.argv[2], c.argv[3], &spec.lex)) {
    return c.out.error(kMinMaxNotLex);
  }
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto z = open_zset(c, key, *locked);
  if (!z) return;
  auto items = range_of(*z, spec);
  if (!c.ok(items)) return;
  const auto& gone = *items;
  for (const auto& e : gone) {
    if (!c.ok(z->erase(e.member))) return;
  }
  if (!commit_collection(c, *z)) return;
  c.out.integer(static_cast<int64_t>(gone.size()));
}
void cmd_zremrangebyrank(CommandContext& c) {
  zremrange_generic(c, By::kRank);
}
void cmd_zremrangebyscore(CommandContext& c) {
  zremrange_generic(c, By::kScore);
}
void cmd_zremrangebylex(CommandContext& c) {
  zremrange_generic(c, By::kLex);
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
  const std::string_view range_complexity =
      "O(log(N)+M) with N being the number of elements in the sorted set and M the number of "
      "elements returned.";
  out.push_back({"zrange", -4, kReadonly, 1, 1, 1, g,
                 "Returns members in a sorted set within a range of indexes.", "1.2.0",
                 range_complexity,
                 "key:key start:string stop:string [sortby:oneof(byscore:pure-token "
                 "bylex:pure-token)] [rev:pure-token] [limit:block(offset:integer count:integer)] "
                 "[withscores:pure-token]",
                 cmd_zrange});
  out.push_back({"zrangestore", -5, kWrite | kDenyOom, 1, 2, 1, g,
                 "Stores a range of members from sorted set in a key.", "6.2.0",
                 "O(log(N)+M) with N being the number of elements in the sorted set and M the "
                 "number of elements stored into the destination key.",
                 "dst:key src:key min:string max:string [sortby:oneof(byscore:pure-token "
                 "bylex:pure-token)] [rev:pure-token] [limit:block(offset:integer count:integer)]",
                 cmd_zrangestore});
  out.push_back({"zrangebyscore", -4, kReadonly, 1, 1, 1, g,
                 "Returns members in a sorted set within a range of scores.", "1.0.5",
                 range_complexity,
                 "key:key min:double max:double [withscores:pure-token] "
                 "[limit:block(offset:integer count:integer)]",
                 cmd_zrangebyscore});
  out.push_back({"zrevrangebyscore", -4, kReadonly, 1, 1, 1, g,
                 "Returns members in a sorted set within a range of scores in reverse order.",
                 "2.2.0", range_complexity,
                 "key:key max:double min:double [withscores:pure-token] "
                 "[limit:block(offset:integer count:integer)]",
                 cmd_zrevrangebyscore});
  out.push_back({"zrevrange", -4, kReadonly, 1, 1, 1, g,
                 "Returns members in a sorted set within a range of indexes in reverse order.",
                 "1.2.0", range_complexity,
                 "key:key start:integer stop:integer [withscores:pure-token]", cmd_zrevrange});
  out.push_back({"zrangebylex", -4, kReadonly, 1, 1, 1, g,
                 "Returns members in a sorted set within a lexicographical range.", "2.8.9",
                 range_complexity,
                 "key:key min:string max:string [limit:block(offset:integer count:integer)]",
                 cmd_zrangebylex});
  out.push_back({"zrevrangebylex", -4, kReadonly, 1, 1, 1, g,
                 "Returns members in a sorted set within a lexicographical range in reverse "
                 "order.",
                 "2.8.9", range_complexity,
                 "key:key max:string min:string [limit:block(offset:integer count:integer)]",
                 cmd_zrevrangebylex});
  out.push_back({"zrank", 3, kRF, 1, 1, 1, g,
                 "Returns the index of a member in a sorted set ordered by ascending scores.",
                 "2.0.0", "O(log(N))", "key:key member:string", cmd_zrank});
  out.push_back({"zrevrank", 3, kRF, 1, 1, 1, g,
                 "Returns the index of a member in a sorted set ordered by descending scores.",
                 "2.0.0", "O(log(N))", "key:key member:string", cmd_zrevrank});
  out.push_back({"zcount", 4, kRF, 1, 1, 1, g,
                 "Returns the count of members in a sorted set that have scores within a range.",
                 "2.0.0", "O(log(N)) with N being the number of elements in the sorted set.",
                 "key:key min:double max:double", cmd_zcount});
  out.push_back({"zlexcount", 4, kRF, 1, 1, 1, g,
                 "Returns the number of members in a sorted set within a lexicographical range.",
                 "2.8.9", "O(log(N)) with N being the number of elements in the sorted set.",
                 "key:key min:string max:string", cmd_zlexcount});
  out.push_back({"zpopmin", -2, kWrite | kFast, 1, 1, 1, g,
                 "Returns the lowest-scoring members from a sorted set after removing them. "
                 "Deletes the sorted set if the last member was popped.",
                 "5.0.0",
                 "O(log(N)*M) with N being the number of elements in the sorted set, and M being "
                 "the number of elements popped.",
                 "key:key [count:integer]", cmd_zpopmin});
  out.push_back({"zpopmax", -2, kWrite | kFast, 1, 1, 1, g,
                 "Returns the highest-scoring members from a sorted set after removing them. "
                 "Deletes the sorted set if the last member was popped.",
                 "5.0.0",
                 "O(log(N)*M) with N being the number of elements in the sorted set, and M being "
                 "the number of elements popped.",
                 "key:key [count:integer]", cmd_zpopmax});
  const std::string_view remrange_complexity =
      "O(log(N)+M) with N being the number of elements in the sorted set and M the number of "
      "elements removed by the operation.";
  out.push_back({"zremrangebyrank", 4, kWrite, 1, 1, 1, g,
                 "Removes members in a sorted set within a range of indexes. Deletes the sorted "
                 "set if all members were removed.",
                 "2.0.0", remrange_complexity, "key:key start:integer stop:integer",
                 cmd_zremrangebyrank});
  out.push_back({"zremrangebyscore", 4, kWrite, 1, 1, 1, g,
                 "Removes members in a sorted set within a range of scores. Deletes the sorted "
                 "set if all members were removed.",
                 "1.2.0", remrange_complexity, "key:key min:double max:double",
                 cmd_zremrangebyscore});
  out.push_back({"zremrangebylex", 4, kWrite, 1, 1, 1, g,
                 "Removes members in a sorted set within a lexicographical range. Deletes the "
                 "sorted set if all members were removed.",
                 "2.8.9", remrange_complexity, "key:key min:string max:string",
                 cmd_zremrangebylex});
}

}  // namespace statekv::server
