// The statekv side of `statekv bench`: a load generator connection
// (loadgen/load.h) that writes through the raft group over the network, with
// the same blocking client the CLI uses (client.h). A put returns once the
// leader applied the committed entry, i.e. once it is durable on a majority.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "loadgen/load.h"

namespace statekv::net {

// One connection per client: each follows the leader on its own.
Result<loadgen::ConnectionFactory> make_statekv_connection_factory(
    const std::vector<std::string>& endpoints, const std::string& secret);

}  // namespace statekv::net
