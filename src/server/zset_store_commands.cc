// Sorted-set commands over several keys (ZUNION, ZINTER, ZDIFF, their *STORE
// forms, ZINTERCARD), ZRANDMEMBER and ZSCAN — Redis 7.0 semantics.
//
// The set operations accept sets as sources (every member scores 1, as in
// Redis), lock every key they name (Store::lock orders the stripes) and commit
// the destination as one Mutation: it is replaced whatever it held, and an
// empty result deletes it. Their keys follow a numkeys argument (Redis's
// movablekeys): CommandSpec::numkeys_index tells key_positions() where, so the
// cluster router, transactions and tracking see every key.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/collection_command.h"
#include "server/glob.h"
#include "server/number.h"
#include "server/zset.h"

namespace statekv::server {
namespace {

using namespace zset;  // NOLINT: this file is sorted-set commands

constexpr int64_t kLongMax = std::numeric_limits<int64_t>::max();

enum class Op { kUnion, kInter, kDiff };
enum class Aggregate { kSum, kMin, kMax };

// One source of a set operation: a sorted set, a set (members score 1) or an
// absent key (empty).
struct Source {
  Collection coll;
  bool is_set = false;
  double weight = 1;
  uint64_t size() const { return coll.size(); }
};

// The score a source gives member, nullopt when absent.
Result<std::optional<double>> find(Source& src, std::string_view member) {
  if (!src.is_set) return score_of(src.coll, member);
  auto v = src.coll.get(member);
  if (!v.ok()) return v.status();
  if (!v->has_value()) return std::optional<double>();
  return std::optional<double>(1.0);
}

// Every (member, score) of a source, in the layout's order.
Result<std::vector<Scored>> members_of(Source& src) {
  std::vector<Scored> out;
  out.reserve(src.size());
  bool bad = false;
  Status s = src.coll.for_each([&](std::string_view m, std::string_view v) {
    double score = 1.0;
    if (!src.is_set) {
      auto d = decode_score(v);
      if (!d) {
        bad = true;
        return false;
      }
      score = *d;
    }
    out.push_back(Scored{score, std::string(m)});
    return true;
  });
  if (!s.ok()) return s;
  if (bad) return Status::Corruption("malformed sorted-set score");
  return out;
}

// Redis's zunionInterAggregate.
void aggregate(double* target, double value, Aggregate how) {
  switch (how) {
    case Aggregate::kSum:
      *target += value;
      if (std::isnan(*target)) *target = 0.0;  // inf + -inf
      break;
    case Aggregate::kMin:
      *target = value < *target ? value : *target;
      break;
    case Aggregate::kMax:
      *target = value > *target ? value : *target;
      break;
  }
}

// The parsed command: numkeys, its sources and options.
struct SetOpArgs {
  size_t first_source = 0;  // argv index of the first source key
  size_t numkeys = 0;
  std::vector<double> weights;
  Aggregate how = Aggregate::kSum;
  bool withscores = false;
  uint64_t limit = 0;  // ZINTERCARD (0: none)
};

// Redis's zunionInterDiffGenericCommand argument rules, in its order of
// checks: numkeys here, then the keys' types (the caller), then the options
// (parse_options). Each replies Redis's error and returns false.
bool parse_numkeys(CommandContext& c, size_t numkeys_index, SetOpArgs* a) {
  auto n = parse_int64(c.argv[numkeys_index]);
  if (!n) {
    c.out.error(kNotInteger);
    return false;
  }
  if (*n < 1) {
    c.out.error("ERR at least 1 input key is needed for '" + std::string(c.fullname) + "' command");
    return false;
  }
  if (*n > static_cast<int64_t>(c.argv.size() - numkeys_index - 1)) {
    c.out.error(kSyntaxError);
    return false;
  }
  a->numkeys = static_cast<size_t>(*n);
  a->first_source = numkeys_index + 1;
  a->weights.assign(a->numkeys, 1.0);
  return true;
}

bool parse_options(CommandContext& c, Op op, bool store, bool card_only, SetOpArgs* a) {
  size_t j = a->first_source + a->numkeys;
  while (j < c.argv.size()) {
    const size_t remaining = c.argv.size() - j;
    std::string_view opt = c.argv[j];
    if (op != Op::kDiff && !card_only && remaining >= a->numkeys + 1 && iequals(opt, "weights")) {
      ++j;
      for (size_t i = 0; i < a->numkeys; ++i, ++j) {
        auto w = parse_score(c.argv[j]);
        if (!w) {
          c.out.error("ERR weight value is not a float");
          return false;
        }
        a->weights[i] = *w;
      }
    } else if (op != Op::kDiff && !card_only && remaining >= 2 && iequals(opt, "aggregate")) {
      std::string_view how = c.argv[j + 1];
      if (iequals(how, "sum")) {
        a->how = Aggregate::kSum;
      } else if (iequals(how, "min")) {
        a->how = Aggregate::kMin;
      } else if (iequals(how, "max")) {
        a->how = Aggregate::kMax;
      } else {
        c.out.error(kSyntaxError);
        return false;
      }
      j += 2;
    } else if (!store && !card_only && iequals(opt, "withscores")) {
      a->withscores = true;
      ++j;
    } else if (card_only && remaining >= 2 && iequals(opt, "limit")) {
      auto l = parse_int64(c.argv[j + 1]);
      if (!l || *l < 0) {
        c.out.error("ERR LIMIT can't be negative");
        return false;
      }
      a->limit = static_cast<uint64_t>(*l);
      j += 2;
    } else {
      c.out.error(kSyntaxError);
      return false;
    }
  }
  return true;
}

// ZUNION / ZINTER / ZDIFF / ZINTERCARD and the *STORE forms. store: argv[1]
// is the destination and numkeys is argv[2]; otherwise numkeys is argv[1].
void set_op_generic(CommandContext& c, Op op, bool store, bool card_only = false) {
  SetOpArgs a;
  if (!parse_numkeys(c, store ? 2 : 1, &a)) return;
  std::vector<std::string_view> keys(
      c.argv.begin() + static_cast<ptrdiff_t>(a.first_source),
      c.argv.begin() + static_cast<ptrdiff_t>(a.first_source + a.numkeys));
  if (store) keys.push_back(c.argv[1]);
  auto guard = c.store().lock(keys);
  std::string& buf = read_buffer();
  RecordView rec;
  Store::Meta dst_meta;
  if (store && !c.read_locked(c.argv[1], &buf, &rec, &dst_meta)) return;
  std::vector<Source> sources;
  sources.reserve(a.numkeys);
  for (size_t i = 0; i < a.numkeys; ++i) {
    std::string_view key = c.argv[a.first_source + i];
    Store::Meta meta;
    auto live = c.read_locked(key, &buf, &rec, &meta);
    if (!live) return;
    const bool is_set = *live && rec.type == ValueType::kSet;
    auto coll =
        open_collection(c, key, *live, rec, meta, is_set ? ValueType::kSet : ValueType::kZset);
    if (!coll) return;
    sources.push_back(Source{std::move(*coll), is_set, 1.0});
  }
  if (!parse_options(c, op, store, card_only, &a)) return;
  for (size_t i = 0; i < sources.size(); ++i) sources[i].weight = a.weights[i];
  // Smallest first (Redis sorts its sources by size, stably: glibc's qsort
  // merges); a difference keeps its first source first.
  if (op != Op::kDiff) {
    std::stable_sort(sources.begin(), sources.end(),
                     [](const Source& x, const Source& y) { return x.size() < y.size(); });
  }

  std::vector<Scored> result;
  uint64_t cardinality = 0;
  if (op == Op::kUnion) {
    std::unordered_map<std::string, double> acc;
    std::vector<std::string> order;
    for (Source& src : sources) {
      auto items = members_of(src);
      if (!c.ok(items)) return;
      for (auto& e : *items) {
        double score = src.weight * e.score;
        if (std::isnan(score)) score = 0;
        auto [it, fresh] = acc.try_emplace(e.member, score);
        if (!fresh) aggregate(&it->second, score, a.how);
      }
    }
    result.reserve(acc.size());
    for (auto& [m, s] : acc) result.push_back(Scored{s, m});
  } else if (!sources.empty() && sources[0].size() > 0) {
    auto first = members_of(sources[0]);
    if (!c.ok(first)) return;
    for (auto& e : *first) {
      double score = op == Op::kInter ? sources[0].weight * e.score : e.score;
      if (std::isnan(score)) score = 0;
      bool keep = true;
      for (size_t j = 1; j < sources.size(); ++j) {
        auto found = find(sources[j], e.member);
        if (!c.ok(found)) return;
        if (op == Op::kDiff) {
          if (found->has_value()) {
            keep = false;
            break;
          }
          continue;
        }
        if (!found->has_value()) {
          keep = false;
          break;
        }
        aggregate(&score, **found * sources[j].weight, a.how);
      }
      if (!keep) continue;
      if (card_only) {
        ++cardinality;
        if (a.limit != 0 && cardinality >= a.limit) break;
        continue;
      }
      result.push_back(Scored{score, std::move(e.member)});
    }
  }
  if (card_only) return c.out.integer(static_cast<int64_t>(cardinality));
  if (store) return store_result(c, c.argv[1], dst_meta, result);
  std::sort(result.begin(), result.end(), score_order);
  reply_members(c, result, a.withscores);
}

void cmd_zunion(CommandContext& c) {
  set_op_generic(c, Op::kUnion, false);
}
void cmd_zinter(CommandContext& c) {
  set_op_generic(c, Op::kInter, false);
}
void cmd_zdiff(CommandContext& c) {
  set_op_generic(c, Op::kDiff, false);
}
void cmd_zunionstore(CommandContext& c) {
  set_op_generic(c, Op::kUnion, true);
}
void cmd_zinterstore(CommandContext& c) {
  set_op_generic(c, Op::kInter, true);
}
void cmd_zdiffstore(CommandContext& c) {
  set_op_generic(c, Op::kDiff, true);
}
void cmd_zintercard(CommandContext& c) {
  set_op_generic(c, Op::kInter, false, /*card_only=*/true);
}

Result<Scored> to_scored(Collection::Element e) {
  auto d = decode_score(e.second);
  if (!d) return Status::Corruption("malformed sorted-set score");
  return Scored{*d, std::move(e.first)};
}

// ZRANDMEMBER key [count [WITHSCORES]]
void cmd_zrandmember(CommandContext& c) {
  Random& rng = command_random();
  std::string_view key = c.argv[1];
  if (c.argv.size() == 2) {
    auto locked = lock_and_read(c, key);
    if (!locked) return;
    c.count_lookup(locked->live);
    auto z = open_collection(c, key, *locked, ValueType::kZset);
    if (!z) return;
    if (z->size() == 0) return c.out.null();
    auto e = z->random_one(rng);
    if (!c.ok(e)) return;
    return c.out.bulk(e->first);
  }
  auto l = parse_int64(c.argv[2]);
  if (!l) return c.out.error(kNotInteger);
  if (*l < -kLongMax) {
    return c.out.error(
        "ERR value is out of range, value must between -9223372036854775807 and "
        "9223372036854775807");
  }
  bool withscores = false;
  if (c.argv.size() > 4 || (c.argv.size() == 4 && !iequals(c.argv[3], "withscores"))) {
    return c.out.error(kSyntaxError);
  }
  if (c.argv.size() == 4) {
    withscores = true;
    if (*l < -kLongMax / 2 || *l > kLongMax / 2) return c.out.error("ERR value is out of range");
  }
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  c.count_lookup(locked->live);
  auto z = open_collection(c, key, *locked, ValueType::kZset);
  if (!z) return;
  const bool unique = *l >= 0;
  const uint64_t count = unique ? static_cast<uint64_t>(*l) : static_cast<uint64_t>(-*l);
  if (z->size() == 0 || count == 0) return c.out.array(0);
  std::vector<Scored> picked;
  if (!unique || count == 1) {
    // With repetitions, in random order.
    if (count > kMaxRandomReply) return c.out.error(kRandomReplyTooLarge);
    for (uint64_t i = 0; i < count; ++i) {
      auto e = z->random_one(rng);
      if (!c.ok(e)) return;
      auto s = to_scored(std::move(*e));
      if (!c.ok(s)) return;
      picked.push_back(std::move(*s));
    }
  } else if (count >= z->size()) {
    // The whole sorted set, highest first (as Redis 7.0 replies it).
    auto all = sorted_members(*z);
    if (!c.ok(all)) return;
    picked.assign(std::make_move_iterator(all->rbegin()), std::make_move_iterator(all->rend()));
  } else {
    auto r = z->random_distinct(count, rng);
    if (!c.ok(r)) return;
    for (auto& e : *r) {
      auto s = to_scored(std::move(e));
      if (!c.ok(s)) return;
      picked.push_back(std::move(*s));
    }
  }
  reply_members(c, picked, withscores);
}

// ZSCAN key cursor [MATCH pattern] [COUNT count]: member, score pairs (the
// score as Redis prints it in a bulk string); a listpack in one page, in its
// (score) order, as Redis.
void cmd_zscan(CommandContext& c) {
  auto cursor = parse_cursor(c.argv[2]);
  if (!cursor) return c.out.error("ERR invalid cursor");
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  c.count_lookup(locked->live);
  auto z = open_collection(c, c.argv[1], *locked, ValueType::kZset);
  if (!z) return;
  if (!locked->live) {
    c.out.array(2);
    c.out.bulk("0");
    return c.out.array(0);
  }
  ElementScanOptions options;
  if (!parse_element_scan_options(c, c.argv.subspan(3), &options)) return;
  std::vector<Scored> items;
  uint64_t next = 0;
  bool bad = false;
  Status st = z->scan(
      *cursor, options.count,
      [&](std::string_view m, std::string_view v) {
        if (options.use_pattern && !glob_match(options.pattern, m)) return true;
        auto d = decode_score(v);
        if (!d) {
          bad = true;
          return false;
        }
        items.push_back(Scored{*d, std::string(m)});
        return true;
      },
      &next);
  if (!c.ok(st)) return;
  if (bad) return c.fail(Status::Corruption("malformed sorted-set score"));
  if (z->encoding() != Encoding::kElements) std::sort(items.begin(), items.end(), score_order);
  c.out.array(2);
  c.out.bulk(std::to_string(next));
  c.out.array(items.size() * 2);
  for (const auto& e : items) {
    c.out.bulk(e.member);
    c.out.bulk(format_score(e.score));
  }
}

}  // namespace

void add_zset_store_commands(std::vector<CommandSpec>& out) {
  const std::string_view g = "sorted-set";
  const std::string_view union_complexity =
      "O(N)+O(M*log(M)) with N being the sum of the sizes of the input sorted sets, and M being "
      "the number of elements in the resulting sorted set.";
  const std::string_view inter_complexity =
      "O(N*K)+O(M*log(M)) worst case with N being the smallest input sorted set, K being the "
      "number of input sorted sets and M being the number of elements in the resulting sorted "
      "set.";
  const std::string_view diff_complexity =
      "O(L + (N-K)log(N)) worst case where L is the total number of elements in all the sets, N "
      "is the size of the first set, and K is the size of the result set.";
  const std::string_view weights_args =
      "[WEIGHTS=weight:integer...] [AGGREGATE=aggregate:oneof(sum:pure-token min:pure-token "
      "max:pure-token)]";
  auto store_args = [&](bool weights) {
    return std::string("destination:key numkeys:integer key:key...") +
           (weights ? " " + std::string(weights_args) : "");
  };
  // The argument strings must outlive the table: keep them in statics.
  static const std::string union_store_args = store_args(true);
  static const std::string diff_store_args = store_args(false);
  static const std::string read_args =
      "numkeys:integer key:key... " + std::string(weights_args) + " [withscores:pure-token]";
  constexpr uint32_t kWD = kWrite | kDenyOom;

  out.push_back({"zunionstore", -4, kWD, 1, 1, 1, g,
                 "Stores the union of multiple sorted sets in a key.", "2.0.0", union_complexity,
                 union_store_args, cmd_zunionstore});
  out.back().numkeys_index = 2;
  out.push_back({"zinterstore", -4, kWD, 1, 1, 1, g,
                 "Stores the intersect of multiple sorted sets in a key.", "2.0.0",
                 inter_complexity, union_store_args, cmd_zinterstore});
  out.back().numkeys_index = 2;
  out.push_back({"zdiffstore", -4, kWD, 1, 1, 1, g,
                 "Stores the difference of multiple sorted sets in a key.", "6.2.0",
                 "O(L + (N-K)log(N)) worst case where L is the total number of elements in all "
                 "the sets, N is the size of the first set, and K is the size of the result set.",
                 diff_store_args, cmd_zdiffstore});
  out.back().numkeys_index = 2;
  out.push_back({"zunion", -3, kReadonly, 0, 0, 0, g, "Returns the union of multiple sorted sets.",
                 "6.2.0", union_complexity, read_args, cmd_zunion});
  out.back().numkeys_index = 1;
  out.push_back({"zinter", -3, kReadonly, 0, 0, 0, g,
                 "Returns the intersect of multiple sorted sets.", "6.2.0", inter_complexity,
                 read_args, cmd_zinter});
  out.back().numkeys_index = 1;
  out.push_back({"zdiff", -3, kReadonly, 0, 0, 0, g,
                 "Returns the difference between multiple sorted sets.", "6.2.0", diff_complexity,
                 "numkeys:integer key:key... [withscores:pure-token]", cmd_zdiff});
  out.back().numkeys_index = 1;
  out.push_back({"zintercard", -3, kReadonly, 0, 0, 0, g,
                 "Returns the number of members of the intersect of multiple sorted sets.", "7.0.0",
                 "O(N*K) worst case with N being the smallest input sorted set, K being the "
                 "number of input sorted sets.",
                 "numkeys:integer key:key... [LIMIT=limit:integer]", cmd_zintercard});
  out.back().numkeys_index = 1;
  out.push_back({"zrandmember", -2, kReadonly, 1, 1, 1, g,
                 "Returns one or more random members from a sorted set.", "6.2.0",
                 "O(N) where N is the number of members returned",
                 "key:key [options:block(count:integer [withscores:pure-token])]",
                 cmd_zrandmember});
  out.back().tips = "nondeterministic_output";
  out.push_back({"zscan", -3, kReadonly, 1, 1, 1, g,
                 "Iterates over members and scores of a sorted set.", "2.8.0",
                 "O(1) for every call. O(N) for a complete iteration, including enough command "
                 "calls for the cursor to return back to 0. N is the number of elements inside "
                 "the collection.",
                 "key:key cursor:integer [MATCH=pattern:pattern] [COUNT=count:integer]",
                 cmd_zscan});
  out.back().tips = "nondeterministic_output";
}

}  // namespace statekv::server
