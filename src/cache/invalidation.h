// InvalidationListener — how `statekv cache` learns about writes made anywhere:
// one RESP3 connection per upstream node with `CLIENT TRACKING ON BCAST` (every
// key written on that node: the cache's loads travel over other, pooled
// connections, so default mode — which tracks keys read on the tracking
// connection itself — would not cover them). Every `invalidate` push calls
// on_keys; the flush message calls on_flush; and when a connection drops (or
// cannot be made) on_flush is called too, since writes in the gap would go
// unseen: the cache then holds nothing that could be stale. The listener
// reconnects every retry interval, and calls on_flush again once subscribed
// (values loaded during the gap may have been overwritten unseen).
//
// In a cluster a BCAST client of any node is told of writes committed on
// every node (coord/tracking_relay.h), so one upstream node covers the whole
// cluster; listing more only adds connections (and a drop of any of them
// empties the cache).
//
// The same connection can also SUBSCRIBE to a channel (the fills of leases
// across caches, lease.h), RESP3 allowing pushes of both kinds on one
// connection: a fill then never overtakes an invalidation the node sent
// before it. With track off the connection only subscribes, and a drop
// empties nothing (a missed fill only makes a waiter wait for the lease to
// run out).
//
// Thread safety: one thread per endpoint; the callbacks run on those threads.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cache/upstream.h"

namespace statekv::cache {

class InvalidationListener {
 public:
  struct Callbacks {
    std::function<void(const std::vector<std::string>& keys)> on_keys;
    std::function<void()> on_flush;
    // A message on the subscribed channel (only with a channel).
    std::function<void(std::string_view payload)> on_message;
  };
  struct Options {
    bool track = true;    // CLIENT TRACKING ON BCAST
    std::string channel;  // SUBSCRIBE to it when not empty
  };

  InvalidationListener(std::vector<Endpoint> endpoints, Callbacks callbacks, Options options,
                       std::chrono::milliseconds retry = std::chrono::milliseconds(500));
  ~InvalidationListener();  // stop()
  InvalidationListener(const InvalidationListener&) = delete;
  InvalidationListener& operator=(const InvalidationListener&) = delete;

  void start();
  void stop();
  // Connections currently subscribed (INFO).
  uint64_t connected() const { return connected_.load(std::memory_order_relaxed); }
  uint64_t messages() const { return messages_.load(std::memory_order_relaxed); }
  uint64_t drops() const { return drops_.load(std::memory_order_relaxed); }

 private:
  void run(const Endpoint& endpoint);

  std::vector<Endpoint> endpoints_;
  Callbacks callbacks_;
  Options options_;
  std::chrono::milliseconds retry_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> connected_{0}, messages_{0}, drops_{0};
  std::vector<std::thread> threads_;
};

}  // namespace statekv::cache
