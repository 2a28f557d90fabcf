#include "server/blocking.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace statekv::server {
namespace {

using namespace std::chrono_literals;

TEST(BlockTimeout, ParsesAsRedis70) {
  std::string error;
  EXPECT_EQ(parse_block_timeout("0", &error), 0);
  EXPECT_EQ(parse_block_timeout("1.5", &error), 1500);
  EXPECT_EQ(parse_block_timeout("0.0001", &error), 0);  // truncated: blocks forever
  EXPECT_EQ(parse_block_timeout("-0", &error), 0);
  EXPECT_EQ(parse_block_timeout("-0.0001", &error), 0);
  EXPECT_EQ(parse_block_timeout("0x10", &error), 16000);
  EXPECT_EQ(parse_block_timeout("1e3", &error), 1000000);
  for (const char* negative : {"-1", "inf", "-inf", "1e30", "9223372036854776"}) {
    error.clear();
    EXPECT_FALSE(parse_block_timeout(negative, &error)) << negative;
    EXPECT_EQ(error, "ERR timeout is negative") << negative;
  }
  for (const char* bad : {"", " 1", "1 ", "abc", "nan", "1x"}) {
    error.clear();
    EXPECT_FALSE(parse_block_timeout(bad, &error)) << bad;
    EXPECT_EQ(error, "ERR timeout is not a float or out of range") << bad;
  }
}

std::shared_ptr<Waiter> waiter(uint64_t client, std::vector<std::string> keys,
                               std::atomic<int>* replies, std::string* last,
                               int64_t deadline_ms = 0) {
  auto w = std::make_shared<Waiter>();
  w->client = client;
  w->argv.push_back("blpop");
  for (auto& k : keys) {
    w->keys.push_back(w->argv.size());
    w->argv.push_back(k);
  }
  w->argv.push_back("0");
  w->timeout_reply = "*-1\r\n";
  w->deadline_ms = deadline_ms;
  w->reply = [replies, last](std::string r, storage::Sequence) {
    *last = std::move(r);
    ++*replies;
  };
  return w;
}

int64_t steady_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

TEST(BlockingTable, WaitersQueueInArrivalOrderAndAreClaimedOnce) {
  BlockingTable t;
  std::atomic<int> n{0};
  std::string last;
  auto a = waiter(1, {"k", "j"}, &n, &last);
  auto b = waiter(2, {"k"}, &n, &last);
  t.block(a);
  t.block(b);
  EXPECT_EQ(t.blocked_clients(), 2u);
  auto q = t.waiters("k");
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0], a);
  EXPECT_EQ(q[1], b);
  EXPECT_TRUE(t.claim(*a));
  EXPECT_FALSE(t.claim(*a));  // the second claimer may not reply
  EXPECT_TRUE(t.waiters("j").empty());
  EXPECT_EQ(t.waiters("k").size(), 1u);
  EXPECT_FALSE(t.unblock(1, BlockingTable::Unblock::kTimeout));
  EXPECT_TRUE(t.unblock(2, BlockingTable::Unblock::kError));
  EXPECT_EQ(last, "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
  EXPECT_FALSE(t.claim(*b));
  EXPECT_EQ(t.blocked_clients(), 0u);
  EXPECT_FALSE(t.any());
}

TEST(BlockingTable, OnlyKeysWithWaitersAreNotedOncePerThread) {
  BlockingTable t;
  std::atomic<int> n{0};
  std::string last;
  std::string_view keys[] = {"k", "other", "k"};
  t.note_written(keys);
  EXPECT_FALSE(BlockingTable::has_ready());  // nobody blocked: nothing noted
  t.block(waiter(1, {"k"}, &n, &last));
  t.note_written(keys);
  EXPECT_EQ(BlockingTable::take_ready(), std::vector<std::string>{"k"});
  EXPECT_FALSE(BlockingTable::has_ready());
}

TEST(BlockingTable, TimeoutRepliesOnceAndADisconnectNever) {
  BlockingTable t;
  std::atomic<int> n{0};
  std::string last;
  t.block(waiter(1, {"k"}, &n, &last, steady_now() + 50));
  t.block(waiter(2, {"j"}, &n, &last, steady_now() + 60));
  EXPECT_TRUE(t.unblock(2, BlockingTable::Unblock::kGone));
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (n.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(n.load(), 1);
  EXPECT_EQ(last, "*-1\r\n");
  EXPECT_EQ(t.blocked_clients(), 0u);
}

}  // namespace
}  // namespace statekv::server
