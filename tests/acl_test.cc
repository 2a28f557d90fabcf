// ACL users against redis-server 7: every reply compared byte for byte
// (ACL SETUSER and its errors, GETUSER, LIST, USERS, WHOAMI, CAT, DRYRUN,
// DELUSER, AUTH user pass, NOPERM for commands, keys and channels).
#include <gtest/gtest.h>

#include "support/raw_pair.h"
#include "support/server_process.h"

namespace statekv::itest {
namespace {

class AclDiffTest : public ::testing::TestWithParam<std::string> {};

TEST_P(AclDiffTest, UsersRulesAndRefusalsAnswerAsRedis) {
  ServerOptions r;
  ServerOptions s = subject_options(GetParam());
  ServerProcess redis(r), subject(s);
  ASSERT_TRUE(redis.start().ok());
  Status st = subject.start();
  ASSERT_TRUE(st.ok()) << st.to_string();
  Result<RawPair> admin = RawPair::connect(redis, subject);
  ASSERT_TRUE(admin.ok());

  admin->call({"ACL", "LIST"});
  admin->call({"ACL", "USERS"});
  admin->call({"ACL", "WHOAMI"});
  admin->call({"ACL", "CAT"});
  admin->call({"ACL", "CAT", "nosuch"});
  admin->call({"ACL", "GETUSER", "alice"});
  admin->call({"ACL", "SETUSER", "alice"});
  admin->call({"ACL", "LIST"});
  admin->call({"ACL", "GETUSER", "alice"});
  EXPECT_EQ(admin->call({"ACL", "SETUSER", "alice", "on", ">apw", "~app:*", "%R~ro:*", "&news.*",
                         "-@all", "+get"}),
            "+OK\r\n");
  admin->call({"ACL", "GETUSER", "alice"});
  admin->call({"ACL", "LIST"});
  admin->call({"ACL", "USERS"});
  // Not compared from here on: Redis lists single commands in its hash
  // table's order, statekv in its command table's.
  admin->call({"ACL", "SETUSER", "alice", "+set"});
  // Refused modifiers, with Redis's texts.
  admin->call({"ACL", "SETUSER", "bob", "+nosuch"});
  admin->call({"ACL", "SETUSER", "bob", "+@nosuch"});
  admin->call({"ACL", "SETUSER", "bob", "xyz"});
  admin->call({"ACL", "SETUSER", "bob", "<nope"});
  admin->call({"ACL", "SETUSER", "bob", "#abc"});
  admin->call({"ACL", "SETUSER", "bob", "allkeys", "~x"});
  admin->call({"ACL", "SETUSER", "bob", "allchannels", "&x"});
  admin->call({"ACL", "SETUSER", "bob", "%X~a"});
  admin->call({"ACL", "SETUSER", "a b", "on"});
  admin->call({"ACL", "GETUSER", "bob"});  // nothing was created
  admin->call({"ACL", "SETUSER", "bob", "on", "nopass", "allkeys", "allchannels", "+@all"});
  admin->call({"ACL", "GETUSER", "bob"});
  admin->call({"ACL", "SETUSER", "bob", "reset"});
  admin->call({"ACL", "GETUSER", "bob"});
  // DRYRUN.
  admin->call({"ACL", "DRYRUN", "alice", "get", "app:1"});
  admin->call({"ACL", "DRYRUN", "alice", "get", "other"});
  admin->call({"ACL", "DRYRUN", "alice", "get", "ro:1"});
  admin->call({"ACL", "DRYRUN", "alice", "set", "ro:1", "v"});
  admin->call({"ACL", "DRYRUN", "alice", "del", "app:1"});
  admin->call({"ACL", "DRYRUN", "nosuch", "get", "x"});
  admin->call({"ACL", "DRYRUN", "alice", "nosuchcmd"});

  // A connection as alice.
  Result<RawPair> alice = RawPair::connect(redis, subject);
  ASSERT_TRUE(alice.ok());
  alice->call({"AUTH", "alice", "wrong"});
  alice->call({"AUTH", "nobody", "apw"});
  EXPECT_EQ(alice->call({"AUTH", "alice", "apw"}), "+OK\r\n");
  alice->call({"SET", "app:1", "v"});
  alice->call({"GET", "app:1"});
  alice->call({"GET", "ro:1"});
  EXPECT_EQ(alice->call({"SET", "ro:1", "v"}),
            "-NOPERM this user has no permissions to access one of the keys used as "
            "arguments\r\n");
  alice->call({"SET", "other", "v"});
  alice->call({"MSET", "app:2", "v", "other", "v"});
  EXPECT_EQ(alice->call({"DEL", "app:1"}),
            "-NOPERM this user has no permissions to run the 'del' command\r\n");
  alice->call({"ACL", "WHOAMI"});
  alice->call({"CONFIG", "GET", "maxclients"});
  // Channels: PUBLISH once she may run it.
  admin->call({"ACL", "SETUSER", "alice", "+publish"});
  alice->call({"PUBLISH", "news.sport", "m"});
  EXPECT_EQ(alice->call({"PUBLISH", "other", "m"}),
            "-NOPERM this user has no permissions to access one of the channels used as "
            "arguments\r\n");
  // A change holds at once for her open connection.
  admin->call({"ACL", "SETUSER", "alice", "+del"});
  alice->call({"DEL", "app:1"});
  // Disabled: she cannot log in again.
  admin->call({"ACL", "SETUSER", "alice", "off"});
  Result<RawPair> again = RawPair::connect(redis, subject);
  ASSERT_TRUE(again.ok());
  again->call({"AUTH", "alice", "apw"});
  // requirepass is the default user's password.
  admin->call({"CONFIG", "SET", "requirepass", "pw"});
  admin->call({"ACL", "GETUSER", "default"});
  again->call({"AUTH", "default", "pw"});
  again->call({"GET", "app:2"});
  admin->call({"CONFIG", "SET", "requirepass", ""});
  admin->call({"ACL", "DELUSER", "default"});
  admin->call({"ACL", "DELUSER", "nosuch"});
  admin->call({"ACL", "DELUSER", "alice", "bob", "nosuch"});
  admin->call({"ACL", "USERS"});
}

INSTANTIATE_TEST_SUITE_P(Engines, AclDiffTest, ::testing::Values("memory"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace statekv::itest
