// Blocking TCP plumbing shared by the load harness's store clients (etcd over
// HTTP, RESP): connect with a deadline, then blocking sends and receives each
// bounded by an I/O timeout. Not a public API of the module: the connections
// in this directory are its only users.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"
#include "loadgen/etcd_connection.h"

namespace statekv::loadgen {

// Opens a TCP connection (TCP_NODELAY, close-on-exec) to the first address of
// `endpoint` that accepts within connect_timeout, then makes it blocking with
// SO_RCVTIMEO / SO_SNDTIMEO set to io_timeout. Errors are Timeout (no answer
// in time), Unavailable (refused, unreachable) or InvalidArgument (the name
// does not resolve); their messages start with `who`.
Result<int> connect_tcp(const HostPort& endpoint, std::chrono::milliseconds connect_timeout,
                        std::chrono::milliseconds io_timeout, const std::string& who);

// Sends every byte (Timeout when a send stalls past the I/O timeout).
Status send_all(int fd, std::string_view bytes, const std::string& who);

// One recv into buf: the byte count, 0 at end of stream, or Timeout / IOError.
Result<size_t> recv_some(int fd, char* buf, size_t size, std::chrono::milliseconds io_timeout,
                         const std::string& who);

}  // namespace statekv::loadgen
