// A cluster of local node processes, as `statekv cluster up` lays it out on
// disk, so that later commands (status, add-node, remove-node, down) find it:
//
//   DATA/cluster.json      the nodes: id, RESP port, peer port, data dir, region
//   DATA/cluster.secret    the cluster secret (mode 0600), made up if none was given
//   DATA/nodeK/            node K's data; nodeK/pid its process id while it runs,
//                          nodeK/statekv.log its log
//
// Node K listens for clients on BASE_PORT + K - 1 and for peers on that + 10000.
// The secret reaches the node through the environment, never argv (which any
// local user can read in ps).
//
// Thread safety: plain functions; not for concurrent use on one DATA dir.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/status.h"

namespace statekv::cli {

struct LocalNode {
  NodeId id;
  uint16_t port = 0;       // RESP
  uint16_t peer_port = 0;  // peers and cluster clients
  std::string region = "default";
  std::string peer_address() const { return "127.0.0.1:" + std::to_string(peer_port); }
};

struct LocalCluster {
  std::filesystem::path data;
  uint16_t base_port = 7001;
  std::string engine = "rocksdb";
  std::string fsync = "batch";
  std::string partitioner = "hash";  // of the default keyspace
  std::vector<LocalNode> nodes;

  std::filesystem::path node_dir(NodeId id) const {
    return data / ("node" + std::to_string(id.value()));
  }
  std::vector<std::string> peer_endpoints() const;
  const LocalNode* find(NodeId id) const;
};

// Reads DATA/cluster.json. NotFound when there is none.
Result<LocalCluster> load_local_cluster(const std::filesystem::path& data);
Status save_local_cluster(const LocalCluster& cluster);

// The secret: `given` if not empty, else $STATEKV_CLUSTER_SECRET, else
// DATA/cluster.secret; with create, a new random one is written there.
Result<std::string> cluster_secret(const std::filesystem::path& data, const std::string& given,
                                   bool create);

// Starts node `node` of the cluster as a child process running
// `statekv server` (this executable); join: it starts empty and waits to be
// added. Writes nodeK/pid. Returns the pid.
Result<pid_t> spawn_node(const LocalCluster& cluster, const LocalNode& node,
                         const std::string& secret, bool join);

// The pid in nodeK/pid if that process is alive, else 0.
pid_t running_pid(const LocalCluster& cluster, NodeId id);

// SIGTERM, then SIGKILL after `grace`; removes the pid file. OK if it was not running.
Status stop_node(const LocalCluster& cluster, NodeId id, std::chrono::milliseconds grace);

}  // namespace statekv::cli
