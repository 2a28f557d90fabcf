#include "sim/simulator.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "core/assert.h"
#include "sim/disk.h"
#include "sim/event_queue.h"
#include "sim/history_hash.h"
#include "sim/network.h"

namespace statekv::sim {
namespace {

using replication::ClientOp;
using replication::ClientRequest;
using replication::ClientResponse;
using replication::Duration;
using replication::Instant;
using replication::PersistToken;
using replication::TimerId;

constexpr SimTime kUs = 1'000;
constexpr SimTime kMs = 1'000'000;

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

SimTime draw(Random& rng, SimTime lo, SimTime hi) {
  return static_cast<SimTime>(rng.range(static_cast<uint64_t>(lo), static_cast<uint64_t>(hi)));
}

check::OpFunction to_f(ClientOp op) {
  switch (op) {
    case ClientOp::kRead:
      return check::OpFunction::kRead;
    case ClientOp::kWrite:
      return check::OpFunction::kWrite;
    case ClientOp::kCas:
      return check::OpFunction::kCas;
    case ClientOp::kDelete:
      return check::OpFunction::kDelete;
  }
  return check::OpFunction::kRead;
}

// The history's `level` of a read: empty for linearizable, the default, so
// that histories of runs without levels are what they always were.
std::string level_name(replication::ReadLevel level) {
  switch (level) {
    case replication::ReadLevel::kLinearizable:
      return "";
    case replication::ReadLevel::kCausal:
      return "causal";
    case replication::ReadLevel::kSequential:
      return "sequential";
    case replication::ReadLevel::kFifo:
      return "fifo";
  }
  return "";
}

class World;

// One simulated machine: its clock, disk, timers, and the protocol instance of
// its current incarnation. It is the protocol's Env.
class SimNode final : public ByteEnv {
 public:
  SimNode(World& world, NodeId id, Random stream) : world_(world), id_(id), stream_(stream) {}

  void send_bytes(NodeId to, std::string bytes) override;
  void reply(RequestId request, ClientResponse response) override;
  TimerId set_timer(Duration delay) override;
  void cancel_timer(TimerId id) override { live_timers_.erase(id.value()); }
  Instant now() const override;
  PersistToken persist(std::string record) override { return append(std::move(record), false); }
  PersistToken persist_checkpoint(std::string record) override {
    return append(std::move(record), true);
  }
  Random& random() override { return rng_; }

  void start();
  void crash();
  bool up() const { return up_; }
  NodeId id() const { return id_; }
  HostedNode& protocol() { return *protocol_; }

  // Clock model: local = offset + t + t * drift_ppm / 1e6.
  SimTime clock_offset = 0;
  int64_t drift_ppm = 0;
  SimTime disk_latency_lo = 0, disk_latency_hi = 0;
  SimDisk disk;

 private:
  World& world_;
  NodeId id_;
  Random stream_;  // forks a fresh Random for each incarnation
  Random rng_{0};  // the current incarnation's Random
  PersistToken append(std::string record, bool checkpoint);

  bool up_ = false;
  uint64_t incarnation_ = 0;
  std::unique_ptr<HostedNode> protocol_;
  uint64_t next_timer_ = 1;
  std::unordered_set<uint64_t> live_timers_;
  uint64_t persist_base_ = 0;  // disk sequence number before this incarnation
  SimTime last_durable_at_ = 0;
};

// A simulated client: one operation at a time, retried across nodes until a
// node serves it (see SimOptions for the rules).
struct Client {
  int64_t process = 0;
  bool busy = false;      // an operation is open (invoked, not completed)
  bool awaiting = false;  // ... and an attempt of it is out, unanswered
  ClientRequest op;       // op.id is the current attempt's request id
  SimTime invoked_at = 0;
  NodeId target;                      // the node of the current (or last) attempt
  std::optional<NodeId> leader_hint;  // the leader as last learned, kept across operations
  size_t hops = 0;                    // hints followed at once since the last backoff
  // The session token the nodes last handed back (ClientResponse::session), sent
  // with every request; kept across the new process a timeout starts, as a
  // connection keeps its token.
  std::string session;
};

class World {
 public:
  World(const ProtocolEntry& protocol, const SimOptions& options);
  Result<SimResult> run();

  EventQueue queue;
  Network* network() { return network_.get(); }
  const SimOptions& options() const { return options_; }
  const ProtocolEntry& protocol() const { return protocol_; }
  // The group as seen by node `id`.
  replication::Membership membership(NodeId id) const {
    replication::Membership m = membership_;
    m.self = id;
    return m;
  }

  // Called by nodes.
  void transmit(NodeId from, NodeId to, std::string bytes);
  void node_replied(NodeId node, RequestId request, ClientResponse response);
  Random disk_rng{0};
  SimResult result;

 private:
  void apply(const FaultAction& action);
  void client_next(size_t c);
  void client_issue(size_t c);
  void client_attempt(size_t c);
  void client_answered(size_t c, RequestId request, const ClientResponse& response);
  void client_refused(size_t c, std::optional<NodeId> hint);
  void client_complete(size_t c, check::EventType type, std::optional<std::string> read_value);
  void record(const Client& client, check::EventType type, const ClientRequest& op,
              std::optional<std::string> read_value);
  bool finished() const { return issued_ == options_.ops && busy_ == 0; }
  std::string describe_parameters(SimTime horizon) const;

  const ProtocolEntry& protocol_;
  SimOptions options_;
  replication::Membership membership_;
  std::unique_ptr<Network> network_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::vector<Client> clients_;
  Random net_rng_{0}, client_rng_{0};
  std::unique_ptr<Workload> workload_;
  SimTime client_delay_lo_ = 0, client_delay_hi_ = 0;
  size_t issued_ = 0;
  size_t busy_ = 0;
  uint64_t next_request_ = 1;
  std::unordered_map<uint64_t, size_t> awaiting_;  // request id -> client index
  Status failure_;
};

// ---- SimNode ---------------------------------------------------------------

void SimNode::send_bytes(NodeId to, std::string bytes) {
  world_.transmit(id_, to, std::move(bytes));
}

void SimNode::reply(RequestId request, ClientResponse response) {
  world_.node_replied(id_, request, std::move(response));
}

TimerId SimNode::set_timer(Duration delay) {
  const uint64_t id = next_timer_++;
  live_timers_.insert(id);
  // A fast clock (positive drift) fires a local delay sooner in true time.
  const double scale = 1e6 / (1e6 + static_cast<double>(drift_ppm));
  const SimTime true_delay =
      std::max<SimTime>(1, static_cast<SimTime>(std::ceil(delay.count() * scale)));
  const uint64_t inc = incarnation_;
  world_.queue.schedule(world_.queue.now() + true_delay, [this, id, inc] {
    if (!up_ || inc != incarnation_ || live_timers_.erase(id) == 0) return;
    protocol_->on_timer(TimerId(id));
  });
  return TimerId(id);
}

Instant SimNode::now() const {
  const SimTime t = world_.queue.now();
  return Instant(clock_offset + t + t / 1'000'000 * drift_ppm);
}

PersistToken SimNode::append(std::string record, bool checkpoint) {
  const uint64_t seq = checkpoint ? disk.append_checkpoint(record) : disk.append(record);
  const SimTime at =
      std::max(world_.queue.now() + draw(rng_, disk_latency_lo, disk_latency_hi), last_durable_at_);
  last_durable_at_ = at;
  const uint64_t inc = incarnation_;
  const PersistToken token(seq - persist_base_);
  world_.queue.schedule(at, [this, seq, inc, token] {
    if (!up_ || inc != incarnation_) return;
    disk.sync_through(seq);
    protocol_->on_persisted(token);
  });
  return token;
}

void SimNode::start() {
  SKV_ASSERT(!up_, "start of a node that is up");
  std::vector<std::string> records = disk.recover();
  persist_base_ = disk.appended();
  last_durable_at_ = world_.queue.now();
  rng_ = stream_.fork();
  live_timers_.clear();
  next_timer_ = 1;
  up_ = true;
  const replication::Membership membership = world_.membership(id_);
  protocol_ = world_.protocol().factory(*this, membership, std::move(records));
}

void SimNode::crash() {
  SKV_ASSERT(up_, "crash of a node that is down");
  up_ = false;
  ++incarnation_;
  protocol_.reset();
  live_timers_.clear();
  const DiskCrashStats stats = disk.crash(world_.disk_rng);
  world_.result.torn_records += stats.torn;
  ++world_.result.crashes;
}

// ---- World -----------------------------------------------------------------

World::World(const ProtocolEntry& protocol, const SimOptions& options)
    : protocol_(protocol), options_(options) {}

std::string World::describe_parameters(SimTime horizon) const {
  std::string out = fmt::format(
      "seed {}\n  protocol {}, nodes {}, clients {}, ops {}, keys {} ({})\n"
      "  client timeout {}, refused operations retried for {} (backoff ~{})\n  faults {}{}\n",
      options_.seed, protocol_.name, options_.nodes, options_.clients, options_.ops,
      options_.workload.keys,
      options_.workload.skew == KeySkew::kZipf ? fmt::format("zipf s={}", options_.workload.zipf_s)
                                               : std::string("uniform"),
      format_duration(options_.client_timeout), format_duration(options_.retry_deadline),
      format_duration(options_.retry_backoff), options_.faults.to_string(),
      options_.schedule ? " (hand-written schedule)" : "");
  if (options_.workload.source) out += "  operations from a custom source (keys and mix unused)\n";
  out += network_->describe();
  out += fmt::format("  client link delay {}..{}us, fault horizon {}\n", client_delay_lo_ / kUs,
                     client_delay_hi_ / kUs, format_duration(horizon));
  for (const auto& n : nodes_) {
    out += fmt::format("  node {}: clock offset {}, drift {}ppm, disk latency {}..{}us\n",
                       n->id().value(), format_duration(n->clock_offset), n->drift_ppm,
                       n->disk_latency_lo / kUs, n->disk_latency_hi / kUs);
  }
  return out;
}

void World::transmit(NodeId from, NodeId to, std::string bytes) {
  ++result.messages_sent;
  if (to.value() < 1 || to.value() > nodes_.size()) {
    failure_ = Status::InvalidArgument(
        fmt::format("node {} sent to unknown node {}", from.value(), to.value()));
    return;
  }
  std::vector<SimTime> delays = network_->route(from, to, net_rng_);
  if (delays.empty()) ++result.messages_dropped;
  for (size_t i = 0; i < delays.size(); ++i) {
    // The last copy takes the buffer; earlier copies (duplicates) copy it.
    std::string copy = i + 1 == delays.size() ? std::move(bytes) : bytes;
    queue.schedule(queue.now() + delays[i], [this, from, to, b = std::move(copy)] {
      SimNode& node = *nodes_[to.value() - 1];
      if (!node.up()) return;
      if (Status s = node.protocol().deliver(from, b); !s.ok() && failure_.ok()) {
        failure_ = Status::Corruption(fmt::format("message {} -> {} failed to decode: {}",
                                                  from.value(), to.value(), s.message()));
      }
    });
  }
}

void World::node_replied(NodeId node, RequestId request, ClientResponse response) {
  auto it = awaiting_.find(request.value());
  if (it == awaiting_.end()) return;  // answered already, timed out, or unknown
  const size_t c = it->second;
  awaiting_.erase(it);
  const SimTime delay = draw(client_rng_, client_delay_lo_, client_delay_hi_);
  queue.schedule(queue.now() + delay, [this, c, request, response = std::move(response)] {
    client_answered(c, request, response);
  });
}

void World::client_answered(size_t c, RequestId request, const ClientResponse& response) {
  Client& client = clients_[c];
  if (!client.awaiting || client.op.id != request) return;  // timed out meanwhile
  client.awaiting = false;
  if (response.outcome == ClientResponse::Outcome::kFail && response.not_served) {
    client_refused(c, response.leader_hint);
    return;
  }
  if (response.outcome == ClientResponse::Outcome::kOk) {
    // It served us: it leads, as far as this client knows.
    client.leader_hint = client.target;
    if (!response.session.empty()) client.session = response.session;
    client_complete(c, check::EventType::kOk, response.value);
  } else {
    // A definite answer (a cas whose expectation did not hold).
    if (response.leader_hint) client.leader_hint = response.leader_hint;
    client_complete(c, check::EventType::kFail, std::nullopt);
  }
}

void World::client_refused(size_t c, std::optional<NodeId> hint) {
  Client& client = clients_[c];
  ++result.refusals;
  if (hint && (hint->value() < 1 || hint->value() > nodes_.size())) {
    failure_ = Status::InvalidArgument(fmt::format("node {} named unknown node {} as leader",
                                                   client.target.value(), hint->value()));
    return;
  }
  client.leader_hint = hint;
  // Follow a hint at once, unless it names the node that just refused or the
  // hints have gone round the group without finding a leader (stale hints that
  // point at each other); otherwise back off, then ask the hinted node or
  // another one.
  SimTime at = queue.now();
  if (hint && *hint != client.target && client.hops < options_.nodes) {
    ++client.hops;
    client.target = *hint;
  } else {
    client.hops = 0;
    at += draw(client_rng_, options_.retry_backoff / 2, options_.retry_backoff * 3 / 2);
    if (hint) {
      client.target = *hint;
    } else if (options_.nodes > 1) {
      // Any node but the one that refused.
      const uint64_t step = client_rng_.range(1, options_.nodes - 1);
      client.target = NodeId((client.target.value() - 1 + step) % options_.nodes + 1);
    }
  }
  if (at - client.invoked_at > options_.retry_deadline) {
    // Every attempt was refused, so the operation certainly did not happen.
    client_complete(c, check::EventType::kFail, std::nullopt);
    return;
  }
  const RequestId id = client.op.id;
  queue.schedule(at, [this, c, id] {
    if (clients_[c].busy && clients_[c].op.id == id) client_attempt(c);
  });
}

void World::client_complete(size_t c, check::EventType type,
                            std::optional<std::string> read_value) {
  Client& client = clients_[c];
  const bool read_ok = type == check::EventType::kOk && client.op.op == ClientOp::kRead;
  record(client, type, client.op, read_value);
  const OpOutcome outcome = type == check::EventType::kOk     ? OpOutcome::kOk
                            : type == check::EventType::kFail ? OpOutcome::kFail
                                                              : OpOutcome::kInfo;
  workload_->observe(c, client.op, outcome, read_ok ? read_value : std::nullopt);
  client.busy = false;
  client.awaiting = false;
  --busy_;
  client_next(c);
}

void World::record(const Client& client, check::EventType type, const ClientRequest& op,
                   std::optional<std::string> read_value) {
  check::Event e;
  e.process = client.process;
  e.type = type;
  e.f = to_f(op.op);
  e.key = op.key;
  if (op.op == ClientOp::kRead) {
    e.value = type == check::EventType::kOk ? std::move(read_value) : std::nullopt;
  } else {
    e.value = op.value;
  }
  if (op.op == ClientOp::kCas) e.cas_expected = op.expected;
  if (op.op == ClientOp::kRead) e.level = level_name(op.level);
  e.time = queue.now();
  e.node = static_cast<int64_t>(client.target.value());
  switch (type) {
    case check::EventType::kOk:
      ++result.ok;
      break;
    case check::EventType::kFail:
      ++result.fail;
      break;
    case check::EventType::kInfo:
      ++result.info;
      break;
    case check::EventType::kInvoke:
      break;
  }
  result.history.push_back(std::move(e));
}

void World::client_next(size_t c) {
  if (issued_ >= options_.ops) return;
  // Think time between operations: spreads the workload over the fault window.
  queue.schedule(queue.now() + draw(client_rng_, 0, 20 * kMs), [this, c] { client_issue(c); });
}

void World::client_issue(size_t c) {
  if (issued_ >= options_.ops) return;
  ++issued_;
  Client& client = clients_[c];
  client.busy = true;
  ++busy_;
  client.op = workload_->next(c);
  client.op.session = client.session;
  client.invoked_at = queue.now();
  client.hops = 0;
  // Mostly the leader this client knows; sometimes any node (a client connected
  // elsewhere), so that followers keep receiving requests they must refuse.
  client.target = client.leader_hint && client_rng_.chance(0.75)
                      ? *client.leader_hint
                      : NodeId(client_rng_.range(1, options_.nodes));
  record(client, check::EventType::kInvoke, client.op, std::nullopt);
  client_attempt(c);
}

void World::client_attempt(size_t c) {
  Client& client = clients_[c];
  client.op.id = RequestId(next_request_++);
  client.awaiting = true;
  ++result.attempts;
  const RequestId request = client.op.id;
  awaiting_[request.value()] = c;
  const NodeId target = client.target;
  queue.schedule(queue.now() + draw(client_rng_, client_delay_lo_, client_delay_hi_),
                 [this, target, req = client.op] {
                   SimNode& node = *nodes_[target.value() - 1];
                   if (node.up()) {
                     node.protocol().on_request(req);
                   } else {
                     // Nothing listens there: the connection is refused, and the
                     // request certainly went nowhere.
                     ClientResponse refused;
                     refused.outcome = ClientResponse::Outcome::kFail;
                     refused.not_served = true;
                     node_replied(target, req.id, std::move(refused));
                   }
                 });
  queue.schedule(queue.now() + options_.client_timeout, [this, c, request] {
    Client& cl = clients_[c];
    if (!cl.awaiting || cl.op.id != request) return;
    awaiting_.erase(request.value());
    cl.leader_hint.reset();
    client_complete(c, check::EventType::kInfo, std::nullopt);
    // The operation may still take effect later: this process is done, a new one
    // takes its place (a process never has two operations open). Its next
    // operation is invoked from a later event, under the new process id.
    cl.process += static_cast<int64_t>(options_.clients);
  });
}

void World::apply(const FaultAction& a) {
  using K = FaultAction::Kind;
  switch (a.kind) {
    case K::kPartition:
      network_->partition(a.groups);
      break;
    case K::kOnewayDrop:
      network_->block(a.node, a.to);
      break;
    case K::kOnewayPass:
      network_->unblock(a.node, a.to);
      break;
    case K::kHeal:
      network_->heal();
      break;
    case K::kCrash:
      if (nodes_[a.node.value() - 1]->up()) nodes_[a.node.value() - 1]->crash();
      break;
    case K::kRestart:
      if (!nodes_[a.node.value() - 1]->up()) nodes_[a.node.value() - 1]->start();
      break;
    case K::kLoss:
      network_->faults().loss = a.probability;
      break;
    case K::kDuplicate:
      network_->faults().duplicate = a.probability;
      break;
    case K::kReorder:
      network_->faults().reorder = a.probability;
      break;
  }
}

Result<SimResult> World::run() {
  if (options_.nodes < 1 || options_.nodes > 63) {
    return Status::InvalidArgument("nodes must be in 1..63");
  }
  if (options_.clients < 1) return Status::InvalidArgument("clients must be at least 1");
  if (options_.workload.keys < 1) return Status::InvalidArgument("keys must be at least 1");
  if (options_.client_timeout < 1 || options_.retry_backoff < 2) {
    return Status::InvalidArgument("client timeout and retry backoff must be positive");
  }

  // Fork order is part of the replay contract: changing it changes every history.
  Random root(options_.seed);
  Random params = root.fork();
  net_rng_ = root.fork();
  client_rng_ = root.fork();
  disk_rng = root.fork();
  Random schedule_rng = root.fork();
  Random node_streams = root.fork();
  workload_ = std::make_unique<Workload>(options_.workload, root.fork());

  const FaultSet& f = options_.faults;
  std::vector<std::vector<SimTime>> base(options_.nodes, std::vector<SimTime>(options_.nodes));
  for (auto& row : base) {
    for (auto& d : row)
      d = f.delay ? draw(params, 100 * kUs, 10 * kMs) : draw(params, 100 * kUs, 2 * kMs);
  }
  DelayModel delay;
  delay.jitter = f.delay ? draw(params, 1 * kMs, 20 * kMs) : draw(params, 10 * kUs, 500 * kUs);
  delay.tail_p = f.delay ? 0.01 + 0.04 * params.unit() : 0;
  delay.tail_max = f.delay ? draw(params, 50 * kMs, 300 * kMs) : 0;
  delay.reorder_max = draw(params, 5 * kMs, 50 * kMs);
  network_ = std::make_unique<Network>(options_.nodes, std::move(base), delay);
  if (f.loss) network_->faults().loss = 0.1 * params.unit();
  if (f.duplicate) network_->faults().duplicate = 0.1 * params.unit();
  if (f.reorder) network_->faults().reorder = 0.2 * params.unit();
  client_delay_lo_ = draw(params, 20 * kUs, 200 * kUs);
  client_delay_hi_ = client_delay_lo_ + draw(params, 0, 800 * kUs);

  membership_.nodes.clear();
  for (size_t i = 1; i <= options_.nodes; ++i) {
    membership_.nodes.emplace_back(i);
    auto node = std::make_unique<SimNode>(*this, NodeId(i), node_streams.fork());
    if (f.clock) {
      node->clock_offset = draw(params, 0, 10'000 * kMs);
      node->drift_ppm = static_cast<int64_t>(params.range(0, 2000)) - 1000;
    }
    node->disk_latency_lo = draw(params, 20 * kUs, 500 * kUs);
    node->disk_latency_hi = node->disk_latency_lo + draw(params, 0, 5 * kMs);
    nodes_.push_back(std::move(node));
  }
  clients_.resize(options_.clients);
  for (size_t c = 0; c < clients_.size(); ++c) clients_[c].process = static_cast<int64_t>(c);

  const SimTime horizon = std::max<SimTime>(
      500 * kMs, static_cast<SimTime>(options_.ops / options_.clients) * 20 * kMs);
  result.schedule = options_.schedule ? *options_.schedule
                                      : random_schedule(schedule_rng, options_.nodes, f, horizon);
  result.parameters = describe_parameters(horizon);

  for (const FaultAction& a : result.schedule.actions) {
    queue.schedule(a.at, [this, a] { apply(a); });
  }
  for (auto& n : nodes_) n->start();
  for (size_t c = 0; c < clients_.size(); ++c) client_next(c);

  const auto wall_start = std::chrono::steady_clock::now();
  const double cpu_start = thread_cpu_seconds();
  while (!queue.empty() && !finished() && failure_.ok() &&
         queue.next_time() <= options_.time_limit) {
    queue.run_next();
  }
  result.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  result.cpu_seconds = thread_cpu_seconds() - cpu_start;
  if (!failure_.ok()) return failure_;
  // Out of time (or a protocol that went silent): open operations may have happened.
  for (Client& c : clients_) {
    if (c.busy) record(c, check::EventType::kInfo, c.op, std::nullopt);
  }
  result.events = queue.executed();
  result.simulated_time = queue.now();
  result.history_hash = history_hash(result.history);
  return std::move(result);
}

}  // namespace

Result<SimResult> run_simulation(const ProtocolEntry& protocol, const SimOptions& options) {
  World world(protocol, options);
  return world.run();
}

}  // namespace statekv::sim
