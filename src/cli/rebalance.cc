#include "cli/rebalance.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "coord/replica_groups.h"
#include "coord/replica_moves.h"
#include "meta/meta_client.h"
#include "meta/transitions.h"
#include "net/blocking_connection.h"
#include "node/raft_register_client.h"
#include "partition/layout.h"

namespace statekv::cli {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Runs `__migrate VERB KEYSPACE EPOCH` on one node; its one-line answer.
Result<std::string> migrate(const meta::Member& node, const std::string& secret,
                            std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto conn = net::BlockingConnection::open(node.peer_address, secret, deadline);
  if (!conn.ok()) return conn.status();
  net::ForwardFrame frame;
  frame.call = 1;
  frame.argv = {"__migrate"};
  frame.argv.insert(frame.argv.end(), argv.begin(), argv.end());
  auto r = (*conn)->call(frame, deadline);
  if (!r.ok()) return r.status();
  if (!r->status.ok()) {
    return Status(r->status.code() == Status::Code::kInvalidArgument
                      ? Status::InvalidArgument("node " + std::to_string(node.id.value()) + ": " +
                                                r->status.message())
                      : Status::Unavailable("node " + std::to_string(node.id.value()) + ": " +
                                            r->status.message()));
  }
  std::string text = r->reply;
  if (text.size() >= 3 && text[0] == '+') text = text.substr(1, text.size() - 3);
  return text;
}

Status move_keyspace(node::RaftRegisterClient& client, const std::string& secret,
                     const std::string& name,
                     const std::function<void(const RebalanceProgress&)>& on_progress,
                     const std::set<NodeId>& down) {
  // 1. The new layout, moving as little as the partitioner allows.
  auto begun = meta::update(client, [&](const meta::ClusterMap& m) -> Result<meta::ClusterMap> {
    const meta::Keyspace* k = m.find_keyspace(name);
    if (k == nullptr) return Status::InvalidArgument("keyspace '" + name + "' is gone");
    auto previous = partition::restore(*k, m.members);
    if (!previous.ok()) return previous.status();
    auto placed = partition::place(k->spec.partitioner, partition::placeable_nodes(m.members),
                                   &*previous, k->spec.replication.factor);
    if (!placed.ok()) return placed.status();
    auto layout = partition::layout_of(*placed);
    if (!layout.ok()) return layout.status();
    return meta::begin_move(m, name, std::move(layout->split_points), std::move(layout->shards),
                            std::move(layout->region_shards));
  });
  if (!begun.ok()) {
    if (begun.status().message().find("nothing to move") != std::string::npos) return Status::OK();
    return begun.status();
  }
  const std::string epoch = std::to_string(begun->epoch.value());
  // Every node that may hold keys: active ones, and those leaving (whose keys
  // this move takes away).
  std::vector<meta::Member> nodes;
  for (const meta::Member& m : begun->members) {
    if (down.contains(m.id)) continue;  // a dead node being removed owns nothing any more
    if (m.state == meta::MemberState::kActive || m.state == meta::MemberState::kLeaving) {
      nodes.push_back(m);
    }
  }
  auto abandon = [&](Status why) {
    for (const meta::Member& n : nodes) (void)migrate(n, secret, {"abort", name, epoch}, 5s);
    auto aborted =
        meta::update(client, [&](const meta::ClusterMap& m) { return meta::abort_move(m, name); });
    return Status(why.code() == Status::Code::kOk ? Status::Internal("rebalance failed") : why);
  };

  // 2-3. Prepare everywhere before anyone copies into anyone; then copy.
  for (const char* verb : {"prepare", "copy"}) {
    for (const meta::Member& n : nodes) {
      auto r = migrate(n, secret, {verb, name, epoch}, 30s);
      if (!r.ok()) return abandon(r.status());
    }
  }
  while (true) {
    RebalanceProgress progress{name, 0, 0};
    size_t copied = 0;
    for (const meta::Member& n : nodes) {
      auto r = migrate(n, secret, {"status"}, 10s);
      if (!r.ok()) return abandon(r.status());
      char state[16] = {};
      unsigned long long moved = 0, total = 0;
      std::sscanf(r->c_str(), "%15s %llu %llu", state, &moved, &total);
      if (std::string(state) == "failed") {
        return abandon(Status::Internal("node " + std::to_string(n.id.value()) + ": " + *r));
      }
      copied += std::string(state) == "copied";
      progress.moved += moved;
      progress.total += total;
    }
    on_progress(progress);
    if (copied == nodes.size()) break;
    std::this_thread::sleep_for(50ms);
  }
  // 4. Freeze everywhere (each node sends what was written meanwhile), then
  //    finish in the map; each node thaws when it applies that map.
  for (const meta::Member& n : nodes) {
    auto r = migrate(n, secret, {"freeze", name, epoch}, 30s);
    if (!r.ok()) return abandon(r.status());
  }
  auto finished =
      meta::update(client, [&](const meta::ClusterMap& m) { return meta::finish_move(m, name); });
  if (!finished.ok()) return abandon(finished.status());
  // Each node thaws when it applies the finished map, then drops the keys it
  // no longer serves: wait for that, so counts (DBSIZE) are exact on return.
  const auto deadline = Clock::now() + 60s;
  for (const meta::Member& n : nodes) {
    while (true) {
      auto r = migrate(n, secret, {"status"}, 10s);
      if (!r.ok()) return r.status();
      if (r->rfind("idle", 0) == 0) break;
      if (Clock::now() > deadline) {
        return Status::Timeout("node " + std::to_string(n.id.value()) +
                               " still cleaning up: " + *r);
      }
      std::this_thread::sleep_for(20ms);
    }
  }
  return Status::OK();
}

// ---- replicas of REPLICATION consensus keyspaces (coord/replica_moves.h) ----

// Asks the leader of `group` to run `__replicas ARGS`: tries `leader` first,
// then each of `members` (not those down), following leader hints. On OK,
// `leader` is who answered. Busy and InvalidArgument come back as the leader
// said them; Unavailable when no member leads or answers.
Result<std::string> ask_leader(const meta::ClusterMap& map, GroupId group,
                               const std::vector<NodeId>& members, const std::set<NodeId>& down,
                               const std::string& secret, const std::vector<std::string>& args,
                               NodeId& leader) {
  std::vector<NodeId> order;
  if (leader.value() != 0) order.push_back(leader);
  for (NodeId n : members) {
    if (std::find(order.begin(), order.end(), n) == order.end()) order.push_back(n);
  }
  std::set<NodeId> asked;
  std::string last = "no member to ask";
  for (size_t i = 0; i < order.size() && asked.size() < 2 * order.size(); ++i) {
    const NodeId target = order[i];
    if (down.contains(target) || !asked.insert(target).second) continue;
    const meta::Member* m = map.find_member(target);
    if (m == nullptr || m->peer_address.empty()) continue;
    const auto deadline = Clock::now() + 3s;
    auto conn = net::BlockingConnection::open(m->peer_address, secret, deadline);
    if (!conn.ok()) {
      last = fmt::format("node {}: {}", target.value(), conn.status().message());
      continue;
    }
    net::ForwardFrame frame;
    frame.call = 1;
    frame.epoch = map.epoch.value();
    frame.group = group.value();
    frame.argv = {std::string(coord::kReplicasVerb)};
    frame.argv.insert(frame.argv.end(), args.begin(), args.end());
    auto r = (*conn)->call(frame, deadline);
    if (!r.ok()) {
      last = fmt::format("node {}: {}", target.value(), r.status().message());
      continue;
    }
    if (r->status.ok()) {
      leader = target;
      std::string text = r->reply;
      if (text.size() >= 3 && text[0] == '+') text = text.substr(1, text.size() - 3);
      return text;
    }
    if (r->status.code() != Status::Code::kUnavailable) return r->status;
    last = fmt::format("node {}: {}", target.value(), r->status.message());
    const NodeId hint(r->leader_hint);
    if (hint.value() != 0 && !asked.contains(hint)) order.insert(order.begin() + i + 1, hint);
  }
  return Status::Unavailable("no leader of the group answers (" + last + ")");
}

// `__replicas status`'s line: leader=N commit=I config=A,B committed=0|1 match=B:I,C:I
Result<coord::GroupView> parse_group_view(const std::string& line) {
  coord::GroupView v;
  const auto ids = [](std::string_view text, auto&& each) {
    size_t at = 0;
    while (at < text.size()) {
      size_t end = text.find(',', at);
      if (end == std::string_view::npos) end = text.size();
      each(text.substr(at, end - at));
      at = end + 1;
    }
  };
  size_t at = 0;
  while (at < line.size()) {
    size_t end = line.find(' ', at);
    if (end == std::string::npos) end = line.size();
    const std::string field = line.substr(at, end - at);
    at = end + 1;
    const size_t eq = field.find('=');
    if (eq == std::string::npos) return Status::Corruption("group status: '" + field + "'");
    const std::string name = field.substr(0, eq), value = field.substr(eq + 1);
    if (name == "leader") {
      v.leader = NodeId(std::stoull(value));
    } else if (name == "commit") {
      v.commit_index = std::stoull(value);
    } else if (name == "committed") {
      v.config_committed = value == "1";
    } else if (name == "config") {
      ids(value,
          [&](std::string_view id) { v.config.push_back(NodeId(std::stoull(std::string(id)))); });
    } else if (name == "match") {
      ids(value, [&](std::string_view pair) {
        const size_t colon = pair.find(':');
        if (colon == std::string_view::npos) return;
        v.match[NodeId(std::stoull(std::string(pair.substr(0, colon))))] =
            std::stoull(std::string(pair.substr(colon + 1)));
      });
    }
  }
  if (v.leader.value() == 0 || v.config.empty()) {
    return Status::Corruption("group status without a leader or members: '" + line + "'");
  }
  return v;
}

// Moves the replicas of consensus keyspace `name` to replica_targets, one
// shard and one replica at a time.
Status move_replicas(node::RaftRegisterClient& client, const std::string& secret,
                     const std::string& name,
                     const std::function<void(const RebalanceProgress&)>& on_progress,
                     const RebalanceOptions& options) {
  auto map = meta::fetch(client);
  if (!map.ok()) return map.status();
  const meta::Keyspace* k = map->find_keyspace(name);
  if (k == nullptr) return Status::OK();  // dropped meanwhile
  if (Status s = coord::replicas_can_move(*k); !s.ok()) {
    bool involved = false;  // a node on its way out holds one of its replicas
    for (const meta::Shard& shard : k->shards) {
      for (NodeId n : shard.owners) involved |= options.leaving.contains(n);
    }
    if (involved) return s;
    on_progress(RebalanceProgress{name, 0, 0, s.message() + ": its replicas stay"});
    return Status::OK();
  }
  auto targets = coord::replica_targets(*map, *k, options.leaving);
  if (!targets.ok()) return targets.status();
  const uint32_t factor = k->spec.replication.factor;
  RebalanceProgress progress{name, 0, 0, {}};
  std::vector<uint32_t> moving;
  for (size_t i = 0; i < k->shards.size(); ++i) {
    const auto& owners = k->shards[i].owners;
    if (owners == (*targets)[i]) continue;
    moving.push_back(static_cast<uint32_t>(i));
    for (NodeId n : (*targets)[i]) {
      progress.total += std::find(owners.begin(), owners.end(), n) == owners.end() ? 1 : 0;
    }
  }
  if (moving.empty()) return Status::OK();
  const auto report = [&](std::string step) {
    progress.step = std::move(step);
    on_progress(progress);
    progress.step.clear();
  };
  for (uint32_t shard : moving) {
    const std::vector<NodeId>& target = (*targets)[shard];
    const GroupId group = coord::ReplicaGroups::group_id(name, shard);
    NodeId leader;
    std::vector<NodeId> config;
    std::string last_wait;
    auto last_report = Clock::now() - 1h;
    const auto deadline = Clock::now() + 120s;
    for (;;) {
      if (Clock::now() > deadline) {
        return Status::Timeout(
            fmt::format("shard {}: its replicas still move after 120 s ({})", shard, last_wait));
      }
      map = meta::fetch(client);
      if (!map.ok()) return map.status();
      k = map->find_keyspace(name);
      if (k == nullptr) return Status::OK();
      const std::vector<NodeId> owners = k->shards[shard].owners;
      std::vector<NodeId> ask = owners;
      for (NodeId n : config) {
        if (std::find(ask.begin(), ask.end(), n) == ask.end()) ask.push_back(n);
      }
      auto line = ask_leader(*map, group, ask, options.down, secret, {"status"}, leader);
      if (!line.ok()) {
        if (line.status().code() != Status::Code::kUnavailable) return line.status();
        last_wait = line.status().message();  // an election: ask again
        std::this_thread::sleep_for(100ms);
        continue;
      }
      auto view = parse_group_view(*line);
      if (!view.ok()) return view.status();
      config = view->config;
      auto step = coord::next_replica_step(target, owners, *view, factor, options.down);
      if (!step.ok())
        return Status::InvalidArgument(fmt::format("shard {}: {}", shard, step.status().message()));
      using Kind = coord::ReplicaStep::Kind;
      const std::string what = fmt::format("shard {}: {}", shard, step->why);
      switch (step->kind) {
        case Kind::kDone:
          break;
        case Kind::kWait:
          last_wait = what;
          if (Clock::now() - last_report > 1s) {
            report(what);
            last_report = Clock::now();
          }
          std::this_thread::sleep_for(50ms);
          continue;
        case Kind::kPublish: {
          auto published = meta::update(client, [&](const meta::ClusterMap& m) {
            return meta::set_replica_owners(m, name, shard, step->owners);
          });
          if (!published.ok() &&
              published.status().message().find("already these") == std::string::npos) {
            return published.status();
          }
          report(what);
          continue;
        }
        case Kind::kAdd:
        case Kind::kRemove:
        case Kind::kTransfer: {
          const char* verb = step->kind == Kind::kAdd      ? "add"
                             : step->kind == Kind::kRemove ? "remove"
                                                           : "transfer";
          auto done = ask_leader(*map, group, ask, options.down, secret,
                                 {verb, std::to_string(step->node.value())}, leader);
          if (!done.ok()) {
            // Busy (a change or transfer under way, or no entry of the
            // leader's term committed yet), or the view changed under us:
            // look again.
            last_wait = what + ": " + done.status().message();
            std::this_thread::sleep_for(50ms);
            continue;
          }
          if (step->kind == Kind::kRemove) ++progress.moved;
          if (step->kind == Kind::kTransfer) leader = step->node;
          report(what);
          continue;
        }
      }
      break;
    }
  }
  report("every shard at its target");
  return Status::OK();
}

}  // namespace

Status rebalance(const std::vector<std::string>& endpoints, const std::string& secret,
                 const std::function<void(const RebalanceProgress&)>& on_progress,
                 const RebalanceOptions& options) {
  node::RaftRegisterClient client(endpoints, secret, 10000ms);
  auto map = meta::fetch(client);
  if (!map.ok()) return map.status();
  for (const meta::Keyspace& k : map->keyspaces) {
    // A consensus keyspace's shards are replica groups: their replicas move
    // (membership changes), not their keys; its layout stays.
    Status s = k.spec.replication.kind == meta::Replication::kConsensus
                   ? move_replicas(client, secret, k.spec.name, on_progress, options)
                   : move_keyspace(client, secret, k.spec.name, on_progress, options.down);
    if (!s.ok()) {
      return Status(s.code() == Status::Code::kInvalidArgument
                        ? Status::InvalidArgument("keyspace '" + k.spec.name + "': " + s.message())
                        : Status::Unavailable("keyspace '" + k.spec.name + "': " + s.message()));
    }
  }
  return Status::OK();
}

}  // namespace statekv::cli
