// Real `statekv server` processes that route every key to its owner
// (src/coord/coordinator.h), driven by the clients users have: hiredis,
// redis-cli (-c), redis-benchmark --cluster and ioredis's Cluster client.
//
// What is proved, per test:
//   * hash keyspace: any node serves any key; multi-key commands fan out and
//     answer exactly as a redis-server given the same commands; DBSIZE, KEYS
//     and SCAN cover every node; LOCATE names the node whose own store holds
//     the key (INFO keyspace's node_keys must match); INFO keyspace's db0
//     counts what DBSIZE counts; INFO says redis_mode:cluster;
//   * slots keyspace: CLUSTER SLOTS / NODES / KEYSLOT agree with an
//     independent CRC16 and with each other; MOVED and CROSSSLOT are Redis
//     Cluster's, and the MOVED target serves the key; redis-cli -c follows it;
//   * redis-benchmark --cluster and ioredis Cluster run unchanged;
//   * KEYSPACE CREATE / LIST / INFO and the new keyspace's routing;
//   * a SIGKILLed owner: its keys get CLUSTERDOWN naming it, the rest serve;
//   * {hash tags} keep keys on one node in the default hash keyspace (RENAME,
//     MSET without CROSSSLOT); range SPLITS are relative to the prefix; nested
//     keyspace prefixes route by the longest one.
//
// Every test starts its own nodes on ports it picks and stops them by pid.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "support/cluster_map.h"
#include "support/local_cluster.h"
#include "support/net.h"
#include "support/program.h"
#include "support/raw_client.h"
#include "support/redis_cli.h"
#include "support/redis_client.h"
#include "support/reply.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

namespace statekv::itest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kSecret = "routing-test-secret";
constexpr int kElectionMs = 300;
constexpr uint32_t kSlots = 16384;

#define SKIP_FOR_REDIS()                                            \
  if (subject_kind() == ServerKind::kRedis)                         \
  GTEST_SKIP() << "statekv cluster routing only (redis-server has " \
                  "no statekv cluster mode)"

// Starts a RoutingCluster, failing the test with the reason if it cannot.
#define ASSERT_STARTED(cluster)                         \
  do {                                                  \
    const Status started_ = (cluster).start();          \
    ASSERT_TRUE(started_.ok()) << started_.to_string(); \
  } while (0)

// ------------------------------------------------------------ Redis's slot

// Redis Cluster's key slot, written here from its specification (CRC16/XMODEM
// of the key, or of the first non-empty {hash tag}, mod 16384), so that the
// server's CLUSTER KEYSLOT is checked against something it did not compute.
uint32_t expected_slot(std::string_view key) {
  const size_t open = key.find('{');
  if (open != std::string_view::npos) {
    const size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close != open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  uint16_t crc = 0;
  for (unsigned char c : key) {
    crc ^= static_cast<uint16_t>(c) << 8;
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc % kSlots;
}

// ------------------------------------------------------------ RESP helpers

// The value of `name` in a map reply (RESP2 sends a map as a flat array of
// name, value, ...); nullptr if absent.
const resp::Value* field(const resp::Value& map, std::string_view name) {
  for (size_t i = 0; i + 1 < map.elements.size(); i += 2) {
    if (map.elements[i].str == name) return &map.elements[i + 1];
  }
  return nullptr;
}

// LOCATE's answer for one key.
struct Location {
  std::string keyspace;
  std::string partitioner;
  std::optional<int64_t> slot;
  std::vector<int64_t> owners;
  std::vector<std::string> addresses;
  std::string text;  // the whole reply, for messages
};

// ------------------------------------------------------------ the cluster

// N statekv nodes (ids 1..N) forming one cluster on loopback; every node runs
// `common` extra flags plus its own `per_node[i]`. Stopped by pid when
// destroyed (ServerProcess).
class RoutingCluster {
 public:
  explicit RoutingCluster(size_t n, std::vector<std::string> common = {},
                          std::map<size_t, std::vector<std::string>> per_node = {}) {
    for (size_t i = 0; i < n; ++i) {
      auto port = pick_free_low_port();
      EXPECT_TRUE(port.ok());
      peer_ports_.push_back(port.ok() ? *port : 0);
    }
    for (size_t i = 0; i < n; ++i) {
      ServerOptions o;
      o.kind = ServerKind::kStatekv;
      o.engine = "memory";
      o.fsync = "batch";
      o.extra_args = cluster_node_args(i, peer_ports_, kSecret, kElectionMs);
      o.extra_args.insert(o.extra_args.end(), common.begin(), common.end());
      const auto& own = per_node[i];
      o.extra_args.insert(o.extra_args.end(), own.begin(), own.end());
      nodes_.push_back(std::make_unique<ServerProcess>(o));
    }
  }

  // Starts every node and waits until each one routes with a map that lists
  // every member at its RESP address, all at the same epoch.
  Status start(std::chrono::milliseconds timeout = 20s) {
    for (auto& node : nodes_) {
      Status s = node->start();
      if (!s.ok()) return s;
    }
    const auto deadline = Clock::now() + timeout;
    std::string last;
    while (Clock::now() < deadline) {
      if (converged(&last)) return Status::OK();
      std::this_thread::sleep_for(50ms);
    }
    return Status::Timeout("the cluster did not converge on one map: " + last);
  }

  size_t size() const { return nodes_.size(); }
  ServerProcess& node(size_t i) { return *nodes_[i]; }
  uint16_t peer_port(size_t i) const { return peer_ports_[i]; }
  uint16_t port(size_t i) const { return nodes_[i]->port(); }
  std::string address(size_t i) const { return "127.0.0.1:" + std::to_string(port(i)); }
  // Index of the node with statekv id `id` (ids are 1-based).
  size_t index_of(int64_t id) const { return static_cast<size_t>(id - 1); }

  RedisClient client(size_t i) {
    auto c = RedisClient::connect(port(i));
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    return std::move(c).value();
  }
  RawClient raw(size_t i) {
    auto c = RawClient::connect(port(i));
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    return std::move(c).value();
  }

  // LOCATE key, asked of node i.
  Result<Location> locate(size_t i, const std::string& key) {
    auto c = RawClient::connect(port(i));
    if (!c.ok()) return c.status();
    auto r = c->call({"LOCATE", key});
    if (!r.ok()) return r.status();
    Location loc;
    loc.text = render(r->value);
    const resp::Value& v = r->value;
    const resp::Value* ks = field(v, "keyspace");
    const resp::Value* part = field(v, "partitioner");
    const resp::Value* owners = field(v, "owners");
    const resp::Value* addresses = field(v, "addresses");
    if (ks == nullptr || part == nullptr || owners == nullptr || addresses == nullptr) {
      return Status::InvalidArgument("not a LOCATE reply: " + loc.text);
    }
    loc.keyspace = ks->str;
    loc.partitioner = part->str;
    if (const resp::Value* slot = field(v, "slot")) loc.slot = slot->integer;
    for (const resp::Value& o : owners->elements) loc.owners.push_back(o.integer);
    for (const resp::Value& a : addresses->elements) loc.addresses.push_back(a.str);
    if (loc.owners.empty() || loc.owners.size() != loc.addresses.size()) {
      return Status::InvalidArgument("LOCATE without owners: " + loc.text);
    }
    return loc;
  }

  // The node index that LOCATE (asked of node `via`) names as key's server.
  size_t owner_of(const std::string& key, size_t via = 0) {
    auto loc = locate(via, key);
    EXPECT_TRUE(loc.ok()) << loc.status().to_string();
    if (!loc.ok()) return 0;
    return index_of(loc->owners.front());
  }

  // The number of keys in node i's own store (INFO keyspace's node_keys; its
  // db0 counts the cluster, as DBSIZE does).
  Result<long long> local_keys(size_t i) {
    auto c = RedisClient::connect(port(i));
    if (!c.ok()) return c.status();
    auto info = c->bulk({"INFO", "keyspace"});
    if (!info.ok()) return info.status();
    const size_t at = info->find("node_keys:");
    if (at == std::string::npos) return Status::NotFound("no node_keys in INFO keyspace: " + *info);
    return std::atoll(info->c_str() + at + 10);
  }

 private:
  bool converged(std::string* why) {
    std::set<std::string> epochs;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      auto c = RedisClient::connect(port(i), 1s);
      if (!c.ok()) {
        *why = c.status().to_string();
        return false;
      }
      auto text = c->bulk({"CLUSTER", "NODES"});
      if (!text.ok()) {
        *why = "node " + std::to_string(i + 1) + ": " + text.status().to_string();
        return false;
      }
      for (size_t j = 0; j < nodes_.size(); ++j) {
        if (text->find(" " + address(j) + "@" + std::to_string(peer_ports_[j]) + " ") ==
            std::string::npos) {
          *why = "node " + std::to_string(i + 1) + " does not list " + address(j) + ":\n" + *text;
          return false;
        }
      }
      // Field 7 of each line is the map epoch the node routes with.
      std::istringstream lines(*text);
      std::string line;
      while (std::getline(lines, line)) {
        std::istringstream fields(line);
        std::string f[7];
        for (auto& x : f) fields >> x;
        epochs.insert(f[6]);
      }
    }
    if (epochs.size() != 1) {
      *why = "nodes route with different epochs";
      return false;
    }
    return true;
  }

  std::vector<uint16_t> peer_ports_;
  std::vector<std::unique_ptr<ServerProcess>> nodes_;
};

// Every key of a SCAN iteration with COUNT 10 on one connection.
Result<std::vector<std::string>> full_scan(RedisClient& c) {
  std::vector<std::string> keys;
  std::string cursor = "0";
  for (int pages = 0; pages < 10000; ++pages) {
    auto page = c.scan({"SCAN", cursor, "COUNT", "10"});
    if (!page.ok()) return page.status();
    keys.insert(keys.end(), page->elements.begin(), page->elements.end());
    cursor = page->cursor;
    if (cursor == "0") return keys;
  }
  return Status::Internal("SCAN did not end after 10000 pages");
}

std::string key_name(int i) {
  return "key:" + std::to_string(i);
}
std::string value_of(const std::string& key) {
  return "value-of-" + key;
}

// ============================================================ 1. hash keyspace

TEST(Routing, HashKeyspaceAnyNodeServesEveryKeyAndMultiKeyCommandsAnswerAsRedis) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);

  // 300 keys, a third written through each node.
  constexpr int kKeys = 300;
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back(key_name(i));
  for (size_t n = 0; n < cluster.size(); ++n) {
    RedisClient c = cluster.client(n);
    for (int i = static_cast<int>(n); i < kKeys; i += 3) {
      c.append({"SET", keys[i], value_of(keys[i])});
    }
    for (int i = static_cast<int>(n); i < kKeys; i += 3) {
      auto r = c.read_reply();
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      ASSERT_EQ(*r, "+OK") << keys[i] << " through node " << n + 1;
    }
  }
  // Every key read back from every node.
  for (size_t n = 0; n < cluster.size(); ++n) {
    RedisClient c = cluster.client(n);
    for (const auto& k : keys) c.append({"GET", k});
    size_t wrong = 0;
    std::string first_wrong;
    for (const auto& k : keys) {
      auto r = c.read_reply();
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      if (*r != "\"" + value_of(k) + "\"") {
        if (wrong++ == 0) first_wrong = k + " -> " + *r;
      }
    }
    EXPECT_EQ(wrong, 0u) << "through node " << n + 1 << ", e.g. " << first_wrong;
  }

  // DBSIZE, KEYS * and a full SCAN from any node see every key exactly once.
  const std::multiset<std::string> expected(keys.begin(), keys.end());
  for (size_t n = 0; n < cluster.size(); ++n) {
    RedisClient c = cluster.client(n);
    EXPECT_EQ(c.cmd({"DBSIZE"}), ":300") << "node " << n + 1;
    auto all = c.bulk_array({"KEYS", "*"});
    ASSERT_TRUE(all.ok()) << all.status().to_string();
    EXPECT_EQ(std::multiset<std::string>(all->begin(), all->end()), expected) << "node " << n + 1;
    auto scanned = full_scan(c);
    ASSERT_TRUE(scanned.ok()) << scanned.status().to_string();
    EXPECT_EQ(std::multiset<std::string>(scanned->begin(), scanned->end()), expected)
        << "SCAN from node " << n + 1 << " returned " << scanned->size() << " keys";
  }

  // LOCATE: every node names the same owner, at its real RESP address, and
  // the owner's own store holds exactly the keys LOCATE gives it.
  std::vector<long long> predicted(cluster.size(), 0);
  for (int i = 0; i < kKeys; ++i) {
    auto loc = cluster.locate(static_cast<size_t>(i) % cluster.size(), keys[i]);
    ASSERT_TRUE(loc.ok()) << loc.status().to_string();
    ASSERT_EQ(loc->keyspace, "default") << loc->text;
    ASSERT_EQ(loc->partitioner, "hash") << loc->text;
    ASSERT_EQ(loc->owners.size(), 1u) << loc->text;
    ASSERT_GE(loc->owners[0], 1);
    ASSERT_LE(loc->owners[0], 3);
    const size_t owner = cluster.index_of(loc->owners[0]);
    ASSERT_EQ(loc->addresses[0], cluster.address(owner)) << loc->text;
    if (i % 50 == 0) {
      for (size_t n = 0; n < cluster.size(); ++n) {
        auto other = cluster.locate(n, keys[i]);
        ASSERT_TRUE(other.ok());
        EXPECT_EQ(other->owners, loc->owners) << keys[i] << ": " << other->text;
      }
    }
    ++predicted[owner];
  }
  for (size_t n = 0; n < cluster.size(); ++n) {
    EXPECT_GT(predicted[n], 0) << "hash placed no key on node " << n + 1;
    auto local = cluster.local_keys(n);
    ASSERT_TRUE(local.ok()) << local.status().to_string();
    EXPECT_EQ(*local, predicted[n]) << "node " << n + 1 << "'s own store vs LOCATE";
  }

  // Multi-key commands across nodes answer as redis-server given the same.
  ServerProcess redis(ServerOptions{});
  ASSERT_TRUE(redis.start().ok());
  RedisClient ref = std::move(RedisClient::connect(redis.port())).value();
  for (const auto& k : keys) ref.append({"SET", k, value_of(k)});
  for (size_t i = 0; i < keys.size(); ++i) ASSERT_TRUE(ref.read_reply().ok());
  const std::vector<std::vector<std::string>> script = {
      {"MGET", "key:0", "key:1", "key:2", "key:3", "key:4", "nosuch", "key:299", "key:150"},
      {"MSET", "new:0", "a", "new:1", "b", "new:2", "c", "new:3", "d", "new:4", "e", "new:5", "f"},
      {"MGET", "new:5", "new:4", "new:3", "new:2", "new:1", "new:0", "new:6"},
      {"MSET", "empty:1", "", "bin:1", std::string("\x00\xff\r\n$-1\r\n", 9)},
      {"MGET", "empty:1", "key:7", "bin:1", "key:8", "key:9"},  // binary-safe through routing
      {"EXISTS", "key:10", "key:11", "key:11", "nosuch", "key:12", "empty:1"},
      {"EXISTS", "nosuch:1", "nosuch:2"},
      {"TOUCH", "key:13", "key:14", "key:14", "nosuch", "key:15"},
      {"DEL", "key:10", "key:11", "nosuch", "key:12", "empty:1"},
      {"EXISTS", "key:10", "key:11", "key:12", "empty:1"},
      {"UNLINK", "key:16", "key:17", "key:18", "key:17"},
      {"MGET", "key:10", "key:16", "key:19", "new:0"},
      {"MSET", "new:0", "z", "key:19", "y"},
      {"MGET", "new:0", "key:19"},
      {"DEL", "nosuch:1", "nosuch:2", "nosuch:3"},
      {"DBSIZE"},
      {"KEYS", "new:*"},
  };
  for (size_t i = 0; i < script.size(); ++i) {
    std::string joined;
    for (const auto& a : script[i]) joined += a + " ";
    RedisClient c = cluster.client(i % cluster.size());
    if (script[i][0] == "KEYS") {  // order is unspecified: compare as sets
      auto got = c.bulk_array(script[i]);
      auto want = ref.bulk_array(script[i]);
      ASSERT_TRUE(got.ok() && want.ok());
      EXPECT_EQ(std::set<std::string>(got->begin(), got->end()),
                std::set<std::string>(want->begin(), want->end()))
          << joined;
      continue;
    }
    EXPECT_EQ(c.cmd(script[i]), ref.cmd(script[i]))
        << joined << "through node " << i % cluster.size() + 1;
  }
  for (size_t n = 0; n < cluster.size(); ++n) EXPECT_TRUE(cluster.node(n).running());
}

// MSET with a key but no value, the keys on different nodes. redis-server
// answers the arity error. statekv's router splits MSET by key positions
// before the handler checks the pairs, so it must not read past argv; today
// coord/coordinator.cc fan_out() takes the missing value from argv[argc]
// (out of bounds), answers +OK and stores "" for the last key: a real bug,
// left failing here on purpose until the router checks the pairs.
TEST(Routing, MsetWithAMissingValueAcrossNodesIsAnArityErrorAndNodesKeepServing) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  // Two keys with different owners.
  const std::string a = "pair:a";
  std::string b;
  for (int i = 0; b.empty(); ++i) {
    const std::string k = "pair:" + std::to_string(i);
    if (cluster.owner_of(k) != cluster.owner_of(a)) b = k;
  }
  ServerProcess redis(ServerOptions{});
  ASSERT_TRUE(redis.start().ok());
  RedisClient ref = std::move(RedisClient::connect(redis.port())).value();
  const std::vector<std::string> bad = {"MSET", a, "1", b};
  const std::string want = ref.cmd(bad);
  for (size_t n = 0; n < cluster.size(); ++n) {
    RedisClient c = cluster.client(n);
    EXPECT_EQ(c.cmd(bad), want) << "through node " << n + 1;
    EXPECT_EQ(c.cmd({"PING"}), "+PONG") << "node " << n + 1 << ": " << cluster.node(n).log_tail();
  }
  RedisClient c = cluster.client(0);
  EXPECT_EQ(c.cmd({"MGET", a, b}), "[(nil), (nil)]") << "nothing of the bad MSET was applied";
}

// ============================================================ 2. slots keyspace

struct SlotRange {
  int64_t start, end;
  uint16_t port;
  std::string id;
};

// CLUSTER SLOTS of node i, sorted by start.
std::vector<SlotRange> cluster_slots(RoutingCluster& cluster, size_t i) {
  RawClient c = cluster.raw(i);
  auto r = c.call({"CLUSTER", "SLOTS"});
  EXPECT_TRUE(r.ok());
  std::vector<SlotRange> out;
  if (!r.ok()) return out;
  for (const resp::Value& e : r->value.elements) {
    EXPECT_GE(e.elements.size(), 3u) << render(r->value);
    if (e.elements.size() < 3) continue;
    const resp::Value& master = e.elements[2];
    EXPECT_EQ(master.elements.size(), 3u) << render(e);
    if (master.elements.size() < 3) continue;
    EXPECT_EQ(master.elements[0].str, "127.0.0.1") << render(e);
    out.push_back(SlotRange{e.elements[0].integer, e.elements[1].integer,
                            static_cast<uint16_t>(master.elements[1].integer),
                            master.elements[2].str});
  }
  std::sort(out.begin(), out.end(),
            [](const SlotRange& a, const SlotRange& b) { return a.start < b.start; });
  return out;
}

// The port serving `slot` in a CLUSTER SLOTS answer (0 if none).
uint16_t port_of_slot(const std::vector<SlotRange>& ranges, uint32_t slot) {
  for (const SlotRange& r : ranges) {
    if (r.start <= slot && slot <= r.end) return r.port;
  }
  return 0;
}

// A key of the form prefix<N> whose slot is served at `port`.
std::string key_served_at(const std::vector<SlotRange>& ranges, uint16_t port,
                          const std::string& prefix) {
  for (int i = 0;; ++i) {
    std::string k = prefix + std::to_string(i);
    if (port_of_slot(ranges, expected_slot(k)) == port) return k;
  }
}

TEST(Routing, SlotsKeyspaceSpeaksRedisClusterSlotsNodesKeyslotMovedAndCrossslot) {
  SKIP_FOR_REDIS();
  // Node 3 answers MOVED to every connection (--cluster-redirects), so that
  // redis-cli -c has a redirect to follow; nodes 1 and 2 route by default.
  RoutingCluster cluster(3, {"--default-partitioner", "slots"}, {{2, {"--cluster-redirects"}}});
  ASSERT_STARTED(cluster);

  // CLUSTER SLOTS: 0..16383 without gaps or overlaps, every node a master of
  // some, each named by its RESP port and a 40-hex id; every node agrees.
  const std::vector<SlotRange> ranges = cluster_slots(cluster, 0);
  ASSERT_FALSE(ranges.empty());
  int64_t next = 0;
  std::map<uint16_t, std::string> id_of_port;
  for (const SlotRange& r : ranges) {
    EXPECT_EQ(r.start, next) << "gap or overlap before slot " << r.start;
    EXPECT_LE(r.start, r.end);
    next = r.end + 1;
    EXPECT_TRUE(std::regex_match(r.id, std::regex("[0-9a-f]{40}"))) << r.id;
    id_of_port[r.port] = r.id;
  }
  EXPECT_EQ(next, kSlots);
  ASSERT_EQ(id_of_port.size(), 3u);
  for (size_t n = 0; n < cluster.size(); ++n) {
    ASSERT_EQ(id_of_port.count(cluster.port(n)), 1u) << "node " << n + 1 << " serves no slot";
    auto myid = cluster.client(n).bulk({"CLUSTER", "MYID"});
    ASSERT_TRUE(myid.ok());
    EXPECT_EQ(*myid, id_of_port[cluster.port(n)]) << "CLUSTER MYID of node " << n + 1;
    const auto other = cluster_slots(cluster, n);
    ASSERT_EQ(other.size(), ranges.size());
    for (size_t i = 0; i < ranges.size(); ++i) {
      EXPECT_EQ(other[i].start, ranges[i].start);
      EXPECT_EQ(other[i].end, ranges[i].end);
      EXPECT_EQ(other[i].port, ranges[i].port);
    }
  }

  // CLUSTER NODES: three masters, one of them "myself", each with the slots
  // CLUSTER SLOTS gives it.
  for (size_t n = 0; n < cluster.size(); ++n) {
    auto text = cluster.client(n).bulk({"CLUSTER", "NODES"});
    ASSERT_TRUE(text.ok()) << text.status().to_string();
    std::istringstream lines(*text);
    std::string line;
    int masters = 0, myself = 0;
    while (std::getline(lines, line)) {
      std::istringstream in(line);
      std::vector<std::string> f;
      for (std::string x; in >> x;) f.push_back(x);
      ASSERT_GE(f.size(), 9u) << line;
      const uint16_t port =
          static_cast<uint16_t>(std::stoi(f[1].substr(f[1].find(':') + 1, f[1].find('@'))));
      EXPECT_EQ(f[0], id_of_port[port]) << line;
      EXPECT_NE(f[2].find("master"), std::string::npos) << line;
      masters += f[2].find("master") != std::string::npos;
      if (f[2].find("myself") != std::string::npos) {
        ++myself;
        EXPECT_EQ(port, cluster.port(n)) << line;
      }
      EXPECT_EQ(f[7], "connected") << line;
      std::string slots_text;
      for (const SlotRange& r : ranges) {
        if (r.port != port) continue;
        slots_text +=
            " " + (r.start == r.end ? std::to_string(r.start)
                                    : std::to_string(r.start) + "-" + std::to_string(r.end));
      }
      std::string listed;
      for (size_t i = 8; i < f.size(); ++i) listed += " " + f[i];
      EXPECT_EQ(listed, slots_text) << line;
    }
    EXPECT_EQ(masters, 3) << *text;
    EXPECT_EQ(myself, 1) << *text;
  }

  // CLUSTER KEYSLOT, hash tags included, against the specification.
  RedisClient c1 = cluster.client(0);
  EXPECT_EQ(c1.cmd({"CLUSTER", "KEYSLOT", "foo"}), ":12182");
  for (const std::string k :
       {"foo", "somekey", "{user1000}.following", "{user1000}.followers", "user1000", "foo{}{bar}",
        "foo{{bar}}zap", "foo{bar}{zap}", "{", "}{x}", ""}) {
    EXPECT_EQ(c1.cmd({"CLUSTER", "KEYSLOT", k}), ":" + std::to_string(expected_slot(k))) << k;
  }
  EXPECT_EQ(c1.cmd({"CLUSTER", "KEYSLOT", "{user1000}.following"}),
            c1.cmd({"CLUSTER", "KEYSLOT", "user1000"}));

  // LOCATE agrees with CLUSTER SLOTS.
  for (const std::string k : {"foo", "bar", "{user1000}.following", "k:7"}) {
    auto loc = cluster.locate(1, k);
    ASSERT_TRUE(loc.ok()) << loc.status().to_string();
    EXPECT_EQ(loc->partitioner, "slots");
    ASSERT_TRUE(loc->slot.has_value()) << loc->text;
    EXPECT_EQ(*loc->slot, expected_slot(k)) << loc->text;
    EXPECT_EQ(loc->addresses[0],
              "127.0.0.1:" + std::to_string(port_of_slot(ranges, expected_slot(k))))
        << loc->text;
  }

  // redis-cli -c sets through each node and reads through the next one;
  // node 3 answers MOVED, which redis-cli -c follows.
  for (size_t n = 0; n < cluster.size(); ++n) {
    for (size_t owner = 0; owner < cluster.size(); ++owner) {
      const std::string key =
          key_served_at(ranges, cluster.port(owner), "cli:" + std::to_string(n) + ":");
      auto set = run_redis_cli(cluster.port(n), {"-c", "SET", key, "v" + key});
      ASSERT_TRUE(set.ok()) << set.status().to_string();
      EXPECT_EQ(set->out, "OK\n") << key << " via node " << n + 1 << ": " << set->err;
      auto get = run_redis_cli(cluster.port((n + 1) % 3), {"-c", "GET", key});
      ASSERT_TRUE(get.ok()) << get.status().to_string();
      EXPECT_EQ(get->out, "v" + key + "\n") << key << ": " << get->err;
    }
  }
  {
    // Without -c, node 3's MOVED reaches the user as is.
    const std::string key = key_served_at(ranges, cluster.port(0), "plain:");
    auto get = run_redis_cli(cluster.port(2), {"GET", key});
    ASSERT_TRUE(get.ok());
    EXPECT_EQ(get->out,
              "MOVED " + std::to_string(expected_slot(key)) + " " + cluster.address(0) + "\n\n")
        << get->err;
  }

  // CLUSTER REDIRECTS ON on a connection to node 1: MOVED for a key node 2
  // serves, CROSSSLOT for MGET across slots; the MOVED target serves the key.
  const std::string theirs = key_served_at(ranges, cluster.port(1), "theirs:");
  const std::string mine = key_served_at(ranges, cluster.port(0), "mine:");
  ASSERT_EQ(c1.cmd({"SET", theirs, "t"}), "+OK");
  ASSERT_EQ(c1.cmd({"SET", mine, "m"}), "+OK");
  ASSERT_EQ(c1.cmd({"CLUSTER", "REDIRECTS", "ON"}), "+OK");
  const std::string moved = c1.cmd({"GET", theirs});
  EXPECT_EQ(moved, "-MOVED " + std::to_string(expected_slot(theirs)) + " " + cluster.address(1));
  EXPECT_EQ(c1.cmd({"SET", theirs, "t2"}), moved) << "a write is redirected the same way";
  EXPECT_EQ(c1.cmd({"GET", mine}), "\"m\"") << "a key node 1 serves is answered";
  EXPECT_EQ(c1.cmd({"MGET", mine, theirs}),
            "-CROSSSLOT Keys in request don't hash to the same slot");
  if (expected_slot(mine) != expected_slot(mine + "x")) {
    EXPECT_EQ(c1.cmd({"MGET", mine, mine + "x"}),
              "-CROSSSLOT Keys in request don't hash to the same slot")
        << "CROSSSLOT is about slots, even on one node";
  }
  {
    // Follow the MOVED: the named node serves the key, without redirecting.
    const std::string target = moved.substr(moved.rfind(' ') + 1);
    ASSERT_EQ(target, cluster.address(1));
    RedisClient c2 = cluster.client(1);
    ASSERT_EQ(c2.cmd({"CLUSTER", "REDIRECTS", "ON"}), "+OK");
    EXPECT_EQ(c2.cmd({"GET", theirs}), "\"t\"");
    auto local = cluster.local_keys(1);
    ASSERT_TRUE(local.ok());
    EXPECT_GE(*local, 1);
  }
  // A hash tag keeps a multi-key command in one slot.
  const std::string tag = "{" + key_served_at(ranges, cluster.port(0), "tag") + "}";
  EXPECT_EQ(c1.cmd({"MSET", tag + "a", "1", tag + "b", "2"}), "+OK");
  EXPECT_EQ(c1.cmd({"MGET", tag + "a", tag + "b", tag + "c"}), "[\"1\", \"2\", (nil)]");

  // CLUSTER REDIRECTS OFF: the same connection is routed again.
  ASSERT_EQ(c1.cmd({"CLUSTER", "REDIRECTS", "OFF"}), "+OK");
  EXPECT_EQ(c1.cmd({"GET", theirs}), "\"t\"");
  EXPECT_EQ(c1.cmd({"MGET", mine, theirs}), "[\"m\", \"t\"]");
  EXPECT_EQ(c1.cmd({"CLUSTER", "REDIRECTS", "MAYBE"}).substr(0, 4), "-ERR");
}

// ============================================================ 3. redis-benchmark

TEST(Routing, RedisBenchmarkClusterModeRunsAgainstTheSlotsCluster) {
  SKIP_FOR_REDIS();
  if (!on_path("redis-benchmark")) GTEST_SKIP() << "redis-benchmark is not on PATH";
  RoutingCluster cluster(3, {"--default-partitioner", "slots"});
  ASSERT_STARTED(cluster);
  auto run = run_program({"redis-benchmark", "--cluster", "-h", "127.0.0.1", "-p",
                          std::to_string(cluster.port(0)), "-t", "set,get", "-n", "2000", "-q"},
                         "", 60s);
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  EXPECT_EQ(run->exit_code, 0) << run->out << run->err;
  EXPECT_NE(run->out.find("Cluster has 3 master nodes"), std::string::npos) << run->out;
  for (const std::string test : {"SET", "GET"}) {
    // The final line per test: "SET: 7751.94 requests per second, p50=...".
    std::smatch m;
    const std::regex line("(^|[\r\n])" + test + ": ([0-9.]+) requests per second");
    ASSERT_TRUE(std::regex_search(run->out, m, line)) << test << " missing in:\n" << run->out;
    EXPECT_GT(std::stod(m[2].str()), 0.0) << m[0].str();
  }
  // It wrote through every master: each node's own store got keys.
  for (size_t n = 0; n < cluster.size(); ++n) {
    auto local = cluster.local_keys(n);
    ASSERT_TRUE(local.ok());
    EXPECT_GT(*local, 0) << "node " << n + 1;
  }
}

// ============================================================ 4. ioredis

// tests/ioredis/ (beside this file) with ioredis installed by npm: the
// directory to run its scripts in. Unavailable, saying why, where node or npm
// is missing or the npm registry cannot be reached (the test skips then).
Result<std::string> installed_ioredis() {
  if (!on_path("node") || !on_path("npm")) {
    return Status::Unavailable("node or npm is not on PATH");
  }
  auto dir =
      npm_installed((fs::path(STATEKV_TESTS_DIR) / "ioredis").string(), "ioredis-node", "ioredis");
  if (!dir.ok() && dir.status().code() == Status::Code::kUnavailable) {
    return Status::Unavailable("cannot install ioredis, the npm registry is unreachable: " +
                               dir.status().message().substr(0, 600));
  }
  return dir;
}

TEST(Routing, IoredisClusterClientWritesAndReadsThroughTheSlotsCluster) {
  SKIP_FOR_REDIS();
  auto dir = installed_ioredis();
  if (!dir.ok() && dir.status().code() == Status::Code::kUnavailable) {
    GTEST_SKIP() << dir.status().message();
  }
  ASSERT_TRUE(dir.ok()) << dir.status().to_string();

  RoutingCluster cluster(3, {"--default-partitioner", "slots"});
  ASSERT_STARTED(cluster);
  // Connect through node 2: the client learns the rest from CLUSTER SLOTS.
  auto run = run_program({"node", "cluster_test.js", std::to_string(cluster.port(1)), "3"},
                         *dir, 40s);
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  EXPECT_EQ(run->exit_code, 0) << "stdout:\n" << run->out << "\nstderr:\n" << run->err;
  EXPECT_NE(run->out.find("ok: 200 keys"), std::string::npos) << run->out;

  // What ioredis wrote is there for everyone, spread over the nodes.
  RedisClient c = cluster.client(2);
  EXPECT_EQ(c.cmd({"GET", "ioredis:key:199"}), "\"value-of-ioredis:key:199\"");
  size_t holding = 0;
  for (size_t n = 0; n < cluster.size(); ++n) {
    auto local = cluster.local_keys(n);
    ASSERT_TRUE(local.ok());
    holding += *local > 0;
  }
  EXPECT_EQ(holding, 3u);
}

// ioredis reading from replicas (scaleReads 'slave'): a consensus keyspace
// partitioned by slots lists each slot range's replicas in CLUSTER SLOTS, and
// the client sends READONLY to them before it reads there.
TEST(Routing, IoredisReadsFromTheReplicasOfAConsensusSlotsKeyspace) {
  SKIP_FOR_REDIS();
  auto dir = installed_ioredis();
  if (!dir.ok() && dir.status().code() == Status::Code::kUnavailable) {
    GTEST_SKIP() << dir.status().message();
  }
  ASSERT_TRUE(dir.ok()) << dir.status().to_string();

  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  RedisClient admin = cluster.client(0);
  ASSERT_EQ(admin.cmd({"KEYSPACE", "CREATE", "rs", "PREFIX", "rs:", "PARTITIONER", "slots",
                       "REPLICATION", "consensus", "FACTOR", "3"}),
            "+OK");
  // Writable once its groups have leaders.
  const auto deadline = Clock::now() + 20s;
  while (admin.cmd({"SET", "rs:probe", "1"}) != "+OK" && Clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(admin.cmd({"SET", "rs:probe", "1"}), "+OK");
  auto run = run_program(
      {"node", "cluster_test.js", std::to_string(cluster.port(1)), "replicas", "rs:"}, *dir, 40s);
  ASSERT_TRUE(run.ok()) << run.status().to_string();
  EXPECT_EQ(run->exit_code, 0) << "stdout:\n" << run->out << "\nstderr:\n" << run->err;
  EXPECT_NE(run->out.find("ok: 100 keys read from replicas"), std::string::npos) << run->out;
}

// ============================================================ 5. KEYSPACE

TEST(Routing, KeyspaceCreatedOnOneNodeIsSeenAndRoutedByAll) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  RedisClient c1 = cluster.client(0);
  RedisClient c2 = cluster.client(1);
  RedisClient c3 = cluster.client(2);

  ASSERT_EQ(c1.cmd({"KEYSPACE", "CREATE", "users", "PARTITIONER", "ring", "VNODES", "16"}), "+OK");

  // LIST and INFO from the other nodes (they read the replicated map).
  for (RedisClient* c : {&c2, &c3}) {
    auto list = c->bulk_array({"KEYSPACE", "LIST"});
    ASSERT_TRUE(list.ok()) << list.status().to_string();
    EXPECT_EQ(std::set<std::string>(list->begin(), list->end()),
              (std::set<std::string>{"default", "users"}));
    RawClient raw = cluster.raw(c == &c2 ? 1 : 2);
    auto info = raw.call({"KEYSPACE", "INFO", "users"});
    ASSERT_TRUE(info.ok());
    const resp::Value& v = info->value;
    ASSERT_NE(field(v, "partitioner"), nullptr) << render(v);
    EXPECT_EQ(field(v, "name")->str, "users") << render(v);
    EXPECT_EQ(field(v, "prefix")->str, "users:") << render(v);
    EXPECT_EQ(field(v, "partitioner")->str, "ring") << render(v);
    EXPECT_EQ(field(v, "vnodes")->integer, 16) << render(v);
    EXPECT_GE(field(v, "shards")->integer, 3) << render(v);
  }

  // Write through node 1, read through node 3.
  ASSERT_EQ(c1.cmd({"SET", "users:1", "x"}), "+OK");
  EXPECT_EQ(c3.cmd({"GET", "users:1"}), "\"x\"");

  // LOCATE says users / ring on the creator at once, and on the others once
  // their map has caught up (it trails the raft log by a moment).
  for (size_t n = 0; n < cluster.size(); ++n) {
    Result<Location> loc = Status::NotFound("not asked");
    const auto deadline = Clock::now() + 3s;
    do {
      loc = cluster.locate(n, "users:1");
      if (loc.ok() && loc->keyspace == "users") break;
      std::this_thread::sleep_for(20ms);
    } while (n != 0 && Clock::now() < deadline);
    ASSERT_TRUE(loc.ok()) << loc.status().to_string();
    EXPECT_EQ(loc->keyspace, "users") << "node " << n + 1 << ": " << loc->text;
    EXPECT_EQ(loc->partitioner, "ring") << "node " << n + 1 << ": " << loc->text;
  }

  // The ring spreads the keyspace over more than one node, and every key
  // written through node 2 reads back through node 3.
  std::set<int64_t> owners;
  for (int i = 0; i < 40; ++i) {
    const std::string k = "users:" + std::to_string(100 + i);
    ASSERT_EQ(c2.cmd({"SET", k, "u" + k}), "+OK");
    auto loc = cluster.locate(0, k);
    ASSERT_TRUE(loc.ok());
    EXPECT_EQ(loc->keyspace, "users");
    owners.insert(loc->owners.front());
  }
  EXPECT_GE(owners.size(), 2u);
  for (int i = 0; i < 40; ++i) {
    const std::string k = "users:" + std::to_string(100 + i);
    EXPECT_EQ(c3.cmd({"GET", k}), "\"u" + k + "\"");
  }

  // Mistakes are errors, and the server keeps serving.
  const std::string bad = c2.cmd({"KEYSPACE", "CREATE", "bad", "PARTITIONER", "nosuch"});
  EXPECT_EQ(bad.substr(0, 5), "-ERR ") << bad;
  EXPECT_NE(bad.find("nosuch"), std::string::npos) << bad;
  EXPECT_EQ(c2.cmd({"PING"}), "+PONG");
  // Client tracking is served on a cluster node in every mode
  // (tests/tracking_test.cc ClusterTracking.* proves the invalidations).
  {
    RawClient raw = cluster.raw(1);
    ASSERT_TRUE(raw.call({"HELLO", "3"}).ok());
    auto tracking = raw.call({"CLIENT", "TRACKING", "ON"});
    ASSERT_TRUE(tracking.ok());
    EXPECT_EQ(tracking->bytes, "+OK\r\n");
    EXPECT_EQ(raw.call({"CLIENT", "TRACKING", "OFF"})->bytes, "+OK\r\n");
    auto bcast = raw.call({"CLIENT", "TRACKING", "ON", "BCAST"});
    ASSERT_TRUE(bcast.ok());
    EXPECT_EQ(bcast->bytes, "+OK\r\n");
  }
  // Replication the data path does not serve yet is refused, not recorded.
  const std::string replicated = c2.cmd(
      {"KEYSPACE", "CREATE", "copies", "REPLICATION", "chain", "FACTOR", "3"});
  EXPECT_EQ(replicated.substr(0, 5), "-ERR ") << replicated;
  EXPECT_NE(replicated.find("not served yet"), std::string::npos) << replicated;
  const std::string again = c3.cmd({"KEYSPACE", "CREATE", "users", "PARTITIONER", "hash"});
  EXPECT_EQ(again.substr(0, 1), "-") << again;
  EXPECT_NE(again.find("users"), std::string::npos) << again;
  auto list = c1.bulk_array({"KEYSPACE", "LIST"});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(std::set<std::string>(list->begin(), list->end()),
            (std::set<std::string>{"default", "users"}));
  RawClient raw = cluster.raw(0);
  auto info = raw.call({"KEYSPACE", "INFO", "users"});
  ASSERT_TRUE(info.ok());
  ASSERT_NE(field(info->value, "partitioner"), nullptr) << render(info->value);
  EXPECT_EQ(field(info->value, "partitioner")->str, "ring") << "the refused CREATE changed it";
  EXPECT_EQ(c1.cmd({"GET", "users:1"}), "\"x\"");
}

// ============================================================ 6. a node down

TEST(Routing, KeysOfAKilledNodeGetClusterdownAndTheRestKeepWorking) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  std::map<size_t, std::vector<std::string>> by_owner;
  RedisClient c1 = cluster.client(0);
  for (int i = 0; i < 60; ++i) {
    const std::string k = "down:" + std::to_string(i);
    ASSERT_EQ(c1.cmd({"SET", k, value_of(k)}), "+OK");
    by_owner[cluster.owner_of(k)].push_back(k);
  }
  ASSERT_EQ(by_owner.size(), 3u);

  cluster.node(2).kill();  // node 3, SIGKILL
  for (size_t n : {0u, 1u}) {
    RedisClient c = cluster.client(n);
    // Its keys: a clear error, twice (a broken cached connection, then none).
    for (int attempt = 0; attempt < 2; ++attempt) {
      const auto started = Clock::now();
      const std::string got = c.cmd({"GET", by_owner[2][static_cast<size_t>(attempt)]});
      EXPECT_EQ(got.substr(0, 13), "-CLUSTERDOWN ") << got;
      EXPECT_NE(got.find("node 3"), std::string::npos) << "should name the node: " << got;
      EXPECT_LT(Clock::now() - started, 3s) << got;
    }
    const std::string set = c.cmd({"SET", by_owner[2][2], "new"});
    EXPECT_EQ(set.substr(0, 13), "-CLUSTERDOWN ") << set;
    const std::string mget = c.cmd({"MGET", by_owner[0][0], by_owner[2][0]});
    EXPECT_EQ(mget.substr(0, 13), "-CLUSTERDOWN ") << mget;
    const std::string dbsize = c.cmd({"DBSIZE"});
    EXPECT_EQ(dbsize.substr(0, 13), "-CLUSTERDOWN ")
        << "a count without node 3 would lie: " << dbsize;
    // Keys the live nodes own: read, written, fanned out between the two.
    for (size_t owner : {0u, 1u}) {
      for (const std::string& k : by_owner[owner]) {
        EXPECT_EQ(c.cmd({"GET", k}), "\"" + value_of(k) + "\"") << k << " via node " << n + 1;
      }
      // A new key of this owner, written here and read through the other.
      std::string fresh;
      for (int i = 0; fresh.empty(); ++i) {
        const std::string k = "fresh:" + std::to_string(n) + ":" + std::to_string(i);
        if (cluster.owner_of(k, n) == owner) fresh = k;
      }
      EXPECT_EQ(c.cmd({"SET", fresh, "after-kill"}), "+OK") << fresh;
      EXPECT_EQ(cluster.client(1 - n).cmd({"GET", fresh}), "\"after-kill\"") << fresh;
    }
    EXPECT_EQ(c.cmd({"MGET", by_owner[0][1], by_owner[1][1]}),
              "[\"" + value_of(by_owner[0][1]) + "\", \"" + value_of(by_owner[1][1]) + "\"]");
  }
}

// ============================================================ 6b. operating without surprises

// Issue "Operating statekv without surprises", item 9: a value over 64 MiB
// (proto-max-bulk-len allows 512 MB) routed through a node that does not own
// it failed with "CLUSTERDOWN ... may or may not have run" while the owner
// logged a frame over the limit. Now peers carry it both ways: SET through a
// non-owner (the routed single-key path), GET and MGET (the fan-out path)
// through non-owners.
TEST(Routing, ValuesOver64MiBAreCarriedBetweenNodes) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  std::string big_key;
  for (int i = 0; big_key.empty(); ++i) {
    const std::string k = "big:" + std::to_string(i);
    if (cluster.owner_of(k) == 2) big_key = k;  // owned by node 3
  }
  std::string small_key;
  for (int i = 0; small_key.empty(); ++i) {
    const std::string k = "small:" + std::to_string(i);
    if (cluster.owner_of(k) == 1) small_key = k;  // owned by node 2
  }
  std::string big(70u << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);

  RedisClient via1 = cluster.client(0);
  ASSERT_EQ(via1.cmd({"SET", big_key, big}), "+OK");
  ASSERT_EQ(via1.cmd({"SET", small_key, "s"}), "+OK");
  EXPECT_EQ(via1.cmd({"STRLEN", big_key}), ":" + std::to_string(big.size()));
  RedisClient via2 = cluster.client(1);
  auto got = via2.bulk({"GET", big_key});
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(got->size(), big.size());
  EXPECT_TRUE(*got == big) << "the value came back changed";
  auto both = via1.bulk_array({"MGET", big_key, small_key});
  ASSERT_TRUE(both.ok()) << both.status().to_string();
  ASSERT_EQ(both->size(), 2u);
  EXPECT_TRUE((*both)[0] == big);
  EXPECT_EQ((*both)[1], "s");
  auto owner_keys = cluster.local_keys(2);
  ASSERT_TRUE(owner_keys.ok()) << owner_keys.status().to_string();
  EXPECT_EQ(*owner_keys, 1) << "the owner's own store holds the big key";
}

// A keyspace creation whose driver stopped after its first map change (the
// keyspace `creating`, written here as that driver would have) does not hold
// its prefix for good: every node abandons it through the map once it has
// seen it under way for --keyspace-create-limit-ms, and the prefix is served
// where it was.
TEST(Routing, AStalledKeyspaceCreationIsAbandonedByTheCluster) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3, {"--keyspace-create-limit-ms", "1000"});
  ASSERT_STARTED(cluster);
  std::vector<std::string> endpoints;
  for (size_t i = 0; i < cluster.size(); ++i) {
    endpoints.push_back("127.0.0.1:" + std::to_string(cluster.peer_port(i)));
  }
  // Before the map change: no node can have seen it earlier.
  const auto started = Clock::now();
  const Status begun = begin_keyspace_creation(endpoints, kSecret, "cz", "cz:");
  ASSERT_TRUE(begun.ok()) << begun.to_string();

  RedisClient c = cluster.client(1);
  std::string reply;
  bool refused = false;
  while (Clock::now() - started < 10s) {
    reply = c.cmd({"SET", "cz:1", "v"});
    if (reply.rfind("-TRYAGAIN keyspace 'cz' is being created", 0) == 0) {
      refused = true;
    } else if (reply == "+OK" && refused) {
      break;
    }
    // (+OK before any refusal: node 2 did not have the map yet.)
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(refused) << "its keys were never refused";
  ASSERT_EQ(reply, "+OK") << "the stalled creation was not abandoned within 10 s";
  EXPECT_GE(Clock::now() - started, 1s);
  EXPECT_EQ(c.cmd({"GET", "cz:1"}), "\"v\"");
  // Node 1 served it, so its map no longer has `cz`; the others learn that
  // map change a moment later.
  for (size_t n = 0; n < cluster.size(); ++n) {
    std::string keyspace;
    const auto asked = Clock::now();
    while (Clock::now() - asked < 5s) {
      auto where = cluster.locate(n, "cz:1");
      ASSERT_TRUE(where.ok()) << where.status().to_string();
      keyspace = where->keyspace;
      if (keyspace == "default") break;
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(keyspace, "default") << "node " << n << " still has the abandoned keyspace";
  }
}

// Item 13: INFO on a cluster node says so (redis_mode:cluster, INFO cluster's
// cluster_enabled:1), and INFO keyspace's db0 counts what DBSIZE counts (the
// whole cluster) while node_keys counts this node's own store.
TEST(Routing, InfoSaysClusterModeAndItsKeyspaceCountsWhatDbsizeCounts) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  RedisClient c = cluster.client(0);
  for (int i = 0; i < 30; ++i) {
    ASSERT_EQ(c.cmd({"SET", "info:" + std::to_string(i), "v"}), "+OK");
  }
  ASSERT_EQ(c.cmd({"EXPIRE", "info:0", "1000"}), ":1");
  long long node_sum = 0;
  for (size_t n = 0; n < cluster.size(); ++n) {
    RedisClient r = cluster.client(n);
    auto server = r.bulk({"INFO", "server"});
    ASSERT_TRUE(server.ok());
    EXPECT_NE(server->find("redis_mode:cluster\r\n"), std::string::npos) << *server;
    auto info_cluster = r.bulk({"INFO", "cluster"});
    ASSERT_TRUE(info_cluster.ok());
    EXPECT_NE(info_cluster->find("cluster_enabled:1\r\n"), std::string::npos) << *info_cluster;
    EXPECT_EQ(r.cmd({"DBSIZE"}), ":30");
    auto keyspace = r.bulk({"INFO", "keyspace"});
    ASSERT_TRUE(keyspace.ok());
    EXPECT_NE(keyspace->find("db0:keys=30,expires=1,avg_ttl=0\r\n"), std::string::npos)
        << "node " << n + 1 << ":\n"
        << *keyspace;
    auto own = cluster.local_keys(n);
    ASSERT_TRUE(own.ok()) << own.status().to_string();
    node_sum += *own;
  }
  EXPECT_EQ(node_sum, 30) << "node_keys count each node's own store";
}

// Item 13: KEYSPACE INFO gives vnodes only for a ring, and the change log
// line of a created keyspace names the shard count KEYSPACE INFO gives.
TEST(Routing, KeyspaceInfoAndTheChangeLogAgreeOnShardsAndVnodes) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  RawClient raw = cluster.raw(0);
  struct Case {
    std::vector<std::string> create;
    bool vnodes;
  };
  const std::vector<Case> cases = {
      {{"KEYSPACE", "CREATE", "h", "PARTITIONER", "hash"}, false},
      {{"KEYSPACE", "CREATE", "r", "PARTITIONER", "range", "SPLITS", "m"}, false},
      {{"KEYSPACE", "CREATE", "g", "PARTITIONER", "ring", "VNODES", "8"}, true},
  };
  for (const Case& k : cases) {
    auto created = raw.call(k.create);
    ASSERT_TRUE(created.ok());
    ASSERT_EQ(render(created->value), "+OK") << k.create[2];
    auto info = raw.call({"KEYSPACE", "INFO", k.create[2]});
    ASSERT_TRUE(info.ok());
    const std::string text = render(info->value);
    EXPECT_EQ(field(info->value, "vnodes") != nullptr, k.vnodes) << text;
    const resp::Value* shards = field(info->value, "shards");
    ASSERT_NE(shards, nullptr) << text;
    // This node's map may trail the leader's by a moment.
    std::string change;
    for (const auto until = Clock::now() + 5s; Clock::now() < until;) {
      auto cluster_info = cluster.client(0).bulk({"CLUSTER", "INFO"});
      ASSERT_TRUE(cluster_info.ok());
      const size_t at = cluster_info->find("meta_last_change:");
      ASSERT_NE(at, std::string::npos);
      change = cluster_info->substr(at, cluster_info->find("\r\n", at) - at);
      if (change.find("create keyspace '" + k.create[2] + "'") != std::string::npos) break;
      std::this_thread::sleep_for(20ms);
    }
    EXPECT_NE(change.find("create keyspace '" + k.create[2] + "'"), std::string::npos) << change;
    EXPECT_NE(change.find(", " + std::to_string(shards->integer) + " shard"), std::string::npos)
        << change << " vs KEYSPACE INFO " << text;
  }
}

// ============================================================ 7. hash tags, keyspace definitions

// Redis Cluster users keep related keys together with a {hash tag}: in the
// default hash keyspace too, {a}x {a}y {a}z live on one node, so RENAME and
// other multi-key commands on them run there (no CROSSSLOT), and that node's
// own store holds all of them.
TEST(Routing, KeysSharingAHashTagLiveOnOneNodeOfTheDefaultHashKeyspace) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  RedisClient c = cluster.client(0);
  std::set<size_t> tag_owners;
  for (const std::string tag : {"a", "user1000", "b", "c", "d", "e"}) {
    SCOPED_TRACE(tag);
    const std::string x = "{" + tag + "}x", y = "{" + tag + "}y", z = "{" + tag + "}z";
    // LOCATE through every node names one owner for all three keys.
    std::set<int64_t> owners;
    for (size_t n = 0; n < cluster.size(); ++n) {
      for (const std::string& k : {x, y, z}) {
        auto loc = cluster.locate(n, k);
        ASSERT_TRUE(loc.ok()) << loc.status().to_string();
        EXPECT_EQ(loc->keyspace, "default") << loc->text;
        EXPECT_EQ(loc->partitioner, "hash") << loc->text;
        owners.insert(loc->owners.front());
      }
    }
    ASSERT_EQ(owners.size(), 1u) << x << ", " << y << ", " << z << " should share an owner";
    tag_owners.insert(cluster.index_of(*owners.begin()));
  }
  EXPECT_GE(tag_owners.size(), 2u) << "different tags spread over the nodes";

  const size_t owner = cluster.owner_of("{a}x");
  for (size_t n = 0; n < cluster.size(); ++n) {
    auto here = cluster.local_keys(n);
    ASSERT_TRUE(here.ok()) << here.status().to_string();
    ASSERT_EQ(*here, 0) << "node " << n + 1 << " starts empty";
  }
  EXPECT_EQ(c.cmd({"MSET", "{a}x", "1", "{a}y", "2", "{a}z", "3"}), "+OK");
  EXPECT_EQ(c.cmd({"RENAME", "{a}x", "{a}w"}), "+OK");
  EXPECT_EQ(c.cmd({"RENAMENX", "{a}y", "{a}v"}), ":1");
  EXPECT_EQ(c.cmd({"MGET", "{a}w", "{a}v", "{a}z", "{a}x"}), "[\"1\", \"2\", \"3\", (nil)]");
  for (size_t n = 0; n < cluster.size(); ++n) {
    RedisClient via = cluster.client(n);
    EXPECT_EQ(via.cmd({"RENAME", "{a}z", "{a}u"}).substr(0, 1), n == 0 ? "+" : "-")
        << "through node " << n + 1;  // the first renames it; then {a}z is gone
    EXPECT_EQ(via.cmd({"GET", "{a}w"}), "\"1\"") << "through node " << n + 1;
    auto here = cluster.local_keys(n);
    ASSERT_TRUE(here.ok()) << here.status().to_string();
    EXPECT_EQ(*here, n == owner ? 3 : 0) << "node " << n + 1 << "'s own store";
  }
  EXPECT_EQ(c.cmd({"GET", "{a}u"}), "\"3\"");
  // Keys without a common tag on two nodes still get CROSSSLOT for RENAME.
  std::string other;
  for (int i = 0; other.empty(); ++i) {
    const std::string k = "k" + std::to_string(i);
    if (cluster.owner_of(k) != owner) other = k;
  }
  const std::string cross = c.cmd({"RENAME", "{a}w", other});
  EXPECT_EQ(cross.substr(0, 10), "-CROSSSLOT") << cross;
}

// Hashes and sets in a 3-node cluster: every command goes to its key's owner
// (through any node), multi-key set commands on keys of one owner run there,
// and across owners they are CROSSSLOT, SINTERCARD's numkeys-counted keys
// included.
TEST(Routing, HashAndSetCommandsRouteToTheirKeysOwner) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  for (size_t n = 0; n < cluster.size(); ++n) {
    RedisClient via = cluster.client(n);
    const std::string h = "hash" + std::to_string(n);
    const std::string s = "set" + std::to_string(n);
    EXPECT_EQ(via.cmd({"HSET", h, "f", "v", "g", "w"}), ":2") << "through node " << n + 1;
    EXPECT_EQ(via.cmd({"SADD", s, "a", "b"}), ":2") << "through node " << n + 1;
  }
  for (size_t n = 0; n < cluster.size(); ++n) {
    RedisClient via = cluster.client(n);
    for (size_t k = 0; k < cluster.size(); ++k) {
      const std::string h = "hash" + std::to_string(k);
      const std::string s = "set" + std::to_string(k);
      EXPECT_EQ(via.cmd({"HGET", h, "g"}), "\"w\"") << h << " through node " << n + 1;
      EXPECT_EQ(via.cmd({"SCARD", s}), ":2") << s << " through node " << n + 1;
      EXPECT_EQ(via.cmd({"TYPE", h}), "+hash");
      EXPECT_EQ(via.cmd({"GET", s}),
                "-WRONGTYPE Operation against a key holding the wrong kind of value");
    }
  }
  // Each node's own store holds exactly the keys it owns.
  int64_t total = 0;
  for (size_t n = 0; n < cluster.size(); ++n) {
    auto here = cluster.local_keys(n);
    ASSERT_TRUE(here.ok()) << here.status().to_string();
    total += *here;
  }
  EXPECT_EQ(total, 6);

  RedisClient c = cluster.client(0);
  EXPECT_EQ(c.cmd({"SADD", "{t}a", "1", "2", "3"}), ":3");
  EXPECT_EQ(c.cmd({"SADD", "{t}b", "2", "3", "4"}), ":3");
  EXPECT_EQ(c.cmd({"SINTER", "{t}a", "{t}b"}), "[\"2\", \"3\"]");
  EXPECT_EQ(c.cmd({"SINTERCARD", "2", "{t}a", "{t}b"}), ":2");
  EXPECT_EQ(c.cmd({"SUNIONSTORE", "{t}u", "{t}a", "{t}b"}), ":4");
  EXPECT_EQ(c.cmd({"SMOVE", "{t}a", "{t}b", "1"}), ":1");
  std::string other;
  for (int i = 0; other.empty(); ++i) {
    const std::string k = "k" + std::to_string(i);
    if (cluster.owner_of(k) != cluster.owner_of("{t}a")) other = k;
  }
  for (const std::vector<std::string>& cmd :
       std::vector<std::vector<std::string>>{{"SINTER", "{t}a", other},
                                             {"SUNION", other, "{t}a"},
                                             {"SDIFFSTORE", other, "{t}a"},
                                             {"SMOVE", "{t}a", other, "2"},
                                             {"SINTERCARD", "2", "{t}a", other},
                                             {"COPY", "{t}a", other}}) {
    const std::string reply = c.cmd(cmd);
    EXPECT_EQ(reply.substr(0, 10), "-CROSSSLOT") << cmd[0] << ": " << reply;
  }
  EXPECT_EQ(c.cmd({"SINTERCARD", "0", "{t}a"}), "-ERR numkeys should be greater than 0");
}

// Sorted sets in a 3-node cluster: the commands over several keys (a
// destination, keys counted by numkeys) run on their keys' owner through any
// node when the keys share it, and are CROSSSLOT otherwise, whichever
// position the foreign key is in.
TEST(Routing, SortedSetCommandsOverSeveralKeysRouteByEveryKey) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  std::string other;
  for (int i = 0; other.empty(); ++i) {
    const std::string k = "k" + std::to_string(i);
    if (cluster.owner_of(k) != cluster.owner_of("{t}a")) other = k;
  }
  for (size_t n = 0; n < cluster.size(); ++n) {
    RedisClient c = cluster.client(n);
    SCOPED_TRACE("through node " + std::to_string(n + 1));
    EXPECT_EQ(c.cmd({"DEL", "{t}a", "{t}b", "{t}d"}).substr(0, 1), ":");
    EXPECT_EQ(c.cmd({"ZADD", "{t}a", "1", "x", "2", "y"}), ":2");
    EXPECT_EQ(c.cmd({"ZADD", "{t}b", "3", "y", "4", "z"}), ":2");
    EXPECT_EQ(c.cmd({"ZUNION", "2", "{t}a", "{t}b"}), "[\"x\", \"z\", \"y\"]");
    EXPECT_EQ(c.cmd({"ZINTER", "2", "{t}a", "{t}b", "WITHSCORES"}), "[\"y\", \"5\"]");
    EXPECT_EQ(c.cmd({"ZDIFF", "2", "{t}a", "{t}b"}), "[\"x\"]");
    EXPECT_EQ(c.cmd({"ZINTERCARD", "2", "{t}a", "{t}b"}), ":1");
    EXPECT_EQ(c.cmd({"ZUNIONSTORE", "{t}d", "2", "{t}a", "{t}b"}), ":3");
    EXPECT_EQ(c.cmd({"ZINTERSTORE", "{t}d", "2", "{t}a", "{t}b"}), ":1");
    EXPECT_EQ(c.cmd({"ZDIFFSTORE", "{t}d", "2", "{t}b", "{t}a"}), ":1");
    EXPECT_EQ(c.cmd({"ZRANGESTORE", "{t}d", "{t}a", "0", "-1"}), ":2");
    EXPECT_EQ(c.cmd({"ZRANGE", "{t}d", "0", "-1"}), "[\"x\", \"y\"]");
    EXPECT_EQ(c.cmd({"ZSCAN", "{t}a", "0"}), "[\"0\", [\"x\", \"1\", \"y\", \"2\"]]");
    EXPECT_EQ(c.cmd({"ZRANDMEMBER", "{t}a", "-1"}).substr(0, 2), "[\"");
    for (const std::vector<std::string>& cmd :
         std::vector<std::vector<std::string>>{{"ZUNION", "2", "{t}a", other},
                                               {"ZINTER", "2", other, "{t}a"},
                                               {"ZDIFF", "3", "{t}a", "{t}b", other},
                                               {"ZINTERCARD", "2", "{t}a", other, "LIMIT", "1"},
                                               {"ZUNIONSTORE", other, "2", "{t}a", "{t}b"},
                                               {"ZINTERSTORE", "{t}d", "2", "{t}a", other},
                                               {"ZDIFFSTORE", "{t}d", "1", other},
                                               {"ZRANGESTORE", other, "{t}a", "0", "-1"},
                                               {"ZRANGESTORE", "{t}d", other, "0", "-1"}}) {
      const std::string reply = c.cmd(cmd);
      EXPECT_EQ(reply.substr(0, 10), "-CROSSSLOT") << cmd[0] << ": " << reply;
    }
    // A malformed numkeys names no key: the owner-less command answers the
    // error itself.
    EXPECT_EQ(c.cmd({"ZUNION", "0", "{t}a"}),
              "-ERR at least 1 input key is needed for 'zunion' command");
    EXPECT_EQ(c.cmd({"ZINTERCARD", "5", "{t}a"}), "-ERR syntax error");
  }
}

// Lists in a 3-node cluster: every command goes to its key's owner through
// any node; LMOVE and RPOPLPUSH run on keys of one owner and are CROSSSLOT
// across owners.
TEST(Routing, ListCommandsRouteToTheirKeysOwner) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  for (size_t n = 0; n < cluster.size(); ++n) {
    RedisClient via = cluster.client(n);
    EXPECT_EQ(via.cmd({"RPUSH", "list" + std::to_string(n), "a", "b"}), ":2")
        << "through node " << n + 1;
  }
  for (size_t n = 0; n < cluster.size(); ++n) {
    RedisClient via = cluster.client(n);
    for (size_t k = 0; k < cluster.size(); ++k) {
      const std::string l = "list" + std::to_string(k);
      EXPECT_EQ(via.cmd({"LRANGE", l, "0", "-1"}), "[\"a\", \"b\"]") << l << " via " << n + 1;
      EXPECT_EQ(via.cmd({"TYPE", l}), "+list");
    }
  }
  int64_t total = 0;
  for (size_t n = 0; n < cluster.size(); ++n) {
    auto here = cluster.local_keys(n);
    ASSERT_TRUE(here.ok()) << here.status().to_string();
    total += *here;
  }
  EXPECT_EQ(total, 3);
  RedisClient c = cluster.client(0);
  EXPECT_EQ(c.cmd({"RPUSH", "{t}a", "1", "2", "3"}), ":3");
  EXPECT_EQ(c.cmd({"LMOVE", "{t}a", "{t}b", "LEFT", "RIGHT"}), "\"1\"");
  EXPECT_EQ(c.cmd({"RPOPLPUSH", "{t}a", "{t}b"}), "\"3\"");
  EXPECT_EQ(c.cmd({"LRANGE", "{t}b", "0", "-1"}), "[\"3\", \"1\"]");
  std::string other;
  for (int i = 0; other.empty(); ++i) {
    const std::string k = "k" + std::to_string(i);
    if (cluster.owner_of(k) != cluster.owner_of("{t}a")) other = k;
  }
  for (const std::vector<std::string>& cmd : std::vector<std::vector<std::string>>{
           {"LMOVE", "{t}a", other, "LEFT", "LEFT"}, {"RPOPLPUSH", other, "{t}a"}}) {
    const std::string reply = c.cmd(cmd);
    EXPECT_EQ(reply.substr(0, 10), "-CROSSSLOT") << cmd[0] << ": " << reply;
  }
  EXPECT_EQ(c.cmd({"LLEN", "{t}a"}), ":1");
}

// The field `name` of LOCATE key asked of node `n` (an integer field).
int64_t locate_int(RoutingCluster& cluster, size_t n, const std::string& key,
                   std::string_view name) {
  RawClient raw = cluster.raw(n);
  auto r = raw.call({"LOCATE", key});
  EXPECT_TRUE(r.ok());
  if (!r.ok()) return -1;
  const resp::Value* v = field(r->value, name);
  EXPECT_NE(v, nullptr) << render(r->value);
  return v == nullptr ? -1 : v->integer;
}

// SPLITS are relative to the keyspace's prefix: under "orders:", SPLITS m
// puts orders:a..orders:l in one shard and orders:m.. in the next (it used to
// compare "m" with whole keys, and every orders:* key landed in one shard).
TEST(Routing, RangeSplitPointsAreRelativeToTheKeyspacePrefix) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  RedisClient c = cluster.client(0);
  ASSERT_EQ(c.cmd({"KEYSPACE", "CREATE", "orders", "PREFIX", "orders:", "PARTITIONER", "range",
                   "SPLITS", "m"}),
            "+OK");
  // A split point that already starts with the prefix is the whole key.
  ASSERT_EQ(c.cmd({"KEYSPACE", "CREATE", "items", "PARTITIONER", "range", "SPLITS", "items:m"}),
            "+OK");
  for (const std::string ks : {"orders", "items"}) {
    SCOPED_TRACE(ks);
    std::set<int64_t> low_owners, high_owners;
    for (char ch = 'a'; ch <= 'z'; ++ch) {
      const std::string k = ks + ":" + std::string(1, ch) + "1";
      auto loc = cluster.locate(0, k);
      ASSERT_TRUE(loc.ok()) << loc.status().to_string();
      ASSERT_EQ(loc->keyspace, ks) << loc->text;
      EXPECT_EQ(locate_int(cluster, 0, k, "shard"), ch < 'm' ? 0 : 1) << k;
      (ch < 'm' ? low_owners : high_owners).insert(loc->owners.front());
      ASSERT_EQ(c.cmd({"SET", k, "v" + k}), "+OK");
    }
    EXPECT_EQ(low_owners.size(), 1u);
    EXPECT_EQ(high_owners.size(), 1u);
    EXPECT_NE(*low_owners.begin(), *high_owners.begin()) << "two shards on two nodes";
    // Tagged keys sit at prefix + tag: {zed} with the high keys.
    EXPECT_EQ(locate_int(cluster, 0, ks + ":{zed}:1", "shard"), 1);
    EXPECT_EQ(locate_int(cluster, 0, ks + ":{abc}:1", "shard"), 0);
    for (char ch = 'a'; ch <= 'z'; ++ch) {
      const std::string k = ks + ":" + std::string(1, ch) + "1";
      EXPECT_EQ(cluster.client(2).cmd({"GET", k}), "\"v" + k + "\"");
    }
  }
}

// Nested prefixes, as "the longest prefix wins" promises: users: and
// users:vip: are two keyspaces, whichever is created first, and dropping the
// inner one gives its keys' routing back to the outer one.
TEST(Routing, NestedKeyspacePrefixesRouteByTheLongestPrefix) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  RedisClient c = cluster.client(0);
  ASSERT_EQ(c.cmd({"KEYSPACE", "CREATE", "vip", "PREFIX", "users:vip:", "PARTITIONER", "ring",
                   "VNODES", "8"}),
            "+OK");
  ASSERT_EQ(c.cmd({"KEYSPACE", "CREATE", "users", "PARTITIONER", "hash"}), "+OK");
  ASSERT_EQ(c.cmd({"KEYSPACE", "CREATE", "admins", "PREFIX", "users:"}).substr(0, 1), "-")
      << "the same prefix twice is refused";
  const auto keyspace_on = [&](size_t n, const std::string& key) {
    // Nodes other than the creator may trail the map for a moment.
    const auto deadline = Clock::now() + 3s;
    auto loc = cluster.locate(n, key);
    while (loc.ok() && loc->keyspace == "default" && Clock::now() < deadline) {
      std::this_thread::sleep_for(20ms);
      loc = cluster.locate(n, key);
    }
    return loc.ok() ? loc->keyspace : loc.status().to_string();
  };
  for (size_t n = 0; n < cluster.size(); ++n) {
    EXPECT_EQ(keyspace_on(n, "users:vip:7"), "vip") << "node " << n + 1;
    EXPECT_EQ(keyspace_on(n, "users:7"), "users") << "node " << n + 1;
    EXPECT_EQ(keyspace_on(n, "users:vi"), "users") << "node " << n + 1;
  }
  for (int i = 0; i < 20; ++i) {
    for (const std::string prefix : {"users:vip:", "users:"}) {
      const std::string k = prefix + std::to_string(i);
      ASSERT_EQ(cluster.client(static_cast<size_t>(i) % 3).cmd({"SET", k, "v" + k}), "+OK");
    }
  }
  for (int i = 0; i < 20; ++i) {
    for (const std::string prefix : {"users:vip:", "users:"}) {
      const std::string k = prefix + std::to_string(i);
      EXPECT_EQ(cluster.client(static_cast<size_t>(i + 1) % 3).cmd({"GET", k}), "\"v" + k + "\"");
    }
  }
  // DROP deletes the keyspace's keys and counts them.
  ASSERT_EQ(c.cmd({"KEYSPACE", "DROP", "vip"}), ":20");
  auto loc = cluster.locate(0, "users:vip:7");
  ASSERT_TRUE(loc.ok());
  EXPECT_EQ(loc->keyspace, "users") << loc->text;
}


// ============================================================ pipelines

// Keys named `prefix:<n>:<i>`, `per_node` of them owned by each node.
std::vector<std::vector<std::string>> keys_per_node(RoutingCluster& cluster,
                                                    const std::string& prefix, int per_node) {
  std::vector<std::vector<std::string>> keys(cluster.size());
  for (int i = 0; i < 10000; ++i) {
    const std::string k = prefix + ":" + std::to_string(i);
    const size_t owner = cluster.owner_of(k);
    if (keys[owner].size() < static_cast<size_t>(per_node)) keys[owner].push_back(k);
    bool done = true;
    for (const auto& ks : keys) done = done && ks.size() == static_cast<size_t>(per_node);
    if (done) break;
  }
  return keys;
}

std::string bulk_reply(const std::optional<std::string>& v) {
  if (!v) return "$-1\r\n";
  return "$" + std::to_string(v->size()) + "\r\n" + *v + "\r\n";
}

TEST(Routing, PipelinedCommandsThroughANonOwnerTakeEffectAndReplyInOrder) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  // Three keys on each node; the client talks to node 1, so a third of them
  // run there and the rest are routed, to two owners.
  const auto by_node = keys_per_node(cluster, "pipe", 3);
  std::vector<std::string> keys;
  for (const auto& ks : by_node) {
    ASSERT_EQ(ks.size(), 3u);
    keys.insert(keys.end(), ks.begin(), ks.end());
  }
  RawClient c = cluster.raw(0);
  // What each command returns if the client's commands take effect in the
  // order sent: writes then reads of one key, routed and local mixed,
  // keyless commands and fan-outs in between.
  std::map<std::string, std::string> model;
  auto value = [&](const std::string& k) -> std::optional<std::string> {
    auto it = model.find(k);
    if (it == model.end()) return std::nullopt;
    return it->second;
  };
  std::mt19937 rng(11);
  for (int round = 0; round < 8; ++round) {
    std::string batch;
    std::vector<std::string> expected;
    for (int i = 0; i < 500; ++i) {
      // Runs of one key, so that many commands to one owner are in flight.
      const std::string& k =
          keys[(rng() % 4 == 0 ? rng() : static_cast<unsigned>(round * 7 + i / 16)) % keys.size()];
      const std::string tag = std::to_string(round) + "." + std::to_string(i) + ",";
      switch (rng() % 8) {
        case 0:
        case 1:
        case 2:
          batch += encode_command({"APPEND", k, tag});
          model[k] += tag;
          expected.push_back(":" + std::to_string(model[k].size()) + "\r\n");
          break;
        case 3:
        case 4:
          batch += encode_command({"GET", k});
          expected.push_back(bulk_reply(value(k)));
          break;
        case 5:
          batch += encode_command({"SET", k, tag});
          model[k] = tag;
          expected.push_back("+OK\r\n");
          break;
        case 6:
          batch += encode_command({"PING"});
          expected.push_back("+PONG\r\n");
          break;
        default: {
          const std::string& other = keys[rng() % keys.size()];
          batch += encode_command({"MGET", k, other});
          expected.push_back("*2\r\n" + bulk_reply(value(k)) + bulk_reply(value(other)));
          break;
        }
      }
    }
    ASSERT_TRUE(c.send(batch).ok());
    for (size_t i = 0; i < expected.size(); ++i) {
      auto r = c.read_reply();
      ASSERT_TRUE(r.ok()) << r.status().to_string();
      ASSERT_EQ(r->bytes, expected[i]) << "round " << round << ", command " << i;
    }
  }
  // Another client sees the last values.
  RedisClient other = cluster.client(1);
  for (const std::string& k : keys) {
    const auto v = value(k);
    EXPECT_EQ(other.cmd({"GET", k}), v ? "\"" + *v + "\"" : "(nil)") << k;
  }
}

// Issue 10 item 8: a long pipeline through a node that owns none of its keys
// goes to the owners in batches (coord/coordinator.h, "Batches"); every reply
// comes, in order and right. 10,000 SET/GET/INCR in one write, in runs on
// the keys of node 2 and of node 3 (so batches end at each switch of owner),
// with a few values too large to wait in a batch.
TEST(Routing, ALongRoutedPipelineInOneWriteGetsEveryReplyInOrder) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  const auto by_node = keys_per_node(cluster, "long", 4);
  std::vector<std::vector<std::string>> owners = {by_node[1], by_node[2]};
  for (const auto& ks : owners) ASSERT_EQ(ks.size(), 4u);
  std::map<std::string, std::string> model;  // a key's value, as Redis keeps it
  std::string pipeline;
  std::vector<std::string> expected;
  std::mt19937 rng(2026);
  int owner = 0;
  for (int i = 0; i < 10000; ++i) {
    if (rng() % 300 == 0) owner ^= 1;  // long runs for one owner, then the other
    const std::string& k = owners[owner][rng() % 4];
    const auto it = model.find(k);
    switch (rng() % 3) {
      case 0: {
        // Mostly counters, some text (INCR of it is Redis's error), rarely
        // a value over the batch's byte budget.
        std::string v = std::to_string(rng() % 1000);
        if (rng() % 10 == 0) v = "text" + v;
        if (rng() % 2000 == 0) v = std::string(300 * 1024, static_cast<char>('a' + i % 26));
        pipeline += encode_command({"SET", k, v});
        model[k] = v;
        expected.push_back("+OK\r\n");
        break;
      }
      case 1:
        pipeline += encode_command({"GET", k});
        expected.push_back(it == model.end() ? "$-1\r\n" : bulk_reply(it->second));
        break;
      default: {
        pipeline += encode_command({"INCR", k});
        long long n = 0;
        const std::string& v = it == model.end() ? std::string("0") : it->second;
        auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc() || end != v.data() + v.size()) {
          expected.push_back("-ERR value is not an integer or out of range\r\n");
        } else {
          model[k] = std::to_string(n + 1);
          expected.push_back(":" + std::to_string(n + 1) + "\r\n");
        }
        break;
      }
    }
  }
  RawClient c = cluster.raw(0);
  ASSERT_TRUE(c.send(pipeline).ok());
  for (size_t i = 0; i < expected.size(); ++i) {
    auto r = c.read_reply(20s);
    ASSERT_TRUE(r.ok()) << "reply " << i << ": " << r.status().to_string();
    ASSERT_EQ(r->bytes.substr(0, 200), expected[i].substr(0, 200)) << "reply " << i;
    ASSERT_EQ(r->bytes, expected[i]) << "reply " << i;
  }
  // The owners hold what the pipeline left.
  for (size_t o = 0; o < owners.size(); ++o) {
    RedisClient direct = cluster.client(o + 1);
    for (const std::string& k : owners[o]) {
      const auto it = model.find(k);
      if (it == model.end()) continue;
      auto v = direct.bulk({"GET", k});
      ASSERT_TRUE(v.ok()) << v.status().to_string();
      EXPECT_EQ(*v, it->second) << k;
    }
  }
}

// A batch whose replies are larger than a part (coordinator.h,
// kBatchReplyBytes: 16 MiB) is answered in parts, which keep their order,
// also around a write too large to wait in a batch.
TEST(Routing, LargeRepliesOfARoutedPipelineComeInPartsInOrder) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  const auto by_node = keys_per_node(cluster, "parts", 2);  // two keys of node 2
  ASSERT_EQ(by_node[1].size(), 2u);
  const std::string big = by_node[1][0], counter = by_node[1][1];
  const std::string v1(5 << 20, 'a'), v2(5 << 20, 'b');
  RedisClient setup = cluster.client(1);
  ASSERT_EQ(setup.cmd({"SET", big, v1}).substr(0, 3), "+OK");
  std::string pipeline;
  std::vector<std::string> expected;
  for (int round = 0; round < 2; ++round) {
    const std::string& v = round == 0 ? v1 : v2;
    for (int i = 0; i < 5; ++i) {
      pipeline += encode_command({"GET", big});
      expected.push_back(bulk_reply(v));
      pipeline += encode_command({"INCR", counter});
      expected.push_back(":" + std::to_string(round * 5 + i + 1) + "\r\n");
    }
    if (round == 0) {
      pipeline += encode_command({"SET", big, v2});
      expected.push_back("+OK\r\n");
    }
  }
  RawClient c = cluster.raw(0);
  ASSERT_TRUE(c.send(pipeline).ok());
  for (size_t i = 0; i < expected.size(); ++i) {
    auto r = c.read_reply(20s);
    ASSERT_TRUE(r.ok()) << "reply " << i << ": " << r.status().to_string();
    ASSERT_EQ(r->bytes.size(), expected[i].size()) << "reply " << i;
    ASSERT_TRUE(r->bytes == expected[i]) << "reply " << i << ": " << r->bytes.substr(0, 40);
  }
}

TEST(Routing, PipelineToAKilledOwnerGetsErrorsInOrderAndTheConnectionStaysUsable) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  const auto by_node = keys_per_node(cluster, "dies", 1);
  const std::string doomed = by_node[2][0], alive = by_node[1][0], local = by_node[0][0];
  RedisClient setup = cluster.client(0);
  ASSERT_EQ(setup.cmd({"SET", doomed, "v"}), "+OK");
  ASSERT_EQ(setup.cmd({"SET", alive, "a"}), "+OK");

  RawClient c = cluster.raw(0);
  constexpr int kCommands = 50000;
  std::string batch;
  for (int i = 0; i < kCommands; ++i) batch += encode_command({"GET", doomed});
  ASSERT_TRUE(c.send(batch).ok());
  cluster.node(2).kill();  // node 3, SIGKILL, while most of them are in flight
  int ok = 0, errors = 0;
  for (int i = 0; i < kCommands; ++i) {
    auto r = c.read_reply(20s);
    ASSERT_TRUE(r.ok()) << "reply " << i << ": " << r.status().to_string();
    if (r->bytes == "$1\r\nv\r\n") {
      ASSERT_EQ(errors, 0) << "reply " << i << " succeeded after an error";
      ++ok;
    } else {
      ASSERT_EQ(r->bytes.substr(0, 13), "-CLUSTERDOWN ") << "reply " << i << ": " << r->bytes;
      ++errors;
    }
  }
  EXPECT_GT(errors, 0) << "node 3 answered all " << kCommands << " before it was killed";
  // The connection goes on: keyless, local, routed to a live node, and to the dead one.
  auto ping = c.call({"PING"});
  ASSERT_TRUE(ping.ok());
  EXPECT_EQ(ping->bytes, "+PONG\r\n");
  ASSERT_TRUE(c.send(encode_command({"SET", local, "l"}) + encode_command({"GET", alive}) +
                     encode_command({"GET", doomed}) + encode_command({"GET", local}))
                  .ok());
  for (const char* want : {"+OK\r\n", "$1\r\na\r\n", "-CLUSTERDOWN ", "$1\r\nl\r\n"}) {
    auto r = c.read_reply();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(r->bytes.substr(0, std::strlen(want)), want);
  }
}

// ============================================================ transactions

// DBSIZE, KEYS, SCAN, RANDOMKEY, FLUSHALL and FLUSHDB answer for the whole
// cluster; EXEC would have run them on this node's own store (replica records
// and all, a FLUSHALL erasing replica groups' records outside their logs, and
// a FLUSHALL in a transaction waited on EXEC's own locks forever). Refused
// while queueing: EXECABORT, nothing of the transaction runs, the node keeps
// serving, and keyless transactions of other commands still run.
TEST(Routing, ClusterWideCommandsAreRefusedInsideMulti) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  RedisClient c = cluster.client(2);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(c.cmd({"SET", "m" + std::to_string(i), "v"}), "+OK");
  }
  for (const std::vector<std::string>& cmd :
       std::vector<std::vector<std::string>>{{"FLUSHALL"},
                                             {"FLUSHALL", "ASYNC"},
                                             {"FLUSHDB"},
                                             {"DBSIZE"},
                                             {"KEYS", "*"},
                                             {"SCAN", "0"},
                                             {"RANDOMKEY"}}) {
    ASSERT_EQ(c.cmd({"MULTI"}), "+OK");
    EXPECT_EQ(c.cmd({"SET", "m0", "changed"}), "+QUEUED");
    const std::string refused = c.cmd(cmd);
    EXPECT_TRUE(refused.starts_with("-ERR " + cmd[0] + " cannot run inside MULTI in a cluster"))
        << refused;
    EXPECT_EQ(c.cmd({"EXEC"}), "-EXECABORT Transaction discarded because of previous errors.");
  }
  EXPECT_EQ(c.cmd({"GET", "m0"}), "\"v\"") << "nothing of a refused transaction ran";
  EXPECT_EQ(c.cmd({"DBSIZE"}), ":20");
  ASSERT_EQ(c.cmd({"MULTI"}), "+OK");
  c.cmd({"PING"});
  c.cmd({"ECHO", "e"});
  EXPECT_EQ(c.cmd({"EXEC"}), "[+PONG, \"e\"]");
  for (size_t n = 0; n < 3; ++n) {
    RedisClient each = cluster.client(n);
    EXPECT_EQ(each.cmd({"PING"}), "+PONG") << "node " << n + 1;
  }
}

// A Redis Cluster client that reads from replicas sends READONLY on its
// connections to them (redis-py's read_from_replicas refuses a replica that
// does not answer OK), READWRITE to undo it, and ASKING after an ASK
// redirect. Each answers OK and changes nothing: keys are still served, at
// their keyspace's consistency, on every node.
TEST(Routing, ReadonlyReadwriteAndAskingLetReplicaReadingClientsConnect) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  for (size_t n = 0; n < cluster.size(); ++n) {
    RedisClient c = cluster.client(n);
    const std::string key = "ro" + std::to_string(n);
    EXPECT_EQ(c.cmd({"READONLY"}), "+OK");
    EXPECT_EQ(c.cmd({"SET", key, "v"}), "+OK");
    EXPECT_EQ(c.cmd({"GET", key}), "\"v\"");
    EXPECT_EQ(c.cmd({"READWRITE"}), "+OK");
    EXPECT_EQ(c.cmd({"ASKING"}), "+OK");
    EXPECT_EQ(c.cmd({"GET", key}), "\"v\"");
    EXPECT_EQ(c.cmd({"READONLY", "x"}), "-ERR wrong number of arguments for 'readonly' command");
  }
}

// MULTI/EXEC in a 3-node cluster (issue 11 item 2): a transaction whose keys
// live on another node runs there whole, as one EXEC; keys of two shards are
// CROSSSLOT and discard it; WATCH watches on the owner (another client's
// write there breaks it); and a routed EXEC is atomic for readers on any node.
TEST(Routing, TransactionsRunWholeOnTheirShardsOwnerAndAcrossShardsAreCrossslot) {
  SKIP_FOR_REDIS();
  RoutingCluster cluster(3);
  ASSERT_STARTED(cluster);
  // Hash tags keep a transaction's keys in one shard: one tag owned by node
  // 2 (routed from node 1) and one owned by node 1 (run where it arrives).
  std::string remote, local;
  for (int i = 0; i < 1000 && (remote.empty() || local.empty()); ++i) {
    const std::string tag = "{t" + std::to_string(i) + "}";
    const size_t owner = cluster.owner_of(tag + "x");
    if (owner == 1 && remote.empty()) remote = tag;
    if (owner == 0 && local.empty()) local = tag;
  }
  ASSERT_FALSE(remote.empty());
  ASSERT_FALSE(local.empty());
  auto node2_keys = cluster.local_keys(1);
  ASSERT_TRUE(node2_keys.ok());

  RedisClient c = cluster.client(0);
  ASSERT_EQ(c.cmd({"MULTI"}), "+OK");
  EXPECT_EQ(c.cmd({"SET", remote + "x", "1"}), "+QUEUED");
  EXPECT_EQ(c.cmd({"INCR", remote + "x"}), "+QUEUED");
  EXPECT_EQ(c.cmd({"GET", remote + "x"}), "+QUEUED");
  EXPECT_EQ(c.cmd({"SET", remote + "y", "v"}), "+QUEUED");
  EXPECT_EQ(c.cmd({"INCR", remote + "y"}), "+QUEUED");
  EXPECT_EQ(c.cmd({"EXEC"}),
            "[+OK, :2, \"2\", +OK, -ERR value is not an integer or out of range]");
  auto after = cluster.local_keys(1);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *node2_keys + 2) << "the routed transaction ran on its owner";
  EXPECT_EQ(c.cmd({"EXEC"}), "-ERR EXEC without MULTI");

  // Run where it arrives.
  ASSERT_EQ(c.cmd({"MULTI"}), "+OK");
  c.cmd({"SET", local + "x", "1"});
  c.cmd({"INCR", local + "x"});
  EXPECT_EQ(c.cmd({"EXEC"}), "[+OK, :2]");

  // Two shards: CROSSSLOT, and nothing of it runs.
  ASSERT_EQ(c.cmd({"MULTI"}), "+OK");
  c.cmd({"SET", local + "x", "10"});
  c.cmd({"SET", remote + "x", "10"});
  EXPECT_EQ(c.cmd({"EXEC"}), "-CROSSSLOT Keys in request don't hash to the same slot");
  EXPECT_EQ(c.cmd({"EXEC"}), "-ERR EXEC without MULTI");
  EXPECT_EQ(c.cmd({"MGET", local + "x", remote + "x"}), "[\"2\", \"2\"]");
  EXPECT_EQ(c.cmd({"WATCH", local + "x", remote + "x"}),
            "-CROSSSLOT Keys in request don't hash to the same slot");

  // WATCH on the owner: a write through node 3 breaks it.
  RedisClient other = cluster.client(2);
  ASSERT_EQ(c.cmd({"WATCH", remote + "x"}), "+OK");
  ASSERT_EQ(other.cmd({"SET", remote + "x", "5"}), "+OK");
  ASSERT_EQ(c.cmd({"MULTI"}), "+OK");
  c.cmd({"INCR", remote + "x"});
  EXPECT_EQ(c.cmd({"EXEC"}), "(nil)");
  // Untouched, it runs; UNWATCH releases it.
  ASSERT_EQ(c.cmd({"WATCH", remote + "x"}), "+OK");
  ASSERT_EQ(c.cmd({"MULTI"}), "+OK");
  c.cmd({"INCR", remote + "x"});
  EXPECT_EQ(c.cmd({"EXEC"}), "[:6]");
  ASSERT_EQ(c.cmd({"WATCH", remote + "x"}), "+OK");
  ASSERT_EQ(c.cmd({"UNWATCH"}), "+OK");
  ASSERT_EQ(other.cmd({"SET", remote + "x", "7"}), "+OK");
  ASSERT_EQ(c.cmd({"MULTI"}), "+OK");
  c.cmd({"INCR", remote + "x"});
  EXPECT_EQ(c.cmd({"EXEC"}), "[:8]");
  // A watch of another node's keys with a transaction of this node's: CROSSSLOT.
  ASSERT_EQ(c.cmd({"WATCH", remote + "x"}), "+OK");
  ASSERT_EQ(c.cmd({"MULTI"}), "+OK");
  c.cmd({"INCR", local + "x"});
  EXPECT_EQ(c.cmd({"EXEC"}), "-CROSSSLOT Keys in request don't hash to the same slot");

  // Atomic: writers through nodes 1 and 3 (routed to node 2), readers
  // through node 1 reading both keys in a transaction, never unequal.
  std::atomic<bool> done{false};
  std::atomic<int> mismatches{0}, reads{0}, failures{0};
  std::vector<std::thread> writers, readers;
  for (size_t via : {size_t{0}, size_t{2}}) {
    writers.emplace_back([&, via] {
      auto w = RedisClient::connect(cluster.port(via));
      if (!w.ok()) return void(++failures);
      for (int i = 0; i < 100; ++i) {
        w->append({"MULTI"});
        w->append({"INCR", remote + "a"});
        for (int p = 0; p < 10; ++p) w->append({"GET", remote + "pad"});
        w->append({"INCR", remote + "b"});
        w->append({"EXEC"});
        for (int r = 0; r < 14; ++r) {
          if (!w->read_reply().ok()) ++failures;
        }
      }
    });
  }
  readers.emplace_back([&] {
    auto r = RedisClient::connect(cluster.port(0));
    if (!r.ok()) return void(++failures);
    while (!done.load()) {
      r->cmd({"MULTI"});
      r->cmd({"GET", remote + "a"});
      r->cmd({"GET", remote + "b"});
      const std::string s = r->cmd({"EXEC"});
      const size_t comma = s.find(", ");
      if (comma == std::string::npos ||
          s.substr(1, comma - 1) != s.substr(comma + 2, s.size() - comma - 3)) {
        if (++mismatches == 1) ADD_FAILURE() << "a reader saw " << s;
      }
      ++reads;
    }
  });
  for (auto& t : writers) t.join();
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_GT(reads.load(), 10);
  EXPECT_EQ(c.cmd({"MGET", remote + "a", remote + "b"}), "[\"200\", \"200\"]");
}

}  // namespace
}  // namespace statekv::itest
