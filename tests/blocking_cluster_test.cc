// Blocking pops in a 3-node cluster (docs/commands.md, "Blocking commands";
// coord/coordinator.h): a client of the key's owner blocks there and a push
// sent to another node (routed to the owner) serves it; keys of several
// owners give CROSSSLOT. A blocking command sent to a node that does not own
// its keys is routed to the owner and blocks there: served by a push on a
// third node, its timeout kept, its waiter released when its client goes
// away, an error (no hang) when the owner dies; many such blocked commands
// hold up no other routed traffic. On a REPLICATION consensus
// keyspace it blocks on the group's leader: served by a push through a
// follower, blocked clients in arrival order, and handed on when the leader
// is killed.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

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

// RESP2 bytes of BLPOP's reply [key, element].
std::string popped(const std::string& key, const std::string& element) {
  return "*2\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n$" +
         std::to_string(element.size()) + "\r\n" + element + "\r\n";
}

bool wait_blocked(uint16_t port, int n) {
  for (int i = 0; i < 1000; ++i) {
    if (blocked_clients(port) == n) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

TEST(BlockingCluster, RoutedBlpopIsServedByAPushOnAThirdNode) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  LocalCluster cluster(3);
  const Status s = cluster.start();
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto key = cluster.key_on(1, "queue:");
  ASSERT_TRUE(key.ok());

  // Sent to node 2, which does not own the key: it blocks on node 1.
  auto waiter = RawClient::connect(cluster.port(2));
  ASSERT_TRUE(waiter.ok());
  ASSERT_TRUE(waiter->send_command({"BLPOP", *key, "0"}).ok());
  ASSERT_TRUE(wait_blocked(cluster.port(1), 1)) << "not blocked on the owner";
  EXPECT_FALSE(waiter->read_reply(200ms).ok()) << "answered before anything was pushed";

  auto pusher = RedisClient::connect(cluster.port(0));
  ASSERT_TRUE(pusher.ok());
  EXPECT_EQ(pusher->cmd({"RPUSH", *key, "job"}), ":1");
  auto served = waiter->read_reply(10s);
  ASSERT_TRUE(served.ok()) << served.status().to_string();
  EXPECT_EQ(served->bytes, popped(*key, "job"));
  EXPECT_EQ(pusher->cmd({"EXISTS", *key}), ":0");
  EXPECT_EQ(blocked_clients(cluster.port(1)), 0);

  // Pipelined behind a routed BLPOP: the replies come in the order sent.
  ASSERT_TRUE(waiter
                  ->send("*3\r\n$5\r\nBLPOP\r\n$" + std::to_string(key->size()) + "\r\n" + *key +
                         "\r\n$1\r\n0\r\n*1\r\n$4\r\nPING\r\n")
                  .ok());
  ASSERT_TRUE(wait_blocked(cluster.port(1), 1));
  EXPECT_FALSE(waiter->read_reply(100ms).ok()) << "PING overtook the blocked BLPOP";
  EXPECT_EQ(pusher->cmd({"LPUSH", *key, "second"}), ":1");
  auto first = waiter->read_reply(10s);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_EQ(first->bytes, popped(*key, "second"));
  auto pong = waiter->read_reply(10s);
  ASSERT_TRUE(pong.ok()) << pong.status().to_string();
  EXPECT_EQ(pong->bytes, "+PONG\r\n");

  // BLMOVE routed: source and destination on the owner (a hash tag keeps
  // them together only for slots; here both are picked on node 1).
  auto dst = cluster.key_on(1, "done:");
  ASSERT_TRUE(dst.ok());
  ASSERT_TRUE(waiter->send_command({"BLMOVE", *key, *dst, "LEFT", "RIGHT", "0"}).ok());
  ASSERT_TRUE(wait_blocked(cluster.port(1), 1));
  EXPECT_EQ(pusher->cmd({"RPUSH", *key, "moved"}), ":1");
  auto moved = waiter->read_reply(10s);
  ASSERT_TRUE(moved.ok()) << moved.status().to_string();
  EXPECT_EQ(moved->bytes, "$5\r\nmoved\r\n");
  EXPECT_EQ(pusher->cmd({"LRANGE", *dst, "0", "-1"}), "[\"moved\"]");
}

// Blocked forwards share the peer connection with every other routed
// command (replies are matched by call id) and hold no worker on the owner:
// other clients' routed commands go on at full speed meanwhile.
TEST(BlockingCluster, ManyRoutedBlockedClientsHoldUpNoOtherRoutedTraffic) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  LocalCluster cluster(3);
  const Status s = cluster.start();
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto key = cluster.key_on(1, "queue:");
  auto other = cluster.key_on(1, "plain:");
  ASSERT_TRUE(key.ok() && other.ok());
  auto c = RedisClient::connect(cluster.port(2));
  ASSERT_TRUE(c.ok());
  constexpr int kOps = 500;
  // Microseconds per routed SET+GET pair through node 2 to node 1.
  const auto pairs = [&] {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kOps; ++i) {
      if (c->cmd({"SET", *other, std::to_string(i)}) != "+OK") return -1.0;
      if (c->cmd({"GET", *other}) != "\"" + std::to_string(i) + "\"") return -1.0;
    }
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
               .count() /
           kOps;
  };
  const double before = pairs();
  ASSERT_GT(before, 0);
  constexpr int kBlocked = 40;
  std::vector<RawClient> waiters;
  for (int i = 0; i < kBlocked; ++i) {
    auto w = RawClient::connect(cluster.port(2));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->send_command({"BLPOP", *key, "0"}).ok());
    waiters.push_back(std::move(*w));
  }
  ASSERT_TRUE(wait_blocked(cluster.port(1), kBlocked));
  const double during = pairs();
  ASSERT_GT(during, 0);
  std::printf("routed SET+GET pair: %.1f us, %.1f us with %d routed BLPOPs blocked\n", before,
              during, kBlocked);
  EXPECT_LT(during * kOps, 5e6) << "routed traffic stalled behind blocked forwards";
  // Every one of them is then served, once.
  std::vector<std::string> elements;
  for (int i = 0; i < kBlocked; ++i) elements.push_back("e" + std::to_string(i));
  std::vector<std::string> push = {"RPUSH", *key};
  push.insert(push.end(), elements.begin(), elements.end());
  EXPECT_EQ(c->cmd(push), ":" + std::to_string(kBlocked));
  for (int i = 0; i < kBlocked; ++i) {
    auto r = waiters[i].read_reply(10s);
    ASSERT_TRUE(r.ok()) << "waiter " << i << ": " << r.status().to_string();
    // Served in the order they blocked on the owner (their frames may
    // overtake one another on the way: any element, each once).
    EXPECT_EQ(r->bytes.rfind("*2\r\n", 0), 0u) << r->bytes;
  }
  EXPECT_EQ(c->cmd({"EXISTS", *key}), ":0");
}

TEST(BlockingCluster, RoutedBlpopTimesOut) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  LocalCluster cluster(3);
  const Status s = cluster.start();
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto key = cluster.key_on(1, "queue:");
  ASSERT_TRUE(key.ok());
  auto client = RawClient::connect(cluster.port(2));
  ASSERT_TRUE(client.ok());
  const auto start = std::chrono::steady_clock::now();
  auto r = client->call({"BLPOP", *key, "0.4"});
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->bytes, "*-1\r\n");
  EXPECT_GE(took, 350ms);
  EXPECT_LT(took, 3s);
  // Longer than the nodes' forward timeout would be no different: the call
  // carries the command's own timeout (checked with BZPOPMIN, nil the same).
  auto z = client->call({"BZPOPMIN", *key, "0.2"});
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(z->bytes, "*-1\r\n");
  auto m = client->call({"BRPOPLPUSH", *key, *key, "0.1"});
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->bytes, "$-1\r\n");
  EXPECT_EQ(blocked_clients(cluster.port(1)), 0);

  // CLIENT UNBLOCK on the client's node reaches the command where it waits.
  auto id = client->call({"CLIENT", "ID"});
  ASSERT_TRUE(id.ok());
  const std::string client_id = id->bytes.substr(1, id->bytes.size() - 3);
  auto admin = RedisClient::connect(cluster.port(2));
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE(client->send_command({"BLPOP", *key, "0"}).ok());
  ASSERT_TRUE(wait_blocked(cluster.port(1), 1));
  EXPECT_EQ(admin->cmd({"CLIENT", "UNBLOCK", client_id}), ":1");
  auto unblocked = client->read_reply(10s);
  ASSERT_TRUE(unblocked.ok()) << unblocked.status().to_string();
  EXPECT_EQ(unblocked->bytes, "*-1\r\n");
  ASSERT_TRUE(client->send_command({"BRPOPLPUSH", *key, *key, "0"}).ok());
  ASSERT_TRUE(wait_blocked(cluster.port(1), 1));
  EXPECT_EQ(admin->cmd({"CLIENT", "UNBLOCK", client_id, "ERROR"}), ":1");
  auto errored = client->read_reply(10s);
  ASSERT_TRUE(errored.ok()) << errored.status().to_string();
  EXPECT_EQ(errored->bytes, "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
  EXPECT_EQ(admin->cmd({"CLIENT", "UNBLOCK", client_id}), ":0");
  EXPECT_TRUE(wait_blocked(cluster.port(1), 0));
}

TEST(BlockingCluster, ClientLeavingWhileRoutedBlockedPopsNothing) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  LocalCluster cluster(3);
  const Status s = cluster.start();
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto key = cluster.key_on(1, "queue:");
  ASSERT_TRUE(key.ok());
  {
    auto gone = RawClient::connect(cluster.port(2));
    ASSERT_TRUE(gone.ok());
    ASSERT_TRUE(gone->send_command({"BLPOP", *key, "0"}).ok());
    ASSERT_TRUE(wait_blocked(cluster.port(1), 1));
  }  // disconnects
  ASSERT_TRUE(wait_blocked(cluster.port(1), 0)) << "the owner kept the waiter of a gone client";
  auto pusher = RedisClient::connect(cluster.port(0));
  ASSERT_TRUE(pusher.ok());
  EXPECT_EQ(pusher->cmd({"RPUSH", *key, "kept"}), ":1");
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(pusher->cmd({"LRANGE", *key, "0", "-1"}), "[\"kept\"]");
}

TEST(BlockingCluster, OwnerDyingWhileRoutedBlockedAnswersAnError) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  LocalCluster cluster(3);
  const Status s = cluster.start();
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto key = cluster.key_on(1, "queue:");
  ASSERT_TRUE(key.ok());
  auto waiter = RawClient::connect(cluster.port(2));
  ASSERT_TRUE(waiter.ok());
  ASSERT_TRUE(waiter->send_command({"BLPOP", *key, "0"}).ok());
  ASSERT_TRUE(wait_blocked(cluster.port(1), 1));
  cluster.node(1).kill();
  auto r = waiter->read_reply(10s);
  ASSERT_TRUE(r.ok()) << "no answer after the owner died: " << r.status().to_string();
  EXPECT_EQ(r->bytes.rfind("-CLUSTERDOWN", 0), 0u) << r->bytes;
  // The connection stays usable.
  auto pong = waiter->call({"PING"});
  ASSERT_TRUE(pong.ok());
  EXPECT_EQ(pong->bytes, "+PONG\r\n");
}

// The node id leading `key`'s group as `port` sees it (0: not known), and
// the group's preferred leader (its first owner).
int leader_of(uint16_t port, const std::string& key, int* preferred = nullptr) {
  auto c = RawClient::connect(port);
  if (!c.ok()) return 0;
  auto r = c->call({"LOCATE", key});
  if (!r.ok()) return 0;
  const auto field = [&](const std::string& marker) {
    const size_t at = r->bytes.find(marker);
    return at == std::string::npos ? 0 : std::atoi(r->bytes.c_str() + at + marker.size());
  };
  if (preferred != nullptr) *preferred = field("$6\r\nowners\r\n*3\r\n:");
  return field("$6\r\nleader\r\n:");
}

// A consensus keyspace "rep" (prefix r:, factor 3) writable through every
// node; the index of the node leading r:q's group.
size_t make_consensus_keyspace(LocalCluster& cluster) {
  auto c = RedisClient::connect(cluster.port(0));
  EXPECT_TRUE(c.ok());
  if (!c.ok()) return 0;
  EXPECT_EQ(c->cmd({"KEYSPACE", "CREATE", "rep", "PREFIX", "r:", "REPLICATION", "consensus",
                    "FACTOR", "3"}),
            "+OK");
  for (size_t i = 0; i < cluster.size(); ++i) {
    bool ok = false;
    for (int tries = 0; tries < 1000 && !ok; ++tries) {
      auto n = RedisClient::connect(cluster.port(i));
      ok = n.ok() && n->cmd({"SET", "r:probe", "1"}) == "+OK";
      if (!ok) std::this_thread::sleep_for(10ms);
    }
    EXPECT_TRUE(ok) << "the consensus keyspace is not writable through node " << i;
  }
  // Leadership moves to the preferred leader soon after the group starts:
  // wait for that, so that it does not move while clients block (a command
  // handed on to the next leader keeps its time left, not its place).
  int leader = 0;
  for (int tries = 0; tries < 500; ++tries) {
    int preferred = 0;
    leader = leader_of(cluster.port(0), "r:q", &preferred);
    if (leader > 0 && leader == preferred) break;
    std::this_thread::sleep_for(10ms);
  }
  if (leader > 0) return static_cast<size_t>(leader - 1);
  ADD_FAILURE() << "no leader known for r:q";
  return 0;
}

TEST(BlockingCluster, ConsensusBlpopIsServedThroughAFollowerInArrivalOrder) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  LocalCluster cluster(3);
  const Status s = cluster.start();
  ASSERT_TRUE(s.ok()) << s.to_string();
  const size_t leader = make_consensus_keyspace(cluster);
  ASSERT_FALSE(HasFailure());
  const size_t f1 = (leader + 1) % 3;
  const size_t f2 = (leader + 2) % 3;

  // Two clients block, in this order, on two different nodes.
  auto first = RawClient::connect(cluster.port(f1));
  auto second = RawClient::connect(cluster.port(leader));
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(first->send_command({"BLPOP", "r:q", "0"}).ok());
  std::this_thread::sleep_for(200ms);
  ASSERT_TRUE(second->send_command({"BLPOP", "r:q", "0"}).ok());
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(first->read_reply(50ms).ok()) << "answered before anything was pushed";
  EXPECT_FALSE(second->read_reply(50ms).ok()) << "answered before anything was pushed";

  // One push through a follower: the first to block gets it.
  auto pusher = RedisClient::connect(cluster.port(f2));
  ASSERT_TRUE(pusher.ok());
  EXPECT_EQ(pusher->cmd({"RPUSH", "r:q", "a"}), ":1");
  auto a = first->read_reply(10s);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_EQ(a->bytes, popped("r:q", "a"));
  EXPECT_FALSE(second->read_reply(200ms).ok()) << "the second got something from one element";
  EXPECT_EQ(pusher->cmd({"RPUSH", "r:q", "b", "c"}), ":2");
  auto b = second->read_reply(10s);
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ(b->bytes, popped("r:q", "b"));
  // Each pop went through the log: every member holds what is left.
  for (size_t i = 0; i < 3; ++i) {
    auto n = RedisClient::connect(cluster.port(i));
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(n->cmd({"LRANGE", "r:q", "0", "-1"}), "[\"c\"]") << "through node " << i;
  }

  // Timeouts are kept, on the leader and through a follower.
  auto t0 = std::chrono::steady_clock::now();
  auto nil = first->call({"BRPOP", "r:empty", "0.3"});
  ASSERT_TRUE(nil.ok());
  EXPECT_EQ(nil->bytes, "*-1\r\n");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);
  auto nil2 = second->call({"BZPOPMIN", "r:zempty", "0.2"});
  ASSERT_TRUE(nil2.ok());
  EXPECT_EQ(nil2->bytes, "*-1\r\n");

  // A key that becomes another type keeps its waiter waiting (as in Redis);
  // a list pushed there later serves it.
  ASSERT_TRUE(first->send_command({"BLPOP", "r:typed", "0"}).ok());
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(pusher->cmd({"SET", "r:typed", "string"}), "+OK");
  EXPECT_FALSE(first->read_reply(300ms).ok()) << "answered when the key became a string";
  EXPECT_EQ(pusher->cmd({"DEL", "r:typed"}), ":1");
  EXPECT_EQ(pusher->cmd({"RPUSH", "r:typed", "listed"}), ":1");
  auto typed = first->read_reply(10s);
  ASSERT_TRUE(typed.ok()) << typed.status().to_string();
  EXPECT_EQ(typed->bytes, popped("r:typed", "listed"));

  // CLIENT UNBLOCK ... ERROR on the client's node, the command on the leader.
  auto id = first->call({"CLIENT", "ID"});
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(first->send_command({"BLPOP", "r:unblocked", "0"}).ok());
  std::this_thread::sleep_for(200ms);
  auto admin = RedisClient::connect(cluster.port(f1));
  ASSERT_TRUE(admin.ok());
  EXPECT_EQ(admin->cmd({"CLIENT", "UNBLOCK", id->bytes.substr(1, id->bytes.size() - 3), "ERROR"}),
            ":1");
  auto errored = first->read_reply(10s);
  ASSERT_TRUE(errored.ok()) << errored.status().to_string();
  EXPECT_EQ(errored->bytes, "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");

  // A client that leaves while blocked takes nothing.
  {
    auto gone = RawClient::connect(cluster.port(f1));
    ASSERT_TRUE(gone.ok());
    ASSERT_TRUE(gone->send_command({"BLPOP", "r:left", "0"}).ok());
    std::this_thread::sleep_for(300ms);
  }
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(pusher->cmd({"RPUSH", "r:left", "x"}), ":1");
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(pusher->cmd({"LLEN", "r:left"}), ":1");
}

TEST(BlockingCluster, ConsensusLeaderKilledWhileBlockedIsHandedOn) {
  if (subject_kind() == ServerKind::kRedis) GTEST_SKIP() << "statekv cluster only";
  LocalCluster cluster(3);
  const Status s = cluster.start();
  ASSERT_TRUE(s.ok()) << s.to_string();
  const size_t leader = make_consensus_keyspace(cluster);
  ASSERT_FALSE(HasFailure());
  const size_t f1 = (leader + 1) % 3;
  const size_t f2 = (leader + 2) % 3;
  auto waiter = RawClient::connect(cluster.port(f1));
  ASSERT_TRUE(waiter.ok());
  ASSERT_TRUE(waiter->send_command({"BLPOP", "r:q", "0"}).ok());
  std::this_thread::sleep_for(300ms);
  cluster.node(leader).kill();
  // The client is not left hanging on a dead leader: its command moves to
  // the next leader and is served by a push there.
  auto pusher = RedisClient::connect(cluster.port(f2));
  ASSERT_TRUE(pusher.ok());
  std::string pushed;
  for (int tries = 0; tries < 500; ++tries) {
    // An attempt answered with an error may still have taken effect: any
    // length will do, the blocked client pops the first "after".
    pushed = pusher->cmd({"RPUSH", "r:q", "after"});
    if (pushed.rfind(":", 0) == 0) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_EQ(pushed.rfind(":", 0), 0u) << pushed;
  auto r = waiter->read_reply(10s);
  ASSERT_TRUE(r.ok()) << "no answer after the leader died: " << r.status().to_string();
  EXPECT_EQ(r->bytes, popped("r:q", "after"));
}

}  // namespace
}  // namespace statekv::itest
