// redis-cli, the client every Redis user has, against statekv: one-shot
// commands, RESP3 (-3), --scan and --pipe mass insertion. Where the output is
// deterministic it is compared with redis-cli's output against redis-server.
#include "support/redis_cli.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/raw_client.h"
#include "support/redis_client.h"
#include "support/server_process.h"

namespace statekv::itest {
namespace {

class RedisCliTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    redis_ = std::make_unique<ServerProcess>(ServerOptions{});
    subject_ = std::make_unique<ServerProcess>(subject_options(GetParam()));
    ASSERT_TRUE(redis_->start().ok());
    Status st = subject_->start();
    ASSERT_TRUE(st.ok()) << st.to_string();
  }

  CliOutput cli(const ServerProcess& s, const std::vector<std::string>& args,
                const std::string& input = "") {
    Result<CliOutput> r = run_redis_cli(s.port(), args, input);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? *r : CliOutput{};
  }

  // Runs the same redis-cli invocation against both servers; stdout and the
  // exit code must match. Returns the subject's stdout.
  std::string same(const std::vector<std::string>& args) {
    CliOutput r = cli(*redis_, args);
    CliOutput s = cli(*subject_, args);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(r.out, s.out) << "redis-cli " << joined << "\nstderr: " << s.err;
    EXPECT_EQ(r.exit_code, s.exit_code) << "redis-cli " << joined;
    return s.out;
  }

  std::unique_ptr<ServerProcess> redis_;
  std::unique_ptr<ServerProcess> subject_;
};

TEST_P(RedisCliTest, SetAndGet) {
  EXPECT_EQ(same({"set", "k", "v"}), "OK\n");
  EXPECT_EQ(same({"get", "k"}), "v\n");
  EXPECT_EQ(same({"get", "missing"}), "\n");
  EXPECT_EQ(same({"incr", "n"}), "1\n");
  same({"mget", "k", "missing", "n"});
  same({"ping"});
  same({"nosuchcommand", "x"});
  same({"set", "k"});
  same({"expire", "k", "100"});
  same({"ttl", "k"});
  same({"incr", "k"});
}

TEST_P(RedisCliTest, Resp3Flag) {
  same({"-3", "set", "k", "v"});
  EXPECT_EQ(same({"-3", "get", "k"}), "v\n");
  same({"-3", "get", "missing"});
  same({"-3", "mget", "k", "missing"});
  same({"-3", "config", "get", "timeout"});
  same({"-3", "incrbyfloat", "f", "2.5"});
}

TEST_P(RedisCliTest, ScanListsEveryKey) {
  std::string input;
  for (int i = 0; i < 300; ++i) {
    input += encode_command({"SET", (i % 2 ? "a:" : "b:") + std::to_string(i), "v"});
  }
  CliOutput piped = cli(*subject_, {"--pipe"}, input);
  ASSERT_EQ(piped.exit_code, 0) << piped.out << piped.err;

  auto lines = [](const std::string& text) {
    std::multiset<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.insert(line);
    return out;
  };
  CliOutput all = cli(*subject_, {"--scan"});
  EXPECT_EQ(all.exit_code, 0);
  std::multiset<std::string> keys = lines(all.out);
  EXPECT_EQ(keys.size(), 300u);
  EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 300u) << "duplicates";
  CliOutput some = cli(*subject_, {"--scan", "--pattern", "a:*"});
  std::multiset<std::string> a = lines(some.out);
  EXPECT_EQ(a.size(), 150u);
  for (const auto& k : a) EXPECT_TRUE(k.starts_with("a:")) << k;
}

TEST_P(RedisCliTest, PipeMassInsert) {
  constexpr int kKeys = 20000;
  std::string input;
  for (int i = 0; i < kKeys; ++i) {
    input += encode_command({"SET", "mass:" + std::to_string(i), std::string(32, 'a' + i % 26)});
  }
  for (ServerProcess* s : {redis_.get(), subject_.get()}) {
    CliOutput r = cli(*s, {"--pipe"}, input);
    EXPECT_EQ(r.exit_code, 0) << s->describe() << ": " << r.err;
    EXPECT_NE(r.out.find("errors: 0, replies: " + std::to_string(kKeys)), std::string::npos)
        << s->describe() << ": " << r.out;
  }
  EXPECT_EQ(same({"dbsize"}), std::to_string(kKeys) + "\n");
  same({"get", "mass:19999"});
}

INSTANTIATE_TEST_SUITE_P(Engines, RedisCliTest, ::testing::Values("memory", "rocksdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace statekv::itest
