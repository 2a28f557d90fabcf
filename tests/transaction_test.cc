// Transactions (issue 11 item 2) against redis-server 7: MULTI, EXEC, DISCARD,
// WATCH and UNWATCH byte for byte in RESP2 and RESP3 — queueing, EXECABORT,
// runtime errors inside the EXEC array, the misuse errors, a WATCH broken by
// another client's write, by expiry and by FLUSHALL — and, on statekv alone,
// that EXEC is atomic while many clients run transactions at once.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "support/raw_pair.h"
#include "support/redis_client.h"
#include "support/server_process.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;
using Args = std::vector<std::string>;

class TransactionTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    redis_ = std::make_unique<ServerProcess>(ServerOptions{});
    ServerOptions o = subject_options(GetParam());
    o.extra_args.insert(o.extra_args.end(), {"--io-threads", "2"});
    subject_ = std::make_unique<ServerProcess>(o);
    ASSERT_TRUE(redis_->start().ok());
    Status st = subject_->start();
    ASSERT_TRUE(st.ok()) << st.to_string();
  }
  RawPair pair() {
    Result<RawPair> p = RawPair::connect(*redis_, *subject_);
    EXPECT_TRUE(p.ok()) << p.status().to_string();
    return std::move(p).value();
  }
  // HELLO 3 on both (the maps name different servers, so not compared).
  static void hello3(RawPair& p) {
    ASSERT_TRUE(p.redis().call({"HELLO", "3"}).ok());
    ASSERT_TRUE(p.subject().call({"HELLO", "3"}).ok());
  }

  // Every reply shape and error text of MULTI/EXEC/DISCARD, in the
  // connection's current protocol.
  static void queueing_and_errors(RawPair& p) {
    p.call({"FLUSHALL"});
    p.call({"EXEC"});
    p.call({"DISCARD"});
    p.call({"UNWATCH"});
    EXPECT_EQ(p.call({"MULTI"}), "+OK\r\n");
    EXPECT_EQ(p.call({"SET", "a", "1"}), "+QUEUED\r\n");
    p.call({"INCR", "a"});
    p.call({"SET", "s", "text"});
    p.call({"INCR", "s"});  // a runtime error: one reply in the array
    p.call({"GET", "a"});
    p.call({"MGET", "a", "s", "none"});
    p.call({"DBSIZE"});
    p.call({"DEL", "s"});
    p.call({"EXISTS", "s"});
    p.call({"GETDEL", "a"});
    p.call({"PTTL", "a"});
    p.call({"EXEC"});
    p.call({"EXEC"});  // no MULTI any more

    // Errors while queueing: EXECABORT, nothing runs.
    p.call({"MULTI"});
    p.call({"SET", "x", "1"});
    p.call({"SET", "x"});  // arity
    p.call({"SET", "y", "2"});
    p.call({"EXEC"});
    p.call({"EXISTS", "x", "y"});
    p.call({"MULTI"});
    p.call({"NOSUCHCMD", "a"});
    p.call({"EXEC"});
    p.call({"MULTI"});
    p.call({"CLIENT", "NOSUCHSUB"});
    p.call({"EXEC"});
    // A syntax error is a runtime error: the rest runs.
    p.call({"MULTI"});
    p.call({"SET", "x", "1", "2"});
    p.call({"SET", "y", "2"});
    p.call({"EXEC"});
    p.call({"GET", "y"});
    // A flush inside the transaction, between writes (EXEC holds every key
    // then; the flush used to wait on EXEC's own locks forever).
    p.call({"MULTI"});
    p.call({"SET", "a", "1"});
    p.call({"FLUSHDB"});
    p.call({"SET", "b", "2"});
    p.call({"EXEC"});
    p.call({"KEYS", "*"});
    p.call({"MULTI"});
    p.call({"FLUSHALL"});
    p.call({"EXEC"});
    p.call({"DBSIZE"});
    p.call({"MULTI"});
    p.call({"SET", "c", "3"});
    p.call({"FLUSHALL", "ASYNC"});
    p.call({"EXEC"});
    p.call({"EXISTS", "c"});

    // Misuse that Redis answers without aborting.
    p.call({"MULTI"});
    p.call({"MULTI"});
    p.call({"WATCH", "x"});
    p.call({"INCR", "y"});
    p.call({"EXEC"});
    // DISCARD drops the queue.
    p.call({"MULTI"});
    p.call({"INCR", "y"});
    p.call({"DISCARD"});
    p.call({"GET", "y"});
    p.call({"DISCARD"});
    // Empty transaction; UNWATCH queued.
    p.call({"MULTI"});
    p.call({"EXEC"});
    p.call({"MULTI"});
    p.call({"UNWATCH"});
    p.call({"PING"});
    p.call({"ECHO", "e"});
    p.call({"EXEC"});
    // RESET leaves MULTI.
    p.call({"MULTI"});
    p.call({"INCR", "y"});
    EXPECT_EQ(p.call({"RESET"}), "+RESET\r\n");
    p.call({"EXEC"});
    p.call({"GET", "y"});
    // The keyspace commands and flushes inside a transaction.
    p.call({"MULTI"});
    p.call({"SET", "k1", "v"});
    p.call({"RENAME", "k1", "k2"});
    p.call({"EXPIRE", "k2", "100"});
    p.call({"TTL", "k2"});
    p.call({"FLUSHDB"});
    p.call({"SET", "k3", "v"});
    p.call({"DBSIZE"});
    p.call({"GET", "k2"});
    p.call({"EXEC"});
    p.call({"KEYS", "*"});
  }

  std::unique_ptr<ServerProcess> redis_;
  std::unique_ptr<ServerProcess> subject_;
};

TEST_P(TransactionTest, QueueingExecAndErrorsInResp2) {
  RawPair p = pair();
  queueing_and_errors(p);
}

TEST_P(TransactionTest, QueueingExecAndErrorsInResp3) {
  RawPair p = pair();
  hello3(p);
  queueing_and_errors(p);
  hello3(p);  // RESET went back to RESP2
  // RESP3: a broken WATCH is a null, not *-1.
  p.call({"WATCH", "w"});
  p.call({"SET", "w", "1"});
  p.call({"MULTI"});
  p.call({"GET", "w"});
  EXPECT_EQ(p.call({"EXEC"}), "_\r\n");
}

TEST_P(TransactionTest, CommandInfoAndDocs) {
  RawPair p = pair();
  p.call({"COMMAND", "INFO", "multi", "exec", "discard", "watch", "unwatch"});
  p.call({"COMMAND", "DOCS", "multi", "exec", "discard", "watch", "unwatch"});
}

TEST_P(TransactionTest, SubscribeInsideMultiIsQueuedAsInRedis) {
  RawPair p = pair();
  p.call({"MULTI"});
  p.call({"SUBSCRIBE", "c"});
  p.call({"EXEC"});
  p.call({"PING"});
  p.call({"UNSUBSCRIBE"});
}

TEST_P(TransactionTest, WatchBrokenByAnotherClientByExpiryAndByFlush) {
  RawPair p = pair();
  RawPair other = pair();
  p.call({"FLUSHALL"});

  // Untouched: the transaction runs.
  p.call({"SET", "w", "1"});
  p.call({"WATCH", "w", "absent"});
  p.call({"MULTI"});
  p.call({"INCR", "w"});
  p.call({"EXEC"});

  // Another client's write (even of the same value) breaks the watch.
  p.call({"WATCH", "w"});
  other.call({"SET", "w", "2"});
  p.call({"MULTI"});
  p.call({"INCR", "w"});
  EXPECT_EQ(p.call({"EXEC"}), "*-1\r\n");
  p.call({"GET", "w"});
  // A write of an absent watched key, and a DEL.
  p.call({"WATCH", "absent"});
  other.call({"SET", "absent", "x"});
  p.call({"MULTI"});
  p.call({"GET", "w"});
  p.call({"EXEC"});
  p.call({"WATCH", "w"});
  other.call({"DEL", "w"});
  p.call({"MULTI"});
  p.call({"GET", "w"});
  p.call({"EXEC"});
  // A write nobody watches leaves the watch alone.
  p.call({"SET", "w", "1"});
  p.call({"WATCH", "w"});
  other.call({"SET", "unrelated", "1"});
  p.call({"MULTI"});
  p.call({"GET", "w"});
  p.call({"EXEC"});
  // This client's own write before MULTI breaks it too.
  p.call({"WATCH", "w"});
  p.call({"SET", "w", "3"});
  p.call({"MULTI"});
  p.call({"GET", "w"});
  p.call({"EXEC"});
  // UNWATCH, DISCARD and EXEC forget the watches.
  p.call({"WATCH", "w"});
  p.call({"UNWATCH"});
  other.call({"SET", "w", "4"});
  p.call({"MULTI"});
  p.call({"GET", "w"});
  p.call({"EXEC"});
  p.call({"WATCH", "w"});
  p.call({"MULTI"});
  p.call({"DISCARD"});
  other.call({"SET", "w", "5"});
  p.call({"MULTI"});
  p.call({"GET", "w"});
  p.call({"EXEC"});

  // Expiry: a key watched while live that expires breaks the watch, even if
  // nothing read it since; a key already expired when watched does not.
  p.call({"SET", "e", "1", "PX", "100"});
  p.call({"WATCH", "e"});
  std::this_thread::sleep_for(300ms);
  p.call({"MULTI"});
  p.call({"GET", "e"});
  EXPECT_EQ(p.call({"EXEC"}), "*-1\r\n");
  p.call({"SET", "e", "1", "PX", "50"});
  std::this_thread::sleep_for(200ms);
  p.call({"WATCH", "e"});
  p.call({"MULTI"});
  p.call({"GET", "e"});
  p.call({"EXEC"});

  // FLUSHALL breaks the watch of a key that existed, not of one that did not.
  p.call({"SET", "f", "1"});
  p.call({"WATCH", "f"});
  other.call({"FLUSHALL"});
  p.call({"MULTI"});
  p.call({"GET", "f"});
  EXPECT_EQ(p.call({"EXEC"}), "*-1\r\n");
  p.call({"WATCH", "never"});
  other.call({"FLUSHALL"});
  p.call({"MULTI"});
  p.call({"SET", "never", "1"});
  p.call({"EXEC"});
  p.call({"SET", "g", "1"});
  p.call({"WATCH", "g"});
  other.call({"FLUSHDB"});
  p.call({"MULTI"});
  p.call({"GET", "g"});
  p.call({"EXEC"});
  // RESET forgets the watches.
  p.call({"SET", "r", "1"});
  p.call({"WATCH", "r"});
  p.call({"RESET"});
  other.call({"SET", "r", "2"});
  p.call({"MULTI"});
  p.call({"GET", "r"});
  p.call({"EXEC"});
}

// Hashes, lists, sets and sorted sets past their compact size inside
// MULTI/EXEC, byte for byte as Redis: each command sees what the earlier ones
// of the transaction wrote (statekv reads through the elements staged), a
// collection deleted and re-created in one transaction, conversions from the
// compact encoding inside one, EXECABORT and WATCH as for any key.
// (statekv answered such an EXEC with an error and committed nothing.)
TEST_P(TransactionTest, LargeCollectionsInsideMulti) {
  RawPair p = pair();
  RawPair other = pair();
  p.call({"FLUSHALL"});
  Args hset = {"HSET", "h"};
  for (int i = 0; i < 10000; ++i) {
    hset.push_back("f" + std::to_string(i));
    hset.push_back("v" + std::to_string(i));
  }
  p.call(hset);
  Args rpush = {"RPUSH", "l"};
  for (int i = 0; i < 1000; ++i) rpush.push_back("e" + std::to_string(i));
  p.call(rpush);
  Args sadd = {"SADD", "s"};
  for (int i = 0; i < 2000; ++i) sadd.push_back("m" + std::to_string(i));
  p.call(sadd);
  Args zadd = {"ZADD", "z"};
  for (int i = 0; i < 1000; ++i) {
    zadd.push_back(std::to_string(i));
    zadd.push_back("m" + std::to_string(i));
  }
  p.call(zadd);

  // Hash.
  p.call({"MULTI"});
  p.call({"HSET", "h", "f1", "new", "extra", "x"});
  p.call({"HGET", "h", "f1"});
  p.call({"HGET", "h", "extra"});
  p.call({"HLEN", "h"});
  p.call({"HDEL", "h", "f2", "nope"});
  p.call({"HEXISTS", "h", "f2"});
  p.call({"HMGET", "h", "f1", "f2", "f3", "extra"});
  p.call({"HINCRBY", "h", "counter", "5"});
  p.call({"HINCRBY", "h", "counter", "5"});
  p.call({"HSETNX", "h", "f3", "no"});
  p.call({"HSTRLEN", "h", "f1"});
  p.call({"HLEN", "h"});
  p.call({"EXEC"});
  p.call({"HMGET", "h", "f1", "f2", "f3", "extra", "counter"});
  p.call({"HLEN", "h"});
  p.call({"OBJECT", "ENCODING", "h"});

  // List.
  p.call({"MULTI"});
  p.call({"LPUSH", "l", "a", "b"});
  p.call({"RPUSH", "l", "z"});
  p.call({"LRANGE", "l", "0", "4"});
  p.call({"LRANGE", "l", "-3", "-1"});
  p.call({"LSET", "l", "10", "set"});
  p.call({"LINDEX", "l", "10"});
  p.call({"LPOP", "l", "2"});
  p.call({"RPOP", "l"});
  p.call({"LTRIM", "l", "0", "799"});
  p.call({"LLEN", "l"});
  p.call({"LINSERT", "l", "BEFORE", "e5", "ins"});
  p.call({"LPOS", "l", "ins"});
  p.call({"LREM", "l", "0", "e6"});
  p.call({"LMOVE", "l", "l2", "LEFT", "RIGHT"});
  p.call({"LRANGE", "l", "0", "9"});
  p.call({"LLEN", "l"});
  p.call({"EXEC"});
  p.call({"LRANGE", "l", "0", "-1"});
  p.call({"LRANGE", "l2", "0", "-1"});

  // Set (SPOP's choice is random: its deterministic cases only).
  p.call({"MULTI"});
  p.call({"SADD", "s", "new", "m1"});
  p.call({"SISMEMBER", "s", "new"});
  p.call({"SCARD", "s"});
  p.call({"SREM", "s", "m2", "m3"});
  p.call({"SMISMEMBER", "s", "m1", "m2", "m3", "new"});
  p.call({"SMOVE", "s", "s2", "m4"});
  p.call({"SISMEMBER", "s", "m4"});
  p.call({"SINTERCARD", "2", "s", "s2"});
  p.call({"SADD", "s2", "m5", "new"});
  p.call({"SINTERSTORE", "both", "s", "s2"});
  p.call({"SCARD", "both"});
  p.call({"SMISMEMBER", "both", "m5", "new", "m1"});
  p.call({"DEL", "both"});
  p.call({"EXISTS", "both"});
  p.call({"SCARD", "s"});
  p.call({"EXEC"});
  p.call({"SCARD", "s"});
  p.call({"SMISMEMBER", "s", "m1", "m2", "m3", "m4", "m5", "new"});

  // Sorted set.
  p.call({"MULTI"});
  p.call({"ZADD", "z", "2.5", "new", "5000", "m0"});
  p.call({"ZRANK", "z", "new"});
  p.call({"ZRANK", "z", "m0"});
  p.call({"ZREVRANK", "z", "m0"});
  p.call({"ZSCORE", "z", "new"});
  p.call({"ZINCRBY", "z", "-10", "m20"});
  p.call({"ZRANGE", "z", "0", "5", "WITHSCORES"});
  p.call({"ZRANGE", "z", "-2", "-1", "WITHSCORES"});
  p.call({"ZRANGEBYSCORE", "z", "2", "(4", "WITHSCORES"});
  p.call({"ZREVRANGEBYSCORE", "z", "15", "9", "LIMIT", "1", "3"});
  p.call({"ZCOUNT", "z", "0", "10"});
  p.call({"ZREM", "z", "m5", "nope"});
  p.call({"ZPOPMIN", "z", "2"});
  p.call({"ZPOPMAX", "z"});
  p.call({"ZRANGESTORE", "z2", "z", "0", "199"});
  p.call({"ZCARD", "z2"});
  p.call({"ZRANGE", "z2", "0", "3"});
  p.call({"ZCARD", "z"});
  p.call({"EXEC"});
  p.call({"ZRANGE", "z", "0", "-1", "WITHSCORES"});
  p.call({"ZRANGE", "z2", "-3", "-1", "WITHSCORES"});

  // Deleted and re-created in one transaction; converted from compact in one.
  p.call({"MULTI"});
  p.call({"DEL", "h", "s"});
  p.call({"HLEN", "h"});
  p.call({"HSET", "h", "a", "1"});
  p.call({"OBJECT", "ENCODING", "h"});
  p.call(hset);
  p.call({"HGET", "h", "a"});
  p.call({"HGET", "h", "f9999"});
  p.call({"HLEN", "h"});
  p.call({"OBJECT", "ENCODING", "h"});
  p.call(sadd);
  p.call({"SISMEMBER", "s", "m1999"});
  p.call({"SCARD", "s"});
  p.call({"DEL", "s"});
  p.call({"SCARD", "s"});
  p.call({"EXEC"});
  p.call({"HLEN", "h"});
  p.call({"HGET", "h", "a"});
  p.call({"EXISTS", "s"});
  p.call({"DBSIZE"});

  // EXECABORT: nothing runs, the large hash is intact.
  p.call({"MULTI"});
  p.call({"HSET", "h", "a", "2"});
  p.call({"HSET", "h"});
  p.call({"EXEC"});
  p.call({"HGET", "h", "a"});
  // A watched large collection changed by another client's element write
  // (its head record unchanged): EXEC runs nothing.
  p.call({"WATCH", "h"});
  other.call({"HSET", "h", "f5", "theirs"});
  p.call({"MULTI"});
  p.call({"HSET", "h", "f5", "mine"});
  EXPECT_EQ(p.call({"EXEC"}), "*-1\r\n");
  p.call({"HGET", "h", "f5"});
  // Unchanged: it runs.
  p.call({"WATCH", "h", "l"});
  other.call({"HGET", "h", "f5"});
  p.call({"MULTI"});
  p.call({"HSET", "h", "f5", "mine"});
  p.call({"RPOPLPUSH", "l", "h"});
  p.call({"LPUSH", "l", "w"});
  p.call({"EXEC"});
  p.call({"HGET", "h", "f5"});
  p.call({"LRANGE", "l", "0", "1"});
}

// SPOP, SRANDMEMBER and HRANDFIELD inside MULTI on large collections that
// the transaction changed first (half the members removed, new ones added):
// the members they choose are random (so only statekv's are checked), but
// they choose among what the transaction left, later commands see the pops,
// and the whole transaction commits.
TEST_P(TransactionTest, RandomPopsOfALargeSetInsideMulti) {
  RawPair p = pair();
  Args sadd = {"SADD", "s"};
  Args srem = {"SREM", "s"};
  Args more = {"SADD", "s"};
  Args hset = {"HSET", "h"};
  Args hdel = {"HDEL", "h"};
  for (int i = 0; i < 1000; ++i) {
    sadd.push_back("m" + std::to_string(i));
    hset.push_back("f" + std::to_string(i));
    hset.push_back("v");
    if (i % 2 == 0) srem.push_back("m" + std::to_string(i));
    if (i >= 10) hdel.push_back("f" + std::to_string(i));
  }
  for (int i = 0; i < 100; ++i) more.push_back("n" + std::to_string(i));
  p.call(sadd);
  p.call(hset);
  std::set<std::string> removed(srem.begin() + 2, srem.end());
  RawClient& c = p.subject();
  for (const Args& cmd : std::vector<Args>{{"MULTI"},
                                           srem,
                                           more,
                                           hdel,
                                           {"SPOP", "s", "5"},
                                           {"SCARD", "s"},
                                           {"SRANDMEMBER", "s", "-3000"},
                                           {"SMEMBERS", "s"},
                                           {"HRANDFIELD", "h", "-200"},
                                           {"HRANDFIELD", "h", "20"}}) {
    ASSERT_TRUE(c.call(cmd).ok()) << cmd[0];
  }
  auto exec = c.call({"EXEC"});
  ASSERT_TRUE(exec.ok());
  const resp::Value& v = exec->value;
  ASSERT_EQ(v.elements.size(), 9u) << exec->bytes;
  EXPECT_EQ(v.elements[0].integer, 500);
  EXPECT_EQ(v.elements[1].integer, 100);
  EXPECT_EQ(v.elements[2].integer, 990);
  const auto& popped = v.elements[3].elements;
  ASSERT_EQ(popped.size(), 5u);
  std::set<std::string> gone;
  for (const auto& m : popped) {
    gone.insert(m.str);
    EXPECT_FALSE(removed.contains(m.str)) << m.str;
  }
  EXPECT_EQ(gone.size(), 5u);
  EXPECT_EQ(v.elements[4].integer, 595);
  ASSERT_EQ(v.elements[5].elements.size(), 3000u);
  for (const auto& m : v.elements[5].elements) {
    EXPECT_FALSE(gone.contains(m.str) || removed.contains(m.str)) << m.str;
  }
  ASSERT_EQ(v.elements[6].elements.size(), 595u);
  std::set<std::string> members;
  for (const auto& m : v.elements[6].elements) {
    members.insert(m.str);
    EXPECT_FALSE(gone.contains(m.str) || removed.contains(m.str)) << m.str;
  }
  EXPECT_EQ(members.size(), 595u);
  // The hash kept f0..f9: every field chosen is one of them.
  ASSERT_EQ(v.elements[7].elements.size(), 200u);
  for (const auto& f : v.elements[7].elements) EXPECT_LT(f.str.size(), 3u) << f.str;
  ASSERT_EQ(v.elements[8].elements.size(), 10u);
  for (const auto& m : gone) {
    auto r = c.call({"SISMEMBER", "s", m});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->bytes, ":0\r\n") << m;
  }
  auto card = c.call({"SCARD", "s"});
  ASSERT_TRUE(card.ok());
  EXPECT_EQ(card->bytes, ":595\r\n");
}

// Several clients run MULTI INCR x INCR y EXEC at once; readers read x and y
// in a transaction too. With EXEC atomic, no reader ever sees x != y, and no
// increment is lost.
TEST_P(TransactionTest, ExecIsAtomicUnderConcurrentClients) {
  const uint16_t port = subject_->port();
  constexpr int kWriters = 4;
  constexpr int kRounds = 300;
  constexpr int kPad = 20;
  std::atomic<bool> done{false};
  std::atomic<int> mismatches{0};
  std::atomic<int> reads{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&] {
      auto c = RedisClient::connect(port);
      if (!c.ok()) {
        ++failures;
        return;
      }
      for (int i = 0; i < kRounds; ++i) {
        c->append({"MULTI"});
        c->append({"INCR", "x"});
        // Work between the two writes: a non-atomic EXEC would show it.
        for (int p = 0; p < kPad; ++p) c->append({"GET", "pad"});
        c->append({"INCR", "y"});
        c->append({"EXEC"});
        for (int r = 0; r < kPad + 4; ++r) {
          if (!c->read_reply().ok()) ++failures;
        }
      }
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&] {
      auto c = RedisClient::connect(port);
      if (!c.ok()) {
        ++failures;
        return;
      }
      while (!done.load()) {
        c->append({"MULTI"});
        c->append({"GET", "x"});
        for (int p = 0; p < kPad; ++p) c->append({"GET", "pad"});
        c->append({"GET", "y"});
        c->append({"EXEC"});
        for (int i = 0; i < kPad + 3; ++i) (void)c->read_reply();
        auto exec = c->read_reply();
        if (!exec.ok()) {
          ++failures;
          return;
        }
        // Rendered as ["1", (nil), ..., "1"]: the first and last must match.
        const std::string& s = *exec;
        const size_t first = s.find(", ");
        const size_t last = s.rfind(", ");
        if (first == std::string::npos ||
            s.substr(1, first - 1) != s.substr(last + 2, s.size() - last - 3)) {
          if (++mismatches == 1) ADD_FAILURE() << "a reader saw " << s;
        }
        ++reads;
      }
    });
  }
  for (int w = 0; w < kWriters; ++w) threads[w].join();
  done = true;
  for (size_t i = kWriters; i < threads.size(); ++i) threads[i].join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_GT(reads.load(), 100);
  auto c = RedisClient::connect(port);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->cmd({"MGET", "x", "y"}), "[\"" + std::to_string(kWriters * kRounds) + "\", \"" +
                                            std::to_string(kWriters * kRounds) + "\"]");
}

INSTANTIATE_TEST_SUITE_P(Engines, TransactionTest, ::testing::Values("memory", "rocksdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace statekv::itest
