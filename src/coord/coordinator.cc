#include "coord/coordinator.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "meta/meta_client.h"
#include "meta/transitions.h"
#include "node/raft_register_client.h"
#include "partition/slots.h"
#include "resp/value.h"
#include "server/command.h"

namespace statekv::coord {

namespace {

using server::CommandSpec;
using server::Session;

// The marker an owner writes for a route it refuses; the routed-command
// executor turns it into a status, so it never reaches a client.
constexpr std::string_view kStaleRoute = "STALEROUTE";

// Positions of the key arguments of a command, by its spec (Redis's
// first_key / last_key / key_step convention).
std::vector<size_t> key_positions(const CommandSpec& spec, std::span<const std::string_view> argv) {
  std::vector<size_t> out;
  if (spec.first_key <= 0 || spec.key_step <= 0) return out;
  const int argc = static_cast<int>(argv.size());
  const int last = spec.last_key < 0 ? argc + spec.last_key : spec.last_key;
  for (int i = spec.first_key; i <= last && i < argc; i += spec.key_step) {
    out.push_back(static_cast<size_t>(i));
  }
  return out;
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

  control_thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(control_mu_);
    while (true) {
      control_cv_.wait(lock, [this] { return stopping_ || !control_.empty(); });
      if (control_.empty()) return;
      auto job = std::move(control_.front());
      control_.erase(control_.begin());
      lock.unlock();
      job();
      lock.lock();
    }
  });
  for (size_t i = 0; i < std::max<size_t>(1, options_.workers); ++i) {
    workers_.emplace_back([this] {
      std::unique_lock<std::mutex> lock(work_mu_);
      while (true) {
        work_cv_.wait(lock, [this] { return stopping_ || !work_.empty(); });
        if (work_.empty()) return;
        auto job = std::move(work_.front());
        work_.erase(work_.begin());
        lock.unlock();
        job();
        lock.lock();
      }
    });
  }
  auto sub = node_.map_watch().subscribe(
      [this](const std::shared_ptr<const meta::ClusterMap>& map) { on_map(map); });
  subscription_ = sub.id;
  if (sub.current) on_map(sub.current);
  node_.raft().set_forward_handler(
      [this](net::ForwardFrame frame, std::function<void(net::ForwardReplyFrame)> respond) {
        if (!frame.argv.empty() && frame.argv[0] == "__migrate") {
          // Control work: its own thread (see post_control).
          post_control([this, frame = std::move(frame), respond = std::move(respond)]() mutable {
            on_forward(std::move(frame), std::move(respond));
          });
          return;
        }
        std::lock_guard<std::mutex> lock(work_mu_);
        work_.push_back([this, frame = std::move(frame), respond = std::move(respond)]() mutable {
          on_forward(std::move(frame), std::move(respond));
        });
        work_cv_.notify_one();
      });
}

Coordinator::~Coordinator() {
  node_.raft().set_forward_handler(nullptr);
  node_.map_watch().unsubscribe(subscription_);
  // Release anything waiting at a frozen gate, so the workers can finish.
  mover_->gate().thaw();
  {
    std::lock_guard<std::mutex> lock(work_mu_);
    std::lock_guard<std::mutex> control_lock(control_mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  control_cv_.notify_all();
  for (auto& t : workers_) t.join();
  control_thread_.join();
  mover_.reset();
}

void Coordinator::on_map(const std::shared_ptr<const meta::ClusterMap>& map) {
  auto table = RoutingTable::build(map);
  if (!table.ok()) {
    spdlog::error("cluster map epoch {}: cannot route with it: {}", map->epoch,
                  table.status().message());
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (table_ && table_->epoch() >= (*table)->epoch()) return;
    table_ = std::move(table).value();
  }
  table_changed_.notify_all();
  // The mover may thaw and clean up: not on this (map-publishing) thread.
  post_control([this] {
    if (auto t = this->table()) mover_->on_table(*t);
  });
}

void Coordinator::post_control(std::function<void()> job) {
  std::lock_guard<std::mutex> lock(control_mu_);
  control_.push_back(std::move(job));
  control_cv_.notify_one();
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
    return meta::abort_move(m, keyspace);
  });
  return r.ok() ? Status::OK() : r.status();
}

bool Coordinator::pass_gate(const CommandSpec& spec, std::span<const std::string_view> argv,
                            const std::vector<size_t>& keys) {
  auto table = this->table();
  if (!table || !table->any_moving()) return true;
  bool gated = false;
  for (size_t k : keys) {
    const Route r = table->route(argv[k]);
    gated = gated || (r.moving() && r.primary() == options_.self);
  }
  if (!gated) return true;
  mover_->gate().enter();
  // The map may have moved on while we waited: are the keys still ours?
  table = this->table();
  for (size_t k : keys) {
    if (table->route(argv[k]).primary() != options_.self) {
      mover_->gate().leave();
      return false;
    }
  }
  t_in_gate = true;
  t_written.clear();
  if (spec.flags & server::kWrite) {
    for (size_t k : keys) t_written.emplace_back(argv[k]);
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

void Coordinator::on_forward(net::ForwardFrame frame,
                             std::function<void(net::ForwardReplyFrame)> respond) {
  // Our map must be at least as new as the router's before we judge ownership.
  auto table = wait_for_epoch(frame.epoch);
  net::ForwardReplyFrame reply;
  if (!table || table->epoch().value() < frame.epoch) {
    reply.status = Status::Unavailable("node " + std::to_string(options_.self.value()) +
                                       " has not seen cluster map epoch " +
                                       std::to_string(frame.epoch) + " yet");
    respond(std::move(reply));
    return;
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
    return;
  }
  if (!frame.argv.empty() && frame.argv[0] == "__stats") {
    reply.reply = "+" + local_stats_json() + "\r\n";
    respond(std::move(reply));
    return;
  }
  Session session;
  session.authenticated = true;
  session.resp = frame.resp == 3 ? 3 : 2;
  session.routed_epoch = frame.epoch;
  session.importing = (frame.flags & net::ForwardFrame::kImport) != 0;
  session.addr = "routed";
  std::vector<std::string_view> argv(frame.argv.begin(), frame.argv.end());
  std::string out;
  resp::Writer writer(&out, session.resp);
  const storage::Sequence seq = service_.execute(session, argv, writer);
  if (out.size() > 1 && out[0] == '-' && std::string_view(out).substr(1).starts_with(kStaleRoute)) {
    reply.status = Status::Aborted(out.substr(1, out.size() - 3));  // drop '-' and CRLF
    respond(std::move(reply));
    return;
  }
  reply.reply = std::move(out);
  if (seq == 0 || seq <= ctx_.engine->durable_sequence()) {
    respond(std::move(reply));
    return;
  }
  // The reply promises what the client's own node would: wait for durability.
  auto shared = std::make_shared<net::ForwardReplyFrame>(std::move(reply));
  ctx_.engine->when_durable(seq, [shared, respond]() mutable { respond(std::move(*shared)); });
}

server::Router::Decision Coordinator::check_routed(Session& session, const CommandSpec& spec,
                                                   std::span<const std::string_view> argv,
                                                   resp::Writer& out) {
  auto table = this->table();
  const std::vector<size_t> keys = key_positions(spec, argv);
  for (size_t k : keys) {
    const Route r = table->route(argv[k]);
    const NodeId here = session.importing ? r.target_primary() : r.primary();
    if (here != options_.self) {
      out.error(std::string(kStaleRoute) + " epoch " + std::to_string(table->epoch().value()) +
                ": node " + std::to_string(options_.self.value()) + " does not own '" +
                std::string(argv[k].substr(0, 64)) + "' (" + describe_node(*table, r.primary()) +
                " does)");
      return Decision::kHandled;
    }
  }
  if (!session.importing && !pass_gate(spec, argv, keys)) {
    out.error(std::string(kStaleRoute) + " epoch " + std::to_string(this->table()->epoch().value()) +
              ": the keys moved away from node " + std::to_string(options_.self.value()));
    return Decision::kHandled;
  }
  return Decision::kLocal;
}

// ------------------------------------------------------------------ router side

Result<std::string> Coordinator::run_on(NodeId node, std::vector<std::string> argv, int resp,
                                        const RoutingTable& table, storage::Sequence* seq) {
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
  return forwarder_.call(node, m->peer_address, std::move(frame));
}

server::Router::Decision Coordinator::route(Session& session, const CommandSpec& spec,
                                            std::span<const std::string_view> argv,
                                            resp::Writer& out, storage::Sequence* seq) {
  if (session.internal) return Decision::kLocal;
  if (session.routed_epoch != 0) return check_routed(session, spec, argv, out);
  const std::vector<size_t> keys = key_positions(spec, argv);
  // Keys and values that do not pair up (MSET a 1 b): the command's own
  // handler answers with Redis's arity error, before anything is routed.
  if (spec.key_step > 1 && spec.last_key < 0 &&
      (argv.size() - static_cast<size_t>(spec.first_key)) % static_cast<size_t>(spec.key_step) != 0) {
    return Decision::kLocal;
  }
  std::string name(argv[0]);
  std::transform(name.begin(), name.end(), name.begin(), ::tolower);
  const bool keyless_fan_out =
      keys.empty() && (name == "dbsize" || name == "keys" || name == "scan" ||
                       name == "flushall" || name == "flushdb");
  if (keys.empty() && !keyless_fan_out) return Decision::kLocal;

  for (int attempt = 0; attempt < 4; ++attempt) {
    auto table = this->table();
    if (!table) {
      out.error("CLUSTERDOWN the cluster map is not known yet");
      return Decision::kHandled;
    }
    if (keyless_fan_out) {
      return name == "scan" ? scan(session, argv, *table, out, seq)
                            : fan_out_all(session, name, argv, *table, out, seq);
    }
    // Which nodes own the keys?
    std::vector<NodeId> owners;
    bool cross_slot = false;
    uint32_t first_slot = 0;
    Route first;  // the first key's route: a single-owner command goes by it
    for (size_t i = 0; i < keys.size(); ++i) {
      Route r = table->route(argv[keys[i]]);
      if (std::find(owners.begin(), owners.end(), r.primary()) == owners.end()) {
        owners.push_back(r.primary());
      }
      if (r.keyspace->spec.partitioner.kind == meta::Partitioner::kSlots) {
        const uint32_t slot = partition::key_slot(argv[keys[i]]);
        if (i == 0) first_slot = slot;
        cross_slot = cross_slot || slot != first_slot;
      }
      if (i == 0) first = std::move(r);
    }
    const bool redirects = options_.redirects || session.redirects;
    if (redirects && cross_slot) {
      out.error("CROSSSLOT Keys in request don't hash to the same slot");
      return Decision::kHandled;
    }
    if (owners.size() == 1 && owners[0] == options_.self) {
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
      auto reply = run_on(owners[0], std::vector<std::string>(argv.begin(), argv.end()),
                          session.resp, *table, seq);
      if (reply.ok()) {
        out.raw(*reply);
        return Decision::kHandled;
      }
      if (reply.status().code() == Status::Code::kAborted) {
        // A stale route: the owner's map is newer. Catch up and route again.
        wait_for_epoch(table->epoch().value() + 1);
        continue;
      }
      out.error("CLUSTERDOWN " + reply.status().message());
      return Decision::kHandled;
    }
    if (!is_fan_out_command(name)) {
      out.error("CROSSSLOT Keys in request don't hash to the same slot (they live on " +
                std::to_string(owners.size()) + " nodes)");
      return Decision::kHandled;
    }
    return fan_out(session, name, argv, keys, *table, out, seq);
  }
  out.error("TRYAGAIN the cluster map kept changing while routing this command");
  return Decision::kHandled;
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
    auto it = std::find_if(parts.begin(), parts.end(), [&](const Part& p) { return p.node == owner; });
    if (it == parts.end()) {
      parts.push_back(Part{owner, {}, {std::string(argv[0])}, {}});
      it = parts.end() - 1;
    }
    it->key_indexes.push_back(i);
    it->argv.emplace_back(argv[key_positions[i]]);
    if (mset) it->argv.emplace_back(argv[key_positions[i] + 1]);
  }
  for (Part& p : parts) {
    auto reply = run_on(p.node, p.argv, session.resp, table, seq);
    if (!reply.ok()) {
      // Earlier parts may have run: say so, as a cross-node write is not atomic.
      out.error("CLUSTERDOWN " + reply.status().message() +
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
  int64_t total = 0;
  std::vector<std::string> keys;
  for (NodeId node : table.data_nodes()) {
    auto reply = run_on(node, std::vector<std::string>(argv.begin(), argv.end()), session.resp,
                        table, seq);
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
    if (name == "dbsize") total += v.integer;
    if (name == "keys") {
      // Only what the node serves: not copies a move in progress left there.
      for (resp::Value& e : v.elements) {
        if (table.route(e.str).primary() == node) keys.push_back(std::move(e.str));
      }
    }
  }
  if (name == "dbsize") {
    out.integer(total);
  } else if (name == "keys") {
    out.array(keys.size());
    for (const std::string& k : keys) out.bulk(k);
  } else {
    out.simple("OK");
  }
  return Decision::kHandled;
}

// SCAN over every data node in id order. The cursor the client sees is
// local_cursor * 65536 + node id (0 starts at the first node); a node id,
// unlike a position in the member list, stays meaningful when nodes join or
// leave. Each node returns only keys it serves under the router's map, so a
// copy left by a move in progress is not returned twice.
server::Router::Decision Coordinator::scan(Session& session, std::span<const std::string_view> argv,
                                           const RoutingTable& table, resp::Writer& out,
                                           storage::Sequence* seq) {
  constexpr uint64_t kIds = 65536;
  const std::vector<NodeId>& nodes = table.data_nodes();
  uint64_t cursor = 0;
  {
    const std::string text(argv[1]);
    char* end = nullptr;
    cursor = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0') {
      out.error("ERR invalid cursor");
      return Decision::kHandled;
    }
  }
  const uint64_t id = cursor % kIds;
  uint64_t local = cursor / kIds;
  // The node the cursor names, or the next one in id order if it has left.
  auto it = std::lower_bound(nodes.begin(), nodes.end(), NodeId(id == 0 ? 1 : id));
  if (cursor == 0) it = nodes.begin();
  if (it == nodes.end()) {
    out.array(2);
    out.bulk("0");
    out.array(0);
    return Decision::kHandled;
  }
  if (it->value() != id) local = 0;  // that node left: start the next one afresh
  std::vector<std::string> sub(argv.begin(), argv.end());
  sub[1] = std::to_string(local);
  auto reply = run_on(*it, sub, session.resp, table, seq);
  if (!reply.ok()) {
    out.error("CLUSTERDOWN " + reply.status().message());
    return Decision::kHandled;
  }
  resp::Value v;
  if (resp::parse_value(*reply, v).status != resp::ParseStatus::kComplete ||
      v.type == resp::Value::Type::kError || v.elements.size() != 2) {
    out.raw(*reply);
    return Decision::kHandled;
  }
  const uint64_t next_local = std::strtoull(v.elements[0].str.c_str(), nullptr, 10);
  uint64_t next = 0;
  if (next_local != 0) {
    next = next_local * kIds + it->value();
  } else if (it + 1 != nodes.end()) {
    next = (it + 1)->value();
  }
  std::vector<const std::string*> keys;
  for (const resp::Value& k : v.elements[1].elements) {
    if (table.route(k.str).primary() == *it) keys.push_back(&k.str);
  }
  out.array(2);
  out.bulk(std::to_string(next));
  out.array(keys.size());
  for (const std::string* k : keys) out.bulk(*k);
  return Decision::kHandled;
}

}  // namespace statekv::coord
