// ShutdownSignal — how a `statekv server` or `statekv cache` process takes a
// client's SHUTDOWN: it remembers the request and raises SIGTERM, which the
// process's sigwait() takes (the signal is blocked in every thread), so a
// client's stop and a signal's go the same way.
//
// Thread safety: handler() runs on any I/O thread; taken() and cause() after
// sigwait() returns.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "server/context.h"

namespace statekv::cli {

class ShutdownSignal {
 public:
  // ServerContext::shutdown for this process. `no_save`: why SAVE cannot be
  // honoured here (the SHUTDOWN is then refused), empty when it can.
  std::function<Status(const server::ShutdownRequest&)> handler(std::string no_save);
  // The client's request that raised the signal, if one did.
  std::optional<server::ShutdownRequest> taken() const;
  // What stopped the process, for its log: SHUTDOWN, SIGINT or SIGTERM.
  std::string_view cause(int sig) const;

 private:
  mutable std::mutex mu_;
  std::optional<server::ShutdownRequest> request_;
};

}  // namespace statekv::cli
