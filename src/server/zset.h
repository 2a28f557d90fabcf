// What the sorted-set commands share (zset_commands.cc, zset_store_commands.cc):
// the score's stored form, Redis's parsing of scores and ranges, the
// (score, member) order and selecting a range in it, and the reply shapes.
//
// A member's value in a sorted set (compact or element layout) is its score
// as the IEEE-754 double's 8 bytes, big-endian.
//
// Pure functions over values, except those taking a Collection (sorted_members,
// stored_score, score_of, range_of, rank_of, store_result), which read (and
// store_result commits) a key the caller holds the lock of.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "server/collection.h"
#include "server/command.h"

namespace statekv::server::zset {

inline constexpr std::string_view kNanResult = "ERR resulting score is not a number (NaN)";
inline constexpr std::string_view kMinMaxNotFloat = "ERR min or max is not a float";
inline constexpr std::string_view kMinMaxNotLex = "ERR min or max not valid string range item";

std::string encode_score(double score);
std::optional<double> decode_score(std::string_view v);
// Redis's string2d: strtod over the whole text, no leading space, no NaN, no
// overflow.
std::optional<double> parse_score(std::string_view text);
// The text Redis gives a score inside a bulk string (ZSCAN): "%.17g", inf, -inf.
std::string format_score(double score);

struct Scored {
  double score;
  std::string member;
};
// Redis's skiplist order: by score, then by member bytes.
bool score_order(const Scored& a, const Scored& b);
// Every member of z in (score, member) order.
Result<std::vector<Scored>> sorted_members(Collection& z);
// The stored form of score for member in z. A listpack stores a zero score as
// the integer 0 (Redis reads -0 back as 0); the skiplist keeps the double.
std::string stored_score(const Collection& z, std::string_view member, bool is_new, double score);
Result<std::optional<double>> score_of(Collection& z, std::string_view member);

// A score range: "(x" excludes x; "inf", "-inf" as strtod reads them.
struct ScoreRange {
  double min = 0, max = 0;
  bool minex = false, maxex = false;
  bool contains(double d) const {
    return (minex ? d > min : d >= min) && (maxex ? d < max : d <= max);
  }
};
bool parse_score_range(std::string_view min, std::string_view max, ScoreRange* r);

// A lex range: "-" and "+" are the ends, "[x" includes x, "(x" excludes it.
struct LexRange {
  enum Kind { kLowest, kHighest, kValue };
  Kind min_kind = kValue, max_kind = kValue;
  std::string min, max;
  bool minex = false, maxex = false;
  bool contains(std::string_view m) const {
    bool above = min_kind == kLowest ||
                 (min_kind == kValue && (minex ? m > std::string_view(min) : m >= min));
    bool below = max_kind == kHighest ||
                 (max_kind == kValue && (maxex ? m < std::string_view(max) : m <= max));
    return above && below;
  }
};
bool parse_lex_range(std::string_view min, std::string_view max, LexRange* r);

// Redis's rank normalisation: negative ranks count from the end; false when
// the range is empty. *first, *last are then valid indexes.
bool clamp_ranks(int64_t start, int64_t end, int64_t size, int64_t* first, int64_t* last);

enum class By { kRank, kScore, kLex };

struct RangeSpec {
  By by = By::kRank;
  bool rev = false;
  int64_t start = 0, end = 0;  // kRank
  ScoreRange score;
  LexRange lex;
  int64_t offset = 0;
  int64_t limit = -1;  // negative: no limit
};

// The members spec selects out of all (in (score, member) order), in reply order.
std::vector<Scored> select_range(std::vector<Scored> all, const RangeSpec& spec);

// The members spec selects out of z, in reply order: through z's score index
// (record.h) when it has one, in O(log n + k) where k is what the range skips
// and returns (a rank range is walked from its nearer end); otherwise by
// reading and sorting every member (a listpack, at most 128 of them, or a
// sorted set written before the index existed).
Result<std::vector<Scored>> range_of(Collection& z, const RangeSpec& spec);
// The 0-based rank of member (with its score) in ascending order.
Result<uint64_t> rank_of(Collection& z, std::string_view member, double score);

// Members, with their scores when asked: RESP2 one flat array, RESP3 an array
// of [member, score] pairs (Redis's shape for ZRANGE, ZUNION, ZRANDMEMBER).
void reply_members(CommandContext& c, const std::vector<Scored>& items, bool withscores);

// Replaces dst (whatever it holds) with a sorted set of items, each member at
// most once, and replies its size; an empty result deletes dst (the *STORE
// commands). dst_meta: what dst holds, read under its lock.
void store_result(CommandContext& c, std::string_view dst, const Store::Meta& dst_meta,
                  const std::vector<Scored>& items);

}  // namespace statekv::server::zset
