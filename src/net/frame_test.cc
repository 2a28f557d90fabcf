#include "net/frame.h"

#include <gtest/gtest.h>

#include <vector>

namespace statekv::net {
namespace {

using Frames = std::vector<std::string>;

// Everything the reader can hand out now; fails the test on an error.
Frames drain(FrameReader& reader) {
  Frames out;
  while (true) {
    auto next = reader.next();
    EXPECT_TRUE(next.ok()) << next.status().to_string();
    if (!next.ok() || !next->has_value()) return out;
    out.push_back(std::move(**next));
  }
}

Frames sample_payloads() {
  std::string binary;
  for (int i = 0; i < 300; ++i) binary.push_back(static_cast<char>(i));
  return {"hello", "", binary, std::string(1, '\0'), "last"};
}

std::string stream_of(const Frames& payloads) {
  std::string stream;
  for (const auto& p : payloads) append_frame(stream, p);
  return stream;
}

TEST(Frame, LayoutIsLengthThenChecksumThenPayload) {
  const std::string frame = encode_frame("abc");
  ASSERT_EQ(frame.size(), kFrameHeaderBytes + 3);
  EXPECT_EQ(frame.substr(0, 4), std::string("\x03\x00\x00\x00", 4));
  EXPECT_EQ(frame.substr(8), "abc");
  EXPECT_NE(encode_frame("abd").substr(4, 4), frame.substr(4, 4)) << "checksum covers the payload";
}

TEST(Frame, RoundTripOneFrameThenWaitsForMore) {
  FrameReader reader;
  reader.feed(encode_frame("hello"));
  EXPECT_EQ(drain(reader), (Frames{"hello"}));
  EXPECT_EQ(reader.buffered(), 0u);
  auto next = reader.next();
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());
}

TEST(Frame, SplitAtEveryByteBoundary) {
  const Frames payloads = sample_payloads();
  const std::string stream = stream_of(payloads);
  for (size_t split = 0; split <= stream.size(); ++split) {
    SCOPED_TRACE("split at " + std::to_string(split));
    FrameReader reader;
    reader.feed(std::string_view(stream).substr(0, split));
    Frames got = drain(reader);
    reader.feed(std::string_view(stream).substr(split));
    for (auto& f : drain(reader)) got.push_back(std::move(f));
    EXPECT_EQ(got, payloads);
    EXPECT_EQ(reader.buffered(), 0u);
  }
}

TEST(Frame, OneByteAtATime) {
  const Frames payloads = sample_payloads();
  const std::string stream = stream_of(payloads);
  FrameReader reader;
  Frames got;
  for (char c : stream) {
    reader.feed(std::string_view(&c, 1));
    for (auto& f : drain(reader)) got.push_back(std::move(f));
  }
  EXPECT_EQ(got, payloads);
}

TEST(Frame, ManyFramesInOneFeed) {
  Frames payloads;
  for (int i = 0; i < 5000; ++i) payloads.push_back("frame number " + std::to_string(i));
  FrameReader reader;
  reader.feed(stream_of(payloads));
  EXPECT_EQ(drain(reader), payloads);
}

TEST(Frame, TruncatedFrameWaitsAndSaysSo) {
  const std::string frame = encode_frame("a payload");
  FrameReader reader;
  reader.feed(std::string_view(frame).substr(0, frame.size() - 1));
  EXPECT_TRUE(drain(reader).empty());
  EXPECT_EQ(reader.buffered(), frame.size() - 1) << "the stream ended mid-frame";
  EXPECT_FALSE(reader.failed());
  reader.feed(std::string_view(frame).substr(frame.size() - 1));
  EXPECT_EQ(drain(reader), (Frames{"a payload"}));
}

TEST(Frame, OversizeIsRefusedAsSoonAsTheLengthArrives) {
  FrameReader reader(/*max_frame_bytes=*/16);
  reader.feed(encode_frame(std::string(16, 'x')));
  EXPECT_EQ(drain(reader), (Frames{std::string(16, 'x')}));

  const std::string big = encode_frame(std::string(17, 'x'));
  reader.feed(std::string_view(big).substr(0, kFrameHeaderBytes));  // no payload yet
  auto next = reader.next();
  ASSERT_FALSE(next.ok());
  EXPECT_TRUE(next.status().is_corruption());
  EXPECT_NE(next.status().message().find("17"), std::string::npos) << next.status().message();
}

// Issue "Operating statekv without surprises", item 9: peers carry anything a
// client may send (a command of up to client-query-buffer-limit, 1 GiB), and a
// larger one is refused before it is sent, naming the limit.
TEST(Frame, DefaultLimitCarriesTheLargestDefaultClientCommand) {
  FrameReader reader;
  EXPECT_EQ(reader.max_frame_bytes(), kMaxFrameBytes);
  EXPECT_GE(kMaxFrameBytes, (uint32_t{1} << 30) + (uint32_t{1} << 20));
  std::string header(8, '\0');
  const uint32_t len = kMaxFrameBytes + 1;
  for (int i = 0; i < 4; ++i) header[i] = static_cast<char>(len >> (8 * i));
  reader.feed(header);
  EXPECT_FALSE(reader.next().ok());

  EXPECT_TRUE(frame_fits(kMaxFrameBytes, "a routed command").ok());
  const Status over = frame_fits(size_t{kMaxFrameBytes} + 1, "a routed command");
  ASSERT_TRUE(over.is_invalid_argument());
  EXPECT_NE(over.message().find("not applied"), std::string::npos) << over.message();
  EXPECT_NE(over.message().find(std::to_string(kMaxFrameBytes)), std::string::npos);
}

TEST(Frame, A70MiBFrameArrivesWholeInSmallPieces) {
  const std::string payload(70u << 20, 'v');
  const std::string frame = encode_frame(payload);
  FrameReader reader;
  reader.feed(encode_frame("small first"));
  auto first = reader.next();
  ASSERT_TRUE(first.ok() && first->has_value());
  for (size_t at = 0; at < frame.size(); at += 64 * 1024) {
    reader.feed(std::string_view(frame).substr(at, 64 * 1024));
    if (at + 64 * 1024 < frame.size()) {
      auto none = reader.next();
      ASSERT_TRUE(none.ok()) << none.status().to_string();
      ASSERT_FALSE(none->has_value());
    }
  }
  auto got = reader.next();
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->size(), payload.size());
  EXPECT_TRUE(**got == payload);
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(Frame, HandshakeLimitIsSmallAndCanBeRaised) {
  FrameReader reader(kHandshakeMaxFrameBytes);
  const std::string big = encode_frame(std::string(kHandshakeMaxFrameBytes + 1, 'x'));
  reader.feed(std::string_view(big).substr(0, kFrameHeaderBytes));
  reader.set_max_frame_bytes(kMaxFrameBytes);  // authenticated before the length was judged
  reader.feed(std::string_view(big).substr(kFrameHeaderBytes));
  auto got = reader.next();
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  ASSERT_TRUE(got->has_value());

  FrameReader strict(kHandshakeMaxFrameBytes);
  strict.feed(big);
  EXPECT_FALSE(strict.next().ok());
}

TEST(Frame, AFailedReaderStaysFailed) {
  FrameReader reader;
  std::string bad = encode_frame("payload");
  bad.back() ^= 0x01;
  reader.feed(bad);
  EXPECT_FALSE(reader.next().ok());
  reader.feed(encode_frame("a good frame after the bad one"));
  auto again = reader.next();
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(again.status().is_corruption());
  EXPECT_TRUE(reader.failed());
}

TEST(Frame, EveryFlippedBitIsCaughtBeforeAPayloadIsHandedOut) {
  const std::string first = encode_frame("the frame that gets damaged");
  std::string rest;
  for (int i = 0; i < 10; ++i) append_frame(rest, std::string(100, static_cast<char>('a' + i)));
  for (size_t at = 0; at < first.size(); ++at) {
    for (int bit = 0; bit < 8; ++bit) {
      SCOPED_TRACE("byte " + std::to_string(at) + " bit " + std::to_string(bit));
      std::string damaged = first;
      damaged[at] ^= static_cast<char>(1 << bit);
      // A limit below the stream's size: a length made larger is either over the limit
      // or lands inside the following frames, where the checksum cannot match.
      FrameReader reader(/*max_frame_bytes=*/1000);
      reader.feed(damaged + rest);
      auto next = reader.next();
      ASSERT_FALSE(next.ok()) << "handed out: " << (next->has_value() ? **next : "(nothing)");
      EXPECT_TRUE(next.status().is_corruption());
    }
  }
}

}  // namespace
}  // namespace statekv::net
