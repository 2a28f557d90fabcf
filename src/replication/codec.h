// The one binary codec for every statekv protocol message.
//
// The simulator (sim/) and the real runtime (net/) move the same bytes: a
// protocol's typed messages are encoded here, carried as bytes, and decoded on
// the receiving node. Every simulated message is round-tripped through this
// codec, so a field that does not survive encoding fails in simulation first.
//
// Wire format of one message (the envelope):
//   u8      codec version (kCodecVersion)
//   varint  type tag (the struct's kTag; unique within its protocol's variant)
//   ...     the struct's fields, in the order its encode() writes them
// Integers are little-endian fixed width or LEB128 varints; bytes are a varint
// length followed by the raw bytes.
//
// A message struct T provides:
//   static constexpr uint32_t kTag;
//   void encode(Writer& w) const;
//   static Result<T> decode(Reader& r);
// and a protocol's message type is std::variant<T1, T2, ...>; encode_message /
// decode_message work on that variant. Decoding never trusts its input: every
// read is bounds-checked and truncated or garbled bytes give a Corruption status.
//
// Thread safety: Writer and Reader are plain values; use one per thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/status.h"

namespace statekv::replication {

inline constexpr uint8_t kCodecVersion = 1;

// Appends encoded fields to a byte string it owns.
class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void fixed32(uint32_t v);
  void fixed64(uint64_t v);
  void varint(uint64_t v);
  // Zigzag-encoded signed varint (small negative numbers stay small).
  void svarint(int64_t v) {
    varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  void boolean(bool v) { u8(v ? 1 : 0); }
  void bytes(std::string_view v);
  // A presence byte, then the bytes when present.
  void optional_bytes(const std::optional<std::string>& v);

  const std::string& data() const { return out_; }
  std::string take() && { return std::move(out_); }

 private:
  std::string out_;
};

// Reads fields from a byte range it does not own; the bytes must outlive it.
// Every accessor fails with Corruption instead of reading past the end.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  Result<uint8_t> u8();
  Result<uint32_t> fixed32();
  Result<uint64_t> fixed64();
  // At most 10 bytes; an overlong or unterminated varint is Corruption.
  Result<uint64_t> varint();
  Result<int64_t> svarint();
  Result<bool> boolean();
  Result<std::string> bytes();
  // The same bytes as a view into the input (valid while the input is).
  Result<std::string_view> bytes_view();
  Result<std::optional<std::string>> optional_bytes();

  bool at_end() const { return pos_ == in_.size(); }
  size_t remaining() const { return in_.size() - pos_; }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

namespace detail {

template <typename Variant, size_t I = 0>
Result<Variant> decode_alternative(uint64_t tag, Reader& r) {
  if constexpr (I == std::variant_size_v<Variant>) {
    return Status::Corruption("unknown message tag " + std::to_string(tag));
  } else {
    using T = std::variant_alternative_t<I, Variant>;
    if (tag == T::kTag) {
      Result<T> v = T::decode(r);
      if (!v.ok()) return v.status();
      return Variant(std::move(v).value());
    }
    return decode_alternative<Variant, I + 1>(tag, r);
  }
}

}  // namespace detail

// Encodes one message of a protocol's variant type into an envelope.
template <typename Variant>
std::string encode_message(const Variant& msg) {
  Writer w;
  w.u8(kCodecVersion);
  std::visit(
      [&w](const auto& m) {
        w.varint(std::decay_t<decltype(m)>::kTag);
        m.encode(w);
      },
      msg);
  return std::move(w).take();
}

// Decodes an envelope. Fails on a different codec version, an unknown tag, a
// truncated body, or trailing bytes after the body.
template <typename Variant>
Result<Variant> decode_message(std::string_view bytes) {
  Reader r(bytes);
  Result<uint8_t> version = r.u8();
  if (!version.ok()) return version.status();
  if (*version != kCodecVersion) {
    return Status::Corruption("codec version " + std::to_string(*version) + ", expected " +
                              std::to_string(kCodecVersion));
  }
  Result<uint64_t> tag = r.varint();
  if (!tag.ok()) return tag.status();
  Result<Variant> msg = detail::decode_alternative<Variant>(*tag, r);
  if (!msg.ok()) return msg;
  if (!r.at_end()) return Status::Corruption("trailing bytes after message");
  return msg;
}

}  // namespace statekv::replication
