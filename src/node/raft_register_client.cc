#include "node/raft_register_client.h"

namespace statekv::node {

std::vector<std::string> member_endpoints(const meta::ClusterMap& map) {
  std::vector<std::string> endpoints;
  for (const meta::Member& m : map.members) {
    if (m.state == meta::MemberState::kActive && !m.peer_address.empty()) {
      endpoints.push_back(m.peer_address);
    }
  }
  return endpoints;
}

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
