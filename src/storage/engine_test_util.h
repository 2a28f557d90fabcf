// Test helpers shared by the storage tests: a temporary directory that removes
// itself, and one factory per engine configuration for the typed suite.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "storage/engine.h"
#include "storage/memory_engine.h"

namespace statekv::storage::testing_util {

class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "statekv_storage_XXXXXX";
    char* made = mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::unique_ptr<Engine> open_rocksdb_or_fail(const std::string& path, FsyncPolicy policy) {
  RocksDbEngineOptions options;
  options.path = path;
  options.fsync = policy;
  options.block_cache_bytes = 8u << 20;
  auto r = open_rocksdb_engine(options);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : nullptr;
}

// Each factory opens a fresh engine in its own directory. stress_ops scales the
// concurrency tests: fsync-per-write configurations get fewer operations.
struct MemoryFactory {
  static constexpr int stress_ops = 20000;
  std::unique_ptr<Engine> open(const std::string&) { return open_memory_engine({.stripes = 16}); }
};
// Keys whose first byte is odd live in the ordered index only (memory_engine.h,
// OrderedOnly): every engine test then runs over both kinds of key at once.
inline bool odd_first_byte(std::string_view key) {
  return !key.empty() && (static_cast<unsigned char>(key[0]) & 1) != 0;
}
struct MemoryOrderedOnlyFactory {
  static constexpr int stress_ops = 20000;
  std::unique_ptr<Engine> open(const std::string&) {
    return open_memory_engine({.stripes = 16}, nullptr, odd_first_byte);
  }
};
struct RocksDbBatchFactory {
  static constexpr int stress_ops = 5000;
  std::unique_ptr<Engine> open(const std::string& dir) {
    return open_rocksdb_or_fail(dir, FsyncPolicy::kBatch);
  }
};
struct RocksDbAlwaysFactory {
  static constexpr int stress_ops = 500;
  std::unique_ptr<Engine> open(const std::string& dir) {
    return open_rocksdb_or_fail(dir, FsyncPolicy::kAlways);
  }
};
struct RocksDbNeverFactory {
  static constexpr int stress_ops = 5000;
  std::unique_ptr<Engine> open(const std::string& dir) {
    return open_rocksdb_or_fail(dir, FsyncPolicy::kNever);
  }
};

}  // namespace statekv::storage::testing_util
