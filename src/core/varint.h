// Unsigned varints (LEB128, protobuf's encoding): seven bits a byte, the low
// group first, the high bit set on every byte but the last. A 64-bit value
// takes 1 to 10 bytes. Every format of statekv that writes variable-width
// integers (the replication codec, the stored records, the peer batches,
// session tokens) uses these.
//
// Decoding is on the hot path of every collection command (a list head holds
// its first element's index, about 2^63: ten bytes), so a varint of two
// bytes or more is decoded from one 8-byte load and three mask-and-shift
// steps instead of a loop over its bytes.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace statekv {

inline constexpr size_t kMaxVarintBytes = 10;

// Writes v at p (room for kMaxVarintBytes needed); returns the end.
inline char* encode_varint(uint64_t v, char* p) {
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

inline void append_varint(std::string& out, uint64_t v) {
  char buf[kMaxVarintBytes];
  out.append(buf, static_cast<size_t>(encode_varint(v, buf) - buf));
}

namespace varint_detail {

// Packs the low seven bits of each of the eight bytes of x (little-endian:
// byte 0 the lowest group) into one 56-bit number.
inline uint64_t pack_groups(uint64_t x) {
  x &= 0x7f7f7f7f7f7f7f7fULL;
  x = ((x & 0x7f007f007f007f00ULL) >> 1) | (x & 0x007f007f007f007fULL);
  x = ((x & 0x3fff00003fff0000ULL) >> 2) | (x & 0x00003fff00003fffULL);
  x = ((x & 0x0fffffff00000000ULL) >> 4) | (x & 0x000000000fffffffULL);
  return x;
}

inline size_t decode_bytewise(std::string_view in, uint64_t* v) {
  uint64_t result = 0;
  const size_t avail = in.size() < kMaxVarintBytes ? in.size() : kMaxVarintBytes;
  for (size_t i = 0; i < avail; ++i) {
    const auto b = static_cast<uint8_t>(in[i]);
    if (i == kMaxVarintBytes - 1 && b > 1) return 0;  // past 64 bits
    result |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if (b < 0x80) {
      *v = result;
      return i + 1;
    }
  }
  return 0;
}

// Two bytes or more (the first has its high bit set).
inline size_t decode_long(std::string_view in, uint64_t* v) {
  if constexpr (std::endian::native != std::endian::little) {
    return decode_bytewise(in, v);
  } else {
    uint64_t word = 0;
    if (in.size() >= 8) {
      std::memcpy(&word, in.data(), 8);  // one load
    } else {
      // A zero byte past the end of a short input reads as a last byte: the
      // length check below refuses it.
      for (size_t i = 0; i < in.size(); ++i) {
        word |= static_cast<uint64_t>(static_cast<uint8_t>(in[i])) << (8 * i);
      }
    }
    const uint64_t last_bytes = ~word & 0x8080808080808080ULL;
    if (last_bytes != 0) {
      const size_t n = static_cast<size_t>(std::countr_zero(last_bytes) / 8) + 1;
      if (n > in.size()) return 0;  // cut short
      *v = pack_groups(n == 8 ? word : word & ((uint64_t{1} << (8 * n)) - 1));
      return n;
    }
    // Nine or ten bytes: the first eight all say "more".
    uint64_t result = pack_groups(word);
    if (in.size() < 9) return 0;
    const auto b8 = static_cast<uint8_t>(in[8]);
    result |= static_cast<uint64_t>(b8 & 0x7f) << 56;
    if (b8 < 0x80) {
      *v = result;
      return 9;
    }
    if (in.size() < 10) return 0;
    const auto b9 = static_cast<uint8_t>(in[9]);
    if (b9 > 1) return 0;  // past 64 bits, or an eleventh byte
    *v = result | (static_cast<uint64_t>(b9) << 63);
    return 10;
  }
}

}  // namespace varint_detail

// Decodes the varint at the front of `in` into *v: the bytes it took (1 to
// kMaxVarintBytes), or 0 when `in` ends first or the value does not fit in
// 64 bits (*v untouched then).
inline size_t decode_varint(std::string_view in, uint64_t* v) {
  if (!in.empty() && static_cast<uint8_t>(in[0]) < 0x80) {
    *v = static_cast<uint8_t>(in[0]);
    return 1;
  }
  if (in.empty()) return 0;
  return varint_detail::decode_long(in, v);
}

// The same, taking the varint off the front of *in on success.
inline bool take_varint(std::string_view* in, uint64_t* v) {
  const size_t n = decode_varint(*in, v);
  in->remove_prefix(n);
  return n != 0;
}

}  // namespace statekv
