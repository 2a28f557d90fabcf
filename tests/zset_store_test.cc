// Sorted sets over several keys (ZUNION, ZINTER, ZDIFF, their *STORE forms,
// ZINTERCARD, ZRANGESTORE), ZRANDMEMBER and ZSCAN (issue 11), run as the same
// sequence against redis-server 7 and statekv (memory and rocksdb engines),
// comparing replies exactly, on small (listpack) and large (skiplist) sorted
// sets; random and hash-ordered replies are compared by what they contain.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "storage/engine.h"
#include "support/differential.h"
#include "support/raw_pair.h"
#include "support/redis_client.h"
#include "support/server_process.h"

namespace statekv::itest {
namespace {

using Args = std::vector<std::string>;

class ZsetStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    d_ = std::make_unique<Differential>(subject_options(GetParam()));
    ASSERT_TRUE(d_->ok());
  }
  std::string run(const Args& args) { return d_->run(args); }
  // ZADD key with n members <prefix><i> scored i * step.
  void fill(const std::string& key, int n, double step, const std::string& prefix = "m") {
    Args args = {"ZADD", key};
    for (int i = 0; i < n; ++i) {
      args.push_back(std::to_string(i * step));
      args.push_back(prefix + std::to_string(i));
    }
    run(args);
  }
  // Both servers' replies hold the same items (a flat list; pairs when
  // `pairs`), in any order.
  void run_unordered(const Args& args, bool pairs = false) {
    auto r = d_->redis_client().bulk_array(args);
    auto s = d_->subject_client().bulk_array(args);
    if (!r.ok() || !s.ok()) {
      run(args);
      return;
    }
    EXPECT_EQ(normalize(*r, pairs), normalize(*s, pairs)) << describe_command(args);
  }
  static std::vector<std::string> normalize(std::vector<std::string> v, bool pairs) {
    std::vector<std::string> out;
    if (pairs) {
      for (size_t i = 0; i + 1 < v.size(); i += 2) out.push_back(v[i] + "=" + v[i + 1]);
    } else {
      out = std::move(v);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // A full ZSCAN iteration on one server: every member=score it returned.
  std::vector<std::string> scan_all(RedisClient& client, const std::string& key,
                                    const Args& options) {
    std::vector<std::string> items;
    std::string cursor = "0";
    for (int calls = 0; calls < 100000; ++calls) {
      Args args = {"ZSCAN", key, cursor};
      args.insert(args.end(), options.begin(), options.end());
      auto page = client.scan(args);
      EXPECT_TRUE(page.ok()) << page.status().to_string();
      if (!page.ok()) break;
      EXPECT_EQ(page->elements.size() % 2, 0u);
      items.insert(items.end(), page->elements.begin(), page->elements.end());
      cursor = page->cursor;
      if (cursor == "0") break;
    }
    auto out = normalize(items, true);
    out.erase(std::unique(out.begin(), out.end()), out.end());  // a scan may repeat
    return out;
  }
  std::unique_ptr<Differential> d_;
};

// Sources small and large, sets among them, WEIGHTS and AGGREGATE.
TEST_P(ZsetStoreTest, UnionInterDiff) {
  for (const int n : {10, 300}) {
    SCOPED_TRACE(n);
    run({"FLUSHALL"});
    fill("a", n, 0.5);
    fill("b", n, 1.25);  // half of a's members, and more
    run({"ZADD", "b", "-inf", "m0", "inf", "only-b"});
    fill("c", n / 2, -2, "m");
    run({"SADD", "s", "m1", "m2", "m3", "set-only"});
    run({"SADD", "ints", "1", "2", "m4"});
    run({"OBJECT", "ENCODING", "a"});
    for (const std::string op : {"ZUNION", "ZINTER", "ZDIFF"}) {
      run({op, "1", "a"});
      run({op, "2", "a", "b", "WITHSCORES"});
      run({op, "3", "a", "b", "c", "WITHSCORES"});
      run({op, "3", "c", "s", "a", "WITHSCORES"});
      run({op, "2", "a", "ints", "WITHSCORES"});
      run({op, "2", "a", "missing", "WITHSCORES"});
      run({op, "2", "missing", "a", "WITHSCORES"});
      run({op, "2", "a", "a", "WITHSCORES"});
      run({op, "1", "missing"});
      run({op, "2", "a", "b", "WITHSCORES", "WITHSCORES"});
      // Errors, in Redis's order of checks.
      run({op, "0", "a"});
      run({op, "-1", "a"});
      run({op, "x", "a"});
      run({op, "3", "a", "b"});
      run({op, "2", "a", "b", "FOO"});
      run({op, "2", "a", "b", "LIMIT", "1"});
      run({op, "2", "a", "b", "WEIGHTS", "1", "2"});
      run({op, "2", "a", "b", "AGGREGATE", "MAX"});
    }
    for (const std::string op : {"ZUNION", "ZINTER"}) {
      for (const std::string how : {"SUM", "MIN", "MAX", "min"}) {
        run({op, "3", "a", "b", "s", "WEIGHTS", "2", "-1.5", "3", "AGGREGATE", how, "WITHSCORES"});
        run({op, "2", "a", "b", "AGGREGATE", how, "WEIGHTS", "0", "1", "WITHSCORES"});
      }
      run({op, "2", "a", "b", "WEIGHTS", "inf", "-inf", "WITHSCORES"});  // inf - inf: 0
      run({op, "2", "a", "b", "WEIGHTS", "1", "x"});
      run({op, "2", "a", "b", "WEIGHTS", "1", "nan"});
      run({op, "2", "a", "b", "WEIGHTS", "1"});
      run({op, "2", "a", "b", "AGGREGATE", "AVG"});
      run({op, "2", "a", "b", "AGGREGATE"});
    }
    run({"ZINTERCARD", "2", "a", "b"});
    run({"ZINTERCARD", "3", "a", "b", "s"});
    run({"ZINTERCARD", "2", "a", "b", "LIMIT", "3"});
    run({"ZINTERCARD", "2", "a", "b", "LIMIT", "0"});
    run({"ZINTERCARD", "2", "a", "missing"});
    run({"ZINTERCARD", "2", "a", "b", "LIMIT", "-1"});
    run({"ZINTERCARD", "2", "a", "b", "LIMIT", "x"});
    run({"ZINTERCARD", "2", "a", "b", "LIMIT"});
    run({"ZINTERCARD", "2", "a", "b", "WITHSCORES"});
    run({"ZINTERCARD", "2", "a", "b", "WEIGHTS", "1", "1"});
    run({"ZINTERCARD", "0", "a"});
    run({"ZINTERCARD", "3", "a", "b"});
  }
}

// The *STORE forms replace the destination whatever it held (type and TTL
// included) and delete it when the result is empty.
TEST_P(ZsetStoreTest, StoreReplacesOrDeletesTheDestination) {
  for (const int n : {10, 300}) {
    SCOPED_TRACE(n);
    run({"FLUSHALL"});
    fill("a", n, 0.5);
    fill("b", n, 1.25);
    run({"SADD", "s", "m1", "m2", "x"});
    fill("lex", n, 0);
    const std::vector<Args> stores = {
        {"ZUNIONSTORE", "dst", "2", "a", "b"},
        {"ZUNIONSTORE", "dst", "3", "a", "b", "s", "WEIGHTS", "1", "2", "3", "AGGREGATE", "MAX"},
        {"ZINTERSTORE", "dst", "2", "a", "b"},
        {"ZINTERSTORE", "dst", "2", "a", "b", "WEIGHTS", "-1", "0", "AGGREGATE", "MIN"},
        {"ZDIFFSTORE", "dst", "2", "a", "b"},
        {"ZDIFFSTORE", "dst", "2", "b", "s"},
        {"ZRANGESTORE", "dst", "a", "0", "-1"},
        {"ZRANGESTORE", "dst", "a", "2", "(20", "BYSCORE", "REV", "LIMIT", "1", "5"},
        {"ZRANGESTORE", "dst", "lex", "[m1", "(m3", "BYLEX"},  // one score: lex order
    };
    for (const Args& store : stores) {
      for (const Args& before : std::vector<Args>{{"SET", "dst", "string", "EX", "100"},
                                                  {"HSET", "dst", "f", "v"},
                                                  {"ZADD", "dst", "1", "old"},
                                                  {"DEL", "dst"}}) {
        run(before);
        run(store);
        run({"TYPE", "dst"});
        run({"TTL", "dst"});
        run({"OBJECT", "ENCODING", "dst"});
        run({"ZRANGE", "dst", "0", "-1", "WITHSCORES"});
        run({"ZSCORE", "dst", "old"});
      }
    }
    // Empty results delete the destination.
    for (const Args& store : std::vector<Args>{{"ZINTERSTORE", "dst", "2", "a", "missing"},
                                               {"ZUNIONSTORE", "dst", "1", "missing"},
                                               {"ZDIFFSTORE", "dst", "2", "a", "a"},
                                               {"ZRANGESTORE", "dst", "a", "5", "1"},
                                               {"ZRANGESTORE", "dst", "missing", "0", "-1"}}) {
      run({"SET", "dst", "v"});
      run(store);
      run({"EXISTS", "dst"});
    }
    // The destination among the sources.
    run({"ZUNIONSTORE", "a", "2", "a", "b", "WEIGHTS", "2", "1"});
    run({"ZRANGE", "a", "0", "-1", "WITHSCORES"});
    run({"ZRANGESTORE", "b", "b", "0", "4"});
    run({"ZRANGE", "b", "0", "-1", "WITHSCORES"});
    // Errors leave the destination alone.
    run({"SET", "str", "v"});
    run({"SET", "dst", "kept"});
    for (const Args& bad :
         std::vector<Args>{{"ZUNIONSTORE", "dst", "2", "a", "str"},
                           {"ZUNIONSTORE", "dst", "0", "a"},
                           {"ZUNIONSTORE", "dst", "2", "a"},
                           {"ZINTERSTORE", "dst", "1", "a", "WITHSCORES"},
                           {"ZDIFFSTORE", "dst", "1", "a", "WEIGHTS", "1"},
                           {"ZUNIONSTORE", "dst", "1", "a", "WEIGHTS", "x"},
                           {"ZRANGESTORE", "dst", "str", "0", "-1"},
                           {"ZRANGESTORE", "dst", "a", "0", "-1", "WITHSCORES"},
                           {"ZRANGESTORE", "dst", "a", "0", "1", "LIMIT", "0", "1"},
                           {"ZRANGESTORE", "dst", "a", "x", "1"},
                           {"ZRANGESTORE", "dst", "a", "0"},
                           {"ZUNIONSTORE", "dst"}}) {
      run(bad);
      run({"GET", "dst"});
    }
    // A zero score: a listpack result stores 0, a skiplist keeps -0.
    run({"ZADD", "zero", "0", "z"});
    run({"ZUNIONSTORE", "negzero", "1", "zero", "WEIGHTS", "-1"});
    run({"ZSCORE", "negzero", "z"});
  }
}

TEST_P(ZsetStoreTest, WrongType) {
  run({"SET", "str", "v"});
  run({"RPUSH", "list", "v"});
  run({"ZADD", "z", "1", "a"});
  for (const std::string k : {"str", "list"}) {
    for (const Args& a : std::vector<Args>{{"ZUNION", "2", "z", k},
                                           {"ZINTER", "2", k, "z"},
                                           {"ZDIFF", "2", "z", k},
                                           {"ZINTERCARD", "2", "z", k},
                                           {"ZUNIONSTORE", "d", "2", "z", k},
                                           {"ZINTERSTORE", "d", "2", k, "missing"},
                                           {"ZDIFFSTORE", "d", "2", "missing", k},
                                           {"ZRANGESTORE", "d", k, "0", "-1"},
                                           {"ZRANDMEMBER", k},
                                           {"ZRANDMEMBER", k, "2"},
                                           {"ZRANDMEMBER", k, "x"},  // parse error first
                                           {"ZSCAN", k, "0"},
                                           {"ZSCAN", k, "x"}}) {
      run(a);
    }
  }
  // A set is a source of the set operations, not of the others.
  run({"SADD", "set", "a"});
  run({"ZRANDMEMBER", "set"});
  run({"ZSCAN", "set", "0"});
  run({"ZRANGESTORE", "d", "set", "0", "-1"});
  run({"ZUNION", "2", "set", "z", "WITHSCORES"});
}

TEST_P(ZsetStoreTest, RandMember) {
  for (const int n : {5, 300}) {
    SCOPED_TRACE(n);
    run({"DEL", "z"});
    fill("z", n, 0.5);
    run({"ZRANDMEMBER", "missing"});
    run({"ZRANDMEMBER", "missing", "3"});
    run({"ZRANDMEMBER", "missing", "3", "WITHSCORES"});
    run({"ZRANDMEMBER", "z", "0"});
    run({"ZRANDMEMBER", "z", "0", "WITHSCORES"});
    // Errors, in Redis's order of checks.
    run({"ZRANDMEMBER", "z", "x"});
    run({"ZRANDMEMBER", "z", "1", "FOO"});
    run({"ZRANDMEMBER", "z", "1", "WITHSCORES", "x"});
    run({"ZRANDMEMBER", "z", "-9223372036854775808"});
    run({"ZRANDMEMBER", "z", "-9223372036854775807", "WITHSCORES"});
    run({"ZRANDMEMBER", "z", "9223372036854775807", "WITHSCORES"});
    // The whole set when count reaches its size.
    run_unordered({"ZRANDMEMBER", "z", std::to_string(n)});
    run_unordered({"ZRANDMEMBER", "z", std::to_string(n + 10), "WITHSCORES"}, true);
    // Otherwise: members of the set, with their scores; distinct for a
    // positive count, as many as asked for a negative one.
    auto all = d_->subject_client().bulk_array({"ZRANGE", "z", "0", "-1", "WITHSCORES"});
    ASSERT_TRUE(all.ok());
    std::set<std::string> pairs;
    for (size_t i = 0; i + 1 < all->size(); i += 2) pairs.insert((*all)[i] + "=" + (*all)[i + 1]);
    for (const int count : {1, 3, -1, -7, -(n * 3)}) {
      auto got = d_->subject_client().bulk_array(
          {"ZRANDMEMBER", "z", std::to_string(count), "WITHSCORES"});
      ASSERT_TRUE(got.ok()) << got.status().to_string();
      ASSERT_EQ(got->size(), 2u * static_cast<size_t>(std::abs(count)));
      std::set<std::string> seen;
      for (size_t i = 0; i + 1 < got->size(); i += 2) {
        const std::string p = (*got)[i] + "=" + (*got)[i + 1];
        EXPECT_TRUE(pairs.count(p)) << p;
        seen.insert(p);
      }
      if (count > 0) {
        EXPECT_EQ(seen.size(), static_cast<size_t>(count));
      }
      auto plain = d_->subject_client().bulk_array({"ZRANDMEMBER", "z", std::to_string(count)});
      ASSERT_TRUE(plain.ok());
      EXPECT_EQ(plain->size(), static_cast<size_t>(std::abs(count)));
    }
    auto one = d_->subject_client().cmd({"ZRANDMEMBER", "z"});
    ASSERT_GT(one.size(), 2u);
    EXPECT_EQ(d_->subject_client().cmd({"ZRANK", "z", one.substr(1, one.size() - 2)})[0], ':')
        << one;
  }
}

TEST_P(ZsetStoreTest, Scan) {
  run({"ZADD", "small", "0.1", "a", "2", "b", "inf", "c", "-inf", "d", "-0", "e", "1e100", "f",
       "-3.5", "ab"});
  // A listpack answers in one page, in score order, as Redis.
  run({"ZSCAN", "small", "0"});
  run({"ZSCAN", "small", "0", "MATCH", "a*"});
  run({"ZSCAN", "small", "0", "MATCH", "*", "COUNT", "1"});
  run({"ZSCAN", "small", "7"});
  // Errors and edge cases, as HSCAN/SSCAN.
  run({"ZSCAN", "small", "0", "COUNT", "0"});
  run({"ZSCAN", "small", "0", "COUNT", "x"});
  run({"ZSCAN", "small", "0", "MATCH"});
  run({"ZSCAN", "small", "0", "FOO", "1"});
  run({"ZSCAN", "small", "x"});
  run({"ZSCAN", "small", "-1"});
  run({"ZSCAN", "missing", "0"});
  run({"ZSCAN", "missing", "0", "COUNT", "0"});
  // A skiplist: pages in hash order; a full iteration returns every member
  // with its score, as Redis's does.
  Args add = {"ZADD", "big"};
  for (int i = 0; i < 500; ++i) {
    add.push_back(std::to_string(i * 0.37 - 50));
    add.push_back("m" + std::to_string(i));
  }
  run(add);
  run({"ZADD", "big", "-0", "negzero", "inf", "pinf"});
  run({"OBJECT", "ENCODING", "big"});
  for (const Args& options :
       std::vector<Args>{{}, {"COUNT", "7"}, {"MATCH", "m1*"}, {"MATCH", "m1*", "COUNT", "1000"}}) {
    auto r = scan_all(d_->redis_client(), "big", options);
    auto s = scan_all(d_->subject_client(), "big", options);
    EXPECT_EQ(r, s) << describe_command(options);
  }
  EXPECT_EQ(scan_all(d_->subject_client(), "big", {}).size(), 502u);
}

TEST_P(ZsetStoreTest, Resp3Shapes) {
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
    pair->call({"FLUSHALL"});
    pair->call({"ZADD", "a", "1.5", "x", "2", "y", "inf", "z"});
    pair->call({"ZADD", "b", "1", "x", "-inf", "w"});
    pair->call({"ZUNION", "2", "a", "b", "WITHSCORES"});  // RESP3: [member, double] pairs
    pair->call({"ZUNION", "2", "a", "b"});
    pair->call({"ZINTER", "2", "a", "b", "WITHSCORES"});
    pair->call({"ZDIFF", "2", "a", "b", "WITHSCORES"});
    pair->call({"ZDIFF", "1", "missing", "WITHSCORES"});
    pair->call({"ZINTERCARD", "2", "a", "b"});
    pair->call({"ZUNIONSTORE", "d", "2", "a", "b"});
    pair->call({"ZRANGESTORE", "d", "a", "0", "0"});
    pair->call({"ZRANDMEMBER", "missing"});
    pair->call({"ZRANDMEMBER", "missing", "1", "WITHSCORES"});
    pair->call({"ZRANDMEMBER", "a", "5", "WITHSCORES"});
    pair->call({"ZRANDMEMBER", "d", "-2", "WITHSCORES"});  // one member: always the same
    pair->call({"ZRANDMEMBER", "d", "1"});
    pair->call({"ZSCAN", "a", "0"});
    pair->call({"ZSCAN", "missing", "0"});
  }
}

TEST_P(ZsetStoreTest, CommandInfo) {
  for (const char* name : {"zunionstore", "zinterstore", "zdiffstore", "zunion", "zinter", "zdiff",
                           "zintercard", "zrangestore", "zrandmember", "zscan", "sintercard"}) {
    // Name, arity, flags (movablekeys included), key positions, ACL
    // categories and tips.
    auto r = d_->redis_client().cmd({"COMMAND", "INFO", name});
    auto s = d_->subject_client().cmd({"COMMAND", "INFO", name});
    auto head = [](const std::string& reply) {
      const size_t categories_end = reply.find(']', reply.find("+@"));
      return reply.substr(0, reply.find(']', categories_end + 1) + 1);
    };
    EXPECT_EQ(head(r), head(s)) << name << "\n" << r << "\n" << s;
    // ZRANDMEMBER's docs nest deeper than hiredis reads (Redis's too).
    if (std::string_view(name) == "zrandmember") continue;
    auto docs = d_->subject_client().cmd({"COMMAND", "DOCS", name});
    EXPECT_NE(docs.find("summary"), std::string::npos) << docs;
  }
}

// In MULTI/EXEC the numkeys-counted keys are locked with the transaction's
// other keys. (Only reads here: a collection written inside a transaction is
// staged without its type today; see docs/data-types.md, "Not yet".)
TEST_P(ZsetStoreTest, InsideTransactions) {
  run({"ZADD", "a", "1", "x", "2", "y"});
  run({"ZADD", "b", "3", "y", "4", "z"});
  run({"MULTI"});
  run({"ZUNION", "2", "a", "b", "WITHSCORES"});
  run({"ZINTERCARD", "2", "a", "b"});
  run({"ZDIFF", "2", "b", "a", "WITHSCORES"});
  run({"ZSCAN", "a", "0"});
  run({"SET", "k", "v"});
  run({"EXEC"});
}

// A large sorted set (members and score index) survives a restart of a
// RocksDB node, and one created after the restart starts empty (the store
// finds the generations in use again, score-indexed ones included).
TEST(ZsetRestart, LargeSortedSetsSurviveARestart) {
  ServerProcess node(subject_options("rocksdb"));
  ASSERT_TRUE(node.start().ok());
  Args add = {"ZADD", "z"};
  for (int i = 0; i < 1000; ++i) {
    add.push_back(std::to_string(i % 100));
    add.push_back("m" + std::to_string(i));
  }
  {
    auto c = RedisClient::connect(node.port());
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->cmd(add), ":1000");
    EXPECT_EQ(c->cmd({"DEL", "z"}), ":1");  // retired, maybe not reclaimed yet
    EXPECT_EQ(c->cmd(add), ":1000");
    EXPECT_EQ(c->cmd({"ZADD", "z", "-5", "m7"}), ":0");
  }
  ASSERT_TRUE(node.stop().ok());
  ASSERT_TRUE(node.start().ok());
  auto c = RedisClient::connect(node.port());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->cmd({"ZCARD", "z"}), ":1000");
  EXPECT_EQ(c->cmd({"ZRANGE", "z", "0", "2", "WITHSCORES"}),
            "[\"m7\", \"-5\", \"m0\", \"0\", \"m100\", \"0\"]");
  EXPECT_EQ(c->cmd({"ZREVRANGE", "z", "0", "1"}), "[\"m999\", \"m99\"]");
  EXPECT_EQ(c->cmd({"ZRANK", "z", "m100"}), ":2");
  EXPECT_EQ(c->cmd({"ZCOUNT", "z", "(98", "+inf"}), ":10");
  Args fresh = {"ZADD", "fresh"};
  for (int i = 0; i < 600; ++i) {
    fresh.push_back(std::to_string(-i));
    fresh.push_back("n" + std::to_string(i));
  }
  EXPECT_EQ(c->cmd(fresh), ":600");
  EXPECT_EQ(c->cmd({"ZCARD", "fresh"}), ":600");
  EXPECT_EQ(c->cmd({"ZRANGE", "fresh", "0", "0"}), "[\"n599\"]");
  EXPECT_EQ(c->cmd({"ZRANGE", "fresh", "-1", "-1"}), "[\"n0\"]");
  EXPECT_EQ(c->cmd({"ZSCORE", "fresh", "m1"}), "(nil)");
  EXPECT_EQ(c->cmd({"ZCARD", "z"}), ":1000");
}

// A RocksDB data dir holding a sorted set's score index in the layout of the
// builds before the compact one ("s" + be64(gen) + ... keys, record.h
// kLegacyScorePrefix) is refused at start with a message saying why, instead
// of being served with its sorted sets unreadable.
TEST(ZsetRestart, ADataDirWithTheEarlierScoreIndexIsRefused) {
  if (subject_kind() != ServerKind::kStatekv) GTEST_SKIP() << "a statekv data dir";
  ServerProcess node(subject_options("rocksdb"));
  ASSERT_TRUE(node.start().ok());
  {
    auto c = RedisClient::connect(node.port());
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->cmd({"SET", "k", "v"}), "+OK");
  }
  ASSERT_TRUE(node.stop().ok());
  {
    // What the earlier build wrote for ZADD z 0 m on a fresh store (generation
    // 1 with the marker bit): the index entry, beside its member.
    storage::RocksDbEngineOptions options;
    options.path = node.data_dir() + "/rocksdb";
    auto engine = storage::open_rocksdb_engine(options);
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
    const std::string legacy("s\0\0\x80\0\0\0\0\x01\x80\0\0\0\0\0\0\0m", 18);
    ASSERT_TRUE((*engine)->put(legacy, std::string(8, '\0')).ok());
  }
  EXPECT_FALSE(node.start(std::chrono::seconds(10)).ok());
  EXPECT_NE(node.log_tail().find("earlier statekv build"), std::string::npos) << node.log_tail();
}

INSTANTIATE_TEST_SUITE_P(Engines, ZsetStoreTest, ::testing::Values("memory", "rocksdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace statekv::itest
