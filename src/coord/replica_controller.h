// ReplicaController — moves the replicas of REPLICATION consensus keyspaces to
// where replica_targets puts them, from the metadata leader.
//
// Rebalancing, add-node and remove-node change the map (a member joins, or is
// marked leaving); the replicas then follow, without anyone driving them from
// outside: the node that leads the metadata group runs this controller, which
// compares each consensus shard's owners with its target and, one step at a
// time (coord/replica_moves.h: publish, add, wait, transfer, remove, publish),
// moves the shard's group there, one step per shard per tick, so a group
// never drops below its factor (add before remove) and progress shows in the
// map: a shard's owners reach its target when its move is done (`statekv
// cluster rebalance` waits for that and prints each shard's progress).
//
// The map changes a tick decides for its shards (targets recorded, owners
// published) are written together, as one change of the map (one epoch): a
// write of the map is a metadata put of all of it, applied by every node.
//
// At most max_moves shards move at once (a move is under way from the tick
// that records its target until its owners reach it); the others wait their
// turn: first the shards a member that does not answer leaves a replica
// short, then in keyspace and shard order. Each move's new member catches up
// from a snapshot that it holds whole until it restores it, so a node joining
// a keyspace of hundreds of shards (a ring's, 256 vnodes a node) would
// otherwise take hundreds of them at once.
//
// The decisions are coord/replica_moves.h's (sans-IO). The controller keeps
// only hints (each group's last known leader) and does its I/O through a
// ReplicaMoveIo, so a test drives it with a model of the groups. A controller
// on a node that stops leading the metadata group stops at its next tick; the
// new leader's controller picks the moves up from the map and the groups,
// which hold all of their state.
//
// Not moved: nodes that are merely down (a killed node's replicas stay until
// it is removed: `statekv cluster remove-node`, which marks it leaving).
//
// Thread safety: ReplicaController is used from one thread at a time;
// ReplicaControllerThread's methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "coord/replica_moves.h"
#include "meta/cluster_map.h"

namespace statekv::coord {

// How the controller reaches the groups and the map.
class ReplicaMoveIo {
 public:
  virtual ~ReplicaMoveIo() = default;
  // Runs `__replicas ARGS` (coord/replica_groups.h kReplicasVerb) on the
  // leader of `group`: tries `leader` first, then `members` (never those in
  // `down`), following leader hints; on OK, `leader` is who answered. Busy and
  // InvalidArgument come back as the leader said them; Unavailable when no
  // member leads or answers.
  virtual Result<std::string> ask_leader(const meta::ClusterMap& map, GroupId group,
                                         const std::vector<NodeId>& members,
                                         const std::set<NodeId>& down,
                                         const std::vector<std::string>& args, NodeId& leader) = 0;
  // Changes the map through the metadata group (meta::update: read, change,
  // compare-and-set, retried); `map` is the one the controller saw. A change
  // that finds it made already ("already ...") is OK.
  using MapChange = std::function<Result<meta::ClusterMap>(const meta::ClusterMap&)>;
  virtual Status update_map(const meta::ClusterMap& map, const MapChange& change) = 0;
};

// The real ReplicaMoveIo: peer connections (net::BlockingConnection) to the
// members, and the metadata group's register for the map.
std::unique_ptr<ReplicaMoveIo> peer_replica_move_io(std::string secret);

// What one tick did.
struct ReplicaTick {
  size_t shards_moving = 0;         // consensus shards whose owners differ from their target
  size_t shards_waiting = 0;        // of those, waiting for a move to end (max_moves)
  std::vector<std::string> steps;   // "keyspace 'k' shard 2: adding node 4 ..." per step taken
  std::vector<std::string> errors;  // a keyspace or shard that cannot move, and why
};

class ReplicaController {
 public:
  static constexpr size_t kDefaultMaxMoves = 8;
  explicit ReplicaController(ReplicaMoveIo& io, size_t max_moves = kDefaultMaxMoves)
      : io_(io), max_moves_(max_moves) {}

  // One step (at most) for every consensus shard whose owners differ from its
  // target over `map`'s members, starting no move past max_moves under way;
  // `down`: members that do not answer now.
  ReplicaTick tick(const meta::ClusterMap& map, const std::set<NodeId>& down);

 private:
  ReplicaMoveIo& io_;
  const size_t max_moves_;
  std::map<GroupId, NodeId> leaders_;             // last leader that answered
  std::map<GroupId, std::vector<NodeId>> config_;  // members last reported
};

struct ReplicaControllerOptions {
  std::string secret;
  // Between ticks while shards move, and while none does.
  std::chrono::milliseconds busy_interval{20};
  std::chrono::milliseconds idle_interval{300};
  // Called on the controller's thread before each tick: whether this node
  // leads the metadata group; the map it applied (null: none yet); the
  // members it has not heard from lately.
  std::function<bool()> leads_metadata;
  std::function<std::shared_ptr<const meta::ClusterMap>()> map;
  std::function<std::set<NodeId>()> down;
  // The I/O; null: peer_replica_move_io(secret).
  std::unique_ptr<ReplicaMoveIo> io;
};

// Runs a ReplicaController on a thread of its own while this node leads the
// metadata group. Logs every step (spdlog::info) and every error once per
// change of its text.
class ReplicaControllerThread {
 public:
  explicit ReplicaControllerThread(ReplicaControllerOptions options);
  ~ReplicaControllerThread();  // stops the thread (a step under way finishes)
  ReplicaControllerThread(const ReplicaControllerThread&) = delete;
  ReplicaControllerThread& operator=(const ReplicaControllerThread&) = delete;

 private:
  void run();

  ReplicaControllerOptions options_;
  std::unique_ptr<ReplicaMoveIo> io_;
  ReplicaController controller_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

// Parses `__replicas status`'s line (`leader=N commit=I config=A,B
// committed=0|1 match=B:I,C:I epoch=E`, coord/replica_groups.h kReplicasVerb;
// fields it does not know are skipped).
Result<GroupView> parse_group_view(const std::string& line);

}  // namespace statekv::coord
