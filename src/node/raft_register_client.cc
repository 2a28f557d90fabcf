#include "node/raft_register_client.h"

namespace statekv::node {

RaftRegisterClient::RaftRegisterClient(std::vector<std::string> endpoints, std::string secret,
                                       std::chrono::milliseconds deadline) {
  net::ClientOptions options;
  options.endpoints = std::move(endpoints);
  options.secret = std::move(secret);
  options.deadline = deadline;
  auto client = net::Client::create(std::move(options));
  if (client.ok()) {
    client_ = std::move(client).value();
  } else {
    error_ = client.status();
  }
}

Result<std::optional<std::string>> RaftRegisterClient::read(const std::string& key) {
  if (!client_) return error_;
  return client_->get(key);
}

Result<bool> RaftRegisterClient::cas(const std::string& key,
                                     const std::optional<std::string>& expected,
                                     const std::string& value) {
  if (!client_) return error_;
  return client_->cas(key, expected, value);
}

}  // namespace statekv::node
