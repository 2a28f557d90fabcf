#include "support/differential.h"

#include "support/reply.h"

namespace statekv::itest {

std::string describe_command(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) {
    if (!out.empty()) out += ' ';
    out += '"' + escape_bytes(a) + '"';
  }
  return out;
}

Differential::Differential(ServerOptions subject)
    : redis_(std::make_unique<ServerProcess>(ServerOptions{})),
      subject_(std::make_unique<ServerProcess>(std::move(subject))) {
  for (ServerProcess* s : {redis_.get(), subject_.get()}) {
    Status st = s->start();
    if (!st.ok()) {
      ADD_FAILURE() << "cannot start " << s->describe() << ": " << st.to_string();
      return;
    }
  }
  Result<RedisClient> rc = RedisClient::connect(redis_->port());
  Result<RedisClient> sc = RedisClient::connect(subject_->port());
  if (!rc.ok() || !sc.ok()) {
    ADD_FAILURE() << "cannot connect: " << rc.status().to_string() << " / "
                  << sc.status().to_string();
    return;
  }
  redis_client_ = std::make_unique<RedisClient>(std::move(*rc));
  subject_client_ = std::make_unique<RedisClient>(std::move(*sc));
  ok_ = true;
}

std::pair<std::string, std::string> Differential::both(const std::vector<std::string>& args) {
  return {redis_client_->cmd(args), subject_client_->cmd(args)};
}

std::string Differential::run(const std::vector<std::string>& args) {
  auto [expected, actual] = both(args);
  if (expected != actual) {
    ADD_FAILURE() << "reply differs for " << describe_command(args) << "\n  redis:   " << expected
                  << "\n  " << subject_->describe() << ": " << actual;
  }
  return expected;
}

}  // namespace statekv::itest
