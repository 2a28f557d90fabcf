#include "core/held_posts.h"

#include <gtest/gtest.h>

#include <future>
#include <string>
#include <thread>
#include <vector>

namespace statekv {
namespace {

// Runs what is ready on c (a context that ran out of work stops: restart it).
size_t run_ready(asio::io_context& c) {
  c.restart();
  return c.poll();
}

// A thread's own loop: holding, its posts to `target` wait for the flush it
// schedules behind its ready handlers.
class HoldingLoop {
 public:
  HoldingLoop() {
    HeldPosts::hold_on_this_thread([this](std::function<void()> fn) {
      asio::post(own, std::move(fn));
    });
  }
  ~HoldingLoop() { HeldPosts::hold_on_this_thread(nullptr); }
  asio::io_context own;
};

TEST(HeldPosts, AThreadThatDoesNotHoldPostsAtOnce) {
  asio::io_context target;
  std::vector<int> ran;
  HeldPosts::post(target, [&] { ran.push_back(1); });
  HeldPosts::post(target, [&] { ran.push_back(2); });
  EXPECT_EQ(run_ready(target), 2u);  // two handlers
  EXPECT_EQ(ran, (std::vector<int>{1, 2}));
}

TEST(HeldPosts, APassSendsEachTargetItsPostsInOrderAsOneHandler) {
  asio::io_context target, other;
  std::vector<std::string> ran;
  HoldingLoop loop;
  // Two handlers ready on the loop (two clients' reads, say): each posts.
  asio::post(loop.own, [&] {
    HeldPosts::post(target, [&] { ran.push_back("a1"); });
    HeldPosts::post(other, [&] { ran.push_back("o1"); });
  });
  asio::post(loop.own, [&] {
    HeldPosts::post(target, [&] { ran.push_back("a2"); });
    // Nothing has left yet: the flush runs behind this handler.
    EXPECT_EQ(run_ready(target), 0u);
  });
  EXPECT_EQ(run_ready(loop.own), 3u);  // the two handlers and the flush
  EXPECT_EQ(run_ready(target), 1u);    // one wake for both posts
  EXPECT_EQ(run_ready(other), 1u);
  EXPECT_EQ(ran, (std::vector<std::string>{"a1", "a2", "o1"}));

  // The next pass holds again.
  asio::post(loop.own, [&] { HeldPosts::post(target, [&] { ran.push_back("a3"); }); });
  EXPECT_EQ(run_ready(target), 0u);
  run_ready(loop.own);
  EXPECT_EQ(run_ready(target), 1u);
  EXPECT_EQ(ran.back(), "a3");
}

TEST(HeldPosts, FlushSendsWhatIsHeldBeforeTheThreadWaits) {
  asio::io_context target;
  std::thread runner;
  bool answered = false;
  HoldingLoop loop;
  asio::post(loop.own, [&] {
    std::promise<void> done;
    HeldPosts::post(target, [&] { done.set_value(); });
    // A handler that waits on its thread for what it posted: flush first.
    HeldPosts::flush();
    runner = std::thread([&] { target.run_one(); });
    done.get_future().wait();
    answered = true;
  });
  run_ready(loop.own);
  runner.join();
  EXPECT_TRUE(answered);
}

TEST(HeldPosts, StoppingToHoldSendsWhatIsHeld) {
  asio::io_context target;
  int ran = 0;
  {
    HoldingLoop loop;
    HeldPosts::post(target, [&] { ++ran; });
    EXPECT_EQ(run_ready(target), 0u);
  }  // the loop stops holding without running its flush
  EXPECT_EQ(run_ready(target), 1u);
  EXPECT_EQ(ran, 1);
  HeldPosts::post(target, [&] { ++ran; });  // not holding any more: at once
  EXPECT_EQ(run_ready(target), 1u);
  EXPECT_EQ(ran, 2);
}

}  // namespace
}  // namespace statekv
