// storage::Engine — the ordered key/value store every statekv node keeps its data in.
//
// Keys and values are arbitrary bytes. Two engines implement this interface:
//   - memory  (open_memory_engine):  nothing on disk; used by tests, the simulator
//     and by users who want a cache-like node. Compact: see memory_engine.h.
//   - rocksdb (open_rocksdb_engine): the default on-disk engine.
// One shared test suite (engine_test.cc) runs against both.
//
// Thread safety: every method may be called concurrently from any thread.
// There is no global lock on the hot path; each engine documents how it shards
// its internal locking. A single put/del/write is atomic; nothing larger is —
// callers that need read-modify-write atomicity serialise it themselves
// (server::Store does, with striped key locks).
//
// Durability: every successful mutation returns the Sequence it was assigned
// (strictly increasing). durable_sequence() is the highest Sequence S such that
// every mutation <= S survives a crash of the process. when_durable(S, cb)
// calls cb once that holds — immediately on the calling thread when it already
// does, otherwise later on the engine's sync thread (cb must be cheap and must
// not call back into the engine). Under FsyncPolicy::kBatch the engine runs a
// group-commit thread: one fsync covers every write made before it started.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace statekv::storage {

using Sequence = uint64_t;

enum class FsyncPolicy {
  kAlways,  // every write is fsynced before it returns
  kBatch,   // group commit: acknowledged after the fsync that covers it (default)
  kNever,   // never fsync; the OS decides (a crash may lose recent writes)
};

// An atomic group of puts and deletes, applied in order.
//
// Unlogged: the engine does not write the batch to its own write-ahead log,
// so it costs no fsync, and a crash may lose it (and any later unlogged
// batch) until the engine has flushed its memory to its files; what survives
// of the unlogged batches is a prefix of them, in order. durable_sequence()
// makes no promise about unlogged batches. For writes whose log is kept
// elsewhere: a replica group's applied entries, which its raft log replays
// after a restart (coord/replica_groups.h).
class WriteBatch {
 public:
  enum class OpType : unsigned char { kPut, kDelete };
  struct Op {
    OpType type;
    std::string key;
    std::string value;  // empty for kDelete
  };

  void put(std::string_view key, std::string_view value) {
    Op& op = next();
    op.type = OpType::kPut;
    op.key.assign(key);
    op.value.assign(value);
  }
  void del(std::string_view key) {
    Op& op = next();
    op.type = OpType::kDelete;
    op.key.assign(key);
    op.value.clear();
  }
  std::span<const Op> ops() const { return {ops_.data(), size_}; }
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  // Empties the batch. A batch reused for the next write (the store keeps one
  // per thread) keeps its ops' buffers, so it allocates nothing once warm;
  // past kKeepOps ops, or an op's buffers past kKeepBytes, they are freed.
  void clear() {
    if (ops_.size() > kKeepOps) {
      std::vector<Op>().swap(ops_);
    } else {
      for (size_t i = 0; i < size_; ++i) {
        if (ops_[i].key.capacity() + ops_[i].value.capacity() > kKeepBytes) ops_[i] = Op{};
      }
    }
    size_ = 0;
    unlogged_ = false;
  }
  void set_unlogged(bool unlogged) { unlogged_ = unlogged; }
  bool unlogged() const { return unlogged_; }

 private:
  static constexpr size_t kKeepOps = 64;
  static constexpr size_t kKeepBytes = 4096;
  Op& next() {
    if (size_ == ops_.size()) ops_.emplace_back();
    return ops_[size_++];
  }
  std::vector<Op> ops_;  // [0, size_) in use, the rest kept for reuse
  size_t size_ = 0;
  bool unlogged_ = false;
};

// Called for each entry of a scan, in ascending key order. Return false to stop.
// The views are valid only during the call.
using ScanVisitor = std::function<bool(std::string_view key, std::string_view value)>;

struct EngineStats {
  uint64_t keys = 0;          // number of live keys (exact for memory, estimate for rocksdb)
  uint64_t memory_bytes = 0;  // bytes of memory the engine holds for data and indexes
  uint64_t disk_bytes = 0;    // bytes on disk (0 for memory)
  uint64_t fsyncs = 0;        // fsync calls made since open
  Sequence last_sequence = 0;
  Sequence durable_sequence = 0;
};

// A read-only view of an engine as of when it was taken: later writes do not
// change what it reads. For reading a large range a piece at a time while
// writes go on (a replica group's snapshot sent to a follower in chunks).
// Thread safety: one thread at a time; the engine must outlive it.
class EngineView {
 public:
  virtual ~EngineView() = default;
  // Engine::scan's contract, over the view.
  virtual Status scan(std::string_view start, std::string_view end, size_t limit,
                      const ScanVisitor& visit) = 0;
};

class Engine {
 public:
  Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  virtual ~Engine() = default;

  // "memory" or "rocksdb".
  virtual std::string_view name() const = 0;

  // Copies the value of key into *value. NotFound when absent.
  virtual Status get(std::string_view key, std::string* value) = 0;

  virtual Result<Sequence> put(std::string_view key, std::string_view value) = 0;
  // Deleting an absent key succeeds.
  virtual Result<Sequence> del(std::string_view key) = 0;
  // Applies every op of batch atomically: a reader or a crash sees all or none.
  // An empty batch changes nothing and returns last_sequence().
  virtual Result<Sequence> write(const WriteBatch& batch) = 0;

  // Visits entries with start <= key < end in ascending bytewise order; an empty
  // end means no upper bound. At most limit entries (0 means no limit). The scan
  // sees each key at most once; keys written during the scan may or may not be seen.
  virtual Status scan(std::string_view start, std::string_view end, size_t limit,
                      const ScanVisitor& visit) = 0;
  // The same entries (start <= key < end; an empty end: no upper bound) in
  // descending order: the highest first. What a sorted set's score index reads
  // from its top (ZREVRANGE, ZPOPMAX) in O(log n + k).
  virtual Status scan_reverse(std::string_view start, std::string_view end, size_t limit,
                              const ScanVisitor& visit) = 0;

  // Removes every key (FLUSHALL). Durable like a write.
  virtual Result<Sequence> clear() = 0;

  virtual Sequence last_sequence() const = 0;
  virtual Sequence durable_sequence() const = 0;
  virtual void when_durable(Sequence seq, std::function<void()> callback) = 0;
  // True while the engine can make nothing more durable (a failed sync, until
  // it resumes): durable_sequence() is stuck below what was written.
  virtual bool durability_failed() const { return false; }
  // Forces everything written so far to be durable now (used at shutdown and by tests).
  virtual Status sync() = 0;

  // Whether what this engine holds survives a restart at all (RocksDB: yes;
  // memory: nothing does).
  virtual bool survives_restart() const = 0;
  // Makes every write applied so far durable, unlogged ones included (RocksDB:
  // its memtables become table files), blocking until it is; writes made
  // meanwhile may or may not be covered. What lets a replica group compact its
  // log without copying its shard (docs/replication.md, "Compaction without
  // copying the shard"). InvalidArgument on an engine that does not survive a
  // restart.
  virtual Status persist_all() = 0;

  // A view of everything written so far (RocksDB: a snapshot, which keeps the
  // versions it sees from compaction while it lives). InvalidArgument on an
  // engine without one (memory).
  virtual Result<std::unique_ptr<EngineView>> view() {
    return Status::InvalidArgument("this engine has no read views");
  }

  virtual EngineStats stats() const = 0;
};

struct MemoryEngineOptions {
  // Number of independently locked stripes; a power of two.
  unsigned stripes = 64;
};
std::unique_ptr<Engine> open_memory_engine(const MemoryEngineOptions& options = {});

struct RocksDbEngineOptions {
  std::string path;  // directory; created when missing
  FsyncPolicy fsync = FsyncPolicy::kBatch;
  // Under kBatch: the longest the sync thread waits to gather more writes into one fsync.
  // 0 means sync as soon as the previous fsync finishes (lowest latency).
  unsigned batch_window_us = 0;
  size_t block_cache_bytes = 64u << 20;
};
Result<std::unique_ptr<Engine>> open_rocksdb_engine(const RocksDbEngineOptions& options);

}  // namespace statekv::storage
