// Transactions: MULTI/EXEC/DISCARD and WATCH/UNWATCH, with Redis 7's semantics
// (docs/commands.md, "Transactions").
//
// Queueing: after MULTI, the dispatcher (service.cc) queues every command but
// EXEC, DISCARD, MULTI, WATCH, QUIT and RESET and answers +QUEUED; a command
// refused while queueing (unknown command or subcommand, wrong arity, NOAUTH,
// a RESP2 subscribed client's forbidden command) marks the transaction
// aborted, and EXEC then answers EXECABORT.
//
// EXEC: locks the stripes of every key the queued commands name and every
// watched key, all at once (Store::lock_transaction: ascending stripe order,
// so it cannot deadlock with other commands or transactions; every stripe
// when the transaction flushes), checks the watches under those locks, then
// runs each command's handler against a Transaction: the handlers' effects
// (CommandContext::commit/commit_clear) are staged in it instead of being
// proposed, and their reads (CommandContext::read/read_locked, and the
// element reads of Collection and List) see what the earlier commands
// staged. At the end the staged effects are proposed as ONE
// Mutation, so readers (lock-free, one atomic engine write) and replicas see
// all of the transaction or none of it. Runtime errors are per-command
// replies inside the EXEC array, as in Redis (no rollback).
//
// WATCH: a WatchTable entry per watching client. Every committed write marks
// the watchers of its keys dirty (the same hook as CLIENT TRACKING, at
// commit, with the key's stripe lock held), a flush marks the watchers of
// keys that existed, and EXEC also treats a watched key whose TTL (as seen
// when watched) has passed as changed: Redis 7 counts expiry as a change.
// An expired key is erased when watched (as any read of it does), so its
// later erase is never mistaken for a change.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/record.h"
#include "server/store.h"

namespace statekv::server {

// Who watches which keys. Thread-safe (one mutex; empty() is a lock-free
// fast path for writes when nobody watches).
class WatchTable {
 public:
  // Adds key to watcher's keys; expire_ms is the key's TTL when watched (0:
  // none, or the key is absent). The caller holds the key's stripe lock, so
  // no write of the key can fall between its read and this registration.
  void watch(uint64_t watcher, std::string_view key, int64_t expire_ms);
  // Forgets watcher and its keys (UNWATCH, EXEC, DISCARD, RESET, disconnect).
  void unwatch(uint64_t watcher);
  // The keys watcher watches (empty when none).
  std::vector<std::string> keys(uint64_t watcher) const;
  // True when one of watcher's keys was written since it was watched, or its
  // TTL has passed at now, or when watcher is unknown here (its watches were
  // lost: whether its keys changed cannot be known). The caller holds the
  // stripe locks of those keys.
  bool changed(uint64_t watcher, int64_t now) const;
  // Marks the watchers of keys changed. Called after a commit, with the
  // keys' stripe locks still held.
  void on_write(std::span<const std::string_view> keys);
  // Marks changed the watchers of every watched key for which exists() says
  // it holds a record (FLUSHALL/FLUSHDB; Redis leaves watches of absent keys
  // alone). Called before the flush is committed.
  void on_flush(const std::function<bool(std::string_view key)>& exists);
  bool empty() const { return watchers_.load(std::memory_order_relaxed) == 0; }

 private:
  struct Watcher {
    bool changed = false;
    std::vector<std::pair<std::string, int64_t>> keys;  // key, TTL when watched
  };
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Watcher> by_watcher_;
  std::unordered_map<std::string, std::vector<uint64_t>> by_key_;
  std::atomic<size_t> watchers_{0};
};

// A connection's MULTI state and watches (Session::txn).
struct TransactionState {
  // ids hands out watcher ids (ServiceState::next_watcher): unique in the
  // cluster, since a router registers watches on other nodes under them.
  TransactionState(WatchTable& table, std::atomic<uint64_t>& ids)
      : watches(table), ids_(ids), watcher(ids.fetch_add(1, std::memory_order_relaxed)) {}
  ~TransactionState() {
    if (!keep_watches) unwatch();
  }
  TransactionState(const TransactionState&) = delete;
  TransactionState& operator=(const TransactionState&) = delete;

  void unwatch() {
    if (watching) watches.unwatch(watcher);
    watching = false;
    watched_keys.clear();
    if (release_remote) {
      auto release = std::move(release_remote);
      release_remote = nullptr;
      release();
      // The release travels on its own: a new watch must not be mistaken
      // for the one it removes.
      watcher = ids_.fetch_add(1, std::memory_order_relaxed);
    }
    remote_node = 0;
    watch_group = 0;
    group_watches.clear();
  }
  // Leaves MULTI (EXEC, DISCARD): the queue goes, and the watches with it.
  void discard() {
    queuing = false;
    aborted = false;
    queue.clear();
    keys.clear();
    unwatch();
  }

  WatchTable& watches;

 private:
  std::atomic<uint64_t>& ids_;

 public:
  uint64_t watcher;      // the id this client watches under
  bool queuing = false;  // between MULTI and EXEC/DISCARD
  bool aborted = false;  // a command was refused while queueing: EXECABORT
  std::vector<std::vector<std::string>> queue;
  std::vector<std::string> keys;          // every key the queued commands name
  bool watching = false;                  // watcher has keys in this node's table
  std::vector<std::string> watched_keys;  // here or on remote_node
  // The state of a routed command (server/transaction.h's internal verbs)
  // does not own the watches it names: they outlive it on this node.
  bool keep_watches = false;
  // In a cluster (coord/): the keys are watched on remote_node (not 0), and
  // release_remote forgets them there.
  uint64_t remote_node = 0;
  std::function<void()> release_remote;
  // In a cluster (coord/), keys of a REPLICATION consensus keyspace are
  // watched in their replica group `watch_group` (not 0): each with the
  // group's log index the watch saw and its expiry then (0: none); EXEC
  // hands them to the group's leader, which checks them.
  struct GroupWatch {
    std::string key;
    uint64_t index = 0;
    int64_t expire_ms = 0;
  };
  uint64_t watch_group = 0;
  std::vector<GroupWatch> group_watches;
};

// Internal forms of the transaction commands that nodes send one another
// (coord/); a client's own connection cannot run them.
//   __watch <watcher> key...        WATCH under that watcher id
//   __unwatch <watcher>             forget its watches
//   __exec <watcher|0> (<n> <arg>*n)...   run the commands as MULTI...EXEC
//                                   (with the watches of <watcher>)
inline constexpr std::string_view kWatchVerb = "__watch";
inline constexpr std::string_view kUnwatchVerb = "__unwatch";
inline constexpr std::string_view kExecVerb = "__exec";
// The __exec form of t's queue.
std::vector<std::string> encode_exec(const TransactionState& t, uint64_t watcher);

// The effects of a running EXEC, staged until they are proposed as one
// Mutation. Reads of a key see its staged state; other keys read from the
// store (the EXEC holds their stripe locks). Views handed out point into the
// caller's buffer, as Store reads do.
//
// Collections in the element layout (record.h) are staged element by element:
// a write of one element stages that element (O(log k) in the k elements
// staged, never a copy of the collection), and the element reads of later
// commands (Collection, List: get_element, scan_elements, scan_score_index)
// see the staged elements over the store's, as Store's own reads would once
// they were committed. A sorted set's staged members keep a staged score
// index beside them, so ranges and ranks read through both in order.
class Transaction {
 public:
  // Stages writes (a command's effect); later writes of a key (or of an
  // element) replace earlier ones.
  void stage(std::span<const Store::Write> writes);
  // Stages the removal of every key (FLUSHALL/FLUSHDB): earlier staged
  // writes are dropped; the EXEC holds every stripe.
  void stage_clear();
  // nullopt: key has nothing staged (and no clear was); read the store.
  // Otherwise whether it is live at now, with *rec viewing into *buf.
  std::optional<bool> read(std::string_view key, int64_t now, std::string* buf,
                           RecordView* rec) const;
  bool cleared() const { return cleared_; }
  size_t staged_keys() const { return order_.size(); }
  // How many more (or fewer) keys the store will hold once committed than it
  // holds now (DBSIZE inside the transaction). physical(key) says whether
  // the store holds a record for key now.
  int64_t key_delta(uint64_t store_keys,
                    const std::function<bool(std::string_view)>& physical) const;
  // Store::Write records for the whole transaction, with `old` read from
  // store under the held locks: the element writes (at most one per element),
  // then the records in staging order. Element writes of a generation that no
  // record owns once committed (a collection created and deleted again inside
  // the transaction; one deleted or replaced, whose generation the commit
  // retires) are left out: nothing could reach them. When a clear was
  // staged, every key of the store not staged since is erased too (those
  // keys are copied into *cleared_keys, which the result views).
  Result<std::vector<Store::Write>> writes(Store& store,
                                           std::vector<std::string>* cleared_keys) const;
  bool empty() const { return order_.empty() && !cleared_ && gens_.empty(); }

  // Element reads through the staged elements, with Store's contracts: the
  // caller holds the owning key's stripe lock (the EXEC holds them all). A
  // generation with nothing staged reads the store directly.
  Result<bool> get_element(Store& store, uint64_t gen, std::string_view field,
                           std::string* value) const;
  Status scan_elements(Store& store, uint64_t gen, uint32_t from, size_t limit,
                       const Store::ElementVisitor& visit) const;
  Status scan_score_index(Store& store, uint64_t gen, std::string_view from, std::string_view to,
                          bool reverse, size_t limit, const Store::ScoreVisitor& visit) const;

 private:
  struct Staged {
    bool erase = false;
    std::string value;
    int64_t expire_ms = 0;
    ValueType type = ValueType::kString;  // a collection's head record keeps its type
  };
  // An element's place in its generation, in the engine's order (record.h:
  // be32(element_position(gen, field)) + field).
  struct ElementPlace {
    uint32_t position = 0;
    std::string field;
  };
  struct ElementPlaceView {
    uint32_t position = 0;
    std::string_view field;
  };
  struct PlaceLess {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      if (a.position != b.position) return a.position < b.position;
      return std::string_view(a.field) < std::string_view(b.field);
    }
  };
  struct StagedElement {
    std::string key;                   // the key through which it was written
    std::optional<std::string> value;  // nullopt: erased
  };
  struct Generation {
    std::map<ElementPlace, StagedElement, PlaceLess> elements;
    // Score-indexed sorted sets: ord(score_order_bits(score)) + member (the
    // index key after its generation's prefix, record.h) for every staged
    // member that is live, with its score and where the member begins.
    struct Indexed {
      double score = 0;
      size_t member_at = 0;
    };
    std::map<std::string, Indexed, std::less<>> index;
    // The store's index entries of these members are stale: read past them.
    // (A sorted set's: its generation is never ordered, so its positions are
    // element_hash's.)
    bool staged(std::string_view member) const {
      return elements.contains(ElementPlaceView{element_hash(member), member});
    }
  };
  void stage_element(const Store::Write& w);

  std::unordered_map<std::string, Staged> staged_;
  std::vector<std::string> order_;  // staged keys, first staging first
  std::unordered_map<uint64_t, Generation> gens_;
  bool cleared_ = false;
};

}  // namespace statekv::server
