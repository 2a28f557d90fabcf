// The Service the network layer calls: dispatch through the CommandTable, the
// checks Redis makes before running a command (unknown command, arity, auth),
// and the active-expiry thread.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "server/command.h"
#include "core/thread_name.h"
#include "server/command_table.h"
#include "server/context.h"

namespace statekv::server {

// ---- shared helpers declared in command.h ----

std::string& read_buffer() {
  thread_local std::string buf;
  return buf;
}

namespace {
thread_local std::vector<Store::Write> t_scratch_writes;
thread_local bool t_scratch_writes_busy = false;
}  // namespace

ScratchWrites::ScratchWrites() : v_(&own_) {
  if (t_scratch_writes_busy) return;
  t_scratch_writes_busy = true;
  borrowed_ = true;
  v_ = &t_scratch_writes;
  v_->clear();
}

ScratchWrites::~ScratchWrites() {
  if (!borrowed_) return;
  v_->clear();
  // A large command's writes are not kept for the thread's life.
  constexpr size_t kKeep = 256;
  if (v_->capacity() > kKeep) std::vector<Store::Write>().swap(*v_);
  t_scratch_writes_busy = false;
}

std::optional<LockedRead> lock_and_read(CommandContext& c, std::string_view key) {
  LockedRead r{c.store().lock(key), {}, {}, false};
  auto live = c.read_locked(key, &read_buffer(), &r.rec, &r.meta);
  if (!live) return std::nullopt;
  r.live = *live;
  return r;
}

std::optional<bool> CommandContext::read_locked(std::string_view key, std::string* buf,
                                                RecordView* rec, Store::Meta* meta) {
  if (txn != nullptr) {
    // What an earlier command of the transaction staged wins over the store.
    // *meta then only needs to say what the key holds: the transaction reads
    // what the store holds when it builds its writes.
    if (auto staged = txn->read(key, now_ms, buf, rec)) {
      *meta = *staged ? Store::Meta{true, rec->expire_ms} : Store::Meta{};
      return *staged;
    }
  }
  auto live = store().get_locked(key, now_ms, buf, rec, meta);
  if (!ok(live)) return std::nullopt;
  if (*live || !meta->exists) return *live;
  // Expired: its erase is this command's first effect, as Redis deletes an
  // expired key it touches before running the command.
  if (!erase(key, *meta)) return std::nullopt;
  bump(stats().expired_keys);
  *meta = Store::Meta{};
  return false;
}

std::optional<bool> CommandContext::read(std::string_view key, std::string* buf, RecordView* rec) {
  if (txn != nullptr) {
    // The EXEC holds the key's stripe lock already.
    Store::Meta meta;
    return read_locked(key, buf, rec, &meta);
  }
  bool expired = false;
  auto live = store().get(key, now_ms, buf, rec, &expired);
  if (!ok(live)) return std::nullopt;
  if (!expired) return *live;
  // Erase under the lock; a writer may have replaced the record since.
  auto guard = store().lock(key);
  Store::Meta meta;
  return read_locked(key, buf, rec, &meta);
}

bool CommandContext::commit(std::span<const Store::Write> writes) {
  if (txn != nullptr) {
    txn->stage(writes);  // proposed with the whole transaction at EXEC's end
    return true;
  }
  Proposer& proposer = session.proposer != nullptr ? *session.proposer : *state.proposer;
  auto ticket = proposer.propose(now_ms, writes);
  if (!ok(ticket)) return false;
  note(ticket->durable_at);
  // Invalidation and WATCH hooks here, where every effect is committed, not
  // in handlers. A replica group's effect is not applied yet: its members
  // tell trackers when they apply it (Service::tracking_applied).
  const bool tell_trackers = proposer.applies_now();
  if (!writes.empty() &&
      ((tell_trackers && state.tracking_clients.load(std::memory_order_relaxed) > 0) ||
       !state.watches.empty() || state.blocking.any())) {
    std::vector<std::string_view> keys;
    keys.reserve(writes.size());
    for (const Store::Write& w : writes) keys.push_back(w.key);
    // A collection's element writes name its key too: once is enough.
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    state.committed(session.id, keys, &session, tell_trackers);
  }
  return true;
}

bool CommandContext::commit_clear() {
  if (txn != nullptr) {
    txn->stage_clear();
    return true;
  }
  state.flushing();
  Proposer& proposer = session.proposer != nullptr ? *session.proposer : *state.proposer;
  auto ticket = proposer.propose_clear(now_ms);
  if (!ok(ticket)) return false;
  note(ticket->durable_at);
  if (state.tracking_clients.load(std::memory_order_relaxed) > 0) {
    state.deliver(state.tracking.on_flush(session.id), &session);
  }
  return true;
}

uint64_t CommandContext::key_count() {
  const uint64_t keys = store().key_count();
  if (txn == nullptr) return keys;
  const int64_t delta = txn->key_delta(keys, [&](std::string_view key) {
    RecordView rec;
    Store::Meta meta;
    auto found = store().get_locked(key, 0, &read_buffer(), &rec, &meta);
    return found.ok() && meta.exists;
  });
  const int64_t total = static_cast<int64_t>(keys) + delta;
  return total < 0 ? 0 : static_cast<uint64_t>(total);
}

void track_read(CommandContext& c) {
  for (size_t i : key_positions(c.spec, c.argv)) c.state.tracking.on_read(c.session.id, c.argv[i]);
  c.state.deliver(c.state.tracking.enforce_limit());
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

void CommandContext::fail(const Status& s) {
  out.error("ERR " + s.to_string());
}

ServiceState::ServiceState(ServerContext& context, const CommandTable& commands)
    : ctx(context),
      table(commands),
      store(*context.engine, context.stats, context.generation_space, context.key_scopes),
      proposer(context.proposers ? context.proposers(store) : make_local_group(store)),
      acl(commands),
      // tracking-table-max-keys comes from the config (refresh_config); the
      // random source (which keys to drop over it) is seeded from the run id.
      tracking(1000000, Random(std::hash<std::string>{}(context.run_id))),
      next_watcher(((std::hash<std::string>{}(context.run_id) & 0xffffff) << 40) | 1) {
  install_initial_users();
  refresh_config();
}

void ServiceState::committed(uint64_t client, std::span<const std::string_view> keys,
                             const Session* writer, bool tell_trackers) {
  if (!watches.empty()) watches.on_write(keys);
  blocking.note_written(keys);
  if (tell_trackers && tracking_clients.load(std::memory_order_relaxed) > 0) {
    deliver(tracking.on_write(client, keys), writer);
  }
}

void ServiceState::flushing() {
  if (watches.empty()) return;
  std::string buf;
  watches.on_flush([&](std::string_view key) {
    // Physically present (even expired): a watch taken while it was live
    // counts its flush as a change, as in Redis.
    RecordView rec;
    bool expired = false;
    auto live = store.get(key, unix_time_ms(), &buf, &rec, &expired);
    return !live.ok() || *live || expired;
  });
}

void ServiceState::tracking_on(const Session& session) {
  std::lock_guard lock(pushers_mu_);
  broken_redirects_.erase(session.id);
  auto [it, fresh] = pushers_.insert_or_assign(session.id, Pusher{session.push, session.resp});
  if (fresh) tracking_clients.fetch_add(1, std::memory_order_relaxed);
}

void ServiceState::tracking_off(uint64_t client) {
  tracking.disable(client);
  std::lock_guard lock(pushers_mu_);
  broken_redirects_.erase(client);
  if (pushers_.erase(client) > 0) tracking_clients.fetch_sub(1, std::memory_order_relaxed);
}

void ServiceState::tracking_peer(uint64_t node, bool on, bool bcast) {
  const uint64_t id = TrackingTable::kPeerBit | node;
  if (on) {
    // A peer in default mode keeps what its routed reads recorded; in BCAST
    // mode (no prefix) it is sent every write, its node filters.
    auto current = tracking.mode(id);
    if (!current || current->bcast != bcast)
      (void)tracking.enable(id, TrackingMode{.bcast = bcast, .prefixes = {}});
    std::lock_guard lock(pushers_mu_);
    if (peers_.insert(id).second) tracking_clients.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  tracking.disable(id);
  std::lock_guard lock(pushers_mu_);
  if (peers_.erase(id) > 0) tracking_clients.fetch_sub(1, std::memory_order_relaxed);
}

void ServiceState::tracking_peer_reads(uint64_t node) {
  const uint64_t id = TrackingTable::kPeerBit | node;
  {
    std::lock_guard lock(pushers_mu_);
    if (peers_.count(id) > 0) return;
  }
  tracking_peer(node, true, false);
}

bool ServiceState::redirect_broken(uint64_t client) const {
  std::lock_guard lock(pushers_mu_);
  return broken_redirects_.count(client) > 0;
}

ServiceState::Pusher ServiceState::find_client(uint64_t id, bool* pubsub) {
  *pubsub = false;
  {
    std::lock_guard lock(pushers_mu_);
    auto it = pushers_.find(id);
    if (it != pushers_.end()) return it->second;
  }
  Pusher found;
  if (ctx.clients == nullptr) return found;
  ctx.clients->for_each([&](const Session& s) {
    if (s.id != id || !s.push) return;
    found.push = s.push;
    found.resp = s.resp;
    *pubsub = s.channel_count.load(std::memory_order_relaxed) +
                  s.pattern_count.load(std::memory_order_relaxed) >
              0;
  });
  return found;
}

void ServiceState::deliver(std::vector<Invalidation> invalidations, const Session* writer) {
  deliver(std::move(invalidations), writer != nullptr ? writer->track_origin_node : 0,
          writer != nullptr ? writer->track_origin_client : 0);
}

void ServiceState::deliver(std::vector<Invalidation> invalidations, uint64_t writer_node,
                           uint64_t writer_client) {
  for (Invalidation& inv : invalidations) {
    if (TrackingTable::is_peer(inv.target)) {
      const uint64_t node = inv.target & ~TrackingTable::kPeerBit;
      const uint64_t writer_there = writer_node != 0 && writer_node == node ? writer_client : 0;
      if (ctx.tracking_relay != nullptr) {
        ctx.tracking_relay->send_invalidation(node, writer_there, std::move(inv.keys), inv.flush);
      }
      continue;
    }
    bool pubsub = false;
    Pusher target = find_client(inv.target, &pubsub);
    // Redis writes the flush message's null in the protocol of the tracking
    // client, not of its REDIRECT target ($-1 from a RESP2 tracker).
    int null_resp = target.resp;
    if (inv.flush && !inv.redirected_from.empty()) {
      std::lock_guard lock(pushers_mu_);
      auto it = pushers_.find(inv.redirected_from.front());
      if (it != pushers_.end()) null_resp = it->second.resp;
    }
    const std::string_view null_bytes = null_resp == 3 ? "_\r\n" : "$-1\r\n";
    std::string bytes;
    if (target.push && target.resp == 3) {
      // >2 "invalidate" [keys...], or >2 "invalidate" _ for flush-all.
      resp::Writer w(&bytes, 3);
      w.push(2);
      w.bulk("invalidate");
      if (inv.flush) {
        w.raw(null_bytes);
      } else {
        w.array(inv.keys.size());
        for (const std::string& k : inv.keys) w.bulk(k);
      }
    } else if (target.push && pubsub) {
      // A RESP2 REDIRECT target in pub/sub mode: a message on
      // __redis__:invalidate whose payload is the keys (null for flush-all).
      resp::Writer w(&bytes, 2);
      w.array(3);
      w.bulk("message");
      w.bulk("__redis__:invalidate");
      if (inv.flush) {
        w.raw(null_bytes);
      } else {
        w.array(inv.keys.size());
        for (const std::string& k : inv.keys) w.bulk(k);
      }
    } else if (target.push) {
      continue;  // RESP2 and not in pub/sub mode: Redis sends it nothing either
    }
    if (target.push && target.push(std::move(bytes))) continue;
    if (inv.redirected_from.empty()) {
      tracking_off(inv.target);  // the tracking client itself is gone
      continue;
    }
    // The REDIRECT target is gone: each client redirecting to it is told (as
    // Redis does, when a message for it finds no target), and keeps tracking.
    for (uint64_t source : inv.redirected_from) {
      Pusher from;
      {
        std::lock_guard lock(pushers_mu_);
        broken_redirects_.insert(source);
        auto it = pushers_.find(source);
        if (it != pushers_.end()) from = it->second;
      }
      if (!from.push || from.resp != 3) continue;
      std::string broken;
      resp::Writer w(&broken, 3);
      w.push(2);
      w.bulk("tracking-redir-broken");
      w.integer(static_cast<int64_t>(inv.target));
      if (!from.push(std::move(broken))) tracking_off(source);
    }
  }
}

void ServiceState::refresh_config() {
  ServerConfig config = ctx.config->snapshot();
  proto_max_bulk_len.store(config.proto_max_bulk_len, std::memory_order_relaxed);
  if (tracking.max_keys() != config.tracking_table_max_keys) {
    tracking.set_max_keys(config.tracking_table_max_keys);
    deliver(tracking.enforce_limit());  // a lower limit takes effect now
  }
  // A cluster node's requirepass is the cluster's (CONFIG SET changes it
  // through the metadata service, server_commands.cc).
  if (ctx.acl_store == nullptr) set_local_requirepass(config.requirepass);
}

void ServiceState::install_initial_users() {
  const ServerConfig config = ctx.config->snapshot();
  {
    std::lock_guard lock(mu_);
    requirepass_ = config.requirepass;
  }
  const std::string hash =
      config.requirepass.empty() ? std::string() : acl_password_hash(config.requirepass);
  auto snapshot = std::make_shared<AclSnapshot>();
  AclUser def = acl_default_user(hash, acl.commands());
  if (ctx.acl_store != nullptr) {
    // Until the cluster's users arrive, only this node's own --requirepass
    // lets a client in; without one nobody gets past AUTH (service.cc).
    snapshot->known = false;
    def.nopass = false;
  }
  snapshot->users.emplace("default", std::make_shared<const AclUser>(std::move(def)));
  acl.install(std::move(snapshot));
}

void ServiceState::set_local_requirepass(const std::string& password) {
  {
    std::lock_guard lock(mu_);
    if (password == requirepass_) return;
    requirepass_ = password;
  }
  // Redis: requirepass is the default user's password ("resetpass" then
  // ">password", or "nopass" when empty); its other rules stay.
  Status s = change_users([&](std::map<std::string, AclUser>& users) {
    auto it = users.find("default");
    if (it == users.end()) {
      it = users.emplace("default", acl_default_user("", acl.commands())).first;
    }
    Status applied = acl_apply(it->second, "resetpass", acl.commands());
    if (applied.ok()) {
      applied = acl_apply(it->second, password.empty() ? "nopass" : ">" + password, acl.commands());
    }
    return applied;
  });
  if (!s.ok()) spdlog::error("requirepass could not be applied: {}", s.to_string());
}

bool ServiceState::auth_required() const {
  auto snapshot = acl.snapshot();
  const AclUser* def = snapshot->find("default");
  return def == nullptr || !def->enabled || !def->nopass;
}

void ServiceState::refresh_user(Session& session) const {
  const uint64_t generation = acl.generation();
  if (session.acl && session.acl_generation == generation) return;
  session.acl = acl.snapshot();
  session.acl_generation = generation;
  std::string name;
  {
    std::lock_guard lock(session.mu);
    name = session.user;
  }
  session.acl_user = session.acl->find(name);
  session.acl_unrestricted = session.acl_user != nullptr && session.acl_user->unrestricted();
}

Status ServiceState::change_users(const UsersChange& change) {
  auto users_of = [](const AclSnapshot& snapshot) {
    std::map<std::string, AclUser> users;
    for (const auto& [name, user] : snapshot.users) users.emplace(name, *user);
    return users;
  };
  if (ctx.acl_store == nullptr) {
    std::lock_guard lock(users_mu_);
    auto current = acl.snapshot();
    std::map<std::string, AclUser> users = users_of(*current);
    if (Status s = change(users); !s.ok()) return s;
    auto next = std::make_shared<AclSnapshot>();
    next->version = current->version + 1;
    for (auto& [name, user] : users) {
      next->users.emplace(name, std::make_shared<const AclUser>(std::move(user)));
    }
    acl.install(std::move(next));
    return Status::OK();
  }
  // The change may run once per attempt of the read-modify-CAS: it is a pure
  // function of the document it is given.
  auto written = ctx.acl_store->update([&](const AclDocument& doc) -> Result<AclDocument> {
    auto compiled = acl.compile(doc);
    if (!compiled.ok()) return compiled.status();
    std::map<std::string, AclUser> users = users_of(**compiled);
    if (Status s = change(users); !s.ok()) return s;
    AclDocument next;
    next.version = doc.version + 1;
    for (const auto& [name, user] : users) next.users[name] = acl_describe(user, acl.commands());
    return next;
  });
  if (!written.ok()) return written.status();
  // The reply promises that this connection's next command sees the change.
  if (!acl.wait_for_version(*written, std::chrono::seconds(5))) {
    spdlog::warn("users version {} is committed but not yet installed on this node", *written);
  }
  return Status::OK();
}

void ServiceState::reset_stats() {
  const ServerStats& s = *ctx.stats;
  std::lock_guard lock(mu_);
  baseline_.commands = s.sum(&ServerStats::Slot::commands);
  baseline_.connections_received = s.sum(&ServerStats::Slot::connections_received);
  baseline_.rejected_connections = s.sum(&ServerStats::Slot::rejected_connections);
  baseline_.net_input_bytes = s.sum(&ServerStats::Slot::net_input_bytes);
  baseline_.net_output_bytes = s.sum(&ServerStats::Slot::net_output_bytes);
  baseline_.keyspace_hits = s.sum(&ServerStats::Slot::keyspace_hits);
  baseline_.keyspace_misses = s.sum(&ServerStats::Slot::keyspace_misses);
  baseline_.expired_keys = s.sum(&ServerStats::Slot::expired_keys);
  baseline_.protocol_errors = s.sum(&ServerStats::Slot::protocol_errors);
}

uint64_t ServiceState::stat(std::atomic<uint64_t> ServerStats::Slot::*field) const {
  uint64_t total = ctx.stats->sum(field);
  uint64_t base = 0;
  {
    std::lock_guard lock(mu_);
    using S = ServerStats::Slot;
    if (field == &S::commands)
      base = baseline_.commands;
    else if (field == &S::connections_received)
      base = baseline_.connections_received;
    else if (field == &S::rejected_connections)
      base = baseline_.rejected_connections;
    else if (field == &S::net_input_bytes)
      base = baseline_.net_input_bytes;
    else if (field == &S::net_output_bytes)
      base = baseline_.net_output_bytes;
    else if (field == &S::keyspace_hits)
      base = baseline_.keyspace_hits;
    else if (field == &S::keyspace_misses)
      base = baseline_.keyspace_misses;
    else if (field == &S::expired_keys)
      base = baseline_.expired_keys;
    else if (field == &S::protocol_errors)
      base = baseline_.protocol_errors;
  }
  return total >= base ? total - base : 0;
}

namespace {

// Redis replaces CR and LF in error texts with spaces (they would end the reply).
std::string sanitize(std::string text) {
  std::replace_if(
      text.begin(), text.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
  return text;
}

std::string unknown_command(std::span<const std::string_view> argv) {
  std::string args;
  for (size_t i = 1; i < argv.size() && args.size() < 128; ++i) {
    size_t room = 128 - args.size();
    args += '\'';
    args.append(argv[i].substr(0, room));
    args += "' ";
  }
  return sanitize("ERR unknown command '" + std::string(argv[0].substr(0, 128)) +
                  "', with args beginning with: " + args);
}

// What a RESP2 client may run while subscribed (Redis's subscribed context);
// RESP3 clients may run anything.
bool allowed_when_subscribed(std::string_view name) {
  for (std::string_view n :
       {"ping", "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "quit", "reset"}) {
    if (name == n) return true;
  }
  return false;
}

// Redis: a command refused before it could be queued makes EXEC fail.
void abort_transaction(Session& session) {
  if (session.txn && session.txn->queuing) session.txn->aborted = true;
}

// Queues a command of a MULTI and the keys it names (by its spec).
void queue_command(TransactionState& t, const CommandSpec& spec,
                   std::span<const std::string_view> argv) {
  t.queue.emplace_back(argv.begin(), argv.end());
  for (size_t i : key_positions(spec, argv)) t.keys.emplace_back(argv[i]);
}

std::optional<uint64_t> parse_u64(std::string_view s) {
  uint64_t v = 0;
  if (s.empty() || s.size() > 20) return std::nullopt;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(ch - '0');
  }
  return v;
}

// What MULTI queues: all but the commands that control the transaction or
// the connection (Redis's processCommand exceptions).
bool queued_in_multi(std::string_view name) {
  for (std::string_view n : {"exec", "discard", "multi", "watch", "quit", "reset"}) {
    if (name == n) return false;
  }
  return true;
}

class ServiceImpl final : public Service {
 public:
  // Elements of deleted collections freed per expiry cycle (hz cycles a
  // second): 16384 at the default hz 10 frees ~160k elements a second.
  static constexpr size_t kReclaimPerCycle = 16384;

  explicit ServiceImpl(ServerContext& ctx) : state_(ctx, table_) {
    state_.dispatch = [this](Session& session, std::span<const std::string_view> argv,
                             resp::Writer& out) { return dispatch(session, argv, out); };
    Status s = state_.store.recount();
    if (!s.ok()) spdlog::error("counting keys at start failed: {}", s.to_string());
  }
  ~ServiceImpl() override { stop(); }

  storage::Sequence execute(Session& session, std::span<const std::string_view> argv,
                            resp::Writer& out) override {
    if (argv.empty()) return 0;
    const size_t mark = out.buffer()->size();
    // Blocked clients whose keys this command filled are served once it has
    // returned (its locks released, its reply written), as Redis serves them
    // after the command that pushed; not inside a nested execute.
    thread_local int depth = 0;
    struct Outermost {
      ServiceState& state;
      ~Outermost() {
        if (--depth == 0 && BlockingTable::has_ready()) {
          try {
            serve_blocked(state);
          } catch (const std::exception& e) {
            spdlog::error("serving blocked clients failed: {}", e.what());
          }
        }
      }
    } outermost{state_};
    ++depth;
    try {
      return dispatch(session, argv, out);
    } catch (const std::exception& e) {
      // Drop whatever the handler wrote so the client gets one well-formed reply.
      out.buffer()->resize(mark);
      out.error(sanitize(std::string("ERR internal error: ") + e.what()));
      return 0;
    }
  }

  void client_closed(Session& session) override {
    if (session.blocked.load(std::memory_order_relaxed)) {
      // Blocked here, or in a command the router sent to another node.
      if (!state_.blocking.unblock(session.id, BlockingTable::Unblock::kGone) &&
          state_.ctx.router != nullptr) {
        state_.ctx.router->client_closed(session);
      }
    }
  }

  Store* store() override { return &state_.store; }

  Result<KeyPage> key_page(const KeyPageRequest& request) override {
    return scan_key_page(state_.store, request, unix_time_ms());
  }

  void start() override {
    std::lock_guard lock(mu_);
    if (expirer_.joinable()) return;
    stopping_ = false;
    expirer_ = std::thread([this] {
      name_this_thread("expirer");
      expire_loop();
    });
  }

  void stop() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (expirer_.joinable()) expirer_.join();
    state_.blocking.stop();
  }

 private:
  std::shared_ptr<TransactionState> transaction(Session& session) override {
    if (!session.txn) {
      session.txn = std::make_shared<TransactionState>(state_.watches, state_.next_watcher);
    }
    return session.txn;
  }

  // The internal verbs of transactions between nodes (server/transaction.h).
  storage::Sequence internal_verb(Session& session, std::span<const std::string_view> argv,
                                  resp::Writer& out) {
    const auto watcher = argv.size() >= 2 ? parse_u64(argv[1]) : std::nullopt;
    if (!watcher) {
      out.error("ERR malformed " + std::string(argv[0]));
      return 0;
    }
    if (argv[0] == kUnwatchVerb) {
      state_.watches.unwatch(*watcher);
      out.simple("OK");
      return 0;
    }
    auto t = std::make_shared<TransactionState>(state_.watches, state_.next_watcher);
    t->watcher = *watcher;
    session.txn = t;
    if (argv[0] == kWatchVerb) {
      t->keep_watches = true;  // they outlive this routed command
      std::vector<std::string_view> watch(argv.begin() + 1, argv.end());
      watch[0] = "watch";
      return dispatch(session, watch, out);
    }
    // __exec: the commands as the router queued them (and checked them).
    t->watching = *watcher != 0;
    t->queuing = true;
    for (size_t i = 2; i < argv.size();) {
      const auto n = parse_u64(argv[i]);
      if (!n || *n == 0 || *n > argv.size() - i - 1) {
        out.error("ERR malformed " + std::string(argv[0]));
        return 0;
      }
      std::span<const std::string_view> args = argv.subspan(i + 1, *n);
      i += 1 + *n;
      const CommandSpec* spec = table_.find(args[0]);
      const CommandSpec* run = spec;
      if (spec != nullptr && !spec->subcommands.empty() && args.size() >= 2) {
        run = CommandTable::find_sub(*spec, args[1]);
      }
      const int argc = static_cast<int>(args.size());
      if (run == nullptr || (run->arity > 0 && argc != run->arity) || argc < -run->arity) {
        t->aborted = true;
        continue;
      }
      queue_command(*t, *run, args);
    }
    static constexpr std::string_view kExec[] = {"exec"};
    return dispatch(session, kExec, out);
  }

  storage::Sequence dispatch(Session& session, std::span<const std::string_view> argv,
                             resp::Writer& out) {
    if (argv[0].starts_with("__") && !session.defer &&
        (argv[0] == kExecVerb || argv[0] == kWatchVerb || argv[0] == kUnwatchVerb)) {
      return internal_verb(session, argv, out);  // never from a client's connection
    }
    const CommandSpec* spec = table_.find(argv[0]);
    if (spec == nullptr) {
      abort_transaction(session);
      out.error(unknown_command(argv));
      return 0;
    }
    const CommandSpec* run = spec;
    char fullname_buf[160];
    std::string_view fullname = spec->name;
    if (!spec->subcommands.empty() && argv.size() >= 2) {
      run = CommandTable::find_sub(*spec, argv[1]);
      if (run == nullptr) {
        abort_transaction(session);
        std::string upper(spec->name);
        for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        out.error(sanitize("ERR unknown subcommand '" + std::string(argv[1].substr(0, 128)) +
                           "'. Try " + upper + " HELP."));
        return 0;
      }
      size_t n = spec->name.size();
      std::copy(spec->name.begin(), spec->name.end(), fullname_buf);
      fullname_buf[n] = '|';
      std::copy(run->name.begin(), run->name.end(), fullname_buf + n + 1);
      fullname = std::string_view(fullname_buf, n + 1 + run->name.size());
    }
    const int argc = static_cast<int>(argv.size());
    if ((run->arity > 0 && argc != run->arity) || argc < -run->arity) {
      abort_transaction(session);
      out.error("ERR wrong number of arguments for '" + std::string(fullname) + "' command");
      return 0;
    }
    // Routed and internal sessions were checked where the client is: on
    // the node it talks to, with this same cluster-wide state.
    if (!session.internal && session.routed_epoch == 0 &&
        !check_access(session, *run, argv, fullname, out)) {
      abort_transaction(session);
      return 0;
    }
    if (session.resp == 2 && session.subscribed() && !allowed_when_subscribed(run->name)) {
      abort_transaction(session);
      out.error(sanitize("ERR Can't execute '" + std::string(fullname) +
                         "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are "
                         "allowed in this context"));
      return 0;
    }
    if (!session.continued) {
      bump(state_.ctx.stats->local().commands);
      session.commands.fetch_add(1, std::memory_order_relaxed);
      {
        std::lock_guard lock(session.mu);
        session.last_command.assign(fullname);
      }
      prepare_tracking(session, *run, argv, fullname);
    }
    if (session.txn && session.txn->queuing && (run->flags & kNoMulti)) {
      abort_transaction(session);
      out.error("ERR Command not allowed inside a transaction");
      return 0;
    }
    if (session.txn && session.txn->queuing && queued_in_multi(spec->name)) {
      if (state_.ctx.router != nullptr && !session.internal && session.routed_epoch == 0) {
        if (auto refused = state_.ctx.router->refuse_in_transaction(*run)) {
          abort_transaction(session);
          out.error(*refused);
          return 0;
        }
      }
      // MULTI: queued as sent, run by EXEC (server/transaction.h).
      queue_command(*session.txn, *run, argv);
      out.simple("QUEUED");
      return 0;
    }
    if (state_.ctx.router != nullptr) {
      storage::Sequence routed_seq = 0;
      if (state_.ctx.router->route(session, *run, argv, out, &routed_seq) ==
          Router::Decision::kHandled) {
        return routed_seq;
      }
    }
    CommandContext c{state_, session, argv, out, *run, fullname, unix_time_ms()};
    if (state_.ctx.router == nullptr) {
      run->handler(c);
      return c.seq;
    }
    struct Finished {
      Router* router;
      Session& session;
      ~Finished() { router->finished(session); }
    } finished{state_.ctx.router, session};
    run->handler(c);
    return c.seq;
  }

  // Redis's checks before a command runs: authentication (the default user
  // needs a password and this client has not given one) and then the ACL of
  // the client's user: the command, its keys, its channels. False when the
  // command is refused (the reply written, the refusal in ACL LOG).
  bool check_access(Session& session, const CommandSpec& run,
                    std::span<const std::string_view> argv, std::string_view fullname,
                    resp::Writer& out) {
    state_.refresh_user(session);
    const AclSnapshot& users = *session.acl;
    if (!session.authenticated) {
      const AclUser* def = users.find("default");
      const bool open = def != nullptr && def->enabled && def->nopass;
      if (!open) {
        if (!users.known && def != nullptr && def->passwords.empty()) {
          // A cluster node that has not learned the cluster's users (and
          // has no --requirepass of its own): it cannot tell who may do
          // what, so it only answers PING, CLUSTER INFO and the commands
          // allowed before AUTH (AUTH itself then says why it cannot succeed).
          // CLUSTER INFO too: it says why this node does not serve yet
          // (status only, no data).
          if (run.name == "ping" || fullname == "cluster|info" || (run.flags & kNoAuth)) {
            return true;
          }
          out.error(
              "CLUSTERDOWN this node has not learned the cluster's users from the metadata "
              "service yet; try again in a moment");
          return false;
        }
        if (run.flags & kNoAuth) return true;
        out.error("NOAUTH Authentication required.");
        return false;
      }
    }
    if (session.acl_unrestricted || (run.flags & kNoAuth)) return true;
    if (session.acl_user == nullptr) {
      // The user was deleted (ACL DELUSER): Redis disconnects its clients.
      std::string name;
      {
        std::lock_guard lock(session.mu);
        name = session.user;
      }
      out.error("ERR the user '" + name + "' of this connection was deleted; reconnect");
      session.close_after_reply = true;
      return false;
    }
    const AclVerdict v = acl_check(*session.acl_user, state_.acl.commands().index(&run), run, argv);
    if (v.kind == AclVerdict::kOk) return true;
    AclLogEntry entry;
    entry.context = "toplevel";
    entry.username = session.acl_user->name;
    entry.client_info = client_info_line(session);
    if (v.kind == AclVerdict::kCommand) {
      entry.reason = "command";
      entry.object = std::string(fullname);
      out.error(sanitize("NOPERM this user has no permissions to run the '" +
                         std::string(fullname) + "' command"));
    } else if (v.kind == AclVerdict::kKey) {
      entry.reason = "key";
      entry.object = std::string(argv[v.arg]);
      out.error("NOPERM this user has no permissions to access one of the keys used as arguments");
    } else {
      entry.reason = "channel";
      entry.object = std::string(argv[v.arg]);
      out.error(
          "NOPERM this user has no permissions to access one of the channels used as arguments");
    }
    state_.acl.log(std::move(entry), unix_time_ms());
    return false;
  }

  std::optional<bool> auth_required() const override { return state_.auth_required(); }
  Acl* acl() override { return &state_.acl; }

  // CLIENT TRACKING: a read-only command of a tracking client (or routed here
  // from one on another node) records its keys before it runs, so that a
  // write committing while it runs is reported too (recorded after, such a
  // write would find nobody to tell, and the client would cache the old
  // value for good). CLIENT CACHING applies to one command.
  void prepare_tracking(Session& session, const CommandSpec& run,
                        std::span<const std::string_view> argv, std::string_view fullname) {
    const bool keyed_read = (run.flags & kReadonly) && (run.first_key > 0 || run.numkeys_index > 0);
    if (session.track_origin_read && keyed_read) {
      state_.tracking_peer_reads(session.track_origin_node);
      record_keys(TrackingTable::kPeerBit | session.track_origin_node, run, argv);
      return;
    }
    session.track_keys = false;
    session.track_write = session.tracking && (run.flags & kWrite);
    if (!session.tracking) return;
    // tracking-table-max-keys is applied before the next command of a tracking
    // client runs (and by the expiry loop), as Redis does: never between a
    // read's recording and its reply, where the invalidation would overtake
    // the value it invalidates.
    state_.deliver(state_.tracking.enforce_limit());
    if (fullname != "client|caching") {
      if (session.caching_used) session.caching = -1;
      session.caching_used = session.caching != -1;
    }
    if (keyed_read && !session.tracking_bcast) {
      session.track_keys = session.tracking_optin    ? session.caching == 1
                           : session.tracking_optout ? session.caching != 0
                                                     : true;
    }
    if (session.track_keys) record_keys(session.id, run, argv);
  }

  void record_keys(uint64_t client, const CommandSpec& spec,
                   std::span<const std::string_view> argv) {
    for (size_t i : key_positions(spec, argv)) state_.tracking.on_read(client, argv[i]);
  }

 public:
  void tracking_peer(uint64_t node, bool on, bool bcast) override {
    state_.tracking_peer(node, on, bcast);
  }
  void tracking_apply_remote(uint64_t writer, std::span<const std::string> keys,
                             bool flush) override {
    if (flush) {
      state_.deliver(state_.tracking.on_flush(writer, /*local_only=*/true));
      return;
    }
    std::vector<std::string_view> views(keys.begin(), keys.end());
    state_.deliver(state_.tracking.on_write(writer, views, /*include_peers=*/false));
  }
  TrackingNeeds tracking_needs() const override {
    auto needs = state_.tracking.local_needs();
    return {needs.any, needs.bcast};
  }
  void tracking_applied(std::span<const std::string_view> keys,
                        const std::function<bool(uint64_t node)>& tell_bcast_peer,
                        const AppliedWriter& writer) override {
    if (keys.empty() || state_.tracking_clients.load(std::memory_order_relaxed) == 0) return;
    state_.deliver(state_.tracking.on_write(writer.here, keys, /*include_peers=*/true,
                                            [&](uint64_t peer) {
                                              return tell_bcast_peer(peer &
                                                                     ~TrackingTable::kPeerBit);
                                            }),
                   writer.node, writer.client);
  }
  void tracking_peer_read(uint64_t node, std::span<const std::string> argv) override {
    if (argv.empty()) return;
    const CommandSpec* spec = table_.find(argv[0]);
    if (spec != nullptr && !spec->subcommands.empty() && argv.size() >= 2) {
      spec = CommandTable::find_sub(*spec, argv[1]);
    }
    const int argc = static_cast<int>(argv.size());
    if (spec == nullptr || (spec->arity > 0 && argc != spec->arity) || argc < -spec->arity ||
        !(spec->flags & kReadonly) || (spec->first_key <= 0 && spec->numkeys_index <= 0)) {
      return;
    }
    std::vector<std::string_view> views(argv.begin(), argv.end());
    state_.tracking_peer_reads(node);
    record_keys(TrackingTable::kPeerBit | node, *spec, views);
  }
  void tracking_flushed(bool local_only) override {
    if (state_.tracking_clients.load(std::memory_order_relaxed) == 0) return;
    state_.deliver(state_.tracking.on_flush(0, local_only));
  }

 private:
  void expire_loop() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      ServerConfig config = state_.ctx.config->snapshot();
      lock.unlock();
      const int64_t now = unix_time_ms();
      // This node expires keys as the writer of its store: the erase is an
      // effect proposed like any write.
      auto done = state_.store.expire_cycle(
          now, config.active_expire_keys_per_cycle,
          [&](std::string_view key, const Store::Meta& old) -> Result<storage::Sequence> {
            if (state_.ctx.expire_elsewhere && state_.ctx.expire_elsewhere(key)) {
              return storage::Sequence{0};
            }
            Store::Write w{key, old, true, {}, 0};
            auto ticket = state_.proposer->propose(now, std::span<const Store::Write>(&w, 1));
            if (!ticket.ok()) return ticket.status();
            std::string_view k = key;
            state_.committed(0, std::span<const std::string_view>(&k, 1));
            return ticket->durable_at;
          });
      if (!done.ok()) spdlog::warn("active expiry cycle failed: {}", done.status().to_string());
      // Expiry only erases: nothing to serve, but the keys it noted are taken.
      if (BlockingTable::has_ready()) serve_blocked(state_);
      // Lazy free: the elements of collections deleted, expired or replaced
      // (record.h), a bounded number per cycle.
      auto reclaimed = state_.store.reclaim(kReclaimPerCycle);
      if (!reclaimed.ok()) {
        spdlog::warn("reclaiming deleted collections failed: {}", reclaimed.status().to_string());
      }
      if (state_.tracking_clients.load(std::memory_order_relaxed) > 0) {
        state_.deliver(state_.tracking.enforce_limit());
      }
      lock.lock();
      unsigned hz = std::clamp(config.hz, 1u, 500u);
      cv_.wait_for(lock, std::chrono::microseconds(1000000 / hz), [this] { return stopping_; });
    }
  }

  CommandTable table_;
  ServiceState state_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread expirer_;
};

}  // namespace

std::unique_ptr<Service> make_service(ServerContext& ctx) {
  return std::make_unique<ServiceImpl>(ctx);
}

}  // namespace statekv::server
