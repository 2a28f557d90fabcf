// Reply rendering: one text form for replies from hiredis (RESP2) and from the
// raw client (resp::Value, RESP2 or RESP3), so that a differential test can
// compare two servers' replies with == and print both when they differ.
//
// Format (unambiguous, binary bytes escaped):
//   +OK   -ERR text   :42   "bulk\x00bytes"   (nil)   [a, b]   {k => v}
//   ~{set}  >[push]  ,3.14  #t / #f  (big)123  _ (RESP3 null)
#pragma once

#include <string>
#include <string_view>

#include "resp/value.h"

struct redisReply;

namespace statekv::itest {

// Printable form of bytes: printable ASCII as is, everything else \xNN.
std::string escape_bytes(std::string_view bytes);

std::string render(const redisReply& reply);
std::string render(const resp::Value& value);

}  // namespace statekv::itest
