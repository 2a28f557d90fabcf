// Writing a cluster's map from a test, as a node or the CLI would.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace statekv::itest {

// Begins creating keyspace `name` over prefix `prefix` in the map of the
// cluster whose metadata group answers at `peer_endpoints` ("host:port" of
// the peer ports), with `secret`: the first step of a creation over keys that
// cannot move in (meta::begin_create: the keyspace `creating`), as a driver
// that then stopped would leave it. The keyspace takes the default keyspace's
// settings.
Status begin_keyspace_creation(const std::vector<std::string>& peer_endpoints,
                               const std::string& secret, const std::string& name,
                               const std::string& prefix);

}  // namespace statekv::itest
