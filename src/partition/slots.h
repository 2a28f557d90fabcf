// Redis Cluster's key -> slot function, bit for bit.
//
// A key's slot is CRC16(key) mod 16384, where CRC16 is CRC-16/XMODEM (poly
// 0x1021, initial value 0, no reflection, no final xor: Redis's crc16.c). Hash
// tags let a client keep related keys in one slot: when the key has a '{' and a
// '}' somewhere after that first '{' with at least one byte between them, only
// the bytes between that first '{' and the first '}' after it are hashed. Every
// other key, including "{}" and keys with a '{' but no later '}', is hashed
// whole. These are the rules of keyHashSlot() in Redis's cluster.c, so
// `redis-cli cluster keyslot K` and key_slot(K) agree for every K.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "meta/cluster_map.h"

namespace statekv::partition {

inline constexpr uint32_t kSlotCount = meta::kSlotCount;  // 16384

// CRC-16/XMODEM of `data` (CRC16("123456789") == 0x31C3).
uint16_t crc16(std::string_view data);

// The bytes of `key` that decide its slot: the hash tag when there is a
// non-empty one, else the whole key. A view into `key`.
std::string_view hash_tag(std::string_view key);

// The Redis Cluster slot of `key`, in [0, kSlotCount).
uint32_t key_slot(std::string_view key);

}  // namespace statekv::partition
