// Expiry as a client sees it: TTL and PTTL count down, expired keys vanish on
// access (lazy) and without any access (active: DBSIZE drops on its own).
// Polls against deadlines; never a fixed sleep as the condition.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "support/redis_client.h"
#include "support/server_process.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class ExpiryTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(subject_options(GetParam()));
    Status st = server_->start();
    ASSERT_TRUE(st.ok()) << st.to_string();
    Result<RedisClient> c = RedisClient::connect(server_->port());
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    client_ = std::make_unique<RedisClient>(std::move(*c));
  }
  long long integer(const std::vector<std::string>& args) {
    Result<long long> r = client_->integer(args);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : -100;
  }
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<RedisClient> client_;
};

TEST_P(ExpiryTest, TtlAndPttlDecrease) {
  ASSERT_EQ(client_->cmd({"SET", "k", "v", "PX", "5000"}), "+OK");
  const long long p1 = integer({"PTTL", "k"});
  EXPECT_GT(p1, 4000);
  EXPECT_LE(p1, 5000);
  std::this_thread::sleep_for(300ms);
  const long long p2 = integer({"PTTL", "k"});
  EXPECT_LE(p2, p1 - 250) << "PTTL must count down in real time";
  EXPECT_GT(p2, 3500);
  const long long t = integer({"TTL", "k"});
  EXPECT_TRUE(t == 5 || t == 4) << t;
}

TEST_P(ExpiryTest, LazyExpiryOnAccess) {
  ASSERT_EQ(client_->cmd({"SET", "k", "v", "PX", "150"}), "+OK");
  EXPECT_EQ(client_->cmd({"GET", "k"}), "\"v\"");
  const auto deadline = Clock::now() + 3s;
  while (client_->cmd({"GET", "k"}) != "(nil)" && Clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(client_->cmd({"GET", "k"}), "(nil)");
  EXPECT_EQ(integer({"EXISTS", "k"}), 0);
  EXPECT_EQ(integer({"TTL", "k"}), -2);
  EXPECT_EQ(integer({"PTTL", "k"}), -2);
}

TEST_P(ExpiryTest, ActiveExpiryShrinksDbsizeWithoutAccess) {
  // One pipeline, so that all 200 short-lived keys exist at the same moment.
  for (int i = 0; i < 200; ++i) {
    client_->append({"SET", "short:" + std::to_string(i), "v", "PX", "1500"});
  }
  for (int i = 0; i < 200; ++i) {
    Result<std::string> r = client_->read_reply();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(*r, "+OK");
  }
  std::vector<std::string> mset = {"MSET"};
  for (int i = 0; i < 50; ++i) {
    mset.push_back("keep:" + std::to_string(i));
    mset.push_back("v");
  }
  ASSERT_EQ(client_->cmd(mset), "+OK");
  EXPECT_EQ(integer({"DBSIZE"}), 250);
  // DBSIZE does not touch the keys: only the active cycle can remove them.
  const auto deadline = Clock::now() + 10s;
  long long size = 250;
  while ((size = integer({"DBSIZE"})) > 50 && Clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(size, 50) << "expired keys were not removed by the active cycle";
  EXPECT_EQ(integer({"EXISTS", "keep:0", "keep:49"}), 2);
}

TEST_P(ExpiryTest, OverwriteClearsTtlAndPersistKeepsKey) {
  ASSERT_EQ(client_->cmd({"SET", "k", "v", "PX", "300"}), "+OK");
  ASSERT_EQ(client_->cmd({"SET", "k", "v2"}), "+OK");
  ASSERT_EQ(client_->cmd({"SET", "p", "v", "PX", "300"}), "+OK");
  EXPECT_EQ(integer({"PERSIST", "p"}), 1);
  std::this_thread::sleep_for(600ms);  // well past both expiry times
  EXPECT_EQ(client_->cmd({"GET", "k"}), "\"v2\"");
  EXPECT_EQ(client_->cmd({"GET", "p"}), "\"v\"");
  EXPECT_EQ(integer({"TTL", "k"}), -1);
}

INSTANTIATE_TEST_SUITE_P(Engines, ExpiryTest, ::testing::Values("memory", "rocksdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace statekv::itest
