// Store — the keyspace of one statekv node, over a storage::Engine.
//
// Layout: see record.h ("d"+key -> record, or "D"+be64(scope)+key for the keys
// of a replica group, server/key_scopes.h; "e"+be64(expiry)+key -> "" index;
// "m"+gen(gen)+... -> the elements of large collections; "z"+gen(gen)+... -> ""
// a large sorted set's score index; "g"+be64(gen) -> ""
// for generations waiting to be reclaimed).
//
// Thread safety and atomicity:
//   - Every mutation of a key happens while holding that key's stripe lock
//     (kStripes mutexes chosen by key hash); commands that touch several keys lock
//     all their stripes in ascending stripe order, so they cannot deadlock. Each
//     mutation is one Engine write (a single put/del or one atomic WriteBatch), so
//     readers see all of a multi-key command or none of it.
//   - get() takes no lock: the Engine read is atomic, and a value is one record.
//     Only when it finds an expired record does it lock the stripe to delete it.
//   - key_count()/expire_count() are exact: they are maintained under the stripe
//     locks from what each mutation replaced (the *_locked functions require the
//     caller to hold the lock of every key they are given; Meta comes from a
//     get_locked() made under that same lock).
//
// Expiry: lazy (every read checks the record's absolute expiry) and active
// (expire_cycle(): an ordered scan of the due prefix of the "e" index, bounded
// by max_keys). An index entry whose record no longer carries that expiry is
// stale and is simply deleted.
//
// Collections in the element layout: a record owns the elements of one
// generation. A write that erases such a record, or replaces it with one that
// owns another generation (or none), retires the generation in the same
// engine write ("g" entry); reclaim() deletes retired generations' elements in
// bounded steps, without locks: nothing can reach them any more, and no
// generation is ever handed out twice. Every store reclaims its own (a
// replica too: reclaiming changes nothing a reader can see).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "replication/mutation.h"
#include "server/context.h"
#include "server/key_scopes.h"
#include "server/record.h"
#include "storage/engine.h"

namespace statekv::server {

// Milliseconds since the Unix epoch (system clock): expiry times are absolute.
int64_t unix_time_ms();

class Store {
 public:
  static constexpr size_t kStripes = 1024;

  // engine must outlive the store; stats (may be null) receives expired_keys.
  // generation_space: the high 16 bits of every generation this store hands
  // out (a cluster node's id). Replica groups apply other nodes' effects,
  // generations included, into this store, so the generations each node
  // allocates must never collide with another node's; 0 for a standalone node.
  // scopes (may be null: every key in scope 0) keeps each key's record in the
  // scope it gives (server/key_scopes.h); it must outlive the store.
  Store(storage::Engine& engine, ServerStats* stats, uint16_t generation_space = 0,
        const KeyScopes* scopes = nullptr);
  // InvalidArgument when engine holds data in a layout this build does not
  // read, so that a server refuses the data directory instead of misreading
  // it: a sorted set's score index of an earlier build (record.h,
  // kLegacyScorePrefix), or, for a store that will keep records in scopes
  // (`scoped`: a cluster node), records written before scopes existed, when
  // a consensus keyspace's were under "d" (record.h, "Scopes"). Marks the
  // engine with this layout (record.h, kLayoutKey) when it accepts it. A few
  // seeks.
  static Status check_layout(storage::Engine& engine, bool scoped = false);
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Counts keys and keys with a TTL by scanning the records once (an engine
  // that was opened on existing data, e.g. RocksDB after a restart), and finds
  // the highest generation in use and the retired ones. Call before serving
  // requests.
  Status recount();

  // Holds stripe locks until destroyed. Movable, not copyable.
  class Locked {
   public:
    Locked() = default;
    Locked(Locked&& other) noexcept;
    Locked& operator=(Locked&&) = delete;
    ~Locked();

   private:
    friend class Store;
    Store* store_ = nullptr;
    // One key needs no allocation (the SET/INCR hot path); several keys use many_.
    uint32_t one_ = 0;
    std::vector<uint32_t> many_;  // ascending, unique; used when non-empty
    bool transaction_ = false;    // lock_transaction(): ends the thread's held scope
  };
  // A stripe this thread already holds through lock_transaction() is not
  // locked again: the returned Locked then holds nothing for it.
  Locked lock(std::string_view key);
  Locked lock(std::span<const std::string_view> keys);
  Locked lock_all();
  // Locks the stripes of every key a transaction (MULTI/EXEC) names, all at
  // once in the ascending order every multi-key lock uses (so transactions and
  // commands cannot deadlock), or every stripe when `all`. Until the returned
  // Locked is destroyed, lock() calls on this thread for those stripes take
  // nothing, so the transaction's commands run their usual locking code.
  // The transaction must name every key its commands lock (a stripe outside
  // the set would be locked out of order). Not nestable.
  Locked lock_transaction(std::span<const std::string_view> keys, bool all);

  // What a key held before a mutation: needed to keep counters and the expiry
  // index exact.
  struct Meta {
    bool exists = false;
    int64_t expire_ms = 0;  // 0: no TTL
    uint64_t gen = 0;       // the element generation the record owns (0: none)
  };
  // What a decoded record means for Meta.
  static Meta meta_of(const RecordView& rec);

  // Lock-free read. True with *rec viewing into *buf when key is live at now;
  // false when absent or expired. An expired record is left in place (*expired
  // says so, when given): only the group's writer erases it, by proposing the
  // erase like any write (CommandContext does), so that every replica applies
  // the same effects.
  Result<bool> get(std::string_view key, int64_t now, std::string* buf, RecordView* rec,
                   bool* expired = nullptr);
  // The same with the key's stripe lock held by the caller. *meta is the
  // record physically present (expired or not): what a write replaces.
  Result<bool> get_locked(std::string_view key, int64_t now, std::string* buf, RecordView* rec,
                          Meta* meta);

  // One change to one key, or to one element of a collection. expire_ms == 0
  // means no TTL.
  // A replica group's applied position: the log index of the last entry whose
  // effects this store holds for `group`. Written in the same engine write as
  // the entry's effects, so whatever state survives a crash names the entry it
  // reflects (docs/replication.md, "Compaction without copying the shard").
  struct AppliedPosition {
    uint64_t group = 0;
    uint64_t index = 0;
  };
  struct Write {
    Write() = default;
    Write(std::string_view key_, const Meta& old_, bool erase_, std::string_view value_,
          int64_t expire_ms_, ValueType type_ = ValueType::kString)
        : key(key_), old(old_), erase(erase_), value(value_), expire_ms(expire_ms_), type(type_) {}

    std::string_view key;
    Meta old;
    bool erase = false;
    std::string_view value;  // a string, or a collection's payload (record.h)
    int64_t expire_ms = 0;
    ValueType type = ValueType::kString;
    // An element write: element `field` of generation `gen` (owned by key's
    // record, whose stripe lock names it) gets value, or is erased. old,
    // expire_ms and type are unused.
    bool element = false;
    std::string_view field;
    uint64_t gen = 0;
    // The record's scope when given (erase_scope: a group whose keyspace the
    // map no longer has); else the store's KeyScopes says.
    std::optional<uint64_t> scope;
  };
  // Applies writes as one atomic Engine write (0 when there was nothing to do).
  // The caller holds every key's stripe lock, and no key's record is written
  // twice (element writes may name a key whose record is also written).
  // unlogged: the engine write skips the engine's log (apply's kInReplicaLog).
  // position: written in the same engine write (even with nothing else to do).
  Result<storage::Sequence> apply_locked(std::span<const Write> writes, bool unlogged = false,
                                         const AppliedPosition* position = nullptr);
  Result<storage::Sequence> put_locked(std::string_view key, const Meta& old,
                                       std::string_view value, int64_t expire_ms);
  Result<storage::Sequence> erase_locked(std::string_view key, const Meta& old);

  // Removes every key (FLUSHDB/FLUSHALL), holding all stripe locks. Replica
  // groups' applied positions stay: they name log entries, not keys.
  Result<storage::Sequence> flush();

  // A generation no record of this store has used (element layout): a hash's
  // or set's; kScoreIndexed, a sorted set's (record.h: kScoreIndexBit), whose
  // member writes also keep its score index; kOrdered, a list's
  // (kOrderedElementsBit), whose elements sort by field.
  enum class GenerationKind { kHashed, kScoreIndexed, kOrdered };
  uint64_t new_generation(GenerationKind kind = GenerationKind::kHashed);
  // Visits the score index of sorted-set generation gen (record.h) from
  // score_prefix(gen) + from (inclusive) to score_prefix(gen) + to (exclusive;
  // an empty to: the generation's end), ascending or, with reverse,
  // descending; at most limit entries (0: no limit). from/to are
  // append_score_order(score_order_bits) [+ member] bounds. visit gets the
  // member and its score and returns false to stop. Views are valid only
  // during the call.
  using ScoreVisitor = std::function<bool(std::string_view member, double score)>;
  Status scan_score_index(uint64_t gen, std::string_view from, std::string_view to, bool reverse,
                          size_t limit, const ScoreVisitor& visit);
  // Copies element field of generation gen into *value; false when absent.
  Result<bool> get_element(uint64_t gen, std::string_view field, std::string* value);
  // Visits the elements of generation gen from scan position `from` (record.h:
  // the 32-bit hash order) in ascending order, at most limit (0: no limit);
  // visit gets the field, its value and its position and returns false to
  // stop. Views are valid only during the call. The caller holds the owning
  // key's lock when it needs a consistent view.
  using ElementVisitor =
      std::function<bool(std::string_view field, std::string_view value, uint32_t position)>;
  Status scan_elements(uint64_t gen, uint32_t from, size_t limit, const ElementVisitor& visit);
  // The same from element `field` on (inclusive): in an ordered generation
  // (record.h: kOrderedElementsBit), the elements in field order from it.
  Status scan_elements_from(uint64_t gen, std::string_view field, size_t limit,
                            const ElementVisitor& visit);
  // Deletes up to max_elements elements of retired generations (and the "g"
  // entry of each generation it empties), each step one engine write; returns
  // how many elements it deleted.
  Result<size_t> reclaim(size_t max_elements);
  // Retired generations not yet reclaimed (INFO's lazyfree_pending_objects).
  uint64_t garbage_count() const;

  // Applies a Mutation decided by another member (DESIGN.md: replicas never
  // re-run commands): locks its keys, takes what each held before from the
  // mutation's priors (what the evaluating member read under the key's latch,
  // from the same state), or reads it when the mutation carries none (for the
  // counters, the expiry index and the collections a write retires), and
  // writes every effect as one atomic Engine write.
  // Expiry times are the mutation's; this node's clock is not read. A clear
  // effect must be the mutation's only effect. InvalidArgument when a key
  // appears twice or a clear is mixed with other effects (nothing is applied).
  //
  // kInReplicaLog: the effects are a replica group's committed entry, whose
  // raft log keeps them and replays them after a restart, so the engine does
  // not log them too (storage::WriteBatch, "Unlogged": no second fsync per
  // write). Only for effects on the group's own keys: whatever must survive a
  // crash without the group's log (the records of a group dropped here) uses
  // kInEngineLog.
  //
  // `known`: what the caller read of some of the mutation's records just
  // before, with nothing else writing them since (a replica group restoring a
  // snapshot compares it with its shard's records by one scan, and only the
  // group writes its keys): each such key's Meta, `exists = false` for a key
  // known to hold no record. It comes before the priors. apply() reads the
  // engine only for the keys in neither (a point read per record costs a
  // restore of 146k keys 0.4 s).
  //
  // `locking`: kOwnedKeys takes none of the keys' stripe locks, for a caller
  // that owns its keys outright: a replica group restoring its shard on a
  // thread of its own, while its protocol holds every entry back and its
  // reads wait (nothing else writes a group's scope). Holding the stripes of
  // a 100k-record restore for its whole write would stall every command of
  // the node whose key shares one (with 1,024 stripes, all of them).
  enum class Logging { kInEngineLog, kInReplicaLog };
  enum class Locking { kLockKeys, kOwnedKeys };
  using KnownRecords = std::unordered_map<std::string_view, Meta>;
  Result<storage::Sequence> apply(const replication::Mutation& mutation,
                                  Logging logging = Logging::kInEngineLog,
                                  std::optional<AppliedPosition> position = std::nullopt,
                                  const KnownRecords* known = nullptr,
                                  Locking locking = Locking::kLockKeys);
  // Applies a run of mutations, in order, as one engine write (a replica group
  // applying the entries one protocol callback committed: one engine write and
  // one position write for them all, instead of one each). Only mutations
  // apply() would take whose effects are all record effects with their priors,
  // no record named twice across the run (applies_in_run says which);
  // InvalidArgument otherwise, and nothing is applied.
  Result<storage::Sequence> apply_run(std::span<const replication::Mutation* const> run,
                                      Logging logging,
                                      std::optional<AppliedPosition> position = std::nullopt);
  // Whether m may go into a run of apply_run: only record effects, each with
  // its prior (it reads nothing, so it need not see the run's earlier writes).
  static bool applies_in_run(const replication::Mutation& m);
  // Erases every record of `scope` (not 0: a replica group's that left this
  // node, its keyspace dropped or its replica moved away), the expiry index
  // entries they had and their collections (whose generations are retired,
  // reclaimed later), a batch of up to 1,024 records per engine write, logged
  // in the engine (no replica log replays them). Reads the scope's range, not
  // the map: its keyspace may be gone. Returns how many records it erased.
  Result<size_t> erase_scope(uint64_t scope);
  // The applied position of `group` this store holds (0: none, or a restore
  // in pieces was cut short: applied_state says which).
  Result<uint64_t> applied_position(uint64_t group);
  // The same, and whether a restore in pieces began and did not finish
  // (mark_restoring): the group's records are then partial, through no index.
  struct AppliedState {
    uint64_t index = 0;
    bool restoring = false;
  };
  Result<AppliedState> applied_state(uint64_t group);
  // Replaces `group`'s position with the restoring mark, in one logged engine
  // write: a replica group about to restore a snapshot over its records in
  // several engine writes (so that no one write holds the node's others for
  // the whole shard) does this first; the write of its last piece carries the
  // snapshot's position (apply's `position`), which replaces the mark. Writes
  // are durable in order, so a crash in between leaves the mark.
  Status mark_restoring(uint64_t group);
  // Erases `group`'s position (its replica left this node), durably like a write.
  Status forget_applied_position(uint64_t group);

  // How the executor erases an expired key: through its replica group, so the
  // erase replicates like a write. Called with the key's stripe lock held.
  using EraseExpired = std::function<Result<storage::Sequence>(std::string_view key, const Meta&)>;
  // Erases (through erase) up to max_keys keys whose expiry is <= now and drops
  // stale index entries; returns how many index entries it handled.
  Result<size_t> expire_cycle(int64_t now, size_t max_keys, const EraseExpired& erase);

  // Visits live keys (at now) in the store's walk order: the records of
  // every scope in turn (record.h, "Scopes": the groups' scopes in id order,
  // then scope 0), each scope's in key order. A key's place in that order is
  // its position (position_of: an opaque string, ordered as the walk goes, the
  // same for a key on every node whose map agrees). The walk starts strictly
  // after position `after` (empty: at the start), keeps to keys that start
  // with `prefix` (a seek past the rest of each scope), and examines at most
  // limit records (0: no limit; expired ones count, unvisited). visit returns
  // false to stop. Views are valid only during the call. Reports the position
  // of the last record examined through *last (so a caller can resume after
  // it) and how many were examined through *examined: fewer than limit only
  // when the walk reached its end. With within_scope, the walk keeps to that
  // scope's records: a replica group's page of a cluster-wide SCAN, or (0)
  // the keys outside replica groups.
  using KeyVisitor = std::function<bool(std::string_view key, const RecordView& rec)>;
  Status scan(std::string_view after, std::string_view prefix, size_t limit, int64_t now,
              const KeyVisitor& visit, std::string* last = nullptr, size_t* examined = nullptr,
              std::optional<uint64_t> within_scope = std::nullopt);
  // key's position in the walk (scan).
  std::string position_of(std::string_view key) const;
  // The records of one scope (not 0) from key `start` on, in key order, expired
  // ones too, at most limit (0: no limit): a replica group's shard, read as one
  // range of the engine. visit returns false to stop.
  Status scan_scope(uint64_t scope, std::string_view start, size_t limit, const KeyVisitor& visit);

  uint64_t key_count() const;
  uint64_t expire_count() const;
  // The keys, and those with an expiry, of one scope (0: the keys outside
  // replica groups): what a replica group holds, counted as key_count is,
  // without a scan (a cluster's DBSIZE adds up each group's once).
  struct KeyCounts {
    uint64_t keys = 0;
    uint64_t expires = 0;
  };
  KeyCounts scope_counts(uint64_t scope) const;
  storage::Engine& engine() { return engine_; }

 private:
  uint32_t stripe_of(std::string_view key) const;
  // Replaces *out with key's record key (record.h, data_key) in its scope.
  void record_key(std::string_view key, std::string* out) const {
    data_key(scope_for(key), key, out);
  }
  uint64_t scope_for(std::string_view key) const {
    uint64_t scope = 0;
    if (!ScopePin::pinned(&scope) && scopes_ != nullptr) scope = scopes_->scope_of(key);
    return scope;
  }
  void note_generation(uint64_t gen);
  // scan_elements from the engine key `start` of generation gen.
  Status scan_elements_at(uint64_t gen, std::string_view start, size_t limit,
                          const ElementVisitor& visit);

  storage::Engine& engine_;
  ServerStats* stats_;
  const KeyScopes* const scopes_;
  std::array<std::mutex, kStripes> stripes_;
  std::atomic<int64_t> keys_{0};
  std::atomic<int64_t> expires_{0};
  // keys_ and expires_ by scope, moved with them (apply_locked, recount, flush).
  struct ScopeDelta {
    int64_t keys = 0;
    int64_t expires = 0;
  };
  mutable std::mutex scope_counts_mu_;
  std::unordered_map<uint64_t, ScopeDelta> scope_counts_;
  const uint64_t generation_space_;        // already shifted into the high 16 bits
  std::atomic<uint64_t> max_gen_{0};       // the highest counter used in this space
  std::atomic<int64_t> garbage_{0};
  std::mutex reclaim_mu_;  // one reclaimer at a time
};

}  // namespace statekv::server
