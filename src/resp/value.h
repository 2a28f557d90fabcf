// A parsed RESP2/RESP3 value, for the client side: tests, the fuzz target, and
// any statekv component that reads replies. Pure function over bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "resp/parser.h"

namespace statekv::resp {

struct Value {
  enum class Type {
    kSimple,
    kError,
    kInteger,
    kBulk,
    kNull,
    kArray,
    kMap,
    kSet,
    kPush,
    kDouble,
    kBoolean,
    kVerbatim,
    kBigNumber,
  };
  Type type = Type::kNull;
  std::string str;      // simple, error, bulk, verbatim (without "fmt:"), big number, double text
  int64_t integer = 0;  // integer, boolean (0/1)
  std::vector<Value> elements;  // array, set, push; map as k0, v0, k1, v1, ...
};

// Parses one value from the front of buf. Same status conventions as parse_request.
// out is reset first and is meaningful only on kComplete. Attributes (|) are parsed
// and dropped; streamed strings and aggregates (the RESP3 "?" lengths) are not
// supported and fail as errors. Nesting deeper than 128 aggregates is an error, so
// hostile input cannot exhaust the stack. Limits: bulk/blob lengths against
// max_bulk_len, aggregate element counts (2n for maps) against max_multibulk_len,
// line lengths against max_inline_len.
ParseResult parse_value(std::string_view buf, Value& out, const Limits& limits = {});

}  // namespace statekv::resp
