// CacheService — the command layer of `statekv cache`: the server::Service
// that server/'s networking calls for each request, in front of an Upstream
// (the store) and a Cache (cache.h).
//
//  * GET is served from memory when fresh; otherwise it is loaded from the
//    store (PTTL then GET, pipelined, so the key's own expiry bounds the
//    copy) and the client's reply is deferred until the load completes.
//    Concurrent misses on a key wait for one load (coalescing), XFetch and
//    stale-while-revalidate start background loads, negative entries answer nil.
//  * MGET is answered from memory when every key is; otherwise the whole MGET
//    goes to the store, and the keys this MGET was the loader of are stored.
//    With leases on, each missing key is loaded as GET loads it instead (its
//    lease, one loader per key across caches), all of them in parallel.
//  * Writes (commands flagged write in the command table) go to the store; when
//    the store answers, the cached copy of every key they name is dropped (and
//    FLUSHALL/FLUSHDB drop everything) before the client sees the reply, so a
//    client reads its own writes through the cache. The copy is dropped, not
//    updated, because two clients' writes may be acknowledged in another order
//    than the store applied them.
//  * Other commands pass through. Connection-state commands the cache cannot
//    honour across its pooled upstream connections (MULTI, WATCH, SUBSCRIBE,
//    AUTH, CLIENT TRACKING, ...) are refused with an error.
//
//  * With leases on (LeaseOptions), a load the core asks for first takes the
//    key's lease in the store, so that of several caches in front of one
//    store only one loads a key at a time; the others wait for its fill (or
//    serve their stale copy under stale-while-revalidate). Protocol: lease.h.
//
// Writes made elsewhere reach it through invalidate()/invalidate_all(), called
// by an InvalidationListener subscribed to the nodes' CLIENT TRACKING; without
// one (--track off) they are seen once the cached copy expires (docs/cache.md).
//
// Thread safety: execute() runs on many I/O threads; the Cache is guarded by
// one mutex; upstream callbacks run on the Upstream's threads.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "cache/cache.h"
#include "cache/lease.h"
#include "cache/upstream.h"
#include "server/command_table.h"
#include "server/context.h"

namespace statekv::cache {

struct LeaseOptions {
  bool enabled = false;
  int64_t lease_ms = 2000;  // how long a holder may hold a key (PX of the lease)
  // The channel fills are published on; every cache in front of the store
  // subscribes to it (InvalidationListener).
  std::string channel = "__statekv:cache:fills";
  // This process's part of a lease value; unique among the caches of a store.
  std::string owner;
};

struct LeaseStats {
  uint64_t taken = 0;            // leases this cache took (it loaded the key)
  uint64_t waits = 0;            // lease requests that found another cache's lease
  uint64_t fills = 0;            // waits answered by another cache's fill
  uint64_t fills_refused = 0;    // fills not used: the key may have changed since (lease.h)
  uint64_t expiries = 0;         // waits that outlived the holder's lease (asked again)
  uint64_t stale_served = 0;     // stale values answered while another cache held the lease
  uint64_t fills_published = 0;  // fills this cache published as a holder
  uint64_t released = 0;         // leases this cache deleted after its load (still its own)
  uint64_t errors = 0;           // lease requests the store refused (the key was loaded directly)
};

class CacheService : public server::Service {
 public:
  // ctx (stats, clients) and upstream must outlive the service.
  CacheService(server::ServerContext& ctx, Upstream& upstream, const CacheOptions& options,
               uint64_t seed, LeaseOptions leases = {});
  ~CacheService() override;

  storage::Sequence execute(server::Session& session, std::span<const std::string_view> argv,
                            resp::Writer& out) override;
  Result<server::KeyPage> key_page(const server::KeyPageRequest& request) override;
  void start() override {}
  // Stops the lease timer (before the Upstream stops).
  void stop() override;

  CacheStats stats() const;
  LeaseStats lease_stats() const;
  // A message on the lease channel (InvalidationListener): a fill.
  void on_fill(std::string_view payload);

  // Invalidations from the store (InvalidationListener).
  void invalidate(const std::vector<std::string>& keys);
  void invalidate_all();
  // For INFO: the listener whose connections and messages to report (may be null).
  // track: whether it tracks writes (else it only carries the lease fills).
  void set_listener(const class InvalidationListener* listener, bool track) {
    listener_ = listener;
    track_ = track;
  }

 private:
  struct Waiter {
    server::DeferredReply reply;
    int resp = 2;
  };

  void get(server::Session& session, std::string_view key, resp::Writer& out);
  void mget(server::Session& session, std::span<const std::string_view> argv, resp::Writer& out);
  // MGET with leases on: every missing key as GET loads it (its own coalesced
  // flight and lease), the keys' loads in parallel.
  void mget_per_key(server::Session& session, std::span<const std::string_view> argv,
                    resp::Writer& out);
  void pass_through(server::Session& session, std::span<const std::string_view> argv,
                    std::vector<std::string> invalidate, bool invalidate_all, resp::Writer& out);
  void info(std::span<const std::string_view> argv, resp::Writer& out);
  void hello(server::Session& session, std::span<const std::string_view> argv, resp::Writer& out);
  // Sends the load for token; leader (if set) is answered with the result too.
  // With leases on, takes the key's lease first.
  void start_load(uint64_t token, std::string key, std::optional<Waiter> leader);
  // PTTL + GET on the store, then finish(); a lease holder also releases the
  // lease and publishes the fill.
  void load_direct(uint64_t token, std::string key, std::optional<Waiter> leader, bool holds_lease);
  // A holder's load is done: deletes key's lease if it still holds `mine`
  // (compare-and-delete through WATCH/MULTI/EXEC), then publishes the fill.
  void release_lease(const std::string& key, std::string mine, std::string fill);
  // Completes (or, with an error, fails) the core's flight and answers its
  // waiters and the leader.
  void finish(uint64_t token, const std::string& key, const std::string& error,
              Cache::Loaded loaded, std::optional<Waiter> leader);
  bool defer(server::Session& session, resp::Writer& out, Waiter* waiter);

  // Leases (lease.h). A flight asking for a lease or waiting for a fill (once
  // it holds the lease it is a plain load, no longer in these tables):
  struct LeaseFlight {
    enum class State { kRequesting, kWaiting };
    std::string key;
    std::optional<Waiter> leader;
    State state = State::kRequesting;
    uint32_t attempt = 0;       // lease requests sent so far
    int64_t sent_us = 0;        // when the last lease request was sent (written, once known)
    std::string holder;         // kWaiting: the lease value of the cache that holds it
    int64_t trust_from_us = 0;  // kWaiting: the earliest the holder may have taken it
    std::optional<Fill> early;  // kRequesting: a fill that came before the reply
    std::string refused;        // a holder whose fill was not used: ignore its fills
  };
  // What to do with a flight after a fill or a lease reply, outside mu_.
  struct Next {
    enum class What { kNothing, kAskAgain, kFinish, kFail, kLoad } what = What::kNothing;
    std::string error;  // kFail
    uint64_t token = 0;
    std::string key;
    Cache::Loaded loaded;
    std::optional<Waiter> leader;
    bool holds_lease = false;
  };
  void request_lease(uint64_t token);  // mu_ not held
  // sent_us: when the request was written (Upstream::sent_us()).
  void on_lease_reply(uint64_t token, uint32_t attempt, int64_t sent_us,
                      Result<std::vector<Reply>> replies);
  // The store's answer to a lease request (mu_ held).
  void on_lease_answer(uint64_t token, LeaseFlight& flight, const Reply& set, const Reply& pttl,
                       int64_t now, Next* next);
  // A fill for a waiting flight (mu_ held).
  Next use_fill(uint64_t token, LeaseFlight& flight, const Fill& fill, int64_t now);
  // Removes the flight from the lease tables (mu_ held) into next.
  void take_flight(uint64_t token, Next* next);
  void run(Next next);  // mu_ not held
  std::string lease_value(uint64_t token) const;
  void timer_loop();

  server::ServerContext& ctx_;
  Upstream& upstream_;
  server::CommandTable table_;
  mutable std::mutex mu_;  // guards everything below
  Cache cache_;
  uint64_t next_waiter_ = 0;
  std::unordered_map<uint64_t, Waiter> waiters_;
  uint64_t passed_through_ = 0;
  uint64_t upstream_loads_ = 0;  // PTTL+GET loads sent to the store
  const InvalidationListener* listener_ = nullptr;
  bool track_ = false;

  const LeaseOptions leases_;
  LeaseStats lease_stats_;
  RecentInvalidations recent_;
  std::unordered_map<uint64_t, LeaseFlight> lease_flights_;      // token -> flight
  std::unordered_multimap<std::string, uint64_t> lease_by_key_;  // requesting or waiting
  // The timer that asks again once a holder's lease ran out: (when, token, attempt).
  std::multimap<int64_t, std::pair<uint64_t, uint32_t>> timers_;
  std::condition_variable timer_cv_;
  bool stopping_ = false;
  std::thread timer_;
};

}  // namespace statekv::cache
