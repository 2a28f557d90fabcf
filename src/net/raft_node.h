// The real runtime for one raft replica: the Env contract of replication/env.h
// on a real clock, real TCP peers (transport.h) and a real disk: the node's
// write-ahead log (shared_log.h), where this replica logs as group 0.
//
// The Raft class (replication/raft/raft.h) runs here unchanged from the
// simulator. RaftNode owns two threads, each running an Asio event loop:
//   metadata-raft  the protocol and its timers, called one callback at a time
//                  as env.h requires; the log's sync thread reports
//                  durability by posting on_persisted onto it;
//   data-loop      the transport (every peer and client connection, the
//                  pings, routed commands) and, through data_loop(), the
//                  node's data replica groups (coord/replica_groups.h): a
//                  group's message goes from its protocol to the socket, and
//                  from the socket to its protocol, without a thread hop.
// The metadata replica's messages cross between the two loops (they are few:
// heartbeats and map changes).
//
// This replica is the metadata group (the cluster map), group 0 of the node
// (kMetadataGroup). The node's data replica groups share its transport
// (GroupFrames) and its write-ahead log (wal()), so one fdatasync per round
// covers the records of the metadata group and of every data group; but this
// replica keeps its own thread, so that its 150 ms election timeout does not
// wait behind the commands the data groups' loop runs (docs/replication.md,
// "The metadata group in the shared log"). Its messages do pass through the
// data loop, so a handler there that runs for a long time (tens of ms) delays
// them too.
//
// Who talks to it:
//   * peers, over the transport: raft messages; client operations
//     (RequestFrame) and admin operations (AdminFrame) from other nodes, the
//     CLI and bench clients (client.h), answered on the same connection;
//   * the process it lives in, through submit() and status() (thread-safe).
//
// A client operation submitted on a node that is not leader fails at once with
// the leader hint (kFail + leader_hint); clients follow it (client.h). An
// operation without an answer within request_timeout gets Status::Timeout: it
// may or may not have happened (a write whose leader lost office, a group that
// lost its majority).
//
// Persistence: every record the protocol persists goes to group 0 of the
// SharedLog in data_dir / "wal" (its checkpoints replace only group 0's
// earlier records); on start the surviving records are handed to the
// protocol's constructor, so a restart is recovery (env.h). A torn tail of the
// shared log is reported in the log and cut off by the SharedLog (acknowledged
// records were synced before the acknowledgement, so they lie before any torn
// tail). Data directories from before the shared log kept this replica's log
// in data_dir / "raft" (a DiskLog): it is moved into the shared log at start
// and then removed (migrate_disk_log; a move cut short by a crash is redone).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "net/asio.h"
#include "net/wire.h"
#include "replication/env.h"
#include "replication/raft/raft.h"

namespace statekv::net {

class SharedLog;

// The metadata group's id in the node's write-ahead log (data groups' ids are
// never 0: coord::ReplicaGroups::group_id).
inline constexpr uint64_t kMetadataGroup = 0;

struct RaftNodeOptions {
  NodeId self;
  // The node's write-ahead log is data_dir / "wal" (this replica's records
  // are its group 0); an older data_dir / "raft" is moved into it at start.
  std::filesystem::path data_dir;
  // Where to listen for peers and clients.
  std::string peer_bind = "127.0.0.1";
  uint16_t peer_port = 0;  // 0: pick a free port (tests)
  uint16_t resp_port = 0;  // named to Redis clients that connect to the peer port
  // Peer addresses known at start (host:port), self included or not. More are
  // learned later through set_peer_address (the cluster map).
  std::map<NodeId, std::string> peers;
  // The bootstrap voters: used only on a first start with an empty log. A node
  // started to join an existing cluster passes an empty list: it waits for the
  // leader to add it (it never campaigns while outside its own config).
  std::vector<NodeId> bootstrap_voters;
  std::string secret;  // the cluster secret every peer must prove it knows
  bool fsync = true;
  replication::raft::RaftOptions raft;
  std::chrono::milliseconds request_timeout{5000};
  // How often this node pings every peer it knows (wire.h PingFrame), so that
  // each node hears from every member and can tell which are down
  // (RaftNodeStatus::last_heard).
  std::chrono::milliseconds ping_interval{200};
  // Called once, on the data loop, when a peer refuses this node as disowned:
  // it knew this node's id with another data directory (this one is new: the
  // node lost its raft state; net/peer_incarnations.h). Such a node must not
  // take part under its id: the server stops (docs/cluster.md). Null: only
  // logged (every frame of such a node is refused anyway).
  std::function<void(const std::string& reason)> on_disowned;
  // Called once, on the log's sync thread, when the node's write-ahead log
  // fails (SharedLogOptions::on_failure): from then on nothing this node
  // writes becomes durable, so it acknowledges no entry and grants no vote,
  // while a group it leads would still count on it. The server stops (exit 1)
  // so that its groups elect leaders elsewhere and `cluster status` shows it
  // down (docs/cluster.md, "A node whose disk fails"). Null: only logged.
  std::function<void(const std::string& reason)> on_log_failed;
};

// A consistent snapshot of what the node knows, for status pages.
struct RaftNodeStatus {
  NodeId self;
  std::string role;  // "leader", "follower", "candidate", "pre-candidate"
  uint64_t term = 0;
  std::optional<NodeId> leader;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  uint64_t last_index = 0;
  uint64_t snapshot_index = 0;
  std::vector<NodeId> voters;
  // Leader only: each other voter's replicated index.
  std::map<NodeId, uint64_t> match;
  uint64_t torn_bytes_at_start = 0;  // what recovery cut off the write-ahead log's tail
  uint64_t snapshots_received = 0;   // snapshots whose last chunk arrived, this incarnation
  // When a frame (any: raft, ping, routed command) last arrived from each peer
  // this node knows; a peer never heard from in this incarnation is absent.
  // A live peer is heard from at least every ping interval.
  std::map<NodeId, std::chrono::steady_clock::time_point> last_heard;
  // The peers whose latest ping said they are receiving a snapshot in some
  // replica group (wire.h, kPing): installing it will hold their data loop.
  std::set<NodeId> receiving_snapshot;
  // When this node started (a peer it has not heard from yet may just be
  // slower to start).
  std::chrono::steady_clock::time_point started;
  // JSON for status pages; last_heard as "heard_ms_ago": {"2": 15, ...}.
  std::string to_json() const;
};

class RaftNode {
 public:
  using Response = Result<replication::ClientResponse>;
  using Done = std::function<void(Response)>;

  // Opens the node's write-ahead log (moving an old data_dir / "raft" into
  // it), recovers, starts listening and the event loop thread.
  static Result<std::unique_ptr<RaftNode>> start(RaftNodeOptions options);
  ~RaftNode();  // stops the loop, closes connections, syncs its records in the log
  RaftNode(const RaftNode&) = delete;
  RaftNode& operator=(const RaftNode&) = delete;

  // Thread-safe. Runs `request` (its id is assigned here) through this node's
  // raft replica; `done` runs on the node's thread.
  void submit(replication::ClientRequest request, Done done);

  // Thread-safe. Tells the transport where a peer listens (from the cluster map).
  void set_peer_address(NodeId node, std::string host_port);

  // Thread-safe. Called on the node's thread with the new value each time the
  // applied value of `key` changes (nullopt: deleted); once at start with the
  // value recovered. The metadata watch follows "meta" with it.
  void watch_key(std::string key, std::function<void(const std::optional<std::string>&)> on_change);

  // Thread-safe. Admin operations, as over the wire (AdminOp in wire.h).
  void add_voter(NodeId node, std::function<void(Status)> done);
  void remove_voter(NodeId node, std::function<void(Status)> done);

  // Thread-safe. Who runs data commands other nodes route here (wire.h
  // ForwardFrame). The handler is called on the data loop and must not
  // block it: it hands the work elsewhere and calls `respond` (thread-safe)
  // when done. Until a handler is set, such frames are answered Unavailable.
  // `source` names the connection the frame came on: frames of one source
  // arrive in the order its sender wrote them.
  using ForwardHandler =
      std::function<void(uint64_t source, ForwardFrame, std::function<void(ForwardReplyFrame)>)>;
  void set_forward_handler(ForwardHandler handler);

  // Thread-safe. Data replica groups (coord/replica_groups.h) share this
  // node's transport: their messages travel as wire.h GroupFrames. `handler`
  // is called on the data loop with each one that arrives from a peer (or from
  // this node, never from inside send_group) and must not block it, with the
  // frame's configuration epoch (GroupFrame::epoch). Until a handler is set,
  // they are dropped. Set from the data loop, it takes effect at once.
  using GroupHandler =
      std::function<void(NodeId from, uint64_t group, uint64_t epoch, std::string message)>;
  void set_group_handler(GroupHandler handler);
  // Thread-safe. What this node's pings say (wire.h, kPing): `probe` is
  // called on the data loop at each ping and answers whether a replica group
  // here is receiving a snapshot; nullptr (the default): never. ping_now()
  // pings every peer at once (the data loop: a group that starts receiving
  // one tells its peers before the next ping is due).
  void set_ping_probe(std::function<bool()> probe);
  void ping_now();
  // Thread-safe. Sends a data group's message, stamped with `epoch`, to a peer
  // (or to this node); like raft's own messages, it may be lost when the peer
  // is unreachable. Called on the data loop, it goes to the socket at once.
  void send_group(NodeId to, uint64_t group, std::string message, uint64_t epoch = 0);

  // The data loop's io_context: whoever runs there (the replica groups) is
  // called one callback at a time with the transport's handlers. It runs until
  // this RaftNode is destroyed, which must come after every user of it has
  // let go (ReplicaGroups is destroyed first).
  asio::io_context& data_loop();

  // Thread-safe. The node's one write-ahead log, opened by start(): the data
  // replica groups log into it too (each under its own group id), so that a
  // round of the log's sync thread makes every group's records durable with
  // one fdatasync. It stays open until its last holder lets go.
  std::shared_ptr<SharedLog> wal() const;

  RaftNodeStatus status() const;
  uint16_t peer_port() const;
  NodeId self() const;

 private:
  class Impl;
  explicit RaftNode(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace statekv::net
