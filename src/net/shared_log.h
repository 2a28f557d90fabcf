// SharedLog — one node's write-ahead log shared by all of its replica groups.
//
// A node hosts many replica groups (DESIGN.md, "One host per node"), the metadata
// group among them as group 0 (net/raft_node.h opens the log). Each group needs
// what a DiskLog gives one protocol (replication/env.h persist / persist_checkpoint /
// on_persisted and recovery), but a log per group costs a fsync per busy group per
// round. SharedLog gives every group a GroupLog handle with DiskLog's contract, over
// one set of segment files and one sync thread:
//   - GroupLog::append() and append_checkpoint() number a group's records 1, 2, 3, ...
//     per open of that group; a group's records become durable in its append order,
//     and its on_durable(seq) says every record of that group <= seq is durable.
//   - SharedLog::open_group() hands back every record of the group that survived, in
//     append order; a group's checkpoint, once durable, replaces every earlier record
//     of that group (and of no other), atomically.
//
// Group commit across groups: append() frames the record (tagged with its group) into
// one in-memory buffer for the whole node. The sync thread repeatedly takes everything
// pending from every group, writes it in one call, fdatasync()s once, and then
// reports to each group that had records in the round the last sequence it covered.
// N busy groups share one fsync per round instead of doing N.
//
// Per-group truncation: the log knows, for every group, where its live records are
// (those not superseded by a later checkpoint or reset of the same group), and for
// every segment how many live records it holds. Segments are deleted oldest first,
// while the oldest holds no live record (and is not the segment being written), after
// the round that made them dead is durable. A group that is dropped (drop_group: its
// replica left this node, its keyspace was dropped) gets a reset record and no longer
// holds anything. An idle group whose checkpoint sits in an old segment would pin that
// segment, and every later one, forever; so the sync thread relocates: when the log
// holds more than two segments and less than half of its bytes are live, every group
// with live records in the oldest segment has them copied, byte for byte, to the end of
// the log (a reset record of the group first, then its live records in order), which
// frees the oldest segment once durable. Relocation costs at most the live bytes, which
// is then less than the dead bytes it lets go. A group that never checkpoints keeps all
// of its records live, as with DiskLog.
//
// On-disk format (all integers little-endian):
//
//   <dir>/LOCK                 flock()ed while a SharedLog has the directory open
//   <dir>/wal-0000000001.skv   segment files, numbered 1, 2, 3, ... in append order
//
//   segment   := header record*
//   header    := "SKVW" | u32 format version (1) | u64 segment number
//                | u64 XXH3_64bits of the previous 16 bytes              (24 bytes)
//   record    := u32 payload length | u64 checksum | u8 kind | u64 group | payload
//                checksum = XXH3_64bits(kind, group and payload bytes)   (21 + n bytes)
//   kind      := 1 record | 2 checkpoint | 3 reset (forget the group's earlier records):
//                written by drop_group with no payload, and before relocated records
//                with a u32 payload, how many of the group's copies follow it
//
// The last segment's file may go on after its last record with zero bytes: space
// preallocated for the next rounds (below). Every other segment's file ends exactly
// at its last record.
//
// Preallocation: with fdatasync after every round, a write that extends the file
// also makes the sync commit the file's new size (the inode) through the journal; a
// write into space allocated beforehand changes no size (on ext4, a 300-byte write +
// fdatasync: 125-167 us wall, 50-69 us CPU when it extends the file, 84-111 us /
// 32-42 us into fallocate()d space; docs/replication.md). So the sync thread keeps
// the last segment allocated ahead of its records (SharedLogOptions::
// preallocate_bytes): a round that would write past the file's end first
// fallocate()s (mode 0, which sets the file's size) the next preallocate_bytes, or
// what the round needs if that is more, but not past segment_bytes unless the round
// needs it; rounds are written at the end of the records with pwrite (no O_APPEND).
// A filesystem without fallocate (EOPNOTSUPP) gets plain appends, said once in the
// log.
//
// A new segment is started when the current one has reached segment_bytes (between
// rounds; a segment may exceed it by one round). Writing order, which makes the
// recovery rules below sound:
//   1. a segment is closed by cutting its file back to its records (ftruncate) and
//      fdatasync'ing that, before the next segment is created; a log closed cleanly
//      cuts its last segment so too. So every segment but the last ends at its last
//      record, with no zeros after it.
//   2. a new segment is created (O_EXCL), its first chunk allocated, its header
//      written at offset 0, fdatasync'ed and the directory fsync'ed, all before any
//      record goes into it and after the previous segment's records are fdatasync'ed
//      (and it is closed, 1.). A crash in between leaves a last segment that is
//      missing, empty, all zeros, or (part of) its header followed by zeros only. So
//      every segment but the last is complete and durable, and a segment with
//      anything but zeros after its header had a durable header.
//   3. a segment is deleted only once none of its records is live, after the records
//      that superseded them (checkpoints, resets, relocated copies) are durable, and
//      only the oldest segment (so the segments on disk are always consecutive: a
//      crash while deleting leaves a suffix, whose dead records are all followed by
//      the record that superseded them).
//
// Recovery reads every segment once, in number order, and replays its records per
// group: a record joins its group's list; a checkpoint resets its group's list to
// itself; a reset empties its group's list. Then, as DiskLog:
//   - in the LAST segment, bytes after the last intact record that are all zero are
//     the preallocated space: a clean end (not reported; kept as the preallocation).
//     A round whose write reached the disk only up to one of its record boundaries
//     ends so too; none of its records was acknowledged;
//   - any other damaged record (short header, length beyond the end of the file, bad
//     checksum, unknown kind) in the LAST segment is a torn tail: logged with
//     spdlog::warn, reported in SharedLogRecovery, and the file is truncated back to
//     the last good record (which drops the preallocation too: the next round
//     allocates again); records after it are dropped too (none of them was
//     acknowledged: a round's records are reported durable only after its single
//     fdatasync);
//   - a relocation (a reset with a count, then the copies) is applied whole or not at
//     all: one that ends early at the end of the last segment is a torn tail (cut from
//     its reset on; the originals are still in an older segment, since a segment is
//     deleted only once the copies are durable); one interrupted by another record is
//     Corruption;
//   - a last segment whose header is short or garbled and followed by nothing but
//     zeros (or nothing) was torn while being created (writing order 2); its file is
//     cut to a rewritten header;
//   - anything else is Corruption and open() fails, naming the file and offset: damage
//     in a segment that is not the last (zeros after its last record included), a
//     garbled header followed by anything but zeros, a segment written by another
//     format version, a gap in the segment numbers.
//     Never silently losing acknowledged records beats starting up.
//
// Durability with fsync = false: records are written by the sync thread but never
// fdatasync'ed; they survive a process crash, not a power cut.
//
// I/O errors: if a write, a sync or an allocation (other than EOPNOTSUPP) fails, the
// log stops for every group: on_durable is never called again, later appends are
// dropped, and status() returns the error.
//
// Thread safety: every method may be called from any thread. A group's on_durable runs
// on the sync thread, never concurrently with itself or with another group's, outside
// the log's internal locks: it may call append() on any group, but must not destroy a
// GroupLog. The SharedLog lives until its last GroupLog is destroyed (they share it).
// Only one SharedLog may have a directory open at a time (open() fails with Busy).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"

namespace statekv::net {

struct SharedLogOptions {
  std::filesystem::path dir;
  // false: skip fdatasync and directory fsync (tests, benchmarks that say so).
  bool fsync = true;
  // A segment is closed and a new one started once it holds this many bytes.
  uint64_t segment_bytes = uint64_t{64} << 20;
  // The last segment is kept allocated (fallocate) this far ahead of its end, so that
  // the fdatasync after a round's write need not also write the file's size (see
  // "Preallocation" in the header comment). 4 MiB: one size change per ~4 MiB of
  // records (some 14000 rounds of 300 bytes) instead of one per round, at most 4 MiB of
  // zeros on disk per node, and 1/16 of a default segment. 0 turns it off.
  uint64_t preallocate_bytes = uint64_t{4} << 20;
  // Called once, on the sync thread, when a round cannot be written or synced
  // (a full disk, an I/O error): the log stops there and nothing more becomes
  // durable. After a failed fdatasync the page cache may have dropped what it
  // could not write, so the log is not retried: its owner must stop (a node
  // that cannot log cannot keep raft's promises: net/raft_node.h). Null: only
  // logged.
  std::function<void(const Status&)> on_failure = nullptr;
};

// What open() found on disk, apart from the records (open_group hands those out).
struct SharedLogRecovery {
  // Groups with live records, ascending.
  std::vector<uint64_t> groups;
  // Bytes cut off a torn tail (0 when clean: preallocated zeros after the last record
  // are clean) and a one-line description (empty when clean).
  uint64_t torn_bytes = 0;
  std::string torn_detail;
};

// Node-wide counters since open().
struct SharedLogStats {
  uint64_t appended = 0;           // records appended by every group (both kinds)
  uint64_t batches = 0;            // write rounds of the sync thread
  uint64_t data_syncs = 0;         // fdatasync() calls on segment files
  uint64_t dir_syncs = 0;          // fsync() calls on the directory
  uint64_t bytes_written = 0;      // record bytes written, relocations included
  uint64_t segments_created = 0;   // including the first one of an empty directory
  uint64_t segments_deleted = 0;   // no live record left in them
  uint64_t records_relocated = 0;  // live records copied forward (see the header)
  uint64_t segments = 0;           // segment files on disk now
  uint64_t live_bytes = 0;         // bytes of live records on disk now
  uint64_t disk_bytes = 0;         // bytes of every segment file now, preallocation included
  uint64_t preallocations = 0;     // fallocate() calls that reserved space ahead of writes
};

// One group's counters since its open_group().
struct GroupLogStats {
  uint64_t appended = 0;  // records appended (both kinds)
  uint64_t durable = 0;   // highest sequence reported to on_durable
};

class GroupLog;

class SharedLog : public std::enable_shared_from_this<SharedLog> {
 public:
  // Opens the log in options.dir (creating it if needed), recovers it (every segment is
  // read once and checked; the records wait for open_group) and starts the sync thread.
  // Errors: IOError (filesystem), Corruption (see the header comment), Busy (the
  // directory is open elsewhere), InvalidArgument (another format version); a
  // Corruption leaves every file as it was.
  static Result<std::shared_ptr<SharedLog>> open(SharedLogOptions options,
                                                 SharedLogRecovery* recovered = nullptr);

  SharedLog(const SharedLog&) = delete;
  SharedLog& operator=(const SharedLog&) = delete;

  // Makes everything appended durable (unless an I/O error stopped the log), stops the
  // sync thread and closes the files. Runs when the last holder lets go.
  ~SharedLog();

  // Opens group `group`: fills *records (must not be null) with its live records in
  // append order (none for a group never seen), and returns its handle. `on_durable`
  // (may be empty) is called from the sync thread with increasing seq whenever every
  // record of the group with sequence <= seq is durable.
  // Errors: Busy (the group is open already), the log's I/O error, IOError reading.
  Result<std::unique_ptr<GroupLog>> open_group(uint64_t group,
                                               std::function<void(uint64_t)> on_durable,
                                               std::vector<std::string>* records);

  // Forgets every record of a group that is not open: a reset record is appended, and
  // the group no longer keeps any segment. Busy if the group is open.
  Status drop_group(uint64_t group);

  // Groups with live records (open or not), ascending.
  std::vector<uint64_t> groups() const;

  // OK, or the I/O error that stopped the log.
  Status status() const;
  SharedLogStats stats() const;

  static constexpr uint64_t kMaxRecordBytes = uint64_t{1} << 31;

  // Held wakes: an event loop that appends to a log from several handlers in a row
  // (a node's data loop: its leaders' proposals, its followers' AppendEntries) lets
  // the sync thread sleep until the handlers ready now have run, so that one round
  // (one fdatasync) takes the records of the whole pass. While a thread holds wakes,
  // an append that would wake the sync thread only notes the log, and the first such
  // append of a pass calls `schedule` with wake_held: the loop runs it after what is
  // queued (asio::post). A round under way when records come still takes them next.
  // An empty `schedule` stops holding (and wakes what is held).
  using ScheduleWake = std::function<void(std::function<void()> wake)>;
  static void hold_wakes_on_this_thread(ScheduleWake schedule);
  // Wakes the sync thread of every log this thread held a wake for. Also for a
  // handler about to run long (a snapshot's restore): what was appended before it
  // need not wait for it.
  static void wake_held();

 private:
  friend class GroupLog;
  struct Group;
  struct Entry;
  struct Segment;

  explicit SharedLog(SharedLogOptions options);
  Status recover(SharedLogRecovery* out);
  uint64_t enqueue(Group& g, uint8_t kind, std::string_view record);
  void close_group(Group& g);
  void sync_loop();
  Status write_round(std::string& bytes, std::vector<Entry>& entries);
  Status relocate_oldest(std::string& bytes, std::vector<Entry>& entries);
  // Records where e now is on disk: a checkpoint or reset of its group first makes the
  // group's earlier records dead.
  void index(const Entry& e, uint64_t segment, uint64_t offset);
  Status start_segment(uint64_t number);
  // Makes sure the segment file `fd` (of size *file_bytes) is allocated up to `need`
  // bytes, preallocating a chunk ahead when it must allocate (see the header comment);
  // updates *file_bytes. Turns preallocation off for good if the filesystem lacks it.
  Status preallocate(int fd, const std::filesystem::path& path, uint64_t need,
                     uint64_t* file_bytes);
  // Cuts the last segment's file back to its records (seg_size_) if it is longer, and
  // makes that durable: a segment closed so has no preallocated tail.
  Status trim_segment();
  Status sync_file(int fd);
  Status sync_dir();
  void delete_dead_segments();

  const SharedLogOptions options_;

  // Guarded by mu_: the appenders' side.
  mutable std::mutex mu_;
  std::condition_variable work_;     // the sync thread waits for pending records
  std::condition_variable durable_;  // closing groups wait for their records
  std::string pending_;              // framed records of every group, in append order
  std::vector<Entry> pending_entries_;
  std::map<uint64_t, std::shared_ptr<Group>> groups_;  // open, or with live records
  bool stopping_ = false;
  Status error_;
  uint64_t node_seq_ = 0;      // appends of every group, numbered in append order
  uint64_t node_durable_ = 0;  // every append <= this is durable and was reported

  // Guarded by io_mu_: the writer's side (the sync thread's, or open()'s and
  // open_group()'s while they read). Lock order: io_mu_ before mu_.
  mutable std::mutex io_mu_;
  int lock_fd_ = -1;
  int dir_fd_ = -1;
  int seg_fd_ = -1;                       // the last segment, opened for writing
  uint64_t seg_number_ = 0;               // its number
  uint64_t seg_size_ = 0;                 // its size in bytes: where the next round goes
  uint64_t seg_file_bytes_ = 0;           // its file's size: seg_size_ + preallocated zeros
  bool preallocate_ = false;              // options_.preallocate_bytes > 0, and supported
  std::map<uint64_t, Segment> segments_;  // every segment on disk
  uint64_t live_bytes_ = 0;

  struct Counters {
    std::atomic<uint64_t> appended{0}, batches{0}, data_syncs{0}, dir_syncs{0}, bytes_written{0},
        segments_created{0}, segments_deleted{0}, records_relocated{0}, segments{0}, live_bytes{0},
        disk_bytes{0}, preallocations{0};
  };
  Counters counters_;

  std::thread sync_thread_;
};

// One group's handle on its node's SharedLog: DiskLog's interface for one group.
class GroupLog {
 public:
  GroupLog(const GroupLog&) = delete;
  GroupLog& operator=(const GroupLog&) = delete;

  // Waits until everything the group appended is durable (unless the log stopped on
  // an error) and reported through on_durable, then closes the group: its records stay
  // in the log for the next open_group (drop_group forgets them).
  ~GroupLog();

  // Appends one record and returns its sequence number (1, 2, 3, ... per open of the
  // group). Never blocks on I/O. A record must be smaller than kMaxRecordBytes.
  uint64_t append(std::string_view record);

  // Appends a checkpoint: once durable it replaces every record of this group appended
  // before it (env.h persist_checkpoint). Numbered like append().
  uint64_t append_checkpoint(std::string_view record);

  uint64_t group() const;
  // OK, or the I/O error that stopped the log.
  Status status() const;
  GroupLogStats stats() const;

 private:
  friend class SharedLog;
  GroupLog(std::shared_ptr<SharedLog> log, std::shared_ptr<SharedLog::Group> group);

  std::shared_ptr<SharedLog> log_;
  std::shared_ptr<SharedLog::Group> group_;
};

// Moves one DiskLog directory into `log` as group `group`: the DiskLog is recovered,
// any records of the group already in `log` are dropped (a migration cut short by a
// crash: redone whole), the recovered records are appended and made durable, and only
// then is `dir` removed and its parent directory fsync'ed (so that the old copy cannot
// come back after a power cut and replace newer records at the next start). The group
// must not be open. Returns false, having done nothing, when `dir` is not a directory.
// Errors: what DiskLog::open or the SharedLog report (`dir` is then left as it was).
// The metadata group's log of older data directories, <data>/raft, moves in this way
// (net/raft_node.h).
Result<bool> migrate_disk_log(SharedLog& log, uint64_t group, const std::filesystem::path& dir,
                              bool fsync);

// Moves group logs of the layout before SharedLog — one DiskLog directory per group,
// <groups_dir>/<group id>/ — into `log`, one group at a time: its DiskLog is recovered,
// any records of the group already in `log` are dropped (a migration cut short by a
// crash), the recovered records are appended and made durable, and only then is the
// directory removed (and groups_dir fsync'ed, so that the old copy cannot come back
// after a power cut and replace newer records at the next start). Entries of
// groups_dir that are not a decimal group id are left alone; groups_dir itself is
// removed once empty. A missing groups_dir is nothing to do. Returns how many groups
// were moved. Errors: what DiskLog::open or the SharedLog report (that group's
// directory is then left as it was).
Result<size_t> migrate_group_logs(SharedLog& log, const std::filesystem::path& groups_dir,
                                  bool fsync);

}  // namespace statekv::net
