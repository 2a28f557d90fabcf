// RESP reply encoding for RESP2 and RESP3: appends bytes to a std::string.
//
// Each method writes the RESP3 type when protocol() == 3 and Redis's RESP2
// equivalent otherwise (map -> flat array of 2n, set -> array, double -> bulk
// string, boolean -> integer 1/0, null -> $-1 or *-1, verbatim -> bulk string).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace statekv::resp {

class Writer {
 public:
  // out must outlive the writer; bytes are appended to it.
  explicit Writer(std::string* out, int protocol = 2) : out_(out), protocol_(protocol) {}

  int protocol() const { return protocol_; }
  void set_protocol(int protocol) { protocol_ = protocol; }
  std::string* buffer() { return out_; }

  void simple(std::string_view s);       // +s
  void error(std::string_view message);  // -message   (message includes its prefix, e.g. "ERR ...")
  void integer(int64_t v);               // :v
  void bulk(std::string_view s);         // $len s
  void null();                           // RESP2 $-1   RESP3 _
  void null_array();                     // RESP2 *-1   RESP3 _
  void array(size_t n);                  // *n
  void map(size_t pairs);                // RESP3 %n    RESP2 *2n
  void set(size_t n);                    // RESP3 ~n    RESP2 *n
  void push(size_t n);                   // RESP3 >n    RESP2 *n
  void boolean(bool b);                  // RESP3 #t/#f RESP2 :1/:0
  void dbl(double d);  // RESP3 ,d    RESP2 bulk with the same text (%.17g, inf, -inf, nan)
  void verbatim(std::string_view format, std::string_view s);  // RESP3 =len fmt:s   RESP2 bulk s
  void raw(std::string_view bytes);  // pre-encoded bytes, appended as they are

 private:
  void header(char type, uint64_t n);
  std::string* out_;
  int protocol_;
};

}  // namespace statekv::resp
