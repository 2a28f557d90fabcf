#include "server/key_page.h"

#include <algorithm>
#include <random>

#include "core/random.h"
#include "server/command.h"
#include "server/glob.h"
#include "server/number.h"
#include "server/store.h"

namespace statekv::server {

std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last != 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

Result<KeyPage> scan_key_page(Store& store, const KeyPageRequest& request, int64_t now_ms,
                              std::optional<uint64_t> within_scope) {
  const bool match_all = request.pattern.empty() || request.pattern == "*";
  // TYPE names one of the types a record carries (an unknown name matches
  // nothing, as in Redis 7.0).
  const bool any_type = request.type.empty();
  const std::string_view prefix =
      match_all ? std::string_view() : glob_literal_prefix(request.pattern);
  KeyPage page;
  size_t examined = 0;
  Status s = store.scan(
      request.after.value_or(std::string()), prefix, request.limit, now_ms,
      [&](std::string_view key, const RecordView& rec) {
        const bool type_ok = any_type || iequals(request.type, type_name(rec.type));
        if (type_ok && (match_all || glob_match(request.pattern, key))) {
          page.keys.emplace_back(key);
          page.positions.push_back(store.position_of(key));
        }
        return true;
      },
      &page.last, &examined, within_scope);
  if (!s.ok()) return s;
  // The store examines fewer than `limit` records only when it reached the end.
  page.end = request.limit == 0 || examined < request.limit;
  return page;
}

Result<std::optional<std::string>> random_key(Store& store, int64_t now_ms,
                                              std::optional<uint64_t> within_scope) {
  thread_local Random rng(std::random_device{}());
  const uint64_t keys = within_scope ? store.scope_counts(*within_scope).keys : store.key_count();
  // The first key's position (Store::scan: its scope, then the key).
  std::string first;
  Status s = store.scan(
      {}, {}, 64, now_ms, [](std::string_view, const RecordView&) { return false; }, &first,
      nullptr, within_scope);
  if (!s.ok()) return s;
  if (first.empty() && keys == 0) return std::optional<std::string>();
  // Jump to a random point near the first position's shape (a random byte at
  // a random place past its family byte: another scope, or a key within the
  // printable range most keys use), then skip a random number of keys.
  // Approximately random, not uniform: see docs/commands.md.
  std::string from = first;
  if (from.size() > 1) {
    size_t pos = 1 + rng.uniform(from.size() - 1);
    unsigned char lo = static_cast<unsigned char>(from[pos]);
    unsigned char hi = std::max<unsigned char>(lo, 0x7e);
    from.resize(pos + 1);
    from[pos] = static_cast<char>(rng.range(lo, hi));
  }
  const uint64_t skip = rng.uniform(std::min<uint64_t>(std::max<uint64_t>(keys, 1), 64));
  for (int pass = 0; pass < 2; ++pass) {
    uint64_t seen = 0;
    std::string candidate;
    s = store.scan(
        pass == 0 ? std::string_view(from) : std::string_view(), {}, 256, now_ms,
        [&](std::string_view key, const RecordView&) {
          candidate.assign(key);
          return seen++ < skip;
        },
        nullptr, nullptr, within_scope);
    if (!s.ok()) return s;
    if (seen > 0) return std::optional<std::string>(std::move(candidate));
  }
  return std::optional<std::string>();
}

Result<KeyPageRequest> parse_scan_options(std::span<const std::string_view> options) {
  KeyPageRequest request;
  request.limit = 10;
  for (size_t i = 0; i < options.size(); i += 2) {
    const std::string_view opt = options[i];
    if (i + 1 >= options.size()) return Status::InvalidArgument(std::string(kSyntaxError));
    if (iequals(opt, "count")) {
      auto v = parse_int64(options[i + 1]);
      if (!v) return Status::InvalidArgument(std::string(kNotInteger));
      if (*v < 1) return Status::InvalidArgument(std::string(kSyntaxError));
      request.limit = static_cast<size_t>(*v);
    } else if (iequals(opt, "match")) {
      request.pattern = std::string(options[i + 1]);
    } else if (iequals(opt, "type")) {
      request.type = std::string(options[i + 1]);
    } else {
      return Status::InvalidArgument(std::string(kSyntaxError));
    }
  }
  return request;
}

}  // namespace statekv::server
