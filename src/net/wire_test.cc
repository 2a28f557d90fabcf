// The group frame's configuration epoch and the ping's flags on the wire (wire.h).
#include "net/wire.h"

#include <gtest/gtest.h>

namespace statekv::net {
namespace {

TEST(WireGroupFrame, TheEpochRoundTrips) {
  const std::string bytes = encode_wire(GroupFrame{.group = 42, .message = "raft", .epoch = 300});
  auto back = decode_wire(bytes);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  const auto& f = std::get<GroupFrame>(*back);
  EXPECT_EQ(f.group, 42u);
  EXPECT_EQ(f.message, "raft");
  EXPECT_EQ(f.epoch, 300u);
}

TEST(WireGroupFrame, AFrameOfAnOlderVersionDecodesWithEpochZero) {
  // Before epochs: u8 kind | varint group | bytes message, nothing after.
  const std::string with = encode_wire(GroupFrame{.group = 42, .message = "raft", .epoch = 5});
  const std::string old = with.substr(0, with.size() - 1);  // 5 is one varint byte
  auto back = decode_wire(old);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(std::get<GroupFrame>(*back).epoch, 0u);
  EXPECT_EQ(std::get<GroupFrame>(*back).message, "raft");
}

TEST(WireGroupFrame, BytesAfterTheEpochAreRefused) {
  std::string bytes = encode_wire(GroupFrame{.group = 1, .message = "m", .epoch = 2});
  bytes.push_back('\x01');
  EXPECT_TRUE(decode_wire(bytes).status().is_corruption());
  // A truncated epoch (a varint's continuation byte, then nothing) too.
  std::string cut = encode_wire(GroupFrame{.group = 1, .message = "m", .epoch = 300});
  cut.pop_back();
  EXPECT_TRUE(decode_wire(cut).status().is_corruption());
}

// A ping says whether its sender receives a snapshot (wire.h, kPing); one of
// an older version has no body.
// A pipeline's command to a replica group carries its stream and place; a
// group command without one decodes with none.
TEST(WireForwardFrame, APipelinesPlaceRoundTripsWithTheGroup) {
  ForwardFrame f;
  f.call = 7;
  f.epoch = 9;
  f.group = 1234;
  f.stream = 55;
  f.stream_seq = 300;
  f.local_read = true;
  f.min_index = 17;
  f.argv = {"SET", "k", "v"};
  auto decoded = decode_wire(encode_wire(f));
  ASSERT_TRUE(decoded.ok());
  const auto& g = std::get<ForwardFrame>(*decoded);
  EXPECT_EQ(g.group, 1234u);
  EXPECT_EQ(g.stream, 55u);
  EXPECT_EQ(g.stream_seq, 300u);
  EXPECT_TRUE(g.local_read);
  EXPECT_EQ(g.min_index, 17u);
  EXPECT_EQ(g.argv, f.argv);
  f.stream = 0;
  f.stream_seq = 0;
  auto plain = decode_wire(encode_wire(f));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(std::get<ForwardFrame>(*plain).stream_seq, 0u);
}

TEST(WirePingFrame, TheSnapshotFlagRoundTripsAndAnOldPingSaysNo) {
  for (bool receiving : {false, true}) {
    auto back = decode_wire(encode_wire(PingFrame{.receiving_snapshot = receiving}));
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_EQ(std::get<PingFrame>(*back).receiving_snapshot, receiving);
  }
  const std::string with = encode_wire(PingFrame{.receiving_snapshot = true});
  auto old = decode_wire(with.substr(0, with.size() - 1));
  ASSERT_TRUE(old.ok()) << old.status().to_string();
  EXPECT_FALSE(std::get<PingFrame>(*old).receiving_snapshot);
}

}  // namespace
}  // namespace statekv::net
