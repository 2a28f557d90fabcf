#include "cache/lease.h"

#include <gtest/gtest.h>

namespace statekv::cache {
namespace {

TEST(Lease, AFillSurvivesTheChannelWithAnyBytes) {
  Fill fill;
  fill.key = std::string("k\r\n\0y", 5);
  fill.holder = "abc-12-ff:7";
  fill.kind = Fill::Kind::kValue;
  fill.value = std::string("$3\r\n\0", 5);
  fill.pttl_ms = 1234;
  auto back = decode_fill(encode_fill(fill));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->key, fill.key);
  EXPECT_EQ(back->holder, fill.holder);
  EXPECT_EQ(back->kind, Fill::Kind::kValue);
  EXPECT_EQ(back->value, fill.value);
  EXPECT_EQ(back->pttl_ms, 1234);
  for (Fill::Kind kind : {Fill::Kind::kAbsent, Fill::Kind::kReleased}) {
    fill.kind = kind;
    fill.pttl_ms = -1;
    back = decode_fill(encode_fill(fill));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->kind, kind);
    EXPECT_EQ(back->pttl_ms, -1);
  }
  EXPECT_EQ(lease_key("user:1"), "__lease:{user:1}");
}

TEST(Lease, OtherMessagesOnTheChannelAreNotFills) {
  EXPECT_FALSE(decode_fill("hello").ok());
  EXPECT_FALSE(decode_fill("*5\r\n$1\r\nk\r\n$1\r\nh\r\n$1\r\nv\r\n$1\r\nx\r\n").ok());  // short
  EXPECT_FALSE(
      decode_fill("*5\r\n$1\r\nk\r\n$1\r\nh\r\n$1\r\nq\r\n$1\r\nx\r\n$1\r\n5\r\n").ok());  // kind
  EXPECT_FALSE(
      decode_fill("*5\r\n$1\r\nk\r\n$1\r\nh\r\n$1\r\nv\r\n$1\r\nx\r\n$2\r\n5s\r\n").ok());  // pttl
  EXPECT_FALSE(
      decode_fill("*5\r\n$1\r\nk\r\n$1\r\nh\r\n$1\r\nv\r\n$1\r\nx\r\n:5\r\n").ok());  // not bulk
  EXPECT_TRUE(decode_fill("*5\r\n$1\r\nk\r\n$1\r\nh\r\n$1\r\nv\r\n$1\r\nx\r\n$1\r\n5\r\n").ok());
}

TEST(Lease, RecentInvalidationsNeverMissAChange) {
  RecentInvalidations recent(64);  // few slots: collisions are certain
  EXPECT_FALSE(recent.changed_since("a", 0));
  recent.invalidated("a", 1000);
  EXPECT_TRUE(recent.changed_since("a", 1000));
  EXPECT_TRUE(recent.changed_since("a", 500));
  EXPECT_FALSE(recent.changed_since("a", 1001));
  // An older time never hides a newer one in a shared slot.
  for (int i = 0; i < 1000; ++i) recent.invalidated("other" + std::to_string(i), 10);
  EXPECT_TRUE(recent.changed_since("a", 1000));
  // Every key invalidated at t is reported changed since t.
  for (int i = 0; i < 1000; ++i) recent.invalidated("key" + std::to_string(i), 2000 + i);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(recent.changed_since("key" + std::to_string(i), 2000 + i)) << i;
  }
  EXPECT_FALSE(recent.changed_since("a", 5000));
  recent.invalidated_all(6000);
  EXPECT_TRUE(recent.changed_since("a", 5000));
  EXPECT_TRUE(recent.changed_since("never-seen", 6000));
}

}  // namespace
}  // namespace statekv::cache
