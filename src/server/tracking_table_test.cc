#include "server/tracking_table.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace statekv::server {
namespace {

std::vector<std::string_view> keys(std::initializer_list<std::string_view> k) {
  return k;
}

TEST(TrackingTable, DefaultModeTellsReadersOnceThenForgets) {
  TrackingTable t(0, Random(1));
  ASSERT_TRUE(t.enable(1, {}).ok());
  ASSERT_TRUE(t.enable(2, {}).ok());
  t.on_read(1, "a");
  t.on_read(2, "a");
  t.on_read(1, "b");
  auto inv = t.on_write(9, keys({"a"}));
  ASSERT_EQ(inv.size(), 2u);
  EXPECT_EQ(inv[0].target, 1u);
  EXPECT_EQ(inv[0].keys, std::vector<std::string>{"a"});
  EXPECT_EQ(inv[1].target, 2u);
  EXPECT_TRUE(t.on_write(9, keys({"a"})).empty());  // told once; must read again
  EXPECT_EQ(t.tracked_keys(), 1u);                  // "b"
}

TEST(TrackingTable, ReadsOfClientsNotTrackingAreNotRecorded) {
  TrackingTable t(0, Random(1));
  t.on_read(5, "a");
  EXPECT_EQ(t.tracked_keys(), 0u);
  EXPECT_TRUE(t.on_write(0, keys({"a"})).empty());
}

TEST(TrackingTable, NoloopSkipsTheWritersOwnWrites) {
  TrackingTable t(0, Random(1));
  ASSERT_TRUE(t.enable(1, {.prefixes = {}, .noloop = true}).ok());
  ASSERT_TRUE(t.enable(2, {}).ok());
  t.on_read(1, "a");
  t.on_read(2, "a");
  auto inv = t.on_write(1, keys({"a"}));
  ASSERT_EQ(inv.size(), 1u);
  EXPECT_EQ(inv[0].target, 2u);
  // Without NOLOOP a client is told about its own write.
  t.on_read(2, "a");
  inv = t.on_write(2, keys({"a"}));
  ASSERT_EQ(inv.size(), 1u);
  EXPECT_EQ(inv[0].target, 2u);
}

TEST(TrackingTable, RedirectSendsToAnotherClient) {
  TrackingTable t(0, Random(1));
  ASSERT_TRUE(t.enable(1, {.prefixes = {}, .redirect = 7}).ok());
  t.on_read(1, "a");
  auto inv = t.on_write(0, keys({"a", "b"}));
  ASSERT_EQ(inv.size(), 1u);
  EXPECT_EQ(inv[0].target, 7u);
  EXPECT_EQ(inv[0].keys, std::vector<std::string>{"a"});
}

TEST(TrackingTable, BroadcastMatchesPrefixesWithoutReads) {
  TrackingTable t(0, Random(1));
  ASSERT_TRUE(t.enable(1, {.bcast = true, .prefixes = {"user:", "cart:"}}).ok());
  ASSERT_TRUE(t.enable(2, {.bcast = true, .prefixes = {}}).ok());  // every key
  auto inv = t.on_write(0, keys({"user:1", "other", "cart:9"}));
  ASSERT_EQ(inv.size(), 2u);
  EXPECT_EQ(inv[0].target, 1u);
  EXPECT_EQ(inv[0].keys, (std::vector<std::string>{"user:1", "cart:9"}));
  EXPECT_EQ(inv[1].keys, (std::vector<std::string>{"user:1", "other", "cart:9"}));
  // Broadcast clients are told every time, and their reads are not recorded.
  t.on_read(1, "user:1");
  EXPECT_EQ(t.tracked_keys(), 0u);
  EXPECT_EQ(t.on_write(0, keys({"user:1"})).size(), 2u);
}

TEST(TrackingTable, RefusesWhatRedisRefuses) {
  TrackingTable t(0, Random(1));
  Status s = t.enable(1, {.prefixes = {"a"}});
  EXPECT_EQ(s.message(), "ERR PREFIX option requires BCAST mode to be enabled");
  s = t.enable(1, {.bcast = true, .prefixes = {"ab", "a"}});
  EXPECT_TRUE(s.is_invalid_argument());
  EXPECT_NE(s.message().find("overlaps"), std::string::npos);
  EXPECT_FALSE(t.mode(1).has_value());
}

TEST(TrackingTable, BroadcastPrefixesAccumulateAcrossCallsAndMustNotOverlap) {
  TrackingTable t(0, Random(1));
  ASSERT_TRUE(t.enable(1, {.bcast = true, .prefixes = {"b"}}).ok());
  ASSERT_TRUE(t.enable(1, {.bcast = true, .prefixes = {"a"}, .noloop = true}).ok());
  EXPECT_EQ(t.mode(1)->prefixes, (std::vector<std::string>{"a", "b"}));  // sorted, as Redis
  EXPECT_TRUE(t.mode(1)->noloop);                                        // options are replaced
  Status s = t.enable(1, {.bcast = true, .prefixes = {"z", "ba"}});
  EXPECT_EQ(s.message(),
            "ERR Prefix 'ba' overlaps with an existing prefix 'b'. Prefixes for a single client "
            "must not overlap.");
  s = t.enable(1, {.bcast = true, .prefixes = {"a"}});
  EXPECT_EQ(s.message(),
            "ERR Prefix 'a' overlaps with an existing prefix 'a'. Prefixes for a single client "
            "must not overlap.");
  EXPECT_EQ(t.mode(1)->prefixes, (std::vector<std::string>{"a", "b"}));  // unchanged by a refusal
  auto inv = t.on_write(0, keys({"a1", "b1", "c1"}));
  ASSERT_EQ(inv.size(), 1u);
  EXPECT_EQ(inv[0].keys, (std::vector<std::string>{"a1", "b1"}));
  // BCAST without PREFIX adds the empty prefix (every key), unchecked; after
  // it any new prefix overlaps it.
  ASSERT_TRUE(t.enable(1, {.bcast = true, .prefixes = {}}).ok());
  EXPECT_EQ(t.mode(1)->prefixes, (std::vector<std::string>{"", "a", "b"}));
  s = t.enable(1, {.bcast = true, .prefixes = {"x"}});
  EXPECT_EQ(s.message(),
            "ERR Prefix 'x' overlaps with an existing prefix ''. Prefixes for a single client "
            "must not overlap.");
  // Off forgets them: the next ON starts afresh.
  t.disable(1);
  ASSERT_TRUE(t.enable(1, {.bcast = true, .prefixes = {"x"}}).ok());
  EXPECT_EQ(t.mode(1)->prefixes, std::vector<std::string>{"x"});
}

TEST(TrackingTable, DisabledClientsAreNotTold) {
  TrackingTable t(0, Random(1));
  ASSERT_TRUE(t.enable(1, {}).ok());
  t.on_read(1, "a");
  t.disable(1);
  EXPECT_TRUE(t.on_write(0, keys({"a"})).empty());
}

TEST(TrackingTable, FlushTellsEveryTrackingClientAndEmptiesTheTable) {
  TrackingTable t(0, Random(1));
  ASSERT_TRUE(t.enable(1, {.prefixes = {}, .noloop = true}).ok());
  ASSERT_TRUE(t.enable(2, {.bcast = true, .prefixes = {}}).ok());
  ASSERT_TRUE(t.enable(3, {.prefixes = {}, .redirect = 8}).ok());
  t.on_read(1, "a");
  auto inv = t.on_flush(1);
  ASSERT_EQ(inv.size(), 3u);
  EXPECT_EQ(inv[0].target, 1u);
  EXPECT_EQ(inv[1].target, 2u);
  EXPECT_EQ(inv[2].target, 8u);
  for (const auto& i : inv) EXPECT_TRUE(i.flush);
  EXPECT_EQ(t.tracked_keys(), 0u);
}

TEST(TrackingTable, MaxKeysInvalidatesRandomKeysToStayWithinTheLimit) {
  TrackingTable t(100, Random(3));
  ASSERT_TRUE(t.enable(1, {}).ok());
  for (int i = 0; i < 150; ++i) t.on_read(1, "k" + std::to_string(i));
  EXPECT_EQ(t.tracked_keys(), 150u);
  auto inv = t.enforce_limit();
  EXPECT_EQ(t.tracked_keys(), 100u);
  ASSERT_EQ(inv.size(), 1u);
  EXPECT_EQ(inv[0].keys.size(), 50u);
  // The keys dropped are no longer tracked: a write of one tells no one.
  EXPECT_TRUE(t.on_write(0, std::vector<std::string_view>{inv[0].keys[0]}).empty());
  // Same seed, same choice.
  TrackingTable u(100, Random(3));
  ASSERT_TRUE(u.enable(1, {}).ok());
  for (int i = 0; i < 150; ++i) u.on_read(1, "k" + std::to_string(i));
  EXPECT_EQ(u.enforce_limit()[0].keys, inv[0].keys);
}

TEST(TrackingTable, PeersAreToldOnlyOfLocalWritesAndFlushes) {
  TrackingTable t(0, Random(1));
  const uint64_t peer = TrackingTable::kPeerBit | 2;
  const uint64_t bcast_peer = TrackingTable::kPeerBit | 3;
  ASSERT_TRUE(t.enable(1, {}).ok());
  ASSERT_TRUE(t.enable(peer, {}).ok());
  ASSERT_TRUE(t.enable(bcast_peer, {.bcast = true, .prefixes = {}}).ok());
  EXPECT_EQ(t.tracking_clients(), 1u);  // peers are not this node's clients
  EXPECT_TRUE(t.local_needs().any);
  EXPECT_FALSE(t.local_needs().bcast);
  t.on_read(1, "a");
  t.on_read(peer, "a");
  // A write applied on another node: only the local reader is told, and the
  // peer's registration stays (its node learns from the owner, not from here).
  auto inv = t.on_write(0, keys({"a"}), /*include_peers=*/false);
  ASSERT_EQ(inv.size(), 1u);
  EXPECT_EQ(inv[0].target, 1u);
  EXPECT_EQ(t.tracked_keys(), 1u);
  // A local write: the peer and the broadcasting peer are told.
  inv = t.on_write(0, keys({"a"}));
  ASSERT_EQ(inv.size(), 2u);
  EXPECT_EQ(inv[0].target, peer);
  EXPECT_EQ(inv[1].target, bcast_peer);
  EXPECT_EQ(t.tracked_keys(), 0u);
  // A local-only flush tells the local client and keeps the peer's keys.
  t.on_read(1, "b");
  t.on_read(peer, "c");
  inv = t.on_flush(0, /*local_only=*/true);
  ASSERT_EQ(inv.size(), 1u);
  EXPECT_EQ(inv[0].target, 1u);
  EXPECT_TRUE(inv[0].flush);
  EXPECT_EQ(t.tracked_keys(), 1u);  // "c", for the peer
}

TEST(TrackingTable, RedirectedMessagesNameTheirSources) {
  TrackingTable t(0, Random(1));
  ASSERT_TRUE(t.enable(1, {.prefixes = {}, .redirect = 7}).ok());
  ASSERT_TRUE(t.enable(2, {.prefixes = {}, .redirect = 7}).ok());
  t.on_read(1, "a");
  t.on_read(2, "a");
  auto inv = t.on_write(0, keys({"a"}));
  ASSERT_EQ(inv.size(), 1u);
  EXPECT_EQ(inv[0].target, 7u);
  std::sort(inv[0].redirected_from.begin(), inv[0].redirected_from.end());
  EXPECT_EQ(inv[0].redirected_from, (std::vector<uint64_t>{1, 2}));
}

}  // namespace
}  // namespace statekv::server
