// Connection and server commands (PING ... CLIENT, INFO, CONFIG, COMMAND) and
// the checks made before any command runs (unknown command, arity, auth).
#include <map>

#include "server/service_test_util.h"

namespace statekv::server {
namespace {

using testing::describe;
using testing::Harness;

ServerConfig with_password(const std::string& pass) {
  ServerConfig c = Harness::default_config();
  c.requirepass = pass;
  return c;
}

TEST(Dispatch, UnknownCommandsAndSubcommands) {
  Harness h;
  EXPECT_ERR(h.run({"foo", "a", "b"}),
             "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
  EXPECT_ERR(h.run({"foo"}), "ERR unknown command 'foo', with args beginning with: ");
  EXPECT_ERR(h.run({"fo\r\no"}), "ERR unknown command 'fo  o', with args beginning with: ");
  EXPECT_ERR(h.run({"CLIENT", "x"}), "ERR unknown subcommand 'x'. Try CLIENT HELP.");
  EXPECT_ERR(h.run({"config", "nope"}), "ERR unknown subcommand 'nope'. Try CONFIG HELP.");
  EXPECT_ERR(h.run({"CLIENT"}), "ERR wrong number of arguments for 'client' command");
  EXPECT_ERR(h.run({"CLIENT", "SETNAME"}),
             "ERR wrong number of arguments for 'client|setname' command");
  EXPECT_ERR(h.run({"CONFIG", "GET"}), "ERR wrong number of arguments for 'config|get' command");
  EXPECT_ERR(h.run({"CONFIG", "SET", "a", "b", "c"}),
             "ERR wrong number of arguments for 'config|set' command");
  // A long unknown command's argument list stops near 128 bytes, like Redis's.
  auto v = h.run({"nope", std::string(200, 'x'), "y"});
  EXPECT_EQ(v.str, "ERR unknown command 'nope', with args beginning with: '" +
                       std::string(128, 'x') + "' ");
}

TEST(Connection, PingEchoSelectTimeQuit) {
  Harness h;
  EXPECT_SIMPLE(h.run({"PING"}), "PONG");
  EXPECT_BULK(h.run({"PING", "hi"}), "hi");
  EXPECT_ERR(h.run({"PING", "a", "b"}), "ERR wrong number of arguments for 'ping' command");
  EXPECT_BULK(h.run({"ECHO", "x"}), "x");
  EXPECT_OK(h.run({"SELECT", "0"}));
  EXPECT_ERR(h.run({"SELECT", "1"}), "ERR DB index is out of range");
  EXPECT_ERR(h.run({"SELECT", "-1"}), "ERR DB index is out of range");
  EXPECT_ERR(h.run({"SELECT", "x"}), "ERR value is not an integer or out of range");
  auto t = h.run({"TIME"});
  ASSERT_EQ(t.elements.size(), 2u);
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  EXPECT_NEAR(std::stoll(t.elements[0].str), now, 2);
  EXPECT_LT(std::stoll(t.elements[1].str), 1000000);
  EXPECT_OK(h.run({"QUIT"}));
  EXPECT_TRUE(h.session().close_after_reply);
}

TEST(Connection, HelloSwitchesProtocol) {
  Harness h;
  auto v = h.run({"HELLO"});
  ASSERT_EQ(v.elements.size(), 14u);  // RESP2: a flat array of 7 pairs
  EXPECT_EQ(v.elements[4].str, "proto");
  EXPECT_EQ(v.elements[5].integer, 2);
  v = h.run({"HELLO", "3", "SETNAME", "me"});
  EXPECT_EQ(v.type, resp::Value::Type::kMap);
  EXPECT_EQ(h.session().resp, 3);
  EXPECT_BULK(h.run({"CLIENT", "GETNAME"}), "me");
  EXPECT_NIL(h.run({"GET", "missing"}));
  EXPECT_EQ(h.raw(h.session(), {"GET", "missing"}), "_\r\n");
  EXPECT_ERR(h.run({"HELLO", "4"}), "NOPROTO unsupported protocol version");
  EXPECT_ERR(h.run({"HELLO", "x"}), "ERR Protocol version is not an integer or out of range");
  EXPECT_ERR(h.run({"HELLO", "3", "FOO"}), "ERR Syntax error in HELLO option 'FOO'");
  EXPECT_ERR(h.run({"HELLO", "3", "AUTH", "default"}), "ERR Syntax error in HELLO option 'AUTH'");
  // No requirepass: the default user takes any password.
  EXPECT_EQ(h.run({"HELLO", "2", "AUTH", "default", "whatever"}).type, resp::Value::Type::kArray);
  EXPECT_ERR(h.run({"HELLO", "2", "AUTH", "bob", "x"}),
             "WRONGPASS invalid username-password pair or user is disabled.");
}

TEST(Connection, AuthWithRequirepass) {
  Harness h(nullptr, with_password("secret"));
  EXPECT_FALSE(h.session().authenticated);
  EXPECT_ERR(h.run({"GET", "k"}), "NOAUTH Authentication required.");
  EXPECT_ERR(h.run({"PING"}), "NOAUTH Authentication required.");
  // Unknown commands and bad arity are reported before auth, as in Redis.
  EXPECT_ERR(h.run({"foo"}), "ERR unknown command 'foo', with args beginning with: ");
  EXPECT_ERR(h.run({"AUTH", "wrong"}),
             "WRONGPASS invalid username-password pair or user is disabled.");
  EXPECT_ERR(h.run({"AUTH", "a", "b", "c"}), "ERR syntax error");
  EXPECT_ERR(h.run({"HELLO", "3"}),
             "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
             "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
             "select the RESP protocol version at the same time");
  EXPECT_OK(h.run({"AUTH", "secret"}));
  EXPECT_OK(h.run({"SET", "k", "v"}));

  auto s2 = h.new_session();
  EXPECT_ERR(h.run(*s2, {"AUTH", "other", "secret"}),
             "WRONGPASS invalid username-password pair or user is disabled.");
  EXPECT_OK(h.run(*s2, {"AUTH", "default", "secret"}));

  auto s3 = h.new_session();
  EXPECT_EQ(h.run(*s3, {"HELLO", "3", "AUTH", "default", "secret"}).type, resp::Value::Type::kMap);
  EXPECT_BULK(h.run(*s3, {"GET", "k"}), "v");

  auto s4 = h.new_session();
  EXPECT_OK(h.run(*s4, {"QUIT"}));  // allowed before AUTH
}

TEST(Connection, AuthWithoutPassword) {
  Harness h;
  EXPECT_ERR(h.run({"AUTH", "x"}),
             "ERR AUTH <password> called without any password configured for the default user. "
             "Are you sure your configuration is correct?");
  EXPECT_OK(h.run({"AUTH", "default", "anything"}));
}

TEST(Client, IdNameInfoList) {
  Harness h;
  EXPECT_INT(h.run({"CLIENT", "ID"}), static_cast<int64_t>(h.session().id));
  EXPECT_NIL(h.run({"CLIENT", "GETNAME"}));
  EXPECT_OK(h.run({"CLIENT", "SETNAME", "worker-1"}));
  EXPECT_BULK(h.run({"CLIENT", "GETNAME"}), "worker-1");
  EXPECT_ERR(h.run({"CLIENT", "SETNAME", "a b"}),
             "ERR Client names cannot contain spaces, newlines or special characters.");
  EXPECT_OK(h.run({"CLIENT", "SETNAME", ""}));
  EXPECT_NIL(h.run({"CLIENT", "GETNAME"}));
  EXPECT_OK(h.run({"CLIENT", "SETNAME", "w"}));
  EXPECT_OK(h.run({"CLIENT", "SETINFO", "LIB-NAME", "redis-py"}));
  EXPECT_OK(h.run({"CLIENT", "SETINFO", "lib-ver", "5.0"}));
  EXPECT_ERR(h.run({"CLIENT", "SETINFO", "foo", "x"}), "ERR Unrecognized option 'foo'");
  auto info = h.run({"CLIENT", "INFO"});
  EXPECT_EQ(info.type, resp::Value::Type::kBulk);
  const std::string& line = info.str;
  EXPECT_EQ(line.rfind("id=" + std::to_string(h.session().id) + " addr=127.0.0.1:50000 ", 0), 0u)
      << line;
  for (const char* field : {" laddr=127.0.0.1:7001 ", " name=w ", " db=0 ", " cmd=client|info ",
                            " user=default ", " resp=2 ", " lib-name=redis-py ", " lib-ver=5.0"}) {
    EXPECT_NE(line.find(field), std::string::npos) << field << " in " << line;
  }
  EXPECT_EQ(line.back(), '\n');
  auto list = h.run({"CLIENT", "LIST"});
  EXPECT_NE(list.str.find(" name=w "), std::string::npos);
  EXPECT_EQ(h.run({"CLIENT", "LIST", "TYPE", "pubsub"}).str, "");
  EXPECT_ERR(h.run({"CLIENT", "LIST", "TYPE", "bad"}), "ERR Unknown client type 'bad'");
  EXPECT_ERR(h.run({"CLIENT", "LIST", "ID", "x"}), "ERR Invalid client ID");
  EXPECT_EQ(h.run({"CLIENT", "LIST", "ID", "999"}).str, "");
  EXPECT_ERR(h.run({"CLIENT", "LIST", "foo"}), "ERR syntax error");
  EXPECT_GT(h.run({"CLIENT", "HELP"}).elements.size(), 5u);
  // RESP3: verbatim text.
  h.run({"HELLO", "3"});
  EXPECT_EQ(h.run({"CLIENT", "INFO"}).type, resp::Value::Type::kVerbatim);
}

TEST(Server, ConfigGetSet) {
  Harness h;
  auto v = h.run({"CONFIG", "GET", "hz"});
  EXPECT_EQ(describe(v), "[$hz, $100, ]");
  v = h.run({"CONFIG", "GET", "proto-max-*", "PORT", "hz"});
  ASSERT_EQ(v.elements.size(), 8u) << describe(v);
  // Names in pattern order, each once.
  EXPECT_EQ(v.elements[0].str, "proto-max-bulk-len");
  EXPECT_EQ(v.elements[6].str, "hz");
  EXPECT_OK(h.run({"CONFIG", "SET", "hz", "20", "maxclients", "50"}));
  EXPECT_EQ(describe(h.run({"CONFIG", "GET", "hz"})), "[$hz, $20, ]");
  EXPECT_ERR(h.run({"CONFIG", "SET", "nope", "1"}),
             "ERR Unknown option or number of arguments for CONFIG SET - 'nope'");
  EXPECT_ERR(h.run({"CONFIG", "SET", "hz", "1", "HZ", "2"}), "ERR Duplicate parameter - HZ");
  // All or nothing: the bad second pair undoes the first.
  EXPECT_ERR(
      h.run({"CONFIG", "SET", "hz", "30", "port", "1"}),
      "ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config");
  EXPECT_EQ(describe(h.run({"CONFIG", "GET", "hz"})), "[$hz, $20, ]");
  h.run({"HELLO", "3"});
  EXPECT_EQ(h.run({"CONFIG", "GET", "hz"}).type, resp::Value::Type::kMap);
  EXPECT_GT(h.run({"CONFIG", "HELP"}).elements.size(), 3u);
}

TEST(Server, RequirepassSetAtRunTime) {
  Harness h;
  EXPECT_OK(h.run({"CONFIG", "SET", "requirepass", "pw"}));
  auto fresh = h.new_session();  // the network layer marks it unauthenticated
  EXPECT_ERR(h.run(*fresh, {"GET", "k"}), "NOAUTH Authentication required.");
  EXPECT_OK(h.run(*fresh, {"AUTH", "pw"}));
  // The connection that set it stays authenticated, as in Redis.
  EXPECT_NIL(h.run({"GET", "k"}));
}

TEST(Server, InfoSections) {
  Harness h;
  h.run({"SET", "a", "1"});
  h.run({"GET", "a"});
  auto all = h.run({"INFO"});
  for (const char* s : {"# Server\r\n", "# Clients\r\n", "# Memory\r\n", "# Persistence\r\n",
                        "# Stats\r\n", "# Keyspace\r\n", "redis_version:7.0.15\r\n",
                        "run_id:", "db0:keys=1,expires=0,avg_ttl=0\r\n", "keyspace_hits:1\r\n",
                        "used_memory:", "used_memory_rss:", "engine_memory:"}) {
    EXPECT_NE(all.str.find(s), std::string::npos) << s;
  }
  auto mem = h.run({"INFO", "memory"});
  EXPECT_EQ(mem.str.find("# Server"), std::string::npos);
  EXPECT_EQ(mem.str.rfind("# Memory\r\n", 0), 0u);
  // The figures are real: RSS is well above zero.
  auto pos = mem.str.find("used_memory_rss:");
  EXPECT_GT(std::stoull(mem.str.substr(pos + 16)), 1000000u);
  auto two = h.run({"INFO", "server", "STATS"});
  EXPECT_NE(two.str.find("# Server"), std::string::npos);
  EXPECT_NE(two.str.find("# Stats"), std::string::npos);
  EXPECT_EQ(two.str.find("# Keyspace"), std::string::npos);
  EXPECT_EQ(h.run({"INFO", "everything"}).str.find("# Keyspace") != std::string::npos, true);
  EXPECT_EQ(h.run({"INFO", "nosuchsection"}).str, "");

  EXPECT_OK(h.run({"CONFIG", "RESETSTAT"}));
  auto stats = h.run({"INFO", "stats"});
  EXPECT_NE(stats.str.find("keyspace_hits:0\r\n"), std::string::npos) << stats.str;
  EXPECT_NE(stats.str.find("total_commands_processed:1\r\n"), std::string::npos) << stats.str;
}

TEST(Server, CommandInfoAndDocs) {
  Harness h;
  auto count = h.run({"COMMAND", "COUNT"});
  auto all = h.run({"COMMAND"});
  EXPECT_EQ(static_cast<int64_t>(all.elements.size()), count.integer);
  EXPECT_GE(count.integer, 50);
  auto info = h.run({"COMMAND", "INFO", "get", "mset", "nosuch", "client|list"});
  ASSERT_EQ(info.elements.size(), 4u);
  const auto& get = info.elements[0];
  ASSERT_EQ(get.elements.size(), 10u);
  EXPECT_EQ(get.elements[0].str, "get");
  EXPECT_EQ(get.elements[1].integer, 2);
  EXPECT_EQ(describe(get.elements[2]), "[+readonly, +fast, ]");
  EXPECT_EQ(get.elements[3].integer, 1);
  EXPECT_EQ(get.elements[4].integer, 1);
  EXPECT_EQ(get.elements[5].integer, 1);
  const auto& mset = info.elements[1];
  EXPECT_EQ(mset.elements[1].integer, -3);
  EXPECT_EQ(mset.elements[4].integer, -1);
  EXPECT_EQ(mset.elements[5].integer, 2);
  EXPECT_EQ(info.elements[2].type, resp::Value::Type::kNull);
  EXPECT_EQ(info.elements[3].elements[0].str, "client|list");

  // COMMAND DOCS: what redis-cli reads for its hints.
  auto docs = h.run({"COMMAND", "DOCS", "set"});
  ASSERT_EQ(docs.elements.size(), 2u);
  EXPECT_EQ(docs.elements[0].str, "set");
  const auto& m = docs.elements[1].elements;
  std::map<std::string, const resp::Value*> fields;
  for (size_t i = 0; i + 1 < m.size(); i += 2) fields[m[i].str] = &m[i + 1];
  EXPECT_EQ(fields["group"]->str, "string");
  EXPECT_EQ(fields["since"]->str, "1.0.0");
  ASSERT_TRUE(fields.count("arguments"));
  const auto& args = fields["arguments"]->elements;
  ASSERT_EQ(args.size(), 5u);  // key value condition get expiration
  EXPECT_EQ(describe(args[0]), "[$name, $key, $type, $key, $key_spec_index, :0, ]");
  EXPECT_EQ(describe(args[2].elements[1]), "$condition");
  EXPECT_EQ(describe(args[2].elements[3]), "$oneof");
  EXPECT_EQ(describe(args[3]),
            "[$name, $get, $type, $pure-token, $token, $GET, $flags, [+optional, ], ]");
  // Containers list their subcommands.
  auto client_docs = h.run({"COMMAND", "DOCS", "client"});
  EXPECT_NE(describe(client_docs).find("$client|setname"), std::string::npos);
  auto everything = h.run({"COMMAND", "DOCS"});
  EXPECT_EQ(static_cast<int64_t>(everything.elements.size()), 2 * count.integer);
}

}  // namespace
}  // namespace statekv::server
