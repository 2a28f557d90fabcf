// BlockingTable — the clients blocked in BLPOP, BRPOP, BLMOVE, BRPOPLPUSH,
// BLMPOP, BZPOPMIN, BZPOPMAX and BZMPOP (docs/data-types.md, "Blocking
// commands"), and when each is served, times out or goes away.
//
// A blocking command that finds all its keys empty does not park an I/O
// thread: it takes its connection's deferred reply (Session::defer), tells
// the connection to run nothing more of this client until that reply came
// (Session::block_input, Redis's blocked client), and registers a Waiter
// here, with the stripe locks of all its keys held. Every commit of writes
// (CommandContext::commit, EXEC) calls note_written() with those keys' stripe
// locks held, so a push either came before the blocked command looked (and
// it found the element) or finds the waiter here: none is missed. The keys
// that have waiters are remembered on the committing thread; when the
// outermost command on that thread returned (its locks released, its reply
// written: a push's reply is the length before any waiter popped, as in
// Redis) the service serves them (serve_blocked in blocking_commands.cc): for
// each ready key, its waiters in arrival order, each popping under the keys'
// stripe locks through the proposer, as a command would, until the key is
// empty. A pop that pushes elsewhere (BLMOVE) makes that key ready in turn.
//
// Exactly one of serve, timeout, CLIENT UNBLOCK and disconnect finishes a
// waiter: claim() under the table's mutex decides, and takes it out of every
// key's queue. Deadlines are kept by one timer thread, started with the
// table and stopped by stop().
//
// Lock order: Store stripe locks, then the table's mutex (never the other
// way round). Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "server/context.h"

namespace statekv::server {

// One blocked command.
struct Waiter {
  uint64_t client = 0;  // Session::id
  int resp = 2;
  Proposer* proposer = nullptr;  // the session's (nullptr: the store's own group)
  // The command as sent (owned: the client's buffers move on).
  std::vector<std::string> argv;
  // The keys it waits on, in argument order (indexes into argv).
  std::vector<size_t> keys;
  // The reply sent when its timeout passes or CLIENT UNBLOCK ... TIMEOUT.
  std::string timeout_reply;
  // Where its reply goes (any thread, once).
  DeferredReply reply;
  // steady clock ms; 0: blocks until served.
  int64_t deadline_ms = 0;

 private:
  friend class BlockingTable;
  bool done = false;  // guarded by the table's mutex
  std::multimap<int64_t, std::weak_ptr<Waiter>>::iterator timer;
  bool timed = false;
};

class BlockingTable {
 public:
  BlockingTable();
  ~BlockingTable();
  BlockingTable(const BlockingTable&) = delete;
  BlockingTable& operator=(const BlockingTable&) = delete;

  // Whether any client is blocked (one relaxed load: commits skip the rest).
  bool any() const { return blocked_.load(std::memory_order_relaxed) > 0; }
  // INFO's blocked_clients.
  uint64_t blocked_clients() const { return blocked_.load(std::memory_order_relaxed); }
  bool is_blocked(uint64_t client) const;

  // Registers w as waiting on its keys. The caller holds the stripe locks of
  // all of them and found them all empty.
  void block(std::shared_ptr<Waiter> w);

  // A commit wrote keys (their stripe locks held): those with waiters are
  // remembered on this thread for take_ready().
  void note_written(std::span<const std::string_view> keys);
  // Whether this thread remembered keys to serve.
  static bool has_ready();
  // This thread's ready keys, in the order they became ready (each once),
  // forgotten here.
  static std::vector<std::string> take_ready();

  // key's waiters in arrival order (a snapshot).
  std::vector<std::shared_ptr<Waiter>> waiters(std::string_view key) const;

  // Takes w out of the table: true for the one caller that may now reply to
  // it (serve, timeout, unblock), false when another did already.
  bool claim(Waiter& w);

  // CLIENT UNBLOCK / disconnect: finishes client's waiter. False when it was
  // not blocked.
  enum class Unblock : uint8_t {
    kGone,     // the connection closed: no reply
    kTimeout,  // CLIENT UNBLOCK id TIMEOUT: the reply of a timeout
    kError,    // CLIENT UNBLOCK id ERROR: -UNBLOCKED
  };
  bool unblock(uint64_t client, Unblock how);

  // Ends the timer thread (waiters still blocked are left unanswered: their
  // connections close with the server).
  void stop();

 private:
  void timer_loop();
  void erase_locked(Waiter& w);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, std::deque<std::shared_ptr<Waiter>>> by_key_;
  std::unordered_map<uint64_t, std::shared_ptr<Waiter>> by_client_;
  std::multimap<int64_t, std::weak_ptr<Waiter>> deadlines_;
  std::atomic<uint64_t> blocked_{0};
  bool stopping_ = false;
  std::thread timer_;
};

// Where a blocking command (argv[0] names it, any case) has its timeout
// argument; nullopt for any other command. coord/ uses it to bound how long a
// routed blocking command may wait, and to hand one on with the time left.
std::optional<size_t> blocking_timeout_at(std::span<const std::string_view> argv);

// Parses a blocking command's timeout as Redis 7.0 does (seconds, a double;
// 0 blocks forever; milliseconds truncated toward zero, so 0.0001 is 0 too).
// Returns the milliseconds, or the error text to reply.
std::optional<int64_t> parse_block_timeout(std::string_view text, std::string* error);

}  // namespace statekv::server
