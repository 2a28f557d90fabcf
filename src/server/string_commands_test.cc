// String commands driven through Service::execute, compared with Redis 7.0's
// replies and error texts.
#include "server/service_test_util.h"

namespace statekv::server {
namespace {

using testing::Harness;

TEST(StringCommands, GetSetAndArity) {
  Harness h;
  EXPECT_NIL(h.run({"GET", "k"}));
  EXPECT_OK(h.run({"SET", "k", "v"}));
  EXPECT_BULK(h.run({"get", "k"}), "v");
  EXPECT_ERR(h.run({"GET"}), "ERR wrong number of arguments for 'get' command");
  EXPECT_ERR(h.run({"GET", "a", "b"}), "ERR wrong number of arguments for 'get' command");
  EXPECT_ERR(h.run({"SET", "k"}), "ERR wrong number of arguments for 'set' command");
  // Binary-safe keys and values.
  std::string key("a\0b\r\n", 5);
  std::string value("\0\xff\x01", 3);
  EXPECT_OK(h.run({"SET", key, value}));
  auto v = h.run({"GET", key});
  EXPECT_EQ(v.str, value);
}

TEST(StringCommands, SetOptions) {
  Harness h;
  EXPECT_NIL(h.run({"SET", "k", "v", "XX"}));
  EXPECT_NIL(h.run({"GET", "k"}));
  EXPECT_OK(h.run({"SET", "k", "v", "NX"}));
  EXPECT_NIL(h.run({"SET", "k", "w", "nx"}));
  EXPECT_OK(h.run({"SET", "k", "w", "XX"}));
  EXPECT_BULK(h.run({"SET", "k", "x", "GET"}), "w");
  EXPECT_NIL(h.run({"SET", "new", "x", "GET"}));
  // NX + GET on an existing key: returns the old value, sets nothing.
  EXPECT_BULK(h.run({"SET", "k", "y", "NX", "GET"}), "x");
  EXPECT_BULK(h.run({"GET", "k"}), "x");

  const char* bad[][6] = {
      {"SET", "k", "v", "NX", "XX", nullptr},         {"SET", "k", "v", "EX", "10", "PX"},
      {"SET", "k", "v", "EX", nullptr, nullptr},      {"SET", "k", "v", "KEEPTTL", "EX", "1"},
      {"SET", "k", "v", "PERSIST", nullptr, nullptr}, {"SET", "k", "v", "FOO", nullptr, nullptr},
  };
  for (auto& row : bad) {
    std::vector<std::string> args;
    for (auto* a : row) {
      if (a != nullptr) args.emplace_back(a);
    }
    EXPECT_ERR(h.run(args), "ERR syntax error") << args.size();
  }
  // EX repeated is accepted by Redis (the flag check doesn't exclude itself).
  EXPECT_OK(h.run({"SET", "k", "v", "EX", "10", "EX", "20"}));
  EXPECT_INT(h.run({"TTL", "k"}), 20);
  EXPECT_ERR(h.run({"SET", "k", "v", "EX", "0"}), "ERR invalid expire time in 'set' command");
  EXPECT_ERR(h.run({"SET", "k", "v", "PX", "-5"}), "ERR invalid expire time in 'set' command");
  EXPECT_ERR(h.run({"SET", "k", "v", "EX", "abc"}), "ERR value is not an integer or out of range");
  EXPECT_ERR(h.run({"SET", "k", "v", "EX", "9223372036854775807"}),
             "ERR invalid expire time in 'set' command");
  EXPECT_ERR(h.run({"SETEX", "k", "0", "v"}), "ERR invalid expire time in 'setex' command");
  EXPECT_ERR(h.run({"PSETEX", "k", "-1", "v"}), "ERR invalid expire time in 'psetex' command");
}

TEST(StringCommands, SetExpiryVariants) {
  Harness h;
  EXPECT_OK(h.run({"SET", "k", "v", "EX", "100"}));
  EXPECT_INT(h.run({"TTL", "k"}), 100);
  EXPECT_OK(h.run({"SET", "k", "v2", "KEEPTTL"}));
  EXPECT_INT(h.run({"TTL", "k"}), 100);
  EXPECT_OK(h.run({"SET", "k", "v3"}));
  EXPECT_INT(h.run({"TTL", "k"}), -1);
  auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  EXPECT_OK(h.run({"SET", "k", "v", "EXAT", std::to_string(now_s + 50)}));
  auto ttl = h.run({"TTL", "k"});
  EXPECT_GE(ttl.integer, 49);
  EXPECT_LE(ttl.integer, 50);
  EXPECT_INT(h.run({"EXPIRETIME", "k"}), now_s + 50);
  EXPECT_INT(h.run({"PEXPIRETIME", "k"}), (now_s + 50) * 1000);
  // An absolute time in the past: the key is gone at once.
  EXPECT_OK(h.run({"SET", "k", "v", "PXAT", "1"}));
  EXPECT_NIL(h.run({"GET", "k"}));
  EXPECT_INT(h.run({"DBSIZE"}), 0);
  EXPECT_OK(h.run({"SETEX", "s", "10", "v"}));
  EXPECT_INT(h.run({"TTL", "s"}), 10);
  EXPECT_OK(h.run({"PSETEX", "p", "10000", "v"}));
  auto pttl = h.run({"PTTL", "p"});
  EXPECT_GT(pttl.integer, 9000);
  EXPECT_LE(pttl.integer, 10000);
  EXPECT_INT(h.run({"SETNX", "p", "w"}), 0);
  EXPECT_INT(h.run({"SETNX", "q", "w"}), 1);
}

TEST(StringCommands, GetSetGetDelGetEx) {
  Harness h;
  EXPECT_NIL(h.run({"GETSET", "k", "1"}));
  EXPECT_INT(h.run({"EXPIRE", "k", "100"}), 1);
  EXPECT_BULK(h.run({"GETSET", "k", "2"}), "1");
  EXPECT_INT(h.run({"TTL", "k"}), -1);  // GETSET clears the TTL
  EXPECT_BULK(h.run({"GETDEL", "k"}), "2");
  EXPECT_NIL(h.run({"GETDEL", "k"}));
  EXPECT_INT(h.run({"EXISTS", "k"}), 0);

  EXPECT_NIL(h.run({"GETEX", "k", "EX", "10"}));
  EXPECT_OK(h.run({"SET", "k", "v"}));
  EXPECT_BULK(h.run({"GETEX", "k"}), "v");
  EXPECT_INT(h.run({"TTL", "k"}), -1);
  EXPECT_BULK(h.run({"GETEX", "k", "EX", "100"}), "v");
  EXPECT_INT(h.run({"TTL", "k"}), 100);
  EXPECT_BULK(h.run({"GETEX", "k", "PERSIST"}), "v");
  EXPECT_INT(h.run({"TTL", "k"}), -1);
  EXPECT_BULK(h.run({"GETEX", "k", "PX", "100000"}), "v");
  EXPECT_BULK(h.run({"GETEX", "k", "PXAT", "1"}), "v");  // past: deleted after replying
  EXPECT_INT(h.run({"EXISTS", "k"}), 0);
  EXPECT_ERR(h.run({"GETEX", "k", "EX", "1", "PERSIST"}), "ERR syntax error");
  EXPECT_ERR(h.run({"GETEX", "k", "NX"}), "ERR syntax error");
  EXPECT_ERR(h.run({"GETEX", "k", "KEEPTTL"}), "ERR syntax error");
  EXPECT_ERR(h.run({"GETEX", "k", "EX", "0"}), "ERR invalid expire time in 'getex' command");
  EXPECT_ERR(h.run({"GETEX", "k", "EX", "x"}), "ERR value is not an integer or out of range");
}

TEST(StringCommands, MgetMsetMsetnx) {
  Harness h;
  EXPECT_OK(h.run({"MSET", "a", "1", "b", "2", "a", "3"}));
  auto v = h.run({"MGET", "a", "b", "c"});
  EXPECT_EQ(testing::describe(v), "[$3, $2, (nil), ]");
  EXPECT_INT(h.run({"DBSIZE"}), 2);
  EXPECT_ERR(h.run({"MSET", "a", "1", "b"}), "ERR wrong number of arguments for 'mset' command");
  EXPECT_ERR(h.run({"MSETNX", "a"}), "ERR wrong number of arguments for 'msetnx' command");
  EXPECT_INT(h.run({"MSETNX", "c", "1", "a", "9"}), 0);
  EXPECT_NIL(h.run({"GET", "c"}));
  EXPECT_INT(h.run({"MSETNX", "c", "1", "d", "2"}), 1);
  EXPECT_INT(h.run({"DBSIZE"}), 4);
  EXPECT_OK(h.run({"SET", "t", "x", "EX", "100"}));
  EXPECT_OK(h.run({"MSET", "t", "y"}));
  EXPECT_INT(h.run({"TTL", "t"}), -1);  // MSET clears TTLs
}

TEST(StringCommands, IncrDecr) {
  Harness h;
  EXPECT_INT(h.run({"INCR", "n"}), 1);
  EXPECT_INT(h.run({"INCRBY", "n", "10"}), 11);
  EXPECT_INT(h.run({"DECR", "n"}), 10);
  EXPECT_INT(h.run({"DECRBY", "n", "-5"}), 15);
  EXPECT_OK(h.run({"SET", "n", "9223372036854775806"}));
  EXPECT_INT(h.run({"INCR", "n"}), INT64_MAX);
  EXPECT_ERR(h.run({"INCR", "n"}), "ERR increment or decrement would overflow");
  EXPECT_OK(h.run({"SET", "n", "-9223372036854775808"}));
  EXPECT_ERR(h.run({"DECR", "n"}), "ERR increment or decrement would overflow");
  EXPECT_ERR(h.run({"DECRBY", "x", "-9223372036854775808"}), "ERR decrement would overflow");
  for (const char* bad : {"abc", " 1", "1 ", "01", "+1", "-0", "1.5", "", "99999999999999999999"}) {
    EXPECT_OK(h.run({"SET", "s", bad}));
    EXPECT_ERR(h.run({"INCR", "s"}), "ERR value is not an integer or out of range") << bad;
  }
  EXPECT_ERR(h.run({"INCRBY", "n", "x"}), "ERR value is not an integer or out of range");
  // INCR keeps the TTL.
  EXPECT_OK(h.run({"SET", "t", "5", "EX", "100"}));
  EXPECT_INT(h.run({"INCR", "t"}), 6);
  EXPECT_INT(h.run({"TTL", "t"}), 100);
}

TEST(StringCommands, IncrByFloat) {
  Harness h;
  EXPECT_BULK(h.run({"INCRBYFLOAT", "f", "10.5"}), "10.5");
  EXPECT_BULK(h.run({"INCRBYFLOAT", "f", "0.1"}), "10.6");
  EXPECT_BULK(h.run({"INCRBYFLOAT", "f", "-5"}), "5.6");
  EXPECT_OK(h.run({"SET", "f", "5.0e3"}));
  EXPECT_BULK(h.run({"INCRBYFLOAT", "f", "2.0e2"}), "5200");
  EXPECT_OK(h.run({"SET", "f", "1"}));
  EXPECT_BULK(h.run({"INCRBYFLOAT", "f", "-1"}), "0");
  // Redis prints 17 decimals of the long double sum, rounding error included.
  EXPECT_BULK(h.run({"INCRBYFLOAT", "g", "1e3"}), "1000");
  EXPECT_BULK(h.run({"INCRBYFLOAT", "g", "0.1"}), "1000.09999999999999998");
  EXPECT_ERR(h.run({"INCRBYFLOAT", "f", "abc"}), "ERR value is not a valid float");
  EXPECT_ERR(h.run({"INCRBYFLOAT", "f", "nan"}), "ERR value is not a valid float");
  EXPECT_ERR(h.run({"INCRBYFLOAT", "f", "inf"}), "ERR increment would produce NaN or Infinity");
  EXPECT_OK(h.run({"SET", "s", "x"}));
  EXPECT_ERR(h.run({"INCRBYFLOAT", "s", "1"}), "ERR value is not a valid float");
}

TEST(StringCommands, AppendStrlenRanges) {
  Harness h;
  EXPECT_INT(h.run({"APPEND", "k", "Hello"}), 5);
  EXPECT_INT(h.run({"APPEND", "k", " World"}), 11);
  EXPECT_INT(h.run({"STRLEN", "k"}), 11);
  EXPECT_INT(h.run({"STRLEN", "nokey"}), 0);
  EXPECT_BULK(h.run({"GETRANGE", "k", "0", "4"}), "Hello");
  EXPECT_BULK(h.run({"GETRANGE", "k", "-5", "-1"}), "World");
  EXPECT_BULK(h.run({"GETRANGE", "k", "-1", "-5"}), "");
  EXPECT_BULK(h.run({"GETRANGE", "k", "5", "3"}), "");
  EXPECT_BULK(h.run({"GETRANGE", "k", "0", "100"}), "Hello World");
  EXPECT_BULK(h.run({"GETRANGE", "k", "-100", "2"}), "Hel");
  EXPECT_BULK(h.run({"GETRANGE", "nokey", "0", "1"}), "");
  EXPECT_ERR(h.run({"GETRANGE", "k", "a", "1"}), "ERR value is not an integer or out of range");

  EXPECT_INT(h.run({"SETRANGE", "k", "6", "Redis"}), 11);
  EXPECT_BULK(h.run({"GET", "k"}), "Hello Redis");
  EXPECT_INT(h.run({"SETRANGE", "pad", "3", "x"}), 4);
  EXPECT_EQ(h.run({"GET", "pad"}).str, std::string("\0\0\0x", 4));
  EXPECT_INT(h.run({"SETRANGE", "none", "5", ""}), 0);
  EXPECT_INT(h.run({"EXISTS", "none"}), 0);
  EXPECT_INT(h.run({"SETRANGE", "k", "100", ""}), 11);
  EXPECT_ERR(h.run({"SETRANGE", "k", "-1", "x"}), "ERR offset is out of range");
  EXPECT_ERR(h.run({"SETRANGE", "k", "536870912", "x"}),
             "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
  EXPECT_INT(h.run({"SETRANGE", "k", "536870911", ""}), 11);
  // The limit follows CONFIG SET proto-max-bulk-len.
  EXPECT_OK(h.run({"CONFIG", "SET", "proto-max-bulk-len", "2mb"}));
  EXPECT_ERR(h.run({"APPEND", "k", std::string(2 * 1024 * 1024, 'x')}),
             "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
}

TEST(StringCommands, DurableSequenceIsReturned) {
  Harness h;
  storage::Sequence seq = 0;
  h.run({"SET", "k", "v"}, &seq);
  EXPECT_GT(seq, 0u);
  EXPECT_EQ(seq, h.engine().last_sequence());
  storage::Sequence read_seq = 99;
  h.run({"GET", "k"}, &read_seq);
  EXPECT_EQ(read_seq, 0u);
  storage::Sequence second = 0;
  h.run({"MSET", "a", "1", "b", "2"}, &second);
  EXPECT_GT(second, seq);
  storage::Sequence noop = 99;
  h.run({"SET", "k", "v", "NX"}, &noop);  // nothing written
  EXPECT_EQ(noop, 0u);
}

TEST(StringCommands, KeyspaceCounters) {
  Harness h;
  h.run({"SET", "k", "v"});
  h.run({"GET", "k"});
  h.run({"GET", "k"});
  h.run({"GET", "missing"});
  h.run({"MGET", "k", "missing"});
  EXPECT_EQ(h.stats().sum(&ServerStats::Slot::keyspace_hits), 3u);
  EXPECT_EQ(h.stats().sum(&ServerStats::Slot::keyspace_misses), 2u);
  EXPECT_EQ(h.stats().sum(&ServerStats::Slot::commands), 5u);
  EXPECT_EQ(h.session().commands.load(), 5u);
}

}  // namespace
}  // namespace statekv::server
