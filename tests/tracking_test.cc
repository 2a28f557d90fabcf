// CLIENT TRACKING (server-assisted client-side caching) on one node, with real
// processes: a raw RESP3 connection turns tracking on, reads keys, and must
// receive Redis 7's `invalidate` pushes when another client writes them, when
// they expire, and on FLUSHALL. Runs against redis-server too
// (STATEKV_ITEST_SUBJECT=redis), which is how the expected bytes were checked.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "support/differential.h"
#include "support/local_cluster.h"
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

TEST_F(Tracking, InfoCountsTrackingClientsAndKeys) {
  auto field = [&](const std::string& section, const std::string& name) {
    auto text = writer_->bulk({"INFO", section});
    if (!text.ok()) return std::string("?");
    const size_t at = text->find(name + ":");
    if (at == std::string::npos) return std::string("absent");
    return text->substr(at + name.size() + 1, text->find("\r\n", at) - at - name.size() - 1);
  };
  EXPECT_EQ(field("clients", "tracking_clients"), "0");
  auto a = tracker();
  auto b = tracker();
  EXPECT_EQ(field("clients", "tracking_clients"), "2");
  ASSERT_EQ(a->call({"MGET", "x", "y"})->bytes, "*2\r\n_\r\n_\r\n");
  ASSERT_EQ(b->call({"GET", "x"})->bytes, "_\r\n");
  EXPECT_EQ(field("stats", "tracking_total_keys"), "2");
  EXPECT_EQ(field("stats", "tracking_total_items"), "3");
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

// A connection's CLIENT ID.
int64_t client_id(RawClient& c) {
  auto r = c.call({"CLIENT", "ID"});
  return r.ok() ? r->value.integer : -1;
}

TEST_F(Tracking, RedirectSendsToAnotherConnection) {
  auto target_conn = RawClient::connect(server_->port());
  ASSERT_TRUE(target_conn.ok());
  RawClient& target = *target_conn;
  ASSERT_TRUE(target.call({"HELLO", "3"}).ok());
  const std::string id = std::to_string(client_id(target));
  // The tracking connection itself may speak RESP2: it receives nothing.
  auto t = RawClient::connect(server_->port());
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->call({"CLIENT", "TRACKING", "ON", "REDIRECT", id})->bytes, "+OK\r\n");
  EXPECT_EQ(t->call({"CLIENT", "GETREDIR"})->bytes, ":" + id + "\r\n");
  ASSERT_EQ(t->call({"GET", "k"})->bytes, "$-1\r\n");
  ASSERT_EQ(writer_->cmd({"SET", "k", "v"}), "+OK");
  EXPECT_EQ(next(target), push_of({"k"}));
  ASSERT_EQ(writer_->cmd({"FLUSHALL"}), "+OK");
  // The null in the tracking client's protocol (RESP2), as Redis 7 writes it.
  EXPECT_EQ(next(target), ">2\r\n$10\r\ninvalidate\r\n$-1\r\n");
  EXPECT_EQ(t->call({"PING"})->bytes, "+PONG\r\n");  // nothing came to the tracker
}

TEST_F(Tracking, Resp2RedirectTargetGetsMessagesOnTheInvalidateChannel) {
  auto target_conn = RawClient::connect(server_->port());
  ASSERT_TRUE(target_conn.ok());
  RawClient& target = *target_conn;
  const std::string id = std::to_string(client_id(target));
  EXPECT_EQ(target.call({"SUBSCRIBE", "__redis__:invalidate"})->bytes,
            "*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n");
  auto t = RawClient::connect(server_->port());
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->call({"CLIENT", "TRACKING", "ON", "REDIRECT", id})->bytes, "+OK\r\n");
  ASSERT_EQ(t->call({"MGET", "a", "b"})->bytes, "*2\r\n$-1\r\n$-1\r\n");
  ASSERT_EQ(writer_->cmd({"SET", "a", "1"}), "+OK");
  EXPECT_EQ(next(target),
            "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\na\r\n");
  ASSERT_EQ(writer_->cmd({"FLUSHALL"}), "+OK");
  EXPECT_EQ(next(target), "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n");
}

TEST_F(Tracking, ABrokenRedirectIsReportedToTheTrackingClient) {
  auto target = RawClient::connect(server_->port());
  ASSERT_TRUE(target.ok());
  const std::string id = std::to_string(client_id(*target));
  auto t = tracker({"REDIRECT", id});
  ASSERT_EQ(t->call({"GET", "k"})->bytes, "_\r\n");
  // The target goes away; the next invalidation finds nobody to take it.
  target = RawClient::connect(server_->port());  // closes the old connection
  ASSERT_TRUE(target.ok());
  std::this_thread::sleep_for(100ms);  // the server notices the close
  ASSERT_EQ(writer_->cmd({"SET", "k", "v"}), "+OK");
  EXPECT_EQ(next(*t), ">2\r\n$21\r\ntracking-redir-broken\r\n:" + id + "\r\n");
  EXPECT_EQ(t->call({"CLIENT", "TRACKINGINFO"})->bytes,
            "%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$15\r\nbroken_redirect\r\n"
            "$8\r\nredirect\r\n:" +
                id + "\r\n$8\r\nprefixes\r\n*0\r\n");
}

TEST_F(Tracking, OptinTracksOnlyAfterCachingYesAndOptoutSkipsAfterCachingNo) {
  auto in = tracker({"OPTIN"});
  ASSERT_EQ(in->call({"GET", "a"})->bytes, "_\r\n");  // not tracked
  ASSERT_EQ(in->call({"CLIENT", "CACHING", "YES"})->bytes, "+OK\r\n");
  EXPECT_EQ(in->call({"CLIENT", "TRACKINGINFO"})->bytes,
            "%3\r\n$5\r\nflags\r\n~3\r\n$2\r\non\r\n$5\r\noptin\r\n$11\r\ncaching-yes\r\n"
            "$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*0\r\n");
  ASSERT_EQ(in->call({"CLIENT", "CACHING", "YES"})->bytes, "+OK\r\n");
  ASSERT_EQ(in->call({"GET", "b"})->bytes, "_\r\n");  // tracked: the command after YES
  ASSERT_EQ(in->call({"GET", "c"})->bytes, "_\r\n");  // not: YES holds for one command
  ASSERT_EQ(writer_->cmd({"MSET", "a", "1", "c", "1", "b", "1"}), "+OK");
  EXPECT_EQ(next(*in), push_of({"b"}));
  expect_nothing_pending(*in);

  auto out = tracker({"OPTOUT"});
  ASSERT_EQ(out->call({"CLIENT", "CACHING", "NO"})->bytes, "+OK\r\n");
  ASSERT_EQ(out->call({"GET", "a"})->bytes, "$1\r\n1\r\n");  // not tracked
  ASSERT_EQ(out->call({"GET", "b"})->bytes, "$1\r\n1\r\n");  // tracked again
  ASSERT_EQ(writer_->cmd({"MSET", "a", "2", "b", "2"}), "+OK");
  EXPECT_EQ(next(*out), push_of({"b"}));
  expect_nothing_pending(*out);
}

TEST_F(Tracking, TheTableIsBoundedByTrackingTableMaxKeys) {
  ASSERT_EQ(writer_->cmd({"CONFIG", "SET", "tracking-table-max-keys", "1"}), "+OK");
  auto t = tracker();
  ASSERT_EQ(t->call({"GET", "a"})->bytes, "_\r\n");
  ASSERT_EQ(t->call({"GET", "b"})->bytes, "_\r\n");
  // Two keys over a limit of one: one of them (picked at random) is
  // invalidated, before the next command runs; the other stays tracked.
  // Redis sends it before the next command's reply, statekv right after it.
  ASSERT_TRUE(t->send_command({"PING"}).ok());
  std::string evicted = next(*t), pong = next(*t);
  if (evicted == "+PONG\r\n") std::swap(evicted, pong);
  EXPECT_EQ(pong, "+PONG\r\n");
  ASSERT_TRUE(evicted == push_of({"a"}) || evicted == push_of({"b"})) << evicted;
  const std::string kept = evicted == push_of({"a"}) ? "b" : "a";
  ASSERT_EQ(writer_->cmd({"MSET", "a", "1", "b", "1"}), "+OK");
  EXPECT_EQ(next(*t), push_of({kept}));
  expect_nothing_pending(*t);
}

// Replies and errors of the options, next to redis-server's.
TEST(TrackingDifferential, OptionsAndErrorsAnswerAsRedis) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "compares statekv with redis";
  Differential d(subject_options("memory"));
  ASSERT_TRUE(d.ok());
  d.run({"CONFIG", "GET", "tracking-table-max-keys"});
  d.run({"CONFIG", "SET", "tracking-table-max-keys", "abc"});
  d.run({"CONFIG", "SET", "tracking-table-max-keys", "5000"});
  d.run({"CONFIG", "GET", "tracking-table-max-keys"});
  d.run({"CLIENT", "CACHING", "YES"});
  d.run({"CLIENT", "CACHING", "MAYBE"});
  d.run({"CLIENT", "GETREDIR"});
  d.run({"CLIENT", "TRACKING", "ON", "REDIRECT", "999999"});
  d.run({"CLIENT", "TRACKING", "ON", "REDIRECT", "abc"});
  d.run({"CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"});
  d.run({"CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"});
  d.run({"CLIENT", "TRACKING", "ON", "PREFIX", "a"});
  d.run({"CLIENT", "TRACKING", "ON", "NOSUCH"});
  d.run({"CLIENT", "TRACKING", "MAYBE"});
  d.run({"CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab", "PREFIX", "a"});
  d.run({"CLIENT", "TRACKING", "ON", "OPTIN"});  // RESP2 without REDIRECT: accepted
  d.run({"CLIENT", "CACHING", "NO"});
  d.run({"CLIENT", "CACHING", "MAYBE"});
  d.run({"CLIENT", "TRACKING", "ON", "OPTOUT"});
  d.run({"CLIENT", "TRACKING", "ON", "BCAST"});
  d.run({"CLIENT", "CACHING", "YES"});
  d.run({"CLIENT", "TRACKING", "OFF"});
  d.run({"CLIENT", "TRACKING", "ON", "BCAST"});
  d.run({"CLIENT", "TRACKING", "ON"});
  d.run({"CLIENT", "TRACKING", "OFF"});
  d.run({"CLIENT", "GETREDIR"});
  // BCAST prefixes accumulate across ON calls; a new one may not overlap an
  // existing one; options other than the prefixes are replaced.
  d.run({"CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "b", "NOLOOP"});
  d.run({"CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a"});
  d.run({"CLIENT", "TRACKINGINFO"});
  d.run({"CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "ab"});
  d.run({"CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "b"});
  d.run({"CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "c", "PREFIX", "cd"});
  d.run({"CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "z", "PREFIX", "ba"});
  d.run({"CLIENT", "TRACKINGINFO"});
  d.run({"CLIENT", "TRACKING", "ON", "BCAST"});  // adds the empty prefix
  d.run({"CLIENT", "TRACKINGINFO"});
  d.run({"CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "x"});
  d.run({"CLIENT", "TRACKING", "OFF"});
  d.run({"CLIENT", "TRACKING", "ON", "BCAST"});
  d.run({"CLIENT", "TRACKINGINFO"});
  d.run({"CLIENT", "TRACKING", "OFF"});
  d.run({"CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "x"});
  d.run({"CLIENT", "TRACKINGINFO"});
  d.run({"CLIENT", "TRACKING", "OFF"});
}

// ------------------------------------------------------------ across a cluster

// Three real nodes; the tracker is a raw RESP3 connection to node 0. Keys are
// picked per owner, so a read of a key another node owns is routed there and a
// write through any node commits on the owner.
class ClusterTracking : public ::testing::Test {
 protected:
  void SetUp() override {
    if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
    cluster_ = std::make_unique<LocalCluster>(3);
    const Status s = cluster_->start();
    ASSERT_TRUE(s.ok()) << s.to_string();
    for (size_t i = 0; i < 3; ++i) {
      auto k = cluster_->key_on(i, "k");
      ASSERT_TRUE(k.ok()) << k.status().to_string();
      keys_.push_back(*k);
    }
  }
  void TearDown() override { cluster_.reset(); }
  std::unique_ptr<RawClient> tracker(size_t node, std::vector<std::string> options = {}) {
    auto r = RawClient::connect(cluster_->port(node));
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
  std::string write(size_t node, std::vector<std::string> cmd) {
    auto c = RedisClient::connect(cluster_->port(node));
    EXPECT_TRUE(c.ok());
    return c.ok() ? c->cmd(cmd) : "";
  }
  static std::string next(RawClient& c, std::chrono::milliseconds timeout = 5s) {
    auto r = c.read_reply(timeout);
    return r.ok() ? r->bytes : "";
  }
  std::unique_ptr<LocalCluster> cluster_;
  std::vector<std::string> keys_;  // keys_[i] is owned by node i
};

TEST_F(ClusterTracking, AWriteThroughAnyNodeInvalidatesWhatAnyNodeHandedOut) {
  auto t = tracker(0);
  for (size_t owner = 0; owner < 3; ++owner) {
    const std::string& key = keys_[owner];
    ASSERT_EQ(write(owner, {"SET", key, "v1"}), "+OK");
    for (size_t via = 0; via < 3; ++via) {
      // Read through node 0 (routed to the owner unless it is node 0) ...
      ASSERT_EQ(t->call({"GET", key})->bytes, "$2\r\nv1\r\n") << key;
      // ... and written through each node in turn: routed or not, the owner
      // commits it and node 0's client is told.
      ASSERT_EQ(write(via, {"SET", key, "v1"}), "+OK");
      EXPECT_EQ(next(*t), push_of({key})) << "key on node " << owner << ", written via " << via;
    }
  }
  // Told once per read, as on one node: a second write sends nothing, which
  // the next invalidation (of a key read since) proves.
  ASSERT_EQ(t->call({"GET", keys_[1]})->bytes, "$2\r\nv1\r\n");
  ASSERT_EQ(write(2, {"SET", keys_[2], "x"}), "+OK");  // not read since its last message
  ASSERT_EQ(write(2, {"SET", keys_[1], "x"}), "+OK");
  EXPECT_EQ(next(*t), push_of({keys_[1]}));
  // MGET across owners, routed in parts: every key is tracked.
  auto mget = t->call({"MGET", keys_[0], keys_[1], keys_[2]});
  ASSERT_TRUE(mget.ok());
  ASSERT_EQ(write(1, {"DEL", keys_[2]}), ":1");
  EXPECT_EQ(next(*t), push_of({keys_[2]}));
  ASSERT_EQ(write(1, {"SET", keys_[1], "short", "PX", "100"}), "+OK");
  EXPECT_EQ(next(*t), push_of({keys_[1]}));  // read by the MGET
  // Expiry on the owner counts as a write too.
  ASSERT_EQ(t->call({"GET", keys_[1]})->bytes, "$5\r\nshort\r\n");
  EXPECT_EQ(next(*t), push_of({keys_[1]}));
}

TEST_F(ClusterTracking, NoloopHoldsForRoutedWrites) {
  auto t = tracker(0, {"NOLOOP"});
  // keys_[1] and another key of node 1: the owner sends both messages to node
  // 0 in order, so a message for the tracker's own write would come first.
  auto other = cluster_->key_on(1, "other");
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(t->call({"GET", keys_[1]})->bytes, "_\r\n");
  ASSERT_EQ(t->call({"GET", *other})->bytes, "_\r\n");
  ASSERT_EQ(t->call({"SET", keys_[1], "mine"})->bytes, "+OK\r\n");
  ASSERT_EQ(write(2, {"SET", *other, "theirs"}), "+OK");
  EXPECT_EQ(next(*t), push_of({*other}));
}

TEST_F(ClusterTracking, BroadcastReportsWritesCommittedOnEveryNode) {
  auto t = tracker(0, {"BCAST", "PREFIX", "user:"});
  auto on1 = cluster_->key_on(1, "user:");
  auto on2 = cluster_->key_on(2, "user:");
  auto cart = cluster_->key_on(2, "cart:");
  ASSERT_TRUE(on1.ok() && on2.ok() && cart.ok());
  ASSERT_EQ(write(2, {"SET", *on1, "a"}), "+OK");  // routed from node 2 to node 1
  EXPECT_EQ(next(*t), push_of({*on1}));
  ASSERT_EQ(write(2, {"SET", *cart, "a"}), "+OK");  // not under the prefix
  ASSERT_EQ(write(1, {"SET", *on2, "b"}), "+OK");
  EXPECT_EQ(next(*t), push_of({*on2}));  // and not the cart: key before it
}

TEST_F(ClusterTracking, ADefaultModeReadDoesNotTurnOffBroadcastForItsNode) {
  auto bcast = tracker(0, {"BCAST", "PREFIX", "user:"});
  auto reader = tracker(0);
  auto user = cluster_->key_on(1, "user:");
  ASSERT_TRUE(user.ok());
  // A tracked read routed to node 1: node 1 must keep sending node 0 every
  // write (for the BCAST client), not only the keys read.
  ASSERT_EQ(reader->call({"GET", keys_[1]})->bytes, "_\r\n");
  ASSERT_EQ(write(2, {"SET", *user, "a"}), "+OK");
  EXPECT_EQ(next(*bcast), push_of({*user}));
}

TEST_F(ClusterTracking, FlushallSendsTheFlushMessage) {
  auto t = tracker(0);
  ASSERT_EQ(t->call({"GET", keys_[2]})->bytes, "_\r\n");
  ASSERT_EQ(write(1, {"FLUSHALL"}), "+OK");
  EXPECT_EQ(next(*t), kFlushPush);
  // Every node that held data flushed: each may say so; nothing else comes.
  std::string frame;
  ASSERT_TRUE(t->send_command({"PING"}).ok());
  while ((frame = next(*t)) == kFlushPush) {
  }
  EXPECT_EQ(frame, "+PONG\r\n");
}

// ------------------------------------------ REPLICATION consensus keyspaces

// Three real nodes, a factor-3 consensus keyspace (r:, every node a member of
// every group) and a factor-2 one (t:, so each of its shards has a node that
// is no member). A write of such a key is applied by raft on every member,
// not through the plain local write path: each member tells its own tracking
// clients and the nodes whose reads it served.
class ConsensusTracking : public ClusterTracking {
 protected:
  void SetUp() override {
    ClusterTracking::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto c = RedisClient::connect(cluster_->port(0));
    ASSERT_TRUE(c.ok());
    ASSERT_EQ(c->cmd({"KEYSPACE", "CREATE", "rep", "PREFIX", "r:", "REPLICATION", "consensus",
                      "FACTOR", "3"}),
              "+OK");
    ASSERT_EQ(c->cmd({"KEYSPACE", "CREATE", "two", "PREFIX", "t:", "REPLICATION", "consensus",
                      "FACTOR", "2"}),
              "+OK");
    for (const char* key : {"r:k", "t:k"}) {
      for (size_t node = 0; node < 3; ++node) ASSERT_NO_FATAL_FAILURE(wait_writable(node, key));
    }
  }
  void wait_writable(size_t node, const std::string& key) {
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (write(node, {"SET", key, "probe"}) == "+OK") return;
      std::this_thread::sleep_for(20ms);
    }
    FAIL() << key << " not writable through node " << node;
  }
  // The indexes of the nodes that own key (its group's members).
  std::vector<size_t> members(const std::string& key) {
    std::vector<size_t> out;
    auto c = RawClient::connect(cluster_->port(0));
    EXPECT_TRUE(c.ok());
    if (!c.ok()) return out;
    auto r = c->call({"LOCATE", key});
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return out;
    const resp::Value& v = r->value;
    for (size_t i = 0; i + 1 < v.elements.size(); i += 2) {
      if (v.elements[i].str != "owners") continue;
      for (const resp::Value& o : v.elements[i + 1].elements) {
        out.push_back(static_cast<size_t>(o.integer - 1));
      }
    }
    return out;
  }
  // Waits until key's group is led by its first owner, where leadership
  // settles after the keyspace is created (docs/replication.md, "Leaders
  // spread"): during a change of leader a BCAST client may be told twice.
  void settle(const std::string& key) {
    const std::vector<size_t> owners = members(key);
    ASSERT_FALSE(owners.empty());
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto c = RawClient::connect(cluster_->port(owners[0]));
      ASSERT_TRUE(c.ok());
      auto r = c->call({"LOCATE", key});
      ASSERT_TRUE(r.ok());
      const resp::Value& v = r->value;
      for (size_t i = 0; i + 1 < v.elements.size(); i += 2) {
        if (v.elements[i].str == "leader" &&
            v.elements[i + 1].integer == static_cast<int64_t>(owners[0] + 1)) {
          return;
        }
      }
      std::this_thread::sleep_for(50ms);
    }
  }
  // A read's reply, past the pushes that come before it.
  static std::string read(RawClient& c, const std::vector<std::string>& cmd) {
    EXPECT_TRUE(c.send_command(cmd).ok());
    std::string frame;
    while ((frame = next(c)).starts_with(">")) {
    }
    return frame;
  }
  // Waits for a message of another member that would duplicate one already
  // received, then proves none came.
  static void expect_nothing_more(RawClient& c) {
    std::this_thread::sleep_for(300ms);
    ASSERT_TRUE(c.send_command({"PING"}).ok());
    EXPECT_EQ(next(c), "+PONG\r\n");
  }
};

TEST_F(ConsensusTracking, AWriteThroughAnyNodeInvalidatesWhatAnyMemberHandedOut) {
  const std::string key = "r:key";
  for (size_t reader = 0; reader < 3; ++reader) {
    auto t = tracker(reader);
    auto weak = tracker(reader);  // reads from this node's own replica
    ASSERT_EQ(weak->call({"CONSISTENCY", "eventual"})->bytes, "+OK\r\n");
    for (size_t via = 0; via < 3; ++via) {
      const std::string value = "v" + std::to_string(reader) + std::to_string(via);
      ASSERT_EQ(write(via, {"SET", key, value}), "+OK");
      // Linearizable: on the group's leader, wherever it is.
      ASSERT_EQ(t->call({"GET", key})->bytes, "$3\r\n" + value + "\r\n");
      // Eventual: this member's applied state (perhaps not yet the write).
      ASSERT_TRUE(weak->call({"GET", key}).ok());
      ASSERT_EQ(write((via + 1) % 3, {"SET", key, "new"}), "+OK");
      EXPECT_EQ(next(*t), push_of({key}))
          << "read on node " << reader << ", written via " << (via + 1) % 3;
      EXPECT_EQ(next(*weak), push_of({key}))
          << "weak read on node " << reader << ", written via " << (via + 1) % 3;
    }
    ASSERT_NO_FATAL_FAILURE(expect_nothing_more(*t));  // once per read, as on one node
  }
}

TEST_F(ConsensusTracking, ANodeThatIsNoMemberIsToldOfWritesOfWhatItRead) {
  const std::string key = "t:key";
  auto owners = members(key);
  ASSERT_EQ(owners.size(), 2u);
  size_t outsider = 0;
  while (std::find(owners.begin(), owners.end(), outsider) != owners.end()) ++outsider;
  auto t = tracker(outsider);
  auto weak = tracker(outsider);  // served by a member picked at random
  ASSERT_EQ(weak->call({"CONSISTENCY", "eventual"})->bytes, "+OK\r\n");
  for (int round = 0; round < 2; ++round) {
    for (size_t via = 0; via < 3; ++via) {
      ASSERT_EQ(write(via, {"SET", key, "old"}), "+OK");
      ASSERT_EQ(t->call({"GET", key})->bytes, "$3\r\nold\r\n");
      ASSERT_TRUE(weak->call({"GET", key}).ok());
      ASSERT_EQ(write(via, {"SET", key, "new"}), "+OK");
      EXPECT_EQ(next(*t), push_of({key}))
          << "node " << outsider << " is no member; written via " << via;
      EXPECT_EQ(next(*weak), push_of({key})) << "weak read; written via " << via;
    }
  }
  ASSERT_NO_FATAL_FAILURE(expect_nothing_more(*t));
  ASSERT_NO_FATAL_FAILURE(expect_nothing_more(*weak));
}

// NOLOOP for keys of consensus keyspaces: a tracking client's write carries
// its id into the group's entry, so that its node, whether it applies the
// entry as a member or hears of it from one, leaves the writer out. On every
// node (a member of the factor-3 group; a member of the factor-2 group or the
// node that is none), default mode and BCAST: the writer's own write sends it
// nothing; another client's write of a key it read or watches still does.
TEST_F(ConsensusTracking, NoloopHoldsForWritesOfConsensusKeysOnMembersAndOutsiders) {
  for (const std::string prefix : {"r:", "t:"}) {
    for (size_t node = 0; node < 3; ++node) {
      const std::string tag = prefix + "nl" + std::to_string(node);
      const std::string mine = tag + ":mine";
      const std::string theirs = tag + ":theirs";
      ASSERT_NO_FATAL_FAILURE(settle(mine));
      ASSERT_NO_FATAL_FAILURE(settle(theirs));
      // Never written before the reads: no late apply of an older write can
      // report them.
      auto t = tracker(node, {"NOLOOP"});
      ASSERT_EQ(read(*t, {"GET", mine}), "_\r\n");
      ASSERT_EQ(read(*t, {"GET", theirs}), "_\r\n");
      ASSERT_EQ(read(*t, {"SET", mine, "x"}), "+OK\r\n");
      ASSERT_EQ(write((node + 1) % 3, {"SET", theirs, "y"}), "+OK");
      // The writer's own key would come first: members apply the entries in
      // log order, and both keys' messages come from the same members.
      EXPECT_EQ(next(*t), push_of({theirs})) << "NOLOOP tracker on node " << node << ", " << tag;
      ASSERT_NO_FATAL_FAILURE(expect_nothing_more(*t));

      auto b = tracker(node, {"BCAST", "PREFIX", tag + ":b", "NOLOOP"});
      ASSERT_NO_FATAL_FAILURE(settle(tag + ":b1"));
      ASSERT_NO_FATAL_FAILURE(settle(tag + ":b2"));
      ASSERT_EQ(read(*b, {"SET", tag + ":b1", "x"}), "+OK\r\n");
      ASSERT_EQ(write((node + 2) % 3, {"SET", tag + ":b2", "y"}), "+OK");
      EXPECT_EQ(next(*b), push_of({tag + ":b2"}))
          << "BCAST NOLOOP tracker on node " << node << ", " << tag;
      ASSERT_NO_FATAL_FAILURE(expect_nothing_more(*b));
    }
  }
}

TEST_F(ConsensusTracking, BroadcastClientsHearOfEachWriteOnce) {
  const std::string key = "t:bkey";
  auto owners = members(key);
  ASSERT_EQ(owners.size(), 2u);
  ASSERT_NO_FATAL_FAILURE(settle(key));
  for (size_t node = 0; node < 3; ++node) {
    // A member (told by its own apply) or the outsider (told by the leader).
    // (Under t:b: a late apply of SetUp's writes of t:k may still report them.)
    auto t = tracker(node, {"BCAST", "PREFIX", "t:b"});
    ASSERT_EQ(write((node + 1) % 3, {"SET", key, "x"}), "+OK");
    EXPECT_EQ(next(*t), push_of({key})) << "BCAST tracker on node " << node;
    ASSERT_NO_FATAL_FAILURE(expect_nothing_more(*t));
  }
}

TEST_F(ConsensusTracking, Resp2RedirectGetsMessagesOnTheInvalidateChannel) {
  const std::string key = "r:redirected";
  for (size_t reader = 0; reader < 3; ++reader) {
    auto sink = RawClient::connect(cluster_->port(reader));
    ASSERT_TRUE(sink.ok());
    auto id = sink->call({"CLIENT", "ID"});
    ASSERT_TRUE(id.ok());
    auto sub = sink->call({"SUBSCRIBE", "__redis__:invalidate"});
    ASSERT_TRUE(sub.ok());
    auto c = RawClient::connect(cluster_->port(reader));
    ASSERT_TRUE(c.ok());
    ASSERT_EQ(
        c->call({"CLIENT", "TRACKING", "ON", "REDIRECT", std::to_string(id->value.integer)})->bytes,
        "+OK\r\n");
    ASSERT_EQ(write(reader, {"SET", key, "a"}), "+OK");
    ASSERT_EQ(c->call({"GET", key})->bytes, "$1\r\na\r\n");
    ASSERT_EQ(write((reader + 2) % 3, {"SET", key, "b"}), "+OK");
    EXPECT_EQ(next(*sink), "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$" +
                               std::to_string(key.size()) + "\r\n" + key + "\r\n")
        << "read on node " << reader;
  }
}

TEST_F(ConsensusTracking, FlushallSendsTheFlushMessage) {
  auto t = tracker(2);
  // (A follower's apply of a write made before the read may still report it.)
  ASSERT_EQ(read(*t, {"GET", "r:k"}), "$5\r\nprobe\r\n");
  ASSERT_EQ(read(*t, {"GET", "t:k"}), "$5\r\nprobe\r\n");
  ASSERT_EQ(write(0, {"FLUSHALL"}), "+OK");
  // The keys' own invalidations (their erase through each group's log) may
  // come first; the flush message comes, and once.
  std::string frame;
  int flushes = 0;
  ASSERT_TRUE(t->send_command({"PING"}).ok());
  std::this_thread::sleep_for(300ms);
  while (!(frame = next(*t)).empty() && frame != "+PONG\r\n") {
    if (frame == kFlushPush) {
      ++flushes;
    } else {
      EXPECT_TRUE(frame == push_of({"r:k"}) || frame == push_of({"t:k"})) << frame;
    }
  }
  EXPECT_EQ(frame, "+PONG\r\n");
  EXPECT_EQ(flushes, 1);
}

}  // namespace
}  // namespace statekv::itest
