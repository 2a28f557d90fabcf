// Length framing for connections between statekv nodes.
//
// A TCP stream carries frames, each one protocol message (or one handshake message):
//
//   u32 payload length (little-endian)
//   u32 checksum: the low 32 bits of XXH3_64bits(payload), little-endian
//   payload
//
// The checksum catches a garbled stream (a bug, a broken middlebox) before a decoder
// trusts it; it is not authentication (see handshake.h). The receiver refuses a frame
// longer than its limit as soon as the length arrives, so a bad or hostile peer cannot
// make it buffer more than the limit.
//
// FrameReader is sans-IO: the connection feeds it whatever bytes arrived and asks for
// whole frames. After any error the reader stays failed and the connection must be
// closed: once one length is wrong, no later byte can be trusted to start a frame.
//
// Thread safety: encode_frame/append_frame are pure. A FrameReader is a plain value;
// use one per connection, from one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace statekv::net {

inline constexpr size_t kFrameHeaderBytes = 8;
inline constexpr uint32_t kDefaultMaxFrameBytes = uint32_t{64} << 20;  // 64 MiB of payload

// Appends one frame carrying `payload` to `out`. payload must be shorter than 4 GiB.
void append_frame(std::string& out, std::string_view payload);

// One frame carrying `payload`.
std::string encode_frame(std::string_view payload);

class FrameReader {
 public:
  // Frames whose payload is longer than max_frame_bytes are refused.
  explicit FrameReader(uint32_t max_frame_bytes = kDefaultMaxFrameBytes)
      : max_frame_bytes_(max_frame_bytes) {}

  // Adds bytes received from the stream, in order. Ignored once the reader failed.
  void feed(std::string_view bytes);

  // The next whole frame's payload; nullopt when more bytes are needed; Corruption
  // on a bad checksum or a length over the limit, now and on every later call.
  Result<std::optional<std::string>> next();

  bool failed() const { return !error_.ok(); }

  // Bytes fed but not yet returned in a frame. Non-zero when the stream ends means
  // it ended in the middle of a frame (a truncated frame).
  size_t buffered() const { return buf_.size() - pos_; }

  uint32_t max_frame_bytes() const { return max_frame_bytes_; }

 private:
  uint32_t max_frame_bytes_;
  std::string buf_;
  size_t pos_ = 0;  // start of the first byte not yet consumed in buf_
  Status error_;
};

}  // namespace statekv::net
