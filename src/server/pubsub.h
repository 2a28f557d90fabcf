// PubSub — the node's channel and pattern subscriptions (SUBSCRIBE, PSUBSCRIBE)
// and the delivery of PUBLISH to them.
//
// A subscriber is a client connection living on one I/O thread; a PUBLISH runs
// on any thread (another client's I/O thread, or the coordinator's peer thread
// for a message published on another node). publish() encodes each message
// once, in RESP2 and RESP3, as one immutable PubSubMessage shared by every
// receiver, and hands it to each receiver's deliver(), which must only post it
// to the receiver's own thread: no socket is written from another thread.
//
// Thread safety: every method may be called from any thread. deliver() is
// called with the registry's lock held (shared), so a subscriber that calls
// remove_all() before it is destroyed never gets a deliver() afterwards, and
// deliver() must not block nor call back into the registry.
//
// The registry does not own subscribers nor keep their per-client sets: the
// caller (the connection's Session, touched only on its own thread) knows
// which channels and patterns it holds, subscribes each at most once, and
// names them all in remove_all() when it closes.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace statekv::server {

struct Session;

// One message as its receivers get it.
struct PubSubMessage {
  std::string channel;       // the channel it was published to
  std::string pattern;       // the pattern that matched (pmessage); empty otherwise
  bool via_pattern = false;  // a pmessage for a pattern subscription
  std::string resp2;         // ["message", channel, payload] or ["pmessage", ...] as an array
  std::string resp3;         // the same as a RESP3 push
};

class PubSubSubscriber {
 public:
  // Hands message to the subscriber's own thread. Called from any thread with
  // the registry lock held: must not block nor call into the registry.
  virtual void deliver(std::shared_ptr<const PubSubMessage> message) = 0;

 protected:
  ~PubSubSubscriber() = default;
};

class PubSub {
 public:
  PubSub() = default;
  PubSub(const PubSub&) = delete;
  PubSub& operator=(const PubSub&) = delete;

  // Adds / removes one subscription. The caller guarantees s holds the channel
  // (pattern) at most once: subscribe only what it does not hold yet,
  // unsubscribe only what it holds.
  void subscribe(PubSubSubscriber* s, std::string_view channel);
  void unsubscribe(PubSubSubscriber* s, std::string_view channel);
  void psubscribe(PubSubSubscriber* s, std::string_view pattern);
  void punsubscribe(PubSubSubscriber* s, std::string_view pattern);
  // Removes every subscription of s (its connection closes or RESETs). After
  // it returns, s gets no further deliver().
  void remove_all(PubSubSubscriber* s, const std::vector<std::string_view>& channels,
                  const std::vector<std::string_view>& patterns);

  // Delivers payload to every subscriber of channel and of every pattern that
  // matches it (a client subscribed both ways gets it once per subscription,
  // as in Redis). Returns the number of deliveries: PUBLISH's reply.
  size_t publish(std::string_view channel, std::string_view payload);

  // PUBSUB CHANNELS: channels with at least one subscriber, those matching
  // pattern when given (unordered, as Redis's dict).
  std::vector<std::string> channels(std::optional<std::string_view> pattern) const;
  // PUBSUB NUMSUB: subscribers of one channel (patterns not counted).
  size_t numsub(std::string_view channel) const;
  // PUBSUB NUMPAT and INFO's pubsub_patterns: distinct patterns subscribed.
  size_t pattern_count() const;
  // INFO's pubsub_channels: channels with at least one subscriber.
  size_t channel_count() const;

 private:
  using Subscribers = std::vector<PubSubSubscriber*>;
  static void add(std::unordered_map<std::string, Subscribers>& map, PubSubSubscriber* s,
                  std::string_view name);
  static void remove(std::unordered_map<std::string, Subscribers>& map, PubSubSubscriber* s,
                     std::string_view name);

  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Subscribers> channels_;
  std::unordered_map<std::string, Subscribers> patterns_;
};

// Removes every subscription of session (RESET, a connection closing) and
// empties its sets. A no-op for a session with none.
void leave_all(PubSub& pubsub, Session& session);

}  // namespace statekv::server
