// The command table's vocabulary: what a command is (CommandSpec), what a
// handler sees (CommandContext), and the state every handler shares
// (ServiceState).
//
// One CommandSpec per command is the single source for dispatch (arity, flags,
// auth), for COMMAND INFO (flags, key positions) and for COMMAND DOCS (summary,
// since, group, complexity, arguments). Handlers run on the calling I/O thread;
// whatever they share goes through ServiceState, whose members are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "resp/writer.h"
#include "server/acl.h"
#include "server/blocking.h"
#include "server/context.h"
#include "server/proposer.h"
#include "server/scan_cursors.h"
#include "server/store.h"
#include "server/tracking_table.h"
#include "server/transaction.h"

namespace statekv::server {

enum CommandFlag : uint32_t {
  kWrite = 1u << 0,
  kReadonly = 1u << 1,
  kFast = 1u << 2,
  kNoAuth = 1u << 3,  // allowed before AUTH when requirepass is set
  kAdmin = 1u << 4,
  kLoading = 1u << 5,  // Redis's "loading": allowed while loading
  kStale = 1u << 6,    // Redis's "stale"
  kDenyOom = 1u << 7,
  kNoscript = 1u << 8,
  kSentinel = 1u << 9,
  kPubsub = 1u << 10,       // Redis's "pubsub"
  kAllowBusy = 1u << 11,    // Redis's "allow_busy"
  kSkipSlowlog = 1u << 12,  // Redis's "skip_slowlog" (EXEC: its commands are logged, not it)
  kBlocking = 1u << 13,     // Redis's "blocking": may block the client (server/blocking.h)
  kNoMulti = 1u << 14,      // Redis's "no_multi": refused inside MULTI (SHUTDOWN)
};

struct CommandContext;
using Handler = void (*)(CommandContext&);

struct CommandSpec {
  CommandSpec(std::string_view name_, int arity_, uint32_t flags_, int first_key_, int last_key_,
              int key_step_, std::string_view group_, std::string_view summary_,
              std::string_view since_, std::string_view complexity_, std::string_view args_,
              Handler handler_)
      : name(name_),
        arity(arity_),
        flags(flags_),
        first_key(first_key_),
        last_key(last_key_),
        key_step(key_step_),
        group(group_),
        summary(summary_),
        since(since_),
        complexity(complexity_),
        args(args_),
        handler(handler_) {}

  std::string_view name;  // lowercase; subcommands: the subcommand only ("get")
  int arity = 0;          // Redis's convention: N exact, -N at least N (counting the name)
  uint32_t flags = 0;
  int first_key = 0;  // 0: no keys
  int last_key = 0;   // -1: the last argument
  int key_step = 0;
  std::string_view group;  // COMMAND DOCS group: string, generic, connection, server
  std::string_view summary;
  std::string_view since;
  std::string_view complexity;
  // Arguments in a small grammar (see command_docs.h), e.g. "key:key [NX | XX]".
  std::string_view args;
  Handler handler = nullptr;
  std::vector<CommandSpec> subcommands;  // non-empty: a container (CLIENT, CONFIG, ...)
  // COMMAND INFO's tips, space-separated ("nondeterministic_output_order").
  std::string_view tips;
  // Nonzero: argv[numkeys_index] is a count N and the N arguments after it are
  // keys too (Redis's movablekeys: SINTERCARD, ZUNION, ZUNIONSTORE...), beside
  // the first_key..last_key ones.
  int numkeys_index = 0;
};

class CommandTable;

// Where spec's keys are in argv: first_key..last_key, then the numkeys_index
// ones. A malformed or too large numkeys names no key there (the command's
// own handler refuses it).
std::vector<size_t> key_positions(const CommandSpec& spec, std::span<const std::string_view> argv);

// State shared by all handlers (and the active-expiry thread).
struct ServiceState {
  ServiceState(ServerContext& context, const CommandTable& commands);

  ServerContext& ctx;
  const CommandTable& table;
  Store store;
  // Commits handlers' effects (server/proposer.h): the store's replica group.
  std::unique_ptr<Proposer> proposer;
  ScanCursors cursors;
  // Runs one more command for a session, as the network would (lookup, auth,
  // routing, the handler): WITH runs the command it wraps through it.
  std::function<storage::Sequence(Session&, std::span<const std::string_view>, resp::Writer&)>
      dispatch;

  // Cached config values read on hot paths; refreshed by refresh_config() after
  // CONFIG SET (the only way they change at run time).
  std::atomic<uint64_t> proto_max_bulk_len{512ull * 1024 * 1024};
  void refresh_config();

  // The users (server/acl.h). On a standalone server they are this
  // server's own and requirepass is the default user's password; on a
  // cluster node (ctx.acl_store set) they are the cluster's, installed as the
  // metadata service applies them, and every change goes through it.
  Acl acl;
  // Whether the default user needs a password now (Redis's authRequired for
  // a client that has not authenticated).
  bool auth_required() const;
  // Brings session's cached user up to date with acl (cheap when nothing
  // changed: one atomic load).
  void refresh_user(Session& session) const;
  // Applies `change` to the users: through the cluster's metadata service
  // (then waits, up to a few seconds, until this node installed the result)
  // or to this server's own. The change sees every user by name and may add,
  // alter or remove them; its error is replied as is.
  using UsersChange = std::function<Status(std::map<std::string, AclUser>& users)>;
  Status change_users(const UsersChange& change);
  // The local requirepass became `password` (standalone: the default user's
  // password, as Redis's requirepass).
  void set_local_requirepass(const std::string& password);
  // At start: the default user of requirepass (on a cluster node, until the
  // cluster's users arrive).
  void install_initial_users();

  // CONFIG RESETSTAT: ServerStats counters cannot be reset, so INFO reports
  // them relative to the values captured here.
  struct Baseline {
    uint64_t commands = 0, connections_received = 0, rejected_connections = 0, net_input_bytes = 0,
             net_output_bytes = 0, keyspace_hits = 0, keyspace_misses = 0, expired_keys = 0,
             protocol_errors = 0;
  };
  void reset_stats();
  uint64_t stat(std::atomic<uint64_t> ServerStats::Slot::*field) const;

  // CLIENT TRACKING (docs/cache.md): who may hold which keys, and how to reach
  // each tracking client (its Session::push and protocol, captured when it
  // turned tracking on). tracking_clients is 0 when nobody tracks, so writes
  // skip the table's lock.
  TrackingTable tracking;
  // Local tracking clients plus peer nodes tracking here.
  std::atomic<uint64_t> tracking_clients{0};
  void tracking_on(const Session& session);
  void tracking_off(uint64_t client);
  // A peer node tracks keys of this node (TrackingTable::kPeerBit | node).
  void tracking_peer(uint64_t node, bool on, bool bcast);
  // A tracked read routed here from node: registers it (default mode) unless
  // it is a peer already (a BCAST peer stays one).
  void tracking_peer_reads(uint64_t node);
  // Sends each invalidation to its target: RESP3 `invalidate` push, or for a
  // RESP2 REDIRECT target in pub/sub mode a message on __redis__:invalidate,
  // or to a peer node through the TrackingRelay. A tracking client whose
  // connection is gone stops tracking; clients whose REDIRECT target is gone
  // get `tracking-redir-broken` (RESP3). writer: the session whose write it
  // was (a routed one names the client on the node it came from, for NOLOOP).
  void deliver(std::vector<Invalidation> invalidations, const Session* writer = nullptr);
  // The same, the writer named by where it is connected: a message for peer
  // node `writer_node` names `writer_client` as the writer there.
  void deliver(std::vector<Invalidation> invalidations, uint64_t writer_node,
               uint64_t writer_client);
  // Clients whose REDIRECT target went away (CLIENT TRACKINGINFO's broken_redirect).
  bool redirect_broken(uint64_t client) const;

  // WATCH (server/transaction.h): who watches which keys; ids handed out by
  // next_watcher, one per client state.
  WatchTable watches;
  // Starts at a value drawn from the run id: watcher ids stay unique across
  // the nodes of a cluster (a router watches keys on their owner).
  std::atomic<uint64_t> next_watcher;
  // Every commit of writes ends here, with the keys' stripe locks held: the
  // watches of those keys break and tracking clients are told (client: the
  // writer, for NOLOOP; 0 for expiry). tell_trackers = false: the proposer
  // applies the effect later and tells them then (Proposer::applies_now).
  void committed(uint64_t client, std::span<const std::string_view> keys,
                 const Session* writer = nullptr, bool tell_trackers = true);
  // Before a flush is committed: breaks the watches of keys that exist.
  void flushing();

  // The clients blocked in BLPOP and the like (server/blocking.h).
  BlockingTable blocking;

 private:
  struct Pusher {
    std::function<bool(std::string)> push;
    int resp = 3;
  };
  // The connection of client id: its pusher from the tracking table's
  // clients, or found among all clients (a REDIRECT target), with whether it
  // is in pub/sub mode. Empty push when it is gone.
  Pusher find_client(uint64_t id, bool* pubsub);
  mutable std::mutex pushers_mu_;
  std::unordered_map<uint64_t, Pusher> pushers_;
  std::unordered_set<uint64_t> peers_;
  std::unordered_set<uint64_t> broken_redirects_;
  mutable std::mutex mu_;
  std::string requirepass_;  // the last requirepass applied to the default user
  std::mutex users_mu_;      // one change of this server's own users at a time
  Baseline baseline_;
};

// What a handler gets for one request.
struct CommandContext {
  ServiceState& state;
  Session& session;
  std::span<const std::string_view> argv;
  resp::Writer& out;
  const CommandSpec& spec;
  std::string_view fullname;  // "get", "client|list": for error texts
  int64_t now_ms;             // one clock reading per command, like Redis
  storage::Sequence seq = 0;  // the highest commit ticket this command waits on
  // Set while the command runs inside EXEC: its effects are staged there and
  // its reads see what the transaction staged (server/transaction.h).
  Transaction* txn = nullptr;

  Store& store() { return state.store; }
  ServerStats::Slot& stats() { return state.ctx.stats->local(); }

  // Records s as needing durability before the reply is sent.
  void note(storage::Sequence s) {
    if (s > seq) seq = s;
  }
  // Replies with the error of a failed engine call. Always returns false so
  // handlers can write `if (!ok(r)) return;`.
  template <typename T>
  bool ok(const Result<T>& r) {
    if (r.ok()) return true;
    fail(r.status());
    return false;
  }
  bool ok(const Status& s) {
    if (s.ok()) return true;
    fail(s);
    return false;
  }
  void fail(const Status& s);

  // ---- reads: against applied state ----
  // Lock-free read of key (GET, STRLEN, EXISTS...). A record found expired is
  // erased through the group first (only the writer expires keys), then reads
  // as absent. Errors are replied; nullopt then.
  std::optional<bool> read(std::string_view key, std::string* buf, RecordView* rec);
  // The same with key's stripe lock held by the caller; *meta is what the key
  // holds after any expired record was erased (what a write of it replaces).
  std::optional<bool> read_locked(std::string_view key, std::string* buf, RecordView* rec,
                                  Store::Meta* meta);

  // ---- effects: proposed to the keys' group; the reply waits on the ticket ----
  // Each replies with the error and returns false when the proposal fails.
  // The caller holds the stripe lock of every key named.
  bool put(std::string_view key, const Store::Meta& old, std::string_view value, int64_t expire_ms,
           ValueType type = ValueType::kString) {
    Store::Write w{key, old, false, value, expire_ms, type};
    return commit(std::span<const Store::Write>(&w, 1));
  }
  bool erase(std::string_view key, const Store::Meta& old) {
    Store::Write w{key, old, true, {}, 0};
    return commit(std::span<const Store::Write>(&w, 1));
  }
  // Several keys' writes as one atomic effect; each key at most once.
  bool commit(std::span<const Store::Write> writes);
  // Every key removed (FLUSHALL/FLUSHDB).
  bool commit_clear();

  // DBSIZE: the store's keys, plus what the running transaction staged.
  uint64_t key_count();

  void hit() { bump(stats().keyspace_hits); }
  void miss() { bump(stats().keyspace_misses); }
  // Counts one key lookup for INFO's keyspace_hits / keyspace_misses.
  void count_lookup(bool found) { found ? hit() : miss(); }
};

// Shared reply texts (Redis 7.0 wording).
inline constexpr std::string_view kSyntaxError = "ERR syntax error";
inline constexpr std::string_view kNotInteger = "ERR value is not an integer or out of range";
inline constexpr std::string_view kNotFloat = "ERR value is not a valid float";
inline constexpr std::string_view kOverflow = "ERR increment or decrement would overflow";
inline constexpr std::string_view kWrongType =
    "WRONGTYPE Operation against a key holding the wrong kind of value";

// Per-thread scratch buffer for engine reads (values copied out of the engine).
std::string& read_buffer();

// The Store::Writes a command builds for its commit, in a vector this thread's
// commands reuse (no allocation per command once warm). A command that runs
// while another one holds it (none does: a commit runs no command) gets a
// vector of its own. Empty when constructed.
class ScratchWrites {
 public:
  ScratchWrites();
  ~ScratchWrites();
  ScratchWrites(const ScratchWrites&) = delete;
  ScratchWrites& operator=(const ScratchWrites&) = delete;
  std::vector<Store::Write>& get() { return *v_; }

 private:
  std::vector<Store::Write> own_;
  std::vector<Store::Write>* v_;
  bool borrowed_ = false;
};

// One key locked for a read-modify-write, with what it holds now.
struct LockedRead {
  Store::Locked guard;
  RecordView rec;    // views into read_buffer(): valid until the next read on this thread
  Store::Meta meta;  // what the key held, for Store::Write::old
  bool live = false;
};
// Locks key's stripe and reads it (CommandContext::read_locked). On an engine
// error it replies with the error and returns nullopt.
std::optional<LockedRead> lock_and_read(CommandContext& c, std::string_view key);

// A tracking client read the keys of a read-only command: registers them
// with the tracking table (CLIENT TRACKING default mode).
void track_read(CommandContext& c);
// One line of CLIENT LIST / CLIENT INFO for session (also ACL LOG's client-info).
std::string client_info_line(const Session& session);

// ASCII case-insensitive equality (Redis's strcasecmp on option names).
bool iequals(std::string_view a, std::string_view b);

// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT] with Redis 7.0's replies, for
// the process ctx.shutdown stops (server_commands.cc): an error reply, or none
// and the connection marked to close once the stop has begun. The store's
// command table and the cache tier (cache/cache_service.cc) both answer it so.
void shutdown_command(ServerContext& ctx, Session& session, std::span<const std::string_view> argv,
                      resp::Writer& out);

// Each command family registers its specs.
void add_string_commands(std::vector<CommandSpec>& out);
void add_key_commands(std::vector<CommandSpec>& out);
void add_connection_commands(std::vector<CommandSpec>& out);
void add_server_commands(std::vector<CommandSpec>& out);
void add_cluster_commands(std::vector<CommandSpec>& out);
void add_pubsub_commands(std::vector<CommandSpec>& out);
void add_consistency_commands(std::vector<CommandSpec>& out);
void add_hash_commands(std::vector<CommandSpec>& out);
void add_set_commands(std::vector<CommandSpec>& out);
void add_zset_commands(std::vector<CommandSpec>& out);
void add_zset_store_commands(std::vector<CommandSpec>& out);
void add_list_commands(std::vector<CommandSpec>& out);
void add_transaction_commands(std::vector<CommandSpec>& out);
void add_acl_commands(std::vector<CommandSpec>& out);
void add_blocking_commands(std::vector<CommandSpec>& out);

// Serves the blocked clients whose keys this thread's commits filled
// (BlockingTable::note_written), each with its own pop through the proposer.
// Called when the outermost command on the thread returned, no lock held.
void serve_blocked(ServiceState& state);
// CLIENT UNBLOCK client-id [TIMEOUT | ERROR].
void cmd_client_unblock(CommandContext& c);

}  // namespace statekv::server
