// Number <-> text conversions with Redis's exact rules, so that INCR, SETRANGE,
// EXPIRE and INCRBYFLOAT accept and print exactly what Redis 7.0 does.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace statekv::server {

// Redis's string2ll: optional '-', decimal digits, no '+', no spaces, no leading
// zeros (except "0" itself), within int64. Anything else is nullopt.
std::optional<int64_t> parse_int64(std::string_view text);

// Redis's strtoul-based cursor parsing: an unsigned decimal; leading '-' wraps as
// strtoul does; rejects a leading space, trailing bytes and overflow.
std::optional<uint64_t> parse_cursor(std::string_view text);

// Redis's string2ld: strtold over the whole text; rejects empty, leading space,
// trailing bytes, NaN and overflow/underflow. Used by INCRBYFLOAT.
std::optional<long double> parse_long_double(std::string_view text);

// Redis's ld2string(LD_STR_HUMAN): "%.17Lf" with trailing zeros (and a trailing
// '.') removed and "-0" printed as "0".
std::string format_long_double(long double value);

}  // namespace statekv::server
