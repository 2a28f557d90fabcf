#include "net/disk_log.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "net/testing/file_size_limit.h"

namespace statekv::net {
namespace {

namespace fs = std::filesystem;
using testing::FileSizeLimit;

using Records = std::vector<std::string>;

// The on-disk format as disk_log.h documents it, written independently here so the
// tests can craft files the log itself would never write.
std::string le(uint64_t v, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  return out;
}
std::string segment_header(uint64_t number, uint32_t version = 1) {
  std::string h = "SKVL" + le(version, 4) + le(number, 8);
  return h + le(XXH3_64bits(h.data(), h.size()), 8);
}
std::string record_frame(uint8_t kind, std::string_view payload) {
  std::string body(1, static_cast<char>(kind));
  body.append(payload);
  return le(payload.size(), 4) + le(XXH3_64bits(body.data(), body.size()), 8) + body;
}
constexpr uint8_t kRecord = 1, kCheckpoint = 2;
constexpr size_t kSegmentHeader = 24, kRecordHeader = 13;

std::string seg_name(uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "log-%010llu.skv", static_cast<unsigned long long>(n));
  return buf;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void write_bytes(const fs::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

class DiskLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/netprims-disklog-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Opens the log; fails the test when it cannot.
  std::unique_ptr<DiskLog> open(Recovery* rec, std::function<void(uint64_t)> on_durable = {},
                                bool fsync = true) {
    auto log = DiskLog::open(DiskLogOptions{dir_, fsync, pool_}, std::move(on_durable), rec);
    EXPECT_TRUE(log.ok()) << log.status().to_string();
    return log.ok() ? std::move(log).value() : nullptr;
  }
  Records reopen_records(Recovery* rec_out = nullptr) {
    Recovery rec;
    auto log = open(&rec);
    if (rec_out) *rec_out = rec;
    return rec.records;
  }
  Status open_status() {
    Recovery rec;
    return DiskLog::open(DiskLogOptions{dir_}, {}, &rec).status();
  }
  void write_log(const Records& records) {
    Recovery rec;
    auto log = open(&rec);
    for (const auto& r : records) log->append(r);
  }
  std::vector<std::string> segment_files() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().filename() != "LOCK") names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  fs::path seg(uint64_t n) const { return dir_ / seg_name(n); }

  fs::path dir_;
  std::shared_ptr<SyncPool> pool_;  // null: each log has its own sync thread
};

TEST_F(DiskLogTest, RoundTripInAppendOrderAcrossReopens) {
  const std::string big(100'000, 'x');
  {
    Recovery rec;
    auto log = open(&rec);
    EXPECT_TRUE(rec.records.empty());
    EXPECT_EQ(log->append("one"), 1u);
    EXPECT_EQ(log->append(""), 2u);
    EXPECT_EQ(log->append(big), 3u);
  }
  Recovery rec;
  EXPECT_EQ(reopen_records(&rec), (Records{"one", "", big}));
  EXPECT_EQ(rec.torn_bytes, 0u);
  EXPECT_TRUE(rec.torn_detail.empty());
  {
    Recovery again;
    auto log = open(&again);
    EXPECT_EQ(log->append("two"), 1u) << "sequence numbers restart with every open";
  }
  EXPECT_EQ(reopen_records(), (Records{"one", "", big, "two"}));
  EXPECT_EQ(segment_files(), (std::vector<std::string>{seg_name(1)}));
}

TEST_F(DiskLogTest, OnDurableIsMonotoneAndCoversEveryAppendByDestruction) {
  std::mutex mu;
  std::vector<uint64_t> reported;
  constexpr int kThreads = 4, kPerThread = 500;
  {
    Recovery rec;
    auto log = open(&rec, [&](uint64_t seq) {
      std::lock_guard lk(mu);
      reported.push_back(seq);
    });
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&log, t] {
        for (int i = 0; i < kPerThread; ++i)
          log->append(std::to_string(t) + ":" + std::to_string(i));
      });
    }
    for (auto& th : threads) th.join();
  }
  ASSERT_FALSE(reported.empty());
  EXPECT_TRUE(std::is_sorted(reported.begin(), reported.end()));
  EXPECT_EQ(std::adjacent_find(reported.begin(), reported.end()), reported.end())
      << "a sequence reported twice";
  EXPECT_EQ(reported.back(), uint64_t{kThreads * kPerThread});

  // Every thread's records come back, each thread's in its own order.
  Records got = reopen_records();
  ASSERT_EQ(got.size(), size_t{kThreads * kPerThread});
  std::vector<int> next(kThreads, 0);
  for (const std::string& r : got) {
    const int t = std::stoi(r.substr(0, r.find(':')));
    EXPECT_EQ(r, std::to_string(t) + ":" + std::to_string(next[t]++));
  }
}

TEST_F(DiskLogTest, AppendsWaitingDuringAnFsyncShareTheNextOne) {
  std::mutex mu;
  std::condition_variable cv;
  bool first_reported = false, release = false;
  uint64_t durable = 0;
  Recovery rec;
  auto log = open(&rec, [&](uint64_t seq) {
    std::unique_lock lk(mu);
    durable = seq;
    if (!first_reported) {
      first_reported = true;
      cv.notify_all();
      cv.wait(lk, [&] { return release; });  // hold the sync thread while the test appends
    }
    cv.notify_all();
  });
  const DiskLogStats before = log->stats();
  log->append("first");
  {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return first_reported; });
  }
  constexpr uint64_t kRecords = 10'000;
  for (uint64_t i = 2; i <= kRecords; ++i) log->append("record " + std::to_string(i));
  {
    std::unique_lock lk(mu);
    release = true;
    cv.notify_all();
    cv.wait(lk, [&] { return durable == kRecords; });
  }
  const DiskLogStats after = log->stats();
  EXPECT_EQ(after.appended, kRecords);
  EXPECT_EQ(after.durable, kRecords);
  EXPECT_EQ(after.batches - before.batches, 2u);
  EXPECT_EQ(after.data_syncs - before.data_syncs, 2u) << "one fdatasync for 9,999 appends";
}

// A measurement as much as a test: 100k small records from 8 threads with fsync on.
TEST_F(DiskLogTest, GroupCommitThroughputWithEightAppenders) {
  constexpr int kThreads = 8, kPerThread = 12'500;
  Recovery rec;
  std::atomic<uint64_t> durable{0};
  auto log = open(&rec, [&](uint64_t seq) { durable.store(seq); });
  const DiskLogStats before = log->stats();
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&log] {
      for (int i = 0; i < kPerThread; ++i) log->append("a small protocol record");
    });
  }
  for (auto& th : threads) th.join();
  const auto appended = std::chrono::steady_clock::now();
  while (durable.load() < uint64_t{kThreads * kPerThread}) std::this_thread::yield();
  const auto synced = std::chrono::steady_clock::now();
  const DiskLogStats after = log->stats();
  const double append_s = std::chrono::duration<double>(appended - start).count();
  const double total_s = std::chrono::duration<double>(synced - start).count();
  const uint64_t syncs = after.data_syncs - before.data_syncs;
  std::printf(
      "disk log: %d records, 8 threads: appends %.0f/s, all durable in %.3fs "
      "(%.0f records/s), %llu fdatasyncs (%.0f records per fsync)\n",
      kThreads * kPerThread, kThreads * kPerThread / append_s, total_s,
      kThreads * kPerThread / total_s, static_cast<unsigned long long>(syncs),
      double(kThreads * kPerThread) / double(std::max<uint64_t>(syncs, 1)));
  EXPECT_EQ(after.durable, uint64_t{kThreads * kPerThread});
  EXPECT_EQ(syncs, after.batches - before.batches);
  EXPECT_LT(syncs, uint64_t{kThreads * kPerThread});
}

TEST_F(DiskLogTest, OnDurableMayAppend) {
  DiskLog* raw = nullptr;
  std::atomic<uint64_t> last{0};
  {
    Recovery rec;
    auto log = open(&rec, [&](uint64_t seq) {
      if (seq == 1) raw->append("from the callback");
      last.store(seq);
    });
    raw = log.get();
    log->append("first");
    while (last.load() < 2) std::this_thread::yield();
  }
  EXPECT_EQ(reopen_records(), (Records{"first", "from the callback"}));
}

TEST_F(DiskLogTest, ManyLogsShareTheThreadsOfOnePool) {
  auto pool = std::make_shared<SyncPool>(2);
  constexpr int kLogs = 40, kThreads = 4, kPerLog = 100;
  struct Watched {
    std::unique_ptr<DiskLog> log;
    std::vector<uint64_t> reported;  // written by one callback at a time
    std::atomic<int> inside{0};
    std::atomic<bool> overlapped{false};
  };
  std::vector<Watched> logs(kLogs);
  for (int i = 0; i < kLogs; ++i) {
    Recovery rec;
    Watched* w = &logs[i];
    auto log = DiskLog::open(
        DiskLogOptions{dir_ / ("g" + std::to_string(i)), true, pool},
        [w](uint64_t seq) {
          if (w->inside.fetch_add(1) != 0) w->overlapped = true;
          w->reported.push_back(seq);
          w->inside.fetch_sub(1);
        },
        &rec);
    ASSERT_TRUE(log.ok()) << log.status().to_string();
    w->log = std::move(log).value();
  }
  {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&logs, t] {
        for (int i = t; i < kLogs * kPerLog; i += kThreads) {
          logs[i % kLogs].log->append(std::to_string(i / kLogs));
        }
      });
    }
    for (auto& th : threads) th.join();
  }
  for (Watched& w : logs) w.log.reset();  // closing makes the rest durable
  pool.reset();
  for (int i = 0; i < kLogs; ++i) {
    const Watched& w = logs[i];
    EXPECT_FALSE(w.overlapped) << "log " << i << ": on_durable ran on two threads at once";
    ASSERT_FALSE(w.reported.empty()) << i;
    EXPECT_TRUE(std::is_sorted(w.reported.begin(), w.reported.end())) << i;
    EXPECT_EQ(w.reported.back(), uint64_t{kPerLog}) << i;
    Recovery rec;
    auto again = DiskLog::open(DiskLogOptions{dir_ / ("g" + std::to_string(i))}, {}, &rec);
    ASSERT_TRUE(again.ok());
    ASSERT_EQ(rec.records.size(), size_t{kPerLog}) << i;
    std::multiset<std::string> got(rec.records.begin(), rec.records.end()), want;
    for (int k = 0; k < kPerLog; ++k) want.insert(std::to_string(k));
    EXPECT_EQ(got, want) << i;
  }
}

TEST_F(DiskLogTest, WithAPoolOnDurableMayAppendAndClosingDrainsEverything) {
  pool_ = std::make_shared<SyncPool>(1);
  DiskLog* raw = nullptr;
  std::atomic<uint64_t> last{0};
  {
    Recovery rec;
    auto log = open(&rec, [&](uint64_t seq) {
      if (seq == 1) raw->append("from the callback");
      last.store(seq);
    });
    raw = log.get();
    log->append("first");
    while (last.load() < 2) std::this_thread::yield();
    for (int i = 0; i < 200; ++i) log->append("r" + std::to_string(i));
  }  // closed at once: what is pending is written by the closing thread
  Records want = {"first", "from the callback"};
  for (int i = 0; i < 200; ++i) want.push_back("r" + std::to_string(i));
  EXPECT_EQ(reopen_records(), want);
  EXPECT_EQ(last.load(), 202u);
}

TEST_F(DiskLogTest, CheckpointReplacesEarlierRecordsAfterReopen) {
  {
    Recovery rec;
    auto log = open(&rec);
    log->append("a");
    log->append("b");
    EXPECT_EQ(log->append_checkpoint("snap"), 3u);
    log->append("c");
  }
  EXPECT_EQ(reopen_records(), (Records{"snap", "c"}));
  EXPECT_EQ(segment_files(), (std::vector<std::string>{seg_name(2)}))
      << "the segment the checkpoint replaced is deleted";
  {
    Recovery rec;
    auto log = open(&rec);
    log->append("d");
  }
  EXPECT_EQ(reopen_records(), (Records{"snap", "c", "d"}));
}

TEST_F(DiskLogTest, SeveralCheckpointsKeepOnlyTheLast) {
  {
    Recovery rec;
    auto log = open(&rec);
    log->append_checkpoint("first snap");  // into the empty segment 1, no new segment
    log->append("a");
    log->append_checkpoint("second snap");
    log->append("b");
    log->append_checkpoint("third snap");
    log->append_checkpoint("fourth snap");  // right after another: a segment of its own
    log->append("c");
  }
  EXPECT_EQ(reopen_records(), (Records{"fourth snap", "c"}));
  ASSERT_EQ(segment_files().size(), 1u);
}

TEST_F(DiskLogTest, ACheckpointFirstInAFreshLogNeedsNoNewSegment) {
  {
    Recovery rec;
    auto log = open(&rec);
    log->append_checkpoint("snap");
    log->append("a");
  }
  EXPECT_EQ(reopen_records(), (Records{"snap", "a"}));
  EXPECT_EQ(segment_files(), (std::vector<std::string>{seg_name(1)}));
}

TEST_F(DiskLogTest, ACrashBeforeTheCheckpointIsDurableKeepsTheOldRecords) {
  write_log({"a", "b"});
  const std::string seg1 = read_bytes(seg(1));
  {
    Recovery rec;
    auto log = open(&rec);
    log->append_checkpoint("snapshot of a and b");
    log->append("c");
  }
  const std::string seg2 = read_bytes(seg(2));
  ASSERT_FALSE(fs::exists(seg(1)));
  const size_t checkpoint_end =
      kSegmentHeader + kRecordHeader + std::string("snapshot of a and b").size();

  // Every crash point inside the new segment: before the checkpoint is complete the old
  // records stand; after, the checkpoint and whatever of "c" survived. Never a mixture.
  for (size_t cut = 0; cut <= seg2.size(); ++cut) {
    SCOPED_TRACE("segment 2 cut at " + std::to_string(cut));
    for (const auto& name : segment_files()) fs::remove(dir_ / name);
    write_bytes(seg(1), seg1);
    write_bytes(seg(2), seg2.substr(0, cut));
    Recovery rec;
    Records got = reopen_records(&rec);
    if (cut < checkpoint_end) {
      EXPECT_EQ(got, (Records{"a", "b"}));
    } else if (cut < seg2.size()) {
      EXPECT_EQ(got, (Records{"snapshot of a and b"}));
    } else {
      EXPECT_EQ(got, (Records{"snapshot of a and b", "c"}));
    }
    const bool torn = cut != kSegmentHeader && cut != checkpoint_end && cut != seg2.size();
    EXPECT_EQ(!rec.torn_detail.empty(), torn) << rec.torn_detail;
    if (cut < kSegmentHeader) {
      EXPECT_EQ(rec.torn_bytes, cut);  // the header itself was torn
    } else if (torn) {
      EXPECT_EQ(rec.torn_bytes, cut - (cut < checkpoint_end ? kSegmentHeader : checkpoint_end));
    }
    // Clean afterwards: a new append lands after the surviving records.
    {
      Recovery r2;
      auto log = open(&r2);
      EXPECT_EQ(r2.torn_bytes, 0u);
      log->append("after the crash");
    }
    got.push_back("after the crash");
    EXPECT_EQ(reopen_records(), got);
  }
}

TEST_F(DiskLogTest, SupersededSegmentsLeftByACrashAreIgnoredAndDeleted) {
  write_log({"a", "b"});
  std::string seg1 = read_bytes(seg(1));
  {
    Recovery rec;
    auto log = open(&rec);
    log->append_checkpoint("snap");
  }
  // The crash came before segment 1's deletion reached the disk, and segment 1 rotted.
  seg1[kSegmentHeader + kRecordHeader] ^= 0x40;
  write_bytes(seg(1), seg1);
  EXPECT_EQ(reopen_records(), (Records{"snap"}));
  EXPECT_EQ(segment_files(), (std::vector<std::string>{seg_name(2)}));
}

class TornTailTest : public DiskLogTest {
 protected:
  // A clean log of three records; returns the last segment's bytes.
  std::string three_records() {
    write_log({"alpha", "beta", "the last record"});
    return read_bytes(seg(1));
  }
  // The damaged log recovers to the first two records, the file is cut back to them,
  // and new appends follow them cleanly.
  void expect_recovers_two(const std::string& damaged, size_t good_size) {
    write_bytes(seg(1), damaged);
    Recovery rec;
    EXPECT_EQ(reopen_records(&rec), (Records{"alpha", "beta"}));
    EXPECT_EQ(rec.torn_bytes, damaged.size() - good_size);
    EXPECT_NE(rec.torn_detail.find(seg_name(1)), std::string::npos) << rec.torn_detail;
    EXPECT_EQ(fs::file_size(seg(1)), good_size);
    {
      Recovery again;
      auto log = open(&again);
      EXPECT_EQ(again.torn_bytes, 0u);
      log->append("gamma");
    }
    EXPECT_EQ(reopen_records(), (Records{"alpha", "beta", "gamma"}));
  }
};

TEST_F(TornTailTest, TruncatedAtEveryByteOfTheLastRecord) {
  const std::string clean = three_records();
  const size_t last_start = clean.size() - kRecordHeader - std::string("the last record").size();
  for (size_t cut = last_start + 1; cut < clean.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    expect_recovers_two(clean.substr(0, cut), last_start);
  }
}

TEST_F(TornTailTest, AFlippedByteAnywhereInTheLastRecord) {
  const std::string clean = three_records();
  const size_t last_start = clean.size() - kRecordHeader - std::string("the last record").size();
  for (size_t at = last_start; at < clean.size(); ++at) {
    SCOPED_TRACE("flipped byte " + std::to_string(at));
    std::string damaged = clean;
    damaged[at] ^= 0x01;
    expect_recovers_two(damaged, last_start);
  }
}

TEST_F(TornTailTest, GarbageAndZerosAfterTheLastRecord) {
  write_log({"alpha", "beta"});
  const std::string clean = read_bytes(seg(1));
  expect_recovers_two(clean + std::string(4096, '\0'), clean.size());
  expect_recovers_two(read_bytes(seg(1)).substr(0, clean.size()) + "\x07garbage that is no record",
                      clean.size());
  // A length that claims more bytes than the file holds.
  expect_recovers_two(clean + le(1'000'000, 4) + std::string(40, 'x'), clean.size());
}

TEST_F(TornTailTest, ValidLookingRecordsAfterATornOneInTheLastSegmentAreDropped) {
  // A torn multi-page write can leave a later page on disk without an earlier one.
  write_log({"alpha", "beta"});
  const std::string clean = read_bytes(seg(1));
  std::string torn = record_frame(kRecord, "never acknowledged");
  torn[kRecordHeader + 3] ^= 0x10;
  expect_recovers_two(clean + torn + record_frame(kRecord, "also never acknowledged"),
                      clean.size());
}

TEST_F(DiskLogTest, ATornHeaderOfANewLastSegmentIsRewritten) {
  write_log({"a", "b"});
  for (size_t cut : {size_t{0}, size_t{7}, kSegmentHeader - 1}) {
    SCOPED_TRACE("header cut at " + std::to_string(cut));
    fs::remove(seg(2));
    write_bytes(seg(2), segment_header(2).substr(0, cut));
    Recovery rec;
    EXPECT_EQ(reopen_records(&rec), (Records{"a", "b"}));
    EXPECT_EQ(rec.torn_bytes, cut);
    EXPECT_EQ(read_bytes(seg(2)), segment_header(2));
  }
  // A header-sized block of zeros (the size reached the disk, the data did not).
  write_bytes(seg(2), std::string(kSegmentHeader, '\0'));
  EXPECT_EQ(reopen_records(), (Records{"a", "b"}));
  {
    Recovery rec;
    auto log = open(&rec);
    log->append("c");
  }
  EXPECT_EQ(reopen_records(), (Records{"a", "b", "c"}));
}

TEST_F(DiskLogTest, DamageBeforeTheTailFailsOpen) {
  write_log({"a", "b", "c"});
  const std::string clean = read_bytes(seg(1));
  const size_t second = kSegmentHeader + kRecordHeader + 1;

  // A segment followed by a later one is complete by construction: any damage is rot.
  std::string rotted = clean;
  rotted[second + kRecordHeader] ^= 0x01;  // payload of "b"; "c" is intact after it
  write_bytes(seg(1), rotted);
  write_bytes(seg(2), segment_header(2));
  Status s = open_status();
  EXPECT_TRUE(s.is_corruption()) << s.to_string();
  EXPECT_NE(s.message().find(seg_name(1)), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("offset " + std::to_string(second)), std::string::npos) << s.message();

  // Even a torn-looking tail is rot in a segment that is not the last.
  write_bytes(seg(1), clean.substr(0, clean.size() - 2));
  EXPECT_TRUE(open_status().is_corruption());

  // Nothing was changed by the failed opens.
  write_bytes(seg(1), clean);
  EXPECT_EQ(reopen_records(), (Records{"a", "b", "c"}));
}

TEST_F(DiskLogTest, BadSegmentHeadersFailOpen) {
  write_log({"a"});
  const std::string clean = read_bytes(seg(1));

  std::string garbled = clean;
  garbled[1] = 'X';
  write_bytes(seg(1), garbled);  // the last segment, but records follow the header
  EXPECT_TRUE(open_status().is_corruption());

  write_bytes(seg(2), segment_header(2));  // now it is not the last segment either
  EXPECT_TRUE(open_status().is_corruption());

  write_bytes(seg(1), segment_header(1, /*version=*/2) + clean.substr(kSegmentHeader));
  Status s = open_status();
  EXPECT_TRUE(s.is_invalid_argument()) << s.to_string();
  EXPECT_NE(s.message().find("version 2"), std::string::npos) << s.message();

  write_bytes(seg(1), segment_header(7) + clean.substr(kSegmentHeader));
  s = open_status();
  EXPECT_TRUE(s.is_corruption()) << s.to_string();
}

TEST_F(DiskLogTest, AMissingSegmentFailsOpenUnlessACheckpointFollows) {
  write_bytes(seg(1), segment_header(1) + record_frame(kRecord, "a"));
  write_bytes(seg(3), segment_header(3) + record_frame(kRecord, "c"));
  Status s = open_status();
  EXPECT_TRUE(s.is_corruption()) << s.to_string();
  EXPECT_NE(s.message().find("missing"), std::string::npos) << s.message();

  fs::remove(seg(1));  // a log whose first segments are gone, and no checkpoint
  EXPECT_TRUE(open_status().is_corruption());

  // A torn header after a gap is not repaired: a failed open changes nothing.
  write_bytes(seg(1), segment_header(1) + record_frame(kRecord, "a"));
  write_bytes(seg(3), segment_header(3).substr(0, 5));
  EXPECT_TRUE(open_status().is_corruption());
  EXPECT_EQ(fs::file_size(seg(3)), 5u);

  write_bytes(seg(3),
              segment_header(3) + record_frame(kCheckpoint, "snap") + record_frame(kRecord, "c"));
  EXPECT_EQ(reopen_records(), (Records{"snap", "c"}));
}

TEST_F(DiskLogTest, ACheckpointInTheMiddleOfASegmentFailsOpen) {
  write_bytes(seg(1), segment_header(1) + record_frame(kRecord, "a") +
                          record_frame(kCheckpoint, "snap") + record_frame(kRecord, "b"));
  Status s = open_status();
  EXPECT_TRUE(s.is_corruption()) << s.to_string();
}

TEST_F(DiskLogTest, TheFormatIsTheDocumentedOne) {
  write_log({"x"});
  {
    Recovery rec;
    auto log = open(&rec);
    log->append_checkpoint("snap");
    log->append("y");
  }
  EXPECT_EQ(read_bytes(seg(2)),
            segment_header(2) + record_frame(kCheckpoint, "snap") + record_frame(kRecord, "y"));
}

TEST_F(DiskLogTest, AFailedWriteStopsTheLogAndNothingAfterItIsReportedDurable) {
  write_log({"a", "b"});
  const uint64_t size = fs::file_size(seg(1));
  std::atomic<uint64_t> durable{0};
  {
    // A real write error: the file may not grow more than 100 bytes past its size.
    FileSizeLimit limit(size + 100);
    ASSERT_TRUE(limit.ok());
    Recovery rec;
    auto log = open(&rec, [&](uint64_t seq) { durable.store(seq); });
    log->append(std::string(5000, 'x'));  // only its first 100 bytes fit
    while (log->status().ok()) std::this_thread::yield();
    EXPECT_TRUE(log->status().is_io_error()) << log->status().to_string();
    log->append("after the failure");
    EXPECT_EQ(log->stats().durable, 0u);
  }
  EXPECT_EQ(durable.load(), 0u) << "nothing was reported durable";

  Recovery rec;
  EXPECT_EQ(reopen_records(&rec), (Records{"a", "b"}));
  EXPECT_EQ(rec.torn_bytes, 100u) << "the partial write is a torn tail";
}

TEST_F(DiskLogTest, OnlyOneLogPerDirectory) {
  Recovery rec;
  auto first = open(&rec);
  Recovery rec2;
  auto second = DiskLog::open(DiskLogOptions{dir_}, {}, &rec2);
  EXPECT_EQ(second.status().code(), Status::Code::kBusy) << second.status().to_string();
  first.reset();
  EXPECT_TRUE(DiskLog::open(DiskLogOptions{dir_}, {}, &rec2).ok());
}

TEST_F(DiskLogTest, WithoutFsyncRecordsAreStillWrittenAndRecovered) {
  {
    Recovery rec;
    auto log = open(&rec, {}, /*fsync=*/false);
    log->append("a");
    log->append_checkpoint("snap");
    log->append("b");
    EXPECT_EQ(log->stats().data_syncs, 0u);
  }
  EXPECT_EQ(reopen_records(), (Records{"snap", "b"}));
}

TEST_F(DiskLogTest, CreatesTheDirectoryAndIgnoresForeignFiles) {
  dir_ = dir_ / "nested" / "raft";
  write_log({"a"});
  write_bytes(dir_ / "notes.txt", "not a segment");
  write_bytes(dir_ / "log-12.skv.tmp", "not a segment either");
  EXPECT_EQ(reopen_records(), (Records{"a"}));
  dir_ = dir_.parent_path().parent_path();  // TearDown removes the whole tree
}

}  // namespace
}  // namespace statekv::net
