// Where a replica group's follower stages the chunks of a snapshot it
// receives (StateMachine::open_snapshot_sink): a file under the node's data
// directory, not memory. A shard's snapshot may be larger than a node should
// hold in memory (a 98k-key shard's is 12 MB; the restore then reads it back
// a piece at a time: ShardRestorePlanner).
//
// The file is the sink's and goes with it. It is not synced: a crash loses
// it as it would lose chunks staged in memory, and the leader sends the
// snapshot again; a node clears what a stopped process left at its start.
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "coord/shard_snapshot.h"
#include "core/status.h"
#include "replication/state_machine.h"

namespace statekv::coord {

class FileSnapshotSink final : public replication::SnapshotSink {
 public:
  // Creates (or empties) `path`, its directory too; IOError when it cannot.
  static Result<std::unique_ptr<FileSnapshotSink>> create(std::filesystem::path path);
  // Closes and removes the file.
  ~FileSnapshotSink() override;
  FileSnapshotSink(const FileSnapshotSink&) = delete;
  FileSnapshotSink& operator=(const FileSnapshotSink&) = delete;

  // Appends to the file; IOError (a full disk, say) when it cannot.
  Status append(std::string_view bytes) override;
  // What was appended, read from the start a piece at a time.
  Result<SnapshotPieces> pieces() const { return SnapshotPieces::of_file(path_); }
  const std::filesystem::path& path() const { return path_; }
  uint64_t size() const { return size_; }

 private:
  FileSnapshotSink(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::filesystem::path path_;
  int fd_;
  uint64_t size_ = 0;
};

// Removes the files a process that stopped during a transfer left in `dir`
// (none of them can be resumed: a transfer starts over); how many.
size_t clear_snapshot_staging(const std::filesystem::path& dir);

}  // namespace statekv::coord
