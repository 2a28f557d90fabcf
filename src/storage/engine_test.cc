// The Engine contract (engine.h), run against every engine and fsync policy.
#include "storage/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/random.h"
#include "storage/engine_test_util.h"

namespace statekv::storage {
namespace {

using namespace std::chrono_literals;
using testing_util::TempDir;

std::string get_or(Engine& e, std::string_view key, std::string_view absent = "<absent>") {
  std::string v;
  Status s = e.get(key, &v);
  if (s.is_not_found()) return std::string(absent);
  EXPECT_TRUE(s.ok()) << s.to_string();
  return v;
}

std::vector<std::pair<std::string, std::string>> scan_all(Engine& e, std::string_view start,
                                                          std::string_view end, size_t limit = 0) {
  std::vector<std::pair<std::string, std::string>> out;
  Status s = e.scan(start, end, limit, [&](std::string_view k, std::string_view v) {
    out.emplace_back(k, v);
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.to_string();
  return out;
}

Sequence put_ok(Engine& e, std::string_view k, std::string_view v) {
  auto r = e.put(k, v);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? *r : 0;
}

// A one-shot flag a callback sets and a test waits on (callbacks may run on the
// engine's sync thread).
class Flag {
 public:
  void set() {
    std::lock_guard l(mu_);
    set_ = true;
    cv_.notify_all();
  }
  bool is_set() {
    std::lock_guard l(mu_);
    return set_;
  }
  bool wait(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock l(mu_);
    return cv_.wait_for(l, timeout, [&] { return set_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool set_ = false;
};

template <typename Factory>
class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = Factory().open(dir_.path());
    ASSERT_NE(engine_, nullptr);
  }
  Engine& e() { return *engine_; }

  TempDir dir_;
  std::unique_ptr<Engine> engine_;
};

using Engines =
    ::testing::Types<testing_util::MemoryFactory, testing_util::MemoryOrderedOnlyFactory,
                     testing_util::RocksDbBatchFactory, testing_util::RocksDbAlwaysFactory,
                     testing_util::RocksDbNeverFactory>;
class EngineNames {
 public:
  template <typename T>
  static std::string GetName(int i) {
    const char* names[] = {"Memory", "MemoryOrderedOnly", "RocksDbBatch", "RocksDbAlways",
                           "RocksDbNever"};
    return names[i];
  }
};
TYPED_TEST_SUITE(EngineTest, Engines, EngineNames);

TYPED_TEST(EngineTest, GetPutDel) {
  Engine& e = this->e();
  std::string v;
  EXPECT_TRUE(e.get("a", &v).is_not_found());
  put_ok(e, "a", "1");
  EXPECT_EQ(get_or(e, "a"), "1");
  EXPECT_TRUE(e.del("a").ok());
  EXPECT_TRUE(e.get("a", &v).is_not_found());
  EXPECT_TRUE(e.del("never-there").ok());
}

TYPED_TEST(EngineTest, BinaryKeysAndValuesAndEmpty) {
  Engine& e = this->e();
  const std::string k1("a\0b", 3), k2("a\0", 2), k3("\xff\x00\x01", 3), k4;
  const std::string v1("x\0y\0", 4), v3("\x00", 1);
  put_ok(e, k1, v1);
  put_ok(e, k2, "");
  put_ok(e, k3, v3);
  put_ok(e, k4, "empty key");
  EXPECT_EQ(get_or(e, k1), v1);
  EXPECT_EQ(get_or(e, k2), "");
  EXPECT_EQ(get_or(e, k3), v3);
  EXPECT_EQ(get_or(e, k4), "empty key");
  EXPECT_EQ(get_or(e, "a"), "<absent>");  // a prefix of k1 and k2 is another key
  auto all = scan_all(e, "", "");
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].first, k4);
  EXPECT_EQ(all[1].first, k2);
  EXPECT_EQ(all[2].first, k1);
  EXPECT_EQ(all[3].first, k3);  // 0xff sorts last: bytes compare unsigned
}

TYPED_TEST(EngineTest, OverwriteBiggerAndSmaller) {
  Engine& e = this->e();
  // Sizes cross the in-place limit, the varint boundary (127/128) and the shrink rule.
  for (size_t size : {10u, 66u, 66u, 70u, 127u, 128u, 129u, 5000u, 4000u, 5u, 0u, 200u, 1u}) {
    std::string value(size, static_cast<char>('a' + size % 26));
    if (size > 0) value.back() = '!';
    put_ok(e, "key", value);
    ASSERT_EQ(get_or(e, "key"), value) << "size " << size;
    auto all = scan_all(e, "", "");
    ASSERT_EQ(all.size(), 1u);
    EXPECT_EQ(all[0].first, "key");
    EXPECT_EQ(all[0].second, value);
  }
}

TYPED_TEST(EngineTest, ScanBoundsLimitOrderAndEarlyStop) {
  Engine& e = this->e();
  for (std::string k : {"d", "a", "c", "b", "bb", "e"}) put_ok(e, k, "v" + k);
  auto keys = [](const std::vector<std::pair<std::string, std::string>>& kv) {
    std::vector<std::string> out;
    for (auto& [k, v] : kv) out.push_back(k);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(keys(scan_all(e, "", "")), (V{"a", "b", "bb", "c", "d", "e"}));
  EXPECT_EQ(keys(scan_all(e, "b", "d")), (V{"b", "bb", "c"}));  // end is exclusive
  EXPECT_EQ(keys(scan_all(e, "ba", "")), (V{"bb", "c", "d", "e"}));
  EXPECT_EQ(keys(scan_all(e, "b", "", 2)), (V{"b", "bb"}));
  EXPECT_EQ(keys(scan_all(e, "f", "")), V{});
  EXPECT_EQ(keys(scan_all(e, "d", "b")), V{});  // inverted range
  EXPECT_EQ(keys(scan_all(e, "c", "c")), V{});
  EXPECT_EQ(scan_all(e, "c", "d")[0].second, "vc");

  std::vector<std::string> seen;
  ASSERT_TRUE(e.scan("", "", 0, [&](std::string_view k, std::string_view) {
                 seen.emplace_back(k);
                 return seen.size() < 3;
               }).ok());
  EXPECT_EQ(seen, (V{"a", "b", "bb"}));
}

TYPED_TEST(EngineTest, ScanAcrossManyStripesMatchesAModel) {
  Engine& e = this->e();
  Random rng(7);
  std::map<std::string, std::string> model;
  // Random binary keys, many sharing prefixes and containing \0, more than one
  // memory-engine scan chunk (1024) so chunk boundaries are crossed.
  for (int i = 0; i < 3000; ++i) {
    std::string k(rng.range(0, 6), '\0');
    for (char& c : k) c = static_cast<char>(rng.uniform(4) == 0 ? 0 : rng.uniform(256));
    k += std::string(rng.uniform(3), '\0');
    std::string v = "v" + std::to_string(i);
    model[k] = v;
  }
  WriteBatch batch;
  for (auto& [k, v] : model) {
    batch.put(k, v);
    if (batch.size() == 100) {
      ASSERT_TRUE(e.write(batch).ok());
      batch.clear();
    }
  }
  ASSERT_TRUE(e.write(batch).ok());

  auto all = scan_all(e, "", "");
  ASSERT_EQ(all.size(), model.size());
  auto it = model.begin();
  for (size_t i = 0; i < all.size(); ++i, ++it) {
    ASSERT_EQ(all[i].first, it->first) << "at " << i;
    ASSERT_EQ(all[i].second, it->second);
  }
  // A window from the first third with a limit that crosses a chunk boundary.
  ASSERT_GT(model.size(), 2000u);
  auto mid = std::next(model.begin(), model.size() / 3);
  auto window = scan_all(e, mid->first, "", 1100);
  ASSERT_EQ(window.size(), 1100u);
  for (auto& [k, v] : window) {
    ASSERT_EQ(k, mid->first);
    ++mid;
  }
}

// scan_reverse: the same bounds as scan (start inclusive, end exclusive),
// highest first, across chunk boundaries and stripes, against a model.
TYPED_TEST(EngineTest, ReverseScanMatchesAModel) {
  Engine& e = this->e();
  auto rscan = [&](std::string_view start, std::string_view end, size_t limit) {
    std::vector<std::string> out;
    EXPECT_TRUE(e.scan_reverse(start, end, limit, [&](std::string_view k, std::string_view v) {
                   EXPECT_EQ(v, "v" + std::string(k));
                   out.emplace_back(k);
                   return true;
                 }).ok());
    return out;
  };
  using V = std::vector<std::string>;
  for (std::string k : {"d", "a", "c", "b", "bb", "e"}) put_ok(e, k, "v" + k);
  EXPECT_EQ(rscan("", "", 0), (V{"e", "d", "c", "bb", "b", "a"}));
  EXPECT_EQ(rscan("b", "d", 0), (V{"c", "bb", "b"}));  // end is exclusive
  EXPECT_EQ(rscan("ba", "", 0), (V{"e", "d", "c", "bb"}));
  EXPECT_EQ(rscan("", "bb", 2), (V{"b", "a"}));
  EXPECT_EQ(rscan("f", "", 0), V{});
  EXPECT_EQ(rscan("d", "b", 0), V{});
  std::vector<std::string> seen;
  ASSERT_TRUE(e.scan_reverse("", "", 0, [&](std::string_view k, std::string_view) {
                 seen.emplace_back(k);
                 return seen.size() < 2;
               }).ok());
  EXPECT_EQ(seen, (V{"e", "d"}));

  Random rng(11);
  std::set<std::string> model;
  for (std::string k : {"a", "b", "bb", "c", "d", "e"}) model.insert(k);
  WriteBatch batch;
  for (int i = 0; i < 3000; ++i) {
    std::string k = "k";
    k += std::string(rng.range(0, 5), '\0');
    for (char& c : k) c = c == 'k' ? c : static_cast<char>(rng.uniform(256));
    k += std::string(rng.uniform(3), '\0');
    if (!model.insert(k).second) continue;
    batch.put(k, "v" + k);
  }
  ASSERT_TRUE(e.write(batch).ok());
  const std::string lo = "k\x40", hi = "k\xc0";
  V want;
  for (auto it = model.rbegin(); it != model.rend(); ++it) {
    if (*it >= lo && *it < hi) want.push_back(*it);
  }
  ASSERT_GT(want.size(), 1100u);  // more than one memory-engine chunk
  EXPECT_EQ(rscan(lo, hi, 0), want);
  V first(want.begin(), want.begin() + 1050);
  EXPECT_EQ(rscan(lo, hi, 1050), first);
  EXPECT_EQ(rscan("", "", 0).size(), model.size());
}

TYPED_TEST(EngineTest, BatchIsAtomicForConcurrentScans) {
  Engine& e = this->e();
  constexpr int kKeys = 10;
  auto key = [](int i) { return "batch:" + std::to_string(i); };
  std::atomic<bool> stop{false};
  std::atomic<int> torn{0}, scans{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        auto kv = scan_all(e, "batch:", "batch;");
        // All ten keys with one value, or none (the batch that deletes them all).
        bool ok = kv.empty() || static_cast<int>(kv.size()) == kKeys;
        for (auto& [k, v] : kv) ok = ok && v == kv[0].second;
        if (!ok) torn.fetch_add(1);
        scans.fetch_add(1);
      }
    });
  }
  const int rounds = TypeParam::stress_ops / 10;
  for (int round = 0; round < rounds; ++round) {
    WriteBatch b;
    if (round % 5 == 4) {
      for (int i = 0; i < kKeys; ++i) b.del(key(i));
    } else {
      for (int i = 0; i < kKeys; ++i) b.put(key(i), "round" + std::to_string(round));
    }
    ASSERT_TRUE(e.write(b).ok());
  }
  // Make sure readers overlapped at least a little with the writes above or after.
  while (scans.load() < 20) std::this_thread::yield();
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(torn.load(), 0);
}

TYPED_TEST(EngineTest, ConcurrentStressEndsConsistent) {
  Engine& e = this->e();
  constexpr int kThreads = 4;
  const int ops = TypeParam::stress_ops;
  std::vector<std::map<std::string, std::string>> models(kThreads);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Random rng(100 + t);
      auto& model = models[t];
      for (int i = 0; i < ops; ++i) {
        // Each thread owns its keys, so its model is exact; the keys of all threads
        // interleave in the key space and in the engine's stripes.
        const std::string k = "k" + std::to_string(rng.uniform(300)) + "/t" + std::to_string(t);
        switch (rng.uniform(10)) {
          case 0:
            if (!e.del(k).ok()) failures++;
            model.erase(k);
            break;
          case 1: {
            WriteBatch b;
            const std::string k2 = k + "+";
            b.put(k, "b" + std::to_string(i));
            b.put(k2, std::string(rng.uniform(300), 'z'));
            if (!e.write(b).ok()) failures++;
            model[k] = "b" + std::to_string(i);
            model[k2] = std::string(b.ops()[1].value);
            break;
          }
          case 2: {
            size_t n = 0;
            if (!e.scan(k, "", 20, [&](std::string_view, std::string_view) {
                    return ++n < 50;
                  }).ok())
              failures++;
            break;
          }
          case 3: {
            std::string v;
            Status s = e.get(k, &v);
            auto it = model.find(k);
            if (it == model.end() ? !s.is_not_found() : (!s.ok() || v != it->second)) failures++;
            break;
          }
          default: {
            std::string v(rng.uniform(150), static_cast<char>('a' + t));
            if (!e.put(k, v).ok()) failures++;
            model[k] = v;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  std::map<std::string, std::string> expected;
  for (auto& m : models) expected.insert(m.begin(), m.end());
  auto all = scan_all(e, "", "");
  ASSERT_EQ(all.size(), expected.size());
  auto it = expected.begin();
  for (auto& [k, v] : all) {
    ASSERT_EQ(k, it->first);
    ASSERT_EQ(v, it->second) << k;
    ++it;
  }
}

TYPED_TEST(EngineTest, SequencesStrictlyIncrease) {
  Engine& e = this->e();
  Sequence prev = e.last_sequence();
  for (int i = 0; i < 50; ++i) {
    Result<Sequence> r = i % 3 == 0   ? e.put("s" + std::to_string(i), "v")
                         : i % 3 == 1 ? e.del("s" + std::to_string(i - 1))
                                      : [&] {
                                          WriteBatch b;
                                          b.put("x", "1");
                                          b.put("y", "2");
                                          return e.write(b);
                                        }();
    ASSERT_TRUE(r.ok());
    EXPECT_GT(*r, prev);
    prev = *r;
    EXPECT_GE(e.last_sequence(), *r);
  }
  // Concurrent writers: every sequence handed out is distinct.
  std::vector<std::vector<Sequence>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < TypeParam::stress_ops / 20; ++i) {
        auto r = e.put("c" + std::to_string(t), std::to_string(i));
        if (r.ok()) got[t].push_back(*r);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<Sequence> all;
  size_t total = 0;
  for (auto& g : got) {
    for (size_t i = 1; i < g.size(); ++i) EXPECT_GT(g[i], g[i - 1]);
    all.insert(g.begin(), g.end());
    total += g.size();
  }
  EXPECT_EQ(all.size(), total);
  EXPECT_EQ(total, 4u * (TypeParam::stress_ops / 20));
  EXPECT_GT(*all.begin(), prev);
}

TYPED_TEST(EngineTest, WhenDurableFiresOnceCovered) {
  Engine& e = this->e();
  const Sequence s = put_ok(e, "d", "1");
  // An acknowledged sequence becomes durable (at once, or after the group commit).
  Flag done;
  e.when_durable(s, [&] { done.set(); });
  ASSERT_TRUE(done.wait());
  EXPECT_GE(e.durable_sequence(), s);
  EXPECT_LE(e.durable_sequence(), e.last_sequence());

  // A sequence not yet handed out waits for the writes that reach it; callbacks
  // registered out of order run in sequence order.
  const Sequence base = e.last_sequence();
  std::mutex mu;
  std::vector<int> order;
  Flag all_done;
  for (int i = 3; i >= 1; --i) {
    e.when_durable(base + i, [&, i] {
      std::lock_guard l(mu);
      order.push_back(i);
      if (order.size() == 3) all_done.set();
    });
  }
  std::this_thread::sleep_for(20ms);
  {
    std::lock_guard l(mu);
    EXPECT_TRUE(order.empty()) << "fired before its sequence existed";
  }
  for (int i = 0; i < 3; ++i) put_ok(e, "w" + std::to_string(i), "v");
  ASSERT_TRUE(all_done.wait());
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));

  ASSERT_TRUE(e.sync().ok());
  EXPECT_EQ(e.durable_sequence(), e.last_sequence());
}

TYPED_TEST(EngineTest, ClearRemovesEverything) {
  Engine& e = this->e();
  for (int i = 0; i < 200; ++i) put_ok(e, "c" + std::to_string(i), std::string(i, 'x'));
  put_ok(e, std::string("\xff\xff", 2), "last");
  const Sequence before = e.last_sequence();
  auto r = e.clear();
  ASSERT_TRUE(r.ok());
  EXPECT_GT(*r, before);
  EXPECT_TRUE(scan_all(e, "", "").empty());
  EXPECT_EQ(get_or(e, "c7"), "<absent>");
  EXPECT_EQ(get_or(e, std::string("\xff\xff", 2)), "<absent>");
  Flag done;
  e.when_durable(*r, [&] { done.set(); });
  EXPECT_TRUE(done.wait());
  // Usable afterwards, and clearing an empty engine is still a write.
  put_ok(e, "after", "1");
  EXPECT_EQ(get_or(e, "after"), "1");
  ASSERT_TRUE(e.clear().ok());
  ASSERT_TRUE(e.clear().ok());
  EXPECT_TRUE(scan_all(e, "", "").empty());
}

TYPED_TEST(EngineTest, StatsReflectContents) {
  Engine& e = this->e();
  for (int i = 0; i < 200; ++i) put_ok(e, "st" + std::to_string(i), std::string(64, 'v'));
  ASSERT_TRUE(e.sync().ok());
  EngineStats st = e.stats();
  EXPECT_EQ(st.last_sequence, e.last_sequence());
  EXPECT_EQ(st.durable_sequence, st.last_sequence);
  EXPECT_GT(st.memory_bytes, 0u);
  if (e.name() == "memory") {
    EXPECT_EQ(st.keys, 200u);
    EXPECT_GE(st.memory_bytes, 200u * (64 + 6));  // at least the bytes it stores
    EXPECT_EQ(st.disk_bytes, 0u);
  } else {
    EXPECT_GT(st.keys, 0u);  // an estimate
    EXPECT_GT(st.disk_bytes, 0u);
    EXPECT_GT(st.fsyncs, 0u);
  }
}

}  // namespace
}  // namespace statekv::storage
