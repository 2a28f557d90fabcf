#include "net/bench_client.h"

#include "net/client.h"

namespace statekv::net {
namespace {

class RaftConnection final : public loadgen::Connection {
 public:
  explicit RaftConnection(std::unique_ptr<Client> client) : client_(std::move(client)) {}
  Status put(std::string_view key, std::string_view value) override {
    return client_->put(std::string(key), std::string(value));
  }

 private:
  std::unique_ptr<Client> client_;
};

}  // namespace

Result<loadgen::ConnectionFactory> make_statekv_connection_factory(
    const std::vector<std::string>& endpoints, const std::string& secret) {
  ClientOptions options;
  options.endpoints = endpoints;
  options.secret = secret;
  // Validate once, up front, so a bad secret or endpoint list fails the run at once.
  auto probe = Client::create(options);
  if (!probe.ok()) return probe.status();
  return loadgen::ConnectionFactory(
      [options](size_t) -> Result<std::unique_ptr<loadgen::Connection>> {
        auto client = Client::create(options);
        if (!client.ok()) return client.status();
        return std::unique_ptr<loadgen::Connection>(
            std::make_unique<RaftConnection>(std::move(client).value()));
      });
}

}  // namespace statekv::net
