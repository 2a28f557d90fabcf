#include "node/cluster_node.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "meta/health.h"
#include "meta/map_watch.h"
#include "meta/meta_client.h"
#include "meta/transitions.h"
#include "node/cluster_acl.h"
#include "node/raft_register_client.h"
#include "partition/layout.h"

namespace statekv::node {

using namespace std::chrono_literals;

ClusterNode::ClusterNode(ClusterNodeOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<ClusterNode>> ClusterNode::start(ClusterNodeOptions options) {
  auto node = std::unique_ptr<ClusterNode>(new ClusterNode(std::move(options)));
  auto raft = net::RaftNode::start(node->options_.raft);
  if (!raft.ok()) return raft.status();
  node->raft_ = std::move(raft).value();
  ClusterNode* self = node.get();
  // Users first: when a map and the users arrive in one apply, the users
  // are installed before anything routes with the map.
  node->raft_->watch_key(std::string(kAclKey),
                         [self](const std::optional<std::string>& bytes) { self->on_acl(bytes); });
  node->raft_->watch_key(std::string(meta::kMetaKey),
                         [self](const std::optional<std::string>& bytes) { self->on_meta(bytes); });
  node->registrar_ = std::thread([self] { self->register_loop(); });
  return node;
}

ClusterNode::~ClusterNode() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
  if (registrar_.joinable()) registrar_.join();
  raft_.reset();
}

// Runs on the raft node's thread after every applied change of "meta".
void ClusterNode::on_meta(const std::optional<std::string>& bytes) {
  if (!bytes) return;
  Result<bool> published = watch_.on_apply(std::string_view(*bytes));
  if (!published.ok()) {
    spdlog::error("the applied cluster map does not decode: {}", published.status().to_string());
    return;
  }
  if (!*published) return;
  auto map = watch_.current();
  for (const meta::Member& m : map->members) {
    if (m.id != options_.raft.self && !m.peer_address.empty() &&
        m.state != meta::MemberState::kRemoved) {
      raft_->set_peer_address(m.id, m.peer_address);
    }
  }
  spdlog::info("cluster map epoch {}: {}", map->epoch, map->last_change);
  changed_.notify_all();
}

std::shared_ptr<const meta::ClusterMap> ClusterNode::map() const { return watch_.current(); }

void ClusterNode::on_acl(const std::optional<std::string>& bytes) {
  if (!bytes) return;
  std::function<void(const std::string&)> listener;
  {
    std::lock_guard<std::mutex> lock(acl_mu_);
    acl_bytes_ = *bytes;
    listener = acl_listener_;
  }
  if (listener) listener(*bytes);
}

void ClusterNode::set_acl_listener(std::function<void(const std::string&)> listener) {
  std::optional<std::string> now;
  {
    std::lock_guard<std::mutex> lock(acl_mu_);
    acl_listener_ = listener;
    now = acl_bytes_;
  }
  // A change applied between the two is delivered twice: the listener keeps
  // the newest version (server::Acl::load).
  if (now) listener(*now);
}

Status ClusterNode::seed_users(meta::RegisterClient& client) {
  const std::string key(kAclKey);
  auto current = client.read(key);
  if (!current.ok()) return current.status();
  if (!*current) {
    auto written =
        client.cas(key, std::nullopt, server::initial_acl_document(options_.requirepass_hash));
    if (!written.ok()) return written.status();
    if (*written) {
      spdlog::info("seeded the cluster's users: the default user {}",
                   options_.requirepass_hash.empty() ? "needs no password"
                                                     : "has this node's --requirepass");
      return Status::OK();
    }
    current = client.read(key);  // another node seeded them first
    if (!current.ok()) return current.status();
    if (!*current) return Status::Unavailable("the users document vanished");
  }
  if (!options_.requirepass_hash.empty() && !warned_password_ &&
      (*current)->find("#" + options_.requirepass_hash) == std::string::npos) {
    warned_password_ = true;
    spdlog::warn(
        "this node's --requirepass is not a password of the cluster's default user: the "
        "cluster's users (kept by the metadata service) hold; change the password with CONFIG "
        "SET requirepass or ACL SETUSER default on any node");
  }
  return Status::OK();
}

Status ClusterNode::register_once() {
  // Every known peer address, ours included: the client finds the leader.
  std::vector<std::string> endpoints;
  endpoints.push_back(options_.raft.peer_bind + ":" + std::to_string(raft_->peer_port()));
  for (const auto& [id, address] : options_.raft.peers) {
    if (id != options_.raft.self) endpoints.push_back(address);
  }
  if (auto m = map()) {
    for (const meta::Member& member : m->members) {
      if (member.id != options_.raft.self && !member.peer_address.empty() &&
          std::find(endpoints.begin(), endpoints.end(), member.peer_address) == endpoints.end()) {
        endpoints.push_back(member.peer_address);
      }
    }
  }
  RaftRegisterClient client(endpoints, options_.raft.secret, 3000ms);
  const NodeId self = options_.raft.self;
  // Before the first map: a node that knows a map then knows the users.
  if (Status s = seed_users(client); !s.ok()) return s;
  const std::string peer_address = endpoints.front();

  if (!map() && !options_.raft.bootstrap_voters.empty()) {
    // Propose the first map. Members other than us are described by what
    // --peers said; each of them records its own RESP address and region.
    auto made = meta::initialize(client, [&]() -> Result<meta::ClusterMap> {
      std::vector<meta::Member> members;
      for (NodeId id : options_.raft.bootstrap_voters) {
        meta::Member m;
        m.id = id;
        auto it = options_.raft.peers.find(id);
        if (id == self) {
          m.address = options_.resp_address;
          m.peer_address = peer_address;
          m.region = options_.region;
        } else if (it != options_.raft.peers.end()) {
          // Until it describes itself, assume the default layout: RESP port =
          // peer port - 10000 (the server's --peer-port default).
          m.peer_address = it->second;
          const size_t colon = it->second.rfind(':');
          const long peer_port = std::strtol(it->second.c_str() + colon + 1, nullptr, 10);
          m.address = it->second.substr(0, colon) + ":" +
                      std::to_string(peer_port > 10000 ? peer_port - 10000 : peer_port);
        }
        members.push_back(std::move(m));
      }
      // One owner per shard by default; raft per shard when asked
      // (coord/replica_groups.h), with up to three copies.
      meta::ReplicationSpec replication;
      replication.kind = options_.default_replication;
      replication.factor =
          options_.default_replication == meta::Replication::kConsensus
              ? static_cast<uint32_t>(std::min<size_t>(3, members.size()))
              : 1;
      auto map = meta::bootstrap(options_.cluster_id, std::move(members), replication);
      if (!map.ok() || options_.default_partitioner == meta::Partitioner::kHash) return map;
      // Another partitioner for "default": placed over the founders, recorded
      // as its layout (partition/layout.h).
      meta::ClusterMap m = std::move(map).value();
      meta::PartitionerSpec spec = m.keyspaces.front().spec.partitioner;
      spec.kind = options_.default_partitioner;
      auto placed = partition::place(spec, partition::placeable_nodes(m.members), nullptr, 1);
      if (!placed.ok()) return placed.status();
      auto layout = partition::layout_of(*placed);
      if (!layout.ok()) return layout.status();
      m.keyspaces.front().spec.partitioner.kind = spec.kind;
      meta::record_layout(m.keyspaces.front(), std::move(layout->split_points),
                          std::move(layout->shards));
      for (meta::Shard& sh : m.keyspaces.front().shards) sh.config_epoch = m.epoch.value();
      if (Status s = meta::validate(m); !s.ok()) return s;
      return m;
    });
    if (!made.ok() && !made.status().is_invalid_argument()) return made.status();
    if (!made.ok() && made.status().message().find("already bootstrapped") == std::string::npos) {
      spdlog::error("cannot bootstrap the cluster map: {}", made.status().message());
      return made.status();
    }
  }

  auto current = meta::fetch(client);
  if (!current.ok()) return current.status();
  const meta::Member* me = current->find_member(self);
  // Described already (a node being removed stays leaving: describe_member).
  if (me != nullptr && me->address == options_.resp_address && me->peer_address == peer_address &&
      me->region == options_.region &&
      (me->state == meta::MemberState::kActive || me->state == meta::MemberState::kLeaving)) {
    return Status::OK();
  }
  if (me == nullptr) {
    // Not in the map: `cluster add-node` adds a member before starting it, so
    // this is a node started with --join by hand. It may not add itself.
    return Status::NotFound("node " + std::to_string(self.value()) +
                            " is not in the cluster map; add it with `statekv cluster add-node`");
  }
  auto updated = meta::update(client, [&](const meta::ClusterMap& m) -> Result<meta::ClusterMap> {
    return meta::describe_member(m, self, options_.resp_address, peer_address, options_.region,
                                 meta::MemberState::kActive);
  });
  return updated.ok() ? Status::OK() : updated.status();
}

void ClusterNode::register_loop() {
  auto delay = 100ms;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    Status s = register_once();
    if (s.ok()) {
      spdlog::info("node {} is active in the cluster map", options_.raft.self);
      return;
    }
    spdlog::debug("registering in the cluster map: {}", s.to_string());
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, delay, [this] { return stopping_; });
    delay = std::min<std::chrono::milliseconds>(delay * 2, 2000ms);
  }
}

std::string ClusterNode::my_id() const { return std::to_string(options_.raft.self.value()); }

bool ClusterNode::member_up(const net::RaftNodeStatus& s, NodeId id) const {
  if (id == s.self) return true;
  auto it = s.last_heard.find(id);
  const auto since = it != s.last_heard.end() ? std::max(it->second, s.started) : s.started;
  return std::chrono::steady_clock::now() - since < options_.peer_down_after;
}

std::set<NodeId> ClusterNode::down_members() const {
  const net::RaftNodeStatus s = raft_->status();
  std::set<NodeId> down;
  if (const auto m = map()) {
    for (const meta::Member& member : m->members) {
      if (member.state != meta::MemberState::kRemoved && !member_up(s, member.id)) {
        down.insert(member.id);
      }
    }
  }
  return down;
}

std::string ClusterNode::cluster_info() const {
  const net::RaftNodeStatus s = raft_->status();
  const auto m = map();
  std::optional<meta::Health> health;
  if (m) health = meta::assess_health(*m, [&](NodeId id) { return member_up(s, id); });
  std::string out;
  auto line = [&out](std::string_view k, const std::string& v) {
    out.append(k).append(":").append(v).append("\r\n");
  };
  // Like Redis Cluster: fail when some keys cannot be served (here: a shard
  // without a serving owner), or when the cluster map cannot change (no leader).
  const bool ok =
      s.leader.has_value() && health.has_value() && health->state != meta::HealthState::kFail;
  // Removed members stay in the map as tombstones (ids are never reused): not nodes.
  const size_t members =
      m ? static_cast<size_t>(std::count_if(
              m->members.begin(), m->members.end(),
              [](const meta::Member& x) { return x.state != meta::MemberState::kRemoved; }))
        : s.voters.size();
  const uint64_t epoch = m ? m->epoch.value() : 0;
  line("cluster_state", ok ? "ok" : "fail");
  line("cluster_known_nodes", std::to_string(members));
  line("cluster_size", std::to_string(members));
  line("cluster_current_epoch", std::to_string(epoch));
  line("cluster_my_epoch", std::to_string(epoch));
  line("statekv_node_id", std::to_string(s.self.value()));
  line("raft_role", s.role);
  line("raft_term", std::to_string(s.term));
  line("raft_leader", s.leader ? std::to_string(s.leader->value()) : "none");
  line("raft_commit_index", std::to_string(s.commit_index));
  line("raft_applied_index", std::to_string(s.applied_index));
  line("raft_last_index", std::to_string(s.last_index));
  line("raft_snapshot_index", std::to_string(s.snapshot_index));
  std::string voters;
  for (NodeId v : s.voters) voters += (voters.empty() ? "" : ",") + std::to_string(v.value());
  line("raft_voters", voters);
  line("meta_epoch", std::to_string(epoch));
  line("meta_last_change", m ? m->last_change : "");
  line("meta_keyspaces", std::to_string(m ? m->keyspaces.size() : 0));
  // What this node sees of every shard (meta/health.h): ok, degraded or fail,
  // and which shards and members are the cause.
  {
    auto list = [](const std::vector<meta::ShardHealth>& shards) {
      std::string out;
      for (const meta::ShardHealth& sh : shards) {
        out += (out.empty() ? "" : ",") + sh.keyspace + "/" + std::to_string(sh.shard.value());
      }
      return out;
    };
    std::string down;
    if (health) {
      for (NodeId id : health->down) down += (down.empty() ? "" : ",") + std::to_string(id.value());
    }
    line("statekv_health", !s.leader            ? "fail"
                           : health.has_value() ? std::string(meta::to_string(health->state))
                                                : "fail");
    line("statekv_shards_unavailable", std::to_string(health ? health->unavailable.size() : 0));
    line("statekv_shards_degraded", std::to_string(health ? health->degraded.size() : 0));
    line("statekv_unavailable_shards", health ? list(health->unavailable) : "");
    line("statekv_degraded_shards", health ? list(health->degraded) : "");
    line("statekv_down_nodes", down);
  }
  if (m) {
    for (const meta::Member& member : m->members) {
      if (member.state == meta::MemberState::kRemoved) continue;
      const bool voter = std::find(s.voters.begin(), s.voters.end(), member.id) != s.voters.end();
      std::string lag = "unknown";
      if (member.id == s.self) {
        lag = std::to_string(s.commit_index - std::min(s.commit_index, s.applied_index));
      }
      if (s.role == "leader") {
        auto it = s.match.find(member.id);
        if (it != s.match.end()) lag = std::to_string(s.last_index - std::min(s.last_index, it->second));
        if (member.id == s.self) lag = "0";
      }
      line("member_" + std::to_string(member.id.value()),
           "address=" + member.address + ",peer=" + member.peer_address +
               ",region=" + member.region + ",state=" + std::string(meta::to_string(member.state)) +
               ",voter=" + (voter ? "1" : "0") + ",lag=" + lag +
               ",up=" + (member_up(s, member.id) ? "1" : "0"));
    }
  }
  return out;
}

}  // namespace statekv::node
