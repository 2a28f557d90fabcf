// Concurrency (several threads calling execute like the I/O threads do) and
// durability of the keyspace over RocksDB across a restart.
#include <atomic>
#include <thread>

#include "server/service_test_util.h"

namespace statekv::server {
namespace {

using testing::Harness;

TEST(Concurrency, ParallelIncrSumsExactly) {
  Harness h;
  constexpr int kThreads = 4;
  constexpr int kIncrs = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      auto session = h.new_session();
      for (int i = 0; i < kIncrs; ++i) h.raw(*session, {"INCR", "counter"});
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_BULK(h.run({"GET", "counter"}), std::to_string(kThreads * kIncrs));
}

TEST(Concurrency, MsetIsAtomicForMget) {
  Harness h;
  h.run({"MSET", "x", "0", "y", "0", "z", "0"});
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0};
  std::thread writer([&] {
    auto s = h.new_session();
    for (int i = 1; i <= 3000; ++i) {
      std::string v = std::to_string(i);
      h.raw(*s, {"MSET", "x", v, "y", v, "z", v});
    }
    stop = true;
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      auto s = h.new_session();
      while (!stop) {
        auto v = h.run(*s, {"MGET", "x", "y", "z"});
        if (v.elements.size() != 3 || v.elements[0].str != v.elements[1].str ||
            v.elements[1].str != v.elements[2].str) {
          ++torn;
        }
      }
    });
  }
  writer.join();
  for (auto& r : readers) r.join();
  EXPECT_EQ(torn.load(), 0);
}

TEST(Concurrency, CountersStayExactUnderMixedWriters) {
  Harness h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto s = h.new_session();
      for (int i = 0; i < 500; ++i) {
        std::string k = "k" + std::to_string(i % 50);
        switch ((i + t) % 4) {
          case 0:
            h.raw(*s, {"SET", k, "v", "EX", "100"});
            break;
          case 1:
            h.raw(*s, {"DEL", k});
            break;
          case 2:
            h.raw(*s, {"SET", k, "v"});
            break;
          case 3:
            h.raw(*s, {"RENAME", k, "k" + std::to_string((i + 1) % 50)});
            break;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  auto keys = h.run({"KEYS", "*"});
  EXPECT_INT(h.run({"DBSIZE"}), keys.elements.size());
  int64_t with_ttl = 0;
  for (const auto& k : keys.elements) with_ttl += h.run({"TTL", k.str}).integer > 0;
  auto info = h.run({"INFO", "keyspace"});
  if (!keys.elements.empty()) {
    EXPECT_NE(info.str.find("expires=" + std::to_string(with_ttl) + ","), std::string::npos)
        << info.str;
  }
}

TEST(RocksDb, KeysAndTtlsSurviveRestart) {
  testing::TempDir dir;
  auto open = [&] {
    storage::RocksDbEngineOptions options;
    options.path = dir.path();
    options.fsync = storage::FsyncPolicy::kAlways;
    auto engine = storage::open_rocksdb_engine(options);
    EXPECT_TRUE(engine.ok()) << engine.status().to_string();
    return std::move(engine).value();
  };
  int64_t expire_at = 0;
  {
    Harness h(open());
    EXPECT_OK(h.run({"SET", "a", "1"}));
    EXPECT_OK(h.run({"SET", "b", "2", "EX", "1000"}));
    EXPECT_OK(h.run({"SET", "gone", "x", "PX", "20"}));
    EXPECT_INT(h.run({"INCRBY", "n", "41"}), 41);
    expire_at = h.run({"PEXPIRETIME", "b"}).integer;
    storage::Sequence seq = 0;
    h.run({"INCR", "n"}, &seq);
    EXPECT_LE(seq, h.engine().durable_sequence());
    h.stop();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  Harness h(open());
  // Counted once at start from the engine's contents.
  EXPECT_INT(h.run({"DBSIZE"}), 4);
  EXPECT_BULK(h.run({"GET", "a"}), "1");
  EXPECT_BULK(h.run({"GET", "n"}), "42");
  EXPECT_INT(h.run({"PEXPIRETIME", "b"}), expire_at);  // absolute: unchanged by the restart
  EXPECT_NIL(h.run({"GET", "gone"}));                  // expired while the node was down
  EXPECT_INT(h.run({"DBSIZE"}), 3);
  auto info = h.run({"INFO", "keyspace"});
  EXPECT_NE(info.str.find("db0:keys=3,expires=1,"), std::string::npos) << info.str;
  auto persistence = h.run({"INFO", "persistence"});
  EXPECT_NE(persistence.str.find("engine:rocksdb"), std::string::npos) << persistence.str;
}

}  // namespace
}  // namespace statekv::server
