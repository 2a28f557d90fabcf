// Small socket helpers shared by the integration-test support code.
#pragma once

#include <chrono>
#include <cstdint>

#include "core/status.h"

namespace statekv::itest {

// A TCP port on 127.0.0.1 that was free a moment ago: binds port 0, reads the
// port the kernel chose, closes. Another process could take it before the
// server binds; ServerProcess::start retries with a new port when that happens.
Result<uint16_t> pick_free_port();

// A port on 127.0.0.1 below the kernel's ephemeral range (32768..) that was
// free a moment ago: for a port a test must name before the server starts (a
// cluster's peer ports), which no outbound connection can take meanwhile.
// From 25000..31999: apart from pick_cluster_base_port's ports (10000..24999),
// so that tests running side by side (ctest -j) do not pick each other's.
// The port is also reserved for the rest of this process's life (reserve_ports),
// so no other test process picks it meanwhile.
Result<uint16_t> pick_free_low_port();

// Reserves ports first..first+count-1 against every other test process on this
// machine until this process exits (a crash included): false if another holds
// any of them (or this process itself does). The reservation is a lock on those
// bytes of one file in the temporary directory (fcntl record locks, released by
// the kernel when the process ends), not on the ports: a process that is no test
// may still bind them, so the caller still checks the ports are free. For ports
// a test names before its servers start (a cluster's peer ports, `cluster up
// --base-port`), which tests run side by side (ctest -j) would otherwise pick
// twice now and then.
bool reserve_ports(uint16_t first, uint16_t count);

// A blocking TCP connection to 127.0.0.1:port (close-on-exec, TCP_NODELAY), or
// an error if it is not accepted within timeout.
Result<int> connect_localhost(uint16_t port, std::chrono::milliseconds timeout);

}  // namespace statekv::itest
