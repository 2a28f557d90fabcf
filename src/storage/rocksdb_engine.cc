#include "storage/rocksdb_engine.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <spdlog/spdlog.h>
#include <stdarg.h>
#include <stdio.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <utility>

#include "core/assert.h"
#include "core/thread_name.h"

namespace statekv::storage {

namespace {

rocksdb::Slice slice(std::string_view s) {
  return {s.data(), s.size()};
}

Status from_rocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::OK();
  if (s.IsNotFound()) return Status::NotFound();
  if (s.IsCorruption()) return Status::Corruption(s.ToString());
  if (s.IsInvalidArgument()) return Status::InvalidArgument(s.ToString());
  if (s.IsBusy() || s.IsTryAgain()) return Status::Busy(s.ToString());
  return Status::IOError(s.ToString());
}

// RocksDB stores the first sequence number assigned to a batch in the first 8 bytes
// of its representation (fixed64, little endian) once Write() has applied it.
// That layout is RocksDB's stable WAL record format; apply() checks it each time.
Sequence first_sequence_of(const rocksdb::WriteBatch& batch) {
  static_assert(std::endian::native == std::endian::little, "fixed64 is little endian");
  uint64_t seq;
  SKV_ASSERT(batch.Data().size() >= 12, "rocksdb write batch without a header");
  std::memcpy(&seq, batch.Data().data(), sizeof(seq));
  return seq;
}

rocksdb::CompressionType pick_compression(rocksdb::CompressionType preferred) {
  for (auto t : rocksdb::GetSupportedCompressions()) {
    if (t == preferred) return t;
  }
  return rocksdb::kNoCompression;
}

// RocksDB's own log, into statekv's (spdlog) instead of a LOG file in the data
// directory: on a full disk RocksDB's file logger failed a write, and its next
// one tripped an assertion Debian's build keeps (WritableFileWriter::
// AssertFalseAndGetStatusForPrevError) and aborted the server, with nothing of
// statekv's said. Its warnings and errors are statekv's warnings and errors; its
// (chatty) info, at debug.
class SpdlogLogger final : public rocksdb::Logger {
 public:
  SpdlogLogger()
      : rocksdb::Logger(spdlog::should_log(spdlog::level::debug)
                            ? rocksdb::InfoLogLevel::INFO_LEVEL
                            : rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    const spdlog::level::level_enum to = spdlog_level(level);
    if (!spdlog::should_log(to)) return;
    char buf[1024];
    va_list copy;
    va_copy(copy, ap);
    const int n = vsnprintf(buf, sizeof buf, format, copy);
    va_end(copy);
    if (n < 0) return;
    spdlog::log(to, "rocksdb: {}", std::string_view(buf, std::min<size_t>(n, sizeof buf - 1)));
  }

 private:
  static spdlog::level::level_enum spdlog_level(rocksdb::InfoLogLevel level) {
    switch (level) {
      case rocksdb::InfoLogLevel::DEBUG_LEVEL:
        return spdlog::level::trace;
      case rocksdb::InfoLogLevel::WARN_LEVEL:
        return spdlog::level::warn;
      case rocksdb::InfoLogLevel::ERROR_LEVEL:
        return spdlog::level::err;
      case rocksdb::InfoLogLevel::FATAL_LEVEL:
        return spdlog::level::critical;
      default:  // INFO, HEADER
        return spdlog::level::debug;
    }
  }
};

}  // namespace

Result<std::unique_ptr<RocksDbEngine>> RocksDbEngine::open(const RocksDbEngineOptions& options) {
  if (options.path.empty()) return Status::InvalidArgument("rocksdb engine needs a path");
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) return Status::IOError("cannot create " + options.path + ": " + ec.message());

  rocksdb::Options o;
  o.create_if_missing = true;
  // Small machine: two background jobs share the cores with the server threads.
  o.max_background_jobs = 2;
  o.bytes_per_sync = 1 << 20;
  o.compression = pick_compression(rocksdb::kLZ4Compression);
  o.bottommost_compression = pick_compression(rocksdb::kZSTD);
  o.level_compaction_dynamic_level_bytes = true;
  o.info_log = std::make_shared<SpdlogLogger>();  // not <path>/LOG: see SpdlogLogger
  // Group commit: writes only append to RocksDB's in-memory WAL buffer; the sync
  // thread writes and fsyncs it in one go (FlushWAL(true)), so a write costs no
  // system call of its own. Profiling showed one write(2) per SET otherwise.
  o.manual_wal_flush = options.fsync == FsyncPolicy::kBatch;
  // Two cores shared with the I/O threads: writers that spin-yield waiting for the
  // write-group leader take CPU the leader needs.
  o.enable_write_thread_adaptive_yield = false;
  // Cheap tickers only (no histograms or timers): used for the fsync count.
  auto statistics = rocksdb::CreateDBStatistics();
  statistics->set_stats_level(rocksdb::StatsLevel::kExceptTimers);
  o.statistics = statistics;

  rocksdb::BlockBasedTableOptions t;
  auto cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  t.block_cache = cache;
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  t.cache_index_and_filter_blocks = true;
  t.pin_l0_filter_and_index_blocks_in_cache = true;
  t.format_version = 5;
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));

  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, options.path, &db);
  if (!s.ok()) return from_rocks(s);
  return std::unique_ptr<RocksDbEngine>(
      new RocksDbEngine(options, db, std::move(cache), std::move(statistics)));
}

RocksDbEngine::RocksDbEngine(const RocksDbEngineOptions& options, rocksdb::DB* db,
                             std::shared_ptr<rocksdb::Cache> cache,
                             std::shared_ptr<rocksdb::Statistics> statistics)
    : options_(options), db_(db), cache_(std::move(cache)), statistics_(std::move(statistics)) {
  // Whatever recovery found is on disk: durable.
  durable_.advance(db_->GetLatestSequenceNumber());
  if (options_.fsync == FsyncPolicy::kBatch) sync_thread_ = std::thread([this] {
      name_this_thread("store-sync");
      sync_loop();
    });
}

RocksDbEngine::~RocksDbEngine() {
  if (sync_thread_.joinable()) {
    {
      std::lock_guard lock(sync_mu_);
      stopping_ = true;
    }
    sync_cv_.notify_one();
    sync_thread_.join();
  }
  (void)sync_now();
  (void)db_->Close();
  delete db_;
}

Status RocksDbEngine::background_error() const {
  if (!failed_.load(std::memory_order_acquire)) return Status::OK();
  std::lock_guard lock(sync_mu_);
  return sync_error_;
}

Status RocksDbEngine::get(std::string_view key, std::string* value) {
  return from_rocks(db_->Get(rocksdb::ReadOptions(), slice(key), value));
}

Result<Sequence> RocksDbEngine::apply(rocksdb::WriteBatch* batch, bool unlogged) {
  if (failed_.load(std::memory_order_acquire)) {
    if (Status err = try_resume(); !err.ok()) return err;
  }
  rocksdb::WriteOptions wo;
  // RocksDB refuses a synced write without its WAL: an unlogged batch has
  // nothing to sync.
  wo.disableWAL = unlogged;
  wo.sync = options_.fsync == FsyncPolicy::kAlways && !unlogged;
  const uint32_t count = static_cast<uint32_t>(batch->Count());
  if (count == 0) return last_sequence();
  rocksdb::Status s = db_->Write(wo, batch);
  if (!s.ok()) {
    // A synced write whose sync failed (kAlways) leaves RocksDB refusing
    // every write until resumed: remember it, as the sync thread does.
    if (s.IsIOError()) record_failure(from_rocks(s));
    return from_rocks(s);
  }
  const Sequence first = first_sequence_of(*batch);
  const Sequence seq = first + count - 1;
  SKV_ASSERT(first > 0 && seq <= db_->GetLatestSequenceNumber(),
             "rocksdb did not stamp the batch with its sequence");
  if (unlogged) return seq;  // nothing of it to sync (engine.h, WriteBatch)
  switch (options_.fsync) {
    case FsyncPolicy::kAlways:
      // The WAL is append-only and every write is synced, so syncing this one made
      // every earlier sequence durable too.
    case FsyncPolicy::kNever:
      durable_.advance(seq);
      break;
    case FsyncPolicy::kBatch: {
      if (!dirty_.exchange(true, std::memory_order_acq_rel)) {
        // Taking the mutex orders this wake-up after the sync thread's predicate
        // check, so the notification cannot be lost.
        std::lock_guard lock(sync_mu_);
        sync_cv_.notify_one();
      }
      break;
    }
  }
  return seq;
}

Result<Sequence> RocksDbEngine::put(std::string_view key, std::string_view value) {
  rocksdb::WriteBatch batch;
  batch.Put(slice(key), slice(value));
  return apply(&batch);
}

Result<Sequence> RocksDbEngine::del(std::string_view key) {
  rocksdb::WriteBatch batch;
  batch.Delete(slice(key));
  return apply(&batch);
}

Result<Sequence> RocksDbEngine::write(const WriteBatch& batch) {
  rocksdb::WriteBatch rb;
  for (const auto& op : batch.ops()) {
    if (op.type == WriteBatch::OpType::kPut) {
      rb.Put(slice(op.key), slice(op.value));
    } else {
      rb.Delete(slice(op.key));
    }
  }
  return apply(&rb, batch.unlogged());
}

namespace {

// Engine::scan over db as `snapshot` sees it (nullptr: the latest state).
Status scan_db(rocksdb::DB* db, const rocksdb::Snapshot* snapshot, std::string_view start,
               std::string_view end, size_t limit, const ScanVisitor& visit) {
  if (!end.empty() && end <= start) return Status::OK();
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  rocksdb::Slice upper = slice(end);
  if (!end.empty()) ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  size_t seen = 0;
  for (it->Seek(slice(start)); it->Valid(); it->Next()) {
    const rocksdb::Slice k = it->key(), v = it->value();
    if (!visit({k.data(), k.size()}, {v.data(), v.size()})) break;
    if (limit != 0 && ++seen == limit) break;
  }
  return from_rocks(it->status());
}

}  // namespace

Status RocksDbEngine::scan(std::string_view start, std::string_view end, size_t limit,
                           const ScanVisitor& visit) {
  return scan_db(db_, nullptr, start, end, limit, visit);
}

namespace {

class RocksDbView final : public EngineView {
 public:
  explicit RocksDbView(rocksdb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {}
  ~RocksDbView() override { db_->ReleaseSnapshot(snapshot_); }
  RocksDbView(const RocksDbView&) = delete;
  RocksDbView& operator=(const RocksDbView&) = delete;

  Status scan(std::string_view start, std::string_view end, size_t limit,
              const ScanVisitor& visit) override {
    return scan_db(db_, snapshot_, start, end, limit, visit);
  }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
};

}  // namespace

Result<std::unique_ptr<EngineView>> RocksDbEngine::view() {
  return std::unique_ptr<EngineView>(std::make_unique<RocksDbView>(db_));
}

Status RocksDbEngine::scan_reverse(std::string_view start, std::string_view end, size_t limit,
                                   const ScanVisitor& visit) {
  if (!end.empty() && end <= start) return Status::OK();
  rocksdb::ReadOptions ro;
  rocksdb::Slice lower = slice(start);
  rocksdb::Slice upper = slice(end);
  ro.iterate_lower_bound = &lower;
  if (!end.empty()) ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  size_t seen = 0;
  // With an upper bound, SeekToLast lands on the last key below it.
  for (it->SeekToLast(); it->Valid(); it->Prev()) {
    const rocksdb::Slice k = it->key(), v = it->value();
    if (!visit({k.data(), k.size()}, {v.data(), v.size()})) break;
    if (limit != 0 && ++seen == limit) break;
  }
  return from_rocks(it->status());
}

Result<Sequence> RocksDbEngine::clear() {
  rocksdb::WriteBatch batch;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  it->SeekToLast();
  if (!it->status().ok()) return from_rocks(it->status());
  if (it->Valid()) {
    // DeleteRange's end is exclusive: the last key gets its own tombstone.
    const std::string last = it->key().ToString();
    batch.DeleteRange(rocksdb::Slice(), last);
    batch.Delete(last);
  } else {
    // Already empty: still one write, so FLUSHALL gets a sequence and a durable point.
    batch.Delete(rocksdb::Slice());
  }
  return apply(&batch);
}

Sequence RocksDbEngine::last_sequence() const {
  return db_->GetLatestSequenceNumber();
}

Sequence RocksDbEngine::durable_sequence() const {
  return durable_.durable();
}

void RocksDbEngine::when_durable(Sequence seq, std::function<void()> callback) {
  durable_.when_durable(seq, std::move(callback));
}

Status RocksDbEngine::sync_now() {
  // Read before syncing: every write with a sequence <= target has already been
  // appended to the WAL file (RocksDB publishes a sequence only after that), so the
  // SyncWAL below covers all of them. Writes that land during the sync stay for the
  // next round.
  const Sequence target = db_->GetLatestSequenceNumber();
  rocksdb::Status s =
      options_.fsync == FsyncPolicy::kBatch ? db_->FlushWAL(/*sync=*/true) : db_->SyncWAL();
  wal_syncs_.fetch_add(1, std::memory_order_relaxed);
  if (!s.ok()) return record_failure(from_rocks(s));
  durable_.advance(target);
  return Status::OK();
}

Status RocksDbEngine::record_failure(Status error) {
  {
    std::lock_guard lock(sync_mu_);
    if (sync_error_.ok()) sync_error_ = std::move(error);
    failed_.store(true, std::memory_order_release);
    error = sync_error_;
  }
  // Whoever waits for a write to become durable hears now that it will not
  // (a connection holding a reply closes it: server/connection.cc).
  durable_.fail();
  spdlog::error(
      "the store's write-ahead log could not be synced ({}): writes are refused until it can "
      "be again, and the replies still waiting for that sync are dropped with their "
      "connections (the writes may or may not be on disk); free space or repair the disk: "
      "the next write after that resumes the store (docs/storage.md, \"Errors: a failed "
      "sync\")",
      error.to_string());
  return error;
}

Status RocksDbEngine::try_resume() {
  std::unique_lock resuming(resume_mu_, std::try_to_lock);
  if (!resuming.owns_lock()) return background_error();  // another writer is at it
  const auto now = std::chrono::steady_clock::now();
  if (now - last_resume_ < kResumeInterval) return background_error();
  last_resume_ = now;
  // RocksDB's own recovery clears its error and flushes the memtables. The
  // flush and the sync after it make the point explicit: every write RocksDB
  // took, those whose WAL sync failed too, is in synced table files, and the
  // log the failed sync left behind is needed no more. (A WAL is not synced
  // again in place: after a failed fdatasync the page cache may have dropped
  // what it could not write.)
  rocksdb::Status s = db_->Resume();
  if (s.ok()) {
    rocksdb::FlushOptions fo;
    fo.wait = true;
    fo.allow_write_stall = true;
    s = db_->Flush(fo);
  }
  const Sequence target = db_->GetLatestSequenceNumber();
  if (s.ok() && options_.fsync != FsyncPolicy::kNever) {
    s = options_.fsync == FsyncPolicy::kBatch ? db_->FlushWAL(/*sync=*/true) : db_->SyncWAL();
  }
  if (!s.ok()) {
    if (++failed_resumes_ == 1 || failed_resumes_ % 60 == 0) {
      // Busy: RocksDB's own recovery from a full disk is under way (its file
      // manager looks every 5 s for room for a memtable flush, write_buffer_size).
      spdlog::warn("the store cannot resume yet ({}; attempt {}): writes are still refused{}",
                   s.ToString(), failed_resumes_,
                   s.IsBusy() ? " until RocksDB's recovery finds room for a memtable flush" : "");
    }
    return background_error();
  }
  failed_resumes_ = 0;
  {
    std::lock_guard lock(sync_mu_);
    sync_error_ = Status::OK();
    failed_.store(false, std::memory_order_release);
  }
  durable_.recover(target);
  sync_cv_.notify_one();  // the sync thread waits for this
  spdlog::warn("the store resumed: its write-ahead log syncs again and writes are accepted");
  return Status::OK();
}

Status RocksDbEngine::sync() {
  if (Status err = background_error(); !err.ok()) return err;
  return sync_now();
}

Status RocksDbEngine::persist_all() {
  if (Status err = background_error(); !err.ok()) return err;
  rocksdb::FlushOptions fo;
  fo.wait = true;
  // Never stall the writers to flush now: when flushing would (too many
  // memtables waiting already), wait until it would not.
  fo.allow_write_stall = false;
  return from_rocks(db_->Flush(fo));
}

void RocksDbEngine::sync_loop() {
  std::unique_lock lock(sync_mu_);
  while (true) {
    sync_cv_.wait(lock, [&] { return dirty_.load() || stopping_; });
    if (!dirty_.load() && stopping_) return;
    if (options_.batch_window_us > 0 && !stopping_) {
      // Gather: writers arriving now share this fsync instead of waiting a round.
      sync_cv_.wait_for(lock, std::chrono::microseconds(options_.batch_window_us),
                        [&] { return stopping_; });
    }
    // An exchange (not a plain store): it reads the flag the latest writer set, so it
    // synchronises with that writer and the sequence read in sync_now() covers every
    // write whose writer saw the flag already set and therefore did not wake us.
    dirty_.exchange(false, std::memory_order_acq_rel);
    lock.unlock();
    const Status s = sync_now();
    lock.lock();
    if (!s.ok()) {
      // The error is kept; writers see it. Nothing more this thread can make
      // durable until a writer resumes the store (try_resume).
      sync_cv_.wait(lock, [&] { return stopping_ || !failed_.load(std::memory_order_acquire); });
      if (stopping_) return;
    }
  }
}

EngineStats RocksDbEngine::stats() const {
  EngineStats out;
  auto prop = [&](const char* name) {
    uint64_t v = 0;
    db_->GetIntProperty(name, &v);
    return v;
  };
  out.keys = prop("rocksdb.estimate-num-keys");
  out.memory_bytes = prop("rocksdb.block-cache-usage") + prop("rocksdb.cur-size-all-mem-tables") +
                     prop("rocksdb.estimate-table-readers-mem");
  out.disk_bytes = prop("rocksdb.total-sst-files-size");
  rocksdb::VectorLogPtr wals;
  if (db_->GetSortedWalFiles(wals).ok()) {
    for (const auto& w : wals) out.disk_bytes += w->SizeFileBytes();
  }
  // kAlways syncs inside Write (counted by RocksDB's ticker); the others through
  // our SyncWAL calls.
  out.fsyncs = statistics_->getTickerCount(rocksdb::WAL_FILE_SYNCED) +
               wal_syncs_.load(std::memory_order_relaxed);
  out.last_sequence = last_sequence();
  out.durable_sequence = durable_sequence();
  return out;
}

Result<std::unique_ptr<Engine>> open_rocksdb_engine(const RocksDbEngineOptions& options) {
  auto r = RocksDbEngine::open(options);
  if (!r.ok()) return r.status();
  return std::unique_ptr<Engine>(std::move(r).value());
}

}  // namespace statekv::storage
