// CLIENT TRACKING (server-assisted client-side caching) on one node, with real
// processes: a raw RESP3 connection turns tracking on, reads keys, and must
// receive Redis 7's `invalidate` pushes when another client writes them, when
// they expire, and on FLUSHALL. Runs against redis-server too
// (STATEKV_ITEST_SUBJECT=redis), which is how the expected bytes were checked.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "support/raw_client.h"
#include "support/redis_client.h"
#include "support/server_process.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;

std::string push_of(std::initializer_list<std::string> keys) {
  std::string out = ">2\r\n$10\r\ninvalidate\r\n*" + std::to_string(keys.size()) + "\r\n";
  for (const auto& k : keys) out += "$" + std::to_string(k.size()) + "\r\n" + k + "\r\n";
  return out;
}
const std::string kFlushPush = ">2\r\n$10\r\ninvalidate\r\n_\r\n";

class Tracking : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(subject_options("memory"));
    ASSERT_TRUE(server_->start().ok()) << server_->log_tail();
    auto w = RedisClient::connect(server_->port());
    ASSERT_TRUE(w.ok());
    writer_ = std::make_unique<RedisClient>(std::move(*w));
  }
  // A RESP3 connection with CLIENT TRACKING ON and the given options.
  std::unique_ptr<RawClient> tracker(std::vector<std::string> options = {}) {
    auto r = RawClient::connect(server_->port());
    EXPECT_TRUE(r.ok());
    auto c = std::make_unique<RawClient>(std::move(*r));
    EXPECT_TRUE(c->call({"HELLO", "3"}).ok());
    std::vector<std::string> cmd = {"CLIENT", "TRACKING", "ON"};
    cmd.insert(cmd.end(), options.begin(), options.end());
    auto on = c->call(cmd);
    EXPECT_TRUE(on.ok());
    EXPECT_EQ(on->bytes, "+OK\r\n");
    return c;
  }
  // The next frame c receives, as bytes ("" on timeout).
  static std::string next(RawClient& c, std::chrono::milliseconds timeout = 5s) {
    auto r = c.read_reply(timeout);
    return r.ok() ? r->bytes : "";
  }
  // Proves no push is pending: the next frame after PING is its reply.
  static void expect_nothing_pending(RawClient& c) {
    ASSERT_TRUE(c.send_command({"PING"}).ok());
    EXPECT_EQ(next(c), "+PONG\r\n");
  }
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<RedisClient> writer_;
};

TEST_F(Tracking, AWriteByAnotherClientSendsTheInvalidatePushOnce) {
  ASSERT_EQ(writer_->cmd({"SET", "k", "v1"}), "+OK");
  auto t = tracker();
  ASSERT_EQ(t->call({"GET", "k"})->bytes, "$2\r\nv1\r\n");
  ASSERT_EQ(writer_->cmd({"SET", "k", "v2"}), "+OK");
  EXPECT_EQ(next(*t), push_of({"k"}));
  // Told once: without another read, another write sends nothing.
  ASSERT_EQ(writer_->cmd({"SET", "k", "v3"}), "+OK");
  expect_nothing_pending(*t);
  // A key it never read is never sent.
  ASSERT_EQ(writer_->cmd({"SET", "other", "x"}), "+OK");
  expect_nothing_pending(*t);
  // Reading again re-arms it; a delete is a write too.
  ASSERT_EQ(t->call({"GET", "k"})->bytes, "$2\r\nv3\r\n");
  ASSERT_EQ(writer_->cmd({"DEL", "k"}), ":1");
  EXPECT_EQ(next(*t), push_of({"k"}));
}

TEST_F(Tracking, OwnWritesAreSentUnlessNoloop) {
  auto t = tracker();
  ASSERT_EQ(t->call({"GET", "k"})->bytes, "_\r\n");
  // The invalidation may come before or after the SET's reply; both frames come.
  ASSERT_TRUE(t->send_command({"SET", "k", "mine"}).ok());
  std::string a = next(*t), b = next(*t);
  EXPECT_TRUE((a == push_of({"k"}) && b == "+OK\r\n") || (a == "+OK\r\n" && b == push_of({"k"})))
      << a << " / " << b;

  auto quiet = tracker({"NOLOOP"});
  ASSERT_EQ(quiet->call({"GET", "k"})->bytes, "$4\r\nmine\r\n");
  ASSERT_EQ(quiet->call({"SET", "k", "again"})->bytes, "+OK\r\n");
  expect_nothing_pending(*quiet);
}

TEST_F(Tracking, BroadcastSendsEveryWriteUnderItsPrefixes) {
  auto t = tracker({"BCAST", "PREFIX", "user:"});
  ASSERT_EQ(writer_->cmd({"SET", "user:1", "a"}), "+OK");
  EXPECT_EQ(next(*t), push_of({"user:1"}));
  ASSERT_EQ(writer_->cmd({"SET", "cart:1", "a"}), "+OK");
  expect_nothing_pending(*t);
  ASSERT_EQ(writer_->cmd({"SET", "user:1", "b"}), "+OK");  // no read needed
  EXPECT_EQ(next(*t), push_of({"user:1"}));
}

TEST_F(Tracking, ExpiryAndFlushallInvalidate) {
  auto t = tracker();
  ASSERT_EQ(writer_->cmd({"SET", "short", "v", "PX", "100"}), "+OK");
  ASSERT_EQ(t->call({"GET", "short"})->bytes, "$1\r\nv\r\n");
  EXPECT_EQ(next(*t), push_of({"short"}));  // active expiry removes it within ~1 s
  ASSERT_EQ(t->call({"GET", "k"})->bytes, "_\r\n");
  ASSERT_EQ(writer_->cmd({"FLUSHALL"}), "+OK");
  EXPECT_EQ(next(*t), kFlushPush);
}

TEST_F(Tracking, TrackingInfoAndOff) {
  auto t = tracker({"BCAST", "NOLOOP", "PREFIX", "a"});
  EXPECT_EQ(t->call({"CLIENT", "GETREDIR"})->bytes, ":0\r\n");
  EXPECT_EQ(t->call({"CLIENT", "TRACKINGINFO"})->bytes,
            "%3\r\n$5\r\nflags\r\n~3\r\n$2\r\non\r\n$5\r\nbcast\r\n$6\r\nnoloop\r\n"
            "$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*1\r\n$1\r\na\r\n");
  EXPECT_EQ(t->call({"CLIENT", "TRACKING", "OFF"})->bytes, "+OK\r\n");
  EXPECT_EQ(t->call({"CLIENT", "GETREDIR"})->bytes, ":-1\r\n");
  ASSERT_EQ(writer_->cmd({"SET", "a1", "x"}), "+OK");
  expect_nothing_pending(*t);
  // Redis's errors for bad options.
  EXPECT_EQ(t->call({"CLIENT", "TRACKING", "ON", "PREFIX", "a"})->bytes,
            "-ERR PREFIX option requires BCAST mode to be enabled\r\n");
}

TEST_F(Tracking, StatekvRefusesWhatItDoesNotHonourYet) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv's own limits";
  auto r = RawClient::connect(server_->port());
  ASSERT_TRUE(r.ok());
  auto reply = r->call({"CLIENT", "TRACKING", "ON"});  // RESP2: would need REDIRECT
  EXPECT_EQ(reply->bytes.rfind("-ERR CLIENT TRACKING needs RESP3", 0), 0u) << reply->bytes;
  ASSERT_TRUE(r->call({"HELLO", "3"}).ok());
  reply = r->call({"CLIENT", "TRACKING", "ON", "OPTIN"});
  EXPECT_EQ(reply->bytes.rfind("-ERR CLIENT TRACKING OPTIN is not supported", 0), 0u);
  reply = r->call({"CLIENT", "TRACKING", "ON", "REDIRECT", "5"});
  EXPECT_EQ(reply->bytes.rfind("-ERR CLIENT TRACKING REDIRECT is not supported", 0), 0u);
  EXPECT_EQ(r->call({"PING"})->bytes, "+PONG\r\n");
}

}  // namespace
}  // namespace statekv::itest
