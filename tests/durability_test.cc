// Durability of acknowledged writes: statekv on RocksDB with --fsync always and
// --fsync batch (group commit) is killed with SIGKILL while clients are still
// writing, restarted on the same data directory, and must hold every write it
// acknowledged, with TTLs intact (> 0 and <= the value set). A clean SIGTERM
// restart must keep everything. The *Soak variants repeat crash cycles with
// more data (CTest label "soak").
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/redis_client.h"
#include "support/server_process.h"
#include "support/small_disk.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;

struct Ack {
  std::string key;
  std::string value;
  bool with_ttl = false;
};

// Clients that write unique keys as fast as the server acknowledges them, with
// a pipeline depth of 8 so that group commit has company, recording every
// acknowledged write. They stop at the first I/O error (the server died).
class Writers {
 public:
  Writers(uint16_t port, int clients, const std::string& prefix) {
    for (int c = 0; c < clients; ++c) {
      threads_.emplace_back(
          [this, port, c, prefix] { write_loop(port, prefix + std::to_string(c)); });
    }
  }
  ~Writers() { join(); }

  void join() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  size_t acked() const { return acked_count_.load(); }
  std::vector<Ack> acks() {
    std::lock_guard lock(mu_);
    return acks_;
  }
  std::string first_error() {
    std::lock_guard lock(mu_);
    return error_;
  }

 private:
  void write_loop(uint16_t port, const std::string& client) {
    Result<RedisClient> c = RedisClient::connect(port);
    if (!c.ok()) return record_error(c.status().to_string());
    constexpr int kDepth = 8;
    for (long i = 0; !stop_; i += kDepth) {
      std::vector<Ack> batch;
      for (int j = 0; j < kDepth; ++j) {
        const long n = i + j;
        Ack a{client + ":k" + std::to_string(n), "v" + std::to_string(n) + "-" + client,
              n % 5 == 0};
        if (a.with_ttl) {
          c->append({"SET", a.key, a.value, "EX", "1000"});
        } else {
          c->append({"SET", a.key, a.value});
        }
        batch.push_back(std::move(a));
      }
      for (auto& a : batch) {
        Result<std::string> r = c->read_reply();
        if (!r.ok()) return;  // the server is gone: this write was not acknowledged
        if (*r != "+OK") return record_error("SET " + a.key + " -> " + *r);
        std::lock_guard lock(mu_);
        acks_.push_back(std::move(a));
        acked_count_.fetch_add(1);
      }
    }
  }
  void record_error(const std::string& e) {
    std::lock_guard lock(mu_);
    if (error_.empty()) error_ = e;
  }

  std::atomic<bool> stop_{false};
  std::atomic<size_t> acked_count_{0};
  std::mutex mu_;
  std::vector<Ack> acks_;
  std::string error_;
  std::vector<std::thread> threads_;
};

// Every acknowledged write is readable with its value; TTLs are in (0, 1000].
void verify(ServerProcess& server, const std::vector<Ack>& acks) {
  Result<RedisClient> c = RedisClient::connect(server.port());
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  size_t missing = 0;
  for (size_t i = 0; i < acks.size(); i += 100) {
    const size_t end = std::min(acks.size(), i + 100);
    for (size_t j = i; j < end; ++j) {
      c->append({"GET", acks[j].key});
      c->append({"TTL", acks[j].key});
    }
    for (size_t j = i; j < end; ++j) {
      Result<std::string> got = c->read_reply();
      Result<std::string> ttl = c->read_reply();
      ASSERT_TRUE(got.ok() && ttl.ok()) << got.status().to_string();
      if (*got != "\"" + acks[j].value + "\"") {
        if (++missing <= 5) {
          ADD_FAILURE() << "acknowledged write lost: " << acks[j].key << " = " << acks[j].value
                        << ", after restart: " << *got;
        }
        continue;
      }
      if (acks[j].with_ttl) {
        const long long t = std::stoll(ttl->substr(1));
        EXPECT_TRUE(t > 0 && t <= 1000) << acks[j].key << " TTL after restart: " << *ttl;
      } else {
        EXPECT_EQ(*ttl, ":-1") << acks[j].key;
      }
    }
  }
  EXPECT_EQ(missing, 0u) << "of " << acks.size() << " acknowledged writes";
}

void crash_cycles(const std::string& fsync, int cycles, size_t writes_per_cycle) {
  ServerProcess server(subject_options("rocksdb", fsync));
  ASSERT_TRUE(server.start().ok());
  std::vector<Ack> all;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    {
      Writers writers(server.port(), 4, "c" + std::to_string(cycle) + "-");
      const auto deadline = std::chrono::steady_clock::now() + 60s;
      while (writers.acked() < writes_per_cycle && std::chrono::steady_clock::now() < deadline &&
             writers.first_error().empty()) {
        std::this_thread::sleep_for(1ms);
      }
      // Crash while the clients are still writing: the last acknowledgements
      // happened just before this instant.
      server.kill();
      writers.join();
      ASSERT_EQ(writers.first_error(), "");
      ASSERT_GE(writers.acked(), writes_per_cycle) << "too slow: deadline passed";
      std::vector<Ack> acks = writers.acks();
      all.insert(all.end(), acks.begin(), acks.end());
    }
    Status st = server.start();
    ASSERT_TRUE(st.ok()) << "restart after SIGKILL: " << st.to_string();
    verify(server, all);
  }
}

class DurabilityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DurabilityTest, AcknowledgedWritesSurviveSigkill) {
  crash_cycles(GetParam(), 1, 2000);
}

TEST_P(DurabilityTest, CleanSigtermRestartKeepsEverything) {
  ServerProcess server(subject_options("rocksdb", GetParam()));
  ASSERT_TRUE(server.start().ok());
  std::vector<Ack> acks;
  {
    Writers writers(server.port(), 2, "t");
    while (writers.acked() < 1000 && writers.first_error().empty())
      std::this_thread::sleep_for(1ms);
    writers.join();
    ASSERT_EQ(writers.first_error(), "");
    acks = writers.acks();
  }
  Status st = server.stop();
  EXPECT_TRUE(st.ok()) << "SIGTERM must be a clean shutdown: " << st.to_string();
  ASSERT_TRUE(server.start().ok());
  verify(server, acks);
  Result<RedisClient> c = RedisClient::connect(server.port());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->cmd({"DBSIZE"}), ":" + std::to_string(acks.size()));
}

TEST_P(DurabilityTest, SoakRepeatedCrashCycles) {
  crash_cycles(GetParam(), 10, 20000);
}

// A full disk under `--fsync batch`: the store's WAL sync fails. The replies
// held for that sync are dropped with their connections (the client learns
// nothing it could wrongly believe: not +OK, not an error for a write that may
// be on disk), later writes are refused with the engine's error, reads go on,
// and the server keeps running; every write acknowledged before reads back.
// Before, the held replies waited forever, and RocksDB's own log file on the
// same disk aborted the server at its next line.
// Under both policies that sync: batch (a reply waits for its own write) and
// always (every reply waits for every write it could reflect, until the
// syncs fail: then a PING, a read or a refused write must still be answered).
class DiskFull : public ::testing::TestWithParam<const char*> {};

TEST_P(DiskFull, HeldRepliesAreDroppedWritesRefusedUntilThereIsRoomAgain) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv's store";
  ServerProcess server(subject_options("rocksdb", GetParam()));
  SmallDisk disk;  // destroyed first: unmounted lazily while the server runs
  if (auto why = disk.mount(server.data_dir(), 24)) GTEST_SKIP() << *why;
  ASSERT_TRUE(server.start().ok()) << server.log_tail();

  // One client writes random 16 KB values (incompressible) until a write is
  // not acknowledged; every acknowledged one is recorded.
  Result<RedisClient> c = RedisClient::connect(server.port());
  ASSERT_TRUE(c.ok());
  std::mt19937_64 rng(11);
  std::vector<std::pair<std::string, std::string>> acked;
  std::string last_reply;
  std::pair<std::string, std::string> in_flight;  // unknown: either value may read back
  for (int i = 0; i < 5000; ++i) {
    std::string value(16 * 1024, ' ');
    for (char& ch : value) ch = static_cast<char>('!' + rng() % 90);
    const std::string key = "k" + std::to_string(i % 1000);
    Result<std::string> r = c->command({"SET", key, value});
    if (!r.ok()) {
      last_reply = r.status().to_string();
      in_flight = {key, value};
      break;
    }
    if (*r != "+OK") {
      last_reply = *r;
      break;
    }
    std::erase_if(acked, [&](const auto& kv) { return kv.first == key; });
    acked.emplace_back(key, std::move(value));
  }
  ASSERT_FALSE(last_reply.empty()) << "the disk never filled";
  std::printf("%zu keys acknowledged, then: %s\n", acked.size(), last_reply.substr(0, 160).c_str());
  // The write in flight when the sync failed: its connection closed (a
  // refused write would say ERR: that happens only to writes after).
  EXPECT_TRUE(last_reply.find("No space left on device") != std::string::npos ||
              last_reply.find("closed") != std::string::npos ||
              last_reply.find("Unavailable") != std::string::npos)
      << last_reply;

  Result<RedisClient> d = RedisClient::connect(server.port());
  ASSERT_TRUE(d.ok()) << "the server stopped: " << server.log_tail();
  auto pong = d->command({"PING"});
  ASSERT_TRUE(pong.ok()) << pong.status().to_string();
  EXPECT_EQ(*pong, "+PONG");
  auto refused = d->command({"SET", "after", "1"});
  ASSERT_TRUE(refused.ok()) << refused.status().to_string();
  EXPECT_NE(refused->find("No space left on device"), std::string::npos) << *refused;
  size_t wrong = 0;
  for (const auto& [key, value] : acked) {
    auto got = d->bulk({"GET", key});
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    // (Under batch a write is readable before its sync: the one in flight may
    // read back though it was never acknowledged.)
    const bool its_in_flight_write = key == in_flight.first && *got == in_flight.second;
    if (*got != value && !its_in_flight_write && ++wrong <= 3) ADD_FAILURE() << key << " lost";
  }
  EXPECT_EQ(wrong, 0u) << "of " << acked.size();
  EXPECT_TRUE(server.running());
  EXPECT_NE(server.log_tail(20000).find("could not be synced"), std::string::npos)
      << server.log_tail();

  // Room again: a write resumes the store (at most one attempt a second), no
  // restart, and what it acknowledges from then on survives a restart.
  ASSERT_TRUE(disk.grow(256));
  const auto grown = std::chrono::steady_clock::now();
  std::string reply;
  // RocksDB's own recovery from a full disk looks every 5 s (below).
  while (std::chrono::steady_clock::now() - grown < std::chrono::seconds(20)) {
    auto r = d->command({"SET", "after", "1"});
    ASSERT_TRUE(r.ok()) << r.status().to_string() << "\n" << server.log_tail();
    reply = *r;
    if (reply == "+OK") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(reply, "+OK") << "writes still refused 20 s after the disk had room:\n"
                          << server.log_tail();
  const auto resumed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - grown)
                              .count();
  std::printf("writes accepted again %lld ms after the disk had room\n",
              static_cast<long long>(resumed_ms));
  EXPECT_NE(server.log_tail(20000).find("the store resumed"), std::string::npos)
      << server.log_tail();
  acked.emplace_back("after", "1");
  for (int i = 0; i < 50; ++i) {  // 800 KB more than the disk had room for before
    std::string value(16 * 1024, ' ');
    for (char& ch : value) ch = static_cast<char>('!' + rng() % 90);
    const std::string key = "resumed" + std::to_string(i);
    auto r = d->command({"SET", key, value});
    ASSERT_TRUE(r.ok() && *r == "+OK") << (r.ok() ? *r : r.status().to_string());
    acked.emplace_back(key, std::move(value));
  }
  ASSERT_TRUE(server.stop().ok()) << server.log_tail();
  ASSERT_TRUE(server.start().ok()) << server.log_tail();
  Result<RedisClient> e = RedisClient::connect(server.port());
  ASSERT_TRUE(e.ok());
  wrong = 0;
  for (const auto& [key, value] : acked) {
    auto got = e->bulk({"GET", key});
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    const bool its_in_flight_write = key == in_flight.first && *got == in_flight.second;
    if (*got != value && !its_in_flight_write && ++wrong <= 3) {
      ADD_FAILURE() << key << " lost across the restart";
    }
  }
  EXPECT_EQ(wrong, 0u) << "of " << acked.size();
}

INSTANTIATE_TEST_SUITE_P(Fsync, DurabilityTest, ::testing::Values("always", "batch"),
                         [](const auto& info) { return info.param; });
INSTANTIATE_TEST_SUITE_P(Fsync, DiskFull, ::testing::Values("always", "batch"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace statekv::itest
