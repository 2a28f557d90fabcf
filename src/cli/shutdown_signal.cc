#include "cli/shutdown_signal.h"

#include <signal.h>
#include <unistd.h>

#include <utility>

namespace statekv::cli {

std::function<Status(const server::ShutdownRequest&)> ShutdownSignal::handler(
    std::string no_save) {
  return [this, no_save = std::move(no_save)](const server::ShutdownRequest& request) -> Status {
    if (request.save == server::ShutdownRequest::Save::kSave && !no_save.empty()) {
      return Status::InvalidArgument("SAVE: " + no_save +
                                     " (SHUTDOWN or SHUTDOWN NOSAVE stops it)");
    }
    {
      std::lock_guard lock(mu_);
      request_ = request;
    }
    ::kill(::getpid(), SIGTERM);
    return Status::OK();
  };
}

std::optional<server::ShutdownRequest> ShutdownSignal::taken() const {
  std::lock_guard lock(mu_);
  return request_;
}

std::string_view ShutdownSignal::cause(int sig) const {
  if (taken()) return "SHUTDOWN";
  return sig == SIGINT ? "SIGINT" : "SIGTERM";
}

}  // namespace statekv::cli
