#include "server/record.h"

namespace statekv::server {
namespace {

constexpr uint8_t kTypeMask = 0x0f;
constexpr uint8_t kHasExpiry = 0x10;

void put_be64(uint64_t v, std::string* out) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out->append(buf, 8);
}

uint64_t get_be64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

void encode_record(std::string_view value, int64_t expire_ms, std::string* out) {
  out->clear();
  uint8_t header = static_cast<uint8_t>(ValueType::kString);
  if (expire_ms != 0) header |= kHasExpiry;
  out->push_back(static_cast<char>(header));
  if (expire_ms != 0) put_be64(static_cast<uint64_t>(expire_ms), out);
  out->append(value);
}

bool decode_record(std::string_view raw, RecordView* out) {
  if (raw.empty()) return false;
  uint8_t header = static_cast<uint8_t>(raw[0]);
  if ((header & kTypeMask) != static_cast<uint8_t>(ValueType::kString)) return false;
  if ((header & ~(kTypeMask | kHasExpiry)) != 0) return false;
  out->type = ValueType::kString;
  size_t pos = 1;
  out->expire_ms = 0;
  if (header & kHasExpiry) {
    if (raw.size() < 9) return false;
    out->expire_ms = static_cast<int64_t>(get_be64(raw.data() + 1));
    if (out->expire_ms <= 0) return false;
    pos = 9;
  }
  out->value = raw.substr(pos);
  return true;
}

void data_key(std::string_view key, std::string* out) {
  out->clear();
  out->push_back(kDataPrefix);
  out->append(key);
}

void expiry_key(int64_t expire_ms, std::string_view key, std::string* out) {
  out->clear();
  out->push_back(kExpiryPrefix);
  put_be64(static_cast<uint64_t>(expire_ms), out);
  out->append(key);
}

bool parse_expiry_key(std::string_view raw, int64_t* expire_ms, std::string_view* key) {
  if (raw.size() < 9 || raw[0] != kExpiryPrefix) return false;
  *expire_ms = static_cast<int64_t>(get_be64(raw.data() + 1));
  *key = raw.substr(9);
  return true;
}

}  // namespace statekv::server
