// Request parsing that mirrors Redis 7's networking.c (processMultibulkBuffer,
// processInlineBuffer) and sds.c (sdssplitargs), as pure functions over one buffer.
//
// Redis keeps per-client parse state between reads; this parser is stateless and
// reparses from the front of buf. Its answers do not depend on how the bytes were
// split across reads: every limit is checked against a fixed window from the start
// of the line, never against "whatever happens to be buffered" as Redis does. Where
// this differs from Redis, a comment says so.
#include "resp/parser.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "resp/protocol_errors.h"

namespace statekv::resp {
namespace {

ParseResult complete(size_t consumed) {
  ParseResult r;
  r.status = ParseStatus::kComplete;
  r.consumed = consumed;
  return r;
}

ParseResult incomplete(size_t needed) {
  ParseResult r;
  r.status = ParseStatus::kIncomplete;
  r.needed = needed;
  return r;
}

ParseResult failure(std::string_view text) {
  ParseResult r;
  r.status = ParseStatus::kError;
  r.error = std::string(text);
  return r;
}

// Redis's string2ll: a canonical signed decimal that fits in long long. No sign
// other than a leading '-', no leading zeros, no "-0", at most 20 characters.
bool string2ll(std::string_view s, long long* value) {
  constexpr size_t kLongStrSize = 21;
  if (s.empty() || s.size() >= kLongStrSize) return false;
  if (s.size() == 1 && s[0] == '0') {
    *value = 0;
    return true;
  }
  size_t i = 0;
  bool negative = false;
  if (s[0] == '-') {
    negative = true;
    if (++i == s.size()) return false;
  }
  if (s[i] < '1' || s[i] > '9') return false;
  unsigned long long v = static_cast<unsigned long long>(s[i++] - '0');
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    const unsigned digit = static_cast<unsigned>(s[i] - '0');
    if (v > ULLONG_MAX / 10) return false;
    v *= 10;
    if (v > ULLONG_MAX - digit) return false;
    v += digit;
  }
  if (negative) {
    if (v > static_cast<unsigned long long>(LLONG_MAX) + 1) return false;
    *value = static_cast<long long>(0 - v);
  } else {
    if (v > static_cast<unsigned long long>(LLONG_MAX)) return false;
    *value = static_cast<long long>(v);
  }
  return true;
}

// How many bytes to search for a line end: limit + 1, so that a line of exactly
// limit bytes is still found; saturating, for a limit of SIZE_MAX ("no limit").
size_t search_window(size_t rem, size_t limit) {
  return limit >= rem ? rem : limit + 1;
}

// Where a header line ("*3", "$5") ends. Redis looks for '\r' and then needs one more
// byte, which it skips without checking that it is '\n'; so does this parser.
struct LineEnd {
  enum Kind { kFound, kIncomplete, kTooLong } kind;
  size_t cr = 0;  // index of '\r' in buf, when kFound
};

LineEnd find_header_end(std::string_view buf, size_t pos, size_t max_line) {
  const size_t rem = buf.size() - pos;
  // Redis fails when more than max_line bytes are buffered and none is '\r'. Looking
  // only at the first max_line + 1 bytes gives the same answer however the bytes were
  // split across reads, and keeps the scan bounded.
  const size_t window = search_window(rem, max_line);
  const void* hit = std::memchr(buf.data() + pos, '\r', window);
  if (hit == nullptr) return {rem > max_line ? LineEnd::kTooLong : LineEnd::kIncomplete};
  const size_t cr = static_cast<size_t>(static_cast<const char*>(hit) - buf.data());
  if (cr + 2 > buf.size()) return {LineEnd::kIncomplete, cr};
  return {LineEnd::kFound, cr};
}

// One byte of an error text: Redis replaces CR and LF in error replies with spaces
// so that the reply stays one protocol line.
char printable_in_error(char c) {
  return (c == '\r' || c == '\n') ? ' ' : c;
}

ParseResult parse_multibulk(std::string_view buf, const Limits& limits,
                            std::vector<std::string_view>& args) {
  const LineEnd count_end = find_header_end(buf, 0, limits.max_inline_len);
  if (count_end.kind == LineEnd::kTooLong) return failure(kErrTooBigMultibulkCount);
  if (count_end.kind == LineEnd::kIncomplete)
    return incomplete(std::max(buf.size() + 1, count_end.cr + 2));

  long long count = 0;
  if (!string2ll(buf.substr(1, count_end.cr - 1), &count) ||
      static_cast<unsigned long long>(std::max(count, 0LL)) > limits.max_multibulk_len) {
    return failure(kErrInvalidMultibulkLength);
  }
  if (limits.unauthenticated && count > static_cast<long long>(kUnauthenticatedMaxArgs)) {
    return failure(kErrUnauthenticatedMultibulkLength);
  }
  size_t pos = count_end.cr + 2;
  // "*0" and any negative count are empty requests, consumed without a command.
  if (count <= 0) return complete(pos);

  // Each argument needs at least "$0\r\n\r\n" (6 bytes): never reserve for more than
  // the buffer could hold, whatever count the client claims.
  args.reserve(std::min(static_cast<size_t>(count), (buf.size() - pos) / 6 + 1));
  for (long long i = 0; i < count; ++i) {
    const LineEnd len_end = find_header_end(buf, pos, limits.max_inline_len);
    if (len_end.kind == LineEnd::kTooLong) return failure(kErrTooBigBulkCount);
    if (len_end.kind == LineEnd::kIncomplete)
      return incomplete(std::max(buf.size() + 1, len_end.cr + 2));
    if (buf[pos] != '$') {
      std::string text(kErrExpectedDollarPrefix);
      text += printable_in_error(buf[pos]);
      text += '\'';
      return failure(text);
    }
    long long len = 0;
    if (!string2ll(buf.substr(pos + 1, len_end.cr - pos - 1), &len) || len < 0 ||
        static_cast<unsigned long long>(len) > limits.max_bulk_len) {
      return failure(kErrInvalidBulkLength);
    }
    if (limits.unauthenticated && static_cast<size_t>(len) > kUnauthenticatedMaxBulk) {
      return failure(kErrUnauthenticatedBulkLength);
    }
    pos = len_end.cr + 2;
    const size_t body = static_cast<size_t>(len);
    if (buf.size() - pos < body + 2) return incomplete(pos + body + 2);
    // Redis 7 skips these two bytes unchecked; checking them turns a client that
    // miscounted its payload into a clear error instead of a silently shifted stream.
    if (buf[pos + body] != '\r' || buf[pos + body + 1] != '\n') {
      return failure(kErrBulkNotTerminated);
    }
    args.push_back(buf.substr(pos, body));
    pos += body + 2;
  }
  return complete(pos);
}

bool is_c_space(int c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

int hex_value(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// sdssplitargs over one line (without its line ending). The end of the line plays
// the part of the C string's terminating NUL; a NUL byte inside the line is ordinary
// data here (Redis, reading with strchr, never sees past it). Tokens that contain
// no quotes are views into line; the others are built in scratch.
bool split_args(std::string_view line, std::vector<std::string_view>& args,
                std::vector<std::string>& scratch) {
  struct Token {
    bool in_scratch;
    size_t offset;  // into line, or index into scratch
    size_t length;
  };
  std::vector<Token> tokens;
  const size_t n = line.size();
  constexpr int kEnd = -1;
  auto at = [&](size_t i) -> int { return i < n ? static_cast<unsigned char>(line[i]) : kEnd; };

  size_t p = 0;
  while (true) {
    while (p < n && is_c_space(at(p))) ++p;
    if (p >= n) break;
    const size_t start = p;
    size_t end = p;
    bool in_double = false, in_single = false, done = false, building = false;
    std::string current;
    while (!done) {
      const int c = at(p);
      if (in_double) {
        if (c == '\\' && at(p + 1) == 'x' && hex_value(at(p + 2)) >= 0 &&
            hex_value(at(p + 3)) >= 0) {
          current.push_back(static_cast<char>(hex_value(at(p + 2)) * 16 + hex_value(at(p + 3))));
          p += 3;
        } else if (c == '\\' && at(p + 1) != kEnd) {
          ++p;
          switch (at(p)) {
            case 'n':
              current.push_back('\n');
              break;
            case 'r':
              current.push_back('\r');
              break;
            case 't':
              current.push_back('\t');
              break;
            case 'b':
              current.push_back('\b');
              break;
            case 'a':
              current.push_back('\a');
              break;
            default:
              current.push_back(static_cast<char>(at(p)));
              break;
          }
        } else if (c == '"') {
          // A closing quote must be followed by a space or by nothing at all.
          if (at(p + 1) != kEnd && !is_c_space(at(p + 1))) return false;
          done = true;
        } else if (c == kEnd) {
          return false;  // unterminated quotes
        } else {
          current.push_back(static_cast<char>(c));
        }
      } else if (in_single) {
        if (c == '\\' && at(p + 1) == '\'') {
          ++p;
          current.push_back('\'');
        } else if (c == '\'') {
          if (at(p + 1) != kEnd && !is_c_space(at(p + 1))) return false;
          done = true;
        } else if (c == kEnd) {
          return false;
        } else {
          current.push_back(static_cast<char>(c));
        }
      } else {
        switch (c) {
          // Unquoted tokens end only at these four bytes (not at \v or \f, which
          // isspace() accepts between tokens): sdssplitargs's own quirk.
          case ' ':
          case '\n':
          case '\r':
          case '\t':
          case kEnd:
            done = true;
            end = p;
            break;
          case '"':
          case '\'':
            if (!building) current.assign(line.substr(start, p - start));
            building = true;
            (c == '"' ? in_double : in_single) = true;
            break;
          default:
            if (building) current.push_back(static_cast<char>(c));
            break;
        }
      }
      if (at(p) != kEnd) ++p;
    }
    if (building) {
      scratch.push_back(std::move(current));
      tokens.push_back({true, scratch.size() - 1, 0});
    } else {
      tokens.push_back({false, start, end - start});
    }
  }
  // Views are taken only now: scratch may have reallocated while tokens were added.
  args.reserve(tokens.size());
  for (const Token& t : tokens) {
    args.push_back(t.in_scratch ? std::string_view(scratch[t.offset])
                                : line.substr(t.offset, t.length));
  }
  return true;
}

ParseResult parse_inline(std::string_view buf, const Limits& limits,
                         std::vector<std::string_view>& args, std::vector<std::string>& scratch) {
  // Redis fails once more than max_inline_len bytes are buffered without '\n'; a fixed
  // window makes the outcome independent of how the line was split across reads.
  const size_t window = search_window(buf.size(), limits.max_inline_len);
  const void* hit = std::memchr(buf.data(), '\n', window);
  if (hit == nullptr) {
    if (buf.size() > limits.max_inline_len) return failure(kErrTooBigInline);
    return incomplete(buf.size() + 1);
  }
  const size_t newline = static_cast<size_t>(static_cast<const char*>(hit) - buf.data());
  size_t line_len = newline;
  if (line_len > 0 && buf[line_len - 1] == '\r') --line_len;
  if (!split_args(buf.substr(0, line_len), args, scratch)) {
    args.clear();
    scratch.clear();
    return failure(kErrUnbalancedQuotes);
  }
  return complete(newline + 1);
}

}  // namespace

ParseResult parse_request(std::string_view buf, const Limits& limits,
                          std::vector<std::string_view>& args, std::vector<std::string>& scratch) {
  args.clear();
  scratch.clear();
  if (buf.empty()) return incomplete(1);
  ParseResult r =
      buf[0] == '*' ? parse_multibulk(buf, limits, args) : parse_inline(buf, limits, args, scratch);
  if (r.status != ParseStatus::kComplete) args.clear();
  return r;
}

}  // namespace statekv::resp
