#include "partition/slots.h"

#include <array>

namespace statekv::partition {
namespace {

// The CRC-16/XMODEM table, one entry per leading byte: entry b is the CRC
// register after shifting b (placed in the high byte) through the polynomial
// eight times, MSB first, as the spec (no reflection) says.
constexpr std::array<uint16_t, 256> make_table() {
  constexpr uint16_t kPoly = 0x1021;
  std::array<uint16_t, 256> table{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint16_t crc = static_cast<uint16_t>(b << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ kPoly)
                           : static_cast<uint16_t>(crc << 1);
    }
    table[b] = crc;
  }
  return table;
}

constexpr std::array<uint16_t, 256> kTable = make_table();

}  // namespace

uint16_t crc16(std::string_view data) {
  uint16_t crc = 0;
  for (char c : data) {
    const auto byte = static_cast<uint8_t>(c);
    crc = static_cast<uint16_t>((crc << 8) ^ kTable[((crc >> 8) ^ byte) & 0xff]);
  }
  return crc;
}

std::string_view hash_tag(std::string_view key) {
  const size_t open = key.find('{');
  if (open == std::string_view::npos) return key;
  const size_t close = key.find('}', open + 1);
  // No '}' after the first '{', or "{}" with nothing inside: the whole key.
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

uint32_t key_slot(std::string_view key) {
  // 16384 is a power of two: Redis masks with 0x3FFF, the same as mod.
  return crc16(hash_tag(key)) & (kSlotCount - 1);
}

}  // namespace statekv::partition
