// The wire protocol, byte for byte against redis-server 7: RESP3 after HELLO 3
// (maps, nulls), a pipeline of 1000 commands in one write, inline commands with
// Redis's quoting rules, requests split across many writes, QUIT.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/raw_pair.h"
#include "support/reply.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;

class ProtocolTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    redis_ = std::make_unique<ServerProcess>(ServerOptions{});
    subject_ = std::make_unique<ServerProcess>(subject_options(GetParam()));
    ASSERT_TRUE(redis_->start().ok());
    Status st = subject_->start();
    ASSERT_TRUE(st.ok()) << st.to_string();
    Result<RawPair> pair = RawPair::connect(*redis_, *subject_);
    ASSERT_TRUE(pair.ok()) << pair.status().to_string();
    pair_ = std::make_unique<RawPair>(std::move(*pair));
  }
  std::unique_ptr<ServerProcess> redis_;
  std::unique_ptr<ServerProcess> subject_;
  std::unique_ptr<RawPair> pair_;
};

// The HELLO 3 map names the server and its version, which differ; its shape,
// the keys and proto=3 must not.
void expect_hello3_map(const resp::Value& v) {
  ASSERT_EQ(v.type, resp::Value::Type::kMap) << render(v);
  std::vector<std::string> keys;
  for (size_t i = 0; i + 1 < v.elements.size(); i += 2) {
    keys.push_back(v.elements[i].str);
    if (v.elements[i].str == "proto") {
      EXPECT_EQ(v.elements[i + 1].type, resp::Value::Type::kInteger);
      EXPECT_EQ(v.elements[i + 1].integer, 3);
    }
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"server", "version", "proto", "id", "mode", "role",
                                            "modules"}))
      << render(v);
}

TEST_P(ProtocolTest, Resp3AfterHello3) {
  ASSERT_TRUE(pair_->redis().send_command({"HELLO", "3"}).ok());
  ASSERT_TRUE(pair_->subject().send_command({"HELLO", "3"}).ok());
  Result<RawReply> r = pair_->redis().read_reply();
  Result<RawReply> s = pair_->subject().read_reply();
  ASSERT_TRUE(r.ok() && s.ok()) << s.status().to_string();
  expect_hello3_map(r->value);
  expect_hello3_map(s->value);

  EXPECT_EQ(pair_->call({"GET", "missing"}), "_\r\n");  // RESP3 null
  pair_->call({"SET", "k", "v"});
  pair_->call({"GET", "k"});
  pair_->call({"MGET", "k", "missing"});
  pair_->call({"SET", "f", "1.5"});
  pair_->call({"INCRBYFLOAT", "f", "1"});
  pair_->call({"INCR", "n"});
  pair_->call({"SET", "k", "v", "NX"});
  pair_->call({"SET", "k", "v2", "GET"});
  pair_->call({"GETDEL", "missing"});
  EXPECT_EQ(pair_->call({"CONFIG", "GET", "timeout"}).substr(0, 4), "%1\r\n");  // RESP3 map
  pair_->call({"EXPIRETIME", "k"});
  pair_->call({"NOSUCH"});
  pair_->call({"GET"});
  pair_->call({"KEYS", "k"});
  pair_->call({"SCAN", "0", "MATCH", "nothing*"});
  pair_->call({"ECHO", "x"});
  pair_->call({"CLIENT", "GETNAME"});
  // Back to RESP2: the same requests get RESP2 encodings again.
  ASSERT_TRUE(pair_->redis().send_command({"HELLO", "2"}).ok());
  ASSERT_TRUE(pair_->subject().send_command({"HELLO", "2"}).ok());
  r = pair_->redis().read_reply();
  s = pair_->subject().read_reply();
  ASSERT_TRUE(r.ok() && s.ok());
  EXPECT_EQ(s->value.type, resp::Value::Type::kArray) << render(s->value);
  EXPECT_EQ(pair_->call({"GET", "missing"}), "$-1\r\n");
  pair_->call({"CONFIG", "GET", "timeout"});
}

TEST_P(ProtocolTest, ThousandCommandsInOneWrite) {
  std::string batch;
  for (int i = 0; i < 1000; ++i) {
    switch (i % 4) {
      case 0:
        batch += encode_command({"SET", "key:" + std::to_string(i), "v" + std::to_string(i)});
        break;
      case 1:
        batch += encode_command({"GET", "key:" + std::to_string(i - 1)});
        break;
      case 2:
        batch += encode_command({"INCR", "counter"});
        break;
      default:
        batch += encode_command({"EXISTS", "key:" + std::to_string(i - 3), "nope"});
        break;
    }
  }
  std::vector<RawReply> replies = pair_->exchange(batch, 1000);
  ASSERT_EQ(replies.size(), 1000u);
  EXPECT_EQ(replies[1].bytes, "$2\r\nv0\r\n");
  EXPECT_EQ(replies[998].bytes, ":250\r\n");
  EXPECT_EQ(pair_->call({"DBSIZE"}), ":251\r\n");
}

TEST_P(ProtocolTest, InlineCommands) {
  pair_->exchange("PING\r\n", 1);
  pair_->exchange("SET inl \"a b\"\r\nGET inl\r\n", 2);
  pair_->exchange("SET q 'it\\'s'\r\nGET q\r\n", 2);
  pair_->exchange("ECHO \"tab\\there\\x41\\n\"\r\n", 1);
  pair_->exchange("ECHO 'single \\' quote'\r\n", 1);
  pair_->exchange("\r\n\r\nPING\r\n", 1);  // empty lines are skipped
  pair_->exchange("  GET   inl  \r\n", 1);
  pair_->exchange("GET inl\n", 1);  // a bare \n ends an inline command too
  pair_->exchange("MSET a 1 b 2\r\nMGET a b\r\n", 2);
  pair_->exchange("nosuch arg\r\n", 1);
  pair_->exchange("SET \"\" empty\r\nGET \"\"\r\n", 2);
}

TEST_P(ProtocolTest, UnbalancedQuotesCloseTheConnection) {
  EXPECT_EQ(pair_->exchange("SET k \"unterminated\r\n", 1).at(0).bytes,
            "-ERR Protocol error: unbalanced quotes in request\r\n");
  EXPECT_TRUE(pair_->redis().closed_by_peer());
  EXPECT_TRUE(pair_->subject().closed_by_peer());
}

TEST_P(ProtocolTest, ClosingQuoteMustBeFollowedBySpace) {
  pair_->exchange("SET q 'it''s'\r\n", 1);
  EXPECT_TRUE(pair_->redis().closed_by_peer());
  EXPECT_TRUE(pair_->subject().closed_by_peer());
}

TEST_P(ProtocolTest, RequestSplitAcrossManyWrites) {
  const std::string req = encode_command({"SET", "split", std::string(300, 'x')}) +
                          encode_command({"GET", "split"}) + "PING\r\n";
  for (RawClient* c : {&pair_->redis(), &pair_->subject()}) {
    for (char ch : req) {
      ASSERT_TRUE(c->send(std::string_view(&ch, 1)).ok());
    }
  }
  for (int i = 0; i < 3; ++i) {
    Result<RawReply> r = pair_->redis().read_reply();
    Result<RawReply> s = pair_->subject().read_reply();
    ASSERT_TRUE(r.ok() && s.ok()) << s.status().to_string();
    EXPECT_EQ(r->bytes, s->bytes);
  }
}

TEST_P(ProtocolTest, QuitRepliesOkAndCloses) {
  EXPECT_EQ(pair_->call({"QUIT"}), "+OK\r\n");
  EXPECT_TRUE(pair_->redis().closed_by_peer());
  EXPECT_TRUE(pair_->subject().closed_by_peer());
}

INSTANTIATE_TEST_SUITE_P(Engines, ProtocolTest, ::testing::Values("memory", "rocksdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace statekv::itest
