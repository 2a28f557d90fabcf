// How the keyspace is laid out in the Engine.
//
//   "d" + key                      -> record
//   "e" + be64(expire_ms) + key    -> ""      (only for keys with a TTL)
//
// A record is a 1-byte header (low nibble: value type; bit 4: has expiry), then,
// when the key has a TTL, its absolute expiry as 8 big-endian bytes of
// milliseconds since the Unix epoch, then the value bytes. Expiry times are
// absolute so that they mean the same thing after a restart; the "e" index is
// ordered by time so that active expiry is a bounded scan of the due prefix.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace statekv::server {

enum class ValueType : uint8_t { kString = 0 };

inline constexpr char kDataPrefix = 'd';
inline constexpr char kExpiryPrefix = 'e';

// A decoded record; value views into the encoded bytes it was decoded from.
struct RecordView {
  ValueType type = ValueType::kString;
  int64_t expire_ms = 0;  // 0: no expiry
  std::string_view value;
};

// Replaces *out with the encoded record.
void encode_record(std::string_view value, int64_t expire_ms, std::string* out);
// False when raw is not a well-formed record (corruption).
bool decode_record(std::string_view raw, RecordView* out);

// Replaces *out with "d" + key.
void data_key(std::string_view key, std::string* out);
// Replaces *out with "e" + be64(expire_ms) + key.
void expiry_key(int64_t expire_ms, std::string_view key, std::string* out);
// Splits an "e" index key; false when malformed.
bool parse_expiry_key(std::string_view raw, int64_t* expire_ms, std::string_view* key);

}  // namespace statekv::server
