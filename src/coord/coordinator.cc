#include "coord/coordinator.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <future>
#include <limits>
#include <map>
#include <random>
#include <thread>

#include "coord/group_scopes.h"
#include "coord/routing_errors.h"
#include "core/held_posts.h"
#include "core/random.h"
#include "core/thread_name.h"
#include "meta/meta_client.h"
#include "meta/transitions.h"
#include "node/raft_register_client.h"
#include "partition/slots.h"
#include "resp/value.h"
#include "server/command.h"
#include "server/key_page.h"
#include "server/number.h"
#include "server/record.h"

namespace statekv::coord {

namespace {

// A command on a key of a keyspace being created (it did not run). That lasts
// milliseconds, unless the node creating the keyspace stopped half-way: then
// until someone drops it.
std::string being_created(const std::string& name) {
  return "TRYAGAIN keyspace '" + name + "' is being created (should that last, the node " +
         "creating it stopped: KEYSPACE DROP " + name + " ends it)";
}

using server::CommandSpec;
using server::Session;

// Positions of the key arguments of a command, by its spec (Redis's
// first_key / last_key / key_step convention).
using server::key_positions;

// Keyless commands answered for every node and replica group (docs/routing.md,
// "Scans and DBSIZE"); name in lower case.
bool answers_for_the_whole_cluster(std::string_view name) {
  for (std::string_view n : {"dbsize", "keys", "scan", "randomkey", "flushall", "flushdb"}) {
    if (name == n) return true;
  }
  return false;
}

bool is_fan_out_command(std::string_view name) {
  for (std::string_view n : {"mget", "mset", "del", "unlink", "exists", "touch"}) {
    if (name == n) return true;
  }
  return false;
}

// The command running on this thread passed the mover's gate; its keys, to
// mark dirty when it finishes, if it writes.
thread_local bool t_in_gate = false;
thread_local std::vector<std::string> t_written;

std::string describe_node(const RoutingTable& t, NodeId id) {
  const meta::Member* m = t.member(id);
  return "node " + std::to_string(id.value()) + (m ? " (" + m->address + ")" : "");
}

}  // namespace

struct Coordinator::Part {
  NodeId node;
  std::vector<size_t> key_indexes;  // which of the command's keys (0-based among keys)
  std::vector<std::string> argv;
  resp::Value reply;
};

Coordinator::Coordinator(node::ClusterNode& node, server::Service& service,
                         server::ServerContext& ctx, CoordinatorOptions options)
    : node_(node),
      service_(service),
      ctx_(ctx),
      options_(std::move(options)),
      forwarder_(options_.self, options_.secret, options_.forward_timeout) {
  Mover::Hooks hooks;
  hooks.table = [this] { return table(); };
  hooks.wait_for_epoch = [this](uint64_t epoch) { return wait_for_epoch(epoch); };
  hooks.run_local = [this](std::vector<std::string> argv) { return run_local(std::move(argv)); };
  hooks.import_to = [this](NodeId node, std::vector<std::string> argv,
                           const RoutingTable& table) -> Result<std::string> {
    const meta::Member* m = table.member(node);
    if (m == nullptr || m->peer_address.empty()) {
      return Status::Unavailable("node " + std::to_string(node.value()) + " has no peer address");
    }
    net::ForwardFrame frame;
    frame.epoch = table.epoch().value();
    frame.flags = net::ForwardFrame::kImport;
    frame.argv = std::move(argv);
    return forwarder_.call(node, m->peer_address, std::move(frame));
  };
  hooks.abort_move = [this](const std::string& keyspace) { return abort_move(keyspace); };
  mover_ = std::make_unique<Mover>(options_.self, std::move(hooks));

  workers_ = std::make_unique<JobQueue>(options_.workers);
  stream_workers_ = std::make_unique<JobQueue>(options_.stream_workers);
  router_jobs_ = std::make_unique<JobQueue>(options_.router_threads);
  net::ForwardClientOptions peer_options;
  peer_options.secret = options_.secret;  // routers connect as clients (node 0)
  peer_options.timeout = options_.forward_timeout;
  forward_client_ = std::make_unique<net::ForwardClient>(std::move(peer_options));
  if (options_.replica_groups) {
    groups_ = std::make_shared<ReplicaGroups>(*options_.replica_groups, node_.raft(), service_);
    // Set before the service starts its active expirer.
    ctx_.expire_elsewhere = [this](std::string_view key) {
      auto g = groups();
      return g != nullptr && g->expire(key);
    };
  }
  unwatcher_ = std::make_shared<Unwatcher>();
  unwatcher_->coordinator = this;
  tracking_relay_ = std::make_unique<TrackingRelay>(TrackingRelay::Hooks{
      options_.self, ctx_.run_id, [this] { return table(); }, forward_client_.get(), &service_});
  ctx_.tracking_relay = tracking_relay_.get();
  creations_watch_ = std::thread([this] {
    name_this_thread("create-watch");
    abandon_stalled_creations();
  });
  auto sub = node_.map_watch().subscribe(
      [this](const std::shared_ptr<const meta::ClusterMap>& map) { on_map(map); });
  subscription_ = sub.id;
  if (sub.current) on_map(sub.current);
  node_.raft().set_forward_handler([this](uint64_t source, net::ForwardFrame frame,
                                          std::function<void(net::ForwardReplyFrame)> respond) {
    if ((frame.flags & net::ForwardFrame::kPublish) != 0) {
      // Delivered inline, on the peer connection's thread: only posts to the
      // subscribers' threads, and keeps one publisher's messages in order.
      net::ForwardReplyFrame reply;
      if (frame.argv.size() == 2) {
        const size_t n = ctx_.pubsub->publish(frame.argv[0], frame.argv[1]);
        reply.reply = ":" + std::to_string(n) + "\r\n";
      } else {
        reply.status = Status::InvalidArgument("a published message is {channel, message}");
      }
      respond(std::move(reply));
      return;
    }
    if (frame.group != 0) {
      on_group_frame(source, std::move(frame), respond);
      return;
    }
    if ((frame.flags & net::ForwardFrame::kTracking) != 0) {
      // Inline, like PUBLISH: only posts pushes to the clients' threads, and
      // keeps one sender's messages in order.
      respond(tracking_relay_->handle(frame));
      return;
    }
    if (frame.stream != 0) {
      enqueue_stream(source, std::move(frame), std::move(respond));
      return;
    }
    // The rebalance's verbs are control work: a thread of their own.
    JobQueue& queue = !frame.argv.empty() && frame.argv[0] == "__migrate" ? control_ : *workers_;
    auto job = [this, frame = std::move(frame), respond]() mutable {
      on_forward(std::move(frame), respond);
    };
    if (!queue.post(std::move(job))) {
      net::ForwardReplyFrame reply;
      reply.status = Status::Unavailable("node " + std::to_string(options_.self.value()) +
                                         " is shutting down");
      respond(std::move(reply));
    }
  });
}

Coordinator::~Coordinator() {
  stopping_ = true;
  node_.raft().set_forward_handler(nullptr);
  node_.map_watch().unsubscribe(subscription_);
  {
    std::lock_guard<std::mutex> lock(creations_mu_);
    creations_stop_ = true;
  }
  creations_cv_.notify_all();
  if (creations_watch_.joinable()) creations_watch_.join();
  {
    // Its pending commands are answered (not served); router jobs holding it
    // finish with it.
    std::shared_ptr<ReplicaGroups> groups;
    {
      std::lock_guard<std::mutex> lock(groups_mu_);
      groups.swap(groups_);
    }
  }
  // Release anything waiting at a frozen gate, so the workers can finish.
  mover_->gate().thaw();
  {
    // Sessions that outlive the coordinator no longer release remote watches.
    std::lock_guard<std::mutex> lock(unwatcher_->mu);
    unwatcher_->coordinator = nullptr;
  }
  ctx_.tracking_relay = nullptr;
  tracking_relay_.reset();
  // Calls in flight complete (with an error), and may still post re-routes.
  forward_client_.reset();
  router_jobs_->stop();
  stream_workers_->stop();
  workers_->stop();
  control_.stop();
  mover_.reset();
}

void Coordinator::on_map(const std::shared_ptr<const meta::ClusterMap>& map) {
  auto table = RoutingTable::build(map);
  bool had_table = false;
  if (!table.ok()) {
    spdlog::error("cluster map epoch {}: cannot route with it: {}", map->epoch,
                  table.status().message());
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (table_ && table_->epoch() >= (*table)->epoch()) return;
    had_table = table_ != nullptr;
    // The store's scopes first: the groups see this table below, and the
    // handlers routed by it run once table_ has it.
    if (options_.scopes != nullptr) options_.scopes->on_table(**table);
    table_ = std::move(table).value();
  }
  table_changed_.notify_all();
  watch_creations(*map);
  if (auto g = groups()) g->on_table(this->table());
  // Keys may have changed owner, and the new owner does not know who read
  // them: this node's tracking clients drop what they hold (tracking_relay.h).
  if (had_table && tracking_relay_) tracking_relay_->on_new_map();
  // The mover may thaw and clean up: not on this (map-publishing) thread.
  control_.post([this] {
    if (auto t = this->table()) mover_->on_table(*t);
  });
}

std::string Coordinator::run_local(std::vector<std::string> argv) {
  Session session;
  session.authenticated = true;
  session.internal = true;
  std::vector<std::string_view> views(argv.begin(), argv.end());
  std::string out;
  resp::Writer writer(&out, 2);
  service_.execute(session, views, writer);
  return out;
}

Status Coordinator::abort_move(const std::string& keyspace) {
  auto t = table();
  if (!t) return Status::Unavailable("no map");
  node::RaftRegisterClient client(node::member_endpoints(t->map()), options_.secret,
                                  std::chrono::milliseconds(5000));
  auto r = meta::update(client, [&](const meta::ClusterMap& m) {
    // A drop whose end nobody recorded: the keyspace stays (the keys deleted
    // so far stay deleted), and KEYSPACE DROP may be run again.
    const meta::Keyspace* k = m.find_keyspace(keyspace);
    if (k != nullptr && k->dropping) return meta::abort_drop(m, keyspace);
    return meta::abort_move(m, keyspace);
  });
  return r.ok() ? Status::OK() : r.status();
}

bool Coordinator::pass_gate(const CommandSpec& spec, std::span<const std::string_view> argv,
                            const std::vector<size_t>& keys) {
  std::vector<std::string_view> named;
  named.reserve(keys.size());
  for (size_t k : keys) named.push_back(argv[k]);
  return pass_gate_keys(named, (spec.flags & server::kWrite) != 0);
}

bool Coordinator::pass_gate_keys(const std::vector<std::string_view>& keys, bool write) {
  auto table = this->table();
  if (!table || !table->any_moving()) return true;
  bool gated = false;
  for (std::string_view k : keys) {
    const Route r = table->route(k);
    gated = gated || ((r.moving() || r.dropping) && r.primary() == options_.self);
  }
  if (!gated) return true;
  mover_->gate().enter();
  // The map may have moved on while we waited: are the keys still ours?
  table = this->table();
  for (std::string_view k : keys) {
    if (table->route(k).primary() != options_.self) {
      mover_->gate().leave();
      return false;
    }
  }
  t_in_gate = true;
  t_written.clear();
  if (write) {
    for (std::string_view k : keys) t_written.emplace_back(k);
  }
  return true;
}

void Coordinator::finished(Session&) {
  if (!t_in_gate) return;
  t_in_gate = false;
  // Marked after the write ran, so a copy that reads the key afterwards sees it.
  for (const std::string& key : t_written) mover_->note_write(key);
  t_written.clear();
  mover_->gate().leave();
}

std::shared_ptr<const RoutingTable> Coordinator::table() const {
  std::lock_guard<std::mutex> lock(mu_);
  return table_;
}

std::shared_ptr<const RoutingTable> Coordinator::wait_for_epoch(uint64_t epoch) {
  std::unique_lock<std::mutex> lock(mu_);
  table_changed_.wait_for(lock, options_.epoch_wait,
                          [&] { return table_ && table_->epoch().value() >= epoch; });
  return table_;
}

// ------------------------------------------------------------------ owner side

void Coordinator::enqueue_stream(uint64_t source, net::ForwardFrame frame, Respond respond) {
  const std::pair<uint64_t, uint64_t> key{source, frame.stream};
  {
    std::lock_guard<std::mutex> lock(streams_mu_);
    // A refused stream is kept so that frames of it still on the way are
    // refused too; they arrive right behind the refused one (one connection,
    // in order), so a minute is plenty. Swept at most once a second.
    const auto now = std::chrono::steady_clock::now();
    if (now - streams_swept_ > std::chrono::seconds(1)) {
      streams_swept_ = now;
      for (auto it = streams_.begin(); it != streams_.end();) {
        const bool idle = !it->second.running && it->second.queue.empty();
        if (idle && now - it->second.refused_at > std::chrono::minutes(1)) {
          it = streams_.erase(it);
        } else {
          ++it;
        }
      }
    }
    OwnerStream& stream = streams_[key];
    stream.queue.emplace_back(std::move(frame), std::move(respond));
    if (stream.running) return;
    stream.running = true;
  }
  if (stream_workers_->post([this, key] { run_stream(key); })) return;
  // Shutting down: nothing of the stream runs any more.
  std::deque<std::pair<net::ForwardFrame, Respond>> queue;
  {
    std::lock_guard<std::mutex> lock(streams_mu_);
    auto it = streams_.find(key);
    queue.swap(it->second.queue);
    streams_.erase(it);
  }
  for (auto& [frame, respond] : queue) {
    net::ForwardReplyFrame reply;
    reply.status =
        Status::Unavailable("node " + std::to_string(options_.self.value()) + " is shutting down");
    respond(std::move(reply));
  }
}

void Coordinator::run_stream(std::pair<uint64_t, uint64_t> key) {
  // Takes what is queued at once (one lock per batch, not per frame), for a
  // bounded number of batches, so that one busy stream does not hold a
  // worker forever.
  std::deque<std::pair<net::ForwardFrame, Respond>> batch;
  for (int turn = 0;; ++turn) {
    bool refused = false;
    {
      std::lock_guard<std::mutex> lock(streams_mu_);
      auto it = streams_.find(key);
      if (it->second.queue.empty()) {
        it->second.running = false;
        if (!it->second.refused) streams_.erase(it);
        return;
      }
      if (turn == 16 && stream_workers_->post([this, key] { run_stream(key); })) return;
      batch.swap(it->second.queue);
      refused = it->second.refused;
    }
    for (auto& [frame, respond] : batch) {
      const bool stale = on_forward(std::move(frame), respond, refused);
      if (stale && !refused) {
        refused = true;
        std::lock_guard<std::mutex> lock(streams_mu_);
        OwnerStream& stream = streams_.at(key);
        stream.refused = true;
        stream.refused_at = std::chrono::steady_clock::now();
      }
    }
    batch.clear();
  }
}

bool Coordinator::on_forward(net::ForwardFrame frame, const Respond& respond, bool refuse_stale) {
  if ((frame.flags & net::ForwardFrame::kBatch) != 0)
    return run_batch(frame, respond, refuse_stale);
  net::ForwardReplyFrame reply;
  if (refuse_stale) {
    // An earlier command of this client's stream was refused: this one must
    // not overtake it, so it goes back to the router too, which routes them
    // again in order.
    // Busy, not Aborted: the router need not wait for a newer map for it.
    reply.status = Status::Busy(
        "an earlier command of this client's stream was refused as a "
        "stale route");
    respond(std::move(reply));
    return true;
  }
  // Our map must be at least as new as the router's before we judge ownership.
  auto table = wait_for_epoch(frame.epoch);
  if (!table || table->epoch().value() < frame.epoch) {
    reply.status = Status::Unavailable("node " + std::to_string(options_.self.value()) +
                                       " has not seen cluster map epoch " +
                                       std::to_string(frame.epoch) + " yet");
    respond(std::move(reply));
    return false;
  }
  if (!frame.argv.empty() && frame.argv[0] == "__migrate") {
    // The rebalance's verbs, from `statekv cluster` (coord/mover.h).
    std::vector<std::string> rest(frame.argv.begin() + 1, frame.argv.end());
    auto r = mover_->handle(rest);
    if (r.ok()) {
      reply.reply = "+" + *r + "\r\n";
    } else {
      reply.status = r.status();
    }
    respond(std::move(reply));
    return false;
  }
  if (frame.argv.size() == 1 && frame.argv[0] == kCountVerb) {
    reply.reply = encode_key_counts(local_key_counts());
    respond(std::move(reply));
    return false;
  }
  if (frame.argv.size() == 1 && frame.argv[0] == kRandomVerb) {
    auto offer = local_random_offer(*table);
    if (offer.ok()) {
      reply.reply = encode_random_offer(*offer);
    } else {
      reply.status = offer.status();
    }
    respond(std::move(reply));
    return false;
  }
  if (!frame.argv.empty() && frame.argv[0] == kScanVerb) {
    auto request = decode_page_request(frame.argv);
    if (request.ok()) {
      reply.reply = encode_node_page(local_scan_page(*request));
    } else {
      reply.status = request.status();
    }
    respond(std::move(reply));
    return false;
  }
  if (!frame.argv.empty() && frame.argv[0] == "__keyspace") {
    // A keyspace file's creation over keys (keyspace_change.cc): on a worker,
    // not the control thread, whose map work the move waits for.
    auto r = adopt_verb(frame.argv);
    if (r.ok()) {
      reply.reply = std::move(r).value();
    } else {
      reply.status = r.status();
    }
    respond(std::move(reply));
    return false;
  }
  if (frame.argv.size() >= 3 && frame.argv[0] == kBlockVerb) {
    std::string token = std::move(frame.argv[1]);
    std::vector<std::string> argv(std::make_move_iterator(frame.argv.begin() + 2),
                                  std::make_move_iterator(frame.argv.end()));
    run_blocking_here(frame.epoch, std::move(token), std::move(argv), frame.resp == 3 ? 3 : 2,
                      respond);
    return false;
  }
  if ((frame.argv.size() == 2 || frame.argv.size() == 3) && frame.argv[0] == kUnblockVerb) {
    unblock_here(frame.argv[1], frame.argv.size() == 3);
    reply.reply = "+OK\r\n";
    respond(std::move(reply));
    return false;
  }
  if (!frame.argv.empty() && frame.argv[0] == "__stats") {
    reply.reply = "+" + local_stats_json() + "\r\n";
    respond(std::move(reply));
    return false;
  }
  Session session;
  session.authenticated = true;
  session.resp = frame.resp == 3 ? 3 : 2;
  session.routed_epoch = frame.epoch;
  session.importing = (frame.flags & net::ForwardFrame::kImport) != 0;
  session.addr = "routed";
  if ((frame.flags & net::ForwardFrame::kTrack) != 0) {
    session.track_origin_node = frame.origin_node;
    session.track_origin_client = frame.origin_client;
    session.track_origin_read = true;  // the service records only read-only commands
  }
  std::vector<std::string_view> argv(frame.argv.begin(), frame.argv.end());
  std::string out;
  resp::Writer writer(&out, session.resp);
  const storage::Sequence seq = service_.execute(session, argv, writer);
  if (out.size() > 1 && out[0] == '-' && std::string_view(out).substr(1).starts_with(kStaleRoute)) {
    reply.status = Status::Aborted(out.substr(1, out.size() - 3));  // drop '-' and CRLF
    respond(std::move(reply));
    return true;
  }
  reply.reply = std::move(out);
  if (seq == 0 || seq <= ctx_.engine->durable_sequence()) {
    respond(std::move(reply));
    return false;
  }
  // The reply promises what the client's own node would: wait for durability.
  auto shared = std::make_shared<net::ForwardReplyFrame>(std::move(reply));
  ctx_.engine->when_durable(seq, [shared, respond]() mutable { respond(std::move(*shared)); });
  return false;
}

server::Router::Decision Coordinator::check_routed(Session& session, const CommandSpec& spec,
                                                   std::span<const std::string_view> argv,
                                                   resp::Writer& out) {
  auto table = this->table();
  if ((spec.name == "flushall" || spec.name == "flushdb") &&
      std::any_of(table->map().keyspaces.begin(), table->map().keyspaces.end(),
                  [](const meta::Keyspace& k) {
                    return k.spec.replication.kind == meta::Replication::kConsensus;
                  })) {
    // This node's part of a cluster-wide flush: its single-copy keys only
    // (the replica groups erased theirs through their logs).
    if (Status s = flush_unreplicated(*table); !s.ok()) {
      out.error("ERR " + s.message());
    } else {
      // Redis's flush message, which no DEL or log erase sends: every node
      // runs this part, and tells its own tracking clients.
      service_.tracking_flushed(/*local_only=*/true);
      out.simple("OK");
    }
    return Decision::kHandled;
  }
  if (spec.name == "exec" && session.txn && session.txn->queuing && !session.txn->aborted) {
    // A routed transaction (__exec): this node must own every key of it.
    const auto& t = *session.txn;
    std::vector<std::string_view> keys(t.keys.begin(), t.keys.end());
    for (std::string_view k : keys) {
      const Route r = table->route(k);
      if (r.primary() != options_.self) {
        out.error(std::string(kStaleRoute) + " epoch " + std::to_string(table->epoch().value()) +
                  ": node " + std::to_string(options_.self.value()) + " does not own '" +
                  std::string(k.substr(0, 64)) + "' (" + describe_node(*table, r.primary()) +
                  " does)");
        return Decision::kHandled;
      }
    }
    if (!pass_gate_keys(keys, true)) {
      out.error(std::string(kStaleRoute) + " epoch " +
                std::to_string(this->table()->epoch().value()) +
                ": the keys moved away from node " + std::to_string(options_.self.value()));
      return Decision::kHandled;
    }
    return Decision::kLocal;
  }
  const std::vector<size_t> keys = key_positions(spec, argv);
  for (size_t k : keys) {
    const Route r = table->route(argv[k]);
    const NodeId here = session.importing ? r.target_primary() : r.primary();
    // A key of a consensus keyspace (one being created, too) lives in its
    // replica group, never in this node's single copy: the router's map is
    // older than the keyspace.
    const bool grouped =
        r.keyspace->creating || r.keyspace->spec.replication.kind == meta::Replication::kConsensus;
    if (here != options_.self || grouped) {
      out.error(std::string(kStaleRoute) + " epoch " + std::to_string(table->epoch().value()) +
                ": node " + std::to_string(options_.self.value()) + " does not own '" +
                std::string(argv[k].substr(0, 64)) + "' (" + describe_node(*table, r.primary()) +
                " does)");
      return Decision::kHandled;
    }
  }
  if (!session.importing && !pass_gate(spec, argv, keys)) {
    out.error(std::string(kStaleRoute) + " epoch " +
              std::to_string(this->table()->epoch().value()) + ": the keys moved away from node " +
              std::to_string(options_.self.value()));
    return Decision::kHandled;
  }
  return Decision::kLocal;
}

// ------------------------------------------------------------------ router side

void Coordinator::mark_tracking(const Session& session, net::ForwardFrame& frame) const {
  // A read the client may cache (the owner records its keys for this node),
  // or a write (for the client's NOLOOP).
  if (!session.track_keys && !session.track_write) return;
  frame.flags |= net::ForwardFrame::kTrack;
  frame.origin_node = options_.self.value();
  frame.origin_client = session.id;
}

Result<std::string> Coordinator::run_on(NodeId node, std::vector<std::string> argv, int resp,
                                        const RoutingTable& table, storage::Sequence* seq,
                                        const Session* origin) {
  if (node == options_.self) {
    Session session;
    session.authenticated = true;
    session.resp = resp;
    session.routed_epoch = table.epoch().value();
    std::vector<std::string_view> views(argv.begin(), argv.end());
    std::string out;
    resp::Writer writer(&out, resp);
    const storage::Sequence s = service_.execute(session, views, writer);
    *seq = std::max(*seq, s);
    if (out.size() > 1 && std::string_view(out).substr(1).starts_with(kStaleRoute)) {
      return Status::Aborted(out.substr(1, out.size() - 3));
    }
    return out;
  }
  const meta::Member* m = table.member(node);
  if (m == nullptr || m->peer_address.empty()) {
    return Status::Unavailable("node " + std::to_string(node.value()) + " has no peer address");
  }
  net::ForwardFrame frame;
  frame.epoch = table.epoch().value();
  frame.resp = static_cast<uint8_t>(resp);
  frame.argv = std::move(argv);
  if (origin != nullptr) mark_tracking(*origin, frame);
  return forwarder_.call(node, m->peer_address, std::move(frame));
}

server::Router::Decision Coordinator::route(Session& session, const CommandSpec& spec,
                                            std::span<const std::string_view> argv,
                                            resp::Writer& out, storage::Sequence* seq) {
  if (session.internal) return Decision::kLocal;
  if (session.routed_epoch != 0) return check_routed(session, spec, argv, out);
  // Replies of this client's earlier commands are due: anything but one more
  // command for the same owner's stream waits for them (see "Order").
  const bool due = session.replies_due > 0 && session.wait_for_replies;
  auto wait = [&] {
    session.wait_for_replies();
    return Decision::kHandled;
  };
  if (spec.name == "publish" && argv.size() == 3) {
    // A local command: it waits for this client's earlier replies like any
    // other, so its messages keep the client's order.
    if (due) return wait();
    broadcast_publish(argv[1], argv[2]);
    return Decision::kLocal;  // and delivered here by the command itself
  }
  if (spec.name == "exec" || spec.name == "watch") {
    return route_transaction(session, spec, argv, out, seq);
  }
  const std::vector<size_t> keys = key_positions(spec, argv);
  // Keys and values that do not pair up (MSET a 1 b): the command's own
  // handler answers with Redis's arity error, before anything is routed.
  if (spec.key_step > 1 && spec.last_key < 0 &&
      (argv.size() - static_cast<size_t>(spec.first_key)) % static_cast<size_t>(spec.key_step) !=
          0) {
    return due ? wait() : Decision::kLocal;
  }
  std::string name(argv[0]);
  std::transform(name.begin(), name.end(), name.begin(), ::tolower);
  const bool keyless_fan_out = keys.empty() && answers_for_the_whole_cluster(name);
  if (keys.empty() && !keyless_fan_out) return due ? wait() : Decision::kLocal;

  // Sent to the one other node serving its keys: counted once, however many
  // routes it takes (INFO stats, statekv_forwarded_commands).
  bool counted = false;
  const auto count_forwarded = [&] {
    if (!counted) forwarded_commands_.fetch_add(1, std::memory_order_relaxed);
    counted = true;
  };
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto table = this->table();
    if (!table) {
      out.error("CLUSTERDOWN the cluster map is not known yet");
      return Decision::kHandled;
    }
    if (keyless_fan_out) {
      if (due) return wait();
      const bool replicated = std::any_of(
          table->map().keyspaces.begin(), table->map().keyspaces.end(), [](const meta::Keyspace& k) {
            return k.spec.replication.kind == meta::Replication::kConsensus;
          });
      if (session.defer) {
        session.route_owner = 0;  // nothing goes into a stream behind it
        finish_on_router_pool(session, {argv.begin(), argv.end()}, 0, session.defer());
        return Decision::kHandled;
      }
      if (name == "scan") return scan(session, argv, out);
      if (name == "randomkey") {
        auto key = random_cluster_key(&session);
        if (!key.ok()) {
          out.error("CLUSTERDOWN " + key.status().message());
        } else if (!*key) {
          out.null();
        } else {
          out.bulk(**key);
        }
        return Decision::kHandled;
      }
      if (name == "keys") return list_keys(session, argv, out);
      if (name == "dbsize") {
        // Each key once: a replica group's counted by the group (read where
        // a read of its keys runs), the others by the node keeping them.
        auto counts = count_cluster_keys(&session);
        if (!counts.ok()) {
          out.error("CLUSTERDOWN " + counts.status().message());
          return Decision::kHandled;
        }
        out.integer(static_cast<int64_t>(counts->keys));
        return Decision::kHandled;
      }
      if (replicated && (name == "flushall" || name == "flushdb")) {
        // Each replica group erases its records through its log; then every
        // node erases its single-copy keys (check_routed), as Redis Cluster
        // flushes node by node (not atomic across shards).
        if (Status s = flush_groups(*table); !s.ok()) {
          out.error("CLUSTERDOWN " + s.message());
          return Decision::kHandled;
        }
      }
      return fan_out_all(session, name, argv, *table, out, seq);
    }
    // Which nodes own the keys?
    std::vector<NodeId> owners;
    bool cross_slot = false;
    uint32_t first_slot = 0;
    Route first;  // the first key's route: a single-owner command goes by it
    for (size_t i = 0; i < keys.size(); ++i) {
      Route r = table->route(argv[keys[i]]);
      if (r.keyspace->creating) {
        // Until the keyspace that held its prefix is known to hold none of
        // its keys (keyspace_change.cc): nothing ran.
        out.error(being_created(r.keyspace->spec.name));
        return Decision::kHandled;
      }
      if (std::find(owners.begin(), owners.end(), r.primary()) == owners.end()) {
        owners.push_back(r.primary());
      }
      if (keys.size() > 1 && r.keyspace->spec.partitioner.kind == meta::Partitioner::kSlots) {
        const uint32_t slot = partition::key_slot(argv[keys[i]]);
        if (i == 0) first_slot = slot;
        cross_slot = cross_slot || slot != first_slot;
      }
      if (i == 0) first = std::move(r);
    }
    // A replicated keyspace's keys: to their group's leader (replica_groups.h).
    bool any_replicated = false;
    bool one_group = true;
    for (size_t i = 0; i < keys.size(); ++i) {
      const Route r = i == 0 ? first : table->route(argv[keys[i]]);
      any_replicated = any_replicated ||
                       r.keyspace->spec.replication.kind == meta::Replication::kConsensus;
      one_group = one_group && r.keyspace == first.keyspace && r.shard == first.shard;
    }
    if (any_replicated) {
      if (!one_group) {
        out.error(
            "CROSSSLOT Keys in request don't hash to the same slot (keys of a replicated "
            "keyspace must all belong to one of its shards)");
        return Decision::kHandled;
      }
      if (first.dropping) {
        out.error("TRYAGAIN keyspace '" + first.keyspace->spec.name + "' is being dropped");
        return Decision::kHandled;
      }
      auto groups = this->groups();
      if (!groups) {
        out.error("CLUSTERDOWN this node does not serve replicated keyspaces");
        return Decision::kHandled;
      }
      const bool blocking = (spec.flags & server::kBlocking) != 0;
      // Behind replies due, only a command that joins their pipeline (below).
      if (due && (blocking || !session.defer || !session.route_pipeline)) return wait();
      if (blocking) {
        // Waits on the group's leader (see "Blocking commands").
        if (!session.defer) {
          out.error("ERR this connection cannot block (an internal session)");
          return Decision::kHandled;
        }
        route_blocking(session, first, *table, argv, argv[keys[0]]);
        return Decision::kHandled;
      }
      auto call = std::make_shared<GroupCall>();
      call->group = ReplicaGroups::group_id(first.keyspace->spec.name, first.shard);
      call->members = first.owners;
      call->resp = session.resp;
      call->epoch = table->epoch().value();
      call->argv.assign(argv.begin(), argv.end());
      call->keys.reserve(keys.size());
      for (size_t k : keys) call->keys.emplace_back(argv[k]);
      call->deadline = std::chrono::steady_clock::now() + options_.forward_timeout;
      call->positions = session.positions;
      call->count_if_forwarded = true;
      if (session.track_keys && !groups->hosts(call->group)) {
        call->track = true;
        call->track_client = session.id;
      }
      if (session.track_write) call->write_client = session.id;
      const bool read_only = (spec.flags & server::kReadonly) != 0;
      call->write = !read_only;
      if (auto refused = place_group_read(&session, *first.keyspace, first.shard, first.owners,
                                          call->group, read_only, *groups, &call->policy)) {
        out.error(*refused);
        return Decision::kHandled;
      }
      if (session.defer && !call->policy.local) {
        // A pipeline to the group ("Pipelines to a replica group"): joined
        // while every reply due is one of its commands, else a new one.
        auto pipeline = std::static_pointer_cast<GroupPipeline>(session.route_pipeline);
        if (due) {
          if (pipeline == nullptr || pipeline->group != call->group || pipeline->broken ||
              pipeline->in_flight.load() != session.replies_due) {
            return wait();
          }
        } else {
          pipeline = std::make_shared<GroupPipeline>();
          pipeline->group = call->group;
          pipeline->target = group_call_target(*call, NodeId());
          pipeline->stream = ++next_stream_;
          session.route_pipeline = pipeline;
        }
        session.route_owner = 0;  // nothing of another owner goes into a stream behind it
        {
          std::lock_guard lock(pipeline->mu);
          call->seq = pipeline->next_seq++;
          pipeline->unsettled.insert(call->seq);
        }
        ++pipeline->in_flight;
        call->pipeline = pipeline;
        call->done = session.defer();
        send_group_call(call, pipeline->target);
        return Decision::kHandled;
      }
      if (due) return wait();
      if (session.defer) {
        session.route_owner = 0;  // nothing goes into a stream behind it
        session.route_pipeline = nullptr;
        call->done = session.defer();
        send_group_call(call, NodeId());
        return Decision::kHandled;
      }
      std::promise<std::string> replied;
      auto reply = replied.get_future();
      call->done = [&replied](std::string r, storage::Sequence) { replied.set_value(std::move(r)); };
      send_group_call(call, NodeId());
      HeldPosts::flush();  // this thread waits: what it holds must leave first
      out.raw(reply.get());
      return Decision::kHandled;
    }
    const bool redirects = options_.redirects || session.redirects;
    if (redirects && cross_slot) {
      out.error("CROSSSLOT Keys in request don't hash to the same slot");
      return Decision::kHandled;
    }
    if (owners.size() == 1 && owners[0] == options_.self) {
      if (due) return wait();
      if (pass_gate(spec, argv, keys)) return Decision::kLocal;
      continue;  // moved away while we waited at the gate: route again
    }
    if (owners.size() == 1) {
      if (redirects && first.keyspace->spec.partitioner.kind == meta::Partitioner::kSlots) {
        const meta::Member* m = table->member(owners[0]);
        out.error("MOVED " + std::to_string(partition::key_slot(argv[keys[0]])) + " " +
                  (m ? m->address : std::string("?")));
        return Decision::kHandled;
      }
      if (spec.flags & server::kBlocking) {
        // Blocks on the owner, in a frame of its own (see "Blocking commands").
        if (due) return wait();
        if (!session.defer) {
          out.error("ERR this connection cannot block (an internal session)");
          return Decision::kHandled;
        }
        count_forwarded();
        route_blocking(session, first, *table, argv, argv[keys[0]]);
        return Decision::kHandled;
      }
      if (session.defer) {
        if (due && session.route_owner != owners[0].value()) return wait();
        if (!due) {
          // Nothing in flight: a new stream, to this owner.
          session.route_stream = ++next_stream_;
          session.route_owner = owners[0].value();
        }
        count_forwarded();
        route_batched(session, owners[0], *table, argv);
        return Decision::kHandled;
      }
      count_forwarded();
      auto reply = run_on(owners[0], std::vector<std::string>(argv.begin(), argv.end()),
                          session.resp, *table, seq, &session);
      if (reply.ok()) {
        out.raw(*reply);
        return Decision::kHandled;
      }
      if (reply.status().code() == Status::Code::kAborted) {
        // A stale route: the owner's map is newer. Catch up and route again.
        wait_for_epoch(table->epoch().value() + 1);
        continue;
      }
      out.error(routing_error(reply.status()));
      return Decision::kHandled;
    }
    if (!is_fan_out_command(name)) {
      out.error("CROSSSLOT Keys in request don't hash to the same slot (they live on " +
                std::to_string(owners.size()) + " nodes)");
      return Decision::kHandled;
    }
    if (due) return wait();
    if (session.defer) {
      session.route_owner = 0;  // nothing goes into a stream behind it
      finish_on_router_pool(session, {argv.begin(), argv.end()}, 0, session.defer());
      return Decision::kHandled;
    }
    return fan_out(session, name, argv, keys, *table, out, seq);
  }
  out.error("TRYAGAIN the cluster map kept changing while routing this command");
  return Decision::kHandled;
}

std::optional<std::string> Coordinator::refuse_in_transaction(const CommandSpec& spec) const {
  if (!answers_for_the_whole_cluster(spec.name)) return std::nullopt;
  // Run by EXEC, it would read or erase this node's own store only: replica
  // records included, deletes not yet applied here visible, a replica
  // group's records erased outside its log. No transaction spans every node
  // and group, so it is refused while queueing, not answered wrong.
  std::string upper(spec.name);
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  return "ERR " + upper +
         " cannot run inside MULTI in a cluster: it spans every node and replica group, which "
         "no transaction does; send it outside MULTI";
}

server::Router::Decision Coordinator::route_transaction(Session& session, const CommandSpec& spec,
                                                        std::span<const std::string_view> argv,
                                                        resp::Writer& out, storage::Sequence* seq) {
  const bool due = session.replies_due > 0 && session.wait_for_replies;
  auto wait = [&] {
    session.wait_for_replies();
    return Decision::kHandled;
  };
  const bool exec = spec.name == "exec";
  std::shared_ptr<server::TransactionState> t = session.txn;
  // The handler's own answers: EXEC without MULTI, EXECABORT, WATCH inside
  // MULTI, and the keyless transaction (it runs here).
  if (exec && (!t || !t->queuing || t->aborted)) return due ? wait() : Decision::kLocal;
  if (!exec && t && t->queuing) return due ? wait() : Decision::kLocal;

  // Every key of the transaction: its commands' and the watched ones, or
  // WATCH's new keys and those watched already.
  std::vector<std::string_view> keys;
  if (exec) {
    keys.assign(t->keys.begin(), t->keys.end());
  } else {
    for (size_t k : key_positions(spec, argv)) keys.push_back(argv[k]);
  }
  if (t) keys.insert(keys.end(), t->watched_keys.begin(), t->watched_keys.end());
  if (keys.empty()) return due ? wait() : Decision::kLocal;

  for (int attempt = 0; attempt < 4; ++attempt) {
    auto table = this->table();
    if (!table) {
      out.error("CLUSTERDOWN the cluster map is not known yet");
      return Decision::kHandled;
    }
    // One shard (Redis Cluster: one slot) for all of them, or CROSSSLOT.
    const bool redirects = options_.redirects || session.redirects;
    const Route first = table->route(keys[0]);
    const bool slots = first.keyspace->spec.partitioner.kind == meta::Partitioner::kSlots;
    bool cross = false;
    for (std::string_view k : keys) {
      const Route r = table->route(k);
      cross = cross || r.keyspace != first.keyspace || r.shard != first.shard ||
              r.primary() != first.primary() ||
              (redirects && slots && partition::key_slot(k) != partition::key_slot(keys[0]));
    }
    if (cross) {
      if (exec) t->discard();
      out.error("CROSSSLOT Keys in request don't hash to the same slot");
      return Decision::kHandled;
    }
    if (first.keyspace->spec.replication.kind == meta::Replication::kConsensus) {
      // A replicated keyspace: the transaction runs whole on its group's
      // leader (one Mutation through the group's log). WATCH asks the leader
      // which log index the keys stand at; EXEC hands that to whoever leads
      // then, which checks it (docs/replication.md, "WATCH").
      auto groups = this->groups();
      if (!groups) {
        if (exec) t->discard();
        out.error("CLUSTERDOWN node " + std::to_string(options_.self.value()) +
                  " does not serve replicated keyspaces");
        return Decision::kHandled;
      }
      if (due) return wait();
      if (!t) t = service_.transaction(session);
      if (!t) {
        out.error("ERR transactions are not served here");
        return Decision::kHandled;
      }
      const GroupId group = ReplicaGroups::group_id(first.keyspace->spec.name, first.shard);
      auto call = std::make_shared<GroupCall>();
      call->group = group;
      call->members = first.owners;
      call->resp = session.resp;
      call->epoch = table->epoch().value();
      call->positions = session.positions;
      call->deadline = std::chrono::steady_clock::now() + options_.forward_timeout;
      call->count_if_forwarded = true;
      std::vector<std::string> watch_keys;
      if (exec) {
        if (!t->watched_keys.empty()) {
          if (t->watch_group != group.value() ||
              t->group_watches.size() != t->watched_keys.size()) {
            // Watched somewhere this group cannot check: the watch counts as broken.
            t->discard();
            out.null_array();
            return Decision::kHandled;
          }
          call->argv = {std::string(kGroupExecVerb), std::to_string(t->group_watches.size())};
          for (const auto& w : t->group_watches) {
            call->argv.push_back(w.key);
            call->argv.push_back(std::to_string(w.index));
            call->argv.push_back(std::to_string(w.expire_ms));
          }
        }
        call->keys.assign(t->keys.begin(), t->keys.end());
        call->keys.insert(call->keys.end(), t->watched_keys.begin(), t->watched_keys.end());
        std::vector<std::string> body = server::encode_exec(*t, 0);
        call->argv.insert(call->argv.end(), std::make_move_iterator(body.begin()),
                          std::make_move_iterator(body.end()));
        call->write = true;
        t->discard();
      } else {
        if (t->remote_node != 0 || t->watching) {
          // Keys watched elsewhere already (a single-copy shard): CROSSSLOT
          // caught every other keyspace; this one was not replicated then.
          out.error("CROSSSLOT Keys in request don't hash to the same slot");
          return Decision::kHandled;
        }
        call->argv = {std::string(kGroupWatchVerb)};
        for (size_t k : key_positions(spec, argv)) {
          call->argv.emplace_back(argv[k]);
          watch_keys.emplace_back(argv[k]);
        }
        call->keys = watch_keys;
      }
      // WATCH's answer from the leader is recorded in the transaction; the
      // client hears OK.
      const auto watched = [t, group, keys = std::move(watch_keys)](std::string& reply) {
        std::vector<uint64_t> fields;
        bool ok = reply.size() > 3 && reply[0] == '+' && reply.ends_with("\r\n");
        if (ok) {
          std::string_view line(reply);
          line = line.substr(1, line.size() - 3);
          while (ok && !line.empty()) {
            const size_t sp = line.find(' ');
            const auto v = server::parse_int64(line.substr(0, sp));
            ok = v && *v >= 0;
            if (ok) fields.push_back(static_cast<uint64_t>(*v));
            line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
          }
        }
        if (!ok || fields.size() != keys.size() + 1) {
          if (!reply.empty() && reply[0] == '-') return;  // an error: the client hears it
          reply = "-ERR unexpected answer to WATCH from the replica group\r\n";
          return;
        }
        t->watch_group = group.value();
        for (size_t i = 0; i < keys.size(); ++i) {
          t->group_watches.push_back({keys[i], fields[0], static_cast<int64_t>(fields[i + 1])});
          t->watched_keys.push_back(keys[i]);
        }
        reply = "+OK\r\n";
      };
      if (session.defer) {
        session.route_owner = 0;
        if (exec) {
          call->done = session.defer();
        } else {
          call->done = [watched, done = session.defer()](std::string r, storage::Sequence s) {
            watched(r);
            done(std::move(r), s);
          };
        }
        send_group_call(call, NodeId());
        return Decision::kHandled;
      }
      std::promise<std::string> replied;
      auto reply = replied.get_future();
      call->done = [&replied](std::string r, storage::Sequence) { replied.set_value(std::move(r)); };
      send_group_call(call, NodeId());
      HeldPosts::flush();  // this thread waits: what it holds must leave first
      std::string r = reply.get();
      if (!exec) watched(r);
      out.raw(r);
      return Decision::kHandled;
    }
    const NodeId owner = first.primary();
    const bool watched_here = t && t->watching;
    if (exec && ((t->remote_node != 0 && t->remote_node != owner.value()) ||
                 (watched_here && owner != options_.self))) {
      // The keys were watched on a node that no longer owns them: whether
      // they changed cannot be checked, so the watch counts as broken.
      t->discard();
      out.null_array();
      return Decision::kHandled;
    }
    if (owner == options_.self) {
      if (due) return wait();
      if (pass_gate_keys(keys, exec)) return Decision::kLocal;
      continue;  // moved away while we waited at the gate: route again
    }
    if (redirects && slots) {
      if (exec) t->discard();
      const meta::Member* m = table->member(owner);
      out.error("MOVED " + std::to_string(partition::key_slot(keys[0])) + " " +
                (m ? m->address : std::string("?")));
      return Decision::kHandled;
    }
    if (!t) t = service_.transaction(session);
    if (!t) {
      out.error("ERR transactions are not served here");
      return Decision::kHandled;
    }
    // The whole transaction, or the watch, goes to the owner as one command.
    std::vector<std::string> routed;
    if (exec) {
      routed = server::encode_exec(*t, t->remote_node == owner.value() ? t->watcher : 0);
      // The owner's EXEC ends the watches there; this node forgets them.
      t->release_remote = nullptr;
      t->discard();
    } else {
      routed = {std::string(server::kWatchVerb), std::to_string(t->watcher)};
      for (size_t k : key_positions(spec, argv)) {
        routed.emplace_back(argv[k]);
        t->watched_keys.emplace_back(argv[k]);
      }
      t->remote_node = owner.value();
      if (!t->release_remote) {
        t->release_remote = [weak = std::weak_ptr<Unwatcher>(unwatcher_), owner, id = t->watcher] {
          if (auto u = weak.lock()) u->release(owner, id);
        };
      }
    }
    if (session.defer) {
      if (due && session.route_owner != owner.value()) return wait();
      if (!due) {
        session.route_stream = ++next_stream_;
        session.route_owner = owner.value();
      }
      std::vector<std::string_view> views(routed.begin(), routed.end());
      forwarded_commands_.fetch_add(1, std::memory_order_relaxed);
      route_async(session, owner, *table, views, session.defer());
      return Decision::kHandled;
    }
    forwarded_commands_.fetch_add(1, std::memory_order_relaxed);
    auto reply = run_on(owner, std::move(routed), session.resp, *table, seq);
    if (reply.ok()) {
      out.raw(*reply);
    } else {
      out.error(routing_error(reply.status()));
    }
    return Decision::kHandled;
  }
  out.error("TRYAGAIN the cluster map kept changing while routing this command");
  return Decision::kHandled;
}

void Coordinator::Unwatcher::release(NodeId owner, uint64_t watcher) {
  std::lock_guard<std::mutex> lock(mu);
  if (coordinator == nullptr) return;
  auto table = coordinator->table();
  const meta::Member* m = table ? table->member(owner) : nullptr;
  if (m == nullptr || m->peer_address.empty()) return;
  net::ForwardFrame frame;
  frame.epoch = table->epoch().value();
  frame.argv = {std::string(server::kUnwatchVerb), std::to_string(watcher)};
  // Fire and forget: a lost release leaves a watch entry on the owner.
  coordinator->forward_client_->call(owner, m->peer_address, std::move(frame),
                                     [](Result<net::ForwardReplyFrame>) {});
}

server::Router::Decision Coordinator::fan_out(Session& session, std::string_view name,
                                              std::span<const std::string_view> argv,
                                              const std::vector<size_t>& key_positions,
                                              const RoutingTable& table, resp::Writer& out,
                                              storage::Sequence* seq) {
  const bool mset = name == "mset";
  std::vector<Part> parts;
  for (size_t i = 0; i < key_positions.size(); ++i) {
    const NodeId owner = table.route(argv[key_positions[i]]).primary();
    auto it =
        std::find_if(parts.begin(), parts.end(), [&](const Part& p) { return p.node == owner; });
    if (it == parts.end()) {
      parts.push_back(Part{owner, {}, {std::string(argv[0])}, {}});
      it = parts.end() - 1;
    }
    it->key_indexes.push_back(i);
    it->argv.emplace_back(argv[key_positions[i]]);
    if (mset) it->argv.emplace_back(argv[key_positions[i] + 1]);
  }
  for (Part& p : parts) {
    auto reply = run_on(p.node, p.argv, session.resp, table, seq, &session);
    if (!reply.ok()) {
      // Earlier parts may have run: say so, as a cross-node write is not atomic.
      out.error(routing_error(reply.status()) +
                (mset || name == "del" || name == "unlink"
                     ? " (the parts on other nodes may have been applied)"
                     : ""));
      return Decision::kHandled;
    }
    const resp::ParseResult parsed = resp::parse_value(*reply, p.reply);
    if (parsed.status != resp::ParseStatus::kComplete) {
      out.error("ERR unreadable reply from node " + std::to_string(p.node.value()));
      return Decision::kHandled;
    }
    if (p.reply.type == resp::Value::Type::kError) {
      out.raw(*reply);  // the owner's own error, e.g. WRONGTYPE
      return Decision::kHandled;
    }
  }
  if (mset) {
    out.simple("OK");
  } else if (name == "mget") {
    std::vector<const resp::Value*> values(key_positions.size(), nullptr);
    for (const Part& p : parts) {
      for (size_t j = 0; j < p.key_indexes.size() && j < p.reply.elements.size(); ++j) {
        values[p.key_indexes[j]] = &p.reply.elements[j];
      }
    }
    out.array(values.size());
    for (const resp::Value* v : values) {
      if (v == nullptr || v->type == resp::Value::Type::kNull) {
        out.null();
      } else {
        out.bulk(v->str);
      }
    }
  } else {  // del, unlink, exists, touch: counts add up
    int64_t total = 0;
    for (const Part& p : parts) total += p.reply.integer;
    out.integer(total);
  }
  return Decision::kHandled;
}

server::Router::Decision Coordinator::fan_out_all(Session& session, std::string_view name,
                                                  std::span<const std::string_view> argv,
                                                  const RoutingTable& table, resp::Writer& out,
                                                  storage::Sequence* seq) {
  for (NodeId node : table.holders()) {
    auto reply =
        run_on(node, std::vector<std::string>(argv.begin(), argv.end()), session.resp, table, seq);
    if (!reply.ok()) {
      out.error("CLUSTERDOWN " + reply.status().message());
      return Decision::kHandled;
    }
    resp::Value v;
    if (resp::parse_value(*reply, v).status != resp::ParseStatus::kComplete) {
      out.error("ERR unreadable reply from " + describe_node(table, node));
      return Decision::kHandled;
    }
    if (v.type == resp::Value::Type::kError) {
      out.raw(*reply);
      return Decision::kHandled;
    }
  }
  out.simple("OK");
  return Decision::kHandled;
}

// ------------------------------------------------------------ replica groups

std::optional<std::string> Coordinator::place_group_read(
    const Session* session, const meta::Keyspace& keyspace, uint32_t shard,
    const std::vector<NodeId>& owners, GroupId group, bool read_only, const ReplicaGroups& groups,
    ReadPolicy* policy) {
  // Consistency per request: below linearizable, a read may be served by
  // any member that has applied what this session observed.
  const server::SessionConsistency none;
  const server::SessionConsistency& asked =
      session != nullptr ? session->effective_consistency() : none;
  const server::ReadLevel level =
      asked.level ? *asked.level : static_cast<server::ReadLevel>(keyspace.spec.consistency);
  // Causal: a session's causes may live in other groups (it read a value
  // written after a write elsewhere), which per-group positions do not
  // cover, so causal reads are served where every cause is: the leader.
  if (read_only && level != server::ReadLevel::kLinearizable &&
      level != server::ReadLevel::kCausal) {
    policy->local = true;
    policy->min_index = level == server::ReadLevel::kEventual || session == nullptr
                            ? 0
                            : session->positions->at(group.value());
    policy->max_staleness_ms = asked.max_staleness_ms;
  }
  // Under partition (this node reaches no majority of the group): `cp`
  // refuses at once what the group cannot serve here; `ap` serves reads
  // from this node's replica at eventual and refuses writes.
  const size_t reachable = node_.reachable(owners);
  if (reachable >= owners.size() / 2 + 1 || policy->local) return std::nullopt;
  const bool ap = keyspace.spec.partition_mode == meta::PartitionMode::kAvailability;
  if (ap && read_only && groups.hosts(group)) {
    ++partition_degraded_reads_;
    policy->local = true;
    policy->min_index = 0;
    policy->max_staleness_ms = 0;
    return std::nullopt;
  }
  ++partition_refused_;
  return fmt::format(
      "CLUSTERDOWN partition: this node reaches {} of the {} replicas of shard {} of keyspace "
      "'{}', not a majority{}",
      reachable, owners.size(), shard, keyspace.spec.name,
      ap ? "; writes need a majority (PARTITION-MODE availability serves reads here at eventual)"
         : "; the keyspace chooses consistency (PARTITION-MODE consistency)");
}

void Coordinator::hand_over_leadership(std::chrono::milliseconds limit) {
  if (auto g = groups()) {
    const size_t left = g->hand_over_leadership(limit);
    if (left > 0) {
      spdlog::warn("stopping while still leading {} replica group(s): they elect new leaders",
                   left);
    }
  }
}

Status Coordinator::flush_groups(const RoutingTable& table) {
  for (const meta::Keyspace& k : table.map().keyspaces) {
    if (k.spec.replication.kind != meta::Replication::kConsensus) continue;
    for (const meta::Shard& shard : k.shards) {
      auto call = std::make_shared<GroupCall>();
      call->group = ReplicaGroups::group_id(k.spec.name, shard.id.value());
      call->members = shard.owners;
      call->epoch = table.epoch().value();
      call->argv = {std::string(kFlushGroupVerb)};
      call->write = true;
      call->deadline = std::chrono::steady_clock::now() + options_.forward_timeout;
      std::promise<std::string> replied;
      auto reply = replied.get_future();
      call->done = [&replied](std::string r, storage::Sequence) { replied.set_value(std::move(r)); };
      send_group_call(call, NodeId());
      HeldPosts::flush();  // this thread waits: what it holds must leave first
      const std::string r = reply.get();
      if (r != "+OK\r\n") {
        return Status::Unavailable(fmt::format("keyspace '{}' shard {} was not flushed: {}",
                                               k.spec.name, shard.id.value(),
                                               r.substr(0, r.find('\r'))));
      }
    }
  }
  return Status::OK();
}

Status Coordinator::flush_unreplicated(const RoutingTable& table) {
  server::Store* store = service_.store();
  if (store == nullptr) return Status::Internal("no store");
  std::vector<std::string> keys;
  Status s = store->scan("", "", 0, 0, [&](std::string_view key, const server::RecordView&) {
    if (table.route(key).keyspace->spec.replication.kind != meta::Replication::kConsensus) {
      keys.emplace_back(key);
    }
    return true;
  });
  if (!s.ok()) return s;
  // Through the command path, so trackers and watchers hear of it.
  constexpr size_t kBatch = 512;
  for (size_t i = 0; i < keys.size(); i += kBatch) {
    std::vector<std::string> del = {"DEL"};
    for (size_t j = i; j < std::min(keys.size(), i + kBatch); ++j) del.push_back(keys[j]);
    const std::string r = run_local(std::move(del));
    if (!r.empty() && r[0] == '-') return Status::Internal(r.substr(1, r.find('\r') - 1));
  }
  return Status::OK();
}

std::shared_ptr<ReplicaGroups> Coordinator::groups() const {
  std::lock_guard<std::mutex> lock(groups_mu_);
  return groups_;
}

NodeId Coordinator::group_call_target(const GroupCall& call, NodeId hint) const {
  auto groups = this->groups();
  // Whom to ask: the hint, else the leader this node knows, else the members in turn.
  NodeId target = hint;
  const auto is_member = [&](NodeId n) {
    return std::find(call.members.begin(), call.members.end(), n) != call.members.end();
  };
  if ((target.value() == 0 || !is_member(target)) && groups) {
    target = groups->leader(call.group).value_or(NodeId());
  }
  if (target.value() == 0 || !is_member(target) || call.attempt >= call.members.size() * 2) {
    target = call.members[call.attempt % call.members.size()];
  }
  return target;
}

void Coordinator::send_group_call(const std::shared_ptr<GroupCall>& call, NodeId hint) {
  auto groups = this->groups();
  if (stopping_ || !groups) {
    on_group_reply(call, NodeId(), Status::Aborted("node shutting down"), {}, NodeId());
    return;
  }
  // A pipeline's command goes where its pipeline goes (every one to the
  // same member, in order); others where group_call_target says.
  NodeId target = call->pipeline ? call->pipeline->target : group_call_target(*call, hint);
  // (Router 0: this node; a member that gets it over the wire names it by
  // the connection it came on.)
  const PipelinePlace place =
      call->pipeline ? PipelinePlace{0, call->pipeline->stream, call->seq} : PipelinePlace{};
  if (call->policy.local && call->attempt == 0) {
    // Reads below linearizable spread over the members: this node's replica
    // when it has one, else one picked at random.
    thread_local std::minstd_rand spread(std::random_device{}());
    target = groups->hosts(call->group) ? options_.self
                                        : call->members[spread() % call->members.size()];
  }
  if (target == options_.self) {
    call->sent_at = std::chrono::steady_clock::now();
    auto reply = [this, call, target](GroupReply r) {
      if (r.status.ok() && call->positions) {
        if (call->write && (r.index != 0 || !call->blocking)) {  // a timed-out pop wrote nothing
          call->positions->wrote(call->group.value(), r.index);
        } else {
          call->positions->advance(call->group.value(), r.index);
        }
      }
      on_group_reply(call, target, r.status, std::move(r.reply), r.leader_hint);
    };
    if (call->wait) {
      groups->wait_replicas(call->group, call->wait_index, call->wait_replicas, call->wait_timeout,
                            std::move(reply));
    } else {
      groups->execute(call->group, call->resp, call->argv, call->policy, std::move(reply),
                      replication::WriteOrigin{options_.self.value(), call->write_client},
                      call->routed_epoch(), place);
    }
    return;
  }
  auto table = this->table();
  const meta::Member* m = table ? table->member(target) : nullptr;
  if (m == nullptr || m->peer_address.empty()) {
    on_group_reply(call, target, Status::Unavailable("no peer address"), {}, NodeId());
    return;
  }
  if (call->count_if_forwarded) {
    call->count_if_forwarded = false;
    forwarded_commands_.fetch_add(1, std::memory_order_relaxed);
  }
  net::ForwardFrame frame;
  // A group frame's epoch is the map its keys were routed by (0: none; the
  // member holds the call to it: ReplicaGroups::execute).
  frame.epoch = call->routed_epoch();
  frame.resp = static_cast<uint8_t>(call->resp);
  frame.group = call->group.value();
  frame.local_read = call->policy.local;
  frame.min_index = call->policy.min_index;
  frame.max_staleness_ms = static_cast<uint64_t>(call->policy.max_staleness_ms);
  frame.argv = call->argv;
  if (place.stream != 0) {
    frame.stream = place.stream;
    frame.stream_seq = place.seq;
  }
  if (call->track || call->write_client != 0) {
    // A tracked read (recorded for this node) or a tracking client's write
    // (named in its entry, for NOLOOP).
    frame.flags |= net::ForwardFrame::kTrack;
    frame.origin_node = options_.self.value();
    frame.origin_client = call->track ? call->track_client : call->write_client;
  }
  if (call->wait) {
    frame.wait_replicas = true;
    frame.argv = {std::to_string(call->wait_index), std::to_string(call->wait_replicas),
                  std::to_string(call->wait_timeout.count())};
  }
  call->sent_at = std::chrono::steady_clock::now();
  auto on_reply = [this, call, target](Result<net::ForwardReplyFrame> r) {
                          if (!r.ok()) {
                            // A write that reached the member before it went
                            // away (Timeout: "it may or may not have run") may
                            // have committed: sent again, it could take effect
                            // twice. Its client learns the outcome is unknown.
                            // Otherwise the member is unreachable: try another.
                            // A pipeline's read too: sent again, it would run
                            // after the pipeline's later commands.
                            const bool maybe_ran =
                                r.status().code() == Status::Code::kTimeout &&
                                ((call->write && !call->blocking) || call->pipeline);
                            on_group_reply(call, target,
                                           maybe_ran ? r.status()
                                                     : Status::Unavailable(r.status().message()),
                                           {}, NodeId());
                            return;
                          }
                          if (r->status.ok() && call->positions) {
                            if (call->write && (r->index != 0 || !call->blocking)) {
                              call->positions->wrote(call->group.value(), r->index);
                            } else {
                              call->positions->advance(call->group.value(), r->index);
                            }
                          }
                          on_group_reply(call, target, r->status, std::move(r->reply),
                                         NodeId(r->leader_hint));
  };
  if (call->blocking) {
    forward_client_->call(target, m->peer_address, std::move(frame), std::move(on_reply),
                          blocking_call_timeout(call->block_deadline));
  } else {
    forward_client_->call(target, m->peer_address, std::move(frame), std::move(on_reply));
  }
}

void Coordinator::on_group_reply(const std::shared_ptr<GroupCall>& call, NodeId target,
                                 const Status& status, std::string reply, NodeId hint) {
  if (call->pipeline) {
    // A command of a pipeline: one that did not run waits to be sent again
    // in its order (resend_in_order); any other answer is final.
    std::shared_ptr<GroupPipeline> pipeline = std::move(call->pipeline);
    call->pipeline = nullptr;
    const bool not_run =
        (status.code() == Status::Code::kUnavailable || status.code() == Status::Code::kAborted) &&
        !stopping_;
    {
      std::lock_guard lock(pipeline->mu);
      pipeline->unsettled.erase(call->seq);
      if (status.ok()) pipeline->last_served = std::chrono::steady_clock::now();
      if (not_run) {
        pipeline->broken = true;
        pipeline->to_resend.emplace(call->seq, GroupPipeline::Refused{call, target, status, hint});
      }
    }
    if (!not_run) {
      --pipeline->in_flight;
      on_group_reply(call, target, status, std::move(reply), hint);
    }
    resend_in_order(pipeline);
    return;
  }
  const auto fail = [&](std::string_view prefix, const std::string& message) {
    std::string out;
    resp::Writer(&out, call->resp).error(std::string(prefix) + message);
    call->done(std::move(out), 0);
  };
  if (status.ok()) {
    call->served = true;
    call->done(std::move(reply), 0);
    return;
  }
  if (status.code() == Status::Code::kTimeout) {
    fail("TIMEOUT ", status.message());
    return;
  }
  if (status.is_invalid_argument()) {
    // The request's fault (a write over the size limit, a level the command
    // cannot be served at), not the cluster's.
    fail("ERR ", status.message());
    return;
  }
  if (status.code() == Status::Code::kAborted && !call->keys.empty() && !stopping_) {
    reroute_group_call(call);  // a stale route: it did not run
    return;
  }
  if (status.code() != Status::Code::kUnavailable || stopping_) {
    fail("CLUSTERDOWN ", status.message());
    return;
  }
  if (call->blocking) {
    // A blocking command that did not run (its leader lost office while it
    // waited, or died): handed on to the next leader with the time left,
    // unless its client went away. One that waited a while gets a new
    // window to find that leader.
    if (call->cancelled && call->cancelled->load()) {
      call->done(std::string(), 0);
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - call->sent_at >= std::chrono::seconds(1)) {
      call->deadline = std::max(call->deadline, now + options_.forward_timeout);
    }
    set_block_time_left(call->argv, 2, call->block_deadline);
  }
  ++call->attempt;
  if (call->policy.local) {
    // The member could not serve it at this level (behind the session, or
    // staler than the bound): the leader serves every level.
    call->policy.local = false;
  }
  if (std::chrono::steady_clock::now() >= call->deadline) {
    fail("CLUSTERDOWN ",
         "replica group " + std::to_string(call->group.value()) + " has no leader this node " +
             "can reach (its majority may be down or cut off): " + status.message());
    return;
  }
  // A fresh hint other than whom we asked: go there at once; otherwise wait a
  // little (an election takes an election timeout or two) and try again.
  const bool fresh_hint = hint.value() != 0 && hint != target;
  auto groups = this->groups();
  if (!groups) {
    fail("CLUSTERDOWN ", "node shutting down");
    return;
  }
  groups->run_after(std::chrono::milliseconds(fresh_hint ? 0 : 25),
                    [this, call, hint, fresh_hint](bool run) {
                      if (!run) {
                        on_group_reply(call, NodeId(), Status::Aborted("node shutting down"), {},
                                       NodeId());
                        return;
                      }
                      send_group_call(call, fresh_hint ? hint : NodeId());
                    });
}

void Coordinator::resend_in_order(const std::shared_ptr<GroupPipeline>& pipeline) {
  GroupPipeline::Refused next;
  {
    std::lock_guard lock(pipeline->mu);
    if (pipeline->resending || pipeline->to_resend.empty()) return;
    const uint64_t first = pipeline->to_resend.begin()->first;
    // A command before it is still out: its answer may be another refusal.
    if (!pipeline->unsettled.empty() && *pipeline->unsettled.begin() < first) return;
    next = std::move(pipeline->to_resend.begin()->second);
    pipeline->to_resend.erase(pipeline->to_resend.begin());
    pipeline->resending = true;
    const auto now = std::chrono::steady_clock::now();
    if (now - pipeline->last_served < options_.forward_timeout) {
      next.call->deadline = std::max(next.call->deadline, now + options_.forward_timeout);
    }
  }
  // Sent again alone, with the usual retries; once it is answered, the next.
  auto done = std::move(next.call->done);
  GroupCall* resent = next.call.get();  // alive while its done runs
  next.call->done = [this, pipeline, resent, done = std::move(done)](std::string reply,
                                                                     storage::Sequence seq) {
    // Counted out before its reply reaches the client (see route: the
    // client joins while every reply due is one of the pipeline's).
    --pipeline->in_flight;
    done(std::move(reply), seq);
    {
      std::lock_guard lock(pipeline->mu);
      pipeline->resending = false;
      if (resent->served) pipeline->last_served = std::chrono::steady_clock::now();
    }
    resend_in_order(pipeline);
  };
  on_group_reply(next.call, next.target, next.status, {}, next.hint);
}

void Coordinator::reroute_group_call(const std::shared_ptr<GroupCall>& call) {
  auto work = [this, call](bool run) {
    const auto fail = [&](std::string_view prefix, const std::string& message) {
      std::string out;
      resp::Writer(&out, call->resp).error(std::string(prefix) + message);
      call->done(std::move(out), 0);
    };
    if (!run) {
      fail("CLUSTERDOWN ", "node " + std::to_string(options_.self.value()) + " is shutting down");
      return;
    }
    auto table = wait_for_epoch(call->epoch + 1);
    if (!table || table->epoch().value() <= call->epoch) {
      fail("CLUSTERDOWN ", fmt::format("replica group {} refused the command as routed by map "
                                       "epoch {}, and no newer map reached node {}",
                                       call->group.value(), call->epoch, options_.self.value()));
      return;
    }
    if (std::chrono::steady_clock::now() >= call->deadline) {
      fail("CLUSTERDOWN ", fmt::format("replica group {} refused the command as routed by an "
                                       "older map until its time ran out",
                                       call->group.value()));
      return;
    }
    std::vector<NodeId> members;
    for (const std::string& key : call->keys) {
      const Route r = table->route(key);
      if (r.keyspace->creating) {
        std::string out;
        resp::Writer(&out, call->resp).error(being_created(r.keyspace->spec.name));
        call->done(std::move(out), 0);
        return;
      }
      if (r.keyspace->dropping) {
        fail("TRYAGAIN ", "keyspace '" + r.keyspace->spec.name + "' is being dropped");
        return;
      }
      if (r.keyspace->spec.replication.kind != meta::Replication::kConsensus ||
          ReplicaGroups::group_id(r.keyspace->spec.name, r.shard) != call->group) {
        fail("TRYAGAIN ", fmt::format("'{}' moved to keyspace '{}' while the command was routed "
                                      "(it did not run): send it again",
                                      key.substr(0, 64), r.keyspace->spec.name));
        return;
      }
      members = r.owners;
    }
    call->epoch = table->epoch().value();
    call->members = std::move(members);
    send_group_call(call, NodeId());
  };
  if (!router_jobs_->post([work] { work(true); })) work(false);
}

void Coordinator::on_group_frame(uint64_t source, net::ForwardFrame frame, const Respond& respond) {
  auto groups = this->groups();
  if (!groups) {
    net::ForwardReplyFrame reply;
    reply.status = Status::Unavailable("node " + std::to_string(options_.self.value()) +
                                       " does not serve replicated keyspaces");
    respond(std::move(reply));
    return;
  }
  const auto respond_with = [respond](GroupReply r) {
    net::ForwardReplyFrame reply;
    reply.status = r.status;
    reply.reply = std::move(r.reply);
    reply.leader_hint = r.leader_hint.value();
    reply.index = r.index;
    respond(std::move(reply));
  };
  if (frame.wait_replicas) {
    std::optional<int64_t> index, n, timeout;
    if (frame.argv.size() == 3) {
      index = server::parse_int64(frame.argv[0]);
      n = server::parse_int64(frame.argv[1]);
      timeout = server::parse_int64(frame.argv[2]);
    }
    if (!index || !n || !timeout || *index < 0 || *timeout < 0) {
      net::ForwardReplyFrame reply;
      reply.status = Status::InvalidArgument("WAIT's question is {index, numreplicas, timeout}");
      respond(std::move(reply));
      return;
    }
    groups->wait_replicas(GroupId(frame.group), static_cast<uint64_t>(*index), *n,
                          std::chrono::milliseconds(*timeout), respond_with);
    return;
  }
  replication::WriteOrigin origin;
  if ((frame.flags & net::ForwardFrame::kTrack) != 0) {
    // A tracked read from a node that is no member: recorded for that node
    // before it runs (a write applied here after it is reported there). A
    // tracking client's write: its entry names it (NOLOOP).
    service_.tracking_peer_read(frame.origin_node, frame.argv);
    origin = replication::WriteOrigin{frame.origin_node, frame.origin_client};
  }
  ReadPolicy policy;
  policy.local = frame.local_read;
  policy.min_index = frame.min_index;
  policy.max_staleness_ms = static_cast<int64_t>(
      std::min<uint64_t>(frame.max_staleness_ms, std::numeric_limits<int64_t>::max()));
  // A command of a client's pipeline (PipelinePlace), named by the
  // connection it came on: its frames arrive in the order they were sent.
  const PipelinePlace place =
      frame.stream != 0 ? PipelinePlace{source, frame.stream, frame.stream_seq} : PipelinePlace{};
  groups->execute(GroupId(frame.group), frame.resp == 3 ? 3 : 2, std::move(frame.argv), policy,
                  respond_with, origin, frame.epoch, place);
}

void Coordinator::wait_replicas(const server::Session& session, int64_t numreplicas,
                                int64_t timeout_ms, std::function<void(std::string)> done) {
  const auto last = session.positions->last_write();
  auto table = this->table();
  if (!last || !table || !groups()) {
    done(":0\r\n");  // nothing replicated written on this connection
    return;
  }
  auto call = std::make_shared<GroupCall>();
  for (const meta::Keyspace& k : table->map().keyspaces) {
    if (k.spec.replication.kind != meta::Replication::kConsensus) continue;
    for (const meta::Shard& shard : k.shards) {
      if (ReplicaGroups::group_id(k.spec.name, shard.id.value()).value() == last->first) {
        call->members = shard.owners;
      }
    }
  }
  if (call->members.empty()) {
    done(":0\r\n");  // its keyspace was dropped
    return;
  }
  call->group = GroupId(last->first);
  call->resp = session.resp;
  call->epoch = table->epoch().value();
  call->wait = true;
  call->wait_index = last->second;
  call->wait_replicas = numreplicas;
  // A routed call has forward_timeout to answer: WAIT waits at most a second
  // less (timeout 0, "forever" in Redis, included).
  const auto cap = options_.forward_timeout - std::chrono::milliseconds(1000);
  call->wait_timeout = timeout_ms == 0 ? cap : std::min(cap, std::chrono::milliseconds(timeout_ms));
  call->deadline = std::chrono::steady_clock::now() + options_.forward_timeout;
  call->done = [done = std::move(done)](std::string reply, storage::Sequence) {
    done(std::move(reply));
  };
  send_group_call(call, NodeId());
}

// ------------------------------------------------------------ pub/sub

void Coordinator::broadcast_publish(std::string_view channel, std::string_view message) {
  auto table = this->table();
  if (!table) return;
  net::ForwardFrame frame;
  frame.epoch = table->epoch().value();
  frame.flags = net::ForwardFrame::kPublish;
  frame.argv = {std::string(channel), std::string(message)};
  for (const meta::Member& m : table->map().members) {
    if (m.id == options_.self || m.state == meta::MemberState::kRemoved || m.peer_address.empty()) {
      continue;
    }
    // Fire and forget, as Redis Cluster's bus: a node that is down misses it.
    forward_client_->call(
        m.id, m.peer_address, frame, [id = m.id](Result<net::ForwardReplyFrame> r) {
          const Status& s = r.ok() ? r->status : r.status();
          if (!s.ok()) {
            spdlog::debug("PUBLISH not delivered to node {}: {}", id.value(), s.to_string());
          }
        });
  }
}

// ------------------------------------------------------------ async routing

void Coordinator::route_async(const Session& session, NodeId owner, const RoutingTable& table,
                              std::span<const std::string_view> argv, server::DeferredReply done) {
  // Commands held back in a batch were sent before this one.
  if (session.routed_batch) session.routed_batch->flush();
  const meta::Member* m = table.member(owner);
  if (m == nullptr || m->peer_address.empty()) {
    std::string out;
    resp::Writer(&out, session.resp)
        .error("CLUSTERDOWN node " + std::to_string(owner.value()) + " has no peer address");
    done(std::move(out), 0);
    return;
  }
  net::ForwardFrame frame;
  frame.epoch = table.epoch().value();
  frame.resp = static_cast<uint8_t>(session.resp);
  frame.stream = session.route_stream;
  frame.argv.assign(argv.begin(), argv.end());
  mark_tracking(session, frame);
  // Kept to route again if the owner refuses a stale route.
  struct Retry {
    std::vector<std::string> argv;
    int resp;
    bool redirects;
    int db;
    uint64_t id;
    bool tracking;
    bool track_keys;
    bool track_write;
  };
  auto retry = std::make_shared<Retry>(Retry{frame.argv, session.resp, session.redirects,
                                             session.db, session.id, session.tracking,
                                             session.track_keys, session.track_write});
  const uint64_t epoch = frame.epoch;
  const uint64_t stream = frame.stream;
  forward_client_->call(owner, m->peer_address, std::move(frame),
                        [this, retry, epoch, stream,
                         done = std::move(done)](Result<net::ForwardReplyFrame> r) mutable {
                          if (r.ok() && r->status.ok()) {
                            // The owner replied once its write was durable: nothing to wait for
                            // here.
                            done(std::move(r->reply), 0);
                            return;
                          }
                          const bool stale = r.ok() && r->status.code() == Status::Code::kAborted;
                          const bool behind_stale =
                              r.ok() && stream != 0 && r->status.code() == Status::Code::kBusy;
                          if (stale || behind_stale) {
                            // A stale route: the owner's map is newer. Catch up and route again,
                            // off this (the forward client's) thread, after the stream's earlier
                            // re-routes (the owner refuses the rest of the stream: they come here
                            // in the order sent).
                            Session again;
                            again.resp = retry->resp;
                            again.redirects = retry->redirects;
                            again.db = retry->db;
                            again.id = retry->id;
                            again.tracking = retry->tracking;
                            again.track_keys = retry->track_keys;
                            again.track_write = retry->track_write;
                            finish_on_router_pool(again, std::move(retry->argv),
                                                  stale ? epoch + 1 : 0, std::move(done), stream);
                            return;
                          }
                          const Status& s = r.ok() ? r->status : r.status();
                          std::string out;
                          resp::Writer(&out, retry->resp).error(routing_error(s));
                          done(std::move(out), 0);
                        });
}

void Coordinator::finish_on_router_pool(const Session& session, std::vector<std::string> argv,
                                        uint64_t wait_epoch, server::DeferredReply done,
                                        uint64_t stream) {
  struct Job {
    std::vector<std::string> argv;
    int resp;
    bool redirects;
    int db;
    uint64_t id;  // with tracking: the client's, so the owner records its node
    bool tracking;
    bool track_keys;
    bool track_write;
    server::DeferredReply done;
  };
  auto job = std::make_shared<Job>(Job{std::move(argv), session.resp, session.redirects, session.db,
                                       session.id, session.tracking, session.track_keys,
                                       session.track_write, std::move(done)});
  auto work = [this, job, wait_epoch](bool run) {
    if (!run) {
      std::string out;
      resp::Writer(&out, job->resp)
          .error("CLUSTERDOWN node " + std::to_string(options_.self.value()) + " is shutting down");
      job->done(std::move(out), 0);
      return;
    }
    if (wait_epoch != 0) wait_for_epoch(wait_epoch);
    // A session of its own that cannot defer: the router takes the blocking
    // path here, or runs the command locally if this node owns it by now.
    Session session;
    session.authenticated = true;
    session.resp = job->resp;
    session.redirects = job->redirects;
    session.db = job->db;
    session.id = job->id;
    session.tracking = job->tracking;
    session.track_keys = job->track_keys;
    session.track_write = job->track_write;
    session.continued = true;
    session.addr = "router";
    std::vector<std::string_view> views(job->argv.begin(), job->argv.end());
    std::string out;
    resp::Writer writer(&out, job->resp);
    const storage::Sequence seq = service_.execute(session, views, writer);
    job->done(std::move(out), seq);
  };
  if (stream == 0) {
    if (!router_jobs_->post([work] { work(true); })) work(false);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(reroutes_mu_);
    auto [it, fresh] = reroutes_.try_emplace(stream);
    it->second.push_back(std::move(work));
    if (!fresh) return;  // its runner takes it in turn
  }
  if (!router_jobs_->post([this, stream] { run_reroutes(stream); })) {
    std::deque<std::function<void(bool)>> jobs;
    {
      std::lock_guard<std::mutex> lock(reroutes_mu_);
      auto it = reroutes_.find(stream);
      jobs.swap(it->second);
      reroutes_.erase(it);
    }
    for (auto& j : jobs) j(false);
  }
}

void Coordinator::run_reroutes(uint64_t stream) {
  while (true) {
    std::function<void(bool)> job;
    {
      std::lock_guard<std::mutex> lock(reroutes_mu_);
      auto it = reroutes_.find(stream);
      if (it->second.empty()) {
        reroutes_.erase(it);
        return;
      }
      job = std::move(it->second.front());
      it->second.pop_front();
    }
    job(true);
  }
}

// ------------------------------------------------------------------ scans

NodeScanPage Coordinator::local_scan_page(const server::KeyPageRequest& request) {
  NodeScanPage page;
  page.node = options_.self;
  auto before = table();
  auto read = service_.key_page(request);
  auto after = table();
  page.epoch_before = before ? before->epoch().value() : 0;
  page.epoch_after = after ? after->epoch().value() : 0;
  if (!read.ok() || !after) {
    // Reported as a map change: the router asks again, then gives up.
    page.epoch_after = 0;
    return page;
  }
  page.page.end = read->end;
  page.page.last = std::move(read->last);
  // Only keys this node serves: not copies a move is bringing here.
  for (size_t i = 0; i < read->keys.size(); ++i) {
    if (!reports_in_scan(*after, options_.self, read->keys[i], read->positions[i])) continue;
    page.page.keys.push_back(std::move(read->keys[i]));
    page.page.positions.push_back(std::move(read->positions[i]));
  }
  return page;
}

std::vector<Result<net::ForwardReplyFrame>> Coordinator::call_all(
    const RoutingTable& table, const std::vector<std::pair<NodeId, net::ForwardFrame>>& calls) {
  struct Gather {
    std::mutex mu;
    std::condition_variable cv;
    size_t left = 0;
    std::vector<Result<net::ForwardReplyFrame>> replies;
  };
  auto g = std::make_shared<Gather>();
  g->left = calls.size();
  g->replies.assign(calls.size(), Status::Unavailable("not sent"));
  for (size_t i = 0; i < calls.size(); ++i) {
    const meta::Member* m = table.member(calls[i].first);
    auto complete = [g, i](Result<net::ForwardReplyFrame> r) {
      std::lock_guard<std::mutex> lock(g->mu);
      g->replies[i] = std::move(r);
      if (--g->left == 0) g->cv.notify_all();
    };
    if (m == nullptr || m->peer_address.empty()) {
      complete(Status::Unavailable(describe_node(table, calls[i].first) + " has no peer address"));
      continue;
    }
    forward_client_->call(calls[i].first, m->peer_address, calls[i].second, complete);
  }
  std::unique_lock<std::mutex> lock(g->mu);
  g->cv.wait(lock, [&] { return g->left == 0; });  // the forward client times every call out
  return std::move(g->replies);
}

Result<std::vector<std::string>> Coordinator::call_every_group(
    const std::vector<ScannedGroup>& scanned, const std::vector<std::string>& argv,
    const server::Session* session, const RoutingTable& table) {
  std::vector<std::string> replies;
  if (scanned.empty()) return replies;
  auto groups = this->groups();
  if (!groups) return Status::Unavailable("this node does not serve replicated keyspaces");
  struct Gather {
    std::mutex mu;
    std::condition_variable cv;
    size_t left = 0;
    std::vector<std::string> replies;
  };
  auto gather = std::make_shared<Gather>();
  std::vector<std::shared_ptr<GroupCall>> calls;
  for (size_t i = 0; i < scanned.size(); ++i) {
    const ScannedGroup& sg = scanned[i];
    auto call = std::make_shared<GroupCall>();
    call->group = ReplicaGroups::group_id(sg.keyspace->spec.name, sg.shard);
    call->members = sg.owners;
    call->epoch = table.epoch().value();
    call->argv = argv;
    call->deadline = std::chrono::steady_clock::now() + options_.forward_timeout;
    if (session != nullptr) call->positions = session->positions;
    if (auto refused = place_group_read(session, *sg.keyspace, sg.shard, sg.owners, call->group,
                                        /*read_only=*/true, *groups, &call->policy)) {
      return Status::Unavailable(refused->substr(refused->find(' ') + 1));
    }
    call->done = [gather, i](std::string reply, storage::Sequence) {
      std::lock_guard<std::mutex> lock(gather->mu);
      gather->replies[i] = std::move(reply);
      if (--gather->left == 0) gather->cv.notify_all();
    };
    calls.push_back(std::move(call));
  }
  gather->left = calls.size();
  gather->replies.resize(calls.size());
  for (const auto& call : calls) send_group_call(call, NodeId());
  HeldPosts::flush();  // this thread waits: what it holds must leave first
  std::unique_lock<std::mutex> lock(gather->mu);
  gather->cv.wait(lock, [&] { return gather->left == 0; });  // every call has a deadline
  return std::move(gather->replies);
}

namespace {

// A group's refusal or failure, as a scan or count reports it.
Status group_did_not_answer(const ScannedGroup& group, const Status& why) {
  std::string text = why.message();
  // The group's own refusal starts with its code (CLUSTERDOWN, TRYAGAIN ...).
  if (why.code() == Status::Code::kUnavailable) text = text.substr(text.find(' ') + 1);
  return Status::Unavailable(fmt::format("shard {} of keyspace '{}' did not answer: {}",
                                         group.shard, group.keyspace->spec.name, text));
}

}  // namespace

Result<std::vector<NodeScanPage>> Coordinator::scan_groups(const server::KeyPageRequest& request,
                                                           const server::Session* session,
                                                           const RoutingTable& table) {
  const std::vector<ScannedGroup> scanned = scanned_groups(table);
  auto replies =
      call_every_group(scanned, encode_page_request(request, kGroupScanVerb), session, table);
  if (!replies.ok()) return replies.status();
  std::vector<NodeScanPage> pages;
  for (size_t i = 0; i < scanned.size(); ++i) {
    auto page = decode_node_page(options_.self, (*replies)[i]);
    if (!page.ok()) return group_did_not_answer(scanned[i], page.status());
    // A group's records stay in its scope whatever the map does: its page
    // holds under any epoch.
    page->epoch_before = page->epoch_after = table.epoch().value();
    pages.push_back(std::move(page).value());
  }
  return pages;
}

bool Coordinator::holds_only_groups_shards(const RoutingTable& table, NodeId node) {
  for (const meta::Keyspace& k : table.map().keyspaces) {
    if (k.spec.replication.kind == meta::Replication::kConsensus && !k.moving_from) continue;
    for (const meta::Shard& shard : k.shards) {
      if (std::find(shard.owners.begin(), shard.owners.end(), node) != shard.owners.end()) {
        return false;
      }
    }
  }
  return true;
}

server::Store::KeyCounts Coordinator::local_key_counts() {
  server::Store* store = service_.store();
  return store != nullptr ? store->scope_counts(0) : server::Store::KeyCounts{};
}

Result<RandomKeyOffer> Coordinator::local_random_offer(const RoutingTable& table) {
  server::Store* store = service_.store();
  RandomKeyOffer offer;
  if (store == nullptr) return offer;
  offer.keys = store->scope_counts(0).keys;
  // A key it keeps but does not serve (a copy a move brings here) is no
  // offer: try a few others.
  std::string position;
  for (int attempt = 0; attempt < 8; ++attempt) {
    auto picked = server::random_key(*store, server::unix_time_ms(), 0);
    if (!picked.ok()) return picked.status();
    if (!*picked) break;
    server::data_key(0, **picked, &position);
    if (reports_in_scan(table, options_.self, **picked, position)) {
      offer.key = std::move(*picked);
      break;
    }
  }
  return offer;
}

Result<std::vector<std::string>> Coordinator::ask_every_holder(
    const RoutingTable& table, std::string_view verb,
    const std::function<Result<std::string>()>& local) {
  net::ForwardFrame frame;
  frame.epoch = table.epoch().value();
  frame.argv = {std::string(verb)};
  std::vector<std::pair<NodeId, net::ForwardFrame>> calls;
  for (NodeId node : table.holders()) {
    if (node != options_.self) calls.emplace_back(node, frame);
  }
  auto replies = call_all(table, calls);
  std::vector<std::string> answers;
  if (std::binary_search(table.holders().begin(), table.holders().end(), options_.self)) {
    auto own = local();
    if (!own.ok()) return own.status();
    answers.push_back(std::move(own).value());
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    const Status failed = !replies[i].ok() ? replies[i].status() : replies[i]->status;
    if (!failed.ok()) {
      // Its groups' keys come from the groups.
      if (!holds_only_groups_shards(table, calls[i].first)) return failed;
      continue;
    }
    answers.push_back(std::move(replies[i]->reply));
  }
  return answers;
}

Result<std::optional<std::string>> Coordinator::random_cluster_key(const server::Session* session) {
  auto table = this->table();
  if (!table) return Status::Unavailable("the cluster map is not known yet");
  auto nodes = ask_every_holder(*table, kRandomVerb, [&]() -> Result<std::string> {
    auto own = local_random_offer(*table);
    if (!own.ok()) return own.status();
    return encode_random_offer(*own);
  });
  if (!nodes.ok()) return nodes.status();
  std::vector<RandomKeyOffer> offers;
  for (const std::string& reply : *nodes) {
    auto offer = decode_random_offer(reply);
    if (!offer.ok()) return offer.status();
    offers.push_back(std::move(offer).value());
  }
  const std::vector<ScannedGroup> scanned = scanned_groups(*table);
  auto groups = call_every_group(scanned, {std::string(kGroupRandomVerb)}, session, *table);
  if (!groups.ok()) return groups.status();
  for (size_t i = 0; i < scanned.size(); ++i) {
    auto offer = decode_random_offer((*groups)[i]);
    if (!offer.ok()) return group_did_not_answer(scanned[i], offer.status());
    offers.push_back(std::move(offer).value());
  }
  thread_local Random rng(std::random_device{}());
  return pick_random_key(offers, [](uint64_t n) { return rng.uniform(n); });
}

Result<server::Store::KeyCounts> Coordinator::count_cluster_keys(const server::Session* session) {
  auto table = this->table();
  if (!table) return Status::Unavailable("the cluster map is not known yet");
  auto nodes = ask_every_holder(*table, kCountVerb, [&]() -> Result<std::string> {
    return encode_key_counts(local_key_counts());
  });
  if (!nodes.ok()) return nodes.status();
  server::Store::KeyCounts total;
  const auto add = [&](const server::Store::KeyCounts& c) {
    total.keys += c.keys;
    total.expires += c.expires;
  };
  for (const std::string& reply : *nodes) {
    auto counts = decode_key_counts(reply);
    if (!counts.ok()) return counts.status();
    add(*counts);
  }
  const std::vector<ScannedGroup> scanned = scanned_groups(*table);
  auto groups = call_every_group(scanned, {std::string(kGroupCountVerb)}, session, *table);
  if (!groups.ok()) return groups.status();
  for (size_t i = 0; i < scanned.size(); ++i) {
    auto counts = decode_key_counts((*groups)[i]);
    if (!counts.ok()) return group_did_not_answer(scanned[i], counts.status());
    add(*counts);
  }
  return total;
}

Result<MergedPage> Coordinator::scan_cluster(const server::KeyPageRequest& request,
                                             const server::Session* session) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    auto table = this->table();
    if (!table) return Status::Unavailable("the cluster map is not known yet");
    net::ForwardFrame frame;
    frame.epoch = table->epoch().value();
    frame.argv = encode_page_request(request);
    std::vector<std::pair<NodeId, net::ForwardFrame>> calls;
    for (NodeId node : table->holders()) {
      if (node != options_.self) calls.emplace_back(node, frame);
    }
    auto replies = call_all(*table, calls);
    std::vector<NodeScanPage> pages;
    if (std::binary_search(table->holders().begin(), table->holders().end(), options_.self)) {
      pages.push_back(local_scan_page(request));
    }
    for (size_t i = 0; i < calls.size(); ++i) {
      if (!replies[i].ok() || !replies[i]->status.ok()) {
        // Tolerable only when the node owns nothing but replica groups'
        // shards, which their own pages report.
        if (!holds_only_groups_shards(*table, calls[i].first)) {
          return !replies[i].ok() ? replies[i].status() : replies[i]->status;
        }
        continue;
      }
      auto page = decode_node_page(calls[i].first, replies[i]->reply);
      if (!page.ok()) return page.status();
      pages.push_back(std::move(page).value());
    }
    auto group_pages = scan_groups(request, session, *table);
    if (!group_pages.ok()) return group_pages.status();
    if (read_under_one_epoch(pages, table->epoch().value())) {
      pages.insert(pages.end(), std::make_move_iterator(group_pages->begin()),
                   std::make_move_iterator(group_pages->end()));
      return merge_pages(pages);
    }
    // Some node read its keys under another map: catch up and read again.
    const uint64_t newest = newest_epoch(pages);
    wait_for_epoch(std::max(newest, table->epoch().value() + 1));
  }
  return Status::Busy("the cluster map kept changing during the scan; try again");
}

server::Router::Decision Coordinator::scan(const Session& session,
                                           std::span<const std::string_view> argv,
                                           resp::Writer& out) {
  auto cursor = server::parse_cursor(argv[1]);
  if (!cursor) {
    out.error("ERR invalid cursor");
    return Decision::kHandled;
  }
  auto request = server::parse_scan_options(argv.subspan(2));
  if (!request.ok()) {
    out.error(request.status().message());
    return Decision::kHandled;
  }
  if (*cursor != 0) {
    // Cursors name a key in this node's table: another node does not know them.
    request->after = cursors_.find(*cursor);
    if (!request->after) {
      out.error("ERR invalid cursor (a SCAN cursor is valid on the node that returned it)");
      return Decision::kHandled;
    }
  }
  auto merged = scan_cluster(*request, &session);
  if (!merged.ok()) {
    out.error((merged.status().code() == Status::Code::kBusy ? "TRYAGAIN " : "CLUSTERDOWN ") +
              merged.status().message());
    return Decision::kHandled;
  }
  out.array(2);
  out.bulk(merged->resume_after ? std::to_string(cursors_.issue(*merged->resume_after)) : "0");
  out.array(merged->keys.size());
  for (const std::string& k : merged->keys) out.bulk(k);
  return Decision::kHandled;
}

server::Router::Decision Coordinator::list_keys(const Session& session,
                                                std::span<const std::string_view> argv,
                                                resp::Writer& out) {
  server::KeyPageRequest request;
  request.pattern = std::string(argv[1]);  // limit 0: each node's whole key set
  auto merged = scan_cluster(request, &session);
  if (!merged.ok()) {
    out.error((merged.status().code() == Status::Code::kBusy ? "TRYAGAIN " : "CLUSTERDOWN ") +
              merged.status().message());
    return Decision::kHandled;
  }
  out.array(merged->keys.size());
  for (const std::string& k : merged->keys) out.bulk(k);
  return Decision::kHandled;
}

}  // namespace statekv::coord
