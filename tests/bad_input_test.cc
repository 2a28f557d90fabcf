// Bad input (issue 2 item 8, DESIGN.md "Faults and bad input"): each kind gets
// Redis's error (compared byte for byte with redis-server) or is closed as Redis
// would close it; afterwards a client that was already connected is still
// served and the data stored before is intact. Memory stays bounded under a
// client that never reads and under thousands of idle connections.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "support/raw_pair.h"
#include "support/redis_client.h"
#include "support/server_process.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Redis bounds a normal client's output buffer only when configured to;
// statekv bounds it by default (client_output_buffer_limit, 256mb). The redis
// we compare with gets the same bound so both can be held to one standard.
ServerOptions with_output_limit(ServerOptions o) {
  if (o.kind == ServerKind::kRedis) {
    o.extra_args.insert(o.extra_args.end(), {"--client-output-buffer-limit", "normal 256mb 0 0"});
  }
  return o;
}

class BadInputTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    redis_ = std::make_unique<ServerProcess>(with_output_limit(ServerOptions{}));
    subject_ = std::make_unique<ServerProcess>(with_output_limit(subject_options(GetParam())));
    ASSERT_TRUE(redis_->start().ok());
    Status st = subject_->start();
    ASSERT_TRUE(st.ok()) << st.to_string();
    Result<RedisClient> b = RedisClient::connect(subject_->port());
    ASSERT_TRUE(b.ok()) << b.status().to_string();
    bystander_ = std::make_unique<RedisClient>(std::move(*b));
    Result<RawPair> pair = RawPair::connect(*redis_, *subject_);
    ASSERT_TRUE(pair.ok()) << pair.status().to_string();
    pair_ = std::make_unique<RawPair>(std::move(*pair));
    ASSERT_EQ(pair_->call({"SET", "stored", "precious"}), "+OK\r\n");
    ASSERT_EQ(pair_->call({"SET", "ttl", "v", "EX", "1000"}), "+OK\r\n");
  }

  // The already-connected client is served, promptly, and nothing was lost.
  void expect_others_served(std::chrono::milliseconds max_wait = 1s) {
    const auto start = Clock::now();
    EXPECT_EQ(bystander_->cmd({"PING"}), "+PONG");
    EXPECT_LT(Clock::now() - start, max_wait) << "the bystander waited too long";
    EXPECT_EQ(bystander_->cmd({"GET", "stored"}), "\"precious\"");
    Result<long long> ttl = bystander_->integer({"TTL", "ttl"});
    EXPECT_TRUE(ttl.ok() && *ttl > 0 && *ttl <= 1000);
    Result<RedisClient> fresh = RedisClient::connect(subject_->port());
    ASSERT_TRUE(fresh.ok()) << "new connections refused: " << fresh.status().to_string();
    EXPECT_EQ(fresh->cmd({"GET", "stored"}), "\"precious\"");
    EXPECT_TRUE(subject_->running());
  }

  // Sends bytes on the raw pair; both servers must answer with the same error
  // and close the connection.
  void expect_error_and_close(const std::string& bytes, const std::string& expected) {
    std::vector<RawReply> r = pair_->exchange(bytes, 1);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].bytes, expected);
    EXPECT_TRUE(pair_->redis().closed_by_peer());
    EXPECT_TRUE(pair_->subject().closed_by_peer()) << "connection left open after " << expected;
    expect_others_served();
  }

  std::unique_ptr<ServerProcess> redis_;
  std::unique_ptr<ServerProcess> subject_;
  std::unique_ptr<RedisClient> bystander_;
  std::unique_ptr<RawPair> pair_;
};

TEST_P(BadInputTest, InvalidBulkLength) {
  expect_error_and_close("*1\r\n$abc\r\n", "-ERR Protocol error: invalid bulk length\r\n");
}

TEST_P(BadInputTest, MissingDollar) {
  expect_error_and_close("*1\r\nGET\r\n", "-ERR Protocol error: expected '$', got 'G'\r\n");
}

TEST_P(BadInputTest, InvalidMultibulkLength) {
  expect_error_and_close("*x\r\n", "-ERR Protocol error: invalid multibulk length\r\n");
}

TEST_P(BadInputTest, BulkLengthOverProtoMaxBulkLen) {
  expect_error_and_close("*2\r\n$3\r\nGET\r\n$536870913\r\n",
                         "-ERR Protocol error: invalid bulk length\r\n");
}

// A CONFIG SET applies to the very next request (a server that read its limits
// on a timer accepted a request over the new limit for up to a tick after the
// +OK).
TEST_P(BadInputTest, LoweredProtoMaxBulkLenAppliesToTheNextRequest) {
  ASSERT_EQ(pair_->call({"CONFIG", "SET", "proto-max-bulk-len", "1mb"}), "+OK\r\n");
  expect_error_and_close("*2\r\n$3\r\nGET\r\n$1048577\r\n",
                         "-ERR Protocol error: invalid bulk length\r\n");
}

// Redis 7 caps the multibulk count at INT_MAX (not 1024*1024 as older Redis did).
TEST_P(BadInputTest, MultibulkCountOverLimit) {
  expect_error_and_close("*2147483648\r\n", "-ERR Protocol error: invalid multibulk length\r\n");
}

// ... so a count between 1024*1024 and INT_MAX is a valid start of a request:
// the server waits for the arguments instead of answering with an error.
TEST_P(BadInputTest, MultibulkCountBelowRedis7LimitIsAccepted) {
  for (RawClient* c : {&pair_->redis(), &pair_->subject()}) {
    ASSERT_TRUE(c->send("*1048577\r\n").ok());
  }
  Result<RawReply> r = pair_->redis().read_reply(500ms);
  Result<RawReply> s = pair_->subject().read_reply(500ms);
  EXPECT_EQ(r.status().code(), Status::Code::kTimeout) << "redis answered";
  EXPECT_EQ(s.status().code(), Status::Code::kTimeout)
      << "rejected a request redis accepts: " << (s.ok() ? s->bytes : s.status().to_string());
  expect_others_served();
}

TEST_P(BadInputTest, UnknownCommandKeepsConnection) {
  pair_->call({"FLUSHEVERYTHING", "now"});
  EXPECT_EQ(pair_->call({"PING"}), "+PONG\r\n");
  expect_others_served();
}

TEST_P(BadInputTest, ValueOverLimits) {
  EXPECT_EQ(pair_->call({"SETRANGE", "big", "536870912", "x"}),
            "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n");
  pair_->call({"SETRANGE", "stored", "536870911", "xy"});
  pair_->call({"EXISTS", "big"});
  pair_->call({"GET", "stored"});
  expect_others_served();
}

TEST_P(BadInputTest, ClientThatNeverReadsStaysBounded) {
  const std::string value(1 << 20, 'v');  // 1 MiB
  ASSERT_EQ(bystander_->cmd({"SET", "big", value}), "+OK");
  Result<uint64_t> rss_before = subject_->rss_kb();
  ASSERT_TRUE(rss_before.ok()) << rss_before.status().to_string();
  const uint64_t before = *rss_before;
  Result<RawClient> hog = RawClient::connect(subject_->port());
  ASSERT_TRUE(hog.ok());
  // 1500 GETs ask for ~1.5 GiB of replies; the client never reads one byte.
  std::string gets;
  for (int i = 0; i < 1500; ++i) gets += encode_command({"GET", "big"});
  ASSERT_TRUE(hog->send(gets).ok());
  uint64_t peak = before;
  const auto until = Clock::now() + 3s;
  auto next_check = Clock::now();
  while (Clock::now() < until) {
    Result<uint64_t> rss = subject_->rss_kb();
    ASSERT_TRUE(rss.ok()) << "server died: " << subject_->log_tail();
    peak = std::max(peak, *rss);
    if (Clock::now() >= next_check) {
      // Served, though not necessarily promptly: redis-server itself stalls
      // other clients for seconds while it copies the unread replies.
      expect_others_served(5s);
      next_check = Clock::now() + 250ms;
    }
    std::this_thread::sleep_for(5ms);
  }
  std::printf("[ measure ] %s: RSS %llu kB before, peak %llu kB with a non-reading client\n",
              subject_->describe().c_str(), static_cast<unsigned long long>(before),
              static_cast<unsigned long long>(peak));
  EXPECT_LT(peak - before, 512u * 1024) << "server memory grew with the unread replies";
}

TEST_P(BadInputTest, TwoThousandIdleConnections) {
  Result<uint64_t> rss_before = subject_->rss_kb();
  ASSERT_TRUE(rss_before.ok()) << rss_before.status().to_string();
  const uint64_t before = *rss_before;
  std::vector<RawClient> idle;
  idle.reserve(2000);
  for (int i = 0; i < 2000; ++i) {
    Result<RawClient> c = RawClient::connect(subject_->port());
    ASSERT_TRUE(c.ok()) << "connection " << i << ": " << c.status().to_string();
    idle.push_back(std::move(*c));
  }
  // Wait until the server has accepted and registered them all.
  const auto deadline = Clock::now() + 20s;
  std::string clients;
  while (Clock::now() < deadline) {
    Result<std::string> info = bystander_->bulk({"INFO", "clients"});
    ASSERT_TRUE(info.ok()) << info.status().to_string();
    size_t at = info->find("connected_clients:");
    ASSERT_NE(at, std::string::npos) << *info;
    clients = info->substr(at + 18, info->find("\r\n", at) - at - 18);
    if (std::stoll(clients) >= 2002) break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_GE(std::stoll(clients), 2002);  // 2000 idle + bystander + raw pair
  expect_others_served();
  Result<uint64_t> rss_after = subject_->rss_kb();
  ASSERT_TRUE(rss_after.ok()) << rss_after.status().to_string();
  const uint64_t after = *rss_after;
  const double per_conn = (static_cast<double>(after) - before) * 1024.0 / 2000.0;
  std::printf("[ measure ] %s: RSS %llu kB -> %llu kB for 2000 idle connections: %.0f bytes each\n",
              subject_->describe().c_str(), static_cast<unsigned long long>(before),
              static_cast<unsigned long long>(after), per_conn);
  EXPECT_LT(per_conn, 64 * 1024.0);
  // Each idle client still works when it finally speaks.
  ASSERT_TRUE(idle[1234].send_command({"GET", "stored"}).ok());
  Result<RawReply> r = idle[1234].read_reply();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->bytes, "$8\r\nprecious\r\n");
}

INSTANTIATE_TEST_SUITE_P(Engines, BadInputTest, ::testing::Values("memory", "rocksdb"),
                         [](const auto& info) { return info.param; });

// AUTH with --requirepass: every reply compared byte for byte with redis.
class AuthTest : public ::testing::TestWithParam<std::string> {};

TEST_P(AuthTest, RequirepassGatesEveryCommandButAuth) {
  ServerOptions r;
  r.requirepass = "s3cret";
  ServerOptions s = subject_options(GetParam());
  s.requirepass = "s3cret";
  ServerProcess redis(r), subject(s);
  ASSERT_TRUE(redis.start().ok());
  Status st = subject.start();
  ASSERT_TRUE(st.ok()) << st.to_string();
  Result<RawPair> pair = RawPair::connect(redis, subject);
  ASSERT_TRUE(pair.ok());
  EXPECT_EQ(pair->call({"GET", "k"}), "-NOAUTH Authentication required.\r\n");
  pair->call({"SET", "k", "v"});
  pair->call({"PING"});
  pair->call({"NOSUCH"});
  pair->call({"AUTH", "wrong"});
  pair->call({"AUTH", "nobody", "s3cret"});
  pair->call({"AUTH", "a", "b", "c"});
  pair->call({"HELLO", "3", "AUTH", "default", "wrong"});
  // Before AUTH, Redis accepts only small requests: more than 10 arguments or
  // a bulk over 16 KiB is a protocol error that closes the connection.
  {
    Result<RawPair> big = RawPair::connect(redis, subject);
    ASSERT_TRUE(big.ok());
    big->exchange("*11\r\n", 1);
    EXPECT_TRUE(big->redis().closed_by_peer());
    EXPECT_TRUE(big->subject().closed_by_peer());
    Result<RawPair> bulk = RawPair::connect(redis, subject);
    ASSERT_TRUE(bulk.ok());
    bulk->exchange("*2\r\n$4\r\nAUTH\r\n$16385\r\n", 1);
    EXPECT_TRUE(bulk->redis().closed_by_peer());
    EXPECT_TRUE(bulk->subject().closed_by_peer());
  }
  EXPECT_EQ(pair->call({"AUTH", "s3cret"}), "+OK\r\n");
  pair->call({"SET", "k", "v"});
  pair->call({"GET", "k"});
  pair->call({"AUTH", "default", "s3cret"});
  pair->call({"AUTH", "wrong"});
  pair->call({"GET", "k"});  // a failed AUTH does not log out
  // A fresh connection authenticating through HELLO.
  Result<RawPair> second = RawPair::connect(redis, subject);
  ASSERT_TRUE(second.ok());
  second->call({"GET", "k"});
  Result<RawReply> rh = (second->redis().send_command({"HELLO", "2", "AUTH", "default", "s3cret"}),
                         second->redis().read_reply());
  Result<RawReply> sh =
      (second->subject().send_command({"HELLO", "2", "AUTH", "default", "s3cret"}),
       second->subject().read_reply());
  ASSERT_TRUE(rh.ok() && sh.ok());
  EXPECT_EQ(sh->value.type, resp::Value::Type::kArray) << sh->bytes;
  EXPECT_EQ(second->call({"GET", "k"}), "$1\r\nv\r\n");
}

INSTANTIATE_TEST_SUITE_P(Engines, AuthTest, ::testing::Values("memory", "rocksdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace statekv::itest
