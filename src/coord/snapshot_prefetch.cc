#include "coord/snapshot_prefetch.h"

#include <algorithm>
#include <string>
#include <utility>

#include "core/thread_name.h"

namespace statekv::coord {

// One transfer's state; everything but `inner` (the pool thread's alone
// while it reads) and the constants is guarded by the pool's mutex.
struct SnapshotReadPool::Transfer {
  std::unique_ptr<replication::SnapshotReader> inner;
  size_t piece_bytes = 1;
  size_t ahead_bytes = 1;
  std::function<void()> on_ready;
  std::string ready;     // read, not handed over yet
  bool ended = false;    // the inner reader returned its last piece
  Status error;          // the inner reader failed
  bool dropped = false;  // its reader is gone

  bool has_something() const { return !ready.empty() || ended || !error.ok(); }
};

class SnapshotReadPool::Reader final : public replication::SnapshotReader {
 public:
  Reader(SnapshotReadPool& pool, std::shared_ptr<Transfer> transfer)
      : pool_(pool), t_(std::move(transfer)) {}

  ~Reader() override {
    {
      std::lock_guard lock(pool_.mu_);
      t_->dropped = true;
      std::erase(pool_.queue_, t_);
    }
    pool_.changed_.notify_all();  // the thread reading it, if one is, moves on
  }

  Result<std::string> next(size_t max_bytes) override {
    std::unique_lock lock(pool_.mu_);
    pool_.changed_.wait(lock, [&] { return t_->has_something(); });
    std::string out;
    if (t_->ready.empty()) {
      if (!t_->error.ok()) return t_->error;
      return out;  // ended
    }
    if (t_->ready.size() <= max_bytes) {
      out.swap(t_->ready);
    } else {
      out = t_->ready.substr(0, max_bytes);
      t_->ready.erase(0, max_bytes);
    }
    lock.unlock();
    pool_.changed_.notify_all();  // room to read ahead again
    return out;
  }

  bool ready() const override {
    std::lock_guard lock(pool_.mu_);
    return t_->has_something();
  }

 private:
  SnapshotReadPool& pool_;
  std::shared_ptr<Transfer> t_;
};

SnapshotReadPool::SnapshotReadPool(size_t threads) {
  const size_t n = std::max<size_t>(threads, 1);
  threads_.reserve(n);
  for (size_t i = 0; i < n; ++i) threads_.emplace_back([this] { run(); });
}

SnapshotReadPool::~SnapshotReadPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_.notify_all();
  changed_.notify_all();
  for (std::thread& t : threads_) t.join();
}

std::unique_ptr<replication::SnapshotReader> SnapshotReadPool::open(
    std::unique_ptr<replication::SnapshotReader> inner, size_t piece_bytes, size_t ahead_bytes,
    std::function<void()> on_ready) {
  auto t = std::make_shared<Transfer>();
  t->inner = std::move(inner);
  t->piece_bytes = std::max<size_t>(piece_bytes, 1);
  t->ahead_bytes = std::max<size_t>(ahead_bytes, 1);
  t->on_ready = std::move(on_ready);
  {
    std::lock_guard lock(mu_);
    queue_.push_back(t);
  }
  work_.notify_one();
  return std::make_unique<Reader>(*this, std::move(t));
}

size_t SnapshotReadPool::waiting() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void SnapshotReadPool::run() {
  name_this_thread("snapshot-read");
  std::unique_lock lock(mu_);
  while (true) {
    work_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    std::shared_ptr<Transfer> t = std::move(queue_.front());
    queue_.pop_front();
    while (true) {
      changed_.wait(lock,
                    [&] { return stopping_ || t->dropped || t->ready.size() < t->ahead_bytes; });
      if (stopping_ || t->dropped) break;
      lock.unlock();
      Result<std::string> piece = t->inner->next(t->piece_bytes);
      lock.lock();
      const bool was_ready = t->has_something();
      const bool finished = !piece.ok() || piece->empty();
      if (!piece.ok()) {
        t->error = piece.status();
      } else if (piece->empty()) {
        t->ended = true;
      } else {
        t->ready += *piece;
      }
      lock.unlock();
      changed_.notify_all();
      if (!was_ready && t->on_ready) t->on_ready();
      lock.lock();
      if (finished) break;
    }
    // Read to its end (or dropped): its view goes now, and this thread to
    // the next transfer; what it read waits in `ready` for its reader.
    std::unique_ptr<replication::SnapshotReader> inner = std::move(t->inner);
    lock.unlock();
    inner.reset();
    t.reset();
    lock.lock();
  }
}

}  // namespace statekv::coord
