// The memory engine's entry: one malloc allocation holding a key and its value.
//
//   varint(key length) varint(value length) key bytes value bytes
//
// Varints are LEB128 (7 bits per byte), so a 16-byte key with a 66-byte value costs
// 2 bytes of header. Entries are plain `char*` owned by exactly one memory-engine
// stripe, freed with std::free(). Internal to src/storage.
#pragma once

#include <malloc.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>

namespace statekv::storage::entry {

inline size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

inline char* put_varint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

inline const char* get_varint(const char* p, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0;; shift += 7) {
    const auto byte = static_cast<unsigned char>(*p++);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (byte < 0x80) break;
  }
  *v = result;
  return p;
}

struct Decoded {
  std::string_view key;
  std::string_view value;
};

inline Decoded decode(const char* e) {
  uint64_t klen, vlen;
  const char* p = get_varint(get_varint(e, &klen), &vlen);
  return {{p, klen}, {p + klen, vlen}};
}

inline std::string_view key_of(const char* e) {
  uint64_t klen, vlen;
  const char* p = get_varint(get_varint(e, &klen), &vlen);
  return {p, klen};
}

inline size_t encoded_size(size_t klen, size_t vlen) {
  return varint_size(klen) + varint_size(vlen) + klen + vlen;
}

// Writes header, key and value into a buffer of at least encoded_size() bytes.
// The key may already sit inside the buffer at another offset: it is moved first
// (memmove), then the header is written in front of it. value must not alias buf.
inline void encode_into(char* buf, std::string_view key, std::string_view value) {
  const size_t header = varint_size(key.size()) + varint_size(value.size());
  std::memmove(buf + header, key.data(), key.size());
  put_varint(put_varint(buf, key.size()), value.size());
  std::memcpy(buf + header + key.size(), value.data(), value.size());
}

// Bytes the allocator really holds for e: usable size plus glibc's chunk header word.
inline size_t allocated_bytes(const char* e) {
  return malloc_usable_size(const_cast<char*>(e)) + sizeof(size_t);
}

inline char* make(std::string_view key, std::string_view value) {
  char* e = static_cast<char*>(std::malloc(encoded_size(key.size(), value.size())));
  if (e == nullptr) throw std::bad_alloc();
  encode_into(e, key, value);
  return e;
}

// Replacing a value happens in place when the allocation has room and would not be
// left mostly empty, otherwise through realloc (which may move the entry).
// replace_value returns the entry's address afterwards; the key bytes are unchanged.
//
// Whether replacing e's value with one of vlen bytes may move the entry (realloc).
inline bool may_move(const char* e, size_t vlen) {
  const size_t need = encoded_size(key_of(e).size(), vlen);
  const size_t usable = malloc_usable_size(const_cast<char*>(e));
  return need > usable || (usable > 64 && need < usable / 2);
}

inline char* replace_value(char* e, std::string_view value) {
  const Decoded old = decode(e);
  const size_t klen = old.key.size();
  const size_t old_header = varint_size(klen) + varint_size(old.value.size());
  const size_t need = encoded_size(klen, value.size());
  const size_t usable = malloc_usable_size(e);
  if (need > usable) {
    // Grow first (realloc keeps the old bytes, key included), then re-encode.
    char* moved = static_cast<char*>(std::realloc(e, need));
    if (moved == nullptr) throw std::bad_alloc();
    e = moved;
    encode_into(e, std::string_view(e + old_header, klen), value);
    return e;
  }
  encode_into(e, std::string_view(e + old_header, klen), value);
  // Shrink only when more than half would sit idle: same-size and slightly smaller
  // overwrites (the common case: counters, fixed-size records) never reallocate.
  // Re-encoding happened first, so the shrink keeps every byte that matters.
  if (usable > 64 && need < usable / 2) {
    char* moved = static_cast<char*>(std::realloc(e, need));
    if (moved != nullptr) e = moved;  // on failure the larger block stays valid
  }
  return e;
}

}  // namespace statekv::storage::entry
