// The coordinator: any node accepts any command for any key, and the command
// runs on the node that owns the key (server::Router).
//
// On the node a client is connected to (the router):
//   * a command whose keys all belong to one node runs there: here, or routed
//     over the peer transport (net::ForwardClient; the blocking Forwarder on
//     the router pool and for the mover) with the epoch of the map used;
//   * MGET, MSET, DEL, UNLINK, EXISTS and TOUCH across nodes fan out, one
//     sub-command per owner, and the replies are gathered in key order (MSET
//     is then not atomic across nodes: each node's part is);
//   * DBSIZE, FLUSHALL and FLUSHDB cover every node holding data; KEYS and
//     SCAN walk every node at once in key order (cluster_scan.h), so a full
//     SCAN returns every key present throughout, even while keys move; a SCAN
//     cursor is valid on the node that issued it;
//   * any other command with keys on several nodes is refused with CROSSSLOT,
//     as Redis Cluster does;
//   * PUBLISH is delivered here (its reply counts this node's receivers, as
//     in Redis Cluster) and handed to every other member of the map, once,
//     over the peer transport (ForwardFrame::kPublish), in publish order per
//     peer; the other nodes deliver it to their own subscribers;
//   * a command of a client with CLIENT TRACKING on carries ForwardFrame::kTrack
//     (a tracked read, so that the owner records this node as holding its
//     keys; a write, for NOLOOP); tracking messages between nodes
//     (ForwardFrame::kTracking) go to the TrackingRelay (tracking_relay.h);
//   * a connection that asked for redirects (CLUSTER REDIRECTS ON), or a node
//     started with --cluster-redirects, gets Redis Cluster's MOVED for a key
//     of a slots keyspace that another node owns, instead of routing.
//
// On the owner, a routed command runs only if this node owns every key under
// its own map, after that map caught up with the router's epoch; otherwise it
// is refused as a stale route and the router, once its map is as new as the
// owner's, routes again. So a stale route is never served by a former owner.
//
// Threading: route() runs on the client's I/O thread and never waits for
// another node there when the connection can take its reply later
// (Session::defer): a single-owner command is sent through the ForwardClient
// (many in flight per peer connection) and its reply delivered when it comes;
// fan-outs, scans, and re-routing after a stale route run on the router pool
// (blocking there). Sessions that cannot defer (internal ones) block instead.
// A command this node serves itself still runs inline, and may wait there at
// a frozen rebalance gate (a few milliseconds, coord/mover.h).
// Routed commands arriving from other nodes run on small worker pools (client
// streams on their own), never on the raft thread; the rebalance's control work has a thread of its
// own.
//
// Order of one client's commands (a pipelining client has many in flight):
// each takes effect in the order the client sent them, and the replies come
// in that order (the connection keeps their places, server/connection.h).
//   * A client's routed commands are in flight together only while they all
//     go to one owner: they form a stream (ForwardFrame::stream, a new id
//     each time the client has nothing in flight), and the owner runs the
//     frames of one stream from one connection one after another, in the
//     order they arrived (on the stream workers: other streams run in
//     parallel; a stream waiting at a frozen gate holds its worker).
//   * A client's commands to one replica group (a consensus keyspace's
//     shard) are in flight together while they all go to that group: a
//     pipeline (GroupPipeline), sent to one member, each with its place
//     (replica_groups.h, PipelinePlace); see "Pipelines to a replica group".
//   * Any other command while replies are due (one this node runs, one for
//     another owner or group, a fan-out, a scan, a keyless command, a read
//     served below linearizable, a blocking command) first waits for every
//     reply due (Session::wait_for_replies).
//   * When the owner refuses a command of a stream as a stale route, it
//     refuses every later command of that stream too, without running it;
//     the router routes them again, one after another in the order sent, on
//     its pool. So no later command overtakes one being routed again.
// Commands in flight to an owner that fails get errors (in order); the
// client's connection stays usable.
//
// Pipelines to a replica group: a pipelining client's writes to a consensus
// keyspace took one round through the group's log each, one after another
// (1.1k SETs/s on one connection, -P 16 no faster than -P 1). Now a command
// for the same group as every reply the client is due joins their pipeline:
// it is sent at once to the member the pipeline's first command went to,
// with its place. That member, leading the group, begins the pipeline's
// commands in their order, each once the one before is evaluated (its effect
// queued for the log, or its reply known), so their entries follow the
// client's order while many wait for the log together. A command that did not
// run (the member does not lead, a stale route, the leader deposed before
// proposing it, a timeout before it was proposed) breaks the pipeline there:
// every later command of it not proposed yet is refused without running, and
// so is any that arrives after a gap in the places (a connection replaced,
// the member restarted, a pipeline forgotten after 5 s idle). Here the refused
// commands are sent again one after another, alone, each once every earlier
// command of the pipeline is answered (resend_in_order); a broken pipeline
// takes no new command. A read whose connection failed after it was written
// answers TIMEOUT rather than run again behind the pipeline's later commands.
//
// Batches (routed_batch.cc): the commands of a stream that a connection runs
// from one read (a pipeline) are held back (Session::routed_batch) and leave
// as one frame (ForwardFrame::kBatch) when the connection has run them, or
// earlier once a batch holds kBatchCommands commands or kBatchBytes bytes. The
// owner runs a batch's commands one after another, as it would the same
// commands in frames of their own (a stale route stops it there, and the rest
// of the stream is refused), and answers with one frame of replies (parts of
// at most kBatchReplyBytes, so that no frame nears the frame limit); the
// router fills the replies' places in order. So a pipeline of 16 commands
// costs one frame, one call and one wake-up of each thread on its way, not
// 16. A command over kBatchBytes, and every command of a tracking client,
// goes in a frame of its own, as before (after the batch held back).
//
// Transactions (server/transaction.h): MULTI queues on the client's node;
// at EXEC every key of the transaction (its commands' and the watched ones)
// must be in one shard of one keyspace (one slot, for a Redis Cluster client
// asking for redirects), else CROSSSLOT and the transaction is discarded.
// On this node it runs here; otherwise it goes to the owner whole, as one
// routed command (server::kExecVerb), which the owner runs as one EXEC (one
// Mutation) after checking it owns every key. WATCH of keys another node
// owns registers them there (server::kWatchVerb, under the client's watcher
// id); EXEC carries that id, and UNWATCH, DISCARD, RESET or the client's
// end release them there (kUnwatchVerb, fire and forget). A transaction
// whose watched keys moved to another node since counts its watch broken.
// Blocking commands (BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX
// BZMPOP; routed_blocking.cc): on the key's owner they block as a client of
// its own would (server/blocking.h). Sent to another node, the command goes
// to the owner in a frame of its own (kBlockVerb, with a token naming this
// client), not in a stream or a batch: the client runs nothing more until
// its reply came (Session::blocked), so nothing of it can queue behind it.
// The owner runs it with a session that can defer, so it blocks there
// without holding a worker, and answers when it is served or times out. The
// frame shares the peer connection with every other routed command: replies
// are matched by call id, so a call waiting long holds up no other; it has a
// timeout of its own (the command's, plus forward_timeout; none for 0), and
// fails, answered with an error, when the connection to the owner breaks
// (the owner died). A client that disconnects while blocked there sends
// kUnblockVerb with its token: the owner finishes its waiter (popping
// nothing). On a REPLICATION consensus keyspace the command goes to the
// group's leader (replica_groups.h, "Blocking commands"), which keeps it
// waiting and proposes its pop through the log when a push is applied; when
// that leader loses office, the router hands the command on to the next
// leader with the time left, as it does any command that did not run.
// A REPLICATION consensus keyspace's transaction runs whole on its group's
// leader; WATCH asks the leader which log index its keys stand at
// (kGroupWatchVerb), and EXEC hands those to the group's leader then, which
// checks them with nothing of the group in flight (kGroupExecVerb).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "coord/cluster_scan.h"
#include "coord/forwarder.h"
#include "coord/job_queue.h"
#include "coord/mover.h"
#include "coord/replica_groups.h"
#include "coord/routing_table.h"
#include "coord/tracking_relay.h"
#include "net/forward_client.h"
#include "net/wire.h"
#include "node/cluster_node.h"
#include "server/command.h"
#include "server/context.h"
#include "server/scan_cursors.h"

namespace statekv::meta {
class RegisterClient;
}

namespace statekv::coord {

class GroupScopes;

struct GroupView;  // coord/replica_moves.h

struct CoordinatorOptions {
  NodeId self;
  std::string secret;
  bool redirects = false;  // --cluster-redirects: MOVED for every connection
  size_t workers = 2;      // threads running commands routed here
  // Threads running client streams routed here (see "Order"): few, since a
  // stream's frames come in batches and more threads than cores only
  // preempt one another.
  size_t stream_workers = 2;
  size_t router_threads = 4;  // threads finishing fan-outs, scans and re-routes for clients
  std::chrono::milliseconds forward_timeout{5000};
  // How long an owner waits for its map to catch up with a router's epoch
  // (and a router for its own, after a stale route) before giving up.
  std::chrono::milliseconds epoch_wait{2000};
  // Runs this node's members of the replica groups of REPLICATION consensus
  // keyspaces (replica_groups.h). Unset: such keyspaces are not served here.
  std::optional<ReplicaGroupsOptions> replica_groups;
  // The node's store's key scopes (the server owns them; they outlive the
  // coordinator): told every map before the replica groups are, so a group
  // never applies a key whose scope its node does not know yet.
  GroupScopes* scopes = nullptr;
  // A keyspace still `creating` this long after this node first saw it
  // (its creation's driver stopped half-way: keyspace_change.cc) is
  // abandoned through the map, from here: no creation holds its prefix for
  // good (--keyspace-create-limit-ms).
  std::chrono::milliseconds creation_limit{30000};
};

class Coordinator final : public server::Router, public server::ClusterView {
 public:
  Coordinator(node::ClusterNode& node, server::Service& service, server::ServerContext& ctx,
              CoordinatorOptions options);
  ~Coordinator() override;
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  Decision route(server::Session& session, const server::CommandSpec& spec,
                 std::span<const std::string_view> argv, resp::Writer& out,
                 storage::Sequence* seq) override;
  std::optional<std::string> refuse_in_transaction(const server::CommandSpec& spec) const override;
  void finished(server::Session& session) override;
  void client_closed(server::Session& session) override;
  bool unblock(uint64_t client, bool error) override;

  // The table of the newest map this node has (nullptr before the first map).
  std::shared_ptr<const RoutingTable> table() const;

  // server::ClusterView (cluster_view.cc).
  std::string cluster_info() const override { return node_.cluster_info(); }
  std::string my_id() const override;
  void cluster_slots(resp::Writer& out) const override;
  void cluster_shards(resp::Writer& out) const override;
  void cluster_nodes(resp::Writer& out) const override;
  void cluster_keyslot(std::string_view key, resp::Writer& out) const override;
  void locate(std::string_view key, resp::Writer& out) const override;
  bool locate_asks_leader(std::string_view key) const override;
  void locate_at_leader(std::string key, int resp, std::function<void(std::string)> done) override;
  void keyspace(std::span<const std::string_view> argv, resp::Writer& out) override;
  std::string info_keyspace() override;
  std::string info_replication() override;
  std::string info_stats() override;
  PrimaryView primary_view() const override;
  // Before a planned stop: hands the leadership of every replica group this
  // node leads to an up-to-date member, waiting up to `limit` for it.
  void hand_over_leadership(std::chrono::milliseconds limit);
  void wait_replicas(const server::Session& session, int64_t numreplicas, int64_t timeout_ms,
                     std::function<void(std::string reply)> done) override;

  // What this node holds and does, for hot-spot views (INFO keyspace, the
  // `__stats` verb behind `statekv cluster status`). Recomputed at most every 250 ms:
  // counting keys per shard scans this node's keys.
  struct LocalStats {
    uint64_t keys = 0;
    double ops_per_sec = 0;
    // keyspace -> shard -> keys held here
    std::map<std::string, std::map<uint32_t, uint64_t>> shard_keys;
  };
  LocalStats local_stats();
  std::string local_stats_json();

 private:
  struct Part;  // one node's share of a fanned-out command

  void on_map(const std::shared_ptr<const meta::ClusterMap>& map);
  // Waits until the table's epoch is at least `epoch`; the newest table then.
  std::shared_ptr<const RoutingTable> wait_for_epoch(uint64_t epoch);

  // Owner side.
  using Respond = std::function<void(net::ForwardReplyFrame)>;
  // Runs a routed frame and responds. With refuse_stale, refuses it as a
  // stale route without running it. True when it was refused as stale.
  bool on_forward(net::ForwardFrame frame, const Respond& respond, bool refuse_stale = false);
  // Queues a frame of a stream (see "Order") and starts its runner if idle.
  void enqueue_stream(uint64_t source, net::ForwardFrame frame, Respond respond);
  // Runs the queued frames of one stream in order, on a stream worker.
  void run_stream(std::pair<uint64_t, uint64_t> key);
  Decision check_routed(server::Session& session, const server::CommandSpec& spec,
                        std::span<const std::string_view> argv, resp::Writer& out);
  // Before a command runs here: if it touches keys this node serves that are
  // moving away, pass the gate (waiting while it is frozen). False when, after
  // waiting, this node no longer serves them: the caller routes again.
  bool pass_gate(const server::CommandSpec& spec, std::span<const std::string_view> argv,
                 const std::vector<size_t>& keys);
  bool pass_gate_keys(const std::vector<std::string_view>& keys, bool write);
  std::string run_local(std::vector<std::string> argv);
  Status abort_move(const std::string& keyspace);

  // KEYSPACE CREATE and DROP with their keys (keyspace_change.cc): CREATE
  // moves the keys under the new prefix out of the keyspace that held them
  // (through the mover), DROP deletes the keyspace's keys everywhere and
  // answers how many. Both block until the change is done.
  void create_keyspace(meta::KeyspaceSpec spec, meta::RegisterClient& client, resp::Writer& out);
  void drop_keyspace(const std::string& name, meta::RegisterClient& client, resp::Writer& out);
  // Steps 2-3 of CREATE over keys, after meta::begin_adopt made `begun`:
  // moves the keys in, or abandons the keyspace (InvalidArgument "keyspace
  // 'x' not created: ...").
  Status move_keys_in(const meta::ClusterMap& begun, const std::string& name,
                      meta::RegisterClient& client);
  // The rest of CREATE over a prefix whose keys cannot move in, after
  // meta::begin_create made `begun` (the keyspace refuses commands): fences
  // the replica groups of the keyspace that held the prefix (kGroupFenceVerb)
  // and waits for every node to route by `begun`; then no key can reach the
  // prefix there any more, and the keys it holds under it are counted. None:
  // the keyspace serves (meta::finish_create). Otherwise, or on any failure,
  // the keyspace goes again (InvalidArgument "keyspace 'x' not created: ...").
  Status finish_creating(const meta::ClusterMap& begun, const std::string& name,
                         meta::RegisterClient& client);
  // Fences every replica group of `keyspace` (kGroupFenceVerb, each shard's
  // config_epoch), blocking; the records they hold under `prefix`, counted
  // by their leaders.
  Result<uint64_t> fence_groups(const meta::Keyspace& keyspace, std::string_view prefix);
  // A new map: notes the keyspaces being created in it (creations_), and
  // forgets the ones that are not any more.
  void watch_creations(const meta::ClusterMap& map);
  // The creations_watch_ thread: abandons, through the map, each creation
  // still under way creation_limit after this node first saw it.
  void abandon_stalled_creations();
  // Runs `argv` on replica group `group` (whose members are `members`),
  // blocking; its RESP reply.
  std::string call_group_and_wait(GroupId group, std::vector<NodeId> members,
                                  std::vector<std::string> argv);
  // `__keyspace adopt NAME` from `statekv cluster keyspaces FILE`, which
  // began the creation in the map: move_keys_in, answered "+OK".
  // `__keyspace create NAME`: the same after meta::begin_create:
  // finish_creating, answered "+OK".
  // `__keyspace count KEYSPACE PREFIX`: count_keys_of, answered ":N".
  Result<std::string> adopt_verb(const std::vector<std::string>& argv);
  // Runs `__migrate argv...` on `node` (here: the mover directly); the
  // one-line answer.
  Result<std::string> migrate_on(const meta::Member& node, uint64_t epoch,
                                 std::vector<std::string> argv);
  // Waits until every node's mover is idle (cleaned up after a change).
  Status wait_until_idle(const std::vector<meta::Member>& nodes, uint64_t epoch);
  // Keys under `prefix` that belong to `keyspace`, over the whole cluster.
  Result<uint64_t> count_keys_of(std::string_view keyspace, std::string_view prefix);

  // Router side.
  // Runs argv on `node` and returns its RESP reply: locally (adding to *seq)
  // or routed, re-routing after a stale route.
  // origin: the client's session, whose CLIENT TRACKING the owner learns of.
  Result<std::string> run_on(NodeId node, std::vector<std::string> argv, int resp,
                             const RoutingTable& table, storage::Sequence* seq,
                             const server::Session* origin = nullptr);
  // Marks frame as coming from a tracking client (see the header comment).
  void mark_tracking(const server::Session& session, net::ForwardFrame& frame) const;
  // EXEC and WATCH (see "Transactions").
  Decision route_transaction(server::Session& session, const server::CommandSpec& spec,
                             std::span<const std::string_view> argv, resp::Writer& out,
                             storage::Sequence* seq);
  Decision fan_out(server::Session& session, std::string_view name,
                   std::span<const std::string_view> argv, const std::vector<size_t>& key_positions,
                   const RoutingTable& table, resp::Writer& out, storage::Sequence* seq);
  Decision fan_out_all(server::Session& session, std::string_view name,
                       std::span<const std::string_view> argv, const RoutingTable& table,
                       resp::Writer& out, storage::Sequence* seq);
  Decision scan(const server::Session& session, std::span<const std::string_view> argv,
                resp::Writer& out);
  // Hands a PUBLISH to every other member of the map, without waiting.
  void broadcast_publish(std::string_view channel, std::string_view message);
  Decision list_keys(const server::Session& session, std::span<const std::string_view> argv,
                     resp::Writer& out);
  // One merged page over every node holding data, read under one map epoch,
  // and every replica group, each read where `session`'s level (or, without
  // one, its keyspace's) says (cluster_scan.h); Busy when the map kept
  // changing, Unavailable when a node or group did not answer.
  Result<MergedPage> scan_cluster(const server::KeyPageRequest& request,
                                  const server::Session* session = nullptr);
  // The replica groups' pages (kGroupScanVerb), all asked at once.
  Result<std::vector<NodeScanPage>> scan_groups(const server::KeyPageRequest& request,
                                                const server::Session* session,
                                                const RoutingTable& table);
  // Sends argv, a read of a whole group (kGroupScanVerb, kGroupCountVerb), to
  // every group of `groups` at once, each read where place_group_read says;
  // their replies in that order (an error reply for a group that did not
  // answer in time), or the refusal of one under partition.
  Result<std::vector<std::string>> call_every_group(const std::vector<ScannedGroup>& groups,
                                                    const std::vector<std::string>& argv,
                                                    const server::Session* session,
                                                    const RoutingTable& table);
  // Sends the node verb `verb` to every node holding data (this one answers
  // by `local`), all at once; the replies of those that answered. A node that
  // did not is passed over when it holds only replica groups' shards (their
  // own calls cover them), else its error is the answer.
  Result<std::vector<std::string>> ask_every_holder(
      const RoutingTable& table, std::string_view verb,
      const std::function<Result<std::string>()>& local);
  // Whether every shard `node` owns is a replica group's: what a scan or a
  // count gets from the groups does not need the node to answer.
  static bool holds_only_groups_shards(const RoutingTable& table, NodeId node);
  // DBSIZE's and INFO keyspace's db0: each node's keys outside replica groups
  // (kCountVerb) and each group's records, counted once (kGroupCountVerb).
  Result<server::Store::KeyCounts> count_cluster_keys(const server::Session* session);
  server::Store::KeyCounts local_key_counts();
  // RANDOMKEY: a key of the cluster, each node's and group's offer taken in
  // proportion to the keys it picked among (cluster_scan.h); nullopt: none.
  Result<std::optional<std::string>> random_cluster_key(const server::Session* session);
  Result<RandomKeyOffer> local_random_offer(const RoutingTable& table);
  // This node's page, for scan_cluster here or on another node.
  NodeScanPage local_scan_page(const server::KeyPageRequest& request);
  // Runs each frame on its node (all at once) and waits for every reply.
  std::vector<Result<net::ForwardReplyFrame>> call_all(
      const RoutingTable& table, const std::vector<std::pair<NodeId, net::ForwardFrame>>& calls);

  // Batches (see "Batches", routed_batch.cc).
  static constexpr size_t kBatchCommands = 512;
  static constexpr size_t kBatchBytes = 256 * 1024;
  static constexpr size_t kBatchReplyBytes = 16u << 20;
  struct Batch;          // a connection's commands held back (router)
  struct BatchInFlight;  // a batch sent, waiting for its replies (router)
  // Holds a single-owner command back in the session's batch (or sends it
  // at once, in a frame of its own, when it should not wait in one).
  void route_batched(server::Session& session, NodeId owner, const RoutingTable& table,
                     std::span<const std::string_view> argv);
  void send_batch(Batch& batch);
  void on_batch_reply(BatchInFlight& batch, Result<net::ForwardReplyFrame> r);
  // Owner side: runs a kBatch frame's commands in order and responds (in
  // parts); true when one was refused as a stale route.
  bool run_batch(net::ForwardFrame& frame, const Respond& respond, bool refuse_stale);

  // Sends a single-owner command without blocking; `done` gets the reply.
  void route_async(const server::Session& session, NodeId owner, const RoutingTable& table,
                   std::span<const std::string_view> argv, server::DeferredReply done);
  // Finishes a client's command on the router pool with the blocking path
  // (after waiting for map epoch `wait_epoch` when non-zero); `done` gets the
  // reply. With a non-zero `stream`, after the commands of that stream
  // finished there before it (re-routes keep the stream's order).
  void finish_on_router_pool(const server::Session& session, std::vector<std::string> argv,
                             uint64_t wait_epoch, server::DeferredReply done, uint64_t stream = 0);
  // Runs the re-routes queued for one stream, in order.
  void run_reroutes(uint64_t stream);

  // Blocking commands (see "Blocking commands", routed_blocking.cc).
  struct BlockingCall;
  // Router: sends a blocking command for `owner` (another node) or, with a
  // consensus keyspace's route, for its group's leader; the session is
  // blocked until the reply came. The session must be able to defer.
  void route_blocking(server::Session& session, const Route& route, const RoutingTable& table,
                      std::span<const std::string_view> argv, std::string_view first_key);
  void send_blocking(const std::shared_ptr<BlockingCall>& call, NodeId owner, uint64_t epoch);
  void finish_blocking(const std::shared_ptr<BlockingCall>& call, std::string reply);
  // Asks where call waits to finish it (kUnblockVerb): as on timeout, or
  // with -UNBLOCKED (CLIENT UNBLOCK ... ERROR).
  void send_unblock(const std::shared_ptr<BlockingCall>& call, bool error);
  // Owner: runs a blocking command routed here (kBlockVerb) with a session
  // that defers; `respond` gets its reply when served or timed out.
  void run_blocking_here(uint64_t epoch, std::string token, std::vector<std::string> argv,
                         int resp, Respond respond);
  // Owner: kUnblockVerb: the router's client went away, or CLIENT UNBLOCK.
  void unblock_here(const std::string& token, bool error);
  // A blocking command's argv (the command from `offset` on) with its
  // timeout set to the time left until `deadline` (max: left alone; passed:
  // 1 ms, one more try and then the timeout reply).
  static void set_block_time_left(std::vector<std::string>& argv, size_t offset,
                                  std::chrono::steady_clock::time_point deadline);
  // How long the router waits for a blocking call's reply: the command's own
  // timeout plus forward_timeout, or without limit (ForwardClient::kNoTimeout:
  // it still fails when the connection to the owner breaks).
  std::chrono::milliseconds blocking_call_timeout(
      std::chrono::steady_clock::time_point deadline) const;

  // Replicated keyspaces (replica_groups.h): a command for a group goes to
  // its leader, following leader hints and trying its members in turn until
  // one leads it or the call's deadline passes.
  struct GroupPipeline;
  struct GroupCall {
    GroupId group;
    std::vector<NodeId> members;  // the shard's owners: the group's members
    int resp = 2;
    uint64_t epoch = 0;
    std::vector<std::string> argv;
    // The keys it was routed by, under the map of `epoch` (empty: a call that
    // names its group itself, held to no map: a flush, a fence, a status
    // page, WAIT, an unblock). A member whose group's configuration is newer
    // than that map refuses it as a stale route: the router catches up and
    // sends it again, to the group its keys belong to then
    // (reroute_group_call).
    std::vector<std::string> keys;
    // The epoch a member holds the call to (0: none, a call without keys).
    uint64_t routed_epoch() const { return keys.empty() ? 0 : epoch; }
    server::DeferredReply done;
    std::chrono::steady_clock::time_point deadline;
    size_t attempt = 0;
    ReadPolicy policy;   // local: a member may serve it (below linearizable)
    bool write = false;  // a write command: the session's last write once it commits
    // WAIT's question instead of a command: members holding `wait_index`.
    bool wait = false;
    uint64_t wait_index = 0;
    int64_t wait_replicas = 0;
    std::chrono::milliseconds wait_timeout{0};
    // The client's session: moves up to the position each reply reflects.
    std::shared_ptr<server::SessionPositions> positions;
    // A tracked read (CLIENT TRACKING) of a tracking client of this node,
    // which is no member of the group: the member that serves it records its
    // keys for this node (ForwardFrame::kTrack), as it applies every write
    // of them. A member's own apply tells its clients.
    bool track = false;
    uint64_t track_client = 0;
    // A write of a tracking client of this node: its id, carried to the
    // leader and into the entry (for its NOLOOP wherever the entry applies).
    uint64_t write_client = 0;
    // A blocking command (argv: kBlockVerb token command...): when its
    // leader loses office, it is handed on with the time left until
    // block_deadline (max: none); an attempt that waited long opens a new
    // retry window. Not handed on once the client went away (cancelled).
    bool blocking = false;
    std::chrono::steady_clock::time_point block_deadline = std::chrono::steady_clock::time_point::max();
    std::chrono::steady_clock::time_point sent_at{};
    std::shared_ptr<std::atomic<bool>> cancelled;
    // A client's keyed command (not a part of a fan-out, nor WAIT's
    // question): counted in forwarded_commands_ the first time it is sent to
    // another member, then cleared.
    bool count_if_forwarded = false;
    // A command of a client's pipeline to the group (GroupPipeline), and its
    // place in it (from 1); null once it is answered or sent again alone.
    std::shared_ptr<GroupPipeline> pipeline;
    uint64_t seq = 0;
    bool served = false;  // answered with the group's success (on_group_reply)
  };
  // A client's commands to one replica group in flight together ("Pipelines
  // to a replica group" above): each sent, in order, to `target` with its
  // place (replica_groups.h, PipelinePlace), where the group's leader begins
  // them in that order. One that did not run (refused: Unavailable, Aborted)
  // breaks the pipeline there, so every later one not proposed yet is
  // refused too; here the refused ones are sent again one after another, in
  // their order, each once every earlier command is answered, as plain
  // calls. A broken pipeline takes no more commands (the client waits).
  struct GroupPipeline {
    GroupId group;
    NodeId target;
    uint64_t stream = 0;
    std::mutex mu;
    uint64_t next_seq = 1;
    // Commands not answered yet, sent or waiting to be sent again: the
    // client joins a command to the pipeline only while every reply it is
    // due is one of these.
    std::atomic<uint64_t> in_flight{0};
    std::set<uint64_t> unsettled;  // sent with their place, not answered yet
    struct Refused {
      std::shared_ptr<GroupCall> call;
      NodeId target;
      Status status;
      NodeId hint;
    };
    std::map<uint64_t, Refused> to_resend;  // by seq
    bool resending = false;
    // When the group last answered one of these commands with success. A
    // command sent again gets a new window to find the leader (its own may
    // have passed while it waited its turn behind the first one refused,
    // which waited through an election) while the group served the pipeline
    // within a window; once a command of it finds no leader in time, the
    // rest fail at once.
    std::chrono::steady_clock::time_point last_served{};
    std::atomic<bool> broken{false};
  };
  // Sends the next refused command of `pipeline` again, if every command
  // before it is answered and none is being sent again.
  void resend_in_order(const std::shared_ptr<GroupPipeline>& pipeline);
  // Whom a group call goes to: the hint if a member, else the leader this
  // node knows, else the members in turn (by call.attempt).
  NodeId group_call_target(const GroupCall& call, NodeId hint) const;
  void send_group_call(const std::shared_ptr<GroupCall>& call, NodeId hint);
  // Where a command of `group` (shard `shard` of `keyspace`, on `owners`)
  // runs: a read below linearizable at a member (*policy, by the session's
  // level, or the keyspace's without a session), anything else at the
  // leader. Under partition (no majority of owners reachable) a `cp`
  // keyspace's command is refused here, an `ap` one's read served by this
  // node's replica at eventual: nullopt, or the refusal to answer with.
  std::optional<std::string> place_group_read(const server::Session* session,
                                              const meta::Keyspace& keyspace, uint32_t shard,
                                              const std::vector<NodeId>& owners, GroupId group,
                                              bool read_only, const ReplicaGroups& groups,
                                              ReadPolicy* policy);
  // A member refused `call` as a stale route: on the router pool, once this
  // node's map is newer than the call's, sends it again to its group's
  // members then, or answers TRYAGAIN (it did not run) when its keys belong
  // to another group now, or to a keyspace being created or dropped.
  void reroute_group_call(const std::shared_ptr<GroupCall>& call);
  // LOCATE's reply; a replicated key's replicas as `leader_view` reports
  // them (the group's leader's `__replicas status`), or as this node sees
  // them when null.
  void write_locate(std::string_view key, resp::Writer& out, const GroupView* leader_view) const;
  void on_group_reply(const std::shared_ptr<GroupCall>& call, NodeId target, const Status& status,
                      std::string reply, NodeId hint);
  std::shared_ptr<ReplicaGroups> groups() const;
  // FLUSHALL/FLUSHDB with consensus keyspaces: every group erases its records
  // through its log (blocking); this node erases its single-copy keys.
  Status flush_groups(const RoutingTable& table);
  Status flush_unreplicated(const RoutingTable& table);
  // Owner side: a routed command for one of this node's groups.
  // `source`: the connection it came on (names a router's pipelines).
  void on_group_frame(uint64_t source, net::ForwardFrame frame, const Respond& respond);
  // Releases a client's watches on another node when the client unwatches
  // (server::TransactionState::release_remote); outlives the coordinator in
  // the sessions' callbacks, which then do nothing.
  struct Unwatcher {
    std::mutex mu;
    Coordinator* coordinator = nullptr;
    void release(NodeId owner, uint64_t watcher);
  };
  std::shared_ptr<Unwatcher> unwatcher_;

  node::ClusterNode& node_;
  server::Service& service_;
  server::ServerContext& ctx_;
  CoordinatorOptions options_;
  // Keyspaces being created, by name: the epoch that began the creation (its
  // shards' config_epoch: a creation of the same name begun again is another)
  // and when this node first saw it (watch_creations).
  struct SeenCreation {
    uint64_t began = 0;
    std::chrono::steady_clock::time_point seen;
  };
  std::mutex creations_mu_;
  std::condition_variable creations_cv_;
  std::map<std::string, SeenCreation> creations_;
  bool creations_stop_ = false;
  std::thread creations_watch_;
  Forwarder forwarder_;
  std::unique_ptr<net::ForwardClient> forward_client_;
  std::unique_ptr<TrackingRelay> tracking_relay_;
  std::unique_ptr<Mover> mover_;
  server::ScanCursors cursors_;

  mutable std::mutex mu_;
  std::condition_variable table_changed_;
  std::shared_ptr<const RoutingTable> table_;
  uint64_t subscription_ = 0;

  std::mutex stats_mu_;
  LocalStats stats_;
  std::chrono::steady_clock::time_point stats_at_{};
  uint64_t stats_commands_ = 0;

  // One thread for the mover's control work (its verbs, and thawing when a
  // map arrives): never queued behind routed commands, which may be waiting
  // at a frozen gate that only this work can open.
  JobQueue control_{1};
  // Commands other nodes routed here.
  std::unique_ptr<JobQueue> workers_;
  std::unique_ptr<JobQueue> stream_workers_;
  // Owner side: streams with frames queued or running, by (connection,
  // stream), and streams that refused a stale route (kept a while, so that
  // their later frames are refused too).
  struct OwnerStream {
    std::deque<std::pair<net::ForwardFrame, Respond>> queue;
    bool running = false;
    bool refused = false;
    std::chrono::steady_clock::time_point refused_at{};
  };
  std::mutex streams_mu_;
  std::map<std::pair<uint64_t, uint64_t>, OwnerStream> streams_;
  std::chrono::steady_clock::time_point streams_swept_{};
  // Router side: the next stream id, and re-routes waiting their turn per stream.
  std::atomic<uint64_t> next_stream_{0};
  std::mutex reroutes_mu_;
  std::map<uint64_t, std::deque<std::function<void(bool run)>>> reroutes_;
  // Client commands this node finishes off its I/O threads (see Threading).
  std::unique_ptr<JobQueue> router_jobs_;
  // This node's replica groups (null without replica_groups options). Shared
  // so that a router job finishing a call keeps it alive through shutdown.
  mutable std::mutex groups_mu_;
  std::shared_ptr<ReplicaGroups> groups_;
  std::atomic<bool> stopping_{false};
  // Blocking commands: the router's calls by client id; the owner's waiters
  // by token (their sessions' ids), and tokens unblocked before their
  // command arrived (the two frames may run on different workers).
  std::mutex blocking_mu_;
  std::unordered_map<uint64_t, std::shared_ptr<BlockingCall>> blocking_calls_;
  std::unordered_map<std::string, uint64_t> routed_waiters_;
  std::unordered_map<std::string, bool> unblocked_early_;  // token -> with ERROR
  std::deque<std::string> unblocked_early_order_;
  std::atomic<uint64_t> next_blocking_{0};
  // Partition modes (INFO replication): commands refused because this node
  // reached no majority of their group (cp, and writes under ap), and reads
  // served at eventual instead (ap).
  std::atomic<uint64_t> partition_refused_{0};
  std::atomic<uint64_t> partition_degraded_reads_{0};
  // INFO stats' statekv_forwarded_commands (see info_stats).
  std::atomic<uint64_t> forwarded_commands_{0};
};

}  // namespace statekv::coord
