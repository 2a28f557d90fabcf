#include "node/cluster_acl.h"

#include "node/raft_register_client.h"

namespace statekv::node {

Result<uint64_t> ClusterAclStore::update(const Change& change) {
  auto map = node_.map();
  if (!map) return Status::Unavailable("this node has no cluster map yet");
  RaftRegisterClient client(member_endpoints(*map), secret_, deadline_);
  const std::string key(kAclKey);
  for (int attempt = 0; attempt < 16; ++attempt) {
    auto bytes = client.read(key);
    if (!bytes.ok()) return bytes.status();
    if (!*bytes) return Status::Unavailable("the cluster has no users document yet");
    auto doc = server::decode_acl_document(**bytes);
    if (!doc.ok()) return doc.status();
    auto next = change(*doc);
    if (!next.ok()) return next.status();
    auto applied = client.cas(key, *bytes, server::encode_acl_document(*next));
    if (!applied.ok()) {
      return Status::Unavailable(
          "the metadata service did not confirm the change (it may or may "
          "not have taken effect): " +
          applied.status().message());
    }
    if (*applied) return next->version;
    // Another change came first: read it and apply ours on top.
  }
  return Status::Aborted("the cluster's users kept changing under 16 attempts");
}

}  // namespace statekv::node
