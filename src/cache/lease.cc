#include "cache/lease.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <limits>

#include "resp/value.h"
#include "resp/writer.h"

namespace statekv::cache {

std::string lease_key(std::string_view key) {
  std::string out = "__lease:{";
  out.append(key);
  out.push_back('}');
  return out;
}

namespace {

char kind_char(Fill::Kind kind) {
  switch (kind) {
    case Fill::Kind::kValue:
      return 'v';
    case Fill::Kind::kAbsent:
      return 'n';
    case Fill::Kind::kReleased:
      return 'r';
  }
  return 'r';
}

}  // namespace

std::string encode_fill(const Fill& fill) {
  std::string out;
  resp::Writer w(&out);
  w.array(5);
  w.bulk(fill.key);
  w.bulk(fill.holder);
  const char kind = kind_char(fill.kind);
  w.bulk(std::string_view(&kind, 1));
  w.bulk(fill.value);
  w.bulk(std::to_string(fill.pttl_ms));
  return out;
}

Result<Fill> decode_fill(std::string_view payload) {
  resp::Value v;
  const resp::ParseResult pr = resp::parse_value(payload, v);
  if (pr.status != resp::ParseStatus::kComplete || pr.consumed != payload.size() ||
      v.type != resp::Value::Type::kArray || v.elements.size() != 5) {
    return Status::InvalidArgument("not a cache fill message");
  }
  for (const resp::Value& e : v.elements) {
    if (e.type != resp::Value::Type::kBulk) {
      return Status::InvalidArgument("not a cache fill message");
    }
  }
  Fill fill;
  fill.key = std::move(v.elements[0].str);
  fill.holder = std::move(v.elements[1].str);
  const std::string& kind = v.elements[2].str;
  if (kind == "v") {
    fill.kind = Fill::Kind::kValue;
  } else if (kind == "n") {
    fill.kind = Fill::Kind::kAbsent;
  } else if (kind == "r") {
    fill.kind = Fill::Kind::kReleased;
  } else {
    return Status::InvalidArgument("cache fill of unknown kind '" + kind + "'");
  }
  fill.value = std::move(v.elements[3].str);
  const std::string& ttl = v.elements[4].str;
  auto [p, ec] = std::from_chars(ttl.data(), ttl.data() + ttl.size(), fill.pttl_ms);
  if (ec != std::errc() || p != ttl.data() + ttl.size()) {
    return Status::InvalidArgument("cache fill with a bad pttl '" + ttl + "'");
  }
  return fill;
}

RecentInvalidations::RecentInvalidations(size_t slots)
    : last_(std::max<size_t>(slots, 1), std::numeric_limits<int64_t>::min()),
      all_(std::numeric_limits<int64_t>::min()) {}

size_t RecentInvalidations::slot(std::string_view key) const {
  return std::hash<std::string_view>{}(key) % last_.size();
}

void RecentInvalidations::invalidated(std::string_view key, int64_t now_us) {
  int64_t& t = last_[slot(key)];
  t = std::max(t, now_us);
}

void RecentInvalidations::invalidated_all(int64_t now_us) {
  all_ = std::max(all_, now_us);
}

bool RecentInvalidations::changed_since(std::string_view key, int64_t since_us) const {
  return all_ >= since_us || last_[slot(key)] >= since_us;
}

}  // namespace statekv::cache
