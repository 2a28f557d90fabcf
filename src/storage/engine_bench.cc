// Microbenchmarks of both engines (run by hand, not in CI):
//   build-*/src/storage/storage_bench --benchmark_filter=Memory
// Keys are 16 bytes, values 66 bytes (the server's record for a 64-byte value).
// RocksDB runs state their fsync policy in the name; the database lives in $TMPDIR.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "core/random.h"
#include "storage/engine.h"

namespace statekv::storage {
namespace {

constexpr uint64_t kKeySpace = 100'000;

std::string key_of(uint64_t i) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "key:%012llu", static_cast<unsigned long long>(i));
  return std::string(buf, 16);
}

// One engine shared by the threads of a benchmark run, built by thread 0.
struct Shared {
  std::mutex mu;
  std::unique_ptr<Engine> engine;
  std::string dir;
};

std::unique_ptr<Engine> make_engine(int kind, std::string* dir) {
  if (kind == 0) return open_memory_engine();
  const char* tmp = getenv("TMPDIR");
  std::string pattern = std::string(tmp ? tmp : "/tmp") + "/statekv_bench_XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) return nullptr;
  *dir = pattern;
  RocksDbEngineOptions o;
  o.path = pattern;
  o.fsync = kind == 1   ? FsyncPolicy::kNever
            : kind == 2 ? FsyncPolicy::kBatch
                        : FsyncPolicy::kAlways;
  auto r = open_rocksdb_engine(o);
  return r.ok() ? std::move(r).value() : nullptr;
}

Shared g_shared;

void setup(const benchmark::State& state) {
  g_shared.engine = make_engine(static_cast<int>(state.range(0)), &g_shared.dir);
  const std::string value(66, 'v');
  for (uint64_t i = 0; i < kKeySpace; ++i) (void)g_shared.engine->put(key_of(i), value);
}

void teardown(const benchmark::State&) {
  g_shared.engine.reset();
  if (!g_shared.dir.empty()) std::filesystem::remove_all(g_shared.dir);
  g_shared.dir.clear();
}

void BM_Put(benchmark::State& state) {
  Random rng(state.thread_index() + 1);
  const std::string value(66, 'w');
  const bool wait_durable = state.range(0) == 2;
  for (auto _ : state) {
    auto seq = g_shared.engine->put(key_of(rng.uniform(kKeySpace)), value);
    if (wait_durable && seq.ok()) {
      // Under kBatch a write counts once its group commit covers it.
      std::mutex m;
      std::condition_variable cv;
      bool done = false;
      g_shared.engine->when_durable(*seq, [&] {
        std::lock_guard l(m);
        done = true;
        cv.notify_one();
      });
      std::unique_lock l(m);
      cv.wait(l, [&] { return done; });
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Get(benchmark::State& state) {
  Random rng(state.thread_index() + 1);
  std::string v;
  for (auto _ : state) {
    benchmark::DoNotOptimize(g_shared.engine->get(key_of(rng.uniform(kKeySpace)), &v));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Scan100(benchmark::State& state) {
  Random rng(state.thread_index() + 1);
  for (auto _ : state) {
    size_t n = 0;
    (void)g_shared.engine->scan(key_of(rng.uniform(kKeySpace)), "", 100,
                                [&](std::string_view, std::string_view) { return ++n < 100; });
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations() * 100);
}

// range(0): 0 memory, 1 rocksdb kNever, 2 rocksdb kBatch, 3 rocksdb kAlways.
void engines(benchmark::internal::Benchmark* b) {
  b->ArgName("engine")->Setup(setup)->Teardown(teardown)->UseRealTime();
}

BENCHMARK(BM_Put)
    ->Apply(engines)
    ->Args({0})
    ->Args({1})
    ->Args({2})
    ->Args({3})
    ->Threads(1)
    ->Threads(2)
    ->Threads(8);
BENCHMARK(BM_Get)->Apply(engines)->Args({0})->Args({1})->Threads(1)->Threads(2);
BENCHMARK(BM_Scan100)->Apply(engines)->Args({0})->Args({1})->Threads(1)->Threads(2);

}  // namespace
}  // namespace statekv::storage

BENCHMARK_MAIN();
