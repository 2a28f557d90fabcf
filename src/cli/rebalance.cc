#include "cli/rebalance.h"

#include <chrono>
#include <map>
#include <memory>
#include <thread>

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
                     const std::function<void(const RebalanceProgress&)>& on_progress) {
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
    if (m.state == meta::MemberState::kActive || m.state == meta::MemberState::kLeaving) {
      nodes.push_back(m);
    }
  }
  auto abandon = [&](Status why) {
    for (const meta::Member& n : nodes) (void)migrate(n, secret, {"abort", name, epoch}, 5s);
    auto aborted = meta::update(client, [&](const meta::ClusterMap& m) {
      return meta::abort_move(m, name);
    });
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
  auto finished = meta::update(client, [&](const meta::ClusterMap& m) {
    return meta::finish_move(m, name);
  });
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
        return Status::Timeout("node " + std::to_string(n.id.value()) + " still cleaning up: " + *r);
      }
      std::this_thread::sleep_for(20ms);
    }
  }
  return Status::OK();
}

}  // namespace

Status rebalance(const std::vector<std::string>& endpoints, const std::string& secret,
                 const std::function<void(const RebalanceProgress&)>& on_progress) {
  node::RaftRegisterClient client(endpoints, secret, 10000ms);
  auto map = meta::fetch(client);
  if (!map.ok()) return map.status();
  for (const meta::Keyspace& k : map->keyspaces) {
    // A consensus keyspace's shards are replica groups: moving one means
    // adding and removing members, which rebalancing does not do yet
    // (docs/replication.md); its shards stay where they are.
    if (k.spec.replication.kind == meta::Replication::kConsensus) continue;
    if (Status s = move_keyspace(client, secret, k.spec.name, on_progress); !s.ok()) {
      return Status(s.code() == Status::Code::kInvalidArgument
                        ? Status::InvalidArgument("keyspace '" + k.spec.name + "': " + s.message())
                        : Status::Unavailable("keyspace '" + k.spec.name + "': " + s.message()));
    }
  }
  return Status::OK();
}

}  // namespace statekv::cli
