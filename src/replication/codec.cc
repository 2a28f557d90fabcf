#include "replication/codec.h"

#include "core/little_endian.h"
#include "core/varint.h"

namespace statekv::replication {

void Writer::fixed32(uint32_t v) {
  append_le32(out_, v);
}

void Writer::fixed64(uint64_t v) {
  append_le64(out_, v);
}

void Writer::varint(uint64_t v) {
  append_varint(out_, v);
}

void Writer::bytes(std::string_view v) {
  varint(v.size());
  out_.append(v);
}

void Writer::optional_bytes(const std::optional<std::string>& v) {
  boolean(v.has_value());
  if (v) bytes(*v);
}

Result<uint8_t> Reader::u8() {
  if (pos_ >= in_.size()) return Status::Corruption("truncated: expected 1 more byte");
  return static_cast<uint8_t>(in_[pos_++]);
}

Result<uint32_t> Reader::fixed32() {
  if (remaining() < 4) return Status::Corruption("truncated: expected 4 bytes");
  const uint32_t v = load_le32(in_.data() + pos_);
  pos_ += 4;
  return v;
}

Result<uint64_t> Reader::fixed64() {
  if (remaining() < 8) return Status::Corruption("truncated: expected 8 bytes");
  const uint64_t v = load_le64(in_.data() + pos_);
  pos_ += 8;
  return v;
}

Result<uint64_t> Reader::varint() {
  uint64_t v = 0;
  const size_t n = decode_varint(in_.substr(pos_), &v);
  if (n == 0) {
    // Cut short, or past 64 bits (the tenth byte may carry only the top bit).
    return Status::Corruption(remaining() < kMaxVarintBytes ? "truncated varint"
                                                            : "varint overflows 64 bits");
  }
  pos_ += n;
  return v;
}

Result<int64_t> Reader::svarint() {
  Result<uint64_t> u = varint();
  if (!u.ok()) return u.status();
  return static_cast<int64_t>((*u >> 1) ^ (~(*u & 1) + 1));
}

Result<bool> Reader::boolean() {
  Result<uint8_t> b = u8();
  if (!b.ok()) return b.status();
  if (*b > 1) return Status::Corruption("boolean byte " + std::to_string(*b));
  return *b == 1;
}

Result<std::string_view> Reader::bytes_view() {
  Result<uint64_t> n = varint();
  if (!n.ok()) return n.status();
  if (*n > remaining()) {
    return Status::Corruption("truncated: length " + std::to_string(*n) + " but " +
                              std::to_string(remaining()) + " bytes left");
  }
  std::string_view v = in_.substr(pos_, *n);
  pos_ += *n;
  return v;
}

Result<std::string> Reader::bytes() {
  Result<std::string_view> v = bytes_view();
  if (!v.ok()) return v.status();
  return std::string(*v);
}

Result<std::optional<std::string>> Reader::optional_bytes() {
  Result<bool> present = boolean();
  if (!present.ok()) return present.status();
  if (!*present) return std::optional<std::string>();
  Result<std::string> v = bytes();
  if (!v.ok()) return v.status();
  return std::optional<std::string>(std::move(v).value());
}

}  // namespace statekv::replication
