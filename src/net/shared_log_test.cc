#include "net/shared_log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "net/disk_log.h"
#include "net/testing/file_size_limit.h"

namespace statekv::net {
namespace {

namespace fs = std::filesystem;
using testing::FileSizeLimit;

using Records = std::vector<std::string>;

// The on-disk format as shared_log.h documents it, written independently here.
std::string le(uint64_t v, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
  return out;
}
std::string segment_header(uint64_t number) {
  std::string h = "SKVW" + le(1, 4) + le(number, 8);
  return h + le(XXH3_64bits(h.data(), h.size()), 8);
}
std::string record_frame(uint8_t kind, uint64_t group, std::string_view payload) {
  std::string body(1, static_cast<char>(kind));
  body += le(group, 8);
  body.append(payload);
  return le(payload.size(), 4) + le(XXH3_64bits(body.data(), body.size()), 8) + body;
}
constexpr uint8_t kRecord = 1, kCheckpoint = 2;

std::string seg_name(uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "wal-%010llu.skv", static_cast<unsigned long long>(n));
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

void wait_durable(const GroupLog& g, uint64_t seq) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (g.stats().durable < seq && g.status().ok() &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ASSERT_GE(g.stats().durable, seq);
}

class SharedLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/netprims-sharedlog-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::shared_ptr<SharedLog> open(SharedLogRecovery* rec = nullptr, bool fsync = true) {
    SharedLogOptions options{dir_, fsync, segment_bytes_};
    options.preallocate_bytes = preallocate_bytes_;
    options.on_failure = on_failure_;
    auto log = SharedLog::open(options, rec);
    EXPECT_TRUE(log.ok()) << log.status().to_string();
    return log.ok() ? std::move(log).value() : nullptr;
  }
  Status open_status() { return SharedLog::open(SharedLogOptions{dir_}).status(); }
  std::function<void(const Status&)> on_failure_;  // SharedLogOptions::on_failure
  std::unique_ptr<GroupLog> group(SharedLog& log, uint64_t id, Records* records = nullptr,
                                  std::function<void(uint64_t)> on_durable = {}) {
    Records scratch;
    auto g = log.open_group(id, std::move(on_durable), records ? records : &scratch);
    EXPECT_TRUE(g.ok()) << g.status().to_string();
    return g.ok() ? std::move(g).value() : nullptr;
  }
  // Every group's records after a reopen.
  std::map<uint64_t, Records> reopen_all(SharedLogRecovery* rec_out = nullptr) {
    SharedLogRecovery rec;
    auto log = open(&rec);
    std::map<uint64_t, Records> out;
    if (!log) return out;
    for (uint64_t id : rec.groups) group(*log, id, &out[id]);
    if (rec_out) *rec_out = rec;
    return out;
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
  uint64_t segment_bytes_ = uint64_t{64} << 20;
  uint64_t preallocate_bytes_ = SharedLogOptions{}.preallocate_bytes;
};

TEST_F(SharedLogTest, GroupsAppendAndRecoverTheirOwnRecordsInOrder) {
  {
    SharedLogRecovery rec;
    auto log = open(&rec);
    EXPECT_TRUE(rec.groups.empty());
    auto a = group(*log, 7), b = group(*log, 9), c = group(*log, 1ull << 40);
    EXPECT_EQ(a->append("a1"), 1u);
    EXPECT_EQ(b->append("b1"), 1u) << "sequences are per group";
    EXPECT_EQ(a->append(""), 2u);
    EXPECT_EQ(c->append(std::string(100'000, 'c')), 1u);
    EXPECT_EQ(b->append("b2"), 2u);
    EXPECT_EQ(a->append("a3"), 3u);
  }
  SharedLogRecovery rec;
  auto all = reopen_all(&rec);
  EXPECT_EQ(rec.groups, (std::vector<uint64_t>{7, 9, 1ull << 40}));
  EXPECT_EQ(all[7], (Records{"a1", "", "a3"}));
  EXPECT_EQ(all[9], (Records{"b1", "b2"}));
  EXPECT_EQ(all[1ull << 40], (Records{std::string(100'000, 'c')}));
  EXPECT_EQ(rec.torn_bytes, 0u);
  {
    auto log = open();
    auto a = group(*log, 7);
    EXPECT_EQ(a->append("a4"), 1u) << "sequences restart with every open of the group";
    Records none;
    auto fresh = group(*log, 3, &none);
    EXPECT_TRUE(none.empty());
  }
  EXPECT_EQ(reopen_all()[7], (Records{"a1", "", "a3", "a4"}));
  EXPECT_EQ(segment_files(), (std::vector<std::string>{seg_name(1)}));
}

TEST_F(SharedLogTest, TheFormatIsTheDocumentedOne) {
  {
    auto log = open();
    auto a = group(*log, 5);
    a->append("x");
    a->append_checkpoint("snap");
  }
  EXPECT_EQ(read_bytes(seg(1)), segment_header(1) + record_frame(kRecord, 5, "x") +
                                    record_frame(kCheckpoint, 5, "snap"));
}

TEST_F(SharedLogTest, ACheckpointResetsItsOwnGroupOnly) {
  {
    auto log = open();
    auto a = group(*log, 1), b = group(*log, 2);
    a->append("a1");
    b->append("b1");
    a->append("a2");
    b->append_checkpoint("b-snap");
    a->append("a3");
    b->append("b2");
  }
  auto all = reopen_all();
  EXPECT_EQ(all[1], (Records{"a1", "a2", "a3"}));
  EXPECT_EQ(all[2], (Records{"b-snap", "b2"}));
}

TEST_F(SharedLogTest, ReopeningAClosedGroupInTheSameProcessReadsItsRecords) {
  auto log = open();
  {
    auto a = group(*log, 4);
    a->append_checkpoint("s");
    a->append("r");
  }
  Records got;
  auto again = group(*log, 4, &got);
  EXPECT_EQ(got, (Records{"s", "r"}));
  Records dummy;
  auto twice = log->open_group(4, {}, &dummy);
  EXPECT_EQ(twice.status().code(), Status::Code::kBusy) << twice.status().to_string();
  EXPECT_EQ(log->drop_group(4).code(), Status::Code::kBusy);
}

TEST_F(SharedLogTest, ManyGroupsShareOneFsyncPerRound) {
  constexpr int kGroups = 64, kPerGroup = 40, kThreads = 8;
  std::map<uint64_t, std::atomic<uint64_t>> reported;
  std::mutex order_mu;
  bool monotone = true;
  std::map<uint64_t, uint64_t> last_seen;
  {
    auto log = open();
    std::vector<std::unique_ptr<GroupLog>> groups;
    for (uint64_t id = 1; id <= kGroups; ++id) {
      reported[id] = 0;
      groups.push_back(group(*log, id, nullptr, [&, id](uint64_t seq) {
        std::lock_guard lk(order_mu);
        if (seq <= last_seen[id]) monotone = false;
        last_seen[id] = seq;
        reported[id].store(seq);
      }));
    }
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerGroup; ++i) {
          for (int g = t; g < kGroups; g += kThreads) {
            groups[g]->append("g" + std::to_string(g + 1) + "-" + std::to_string(i));
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    groups.clear();  // each waits for its records
    const SharedLogStats s = log->stats();
    EXPECT_EQ(s.appended, uint64_t{kGroups} * kPerGroup);
    EXPECT_EQ(s.data_syncs, s.batches + s.segments_created)
        << "one fdatasync per round, and one for the header of the log's first segment";
    EXPECT_LT(s.data_syncs * 10, s.appended)
        << "rounds take records of many groups: " << s.data_syncs << " syncs";
    std::printf("%d groups x %d appends: %llu rounds, %llu fdatasyncs\n", kGroups, kPerGroup,
                static_cast<unsigned long long>(s.batches),
                static_cast<unsigned long long>(s.data_syncs));
  }
  EXPECT_TRUE(monotone);
  for (auto& [id, seq] : reported) EXPECT_EQ(seq.load(), uint64_t{kPerGroup}) << id;
  auto all = reopen_all();
  ASSERT_EQ(all.size(), size_t{kGroups});
  for (auto& [id, records] : all) {
    ASSERT_EQ(records.size(), size_t{kPerGroup});
    for (int i = 0; i < kPerGroup; ++i) {
      EXPECT_EQ(records[i], "g" + std::to_string(id) + "-" + std::to_string(i));
    }
  }
}

// Deterministic: the sync thread is held inside a callback while 100 groups append,
// so the next round takes every one of their records, with one write and one fsync.
TEST_F(SharedLogTest, EveryGroupPendingDuringARoundSharesTheNextFsync) {
  constexpr int kGroups = 100;
  auto log = open();
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, release = false;
  auto gate = group(*log, 1000, nullptr, [&](uint64_t) {
    std::unique_lock lk(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lk, [&] { return release; });
  });
  std::vector<std::unique_ptr<GroupLog>> groups;
  std::vector<uint64_t> reported(kGroups + 1, 0);
  for (int id = 1; id <= kGroups; ++id) {
    groups.push_back(group(*log, id, nullptr, [&, id](uint64_t seq) { reported[id] = seq; }));
  }
  const SharedLogStats before = log->stats();
  gate->append("hold the sync thread");
  {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return entered; });
  }
  for (int id = 1; id <= kGroups; ++id) {
    groups[id - 1]->append("one");
    groups[id - 1]->append("two");
  }
  {
    std::lock_guard lk(mu);
    release = true;
  }
  cv.notify_all();
  groups.clear();  // closing waits until every record is durable and reported
  const SharedLogStats after = log->stats();
  EXPECT_EQ(after.batches - before.batches, 2u) << "the gate's round, then one for all groups";
  EXPECT_EQ(after.data_syncs - before.data_syncs, 2u);
  for (int id = 1; id <= kGroups; ++id) EXPECT_EQ(reported[id], 2u) << id;
}

// An event loop's pass (net/raft_node.cc's data loop) appends to several groups
// while holding the sync thread's wake: nothing is written until the wake it
// scheduled at the first append runs, and then one round (one fdatasync) takes the
// whole pass.
TEST_F(SharedLogTest, HeldWakesLetAPassShareOneRound) {
  auto log = open();
  std::vector<std::unique_ptr<GroupLog>> groups;
  for (uint64_t id = 1; id <= 3; ++id) groups.push_back(group(*log, id));
  // A round under way (or a sync thread not yet waiting) takes what is pending
  // without a wake: let the first round end and the thread go back to waiting.
  groups[0]->append("zero");
  ASSERT_NO_FATAL_FAILURE(wait_durable(*groups[0], 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const SharedLogStats before = log->stats();
  std::vector<std::function<void()>> scheduled;
  SharedLog::hold_wakes_on_this_thread(
      [&](std::function<void()> wake) { scheduled.push_back(std::move(wake)); });
  for (auto& g : groups) {
    g->append("one");
    g->append("two");
  }
  ASSERT_EQ(scheduled.size(), 1u) << "one wake scheduled for the pass";
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(log->stats().batches, before.batches) << "a held wake started a round";
  EXPECT_EQ(groups[0]->stats().durable, 1u);
  EXPECT_EQ(groups[1]->stats().durable, 0u);
  EXPECT_EQ(groups[2]->stats().durable, 0u);
  scheduled[0]();
  ASSERT_NO_FATAL_FAILURE(wait_durable(*groups[0], 3));
  ASSERT_NO_FATAL_FAILURE(wait_durable(*groups[1], 2));
  ASSERT_NO_FATAL_FAILURE(wait_durable(*groups[2], 2));
  EXPECT_EQ(log->stats().batches - before.batches, 1u) << "the pass's six records, one round";
  EXPECT_EQ(log->stats().data_syncs - before.data_syncs, 1u);
  // The next pass schedules its own wake.
  groups[1]->append("three");
  EXPECT_EQ(scheduled.size(), 2u);
  SharedLog::hold_wakes_on_this_thread(nullptr);  // stops holding: wakes what is held
  ASSERT_NO_FATAL_FAILURE(wait_durable(*groups[1], 3));
}

// Closing a group waits for its records: a thread holding wakes must not wait on
// itself. And a log that goes before its scheduled wake runs is not woken.
TEST_F(SharedLogTest, AThreadHoldingWakesClosesGroupsAndOutlivesItsLog) {
  std::promise<void> done;
  auto closed = done.get_future();
  std::thread closer([&, done = std::move(done)]() mutable {
    std::vector<std::function<void()>> scheduled;
    SharedLog::hold_wakes_on_this_thread(
        [&](std::function<void()> wake) { scheduled.push_back(std::move(wake)); });
    auto log = open();
    auto g = group(*log, 1);
    g->append("a");
    g.reset();  // waits until "a" is durable
    auto h = group(*log, 2);
    h->append("b");
    EXPECT_TRUE(log->drop_group(1).ok());  // waits for its reset record
    h.reset();
    log.reset();
    for (auto& wake : scheduled) wake();  // the log is gone: nothing to wake
    SharedLog::hold_wakes_on_this_thread(nullptr);
    done.set_value();
  });
  if (closed.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    closer.detach();  // stuck for good: the process ends with it
    FAIL() << "closing a group waited for a round its own thread held back";
  }
  closer.join();
  EXPECT_EQ(reopen_all()[2], (Records{"b"}));
}

TEST_F(SharedLogTest, OnDurableMayAppendToAnyGroup) {
  auto log = open();
  auto b = group(*log, 2);
  std::atomic<bool> chained{false};
  GroupLog* braw = b.get();
  auto a = group(*log, 1, nullptr, [&](uint64_t seq) {
    if (seq == 1 && !chained.exchange(true)) braw->append("from a's callback");
  });
  a->append("a");
  a.reset();
  b.reset();
  log.reset();
  EXPECT_EQ(reopen_all()[2], (Records{"from a's callback"}));
}

// Segments roll at segment_bytes; a segment goes once no group needs a record in it.
TEST_F(SharedLogTest, ASegmentIsDeletedOnlyWhenNoGroupNeedsIt) {
  segment_bytes_ = 64;  // every round after the first record starts a new segment
  auto log = open();
  auto a = group(*log, 1), b = group(*log, 2);
  wait_durable(*a, a->append(std::string(100, 'a')));                        // segment 1
  wait_durable(*b, b->append(std::string(100, 'b')));                        // segment 2
  wait_durable(*b, b->append_checkpoint("b-snap" + std::string(100, 's')));  // segment 3
  EXPECT_EQ(segment_files(), (std::vector<std::string>{seg_name(1), seg_name(2), seg_name(3)}))
      << "segment 1 holds a's only record; 2 is dead, but deleting it would leave a hole";
  wait_durable(*a, a->append_checkpoint("a-snap"));  // segment 4
  EXPECT_EQ(segment_files(), (std::vector<std::string>{seg_name(3), seg_name(4)}))
      << "once a's checkpoint is durable, 1 and 2 hold nothing live";
  EXPECT_EQ(log->stats().segments_deleted, 2u);
  a.reset();
  b.reset();
  log.reset();
  auto all = reopen_all();
  EXPECT_EQ(all[1], (Records{"a-snap"}));
  EXPECT_EQ(all[2], (Records{"b-snap" + std::string(100, 's')}));
}

TEST_F(SharedLogTest, AnIdleGroupsOldCheckpointIsMovedForwardInsteadOfPinningTheLog) {
  segment_bytes_ = 256;
  auto log = open();
  {
    auto idle = group(*log, 1);
    idle->append_checkpoint("idle-snap");
    idle->append("idle-1");
  }  // closed: its records stay, and nobody writes for it again
  auto busy = group(*log, 2);
  for (int i = 0; i < 100; ++i) {
    wait_durable(*busy,
                 busy->append_checkpoint("busy-" + std::to_string(i) + std::string(100, 'x')));
  }
  const SharedLogStats s = log->stats();
  EXPECT_GT(s.records_relocated, 0u);
  EXPECT_LE(s.segments, 4u) << "the log does not grow with the busy group's checkpoints";
  EXPECT_GT(s.segments_deleted, 30u);
  EXPECT_LT(s.disk_bytes, 2'000u);
  busy.reset();
  log.reset();
  auto all = reopen_all();
  EXPECT_EQ(all[1], (Records{"idle-snap", "idle-1"}))
      << "the moved records read back as they were appended";
  EXPECT_EQ(all[2].size(), 1u);
}

TEST_F(SharedLogTest, AGroupMovedForwardWhileOpenKeepsItsRecordsInOrder) {
  segment_bytes_ = 256;
  Records expected_slow;
  {
    auto log = open();
    auto slow = group(*log, 1), busy = group(*log, 2);
    slow->append_checkpoint("slow-snap");
    expected_slow.push_back("slow-snap");
    for (int i = 0; i < 100; ++i) {
      if (i % 10 == 0) {
        expected_slow.push_back("slow-" + std::to_string(i));
        slow->append(expected_slow.back());
      }
      wait_durable(*busy,
                   busy->append_checkpoint("busy-" + std::to_string(i) + std::string(100, 'x')));
    }
    EXPECT_GT(log->stats().records_relocated, 0u);
    EXPECT_LE(log->stats().segments, 4u);
  }
  auto all = reopen_all();
  EXPECT_EQ(all[1], expected_slow);
  EXPECT_EQ(all[2], (Records{"busy-99" + std::string(100, 'x')}));
}

TEST_F(SharedLogTest, ADroppedGroupReleasesItsRecords) {
  segment_bytes_ = 64;
  {
    auto log = open();
    {
      auto gone = group(*log, 1);
      gone->append(std::string(100, 'g'));  // segment 1
    }
    auto stay = group(*log, 2);
    wait_durable(*stay, stay->append_checkpoint("s"));  // segment 2
    EXPECT_EQ(segment_files().size(), 2u);
    ASSERT_TRUE(log->drop_group(1).ok());
    EXPECT_EQ(segment_files(), (std::vector<std::string>{seg_name(2)}))
        << "segment 1 held only the dropped group's record";
    EXPECT_EQ(log->groups(), (std::vector<uint64_t>{2}));
    EXPECT_TRUE(log->drop_group(99).ok()) << "a group the log never saw: nothing to do";
  }
  SharedLogRecovery rec;
  auto all = reopen_all(&rec);
  EXPECT_EQ(rec.groups, (std::vector<uint64_t>{2}));
  EXPECT_EQ(all[2], (Records{"s"}));
}

TEST_F(SharedLogTest, ADropIsDurableEvenWhenTheOlderSegmentSurvivesACrash) {
  segment_bytes_ = 64;
  {
    auto log = open();
    {
      auto keep = group(*log, 2);
      wait_durable(*keep, keep->append(std::string(100, 'k')));  // pins segment 1
    }
    {
      auto gone = group(*log, 1);
      gone->append("g");  // segment 2
    }
    ASSERT_TRUE(log->drop_group(1).ok());
  }
  auto all = reopen_all();
  EXPECT_EQ(all.count(1), 0u) << "the reset record hides the dropped group's records";
  EXPECT_EQ(all[2], (Records{std::string(100, 'k')}));
}

// Torn tails: the last segment cut at every byte of its last record.
TEST_F(SharedLogTest, ATornTailIsCutAndTheOtherGroupsKeepTheirRecords) {
  {
    auto log = open();
    auto a = group(*log, 1), b = group(*log, 2);
    a->append("a1");
    b->append("b1");
    b->append("b-last");
  }
  const std::string whole = read_bytes(seg(1));
  const size_t last_frame = record_frame(kRecord, 2, "b-last").size();
  for (size_t cut = 1; cut <= last_frame; ++cut) {
    write_bytes(seg(1), std::string_view(whole).substr(0, whole.size() - cut));
    SharedLogRecovery rec;
    auto all = reopen_all(&rec);
    EXPECT_EQ(all[1], (Records{"a1"})) << cut;
    EXPECT_EQ(all[2], (Records{"b1"})) << cut;
    EXPECT_EQ(rec.torn_bytes, last_frame - cut) << cut;
    EXPECT_EQ(fs::file_size(seg(1)), whole.size() - last_frame) << "cut off the file";
  }
  // A flipped byte in the last record, then records appended after the cut.
  std::string flipped = whole;
  flipped[whole.size() - 2] ^= 0x40;
  write_bytes(seg(1), flipped);
  {
    SharedLogRecovery rec;
    auto log = open(&rec);
    EXPECT_EQ(rec.torn_bytes, last_frame);
    auto b = group(*log, 2);
    b->append("b-after");
  }
  EXPECT_EQ(reopen_all()[2], (Records{"b1", "b-after"}));
}

TEST_F(SharedLogTest, DamageOutsideTheTailFailsOpenAndChangesNothing) {
  segment_bytes_ = 64;
  {
    auto log = open();
    auto a = group(*log, 1);
    wait_durable(*a, a->append(std::string(100, 'a')));
    wait_durable(*a, a->append("a2"));
  }
  ASSERT_EQ(segment_files().size(), 2u);
  std::string first = read_bytes(seg(1));
  first[40] ^= 1;
  write_bytes(seg(1), first);
  const std::string second = read_bytes(seg(2));
  Status s = open_status();
  EXPECT_TRUE(s.is_corruption()) << s.to_string();
  EXPECT_NE(s.to_string().find(seg_name(1)), std::string::npos) << s.to_string();
  EXPECT_EQ(read_bytes(seg(1)), first);
  EXPECT_EQ(read_bytes(seg(2)), second);

  // A missing segment in the middle.
  first[40] ^= 1;
  write_bytes(seg(1), first);
  write_bytes(seg(3), segment_header(3) + record_frame(kRecord, 1, "a3"));
  fs::remove(seg(2));
  s = open_status();
  EXPECT_TRUE(s.is_corruption()) << s.to_string();
  EXPECT_NE(s.to_string().find("missing"), std::string::npos) << s.to_string();
}

TEST_F(SharedLogTest, AMoveTornAfterItsResetKeepsTheOriginals) {
  constexpr uint8_t kReset = 3;
  const std::string two = le(2, 4);
  write_bytes(seg(1), segment_header(1) + record_frame(kCheckpoint, 7, "snap") +
                          record_frame(kRecord, 7, "r1") + record_frame(kRecord, 8, "other"));
  // The write that moved group 7 forward reached the disk only up to its first copy.
  const std::string torn = record_frame(kReset, 7, two) + record_frame(kCheckpoint, 7, "snap");
  write_bytes(seg(2), segment_header(2) + torn);
  {
    SharedLogRecovery rec;
    auto all = reopen_all(&rec);
    EXPECT_EQ(all[7], (Records{"snap", "r1"}));
    EXPECT_EQ(all[8], (Records{"other"}));
    EXPECT_EQ(rec.torn_bytes, torn.size());
    EXPECT_EQ(read_bytes(seg(2)), segment_header(2));
  }
  // A complete move replaces the originals.
  write_bytes(seg(2), segment_header(2) + torn + record_frame(kRecord, 7, "r1") +
                          record_frame(kRecord, 7, "r2"));
  EXPECT_EQ(reopen_all()[7], (Records{"snap", "r1", "r2"}));
  // A move interrupted by another record was never written so: refused.
  write_bytes(seg(2), segment_header(2) + torn + record_frame(kRecord, 8, "x") +
                          record_frame(kRecord, 7, "r1"));
  Status s = open_status();
  EXPECT_TRUE(s.is_corruption()) << s.to_string();
}

TEST_F(SharedLogTest, ATornHeaderOfANewLastSegmentIsRewritten) {
  {
    auto log = open();
    auto a = group(*log, 1);
    a->append("a1");
  }
  write_bytes(seg(2), segment_header(2).substr(0, 10));
  SharedLogRecovery rec;
  auto all = reopen_all(&rec);
  EXPECT_EQ(all[1], (Records{"a1"}));
  EXPECT_EQ(rec.torn_bytes, 10u);
  EXPECT_EQ(read_bytes(seg(2)), segment_header(2));
}

TEST_F(SharedLogTest, AFailedWriteStopsEveryGroupAndNothingAfterItIsReportedDurable) {
  preallocate_bytes_ = 0;  // the write itself fails, part-way (with preallocation, the
                           // fallocate before it: AFailedPreallocation... below)
  {
    auto log = open();
    auto a = group(*log, 1);
    a->append("a");
  }
  const uint64_t size = fs::file_size(seg(1));
  std::atomic<uint64_t> durable{0};
  {
    FileSizeLimit limit(size + 100);
    ASSERT_TRUE(limit.ok());
    // The log's owner hears of it once (a node stops: net/raft_node.h).
    std::mutex mu;
    int failures = 0;
    std::string failure;
    on_failure_ = [&](const Status& st) {
      std::lock_guard lock(mu);
      ++failures;
      failure = st.to_string();
    };
    const auto failures_seen = [&] {
      std::lock_guard lock(mu);
      return failures;
    };
    auto log = open();
    auto a = group(*log, 1, nullptr, [&](uint64_t seq) { durable.store(seq); });
    auto b = group(*log, 2);
    a->append(std::string(5000, 'x'));
    while (log->status().ok()) std::this_thread::yield();
    EXPECT_TRUE(b->status().is_io_error()) << b->status().to_string();
    b->append("after the failure");
    EXPECT_EQ(b->stats().durable, 0u);
    for (int i = 0; i < 1000 && failures_seen() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::lock_guard lock(mu);
    EXPECT_EQ(failures, 1);
    EXPECT_NE(failure.find("File too large"), std::string::npos) << failure;
  }
  EXPECT_EQ(durable.load(), 0u);
  SharedLogRecovery rec;
  auto all = reopen_all(&rec);
  EXPECT_EQ(all[1], (Records{"a"}));
  EXPECT_EQ(all.count(2), 0u);
  EXPECT_EQ(rec.torn_bytes, 100u);
}

// ------------------------------------------------------------------ preallocation

// Where the records of a segment file end, walking the frames' length fields (the
// bytes after that are the preallocated space, or a torn tail).
size_t records_end(std::string_view file) {
  size_t pos = 24;
  while (pos + 21 <= file.size()) {
    const uint32_t length = static_cast<uint8_t>(file[pos]) |
                            static_cast<uint32_t>(static_cast<uint8_t>(file[pos + 1])) << 8 |
                            static_cast<uint32_t>(static_cast<uint8_t>(file[pos + 2])) << 16 |
                            static_cast<uint32_t>(static_cast<uint8_t>(file[pos + 3])) << 24;
    if (length == 0 && file.find_first_not_of('\0', pos) == std::string_view::npos) break;
    if (pos + 21 + length > file.size()) break;
    pos += 21 + length;
  }
  return pos;
}
bool all_zero_from(std::string_view file, size_t from) {
  return file.find_first_not_of('\0', from) == std::string_view::npos;
}

TEST_F(SharedLogTest, PreallocatedZerosAfterTheLastRecordAreACleanEnd) {
  const std::string records =
      segment_header(1) + record_frame(kRecord, 1, "a1") + record_frame(kCheckpoint, 2, "b-snap");
  std::string crashed;  // the segment as a kill -9 at that point leaves it
  {
    auto log = open();
    auto a = group(*log, 1), b = group(*log, 2);
    a->append("a1");
    wait_durable(*b, b->append_checkpoint("b-snap"));
    EXPECT_EQ(fs::file_size(seg(1)), preallocate_bytes_) << "a chunk allocated ahead";
    EXPECT_EQ(log->stats().disk_bytes, preallocate_bytes_);
    crashed = read_bytes(seg(1));
  }
  ASSERT_EQ(crashed.size(), preallocate_bytes_);
  EXPECT_EQ(crashed.substr(0, records.size()), records);
  EXPECT_TRUE(all_zero_from(crashed, records.size()));
  EXPECT_EQ(read_bytes(seg(1)), records) << "closed cleanly: cut back to its records";

  write_bytes(seg(1), crashed);
  {
    SharedLogRecovery rec;
    auto log = open(&rec);
    EXPECT_EQ(rec.torn_bytes, 0u);
    EXPECT_EQ(rec.torn_detail, "");
    EXPECT_EQ(rec.groups, (std::vector<uint64_t>{1, 2}));
    EXPECT_EQ(fs::file_size(seg(1)), crashed.size()) << "the zeros are kept as preallocation";
    Records a_records;
    auto a = group(*log, 1, &a_records);
    EXPECT_EQ(a_records, (Records{"a1"}));
    wait_durable(*a, a->append("a2"));
    EXPECT_EQ(log->stats().preallocations, 0u) << "written into the space already there";
    const std::string now = read_bytes(seg(1));
    const std::string expected = records + record_frame(kRecord, 1, "a2");
    EXPECT_EQ(now.substr(0, expected.size()), expected) << "right after the last record";
    EXPECT_EQ(now.size(), crashed.size());
    EXPECT_TRUE(all_zero_from(now, expected.size()));
  }
  SharedLogRecovery rec;
  auto all = reopen_all(&rec);
  EXPECT_EQ(all[1], (Records{"a1", "a2"}));
  EXPECT_EQ(all[2], (Records{"b-snap"}));
  EXPECT_EQ(rec.torn_bytes, 0u);
}

TEST_F(SharedLogTest, ATornRecordFollowedByZerosIsCutAndReported) {
  preallocate_bytes_ = 4096;
  const std::string good =
      segment_header(1) + record_frame(kRecord, 1, "a1") + record_frame(kRecord, 2, "b1");
  const std::string last = record_frame(kRecord, 2, "b-last");
  std::vector<std::string> torn;
  for (size_t keep : {size_t{1}, size_t{12}, last.size() - 1}) {
    torn.push_back(good + last.substr(0, keep));  // a round torn inside its last record
    torn.back().resize(4096, '\0');               // and the rest of the chunk
  }
  std::string flipped = good + last;  // a whole record with a bit flipped
  flipped[flipped.size() - 2] ^= 0x40;
  flipped.resize(4096, '\0');
  torn.push_back(flipped);
  std::string stray = good;  // nothing but zeros, up to a byte at the very end
  stray.resize(4095, '\0');
  stray.push_back('x');
  torn.push_back(stray);
  for (size_t i = 0; i < torn.size(); ++i) {
    write_bytes(seg(1), torn[i]);
    SharedLogRecovery rec;
    {
      auto log = open(&rec);
      EXPECT_EQ(rec.torn_bytes, 4096 - good.size()) << i;
      if (i + 1 < torn.size()) {
        EXPECT_NE(rec.torn_detail.find("zeros"), std::string::npos) << rec.torn_detail;
      }
      EXPECT_EQ(read_bytes(seg(1)), good) << i << ": the cut drops the preallocation too";
      auto b = group(*log, 2);
      wait_durable(*b, b->append("b-after"));
      EXPECT_EQ(log->stats().preallocations, 1u) << i << ": allocated again";
      EXPECT_EQ(fs::file_size(seg(1)), good.size() + 4096) << i << ": a chunk past the records";
    }
    auto all = reopen_all(&rec);
    EXPECT_EQ(rec.torn_bytes, 0u) << i;
    EXPECT_EQ(all[1], (Records{"a1"})) << i;
    EXPECT_EQ(all[2], (Records{"b1", "b-after"})) << i;
  }
}

TEST_F(SharedLogTest, OnlyTheLastSegmentHasZerosAfterItsRecordsAndAllSurviveACrash) {
  segment_bytes_ = 2048;
  preallocate_bytes_ = 700;
  Records expected;
  std::map<std::string, std::string> crashed;  // every segment as a kill -9 leaves it
  {
    auto log = open();
    auto a = group(*log, 1);
    for (int i = 0; i < 40; ++i) {
      expected.push_back(std::to_string(i) + std::string(150, static_cast<char>('a' + i % 26)));
      wait_durable(*a, a->append(expected.back()));
    }
    const std::vector<std::string> files = segment_files();
    ASSERT_GE(files.size(), 3u);
    uint64_t on_disk = 0;
    for (const std::string& name : files) {
      const std::string bytes = read_bytes(dir_ / name);
      on_disk += bytes.size();
      if (name != files.back()) {
        EXPECT_EQ(records_end(bytes), bytes.size()) << name << ": closed, so cut to its records";
      } else {
        EXPECT_LT(records_end(bytes), bytes.size()) << name << ": allocated ahead";
        EXPECT_TRUE(all_zero_from(bytes, records_end(bytes))) << name;
      }
      crashed[name] = bytes;
    }
    const SharedLogStats s = log->stats();
    EXPECT_EQ(s.disk_bytes, on_disk);
    EXPECT_LT(s.preallocations, s.batches) << "a chunk holds several rounds";
    EXPECT_GE(s.preallocations, s.segments_created);
  }
  for (const std::string& name : segment_files()) {
    const std::string bytes = read_bytes(dir_ / name);
    EXPECT_EQ(records_end(bytes), bytes.size()) << name << ": closed cleanly, cut too";
  }
  EXPECT_EQ(reopen_all()[1], expected);
  for (const auto& [name, bytes] : crashed) write_bytes(dir_ / name, bytes);
  SharedLogRecovery rec;
  EXPECT_EQ(reopen_all(&rec)[1], expected);
  EXPECT_EQ(rec.torn_bytes, 0u);
}

TEST_F(SharedLogTest, ASegmentTornBetweenItsPreallocationAndItsHeaderRecovers) {
  const std::string first = segment_header(1) + record_frame(kRecord, 1, "a1");
  const std::string zeros(4096, '\0');
  struct Case {
    const char* what;
    std::string second;
    uint64_t torn_bytes;
  };
  const std::vector<Case> cases = {
      {"allocated, header never written", zeros, 24},
      {"part of the header", segment_header(2).substr(0, 10) + zeros, 24},
      {"a garbled header", "SKVX" + segment_header(2).substr(4) + zeros, 24},
      {"the whole header: a clean empty segment", segment_header(2) + zeros, 0},
  };
  for (const Case& c : cases) {
    write_bytes(seg(1), first);
    write_bytes(seg(2), c.second);
    SharedLogRecovery rec;
    auto all = reopen_all(&rec);
    EXPECT_EQ(all[1], (Records{"a1"})) << c.what;
    EXPECT_EQ(rec.torn_bytes, c.torn_bytes) << c.what << ": " << rec.torn_detail;
    EXPECT_EQ(read_bytes(seg(2)), segment_header(2)) << c.what;
    EXPECT_EQ(read_bytes(seg(1)), first) << c.what;
  }

  // A garbled header followed by anything but zeros had a durable header once.
  std::string records_after = zeros;
  records_after.replace(24, 0, record_frame(kRecord, 1, "a2"));
  write_bytes(seg(2), records_after);
  Status s = open_status();
  EXPECT_TRUE(s.is_corruption()) << s.to_string();
  EXPECT_EQ(read_bytes(seg(2)), records_after);

  // Zeros after the records of a segment that is not the last: never left so.
  write_bytes(seg(1), first + zeros);
  write_bytes(seg(2), segment_header(2));
  s = open_status();
  EXPECT_TRUE(s.is_corruption()) << s.to_string();
  EXPECT_NE(s.to_string().find(seg_name(1)), std::string::npos) << s.to_string();
  EXPECT_NE(s.to_string().find("zero bytes"), std::string::npos) << s.to_string();
  EXPECT_EQ(read_bytes(seg(1)), first + zeros);
}

// Makes fallocate() fail with EOPNOTSUPP, as on a filesystem without it, for the
// calling thread and the threads it starts from now on (a seccomp filter; it ends
// with the thread). False where that cannot be done.
bool deny_fallocate_on_this_thread() {
#if defined(__x86_64__) || defined(__aarch64__)
#if defined(__x86_64__)
  constexpr uint32_t kArch = AUDIT_ARCH_X86_64;
#else
  constexpr uint32_t kArch = AUDIT_ARCH_AARCH64;
#endif
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_fallocate, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EOPNOTSUPP & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
#else
  return false;
#endif
}

TEST_F(SharedLogTest, WithoutFallocateRoundsAreAppended) {
  segment_bytes_ = 512;
  Records expected;
  bool denied = false;
  std::thread([&] {
    denied = deny_fallocate_on_this_thread();
    if (!denied) return;
    int probe = ::open(dir_.c_str(), O_TMPFILE | O_WRONLY, 0600);
    ASSERT_GE(probe, 0);
    EXPECT_NE(::fallocate(probe, 0, 0, 4096), 0);
    EXPECT_EQ(errno, EOPNOTSUPP);
    ::close(probe);
    auto log = open();
    auto a = group(*log, 1);
    for (int i = 0; i < 10; ++i) {
      expected.push_back(std::to_string(i) + std::string(100, 'a'));
      wait_durable(*a, a->append(expected.back()));
    }
    EXPECT_TRUE(log->status().ok()) << log->status().to_string();
    EXPECT_EQ(log->stats().preallocations, 0u);
    EXPECT_GE(log->stats().segments_created, 3u) << "new segments too";
    uint64_t on_disk = 0;
    for (const std::string& name : segment_files()) {
      const std::string bytes = read_bytes(dir_ / name);
      on_disk += bytes.size();
      EXPECT_EQ(records_end(bytes), bytes.size()) << name << ": appended, nothing ahead";
    }
    EXPECT_EQ(log->stats().disk_bytes, on_disk);
  }).join();
  if (!denied) GTEST_SKIP() << "cannot install a seccomp filter here";
  EXPECT_EQ(reopen_all()[1], expected);
}

TEST_F(SharedLogTest, APreallocationThatDoesNotFitShrinksToTheRoundOrStopsTheLog) {
  preallocate_bytes_ = 4096;
  {
    auto log = open();
    auto a = group(*log, 1);
    a->append("a");
  }
  const uint64_t size = fs::file_size(seg(1));
  ASSERT_EQ(size, 24u + 21 + 1) << "closed cleanly: no preallocation left";
  std::atomic<uint64_t> durable{0};
  {
    FileSizeLimit limit(size + 100);
    ASSERT_TRUE(limit.ok());
    auto log = open();
    auto a = group(*log, 1, nullptr, [&](uint64_t seq) { durable.store(seq); });
    wait_durable(*a, a->append("small"));
    EXPECT_EQ(fs::file_size(seg(1)), size + 21 + 5) << "no room for a chunk: what the round needs";
    EXPECT_EQ(log->stats().preallocations, 1u);
    a->append(std::string(5000, 'x'));
    while (log->status().ok()) std::this_thread::yield();
    EXPECT_NE(log->status().to_string().find("fallocate"), std::string::npos)
        << log->status().to_string();
    EXPECT_EQ(fs::file_size(seg(1)), size + 21 + 5) << "nothing written past the failure";
  }
  EXPECT_EQ(durable.load(), 1u);
  SharedLogRecovery rec;
  auto all = reopen_all(&rec);
  EXPECT_EQ(all[1], (Records{"a", "small"}));
  EXPECT_EQ(rec.torn_bytes, 0u);
}

TEST_F(SharedLogTest, OnlyOneLogPerDirectoryAndForeignFilesAreIgnored) {
  auto first = open();
  Status s = open_status();
  EXPECT_EQ(s.code(), Status::Code::kBusy) << s.to_string();
  write_bytes(dir_ / "notes.txt", "hello");
  first.reset();
  auto again = open();
  EXPECT_NE(again, nullptr);
}

TEST_F(SharedLogTest, WithoutFsyncRecordsAreStillWrittenAndRecovered) {
  {
    auto log = open(nullptr, /*fsync=*/false);
    auto a = group(*log, 1);
    a->append("a");
    a.reset();
    EXPECT_EQ(log->stats().data_syncs, 0u);
  }
  EXPECT_EQ(reopen_all()[1], (Records{"a"}));
}

TEST_F(SharedLogTest, PerGroupDiskLogsOfTheOldLayoutAreMovedIn) {
  const fs::path groups = dir_ / "groups";
  {
    Recovery rec;
    auto a = DiskLog::open(DiskLogOptions{groups / "11"}, {}, &rec);
    ASSERT_TRUE(a.ok());
    (*a)->append("stale");
    (*a)->append_checkpoint("a-snap");
    (*a)->append("a1");
    auto b = DiskLog::open(DiskLogOptions{groups / "12"}, {}, &rec);
    ASSERT_TRUE(b.ok());
    (*b)->append("b1");
  }
  fs::create_directories(groups / "not-a-group");
  const fs::path wal = dir_ / "wal";
  {
    auto log = SharedLog::open(SharedLogOptions{wal});
    ASSERT_TRUE(log.ok());
    {
      // A migration cut short by a crash left part of group 11 in the shared log.
      Records none;
      auto partial = (*log)->open_group(11, {}, &none);
      ASSERT_TRUE(partial.ok());
      (*partial)->append("a-snap");
    }
    auto moved = migrate_group_logs(**log, groups, true);
    ASSERT_TRUE(moved.ok()) << moved.status().to_string();
    EXPECT_EQ(*moved, 2u);
    EXPECT_FALSE(fs::exists(groups / "11"));
    EXPECT_FALSE(fs::exists(groups / "12"));
    EXPECT_TRUE(fs::exists(groups / "not-a-group")) << "only group directories are touched";
    auto again = migrate_group_logs(**log, groups, true);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, 0u);
  }
  auto log = SharedLog::open(SharedLogOptions{wal});
  ASSERT_TRUE(log.ok());
  Records a, b;
  auto ga = (*log)->open_group(11, {}, &a);
  auto gb = (*log)->open_group(12, {}, &b);
  EXPECT_EQ(a, (Records{"a-snap", "a1"}));
  EXPECT_EQ(b, (Records{"b1"}));
}

// The metadata group's log of older data directories (<data>/raft, one DiskLog) moves
// in as one group, next to groups already in the log; a move cut short is redone whole.
TEST_F(SharedLogTest, ADiskLogDirectoryIsMovedInAsOneGroup) {
  const fs::path old_dir = dir_ / "raft";
  {
    Recovery rec;
    auto old = DiskLog::open(DiskLogOptions{old_dir}, {}, &rec);
    ASSERT_TRUE(old.ok());
    (*old)->append("stale");
    (*old)->append_checkpoint("m-snap");
    (*old)->append("m1");
    (*old)->append("m2");
  }
  const fs::path wal = dir_ / "wal";
  {
    auto log = SharedLog::open(SharedLogOptions{wal});
    ASSERT_TRUE(log.ok());
    {
      Records none;
      auto data = (*log)->open_group(7, {}, &none);
      ASSERT_TRUE(data.ok());
      (*data)->append("d1");
      // A move cut short by a crash left part of group 0 in the shared log.
      auto partial = (*log)->open_group(0, {}, &none);
      ASSERT_TRUE(partial.ok());
      (*partial)->append("m-snap");
    }
    auto moved = migrate_disk_log(**log, 0, old_dir, true);
    ASSERT_TRUE(moved.ok()) << moved.status().to_string();
    EXPECT_TRUE(*moved);
    EXPECT_FALSE(fs::exists(old_dir));
    auto again = migrate_disk_log(**log, 0, old_dir, true);
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(*again) << "nothing left to move";
    EXPECT_FALSE(fs::exists(old_dir)) << "a missing directory is not created";
  }
  auto log = SharedLog::open(SharedLogOptions{wal});
  ASSERT_TRUE(log.ok());
  Records meta, data;
  auto gm = (*log)->open_group(0, {}, &meta);
  auto gd = (*log)->open_group(7, {}, &data);
  EXPECT_EQ(meta, (Records{"m-snap", "m1", "m2"}));
  EXPECT_EQ(data, (Records{"d1"})) << "other groups are untouched";
}

// A DiskLog that does not recover (damage before its last segment) is not moved, and
// its directory is left as it was for the operator to look at.
TEST_F(SharedLogTest, ADamagedDiskLogIsNotMovedAndStaysInPlace) {
  const fs::path old_dir = dir_ / "raft";
  fs::create_directories(old_dir);
  // A segment that is not a DiskLog segment at all, followed by a later one.
  write_bytes(old_dir / "log-0000000001.skv", "garbage that is no segment header");
  write_bytes(old_dir / "log-0000000002.skv", "");
  auto log = SharedLog::open(SharedLogOptions{dir_ / "wal"});
  ASSERT_TRUE(log.ok());
  auto moved = migrate_disk_log(**log, 0, old_dir, true);
  EXPECT_FALSE(moved.ok());
  EXPECT_TRUE(fs::exists(old_dir / "log-0000000001.skv"));
  EXPECT_TRUE((*log)->groups().empty());
}

}  // namespace
}  // namespace statekv::net
