// Sorted sets (issue 11), run as the same sequence against redis-server 7 and
// statekv (memory and rocksdb engines), comparing replies exactly (sorted-set
// replies are ordered by score, so every reply is compared as it comes);
// RESP3 shapes byte for byte.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/differential.h"
#include "support/raw_pair.h"

namespace statekv::itest {
namespace {

using Args = std::vector<std::string>;

class ZsetTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    d_ = std::make_unique<Differential>(subject_options(GetParam()));
    ASSERT_TRUE(d_->ok());
  }
  std::string run(const Args& args) { return d_->run(args); }
  // ZADD key with n members m<i> scored i * step.
  void fill(const std::string& key, int n, double step = 1.5) {
    Args args = {"ZADD", key};
    for (int i = 0; i < n; ++i) {
      args.push_back(std::to_string(i * step));
      args.push_back("m" + std::to_string(i));
    }
    run(args);
  }
  std::unique_ptr<Differential> d_;
};

TEST_P(ZsetTest, AddScoreIncrRem) {
  EXPECT_EQ(run({"ZADD", "z", "1", "a", "2", "b", "1.5", "c"}), ":3");
  run({"ZADD", "z", "1", "a", "3", "b"});
  run({"ZADD", "z", "CH", "1", "a", "4", "b", "5", "d"});
  run({"ZADD", "z", "NX", "10", "a", "10", "e"});
  run({"ZADD", "z", "XX", "CH", "11", "a", "11", "nope"});
  run({"ZADD", "z", "GT", "CH", "1", "a", "20", "b"});
  run({"ZADD", "z", "LT", "CH", "1", "a", "30", "b"});
  run({"ZADD", "z", "INCR", "2.5", "a"});
  run({"ZADD", "z", "NX", "INCR", "2.5", "a"});  // not performed: nil
  run({"ZADD", "z", "XX", "INCR", "2.5", "new"});
  run({"ZADD", "z", "GT", "INCR", "-1", "a"});
  run({"ZADD", "z", "inf", "pinf", "-inf", "ninf", "+inf", "p2", "1e300", "big"});
  run({"ZADD", "z", "0.1", "tenth", "-0", "negzero", "1.1", "onepointone"});
  for (const char* m : {"a", "b", "c", "d", "e", "pinf", "ninf", "p2", "big", "tenth", "negzero",
                        "onepointone", "nope", "new"}) {
    run({"ZSCORE", "z", m});
  }
  run({"ZMSCORE", "z", "a", "nope", "pinf", "ninf"});
  run({"ZMSCORE", "missing", "a", "b"});
  run({"ZSCORE", "missing", "a"});
  run({"ZCARD", "z"});
  run({"ZCARD", "missing"});
  run({"ZINCRBY", "z", "1.5", "a"});
  run({"ZINCRBY", "z", "-3", "fresh"});
  run({"ZINCRBY", "z", "-0", "zero"});  // replies -0, stores 0 in a listpack
  run({"ZSCORE", "z", "zero"});
  run({"ZINCRBY", "z", "1", "pinf"});
  run({"ZINCRBY", "z", "-inf", "pinf"});  // NaN
  run({"ZINCRBY", "z", "abc", "a"});
  run({"ZINCRBY", "z", "nan", "a"});
  run({"ZADD", "z", "INCR", "-inf", "pinf"});  // NaN
  // Errors, in Redis's order of checks.
  run({"ZADD", "z", "nan", "x"});
  run({"ZADD", "z", "1x", "x"});
  run({"ZADD", "z", " 1", "x"});
  run({"ZADD", "z", "", "x"});
  run({"ZADD", "z", "1"});
  run({"ZADD", "z", "1", "a", "2"});
  run({"ZADD", "z", "NX", "XX", "1", "a"});
  run({"ZADD", "z", "NX", "GT", "1", "a"});
  run({"ZADD", "z", "GT", "LT", "1", "a"});
  run({"ZADD", "z", "INCR", "1", "a", "2", "b"});
  run({"ZADD", "z", "XX"});
  run({"ZADD", "z", "FOO", "1", "a"});
  run({"ZADD", "z"});
  run({"ZADD", "xxmissing", "XX", "1", "a"});
  run({"EXISTS", "xxmissing"});
  run({"ZREM", "z", "a", "b", "nope", "a"});
  run({"ZREM", "missing", "a"});
  run({"ZCARD", "z"});
  run({"TYPE", "z"});
  run({"OBJECT", "ENCODING", "z"});
  // An emptied sorted set disappears.
  run({"ZADD", "one", "1", "x"});
  run({"ZREM", "one", "x"});
  run({"EXISTS", "one"});
  run({"TYPE", "one"});
}

TEST_P(ZsetTest, WrongType) {
  run({"SET", "str", "v"});
  run({"ZADD", "zz", "1", "a"});
  for (const Args& a : std::vector<Args>{{"ZADD", "str", "1", "a"},
                                         {"ZADD", "str", "nan", "a"},  // parse error first
                                         {"ZCARD", "str"},
                                         {"ZSCORE", "str", "a"},
                                         {"ZMSCORE", "str", "a"},
                                         {"ZINCRBY", "str", "1", "a"},
                                         {"ZREM", "str", "a"},
                                         {"GET", "zz"},
                                         {"SADD", "zz", "a"},
                                         {"HGET", "zz", "a"}}) {
    run(a);
  }
}

TEST_P(ZsetTest, ListpackToSkiplistSwitch) {
  fill("edge", 128);
  run({"OBJECT", "ENCODING", "edge"});
  run({"ZADD", "edge", "7", "one-more"});
  run({"OBJECT", "ENCODING", "edge"});
  run({"ZCARD", "edge"});
  run({"ZSCORE", "edge", "m100"});
  run({"ZSCORE", "edge", "one-more"});
  run({"ZADD", "long", "1", std::string(64, 'a')});
  run({"OBJECT", "ENCODING", "long"});
  run({"ZADD", "long", "-0", std::string(65, 'b')});  // -0 kept: converted first
  run({"ZSCORE", "long", std::string(65, 'b')});
  run({"OBJECT", "ENCODING", "long"});
  fill("big", 1000, 0.25);
  run({"OBJECT", "ENCODING", "big"});
  run({"ZCARD", "big"});
  run({"ZSCORE", "big", "m999"});
  run({"ZINCRBY", "big", "2", "m5"});
  run({"ZADD", "big", "XX", "CH", "-1", "m6", "5", "nope"});
  run({"ZMSCORE", "big", "m5", "m6", "nope"});
  run({"ZREM", "big", "m1", "m2", "nope"});
  run({"ZCARD", "big"});
}

TEST_P(ZsetTest, Resp3Doubles) {
  Result<RawPair> pair = RawPair::connect(d_->redis(), d_->subject());
  ASSERT_TRUE(pair.ok()) << pair.status().to_string();
  auto hello = [&](const char* version) {
    ASSERT_TRUE(pair->redis().send_command({"HELLO", version}).ok());
    ASSERT_TRUE(pair->subject().send_command({"HELLO", version}).ok());
    ASSERT_TRUE(pair->redis().read_reply().ok());
    ASSERT_TRUE(pair->subject().read_reply().ok());
  };
  hello("3");
  pair->call({"ZADD", "z", "1.5", "a", "inf", "b", "-inf", "c"});
  pair->call({"ZSCORE", "z", "a"});
  pair->call({"ZSCORE", "z", "b"});
  pair->call({"ZSCORE", "z", "c"});
  pair->call({"ZSCORE", "z", "missing"});
  pair->call({"ZMSCORE", "z", "a", "missing"});
  pair->call({"ZINCRBY", "z", "1", "a"});
  pair->call({"ZADD", "z", "INCR", "1", "a"});
  pair->call({"ZADD", "z", "NX", "INCR", "1", "a"});
  hello("2");
  pair->call({"ZSCORE", "z", "a"});
  pair->call({"ZMSCORE", "z", "a", "missing"});
}

TEST_P(ZsetTest, CommandInfo) {
  for (const char* name : {"zadd", "zcard", "zscore", "zmscore", "zincrby", "zrem"}) {
    // Name, arity, flags, key positions, ACL categories and tips, as
    // data_types_test compares them.
    auto r = d_->redis_client().cmd({"COMMAND", "INFO", name});
    auto s = d_->subject_client().cmd({"COMMAND", "INFO", name});
    auto head = [](const std::string& reply) {
      const size_t categories_end = reply.find(']', reply.find("+@"));
      return reply.substr(0, reply.find(']', categories_end + 1) + 1);
    };
    EXPECT_EQ(head(r), head(s)) << name << "\n" << r << "\n" << s;
    auto docs = d_->subject_client().cmd({"COMMAND", "DOCS", name});
    EXPECT_NE(docs.find("summary"), std::string::npos) << docs;
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, ZsetTest, ::testing::Values("memory", "rocksdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace statekv::itest
