// A statekv node's membership in its cluster: the metadata raft replica this
// node runs (net/raft_node.h), the cluster map it follows (meta/), and what the
// RESP front shows of both (CLUSTER INFO, through coord/'s server::ClusterView).
//
// Start-up, and how nodes join through the metadata:
//   1. The raft replica starts: on a first start with --peers, the listed nodes
//      are the bootstrap voters; a node started with --join has none and waits
//      until the leader adds it (`statekv cluster add-node`).
//   2. The node follows the applied value of the raft key "meta" (the cluster
//      map document, meta/cluster_map.h): every applied change is decoded and
//      published here, epochs only ever go forward, and the peer transport
//      learns each member's peer address from it.
//   3. A registrar thread makes the map describe this node: if there is no map
//      yet it proposes the bootstrap map (a CAS from "absent", so exactly one
//      proposer wins), then it records its own RESP address, peer address and
//      region and marks itself active. Every change is a read-modify-CAS
//      through the group's leader (meta/meta_client.h), retried until it holds.
//
// Thread safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "meta/cluster_map.h"
#include "meta/health.h"
#include "meta/map_watch.h"
#include "meta/meta_client.h"
#include "net/raft_node.h"
#include "server/context.h"

namespace statekv::node {

struct ClusterNodeOptions {
  net::RaftNodeOptions raft;
  std::string resp_address;  // host:port clients reach this node's RESP port on
  std::string region = "default";
  std::string cluster_id = "statekv";
  // How the "default" keyspace is partitioned when this node forms the cluster.
  meta::Partitioner default_partitioner = meta::Partitioner::kHash;
  // And how it is replicated: kNone (one owner per shard) or kConsensus
  // (raft per shard, factor min(3, founding members)).
  meta::Replication default_replication = meta::Replication::kNone;
  // A member this node has not heard from for this long (no frame at all,
  // though every node pings every other: net::RaftNodeOptions::ping_interval)
  // counts as down in CLUSTER INFO's cluster_state.
  std::chrono::milliseconds peer_down_after{1500};
  // SHA-256 (hex) of this node's --requirepass, empty without one: the
  // default user's password when this node seeds the cluster's users
  // (node/cluster_acl.h). Never the password itself.
  std::string requirepass_hash;
};

class ClusterNode final {
 public:
  static Result<std::unique_ptr<ClusterNode>> start(ClusterNodeOptions options);
  ~ClusterNode();
  ClusterNode(const ClusterNode&) = delete;
  ClusterNode& operator=(const ClusterNode&) = delete;

  // CLUSTER INFO's body (server::ClusterView::cluster_info). cluster_state is
  // fail when there is no raft leader or no map, or when some shard has no
  // owner this node can hear from (meta/health.h); statekv_health also tells
  // degraded from ok, and which shards and nodes are the cause.
  std::string cluster_info() const;
  std::string my_id() const;

  // The latest map this node has applied (nullptr before the first one).
  std::shared_ptr<const meta::ClusterMap> map() const;
  net::RaftNodeStatus raft_status() const { return raft_->status(); }
  // For the coordinator: the map subscription, and the raft node whose peer
  // transport carries routed commands.
  meta::MapWatch& map_watch() { return watch_; }
  net::RaftNode& raft() { return *raft_; }
  // How many of `members` this node can reach now: itself, or members heard
  // from within peer_down_after (partition modes decide with it). One status
  // snapshot for all of them: it is taken on every replicated command.
  size_t reachable(const std::vector<NodeId>& members) const {
    const net::RaftNodeStatus s = raft_->status();
    size_t n = 0;
    for (NodeId m : members) n += member_up(s, m) ? 1 : 0;
    return n;
  }
  // The members (not removed) this node has not heard from within
  // peer_down_after, itself never among them.
  std::set<NodeId> down_members() const;
  // Whether this node leads the metadata group now.
  bool leads_metadata() const { return raft_->status().role == "leader"; }
  // Calls `listener` with the applied bytes of the cluster's users document
  // (node/cluster_acl.h) now if there is one, and after each change, on the
  // raft node's thread. One listener; set it once.
  void set_acl_listener(std::function<void(const std::string&)> listener);

 private:
  explicit ClusterNode(ClusterNodeOptions options);
  void on_meta(const std::optional<std::string>& bytes);
  void on_acl(const std::optional<std::string>& bytes);
  // Writes the first users document if the cluster has none.
  Status seed_users(meta::RegisterClient& client);
  // Self, or a peer heard from within peer_down_after (counted from this
  // node's start for a peer not heard from yet).
  bool member_up(const net::RaftNodeStatus& s, NodeId id) const;
  void register_loop();
  // One attempt to make the map describe this node; OK once it does.
  Status register_once();

  ClusterNodeOptions options_;
  std::unique_ptr<net::RaftNode> raft_;

  meta::MapWatch watch_;
  std::mutex mu_;  // guards stopping_
  std::condition_variable changed_;
  bool stopping_ = false;
  std::thread registrar_;

  std::mutex acl_mu_;  // guards the two below
  std::optional<std::string> acl_bytes_;
  std::function<void(const std::string&)> acl_listener_;
  bool warned_password_ = false;  // registrar thread only
};

}  // namespace statekv::node
