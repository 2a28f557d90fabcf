// A simulated disk: one append-only log of checksummed records per node.
//
// Appends are not durable until sync_through() is called for them (the
// simulator does that after a sampled disk latency). crash() decides the fate of
// every record not yet durable, in order: written in full, torn (a prefix of its
// bytes, or all of them with a flipped byte), or lost; after the first record that
// is torn or lost, nothing later reached the disk. recover() reads the log back,
// verifies each record's length and checksum, and cuts the log at the first
// record that fails, so a torn record is never handed to a protocol.
//
// On-disk frame of one record: fixed32 length | fixed32 checksum (XXH32 of the
// payload) | payload.
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/random.h"

namespace statekv::sim {

struct DiskCrashStats {
  size_t written = 0;  // unsynced records that survived in full
  size_t torn = 0;     // 0 or 1
  size_t lost = 0;
};

class SimDisk {
 public:
  // Appends one record; returns its 1-based sequence number within the log.
  uint64_t append(std::string_view record);
  // Appends a checkpoint record: once it is synced (or written in full by a
  // crash) every record before it is gone, atomically. Numbered like append().
  uint64_t append_checkpoint(std::string_view record);
  // Makes every record with sequence number <= seq durable.
  void sync_through(uint64_t seq);
  uint64_t appended() const { return appended_; }
  uint64_t synced() const { return synced_; }

  // A power cut: unsynced records are written, torn or lost at random (see above).
  DiskCrashStats crash(Random& rng);

  // Reads every intact record from the start; truncates the log after the last
  // intact one (as a recovering node would). Resets the numbering to match.
  std::vector<std::string> recover();

  // Test access to the raw bytes of the log (durable and pending).
  const std::string& durable_bytes() const { return durable_; }

 private:
  std::string durable_;                   // bytes that are on the platter
  std::vector<std::string> pending_;      // framed, not yet synced, in append order
  std::vector<bool> pending_checkpoint_;  // parallel to pending_
  uint64_t appended_ = 0;
  uint64_t synced_ = 0;
};

}  // namespace statekv::sim
