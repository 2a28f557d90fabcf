// Reply encoding. This runs for every element of every reply, so it formats numbers
// with std::to_chars into a stack buffer and appends each line with one call.
#include "resp/writer.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include "core/assert.h"

namespace statekv::resp {
namespace {

constexpr std::string_view kCrlf = "\r\n";

// Appends s, with CR and LF replaced by spaces: a simple string or error that
// contained them would end the line early and desynchronise the client. Redis does
// the same for formatted errors.
void append_one_line(std::string* out, std::string_view s) {
  if (s.find_first_of(kCrlf) == std::string_view::npos) {
    out->append(s);
    return;
  }
  const size_t start = out->size();
  out->append(s);
  for (size_t i = start; i < out->size(); ++i) {
    char& c = (*out)[i];
    if (c == '\r' || c == '\n') c = ' ';
  }
}

// The text Redis 7.0 uses for a double: %.17g, with inf, -inf and nan spelled out
// (glibc would print "-nan" for a negative NaN). Returns the length written to buf.
size_t format_double(double d, char* buf, size_t cap) {
  std::string_view special;
  if (std::isnan(d)) {
    special = "nan";
  } else if (std::isinf(d)) {
    special = d > 0 ? "inf" : "-inf";
  }
  if (!special.empty()) {
    std::memcpy(buf, special.data(), special.size());
    return special.size();
  }
  // to_chars with a precision is specified as printf's %.*g.
  const auto r = std::to_chars(buf, buf + cap, d, std::chars_format::general, 17);
  SKV_ASSERT(r.ec == std::errc(), "a double in %.17g always fits in 32 bytes");
  return static_cast<size_t>(r.ptr - buf);
}

}  // namespace

void Writer::header(char type, uint64_t n) {
  char buf[1 + 20 + 2];  // type, the largest uint64 in decimal, CRLF
  buf[0] = type;
  char* end = std::to_chars(buf + 1, buf + 21, n).ptr;
  end[0] = '\r';
  end[1] = '\n';
  out_->append(buf, static_cast<size_t>(end + 2 - buf));
}

void Writer::simple(std::string_view s) {
  out_->push_back('+');
  append_one_line(out_, s);
  out_->append(kCrlf);
}

void Writer::error(std::string_view message) {
  out_->push_back('-');
  append_one_line(out_, message);
  out_->append(kCrlf);
}

void Writer::integer(int64_t v) {
  char buf[1 + 20 + 2];  // ':', "-9223372036854775808", CRLF
  buf[0] = ':';
  char* end = std::to_chars(buf + 1, buf + 21, v).ptr;
  end[0] = '\r';
  end[1] = '\n';
  out_->append(buf, static_cast<size_t>(end + 2 - buf));
}

void Writer::bulk(std::string_view s) {
  header('$', s.size());
  out_->append(s);
  out_->append(kCrlf);
}

void Writer::null() {
  out_->append(protocol_ >= 3 ? "_\r\n" : "$-1\r\n");
}

void Writer::null_array() {
  out_->append(protocol_ >= 3 ? "_\r\n" : "*-1\r\n");
}

void Writer::array(size_t n) {
  header('*', n);
}

void Writer::map(size_t pairs) {
  if (protocol_ >= 3) {
    header('%', pairs);
  } else {
    header('*', static_cast<uint64_t>(pairs) * 2);
  }
}

void Writer::set(size_t n) {
  header(protocol_ >= 3 ? '~' : '*', n);
}

void Writer::push(size_t n) {
  header(protocol_ >= 3 ? '>' : '*', n);
}

void Writer::boolean(bool b) {
  if (protocol_ >= 3) {
    out_->append(b ? "#t\r\n" : "#f\r\n");
  } else {
    out_->append(b ? ":1\r\n" : ":0\r\n");
  }
}

void Writer::dbl(double d) {
  char buf[32];
  const size_t len = format_double(d, buf, sizeof(buf));
  if (protocol_ >= 3) {
    out_->push_back(',');
    out_->append(buf, len);
    out_->append(kCrlf);
  } else {
    bulk(std::string_view(buf, len));
  }
}

void Writer::verbatim(std::string_view format, std::string_view s) {
  SKV_ASSERT(format.size() == 3, "a verbatim string's format is exactly 3 bytes, e.g. txt");
  if (protocol_ < 3) {
    bulk(s);
    return;
  }
  header('=', s.size() + 4);
  out_->append(format);
  out_->push_back(':');
  out_->append(s);
  out_->append(kCrlf);
}

void Writer::raw(std::string_view bytes) {
  out_->append(bytes);
}

}  // namespace statekv::resp
