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
// Two limits, so that memory stays bounded: until the handshake proved the peer knows
// the cluster secret, frames are handshake messages and a stranger may make a node
// buffer at most kHandshakeMaxFrameBytes; after it, a frame carries a routed command or
// its reply, which may be as large as anything a client may send (a value of up to
// proto-max-bulk-len, 512 MB by default, in a command of up to client-query-buffer-
// limit, 1 GiB by default): kMaxFrameBytes. A frame is only buffered as its bytes
// arrive, and its buffer is sized to the frame once its length is known, so a peer
// costs at most one frame (plus the 64 KiB read buffer) in memory.
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
// After the handshake: the default client-query-buffer-limit (1 GiB, the largest
// command a client may send with the default settings) plus 64 MiB for the routing
// envelope. A sender checks a frame against it before writing (frame_fits), so an
// oversized command is refused, certainly not run, rather than cut off mid-way.
inline constexpr uint32_t kMaxFrameBytes = (uint32_t{1} << 30) + (uint32_t{64} << 20);
inline constexpr uint32_t kDefaultMaxFrameBytes = kMaxFrameBytes;
// Before the handshake completes: handshake messages are under 300 bytes.
inline constexpr uint32_t kHandshakeMaxFrameBytes = 64u << 10;

// OK if a frame of `payload_bytes` fits the peer limit; else InvalidArgument saying
// that `what` was not sent (so it certainly did not run) and naming the limit.
Status frame_fits(size_t payload_bytes, std::string_view what);

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
  // Changes the limit for the frames not yet returned (raised once the handshake
  // authenticated the peer).
  void set_max_frame_bytes(uint32_t max_frame_bytes) { max_frame_bytes_ = max_frame_bytes; }

 private:
  uint32_t max_frame_bytes_;
  std::string buf_;
  size_t pos_ = 0;  // start of the first byte not yet consumed in buf_
  Status error_;
};

}  // namespace statekv::net
