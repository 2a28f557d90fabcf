// The simulator's single event queue.
//
// Events run in order of (time, sequence number): the sequence number is the
// order of scheduling, so two events at the same instant always run in the same
// order and a seed replays exactly. Not thread-safe (the simulator has one thread).
#pragma once

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

namespace statekv::sim {

// True (simulated) time in nanoseconds since the start of the run.
using SimTime = int64_t;

class EventQueue {
 public:
  using Action = std::function<void()>;

  // Schedules `action` at `time`; a time in the past runs at the next pop.
  void schedule(SimTime time, Action action) {
    heap_.push(Entry{time < now_ ? now_ : time, next_seq_++, std::move(action)});
  }

  bool empty() const { return heap_.empty(); }
  SimTime now() const { return now_; }
  SimTime next_time() const { return heap_.top().time; }
  uint64_t executed() const { return executed_; }

  // Advances the clock to the earliest event and runs it. Precondition: !empty().
  void run_next() {
    Entry e = std::move(const_cast<Entry&>(heap_.top()));
    heap_.pop();
    now_ = e.time;
    ++executed_;
    e.action();
  }

 private:
  struct Entry {
    SimTime time;
    uint64_t seq;
    Action action;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.time != b.time ? a.time > b.time : a.seq > b.seq;
    }
  };
  std::priority_queue<Entry, std::vector<Entry>, Later> heap_;
  SimTime now_ = 0;
  uint64_t next_seq_ = 0;
  uint64_t executed_ = 0;
};

}  // namespace statekv::sim
