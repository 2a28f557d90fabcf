// Blocking pops (BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX
// BZMPOP) and LMPOP / ZMPOP (issue 11), against redis-server 7 and statekv
// side by side: every connection here is a pair (one socket to each server),
// each command goes to both, and every reply is compared byte for byte —
// including which blocked client got which element, and when. "Not yet
// answered" is checked on both (a short read that must time out), and the
// clients blocked are counted with INFO on both before the next one blocks,
// so arrival order is the order the test sent them in.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/differential.h"
#include "support/raw_pair.h"
#include "support/reply.h"

namespace statekv::itest {
namespace {

using Args = std::vector<std::string>;
using namespace std::chrono_literals;

class BlockingTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    d_ = std::make_unique<Differential>(subject_options(GetParam()));
    ASSERT_TRUE(d_->ok());
  }
  std::string run(const Args& args) { return d_->run(args); }

  RawPair connect(int resp = 2) {
    auto p = RawPair::connect(d_->redis(), d_->subject());
    EXPECT_TRUE(p.ok()) << p.status().to_string();
    if (resp == 3) {
      // HELLO's reply names the server and the client id: not compared.
      EXPECT_TRUE(p->redis().call({"HELLO", "3"}).ok());
      EXPECT_TRUE(p->subject().call({"HELLO", "3"}).ok());
    }
    return std::move(p).value();
  }
  // Sends args on both sides of p without reading.
  static void send(RawPair& p, const Args& args) {
    ASSERT_TRUE(p.redis().send_command(args).ok());
    ASSERT_TRUE(p.subject().send_command(args).ok());
  }
  // Reads one reply on each side and compares them; returns redis's bytes.
  static std::string receive(RawPair& p, std::chrono::milliseconds timeout = 10s) {
    auto r = p.redis().read_reply(timeout);
    auto s = p.subject().read_reply(timeout);
    if (!r.ok() || !s.ok()) {
      ADD_FAILURE() << "no reply: redis " << (r.ok() ? r->bytes : r.status().to_string())
                    << ", statekv " << (s.ok() ? s->bytes : s.status().to_string());
      return {};
    }
    EXPECT_EQ(r->bytes, s->bytes) << "replies differ";
    return r->bytes;
  }
  // Neither side answered p within `wait`.
  static void nothing_yet(RawPair& p, std::chrono::milliseconds wait = 150ms) {
    auto r = p.redis().read_reply(wait);
    auto s = p.subject().read_reply(wait);
    EXPECT_FALSE(r.ok()) << "redis answered: " << r->bytes;
    EXPECT_FALSE(s.ok()) << "statekv answered: " << s->bytes;
  }
  // INFO clients' blocked_clients of one server.
  static int blocked(RedisClient& c) {
    const std::string info = c.cmd({"INFO", "clients"});
    const auto at = info.find("blocked_clients:");
    if (at == std::string::npos) return -1;
    return std::atoi(info.c_str() + at + 16);
  }
  // Waits until both servers count n blocked clients.
  void wait_blocked(int n) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (blocked(d_->redis_client()) == n && blocked(d_->subject_client()) == n) return;
      std::this_thread::sleep_for(5ms);
    }
    ADD_FAILURE() << "blocked_clients never reached " << n << ": redis "
                  << blocked(d_->redis_client()) << ", statekv " << blocked(d_->subject_client());
  }
  // Blocks args on a new connection (both servers), waits until it is
  // counted as blocked there.
  RawPair block(const Args& args, int now_blocked, int resp = 2) {
    RawPair p = connect(resp);
    send(p, args);
    wait_blocked(now_blocked);
    return p;
  }

  std::unique_ptr<Differential> d_;
};

TEST_P(BlockingTest, NonBlockingPathsAndErrors) {
  run({"RPUSH", "l", "a", "b", "c"});
  run({"RPUSH", "l2", "x"});
  run({"SET", "s", "v"});
  run({"ZADD", "z", "1", "a", "2", "b", "3", "c"});
  // The first non-empty key in argument order; absent keys skipped.
  run({"BLPOP", "none", "l", "l2", "0"});
  run({"BRPOP", "none", "l2", "l", "0"});
  run({"BLPOP", "none", "s", "l", "0"});  // WRONGTYPE before a list with elements
  run({"BLPOP", "l", "s", "0"});          // served before the string is looked at
  run({"BRPOPLPUSH", "l", "dst", "0"});
  run({"BLMOVE", "dst", "l", "LEFT", "RIGHT", "0"});
  run({"BLMOVE", "l", "l", "RIGHT", "LEFT", "0"});
  run({"LRANGE", "l", "0", "-1"});
  run({"BLMOVE", "s", "l", "LEFT", "LEFT", "0"});
  run({"BLMOVE", "l", "s", "LEFT", "LEFT", "0"});
  run({"BLMOVE", "l", "x", "UP", "LEFT", "0"});
  run({"BLMOVE", "l", "x", "LEFT", "LEFT", "x"});
  run({"BZPOPMIN", "none", "z", "0"});
  run({"BZPOPMAX", "z", "0"});
  run({"BZPOPMIN", "s", "z", "0"});
  run({"BZPOPMIN", "l", "z", "0"});
  // An emptied list or sorted set is gone.
  run({"RPUSH", "one", "x"});
  run({"BLPOP", "one", "0"});
  run({"EXISTS", "one"});
  run({"ZADD", "zone", "5", "m"});
  run({"BZPOPMAX", "zone", "0"});
  run({"EXISTS", "zone"});
  // Timeouts: Redis 7.0's parsing.
  for (const char* t :
       {"-1", "-0.5", "abc", "", " 1", "nan", "inf", "-inf", "1e30", "9223372036854776", "1x"}) {
    run({"BLPOP", "none", t});
    run({"BRPOPLPUSH", "none", "d", t});
    run({"BZPOPMIN", "none", t});
    run({"BLMPOP", t, "1", "none", "LEFT"});
  }
  // Timed out: nil (a null array, or a null bulk for the moves).
  run({"BLPOP", "none", "0.05"});
  run({"BRPOP", "none", "none2", "0.01"});
  run({"BRPOPLPUSH", "none", "d", "0.01"});
  run({"BLMOVE", "none", "d", "LEFT", "LEFT", "0.01"});
  run({"BZPOPMIN", "none", "0.01"});
  run({"BLMPOP", "0.01", "1", "none", "LEFT"});
  run({"BZMPOP", "0.01", "2", "none", "z2", "MAX"});
  // Arity.
  run({"BLPOP"});
  run({"BLPOP", "l"});
  run({"BLMOVE", "a", "b", "LEFT", "LEFT"});
  run({"BRPOPLPUSH", "a", "b"});
  run({"BZPOPMIN", "z"});
  run({"LMPOP", "1", "l"});
  run({"ZMPOP", "1", "z"});
}

TEST_P(BlockingTest, MultiPops) {
  run({"RPUSH", "l", "a", "b", "c", "d", "e"});
  run({"ZADD", "z", "1", "a", "2", "b", "3", "c", "-1.5", "n", "inf", "i"});
  run({"SET", "s", "v"});
  run({"LMPOP", "2", "none", "l", "LEFT"});
  run({"LMPOP", "2", "none", "l", "RIGHT", "COUNT", "2"});
  run({"LMPOP", "1", "l", "left", "count", "100"});
  run({"EXISTS", "l"});
  run({"LMPOP", "1", "l", "LEFT"});
  run({"LMPOP", "2", "s", "z", "LEFT"});
  run({"ZMPOP", "1", "z", "MIN"});
  run({"ZMPOP", "2", "none", "z", "MAX", "COUNT", "2"});
  run({"ZMPOP", "1", "z", "min", "COUNT", "10"});
  run({"ZMPOP", "1", "z", "MIN"});
  run({"ZMPOP", "1", "s", "MIN"});
  run({"RPUSH", "l", "a", "b", "c"});
  run({"ZADD", "z", "1", "a", "2", "b"});
  run({"BLMPOP", "0", "2", "none", "l", "RIGHT", "COUNT", "2"});
  run({"BZMPOP", "0", "1", "z", "MAX", "COUNT", "5"});
  for (const Args& bad : std::vector<Args>{{"LMPOP", "0", "l", "LEFT"},
                                           {"LMPOP", "-1", "l", "LEFT"},
                                           {"LMPOP", "x", "l", "LEFT"},
                                           {"LMPOP", "2", "l", "LEFT"},
                                           {"LMPOP", "5", "l", "LEFT"},
                                           {"LMPOP", "99999999999999999999", "l", "LEFT"},
                                           {"LMPOP", "1", "l", "MIDDLE"},
                                           {"LMPOP", "1", "l", "MIN"},
                                           {"LMPOP", "1", "l", "LEFT", "COUNT"},
                                           {"LMPOP", "1", "l", "LEFT", "COUNT", "0"},
                                           {"LMPOP", "1", "l", "LEFT", "COUNT", "-3"},
                                           {"LMPOP", "1", "l", "LEFT", "COUNT", "x"},
                                           {"LMPOP", "1", "l", "LEFT", "COUNT", "1", "COUNT", "1"},
                                           {"LMPOP", "1", "l", "LEFT", "EXTRA"},
                                           {"ZMPOP", "1", "z", "LEFT"},
                                           {"ZMPOP", "1", "z", "MAX", "COUNT", "0"},
                                           {"BLMPOP", "0", "0", "l", "LEFT"},
                                           {"BLMPOP", "x", "1", "l", "LEFT"},
                                           {"BZMPOP", "0", "1", "z", "MIN", "COUNT"},
                                           {"BLMPOP", "-1", "x", "l", "LEFT"}}) {
    run(bad);
  }
}

TEST_P(BlockingTest, AclChecksMovableKeys) {
  // LMPOP's keys follow numkeys: a user limited to some keys is refused the
  // others (the ACL check read no key of them before).
  run({"ACL", "SETUSER", "limited", "on", "nopass", "~ok:*", "+@all"});
  run({"RPUSH", "secret:l", "s"});
  RawPair p = connect();
  p.call({"AUTH", "limited", "x"});
  p.call({"LMPOP", "2", "ok:l", "secret:l", "LEFT"});
  p.call({"BLMPOP", "0", "1", "secret:l", "LEFT"});
  p.call({"ZMPOP", "1", "secret:z", "MIN"});
  p.call({"SINTERCARD", "2", "ok:s", "secret:s"});
  p.call({"LMPOP", "1", "ok:l", "LEFT"});
  run({"LRANGE", "secret:l", "0", "-1"});
}

TEST_P(BlockingTest, Resp3ReplyShapes) {
  RawPair p = connect(3);
  p.call({"RPUSH", "l", "a", "b"});
  p.call({"ZADD", "z", "1.5", "a", "2", "b", "3", "c"});
  p.call({"BLPOP", "l", "0"});
  p.call({"BLMOVE", "l", "l2", "LEFT", "LEFT", "0"});
  p.call({"BZPOPMIN", "z", "0"});
  p.call({"BZMPOP", "0", "1", "z", "MAX", "COUNT", "1"});
  p.call({"ZMPOP", "1", "z", "MIN"});
  p.call({"LMPOP", "1", "l2", "LEFT"});
  p.call({"BLPOP", "none", "0.01"});
  p.call({"BLMOVE", "none", "x", "LEFT", "LEFT", "0.01"});
  p.call({"BZMPOP", "0.01", "1", "none", "MIN"});
  p.call({"LMPOP", "1", "none", "LEFT"});
}

TEST_P(BlockingTest, InsideMultiTheyDoNotBlock) {
  RawPair p = connect();
  p.call({"RPUSH", "l", "a"});
  p.call({"MULTI"});
  p.call({"BLPOP", "none", "0"});
  p.call({"BRPOPLPUSH", "none", "d", "0"});
  p.call({"BZPOPMAX", "none", "0"});
  p.call({"BLMPOP", "0", "1", "none", "LEFT"});
  p.call({"BLPOP", "l", "0"});
  p.call({"EXEC"});
  // A collection written twice in one transaction (the second command reads
  // what the first staged): was committed as a string, WRONGTYPE after.
  p.call({"MULTI"});
  p.call({"LPUSH", "q", "a"});
  p.call({"LPUSH", "q", "b"});
  p.call({"ZADD", "z", "1", "m"});
  p.call({"ZADD", "z", "2", "n"});
  p.call({"LLEN", "q"});
  p.call({"EXEC"});
  p.call({"LRANGE", "q", "0", "-1"});
  p.call({"ZRANGE", "z", "0", "-1", "WITHSCORES"});
  p.call({"TYPE", "q"});
}

// A list past its compact size written inside MULTI/EXEC, pops inside it
// included (they do not block), as in Redis; an EXEC that fills a key with a
// large list serves the client blocked on it. (statekv refused such a
// transaction whole before: its element writes were not staged.)
TEST_P(BlockingTest, ALargeListInsideMulti) {
  RawPair p = connect();
  Args fill = {"RPUSH", "big"};
  for (int i = 0; i < 200; ++i) fill.push_back("e" + std::to_string(i));
  p.call(fill);
  p.call({"MULTI"});
  p.call({"SET", "side", "1"});
  p.call({"RPUSH", "big", "x"});
  p.call({"BLPOP", "big", "0"});
  p.call({"BRPOPLPUSH", "big", "big", "0"});
  p.call({"BLMPOP", "0", "1", "big", "RIGHT", "COUNT", "3"});
  p.call({"LRANGE", "big", "0", "2"});
  p.call({"LRANGE", "big", "-3", "-1"});
  p.call({"LLEN", "big"});
  p.call({"EXEC"});
  p.call({"LRANGE", "big", "0", "-1"});
  p.call({"GET", "side"});

  RawPair waiter = block({"BLPOP", "q", "0"}, 1);
  p.call({"MULTI"});
  Args push = {"RPUSH", "q"};
  for (int i = 0; i < 300; ++i) push.push_back("j" + std::to_string(i));
  p.call(push);
  p.call({"LLEN", "q"});
  p.call({"EXEC"});
  EXPECT_EQ(receive(waiter), "*2\r\n$1\r\nq\r\n$2\r\nj0\r\n");
  wait_blocked(0);
  p.call({"LLEN", "q"});
  p.call({"LRANGE", "q", "0", "1"});
}

TEST_P(BlockingTest, PushOnAnotherConnectionServesTheBlockedOne) {
  RawPair waiter = block({"BLPOP", "empty", "q", "0"}, 1);
  nothing_yet(waiter);
  RawPair pusher = connect();
  EXPECT_EQ(pusher.call({"RPUSH", "q", "job1", "job2"}), ":2\r\n");
  EXPECT_EQ(receive(waiter), "*2\r\n$1\r\nq\r\n$4\r\njob1\r\n");
  wait_blocked(0);
  pusher.call({"LRANGE", "q", "0", "-1"});
  // The served client runs its next commands again.
  EXPECT_EQ(waiter.call({"PING"}), "+PONG\r\n");
}

TEST_P(BlockingTest, BlockedClientsAreServedInArrivalOrder) {
  RawPair c1 = block({"BRPOP", "q", "0"}, 1);
  RawPair c2 = block({"BRPOP", "other", "q", "0"}, 2);
  RawPair c3 = block({"BLPOP", "q", "0"}, 3);
  RawPair pusher = connect();
  // One push of two elements serves two clients, the first two to arrive.
  EXPECT_EQ(pusher.call({"RPUSH", "q", "a", "b"}), ":2\r\n");
  receive(c1);
  receive(c2);
  nothing_yet(c3);
  wait_blocked(1);
  pusher.call({"EXISTS", "q"});
  pusher.call({"LPUSH", "q", "c"});
  EXPECT_EQ(receive(c3), "*2\r\n$1\r\nq\r\n$1\r\nc\r\n");
  wait_blocked(0);
}

TEST_P(BlockingTest, PushInsideMultiServesAfterExec) {
  RawPair waiter = block({"BLPOP", "q", "0"}, 1);
  RawPair pusher = connect();
  pusher.call({"MULTI"});
  pusher.call({"SET", "before", "1"});
  pusher.call({"RPUSH", "q", "a", "b"});
  pusher.call({"SET", "after", "1"});
  nothing_yet(waiter, 50ms);
  pusher.call({"EXEC"});
  receive(waiter);  // a
  pusher.call({"LRANGE", "q", "0", "-1"});
}

TEST_P(BlockingTest, BlmoveIsAtomicAndChains) {
  // c1 waits on src and moves into mid; c2 waits on mid and moves into dst:
  // one push into src reaches dst through both.
  RawPair c1 = block({"BLMOVE", "src", "mid", "RIGHT", "LEFT", "0"}, 1);
  RawPair c2 = block({"BRPOPLPUSH", "mid", "dst", "0"}, 2);
  RawPair pusher = connect();
  EXPECT_EQ(pusher.call({"LPUSH", "src", "x"}), ":1\r\n");
  EXPECT_EQ(receive(c1), "$1\r\nx\r\n");
  EXPECT_EQ(receive(c2), "$1\r\nx\r\n");
  wait_blocked(0);
  pusher.call({"EXISTS", "src", "mid"});
  pusher.call({"LRANGE", "dst", "0", "-1"});
  // A destination of another type: WRONGTYPE to the served client, and the
  // element stays where it was.
  pusher.call({"SET", "str", "v"});
  RawPair c3 = block({"BLMOVE", "src2", "str", "LEFT", "LEFT", "0"}, 1);
  pusher.call({"RPUSH", "src2", "y"});
  receive(c3);
  wait_blocked(0);
  pusher.call({"LRANGE", "src2", "0", "-1"});
}

TEST_P(BlockingTest, SortedSetsServedByZadd) {
  RawPair c1 = block({"BZPOPMIN", "z", "0"}, 1);
  RawPair c2 = block({"BZPOPMAX", "other", "z", "0"}, 2);
  RawPair c3 = block({"BZMPOP", "0", "1", "z", "MIN", "COUNT", "10"}, 3, 3);
  RawPair pusher = connect();
  pusher.call({"ZADD", "z", "3", "c", "1", "a", "2", "b", "4", "d"});
  receive(c1);  // a 1
  receive(c2);  // d 4
  receive(c3);  // the rest, RESP3
  wait_blocked(0);
  pusher.call({"EXISTS", "z"});
  // A list waiter and a sorted-set waiter on one key: the type decides.
  RawPair lw = block({"BLPOP", "k", "0"}, 1);
  RawPair zw = block({"BZPOPMIN", "k", "0"}, 2);
  pusher.call({"ZADD", "k", "1", "m"});
  receive(zw);
  nothing_yet(lw, 50ms);
  pusher.call({"RPUSH", "k", "e"});
  receive(lw);
  wait_blocked(0);
}

TEST_P(BlockingTest, TimeoutsAreHonoured) {
  RawPair p = connect();
  const auto start = std::chrono::steady_clock::now();
  send(p, {"BLPOP", "none", "0.4"});
  nothing_yet(p, 150ms);
  EXPECT_EQ(receive(p, 10s), "*-1\r\n");
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, 350ms);  // both servers waited about the timeout
  EXPECT_LT(took, 5s);     // a generous margin for a loaded machine
  wait_blocked(0);
  // A served client's timeout does not fire later.
  RawPair q = block({"BLMOVE", "k", "d", "LEFT", "LEFT", "0.5"}, 1, 3);
  RawPair pusher = connect();
  pusher.call({"RPUSH", "k", "v"});
  receive(q);
  EXPECT_EQ(q.call({"PING"}), "+PONG\r\n");
  std::this_thread::sleep_for(700ms);
  nothing_yet(q, 50ms);
  EXPECT_EQ(q.call({"PING"}), "+PONG\r\n");
  // RESP3 timeouts are the null.
  RawPair r3 = connect(3);
  r3.call({"BRPOPLPUSH", "none", "d", "0.05"});
  r3.call({"BZPOPMIN", "none", "0.05"});
}

TEST_P(BlockingTest, PipelinedCommandsWaitBehindTheBlockedOne) {
  RawPair p = connect();
  // Redis runs nothing more of a blocked client: its own RPUSH cannot serve it.
  ASSERT_TRUE(p.redis()
                  .send(encode_command({"BLPOP", "q", "0"}) + encode_command({"RPUSH", "q", "own"}))
                  .ok());
  ASSERT_TRUE(p.subject()
                  .send(encode_command({"BLPOP", "q", "0"}) + encode_command({"RPUSH", "q", "own"}))
                  .ok());
  wait_blocked(1);
  nothing_yet(p);
  RawPair pusher = connect();
  pusher.call({"LLEN", "q"});
  pusher.call({"RPUSH", "q", "other"});
  receive(p);  // other
  receive(p);  // then its own RPUSH ran: :1
  pusher.call({"LRANGE", "q", "0", "-1"});
}

TEST_P(BlockingTest, DisconnectWhileBlockedIsCleanedUp) {
  {
    RawPair served = block({"BLPOP", "q", "0"}, 1);
    {
      RawPair gone = block({"BLPOP", "q", "0"}, 2);
      RawPair also_gone = block({"BZPOPMIN", "z", "q", "0"}, 3);
    }  // closed while blocked, ahead of `stays`
    wait_blocked(1);
    RawPair stays = block({"BLPOP", "q", "0"}, 2);
    RawPair pusher = connect();
    pusher.call({"RPUSH", "q", "a", "b"});
    receive(served);  // a
    receive(stays);   // b: nothing went to the clients that left
    wait_blocked(0);
    pusher.call({"RPUSH", "q", "c"});
    RawPair last = block({"BLPOP", "q2", "0"}, 1);
  }  // both closed
  wait_blocked(0);
  run({"RPUSH", "q", "d"});
  run({"LRANGE", "q", "0", "-1"});
}

TEST_P(BlockingTest, ClientUnblock) {
  RawPair waiter = block({"BLPOP", "q", "0"}, 1);
  // The ids differ between the servers: ask each for its own.
  RawPair ids = connect();
  ids.redis().send_command({"CLIENT", "LIST"});
  ids.subject().send_command({"CLIENT", "LIST"});
  auto id_of_blocked = [](const std::string& list) {
    // The line with flags=b.
    size_t at = list.find("flags=b");
    if (at == std::string::npos) return std::string();
    size_t start = list.rfind("id=", at);
    size_t end = list.find(' ', start);
    return list.substr(start + 3, end - start - 3);
  };
  auto rl = ids.redis().read_reply();
  auto sl = ids.subject().read_reply();
  ASSERT_TRUE(rl.ok() && sl.ok());
  const std::string rid = id_of_blocked(rl->bytes);
  const std::string sid = id_of_blocked(sl->bytes);
  ASSERT_FALSE(rid.empty());
  ASSERT_FALSE(sid.empty()) << sl->bytes;
  auto unblock = [&](const std::string& how) {
    auto a = ids.redis().call({"CLIENT", "UNBLOCK", rid, how});
    auto b = ids.subject().call({"CLIENT", "UNBLOCK", sid, how});
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->bytes, b->bytes);
  };
  unblock("TIMEOUT");
  EXPECT_EQ(receive(waiter), "*-1\r\n");
  unblock("TIMEOUT");  // :0, not blocked any more
  send(waiter, {"BRPOPLPUSH", "q", "d", "0"});
  wait_blocked(1);
  unblock("ERROR");
  receive(waiter);
  ids.call({"CLIENT", "UNBLOCK", "x"});
  ids.call({"CLIENT", "UNBLOCK", "1", "MAYBE"});
  ids.call({"CLIENT", "UNBLOCK", "999999"});
}

// Many clients blocking and pushing at once, on several I/O threads: every
// element pushed is popped exactly once (none lost to a client, none twice),
// and no client stays blocked with elements waiting.
TEST(BlockingConcurrency, EveryElementIsPoppedExactlyOnce) {
  ServerOptions options = subject_options("memory");
  options.extra_args = {"--io-threads", "4"};
  if (subject_kind() == ServerKind::kRedis) options.extra_args.clear();
  ServerProcess server(options);
  ASSERT_TRUE(server.start().ok());
  constexpr int kWaiters = 12;
  constexpr int kPushers = 4;
  constexpr int kPerPusher = 600;
  std::atomic<int> popped{0};
  std::vector<std::vector<std::string>> got(kWaiters);
  std::vector<std::thread> threads;
  for (int w = 0; w < kWaiters; ++w) {
    threads.emplace_back([&, w] {
      auto c = RawClient::connect(server.port());
      if (!c.ok()) return;
      // Bounded: a lost element would otherwise keep them waiting forever.
      const auto deadline = std::chrono::steady_clock::now() + 30s;
      while (popped.load() < kPushers * kPerPusher && std::chrono::steady_clock::now() < deadline) {
        // Two keys, two kinds of pop: each waiter takes what comes first.
        auto r = c->call(w % 3 == 0 ? Args{"BRPOPLPUSH", "q1", "moved", "0.2"}
                                    : Args{"BLPOP", "q1", "q2", "0.2"});
        if (!r.ok()) return;
        if (r->value.type == resp::Value::Type::kArray && r->value.elements.size() == 2) {
          got[w].push_back(r->value.elements[1].str);
          ++popped;
        } else if (r->value.type == resp::Value::Type::kBulk) {
          got[w].push_back(r->value.str);
          ++popped;
        }
      }
    });
  }
  for (int p = 0; p < kPushers; ++p) {
    threads.emplace_back([&, p] {
      auto c = RawClient::connect(server.port());
      if (!c.ok()) return;
      for (int i = 0; i < kPerPusher; i += 3) {
        Args push = {p % 2 == 0 ? "RPUSH" : "LPUSH", p % 2 == 0 ? "q1" : "q2"};
        for (int j = i; j < std::min(i + 3, kPerPusher); ++j) {
          push.push_back(std::to_string(p) + ":" + std::to_string(j));
        }
        if (!c->call(push).ok()) return;
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  size_t total = 0;
  for (const auto& g : got) {
    total += g.size();
    all.insert(g.begin(), g.end());
  }
  EXPECT_EQ(total, static_cast<size_t>(kPushers * kPerPusher));
  EXPECT_EQ(all.size(), static_cast<size_t>(kPushers * kPerPusher));
  auto c = RedisClient::connect(server.port());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->cmd({"EXISTS", "q1", "q2"}), ":0");
  const std::string info = c->cmd({"INFO", "clients"});
  EXPECT_NE(info.find("blocked_clients:0"), std::string::npos) << info;
}

INSTANTIATE_TEST_SUITE_P(Engines, BlockingTest, ::testing::Values("memory", "rocksdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace statekv::itest
