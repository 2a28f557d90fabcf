// PrefetchingSnapshotReader — a SnapshotReader whose inner reader runs on a
// thread of its own, ahead of the protocol's asking.
//
// Raft reads a follower's snapshot a chunk at a time on the data loop that
// every replica group of the node shares (Raft::send_read_snapshot_chunk).
// Reading a shard's chunk from the store is a scan of the keyspace filtered
// to the shard, so while a leader sent a large shard, its other groups (and
// the writes they carry) waited on each chunk's read. With this adapter the
// inner reader reads up to `ahead_bytes` on its thread while the chunk before
// is in flight, and next() hands over bytes read meanwhile: it waits only
// when the thread has not read that far yet (the first chunk of a transfer).
//
// The inner reader is used by the prefetch thread alone (a store view may be
// read from any thread). An inner error is returned once the bytes read
// before it are handed over.
//
// Thread safety: next() from one thread at a time (the protocol's); the
// destructor stops and joins the prefetch thread.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/status.h"
#include "replication/state_machine.h"

namespace statekv::coord {

class PrefetchingSnapshotReader final : public replication::SnapshotReader {
 public:
  // Reads `inner` in pieces of about `piece_bytes`, keeping up to
  // `ahead_bytes` read and not yet handed over.
  PrefetchingSnapshotReader(std::unique_ptr<replication::SnapshotReader> inner, size_t piece_bytes,
                            size_t ahead_bytes);
  ~PrefetchingSnapshotReader() override;
  PrefetchingSnapshotReader(const PrefetchingSnapshotReader&) = delete;
  PrefetchingSnapshotReader& operator=(const PrefetchingSnapshotReader&) = delete;

  // Up to max_bytes of what was read (at least one byte, waiting for it if
  // none is), empty at the end, or the inner reader's error.
  Result<std::string> next(size_t max_bytes) override;
  // Something read (or the end, or an error) is there to hand over.
  bool ready() const override;

 private:
  void run();

  std::unique_ptr<replication::SnapshotReader> inner_;
  const size_t piece_bytes_;
  const size_t ahead_bytes_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::string ready_;  // read, not handed over yet (guarded by mu_)
  bool ended_ = false;  // the inner reader returned its last piece
  Status error_;        // the inner reader failed
  bool stopping_ = false;
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace statekv::coord
