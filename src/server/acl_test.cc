// The ACL rule parser and matcher (server/acl.h), and ACL users through the
// command layer (AUTH, ACL SETUSER, NOPERM) on a standalone server.
#include "server/acl.h"

#include <gtest/gtest.h>

#include <random>

#include "server/command.h"
#include "server/command_table.h"
#include "server/service_test_util.h"

namespace statekv::server {
namespace {

using testing::Harness;

class AclRules : public ::testing::Test {
 protected:
  CommandTable table_;
  AclCommands commands_{table_};

  AclUser user(const std::vector<std::string>& ops) {
    AclUser u = acl_new_user("u", commands_);
    for (const std::string& op : ops) {
      Status s = acl_apply(u, op, commands_);
      EXPECT_TRUE(s.ok()) << op << ": " << s.to_string();
    }
    return u;
  }
  std::string error(const std::vector<std::string>& ops) {
    AclUser u = acl_new_user("u", commands_);
    for (const std::string& op : ops) {
      Status s = acl_apply(u, op, commands_);
      if (!s.ok()) return s.message();
    }
    return "";
  }
  AclVerdict check(const AclUser& u, std::vector<std::string_view> argv) {
    const CommandSpec* spec = table_.find(argv[0]);
    EXPECT_NE(spec, nullptr);
    if (!spec->subcommands.empty()) spec = CommandTable::find_sub(*spec, argv[1]);
    return acl_check(u, commands_.index(spec), *spec, argv);
  }
};

TEST_F(AclRules, ANewUserIsOffAndMayDoNothing) {
  AclUser u = acl_new_user("alice", commands_);
  EXPECT_FALSE(u.enabled);
  EXPECT_FALSE(acl_password_ok(u, ""));
  EXPECT_EQ(acl_describe(u, commands_), "off resetchannels -@all");
  EXPECT_EQ(check(u, {"get", "k"}).kind, AclVerdict::kCommand);
}

TEST_F(AclRules, PasswordsAreKeptAsSha256AndChecked) {
  AclUser u = user({"on", ">pw"});
  // SHA-256("pw"), as Redis stores it.
  ASSERT_EQ(u.passwords.size(), 1u);
  EXPECT_EQ(u.passwords[0], "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4");
  EXPECT_TRUE(acl_password_ok(u, "pw"));
  EXPECT_FALSE(acl_password_ok(u, "pW"));
  EXPECT_FALSE(acl_password_ok(u, ""));
  ASSERT_TRUE(acl_apply(u, "off", commands_).ok());
  EXPECT_FALSE(acl_password_ok(u, "pw"));  // a disabled user cannot log in
  ASSERT_TRUE(acl_apply(u, "on", commands_).ok());
  ASSERT_TRUE(acl_apply(u, "#" + acl_password_hash("second"), commands_).ok());
  EXPECT_TRUE(acl_password_ok(u, "second"));
  ASSERT_TRUE(acl_apply(u, "<pw", commands_).ok());
  EXPECT_FALSE(acl_password_ok(u, "pw"));
  ASSERT_TRUE(acl_apply(u, "nopass", commands_).ok());
  EXPECT_TRUE(acl_password_ok(u, "anything"));
  EXPECT_TRUE(u.passwords.empty());
  ASSERT_TRUE(acl_apply(u, "resetpass", commands_).ok());
  EXPECT_FALSE(acl_password_ok(u, "anything"));
}

TEST_F(AclRules, ErrorsUseRedisTexts) {
  EXPECT_EQ(error({"xyz"}), "Syntax error");
  EXPECT_EQ(error({"+nosuch"}), "Unknown command or category name in ACL");
  EXPECT_EQ(error({"+@nosuch"}), "Unknown command or category name in ACL");
  EXPECT_EQ(error({"<nope"}), "The password you are trying to remove from the user does not exist");
  EXPECT_EQ(error({"#abc"}),
            "The password hash must be exactly 64 characters and contain only lowercase "
            "hexadecimal characters");
  EXPECT_EQ(error({"allkeys", "~x"}),
            "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does "
            "not have any effect. Try 'resetkeys' to start with an empty list of patterns");
  EXPECT_EQ(error({"allchannels", "&x"}),
            "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and "
            "does not have any effect. Try 'resetchannels' to start with an empty list of "
            "channels");
  EXPECT_EQ(error({"%X~a"}), "Syntax error");
  EXPECT_EQ(error({"%R"}), "Syntax error");
  EXPECT_EQ(error({"~a b"}), "Syntax error");
  EXPECT_EQ(error({"+config|"}), "Syntax error");
  EXPECT_EQ(acl_check_username("a b").message(),
            "ERR Usernames can't contain spaces or null characters");
}

TEST_F(AclRules, CommandsCategoriesAndSubcommands) {
  AclUser u = user({"on", "nopass", "allkeys", "-@all", "+@read", "-mget", "+config|get"});
  EXPECT_EQ(check(u, {"get", "k"}).kind, AclVerdict::kOk);
  EXPECT_EQ(check(u, {"strlen", "k"}).kind, AclVerdict::kOk);
  EXPECT_EQ(check(u, {"mget", "k"}).kind, AclVerdict::kCommand);
  EXPECT_EQ(check(u, {"set", "k", "v"}).kind, AclVerdict::kCommand);
  EXPECT_EQ(check(u, {"config", "get", "x"}).kind, AclVerdict::kOk);
  EXPECT_EQ(check(u, {"config", "set", "x", "y"}).kind, AclVerdict::kCommand);
  // The categories statekv derives from its command table.
  auto in = [&](std::string_view cmd, std::string_view cat) {
    return (commands_.entries()[static_cast<size_t>(commands_.find(cmd))].categories &
            acl_category_bit(cat)) != 0;
  };
  EXPECT_TRUE(in("get", "read") && in("get", "string") && in("get", "fast"));
  EXPECT_TRUE(in("set", "write") && in("set", "string") && !in("set", "read"));
  EXPECT_TRUE(in("del", "keyspace") && in("del", "write"));
  EXPECT_TRUE(in("keys", "dangerous") && in("flushall", "dangerous"));
  EXPECT_TRUE(in("config|set", "admin") && in("config|set", "dangerous"));
  EXPECT_TRUE(in("ping", "connection") && in("publish", "pubsub"));
  EXPECT_TRUE(in("keyspace|drop", "admin") && in("keyspace|drop", "dangerous"));
  EXPECT_TRUE(!in("keyspace|list", "admin") && in("flushall", "keyspace"));
  // +@all also covers commands added later; +cmd on a container all its subcommands.
  AclUser all = user({"+@all", "-config"});
  EXPECT_TRUE(all.allcommands);
  EXPECT_EQ(check(all, {"config", "get", "x"}).kind, AclVerdict::kCommand);
  EXPECT_EQ(acl_describe_commands(all, commands_), "+@all -config");
}

TEST_F(AclRules, KeyPatternsWithReadAndWritePermissions) {
  AclUser u = user({"on", "+@all", "~app:*", "%R~ro:*", "%W~wo:*"});
  EXPECT_EQ(check(u, {"set", "app:1", "v"}).kind, AclVerdict::kOk);
  EXPECT_EQ(check(u, {"get", "app:1"}).kind, AclVerdict::kOk);
  EXPECT_EQ(check(u, {"get", "ro:1"}).kind, AclVerdict::kOk);
  EXPECT_EQ(check(u, {"set", "ro:1", "v"}).kind, AclVerdict::kKey);
  EXPECT_EQ(check(u, {"set", "wo:1", "v"}).kind, AclVerdict::kOk);
  EXPECT_EQ(check(u, {"get", "wo:1"}).kind, AclVerdict::kKey);
  // Every key of a multi-key command is checked; the verdict names the first refused.
  AclVerdict v = check(u, {"mset", "app:1", "v", "other", "v"});
  EXPECT_EQ(v.kind, AclVerdict::kKey);
  EXPECT_EQ(v.arg, 3u);
  // Keys counted by a numkeys argument are keys too (SINTERCARD, ZUNION...).
  EXPECT_EQ(check(u, {"sintercard", "2", "app:1", "ro:1"}).kind, AclVerdict::kOk);
  v = check(u, {"sintercard", "2", "app:1", "secret"});
  EXPECT_EQ(v.kind, AclVerdict::kKey);
  EXPECT_EQ(v.arg, 3u);
  EXPECT_EQ(check(u, {"zunion", "1", "secret"}).kind, AclVerdict::kKey);
  v = check(u, {"zunionstore", "app:d", "2", "app:1", "secret"});
  EXPECT_EQ(v.kind, AclVerdict::kKey);
  EXPECT_EQ(v.arg, 4u);
  EXPECT_EQ(acl_describe_keys(u), "~app:* %R~ro:* %W~wo:*");
  // Adding both permissions to a pattern merges them.
  ASSERT_TRUE(acl_apply(u, "%W~ro:*", commands_).ok());
  EXPECT_EQ(check(u, {"set", "ro:1", "v"}).kind, AclVerdict::kOk);
  ASSERT_TRUE(acl_apply(u, "resetkeys", commands_).ok());
  EXPECT_EQ(check(u, {"get", "app:1"}).kind, AclVerdict::kKey);
  // Keyless commands need no key permission.
  EXPECT_EQ(check(u, {"dbsize"}).kind, AclVerdict::kOk);
}

TEST_F(AclRules, Channels) {
  AclUser u = user({"on", "+@all", "allkeys", "&news.*"});
  EXPECT_EQ(check(u, {"publish", "news.sport", "m"}).kind, AclVerdict::kOk);
  EXPECT_EQ(check(u, {"publish", "other", "m"}).kind, AclVerdict::kChannel);
  EXPECT_EQ(check(u, {"subscribe", "news.a", "news.b"}).kind, AclVerdict::kOk);
  AclVerdict v = check(u, {"subscribe", "news.a", "x"});
  EXPECT_EQ(v.kind, AclVerdict::kChannel);
  EXPECT_EQ(v.arg, 2u);
  // A pattern subscription must be one of the user's patterns itself (Redis).
  EXPECT_EQ(check(u, {"psubscribe", "news.*"}).kind, AclVerdict::kOk);
  EXPECT_EQ(check(u, {"psubscribe", "news.s*"}).kind, AclVerdict::kChannel);
  AclUser none = user({"on", "+@all", "allkeys"});
  EXPECT_EQ(check(none, {"publish", "x", "m"}).kind, AclVerdict::kChannel);
}

TEST_F(AclRules, ResetStartsOver) {
  AclUser u = user({"on", ">pw", "allkeys", "allchannels", "+@all", "reset"});
  EXPECT_EQ(acl_describe(u, commands_), "off sanitize-payload resetchannels -@all");
}

// ACL LIST's description gives the same user back, whatever rules made it:
// the document every node compiles is made of these descriptions.
TEST_F(AclRules, DescriptionsRoundTrip) {
  std::mt19937_64 rng(7);
  std::vector<std::string> pool = {"on",
                                   "off",
                                   ">a",
                                   ">b",
                                   "nopass",
                                   "resetpass",
                                   "~k*",
                                   "%R~r*",
                                   "%W~w*",
                                   "allkeys",
                                   "resetkeys",
                                   "&c*",
                                   "allchannels",
                                   "resetchannels",
                                   "+@all",
                                   "-@all",
                                   "+@read",
                                   "-@write",
                                   "+@string",
                                   "-@dangerous",
                                   "+get",
                                   "-get",
                                   "+config",
                                   "-config|set",
                                   "+client|list",
                                   "-@admin",
                                   "+acl",
                                   "-acl|setuser",
                                   "+@keyspace",
                                   "-@fast",
                                   "sanitize-payload",
                                   "skip-sanitize-payload",
                                   "reset"};
  for (int round = 0; round < 300; ++round) {
    AclUser u = acl_new_user("u", commands_);
    const int n = 1 + static_cast<int>(rng() % 10);
    for (int i = 0; i < n; ++i) {
      (void)acl_apply(u, pool[rng() % pool.size()], commands_);  // refusals leave it as it was
    }
    const std::string text = acl_describe(u, commands_);
    AclUser back = acl_new_user("u", commands_);
    std::istringstream in(text);
    std::string op;
    while (in >> op) ASSERT_TRUE(acl_apply(back, op, commands_).ok()) << text << ": " << op;
    EXPECT_EQ(back, u) << text;
  }
}

TEST(AclDocument, EncodesDecodesAndRefusesGarbage) {
  AclDocument doc;
  doc.version = 42;
  doc.users["default"] = "on nopass ~* &* +@all";
  doc.users["alice"] = "on #" + acl_password_hash("x") + " ~a:* resetchannels -@all +get";
  auto back = decode_acl_document(encode_acl_document(doc));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(*back, doc);
  EXPECT_EQ(encode_acl_document(doc).find("x "), std::string::npos);
  EXPECT_TRUE(decode_acl_document("").status().is_corruption());
  EXPECT_TRUE(decode_acl_document("something else\nversion 1\n").status().is_corruption());
  EXPECT_TRUE(decode_acl_document("statekv-acl 1\nuser a on\n").status().is_corruption());
  EXPECT_TRUE(decode_acl_document("statekv-acl 1\nversion x\n").status().is_corruption());
  EXPECT_TRUE(decode_acl_document("statekv-acl 1\nversion 1\nuser a on\nuser a off\n")
                  .status()
                  .is_corruption());
  auto initial = decode_acl_document(initial_acl_document(acl_password_hash("pw")));
  ASSERT_TRUE(initial.ok());
  EXPECT_EQ(initial->version, 1u);
  EXPECT_EQ(initial->users.at("default"), "on #" + acl_password_hash("pw") + " ~* &* +@all");
}

TEST(AclLoad, NewerDocumentsReplaceOlderOnesAndBadOnesAreRefused) {
  CommandTable table;
  Acl acl(table);
  AclDocument doc;
  doc.version = 3;
  doc.users["default"] = "on #" + acl_password_hash("pw") + " ~* &* +@all";
  ASSERT_TRUE(acl.load(encode_acl_document(doc)).ok());
  EXPECT_EQ(acl.snapshot()->version, 3u);
  EXPECT_TRUE(acl_password_ok(*acl.snapshot()->find("default"), "pw"));
  doc.version = 2;  // an older one (a replay): ignored
  doc.users["default"] = "on nopass ~* &* +@all";
  ASSERT_TRUE(acl.load(encode_acl_document(doc)).ok());
  EXPECT_FALSE(acl.snapshot()->find("default")->nopass);
  doc.version = 4;
  doc.users["default"] = "on +nosuchcommand";
  EXPECT_TRUE(acl.load(encode_acl_document(doc)).is_corruption());
  EXPECT_EQ(acl.snapshot()->version, 3u);
  EXPECT_TRUE(acl.wait_for_version(3, std::chrono::milliseconds(1)));
  EXPECT_FALSE(acl.wait_for_version(4, std::chrono::milliseconds(1)));
}

// Through the command layer of a standalone server.
TEST(AclCommands, UsersPermissionsAndLog) {
  Harness h;
  EXPECT_OK(h.run({"ACL", "SETUSER", "alice", "on", ">apw", "~a:*", "&news", "-@all", "+get",
                   "+set", "+publish", "+acl|whoami"}));
  EXPECT_ERR(h.run({"ACL", "SETUSER", "bob", "+nosuch"}),
             "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in "
             "ACL");
  EXPECT_NIL(h.run({"ACL", "GETUSER", "bob"}));  // a refused SETUSER creates nobody
  auto s = h.new_session();
  EXPECT_ERR(h.run(*s, {"AUTH", "alice", "wrong"}),
             "WRONGPASS invalid username-password pair or user is disabled.");
  EXPECT_OK(h.run(*s, {"AUTH", "alice", "apw"}));
  EXPECT_BULK(h.run(*s, {"ACL", "WHOAMI"}), "alice");
  EXPECT_OK(h.run(*s, {"SET", "a:1", "v"}));
  EXPECT_BULK(h.run(*s, {"GET", "a:1"}), "v");
  EXPECT_ERR(h.run(*s, {"SET", "b:1", "v"}),
             "NOPERM this user has no permissions to access one of the keys used as arguments");
  EXPECT_ERR(h.run(*s, {"DEL", "a:1"}),
             "NOPERM this user has no permissions to run the 'del' command");
  EXPECT_ERR(h.run(*s, {"PUBLISH", "other", "m"}),
             "NOPERM this user has no permissions to access one of the channels used as "
             "arguments");
  EXPECT_INT(h.run(*s, {"PUBLISH", "news", "m"}), 0);
  // A change holds for a connection already authenticated as the user.
  EXPECT_OK(h.run({"ACL", "SETUSER", "alice", "+del"}));
  EXPECT_INT(h.run(*s, {"DEL", "a:1"}), 1);
  EXPECT_BULK(h.run({"ACL", "DRYRUN", "alice", "get", "zz"}),
              "This user has no permissions to access the 'zz' key");
  EXPECT_OK(h.run({"ACL", "DRYRUN", "alice", "get", "a:zz"}));
  auto log = h.run({"ACL", "LOG", "1"});
  ASSERT_EQ(log.elements.size(), 1u);
  EXPECT_EQ(log.elements[0].elements[3].str, "channel");
  EXPECT_EQ(log.elements[0].elements[7].str, "other");
  EXPECT_EQ(log.elements[0].elements[9].str, "alice");
  EXPECT_INT(h.run({"ACL", "DELUSER", "alice", "nobody"}), 1);
  EXPECT_ERR(h.run(*s, {"GET", "a:1"}),
             "ERR the user 'alice' of this connection was deleted; reconnect");
  EXPECT_TRUE(s->close_after_reply);
  EXPECT_ERR(h.run({"ACL", "DELUSER", "default"}), "ERR The 'default' user cannot be removed");
}

TEST(AclCommands, RequirepassIsTheDefaultUsersPassword) {
  Harness h;
  EXPECT_OK(h.run({"CONFIG", "SET", "requirepass", "pw"}));
  auto s = h.new_session();
  s->authenticated = false;  // as a connection made now starts
  EXPECT_ERR(h.run(*s, {"GET", "k"}), "NOAUTH Authentication required.");
  EXPECT_OK(h.run(*s, {"AUTH", "pw"}));
  auto list = h.run({"ACL", "LIST"});
  ASSERT_EQ(list.elements.size(), 1u);
  EXPECT_EQ(list.elements[0].str, "user default on #" + acl_password_hash("pw") + " ~* &* +@all");
  EXPECT_OK(h.run({"CONFIG", "SET", "requirepass", ""}));
  auto s2 = h.new_session();
  s2->authenticated = false;
  EXPECT_OK(h.run(*s2, {"SET", "k", "v"}));  // the default user is nopass again
}

// The cluster's document in memory, changed by CAS as the metadata service
// does it; each written version is handed to the node's users, as the raft
// watch does (node/cluster_acl.h).
class MemoryAclStore final : public AclStore {
 public:
  Result<uint64_t> update(const Change& change) override {
    std::string before;
    {
      std::lock_guard lock(mu_);
      before = bytes;
    }
    if (before.empty()) return Status::Unavailable("no users document");
    auto doc = decode_acl_document(before);
    if (!doc.ok()) return doc.status();
    auto next = change(*doc);
    if (!next.ok()) return next.status();
    {
      std::lock_guard lock(mu_);
      if (bytes != before) return Status::Aborted("changed meanwhile");
      bytes = encode_acl_document(*next);
    }
    if (acl != nullptr) {
      EXPECT_TRUE(acl->load(bytes).ok());
    }
    return next->version;
  }
  std::mutex mu_;
  std::string bytes;
  Acl* acl = nullptr;
};

TEST(AclClusterNode, NothingButPingBeforeTheUsersArriveThenTheirsHoldAndChangesGoThroughTheStore) {
  Harness h;
  MemoryAclStore store;
  h.context().acl_store = &store;
  h.restart_service();
  store.acl = h.service().acl();
  auto s = h.new_session();
  s->authenticated = !*h.service().auth_required();
  EXPECT_FALSE(s->authenticated);
  EXPECT_SIMPLE(h.run(*s, {"PING"}), "PONG");
  const std::string not_yet =
      "CLUSTERDOWN this node has not learned the cluster's users from the metadata service yet; "
      "try again in a moment";
  EXPECT_ERR(h.run(*s, {"GET", "k"}), not_yet);
  EXPECT_ERR(h.run(*s, {"SUBSCRIBE", "c"}), not_yet);
  EXPECT_ERR(h.run(*s, {"AUTH", "default", "x"}), not_yet);
  EXPECT_ERR(h.run(*s, {"AUTH", "x"}), not_yet);
  EXPECT_EQ(h.run(*s, {"HELLO", "3"}).str.rfind("NOAUTH HELLO must be called", 0), 0u);

  // The cluster's users arrive: its password holds.
  store.bytes = initial_acl_document(acl_password_hash("pw"));
  ASSERT_TRUE(h.service().acl()->load(store.bytes).ok());
  EXPECT_ERR(h.run(*s, {"GET", "k"}), "NOAUTH Authentication required.");
  EXPECT_OK(h.run(*s, {"AUTH", "pw"}));
  EXPECT_NIL(h.run(*s, {"GET", "k"}));

  // Changes go through the store; the document holds hashes only.
  EXPECT_OK(h.run(*s, {"ACL", "SETUSER", "alice", "on", ">apw", "~a:*", "+get"}));
  EXPECT_OK(h.run(*s, {"CONFIG", "SET", "requirepass", "n3w"}));
  EXPECT_EQ(store.bytes.find("apw"), std::string::npos);
  EXPECT_EQ(store.bytes.find("n3w"), std::string::npos);
  EXPECT_NE(store.bytes.find("#" + acl_password_hash("n3w")), std::string::npos) << store.bytes;
  EXPECT_EQ(decode_acl_document(store.bytes)->version, 3u);
  auto get = h.run(*s, {"CONFIG", "GET", "requirepass"});
  ASSERT_EQ(get.elements.size(), 2u);
  EXPECT_EQ(get.elements[1].str, "");  // a cluster node keeps no password in clear
  auto fresh = h.new_session();
  fresh->authenticated = false;
  EXPECT_ERR(h.run(*fresh, {"AUTH", "pw"}),
             "WRONGPASS invalid username-password pair or user is disabled.");
  EXPECT_OK(h.run(*fresh, {"AUTH", "alice", "apw"}));
  EXPECT_ERR(h.run(*fresh, {"GET", "b:1"}),
             "NOPERM this user has no permissions to access one of the keys used as arguments");
  // A store that cannot take the change: the error says so and nothing changes.
  store.bytes.clear();
  EXPECT_EQ(h.run(*s, {"ACL", "SETUSER", "bob", "on"}).str.rfind("CLUSTERDOWN", 0), 0u);
  EXPECT_NIL(h.run(*s, {"ACL", "GETUSER", "bob"}));
  h.stop();
}

}  // namespace
}  // namespace statekv::server
