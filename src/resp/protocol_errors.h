// The exact error texts parse_request() returns, as Redis 7 sends them (without the
// leading '-'). Clients and test suites match on these strings, so they are spelled
// once here and never rephrased.
#pragma once

#include <string_view>

namespace statekv::resp {

inline constexpr std::string_view kErrInvalidMultibulkLength =
    "ERR Protocol error: invalid multibulk length";
inline constexpr std::string_view kErrInvalidBulkLength = "ERR Protocol error: invalid bulk length";
// Followed by the offending byte and a closing quote: "... got 'X'".
inline constexpr std::string_view kErrExpectedDollarPrefix =
    "ERR Protocol error: expected '$', got '";
inline constexpr std::string_view kErrUnauthenticatedMultibulkLength =
    "ERR Protocol error: unauthenticated multibulk length";
inline constexpr std::string_view kErrUnauthenticatedBulkLength =
    "ERR Protocol error: unauthenticated bulk length";
inline constexpr std::string_view kErrTooBigMultibulkCount =
    "ERR Protocol error: too big mbulk count string";
inline constexpr std::string_view kErrTooBigBulkCount =
    "ERR Protocol error: too big bulk count string";
inline constexpr std::string_view kErrTooBigInline = "ERR Protocol error: too big inline request";
inline constexpr std::string_view kErrUnbalancedQuotes =
    "ERR Protocol error: unbalanced quotes in request";
// Not a Redis text: Redis 7 skips the two bytes after a bulk without looking at them.
// statekv requires them to be "\r\n" so a miscounted payload fails loudly.
inline constexpr std::string_view kErrBulkNotTerminated =
    "ERR Protocol error: bulk string not followed by CRLF";

}  // namespace statekv::resp
