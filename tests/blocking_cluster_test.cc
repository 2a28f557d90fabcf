// Blocking pops in a 3-node cluster (docs/commands.md, "Blocking commands"):
// a client of the key's owner blocks there and a push sent to another node
// (routed to the owner) serves it; keys of several owners give CROSSSLOT; a
// blocking command sent to a node that does not own its keys is refused with
// the owner named; a REPLICATION consensus keyspace refuses them.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "support/local_cluster.h"
#include "support/raw_client.h"
#include "support/redis_client.h"
#include "support/server_process.h"

namespace statekv::itest {
namespace {

using namespace std::chrono_literals;

int blocked_clients(uint16_t port) {
  auto c = RedisClient::connect(port);
  if (!c.ok()) return -1;
  const std::string info = c->cmd({"INFO", "clients"});
  const auto at = info.find("blocked_clients:");
  return at == std::string::npos ? -1 : std::atoi(info.c_str() + at + 16);
}

TEST(BlockingCluster, BlocksOnTheOwnerServedByAPushThroughAnotherNode) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  LocalCluster cluster(3);
  const Status s = cluster.start();
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto key = cluster.key_on(1, "queue:");
  auto other = cluster.key_on(2, "queue:");
  ASSERT_TRUE(key.ok() && other.ok());

  auto waiter = RawClient::connect(cluster.port(1));
  ASSERT_TRUE(waiter.ok());
  ASSERT_TRUE(waiter->send_command({"BLPOP", *key, "0"}).ok());
  for (int i = 0; i < 500 && blocked_clients(cluster.port(1)) != 1; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(blocked_clients(cluster.port(1)), 1);
  EXPECT_FALSE(waiter->read_reply(100ms).ok());

  auto pusher = RedisClient::connect(cluster.port(0));
  ASSERT_TRUE(pusher.ok());
  EXPECT_EQ(pusher->cmd({"RPUSH", *key, "job"}), ":1");
  auto served = waiter->read_reply(10s);
  ASSERT_TRUE(served.ok()) << served.status().to_string();
  EXPECT_EQ(served->bytes,
            "*2\r\n$" + std::to_string(key->size()) + "\r\n" + *key + "\r\n$3\r\njob\r\n");
  EXPECT_EQ(pusher->cmd({"EXISTS", *key}), ":0");

  // On a node that does not own the key: refused, naming the owner.
  const std::string refused = pusher->cmd({"BLPOP", *key, "0"});
  EXPECT_NE(refused.find("ERR blocking commands are not routed between nodes yet"),
            std::string::npos)
      << refused;
  EXPECT_NE(refused.find(cluster.address(1)), std::string::npos) << refused;
  // Keys of two owners.
  auto at_owner = RedisClient::connect(cluster.port(1));
  ASSERT_TRUE(at_owner.ok());
  EXPECT_EQ(at_owner->cmd({"BLPOP", *key, *other, "0"}).rfind("-CROSSSLOT", 0), 0u);
  // Timed out on the owner, non-blocking forms routed as usual.
  EXPECT_EQ(at_owner->cmd({"BRPOP", *key, "0.05"}), "(nil)");
  EXPECT_EQ(pusher->cmd({"RPUSH", *key, "a", "b"}), ":2");
  const std::string popped = pusher->cmd({"LMPOP", "1", *key, "RIGHT"});
  EXPECT_NE(popped.find("\"b\""), std::string::npos) << popped;
}

TEST(BlockingCluster, ConsensusKeyspacesRefuseThem) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  LocalCluster cluster(3);
  const Status s = cluster.start();
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto c = RedisClient::connect(cluster.port(0));
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->cmd({"KEYSPACE", "CREATE", "rep", "PREFIX", "r:", "REPLICATION", "consensus",
                    "FACTOR", "3"}),
            "+OK");
  for (size_t i = 0; i < cluster.size(); ++i) {
    auto n = RedisClient::connect(cluster.port(i));
    ASSERT_TRUE(n.ok());
    // The new keyspace reaches each node's map in its own time.
    for (int tries = 0; tries < 1000; ++tries) {
      if (n->cmd({"LOCATE", "r:q"}).find("\"rep\"") != std::string::npos) break;
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_NE(n->cmd({"LOCATE", "r:q"}).find("\"rep\""), std::string::npos)
        << n->cmd({"LOCATE", "r:q"});
    const std::string r = n->cmd({"BLPOP", "r:q", "0"});
    EXPECT_NE(r.find("ERR blocking commands are not served on REPLICATION consensus keyspaces"),
              std::string::npos)
        << r;
  }
}

}  // namespace
}  // namespace statekv::itest
