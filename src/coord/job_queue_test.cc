#include "coord/job_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace statekv::coord {
namespace {

TEST(JobQueue, RunsEveryJobAndDrainsOnStop) {
  std::atomic<int> ran{0};
  {
    JobQueue q(3);
    for (int i = 0; i < 1000; ++i) EXPECT_TRUE(q.post([&] { ran.fetch_add(1); }));
  }  // the destructor lets queued jobs finish
  EXPECT_EQ(ran.load(), 1000);
}

TEST(JobQueue, OneThreadRunsJobsInOrder) {
  std::vector<int> order;
  JobQueue q(1);
  for (int i = 0; i < 100; ++i) q.post([&order, i] { order.push_back(i); });
  q.stop();
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(JobQueue, RefusesJobsAfterStop) {
  JobQueue q(2);
  q.stop();
  bool ran = false;
  EXPECT_FALSE(q.post([&] { ran = true; }));
  EXPECT_FALSE(ran);
}

TEST(JobQueue, ThreadsRunJobsConcurrently) {
  // Two jobs that each wait for the other finish only with two threads.
  JobQueue q(2);
  std::atomic<int> arrived{0};
  std::atomic<bool> both{false};
  for (int i = 0; i < 2; ++i) {
    q.post([&] {
      arrived.fetch_add(1);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (arrived.load() < 2 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
      if (arrived.load() == 2) both = true;
    });
  }
  q.stop();
  EXPECT_TRUE(both.load());
}

}  // namespace
}  // namespace statekv::coord
