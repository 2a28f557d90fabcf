#include "server/zset.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "server/collection_command.h"

namespace statekv::server::zset {
namespace {

// Redis's zslParseRange item: strtod (which reads "" as 0), no NaN.
bool parse_range_item(std::string_view text, double* out, bool* exclusive) {
  *exclusive = !text.empty() && text[0] == '(';
  if (*exclusive) text.remove_prefix(1);
  std::string buf(text);
  char* end = nullptr;
  double d = std::strtod(buf.c_str(), &end);
  if (*end != '\0' || std::isnan(d)) return false;
  *out = d;
  return true;
}

bool parse_lex_item(std::string_view text, LexRange::Kind* kind, std::string* value,
                    bool* exclusive) {
  if (text == "+") {
    *kind = LexRange::kHighest;
    return true;
  }
  if (text == "-") {
    *kind = LexRange::kLowest;
    return true;
  }
  if (text.empty() || (text[0] != '(' && text[0] != '[')) return false;
  *kind = LexRange::kValue;
  *exclusive = text[0] == '(';
  *value = std::string(text.substr(1));
  return true;
}

}  // namespace

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

bool parse_score_range(std::string_view min, std::string_view max, ScoreRange* r) {
  return parse_range_item(min, &r->min, &r->minex) && parse_range_item(max, &r->max, &r->maxex);
}

bool parse_lex_range(std::string_view min, std::string_view max, LexRange* r) {
  return parse_lex_item(min, &r->min_kind, &r->min, &r->minex) &&
         parse_lex_item(max, &r->max_kind, &r->max, &r->maxex);
}

// Redis's rank normalisation: negative ranks count from the end; false when
// the range is empty. *first, *last are then valid indexes.
bool clamp_ranks(int64_t start, int64_t end, int64_t size, int64_t* first, int64_t* last) {
  if (start < 0) start += size;
  if (end < 0) end += size;
  if (start < 0) start = 0;
  if (start > end || start >= size) return false;
  if (end >= size) end = size - 1;
  *first = start;
  *last = end;
  return true;
}

// The members spec selects, in reply order.
std::vector<Scored> select_range(std::vector<Scored> all, const RangeSpec& spec) {
  if (spec.rev) std::reverse(all.begin(), all.end());
  std::vector<Scored> out;
  if (spec.by == By::kRank) {
    int64_t first = 0, last = 0;
    if (!clamp_ranks(spec.start, spec.end, static_cast<int64_t>(all.size()), &first, &last)) {
      return out;
    }
    for (int64_t i = first; i <= last; ++i) out.push_back(std::move(all[static_cast<size_t>(i)]));
    return out;
  }
  // LIMIT: a negative offset skips everything (Redis counts it down to zero).
  if (spec.offset < 0) return out;
  int64_t skip = spec.offset;
  int64_t left = spec.limit;
  for (auto& e : all) {
    const bool in =
        spec.by == By::kScore ? spec.score.contains(e.score) : spec.lex.contains(e.member);
    if (!in) continue;
    if (skip > 0) {
      --skip;
      continue;
    }
    if (left == 0) break;
    if (left > 0) --left;
    out.push_back(std::move(e));
  }
  return out;
}

void reply_members(CommandContext& c, const std::vector<Scored>& items, bool withscores) {
  if (withscores && c.out.protocol() == 3) {
    c.out.array(items.size());
    for (const auto& e : items) {
      c.out.array(2);
      c.out.bulk(e.member);
      c.out.dbl(e.score);
    }
    return;
  }
  c.out.array(items.size() * (withscores ? 2 : 1));
  for (const auto& e : items) {
    c.out.bulk(e.member);
    if (withscores) c.out.dbl(e.score);
  }
}

namespace {

bool has_index(const Collection& z) {
  return z.encoding() == Encoding::kElements && score_indexed(z.generation());
}

// The index-key form of order bits (record.h, append_score_order).
std::string ord(uint64_t bits) {
  std::string out;
  append_score_order(bits, &out);
  return out;
}

// Index entries from..to (ord(order bits) [+ member] bounds), ascending or
// descending; the first `skip` are passed over, then at most `take` (< 0: all)
// are appended to *out.
Status walk(Collection& z, std::string_view from, std::string_view to, bool reverse, uint64_t skip,
            int64_t take, std::vector<Scored>* out) {
  if (take == 0) return Status::OK();
  const size_t limit = take < 0 ? 0 : static_cast<size_t>(skip + static_cast<uint64_t>(take));
  return z.scan_score_index(from, to, reverse, limit, [&](std::string_view member, double score) {
    if (skip > 0) {
      --skip;
      return true;
    }
    out->push_back(Scored{score, std::string(member)});
    return take < 0 || static_cast<int64_t>(out->size()) < take;
  });
}

}  // namespace

Result<std::vector<Scored>> range_of(Collection& z, const RangeSpec& spec) {
  std::vector<Scored> out;
  if (!has_index(z)) {
    auto all = sorted_members(z);
    if (!all.ok()) return all.status();
    return select_range(std::move(*all), spec);
  }
  const int64_t n = static_cast<int64_t>(z.size());
  if (spec.by == By::kRank) {
    int64_t first = 0, last = 0;
    if (!clamp_ranks(spec.start, spec.end, n, &first, &last)) return out;
    // Ascending ranks f0..f1 of what the reply holds.
    const int64_t f0 = spec.rev ? n - 1 - last : first;
    const int64_t f1 = spec.rev ? n - 1 - first : last;
    const int64_t count = f1 - f0 + 1;
    // Walk from the nearer end, then put the result in reply order.
    const bool from_top = n - 1 - f1 < f0;
    Status s =
        walk(z, {}, {}, from_top, static_cast<uint64_t>(from_top ? n - 1 - f1 : f0), count, &out);
    if (!s.ok()) return s;
    if (from_top != spec.rev) std::reverse(out.begin(), out.end());
    return out;
  }
  if (spec.offset < 0) return out;  // Redis: a negative offset skips everything
  std::string from, to;
  if (spec.by == By::kScore) {
    const uint64_t lo = score_order_bits(spec.score.min);
    const uint64_t hi = score_order_bits(spec.score.max);
    from = ord(spec.score.minex ? lo + 1 : lo);
    to = ord(spec.score.maxex ? hi : hi + 1);
  } else {
    // A lex range is meaningful when every member has one score (Redis's
    // precondition): then it is a range of that score's entries. Otherwise
    // Redis's answer depends on its skiplist's shape; statekv then filters the
    // members in (score, member) order.
    std::vector<Scored> ends;
    Status s = walk(z, {}, {}, false, 0, 1, &ends);
    if (s.ok()) s = walk(z, {}, {}, true, 0, 1, &ends);
    if (!s.ok()) return s;
    if (ends.size() < 2) return out;
    const uint64_t bits = score_order_bits(ends[0].score);
    if (bits != score_order_bits(ends[1].score)) {
      auto all = sorted_members(z);
      if (!all.ok()) return all.status();
      return select_range(std::move(*all), spec);
    }
    const LexRange& r = spec.lex;
    if (r.min_kind == LexRange::kHighest || r.max_kind == LexRange::kLowest) return out;
    from = ord(bits);
    if (r.min_kind == LexRange::kValue) {
      from += r.min;
      if (r.minex) from.push_back('\0');  // the first string after min
    }
    if (r.max_kind == LexRange::kHighest) {
      to = ord(bits + 1);
    } else {
      to = ord(bits) + r.max;
      if (!r.maxex) to.push_back('\0');
    }
  }
  if (from >= to) return out;
  Status s = walk(z, from, to, spec.rev, static_cast<uint64_t>(spec.offset), spec.limit, &out);
  if (!s.ok()) return s;
  return out;
}

Result<uint64_t> rank_of(Collection& z, std::string_view member, double score) {
  if (!has_index(z)) {
    auto all = sorted_members(z);
    if (!all.ok()) return all.status();
    Scored probe{score, std::string(member)};
    return static_cast<uint64_t>(std::lower_bound(all->begin(), all->end(), probe, score_order) -
                                 all->begin());
  }
  // The entries before (score, member): an ordered engine counts them by
  // walking them (Redis's skiplist keeps spans for this; see docs/data-types.md).
  uint64_t rank = 0;
  std::string to = ord(score_order_bits(score));
  to.append(member);
  Status s = z.scan_score_index({}, to, false, 0, [&](std::string_view, double) {
    ++rank;
    return true;
  });
  if (!s.ok()) return s;
  return rank;
}

std::string format_score(double score) {
  if (std::isinf(score)) return score > 0 ? "inf" : "-inf";
  char buf[64];
  const int n = std::snprintf(buf, sizeof buf, "%.17g", score);
  return std::string(buf, static_cast<size_t>(n));
}

void store_result(CommandContext& c, std::string_view dst, const Store::Meta& dst_meta,
                  const std::vector<Scored>& items) {
  if (items.empty()) {
    if (dst_meta.exists) {
      Store::Write erase{dst, dst_meta, true, {}, 0};
      if (!c.commit(std::span<const Store::Write>(&erase, 1))) return;
    }
    return c.out.integer(0);
  }
  // Redis builds the result as a skiplist and turns it into a listpack when
  // it fits one, which stores a zero score as 0.
  bool compact = items.size() <= kZsetMaxListpackEntries;
  for (size_t i = 0; i < items.size() && compact; ++i) {
    compact = items[i].member.size() <= kZsetMaxListpackValue;
  }
  auto fresh = Collection::open(c.store(), ValueType::kZset, dst, dst_meta, nullptr, c.txn);
  if (!c.ok(fresh)) return;
  fresh->drop_ttl();
  for (const auto& e : items) {
    const double score = compact && e.score == 0 ? 0.0 : e.score;
    if (!c.ok(fresh->put(e.member, encode_score(score)))) return;
  }
  if (!commit_collection(c, *fresh)) return;
  c.out.integer(static_cast<int64_t>(items.size()));
}

}  // namespace statekv::server::zset
