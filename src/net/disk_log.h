// DiskLog — a node's durable log of protocol records on a real filesystem.
//
// It implements Environment::persist / persist_checkpoint / on_persisted and the
// recovery contract of replication/env.h:
//   - append() and append_checkpoint() number records 1, 2, 3, ... per open; records
//     become durable in append order, and on_durable(seq) says every record <= seq is
//     durable (written and fdatasync'ed; with fsync = false only written).
//   - open() hands back every record that survived, in append order. A torn record at
//     the tail (a crash in the middle of a write) is detected by checksum, dropped with
//     everything after it, and cut off the file so later appends are clean.
//   - a checkpoint, once durable, replaces every earlier record, atomically: recovery
//     yields either the old records, or the checkpoint and what followed it; never a
//     mixture and never a torn checkpoint.
//
// Group commit: append() only frames the record into an in-memory buffer. One sync
// thread repeatedly takes everything pending, write()s it in one call, fdatasync()s
// once, and reports the last sequence it covered. Many appends share one fsync.
// The sync thread is the log's own, or one of a SyncPool's shared by many logs (a
// node's replica groups: a thread per idle group would cost more than the group).
//
// On-disk format (all integers little-endian):
//
//   <dir>/LOCK                 flock()ed while a DiskLog has the directory open
//   <dir>/log-0000000001.skv   segment files, numbered 1, 2, 3, ... in append order
//
//   segment   := header record*
//   header    := "SKVL" | u32 format version (1) | u64 segment number
//                | u64 XXH3_64bits of the previous 16 bytes            (24 bytes)
//   record    := u32 payload length | u64 checksum | u8 kind | payload
//                checksum = XXH3_64bits(kind byte followed by payload)  (13 + n bytes)
//   kind      := 1 record | 2 checkpoint
//
// A checkpoint is always the first record of a segment: append_checkpoint() starts a
// new segment unless the current one holds no record yet. Writing order, which makes
// the recovery rules below sound:
//   1. a new segment's header is written and fdatasync'ed and the directory fsync'ed
//      before any record goes into it, and only after the previous segment's records
//      are fdatasync'ed. So every segment but the last is complete and durable, and a
//      segment with more bytes than its header had a durable header.
//   2. segments before a checkpoint are deleted (oldest first, then a directory fsync)
//      only after the checkpoint is durable.
//
// Recovery starts at the newest segment that begins with a valid checkpoint (segments
// before it are superseded leftovers of a crash while deleting them: they are not read,
// and are deleted), or at the oldest segment, and reads forward in number order:
//   - a valid checkpoint at the start of a segment resets the records gathered so far;
//   - a damaged record (short header, length beyond the end of the file, bad checksum,
//     unknown kind) in the LAST segment is a torn tail: logged with spdlog::warn,
//     reported in Recovery, and the file is truncated back to the last good record;
//     valid-looking records after it are dropped too (a torn multi-page write can
//     leave later pages on disk without earlier ones; none of them was acknowledged);
//   - a last segment no longer than a header whose header is short or garbled was torn
//     while being created; its header is rewritten;
//   - anything else is Corruption and open() fails, naming the file and offset:
//     damage in a segment that is not the last (it was durable before the next one
//     existed), a garbled header followed by records, a checkpoint that is not first
//     in its segment, a segment written by another format version, or a gap in the
//     segment numbers that is not followed by a checkpoint (acknowledged records would
//     be missing). Never silently losing acknowledged records beats starting up.
//
// Durability with fsync = false: records are written to the file by the sync thread
// but never fdatasync'ed; they survive a process crash, not a power cut.
//
// I/O errors: if a write or sync fails, the log stops: on_durable is never called
// again, later appends are dropped, and status() returns the error (a failed fsync
// may have discarded the data, so nothing written after it could be trusted).
//
// Thread safety: append(), append_checkpoint(), status() and stats() may be called
// from any thread. on_durable runs on the sync thread, never concurrently with
// itself, outside every internal lock: it may call append(), but must not destroy the
// DiskLog. With a pool, on_durable runs on a pool thread (or, for what is appended
// while it closes, on the thread destroying the log). Only one DiskLog may have a
// directory open at a time (open() fails with
// Busy otherwise, also within one process).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"

namespace statekv::net {

class DiskLog;

// A few threads that do the sync work of many logs: a log with records pending is
// queued once, and one pool thread writes and syncs it (never two at once, so its
// on_durable is still never concurrent with itself). Logs must be closed before
// their pool is destroyed (they hold it by shared_ptr, so that is automatic).
class SyncPool {
 public:
  explicit SyncPool(size_t threads);
  ~SyncPool();
  SyncPool(const SyncPool&) = delete;
  SyncPool& operator=(const SyncPool&) = delete;

 private:
  friend class DiskLog;
  void schedule(DiskLog* log);
  void run();

  std::mutex mu_;
  std::condition_variable work_;
  std::vector<DiskLog*> queue_;  // each log at most once (DiskLog::scheduled_)
  size_t next_ = 0;              // queue_[next_..] are waiting
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

struct DiskLogOptions {
  std::filesystem::path dir;
  // false: skip fdatasync and directory fsync (tests, benchmarks that say so).
  bool fsync = true;
  // Shared sync threads; null: the log starts a thread of its own.
  std::shared_ptr<SyncPool> pool = nullptr;
};

// What open() found on disk.
struct Recovery {
  // Every surviving record in append order; a checkpoint (and what followed it)
  // replaces what came before. Checkpoint records are not marked: the protocol treats
  // its own checkpoint record as a full reset of its state (env.h).
  std::vector<std::string> records;
  // Bytes cut off a torn tail (0 when the log was clean), and a one-line description
  // of what was cut and why (empty when clean).
  uint64_t torn_bytes = 0;
  std::string torn_detail;
};

// Counters since open(), for tests, metrics and benchmarks.
struct DiskLogStats {
  uint64_t appended = 0;          // records appended (both kinds)
  uint64_t durable = 0;           // highest sequence reported to on_durable
  uint64_t batches = 0;           // write rounds of the sync thread
  uint64_t data_syncs = 0;        // fdatasync() calls on segment files
  uint64_t dir_syncs = 0;         // fsync() calls on the directory
  uint64_t bytes_written = 0;     // record bytes written (headers of segments excluded)
  uint64_t segments_created = 0;  // including the first one of an empty directory
  uint64_t segments_deleted = 0;  // superseded by a checkpoint
};

class DiskLog {
 public:
  // Opens the log in options.dir (creating the directory if needed), recovers it into
  // *recovered (must not be null), and starts the sync thread. `on_durable(seq)` is
  // called from the sync thread with increasing seq whenever every record appended
  // with sequence <= seq is durable; it may be empty.
  // Errors: IOError (filesystem), Corruption (see the header comment), Busy (the
  // directory is open elsewhere), InvalidArgument (another format version); *recovered
  // is then empty, and a Corruption leaves every file as it was.
  static Result<std::unique_ptr<DiskLog>> open(DiskLogOptions options,
                                               std::function<void(uint64_t)> on_durable,
                                               Recovery* recovered);

  DiskLog(const DiskLog&) = delete;
  DiskLog& operator=(const DiskLog&) = delete;

  // Makes everything appended durable (unless an I/O error stopped the log), reports
  // it through on_durable, stops the sync thread and closes the files.
  ~DiskLog();

  // Appends one record and returns its sequence number (1, 2, 3, ... per open).
  // Never blocks on I/O. A record must be smaller than kMaxRecordBytes.
  uint64_t append(std::string record);

  // Appends a checkpoint: once durable it replaces every record appended before it
  // (env.h persist_checkpoint). Numbered like append().
  uint64_t append_checkpoint(std::string record);

  // OK, or the I/O error that stopped the log.
  Status status() const;

  DiskLogStats stats() const;

  static constexpr uint64_t kMaxRecordBytes = uint64_t{1} << 31;

 private:
  // Framed records waiting for the sync thread. A run never spans a checkpoint: a
  // checkpoint starts a new run (and so a new segment), later records join it.
  struct Run {
    bool checkpoint = false;  // bytes begin with a checkpoint record
    std::string bytes;        // framed records, in sequence order
    uint64_t last_seq = 0;    // sequence of the last record in bytes
  };

  DiskLog(DiskLogOptions options, std::function<void(uint64_t)> on_durable);
  uint64_t enqueue(bool checkpoint, std::string record);
  void sync_loop();
  // One round of the sync work: writes and syncs what is pending. False once
  // nothing was pending or the log failed.
  bool sync_round(std::vector<Run>& runs);
  // Pool mode: called by a pool thread for a scheduled log.
  void pool_round();
  friend class SyncPool;
  Status write_runs(std::vector<Run>& runs);
  Status start_segment(uint64_t number);
  Status sync_file(int fd);
  Status sync_dir();
  void delete_segments_before(uint64_t number);

  const DiskLogOptions options_;
  const std::function<void(uint64_t)> on_durable_;

  // Guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable work_;
  std::vector<Run> pending_;
  uint64_t last_seq_ = 0;
  bool stopping_ = false;
  bool scheduled_ = false;        // pool mode: queued or being worked on by a pool thread
  std::condition_variable idle_;  // pool mode: scheduled_ went false
  Status error_;

  std::atomic<bool> failed_{false};

  // Owned by the sync thread once it runs (by open() before that).
  int lock_fd_ = -1;
  int dir_fd_ = -1;
  int seg_fd_ = -1;                 // the last segment, opened for appending
  uint64_t seg_number_ = 0;         // its number
  uint64_t seg_size_ = 0;           // its size in bytes
  std::vector<uint64_t> segments_;  // every segment file on disk, ascending

  struct Counters {
    std::atomic<uint64_t> appended{0}, durable{0}, batches{0}, data_syncs{0}, dir_syncs{0},
        bytes_written{0}, segments_created{0}, segments_deleted{0};
  };
  Counters counters_;

  std::thread sync_thread_;
};

}  // namespace statekv::net
