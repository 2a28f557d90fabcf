// Every command of issue 2 item 4, run as the same sequence against redis-server 7
// and statekv (memory and rocksdb engines), comparing replies exactly: values,
// error texts and edge cases. Replies that legitimately differ between two
// servers (INFO, CLIENT ids, TIME, COMMAND output) are checked by property.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "support/differential.h"
#include "support/redis_client.h"
#include "support/server_process.h"

namespace statekv::itest {
namespace {

using Args = std::vector<std::string>;

class CommandsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    d_ = std::make_unique<Differential>(subject_options(GetParam()));
    ASSERT_TRUE(d_->ok());
  }
  std::string run(const Args& args) { return d_->run(args); }
  std::unique_ptr<Differential> d_;
};

TEST_P(CommandsTest, ConnectionCommands) {
  EXPECT_EQ(run({"PING"}), "+PONG");
  EXPECT_EQ(run({"PING", "hello"}), "\"hello\"");
  run({"PING", "a", "b"});
  EXPECT_EQ(run({"ECHO", "x y"}), "\"x y\"");
  run({"ECHO"});
  run({"ECHO", "a", "b"});
  EXPECT_EQ(run({"SELECT", "0"}), "+OK");
  EXPECT_EQ(run({"SELECT", "1"}), "-ERR DB index is out of range");
  run({"SELECT", "-1"});
  run({"SELECT", "abc"});
  run({"SELECT"});
  run({"AUTH", "secret"});
  run({"AUTH", "default", "secret"});
  run({"AUTH"});
  run({"HELLO", "4"});
  run({"HELLO", "abc"});
  // Redis Cluster's connection modes, on a server without a cluster.
  run({"READONLY"});
  run({"READWRITE"});
  run({"ASKING"});
  run({"READONLY", "x"});
}

TEST_P(CommandsTest, UnknownCommandAndArity) {
  run({"NOSUCHCMD"});
  run({"nosuchcmd", "a", "b"});
  run({"FOO", std::string(200, 'x')});
  run({"GET"});
  run({"GET", "a", "b"});
  run({"SET", "k"});
  run({"MSET", "a"});
  run({"MSET", "a", "b", "c"});
  run({"MGET"});
  run({"DEL"});
  run({"INCRBY", "k"});
  run({"GETRANGE", "k", "0"});
  run({"EXPIRE", "k"});
  run({"RENAME", "a"});
  run({"DBSIZE", "x"});
  run({"get", "lowercase-works"});
  run({"GeT", "MiXeD"});
}

TEST_P(CommandsTest, StringBasics) {
  EXPECT_EQ(run({"SET", "k", "v"}), "+OK");
  EXPECT_EQ(run({"GET", "k"}), "\"v\"");
  EXPECT_EQ(run({"GET", "missing"}), "(nil)");
  run({"SET", "empty", ""});
  run({"GET", "empty"});
  run({"STRLEN", "empty"});
  run({"STRLEN", "k"});
  run({"STRLEN", "missing"});
  EXPECT_EQ(run({"APPEND", "k", "123"}), ":4");
  run({"APPEND", "new", "abc"});
  run({"GET", "k"});
  run({"SETNX", "k", "x"});
  run({"SETNX", "k2", "x"});
  run({"GETSET", "k2", "y"});
  run({"GETSET", "k3", "z"});
  run({"GETDEL", "k3"});
  run({"GETDEL", "k3"});
  run({"MSET", "a", "1", "b", "2", "c", "3"});
  run({"MGET", "a", "missing", "b", "c", "a"});
  run({"MSETNX", "a", "9", "z", "9"});
  run({"MGET", "a", "z"});
  run({"MSETNX", "x1", "1", "x2", "2"});
  run({"MGET", "x1", "x2"});
  run({"MSETNX", "x3", "1", "x3", "2"});
  run({"GET", "x3"});
  run({"EXISTS", "a", "a", "missing", "b"});
  run({"TOUCH", "a", "a", "missing", "b"});
  run({"TOUCH"});
  run({"TYPE", "a"});
  run({"TYPE", "missing"});
  run({"DEL", "a", "b", "missing"});
  run({"UNLINK", "c", "c", "x1"});
  run({"EXISTS", "a", "b", "c", "x1"});
  run({"SETEX", "se", "100", "v"});
  run({"TTL", "se"});
  run({"SETEX", "se", "0", "v"});
  run({"SETEX", "se", "-5", "v"});
  run({"SETEX", "se", "abc", "v"});
  run({"PSETEX", "pse", "100000", "v"});
  run({"GET", "pse"});
  run({"PSETEX", "pse", "0", "v"});
  run({"DBSIZE"});
}

TEST_P(CommandsTest, SetOptions) {
  run({"SET", "k", "v1", "NX"});
  run({"SET", "k", "v2", "NX"});
  run({"SET", "k", "v3", "XX"});
  run({"SET", "other", "v", "XX"});
  run({"GET", "other"});
  run({"SET", "k", "v", "NX", "XX"});
  run({"SET", "k", "v", "EX", "10", "PX", "100"});
  run({"SET", "k", "v", "EX"});
  run({"SET", "k", "v", "EX", "0"});
  run({"SET", "k", "v", "EX", "-1"});
  run({"SET", "k", "v", "EX", "abc"});
  run({"SET", "k", "v", "EX", "9223372036854775807"});
  run({"SET", "k", "v", "PX", "0"});
  run({"SET", "k", "v", "PX", "9223372036854775807"});
  run({"SET", "k", "v", "EXAT", "0"});
  run({"SET", "k", "v", "PXAT", "-3"});
  run({"SET", "k", "v", "FOO"});
  run({"SET", "k", "old"});
  EXPECT_EQ(run({"SET", "k", "new", "GET"}), "\"old\"");
  run({"SET", "fresh", "new", "GET"});
  run({"SET", "k", "x", "NX", "GET"});
  run({"SET", "nx-get", "x", "NX", "GET"});
  run({"SET", "k", "y", "XX", "GET"});
  run({"GET", "k"});
  run({"SET", "t", "v", "EX", "100"});
  run({"TTL", "t"});
  run({"SET", "t", "v2", "KEEPTTL"});
  run({"TTL", "t"});
  run({"SET", "t", "v3"});
  run({"TTL", "t"});
  run({"SET", "t", "v", "KEEPTTL", "EX", "5"});
  run({"SET", "t", "v", "ex", "100", "nx"});
  run({"SET", "pxat", "v", "PXAT", "32503680000000"});  // year 3000
  run({"EXPIRETIME", "pxat"});
  run({"SET", "exat", "v", "EXAT", "32503680000"});
  run({"EXPIRETIME", "exat"});
  // An absolute time in the past: the key is set and immediately gone.
  run({"SET", "past", "v", "EXAT", "1"});
  run({"EXISTS", "past"});
}

TEST_P(CommandsTest, GetEx) {
  run({"SET", "k", "v"});
  run({"GETEX", "k"});
  run({"GETEX", "missing"});
  run({"GETEX", "k", "EX", "100"});
  run({"TTL", "k"});
  run({"GETEX", "k", "PERSIST"});
  run({"TTL", "k"});
  run({"GETEX", "k", "PXAT", "32503680000000"});
  run({"EXPIRETIME", "k"});
  run({"GETEX", "k", "EX", "0"});
  run({"GETEX", "k", "EX", "-1"});
  run({"GETEX", "k", "EX", "10", "PX", "10"});
  run({"GETEX", "k", "FOO"});
  run({"GETEX", "k", "EXAT", "1"});
  run({"EXISTS", "k"});
}

TEST_P(CommandsTest, Counters) {
  EXPECT_EQ(run({"INCR", "n"}), ":1");
  run({"INCRBY", "n", "41"});
  run({"DECR", "n"});
  run({"DECRBY", "n", "-10"});
  run({"GET", "n"});
  run({"INCRBY", "n", "abc"});
  run({"INCRBY", "n", "1.5"});
  run({"INCRBY", "n", "99999999999999999999"});
  run({"SET", "s", "hello"});
  run({"INCR", "s"});
  for (const char* bad : {" 1", "1 ", "01", "+1", "-0", "1e3", "", "0x10", "9223372036854775808"}) {
    run({"SET", "bad", bad});
    run({"INCR", "bad"});
  }
  run({"SET", "max", "9223372036854775807"});
  run({"INCR", "max"});
  run({"INCRBY", "max", "-1"});
  run({"SET", "min", "-9223372036854775808"});
  run({"DECR", "min"});
  run({"DECRBY", "min", "-9223372036854775808"});
  run({"DECRBY", "x", "-9223372036854775808"});
  run({"SET", "neg", "-5"});
  run({"INCR", "neg"});
  run({"INCRBYFLOAT", "f", "1.5"});
  run({"INCRBYFLOAT", "f", "0.1"});
  run({"INCRBYFLOAT", "f", "-5"});
  run({"INCRBYFLOAT", "f", "3.0e3"});
  run({"INCRBYFLOAT", "f", "abc"});
  run({"INCRBYFLOAT", "f", "inf"});
  run({"INCRBYFLOAT", "f", "nan"});
  run({"SET", "i", "10"});
  run({"INCRBYFLOAT", "i", "10.5"});
  run({"INCRBYFLOAT", "i", "-20.5"});
  run({"GET", "i"});
  run({"SET", "e", "5.0e3"});
  run({"INCRBYFLOAT", "e", "200"});
  run({"INCRBYFLOAT", "s", "1"});
  run({"SET", "big", "1.7976931348623157e308"});
  run({"INCRBYFLOAT", "big", "1.7976931348623157e308"});
}

TEST_P(CommandsTest, Ranges) {
  run({"SET", "k", "Hello World"});
  for (auto [s, e] : std::vector<std::pair<const char*, const char*>>{{"0", "4"},
                                                                      {"-5", "-1"},
                                                                      {"0", "-1"},
                                                                      {"5", "2"},
                                                                      {"-100", "100"},
                                                                      {"20", "30"},
                                                                      {"-1", "-5"},
                                                                      {"0", "0"},
                                                                      {"10", "10"}}) {
    run({"GETRANGE", "k", s, e});
  }
  run({"GETRANGE", "missing", "0", "-1"});
  run({"GETRANGE", "k", "a", "1"});
  run({"SETRANGE", "k", "6", "Redis"});
  run({"GET", "k"});
  run({"SETRANGE", "k", "20", "pad"});
  run({"GET", "k"});
  run({"SETRANGE", "new", "3", "x"});
  run({"GET", "new"});
  run({"SETRANGE", "none", "5", ""});
  run({"EXISTS", "none"});
  run({"SETRANGE", "k", "0", ""});
  run({"SETRANGE", "k", "-1", "x"});
  run({"SETRANGE", "k", "abc", "x"});
  run({"SETRANGE", "k", "536870912", "x"});
  run({"SETRANGE", "k", "536870911", ""});
  run({"APPEND", "k", "!"});
  run({"STRLEN", "k"});
}

TEST_P(CommandsTest, ExpireCommands) {
  run({"SET", "k", "v"});
  run({"TTL", "k"});
  run({"PTTL", "k"});
  run({"TTL", "missing"});
  run({"PTTL", "missing"});
  run({"EXPIRETIME", "k"});
  run({"EXPIRETIME", "missing"});
  EXPECT_EQ(run({"EXPIRE", "k", "100"}), ":1");
  run({"TTL", "k"});
  run({"EXPIRE", "missing", "100"});
  run({"EXPIRE", "k", "abc"});
  run({"EXPIRE", "k", "9223372036854775807"});
  run({"PEXPIRE", "k", "9223372036854775807"});
  run({"EXPIRE", "k", "200", "NX"});
  run({"EXPIRE", "k", "200", "XX"});
  run({"TTL", "k"});
  run({"EXPIRE", "k", "100", "GT"});
  run({"EXPIRE", "k", "300", "GT"});
  run({"EXPIRE", "k", "400", "LT"});
  run({"EXPIRE", "k", "250", "LT"});
  run({"TTL", "k"});
  run({"EXPIRE", "k", "10", "NX", "XX"});
  run({"EXPIRE", "k", "10", "GT", "LT"});
  run({"EXPIRE", "k", "10", "FOO"});
  run({"PERSIST", "k"});
  run({"PERSIST", "k"});
  run({"PERSIST", "missing"});
  run({"TTL", "k"});
  run({"EXPIRE", "k", "10", "XX"});
  run({"EXPIRE", "k", "10", "LT"});  // no TTL counts as infinite: 10 < inf
  run({"TTL", "k"});
  run({"EXPIREAT", "k", "32503680000"});
  run({"EXPIRETIME", "k"});
  run({"PEXPIREAT", "k", "32503680000123"});
  run({"EXPIRETIME", "k"});
  run({"PEXPIRE", "k", "100000"});
  run({"TTL", "k"});
  // Zero, negative and past expiry delete the key.
  run({"SET", "z", "v"});
  run({"EXPIRE", "z", "0"});
  run({"EXISTS", "z"});
  run({"SET", "z", "v"});
  run({"EXPIRE", "z", "-10"});
  run({"EXISTS", "z"});
  run({"SET", "z", "v"});
  run({"EXPIREAT", "z", "1"});
  run({"GET", "z"});
  run({"SET", "z", "v"});
  run({"PEXPIREAT", "z", "0"});
  run({"TTL", "z"});
  run({"DBSIZE"});
}

TEST_P(CommandsTest, Keyspace) {
  run({"MSET", "user:1", "a", "user:2", "b", "user:10", "c", "other", "d", "h*llo", "e"});
  auto sorted_keys = [&](const std::string& pattern) {
    Result<std::vector<std::string>> r = d_->redis_client().bulk_array({"KEYS", pattern});
    Result<std::vector<std::string>> s = d_->subject_client().bulk_array({"KEYS", pattern});
    EXPECT_TRUE(r.ok() && s.ok()) << "KEYS " << pattern;
    if (!r.ok() || !s.ok()) return;
    std::sort(r->begin(), r->end());
    std::sort(s->begin(), s->end());
    EXPECT_EQ(*r, *s) << "KEYS " << pattern;
  };
  for (const char* p : {"*", "user:*", "user:?", "user:[12]", "user:[^1]*", "h\\*llo", "*o*",
                        "nothing*", "user:1*", "[a-p]*", "\\"}) {
    sorted_keys(p);
  }
  run({"DBSIZE"});
  run({"RENAME", "other", "renamed"});
  run({"GET", "renamed"});
  run({"EXISTS", "other"});
  run({"RENAME", "missing", "x"});
  run({"RENAME", "renamed", "renamed"});
  run({"RENAMENX", "renamed", "user:1"});
  run({"RENAMENX", "renamed", "fresh"});
  run({"RENAMENX", "missing", "x"});
  run({"SET", "ttl", "v", "EX", "100"});
  run({"RENAME", "ttl", "ttl2"});
  run({"TTL", "ttl2"});
  {
    // Several keys: each server may choose a different one; both must name a key.
    auto [r, s] = d_->both({"RANDOMKEY"});
    for (const std::string& pick : {r, s}) {
      EXPECT_TRUE(pick == "\"user:1\"" || pick == "\"user:2\"" || pick == "\"user:10\"" ||
                  pick == "\"fresh\"" || pick == "\"h*llo\"" || pick == "\"ttl2\"")
          << pick;
    }
  }
  run({"FLUSHDB"});
  run({"RANDOMKEY"});
  run({"SET", "only", "1"});
  run({"RANDOMKEY"});
  run({"DBSIZE"});
  run({"FLUSHALL"});
  run({"DBSIZE"});
  run({"FLUSHDB", "ASYNC"});
  run({"FLUSHALL", "SYNC"});
  run({"FLUSHDB", "FOO"});
}

TEST_P(CommandsTest, BinarySafeKeysAndValues) {
  using namespace std::string_literals;
  const std::string key = "k\0\r\nkey"s;
  const std::string value = "\0\r\n\xff\x01value\r\n"s;
  run({"SET", key, value});
  run({"GET", key});
  run({"STRLEN", key});
  run({"GETRANGE", key, "1", "3"});
  run({"APPEND", key, std::string("\0", 1)});
  run({"MGET", key, std::string("k\0", 2)});
  run({"EXISTS", key, "k"});
  Result<std::string> got = d_->subject_client().bulk({"GET", key});
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, value + std::string("\0", 1));
}

TEST_P(CommandsTest, ClientCommandsByProperty) {
  run({"CLIENT", "GETNAME"});
  EXPECT_EQ(run({"CLIENT", "SETNAME", "worker-1"}), "+OK");
  run({"CLIENT", "GETNAME"});
  run({"CLIENT", "SETNAME", "has space"});
  run({"CLIENT", "SETNAME", "new\nline"});
  run({"CLIENT", "SETNAME"});
  run({"CLIENT", "NOSUCH"});
  run({"CLIENT"});
  for (RedisClient* c : {&d_->redis_client(), &d_->subject_client()}) {
    Result<long long> id = c->integer({"CLIENT", "ID"});
    ASSERT_TRUE(id.ok()) << id.status().to_string();
    EXPECT_GT(*id, 0);
    Result<std::string> list = c->bulk({"CLIENT", "LIST"});
    ASSERT_TRUE(list.ok()) << list.status().to_string();
    EXPECT_NE(list->find("id=" + std::to_string(*id) + " "), std::string::npos) << *list;
    EXPECT_NE(list->find(" name=worker-1 "), std::string::npos) << *list;
    EXPECT_NE(list->find("addr=127.0.0.1:"), std::string::npos) << *list;
    Result<std::string> info = c->bulk({"CLIENT", "INFO"});
    ASSERT_TRUE(info.ok()) << info.status().to_string();
    EXPECT_TRUE(info->starts_with("id=" + std::to_string(*id) + " ")) << *info;
    EXPECT_EQ(info->back(), '\n');
  }
  run({"CLIENT", "SETNAME", ""});
  run({"CLIENT", "GETNAME"});
}

TEST_P(CommandsTest, ServerCommandsByProperty) {
  run({"SET", "a", "1"});
  run({"SET", "b", "2", "EX", "100"});
  for (RedisClient* c : {&d_->redis_client(), &d_->subject_client()}) {
    Result<std::string> info = c->bulk({"INFO"});
    ASSERT_TRUE(info.ok()) << info.status().to_string();
    for (const char* section : {"# Server\r\n", "# Clients\r\n", "# Memory\r\n",
                                "# Persistence\r\n", "# Stats\r\n", "# Keyspace\r\n"}) {
      EXPECT_NE(info->find(section), std::string::npos) << section << " missing from\n" << *info;
    }
    EXPECT_NE(info->find("\r\nused_memory:"), std::string::npos);
    EXPECT_NE(info->find("\r\nconnected_clients:"), std::string::npos);
    EXPECT_NE(info->find("\r\ntcp_port:"), std::string::npos);
    // A standalone server, as Redis says it (a cluster node says cluster: routing_test).
    EXPECT_NE(info->find("\r\nredis_mode:standalone\r\n"), std::string::npos) << *info;
    EXPECT_NE(info->find("# Cluster\r\ncluster_enabled:0\r\n"), std::string::npos) << *info;
    EXPECT_NE(info->find("\r\ndb0:keys=2,expires=1,"), std::string::npos) << *info;
    Result<std::string> mem = c->bulk({"INFO", "memory"});
    ASSERT_TRUE(mem.ok());
    EXPECT_TRUE(mem->starts_with("# Memory\r\n")) << *mem;
    // Both run on jemalloc (statekv links it: core/allocator.h), and say so.
    EXPECT_NE(mem->find("\r\nmem_allocator:jemalloc-"), std::string::npos) << *mem;
    EXPECT_EQ(mem->find("# Server"), std::string::npos);
    Result<long long> count = c->integer({"COMMAND", "COUNT"});
    ASSERT_TRUE(count.ok()) << count.status().to_string();
    EXPECT_GE(*count, 50);
    Result<std::string> cmd_info = c->command({"COMMAND", "INFO", "get"});
    ASSERT_TRUE(cmd_info.ok());
    EXPECT_TRUE(cmd_info->starts_with("[[\"get\", :2, ")) << *cmd_info;
    Result<std::string> docs = c->command({"COMMAND", "DOCS", "set"});
    ASSERT_TRUE(docs.ok());
    EXPECT_TRUE(docs->starts_with("[\"set\", [")) << *docs;
    EXPECT_NE(docs->find("\"summary\""), std::string::npos) << *docs;
    Result<std::vector<std::string>> time = c->bulk_array({"TIME"});
    ASSERT_TRUE(time.ok()) << time.status().to_string();
    ASSERT_EQ(time->size(), 2u);
    const long long now = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    EXPECT_LE(std::llabs(std::stoll((*time)[0]) - now), 2);
    EXPECT_LT(std::stoll((*time)[1]), 1000000);
  }
  run({"COMMAND", "INFO", "nosuchcommand"});
  run({"COMMAND", "FOO"});
  // GETKEYS: what a Redis Cluster client asks for movable keys.
  for (const std::vector<std::string>& line : std::vector<std::vector<std::string>>{
           {"SET", "k", "v"},
           {"MSET", "a", "1", "b", "2"},
           {"ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"},
           {"ZUNIONSTORE", "d", "5", "a", "b"},
           {"ZUNIONSTORE", "d", "-1", "a"},
           {"SINTERCARD", "2", "a", "b", "LIMIT", "1"},
           {"SINTERCARD", "0", "a"},
           {"SINTERCARD", "x", "a"},
           {"LMPOP", "2", "a", "b", "LEFT"},
           {"BLMPOP", "0", "2", "a", "b", "LEFT"},
           {"OBJECT", "ENCODING", "k"},
           {"CLIENT", "INFO"},
           {"PING", "x"},
           {"NOSUCH", "a"},
           {"SET", "k"},
           {"GET", "a", "b"},
           {"OBJECT", "NOSUCH", "k"},
       }) {
    std::vector<std::string> getkeys = {"COMMAND", "GETKEYS"};
    getkeys.insert(getkeys.end(), line.begin(), line.end());
    run(getkeys);
  }
  run({"COMMAND", "GETKEYS", "SET"});
  run({"COMMAND", "GETKEYS"});
  run({"TIME", "x"});
  // A standalone server is a primary without replicas.
  EXPECT_EQ(run({"ROLE"}), "[\"master\", :0, []]");
  run({"ROLE", "x"});
}

TEST_P(CommandsTest, Config) {
  run({"CONFIG", "GET", "nosuchsetting"});
  run({"CONFIG", "GET", "maxclients"});
  run({"CONFIG", "GET", "timeout"});
  run({"CONFIG", "GET", "proto-max-bulk-len"});
  run({"CONFIG", "SET", "nosuchsetting", "1"});
  run({"CONFIG", "SET", "timeout", "abc"});
  run({"CONFIG", "SET", "timeout", "30"});
  run({"CONFIG", "GET", "timeout"});
  run({"CONFIG", "GET"});
  run({"CONFIG", "FOO"});
  for (RedisClient* c : {&d_->redis_client(), &d_->subject_client()}) {
    Result<std::vector<std::string>> port = c->bulk_array({"CONFIG", "GET", "port"});
    ASSERT_TRUE(port.ok()) << port.status().to_string();
    ASSERT_EQ(port->size(), 2u);
    EXPECT_EQ((*port)[0], "port");
  }
}

// SHUTDOWN: modifiers checked as Redis checks them, refused inside MULTI,
// then the stop itself: no reply, the connection closes, the process exits
// with status 0, and (rocksdb) what was written is there after a restart.
TEST_P(CommandsTest, Shutdown) {
  run({"SHUTDOWN", "FOO"});
  run({"SHUTDOWN", "SAVE", "NOSAVE"});
  run({"SHUTDOWN", "NOSAVE", "SAVE", "NOW"});
  run({"SHUTDOWN", "ABORT"});
  run({"SHUTDOWN", "ABORT", "NOW"});
  run({"MULTI"});
  run({"SHUTDOWN"});
  run({"SET", "after", "refused"});
  run({"EXEC"});
  run({"SET", "kept", "yes"});
  if (GetParam() == "memory" && subject_kind() == ServerKind::kStatekv) {
    // SAVE with nothing to save to: refused, and the server keeps serving.
    EXPECT_EQ(d_->subject_client().cmd({"SHUTDOWN", "SAVE"}),
              "-ERR Errors trying to SHUTDOWN: SAVE: the memory engine keeps nothing on disk "
              "(SHUTDOWN or SHUTDOWN NOSAVE stops it)");
    EXPECT_EQ(d_->subject_client().cmd({"GET", "kept"}), "\"yes\"");
  }
  for (ServerProcess* server : {&d_->redis(), &d_->subject()}) {
    RedisClient& c = server == &d_->redis() ? d_->redis_client() : d_->subject_client();
    EXPECT_FALSE(c.command({"SHUTDOWN", "NOW", "FORCE"}).ok()) << server->describe();
    Status exited = server->wait_exit(std::chrono::seconds(10));
    EXPECT_TRUE(exited.ok()) << exited.to_string() << "\n" << server->log_tail();
  }
  if (GetParam() == "rocksdb") {
    ASSERT_TRUE(d_->subject().start().ok());
    auto c = RedisClient::connect(d_->subject().port());
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->cmd({"GET", "kept"}), "\"yes\"");
  }
}

INSTANTIATE_TEST_SUITE_P(Engines, CommandsTest, ::testing::Values("memory", "rocksdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace statekv::itest
