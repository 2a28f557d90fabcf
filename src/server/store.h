// Store — the keyspace of one statekv node, over a storage::Engine.
//
// Layout: see record.h ("d"+key -> record; "e"+be64(expiry)+key -> "" index).
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
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "replication/mutation.h"
#include "server/context.h"
#include "server/record.h"
#include "storage/engine.h"

namespace statekv::server {

// Milliseconds since the Unix epoch (system clock): expiry times are absolute.
int64_t unix_time_ms();

class Store {
 public:
  static constexpr size_t kStripes = 1024;

  // engine must outlive the store; stats (may be null) receives expired_keys.
  Store(storage::Engine& engine, ServerStats* stats);
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Counts keys and keys with a TTL by scanning the "d" prefix once (an engine
  // that was opened on existing data, e.g. RocksDB after a restart). Call before
  // serving requests.
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
  };

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

  // One change to one key. expire_ms == 0 means no TTL.
  struct Write {
    std::string_view key;
    Meta old;
    bool erase = false;
    std::string_view value;
    int64_t expire_ms = 0;
  };
  // Applies writes as one atomic Engine write (0 when there was nothing to do).
  // The caller holds every key's stripe lock, and no key appears twice.
  Result<storage::Sequence> apply_locked(std::span<const Write> writes);
  Result<storage::Sequence> put_locked(std::string_view key, const Meta& old,
                                       std::string_view value, int64_t expire_ms);
  Result<storage::Sequence> erase_locked(std::string_view key, const Meta& old);

  // Removes every key (FLUSHDB/FLUSHALL), holding all stripe locks.
  Result<storage::Sequence> flush();

  // Applies a Mutation decided by another member (DESIGN.md: replicas never
  // re-run commands): locks its keys, reads what each holds (for the counters
  // and the expiry index), and writes every effect as one atomic Engine write.
  // Expiry times are the mutation's; this node's clock is not read. A clear
  // effect must be the mutation's only effect. InvalidArgument when a key
  // appears twice or a clear is mixed with other effects (nothing is applied).
  Result<storage::Sequence> apply(const replication::Mutation& mutation);

  // How the executor erases an expired key: through its replica group, so the
  // erase replicates like a write. Called with the key's stripe lock held.
  using EraseExpired = std::function<Result<storage::Sequence>(std::string_view key, const Meta&)>;
  // Erases (through erase) up to max_keys keys whose expiry is <= now and drops
  // stale index entries; returns how many index entries it handled.
  Result<size_t> expire_cycle(int64_t now, size_t max_keys, const EraseExpired& erase);

  // Visits live keys (at now) in ascending order starting at start (inclusive),
  // examining at most limit records (0: no limit). visit returns false to stop.
  // Keys are user keys; an empty end means no upper bound. Views are valid only
  // during the call. Reports the last key examined through *last (so a caller
  // can resume after it) and how many records were examined (expired ones
  // included) through *examined.
  using KeyVisitor = std::function<bool(std::string_view key, const RecordView& rec)>;
  Status scan(std::string_view start, std::string_view end, size_t limit, int64_t now,
              const KeyVisitor& visit, std::string* last = nullptr, size_t* examined = nullptr);

  uint64_t key_count() const;
  uint64_t expire_count() const;
  storage::Engine& engine() { return engine_; }

 private:
  uint32_t stripe_of(std::string_view key) const;

  storage::Engine& engine_;
  ServerStats* stats_;
  std::array<std::mutex, kStripes> stripes_;
  std::atomic<int64_t> keys_{0};
  std::atomic<int64_t> expires_{0};
};

}  // namespace statekv::server
