// RocksDB-only properties: data survives a reopen and a SIGKILL loses no write
// that was acknowledged under a durable fsync policy.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "storage/engine.h"
#include "storage/engine_test_util.h"

namespace statekv::storage {
namespace {

using testing_util::open_rocksdb_or_fail;
using testing_util::TempDir;

std::string crash_key(uint32_t i) {
  return "ack:" + std::to_string(i);
}
std::string crash_value(uint32_t i) {
  return "value-" + std::to_string(i) + std::string(40, '.');
}

TEST(RocksDbEngine, ReopenKeepsDataAndSequencesKeepGrowing) {
  TempDir dir;
  Sequence last;
  {
    auto e = open_rocksdb_or_fail(dir.path(), FsyncPolicy::kBatch);
    ASSERT_NE(e, nullptr);
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(e->put("k" + std::to_string(i), "v").ok());
    ASSERT_TRUE(e->del("k5").ok());
    last = e->last_sequence();
  }
  auto e = open_rocksdb_or_fail(dir.path(), FsyncPolicy::kBatch);
  ASSERT_NE(e, nullptr);
  std::string v;
  EXPECT_TRUE(e->get("k99", &v).ok());
  EXPECT_TRUE(e->get("k5", &v).is_not_found());
  EXPECT_EQ(e->durable_sequence(), last);  // recovered data is durable
  auto r = e->put("after", "1");
  ASSERT_TRUE(r.ok());
  EXPECT_GT(*r, last);
}

// A view reads the engine as it was when taken, whatever is written, erased or
// cleared after; the memory engine has none.
TEST(RocksDbEngine, AViewReadsTheEngineAsItWasWhenTaken) {
  TempDir dir;
  auto e = open_rocksdb_or_fail(dir.path(), FsyncPolicy::kBatch);
  ASSERT_NE(e, nullptr);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(e->put("k" + std::to_string(i), "old").ok());
  auto view = e->view();
  ASSERT_TRUE(view.ok()) << view.status().to_string();
  ASSERT_TRUE(e->put("k3", "new").ok());
  ASSERT_TRUE(e->del("k4").ok());
  ASSERT_TRUE(e->put("k45", "added").ok());
  auto read = [](EngineView& v, std::string_view from, std::string_view to, size_t limit) {
    std::string out;
    EXPECT_TRUE(v.scan(from, to, limit, [&](std::string_view k, std::string_view val) {
                   out += std::string(k) + "=" + std::string(val) + " ";
                   return true;
                 }).ok());
    return out;
  };
  EXPECT_EQ(read(**view, "k3", "k6", 0), "k3=old k4=old k5=old ");
  EXPECT_EQ(read(**view, "k3", "", 2), "k3=old k4=old ");
  ASSERT_TRUE(e->clear().ok());
  EXPECT_EQ(read(**view, "k8", "", 0), "k8=old k9=old ");
  auto later = e->view();
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(read(**later, "", "", 0), "");
  EXPECT_TRUE(open_memory_engine()->view().status().is_invalid_argument());
}

TEST(RocksDbEngine, OpenFailsCleanlyOnABadPath) {
  RocksDbEngineOptions options;
  options.path = "/proc/statekv-cannot-create-this";
  auto r = open_rocksdb_engine(options);
  EXPECT_FALSE(r.ok());
}

// The child writes keys 0, 1, 2, ... and reports each one it may acknowledge on the
// pipe: under kAlways when put() returns, under kBatch from its when_durable
// callback. It never stops on its own; the parent SIGKILLs it mid-stream.
[[noreturn]] void crash_child(const std::string& path, FsyncPolicy policy, int ack_fd) {
  RocksDbEngineOptions options;
  options.path = path;
  options.fsync = policy;
  options.block_cache_bytes = 8u << 20;
  auto r = open_rocksdb_engine(options);
  if (!r.ok()) _exit(3);
  Engine& e = **r;
  for (uint32_t i = 0;; ++i) {
    auto seq = e.put(crash_key(i), crash_value(i));
    if (!seq.ok()) _exit(4);
    auto ack = [ack_fd, i] {
      if (write(ack_fd, &i, sizeof(i)) != sizeof(i)) _exit(5);
    };
    if (policy == FsyncPolicy::kAlways) {
      ack();
    } else {
      e.when_durable(*seq, ack);
    }
  }
}

void crash_and_verify(FsyncPolicy policy, uint32_t acks_before_kill) {
  TempDir dir;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    crash_child(dir.path(), policy, fds[1]);
  }
  close(fds[1]);
  std::vector<uint32_t> acked;
  uint32_t i;
  bool killed = false;
  while (read(fds[0], &i, sizeof(i)) == sizeof(i)) {
    acked.push_back(i);
    if (!killed && acked.size() >= acks_before_kill) {
      ASSERT_EQ(kill(child, SIGKILL), 0);
      killed = true;
    }
  }
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
      << "child ended on its own, status " << status;
  ASSERT_GE(acked.size(), acks_before_kill);

  auto e = open_rocksdb_or_fail(dir.path(), policy);
  ASSERT_NE(e, nullptr);
  size_t missing = 0;
  for (uint32_t k : acked) {
    std::string v;
    Status s = e->get(crash_key(k), &v);
    if (!s.ok() || v != crash_value(k)) ++missing;
  }
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged writes";
}

TEST(RocksDbEngine, UnloggedBatchesCostNoFsyncAndAreReadAtOnce) {
  for (FsyncPolicy policy : {FsyncPolicy::kBatch, FsyncPolicy::kAlways}) {
    TempDir dir;
    auto e = open_rocksdb_or_fail(dir.path(), policy);
    ASSERT_NE(e, nullptr);
    const uint64_t fsyncs = e->stats().fsyncs;
    for (int i = 0; i < 200; ++i) {
      WriteBatch b;
      b.set_unlogged(true);
      b.put("u" + std::to_string(i), "v");
      b.del("u" + std::to_string(i - 1));
      ASSERT_TRUE(e->write(b).ok());
    }
    std::string v;
    EXPECT_TRUE(e->get("u199", &v).ok());
    EXPECT_TRUE(e->get("u198", &v).is_not_found());
    EXPECT_EQ(e->stats().fsyncs, fsyncs) << "an unlogged batch was synced";
    // A logged write afterwards is synced as usual (kBatch: by the sync thread).
    auto seq = e->put("logged", "1");
    ASSERT_TRUE(seq.ok());
    if (policy == FsyncPolicy::kBatch) {
      for (int i = 0; i < 500 && e->durable_sequence() < *seq; ++i) usleep(2000);
    }
    EXPECT_GE(e->durable_sequence(), *seq);
    EXPECT_GT(e->stats().fsyncs, fsyncs);
  }
}

TEST(RocksDbEngine, UnloggedBatchesSurviveACleanClose) {
  TempDir dir;
  {
    auto e = open_rocksdb_or_fail(dir.path(), FsyncPolicy::kBatch);
    ASSERT_NE(e, nullptr);
    WriteBatch b;
    b.set_unlogged(true);
    b.put("u", "kept");
    ASSERT_TRUE(e->write(b).ok());
  }
  auto e = open_rocksdb_or_fail(dir.path(), FsyncPolicy::kBatch);
  ASSERT_NE(e, nullptr);
  std::string v;
  ASSERT_TRUE(e->get("u", &v).ok());
  EXPECT_EQ(v, "kept");
}

// persist_all is what a replica group compacts its log behind: unlogged writes
// made before it survive a SIGKILL; those after it do not (the log replays them).
// The writer is this test binary run again (a forked child would have no
// RocksDB background threads to flush with): the disabled test below.
TEST(RocksDbEngine, PersistAllMakesUnloggedWritesSurviveASigkill) {
  TempDir dir;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    setenv("STATEKV_PERSIST_ALL_DIR", dir.path().c_str(), 1);
    execl("/proc/self/exe", "storage_test", "--gtest_also_run_disabled_tests",
          "--gtest_filter=RocksDbEngine.DISABLED_PersistAllWriter", static_cast<char*>(nullptr));
    _exit(7);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;
  auto e = open_rocksdb_or_fail(dir.path(), FsyncPolicy::kBatch);
  ASSERT_NE(e, nullptr);
  std::string v;
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(e->get("before" + std::to_string(i), &v).ok()) << i;
  EXPECT_TRUE(e->get("after", &v).is_not_found()) << "an unlogged write survived a SIGKILL "
                                                     "without persist_all: the test proves nothing";
  EXPECT_TRUE(e->survives_restart());
}

// Run only by the test above, in a process of its own: writes unlogged
// batches, persists them, writes one more, and dies by SIGKILL.
TEST(RocksDbEngine, DISABLED_PersistAllWriter) {
  const char* path = getenv("STATEKV_PERSIST_ALL_DIR");
  ASSERT_NE(path, nullptr);
  auto r = open_rocksdb_engine(RocksDbEngineOptions{.path = path});
  ASSERT_TRUE(r.ok());
  Engine& e = **r;
  auto unlogged_put = [&](const std::string& key) {
    WriteBatch b;
    b.set_unlogged(true);
    b.put(key, "v");
    ASSERT_TRUE(e.write(b).ok());
  };
  for (int i = 0; i < 100; ++i) unlogged_put("before" + std::to_string(i));
  ASSERT_TRUE(e.persist_all().ok());
  unlogged_put("after");
  kill(getpid(), SIGKILL);
}

TEST(RocksDbEngine, SigkillLosesNoAcknowledgedWriteUnderAlways) {
  crash_and_verify(FsyncPolicy::kAlways, 300);
}

TEST(RocksDbEngine, SigkillLosesNoAcknowledgedWriteUnderBatch) {
  crash_and_verify(FsyncPolicy::kBatch, 3000);
}

}  // namespace
}  // namespace statekv::storage
