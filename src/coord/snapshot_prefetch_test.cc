#include "coord/snapshot_prefetch.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
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
  Pieces(int count, std::atomic<size_t>& read, int fail_at = -1)
      : count_(count), read_(read), fail_at_(fail_at) {}
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

TEST(PrefetchingSnapshotReader, HandsOverTheInnerBytesInOrderInPiecesOfAtMostTheSizeAsked) {
  std::atomic<size_t> read{0};
  PrefetchingSnapshotReader r(std::make_unique<Pieces>(200, read), 1, 64);
  std::string all;
  for (size_t ask = 1;; ask = ask % 9 + 1) {
    auto piece = r.next(ask);
    ASSERT_TRUE(piece.ok());
    if (piece->empty()) break;
    EXPECT_LE(piece->size(), ask);
    all += *piece;
  }
  EXPECT_EQ(all, expected_bytes(200));
  auto after = r.next(10);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty()) << "the end stays the end";
}

TEST(PrefetchingSnapshotReader, ReadsAheadUpToItsLimitBeforeItIsAsked) {
  std::atomic<size_t> read{0};
  PrefetchingSnapshotReader r(std::make_unique<Pieces>(1000, read), 1, 40);
  // Nothing asked yet: the thread reads up to the limit, and stops there.
  ASSERT_TRUE(eventually([&] { return read >= 40; })) << read;
  std::this_thread::sleep_for(30ms);
  EXPECT_LT(read.load(), 40u + 6) << "read past its limit (a piece is at most 5 bytes)";
  // What it held is handed over without waiting, and it reads on.
  auto piece = r.next(30);
  ASSERT_TRUE(piece.ok());
  EXPECT_EQ(*piece, expected_bytes(1000).substr(0, 30));
  EXPECT_TRUE(eventually([&] { return read >= 70; })) << read;
}

TEST(PrefetchingSnapshotReader, AnInnerErrorComesAfterTheBytesReadBeforeIt) {
  std::atomic<size_t> read{0};
  PrefetchingSnapshotReader r(std::make_unique<Pieces>(10, read, 3), 1, 1000);
  std::string before;
  Status error;
  for (int i = 0; i < 20; ++i) {
    auto piece = r.next(4);
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

TEST(PrefetchingSnapshotReader, StopsMidTransferWhenDestroyed) {
  std::atomic<size_t> read{0};
  {
    PrefetchingSnapshotReader r(std::make_unique<Pieces>(1'000'000, read), 1, 100);
    ASSERT_TRUE(r.next(10).ok());
  }  // joined here: a transfer dropped halfway neither hangs nor reads on
  const size_t at_end = read.load();
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(read.load(), at_end);
  EXPECT_LT(at_end, 200u);
}

}  // namespace
}  // namespace statekv::coord
