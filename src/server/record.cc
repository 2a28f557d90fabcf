#include "server/record.h"

#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "core/varint.h"

namespace statekv::server {
namespace {

constexpr uint8_t kTypeMask = 0x0f;
constexpr uint8_t kHasExpiry = 0x10;
constexpr uint8_t kMaxType = static_cast<uint8_t>(ValueType::kZset);

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

uint32_t get_be32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// A generation in element keys: its 16-bit space (the high bits, Store's node id) then
// its 48-bit counter, each as an order-preserving, prefix-free number: one byte for
// 0..247, otherwise 0xf8 + (n - 1) and the value's n big-endian bytes (n = 1..8, as few
// as hold it). Byte order of the encodings is numeric order of the generations, and no
// generation's encoding is a prefix of another's, so element_prefix(gen + 1) bounds
// generation gen's elements from above. A store's first 247 generations cost 2 bytes
// instead of be64's 8. The split matches Store's (node id in the high 16 bits) only for
// compactness: order and parsing hold for any 64-bit gen.
constexpr uint8_t kOrderedOneByteMax = 0xf7;
constexpr int kGenerationSpaceShift = 48;
constexpr uint64_t kGenerationCounterMask = (uint64_t{1} << kGenerationSpaceShift) - 1;

// Writes the form at p (at most 9 bytes); returns the end.
char* put_ordered(uint64_t v, char* p) {
  if (v <= kOrderedOneByteMax) {
    *p++ = static_cast<char>(v);
    return p;
  }
  const int n = (std::bit_width(v) + 7) / 8;
  *p++ = static_cast<char>(kOrderedOneByteMax + n);
  for (int i = n - 1; i >= 0; --i) *p++ = static_cast<char>((v >> (8 * i)) & 0xff);
  return p;
}

// Reads a put_ordered number from the front of *in; false when truncated or not in
// its shortest form (every value has exactly one encoding).
// The bytes of an order-preserving number, from its first byte.
size_t ordered_size(uint8_t first) {
  return first <= kOrderedOneByteMax ? 1 : 1 + (first - kOrderedOneByteMax);
}

bool get_ordered(std::string_view* in, uint64_t* v) {
  if (in->empty()) return false;
  const uint8_t first = static_cast<uint8_t>((*in)[0]);
  if (first <= kOrderedOneByteMax) {
    *v = first;
    in->remove_prefix(1);
    return true;
  }
  const size_t n = ordered_size(first) - 1;
  if (in->size() < 1 + n) return false;
  uint64_t r = 0;
  for (size_t i = 1; i <= n; ++i) r = (r << 8) | static_cast<uint8_t>((*in)[i]);
  if (static_cast<size_t>((std::bit_width(r) + 7) / 8) != n || r <= kOrderedOneByteMax)
    return false;
  *v = r;
  in->remove_prefix(1 + n);
  return true;
}

// The marker bits are left out (key_generation): 2 bytes, not 7.
constexpr size_t kMaxGeneration = 2 * 9;
char* put_generation(uint64_t gen, char* p) {
  gen = key_generation(gen);
  return put_ordered(gen & kGenerationCounterMask, put_ordered(gen >> kGenerationSpaceShift, p));
}
void put_generation(uint64_t gen, std::string* out) {
  char buf[kMaxGeneration];
  out->append(buf, static_cast<size_t>(put_generation(gen, buf) - buf));
}

// "m" + gen(gen) [+ be32(position)]: one append, as every element read and
// write builds one.
void put_element_prefix(uint64_t gen, const uint32_t* position, std::string* out) {
  char buf[1 + kMaxGeneration + 4];
  buf[0] = kElementPrefix;
  char* p = put_generation(gen, buf + 1);
  if (position != nullptr) {
    for (int i = 3; i >= 0; --i) p[3 - i] = static_cast<char>((*position >> (8 * i)) & 0xff);
    p += 4;
  }
  out->assign(buf, static_cast<size_t>(p - buf));
}

bool get_generation(std::string_view* in, uint64_t* gen) {
  uint64_t space = 0;
  uint64_t counter = 0;
  if (!get_ordered(in, &space) || !get_ordered(in, &counter)) return false;
  if (space >> (64 - kGenerationSpaceShift) != 0 || counter > kGenerationCounterMask ||
      key_generation(counter) != counter) {
    return false;  // a key never carries a marker bit
  }
  *gen = (space << kGenerationSpaceShift) | counter;
  return true;
}

}  // namespace

std::string_view type_name(ValueType type) {
  switch (type) {
    case ValueType::kString:
      return "string";
    case ValueType::kHash:
      return "hash";
    case ValueType::kSet:
      return "set";
    case ValueType::kList:
      return "list";
    case ValueType::kZset:
      return "zset";
  }
  return "none";
}

void encode_record(std::string_view value, int64_t expire_ms, std::string* out) {
  encode_record(ValueType::kString, value, expire_ms, out);
}

void encode_record(ValueType type, std::string_view value, int64_t expire_ms, std::string* out) {
  out->clear();
  uint8_t header = static_cast<uint8_t>(type);
  if (expire_ms != 0) header |= kHasExpiry;
  out->push_back(static_cast<char>(header));
  if (expire_ms != 0) put_be64(static_cast<uint64_t>(expire_ms), out);
  out->append(value);
}

bool decode_record(std::string_view raw, RecordView* out) {
  if (raw.empty()) return false;
  uint8_t header = static_cast<uint8_t>(raw[0]);
  if ((header & kTypeMask) > kMaxType) return false;
  if ((header & ~(kTypeMask | kHasExpiry)) != 0) return false;
  out->type = static_cast<ValueType>(header & kTypeMask);
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

void data_key(uint64_t scope, std::string_view key, std::string* out) {
  if (scope == 0) {
    data_key(key, out);
    return;
  }
  scope_prefix(scope, out);
  out->append(key);
}

void scope_prefix(uint64_t scope, std::string* out) {
  out->clear();
  out->push_back(kScopedDataPrefix);
  put_be64(scope, out);
}

bool parse_data_key(std::string_view raw, uint64_t* scope, std::string_view* key) {
  if (raw.empty()) return false;
  if (raw[0] == kDataPrefix) {
    *scope = 0;
    *key = raw.substr(1);
    return true;
  }
  if (raw[0] != kScopedDataPrefix || raw.size() < 9) return false;
  *scope = get_be64(raw.data() + 1);
  *key = raw.substr(9);
  return *scope != 0;
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

bool decode_collection(std::string_view payload, CollectionHead* out) {
  if (payload.empty()) return false;
  const uint8_t enc = static_cast<uint8_t>(payload[0]);
  if (enc < static_cast<uint8_t>(Encoding::kCompact) ||
      enc > static_cast<uint8_t>(Encoding::kElements)) {
    return false;
  }
  out->encoding = static_cast<Encoding>(enc);
  payload.remove_prefix(1);
  out->gen = 0;
  out->head = 0;
  out->entries = {};
  if (out->encoding == Encoding::kElements) {
    if (!take_varint(&payload, &out->gen) || out->gen == 0) return false;
    if (!take_varint(&payload, &out->count)) return false;
    // Lists add the index of their first element.
    if (!payload.empty() && !take_varint(&payload, &out->head)) return false;
    return payload.empty();
  }
  if (!take_varint(&payload, &out->count)) return false;
  out->entries = payload;
  return true;
}

uint64_t record_generation(ValueType type, std::string_view value) {
  if (type == ValueType::kString || value.empty() ||
      static_cast<uint8_t>(value[0]) != static_cast<uint8_t>(Encoding::kElements)) {
    return 0;
  }
  // The generation only: every write and every locked read asks, and a
  // list head's first index (ten varint bytes) is the commands' to decode.
  value.remove_prefix(1);
  uint64_t gen = 0;
  return take_varint(&value, &gen) ? gen : 0;
}

void encode_elements_head(uint64_t gen, uint64_t count, std::string* out) {
  char buf[1 + 2 * kMaxVarintBytes];
  buf[0] = static_cast<char>(Encoding::kElements);
  char* end = encode_varint(count, encode_varint(gen, buf + 1));
  out->assign(buf, static_cast<size_t>(end - buf));
}

void encode_list_head(uint64_t gen, uint64_t count, uint64_t head, std::string* out) {
  char buf[1 + 3 * kMaxVarintBytes];
  buf[0] = static_cast<char>(Encoding::kElements);
  char* end = encode_varint(head, encode_varint(count, encode_varint(gen, buf + 1)));
  out->assign(buf, static_cast<size_t>(end - buf));
}

void begin_compact(Encoding encoding, uint64_t count, std::string* out) {
  char buf[1 + kMaxVarintBytes];
  buf[0] = static_cast<char>(encoding);
  out->assign(buf, static_cast<size_t>(encode_varint(count, buf + 1) - buf));
}

void append_compact(std::string_view bytes, std::string* out) {
  char buf[kMaxVarintBytes];
  char* end = encode_varint(bytes.size(), buf);
  const size_t n = static_cast<size_t>(end - buf);
  const size_t at = out->size();
  // One resize for the length and the bytes (a compact record is rewritten
  // element by element on every change of it).
  out->resize(at + n + bytes.size());
  std::memcpy(out->data() + at, buf, n);
  if (!bytes.empty()) std::memcpy(out->data() + at + n, bytes.data(), bytes.size());
}

bool CompactReader::next(std::string_view* out) {
  if (rest_.empty() || !ok_) return false;
  uint64_t len = 0;
  if (!take_varint(&rest_, &len) || len > rest_.size()) {
    ok_ = false;
    return false;
  }
  *out = rest_.substr(0, len);
  rest_.remove_prefix(len);
  return true;
}

void element_prefix(uint64_t gen, std::string* out) {
  put_element_prefix(gen, nullptr, out);
}

uint32_t element_hash(std::string_view field) {
  return XXH32(field.data(), field.size(), 0);
}

uint32_t element_position(uint64_t gen, std::string_view field) {
  return ordered_elements(gen) ? 0 : element_hash(field);
}

void element_key(uint64_t gen, std::string_view field, std::string* out) {
  const uint32_t position = element_position(gen, field);
  put_element_prefix(gen, &position, out);
  out->append(field);
}

void element_position_key(uint64_t gen, uint32_t position, std::string* out) {
  put_element_prefix(gen, &position, out);
}

bool parse_element_key(std::string_view raw, uint64_t* gen, uint32_t* position,
                       std::string_view* field) {
  if (raw.empty() || raw[0] != kElementPrefix) return false;
  raw.remove_prefix(1);
  if (!get_generation(&raw, gen) || raw.size() < 4) return false;
  *position = get_be32(raw.data());
  *field = raw.substr(4);
  return true;
}

bool is_ordered_element_key(std::string_view key) {
  // The memory engine asks for every key it reads or writes: the lengths of
  // the prefix only, not parse_element_key's decoding of the generation.
  if (key.empty() || key[0] != kElementPrefix) return false;
  const size_t group = collection_group_length(key);
  if (group == 0 || key.size() != group + 4 + sizeof(uint64_t)) return false;
  return get_be32(key.data() + group) == 0;  // position 0: the list-order layout
}

uint64_t score_order_bits(double score) {
  if (score == 0) score = 0.0;  // -0 orders as 0
  uint64_t bits = 0;
  std::memcpy(&bits, &score, sizeof bits);
  constexpr uint64_t kSign = uint64_t{1} << 63;
  return (bits & kSign) ? ~bits : bits | kSign;
}

bool score_from_order_bits(uint64_t bits, double* out) {
  constexpr uint64_t kSign = uint64_t{1} << 63;
  bits = (bits & kSign) ? bits & ~kSign : ~bits;
  double d = 0;
  std::memcpy(&d, &bits, sizeof d);
  if (std::isnan(d)) return false;
  *out = d;
  return true;
}

namespace {

// ord(): ten 7-bit groups cover the 64 bits, the last holding bit 0 in its top
// place. Ordering: up to the first group where two forms differ, their bytes
// agree (the continuation bit too: both go on); there the larger group wins,
// and if one form ended there (group 0, no continuation) the other continues
// with a nonzero group, so it is the larger number and its byte the larger.
constexpr int kOrderGroups = 10;

uint8_t order_group(uint64_t bits, int i) {
  return i < kOrderGroups - 1 ? static_cast<uint8_t>((bits >> (57 - 7 * i)) & 0x7f)
                              : static_cast<uint8_t>((bits & 1) << 6);
}

}  // namespace

void append_score_order(uint64_t bits, std::string* out) {
  int last = kOrderGroups - 1;
  while (last > 0 && order_group(bits, last) == 0) --last;
  for (int i = 0; i <= last; ++i) {
    out->push_back(static_cast<char>((order_group(bits, i) << 1) | (i < last ? 1 : 0)));
  }
}

bool get_score_order(std::string_view* in, uint64_t* bits) {
  uint64_t r = 0;
  for (int i = 0; i < kOrderGroups && static_cast<size_t>(i) < in->size(); ++i) {
    const uint8_t b = static_cast<uint8_t>((*in)[static_cast<size_t>(i)]);
    const uint64_t group = b >> 1;
    if (i < kOrderGroups - 1) {
      r |= group << (57 - 7 * i);
    } else if ((group & 0x3f) != 0 || (b & 1) != 0) {
      return false;  // the tenth group holds one bit and ends the form
    } else {
      r |= group >> 6;
    }
    if ((b & 1) == 0) {
      // Canonical: the last group is nonzero, unless it is the only one.
      if (group == 0 && i > 0) return false;
      *bits = r;
      in->remove_prefix(static_cast<size_t>(i) + 1);
      return true;
    }
  }
  return false;  // truncated
}

size_t collection_group_length(std::string_view key) {
  // Lengths only (the memory engine picks every key's stripe with this, several
  // times a command): each of the generation's two numbers takes one byte, or
  // one more for each byte its first byte announces. A malformed number's bytes
  // still give every key that shares them one length, which is all the stripe
  // choice needs; one cut short gives 0.
  if (key.empty() || (key[0] != kScorePrefix && key[0] != kElementPrefix)) return 0;
  size_t at = 1;
  for (int number = 0; number < 2; ++number) {
    if (at >= key.size()) return 0;
    at += ordered_size(static_cast<uint8_t>(key[at]));
  }
  return at <= key.size() ? at : 0;
}

void score_prefix(uint64_t gen, std::string* out) {
  out->clear();
  out->push_back(kScorePrefix);
  put_generation(gen, out);
}

void score_index_key(uint64_t gen, uint64_t order_bits, std::string_view member, std::string* out) {
  score_prefix(gen, out);
  append_score_order(order_bits, out);
  out->append(member);
}

bool parse_score_index_key(std::string_view raw, uint64_t* gen, uint64_t* order_bits,
                           std::string_view* member) {
  if (raw.empty() || raw[0] != kScorePrefix) return false;
  raw.remove_prefix(1);
  if (!get_generation(&raw, gen) || !get_score_order(&raw, order_bits)) return false;
  *member = raw;
  return true;
}

void score_index_value(double score, std::string* out) {
  out->clear();
  double back = 0;
  score_from_order_bits(score_order_bits(score), &back);
  if (std::memcmp(&back, &score, sizeof score) == 0) return;
  uint64_t bits = 0;
  std::memcpy(&bits, &score, sizeof bits);
  put_be64(bits, out);
}

bool decode_score_index_entry(uint64_t order_bits, std::string_view value, double* out) {
  if (value.empty()) return score_from_order_bits(order_bits, out);
  return decode_score_bytes(value, out) && !std::isnan(*out) &&
         score_order_bits(*out) == order_bits;
}

bool decode_score_bytes(std::string_view v, double* out) {
  if (v.size() != 8) return false;
  const uint64_t bits = get_be64(v.data());
  std::memcpy(out, &bits, sizeof bits);
  return true;
}

void garbage_key(uint64_t gen, std::string* out) {
  out->clear();
  out->push_back(kGarbagePrefix);
  put_be64(gen, out);
}

bool parse_garbage_key(std::string_view raw, uint64_t* gen) {
  if (raw.size() != 9 || raw[0] != kGarbagePrefix) return false;
  *gen = get_be64(raw.data() + 1);
  return *gen != 0;
}

void applied_key(uint64_t group, std::string* out) {
  out->clear();
  out->push_back(kAppliedPrefix);
  put_be64(group, out);
}

void applied_value(uint64_t index, std::string* out) {
  out->clear();
  put_be64(index, out);
}

void applied_restoring_value(std::string* out) {
  out->assign(1, 'r');
}

bool parse_applied_value(std::string_view raw, uint64_t* index, bool* restoring) {
  if (raw == "r") {
    *index = 0;
    *restoring = true;
    return true;
  }
  if (raw.size() != 8) return false;
  *index = get_be64(raw.data());
  *restoring = false;
  return true;
}

}  // namespace statekv::server
