// MapWatch: publishes a map only when its epoch grows, keeps the last good map
// on bad bytes, and keeps epoch order when several threads apply at once.
#include "meta/map_watch.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "meta/transitions.h"

namespace statekv::meta {
namespace {

Member member(uint64_t id) {
  Member m;
  m.id = NodeId(id);
  m.address = fmt::format("10.0.0.{}:6379", id);
  m.peer_address = fmt::format("10.0.0.{}:7000", id);
  return m;
}

// Documents of epochs 1..n, each adding a member.
std::vector<std::string> documents(size_t n) {
  std::vector<std::string> out;
  ClusterMap m = *bootstrap("c", {member(1)});
  out.push_back(encode(m));
  for (size_t i = 2; i <= n; ++i) {
    m = *add_member(m, member(i));
    out.push_back(encode(m));
  }
  return out;
}

TEST(MapWatch, PublishesOnlyWhenTheEpochGrows) {
  const std::vector<std::string> docs = documents(3);
  MapWatch w;
  std::vector<uint64_t> seen;
  MapWatch::Subscription sub = w.subscribe(
      [&](const std::shared_ptr<const ClusterMap>& m) { seen.push_back(m->epoch.value()); });
  EXPECT_EQ(sub.current, nullptr);
  EXPECT_EQ(w.current(), nullptr);

  EXPECT_FALSE(*w.on_apply(std::nullopt)) << "no document yet";
  EXPECT_TRUE(*w.on_apply(docs[0]));
  EXPECT_FALSE(*w.on_apply(docs[0])) << "same bytes again (another key was applied)";
  EXPECT_TRUE(*w.on_apply(docs[2]));
  EXPECT_FALSE(*w.on_apply(docs[1])) << "epochs never go backwards";
  EXPECT_FALSE(*w.on_apply(docs[2]));
  EXPECT_EQ(seen, (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(w.current()->epoch, Epoch(3));
}

TEST(MapWatch, BadBytesPublishNothingAndKeepTheLastGoodMap) {
  const std::vector<std::string> docs = documents(2);
  MapWatch w;
  ASSERT_TRUE(*w.on_apply(docs[0]));
  Result<bool> r = w.on_apply(std::string_view("{not json"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().is_corruption());
  EXPECT_EQ(w.current()->epoch, Epoch(1));
  EXPECT_TRUE(*w.on_apply(docs[1]));
}

TEST(MapWatch, SubscribeHandsTheCurrentMapAndUnsubscribeStops) {
  const std::vector<std::string> docs = documents(3);
  MapWatch w;
  ASSERT_TRUE(*w.on_apply(docs[0]));
  int calls = 0;
  MapWatch::Subscription sub = w.subscribe([&](const auto&) { ++calls; });
  ASSERT_NE(sub.current, nullptr);
  EXPECT_EQ(sub.current->epoch, Epoch(1));
  ASSERT_TRUE(*w.on_apply(docs[1]));
  EXPECT_EQ(calls, 1);
  w.unsubscribe(sub.id);
  ASSERT_TRUE(*w.on_apply(docs[2]));
  EXPECT_EQ(calls, 1);
  // The map a subscriber holds stays valid and unchanged.
  EXPECT_EQ(sub.current->epoch, Epoch(1));
}

TEST(MapWatch, CallbacksMayReadAndSubscribe) {
  const std::vector<std::string> docs = documents(2);
  MapWatch w;
  std::shared_ptr<const ClusterMap> seen_current;
  w.subscribe([&](const std::shared_ptr<const ClusterMap>& m) {
    seen_current = w.current();
    EXPECT_EQ(seen_current, m) << "current() already returns the published map";
    w.subscribe([](const auto&) {});
  });
  ASSERT_TRUE(*w.on_apply(docs[0]));
  ASSERT_TRUE(*w.on_apply(docs[1]));
  EXPECT_EQ(seen_current->epoch, Epoch(2));
}

// Threads apply documents in scrambled orders at once: every subscriber sees
// strictly increasing epochs, and the last one ends current.
TEST(MapWatch, ConcurrentAppliesPublishInEpochOrder) {
  const size_t n = 60;
  const std::vector<std::string> docs = documents(n);
  MapWatch w;
  std::vector<uint64_t> seen;  // written only under MapWatch's publication order
  std::atomic<bool> ordered{true};
  w.subscribe([&](const std::shared_ptr<const ClusterMap>& m) {
    if (!seen.empty() && m->epoch.value() <= seen.back()) ordered = false;
    seen.push_back(m->epoch.value());
  });
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < n; ++i) {
        // Each thread walks the documents with its own stride.
        const size_t k = (i * (2 * t + 1) + t) % n;
        EXPECT_TRUE(w.on_apply(docs[k]).ok());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(ordered.load());
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), n);
  EXPECT_EQ(w.current()->epoch, Epoch(n));
}

}  // namespace
}  // namespace statekv::meta
