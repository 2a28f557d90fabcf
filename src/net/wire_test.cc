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
