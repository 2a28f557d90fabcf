// SCAN, tested by its guarantees rather than by replies (cursors and order are
// implementation details): with no concurrent changes a full iteration returns
// every key exactly once; MATCH, COUNT and TYPE filter; bad arguments get
// Redis's errors (compared exactly with redis-server).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "support/differential.h"

namespace statekv::itest {
namespace {

// Iterates SCAN to cursor 0 and counts how often each key came back.
std::map<std::string, int> full_scan(RedisClient& c, const std::vector<std::string>& options,
                                     int* calls) {
  std::map<std::string, int> seen;
  std::string cursor = "0";
  *calls = 0;
  do {
    std::vector<std::string> args = {"SCAN", cursor};
    args.insert(args.end(), options.begin(), options.end());
    Result<RedisClient::ScanPage> page = c.scan(args);
    EXPECT_TRUE(page.ok()) << page.status().to_string();
    if (!page.ok()) break;
    for (const auto& k : page->elements) ++seen[k];
    cursor = page->cursor;
    ++*calls;
  } while (cursor != "0" && *calls < 100000);
  return seen;
}

class ScanTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    d_ = std::make_unique<Differential>(subject_options(GetParam()));
    ASSERT_TRUE(d_->ok());
    // 1500 keys in three families, some with a TTL (still strings).
    for (int i = 0; i < 1500; i += 100) {
      std::vector<std::string> mset = {"MSET"};
      for (int j = i; j < i + 100; ++j) {
        mset.push_back((j % 3 == 0 ? "user:" : j % 3 == 1 ? "order:" : "misc") + std::to_string(j));
        mset.push_back("v");
      }
      d_->run(mset);
    }
    for (int j = 0; j < 50; ++j) d_->run({"EXPIRE", "user:" + std::to_string(j * 3), "1000"});
  }
  std::unique_ptr<Differential> d_;
};

TEST_P(ScanTest, FullIterationReturnsEveryKeyExactlyOnce) {
  int calls = 0;
  std::map<std::string, int> seen = full_scan(d_->subject_client(), {}, &calls);
  EXPECT_EQ(seen.size(), 1500u);
  for (const auto& [k, n] : seen) EXPECT_EQ(n, 1) << k << " returned " << n << " times";
  EXPECT_GT(calls, 1) << "default COUNT 10 should need many calls for 1500 keys";
}

TEST_P(ScanTest, MatchCountAndTypeFilter) {
  int calls = 0;
  std::map<std::string, int> users = full_scan(d_->subject_client(), {"MATCH", "user:*"}, &calls);
  EXPECT_EQ(users.size(), 500u);
  for (const auto& [k, n] : users) {
    EXPECT_TRUE(k.starts_with("user:")) << k;
    EXPECT_EQ(n, 1) << k;
  }
  int big_calls = 0;
  std::map<std::string, int> all = full_scan(d_->subject_client(), {"COUNT", "1000"}, &big_calls);
  EXPECT_EQ(all.size(), 1500u);
  int small_calls = 0;
  full_scan(d_->subject_client(), {"COUNT", "5"}, &small_calls);
  EXPECT_LT(big_calls, small_calls) << "COUNT must change the work per call";
  EXPECT_LE(big_calls, 10);

  std::map<std::string, int> strings =
      full_scan(d_->subject_client(), {"TYPE", "string", "MATCH", "misc*"}, &calls);
  EXPECT_EQ(strings.size(), 500u);
  std::map<std::string, int> lists = full_scan(d_->subject_client(), {"TYPE", "list"}, &calls);
  EXPECT_TRUE(lists.empty());
  std::map<std::string, int> none = full_scan(d_->subject_client(), {"MATCH", "zzz*"}, &calls);
  EXPECT_TRUE(none.empty());
}

TEST_P(ScanTest, ErrorsMatchRedis) {
  d_->run({"SCAN"});
  d_->run({"SCAN", "abc"});
  d_->run({"SCAN", "0", "COUNT", "0"});
  d_->run({"SCAN", "0", "COUNT", "abc"});
  d_->run({"SCAN", "0", "MATCH"});
  d_->run({"SCAN", "0", "FOO", "bar"});
  d_->run({"SCAN", "0", "COUNT"});
}

TEST_P(ScanTest, EmptyDatabaseScansToCursorZero) {
  d_->run({"FLUSHALL"});
  EXPECT_EQ(d_->run({"SCAN", "0"}), "[\"0\", []]");
}

INSTANTIATE_TEST_SUITE_P(Engines, ScanTest, ::testing::Values("memory", "rocksdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace statekv::itest
