// HeldPosts — handlers for another thread's event loop, sent there once per
// pass of this thread's loop instead of one at a time.
//
// Why: a handler posted to a loop that sleeps in epoll_wait wakes it (Asio
// re-arms its eventfd), and on a loaded machine that thread runs the handler
// at once and sleeps again before the next one comes. An I/O thread that read
// 16 pipelined SETs for a replica group made the node's data loop wake 16
// times, and the data loop answering them woke the I/O thread as often:
// about one context switch per command each way (bench/consensus_threads.sh).
// Held, the posts of one pass leave together: one wake, and the data loop
// sees the 16 commands in one pass, so their effects go out in one proposal.
//
// How: a thread that holds (hold_on_this_thread, called by the thread that
// runs the loop) keeps what post() is given; the first post of a pass
// schedules a flush behind the handlers its own loop has ready (Asio queues
// every ready socket's handler at once after epoll_wait), and the flush sends
// each target loop its handlers, in the order they were posted, as one
// handler. A thread that does not hold posts at once. Posts to one target
// keep their order either way.
//
// A handler that waits on its own thread for something a held post will do
// must flush() first, or it waits forever (coord/coordinator.cc does, before
// it blocks on a replica group's reply).
#pragma once

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif
#include <asio.hpp>
#include <functional>

namespace statekv {

class HeldPosts {
 public:
  // Posts `fn` behind the handlers ready on the calling thread's own loop.
  using Schedule = std::function<void(std::function<void()> fn)>;
  // From now on this thread holds its posts; an empty `schedule` stops
  // holding (after sending what is held).
  static void hold_on_this_thread(Schedule schedule);
  // Runs fn on `target`: at once (asio::post) from a thread that does not
  // hold, else with the other posts of this pass. `target` must outlive the
  // pass.
  static void post(asio::io_context& target, std::function<void()> fn);
  // Sends what this thread holds now.
  static void flush();
};

}  // namespace statekv
