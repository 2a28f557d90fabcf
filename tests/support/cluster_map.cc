#include "support/cluster_map.h"

#include <chrono>

#include "meta/meta_client.h"
#include "meta/transitions.h"
#include "node/raft_register_client.h"
#include "partition/layout.h"

namespace statekv::itest {

Status begin_keyspace_creation(const std::vector<std::string>& peer_endpoints,
                               const std::string& secret, const std::string& name,
                               const std::string& prefix) {
  node::RaftRegisterClient client(peer_endpoints, secret, std::chrono::milliseconds(5000));
  auto begun = meta::update(client, [&](const meta::ClusterMap& m) -> Result<meta::ClusterMap> {
    meta::KeyspaceSpec spec = m.find_keyspace("default")->spec;
    spec.name = name;
    spec.key_prefix = prefix;
    auto next = partition::create_placed_keyspace(m, spec);
    if (!next.ok()) return next.status();
    if (Status s = meta::begin_create(*next, name); !s.ok()) return s;
    return next;
  });
  return begun.ok() ? Status::OK() : begun.status();
}

}  // namespace statekv::itest
