// Whether a port a server wants to listen on lies in the range the kernel
// hands out as local ports of outgoing connections: a node started beside
// others may find it taken by one of their connections (a peer link lives as
// long as the cluster), and bind fails with "Address already in use" although
// no server listens there. Listeners add this hint to that error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace statekv {

// The kernel's range (/proc/sys/net/ipv4/ip_local_port_range), nullopt when
// it cannot be read.
std::optional<std::pair<uint16_t, uint16_t>> ephemeral_port_range();

// For a bind of `port` that failed as in use: "" unless the port is in
// `range`; then a sentence naming the range and what to do.
std::string ephemeral_port_hint(
    uint16_t port, std::optional<std::pair<uint16_t, uint16_t>> range = ephemeral_port_range());

}  // namespace statekv
