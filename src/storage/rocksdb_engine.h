// RocksDbEngine — the default on-disk storage::Engine, on RocksDB 7.8 (see engine.h).
//
// Sequences are RocksDB's own sequence numbers: a write returns the last sequence
// number its batch consumed. RocksDB assigns them in WAL order, so "everything <= S"
// is a prefix of the WAL, and they keep increasing across restarts.
//
// Durability, by FsyncPolicy:
//   kAlways  every Write uses WriteOptions::sync. RocksDB groups concurrent sync
//            writers into one WAL append + fsync. A write is durable when it returns.
//   kBatch   group commit. Writes go to the WAL without fsync and return; a dedicated
//            sync thread, woken through a condition variable, reads the latest
//            published sequence L (every write <= L is already in the WAL file), calls
//            SyncWAL(), then raises durable_sequence() to L and runs the when_durable
//            callbacks it covers, in sequence order, on the sync thread.
//            batch_window_us > 0 makes it wait that long first to gather more writes.
//            Callers acknowledge a write only from its when_durable callback.
//   kNever   never fsyncs (the OS writes back when it likes). durable_sequence() ==
//            last_sequence(): that is all this policy promises — a process crash loses
//            nothing (the WAL is in the page cache), a machine crash may lose recent
//            writes.
// If an fsync fails the engine keeps the error: durable_sequence() stops advancing,
// waiting when_durable callbacks run at once (uncovered: DurabilityTracker::fail),
// later writes and sync() return it (a WAL whose sync failed cannot be trusted),
// until a write finds that the store can resume (at most one attempt a second:
// RocksDB's Resume, then a flush of the memtables and a sync, so that everything
// written before lies in synced table files rather than in that WAL); then
// writes go on. A full disk with room made again needs no restart.
//
// Locking: none of our own on the read/write path; RocksDB is internally
// thread-safe. Under kBatch the first write after each fsync takes a short mutex
// to wake the sync thread; the writes after it only read an atomic flag.
// Scans use an iterator (an implicit snapshot): a scan sees one point in time.
//
// clear() deletes the whole key space with one range tombstone (DeleteRange from ""
// to the last key, plus that key) in one batch under the engine's policy; space is
// reclaimed by background compaction.
//
// The destructor stops the sync thread, syncs the WAL one last time and closes.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "storage/durability_tracker.h"
#include "storage/engine.h"

namespace rocksdb {
class DB;
class Cache;
class Statistics;
class WriteBatch;
}  // namespace rocksdb

namespace statekv::storage {

class RocksDbEngine final : public Engine {
 public:
  // Opens (creating when missing) the database at options.path.
  static Result<std::unique_ptr<RocksDbEngine>> open(const RocksDbEngineOptions& options);
  ~RocksDbEngine() override;

  std::string_view name() const override { return "rocksdb"; }
  // A RocksDB snapshot, released when the view goes.
  Result<std::unique_ptr<EngineView>> view() override;
  Status get(std::string_view key, std::string* value) override;
  Result<Sequence> put(std::string_view key, std::string_view value) override;
  Result<Sequence> del(std::string_view key) override;
  // An empty batch changes nothing and returns last_sequence().
  Result<Sequence> write(const WriteBatch& batch) override;
  Status scan_reverse(std::string_view start, std::string_view end, size_t limit,
                      const ScanVisitor& visit) override;
  Status scan(std::string_view start, std::string_view end, size_t limit,
              const ScanVisitor& visit) override;
  Result<Sequence> clear() override;

  Sequence last_sequence() const override;
  Sequence durable_sequence() const override;
  bool durability_failed() const override { return failed_.load(std::memory_order_acquire); }
  void when_durable(Sequence seq, std::function<void()> callback) override;
  Status sync() override;
  bool survives_restart() const override { return true; }
  // Flushes the memtables (RocksDB's Flush, waiting for it).
  Status persist_all() override;
  // keys: rocksdb.estimate-num-keys; memory: block cache + memtables + table readers;
  // disk: SST files + WAL files; fsyncs: WAL syncs since open.
  EngineStats stats() const override;

 private:
  RocksDbEngine(const RocksDbEngineOptions& options, rocksdb::DB* db,
                std::shared_ptr<rocksdb::Cache> cache,
                std::shared_ptr<rocksdb::Statistics> statistics);
  Result<Sequence> apply(rocksdb::WriteBatch* batch, bool unlogged = false);
  Status sync_now();  // SyncWAL, then advance the durable point; records failures
  // Keeps the first failure, fails the durability waiters, logs; returns the kept error.
  Status record_failure(Status error);
  // With the engine failed: resumes it when it can (OK then), at most once per
  // kResumeInterval over all callers; the kept error otherwise.
  Status try_resume();
  static constexpr std::chrono::seconds kResumeInterval{1};
  void sync_loop();
  Status background_error() const;

  const RocksDbEngineOptions options_;
  rocksdb::DB* db_;  // owned; deleted in the destructor after the sync thread stops
  std::shared_ptr<rocksdb::Cache> cache_;
  std::shared_ptr<rocksdb::Statistics> statistics_;
  DurabilityTracker durable_;
  std::atomic<uint64_t> wal_syncs_{0};  // our SyncWAL calls (kBatch, sync(), close)

  // kBatch group commit.
  mutable std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  // Writes since the sync thread last looked. Atomic so that a writer finding it
  // already set skips the mutex: only the first writer after each sync wakes the
  // thread.
  std::atomic<bool> dirty_{false};
  bool stopping_ = false;  // guarded by sync_mu_
  Status sync_error_;      // guarded by sync_mu_
  std::atomic<bool> failed_{false};
  std::thread sync_thread_;

  // Resuming after a failure (try_resume): one caller at a time.
  std::mutex resume_mu_;
  std::chrono::steady_clock::time_point last_resume_;  // guarded by resume_mu_
  uint64_t failed_resumes_ = 0;                        // guarded by resume_mu_
};

}  // namespace statekv::storage
