#include "coord/snapshot_prefetch.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace statekv::coord {
namespace {

using namespace std::chrono_literals;

// Pieces "p0.", "p1.", ... of which `fail_at` (if set) is an error; counts
// what it handed out.
class Pieces final : public replication::SnapshotReader {
 public:
  Pieces(int count, std::atomic<size_t>& read, int fail_at = -1,
         std::atomic<int>* destroyed = nullptr)
      : count_(count), read_(read), fail_at_(fail_at), destroyed_(destroyed) {}
  ~Pieces() override {
    if (destroyed_ != nullptr) ++*destroyed_;
  }
  Result<std::string> next(size_t) override {
    if (at_ == fail_at_) return Status::IOError("the disk went away");
    if (at_ == count_) return std::string();
    std::string piece = "p" + std::to_string(at_++) + ".";
    read_ += piece.size();
    return piece;
  }

 private:
  int count_;
  int at_ = 0;
  std::atomic<size_t>& read_;
  int fail_at_;
  std::atomic<int>* destroyed_;
};

std::string expected_bytes(int count) {
  std::string all;
  for (int i = 0; i < count; ++i) all += "p" + std::to_string(i) + ".";
  return all;
}

bool eventually(const std::function<bool()>& cond) {
  for (int i = 0; i < 400 && !cond(); ++i) std::this_thread::sleep_for(5ms);
  return cond();
}

TEST(SnapshotReadPool, HandsOverTheInnerBytesInOrderInPiecesOfAtMostTheSizeAsked) {
  std::atomic<size_t> read{0};
  SnapshotReadPool pool(1);
  auto r = pool.open(std::make_unique<Pieces>(200, read), 1, 64);
  std::string all;
  for (size_t ask = 1;; ask = ask % 9 + 1) {
    auto piece = r->next(ask);
    ASSERT_TRUE(piece.ok());
    if (piece->empty()) break;
    EXPECT_LE(piece->size(), ask);
    all += *piece;
  }
  EXPECT_EQ(all, expected_bytes(200));
  auto after = r->next(10);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty()) << "the end stays the end";
}

TEST(SnapshotReadPool, ReadsAheadUpToItsLimitBeforeItIsAsked) {
  std::atomic<size_t> read{0};
  SnapshotReadPool pool(1);
  auto r = pool.open(std::make_unique<Pieces>(1000, read), 1, 40);
  // Nothing asked yet: the thread reads up to the limit, and stops there.
  ASSERT_TRUE(eventually([&] { return read >= 40; })) << read;
  std::this_thread::sleep_for(30ms);
  EXPECT_LT(read.load(), 40u + 6) << "read past its limit (a piece is at most 5 bytes)";
  // What it held is handed over without waiting, and it reads on.
  EXPECT_TRUE(r->ready());
  auto piece = r->next(30);
  ASSERT_TRUE(piece.ok());
  EXPECT_EQ(*piece, expected_bytes(1000).substr(0, 30));
  EXPECT_TRUE(eventually([&] { return read >= 70; })) << read;
}

TEST(SnapshotReadPool, AnInnerErrorComesAfterTheBytesReadBeforeIt) {
  std::atomic<size_t> read{0};
  SnapshotReadPool pool(1);
  auto r = pool.open(std::make_unique<Pieces>(10, read, 3), 1, 1000);
  std::string before;
  Status error;
  for (int i = 0; i < 20; ++i) {
    auto piece = r->next(4);
    if (!piece.ok()) {
      error = piece.status();
      break;
    }
    ASSERT_FALSE(piece->empty()) << "ended instead of failing";
    before += *piece;
  }
  EXPECT_EQ(before, expected_bytes(3));
  EXPECT_TRUE(error.is_io_error()) << error.to_string();
}

TEST(SnapshotReadPool, StopsMidTransferWhenDestroyed) {
  std::atomic<size_t> read{0};
  SnapshotReadPool pool(1);
  {
    auto r = pool.open(std::make_unique<Pieces>(1'000'000, read), 1, 100);
    ASSERT_TRUE(r->next(10).ok());
  }  // a transfer dropped halfway neither hangs nor reads on
  std::this_thread::sleep_for(20ms);
  const size_t at_end = read.load();
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(read.load(), at_end);
  EXPECT_LT(at_end, 200u);
}

// A pool of 2 threads reads 2 transfers at once; the third waits (not
// ready, nothing read) until one of them is read to its end, then gets its
// turn, and each reader is told when its first bytes are ready. A transfer
// read to its end lets go of its inner reader before its reader is gone.
TEST(SnapshotReadPool, ReadsAsManyTransfersAtOnceAsItHasThreadsTheRestInTurn) {
  SnapshotReadPool pool(2);
  std::atomic<size_t> read_a{0}, read_b{0}, read_c{0};
  std::atomic<int> woken_a{0}, woken_c{0}, destroyed{0};
  // a and b: far more than their read-ahead, so they hold both threads.
  auto a = pool.open(std::make_unique<Pieces>(100'000, read_a, -1, &destroyed), 1, 20,
                     [&] { ++woken_a; });
  auto b = pool.open(std::make_unique<Pieces>(100'000, read_b), 1, 20);
  auto c = pool.open(std::make_unique<Pieces>(5, read_c, -1, &destroyed), 1, 1000,
                     [&] { ++woken_c; });
  ASSERT_TRUE(eventually([&] { return read_a >= 20 && read_b >= 20; }));
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(read_c.load(), 0u) << "a third transfer was read with two threads busy";
  EXPECT_FALSE(c->ready());
  EXPECT_EQ(pool.waiting(), 1u);
  EXPECT_EQ(woken_a.load(), 1) << "told once, when its first bytes were ready";
  // b is dropped halfway: its thread goes to c, which is read to its end.
  b.reset();
  ASSERT_TRUE(eventually([&] { return c->ready() && read_c >= expected_bytes(5).size(); }));
  EXPECT_EQ(woken_c.load(), 1);
  EXPECT_EQ(pool.waiting(), 0u);
  EXPECT_TRUE(eventually([&] { return destroyed >= 1; }))
      << "c, read to its end, still holds its inner reader";
  std::string all;
  for (;;) {
    auto piece = c->next(3);
    ASSERT_TRUE(piece.ok());
    if (piece->empty()) break;
    all += *piece;
  }
  EXPECT_EQ(all, expected_bytes(5));
  // a goes on when asked: its thread was never taken from it.
  auto piece = a->next(6);
  ASSERT_TRUE(piece.ok());
  EXPECT_EQ(*piece, "p0.p1.");
}

// A transfer dropped while it waits for a thread leaves the queue unread.
TEST(SnapshotReadPool, ATransferDroppedWhileWaitingIsNeverRead) {
  SnapshotReadPool pool(1);
  std::atomic<size_t> read_a{0}, read_b{0};
  auto a = pool.open(std::make_unique<Pieces>(100'000, read_a), 1, 20);
  auto b = pool.open(std::make_unique<Pieces>(100, read_b), 1, 20);
  ASSERT_TRUE(eventually([&] { return read_a >= 20; }));
  EXPECT_EQ(pool.waiting(), 1u);
  b.reset();
  EXPECT_EQ(pool.waiting(), 0u);
  a.reset();
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(read_b.load(), 0u);
}

}  // namespace
}  // namespace statekv::coord
