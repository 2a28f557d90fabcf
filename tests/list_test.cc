// Lists (issue 11), run as the same sequence against redis-server 7 and
// statekv (memory and rocksdb engines), comparing replies exactly: list
// replies have one order, so everything is compared byte for byte.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "support/differential.h"
#include "support/raw_pair.h"

namespace statekv::itest {
namespace {

using Args = std::vector<std::string>;

class ListTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    d_ = std::make_unique<Differential>(subject_options(GetParam()));
    ASSERT_TRUE(d_->ok());
  }
  std::string run(const Args& args) { return d_->run(args); }
  // RPUSH key e0 .. e(n-1), each element `size` bytes.
  void fill(const std::string& key, int n, size_t size = 4) {
    Args args = {"RPUSH", key};
    for (int i = 0; i < n; ++i) {
      std::string e = "e" + std::to_string(i);
      e.resize(std::max(size, e.size()), '.');
      args.push_back(e);
    }
    run(args);
  }
  // Every range and index a reader could ask of a list of about n elements.
  void read_all_ways(const std::string& key, int n) {
    run({"LLEN", key});
    run({"LRANGE", key, "0", "-1"});
    for (int v : {0, 1, 2, n / 2, n - 2, n - 1, n, n + 1, -1, -2, -n, -n - 1, -n - 5}) {
      const std::string i = std::to_string(v);
      run({"LINDEX", key, i});
      run({"LRANGE", key, i, "-1"});
      run({"LRANGE", key, "0", i});
      run({"LRANGE", key, i, std::to_string(v + 3)});
    }
    run({"LRANGE", key, "-100000", "100000"});
    run({"LRANGE", key, "5", "2"});
    run({"LRANGE", key, "9223372036854775807", "-9223372036854775808"});
    run({"LRANGE", key, "-9223372036854775808", "9223372036854775807"});
    run({"LINDEX", key, "-9223372036854775808"});
    run({"OBJECT", "ENCODING", key});
    run({"TYPE", key});
  }
  std::unique_ptr<Differential> d_;
};

TEST_P(ListTest, PushLengthRangeIndex) {
  EXPECT_EQ(run({"LPUSH", "l", "a", "b", "c"}), ":3");
  EXPECT_EQ(run({"RPUSH", "l", "d", "e"}), ":5");
  run({"LPUSHX", "l", "x", "y"});
  run({"RPUSHX", "l", "z"});
  run({"LPUSHX", "missing", "x"});
  run({"RPUSHX", "missing", "x", "y"});
  run({"EXISTS", "missing"});
  run({"RPUSH", "l", ""});  // an empty element
  read_all_ways("l", 9);
  read_all_ways("missing", 0);
  // Arity and malformed numbers.
  run({"LPUSH", "l"});
  run({"RPUSH"});
  run({"LPUSHX", "l"});
  run({"LLEN"});
  run({"LLEN", "l", "x"});
  run({"LRANGE", "l", "0"});
  run({"LRANGE", "l", "a", "1"});
  run({"LRANGE", "l", "0", "1.5"});
  run({"LRANGE", "missing", "a", "1"});
  run({"LINDEX", "l"});
  run({"LINDEX", "l", "x"});
  run({"LINDEX", "l", "99999999999999999999"});
  run({"DBSIZE"});
}

TEST_P(ListTest, PopSetTrimRemove) {
  fill("l", 10);
  run({"LPOP", "l"});
  run({"RPOP", "l"});
  run({"LPOP", "l", "2"});
  run({"RPOP", "l", "1"});
  run({"LPOP", "l", "0"});
  run({"RPOP", "l", "0"});
  run({"LPOP", "l", "-1"});
  run({"LPOP", "l", "x"});
  run({"RPOP", "l", "1.5"});
  run({"LPOP", "l", "1", "2"});
  run({"LPOP", "missing"});
  run({"LPOP", "missing", "2"});
  run({"RPOP", "missing", "0"});
  run({"RPOP", "missing", "-1"});
  run({"LRANGE", "l", "0", "-1"});
  // LSET: negative and out-of-range indexes, a missing key.
  run({"LSET", "l", "0", "first"});
  run({"LSET", "l", "-1", "last"});
  run({"LSET", "l", "-2", "x"});
  run({"LSET", "l", "100", "x"});
  run({"LSET", "l", "-100", "x"});
  run({"LSET", "l", "x", "x"});
  run({"LSET", "missing", "0", "x"});
  run({"LSET", "missing", "x", "x"});
  run({"LSET", "l", "1", std::string(100, 'b')});  // a long element in a small list
  run({"LRANGE", "l", "0", "-1"});
  // LTRIM in every shape, down to nothing (the key disappears).
  run({"LTRIM", "l", "1", "-2"});
  run({"LRANGE", "l", "0", "-1"});
  run({"LTRIM", "l", "-100", "100"});
  run({"LTRIM", "l", "0", "x"});
  run({"LTRIM", "missing", "0", "1"});
  run({"LTRIM", "l", "5", "1"});
  run({"EXISTS", "l"});
  // LREM from the head, from the tail, all.
  run({"RPUSH", "r", "a", "b", "a", "c", "a", "b", "a"});
  run({"LREM", "r", "2", "a"});
  run({"LRANGE", "r", "0", "-1"});
  run({"LREM", "r", "-1", "b"});
  run({"LRANGE", "r", "0", "-1"});
  run({"LREM", "r", "0", "a"});
  run({"LRANGE", "r", "0", "-1"});
  run({"LREM", "r", "0", "nope"});
  run({"LREM", "r", "x", "c"});
  run({"LREM", "r", "-9223372036854775808", "c"});
  run({"LREM", "missing", "1", "a"});
  run({"LREM", "r", "0", "c"});
  run({"LREM", "r", "0", "b"});
  run({"EXISTS", "r"});
  // Popping the last element removes the key too.
  run({"RPUSH", "p", "only"});
  run({"RPOP", "p", "5"});
  run({"EXISTS", "p"});
  run({"DBSIZE"});
}

// A list converts past 128 elements or on an element over 64 bytes (both
// servers answer "quicklist" for every list in 7.0); everything reads and
// changes the same on both sides of the switch point.
TEST_P(ListTest, TheCompactToElementSwitchPoint) {
  for (int n : {127, 128, 129}) {
    const std::string key = "n" + std::to_string(n);
    fill(key, n);
    read_all_ways(key, n);
    run({"LPUSH", key, "front"});
    run({"RPUSH", key, "back"});
    read_all_ways(key, n + 2);
  }
  for (size_t size : {64, 65}) {
    const std::string key = "s" + std::to_string(size);
    fill(key, 3, size);
    read_all_ways(key, 3);
    run({"LSET", key, "1", std::string(size, 'z')});
    run({"LRANGE", key, "0", "-1"});
  }
  // A large list under every command.
  fill("big", 1000);
  run({"LPUSH", "big", "a", "b", "c"});
  read_all_ways("big", 1003);
  run({"LPOP", "big", "5"});
  run({"RPOP", "big", "5"});
  run({"LSET", "big", "0", "x"});
  run({"LSET", "big", "-1", "y"});
  run({"LSET", "big", "500", "z"});
  run({"LSET", "big", "993", "out"});
  run({"LTRIM", "big", "10", "-10"});
  read_all_ways("big", 973);
  run({"RPUSH", "big", "x", "z", "x"});
  run({"LREM", "big", "1", "x"});
  run({"LREM", "big", "-1", "x"});
  run({"LREM", "big", "0", "z"});
  read_all_ways("big", 970);
  run({"COPY", "big", "big2"});
  run({"RPUSH", "big2", "only in the copy"});
  run({"LRANGE", "big", "-2", "-1"});
  run({"LRANGE", "big2", "-2", "-1"});
  run({"LPOP", "big", "100000"});
  run({"EXISTS", "big"});
  run({"LLEN", "big2"});
  run({"DBSIZE"});
}

TEST_P(ListTest, InsertPositionMove) {
  run({"RPUSH", "l", "a", "b", "a", "c", "a"});
  // LINSERT before / after the first pivot; a missing pivot or key.
  run({"LINSERT", "l", "BEFORE", "a", "x"});
  run({"LINSERT", "l", "after", "a", "y"});
  run({"LINSERT", "l", "AFTER", "c", "z"});
  run({"LINSERT", "l", "before", "nope", "x"});
  run({"LINSERT", "missing", "before", "a", "x"});
  run({"LINSERT", "l", "middle", "a", "x"});
  run({"LINSERT", "missing", "middle", "a", "x"});
  run({"LINSERT", "l", "before", "a"});
  run({"LRANGE", "l", "0", "-1"});
  // LPOS with every option.
  for (const Args& opts : std::vector<Args>{{},
                                            {"RANK", "1"},
                                            {"RANK", "2"},
                                            {"RANK", "-1"},
                                            {"RANK", "-2"},
                                            {"RANK", "9"},
                                            {"RANK", "-9223372036854775807"},
                                            {"RANK", "-9223372036854775808"},
                                            {"COUNT", "0"},
                                            {"COUNT", "2"},
                                            {"COUNT", "0", "RANK", "-1"},
                                            {"COUNT", "2", "RANK", "2"},
                                            {"MAXLEN", "2"},
                                            {"MAXLEN", "2", "COUNT", "0"},
                                            {"MAXLEN", "2", "RANK", "-1"},
                                            {"MAXLEN", "0", "COUNT", "1"},
                                            {"RANK", "0"},
                                            {"RANK", "x"},
                                            {"COUNT", "-1"},
                                            {"MAXLEN", "-1"},
                                            {"RANK"},
                                            {"FOO", "1"},
                                            {"count", "1", "maxlen", "1"}}) {
    for (const char* element : {"a", "y", "nope"}) {
      Args args = {"LPOS", "l", element};
      args.insert(args.end(), opts.begin(), opts.end());
      run(args);
    }
    Args missing = {"LPOS", "missing", "a"};
    missing.insert(missing.end(), opts.begin(), opts.end());
    run(missing);
  }
  run({"LPOS", "l"});
  // LMOVE every way, within one list (a rotation) and to a new list.
  for (const char* from : {"LEFT", "RIGHT"}) {
    for (const char* to : {"LEFT", "right"}) {
      run({"LMOVE", "l", "l", from, to});
      run({"LMOVE", "l", "m", from, to});
      run({"LRANGE", "l", "0", "-1"});
      run({"LRANGE", "m", "0", "-1"});
    }
  }
  run({"LMOVE", "l", "m", "UP", "LEFT"});
  run({"LMOVE", "l", "m", "LEFT", "DOWN"});
  run({"LMOVE", "missing", "m", "LEFT", "LEFT"});
  run({"LMOVE", "l", "m", "LEFT"});
  run({"RPOPLPUSH", "l", "m"});
  run({"RPOPLPUSH", "l", "l"});
  run({"RPOPLPUSH", "missing", "m"});
  run({"RPOPLPUSH", "l"});
  // Moving the last element deletes the source.
  run({"RPUSH", "one", "x"});
  run({"LMOVE", "one", "m", "LEFT", "RIGHT"});
  run({"EXISTS", "one"});
  run({"RPUSH", "one", "x"});
  run({"RPOPLPUSH", "one", "one"});
  run({"LRANGE", "one", "0", "-1"});
  run({"LRANGE", "m", "0", "-1"});
  // On large lists, across the switch point and between layouts.
  fill("big", 128);
  run({"LINSERT", "big", "BEFORE", "e5", "inserted"});  // the 129th element converts
  run({"LINSERT", "big", "AFTER", "e127", "last"});
  read_all_ways("big", 130);
  run({"LPOS", "big", "e100"});
  run({"LPOS", "big", "last", "RANK", "-1"});
  run({"LPOS", "big", "e1", "MAXLEN", "1"});
  run({"LMOVE", "big", "m", "LEFT", "RIGHT"});
  run({"LMOVE", "m", "big", "LEFT", "RIGHT"});
  run({"LMOVE", "big", "big", "RIGHT", "LEFT"});
  run({"RPOPLPUSH", "big", "fresh"});
  read_all_ways("big", 129);
  run({"LRANGE", "m", "0", "-1"});
  run({"LRANGE", "fresh", "0", "-1"});
  run({"DBSIZE"});
}

TEST_P(ListTest, WrongType) {
  run({"SET", "str", "v"});
  run({"HSET", "h", "f", "v"});
  run({"SADD", "s", "m"});
  run({"RPUSH", "l", "a", "b"});
  for (const char* k : {"str", "h", "s"}) {
    run({"LPUSH", k, "x"});
    run({"RPUSH", k, "x"});
    run({"LPUSHX", k, "x"});
    run({"RPUSHX", k, "x"});
    run({"LLEN", k});
    run({"LRANGE", k, "0", "-1"});
    run({"LRANGE", k, "x", "-1"});  // the number is checked first
    run({"LINDEX", k, "0"});
    run({"LPOP", k});
    run({"RPOP", k, "2"});
    run({"LPOP", k, "0"});
    run({"LPOP", k, "-1"});
    run({"LSET", k, "0", "x"});
    run({"LSET", k, "x", "x"});
    run({"LTRIM", k, "0", "1"});
    run({"LREM", k, "0", "x"});
    run({"LINSERT", k, "BEFORE", "a", "x"});
    run({"LINSERT", k, "BAD", "a", "x"});
    run({"LPOS", k, "a"});
    run({"LPOS", k, "a", "RANK", "0"});
    run({"LMOVE", k, "l", "LEFT", "LEFT"});
    run({"LMOVE", "l", k, "LEFT", "LEFT"});
    run({"LMOVE", k, "missing", "LEFT", "UP"});
    run({"RPOPLPUSH", k, "l"});
    run({"RPOPLPUSH", "l", k});
    run({"RPOPLPUSH", "missing", k});
    run({"TYPE", k});
  }
  // And a list under the other types' commands.
  run({"GET", "l"});
  run({"HGET", "l", "f"});
  run({"SADD", "l", "m"});
  run({"INCR", "l"});
  run({"TYPE", "l"});
  run({"LRANGE", "l", "0", "-1"});
}

// The same random operations on both servers, small and large lists.
TEST_P(ListTest, RandomOperationsMatchRedis) {
  std::mt19937 rng(1234);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  auto num = [&](int span) { return std::to_string(pick(2 * span + 1) - span); };
  int longest = 0;
  for (int step = 0; step < 1500; ++step) {
    const std::string key = pick(3) == 0 ? "a" : "b";
    const std::string elem =
        "v" + std::to_string(pick(8)) + (pick(20) == 0 ? std::string(70, 'x') : "");
    switch (pick(14)) {
      case 0: {
        Args args = {pick(2) ? "LPUSH" : "RPUSH", key};
        const int n = pick(4) == 0 ? 60 : 1 + pick(3);
        for (int i = 0; i < n; ++i) args.push_back("v" + std::to_string(pick(8)));
        run(args);
        break;
      }
      case 1:
        run({pick(2) ? "LPUSHX" : "RPUSHX", key, elem});
        break;
      case 2:
        run({pick(2) ? "LPOP" : "RPOP", key});
        break;
      case 3:
        run({pick(2) ? "LPOP" : "RPOP", key, std::to_string(pick(6))});
        break;
      case 4:
        run({"LSET", key, num(150), elem});
        break;
      case 5:
        if (pick(5) == 0) run({"LTRIM", key, num(150), num(150)});
        break;
      case 6:
        run({"LREM", key, num(3), elem});
        break;
      case 7:
        run({"LINDEX", key, num(200)});
        break;
      case 8:
        run({"LRANGE", key, num(200), num(200)});
        break;
      default:
        if (pick(2)) {
          run({"LLEN", key});
        } else {
          run({"LPOS", key, elem, "RANK", std::to_string(pick(2) ? 1 + pick(3) : -1 - pick(3)),
               "COUNT", std::to_string(pick(3))});
        }
        break;
      case 11:
        run({"LINSERT", key, pick(2) ? "BEFORE" : "AFTER", elem, "v" + std::to_string(pick(8))});
        break;
      case 12:
        run({"LMOVE", key, pick(2) ? "a" : "b", pick(2) ? "LEFT" : "RIGHT",
             pick(2) ? "LEFT" : "RIGHT"});
        break;
    }
    if (HasFailure()) break;
    const std::string len = d_->subject_client().cmd({"LLEN", key});
    longest = std::max(longest, std::stoi(len.substr(1)));
  }
  // The mix reached the element layout (past 128 elements), not only compact lists.
  EXPECT_GT(longest, 128);
  run({"LRANGE", "a", "0", "-1"});
  run({"LRANGE", "b", "0", "-1"});
}

TEST_P(ListTest, Resp3ReplyShapes) {
  Result<RawPair> pair = RawPair::connect(d_->redis(), d_->subject());
  ASSERT_TRUE(pair.ok()) << pair.status().to_string();
  auto hello = [&](const char* version) {
    ASSERT_TRUE(pair->redis().send_command({"HELLO", version}).ok());
    ASSERT_TRUE(pair->subject().send_command({"HELLO", version}).ok());
    ASSERT_TRUE(pair->redis().read_reply().ok());
    ASSERT_TRUE(pair->subject().read_reply().ok());
  };
  for (const char* version : {"3", "2"}) {
    hello(version);
    pair->call({"RPUSH", "l", "a", "b", "c"});
    pair->call({"LRANGE", "l", "0", "-1"});
    pair->call({"LRANGE", "missing", "0", "-1"});
    pair->call({"LINDEX", "l", "5"});
    pair->call({"LINDEX", "missing", "0"});
    pair->call({"LPOP", "missing"});
    pair->call({"LPOP", "missing", "2"});
    pair->call({"RPOP", "l", "0"});
    pair->call({"RPOP", "l", "1"});
    pair->call({"LPOP", "l"});
    pair->call({"LSET", "l", "0", "x"});
    pair->call({"LTRIM", "l", "0", "0"});
    pair->call({"LREM", "l", "0", "x"});
    pair->call({"LLEN", "l"});
    pair->call({"RPUSH", "p", "a", "b", "a"});
    pair->call({"LPOS", "p", "a"});
    pair->call({"LPOS", "p", "z"});
    pair->call({"LPOS", "p", "a", "COUNT", "0"});
    pair->call({"LPOS", "missing", "a", "COUNT", "0"});
    pair->call({"LPOS", "missing", "a"});
    pair->call({"LMOVE", "missing", "p", "LEFT", "LEFT"});
    pair->call({"RPOPLPUSH", "p", "q"});
    pair->call({"LINSERT", "p", "BEFORE", "z", "x"});
    pair->call({"DEL", "p", "q"});
  }
}

TEST_P(ListTest, CommandInfo) {
  for (const char* name : {"lpush", "rpush", "lpushx", "rpushx", "llen", "lrange", "lindex", "lpop",
                           "rpop", "lset", "ltrim", "lrem"}) {
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

// A large list survives a restart of a RocksDB node (head record with its
// first index, and the elements, are on disk), and a list created after the
// restart does not see old elements.
TEST(ListRestart, LargeListsSurviveARestart) {
  ServerProcess node(subject_options("rocksdb"));
  ASSERT_TRUE(node.start().ok());
  {
    auto c = RedisClient::connect(node.port());
    ASSERT_TRUE(c.ok());
    Args push = {"RPUSH", "l"};
    for (int i = 0; i < 1000; ++i) push.push_back("e" + std::to_string(i));
    EXPECT_EQ(c->cmd(push), ":1000");
    EXPECT_EQ(c->cmd({"LPUSH", "l", "front"}), ":1001");
    EXPECT_EQ(c->cmd({"LPOP", "l", "2"}), "[\"front\", \"e0\"]");
    EXPECT_EQ(c->cmd({"DEL", "gone"}), ":0");
    EXPECT_EQ(c->cmd(Args{"RPUSH", "gone", std::string(100, 'x')}), ":1");
    EXPECT_EQ(c->cmd({"DEL", "gone"}), ":1");  // retired, maybe not reclaimed yet
  }
  ASSERT_TRUE(node.stop().ok());
  ASSERT_TRUE(node.start().ok());
  auto c = RedisClient::connect(node.port());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->cmd({"LLEN", "l"}), ":999");
  EXPECT_EQ(c->cmd({"LINDEX", "l", "0"}), "\"e1\"");
  EXPECT_EQ(c->cmd({"LINDEX", "l", "-1"}), "\"e999\"");
  EXPECT_EQ(c->cmd({"LPUSH", "l", "new"}), ":1000");
  EXPECT_EQ(c->cmd({"LRANGE", "l", "0", "1"}), "[\"new\", \"e1\"]");
  Args fresh = {"RPUSH", "fresh"};
  for (int i = 0; i < 300; ++i) fresh.push_back("n" + std::to_string(i));
  EXPECT_EQ(c->cmd(fresh), ":300");
  auto all = c->bulk_array({"LRANGE", "fresh", "0", "-1"});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 300u);
  EXPECT_EQ(all->front(), "n0");
  EXPECT_EQ(all->back(), "n299");
  EXPECT_EQ(c->cmd({"DBSIZE"}), ":2");
}

INSTANTIATE_TEST_SUITE_P(Engines, ListTest, ::testing::Values("memory", "rocksdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace statekv::itest
