// Fixed-width little-endian integers in byte buffers: every on-disk and
// on-wire format of statekv (codec, frames, the raft log, the handshake)
// writes its fixed-width fields this way.
#pragma once

#include <cstdint>
#include <string>

namespace statekv {

inline void store_le32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline void store_le64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
inline void append_le32(std::string& out, uint32_t v) {
  char b[4];
  store_le32(b, v);
  out.append(b, 4);
}
inline void append_le64(std::string& out, uint64_t v) {
  char b[8];
  store_le64(b, v);
  out.append(b, 8);
}
inline uint32_t load_le32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}
inline uint64_t load_le64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

}  // namespace statekv
