#include "sim/disk.h"

#include <gtest/gtest.h>

namespace statekv::sim {
namespace {

TEST(SimDisk, SyncedRecordsSurviveACrash) {
  SimDisk disk;
  disk.append("one");
  disk.append("two");
  disk.append("three");
  disk.sync_through(2);
  Random rng(1);
  disk.crash(rng);
  std::vector<std::string> got = disk.recover();
  ASSERT_GE(got.size(), 2u);
  EXPECT_EQ(got[0], "one");
  EXPECT_EQ(got[1], "two");
  EXPECT_EQ(disk.appended(), got.size());
}

TEST(SimDisk, ASyncedCheckpointReplacesEveryEarlierRecord) {
  SimDisk disk;
  disk.append("one");
  disk.append("two");
  disk.append_checkpoint("snap");
  disk.append("three");
  disk.sync_through(4);
  Random rng(1);
  disk.crash(rng);
  EXPECT_EQ(disk.recover(), (std::vector<std::string>{"snap", "three"}));
}

TEST(SimDisk, AnUnsyncedCheckpointIsAtomicAcrossACrash) {
  bool saw_replaced = false, saw_kept = false;
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    SimDisk disk;
    disk.append("one");
    disk.sync_through(1);
    disk.append_checkpoint("snap");
    disk.append("after");
    Random rng(seed);
    disk.crash(rng);
    std::vector<std::string> got = disk.recover();
    // Either the old state, or the checkpoint (and maybe what followed it): never a mix.
    if (got.front() == "snap") {
      saw_replaced = true;
      EXPECT_LE(got.size(), 2u);
    } else {
      saw_kept = true;
      EXPECT_EQ(got, (std::vector<std::string>{"one"}));
    }
  }
  EXPECT_TRUE(saw_replaced && saw_kept);
}

TEST(SimDisk, UnsyncedRecordsAreWrittenTornOrLostButNeverGarbled) {
  size_t torn = 0, lost = 0, written = 0;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    SimDisk disk;
    std::vector<std::string> appended;
    for (int i = 0; i < 6; ++i) {
      appended.push_back("record-" + std::to_string(seed) + "-" + std::to_string(i));
      disk.append(appended.back());
    }
    disk.sync_through(2);
    Random rng(seed);
    DiskCrashStats stats = disk.crash(rng);
    torn += stats.torn;
    lost += stats.lost;
    written += stats.written;
    std::vector<std::string> got = disk.recover();
    // Recovery yields a prefix of what was appended, at least what was synced,
    // and exactly the records that were written in full.
    ASSERT_GE(got.size(), 2u);
    ASSERT_EQ(got.size(), 2 + stats.written) << "seed " << seed;
    for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], appended[i]);
    // The log is cut after the last intact record: appending continues cleanly.
    disk.append("after");
    disk.sync_through(disk.appended());
    std::vector<std::string> again = disk.recover();
    ASSERT_EQ(again.size(), got.size() + 1);
    EXPECT_EQ(again.back(), "after");
  }
  EXPECT_GT(torn, 50u);
  EXPECT_GT(lost, 50u);
  EXPECT_GT(written, 50u);
}

}  // namespace
}  // namespace statekv::sim
