// A cluster of local node processes, as `statekv cluster up` lays it out on
// disk, so that later commands (status, add-node, remove-node, down) find it:
//
//   DATA/cluster.json      the nodes: id, RESP port, peer port, data dir, region
//   DATA/cluster.secret    the cluster secret (mode 0600), made up if none was given
//   DATA/nodeK/            node K's data; nodeK/pid its process id while it runs,
//                          nodeK/statekv.log its log, nodeK/stopped why it was
//                          stopped on purpose (absent while it runs, and after a crash)
//   DATA/cluster.lock      held by the `statekv cluster up` that supervises the
//                          cluster, for as long as it runs (DirLock)
//   DATA/nodes.lock        held while a command starts nodes (up, restart-missing,
//                          add-node), so two never start the same node
//
// `cluster up` writes cluster.json once its nodes are ready, never before.
//
// Node K listens for clients on BASE_PORT + K - 1 and for peers on that + 10000.
// The secret reaches the node through the environment, never argv (which any
// local user can read in ps).
//
// Thread safety: plain functions. Processes share one DATA dir through the
// locks above.
#pragma once

#include <chrono>

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
  // Of the default keyspace: "none" (one copy per shard) or "consensus" (raft
  // per shard, factor min(3, nodes)).
  std::string replication = "none";
  // More `statekv server` options every node starts with (`cluster up
  // --server-arg`), e.g. "--group-election-timeout-ms=300": nodes added or
  // restarted later get them too.
  std::vector<std::string> server_args;
  std::vector<LocalNode> nodes;

  std::filesystem::path node_dir(NodeId id) const {
    return data / ("node" + std::to_string(id.value()));
  }
  std::vector<std::string> peer_endpoints() const;
  const LocalNode* find(NodeId id) const;
};

// Why `arg` cannot be one of LocalCluster::server_args, or "" when it can: it
// must be one option (--name or --name=value), not one `cluster up` sets for
// every node itself (ports, data dir, node id, peers, ... : its own flags say
// those), nor the secret or password, which never go into argv.
std::string refuse_server_arg(const std::string& arg);

// Reads DATA/cluster.json. NotFound when there is none.
Result<LocalCluster> load_local_cluster(const std::filesystem::path& data);
Status save_local_cluster(const LocalCluster& cluster);

// The secret: `given` if not empty, else $STATEKV_CLUSTER_SECRET, else
// DATA/cluster.secret; with create, a new random one is written there.
Result<std::string> cluster_secret(const std::filesystem::path& data, const std::string& given,
                                   bool create);

// An advisory lock on a file in the data dir (flock), released when the
// holder exits however it exits (a SIGKILL too). The holder writes who it is
// into the file, so a refused process can name it.
class DirLock {
 public:
  // Takes DATA/NAME without waiting, and writes `holder` (with our pid) into
  // it. Busy, with the holder's own description, when another process holds it.
  static Result<DirLock> try_acquire(const std::filesystem::path& data, const std::string& name,
                                     const std::string& holder);
  DirLock(DirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DirLock& operator=(DirLock&& other) noexcept;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock();
  void release();

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

inline constexpr const char* kSupervisorLock = "cluster.lock";
inline constexpr const char* kStartLock = "nodes.lock";

// The I/O threads of each of `nodes` nodes sharing this machine: its cores
// divided among them, at least one.
unsigned io_threads_per_node(size_t nodes);

// Starts node `node` of the cluster as a child process running
// `statekv server --io-threads io_threads_per_node(nodes)` (this executable);
// join: it starts empty and waits to be added. Writes nodeK/pid and clears nodeK/stopped. Returns the pid.
// `requirepass` (empty: none) reaches the node like the secret, through the
// environment (STATEKV_REQUIREPASS): it seeds the cluster's password when
// the cluster forms (node/cluster_acl.h).
Result<pid_t> spawn_node(const LocalCluster& cluster, const LocalNode& node,
                         const std::string& secret, bool join, const std::string& requirepass = "");

// The pid in nodeK/pid if that process is alive and is node K's server, else
// 0. A zombie (killed, not yet reaped by its parent) is dead; so is a pid the
// system has since given to another program.
pid_t running_pid(const LocalCluster& cluster, NodeId id);
// Waits (up to `limit`) while node `id`'s last process is exiting: killed,
// its main thread a zombie or its memory gone (so running_pid no longer
// counts it), but a thread of it still in the kernel (a write, an fsync)
// holding its open files, the data dir's lock among them. A node started
// again in that window finds its data dir locked (seen: `kill -9` of a busy
// node, then restart-missing at once). Returns at once when the process is
// running, gone, only zombie threads, or the pid is another program's.
void wait_while_exiting(const LocalCluster& cluster, NodeId id, std::chrono::milliseconds limit);

// Records `reason` in nodeK/stopped (so a supervisor reports the stop as
// planned, not as a crash), then SIGTERM, then SIGKILL after `grace`; removes
// the pid file. OK if it was not running.
Status stop_node(const LocalCluster& cluster, NodeId id, std::chrono::milliseconds grace,
                 const std::string& reason);

// Why node K was stopped on purpose (nodeK/stopped), or "" if it was not.
std::string planned_stop_reason(const LocalCluster& cluster, NodeId id);

// The last `lines` lines of node K's statekv.log, for messages about it, after
// its last error (or critical) line when that came earlier: a node that fails
// to start logs why on its main thread while others may still log a few lines.
std::string log_tail(const LocalCluster& cluster, NodeId id, size_t lines);

}  // namespace statekv::cli
