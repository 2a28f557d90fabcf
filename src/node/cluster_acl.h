// The cluster's users and passwords (server/acl.h) as the metadata service
// keeps them: one document, the value of the raft key "acl" of the metadata
// raft group, beside the cluster map ("meta").
//
//   * Seeding: the first node to register writes the first document (a CAS
//     from "absent", so exactly one wins) before the first cluster map, with
//     the default user's password from its --requirepass (as a SHA-256 hash)
//     or nopass. So a node that has applied a map has applied users too.
//   * Changes (ACL SETUSER, ACL DELUSER, CONFIG SET requirepass on any node)
//     are read-modify-CAS of the whole document through the group's leader,
//     like the map's (meta/meta_client.h), each bumping its version by one.
//   * Every node follows the applied value (ClusterNode::set_acl_listener)
//     and installs it: a change holds on a node as soon as that node's raft
//     replica applies it (one heartbeat, about T/7 for an election timeout T,
//     when the node is healthy; a node cut off keeps the users it had).
//
// Thread safety: update() may be called from any thread (a register client
// per call).
#pragma once

#include <chrono>
#include <string>

#include "node/cluster_node.h"
#include "server/acl.h"

namespace statekv::node {

// The raft key that holds the users document.
inline constexpr std::string_view kAclKey = "acl";

class ClusterAclStore final : public server::AclStore {
 public:
  ClusterAclStore(ClusterNode& node, std::string secret,
                  std::chrono::milliseconds deadline = std::chrono::milliseconds(5000))
      : node_(node), secret_(std::move(secret)), deadline_(deadline) {}

  // Unavailable when there is no map to find the group by, no document yet,
  // or the CAS's outcome is unknown (it may or may not have taken effect);
  // Aborted when another change won every one of 16 attempts.
  Result<uint64_t> update(const Change& change) override;

 private:
  ClusterNode& node_;
  std::string secret_;
  std::chrono::milliseconds deadline_;
};

}  // namespace statekv::node
