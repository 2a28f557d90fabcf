#include "sim/group_host.h"

#include <algorithm>

#include "core/assert.h"
#include "replication/codec.h"

namespace statekv::sim {

std::string tag_with_group(GroupId group, std::string_view payload) {
  replication::Writer w;
  w.varint(group.value());
  std::string out = std::move(w).take();
  out.append(payload);
  return out;
}

Result<std::pair<GroupId, std::string_view>> untag_group(std::string_view bytes) {
  replication::Reader r(bytes);
  Result<uint64_t> id = r.varint();
  if (!id.ok()) return id.status();
  return std::pair{GroupId(*id), bytes.substr(bytes.size() - r.remaining())};
}

// One group's view of the node: everything it does goes through the host's env,
// tagged with its id.
class GroupHost::GroupEnv final : public ByteEnv {
 public:
  GroupEnv(GroupHost& host, GroupId group) : host_(host), group_(group) {}

  void send_bytes(NodeId to, std::string bytes) override {
    host_.env_.send_bytes(to, tag_with_group(group_, bytes));
  }
  void reply(RequestId request, replication::ClientResponse response) override {
    host_.env_.reply(request, std::move(response));
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
    const replication::PersistToken node_token = host_.env_.persist(tag_with_group(group_, record));
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

 private:
  GroupHost& host_;
  GroupId group_;
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
  std::map<GroupId, std::vector<std::string>> records;
  for (const std::string& r : recovered) {
    auto tagged = untag_group(r);
    // The log checksums every record and drops torn ones: a bad tag is a bug.
    SKV_ASSERT(tagged.ok(), "a recovered record has no group tag");
    records[tagged->first].emplace_back(tagged->second);
  }
  for (const GroupPlacement& p : options_.groups) {
    if (std::find(p.members.begin(), p.members.end(), self_) == p.members.end()) continue;
    auto g = std::make_unique<Group>();
    g->placement = p;
    g->env = std::make_unique<GroupEnv>(*this, p.id);
    Group* raw = g.get();
    groups_.emplace(p.id, std::move(g));
    // Built last: the protocol may use its env (timers, records) while it starts.
    raw->protocol = options_.factory(p.id, *raw->env, replication::Membership{self_, p.members},
                                     std::move(records[p.id]));
    for (NodeId m : p.members) {
      if (m != self_ && std::find(peers_.begin(), peers_.end(), m) == peers_.end()) {
        peers_.push_back(m);
      }
    }
  }
  std::sort(peers_.begin(), peers_.end());
  started_ = env_.now();
  if (options_.peer_ping_interval.count() > 0 && !peers_.empty()) {
    ping_timer_ = env_.set_timer(options_.peer_ping_interval);
  }
}

void GroupHost::ping_peers() {
  const replication::Instant now = env_.now();
  for (NodeId peer : peers_) env_.send_bytes(peer, tag_with_group(GroupId(0), ""));
  for (NodeId peer : peers_) {
    auto it = last_heard_.find(peer);
    const replication::Instant since = it == last_heard_.end() ? started_ : it->second;
    if (now - since < options_.peer_down_after) continue;
    for (auto& [id, g] : groups_) {
      const std::vector<NodeId>& members = g->placement.members;
      if (std::find(members.begin(), members.end(), peer) != members.end()) {
        g->protocol->on_peer_down(peer);
      }
    }
  }
  ping_timer_ = env_.set_timer(options_.peer_ping_interval);
}

GroupHost::~GroupHost() = default;

GroupHost::Group* GroupHost::find(GroupId id) {
  auto it = groups_.find(id);
  return it == groups_.end() ? nullptr : it->second.get();
}

Status GroupHost::deliver(NodeId from, std::string_view bytes) {
  auto tagged = untag_group(bytes);
  if (!tagged.ok()) return tagged.status();
  last_heard_[from] = env_.now();
  if (tagged->first == GroupId(0) && ping_timer_) return Status::OK();  // a peer's ping
  Group* g = find(tagged->first);
  if (g == nullptr) {
    ++unknown_frames_;
    return Status::OK();
  }
  return g->protocol->deliver(from, tagged->second);
}

void GroupHost::on_request(const replication::ClientRequest& req) {
  const GroupId id = options_.route(req.key);
  if (Group* g = find(id)) {
    g->protocol->on_request(req);
    return;
  }
  auto placement = std::find_if(options_.groups.begin(), options_.groups.end(),
                                [&](const GroupPlacement& p) { return p.id == id; });
  SKV_ASSERT(placement != options_.groups.end() && !placement->members.empty(),
             "a key routed to a group that does not exist");
  replication::ClientResponse refused;
  refused.outcome = replication::ClientResponse::Outcome::kFail;
  refused.not_served = true;
  // A member of the key's group will serve it or name its leader.
  refused.leader_hint = placement->members[req.id.value() % placement->members.size()];
  env_.reply(req.id, std::move(refused));
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
