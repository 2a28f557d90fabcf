// RESP request parsing: pure functions over bytes, no I/O, no allocation of
// argument storage (arguments are views into the caller's buffer).
//
// Accepts what Redis accepts from clients: multibulk requests ("*2\r\n$3\r\nGET\r\n...")
// and inline commands ("GET key\r\n", split on spaces with Redis's quoting rules).
// On malformed input it returns kError with Redis's exact error text (without the
// leading "-"), e.g. "ERR Protocol error: invalid multibulk length"; the server
// sends it and closes that connection, as Redis does.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace statekv::resp {

// Redis 7's defaults: proto-max-bulk-len 512mb, multibulk count INT_MAX, inline 64kb.
struct Limits {
  size_t max_bulk_len = 512ull * 1024 * 1024;
  size_t max_multibulk_len = 2147483647;  // INT_MAX, as Redis 7
  size_t max_inline_len = 64 * 1024;
  // The client has not authenticated although a password is required. Redis 7
  // then caps a request at 10 arguments and 16 KiB per argument, so that an
  // unauthenticated peer cannot make the server buffer large requests.
  bool unauthenticated = false;
};
inline constexpr size_t kUnauthenticatedMaxArgs = 10;
inline constexpr size_t kUnauthenticatedMaxBulk = 16384;

enum class ParseStatus { kComplete, kIncomplete, kError };

struct ParseResult {
  ParseStatus status = ParseStatus::kIncomplete;
  // kComplete: bytes of buf that the command used (including an empty inline line,
  // which yields zero args and must simply be skipped).
  size_t consumed = 0;
  // kIncomplete: a lower bound of the total bytes buf must hold before parsing can
  // progress (lets the caller avoid re-parsing a large bulk on every read).
  size_t needed = 0;
  // kError: the error reply text, e.g. "ERR Protocol error: invalid bulk length".
  std::string error;
};

// Parses one request from the front of buf into args (cleared first). Inline
// arguments that needed unquoting are stored in *scratch and args point there;
// scratch must outlive the use of args. scratch is cleared first too, so args from
// an earlier call that pointed into it are invalidated.
//
// Stateless: call it again on the grown buffer after kIncomplete (waiting until
// buf.size() >= needed). The result never depends on how the bytes were split
// across reads: Redis's 64KB "too big" checks are applied to a fixed window from
// the start of the line, not to whatever happens to be buffered. Linear in the
// bytes it examines; args.size() is only allocated up to what buf could hold.
// Error texts are in resp/protocol_errors.h. Where this differs from Redis 7:
//  - a bulk must be followed by "\r\n" (Redis skips two bytes unchecked);
//  - a NUL byte inside an inline line is data (Redis stops reading the line there).
// Thread-safety: pure function; concurrent calls on different arguments are safe.
ParseResult parse_request(std::string_view buf, const Limits& limits,
                          std::vector<std::string_view>& args, std::vector<std::string>& scratch);

}  // namespace statekv::resp
