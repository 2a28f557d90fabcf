// The pub/sub commands over the Service, in-process: what they reply, the
// RESP2 subscribed context, RESET, and what PUBLISH hands to subscribers.
#include <gtest/gtest.h>

#include <mutex>

#include "server/service_test_util.h"

namespace statekv::server {
namespace {

using testing::describe;
using testing::Harness;

// Stands in for a connection: keeps what it is handed.
class Inbox final : public PubSubSubscriber {
 public:
  void deliver(std::shared_ptr<const PubSubMessage> message) override {
    std::lock_guard lock(mu_);
    got_.push_back(std::move(message));
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return got_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<const PubSubMessage>> got_;
};

std::string refused(std::string_view command) {
  return "-ERR Can't execute '" + std::string(command) +
         "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this "
         "context";
}

TEST(PubSubCommands, SubscribedContextInResp2) {
  Harness h;
  Inbox inbox;
  auto sub = h.new_session();
  sub->subscriber = &inbox;
  EXPECT_EQ(h.raw(*sub, {"SUBSCRIBE", "a", "b"}),
            "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n");
  EXPECT_TRUE(sub->subscribed());
  EXPECT_EQ(describe(h.run(*sub, {"GET", "k"})), refused("get"));
  EXPECT_EQ(describe(h.run(*sub, {"CLIENT", "ID"})), refused("client|id"));
  EXPECT_EQ(h.raw(*sub, {"PING"}), "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
  EXPECT_EQ(h.raw(*sub, {"PING", "x"}), "*2\r\n$4\r\npong\r\n$1\r\nx\r\n");
  // Another client publishes; the subscriber is handed the message.
  EXPECT_EQ(h.raw(h.session(), {"PUBLISH", "a", "hi"}), ":1\r\n");
  EXPECT_EQ(inbox.size(), 1u);
  EXPECT_EQ(sub->channel_count.load(), 2u);
  // RESET leaves every subscription and the subscribed context.
  EXPECT_EQ(h.raw(*sub, {"RESET"}), "+RESET\r\n");
  EXPECT_FALSE(sub->subscribed());
  EXPECT_EQ(sub->channel_count.load(), 0u);
  EXPECT_EQ(h.raw(h.session(), {"PUBLISH", "a", "hi"}), ":0\r\n");
  EXPECT_EQ(h.raw(*sub, {"GET", "k"}), "$-1\r\n");
}

TEST(PubSubCommands, Resp3SubscribersRunAnyCommandAndGetPushes) {
  Harness h;
  Inbox inbox;
  auto sub = h.new_session();
  sub->subscriber = &inbox;
  sub->resp = 3;
  EXPECT_EQ(h.raw(*sub, {"PSUBSCRIBE", "n*"}), ">3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:1\r\n");
  EXPECT_EQ(h.raw(*sub, {"GET", "k"}), "_\r\n");
  EXPECT_EQ(h.raw(*sub, {"PING"}), "+PONG\r\n");
  EXPECT_EQ(h.raw(*sub, {"PUNSUBSCRIBE"}), ">3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:0\r\n");
  EXPECT_EQ(h.raw(*sub, {"PUNSUBSCRIBE"}), ">3\r\n$12\r\npunsubscribe\r\n_\r\n:0\r\n");
  // RESET returns to RESP2.
  EXPECT_EQ(h.raw(*sub, {"RESET"}), "+RESET\r\n");
  EXPECT_EQ(sub->resp, 2);
}

TEST(PubSubCommands, SessionsWithoutAConnectionCannotSubscribe) {
  Harness h;  // the harness's session has no subscriber, as routed and internal ones
  EXPECT_EQ(describe(h.run({"SUBSCRIBE", "a"})),
            "-ERR 'subscribe' needs a client connection that can receive messages");
  EXPECT_FALSE(h.session().subscribed());
  EXPECT_EQ(h.raw(h.session(), {"PUBLISH", "a", "x"}), ":0\r\n");
}

TEST(PubSubCommands, ResetRestoresTheConnectionsDefaults) {
  ServerConfig c = Harness::default_config();
  c.requirepass = "pw";
  Harness h(nullptr, c);
  Session& s = h.session();
  EXPECT_EQ(h.raw(s, {"AUTH", "pw"}), "+OK\r\n");
  EXPECT_EQ(h.raw(s, {"CLIENT", "SETNAME", "me"}), "+OK\r\n");
  EXPECT_EQ(h.raw(s, {"RESET"}), "+RESET\r\n");
  EXPECT_FALSE(s.authenticated);
  EXPECT_EQ(s.name, "");
  EXPECT_EQ(describe(h.run(s, {"GET", "k"})), "-NOAUTH Authentication required.");
}

}  // namespace
}  // namespace statekv::server
