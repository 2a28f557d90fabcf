#include "sim/event_queue.h"

#include <gtest/gtest.h>

namespace statekv::sim {
namespace {

TEST(EventQueue, RunsByTimeThenBySchedulingOrder) {
  EventQueue q;
  std::vector<int> order;
  q.schedule(20, [&] { order.push_back(3); });
  q.schedule(10, [&] { order.push_back(1); });
  q.schedule(10, [&] { order.push_back(2); });
  q.schedule(20, [&] { order.push_back(4); });
  while (!q.empty()) q.run_next();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(q.now(), 20);
  EXPECT_EQ(q.executed(), 4u);
}

TEST(EventQueue, EventsScheduledInThePastRunNowAndTimeNeverGoesBack) {
  EventQueue q;
  std::vector<SimTime> seen;
  q.schedule(100, [&] {
    seen.push_back(q.now());
    q.schedule(5, [&] { seen.push_back(q.now()); });
  });
  while (!q.empty()) q.run_next();
  EXPECT_EQ(seen, (std::vector<SimTime>{100, 100}));
}

}  // namespace
}  // namespace statekv::sim
