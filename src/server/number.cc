#include "server/number.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace statekv::server {

std::optional<int64_t> parse_int64(std::string_view text) {
  // Same limit as Redis (LONG_STR_SIZE): longer input can't be a valid int64.
  if (text.empty() || text.size() > 20) return std::nullopt;
  size_t i = 0;
  bool negative = false;
  if (text.size() == 1 && text[0] == '0') return 0;
  if (text[0] == '-') {
    negative = true;
    i = 1;
    if (text.size() == 1) return std::nullopt;
  }
  // First digit must be 1-9: rejects "007", "-0" and "+5" as Redis does.
  if (text[i] < '1' || text[i] > '9') return std::nullopt;
  uint64_t v = 0;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  if (negative) {
    if (v > static_cast<uint64_t>(INT64_MAX) + 1) return std::nullopt;
    return static_cast<int64_t>(0 - v);
  }
  if (v > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  return static_cast<int64_t>(v);
}

std::optional<uint64_t> parse_cursor(std::string_view text) {
  char buf[64];
  if (text.size() >= sizeof(buf)) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  if (std::isspace(static_cast<unsigned char>(buf[0]))) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  unsigned long v = std::strtoul(buf, &end, 10);
  if (*end != '\0' || errno == ERANGE) return std::nullopt;
  return v;
}

std::optional<long double> parse_long_double(std::string_view text) {
  // Redis's MAX_LONG_DOUBLE_CHARS is 5k; like Redis, parsing stops at a NUL.
  constexpr size_t kMax = 5 * 1024;
  if (text.empty() || text.size() >= kMax) return std::nullopt;
  std::string buf(text);
  if (std::isspace(static_cast<unsigned char>(buf[0]))) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long double v = std::strtold(buf.c_str(), &end);
  if (*end != '\0') return std::nullopt;
  if (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || std::fpclassify(v) == FP_ZERO)) {
    return std::nullopt;
  }
  if (errno == EINVAL || std::isnan(v)) return std::nullopt;
  return v;
}

std::string format_long_double(long double value) {
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[5 * 1024];
  int len = std::snprintf(buf, sizeof(buf), "%.17Lf", value);
  if (len <= 0 || static_cast<size_t>(len) >= sizeof(buf)) return "0";
  if (std::strchr(buf, '.') != nullptr) {
    while (buf[len - 1] == '0') --len;
    if (buf[len - 1] == '.') --len;
  }
  if (len == 2 && buf[0] == '-' && buf[1] == '0') return "0";
  return std::string(buf, static_cast<size_t>(len));
}

}  // namespace statekv::server
