#include "net/frame.h"

#include "core/little_endian.h"

#include <fmt/format.h>
#include <xxhash.h>

#include "core/assert.h"

namespace statekv::net {
namespace {

uint32_t checksum(std::string_view payload) {
  return static_cast<uint32_t>(XXH3_64bits(payload.data(), payload.size()));
}

}  // namespace

void append_frame(std::string& out, std::string_view payload) {
  SKV_ASSERT(payload.size() <= UINT32_MAX, "frame payload over 4 GiB");
  out.reserve(out.size() + kFrameHeaderBytes + payload.size());
  append_le32(out, static_cast<uint32_t>(payload.size()));
  append_le32(out, checksum(payload));
  out.append(payload);
}

Status frame_fits(size_t payload_bytes, std::string_view what) {
  if (payload_bytes <= kMaxFrameBytes) return Status::OK();
  return Status::InvalidArgument(fmt::format(
      "{} is {} bytes, over the node-to-node frame limit of {} bytes (client-query-buffer-limit "
      "1gb plus 64mb); it was not sent, so it was not applied",
      what, payload_bytes, kMaxFrameBytes));
}

std::string encode_frame(std::string_view payload) {
  std::string out;
  append_frame(out, payload);
  return out;
}

void FrameReader::feed(std::string_view bytes) {
  if (failed()) return;
  // Drop consumed bytes before growing, once they are at least half the buffer, so
  // compaction costs O(1) amortised per byte.
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(bytes);
}

Result<std::optional<std::string>> FrameReader::next() {
  if (failed()) return error_;
  const size_t available = buf_.size() - pos_;
  if (available < kFrameHeaderBytes) return std::optional<std::string>();
  const uint32_t length = load_le32(buf_.data() + pos_);
  if (length > max_frame_bytes_) {
    error_ = Status::Corruption(
        fmt::format("frame of {} bytes is over the limit of {} bytes", length, max_frame_bytes_));
    return error_;
  }
  if (available - kFrameHeaderBytes < length) {
    // A large frame: make room for all of it at once rather than letting the
    // buffer double past it (the length is within the limit).
    if (length > (1u << 20) && buf_.capacity() - pos_ < kFrameHeaderBytes + length) {
      buf_.erase(0, pos_);
      pos_ = 0;
      buf_.reserve(kFrameHeaderBytes + length);
    }
    return std::optional<std::string>();
  }
  std::string_view payload(buf_.data() + pos_ + kFrameHeaderBytes, length);
  if (checksum(payload) != load_le32(buf_.data() + pos_ + 4)) {
    error_ = Status::Corruption(fmt::format("frame of {} bytes fails its checksum", length));
    return error_;
  }
  if (pos_ == 0 && available == kFrameHeaderBytes + length && length > (1u << 20)) {
    // The buffer is exactly this (large) frame: hand it over without a copy.
    std::optional<std::string> frame(std::move(buf_));
    frame->erase(0, kFrameHeaderBytes);
    buf_ = std::string();
    return frame;
  }
  std::optional<std::string> frame(std::in_place, payload);
  pos_ += kFrameHeaderBytes + length;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  return frame;
}

}  // namespace statekv::net
