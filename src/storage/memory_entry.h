// The memory engine's entry: one malloc allocation holding a key and its value.
//
//   varint(key length) varint(value length) key bytes value bytes
//
// Varints are LEB128 (7 bits per byte), so a 16-byte key with a 66-byte value costs
// 2 bytes of header. Entries are plain `char*` owned by exactly one memory-engine
// stripe, allocated from its EntryArena (storage/entry_arena.h) and released to it
// with their encoded size (release). Internal to src/storage.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>

#include "storage/entry_arena.h"

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

inline size_t encoded_size(const char* e) {
  const Decoded d = decode(e);
  return static_cast<size_t>(d.value.data() + d.value.size() - e);
}

// Bytes the arena holds for e.
inline size_t allocated_bytes(const char* e) {
  return EntryArena::held_bytes(e, encoded_size(e));
}

inline char* make(EntryArena& arena, std::string_view key, std::string_view value) {
  char* e = arena.allocate(encoded_size(key.size(), value.size()));
  encode_into(e, key, value);
  return e;
}

inline void release(EntryArena& arena, char* e) {
  arena.release(e, encoded_size(e));
}

// Replacing a value happens in place when the entry's block can hold the new
// size: the same slab class (storage/entry_arena.h), or a malloc'd block with
// room that would not be left mostly empty (otherwise realloc, which may move
// it). Otherwise the entry moves to a block of its new size.
//
// Whether replacing e's value with one of vlen bytes may move the entry.
inline bool may_move(const char* e, size_t vlen) {
  const size_t size = encoded_size(e);
  const size_t need = encoded_size(key_of(e).size(), vlen);
  if (!EntryArena::same_block_class(size, need)) return true;
  if (size <= EntryArena::kMaxSlabBlock) return false;
  const size_t usable = EntryArena::usable_bytes(e);
  return need > usable || (usable > 64 && need < usable / 2);
}

// Returns the entry's address afterwards; the key bytes are unchanged.
inline char* replace_value(EntryArena& arena, char* e, std::string_view value) {
  const Decoded old = decode(e);
  const size_t klen = old.key.size();
  const size_t old_size = encoded_size(e);
  const size_t old_header = varint_size(klen) + varint_size(old.value.size());
  const size_t need = encoded_size(klen, value.size());
  if (!EntryArena::same_block_class(old_size, need)) {
    char* moved = make(arena, old.key, value);
    arena.release(e, old_size);
    return moved;
  }
  if (need <= EntryArena::kMaxSlabBlock) {
    encode_into(e, std::string_view(e + old_header, klen), value);
    return e;
  }
  const size_t usable = EntryArena::usable_bytes(e);
  if (need > usable) {
    // Grow first (realloc keeps the old bytes, key included), then re-encode.
    e = arena.reallocate(e, need);
    encode_into(e, std::string_view(e + old_header, klen), value);
    return e;
  }
  encode_into(e, std::string_view(e + old_header, klen), value);
  // Shrink only when more than half would sit idle: same-size and slightly smaller
  // overwrites (the common case: counters, fixed-size records) never reallocate.
  // Re-encoding happened first, so the shrink keeps every byte that matters.
  if (usable > 64 && need < usable / 2) e = arena.reallocate(e, need);
  return e;
}

}  // namespace statekv::storage::entry
