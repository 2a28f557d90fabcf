// Upstream — how `statekv cache` talks to the store: a pool of worker threads,
// each with its own blocking hiredis (RESP2) connection to one of the upstream
// nodes, taking jobs from one queue. A job is a pipeline of commands sent in
// one write; its callback runs on the worker thread with every reply, or with
// the error that broke the connection (the worker then reconnects, trying the
// next upstream in the list, before its next job).
//
// Thread safety: submit() from any thread. Callbacks run on worker threads and
// must not block for long (they only hand replies back to connections).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "resp/writer.h"

namespace statekv::cache {

// A reply from the store, owned (hiredis's reply tree, copied).
struct Reply {
  enum class Type : unsigned char { kString, kStatus, kError, kInteger, kNil, kArray };
  Type type = Type::kNil;
  std::string str;
  int64_t integer = 0;
  std::vector<Reply> elements;
};

// Re-encodes a store reply for a client (RESP2 or RESP3 per the writer).
void write_reply(const Reply& reply, resp::Writer& out);

struct Endpoint {
  std::string host;
  uint16_t port = 0;
};

// "HOST:PORT[,HOST:PORT...]" -> endpoints; InvalidArgument on a bad entry.
Result<std::vector<Endpoint>> parse_endpoints(std::string_view list);

struct UpstreamOptions {
  std::vector<Endpoint> endpoints;
  unsigned connections = 8;  // worker threads, one connection each
  std::chrono::milliseconds timeout{5000};
  // Test and benchmark hook: every job waits this long before it is sent (the
  // "injected upstream delay" of the stampede benchmark). 0 in production.
  std::chrono::milliseconds inject_delay{0};
};

class Upstream {
 public:
  using Command = std::vector<std::string>;
  using Callback = std::function<void(Result<std::vector<Reply>>)>;

  explicit Upstream(UpstreamOptions options);
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;
  ~Upstream();  // stop()

  // Connects one connection to check that the store answers PING; the pool
  // itself connects lazily. Unavailable when no endpoint answers.
  Status probe();
  void start();
  // Finishes the jobs already queued (their callbacks run), joins the workers.
  void stop();

  // Queues a pipeline. An idempotent one (reads) is sent again on a fresh
  // connection when the pooled connection turns out broken; a write is not
  // (it may have happened), its callback gets the error.
  void submit(std::vector<Command> pipeline, bool idempotent, Callback done);
  // Queues `first`, then on the same connection the pipeline that then()
  // builds from its replies (WATCH + GET, then MULTI ... EXEC or UNWATCH:
  // Redis's optimistic compare-and-set, which needs one connection for both).
  // done gets the replies of both, in order. Not sent again on a broken
  // connection (the second may be a write).
  using Then = std::function<std::vector<Command>(const std::vector<Reply>& first)>;
  void submit_then(std::vector<Command> first, Then then, Callback done);

  // Inside a callback: when its pipeline (its last attempt) was written to the
  // store, in steady-clock microseconds: after the queueing and any injected
  // delay, so a lower bound on when the store ran it. 0 outside a callback or
  // when it was never sent.
  static int64_t sent_us();

  uint64_t errors() const { return errors_.load(std::memory_order_relaxed); }
  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }

 private:
  struct Job {
    std::vector<Command> pipeline;
    bool idempotent = false;
    Callback done;
    Then then;  // submit_then: the second pipeline, from the first's replies
  };
  void run(unsigned index);

  UpstreamOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> requests_{0};
};

}  // namespace statekv::cache
