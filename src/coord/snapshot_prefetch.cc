#include "coord/snapshot_prefetch.h"

#include <algorithm>
#include <utility>

#include "core/thread_name.h"

namespace statekv::coord {

PrefetchingSnapshotReader::PrefetchingSnapshotReader(
    std::unique_ptr<replication::SnapshotReader> inner, size_t piece_bytes, size_t ahead_bytes)
    : inner_(std::move(inner)),
      piece_bytes_(std::max<size_t>(piece_bytes, 1)),
      ahead_bytes_(std::max<size_t>(ahead_bytes, 1)),
      thread_([this] { run(); }) {}

PrefetchingSnapshotReader::~PrefetchingSnapshotReader() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

Result<std::string> PrefetchingSnapshotReader::next(size_t max_bytes) {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [&] { return !ready_.empty() || ended_ || !error_.ok(); });
  if (ready_.empty()) {
    if (!error_.ok()) return error_;
    return std::string();  // ended
  }
  std::string out;
  if (ready_.size() <= max_bytes) {
    out.swap(ready_);
  } else {
    out = ready_.substr(0, max_bytes);
    ready_.erase(0, max_bytes);
  }
  lock.unlock();
  changed_.notify_all();  // room to read ahead again
  return out;
}

bool PrefetchingSnapshotReader::ready() const {
  std::lock_guard lock(mu_);
  return !ready_.empty() || ended_ || !error_.ok();
}

void PrefetchingSnapshotReader::run() {
  name_this_thread("snapshot-read");
  while (true) {
    {
      std::unique_lock lock(mu_);
      changed_.wait(lock, [&] { return stopping_ || ready_.size() < ahead_bytes_; });
      if (stopping_) return;
    }
    Result<std::string> piece = inner_->next(piece_bytes_);
    {
      std::lock_guard lock(mu_);
      if (!piece.ok()) {
        error_ = piece.status();
      } else if (piece->empty()) {
        ended_ = true;
      } else {
        ready_ += *piece;
      }
    }
    changed_.notify_all();
    if (!piece.ok() || piece->empty()) return;
  }
}

}  // namespace statekv::coord
