#include "coord/replica_controller.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "coord/replica_groups.h"
#include "core/thread_name.h"
#include "meta/meta_client.h"
#include "meta/transitions.h"
#include "net/blocking_connection.h"
#include "node/raft_register_client.h"

namespace statekv::coord {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class PeerReplicaMoveIo final : public ReplicaMoveIo {
 public:
  explicit PeerReplicaMoveIo(std::string secret) : secret_(std::move(secret)) {}

  Result<std::string> ask_leader(const meta::ClusterMap& map, GroupId group,
                                 const std::vector<NodeId>& members, const std::set<NodeId>& down,
                                 const std::vector<std::string>& args, NodeId& leader) override {
    std::vector<NodeId> order;
    if (leader.value() != 0) order.push_back(leader);
    for (NodeId n : members) {
      if (std::find(order.begin(), order.end(), n) == order.end()) order.push_back(n);
    }
    std::set<NodeId> asked;
    std::string last = "no member to ask";
    for (size_t i = 0; i < order.size(); ++i) {
      const NodeId target = order[i];
      if (down.contains(target) || !asked.insert(target).second) continue;
      const meta::Member* m = map.find_member(target);
      if (m == nullptr || m->peer_address.empty()) continue;
      const auto deadline = Clock::now() + 3s;
      auto conn = net::BlockingConnection::open(m->peer_address, secret_, deadline);
      if (!conn.ok()) {
        last = fmt::format("node {}: {}", target.value(), conn.status().message());
        continue;
      }
      net::ForwardFrame frame;
      frame.call = 1;
      frame.epoch = map.epoch.value();
      frame.group = group.value();
      frame.argv = {std::string(kReplicasVerb)};
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

  Status update_map(const meta::ClusterMap& map, const MapChange& change) override {
    // Every member that may lead the metadata group, a leaving one included
    // (this node, when it is the one leaving: member_endpoints lists active
    // members only, and a client that cannot reach the leader retries for
    // as long as its attempts last).
    std::vector<std::string> endpoints;
    for (const meta::Member& m : map.members) {
      if (m.state != meta::MemberState::kRemoved && !m.peer_address.empty()) {
        endpoints.push_back(m.peer_address);
      }
    }
    node::RaftRegisterClient client(endpoints, secret_, 5000ms);
    auto updated = meta::update(client, change, /*max_attempts=*/4);
    if (!updated.ok() && updated.status().message().find("already") == std::string::npos) {
      return updated.status();
    }
    return Status::OK();
  }

 private:
  const std::string secret_;
};

std::string node_list(const std::vector<NodeId>& nodes) {
  std::string out;
  for (size_t i = 0; i < nodes.size(); ++i)
    out += (i ? "," : "") + std::to_string(nodes[i].value());
  return out;
}

}  // namespace

std::unique_ptr<ReplicaMoveIo> peer_replica_move_io(std::string secret) {
  return std::make_unique<PeerReplicaMoveIo>(std::move(secret));
}

Result<GroupView> parse_group_view(const std::string& line) {
  GroupView v;
  const auto ids = [](std::string_view text, auto&& each) {
    size_t at = 0;
    while (at < text.size()) {
      size_t end = text.find(',', at);
      if (end == std::string_view::npos) end = text.size();
      each(text.substr(at, end - at));
      at = end + 1;
    }
  };
  const auto number = [](std::string_view text) -> std::optional<uint64_t> {
    uint64_t n = 0;
    if (text.empty()) return std::nullopt;
    for (char c : text) {
      if (c < '0' || c > '9' || n > (UINT64_MAX - 9) / 10) return std::nullopt;
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    return n;
  };
  bool bad = false;
  size_t at = 0;
  while (at < line.size()) {
    size_t end = line.find(' ', at);
    if (end == std::string::npos) end = line.size();
    const std::string field = line.substr(at, end - at);
    at = end + 1;
    const size_t eq = field.find('=');
    if (eq == std::string::npos) return Status::Corruption("group status: '" + field + "'");
    const std::string name = field.substr(0, eq), value = field.substr(eq + 1);
    const auto id = [&](std::string_view text) {
      auto n = number(text);
      bad = bad || !n;
      return NodeId(n.value_or(0));
    };
    // "N:I,N:I,...": each node's index.
    const auto node_indexes = [&](std::map<NodeId, uint64_t>& out) {
      ids(value, [&](std::string_view pair) {
        const size_t colon = pair.find(':');
        auto index =
            colon == std::string_view::npos ? std::nullopt : number(pair.substr(colon + 1));
        bad = bad || !index;
        if (index) out[id(pair.substr(0, colon))] = *index;
      });
    };
    const auto number_into = [&](uint64_t& out) {
      auto n = number(value);
      bad = bad || !n;
      out = n.value_or(0);
    };
    if (name == "leader") {
      v.leader = id(value);
    } else if (name == "commit") {
      number_into(v.commit_index);
    } else if (name == "committed") {
      v.config_committed = value == "1";
    } else if (name == "config") {
      ids(value, [&](std::string_view text) { v.config.push_back(id(text)); });
    } else if (name == "match") {
      node_indexes(v.match);
    } else if (name == "applied") {
      node_indexes(v.applied);
    } else if (name == "last") {
      number_into(v.last_index);
    } else if (name == "learners") {
      node_indexes(v.learners);
    }
  }
  if (bad || v.leader.value() == 0 || v.config.empty()) {
    return Status::Corruption("group status without a leader or members: '" + line + "'");
  }
  return v;
}

ReplicaTick ReplicaController::tick(const meta::ClusterMap& map, const std::set<NodeId>& down) {
  ReplicaTick out;
  // The map changes the tick decides (a target recorded, owners published, a
  // stale target cleared), at most one per shard, written together at its end
  // as one update of the map: each update is a metadata write of the whole map,
  // which every node then applies, and a ring keyspace moves hundreds of shards.
  struct MapStep {
    MapStep(std::string w, ReplicaMoveIo::MapChange c) : what(std::move(w)), change(std::move(c)) {}
    std::string what;  // the step, for out.steps (empty: not reported)
    ReplicaMoveIo::MapChange change;
    bool applied = false;
    Status failed;
  };
  std::vector<MapStep> map_steps;
  std::set<NodeId> leaving;
  for (const meta::Member& m : map.members) {
    if (m.state == meta::MemberState::kLeaving) leaving.insert(m.id);
  }
  // Moves under way: a recorded target the owners have not reached.
  size_t under_way = 0;
  for (const meta::Keyspace& k : map.keyspaces) {
    if (k.spec.replication.kind != meta::Replication::kConsensus) continue;
    for (const meta::Shard& sh : k.shards) {
      under_way += !sh.moving_to.empty() && sh.owners != sh.moving_to ? 1 : 0;
    }
  }
  // Shards with a member down first: each is a replica short until its move
  // ends. Then the rest, in keyspace and shard order.
  for (int pass = 0; pass < 2; ++pass) {
    for (const meta::Keyspace& k : map.keyspaces) {
      if (k.spec.replication.kind != meta::Replication::kConsensus) continue;
      const std::string name = k.spec.name;
      auto targets = replica_targets(map, k, leaving, down);
      if (!targets.ok()) {
        if (pass == 0) {
          out.errors.push_back(fmt::format("keyspace '{}': {}", name, targets.status().message()));
        }
        continue;
      }
      const uint32_t factor = k.spec.replication.factor;
      // Whether `target` still suits shard `sh`: members, none leaving, each
      // active or already holding a replica.
      const auto fits = [&](const std::vector<NodeId>& target, const meta::Shard& sh) {
        for (NodeId n : target) {
          const meta::Member* m = map.find_member(n);
          if (m == nullptr || m->state == meta::MemberState::kRemoved || leaving.contains(n)) {
            return false;
          }
          const bool had = std::find(sh.owners.begin(), sh.owners.end(), n) != sh.owners.end();
          if (m->state != meta::MemberState::kActive && !had) return false;
        }
        return true;
      };
      for (size_t i = 0; i < k.shards.size() && i < targets->size(); ++i) {
        const meta::Shard& sh = k.shards[i];
        const std::vector<NodeId>& owners = sh.owners;
        const bool short_of_one =
            std::any_of(owners.begin(), owners.end(), [&](NodeId n) { return down.contains(n); });
        if (short_of_one != (pass == 0)) continue;
        const uint32_t shard = static_cast<uint32_t>(i);
        const std::string where = fmt::format("keyspace '{}' shard {}", name, shard);
        // A move under way keeps its target (recomputed mid-move, with one
        // owner too many, a target could send the move back); a target naming
        // a node no longer fit for a replica is replaced.
        const std::vector<NodeId> target =
            !sh.moving_to.empty() && fits(sh.moving_to, sh) ? sh.moving_to : (*targets)[i];
        if (owners == target) {
          if (!sh.moving_to.empty()) {  // a stale target: the shard is where it should be
            map_steps.emplace_back(std::string(), [name, shard](const meta::ClusterMap& m) {
              return meta::set_replica_target(m, name, shard, {});
            });
          }
          continue;
        }
        ++out.shards_moving;
        const bool starts = sh.moving_to.empty();
        if (starts && under_way >= max_moves_) {
          ++out.shards_waiting;  // its turn comes when a move under way ends
          continue;
        }
        if (sh.moving_to != target) {
          // Record the target first: whoever leads the metadata group next
          // finishes this move rather than starting another.
          if (starts) ++under_way;
          map_steps.emplace_back(
              fmt::format("{}: moving [{}] to [{}]", where, node_list(owners), node_list(target)),
              [name, shard, target](const meta::ClusterMap& m) {
                return meta::set_replica_target(m, name, shard, target);
              });
          continue;
        }
        const GroupId group = ReplicaGroups::group_id(name, shard);
        // Ask the owners and whoever the group last reported (a member being
        // added is in the group before the map drops the one it replaces).
        std::vector<NodeId> ask = owners;
        for (NodeId n : config_[group]) {
          if (std::find(ask.begin(), ask.end(), n) == ask.end()) ask.push_back(n);
        }
        NodeId& leader = leaders_[group];
        auto line = io_.ask_leader(map, group, ask, down, {"status"}, leader);
        if (!line.ok()) {
          // An election, most likely: next tick.
          if (line.status().code() != Status::Code::kUnavailable) {
            out.errors.push_back(where + ": " + line.status().message());
          }
          continue;
        }
        auto view = parse_group_view(*line);
        if (!view.ok()) {
          out.errors.push_back(where + ": " + view.status().message());
          continue;
        }
        config_[group] = view->config;
        auto step = next_replica_step(target, owners, *view, factor, down);
        if (!step.ok()) {
          out.errors.push_back(where + ": " + step.status().message());
          continue;
        }
        using Kind = ReplicaStep::Kind;
        const std::string what = where + ": " + step->why;
        switch (step->kind) {
          case Kind::kDone:
          case Kind::kWait:
            break;
          case Kind::kPublish: {
            map_steps.emplace_back(
                what, [name, shard, next = step->owners](const meta::ClusterMap& m) {
                  return meta::set_replica_owners(m, name, shard, next);
                });
            break;
          }
          case Kind::kLearn:
          case Kind::kAdd:
          case Kind::kRemove:
          case Kind::kTransfer: {
            const char* verb = step->kind == Kind::kLearn    ? "learn"
                               : step->kind == Kind::kAdd    ? "add"
                               : step->kind == Kind::kRemove ? "remove"
                                                             : "transfer";
            // Stamped with the shard's configuration epoch in the map this
            // step was decided from: a leader that knows a newer one refuses it.
            auto done = io_.ask_leader(
                map, group, ask, down,
                {verb, std::to_string(step->node.value()), std::to_string(sh.config_epoch)},
                leader);
            // Busy (a change or transfer under way) or a view that changed
            // meanwhile: the next tick looks again.
            if (done.ok()) {
              out.steps.push_back(what);
              if (step->kind == Kind::kTransfer) leader = step->node;
            } else if (done.status().code() == Status::Code::kAborted) {
              out.errors.push_back(what + ": " + done.status().message());
            }
            break;
          }
        }
      }
    }
  }
  if (map_steps.empty()) return out;
  // One update for every shard's change. A change the map refuses (it moved
  // on meanwhile) is left out and reported; one it finds made already is
  // left out quietly; the others are written. meta::update may run this again
  // on a newer map (a compare-and-set lost to another writer).
  const Status written = io_.update_map(map, [&](const meta::ClusterMap& m) -> Result<meta::ClusterMap> {
    meta::ClusterMap next = m;
    size_t changed = 0;
    for (MapStep& st : map_steps) {
      st.applied = false;
      st.failed = Status::OK();
      auto r = st.change(next);
      if (r.ok()) {
        next = std::move(r).value();
        st.applied = true;
        ++changed;
      } else if (r.status().message().find("already") == std::string::npos) {
        st.failed = r.status();
      }
    }
    if (changed == 0) return Status::InvalidArgument("every change is made already or refused");
    if (changed == 1) return next;
    std::string what = fmt::format("{} replica move steps; the last: {}", changed, next.last_change);
    return meta::as_one_change(m, std::move(next), std::move(what));
  });
  for (const MapStep& st : map_steps) {
    if (!written.ok()) {
      if (!st.what.empty()) out.errors.push_back(st.what + ": " + written.message());
    } else if (!st.failed.ok()) {
      if (!st.what.empty()) out.errors.push_back(st.what + ": " + st.failed.message());
    } else if (st.applied && !st.what.empty()) {
      out.steps.push_back(st.what);
    }
  }
  return out;
}

ReplicaControllerThread::ReplicaControllerThread(ReplicaControllerOptions options)
    : options_(std::move(options)),
      io_(options_.io ? std::move(options_.io) : peer_replica_move_io(options_.secret)),
      controller_(*io_) {
  thread_ = std::thread([this] {
    name_this_thread("replica-ctl");
    run();
  });
}

ReplicaControllerThread::~ReplicaControllerThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ReplicaControllerThread::run() {
  std::string last_errors;
  bool was_moving = false;
  while (true) {
    std::chrono::milliseconds wait = options_.idle_interval;
    if (options_.leads_metadata && options_.leads_metadata()) {
      auto map = options_.map ? options_.map() : nullptr;
      if (map) {
        const ReplicaTick t =
            controller_.tick(*map, options_.down ? options_.down() : std::set<NodeId>{});
        for (const std::string& step : t.steps) spdlog::info("replica move: {}", step);
        std::string errors;
        for (const std::string& e : t.errors) errors += (errors.empty() ? "" : "; ") + e;
        if (errors != last_errors && !errors.empty()) {
          spdlog::warn("replica move cannot go on: {}", errors);
        }
        last_errors = errors;
        if (was_moving && t.shards_moving == 0)
          spdlog::info("replica move: every shard at its target");
        was_moving = t.shards_moving > 0;
        if (was_moving) wait = options_.busy_interval;
      }
    } else {
      was_moving = false;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (wake_.wait_for(lock, wait, [this] { return stopping_; })) return;
  }
}

}  // namespace statekv::coord
