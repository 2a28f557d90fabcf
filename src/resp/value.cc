// Reply parsing for every RESP2 and RESP3 type. One pass over buf; recursion only
// for aggregates, bounded by kMaxDepth so hostile input cannot exhaust the stack.
#include "resp/value.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace statekv::resp {
namespace {

// Nesting deeper than this is refused. Real replies nest a handful of levels
// (XINFO STREAM FULL is among the deepest); 128 frames of this parser stay far
// below any thread's stack.
constexpr int kMaxDepth = 128;

class ValueParser {
 public:
  ValueParser(std::string_view buf, const Limits& limits) : buf_(buf), limits_(limits) {}

  ParseResult run(Value& out) {
    ParseResult r;
    if (!parse(out, 0)) {
      r.status = failed_ ? ParseStatus::kError : ParseStatus::kIncomplete;
      r.error = std::move(error_);
      r.needed = needed_;
      return r;
    }
    r.status = ParseStatus::kComplete;
    r.consumed = pos_;
    return r;
  }

 private:
  // Each step returns false when parsing stops: failed_ tells an error (error_) from
  // missing bytes (needed_).
  bool fail(std::string_view what) {
    failed_ = true;
    error_ = "ERR Protocol error: ";
    error_ += what;
    return false;
  }
  bool need(size_t total) {
    needed_ = std::max(total, buf_.size() + 1);
    return false;
  }

  // Reads the line at pos_ (ending in CRLF, which must not occur inside it).
  bool line(std::string_view* out) {
    const size_t rem = buf_.size() - pos_;
    // limit + 1 bytes, so a line of exactly the limit is found; saturating.
    const size_t window = limits_.max_inline_len >= rem ? rem : limits_.max_inline_len + 1;
    const void* hit = std::memchr(buf_.data() + pos_, '\r', window);
    if (hit == nullptr) return rem > limits_.max_inline_len ? fail("line too long") : need(0);
    const size_t cr = static_cast<size_t>(static_cast<const char*>(hit) - buf_.data());
    if (cr + 1 >= buf_.size()) return need(cr + 2);
    if (buf_[cr + 1] != '\n') return fail("line not terminated by CRLF");
    *out = buf_.substr(pos_, cr - pos_);
    pos_ = cr + 2;
    return true;
  }

  // A decimal int64 with an optional sign, as RESP3 allows for integers.
  static bool to_int64(std::string_view s, int64_t* v) {
    if (!s.empty() && s[0] == '+') s.remove_prefix(1);
    if (s.empty() || s[0] == '+') return false;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
  }

  bool integer_line(int64_t* v) {
    std::string_view text;
    if (!line(&text)) return false;
    if (!to_int64(text, v)) return fail("invalid integer");
    return true;
  }

  // The payload of a length-prefixed string ($, !, =) of len bytes plus its CRLF.
  bool blob(int64_t len, std::string_view* out) {
    if (len < 0 || static_cast<uint64_t>(len) > limits_.max_bulk_len) {
      return fail("invalid bulk length");
    }
    const size_t n = static_cast<size_t>(len);
    if (buf_.size() - pos_ < n + 2) return need(pos_ + n + 2);
    if (buf_[pos_ + n] != '\r' || buf_[pos_ + n + 1] != '\n') {
      return fail("bulk string not followed by CRLF");
    }
    *out = buf_.substr(pos_, n);
    pos_ += n + 2;
    return true;
  }

  bool aggregate(Value& out, int64_t count, size_t per_entry, int depth) {
    // The limit counts elements: a map of n pairs holds 2n.
    if (count < 0 || static_cast<uint64_t>(count) > limits_.max_multibulk_len / per_entry) {
      return fail("invalid multibulk length");
    }
    if (depth + 1 > kMaxDepth) return fail("nesting too deep");
    const size_t n = static_cast<size_t>(count) * per_entry;
    // Every element takes at least 3 bytes ("_\r\n"): do not let a claimed count
    // reserve more than the buffer could hold.
    out.elements.reserve(std::min(n, (buf_.size() - pos_) / 3 + 1));
    for (size_t i = 0; i < n; ++i) {
      out.elements.emplace_back();
      if (!parse(out.elements.back(), depth + 1)) return false;
    }
    return true;
  }

  bool parse(Value& out, int depth) {
    out = Value{};
    while (true) {
      if (pos_ >= buf_.size()) return need(pos_ + 1);
      const char type = buf_[pos_++];
      std::string_view text;
      int64_t n = 0;
      switch (type) {
        case '+':
        case '-':
          if (!line(&text)) return false;
          out.type = type == '+' ? Value::Type::kSimple : Value::Type::kError;
          out.str.assign(text);
          return true;
        case ':':
          if (!integer_line(&out.integer)) return false;
          out.type = Value::Type::kInteger;
          return true;
        case '$':
        case '!':
        case '=':
          if (!integer_line(&n)) return false;
          if (n == -1 && type == '$') {  // RESP2's null bulk string
            out.type = Value::Type::kNull;
            return true;
          }
          if (!blob(n, &text)) return false;
          if (type == '=') {
            // "fmt:" then the text; the format is not kept (Value has no field for it).
            if (text.size() < 4 || text[3] != ':') return fail("invalid verbatim string");
            text.remove_prefix(4);
          }
          out.type = type == '$'   ? Value::Type::kBulk
                     : type == '!' ? Value::Type::kError
                                   : Value::Type::kVerbatim;
          out.str.assign(text);
          return true;
        case '*':
        case '~':
        case '>':
        case '%':
          if (!integer_line(&n)) return false;
          if (n == -1 && type == '*') {  // RESP2's null array
            out.type = Value::Type::kNull;
            return true;
          }
          out.type = type == '*'   ? Value::Type::kArray
                     : type == '~' ? Value::Type::kSet
                     : type == '>' ? Value::Type::kPush
                                   : Value::Type::kMap;
          return aggregate(out, n, type == '%' ? 2 : 1, depth);
        case '_':
          if (!line(&text)) return false;
          if (!text.empty()) return fail("invalid null");
          out.type = Value::Type::kNull;
          return true;
        case ',':
          if (!line(&text)) return false;
          if (!valid_double(text)) return fail("invalid double");
          out.type = Value::Type::kDouble;
          out.str.assign(text);
          return true;
        case '#':
          if (!line(&text)) return false;
          if (text != "t" && text != "f") return fail("invalid boolean");
          out.type = Value::Type::kBoolean;
          out.integer = text == "t" ? 1 : 0;
          return true;
        case '(':
          if (!line(&text)) return false;
          if (!valid_big_number(text)) return fail("invalid big number");
          out.type = Value::Type::kBigNumber;
          out.str.assign(text);
          return true;
        case '|': {
          // Attributes describe the value that follows; this parser drops them and
          // returns that value. A loop, not recursion, so chained attributes cost no
          // stack.
          if (!integer_line(&n)) return false;
          Value attributes;
          if (!aggregate(attributes, n, 2, depth)) return false;
          continue;
        }
        default: {
          std::string what = "unknown type byte 0x";
          constexpr char kHex[] = "0123456789abcdef";
          what += kHex[static_cast<unsigned char>(type) >> 4];
          what += kHex[static_cast<unsigned char>(type) & 15];
          return fail(what);
        }
      }
    }
  }

  static bool valid_double(std::string_view s) {
    if (s == "inf" || s == "+inf" || s == "-inf" || s == "nan") return true;
    if (!s.empty() && s[0] == '+') s.remove_prefix(1);
    if (s.empty() || !(s[0] == '-' || s[0] == '.' || (s[0] >= '0' && s[0] <= '9'))) return false;
    double d = 0;
    const auto r = std::from_chars(s.data(), s.data() + s.size(), d);
    // Out-of-range values (1e999) are still numbers the server meant to send.
    return (r.ec == std::errc() || r.ec == std::errc::result_out_of_range) &&
           r.ptr == s.data() + s.size();
  }

  static bool valid_big_number(std::string_view s) {
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  }

  std::string_view buf_;
  const Limits& limits_;
  size_t pos_ = 0;
  bool failed_ = false;
  std::string error_;
  size_t needed_ = 0;
};

}  // namespace

ParseResult parse_value(std::string_view buf, Value& out, const Limits& limits) {
  return ValueParser(buf, limits).run(out);
}

}  // namespace statekv::resp
