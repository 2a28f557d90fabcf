// meta::RegisterClient over the network: the cluster map's reads and CASes go
// through the raft group's leader with net::Client.
//
// Thread safety: none (one per thread, like net::Client).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "meta/meta_client.h"
#include "net/client.h"

namespace statekv::node {

// The peer addresses of a map's active members: where to reach the group.
std::vector<std::string> member_endpoints(const meta::ClusterMap& map);

class RaftRegisterClient final : public meta::RegisterClient {
 public:
  RaftRegisterClient(std::vector<std::string> endpoints, std::string secret,
                     std::chrono::milliseconds deadline);

  Result<std::optional<std::string>> read(const std::string& key) override;
  Result<bool> cas(const std::string& key, const std::optional<std::string>& expected,
                   const std::string& value) override;

  // The underlying client, for admin calls; null if it could not be created.
  net::Client* client() { return client_.get(); }

 private:
  std::unique_ptr<net::Client> client_;
  Status error_;
};

}  // namespace statekv::node
