// Transactions (issue 11 item 2) against redis-server 7: MULTI, EXEC, DISCARD,
// WATCH and UNWATCH byte for byte in RESP2 and RESP3 — queueing, EXECABORT,
// runtime errors inside the EXEC array, the misuse errors, a WATCH broken by
// another client's write, by expiry and by FLUSHALL — and, on statekv alone,
// that EXEC is atomic while many clients run transactions at once.
#include <gtest/gtest.h>

#include <atomic>
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
