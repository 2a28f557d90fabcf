// Keyspace commands and expiry, driven through Service::execute.
#include <set>

#include "server/service_test_util.h"

namespace statekv::server {
namespace {

using testing::eventually;
using testing::Harness;

TEST(KeyCommands, DelExistsTypeUnlink) {
  Harness h;
  h.run({"MSET", "a", "1", "b", "2", "c", "3"});
  EXPECT_INT(h.run({"EXISTS", "a", "a", "x"}), 2);  // duplicates count twice
  EXPECT_SIMPLE(h.run({"TYPE", "a"}), "string");
  EXPECT_SIMPLE(h.run({"TYPE", "x"}), "none");
  EXPECT_INT(h.run({"DEL", "a", "a", "x"}), 1);
  EXPECT_INT(h.run({"UNLINK", "b", "c"}), 2);
  EXPECT_INT(h.run({"DBSIZE"}), 0);
  EXPECT_ERR(h.run({"DEL"}), "ERR wrong number of arguments for 'del' command");
}

TEST(KeyCommands, ExpireFamily) {
  Harness h;
  EXPECT_INT(h.run({"EXPIRE", "k", "100"}), 0);
  EXPECT_INT(h.run({"TTL", "k"}), -2);
  EXPECT_INT(h.run({"PTTL", "k"}), -2);
  EXPECT_INT(h.run({"EXPIRETIME", "k"}), -2);
  h.run({"SET", "k", "v"});
  EXPECT_INT(h.run({"TTL", "k"}), -1);
  EXPECT_INT(h.run({"PEXPIRETIME", "k"}), -1);
  EXPECT_INT(h.run({"EXPIRE", "k", "100", "XX"}), 0);
  EXPECT_INT(h.run({"EXPIRE", "k", "100", "GT"}), 0);  // no TTL is infinite
  EXPECT_INT(h.run({"EXPIRE", "k", "100", "NX"}), 1);
  EXPECT_INT(h.run({"EXPIRE", "k", "200", "NX"}), 0);
  EXPECT_INT(h.run({"EXPIRE", "k", "50", "GT"}), 0);
  EXPECT_INT(h.run({"EXPIRE", "k", "200", "GT"}), 1);
  EXPECT_INT(h.run({"TTL", "k"}), 200);
  EXPECT_INT(h.run({"EXPIRE", "k", "300", "LT"}), 0);
  EXPECT_INT(h.run({"EXPIRE", "k", "150", "LT", "XX"}), 1);
  EXPECT_INT(h.run({"TTL", "k"}), 150);
  EXPECT_INT(h.run({"PEXPIRE", "k", "100000"}), 1);
  EXPECT_INT(h.run({"TTL", "k"}), 100);
  EXPECT_ERR(h.run({"EXPIRE", "k", "1", "NX", "XX"}),
             "ERR NX and XX, GT or LT options at the same time are not compatible");
  EXPECT_ERR(h.run({"EXPIRE", "k", "1", "GT", "LT"}),
             "ERR GT and LT options at the same time are not compatible");
  EXPECT_ERR(h.run({"EXPIRE", "k", "1", "FOO"}), "ERR Unsupported option FOO");
  EXPECT_ERR(h.run({"EXPIRE", "k", "x"}), "ERR value is not an integer or out of range");
  EXPECT_ERR(h.run({"EXPIRE", "k", "9223372036854775807"}),
             "ERR invalid expire time in 'expire' command");
  EXPECT_ERR(h.run({"PEXPIRE", "k", "9223372036854775807"}),
             "ERR invalid expire time in 'pexpire' command");
  EXPECT_INT(h.run({"PERSIST", "k"}), 1);
  EXPECT_INT(h.run({"PERSIST", "k"}), 0);
  EXPECT_INT(h.run({"TTL", "k"}), -1);
  // A time in the past deletes the key and answers 1.
  EXPECT_INT(h.run({"EXPIRE", "k", "-1"}), 1);
  EXPECT_INT(h.run({"EXISTS", "k"}), 0);
  h.run({"SET", "k", "v"});
  EXPECT_INT(h.run({"EXPIREAT", "k", "1"}), 1);
  EXPECT_INT(h.run({"EXISTS", "k"}), 0);
  h.run({"SET", "k", "v"});
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  EXPECT_INT(h.run({"PEXPIREAT", "k", std::to_string(now_ms + 60000)}), 1);
  EXPECT_INT(h.run({"PEXPIRETIME", "k"}), now_ms + 60000);
  EXPECT_INT(h.run({"EXPIRETIME", "k"}), (now_ms + 60000) / 1000);
}

TEST(KeyCommands, LazyExpiry) {
  Harness h;
  h.service().stop();  // no active expiry: only reads can expire keys here
  h.run({"SET", "k", "v", "PX", "20"});
  h.run({"SET", "keep", "v"});
  EXPECT_INT(h.run({"DBSIZE"}), 2);
  ASSERT_TRUE(eventually([&] { return h.run({"GET", "k"}).type == resp::Value::Type::kNull; }));
  EXPECT_INT(h.run({"DBSIZE"}), 1);
  EXPECT_EQ(h.stats().sum(&ServerStats::Slot::expired_keys), 1u);
  auto info = h.run({"INFO", "keyspace"});
  EXPECT_NE(info.str.find("db0:keys=1,expires=0,avg_ttl=0"), std::string::npos) << info.str;
}

TEST(KeyCommands, ActiveExpiry) {
  Harness h;
  h.service().start();
  for (int i = 0; i < 50; ++i) h.run({"SET", "t" + std::to_string(i), "v", "PX", "30"});
  h.run({"SET", "keep", "v", "EX", "1000"});
  EXPECT_INT(h.run({"DBSIZE"}), 51);
  auto info = h.run({"INFO", "keyspace"});
  EXPECT_NE(info.str.find("db0:keys=51,expires=51"), std::string::npos) << info.str;
  // Nobody reads the keys: only the background cycle can remove them.
  ASSERT_TRUE(eventually([&] { return h.run({"DBSIZE"}).integer == 1; }));
  EXPECT_EQ(h.stats().sum(&ServerStats::Slot::expired_keys), 50u);
  info = h.run({"INFO", "keyspace"});
  EXPECT_NE(info.str.find("db0:keys=1,expires=1"), std::string::npos) << info.str;
}

TEST(KeyCommands, KeysPatterns) {
  Harness h;
  h.run({"MSET", "hello", "1", "hallo", "1", "hxllo", "1", "hllo", "1", "heeeello", "1", "other",
         "1", "h*x", "1"});
  auto keys = [&](const std::string& pattern) {
    std::set<std::string> out;
    for (const auto& e : h.run({"KEYS", pattern}).elements) out.insert(e.str);
    return out;
  };
  using S = std::set<std::string>;
  EXPECT_EQ(keys("h?llo"), (S{"hello", "hallo", "hxllo"}));
  EXPECT_EQ(keys("h*llo"), (S{"hello", "hallo", "hxllo", "hllo", "heeeello"}));
  EXPECT_EQ(keys("h[ae]llo"), (S{"hello", "hallo"}));
  EXPECT_EQ(keys("h[^e]llo"), (S{"hallo", "hxllo"}));
  EXPECT_EQ(keys("h[a-b]llo"), (S{"hallo"}));
  EXPECT_EQ(keys("h\\*x"), (S{"h*x"}));
  EXPECT_EQ(keys("*").size(), 7u);
  EXPECT_EQ(keys("nomatch*"), S{});
}

TEST(KeyCommands, ScanVisitsEveryKeyOnce) {
  Harness h;
  std::set<std::string> expected;
  for (int i = 0; i < 95; ++i) {
    std::string k = "key:" + std::to_string(i);
    h.run({"SET", k, "v"});
    expected.insert(k);
  }
  h.run({"SET", "other", "v"});
  std::set<std::string> seen;
  std::string cursor = "0";
  int calls = 0;
  do {
    auto r = h.run({"SCAN", cursor, "MATCH", "key:*", "COUNT", "10"});
    ASSERT_EQ(r.elements.size(), 2u);
    cursor = r.elements[0].str;
    for (const auto& e : r.elements[1].elements) EXPECT_TRUE(seen.insert(e.str).second) << e.str;
    ASSERT_LT(++calls, 100);
  } while (cursor != "0");
  EXPECT_EQ(seen, expected);
  EXPECT_GE(calls, 10);

  // TYPE filter, default COUNT.
  auto r = h.run({"SCAN", "0", "TYPE", "hash", "COUNT", "1000"});
  EXPECT_EQ(r.elements[0].str, "0");
  EXPECT_TRUE(r.elements[1].elements.empty());
  r = h.run({"SCAN", "0", "TYPE", "string", "COUNT", "1000"});
  EXPECT_EQ(r.elements[1].elements.size(), 96u);

  EXPECT_ERR(h.run({"SCAN", "12345678"}), "ERR invalid cursor");
  EXPECT_ERR(h.run({"SCAN", "abc"}), "ERR invalid cursor");
  EXPECT_ERR(h.run({"SCAN", "0", "COUNT", "0"}), "ERR syntax error");
  EXPECT_ERR(h.run({"SCAN", "0", "COUNT", "x"}), "ERR value is not an integer or out of range");
  EXPECT_ERR(h.run({"SCAN", "0", "MATCH"}), "ERR syntax error");
  EXPECT_ERR(h.run({"SCAN", "0", "FOO", "1"}), "ERR syntax error");
}

TEST(KeyCommands, RandomKey) {
  Harness h;
  EXPECT_NIL(h.run({"RANDOMKEY"}));
  std::set<std::string> keys;
  for (int i = 0; i < 20; ++i) {
    keys.insert("k" + std::to_string(i));
    h.run({"SET", "k" + std::to_string(i), "v"});
  }
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    auto r = h.run({"RANDOMKEY"});
    ASSERT_EQ(r.type, resp::Value::Type::kBulk);
    EXPECT_TRUE(keys.count(r.str)) << r.str;
    seen.insert(r.str);
  }
  EXPECT_GT(seen.size(), 5u);  // not always the same key
}

TEST(KeyCommands, RenameMovesValueAndTtl) {
  Harness h;
  EXPECT_ERR(h.run({"RENAME", "a", "b"}), "ERR no such key");
  EXPECT_ERR(h.run({"RENAMENX", "a", "b"}), "ERR no such key");
  h.run({"SET", "a", "1", "EX", "100"});
  h.run({"SET", "b", "2"});
  EXPECT_OK(h.run({"RENAME", "a", "a"}));
  EXPECT_INT(h.run({"RENAMENX", "a", "a"}), 0);
  EXPECT_INT(h.run({"RENAMENX", "a", "b"}), 0);
  EXPECT_OK(h.run({"RENAME", "a", "b"}));
  EXPECT_BULK(h.run({"GET", "b"}), "1");
  EXPECT_INT(h.run({"TTL", "b"}), 100);
  EXPECT_INT(h.run({"EXISTS", "a"}), 0);
  EXPECT_INT(h.run({"RENAMENX", "b", "c"}), 1);
  EXPECT_INT(h.run({"DBSIZE"}), 1);
  auto info = h.run({"INFO", "keyspace"});
  EXPECT_NE(info.str.find("db0:keys=1,expires=1"), std::string::npos) << info.str;
}

TEST(KeyCommands, FlushAndDbsize) {
  Harness h;
  h.run({"MSET", "a", "1", "b", "2"});
  h.run({"SET", "c", "1", "EX", "10"});
  EXPECT_INT(h.run({"DBSIZE"}), 3);
  EXPECT_OK(h.run({"FLUSHDB"}));
  EXPECT_INT(h.run({"DBSIZE"}), 0);
  h.run({"SET", "a", "1"});
  EXPECT_OK(h.run({"FLUSHALL", "ASYNC"}));
  EXPECT_OK(h.run({"FLUSHALL", "sync"}));
  EXPECT_ERR(h.run({"FLUSHALL", "x"}), "ERR syntax error");
  EXPECT_ERR(h.run({"FLUSHDB", "SYNC", "x"}), "ERR syntax error");
  EXPECT_NIL(h.run({"GET", "a"}));
  auto info = h.run({"INFO", "keyspace"});
  EXPECT_EQ(info.str.find("db0:"), std::string::npos) << info.str;
}

}  // namespace
}  // namespace statekv::server
