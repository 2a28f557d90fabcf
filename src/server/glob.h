// Redis's glob-style pattern matching (stringmatchlen), used by KEYS, SCAN MATCH
// and CONFIG GET: '*', '?', '[a-z]', '[^x]', and '\' escapes, with the same
// quirks as Redis (an unclosed '[' matches its contents, ranges may be reversed).
//
// Pure functions; thread-safe.
#pragma once

#include <string_view>

namespace statekv::server {

// True when text matches pattern. nocase folds ASCII case (CONFIG GET uses it).
bool glob_match(std::string_view pattern, std::string_view text, bool nocase = false);

// The literal bytes every match must start with (the pattern up to its first
// special character), so callers can restrict an ordered scan to that prefix.
std::string_view glob_literal_prefix(std::string_view pattern);

}  // namespace statekv::server
