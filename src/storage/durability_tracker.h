// DurabilityTracker — the durable point of an engine and the callbacks waiting on it.
//
// Both engines hand out Sequences and promise when_durable(seq, cb): run cb once
// every mutation <= seq survives a crash. This class holds that promise: the engine
// calls advance(d) whenever it learns that everything <= d is durable, and the
// tracker runs every waiting callback that d covers.
//
// Thread safety: all methods may be called concurrently. Callbacks run outside the
// internal lock, on the thread that called advance() (or when_durable() when the
// sequence is already covered). One advance() runs the callbacks it releases in
// ascending sequence order; callbacks released by concurrent advance() calls on
// different threads are not ordered with each other.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>

#include "storage/engine.h"

namespace statekv::storage {

class DurabilityTracker {
 public:
  DurabilityTracker() = default;
  DurabilityTracker(const DurabilityTracker&) = delete;
  DurabilityTracker& operator=(const DurabilityTracker&) = delete;

  // The highest sequence known durable. Never decreases.
  Sequence durable() const { return durable_.load(std::memory_order_acquire); }

  // Raises the durable point to seq (a lower seq is ignored) and runs the callbacks
  // it now covers.
  void advance(Sequence seq);

  // Runs callback now when seq <= durable(); otherwise keeps it until advance()
  // covers seq. The callback runs exactly once.
  void when_durable(Sequence seq, std::function<void()> callback);

  // The engine can make nothing more durable (its sync failed): every waiting
  // callback runs now, and every later when_durable() at once. durable() stays
  // where it was, so a callback tells the two apart: its seq is not covered.
  void fail();
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  // The engine makes writes durable again (the cause of the failure was
  // fixed and everything <= seq is durable now): when_durable() waits again.
  void recover(Sequence seq);
  // Number of callbacks still waiting (for tests and stats).
  size_t pending() const { return pending_.load(std::memory_order_acquire); }

 private:
  void release_covered();

  std::atomic<Sequence> durable_{0};
  std::atomic<bool> failed_{false};
  // Lets advance() skip the mutex when nobody waits. advance() stores durable_ then
  // loads pending_; when_durable() stores pending_ then loads durable_ (both
  // seq_cst), so at least one of them sees the other and no callback is stranded.
  std::atomic<size_t> pending_{0};
  std::mutex mu_;
  std::multimap<Sequence, std::function<void()>> waiters_;  // guarded by mu_
};

}  // namespace statekv::storage
