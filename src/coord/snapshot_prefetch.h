// SnapshotReadPool — reads snapshots ahead of the protocol's asking, on a few
// threads shared by every transfer of the node.
//
// Raft reads a follower's snapshot a chunk at a time on the data loop that
// every replica group of the node shares (Raft::send_read_snapshot_chunk).
// Reading a shard's chunk from the store is a scan of the group's records
// and of its collections' elements, so while a leader sent a large shard, its
// other groups (and the writes they carry) waited on each chunk's read. A reader opened here
// has its inner reader read on a pool thread, up to `ahead_bytes` ahead of
// what next() handed over, while the chunk before is in flight.
//
// A pool reads `threads` transfers at once; the others wait their turn, in
// the order they were opened (ready() says false meanwhile, and raft sends
// nothing for them until it says true). A node whose groups all send
// snapshots at once (a node back after a long absence, one holding hundreds
// of a ring keyspace's shards) so reads a few at a time, holding a few
// read-ahead buffers, with a few threads, instead of one of each per group.
// A transfer whose inner reader has returned its last piece lets go of it
// (a store view pins what it sees until then) and of its pool thread.
//
// `on_ready`, when given, is called on the pool thread each time bytes (or the
// end, or an error) become ready after none were: the protocol may have
// passed over the transfer meanwhile and is told to look again. It must be
// cheap and must not call back into the reader or the pool.
//
// Thread safety: a reader's next() and ready() from one thread at a time (the
// protocol's); readers may be opened and destroyed from any thread. The pool
// must outlive every reader it opened; its destructor joins its threads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/status.h"
#include "replication/state_machine.h"

namespace statekv::coord {

class SnapshotReadPool {
 public:
  explicit SnapshotReadPool(size_t threads);
  ~SnapshotReadPool();
  SnapshotReadPool(const SnapshotReadPool&) = delete;
  SnapshotReadPool& operator=(const SnapshotReadPool&) = delete;

  // A reader of `inner`, read in pieces of about `piece_bytes` with up to
  // `ahead_bytes` read and not handed over yet. Its next() returns up to
  // max_bytes of what was read (at least one byte, waiting for it if none
  // is), empty at the end, or the inner reader's error once the bytes before
  // it are handed over; ready() whether next() would answer at once.
  std::unique_ptr<replication::SnapshotReader> open(
      std::unique_ptr<replication::SnapshotReader> inner, size_t piece_bytes, size_t ahead_bytes,
      std::function<void()> on_ready = {});

  // Transfers waiting for a thread (status, tests).
  size_t waiting() const;

 private:
  struct Transfer;
  class Reader;
  void run();

  mutable std::mutex mu_;
  std::condition_variable work_;     // a transfer queued, or stopping
  std::condition_variable changed_;  // a transfer's bytes or state changed
  std::deque<std::shared_ptr<Transfer>> queue_;  // opened, not read yet, in order
  bool stopping_ = false;
  std::vector<std::thread> threads_;  // last: started once everything above exists
};

}  // namespace statekv::coord
