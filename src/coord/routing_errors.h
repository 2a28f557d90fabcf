// How routing failures read on the wire, shared by the router (coordinator.cc),
// its batches (routed_batch.cc) and the admin commands that call other nodes.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace statekv::coord {

// The marker an owner writes for a route it refuses; the routed-command
// executor turns it into a status, so it never reaches a client.
inline constexpr std::string_view kStaleRoute = "STALEROUTE";

// A blocking command routed to its key's owner or group leader, and its
// cancellation (coordinator.h, "Blocking commands"):
//   __block TOKEN command...   runs the command there, blocking it if need be
//   __unblock TOKEN [ERROR]    finish it, popping nothing: as on timeout (its
//                              client went away, CLIENT UNBLOCK), or with
//                              -UNBLOCKED (CLIENT UNBLOCK ... ERROR)
inline constexpr std::string_view kBlockVerb = "__block";
inline constexpr std::string_view kUnblockVerb = "__unblock";

// The error a client gets when routing failed: CLUSTERDOWN when the owner
// could not be reached or answer, ERR when the command was refused before it
// was sent (over the peer frame limit: certainly not applied).
inline std::string routing_error(const Status& s) {
  return (s.is_invalid_argument() ? "ERR " : "CLUSTERDOWN ") + s.message();
}

}  // namespace statekv::coord
