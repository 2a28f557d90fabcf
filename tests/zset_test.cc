// Sorted sets (issue 11), run as the same sequence against redis-server 7 and
// statekv (memory and rocksdb engines), comparing replies exactly (sorted-set
// replies are ordered by score, so every reply is compared as it comes);
// RESP3 shapes byte for byte.
#include <gtest/gtest.h>

#include <algorithm>
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
                                         {"ZRANGE", "str", "0", "-1"},
                                         {"ZRANGE", "str", "x", "-1"},  // parse error first
                                         {"ZRANGEBYSCORE", "str", "0", "1"},
                                         {"ZREVRANGEBYSCORE", "str", "1", "0"},
                                         {"ZREVRANGE", "str", "0", "1"},
                                         {"ZRANGEBYLEX", "str", "-", "+"},
                                         {"ZRANK", "str", "a"},
                                         {"ZREVRANK", "str", "a"},
                                         {"ZCOUNT", "str", "0", "1"},
                                         {"ZLEXCOUNT", "str", "-", "+"},
                                         {"ZPOPMIN", "str"},
                                         {"ZPOPMAX", "str", "2"},
                                         {"ZREMRANGEBYSCORE", "str", "0", "1"},
                                         {"ZREMRANGEBYRANK", "str", "0", "1"},
                                         {"ZREMRANGEBYLEX", "str", "-", "+"},
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

// ZADD's options and ZINCRBY on the element layout, where a command reads a
// member's score and then writes it without reading it again
// (Collection::put_after_get): a member twice in one ZADD sees its first score.
TEST_P(ZsetTest, AddOptionsOnASkiplist) {
  fill("sk", 200);
  run({"OBJECT", "ENCODING", "sk"});
  run({"ZADD", "sk", "1", "a", "2", "a", "3", "b"});
  run({"ZADD", "sk", "CH", "5", "a", "5", "a", "6", "a", "7", "c", "7", "m3"});
  run({"ZADD", "sk", "NX", "9", "a", "10", "d"});
  run({"ZADD", "sk", "XX", "GT", "CH", "4", "a", "12", "b", "1", "m7"});
  run({"ZADD", "sk", "XX", "LT", "CH", "4", "a", "12", "b", "1", "m7"});
  run({"ZADD", "sk", "INCR", "2.5", "a"});
  run({"ZADD", "sk", "INCR", "1", "newone"});
  run({"ZADD", "sk", "GT", "CH", "1", "a", "100", "a"});
  run({"ZINCRBY", "sk", "3", "a"});
  run({"ZINCRBY", "sk", "3", "fresh"});
  run({"ZINCRBY", "sk", "0", "fresh"});
  run({"ZADD", "sk", "-0", "m9", "0", "m9"});
  for (const char* m : {"a", "b", "c", "d", "m3", "m7", "m9", "newone", "fresh"}) {
    run({"ZSCORE", "sk", m});
  }
  run({"ZCARD", "sk"});
  run({"ZRANGE", "sk", "0", "-1", "WITHSCORES"});
}

// Ranges on both layouts: the same sequence on a listpack and on a skiplist.
TEST_P(ZsetTest, Ranges) {
  for (const std::string key : {"small", "large"}) {
    fill(key, key == "small" ? 20 : 300, 0.5);
    run({"ZADD", key, "-inf", "ninf", "inf", "pinf", "3", "tie-b", "3", "tie-a"});
    run({"OBJECT", "ENCODING", key});
    for (const Args& a : std::vector<Args>{
             {"0", "-1"}, {"0", "4"}, {"-3", "-1"}, {"5", "2"}, {"100", "200"}, {"-1000", "2"}}) {
      run({"ZRANGE", key, a[0], a[1]});
      run({"ZRANGE", key, a[0], a[1], "WITHSCORES"});
      run({"ZRANGE", key, a[0], a[1], "REV", "WITHSCORES"});
      run({"ZREVRANGE", key, a[0], a[1], "WITHSCORES"});
      run({"ZREMRANGEBYRANK", "missing", a[0], a[1]});
    }
    for (const Args& a : std::vector<Args>{{"-inf", "+inf"},
                                           {"1", "3"},
                                           {"(1", "3"},
                                           {"1", "(3"},
                                           {"(1", "(1.5"},
                                           {"3", "3"},
                                           {"(3", "3"},
                                           {"5", "1"},
                                           {"-inf", "(0"},
                                           {"(-inf", "(inf"},
                                           {"", "1"},
                                           {"inf", "inf"}}) {
      run({"ZRANGEBYSCORE", key, a[0], a[1]});
      run({"ZRANGEBYSCORE", key, a[0], a[1], "WITHSCORES", "LIMIT", "1", "3"});
      run({"ZREVRANGEBYSCORE", key, a[1], a[0], "WITHSCORES"});
      run({"ZREVRANGEBYSCORE", key, a[1], a[0], "LIMIT", "2", "-1"});
      run({"ZRANGE", key, a[0], a[1], "BYSCORE", "LIMIT", "0", "2"});
      run({"ZRANGE", key, a[1], a[0], "BYSCORE", "REV", "WITHSCORES"});
      run({"ZCOUNT", key, a[0], a[1]});
    }
    run({"ZRANGEBYSCORE", key, "-inf", "inf", "LIMIT", "-1", "2"});
    run({"ZRANGEBYSCORE", key, "-inf", "inf", "LIMIT", "3", "0"});
    for (const char* m : {"m0", "m7", "tie-a", "tie-b", "ninf", "pinf", "nope"}) {
      run({"ZRANK", key, m});
      run({"ZREVRANK", key, m});
    }
    // Errors, in Redis's order of checks.
    run({"ZRANGEBYSCORE", key, "x", "1"});
    run({"ZRANGEBYSCORE", key, "1", "(x"});
    run({"ZRANGEBYSCORE", key, "nan", "1"});
    run({"ZRANGEBYSCORE", key, "1", "2", "LIMIT", "1"});
    run({"ZRANGEBYSCORE", key, "1", "2", "LIMIT", "a", "1"});
    run({"ZRANGEBYSCORE", key, "1", "2", "REV"});
    run({"ZRANGE", key, "0", "1", "LIMIT", "0", "1"});
    run({"ZRANGE", key, "a", "1"});
    run({"ZRANGE", key, "0", "1", "BYLEX", "WITHSCORES"});
    run({"ZRANGE", key, "0", "1", "BYLEX"});
    run({"ZRANGE", key, "0", "1", "REV", "REV"});
    run({"ZRANGE", key, "0", "1", "BYSCORE", "BYLEX"});
    run({"ZREVRANGE", key, "0", "1", "BYSCORE"});
    run({"ZCOUNT", key, "a", "1"});
    run({"ZCOUNT", "missing", "-inf", "inf"});
    run({"ZRANGE", "missing", "0", "-1"});
  }
}

TEST_P(ZsetTest, LexRanges) {
  for (const std::string key : {"small", "large"}) {
    Args add = {"ZADD", key};
    const int n = key == "small" ? 26 : 200;
    for (int i = 0; i < n; ++i) {
      add.push_back("0");
      add.push_back(std::string(1, static_cast<char>('a' + i % 26)) + std::to_string(i));
    }
    run(add);
    for (const Args& a : std::vector<Args>{{"-", "+"},
                                           {"[b", "[d"},
                                           {"(b1", "[d"},
                                           {"[b1", "(d3"},
                                           {"-", "(c"},
                                           {"[x", "+"},
                                           {"+", "-"},
                                           {"[d", "[b"},
                                           {"[", "[c"}}) {
      run({"ZRANGEBYLEX", key, a[0], a[1]});
      run({"ZRANGEBYLEX", key, a[0], a[1], "LIMIT", "1", "3"});
      run({"ZREVRANGEBYLEX", key, a[1], a[0]});
      run({"ZRANGE", key, a[0], a[1], "BYLEX", "LIMIT", "2", "5"});
      run({"ZRANGE", key, a[1], a[0], "BYLEX", "REV"});
      run({"ZLEXCOUNT", key, a[0], a[1]});
    }
    run({"ZRANGEBYLEX", key, "b", "[c"});
    run({"ZRANGEBYLEX", key, "[b", "c"});
    run({"ZRANGEBYLEX", key, "-", "+", "WITHSCORES"});
    run({"ZLEXCOUNT", key, "b", "+"});
    run({"ZREMRANGEBYLEX", key, "[b", "(c"});
    run({"ZREMRANGEBYLEX", key, "x", "(c"});
    run({"ZCARD", key});
  }
}

TEST_P(ZsetTest, PopAndRemoveRanges) {
  for (const std::string key : {"small", "large"}) {
    fill(key, key == "small" ? 30 : 400, 0.5);
    run({"ZADD", key, "-inf", "ninf", "inf", "pinf"});
    run({"ZPOPMIN", key});
    run({"ZPOPMAX", key});
    run({"ZPOPMIN", key, "3"});
    run({"ZPOPMAX", key, "2"});
    run({"ZPOPMIN", key, "0"});
    run({"ZPOPMIN", key, "-1"});
    run({"ZPOPMIN", key, "x"});
    run({"ZPOPMIN", key, "1", "2"});
    run({"ZREMRANGEBYSCORE", key, "(1", "3"});
    run({"ZREMRANGEBYSCORE", key, "x", "3"});
    run({"ZREMRANGEBYRANK", key, "0", "2"});
    run({"ZREMRANGEBYRANK", key, "-2", "-1"});
    run({"ZREMRANGEBYRANK", key, "5", "1"});
    run({"ZREMRANGEBYRANK", key, "a", "1"});
    run({"ZRANGE", key, "0", "-1", "WITHSCORES"});
    run({"ZREMRANGEBYRANK", key, "0", "-1"});
    run({"EXISTS", key});
  }
  run({"ZPOPMIN", "missing"});
  run({"ZPOPMAX", "missing", "3"});
  run({"ZADD", "few", "1", "a", "2", "b"});
  run({"ZPOPMAX", "few", "10"});
  run({"EXISTS", "few"});
  run({"ZADD", "s2", "1", "a", "2", "b"});
  run({"ZREMRANGEBYSCORE", "s2", "-inf", "inf"});
  run({"EXISTS", "s2"});
}

TEST_P(ZsetTest, CopyTypeAndScanType) {
  run({"ZADD", "z", "1", "a", "2", "b"});
  fill("big", 200);
  run({"SADD", "s", "x"});
  run({"COPY", "z", "z2"});
  run({"COPY", "big", "big2"});
  run({"ZRANGE", "z2", "0", "-1", "WITHSCORES"});
  run({"ZRANGE", "big2", "0", "-1", "WITHSCORES"});
  run({"OBJECT", "ENCODING", "big2"});
  run({"TYPE", "big2"});
  auto keys = [&](RedisClient& client) {
    auto page = client.scan({"SCAN", "0", "COUNT", "1000", "TYPE", "zset"});
    EXPECT_TRUE(page.ok());
    auto v = page.ok() ? page->elements : std::vector<std::string>();
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(keys(d_->redis_client()), keys(d_->subject_client()));
  EXPECT_EQ(keys(d_->subject_client()).size(), 4u);
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
  pair->call({"ZRANGE", "z", "0", "-1", "WITHSCORES"});  // an array of pairs
  pair->call({"ZRANGE", "z", "0", "-1"});
  pair->call({"ZRANGEBYSCORE", "z", "-inf", "inf", "WITHSCORES"});
  pair->call({"ZREVRANGE", "z", "0", "-1", "WITHSCORES"});
  pair->call({"ZRANK", "z", "missing"});
  pair->call({"ZPOPMIN", "z"});
  pair->call({"ZPOPMAX", "z", "1"});
  pair->call({"ZPOPMAX", "missing"});
  pair->call({"ZADD", "z", "1", "a", "2", "b"});
  hello("2");
  pair->call({"ZRANGE", "z", "0", "-1", "WITHSCORES"});
  pair->call({"ZPOPMIN", "z", "1"});
  pair->call({"ZSCORE", "z", "a"});
  pair->call({"ZMSCORE", "z", "a", "missing"});
}

TEST_P(ZsetTest, CommandInfo) {
  for (const char* name : {"zadd",
                           "zcard",
                           "zscore",
                           "zmscore",
                           "zincrby",
                           "zrem",
                           "zrange",
                           "zrangebyscore",
                           "zrevrangebyscore",
                           "zrevrange",
                           "zrank",
                           "zrevrank",
                           "zcount",
                           "zpopmin",
                           "zpopmax",
                           "zremrangebyscore",
                           "zremrangebyrank",
                           "zlexcount",
                           "zrangebylex",
                           "zrevrangebylex",
                           "zremrangebylex"}) {
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
