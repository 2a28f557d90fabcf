#include "server/consistency.h"

#include <array>
#include <cctype>

#include "core/varint.h"

namespace statekv::server {

namespace {

constexpr std::array<std::string_view, 5> kNames = {"linearizable", "sequential", "causal", "fifo",
                                                    "eventual"};
constexpr std::string_view kTokenPrefix = "skv1";

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

}  // namespace

std::string_view read_level_name(ReadLevel level) {
  return kNames[static_cast<size_t>(level)];
}

std::optional<ReadLevel> parse_read_level(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (name.size() != kNames[i].size()) continue;
    bool same = true;
    for (size_t j = 0; j < name.size() && same; ++j) {
      same = std::tolower(static_cast<unsigned char>(name[j])) == kNames[i][j];
    }
    if (same) return static_cast<ReadLevel>(i);
  }
  return std::nullopt;
}

void SessionPositions::advance(uint64_t group, uint64_t index) {
  if (index == 0) return;
  std::lock_guard lock(mu_);
  uint64_t& at = at_[group];
  if (index > at) at = index;
}

uint64_t SessionPositions::at(uint64_t group) const {
  std::lock_guard lock(mu_);
  auto it = at_.find(group);
  return it == at_.end() ? 0 : it->second;
}

void SessionPositions::wrote(uint64_t group, uint64_t index) {
  advance(group, index);
  std::lock_guard lock(mu_);
  last_write_ = std::make_pair(group, index);
}

std::optional<std::pair<uint64_t, uint64_t>> SessionPositions::last_write() const {
  std::lock_guard lock(mu_);
  return last_write_;
}

std::string SessionPositions::token() const {
  std::string raw;
  {
    std::lock_guard lock(mu_);
    for (const auto& [group, index] : at_) {
      append_varint(raw, group);
      append_varint(raw, index);
    }
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kTokenPrefix);
  for (char c : raw) {
    const auto b = static_cast<unsigned char>(c);
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

Status SessionPositions::merge(std::string_view token) {
  const auto bad = [] {
    return Status::InvalidArgument("not a session token (SESSION TOKEN gives one)");
  };
  if (!token.starts_with(kTokenPrefix)) return bad();
  token.remove_prefix(kTokenPrefix.size());
  if (token.size() % 2 != 0) return bad();
  std::string raw;
  raw.reserve(token.size() / 2);
  for (size_t i = 0; i < token.size(); i += 2) {
    const int hi = hex_digit(token[i]);
    const int lo = hex_digit(token[i + 1]);
    if (hi < 0 || lo < 0) return bad();
    raw.push_back(static_cast<char>(hi << 4 | lo));
  }
  std::map<uint64_t, uint64_t> parsed;
  std::string_view in(raw);
  while (!in.empty()) {
    uint64_t group = 0, index = 0;
    if (!take_varint(&in, &group) || !take_varint(&in, &index)) return bad();
    parsed[group] = std::max(parsed[group], index);
  }
  for (const auto& [group, index] : parsed) advance(group, index);
  return Status::OK();
}

}  // namespace statekv::server
