#include "server/key_page.h"

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
