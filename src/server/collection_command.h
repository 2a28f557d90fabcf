// What hash and set commands share: opening a key as a collection under its
// lock, committing a collection's change, and the HSCAN/SSCAN argument rules.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "server/collection.h"
#include "server/command.h"

namespace statekv::server {

// Opens the key read in r (under its lock) as a collection of type: an absent
// key is an empty one. Replies WRONGTYPE (or the error) and returns nullopt
// when it holds another type.
std::optional<Collection> open_collection(CommandContext& c, std::string_view key,
                                          const LockedRead& r, ValueType type);
// The same for a key read with CommandContext::read_locked.
std::optional<Collection> open_collection(CommandContext& c, std::string_view key, bool live,
                                          const RecordView& rec, const Store::Meta& meta,
                                          ValueType type);

// Commits the change of one or more collections (each key at most once) as
// one effect; false (replied) when the proposal failed.
bool commit_collections(CommandContext& c, std::span<Collection* const> collections);
inline bool commit_collection(CommandContext& c, Collection& coll) {
  Collection* one = &coll;
  return commit_collections(c, std::span<Collection* const>(&one, 1));
}

// HSCAN/SSCAN options after the cursor: MATCH pattern, COUNT n (>= 1).
// Replies Redis's error and returns false when malformed.
struct ElementScanOptions {
  bool use_pattern = false;  // MATCH given and not "*"
  std::string_view pattern;
  size_t count = 10;
};
bool parse_element_scan_options(CommandContext& c, std::span<const std::string_view> options,
                                ElementScanOptions* out);

// Most elements a negative-count HRANDFIELD / SRANDMEMBER returns. Redis
// 7.0 tries any count up to LONG_MAX and stops serving until it has built the
// reply; statekv refuses a count past this (about 2 GB of reply) instead.
inline constexpr uint64_t kMaxRandomReply = uint64_t{1} << 28;
inline constexpr std::string_view kRandomReplyTooLarge =
    "ERR count is too large: the reply would exceed 268435456 elements";

// A random source for SPOP / SRANDMEMBER / HRANDFIELD on this thread.
Random& command_random();

}  // namespace statekv::server
