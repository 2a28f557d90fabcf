// JobQueue — a fixed set of threads running posted jobs in arrival order.
//
// The coordinator keeps separate queues for work that must not wait behind
// other work (rebalance control, commands routed here, commands it routes on
// behalf of its clients): see coordinator.h.
//
// Thread safety: post() may be called from any thread, also from a job.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace statekv::coord {

class JobQueue {
 public:
  explicit JobQueue(size_t threads);
  // Runs what is still queued, then joins (stop()).
  ~JobQueue();
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  // False once stop() began: the job was not queued and will not run.
  bool post(std::function<void()> job);
  // Lets the queued jobs finish and joins the threads. Idempotent.
  void stop();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace statekv::coord
