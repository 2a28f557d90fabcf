// A cluster-wide SCAN (and KEYS) that stays complete while keys move between
// nodes.
//
// Redis promises that a full SCAN iteration returns every key present for the
// whole iteration. Walking the nodes one after another breaks that promise
// during a rebalance: a key that moves from a node not yet visited to one
// already visited is never seen. So the walk goes in one order of the keys instead, over
// every node at once. A cursor names a position (server/key_page.h: the
// key's scope, then the key; the same on every node), the last one the
// iteration covered (server/scan_cursors.h turns it into the integer clients
// expect); each call asks every node holding data for its next page after it
// and merges them: the keys up to the smallest position any unfinished node
// stopped at were seen by every node, wherever they live now.
//
// Moves are what can still hide a key from one call: a node reports the keys
// it serves under its own map. A move's source serves a key, and holds it,
// until it applies the map that ends the move (only then does it drop the
// key), and the target holds the key before that map exists. So when every
// node read its keys under one map epoch, the one the router used, each key
// present throughout is reported by its server under that epoch; otherwise
// the router catches up and asks again (the call is idempotent: the cursor is
// a key). tests/scan_move_test.cc fails without this check.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coord/routing_table.h"
#include "core/ids.h"
#include "core/status.h"
#include "server/key_page.h"
#include "server/store.h"

namespace statekv::coord {

// The verb a router sends each node (over the peer transport) for one page of
// the keys it keeps outside replica groups.
inline constexpr std::string_view kScanVerb = "__scan";
// The verb a router sends each replica group (a group call) for one page of
// its records: served as a read of the group (its leader behind the ReadIndex
// barrier, or a member at a weaker level), so that a key deleted through the
// leader is not reported by a follower that has not applied the delete yet.
inline constexpr std::string_view kGroupScanVerb = "__gscan";

// What DBSIZE and INFO keyspace add up: each node's count of the keys it
// keeps outside replica groups (kCountVerb, a node verb), and each replica
// group's of its records (kGroupCountVerb, a read of the group, as
// kGroupScanVerb). Both answer encode_key_counts: [keys, expires].
inline constexpr std::string_view kCountVerb = "__count";
inline constexpr std::string_view kGroupCountVerb = "__gcount";
std::string encode_key_counts(const server::Store::KeyCounts& counts);
// Corruption on anything else; an error reply as Unavailable with its text.
Result<server::Store::KeyCounts> decode_key_counts(std::string_view resp_bytes);

// RANDOMKEY across the cluster: each node offers a random key of those it
// keeps outside replica groups and serves (kRandomVerb), each replica group
// one of its records (kGroupRandomVerb, a read of the group), with how many
// keys it picked among; the router takes one offer with a chance in
// proportion to that count (pick_random_key).
inline constexpr std::string_view kRandomVerb = "__random";
inline constexpr std::string_view kGroupRandomVerb = "__grandom";
struct RandomKeyOffer {
  uint64_t keys = 0;               // the keys it picked among
  std::optional<std::string> key;  // nullopt: none
};
std::string encode_random_offer(const RandomKeyOffer& offer);
// Corruption on anything else; an error reply as Unavailable with its text.
Result<RandomKeyOffer> decode_random_offer(std::string_view resp_bytes);
// One of the offers that has a key, offer i with a chance keys_i / the sum
// of those offers' keys; `draw` is uniform in [0, that sum) (nullopt when no
// offer has a key).
std::optional<std::string> pick_random_key(std::span<const RandomKeyOffer> offers,
                                           const std::function<uint64_t(uint64_t)>& draw);

// argv of either verb: {verb, has_after ("0"/"1"), after, limit, pattern, type}.
std::vector<std::string> encode_page_request(const server::KeyPageRequest& request,
                                             std::string_view verb = kScanVerb);
Result<server::KeyPageRequest> decode_page_request(std::span<const std::string> argv);

// One node's answer: its page, and the epoch of its map before and after it
// read its keys (different: a map arrived meanwhile, so ask again).
struct NodeScanPage {
  NodeId node;
  uint64_t epoch_before = 0;
  uint64_t epoch_after = 0;
  server::KeyPage page;
};

// The reply of the verb as RESP: [epoch_before, epoch_after, end, last, [keys],
// [positions]].
std::string encode_node_page(const NodeScanPage& page);
Result<NodeScanPage> decode_node_page(NodeId node, std::string_view resp_bytes);

// Whether `self` reports `key`, found at `position` (Store::position_of), in
// its node page under `table`: a key it keeps outside replica groups and
// serves (a copy a move is bringing here, or one an abandoned move left, is
// not reported). A replica group's records are reported by the group's page
// (kGroupScanVerb), never by a node's.
bool reports_in_scan(const RoutingTable& table, NodeId self, std::string_view key,
                     std::string_view position);

// A replica group a cluster-wide scan asks for its page: every shard of each
// consensus keyspace, less those being created (they hold nothing yet) or
// dropped. `keyspace` points into the table's map.
struct ScannedGroup {
  const meta::Keyspace* keyspace;
  uint32_t shard;
  std::vector<NodeId> owners;
};
std::vector<ScannedGroup> scanned_groups(const RoutingTable& table);

// True when every page was read under map epoch `epoch` and no map arrived
// while it was read.
bool read_under_one_epoch(std::span<const NodeScanPage> pages, uint64_t epoch);
// The newest epoch any page saw (what the router must catch up with).
uint64_t newest_epoch(std::span<const NodeScanPage> pages);

struct MergedPage {
  std::vector<std::string> keys;  // in walk order (by position), without duplicates
  // Where the next call resumes (after this position); nullopt: the iteration
  // is complete.
  std::optional<std::string> resume_after;
};

// The union of the pages' keys up to the smallest `last` of the nodes that did
// not reach their end (all keys when every node did), by position: the walk's
// order (server/key_page.h), the same on every node.
MergedPage merge_pages(std::span<const NodeScanPage> pages);

}  // namespace statekv::coord
