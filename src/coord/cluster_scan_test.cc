#include "coord/cluster_scan.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

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
