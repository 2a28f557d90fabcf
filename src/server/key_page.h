// One page of an ordered walk over the keys of this node: what SCAN and KEYS do
// here, and what a cluster-wide SCAN asks of every node (coord/), which merges
// the nodes' pages in walk order so that keys moving between nodes during the
// walk are still seen (docs/routing.md). The walk's order is the store's
// (Store::scan): by position, which is the key's scope, then the key; every
// node gives a key the same position, so the merge is the same as in key
// order, while a page costs a seek whatever the number of scopes.
//
// Pure over the Store; thread-safe as the Store is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace statekv::server {

class Store;

struct KeyPageRequest {
  // Resume strictly after this position (Store::scan); nullopt starts at the
  // first key.
  std::optional<std::string> after;
  // Records to examine at most (expired ones included, as SCAN's COUNT); 0: no limit.
  size_t limit = 0;
  std::string pattern;  // a glob (glob.h); empty or "*" matches every key
  std::string type;     // SCAN's TYPE; empty: any type
};

struct KeyPage {
  std::vector<std::string> keys;       // matching live keys, in walk order
  std::vector<std::string> positions;  // each key's position (Store::position_of)
  // The position of the last key examined, matching or not: the next page
  // resumes after it.
  std::string last;
  // True when the walk reached the end of the keys that could match: there
  // is nothing after `last` (or after `after`) to examine.
  bool end = false;
};

// With within_scope: the page of that scope's keys alone (Store::scan), a
// replica group's part of a cluster-wide walk.
Result<KeyPage> scan_key_page(Store& store, const KeyPageRequest& request, int64_t now_ms,
                              std::optional<uint64_t> within_scope = std::nullopt);

// RANDOMKEY: a live key (nullopt when there is none), approximately random
// (docs/commands.md); with within_scope, one of that scope's (0: the keys
// outside replica groups).
Result<std::optional<std::string>> random_key(Store& store, int64_t now_ms,
                                              std::optional<uint64_t> within_scope = std::nullopt);

// SCAN's options after the cursor (argv[2..]: COUNT n, MATCH p, TYPE t; COUNT
// defaults to 10). InvalidArgument carries the Redis error text to reply with.
Result<KeyPageRequest> parse_scan_options(std::span<const std::string_view> options);

// The smallest string greater than every string that starts with prefix
// (empty when there is none: prefix is all 0xff bytes, or empty).
std::string prefix_end(std::string_view prefix);

}  // namespace statekv::server
