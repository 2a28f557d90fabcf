// What the networking layer and the command layer share: sessions, the client
// registry, statistics, and the Service interface the network calls into.
//
// Threading model (see docs/threading.md): N I/O threads each run their own
// event loop; a connection lives on one thread for its whole life and its
// commands execute inline on that thread. Commands touch shared state only
// through the Engine (internally striped) and the Store's striped key locks, so
// no global lock sits on the hot path.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "resp/writer.h"
#include "server/config.h"
#include "server/consistency.h"
#include "server/key_page.h"
#include "server/pubsub.h"
#include "storage/engine.h"

namespace statekv::server {

class KeyScopes;
class Proposer;
class Store;
struct AclSnapshot;
struct AclUser;
class Acl;
class AclStore;

// A command's reply produced later, on any thread (coord/ sent the command to
// another node and the I/O thread went on with other clients): the RESP bytes
// and the Sequence that must be durable before they reach the client. Called
// exactly once.
using DeferredReply = std::function<void(std::string reply, storage::Sequence seq)>;

struct TransactionState;  // server/transaction.h

// Per-connection state. Owned by the connection; commands run on the
// connection's thread and may touch every field. Fields other threads read
// (CLIENT LIST) are guarded by mu or atomic.
struct Session {
  uint64_t id = 0;
  int resp = 2;                // 2 or 3 (HELLO)
  bool authenticated = false;  // true when no requirepass is set
  // The ACL user this connection runs as (server/acl.h): "default" until an
  // AUTH as another. Written under mu (CLIENT LIST reads it).
  std::string user = "default";
  // The users the last access check used, refreshed when Acl::generation()
  // moves on, and this connection's user in them (nullptr: deleted).
  std::shared_ptr<const AclSnapshot> acl;
  const AclUser* acl_user = nullptr;
  bool acl_unrestricted = false;
  uint64_t acl_generation = 0;
  int db = 0;
  bool close_after_reply = false;  // QUIT
  std::string addr;                // "127.0.0.1:53124"
  std::string laddr;               // "127.0.0.1:7001"
  int fd = -1;
  std::chrono::steady_clock::time_point created = std::chrono::steady_clock::now();
  std::atomic<int64_t> last_interaction_ms{0};  // steady clock, ms
  // Steady clock, µs: when the connection began executing the commands of its
  // last read, read once for all of them (a pipeline of 16 GETs reads the clock
  // once, not 16 times). Each of those commands arrived before it, so it is a
  // "now" within every one's lifetime; 0 outside a connection (tests calling
  // a Service directly). Only the connection's thread touches it.
  int64_t batch_started_us = 0;
  std::atomic<uint64_t> query_buffer_bytes{0};
  std::atomic<uint64_t> output_buffer_bytes{0};
  std::atomic<uint64_t> commands{0};

  mutable std::mutex mu;  // guards name, last_command, lib_name, lib_ver
  std::string name;
  std::string last_command = "NULL";
  std::string lib_name;
  std::string lib_ver;

  // A session that runs commands another node routed here (coord/): the
  // epoch of the map the router used; 0 for a client's own session.
  uint64_t routed_epoch = 0;
  // Routed as an import of a key this node is receiving in a rebalance: it
  // runs here because this node is where the key goes (coord/mover.h).
  bool importing = false;
  // Internal work of this node on its own store (a rebalance reading and
  // deleting keys): never routed, never gated.
  bool internal = false;
  // Redis Cluster clients (redis-cli -c, ioredis Cluster) can ask for MOVED
  // redirects instead of having the node route for them (CLUSTER REDIRECTS).
  bool redirects = false;
  // Consistency per request (server/consistency.h): the connection's level
  // (CONSISTENCY), one command's own while it runs (WITH), and the session's
  // positions (SESSION TOKEN / AFTER), shared with replies that complete on
  // other threads.
  SessionConsistency consistency;
  std::optional<SessionConsistency> command_consistency;
  std::shared_ptr<SessionPositions> positions = std::make_shared<SessionPositions>();
  // The level the command now executing runs at.
  const SessionConsistency& effective_consistency() const {
    return command_consistency ? *command_consistency : consistency;
  }
  // Where this session's commands propose their effects (server/proposer.h).
  // A replica group's leader evaluates commands with a session whose proposer
  // hands the effects to the group's log (node/shard_groups.h). Unset: the
  // store's own group (ServiceState::proposer).
  Proposer* proposer = nullptr;

  // Set by a connection that can take a reply later. Calling it tells the
  // connection that the command now executing answers later: the connection
  // keeps the reply's place (replies reach the client in request order), and
  // goes on running this client's next commands, whose replies queue behind
  // it, unless the router asks it to wait (wait_for_replies). Unset where a
  // reply must be written before execute() returns (internal and routed
  // sessions, tests): the router then waits for the reply instead.
  std::function<DeferredReply()> defer;
  // Routed commands a router holds back to send together (coord/coordinator.h,
  // "Batches"): a connection calls flush() once it ran the commands of one
  // read, before it waits for replies or reads again. Only the connection's
  // thread touches it.
  struct RoutedBatch {
    virtual ~RoutedBatch() = default;
    virtual void flush() = 0;
  };
  std::unique_ptr<RoutedBatch> routed_batch;
  // Client-side caching: CLIENT TRACKING is on for this connection (the
  // TrackingTable in ServiceState holds its mode). Touched on its own thread only.
  bool tracking = false;
  // Set by a connection: queues bytes (an out-of-band RESP3 push) for this
  // client; callable from any thread. Returns false once the connection is
  // gone. Unset for internal and routed sessions.
  std::function<bool(std::string bytes)> push;
  // Its tracking mode, mirrored here for the read path (the table has it too).
  bool tracking_bcast = false;
  bool tracking_optin = false;
  bool tracking_optout = false;
  // CLIENT CACHING YES (1) / NO (0) for the next command; -1: not given.
  // It holds through that command (CLIENT TRACKINGINFO shows it) and is
  // cleared when the one after starts (caching_used).
  int caching = -1;
  bool caching_used = false;
  // Set by the service for the command executing: a read whose keys this
  // tracking client may now cache (recorded in the tracking table before it
  // runs, so a write that commits meanwhile is reported). The router carries
  // it to the owner (coord/).
  bool track_keys = false;
  // ... and a write of a tracking client (the owner applies its NOLOOP).
  bool track_write = false;
  // A routed session (coord/): the tracking client the command came from, on
  // node track_origin_node; with track_origin_read, the command's keys are
  // recorded for that node before it runs.
  uint64_t track_origin_node = 0;
  uint64_t track_origin_client = 0;
  bool track_origin_read = false;

  // Deferred replies this client is still owed (kept by the connection, read
  // on its thread).
  uint32_t replies_due = 0;
  // Blocked in BLPOP and the like (server/blocking.h): set by the command
  // together with defer(); the connection then runs nothing more of this
  // client until the deferred reply came (Redis's blocked client) and clears
  // it. Atomic: CLIENT LIST on other threads shows it (flag b).
  std::atomic<bool> blocked{false};
  // A replica group's leader evaluates a blocking command (BLPOP...) without
  // blocking it (coord/replica_groups.h): with poll_blocking set, one that
  // finds all its keys empty answers as on timeout and sets would_block; the
  // leader then keeps it waiting itself.
  bool poll_blocking = false;
  bool would_block = false;
  // Set with defer. The router calls it instead of running the command now
  // executing when that could overtake a command whose reply is still due
  // (only while replies_due > 0), writes nothing, and returns. The connection
  // then runs nothing more of this client until every reply due has come,
  // and then runs that command again (not counted twice: `continued`).
  std::function<void()> wait_for_replies;
  // The router's record of where this client's commands in flight went (a
  // stream of commands the owner runs in the order sent; coord/), valid
  // while replies_due > 0.
  uint64_t route_stream = 0;
  uint64_t route_owner = 0;
  // The router's pipeline of this client's commands to one replica group
  // (coord/coordinator.h, GroupPipeline), the last one it started.
  std::shared_ptr<void> route_pipeline;
  // The command was counted already: the router finishes it on another
  // thread with a session of its own, or the connection runs it again after
  // wait_for_replies. Not counted again.
  bool continued = false;

  // Pub/sub (server/pubsub.h). `subscriber` is set by a connection that can
  // receive messages (unset for internal and routed sessions: they cannot
  // subscribe). The sets are touched only on the connection's thread; the
  // counts mirror their sizes for CLIENT LIST on other threads.
  PubSubSubscriber* subscriber = nullptr;
  std::set<std::string, std::less<>> channels;
  std::set<std::string, std::less<>> patterns;
  std::atomic<uint32_t> channel_count{0};
  std::atomic<uint32_t> pattern_count{0};
  // Subscribed to anything: in RESP2 only the pub/sub commands, PING, QUIT
  // and RESET may run (Redis's "subscribed context").
  bool subscribed() const { return !channels.empty() || !patterns.empty(); }

  // MULTI/EXEC and WATCH (server/transaction.h): the commands queued and the
  // keys watched; null until the client first runs MULTI or WATCH. Releasing
  // it (RESET, the connection's end) releases its watches.
  std::shared_ptr<TransactionState> txn;
};

// All live connections, for CLIENT LIST and INFO clients. Implemented by the
// network layer. Calls may come from any thread.
class ClientRegistry {
 public:
  virtual ~ClientRegistry() = default;
  virtual size_t count() const = 0;
  // Calls fn for each live session while holding the registry lock; fn must not block.
  virtual void for_each(const std::function<void(const Session&)>& fn) const = 0;
};

// Counters for INFO stats. Each I/O thread increments its own cache-line-sized
// slot (no contended atomics); readers sum the slots.
class ServerStats {
 public:
  static constexpr size_t kSlots = 64;
  struct alignas(64) Slot {
    std::atomic<uint64_t> commands{0};
    std::atomic<uint64_t> connections_received{0};
    std::atomic<uint64_t> rejected_connections{0};
    std::atomic<uint64_t> net_input_bytes{0};
    std::atomic<uint64_t> net_output_bytes{0};
    std::atomic<uint64_t> keyspace_hits{0};
    std::atomic<uint64_t> keyspace_misses{0};
    std::atomic<uint64_t> expired_keys{0};
    std::atomic<uint64_t> protocol_errors{0};
  };
  // The calling thread's slot (assigned on first use, round robin).
  Slot& local();
  uint64_t sum(std::atomic<uint64_t> Slot::*field) const;

 private:
  std::array<Slot, kSlots> slots_;
  std::atomic<size_t> next_{0};
};

inline void bump(std::atomic<uint64_t>& counter, uint64_t n = 1) {
  counter.fetch_add(n, std::memory_order_relaxed);
}

// What the RESP front sees of the cluster this node belongs to: implemented by
// the node assembly (src/node/) when the node runs in a cluster, absent
// (nullptr) for a standalone server. Calls may come from any I/O thread.
class ClusterView {
 public:
  virtual ~ClusterView() = default;
  // CLUSTER INFO's body: "field:value" lines joined by CRLF, Redis's fields
  // first (cluster_state, cluster_known_nodes, ...), then statekv's own
  // (raft role, term, leader, commit and applied index, metadata epoch, and
  // one line per member with its lag).
  virtual std::string cluster_info() const = 0;
  // CLUSTER MYID: this node's id as a string.
  virtual std::string my_id() const = 0;

  // The commands below write their whole reply (errors included) to `out`.
  // CLUSTER SLOTS / SHARDS / NODES in Redis Cluster's formats, for the
  // keyspace Redis Cluster clients see (docs/routing.md); CLUSTER KEYSLOT.
  virtual void cluster_slots(resp::Writer& out) const = 0;
  virtual void cluster_shards(resp::Writer& out) const = 0;
  virtual void cluster_nodes(resp::Writer& out) const = 0;
  virtual void cluster_keyslot(std::string_view key, resp::Writer& out) const = 0;
  // LOCATE key: keyspace, partitioner, shard, owners, epoch.
  virtual void locate(std::string_view key, resp::Writer& out) const = 0;
  // LOCATE of a key whose replica group this node does not lead: every
  // replica's applied index and lag are the leader's to tell. When
  // locate_asks_leader(key), locate_at_leader asks it and calls `done` (on
  // any thread) with the whole RESP reply: the leader's view, or this node's
  // own (locate()) when no leader answers in time.
  virtual bool locate_asks_leader(std::string_view key) const { return false; }
  virtual void locate_at_leader(std::string key, int resp, std::function<void(std::string)> done) {
    done({});
  }
  // KEYSPACE <subcommand> ...: argv[0] is the subcommand.
  virtual void keyspace(std::span<const std::string_view> argv, resp::Writer& out) = 0;
  // INFO keyspace's lines ("field:value\r\n" each): db0 with the keys and
  // expires of every node, as DBSIZE counts them (omitted when there are none,
  // as in Redis), then this node's own: node_keys, its keys per cluster
  // keyspace and shard, and its operation rate, so hot spots show. May ask
  // the other nodes (blocking, like a routed DBSIZE).
  virtual std::string info_keyspace() = 0;
  // INFO replication's statekv lines ("field:value\r\n" each): this node's
  // replica groups, each with its role, term, leader, indexes and members'
  // lag, and how many reads and writes it served. Empty when it has none.
  virtual std::string info_replication() { return {}; }
  // INFO stats' statekv lines ("field:value\r\n" each): statekv_forwarded_commands,
  // the client commands of this node whose keys another node serves (their
  // owner, or their replica group's leader, or another member for a read
  // below linearizable), sent there to run, each counted once however many
  // attempts it took. Fan-outs over several nodes (MGET, DEL, DBSIZE, SCAN
  // ...) and WAIT are not counted, and CONFIG RESETSTAT does not reset it. A
  // client that sends each key to the node serving it (a smart client) keeps
  // it at 0.
  virtual std::string info_stats() { return {}; }
  // ROLE and INFO replication's Redis fields, with this node as the primary of
  // the replica groups it leads (a node leads some groups and follows others;
  // every node takes writes for every key, so to a Redis client each is a
  // primary). `offset` counts the log entries of the groups it leads (the sum
  // of their last indexes); `replicas` lists each node it can reach that holds
  // a replica of one of them, with the entries of those groups it has (the sum
  // of its match indexes), so offset minus a replica's offset is its lag.
  struct ReplicaOffset {
    std::string host;
    int64_t port = 0;
    uint64_t offset = 0;
  };
  struct PrimaryView {
    uint64_t offset = 0;
    std::vector<ReplicaOffset> replicas;
  };
  virtual PrimaryView primary_view() const { return {}; }
  // WAIT numreplicas timeout_ms: calls `done` once (on any thread) with the
  // RESP integer reply: how many replicas other than the leader hold the
  // session's last write to a replicated keyspace, once at least numreplicas
  // do or the timeout passed. 0 when the session wrote nothing replicated.
  virtual void wait_replicas(const Session& session, int64_t numreplicas, int64_t timeout_ms,
                             std::function<void(std::string reply)> done) {
    done(":0\r\n");
  }
};

struct CommandSpec;
class Proposer;
class Store;

// Where a command runs in a cluster: implemented by coord/ (absent for a
// standalone server). Called for every command before it executes, on the
// connection's I/O thread.
class Router {
 public:
  enum class Decision : unsigned char {
    kLocal,    // run it here
    kHandled,  // the router wrote the whole reply (routed, fanned out, redirected, refused)
  };
  virtual ~Router() = default;
  // On kHandled, *seq is the local Sequence that must be durable before the
  // reply goes out (0 when nothing ran here), as Service::execute returns.
  virtual Decision route(Session& session, const CommandSpec& spec,
                         std::span<const std::string_view> argv, resp::Writer& out,
                         storage::Sequence* seq) = 0;
  // A command a client queues between MULTI and EXEC that a transaction
  // cannot hold in this cluster: the error the client gets instead of QUEUED
  // (the transaction then ends in EXECABORT, as for any command refused while
  // queueing). Nothing when it may be queued.
  virtual std::optional<std::string> refuse_in_transaction(const CommandSpec& spec) const {
    return std::nullopt;
  }
  // Called after a command the router let run here (kLocal) has executed.
  virtual void finished(Session& session) {}
  // The connection of session closed while blocked (Session::blocked) in a
  // command the router sent elsewhere: the router cancels it there.
  virtual void client_closed(Session& session) {}
  // CLIENT UNBLOCK of a client of this node blocked in a command the router
  // sent elsewhere: it is finished there (error: -UNBLOCKED, else as on
  // timeout). False when the router holds no such command of that client.
  virtual bool unblock(uint64_t client, bool error) { return false; }
};

// Client tracking across a cluster (docs/cache.md): implemented by coord/
// (absent for a standalone server). Calls may come from any thread and must
// not block.
class TrackingRelay {
 public:
  virtual ~TrackingRelay() = default;
  // Sends node the invalidation of keys (flush: of every key) that this
  // node's table holds for it; writer: the writing client's id on that node
  // (its NOLOOP), 0 when the write did not come from there.
  virtual void send_invalidation(uint64_t node, uint64_t writer, std::vector<std::string> keys,
                                 bool flush) = 0;
  // This node's tracking clients changed: tells every other node what it must
  // now send here (coord/tracking_relay.h); done() runs once each answered or
  // failed, on any thread.
  virtual void announce(std::function<void()> done) = 0;
};

// SHUTDOWN's modifiers (server_commands.cc), for the process that stops.
struct ShutdownRequest {
  enum class Save { kDefault, kSave, kNoSave };
  Save save = Save::kDefault;
  bool now = false;    // NOW: stop without handing the groups this node leads over first
  bool force = false;  // FORCE: stop even if the final sync of the store fails
};

struct ServerContext {
  ConfigStore* config = nullptr;
  storage::Engine* engine = nullptr;
  ClientRegistry* clients = nullptr;
  ServerStats* stats = nullptr;
  std::string run_id;  // 40 hex chars, new each start
  std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
  unsigned io_threads = 1;
  std::string executable;          // absolute path of the binary, for INFO server
  std::string config_file;         // --config path or empty
  ClusterView* cluster = nullptr;  // set when the node runs in a cluster
  Router* router = nullptr;        // set when the node routes keys across a cluster
  // Builds the Proposer that commits handlers' effects to the store
  // (server/proposer.h); unset: a local group of one member.
  std::function<std::unique_ptr<Proposer>(Store&)> proposers;
  // Keys whose expiry is not this node's to decide: a replicated group's key
  // is erased only by its leader, through the group's log. The active expirer
  // hands such a key here (with its stripe lock held: must not block) instead
  // of erasing it, and leaves it alone when this returns true. Unset: every
  // key is this node's.
  std::function<bool(std::string_view key)> expire_elsewhere;
  // The store's generation space (Store's constructor): a cluster node's id,
  // so that collections' generations never collide between nodes whose
  // replica groups share stores.
  uint16_t generation_space = 0;
  // Where the store keeps each key's record (server/key_scopes.h): a cluster
  // node's replica groups' keys under their group's prefix. Unset: every key
  // in scope 0. Must outlive the service.
  const KeyScopes* key_scopes = nullptr;
  // This node's channel and pattern subscriptions (PUBLISH delivers through
  // it; in a cluster the coordinator also delivers messages published on
  // other nodes).
  std::shared_ptr<PubSub> pubsub = std::make_shared<PubSub>();
  // Set on a cluster node: the users and passwords are the cluster's, kept
  // by the metadata service (server/acl.h); unset: this server's own.
  AclStore* acl_store = nullptr;
  TrackingRelay* tracking_relay = nullptr;  // set when the node runs in a cluster
  // Starts a planned stop of the process (SHUTDOWN): the way SIGTERM does
  // (cli/server_command.cc), with the request's modifiers. An error when the
  // process cannot honour them (SAVE with nothing to save to). Unset where no
  // process belongs to the service (tests): SHUTDOWN says so.
  std::function<Status(const ShutdownRequest&)> shutdown;
};

// The command layer, as the network sees it.
class Service {
 public:
  virtual ~Service() = default;

  // Executes one request (argv[0] is the command name, any case) for session and
  // appends the whole reply to out. Returns the storage Sequence that must be
  // durable before the reply may be sent to the client (0 when there is none).
  // Never throws; every failure becomes an error reply. The service counts the
  // command (ServerStats::Slot::commands, Session::commands) and records
  // Session::last_command for CLIENT LIST.
  virtual storage::Sequence execute(Session& session, std::span<const std::string_view> argv,
                                    resp::Writer& out) = 0;

  // One page of an ordered walk over this node's keys (server/key_page.h), for
  // scans that merge several nodes' keys (coord/). Errors: the engine's.
  virtual Result<KeyPage> key_page(const KeyPageRequest& request) = 0;

  // The store commands run against, for replica groups that apply other
  // members' effects to it and snapshot it (coord/replica_groups.h); nullptr
  // for services without one.
  virtual Store* store() { return nullptr; }
  // session's MULTI/WATCH state, created when absent (coord/ routes a
  // transaction's EXEC and WATCH by it). nullptr from a service without
  // transactions.
  virtual std::shared_ptr<TransactionState> transaction(Session& session) { return nullptr; }
  // Client tracking across a cluster, for coord/'s TrackingRelay (no-ops by
  // default): node `node` has tracking clients (on), some in BCAST mode (it
  // is then sent every write); a write or flush applied on another node, for
  // this node's own tracking clients; what this node's clients need.
  virtual void tracking_peer(uint64_t node, bool on, bool bcast) {}
  virtual void tracking_apply_remote(uint64_t writer, std::span<const std::string> keys,
                                     bool flush) {}
  struct TrackingNeeds {
    bool any = false;
    bool bcast = false;
  };
  virtual TrackingNeeds tracking_needs() const { return {}; }
  // Client tracking of REPLICATION consensus keyspaces (coord/replica_groups.h),
  // whose writes reach the store through a group's apply path, on every member:
  //  * tracking_applied: a replica group applied effects on `keys` here (at
  //    commit, leader and followers alike). This node's own tracking clients
  //    and the peers whose reads it served are told; a peer in BCAST mode only
  //    when tell_bcast_peer(node) says so (the group tells each BCAST peer
  //    once: its leader does, skipping members, which apply the entry
  //    themselves);
  //  * tracking_peer_read: a tracked read from node `node` that this node
  //    serves for a group (before it runs): its keys are recorded for that node;
  //  * tracking_flushed: every key may have changed here (this node's part of
  //    a cluster-wide FLUSHALL, or a replica's state replaced by a snapshot):
  //    this node's tracking clients get the flush message, and its peers
  //    unless local_only (a cluster-wide FLUSHALL reaches every node, each
  //    tells its own clients).
  //    `writer`: the tracking client that made the write, for its NOLOOP.
  struct AppliedWriter {
    uint64_t here = 0;    // its client id, when it is a client of this node
    uint64_t node = 0;    // else the node it is a client of (0: none), and
    uint64_t client = 0;  // its client id there
  };
  virtual void tracking_applied(std::span<const std::string_view> keys,
                                const std::function<bool(uint64_t node)>& tell_bcast_peer,
                                const AppliedWriter& writer) {}
  virtual void tracking_peer_read(uint64_t node, std::span<const std::string> argv) {}
  virtual void tracking_flushed(bool local_only) {}

  // The connection of session closed (on its thread): a command it is
  // blocked in is cancelled (server/blocking.h). No-op by default.
  virtual void client_closed(Session& session) {}

  // Starts background work (active expiry); stop() ends it and is called before
  // the engine is closed.
  virtual void start() = 0;
  virtual void stop() = 0;

  // Whether a client that connects now must AUTH first; nullopt: the service
  // has no users of its own, and requirepass decides.
  virtual std::optional<bool> auth_required() const { return std::nullopt; }
  // This service's users (server/acl.h), which a cluster node replaces with
  // the cluster's; nullptr for a service without users.
  virtual Acl* acl() { return nullptr; }
};

// Builds the command layer over ctx (which must outlive it).
std::unique_ptr<Service> make_service(ServerContext& ctx);

}  // namespace statekv::server
