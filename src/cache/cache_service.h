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
// Writes made elsewhere reach it through invalidate()/invalidate_all(), called
// by an InvalidationListener subscribed to the nodes' CLIENT TRACKING; without
// one (--track off) they are seen once the cached copy expires (docs/cache.md).
//
// Thread safety: execute() runs on many I/O threads; the Cache is guarded by
// one mutex; upstream callbacks run on the Upstream's threads.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>

#include "cache/cache.h"
#include "cache/upstream.h"
#include "server/command_table.h"
#include "server/context.h"

namespace statekv::cache {

class CacheService : public server::Service {
 public:
  // ctx (stats, clients) and upstream must outlive the service.
  CacheService(server::ServerContext& ctx, Upstream& upstream, const CacheOptions& options,
               uint64_t seed);

  storage::Sequence execute(server::Session& session, std::span<const std::string_view> argv,
                            resp::Writer& out) override;
  Result<server::KeyPage> key_page(const server::KeyPageRequest& request) override;
  void start() override {}
  void stop() override {}

  CacheStats stats() const;

  // Invalidations from the store (InvalidationListener).
  void invalidate(const std::vector<std::string>& keys);
  void invalidate_all();
  // For INFO: the listener whose connections and messages to report (may be null).
  void set_listener(const class InvalidationListener* listener) { listener_ = listener; }

 private:
  struct Waiter {
    server::DeferredReply reply;
    int resp = 2;
  };

  void get(server::Session& session, std::string_view key, resp::Writer& out);
  void mget(server::Session& session, std::span<const std::string_view> argv, resp::Writer& out);
  void pass_through(server::Session& session, std::span<const std::string_view> argv,
                    std::vector<std::string> invalidate, bool invalidate_all, resp::Writer& out);
  void info(std::span<const std::string_view> argv, resp::Writer& out);
  void hello(server::Session& session, std::span<const std::string_view> argv, resp::Writer& out);
  // Sends the load for token; leader (if set) is answered with the result too.
  void start_load(uint64_t token, std::string key, std::optional<Waiter> leader);
  bool defer(server::Session& session, resp::Writer& out, Waiter* waiter);

  server::ServerContext& ctx_;
  Upstream& upstream_;
  server::CommandTable table_;
  mutable std::mutex mu_;  // guards everything below
  Cache cache_;
  uint64_t next_waiter_ = 0;
  std::unordered_map<uint64_t, Waiter> waiters_;
  uint64_t passed_through_ = 0;
  const InvalidationListener* listener_ = nullptr;
};

}  // namespace statekv::cache
