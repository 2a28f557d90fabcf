// RoutingTable: which keyspace a key belongs to (the longest prefix, nested
// prefixes included) and that keys sharing a Redis Cluster hash tag `{...}`
// share a shard and an owner in every partitioner, the default hash keyspace
// first among them.
#include "coord/routing_table.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <xxhash.h>

#include <set>

#include "meta/transitions.h"
#include "partition/layout.h"

namespace statekv::coord {
namespace {

std::vector<meta::Member> members(size_t n) {
  std::vector<meta::Member> out;
  for (size_t i = 1; i <= n; ++i) {
    meta::Member m;
    m.id = NodeId(i);
    m.address = fmt::format("10.0.0.{}:6379", i);
    m.peer_address = fmt::format("10.0.0.{}:7000", i);
    m.state = meta::MemberState::kActive;
    out.push_back(std::move(m));
  }
  return out;
}

meta::KeyspaceSpec keyspace(std::string name, std::string prefix, meta::Partitioner kind,
                            std::vector<std::string> splits = {}) {
  meta::KeyspaceSpec s;
  s.name = std::move(name);
  s.key_prefix = std::move(prefix);
  s.partitioner.kind = kind;
  s.partitioner.vnodes = 16;
  s.partitioner.shards = static_cast<uint32_t>(splits.size() + 1);
  s.partitioner.split_points = std::move(splits);
  s.replication.kind = meta::Replication::kNone;
  s.replication.factor = 1;
  return s;
}

// Three active nodes, one owner per shard (as a node bootstraps), the default
// keyspace hash partitioned, plus `more`, each placed as KEYSPACE CREATE does.
std::shared_ptr<const RoutingTable> table(const std::vector<meta::KeyspaceSpec>& more = {}) {
  meta::ReplicationSpec one_owner;
  one_owner.kind = meta::Replication::kNone;
  one_owner.factor = 1;
  Result<meta::ClusterMap> map = meta::bootstrap("c1", members(3), one_owner);
  EXPECT_TRUE(map.ok()) << map.status().to_string();
  for (const meta::KeyspaceSpec& spec : more) {
    map = partition::create_placed_keyspace(*map, spec);
    EXPECT_TRUE(map.ok()) << map.status().to_string();
  }
  auto t = RoutingTable::build(std::make_shared<const meta::ClusterMap>(std::move(map).value()));
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  return std::move(t).value();
}

TEST(RoutingTable, KeysSharingAHashTagShareTheOwnerInTheDefaultHashKeyspace) {
  const auto t = table();
  ASSERT_EQ(t->placement(t->keyspace_of("x")).kind(), meta::Partitioner::kHash);
  std::set<NodeId> tag_owners;
  for (int i = 0; i < 50; ++i) {
    const std::string tag = fmt::format("user{}", i);
    const Route a = t->route("{" + tag + "}x");
    for (const std::string& key : {"{" + tag + "}y", "{" + tag + "}z", "pre{" + tag + "}",
                                   "{" + tag + "}{other}", "a{" + tag + "}b{c}"}) {
      const Route b = t->route(key);
      EXPECT_EQ(b.keyspace->spec.name, "default") << key;
      EXPECT_EQ(b.shard, a.shard) << key;
      EXPECT_EQ(b.owners, a.owners) << key;
    }
    // The tag's hash decides: the shard of the tag written as a plain key.
    EXPECT_EQ(a.shard, t->route(tag).shard) << tag;
    EXPECT_EQ(a.shard, XXH3_64bits(tag.data(), tag.size()) % 3) << tag;
    tag_owners.insert(a.primary());
  }
  // Tags spread over the nodes like keys do: the test is not all one node.
  EXPECT_EQ(tag_owners.size(), 3u);
  // No tag (none, empty, unclosed): the whole key is hashed.
  for (const std::string key : {"{}x", "x{y", "}x{", "plain"}) {
    EXPECT_EQ(t->route(key).shard, XXH3_64bits(key.data(), key.size()) % 3) << key;
  }
}

TEST(RoutingTable, KeysSharingAHashTagShareTheOwnerInRingAndSlotsKeyspaces) {
  const auto t = table({keyspace("r", "r:", meta::Partitioner::kRing),
                        keyspace("s", "s:", meta::Partitioner::kSlots)});
  for (const std::string prefix : {"r:", "s:"}) {
    std::set<NodeId> owners;
    for (int i = 0; i < 50; ++i) {
      const std::string tag = fmt::format("t{}", i);
      const Route a = t->route(prefix + "{" + tag + "}x");
      const Route b = t->route(prefix + "y{" + tag + "}");
      ASSERT_EQ(a.keyspace->spec.key_prefix, prefix);
      EXPECT_EQ(a.shard, b.shard) << prefix << tag;
      EXPECT_EQ(a.owners, b.owners) << prefix << tag;
      owners.insert(a.primary());
    }
    EXPECT_EQ(owners.size(), 3u) << prefix;
  }
}

TEST(RoutingTable, ARangeKeyspacePlacesATaggedKeyAtItsPrefixAndTag) {
  const auto t = table({keyspace("orders", "orders:", meta::Partitioner::kRange, {"orders:m"})});
  const auto shard = [&](const std::string& key) {
    const Route r = t->route(key);
    EXPECT_EQ(r.keyspace->spec.name, "orders") << key;
    return r.shard;
  };
  EXPECT_EQ(shard("orders:a"), 0u);
  EXPECT_EQ(shard("orders:m"), 1u);
  // "orders:{zed}:1" sits where "orders:zed" would; by its own bytes ('{'
  // sorts after every letter) "orders:{abc}:1" would be in shard 1.
  EXPECT_EQ(shard("orders:{abc}:1"), 0u);
  EXPECT_EQ(shard("orders:{abc}:2"), 0u);
  EXPECT_EQ(shard("orders:x{abc}"), 0u);
  EXPECT_EQ(shard("orders:{zed}:1"), 1u);
  EXPECT_EQ(shard("orders:{}a"), 1u);  // an empty tag is no tag
  EXPECT_NE(t->route("orders:a").primary(), t->route("orders:z").primary());
}

TEST(RoutingTable, TheLongestPrefixWinsAmongNestedKeyspaces) {
  const auto t = table({keyspace("users", "users:", meta::Partitioner::kHash),
                        keyspace("vip", "users:vip:", meta::Partitioner::kRange, {"users:vip:m"}),
                        keyspace("u", "u", meta::Partitioner::kRing)});
  const auto name = [&](std::string_view key) { return t->keyspace_of(key).spec.name; };
  EXPECT_EQ(name("users:vip:1"), "vip");
  EXPECT_EQ(name("users:vip:"), "vip");
  EXPECT_EQ(name("users:vi"), "users");
  EXPECT_EQ(name("users:1"), "users");
  EXPECT_EQ(name("users"), "u");
  EXPECT_EQ(name("x"), "default");
  EXPECT_EQ(t->route("users:vip:a").shard, 0u);
  EXPECT_EQ(t->route("users:vip:z").shard, 1u);
}

// KEYSPACE CREATE over keys: until the move ends, a key of the new keyspace
// is served where the keyspace that held it puts it, and goes where the new
// one does; KEYSPACE DROP marks its keys for the gate.
TEST(RoutingTable, AKeyspaceTakingOverKeysServesThemWhereTheyWere) {
  meta::ReplicationSpec one_owner;
  one_owner.kind = meta::Replication::kNone;
  one_owner.factor = 1;
  Result<meta::ClusterMap> before = meta::bootstrap("c1", members(3), one_owner);
  ASSERT_TRUE(before.ok());
  Result<meta::ClusterMap> map =
      partition::create_placed_keyspace(*before, keyspace("zz", "zz:", meta::Partitioner::kRing));
  ASSERT_TRUE(map.ok());
  meta::ClusterMap done = *map;
  ASSERT_TRUE(meta::begin_adopt(*map, "zz").ok());
  auto old_t = RoutingTable::build(std::make_shared<const meta::ClusterMap>(*before));
  auto moving = RoutingTable::build(std::make_shared<const meta::ClusterMap>(*map));
  auto new_t = RoutingTable::build(std::make_shared<const meta::ClusterMap>(done));
  ASSERT_TRUE(old_t.ok() && moving.ok() && new_t.ok());
  EXPECT_TRUE((*moving)->any_moving());
  size_t moved = 0;
  for (int i = 0; i < 200; ++i) {
    const std::string key = "zz:" + std::to_string(i);
    const Route was = (*old_t)->route(key);
    const Route r = (*moving)->route(key);
    const Route will = (*new_t)->route(key);
    EXPECT_EQ(r.keyspace->spec.name, "zz");
    EXPECT_EQ(r.primary(), was.primary()) << key;
    EXPECT_EQ(r.target_primary(), will.primary()) << key;
    EXPECT_EQ(r.moving(), was.primary() != will.primary()) << key;
    moved += r.moving();
  }
  EXPECT_GT(moved, 0u);
  // Keys outside the prefix do not move.
  EXPECT_FALSE((*moving)->route("other:1").moving());

  Result<meta::ClusterMap> dropping = meta::begin_drop(done, "zz");
  ASSERT_TRUE(dropping.ok());
  auto d = RoutingTable::build(std::make_shared<const meta::ClusterMap>(*dropping));
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE((*d)->any_moving());
  EXPECT_TRUE((*d)->route("zz:1").dropping);
  EXPECT_FALSE((*d)->route("zz:1").moving());
  EXPECT_FALSE((*d)->route("other:1").dropping);
}

}  // namespace
}  // namespace statekv::coord
