// The PubSub registry: channels and patterns, what PUBLISH counts, the
// encoded messages, leaving, and publishing from many threads at once while
// subscribers come and go.
#include "server/pubsub.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace statekv::server {
namespace {

// A subscriber that keeps what it was handed (the real one posts to its
// connection's thread; the registry's contract is the same).
class Recorder final : public PubSubSubscriber {
 public:
  void deliver(std::shared_ptr<const PubSubMessage> message) override {
    std::lock_guard lock(mu_);
    got_.push_back(std::move(message));
  }
  std::vector<std::shared_ptr<const PubSubMessage>> got() const {
    std::lock_guard lock(mu_);
    return got_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<const PubSubMessage>> got_;
};

TEST(PubSub, ChannelSubscribersGetTheMessageInBothProtocols) {
  PubSub ps;
  Recorder a, b;
  ps.subscribe(&a, "news");
  ps.subscribe(&b, "news");
  ps.subscribe(&b, "other");
  EXPECT_EQ(ps.publish("news", "hi"), 2u);
  EXPECT_EQ(ps.publish("nobody", "hi"), 0u);
  ASSERT_EQ(a.got().size(), 1u);
  ASSERT_EQ(b.got().size(), 1u);
  // One immutable message shared by every receiver.
  EXPECT_EQ(a.got()[0].get(), b.got()[0].get());
  const PubSubMessage& m = *a.got()[0];
  EXPECT_FALSE(m.via_pattern);
  EXPECT_EQ(m.channel, "news");
  EXPECT_EQ(m.resp2, "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
  EXPECT_EQ(m.resp3, ">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
  EXPECT_EQ(ps.numsub("news"), 2u);
  EXPECT_EQ(ps.numsub("other"), 1u);
  EXPECT_EQ(ps.numsub("none"), 0u);
  EXPECT_EQ(ps.channel_count(), 2u);
}

TEST(PubSub, PatternsMatchWithRedisGlobAndCountOncePerSubscription) {
  PubSub ps;
  Recorder a, b;
  ps.psubscribe(&a, "news.*");
  ps.psubscribe(&b, "news.*");
  ps.psubscribe(&a, "n[aeiou]ws.?");
  ps.subscribe(&a, "news.x");
  // a: channel + two patterns; b: one pattern.
  EXPECT_EQ(ps.publish("news.x", "m"), 4u);
  EXPECT_EQ(ps.publish("news.long", "m"), 2u);
  EXPECT_EQ(ps.publish("sports", "m"), 0u);
  EXPECT_EQ(ps.pattern_count(), 2u);   // distinct patterns, as NUMPAT
  EXPECT_EQ(ps.numsub("news.x"), 1u);  // patterns not counted
  const auto got = b.got();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_TRUE(got[0]->via_pattern);
  EXPECT_EQ(got[0]->pattern, "news.*");
  EXPECT_EQ(got[0]->resp2, "*4\r\n$8\r\npmessage\r\n$6\r\nnews.*\r\n$6\r\nnews.x\r\n$1\r\nm\r\n");
  EXPECT_EQ(got[0]->resp3, ">4\r\n$8\r\npmessage\r\n$6\r\nnews.*\r\n$6\r\nnews.x\r\n$1\r\nm\r\n");
}

TEST(PubSub, UnsubscribingAndLeavingStopDeliveryAndForgetEmptyNames) {
  PubSub ps;
  Recorder a, b;
  ps.subscribe(&a, "c1");
  ps.subscribe(&a, "c2");
  ps.psubscribe(&a, "c*");
  ps.subscribe(&b, "c1");
  ps.unsubscribe(&a, "c1");
  EXPECT_EQ(ps.publish("c1", "x"), 2u);  // b on c1, a through c*
  ps.punsubscribe(&a, "c*");
  EXPECT_EQ(ps.pattern_count(), 0u);
  EXPECT_EQ(ps.publish("c1", "x"), 1u);
  ps.remove_all(&a, {"c2"}, {});
  EXPECT_EQ(ps.publish("c2", "x"), 0u);
  EXPECT_EQ(ps.channel_count(), 1u);
  std::vector<std::string> channels = ps.channels(std::nullopt);
  EXPECT_EQ(channels, std::vector<std::string>{"c1"});
  ps.remove_all(&b, {"c1"}, {});
  EXPECT_EQ(ps.channel_count(), 0u);
  EXPECT_TRUE(ps.channels(std::nullopt).empty());
}

TEST(PubSub, ChannelsFiltersByPattern) {
  PubSub ps;
  Recorder a;
  for (const char* c : {"news.a", "news.b", "sport", "n"}) ps.subscribe(&a, c);
  std::vector<std::string> got = ps.channels(std::string_view("news.*"));
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"news.a", "news.b"}));
  EXPECT_EQ(ps.channels(std::string_view("x*")).size(), 0u);
  EXPECT_EQ(ps.channels(std::nullopt).size(), 4u);
}

// Publishers on several threads while subscribers join and leave: every
// delivery counted by publish() reaches a subscriber, and one that stays
// subscribed throughout gets every message exactly once.
TEST(PubSub, ConcurrentPublishersAndChurningSubscribers) {
  PubSub ps;
  Recorder steady;
  ps.subscribe(&steady, "ch");
  constexpr int kPublishers = 4;
  constexpr int kEach = 2000;
  std::atomic<bool> stop{false};
  std::atomic<size_t> counted{0};
  std::vector<Recorder> churners(8);
  std::thread churn([&] {
    while (!stop.load()) {
      for (Recorder& r : churners) ps.subscribe(&r, "ch");
      for (Recorder& r : churners) ps.psubscribe(&r, "c?");
      for (Recorder& r : churners) ps.remove_all(&r, {"ch"}, {"c?"});
    }
  });
  std::vector<std::thread> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.emplace_back([&, p] {
      for (int i = 0; i < kEach; ++i) {
        counted += ps.publish("ch", std::to_string(p) + ":" + std::to_string(i));
      }
    });
  }
  for (auto& t : publishers) t.join();
  stop = true;
  churn.join();
  size_t delivered = steady.got().size();
  for (const Recorder& r : churners) delivered += r.got().size();
  EXPECT_EQ(delivered, counted.load());
  const auto got = steady.got();
  ASSERT_EQ(got.size(), static_cast<size_t>(kPublishers * kEach));
  // Each publisher's messages arrive in the order it published them.
  std::vector<int> next(kPublishers, 0);
  for (const auto& m : got) {
    const std::string& bytes = m->resp2;
    // The payload is the last bulk: "p:i".
    const size_t end = bytes.size() - 2;
    const size_t start = bytes.rfind('\n', end - 1) + 1;
    const std::string payload = bytes.substr(start, end - start);
    const int p = std::stoi(payload.substr(0, payload.find(':')));
    const int i = std::stoi(payload.substr(payload.find(':') + 1));
    EXPECT_EQ(i, next[p]);
    next[p] = i + 1;
  }
  EXPECT_EQ(ps.channel_count(), 1u);
  ps.remove_all(&steady, {"ch"}, {});
  EXPECT_EQ(ps.channel_count(), 0u);
  EXPECT_EQ(ps.pattern_count(), 0u);
}

}  // namespace
}  // namespace statekv::server
