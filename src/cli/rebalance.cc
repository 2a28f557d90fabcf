#include "cli/rebalance.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <thread>

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
    RebalanceProgress progress{name, 0, 0, {}};
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

std::string node_list(const std::vector<NodeId>& nodes) {
  std::string out;
  for (size_t i = 0; i < nodes.size(); ++i) out += (i ? "," : "") + std::to_string(nodes[i].value());
  return out;
}

// The metadata leader's controller (coord/replica_controller.h) moves the
// replicas of consensus keyspace `name` as the map changes; this waits until
// every shard's owners are its target, reporting each change it sees. A move
// that makes no progress for 60 s is a Timeout (the controller's log says
// why; the move goes on when the cause is gone).
Status wait_for_replicas(node::RaftRegisterClient& client, const std::string& secret,
                         const std::string& name,
                         const std::function<void(const RebalanceProgress&)>& on_progress,
                         const RebalanceOptions& options) {
  auto map = meta::fetch(client);
  if (!map.ok()) return map.status();
  const meta::Keyspace* k = map->find_keyspace(name);
  if (k == nullptr) return Status::OK();  // dropped meanwhile
  RebalanceProgress progress{name, 0, 0, {}};
  std::optional<uint64_t> to_remove_at_start;
  std::string last_state;
  auto last_change = Clock::now();
  // The controller's targets give a down member's replicas away first
  // (replica_targets): this judges which members are down the same way, by
  // whether they answer, asked again every 2 s.
  std::set<NodeId> down;
  std::optional<Clock::time_point> down_asked;
  for (;;) {
    std::set<NodeId> leaving = options.leaving;
    for (const meta::Member& m : map->members) {
      if (m.state == meta::MemberState::kLeaving) leaving.insert(m.id);
    }
    if (!down_asked || Clock::now() - *down_asked > 2s) {
      down = options.down;
      for (const meta::Member& m : map->members) {
        if (m.state == meta::MemberState::kActive && !down.contains(m.id) &&
            !member_answers(m, secret)) {
          down.insert(m.id);
        }
      }
      down_asked = Clock::now();
    }
    auto targets = coord::replica_targets(*map, *k, leaving, down);
    if (!targets.ok()) return targets.status();
    // A shard is done when its owners are its target (the move's own, when
    // one is under way); count the replicas still to go.
    uint64_t to_remove = 0;
    std::string state;
    for (size_t i = 0; i < k->shards.size() && i < targets->size(); ++i) {
      const meta::Shard& sh = k->shards[i];
      const std::vector<NodeId>& target = sh.moving_to.empty() ? (*targets)[i] : sh.moving_to;
      if (sh.owners == target) continue;
      for (NodeId n : sh.owners) {
        to_remove += std::find(target.begin(), target.end(), n) == target.end() ? 1 : 0;
      }
      state += fmt::format("{}shard {}: [{}] -> [{}]", state.empty() ? "" : "; ", i,
                           node_list(sh.owners), node_list(target));
    }
    if (!to_remove_at_start) to_remove_at_start = to_remove;
    progress.total = std::max(*to_remove_at_start, to_remove);
    progress.moved = progress.total - to_remove;
    if (state.empty()) break;
    if (state != last_state) {
      progress.step = state;
      on_progress(progress);
      last_state = state;
      last_change = Clock::now();
    } else if (Clock::now() - last_change > 60s) {
      return Status::Timeout("the replicas made no progress for 60 s (" + state +
                             "); the metadata leader's log says why");
    }
    std::this_thread::sleep_for(100ms);
    map = meta::fetch(client);
    if (!map.ok()) return map.status();
    k = map->find_keyspace(name);
    if (k == nullptr) return Status::OK();
  }
  if (progress.total > 0) {
    progress.step = "every shard at its target";
    on_progress(progress);
  }
  return Status::OK();
}

}  // namespace

bool member_answers(const meta::Member& m, const std::string& secret) {
  if (m.peer_address.empty()) return false;
  return net::BlockingConnection::open(m.peer_address, secret, Clock::now() + 2s).ok();
}

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
                   ? wait_for_replicas(client, secret, k.spec.name, on_progress, options)
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
