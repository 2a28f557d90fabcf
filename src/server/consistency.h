// Consistency per request, as a connection sees it (DESIGN.md, "Consistency
// per request"; docs/consistency.md).
//
//   CONSISTENCY                          the connection's level ("default": each
//                                        keyspace's own, until it is set)
//   CONSISTENCY <level> [MAX-STALENESS <ms>] | DEFAULT
//   WITH <level> [MAX-STALENESS <ms>] <command> [arg ...]
//                                        one command at its own level
//   SESSION TOKEN                        an opaque token covering everything this
//                                        connection wrote and read
//   SESSION AFTER <token>                this connection observes at least what
//                                        the token covers, on any node
//   WAIT <numreplicas> <timeout-ms>      how many replicas (the leader not
//                                        counted) hold this connection's last write
//
// A session's position is, per replica group, the highest log index it wrote
// or observed; a token is that map. Reads at sequential, causal and fifo are
// served by a member whose applied index covers the position (the position
// then moves up to what that member had applied); eventual reads by any
// member; linearizable reads and every write by the group's leader. The
// router (coord/) decides where; this header holds the values.
//
// Thread safety: ReadLevel and SessionConsistency are plain values.
// SessionPositions is thread-safe (replies that advance it arrive on other
// threads than the connection's).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace statekv::server {

// DESIGN.md's levels, strongest first.
enum class ReadLevel : uint8_t { kLinearizable, kSequential, kCausal, kFifo, kEventual };

std::string_view read_level_name(ReadLevel level);
// Any case; nullopt for an unknown name.
std::optional<ReadLevel> parse_read_level(std::string_view name);

struct SessionConsistency {
  std::optional<ReadLevel> level;  // nullopt: each keyspace's default level
  // Bounded staleness: a read returns state no older than this (0: no bound).
  // Only with the weaker levels (a linearizable read is never stale).
  int64_t max_staleness_ms = 0;
};

class SessionPositions {
 public:
  // Moves the position in `group` up to `index` (never down).
  void advance(uint64_t group, uint64_t index);
  uint64_t at(uint64_t group) const;
  // The session's last write: its group and entry (WAIT asks who holds it).
  void wrote(uint64_t group, uint64_t index);
  std::optional<std::pair<uint64_t, uint64_t>> last_write() const;

  // The token: "skv1" and hex of the (group, index) pairs as varints.
  std::string token() const;
  // Merges a token's positions (each moves up to the token's). InvalidArgument
  // on anything token() did not produce; nothing changes then.
  Status merge(std::string_view token);

 private:
  mutable std::mutex mu_;
  std::map<uint64_t, uint64_t> at_;
  std::optional<std::pair<uint64_t, uint64_t>> last_write_;
};

}  // namespace statekv::server
