#include "sim/group_host.h"

#include <algorithm>

#include "core/assert.h"
#include "replication/codec.h"

namespace statekv::sim {

std::string tag_with_group(GroupId group, uint64_t epoch, std::string_view payload) {
  replication::Writer w;
  w.varint(group.value());
  w.varint(epoch);
  std::string out = std::move(w).take();
  out.append(payload);
  return out;
}

Result<Tagged> untag_group(std::string_view bytes) {
  replication::Reader r(bytes);
  Result<uint64_t> id = r.varint();
  if (!id.ok()) return id.status();
  Result<uint64_t> epoch = r.varint();
  if (!epoch.ok()) return epoch.status();
  return Tagged{GroupId(*id), *epoch, bytes.substr(bytes.size() - r.remaining())};
}

std::string encode_session(const std::map<GroupId, uint64_t>& positions) {
  if (positions.empty()) return {};
  replication::Writer w;
  w.varint(positions.size());
  for (const auto& [g, index] : positions) {
    w.varint(g.value());
    w.varint(index);
  }
  return std::move(w).take();
}

Result<std::map<GroupId, uint64_t>> decode_session(std::string_view token) {
  std::map<GroupId, uint64_t> out;
  if (token.empty()) return out;
  replication::Reader r(token);
  Result<uint64_t> n = r.varint();
  if (!n.ok()) return n.status();
  if (*n > token.size()) return Status::Corruption("session token: too many groups");
  for (uint64_t i = 0; i < *n; ++i) {
    Result<uint64_t> g = r.varint();
    if (!g.ok()) return g.status();
    Result<uint64_t> index = r.varint();
    if (!index.ok()) return index.status();
    out[GroupId(*g)] = *index;
  }
  if (r.remaining() != 0) return Status::Corruption("session token: trailing bytes");
  return out;
}

namespace {

// The host's own records: which replicas it started and stopped.
enum class HostRecord : uint8_t { kStart = 1, kStop = 2 };

void write_nodes(replication::Writer& w, const std::vector<NodeId>& nodes) {
  w.varint(nodes.size());
  for (NodeId n : nodes) w.varint(n.value());
}

Result<std::vector<NodeId>> read_nodes(replication::Reader& r) {
  Result<uint64_t> n = r.varint();
  if (!n.ok()) return n.status();
  std::vector<NodeId> out;
  for (uint64_t i = 0; i < *n && i < 1024; ++i) {
    Result<uint64_t> id = r.varint();
    if (!id.ok()) return id.status();
    out.emplace_back(*id);
  }
  return out;
}

}  // namespace

// One group's view of the node: everything it does goes through the host's env,
// tagged with its id.
class GroupHost::GroupEnv final : public ByteEnv {
 public:
  GroupEnv(GroupHost& host, GroupId group, uint64_t born)
      : host_(host), group_(group), born_(born), epoch_(born) {}

  void send_bytes(NodeId to, std::string bytes) override {
    host_.env_.send_bytes(to, tag_with_group(group_, epoch_, bytes));
  }
  void reply(RequestId request, replication::ClientResponse response) override {
    host_.host_reply(group_, request, std::move(response));
  }
  replication::TimerId set_timer(replication::Duration delay) override {
    replication::TimerId id = host_.env_.set_timer(delay);
    host_.timers_[id] = group_;
    return id;
  }
  void cancel_timer(replication::TimerId id) override {
    host_.timers_.erase(id);
    host_.env_.cancel_timer(id);
  }
  replication::Instant now() const override { return host_.env_.now(); }
  replication::PersistToken persist(std::string record) override {
    const replication::PersistToken node_token =
        host_.env_.persist(tag_with_group(group_, born_, record));
    ++appended_;
    pending_.emplace_back(node_token, appended_);
    return replication::PersistToken(appended_);
  }
  // Appended like any record: a node-level checkpoint would drop the other
  // groups' records too (see the header).
  replication::PersistToken persist_checkpoint(std::string record) override {
    return persist(std::move(record));
  }
  Random& random() override { return host_.env_.random(); }

  // The highest group token durable once node token `durable` is; 0 when that
  // is no more than was reported before.
  uint64_t advance(replication::PersistToken durable) {
    uint64_t newest = 0;
    while (!pending_.empty() && pending_.front().first <= durable) {
      newest = pending_.front().second;
      pending_.pop_front();
    }
    return newest;
  }

  uint64_t born() const { return born_; }
  uint64_t epoch() const { return epoch_; }
  void raise_epoch(uint64_t epoch) { epoch_ = std::max(epoch_, epoch); }

 private:
  GroupHost& host_;
  GroupId group_;
  uint64_t born_;   // the placement epoch this replica started at
  uint64_t epoch_;  // the newest placement epoch this node knows of the group
  uint64_t appended_ = 0;
  std::deque<std::pair<replication::PersistToken, uint64_t>> pending_;
};

struct GroupHost::Group {
  GroupPlacement placement;
  std::unique_ptr<GroupEnv> env;
  std::unique_ptr<HostedNode> protocol;
};

GroupHost::GroupHost(ByteEnv& env, NodeId self, GroupHostOptions options,
                     std::vector<std::string> recovered)
    : env_(env), self_(self), options_(std::move(options)) {
  // What to host: the initial placement, then what the host's records say
  // changed; each replica recovers only the records of its own incarnation.
  struct Hosting {
    GroupPlacement placement;
    uint64_t born = 0;
    std::vector<NodeId> bootstrap;
  };
  std::map<GroupId, Hosting> hosting;
  for (const GroupPlacement& p : options_.groups) {
    known_[p.id] = p;
    if (std::find(p.members.begin(), p.members.end(), self_) == p.members.end()) continue;
    hosting[p.id] = Hosting{p, p.epoch, p.members};
  }
  std::map<std::pair<GroupId, uint64_t>, std::vector<std::string>> records;
  for (const std::string& r : recovered) {
    auto tagged = untag_group(r);
    // The log checksums every record and drops torn ones: a bad tag is a bug.
    SKV_ASSERT(tagged.ok(), "a recovered record has no group tag");
    if (tagged->group != kHostRecords) {
      records[{tagged->group, tagged->epoch}].emplace_back(tagged->payload);
      continue;
    }
    replication::Reader rd(tagged->payload);
    auto kind = rd.u8();
    auto id = rd.varint();
    SKV_ASSERT(kind.ok() && id.ok(), "a host record does not decode");
    if (*kind == static_cast<uint8_t>(HostRecord::kStop)) {
      hosting.erase(GroupId(*id));
      continue;
    }
    auto epoch = rd.varint();
    auto members = read_nodes(rd);
    auto bootstrap = read_nodes(rd);
    SKV_ASSERT(*kind == static_cast<uint8_t>(HostRecord::kStart) && epoch.ok() && members.ok() &&
                   bootstrap.ok(),
               "a host record does not decode");
    hosting[GroupId(*id)] =
        Hosting{GroupPlacement{GroupId(*id), *members, *epoch}, *epoch, *bootstrap};
  }
  for (auto& [id, h] : hosting) {
    start(h.placement, h.born, h.bootstrap, std::move(records[{id, h.born}]));
  }
  started_ = env_.now();
  if (options_.peer_ping_interval.count() > 0 && !peers_.empty()) {
    ping_timer_ = env_.set_timer(options_.peer_ping_interval);
  }
}

void GroupHost::start(const GroupPlacement& placement, uint64_t born,
                      const std::vector<NodeId>& bootstrap, std::vector<std::string> records) {
  auto g = std::make_unique<Group>();
  g->placement = placement;
  g->env = std::make_unique<GroupEnv>(*this, placement.id, born);
  g->env->raise_epoch(placement.epoch);
  Group* raw = g.get();
  groups_[placement.id] = std::move(g);
  refresh_peers();
  // Built last: the protocol may use its env (timers, records) while it starts.
  raw->protocol = options_.factory(placement.id, *raw->env,
                                   replication::Membership{self_, bootstrap}, std::move(records));
}

void GroupHost::place(const GroupPlacement& placement, const std::vector<NodeId>& bootstrap) {
  SKV_ASSERT(placement.id != kHostRecords, "a group with the host records' id");
  GroupPlacement& known = known_[placement.id];
  if (known.members.empty() || placement.epoch >= known.epoch) known = placement;
  if (Group* g = find(placement.id)) {
    g->placement.members = placement.members;
    g->placement.epoch = std::max(g->placement.epoch, placement.epoch);
    g->env->raise_epoch(placement.epoch);
    refresh_peers();
    return;
  }
  const auto& m = placement.members;
  if (std::find(m.begin(), m.end(), self_) == m.end()) return;
  replication::Writer w;
  w.u8(static_cast<uint8_t>(HostRecord::kStart));
  w.varint(placement.id.value());
  w.varint(placement.epoch);
  write_nodes(w, placement.members);
  write_nodes(w, bootstrap);
  env_.persist(tag_with_group(kHostRecords, 0, std::move(w).take()));
  start(placement, placement.epoch, bootstrap, {});
  if (options_.peer_ping_interval.count() > 0 && !ping_timer_ && !peers_.empty()) {
    ping_timer_ = env_.set_timer(options_.peer_ping_interval);
  }
}

void GroupHost::unplace(GroupId id) {
  if (find(id) == nullptr) return;
  replication::Writer w;
  w.u8(static_cast<uint8_t>(HostRecord::kStop));
  w.varint(id.value());
  env_.persist(tag_with_group(kHostRecords, 0, std::move(w).take()));
  stop(id);
}

void GroupHost::stop(GroupId id) {
  for (auto it = timers_.begin(); it != timers_.end();) {
    if (it->second == id) {
      env_.cancel_timer(it->first);
      it = timers_.erase(it);
    } else {
      ++it;
    }
  }
  groups_.erase(id);
  refresh_peers();
}

void GroupHost::refresh_peers() {
  peers_.clear();
  for (const auto& [id, g] : groups_) {
    for (NodeId m : g->placement.members) {
      if (m != self_ && std::find(peers_.begin(), peers_.end(), m) == peers_.end()) {
        peers_.push_back(m);
      }
    }
  }
  std::sort(peers_.begin(), peers_.end());
}

const GroupPlacement* GroupHost::placement(GroupId group) const {
  auto it = groups_.find(group);
  return it == groups_.end() ? nullptr : &it->second->placement;
}

uint64_t GroupHost::born(GroupId group) const {
  auto it = groups_.find(group);
  return it == groups_.end() ? 0 : it->second->env->born();
}

HostedNode* GroupHost::protocol(GroupId group) {
  Group* g = find(group);
  return g == nullptr ? nullptr : g->protocol.get();
}

void GroupHost::ping_peers() {
  const replication::Instant now = env_.now();
  for (NodeId peer : peers_) env_.send_bytes(peer, tag_with_group(GroupId(0), 0, ""));
  for (NodeId peer : peers_) {
    auto it = last_heard_.find(peer);
    const replication::Instant since = it == last_heard_.end() ? started_ : it->second;
    if (now - since < options_.peer_down_after) continue;
    std::vector<HostedNode*> told;
    for (auto& [id, g] : groups_) {
      const std::vector<NodeId>& members = g->placement.members;
      if (std::find(members.begin(), members.end(), peer) != members.end()) {
        told.push_back(g->protocol.get());
      }
    }
    for (HostedNode* p : told) p->on_peer_down(peer);
  }
  ping_timer_ = env_.set_timer(options_.peer_ping_interval);
}

// The groups go first: a protocol may answer requests as it is destroyed,
// which needs the rest of the host.
GroupHost::~GroupHost() {
  groups_.clear();
}

GroupHost::Group* GroupHost::find(GroupId id) {
  auto it = groups_.find(id);
  return it == groups_.end() ? nullptr : it->second.get();
}

Status GroupHost::deliver(NodeId from, std::string_view bytes) {
  auto tagged = untag_group(bytes);
  if (!tagged.ok()) return tagged.status();
  last_heard_[from] = env_.now();
  if (tagged->group == GroupId(0) && tagged->payload.empty()) return Status::OK();  // a ping
  Group* g = find(tagged->group);
  if (g == nullptr) {
    ++unknown_frames_;
    return Status::OK();
  }
  if (tagged->epoch < g->env->born()) {
    ++stale_frames_;
    return Status::OK();
  }
  return g->protocol->deliver(from, tagged->payload);
}

void GroupHost::on_request(const replication::ClientRequest& req) {
  const GroupId id = options_.route(req.key);
  if (Group* g = find(id)) {
    auto session = decode_session(req.session);
    if (!session.ok()) {
      replication::ClientResponse refused;
      refused.outcome = replication::ClientResponse::Outcome::kFail;
      env_.reply(req.id, std::move(refused));
      return;
    }
    auto at = session->find(id);
    replication::ClientRequest mine = req;
    mine.min_index = at == session->end() ? 0 : at->second;
    sessions_[req.id] = req.session;
    g->protocol->on_request(mine);
    return;
  }
  auto placement = known_.find(id);
  SKV_ASSERT(placement != known_.end() && !placement->second.members.empty(),
             "a key routed to a group that does not exist");
  const std::vector<NodeId>& members = placement->second.members;
  replication::ClientResponse refused;
  refused.outcome = replication::ClientResponse::Outcome::kFail;
  refused.not_served = true;
  // A member of the key's group will serve it or name its leader.
  refused.leader_hint = members[req.id.value() % members.size()];
  env_.reply(req.id, std::move(refused));
}

void GroupHost::host_reply(GroupId group, RequestId request, replication::ClientResponse response) {
  auto it = sessions_.find(request);
  std::string token;
  if (it != sessions_.end()) {
    token = std::move(it->second);
    sessions_.erase(it);
  }
  if (response.outcome == replication::ClientResponse::Outcome::kOk && response.index > 0) {
    auto positions = decode_session(token);
    SKV_ASSERT(positions.ok(), "a session token the host accepted no longer decodes");
    uint64_t& at = (*positions)[group];
    at = std::max(at, response.index);
    response.session = encode_session(*positions);
  }
  env_.reply(request, std::move(response));
}

void GroupHost::on_timer(replication::TimerId id) {
  if (ping_timer_ && id == *ping_timer_) {
    ping_peers();
    return;
  }
  auto it = timers_.find(id);
  if (it == timers_.end()) return;  // cancelled
  const GroupId group = it->second;
  timers_.erase(it);
  if (Group* g = find(group)) g->protocol->on_timer(id);
}

void GroupHost::on_persisted(replication::PersistToken token) {
  for (auto& [id, g] : groups_) {
    const uint64_t durable = g->env->advance(token);
    if (durable != 0) g->protocol->on_persisted(replication::PersistToken(durable));
  }
}

namespace {

// FNV-1a: a fixed function of the key's bytes, so placement is the same on
// every platform and in every run.
uint64_t key_hash(std::string_view key) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

std::vector<GroupPlacement> spread_groups(const std::vector<NodeId>& nodes, size_t groups,
                                          size_t factor) {
  std::vector<GroupPlacement> out;
  const size_t n = nodes.size();
  for (size_t g = 0; g < groups; ++g) {
    GroupPlacement p{GroupId(g + 1), {}};
    for (size_t i = 0; i < std::min(factor, n); ++i) p.members.push_back(nodes[(g + i) % n]);
    out.push_back(std::move(p));
  }
  return out;
}

GroupId group_of_key(std::string_view key, size_t groups) {
  return GroupId(key_hash(key) % groups + 1);
}

ProtocolEntry group_host_entry(std::string name, std::string description,
                               std::function<ProtocolFactory(GroupId)> factory_of, size_t groups,
                               size_t factor) {
  SKV_ASSERT(groups > 0 && factor > 0, "a group host needs groups and members");
  ProtocolEntry entry;
  entry.name = std::move(name);
  entry.description = std::move(description);
  entry.factory = [factory_of = std::move(factory_of), groups, factor](
                      ByteEnv& env, const replication::Membership& m,
                      std::vector<std::string> recovered) -> std::unique_ptr<HostedNode> {
    GroupHostOptions options;
    options.groups = spread_groups(m.nodes, groups, factor);
    options.route = [groups](std::string_view key) { return group_of_key(key, groups); };
    options.factory = [factory_of](GroupId g, ByteEnv& group_env,
                                   const replication::Membership& members,
                                   std::vector<std::string> records) {
      return factory_of(g)(group_env, members, std::move(records));
    };
    return std::make_unique<GroupHost>(env, m.self, std::move(options), std::move(recovered));
  };
  return entry;
}

}  // namespace statekv::sim
