#include "coord/cluster_scan.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "meta/transitions.h"
#include "partition/layout.h"
#include "server/record.h"

namespace statekv::coord {
namespace {

// A page whose keys' positions are the keys themselves (scope 0's order).
NodeScanPage page(uint64_t node, std::vector<std::string> keys, std::string last, bool end) {
  NodeScanPage p;
  p.node = NodeId(node);
  p.epoch_before = p.epoch_after = 7;
  p.page.positions = keys;
  p.page.keys = std::move(keys);
  p.page.last = std::move(last);
  p.page.end = end;
  return p;
}

TEST(ClusterScan, MergeStopsAtTheSmallestUnfinishedNode) {
  std::vector<NodeScanPage> pages = {page(1, {"a", "d", "g"}, "g", false),
                                     page(2, {"b", "c"}, "c", false),  // stopped earliest
                                     page(3, {"e"}, "e", true)};
  const MergedPage m = merge_pages(pages);
  EXPECT_EQ(m.keys, (std::vector<std::string>{"a", "b", "c"}));
  ASSERT_TRUE(m.resume_after);
  EXPECT_EQ(*m.resume_after, "c");
}

TEST(ClusterScan, MergeOfFinishedNodesIsCompleteAndDeduplicated) {
  // A key being moved may be reported by its source and its target.
  std::vector<NodeScanPage> pages = {page(1, {"a", "m"}, "m", true),
                                     page(2, {"m", "z"}, "z", true)};
  const MergedPage m = merge_pages(pages);
  EXPECT_EQ(m.keys, (std::vector<std::string>{"a", "m", "z"}));
  EXPECT_FALSE(m.resume_after);
}

// The walk's order is by position (a key's scope, then the key), not by key:
// the merge bounds, sorts and deduplicates by position.
TEST(ClusterScan, MergeFollowsThePositionsNotTheKeys) {
  NodeScanPage one = page(1, {"z", "a"}, "2a", false);
  one.page.positions = {"1z", "2a"};
  NodeScanPage two = page(2, {"z", "m", "b"}, "3b", false);
  two.page.positions = {"1z", "2m", "3b"};
  const MergedPage m = merge_pages(std::vector<NodeScanPage>{one, two});
  EXPECT_EQ(m.keys, (std::vector<std::string>{"z", "a"}));  // "2m" is past node 1's "2a"
  ASSERT_TRUE(m.resume_after);
  EXPECT_EQ(*m.resume_after, "2a");
}

TEST(ClusterScan, EpochsMustAgreeWithTheRouters) {
  std::vector<NodeScanPage> pages = {page(1, {}, "", true), page(2, {}, "", true)};
  EXPECT_TRUE(read_under_one_epoch(pages, 7));
  EXPECT_FALSE(read_under_one_epoch(pages, 8));
  pages[1].epoch_after = 9;  // a map arrived while node 2 read its keys
  EXPECT_FALSE(read_under_one_epoch(pages, 7));
  EXPECT_EQ(newest_epoch(pages), 9u);
}

TEST(ClusterScan, RequestAndPageRoundTrip) {
  server::KeyPageRequest request;
  request.after = std::string("k\0x", 3);
  request.limit = 100;
  request.pattern = "user:*";
  request.type = "string";
  auto back = decode_page_request(encode_page_request(request));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->after, request.after);
  EXPECT_EQ(back->limit, 100u);
  EXPECT_EQ(back->pattern, "user:*");
  EXPECT_EQ(back->type, "string");
  server::KeyPageRequest first;
  EXPECT_FALSE(decode_page_request(encode_page_request(first))->after);
  EXPECT_FALSE(decode_page_request(std::vector<std::string>{"__scan", "2", "", "1", "", ""}).ok());

  NodeScanPage p = page(3, {"x", std::string("y\r\nz", 4)}, "y", false);
  p.epoch_after = 8;
  p.page.positions = {"D1x", "dy"};
  auto decoded = decode_node_page(NodeId(3), encode_node_page(p));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->page.keys, p.page.keys);
  EXPECT_EQ(decoded->page.positions, p.page.positions);
  EXPECT_EQ(decoded->page.last, "y");
  EXPECT_FALSE(decoded->page.end);
  EXPECT_EQ(decoded->epoch_before, 7u);
  EXPECT_EQ(decoded->epoch_after, 8u);
  EXPECT_FALSE(decode_node_page(NodeId(3), "-ERR no\r\n").ok());
  EXPECT_FALSE(decode_node_page(NodeId(3), ":1\r\n").ok());
}

TEST(ClusterScan, AGroupPageRequestNamesItsVerb) {
  server::KeyPageRequest request;
  request.limit = 5;
  const auto argv = encode_page_request(request, kGroupScanVerb);
  EXPECT_EQ(argv.front(), kGroupScanVerb);
  auto back = decode_page_request(argv);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->limit, 5u);
  EXPECT_FALSE(decode_page_request(std::vector<std::string>{"GET", "0", "", "1", "", ""}).ok());
}

TEST(ClusterScan, KeyCountsRoundTrip) {
  auto back = decode_key_counts(encode_key_counts({.keys = 12, .expires = 3}));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->keys, 12u);
  EXPECT_EQ(back->expires, 3u);
  auto refused = decode_key_counts("-CLUSTERDOWN no leader\r\n");
  EXPECT_EQ(refused.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(refused.status().message(), "CLUSTERDOWN no leader");
  EXPECT_EQ(decode_key_counts(":1\r\n").status().code(), Status::Code::kCorruption);
  EXPECT_EQ(decode_key_counts("*2\r\n:1\r\n:-1\r\n").status().code(), Status::Code::kCorruption);
}

TEST(ClusterScan, RandomKeyOffersRoundTripAndArePickedByTheirCounts) {
  for (const RandomKeyOffer& o : {RandomKeyOffer{7, "k"}, RandomKeyOffer{0, std::nullopt},
                                  RandomKeyOffer{2, std::string("a\r\nb", 4)}}) {
    auto back = decode_random_offer(encode_random_offer(o));
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_EQ(back->keys, o.keys);
    EXPECT_EQ(back->key, o.key);
  }
  EXPECT_EQ(decode_random_offer("-TRYAGAIN x\r\n").status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(decode_random_offer("*1\r\n:1\r\n").status().code(), Status::Code::kCorruption);

  // 3 keys on one source, 1 on another, none on a third: every draw lands
  // on a key, three in four on the first source's.
  const std::vector<RandomKeyOffer> offers = {{3, "big"}, {0, std::nullopt}, {1, "small"}};
  std::map<std::string, int> picked;
  for (uint64_t d = 0; d < 4; ++d) {
    auto k = pick_random_key(offers, [&](uint64_t total) {
      EXPECT_EQ(total, 4u);
      return d;
    });
    ASSERT_TRUE(k);
    ++picked[*k];
  }
  EXPECT_EQ(picked["big"], 3);
  EXPECT_EQ(picked["small"], 1);
  EXPECT_FALSE(
      pick_random_key(std::vector<RandomKeyOffer>{{0, std::nullopt}}, [](uint64_t) { return 0; }));
}

// Three nodes; the default keyspace single-copy, `rep` (prefix r:)
// consensus with factor 3, and `more` on top, placed as KEYSPACE CREATE does.
meta::ClusterMap three_node_map() {
  std::vector<meta::Member> members;
  for (uint64_t i = 1; i <= 3; ++i) {
    meta::Member m;
    m.id = NodeId(i);
    m.address = fmt::format("10.0.0.{}:6379", i);
    m.peer_address = fmt::format("10.0.0.{}:7000", i);
    m.state = meta::MemberState::kActive;
    members.push_back(std::move(m));
  }
  meta::ReplicationSpec one_owner;
  one_owner.kind = meta::Replication::kNone;
  one_owner.factor = 1;
  auto map = meta::bootstrap("c1", members, one_owner);
  EXPECT_TRUE(map.ok()) << map.status().to_string();
  meta::KeyspaceSpec rep;
  rep.name = "rep";
  rep.key_prefix = "r:";
  rep.partitioner.kind = meta::Partitioner::kHash;
  rep.partitioner.shards = 3;
  rep.replication.kind = meta::Replication::kConsensus;
  rep.replication.factor = 3;
  map = partition::create_placed_keyspace(*map, rep);
  EXPECT_TRUE(map.ok()) << map.status().to_string();
  return std::move(map).value();
}

std::shared_ptr<const RoutingTable> table_of(meta::ClusterMap map) {
  auto t = RoutingTable::build(std::make_shared<const meta::ClusterMap>(std::move(map)));
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  return std::move(t).value();
}

std::string position(uint64_t scope, std::string_view key) {
  std::string out;
  server::data_key(scope, key, &out);
  return out;
}

// A node reports only what it keeps outside replica groups and serves: a
// group's records come from the group's own page, read where a read of its
// keys runs (a follower that has not applied a delete reports nothing).
TEST(ClusterScan, NodePagesLeaveReplicaGroupsRecordsToTheGroups) {
  auto t = table_of(three_node_map());
  const std::string plain = "user:1";
  const NodeId owner = t->route(plain).primary();
  for (uint64_t n = 1; n <= 3; ++n) {
    EXPECT_EQ(reports_in_scan(*t, NodeId(n), plain, position(0, plain)), NodeId(n) == owner)
        << "node " << n;
    // A group's record, and a stray copy of a consensus key outside its group.
    EXPECT_FALSE(reports_in_scan(*t, NodeId(n), "r:1", position(42, "r:1")));
    EXPECT_FALSE(reports_in_scan(*t, NodeId(n), "r:1", position(0, "r:1")));
  }
  EXPECT_FALSE(reports_in_scan(*t, owner, plain, "not a position"));
}

TEST(ClusterScan, EveryShardOfAConsensusKeyspaceIsScannedAsItsGroup) {
  meta::ClusterMap map = three_node_map();
  auto t = table_of(map);
  auto groups = scanned_groups(*t);
  ASSERT_EQ(groups.size(), 3u);  // rep's shards; default is single-copy
  std::set<uint32_t> shards;
  for (const ScannedGroup& g : groups) {
    EXPECT_EQ(g.keyspace->spec.name, "rep");
    EXPECT_EQ(g.owners.size(), 3u);
    shards.insert(g.shard);
  }
  EXPECT_EQ(shards, (std::set<uint32_t>{0, 1, 2}));

  // A consensus keyspace being created over part of rep's prefix holds
  // nothing yet: rep's groups hold those keys, and only they are asked.
  meta::KeyspaceSpec sub = t->map().find_keyspace("rep")->spec;
  sub.name = "sub";
  sub.key_prefix = "r:sub:";
  auto created = partition::create_placed_keyspace(map, sub);
  ASSERT_TRUE(created.ok()) << created.status().to_string();
  ASSERT_TRUE(meta::begin_create(*created, "sub").ok());
  auto creating = table_of(*created);
  groups = scanned_groups(*creating);
  ASSERT_EQ(groups.size(), 3u);
  for (const ScannedGroup& g : groups) EXPECT_EQ(g.keyspace->spec.name, "rep");
  auto finished = meta::finish_create(*created, "sub");
  ASSERT_TRUE(finished.ok()) << finished.status().to_string();
  EXPECT_EQ(scanned_groups(*table_of(*finished)).size(), 6u);
}

// A node's page, as server/key_page.h computes it, over an ordered key set.
server::KeyPage node_page(const std::set<std::string>& keys,
                          const std::optional<std::string>& after, size_t limit) {
  server::KeyPage p;
  auto it = after ? keys.upper_bound(*after) : keys.begin();
  size_t examined = 0;
  for (; it != keys.end() && examined < limit; ++it, ++examined) {
    p.keys.push_back(*it);
    p.positions.push_back(*it);
    p.last = *it;
  }
  p.end = examined < limit;
  return p;
}

// Property: keys hop between nodes between calls (as a rebalance moves them);
// every call reads all nodes under one map (what read_under_one_epoch ensures);
// every key present throughout is returned, whatever the moves.
TEST(ClusterScan, EveryKeyPresentThroughoutIsReturnedWhileKeysMove) {
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    std::mt19937 rng(seed);
    const size_t nodes = 2 + rng() % 4;
    std::vector<std::set<std::string>> held(nodes);
    std::set<std::string> stable;
    for (int i = 0; i < 300; ++i) {
      const std::string key = "k" + std::to_string(rng() % 100000);
      held[rng() % nodes].insert(key);
      stable.insert(key);
    }
    // Keys that come and go during the scan: they may or may not be returned.
    int transient = 0;
    std::set<std::string> returned;
    std::optional<std::string> after;
    const size_t limit = 1 + rng() % 40;
    for (int call = 0; call < 10000; ++call) {
      std::vector<NodeScanPage> pages;
      for (size_t n = 0; n < nodes; ++n) {
        NodeScanPage p;
        p.node = NodeId(n + 1);
        p.page = node_page(held[n], after, limit);
        pages.push_back(std::move(p));
      }
      MergedPage m = merge_pages(pages);
      returned.insert(m.keys.begin(), m.keys.end());
      if (!m.resume_after) break;
      ASSERT_TRUE(!after || *m.resume_after > *after) << "seed " << seed << ": no progress";
      after = m.resume_after;
      // Between calls: move some keys to another node, add and drop transients.
      for (int moves = rng() % 20; moves > 0; --moves) {
        auto& from = held[rng() % nodes];
        if (from.empty()) continue;
        auto it = std::next(from.begin(), static_cast<long>(rng() % from.size()));
        const std::string key = *it;
        from.erase(it);
        held[rng() % nodes].insert(key);
      }
      if (rng() % 2 == 0) held[rng() % nodes].insert("t" + std::to_string(transient++));
    }
    for (const std::string& k : stable) {
      ASSERT_TRUE(returned.count(k)) << "seed " << seed << ": key " << k << " was missed";
    }
  }
}

}  // namespace
}  // namespace statekv::coord
