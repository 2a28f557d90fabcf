#include "server/glob.h"

#include <cctype>

namespace statekv::server {
namespace {

// A byte-exact port of Redis 7.0's stringmatchlen_impl over bounded views (Redis
// relies on the NUL after its strings; char_at() plays that role here).
class Matcher {
 public:
  Matcher(bool nocase) : nocase_(nocase) {}

  bool match(const char* p, long plen, const char* s, long slen, int nesting) {
    // Protection against abusive patterns, as in Redis.
    if (nesting > 1000) return false;
    while (plen > 0 && slen > 0) {
      switch (p[0]) {
        case '*': {
          while (plen > 1 && p[1] == '*') {
            ++p;
            --plen;
          }
          if (plen == 1) return true;
          while (slen > 0) {
            if (match(p + 1, plen - 1, s, slen, nesting + 1)) return true;
            if (skip_longer_) return false;
            ++s;
            --slen;
          }
          // No match for the rest anywhere in the rest of the string, so no
          // earlier '*' can help either (Redis's skipLongerMatches).
          skip_longer_ = true;
          return false;
        }
        case '?':
          ++s;
          --slen;
          break;
        case '[': {
          ++p;
          --plen;
          bool negate = plen > 0 && p[0] == '^';
          if (negate) {
            ++p;
            --plen;
          }
          bool matched = false;
          while (true) {
            if (plen >= 2 && p[0] == '\\') {
              ++p;
              --plen;
              if (p[0] == s[0]) matched = true;
            } else if (plen == 0) {
              // Unclosed class: step back so the outer ++ lands on the end.
              --p;
              ++plen;
              break;
            } else if (p[0] == ']') {
              break;
            } else if (plen >= 3 && p[1] == '-') {
              int start = p[0];
              int end = p[2];
              int c = s[0];
              if (start > end) std::swap(start, end);
              if (nocase_) {
                start = std::tolower(start);
                end = std::tolower(end);
                c = std::tolower(c);
              }
              p += 2;
              plen -= 2;
              if (c >= start && c <= end) matched = true;
            } else if (same(p[0], s[0])) {
              matched = true;
            }
            ++p;
            --plen;
          }
          if (negate) matched = !matched;
          if (!matched) return false;
          ++s;
          --slen;
          break;
        }
        case '\\':
          if (plen >= 2) {
            ++p;
            --plen;
          }
          [[fallthrough]];
        default:
          if (!same(p[0], s[0])) return false;
          ++s;
          --slen;
          break;
      }
      ++p;
      --plen;
      if (slen == 0) {
        while (plen > 0 && p[0] == '*') {
          ++p;
          --plen;
        }
        break;
      }
    }
    return plen == 0 && slen == 0;
  }

 private:
  bool same(char a, char b) const {
    if (!nocase_) return a == b;
    return std::tolower(static_cast<unsigned char>(a)) ==
           std::tolower(static_cast<unsigned char>(b));
  }
  bool nocase_;
  bool skip_longer_ = false;
};

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text, bool nocase) {
  Matcher m(nocase);
  return m.match(pattern.data(), static_cast<long>(pattern.size()), text.data(),
                 static_cast<long>(text.size()), 0);
}

std::string_view glob_literal_prefix(std::string_view pattern) {
  size_t i = 0;
  while (i < pattern.size()) {
    char c = pattern[i];
    if (c == '*' || c == '?' || c == '[' || c == '\\') break;
    ++i;
  }
  return pattern.substr(0, i);
}

}  // namespace statekv::server
