// TrackingTable — the server side of Redis 7's client-side caching (CLIENT
// TRACKING): which clients may hold which keys, and whom a write must tell.
// Pure bookkeeping: it does not send anything; it returns the invalidations
// for the caller to deliver (RESP3 `invalidate` push, or a message on
// `__redis__:invalidate` to the REDIRECT client for RESP2).
//
// Wired in (docs/cache.md): CLIENT TRACKING -> enable/disable; a read-only
// command of a tracking session -> on_read for its keys, then enforce_limit;
// CommandContext::commit and active expiry -> on_write with the committed keys;
// commit_clear -> on_flush. ServiceState::deliver sends the results.
//
// Semantics (Redis's, from its tracking.c):
//  * default mode: a read registers (key, client); a write of the key sends
//    the key to every registered client once and forgets them (a client must
//    read again to be told again).
//  * BCAST: the client registers prefixes instead (none = the empty prefix,
//    every key); every write of a key under one of them is sent, no read
//    needed. Prefixes accumulate across CLIENT TRACKING ON calls (Redis 7) and
//    may not overlap, the new ones with the client's existing ones or with
//    each other (an error, with Redis's texts).
//  * NOLOOP: a client is not told about its own writes.
//  * REDIRECT id: invalidations for this client go to client id instead.
//  * max_keys (tracking-table-max-keys): when more keys are tracked, keys are
//    picked at random (from the Random handed in) and invalidated as if
//    written, until the table is within the limit. 0 = no limit.
//  * flush-all: every tracking client is sent the flush message; the table empties.
//  * OPTIN/OPTOUT are decided by the caller (whether a read calls on_read).
//  * peers (cluster nodes, ids with kPeerBit set): another node whose clients
//    hold keys this node owns is a client of this table (default mode: its
//    routed reads register; BCAST with no prefix: it gets every write). A
//    message for a peer is forwarded to it, and that node applies it to its
//    own table with peers left out (include_peers = false), so it never
//    travels further.
//
// Thread safety: every method locks one mutex; called from any I/O thread.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/random.h"
#include "core/status.h"

namespace statekv::server {

struct TrackingMode {
  bool bcast = false;
  std::vector<std::string> prefixes;  // BCAST only
  bool noloop = false;
  uint64_t redirect = 0;  // 0 = none
  bool optin = false;     // reads are tracked only after CLIENT CACHING YES
  bool optout = false;    // reads are tracked unless after CLIENT CACHING NO
};

// One message to deliver: to `target`, the keys (or, flush = true, "every key").
struct Invalidation {
  uint64_t target = 0;
  std::vector<std::string> keys;
  bool flush = false;
  // The tracking clients this message is for when they redirect to target
  // (target itself is not listed): told "tracking-redir-broken" if target is gone.
  std::vector<uint64_t> redirected_from;
};

class TrackingTable {
 public:
  // A cluster node as a client of this table: kPeerBit | its node id.
  static constexpr uint64_t kPeerBit = 1ull << 63;
  static bool is_peer(uint64_t client) { return (client & kPeerBit) != 0; }

  TrackingTable(uint64_t max_keys, Random random);

  // Turns tracking on (or changes its mode) for client. A client already in
  // BCAST mode keeps its prefixes and gains mode.prefixes (mode() then lists
  // them all, sorted bytewise as Redis's TRACKINGINFO); its other options are
  // replaced. InvalidArgument, with Redis's error text, for prefixes without
  // BCAST or a prefix overlapping an existing or another new one.
  Status enable(uint64_t client, TrackingMode mode);
  // Turns tracking off and forgets the client (also when it disconnects).
  void disable(uint64_t client);
  std::optional<TrackingMode> mode(uint64_t client) const;

  // A client with tracking on in default mode read key.
  void on_read(uint64_t client, std::string_view key);
  // writer (0: none, e.g. expiry) committed writes of keys: the messages to send.
  // include_peers = false: the write was applied on another node, which tells
  // the peers itself; only this node's own clients are sent messages.
  // tell_bcast_peer, when set: whether a peer in BCAST mode is told (its id,
  // kPeerBit | node); peers whose reads registered the keys are told anyway.
  std::vector<Invalidation> on_write(
      uint64_t writer, std::span<const std::string_view> keys, bool include_peers = true,
      const std::function<bool(uint64_t peer)>& tell_bcast_peer = {});
  // Everything was removed (FLUSHALL/FLUSHDB). local_only: only this node's
  // own clients are told, and only their registrations are forgotten (the
  // flush happened elsewhere, or this node may have missed invalidations).
  std::vector<Invalidation> on_flush(uint64_t writer, bool local_only = false);
  // Applies max_keys: messages for the keys dropped to get within it.
  std::vector<Invalidation> enforce_limit();

  void set_max_keys(uint64_t max_keys);
  uint64_t max_keys() const;
  uint64_t tracked_keys() const;
  uint64_t tracked_items() const;     // (key, reader) pairs
  uint64_t tracking_clients() const;  // peers not counted
  // This node's own clients: any tracking, any in BCAST mode (what its peers
  // must know, coord/tracking_relay.h).
  struct LocalNeeds {
    bool any = false;
    bool bcast = false;
  };
  LocalNeeds local_needs() const;

 private:
  struct Client {
    TrackingMode mode;
  };
  // Appends key for client c (respecting REDIRECT) into the per-target batch.
  void add_message(std::unordered_map<uint64_t, Invalidation>& batch, uint64_t client,
                   std::string_view key) const;
  void forget_key(const std::string& key);
  static std::vector<Invalidation> flatten(std::unordered_map<uint64_t, Invalidation>& batch);

  mutable std::mutex mu_;
  uint64_t max_keys_;
  Random random_;
  std::unordered_map<uint64_t, Client> clients_;
  // Default mode: key -> clients that read it since it last changed; and the
  // keys in a vector (with their index) so that a random one is O(1) to pick.
  struct Readers {
    std::unordered_set<uint64_t> clients;
    size_t index = 0;
  };
  std::unordered_map<std::string, Readers> keys_;
  std::vector<const std::string*> key_list_;
};

}  // namespace statekv::server
