// `statekv cluster ...` — run and operate a local cluster of node processes.
//
//   up          start N nodes on 127.0.0.1 (RESP ports BASE.., peers +10000, data DATA/nodeK)
//   status      members, leader, term, commit and applied index, epoch, each member's lag
//   add-node    start one more node and add it to the raft group and the cluster map
//   remove-node move a node's keys and replicas away (a dead node's replicas are
//               re-created from the survivors), take it out of the raft group and
//               the map, and stop it
//   restart-missing  start the local nodes that are not running, nothing else
//   down        stop every node of the local cluster
//
// One `cluster up` supervises a data dir at a time (DATA/cluster.lock); a
// second one is refused and names the first.
//
// Exit status: 0 done (status: the cluster has a leader, a map, and a serving
// owner for every shard; degraded still exits 0), 1 failed, with the reason
// on stderr.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <tuple>

#include "cli/keyspace_config.h"
#include "cli/local_cluster.h"
#include "cli/rebalance.h"
#include "cli/subcommand.h"
#include "coord/replica_moves.h"
#include "meta/cluster_map.h"
#include "meta/health.h"
#include "meta/meta_client.h"
#include "meta/transitions.h"
#include "net/blocking_connection.h"
#include "net/client.h"
#include "node/cluster_acl.h"
#include "node/raft_register_client.h"
#include "server/acl.h"

namespace statekv::cli {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct Common {
  std::string data = "./data";
  std::string secret;
  std::vector<std::string> endpoints;  // overrides DATA/cluster.json
  bool json = false;
};

int fail(const std::string& what) {
  std::cerr << "statekv cluster: " << what << "\n";
  return 1;
}

// Where to reach the cluster: --endpoints, else the local layout's peers.
Result<std::vector<std::string>> endpoints_of(const Common& c) {
  if (!c.endpoints.empty()) return c.endpoints;
  auto local = load_local_cluster(c.data);
  if (!local.ok()) return local.status();
  return local->peer_endpoints();
}

// ------------------------------------------------------------------ status

struct NodeView {
  std::string endpoint;
  std::optional<nlohmann::json> status;  // nullopt: unreachable
  std::optional<nlohmann::json> stats;   // keys held, ops/s, keys per shard
  std::string error;
  bool refused = false;  // the node refused our handshake: a wrong secret
};

// A node's `__stats` (coord/coordinator.h LocalStats) as JSON.
std::optional<nlohmann::json> fetch_stats(const std::string& endpoint, const std::string& secret) {
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  auto conn = net::BlockingConnection::open(endpoint, secret, deadline);
  if (!conn.ok()) return std::nullopt;
  net::ForwardFrame frame;
  frame.call = 1;
  frame.argv = {"__stats"};
  auto r = (*conn)->call(frame, deadline);
  if (!r.ok() || !r->status.ok() || r->reply.size() < 3) return std::nullopt;
  auto j = nlohmann::json::parse(r->reply.substr(1, r->reply.size() - 3), nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

struct ClusterView {
  std::vector<NodeView> nodes;
  std::optional<meta::ClusterMap> map;
  std::string map_error;
  std::optional<nlohmann::json> leader;  // the leader's status
};

NodeView probe(const std::string& e, const std::string& secret, bool with_stats = true) {
  net::ClientOptions o;
  o.endpoints = {e};
  o.secret = secret;
  o.connect_timeout = 500ms;
  NodeView nv{e, std::nullopt, std::nullopt, ""};
  auto client = net::Client::create(o);
  if (client.ok()) {
    auto body = (*client)->status(e);
    if (body.ok()) {
      nv.status = nlohmann::json::parse(*body, nullptr, false);
      if (nv.status->is_discarded()) nv.status.reset();
    } else {
      nv.error = body.status().message();
      nv.refused = body.status().code() == Status::Code::kAborted;
    }
  } else {
    nv.error = client.status().message();
  }
  if (nv.status && with_stats) nv.stats = fetch_stats(e, secret);
  return nv;
}

// Asks every endpoint for its status, then the map; members the map names
// that were not among the endpoints are asked too, so that each member's
// health is judged on an answer of its own.
ClusterView observe(const std::vector<std::string>& endpoints, const std::string& secret,
                    std::chrono::milliseconds map_timeout = 3000ms) {
  ClusterView view;
  for (const std::string& e : endpoints) {
    NodeView nv = probe(e, secret);
    if (nv.status && (*nv.status)["role"] == "leader") view.leader = nv.status;
    view.nodes.push_back(std::move(nv));
  }
  node::RaftRegisterClient reg(endpoints, secret, map_timeout);
  auto map = meta::fetch(reg);
  if (map.ok()) {
    view.map = std::move(map).value();
  } else {
    view.map_error = map.status().message();
    return view;
  }
  for (const meta::Member& m : view.map->members) {
    if (m.peer_address.empty() || m.state == meta::MemberState::kRemoved ||
        std::find(endpoints.begin(), endpoints.end(), m.peer_address) != endpoints.end()) {
      continue;
    }
    NodeView nv = probe(m.peer_address, secret);
    if (nv.status && (*nv.status)["role"] == "leader") view.leader = nv.status;
    view.nodes.push_back(std::move(nv));
  }
  return view;
}

std::string lag_of(const ClusterView& v, uint64_t id) {
  if (!v.leader) return "?";
  const auto& l = *v.leader;
  if (l["id"].get<uint64_t>() == id) return "0";
  const std::string key = std::to_string(id);
  if (!l["match"].contains(key)) return "-";
  const uint64_t last = l["last_index"].get<uint64_t>();
  const uint64_t match = l["match"][key].get<uint64_t>();
  return std::to_string(last >= match ? last - match : 0);
}

// Whether most of the map's members (those not removed) answered the probe.
bool majority_answers(const ClusterView& v) {
  if (!v.map) return false;
  size_t members = 0;
  size_t answered = 0;
  for (const meta::Member& m : v.map->members) {
    if (m.state == meta::MemberState::kRemoved) continue;
    ++members;
    for (const NodeView& n : v.nodes) {
      if (n.status && (*n.status)["id"].get<uint64_t>() == m.id.value()) ++answered;
    }
  }
  return members > 0 && answered > members / 2;
}

int run_status(const Common& c) {
  auto endpoints = endpoints_of(c);
  if (!endpoints.ok()) return fail(endpoints.status().message());
  auto secret = cluster_secret(c.data, c.secret, false);
  if (!secret.ok()) return fail(secret.status().message());
  ClusterView v = observe(*endpoints, *secret);
  // A metadata leader that just died leaves the group without one until the
  // survivors' election timeout passes (a second or two): while a majority of
  // the members answer, an election is under way, so look again for a few
  // seconds before calling the cluster leaderless.
  const auto election_deadline = std::chrono::steady_clock::now() + 5s;
  while (!v.leader && majority_answers(v) &&
         std::chrono::steady_clock::now() < election_deadline) {
    std::this_thread::sleep_for(200ms);
    v = observe(*endpoints, *secret);
  }

  std::map<uint64_t, const NodeView*> by_id;
  for (const NodeView& n : v.nodes) {
    if (n.status) by_id[(*n.status)["id"].get<uint64_t>()] = &n;
  }
  // Every shard needs an owner that answers (meta/health.h).
  std::optional<meta::Health> health;
  if (v.map) {
    health = meta::assess_health(*v.map, [&](NodeId id) { return by_id.count(id.value()) > 0; });
  }
  const bool healthy =
      v.leader.has_value() && health.has_value() && health->state != meta::HealthState::kFail;
  const std::string state = !healthy ? "fail" : std::string(meta::to_string(health->state));
  auto shard_list = [](const std::vector<meta::ShardHealth>& shards) {
    nlohmann::json out = nlohmann::json::array();
    for (const meta::ShardHealth& sh : shards) out.push_back(sh.describe());
    return out;
  };
  // The true cause first: nodes that refuse our handshake are up, and say the
  // secret is wrong; that is not a lost majority.
  std::string refusal;
  for (const NodeView& n : v.nodes) {
    if (n.refused && refusal.empty()) refusal = n.error;
  }
  if (c.json) {
    nlohmann::json out;
    out["healthy"] = healthy;
    out["health"] = state;
    if (!refusal.empty()) out["error"] = "wrong cluster secret: " + refusal;
    out["unavailable_shards"] = health ? shard_list(health->unavailable) : nlohmann::json::array();
    out["degraded_shards"] = health ? shard_list(health->degraded) : nlohmann::json::array();
    out["down_nodes"] = nlohmann::json::array();
    if (health) {
      for (NodeId id : health->down) out["down_nodes"].push_back(id.value());
    }
    out["leader"] = v.leader ? (*v.leader)["id"] : nlohmann::json(nullptr);
    out["nodes"] = nlohmann::json::array();
    for (const NodeView& n : v.nodes) {
      nlohmann::json e = n.status ? *n.status : nlohmann::json{{"error", n.error}};
      e["endpoint"] = n.endpoint;
      if (n.status) e["lag"] = lag_of(v, (*n.status)["id"].get<uint64_t>());
      if (n.stats) e["stats"] = *n.stats;
      out["nodes"].push_back(e);
    }
    if (v.map) out["map"] = nlohmann::json::parse(meta::encode(*v.map));
    std::cout << out.dump(2) << "\n";
    return healthy ? 0 : 1;
  }

  if (!refusal.empty()) {
    fmt::print(
        "WRONG SECRET: the nodes refuse this command's cluster secret ({}); give the "
        "cluster's with --secret, $STATEKV_CLUSTER_SECRET or DATA/cluster.secret\n",
        refusal);
  }
  if (v.map) {
    fmt::print("cluster {}  epoch {}  ", v.map->cluster_id, v.map->epoch.value());
  }
  if (v.leader) {
    fmt::print("leader node {}  term {}  commit {}\n", (*v.leader)["id"].get<uint64_t>(),
               (*v.leader)["term"].get<uint64_t>(), (*v.leader)["commit_index"].get<uint64_t>());
  } else if (refusal.empty()) {
    fmt::print("NO LEADER: the raft group cannot commit (a majority of voters may be down)\n");
  }
  if (v.map) fmt::print("last change: {}\n", v.map->last_change);
  fmt::print("\n{:>4}  {:<16} {:<16} {:<10} {:<8} {:<6} {:<14} {:>5} {:>8} {:>8} {:>6} {:>9} {:>8}\n",
             "node", "address", "peer", "region", "state", "voter", "raft", "term", "commit",
             "applied", "lag", "keys", "ops/s");
  std::set<uint64_t> shown;
  auto row = [&](uint64_t id, const std::string& address, const std::string& peer,
                 const std::string& region, const std::string& state) {
    shown.insert(id);
    auto it = by_id.find(id);
    bool voter = false;
    if (v.leader) {
      for (const auto& x : (*v.leader)["voters"]) voter = voter || x.get<uint64_t>() == id;
    }
    if (it == by_id.end()) {
      fmt::print("{:>4}  {:<16} {:<16} {:<10} {:<8} {:<6} {:<14}\n", id, address, peer, region,
                 state, voter ? "yes" : "no", "unreachable");
      return;
    }
    const auto& s = *it->second->status;
    const auto& st = it->second->stats;
    fmt::print("{:>4}  {:<16} {:<16} {:<10} {:<8} {:<6} {:<14} {:>5} {:>8} {:>8} {:>6} {:>9} {:>8}\n",
               id, address, peer, region, state, voter ? "yes" : "no",
               s["role"].get<std::string>(), s["term"].get<uint64_t>(),
               s["commit_index"].get<uint64_t>(), s["applied_index"].get<uint64_t>(), lag_of(v, id),
               st ? std::to_string((*st)["keys"].get<uint64_t>()) : "?",
               st ? fmt::format("{:.0f}", (*st)["ops_per_sec"].get<double>()) : "?");
  };
  if (v.map) {
    for (const meta::Member& m : v.map->members) {
      // The map keeps removed members as tombstones (ids are never reused):
      // not members any more, so not rows.
      if (m.state == meta::MemberState::kRemoved) continue;
      row(m.id.value(), m.address, m.peer_address, m.region, std::string(meta::to_string(m.state)));
    }
  }
  for (const NodeView& n : v.nodes) {
    if (!n.status) {
      if (!v.map) fmt::print("{:>4}  {:<16} {:<16} unreachable: {}\n", "?", "", n.endpoint, n.error);
      continue;
    }
    const uint64_t id = (*n.status)["id"].get<uint64_t>();
    if (!shown.count(id)) row(id, "", n.endpoint, "", "not in map");
  }
  if (v.map) {
    fmt::print("\nkeyspaces:\n");
    for (const meta::Keyspace& k : v.map->keyspaces) {
      fmt::print("  {:<12} prefix '{}'  {} x{} shards  {} (factor {})  {}  on partition: {}\n",
                 k.spec.name, k.spec.key_prefix, meta::to_string(k.spec.partitioner.kind),
                 k.shards.size(), meta::to_string(k.spec.replication.kind),
                 k.spec.replication.factor, meta::to_string(k.spec.consistency),
                 meta::to_string(k.spec.partition_mode));
    }
    // Where the keys are: the fullest shards, so a hot spot shows.
    std::vector<std::tuple<uint64_t, std::string, std::string, uint64_t>> shards;
    for (const NodeView& n : v.nodes) {
      if (!n.stats) continue;
      const uint64_t node = (*n.stats)["node"].get<uint64_t>();
      for (const auto& [keyspace, per_shard] : (*n.stats)["shard_keys"].items()) {
        for (const auto& [shard, count] : per_shard.items()) {
          shards.emplace_back(count.get<uint64_t>(), keyspace, shard, node);
        }
      }
    }
    std::sort(shards.rbegin(), shards.rend());
    if (!shards.empty()) {
      fmt::print("\nfullest shards (of {}):\n", shards.size());
      for (size_t i = 0; i < shards.size() && i < 5; ++i) {
        const auto& [count, keyspace, shard, node] = shards[i];
        fmt::print("  {:<12} shard {:<6} on node {:<4} {} keys\n", keyspace, shard, node, count);
      }
    }
    // Replica groups (REPLICATION consensus keyspaces), each as its leader
    // sees it; a group with no leader reachable is shown from a member.
    // Each member's applied index: its own report, else its leader's (as of
    // the member's last answer to it).
    std::map<uint64_t, nlohmann::json> groups;
    std::map<std::pair<uint64_t, std::string>, uint64_t> applied;
    for (const NodeView& n : v.nodes) {
      if (!n.stats || !n.stats->contains("groups")) continue;
      const std::string self = std::to_string((*n.stats)["node"].get<uint64_t>());
      for (const auto& g : (*n.stats)["groups"]) {
        const uint64_t id = g["id"].get<uint64_t>();
        if (!groups.contains(id) || g["role"].get<std::string>() == "leader") groups[id] = g;
        applied[{id, self}] = g["applied"].get<uint64_t>();
      }
    }
    for (const auto& [id, g] : groups) {
      if (!g.contains("member_applied")) continue;
      for (const auto& [node, index] : g["member_applied"].items()) {
        applied.emplace(std::pair{id, node}, index.get<uint64_t>());
      }
    }
    if (!groups.empty()) {
      fmt::print("\nreplica groups ({}):\n  {:<12} {:>5} {:>7} {:>5} {:>8} {:>8}  {}\n",
                 groups.size(), "keyspace", "shard", "leader", "term", "commit", "applied",
                 "members [applied index, lag in entries]");
      for (const auto& [id, g] : groups) {
        const uint64_t leader = g["leader"].get<uint64_t>();
        std::string members;
        for (const auto& m : g["members"]) {
          const std::string node = std::to_string(m.get<uint64_t>());
          members += (members.empty() ? "" : " ") + node;
          std::string about;
          if (auto a = applied.find({id, node}); a != applied.end()) {
            about = "applied=" + std::to_string(a->second);
          }
          if (g["lag"].contains(node)) {
            about += (about.empty() ? "" : ",") +
                     ("lag=" + std::to_string(g["lag"][node].get<uint64_t>()));
          }
          if (!about.empty()) members += "[" + about + "]";
        }
        fmt::print("  {:<12} {:>5} {:>7} {:>5} {:>8} {:>8}  {}\n", g["keyspace"].get<std::string>(),
                   g["shard"].get<uint64_t>(), leader == 0 ? std::string("none") : std::to_string(leader),
                   g["term"].get<uint64_t>(), g["commit"].get<uint64_t>(),
                   g["applied"].get<uint64_t>(), members);
      }
    }
  } else {
    fmt::print("\ncluster map unavailable: {}\n", v.map_error);
  }
  fmt::print("\nhealth: {}\n", state);
  if (health) {
    auto print_shards = [](const char* what, const std::vector<meta::ShardHealth>& shards) {
      if (shards.empty()) return;
      fmt::print("  {} ({}):", what, shards.size());
      for (size_t i = 0; i < shards.size() && i < 20; ++i) fmt::print(" {}", shards[i].describe());
      fmt::print("{}\n", shards.size() > 20 ? " ..." : "");
    };
    print_shards("shards with no serving owner, their keys and cluster-wide commands fail",
                 health->unavailable);
    print_shards("shards below their replication factor", health->degraded);
  }
  return healthy ? 0 : 1;
}

// ------------------------------------------------------------------ up / down

// The shutdown signals, blocked while a command starts or supervises nodes:
// they are taken with sigtimedwait between steps, so Ctrl-C is seen within a
// poll and the command stops what it started before it exits.
sigset_t shutdown_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  return signals;
}

// SIGINT or SIGTERM if one arrived within `wait`, else 0.
int take_signal(const sigset_t& signals, std::chrono::milliseconds wait) {
  timespec ts{static_cast<time_t>(wait.count() / 1000),
              static_cast<long>((wait.count() % 1000) * 1'000'000)};
  const int sig = sigtimedwait(&signals, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

std::string describe_exit(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "killed by signal " + std::to_string(sig) + (sig == SIGKILL ? " (SIGKILL)" : "");
  }
  return "exit status " + std::to_string(WEXITSTATUS(status));
}

// Whether a node serves Redis clients on 127.0.0.1:port now: it answers
// PING (a node's RESP listener starts after it joined the raft group; and a
// port that merely accepts may belong to another program).
bool answers_ping(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  timeval timeout{0, 300'000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, "PING\r\n", 6, MSG_NOSIGNAL) == 6) {
    char buf[64];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) reply.assign(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return reply.starts_with("+PONG") || reply.starts_with("-NOAUTH");
}

// Waits until every node answers on its peer port and PING on its RESP
// port, one leads, and every member is active in the map; with
// `started_only`, every node of `started` (the others may be down: a node
// added to take the place of a dead one). `started` are the nodes this
// command started (id -> pid, our children): one that exits fails the wait at
// once, with the end of its log. A shutdown signal fails it at once too
// (Aborted).
Status wait_ready(const LocalCluster& cluster, const std::string& secret,
                  std::chrono::seconds timeout, const std::map<uint64_t, pid_t>& started,
                  const sigset_t& signals, bool started_only = false) {
  const auto waited_for = [&](const LocalNode& n) {
    return !started_only || started.contains(n.id.value());
  };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Checked between every two steps, so neither waits on a slow probe.
  auto interrupted = [&](std::chrono::milliseconds wait) -> Status {
    for (const auto& [id, pid] : started) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        return Status::Aborted(fmt::format("node {} exited while starting ({}); the end of {}:\n{}",
                                           id, describe_exit(status),
                                           (cluster.node_dir(NodeId(id)) / "statekv.log").string(),
                                           log_tail(cluster, NodeId(id), 5)));
      }
    }
    if (int sig = take_signal(signals, wait); sig != 0) {
      return Status::Aborted(sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)");
    }
    return Status::OK();
  };
  std::string why = "no answer yet";
  while (std::chrono::steady_clock::now() < deadline) {
    bool all_up = true;
    std::optional<nlohmann::json> leader;
    // The lowest metadata index a waited-for node has applied: each must hold
    // the map the leader has committed, or it answers "the cluster map is not
    // known yet" although the map says it is active.
    uint64_t least_applied = UINT64_MAX;
    for (const LocalNode& n : cluster.nodes) {
      if (Status s = interrupted(0ms); !s.ok()) return s;
      NodeView nv = probe(n.peer_address(), secret, /*with_stats=*/false);
      if (waited_for(n)) {
        all_up = all_up && nv.status.has_value() && answers_ping(n.port);
        if (nv.status) {
          least_applied = std::min(least_applied, nv.status->value("applied_index", uint64_t{0}));
        }
      }
      if (nv.status && (*nv.status)["role"] == "leader") leader = nv.status;
    }
    bool all_active = false;
    if (all_up && leader) {
      if (Status s = interrupted(0ms); !s.ok()) return s;
      node::RaftRegisterClient reg(cluster.peer_endpoints(), secret, 1000ms);
      auto map = meta::fetch(reg);
      all_active = map.ok();
      for (const LocalNode& n : cluster.nodes) {
        if (!waited_for(n)) continue;
        const meta::Member* m = map.ok() ? map->find_member(n.id) : nullptr;
        // Active, and described by itself: a founder is in the first map
        // with its peer address only, until it records its RESP address and
        // region (a keyspace placed by region before then finds none there).
        // Leaving counts: a node restarted while remove-node moves its
        // replicas away serves until it is removed (describe_member).
        all_active =
            all_active && m != nullptr &&
            (m->state == meta::MemberState::kActive || m->state == meta::MemberState::kLeaving) &&
            m->region == n.region && m->address == "127.0.0.1:" + std::to_string(n.port);
      }
    }
    const bool caught_up = leader && least_applied >= leader->value("commit_index", uint64_t{0});
    if (all_up && leader && all_active && caught_up) return Status::OK();
    why = !all_up       ? "not every node answers"
          : !leader     ? "no leader yet"
          : !all_active ? "members not active yet"
                        : "a node has not applied the cluster map yet";
    if (Status s = interrupted(100ms); !s.ok()) return s;
  }
  return Status::Timeout("the cluster did not become ready in time: " + why + " (see " +
                         (cluster.data / "nodeK" / "statekv.log").string() + ")");
}

struct UpFlags {
  Common common;
  size_t nodes = 3;
  uint16_t base_port = 7001;
  std::string engine = "rocksdb";
  std::string fsync = "batch";
  std::string partitioner = "hash";
  // Empty: consensus (factor 3) for a new cluster of 3 or more nodes, so
  // that it survives the loss of any one node; none below that.
  std::string replication;
  std::vector<std::string> regions;
  std::vector<std::string> server_args;  // LocalCluster::server_args
  std::string keyspaces;  // TOML file of [[keyspace]] entries
  bool detach = false;
  // The cluster's password (the default user's), seeded when the cluster
  // forms; kept by the metadata service, never in cluster.json.
  std::string requirepass;
  // Which of the options above were given (they must agree with an existing cluster).
  std::set<std::string> given;
};

// The options given that disagree with the cluster already in DATA, as
// "--nodes 5 (it has 3)", one per conflict.
std::vector<std::string> conflicts_with(const UpFlags& f, const LocalCluster& c) {
  std::vector<std::string> out;
  auto given = [&](const char* name) { return f.given.count(name) > 0; };
  if (given("--nodes") && f.nodes != c.nodes.size()) {
    out.push_back(
        fmt::format("--nodes {} (it has {}; grow or shrink it with `statekv cluster "
                    "add-node` / `remove-node`)",
                    f.nodes, c.nodes.size()));
  }
  if (given("--base-port") && f.base_port != c.base_port) {
    out.push_back(fmt::format("--base-port {} (it uses {})", f.base_port, c.base_port));
  }
  if (given("--engine") && f.engine != c.engine) {
    out.push_back(fmt::format("--engine {} (it uses {})", f.engine, c.engine));
  }
  if (given("--fsync") && f.fsync != c.fsync) {
    out.push_back(fmt::format("--fsync {} (it uses {})", f.fsync, c.fsync));
  }
  if (given("--partitioner") && f.partitioner != c.partitioner) {
    out.push_back(fmt::format("--partitioner {} (its default keyspace uses {})", f.partitioner,
                              c.partitioner));
  }
  if (given("--replication") && f.replication != c.replication) {
    out.push_back(fmt::format("--replication {} (its default keyspace uses {})", f.replication,
                              c.replication));
  }
  if (given("--server-arg") && f.server_args != c.server_args) {
    out.push_back(fmt::format(
        "--server-arg {} (its nodes start with {})", fmt::join(f.server_args, " --server-arg "),
        c.server_args.empty() ? "none" : fmt::format("{}", fmt::join(c.server_args, " "))));
  }
  if (given("--regions")) {
    bool same = !f.regions.empty();
    for (size_t i = 0; same && i < c.nodes.size(); ++i) {
      same = c.nodes[i].region == f.regions[i % f.regions.size()];
    }
    if (!same) {
      std::string regions;
      for (const LocalNode& n : c.nodes) regions += (regions.empty() ? "" : ",") + n.region;
      out.push_back(
          fmt::format("--regions {} (its nodes are in {})", fmt::join(f.regions, ","), regions));
    }
  }
  return out;
}

// Starts every node of `cluster` that is not running, and waits until the
// cluster is ready (with `started_only`, until the nodes it started are: the
// others may be down, or leave meanwhile). On failure it stops exactly the
// nodes it started; every node that was running before keeps running.
// `started` gets what it started.
Status start_missing(const LocalCluster& cluster, const std::string& secret,
                     const sigset_t& signals, std::map<uint64_t, pid_t>* started, bool started_only,
                     const std::string& requirepass = "") {
  for (const LocalNode& n : cluster.nodes) {
    // Just killed (kill -9, then this command at once): its files may still
    // be open, its data dir locked.
    wait_while_exiting(cluster, n.id, 10s);
    if (pid_t pid = running_pid(cluster, n.id); pid != 0) {
      fmt::print("node {} already running (pid {})\n", n.id.value(), pid);
      continue;
    }
    auto pid = spawn_node(cluster, n, secret, false, requirepass);
    if (!pid.ok()) {
      for (const auto& [id, p] : *started) {
        (void)stop_node(cluster, NodeId(id), 3000ms, "its start failed: " + pid.status().message());
      }
      return pid.status();
    }
    (*started)[n.id.value()] = *pid;
    fmt::print("node {}: pid {}  redis-cli -p {}  (peer port {}, data {})\n", n.id.value(), *pid,
               n.port, n.peer_port, cluster.node_dir(n.id).string());
  }
  std::fflush(stdout);
  Status ready = wait_ready(cluster, secret, 30s, *started, signals, started_only);
  if (!ready.ok()) {
    for (const auto& [id, pid] : *started) {
      (void)stop_node(cluster, NodeId(id), 3000ms, "its start failed: " + ready.message());
    }
  }
  return ready;
}

// A failed first start leaves no cluster behind: each node dir it created
// loses its data (its raft log names the founders) but keeps statekv.log.
void forget_failed_start(const LocalCluster& cluster, const std::set<uint64_t>& created) {
  for (uint64_t id : created) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(cluster.node_dir(NodeId(id)), ec)) {
      if (entry.path().filename() != "statekv.log") fs::remove_all(entry.path(), ec);
    }
  }
}

std::string supervisor_refusal(const fs::path& data, const Status& busy) {
  return fmt::format(
      "the cluster in {} is already run by {}.\n"
      "Stop that one first (Ctrl-C where it runs, or `statekv cluster down --data {}`); to "
      "restart nodes that died while it runs, use `statekv cluster restart-missing --data {}`",
      data.string(), busy.message(), data.string(), data.string());
}

int run_up(const UpFlags& f) {
  // A mistake in the keyspace file stops `up` before any node starts.
  std::vector<meta::KeyspaceSpec> specs;
  if (!f.keyspaces.empty()) {
    auto read = read_keyspace_config(f.keyspaces);
    if (!read.ok()) return fail(read.status().message());
    specs = std::move(read).value();
  }
  const fs::path data = f.common.data;
  std::error_code ec;
  fs::create_directories(data, ec);
  if (ec) return fail("cannot create " + data.string() + ": " + ec.message());

  // One supervisor per data dir, for as long as it runs (a detached one: while
  // it starts the nodes).
  auto supervisor =
      DirLock::try_acquire(data, kSupervisorLock,
                           f.detach ? "`statekv cluster up --detach` (starting the nodes)"
                                    : "`statekv cluster up` (supervising the nodes)");
  if (!supervisor.ok()) {
    if (supervisor.status().code() != Status::Code::kBusy) {
      return fail(supervisor.status().message());
    }
    return fail(supervisor_refusal(data, supervisor.status()));
  }
  auto starting = DirLock::try_acquire(data, kStartLock, "`statekv cluster up`");
  if (!starting.ok()) {
    return fail("another command is starting nodes in " + data.string() + ": " +
                starting.status().message());
  }

  auto existing = load_local_cluster(data);
  if (!existing.ok() && existing.status().code() != Status::Code::kNotFound) {
    return fail(existing.status().message());
  }
  const bool fresh = !existing.ok();
  LocalCluster cluster;
  if (!fresh) {
    cluster = std::move(existing).value();  // a restart: same nodes, same ports
    if (auto conflicts = conflicts_with(f, cluster); !conflicts.empty()) {
      return fail(fmt::format(
          "{} already holds a cluster of {} nodes (engine {}, partitioner {}, base port {}); "
          "these options conflict with it:\n  {}\nDrop them to restart that cluster, or give "
          "another --data for a new one",
          data.string(), cluster.nodes.size(), cluster.engine, cluster.partitioner,
          cluster.base_port, fmt::join(conflicts, "\n  ")));
    }
    fmt::print("restarting the local cluster in {} ({} nodes)\n", data.string(),
               cluster.nodes.size());
  } else {
    if (f.nodes < 1 || f.nodes > 64) return fail("--nodes must be between 1 and 64");
    if (f.base_port < 1 || f.base_port + f.nodes - 1 + 10000 > 65535) {
      return fail(
          "--base-port leaves no room for the nodes' ports (node K: BASE+K-1, peers +10000)");
    }
    cluster.data = data;
    cluster.base_port = f.base_port;
    cluster.engine = f.engine;
    cluster.fsync = f.fsync;
    cluster.partitioner = f.partitioner;
    cluster.replication =
        !f.replication.empty() ? f.replication : (f.nodes >= 3 ? "consensus" : "none");
    for (const std::string& arg : f.server_args) {
      if (std::string why = refuse_server_arg(arg); !why.empty()) return fail(why);
    }
    cluster.server_args = f.server_args;
    for (size_t k = 1; k <= f.nodes; ++k) {
      LocalNode n;
      n.id = NodeId(k);
      n.port = static_cast<uint16_t>(f.base_port + k - 1);
      n.peer_port = static_cast<uint16_t>(n.port + 10000);
      if (!f.regions.empty()) n.region = f.regions[(k - 1) % f.regions.size()];
      cluster.nodes.push_back(n);
    }
  }
  auto secret = cluster_secret(data, f.common.secret, true);
  if (!secret.ok()) return fail(secret.status().message());

  // Block the shutdown signals before starting anyone, to wait for them below.
  const sigset_t signals = shutdown_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::set<uint64_t> created;
  for (const LocalNode& n : cluster.nodes) {
    if (!fs::exists(cluster.node_dir(n.id))) created.insert(n.id.value());
  }
  std::map<uint64_t, pid_t> started;
  if (Status s =
          start_missing(cluster, *secret, signals, &started, /*started_only=*/false, f.requirepass);
      !s.ok()) {
    if (fresh) forget_failed_start(cluster, created);
    return fail(s.message() +
                (fresh ? "\ncluster.json was not written: the next `cluster up` starts afresh"
                       : "\nthe nodes it started were stopped; the others run on"));
  }
  if (fresh) {
    if (Status s = save_local_cluster(cluster); !s.ok()) return fail(s.message());
  }
  starting->release();
  if (!fresh && !f.requirepass.empty()) {
    // The cluster's own password holds on a restart (docs/security.md): say
    // so when --requirepass is not it, rather than let the user believe it is.
    node::RaftRegisterClient reg(cluster.peer_endpoints(), *secret, 3000ms);
    auto bytes = reg.read(std::string(node::kAclKey));
    bool holds = true;  // --requirepass is a password of the default user
    if (bytes.ok() && *bytes) {
      auto users = server::decode_acl_document(**bytes);
      if (users.ok()) {
        auto def = users->users.find("default");
        holds =
            def == users->users.end() ||
            def->second.find("#" + server::acl_password_hash(f.requirepass)) != std::string::npos;
      }
    }
    if (!holds) {
      std::cerr << "statekv cluster: --requirepass is not a password of the cluster's default "
                   "user; the cluster's own password holds (change it with CONFIG SET "
                   "requirepass on any node)\n";
    }
  }
  if (!f.keyspaces.empty()) {
    Status applied = apply_keyspace_config(cluster.peer_endpoints(), *secret, specs);
    if (!applied.ok()) {
      std::cerr << "statekv cluster: keyspaces not created: " << applied.message() << "\n";
    }
  }
  fmt::print(
      "cluster ready: {} nodes. Try: redis-cli -p {} cluster info; statekv cluster status "
      "--data {}\n",
      cluster.nodes.size(), cluster.nodes.front().port, data.string());
  std::fflush(stdout);
  if (f.detach) return 0;

  fmt::print("running in the foreground; Ctrl-C stops every node\n");
  std::fflush(stdout);
  // Watch every node of the cluster (cluster.json: add-node may add some,
  // remove-node take some away; restart-missing may restart one), report each
  // that stops, as planned or not, and each that comes back.
  std::map<uint64_t, pid_t> watched;  // every node seen, by id: its pid, 0 once it stopped
  for (const LocalNode& n : cluster.nodes) watched[n.id.value()] = running_pid(cluster, n.id);
  std::map<pid_t, int> exits;  // our children's exit statuses, once reaped
  auto report_stop = [&](uint64_t id, pid_t pid) {
    const std::string planned = planned_stop_reason(cluster, NodeId(id));
    if (!planned.empty()) {
      fmt::print("node {} (pid {}) stopped as planned: {}\n", id, pid, planned);
      return;
    }
    auto exit = exits.find(pid);
    // Status 0: the node stopped cleanly on its own (a client's SHUTDOWN, or
    // a SIGTERM from outside this supervisor), which is no crash.
    const bool clean = exit != exits.end() && WIFEXITED(exit->second) &&
                       WEXITSTATUS(exit->second) == 0;
    fmt::print(
        "node {} (pid {}) {}; the end of its log:\n{}"
        "restart it with: statekv cluster restart-missing --data {}\n",
        id, pid,
        clean ? "stopped cleanly (SHUTDOWN, or SIGTERM from elsewhere)"
              : "died" + (exit != exits.end() ? " (" + describe_exit(exit->second) + ")"
                                              : std::string()),
        log_tail(cluster, NodeId(id), 5), data.string());
  };
  while (true) {
    if (int sig = take_signal(signals, 200ms); sig != 0) break;
    int status = 0;
    pid_t gone = 0;
    while ((gone = ::waitpid(-1, &status, WNOHANG)) > 0) exits[gone] = status;
    if (auto now = load_local_cluster(data); now.ok()) cluster = std::move(now).value();
    bool any_running = false;
    bool all_planned = true;
    for (const LocalNode& n : cluster.nodes) {
      const pid_t pid = running_pid(cluster, n.id);
      any_running = any_running || pid != 0;
      if (pid == 0) all_planned = all_planned && !planned_stop_reason(cluster, n.id).empty();
      auto [was, added] = watched.try_emplace(n.id.value(), 0);
      if (pid == was->second) continue;
      if (was->second != 0) report_stop(n.id.value(), was->second);
      if (pid != 0) {
        fmt::print("node {} {} (pid {})\n", n.id.value(), added ? "joined" : "is running again",
                   pid);
      }
      was->second = pid;
    }
    // Nodes that left the cluster (remove-node stops them, then drops them).
    for (auto it = watched.begin(); it != watched.end();) {
      if (cluster.find(NodeId(it->first)) != nullptr) {
        ++it;
        continue;
      }
      if (it->second != 0) {
        const std::string planned = planned_stop_reason(cluster, NodeId(it->first));
        fmt::print("node {} (pid {}) stopped as planned: {}\n", it->first, it->second,
                   planned.empty() ? "removed from the cluster" : planned);
      }
      it = watched.erase(it);
    }
    std::fflush(stdout);
    if (!any_running && all_planned && !cluster.nodes.empty()) {
      fmt::print("every node was stopped on purpose; exiting\n");
      return 0;
    }
  }
  fmt::print("stopping the cluster\n");
  std::fflush(stdout);
  for (const LocalNode& n : cluster.nodes) {
    (void)stop_node(cluster, n.id, 10000ms, "`statekv cluster up` stopped (Ctrl-C or SIGTERM)");
  }
  return 0;
}

// Starts the nodes of the local cluster that are not running (killed, crashed,
// stopped), and touches nothing else: running nodes, a supervising
// `cluster up`, cluster.json all stay as they are.
int run_restart_missing(const Common& c) {
  auto loaded = load_local_cluster(c.data);
  if (!loaded.ok()) return fail(loaded.status().message());
  const LocalCluster cluster = std::move(loaded).value();
  auto secret = cluster_secret(cluster.data, c.secret, false);
  if (!secret.ok()) return fail(secret.status().message());
  auto starting =
      DirLock::try_acquire(cluster.data, kStartLock, "`statekv cluster restart-missing`");
  if (!starting.ok()) {
    return fail("another command is starting nodes in " + cluster.data.string() + ": " +
                starting.status().message());
  }
  bool any_missing = false;
  for (const LocalNode& n : cluster.nodes)
    any_missing = any_missing || running_pid(cluster, n.id) == 0;
  if (!any_missing) {
    fmt::print("every node of the cluster in {} is running; nothing to do\n", c.data);
    return 0;
  }
  const sigset_t signals = shutdown_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::map<uint64_t, pid_t> started;
  // Waits for what it started only: a node removed meanwhile (remove-node
  // running beside it) or down for good is not a reason to stop the nodes it
  // brought back.
  if (Status s = start_missing(cluster, *secret, signals, &started, /*started_only=*/true);
      !s.ok()) {
    return fail(s.message() + "\nthe nodes it started were stopped; the others run on");
  }
  fmt::print("restarted {} node(s); the cluster is ready\n", started.size());
  return 0;
}

int run_down(const Common& c) {
  auto cluster = load_local_cluster(c.data);
  if (!cluster.ok()) return fail(cluster.status().message());
  for (const LocalNode& n : cluster->nodes) {
    const pid_t pid = running_pid(*cluster, n.id);
    if (Status s = stop_node(*cluster, n.id, 10000ms, "`statekv cluster down`"); !s.ok()) {
      return fail(s.message());
    }
    if (pid != 0) fmt::print("node {} stopped (pid {})\n", n.id.value(), pid);
  }
  return 0;
}

// ------------------------------------------------------------------ rebalance

// Moves keys to where the partitioners now put them, printing progress: a bar
// on a terminal, a line per keyspace otherwise.
Status rebalance_with_progress(const std::vector<std::string>& endpoints, const std::string& secret,
                               const RebalanceOptions& options = {}) {
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  std::string current;
  auto started = std::chrono::steady_clock::now();
  const auto show = [&](const RebalanceProgress& p) {
    if (!p.step.empty()) {
      // A consensus keyspace: its replicas move, one step a line.
      if (tty && !current.empty()) fmt::print("\n");
      current.clear();
      fmt::print("moving replicas of keyspace {}: {} ({}/{} replicas moved)\n", p.keyspace, p.step,
                 p.moved, p.total);
      std::fflush(stdout);
      return;
    }
    if (p.keyspace != current) {
      if (!current.empty() && tty) fmt::print("\n");
      current = p.keyspace;
      started = std::chrono::steady_clock::now();
    }
    if (tty) {
      constexpr int kWidth = 30;
      const double done = p.total == 0 ? 1.0 : static_cast<double>(p.moved) / p.total;
      const int filled = static_cast<int>(done * kWidth);
      fmt::print("\rmoving keyspace {:<12} [{}{}] {}/{} keys", p.keyspace, std::string(filled, '#'),
                 std::string(kWidth - filled, ' '), p.moved, p.total);
      std::fflush(stdout);
    } else if (p.moved == p.total) {
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      fmt::print("moved keyspace {}: {}/{} keys copied in {:.2f} s\n", p.keyspace, p.moved,
                 p.total, secs);
    }
  };
  Status s = rebalance(endpoints, secret, show, options);
  if (tty && !current.empty()) fmt::print("\n");
  return s;
}

// What moved between two maps, one line per consensus keyspace whose shards'
// replicas changed: the progress lines show only the moves still under way
// when they look, and the replica controller may have finished before.
void print_replica_changes(const meta::ClusterMap& before, const meta::ClusterMap& after) {
  const auto list = [](const std::vector<NodeId>& nodes) {
    std::string out;
    for (NodeId n : nodes) out += fmt::format("{}{}", out.empty() ? "" : ",", n.value());
    return out;
  };
  for (const meta::Keyspace& k : after.keyspaces) {
    if (k.spec.replication.kind != meta::Replication::kConsensus) continue;
    const meta::Keyspace* was = before.find_keyspace(k.spec.name);
    if (was == nullptr || was->shards.size() != k.shards.size()) continue;
    size_t changed = 0;
    std::string shown;
    for (size_t i = 0; i < k.shards.size(); ++i) {
      if (was->shards[i].owners == k.shards[i].owners) continue;
      if (++changed <= 8) {
        shown += fmt::format("{}shard {} [{}] -> [{}]", shown.empty() ? "" : ", ", i,
                             list(was->shards[i].owners), list(k.shards[i].owners));
      }
    }
    if (changed == 0) continue;
    fmt::print("replicas moved in keyspace {}: {} of {} shard(s) ({}{})\n", k.spec.name, changed,
               k.shards.size(), shown, changed > 8 ? ", ..." : "");
  }
}

int run_rebalance(const Common& c) {
  auto endpoints = endpoints_of(c);
  if (!endpoints.ok()) return fail(endpoints.status().message());
  auto secret = cluster_secret(c.data, c.secret, false);
  if (!secret.ok()) return fail(secret.status().message());
  if (Status s = rebalance_with_progress(*endpoints, *secret); !s.ok()) {
    return fail("rebalance failed (keys stay where they were): " + s.message());
  }
  fmt::print("rebalanced\n");
  return 0;
}

// ------------------------------------------------------------------ add / remove

struct NodeFlags {
  Common common;
  uint64_t id = 0;
  std::string region = "default";
  bool force = false;  // remove-node: accept losing the shards only a dead node held
};

int run_add_node(const NodeFlags& f) {
  auto loaded = load_local_cluster(f.common.data);
  if (!loaded.ok()) return fail(loaded.status().message());
  LocalCluster cluster = std::move(loaded).value();
  auto secret = cluster_secret(cluster.data, f.common.secret, false);
  if (!secret.ok()) return fail(secret.status().message());

  uint64_t id = f.id;
  if (id == 0) {
    for (const LocalNode& n : cluster.nodes) id = std::max(id, n.id.value());
    ++id;
  }
  if (cluster.find(NodeId(id))) return fail(fmt::format("node {} already exists", id));
  auto starting = DirLock::try_acquire(cluster.data, kStartLock, "`statekv cluster add-node`");
  if (!starting.ok()) {
    return fail("another command is starting nodes in " + cluster.data.string() + ": " +
                starting.status().message());
  }
  LocalNode node;
  node.id = NodeId(id);
  node.port = static_cast<uint16_t>(cluster.base_port + id - 1);
  node.peer_port = static_cast<uint16_t>(node.port + 10000);
  node.region = f.region;
  const std::vector<std::string> endpoints = cluster.peer_endpoints();

  // 1. The map learns of the node (joining), so every member can reach it.
  node::RaftRegisterClient reg(endpoints, *secret, 10000ms);
  auto added = meta::update(reg, [&](const meta::ClusterMap& m) {
    meta::Member member;
    member.id = node.id;
    member.address = "127.0.0.1:" + std::to_string(node.port);
    member.peer_address = node.peer_address();
    member.region = node.region;
    member.state = meta::MemberState::kJoining;
    return meta::add_member(m, member);
  });
  if (!added.ok()) return fail("cannot add node to the map: " + added.status().message());
  fmt::print("map epoch {}: {}\n", added->epoch.value(), added->last_change);

  // 2. The process starts empty and waits to be added.
  cluster.nodes.push_back(node);
  if (Status s = save_local_cluster(cluster); !s.ok()) return fail(s.message());
  auto pid = spawn_node(cluster, node, *secret, true);
  if (!pid.ok()) return fail(pid.status().message());
  fmt::print("node {}: pid {}  redis-cli -p {}\n", id, *pid, node.port);

  // 3. The raft group takes it in: a learner first, which catches up from the
  //    leader (by snapshot when the log was compacted), then a voter (Busy
  //    until it holds the log: asked again while it starts; a Timeout when the
  //    change did not commit within the ask: asked again, which waits for the
  //    same change); then it marks itself active in the map. Asked through
  //    every node, the new one too: once a voter it may be elected the
  //    group's leader (an ask that timed out may have committed), and a client
  //    that cannot reach the leader it is pointed to asks in vain.
  node::RaftRegisterClient admin(cluster.peer_endpoints(), *secret, 10000ms);
  Status voter = admin.client()->add_voter(node.id);
  for (const auto until = std::chrono::steady_clock::now() + 60s;
       (voter.code() == Status::Code::kBusy || voter.code() == Status::Code::kTimeout) &&
       std::chrono::steady_clock::now() < until;) {
    std::this_thread::sleep_for(200ms);
    voter = admin.client()->add_voter(node.id);
  }
  if (!voter.ok()) {
    return fail("cannot add node " + std::to_string(id) + " to the raft group: " + voter.message());
  }
  fmt::print("node {} is a voter; waiting for it to catch up\n", id);
  sigset_t none;
  sigemptyset(&none);
  // The new node ready; another may be down (this one takes its place).
  if (Status s = wait_ready(cluster, *secret, 60s, {{id, *pid}}, none, /*started_only=*/true);
      !s.ok()) {
    return fail(s.message());
  }
  fmt::print("node {} is active; moving its share of the keys to it\n", id);
  // 4. Keys whose owner changes move to it, while clients keep going.
  if (Status s = rebalance_with_progress(cluster.peer_endpoints(), *secret); !s.ok()) {
    return fail("node " + std::to_string(id) + " joined, but moving keys failed (they stay " +
                "where they were; retry with `statekv cluster rebalance`): " + s.message());
  }
  if (auto now = meta::fetch(admin); now.ok()) print_replica_changes(*added, *now);
  fmt::print("node {} added\n", id);
  return 0;
}

int run_remove_node(const NodeFlags& f) {
  if (f.id == 0) return fail("--id is required");
  auto endpoints = endpoints_of(f.common);
  if (!endpoints.ok()) return fail(endpoints.status().message());
  auto secret = cluster_secret(f.common.data, f.common.secret, false);
  if (!secret.ok()) return fail(secret.status().message());
  const NodeId id(f.id);

  node::RaftRegisterClient reg(*endpoints, *secret, 10000ms);
  auto current = meta::fetch(reg);
  if (!current.ok()) return fail("cannot read the cluster map: " + current.status().message());
  const meta::Member* member = current->find_member(id);
  if (member == nullptr || member->state == meta::MemberState::kRemoved) {
    return fail(fmt::format("node {} is not a member", f.id));
  }
  // Its replicas of consensus shards move to the others: refuse before
  // anything changes when too few nodes would remain for a keyspace's factor.
  for (const meta::Keyspace& k : current->keyspaces) {
    if (k.spec.replication.kind != meta::Replication::kConsensus) continue;
    const bool holds = std::any_of(k.shards.begin(), k.shards.end(), [&](const meta::Shard& s) {
      return std::find(s.owners.begin(), s.owners.end(), id) != s.owners.end();
    });
    if (!holds) continue;
    if (auto t = coord::replica_targets(*current, k, {id}); !t.ok()) {
      return fail(fmt::format("node {} cannot be removed: {}", f.id, t.status().message()));
    }
  }
  // A node that does not answer (killed, its machine gone) cannot hand
  // anything over: its replicas of consensus shards are re-created from the
  // survivors; a single-copy shard it held has no other copy.
  const bool dead = !member_answers(*member, *secret);
  RebalanceOptions options;
  options.leaving = {id};
  std::vector<std::pair<std::string, uint32_t>> lost;
  if (dead) {
    options.down = {id};
    for (const meta::Keyspace& k : current->keyspaces) {
      if (k.spec.replication.kind == meta::Replication::kConsensus) continue;
      for (const meta::Shard& shard : k.shards) {
        if (std::find(shard.owners.begin(), shard.owners.end(), id) != shard.owners.end()) {
          lost.emplace_back(k.spec.name, shard.id.value());
        }
      }
    }
    std::string names;
    for (size_t i = 0; i < lost.size() && i < 8; ++i) {
      names +=
          fmt::format("{}keyspace '{}' shard {}", i ? ", " : "", lost[i].first, lost[i].second);
    }
    if (lost.size() > 8) names += ", ...";
    if (!lost.empty() && !f.force) {
      return fail(fmt::format(
          "node {} does not answer, and it holds the only copy of {} shard(s) ({}): their keys "
          "cannot be re-created. Bring the node back (`statekv cluster restart-missing`), or "
          "pass --force to remove it and lose those keys",
          f.id, lost.size(), names));
    }
    fmt::print("node {} does not answer: re-creating its replicas from the survivors{}\n", f.id,
               lost.empty() ? std::string()
                            : fmt::format("; --force: the keys of {} shard(s) are lost ({})",
                                          lost.size(), names));
  }

  // 1. It stops being a place for keys (leaving), and its keys move to the
  //    others while clients keep going; it serves them until the move ends.
  //    Its replicas of consensus shards move one at a time (a new member is
  //    added and catches up, then it is removed).
  auto leaving = meta::update(reg, [&](const meta::ClusterMap& m) {
    return meta::set_member_state(m, id, meta::MemberState::kLeaving);
  });
  if (!leaving.ok() && leaving.status().message().find("already leaving") == std::string::npos) {
    return fail("cannot mark node " + std::to_string(f.id) + " leaving: " +
                leaving.status().message());
  }
  // A dead node's single-copy shards (--force) move like any other leaving
  // node's, with nothing copied from it: the rebalance leaves it out.
  if (Status s = rebalance_with_progress(*endpoints, *secret, options); !s.ok()) {
    return fail("moving node " + std::to_string(f.id) + "'s keys and replicas failed (what " +
                "did not move stays there; retry remove-node): " + s.message());
  }
  if (auto now = meta::fetch(reg); now.ok()) print_replica_changes(*current, *now);
  // 2. Out of the raft group (the leader may be the one leaving: it hands over).
  if (Status s = reg.client()->remove_voter(id); !s.ok() && !s.is_invalid_argument()) {
    return fail("cannot remove node " + std::to_string(f.id) + " from the raft group: " +
                s.message());
  }
  auto removed = meta::update(reg, [&](const meta::ClusterMap& m) {
    return meta::remove_member(m, id);
  });
  if (!removed.ok()) return fail("cannot remove node from the map: " + removed.status().message());
  fmt::print("map epoch {}: {}\n", removed->epoch.value(), removed->last_change);

  // 3. Stop it, if it is one of ours, and delete its data: its keys moved
  //    away, and its id can never rejoin (the map keeps it as removed).
  auto local = load_local_cluster(f.common.data);
  if (local.ok() && local->find(id)) {
    const pid_t pid = running_pid(*local, id);
    if (Status s = stop_node(*local, id, 10000ms,
                               "removed from the cluster by `statekv cluster remove-node`");
        !s.ok()) {
      return fail(
          fmt::format("node {} is out of the cluster but did not stop: {}", f.id, s.message()));
    }
    const fs::path dir = local->node_dir(id);
    std::erase_if(local->nodes, [&](const LocalNode& n) { return n.id == id; });
    if (Status s = save_local_cluster(*local); !s.ok()) return fail(s.message());
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (ec) {
      return fail(fmt::format("node {} stopped, but its data dir {} could not be removed: {}", f.id,
                              dir.string(), ec.message()));
    }
    fmt::print("node {} stopped{}; its data dir {} is removed\n", f.id,
               pid != 0 ? fmt::format(" (pid {})", pid) : std::string(), dir.string());
  }
  return 0;
}

void add_common(CLI::App* cmd, Common& c, bool endpoints = true) {
  cmd->add_option("--data", c.data, "Data directory of the local cluster")->capture_default_str();
  cmd->add_option("--secret", c.secret,
                  "Cluster secret (default: $STATEKV_CLUSTER_SECRET, else DATA/cluster.secret)");
  if (endpoints) {
    cmd->add_option("--endpoints", c.endpoints,
                    "Peer addresses HOST:PORT of nodes (default: from DATA/cluster.json)")
        ->delimiter(',');
  }
}

const SubcommandRegistration kRegistration([](CLI::App& app, int* exit_code) {
  CLI::App* cluster = app.add_subcommand("cluster", "Run and operate a cluster of statekv nodes");
  cluster->require_subcommand(1);

  auto up = std::make_shared<UpFlags>();
  CLI::App* up_cmd = cluster->add_subcommand(
      "up", "Start N local nodes on 127.0.0.1 forming one cluster (ports BASE.., data DATA/nodeK)");
  add_common(up_cmd, up->common, false);
  up_cmd->add_option("--nodes", up->nodes, "How many nodes")->capture_default_str();
  up_cmd->add_option("--base-port", up->base_port, "RESP port of node 1; node K gets BASE+K-1")
      ->capture_default_str();
  up_cmd->add_option("--engine", up->engine, "Storage engine of each node")
      ->check(CLI::IsMember({"rocksdb", "memory"}))
      ->capture_default_str();
  up_cmd->add_option("--fsync", up->fsync, "fsync policy of each node (the raft log syncs "
                                           "unless never)")
      ->check(CLI::IsMember({"always", "batch", "never"}))
      ->capture_default_str();
  up_cmd->add_option("--partitioner", up->partitioner,
                     "Partitioner of the default keyspace: hash, ring, or slots (Redis Cluster "
                     "clients such as redis-cli -c see every key)")
      ->check(CLI::IsMember({"hash", "ring", "slots"}))
      ->capture_default_str();
  up_cmd->add_option("--replication", up->replication,
                     "Replication of the default keyspace: consensus (raft per shard, factor "
                     "min(3, nodes): any one node may fail; the default with 3 or more nodes) or "
                     "none (one copy per shard; the default with fewer). docs/replication.md "
                     "lists what consensus keyspaces do not serve yet")
      ->check(CLI::IsMember({"none", "consensus"}));
  up_cmd->add_option("--regions", up->regions,
                     "Region labels dealt to the nodes in turn, e.g. eu,us (default: one region)")
      ->delimiter(',');
  up_cmd->add_option("--keyspaces", up->keyspaces,
                     "TOML file of [[keyspace]] entries to create once the cluster is up "
                     "(docs/routing.md)")
      ->check(CLI::ExistingFile);
  up_cmd
      ->add_option("--requirepass", up->requirepass,
                   "Password of the cluster: every node asks clients for it (AUTH), for every "
                   "key wherever it lives; kept by the metadata service as a SHA-256 hash, so "
                   "nodes added later ask for it too (default: $STATEKV_REQUIREPASS, else none). "
                   "Change it with CONFIG SET requirepass on any node")
      ->envname("STATEKV_REQUIREPASS");
  up_cmd->add_option(
      "--server-arg", up->server_args,
      "One more `statekv server` option for every node, as --server-arg=--name=value "
      "(repeat it), e.g. --server-arg=--group-election-timeout-ms=300; kept in "
      "cluster.json for nodes added or restarted later");
  up_cmd->add_flag("--detach", up->detach, "Return once the cluster is ready, leaving it running");
  up_cmd->callback([up, up_cmd, exit_code] {
    for (const char* name : {"--nodes", "--base-port", "--engine", "--fsync", "--partitioner",
                             "--replication", "--regions", "--server-arg"}) {
      if (up_cmd->get_option(name)->count() > 0) up->given.insert(name);
    }
    *exit_code = run_up(*up);
  });

  auto restart = std::make_shared<Common>();
  CLI::App* restart_cmd = cluster->add_subcommand(
      "restart-missing",
      "Start the nodes of the local cluster that are not running (killed, crashed), and touch "
      "nothing else; works beside a running `cluster up`");
  add_common(restart_cmd, *restart, false);
  restart_cmd->callback([restart, exit_code] { *exit_code = run_restart_missing(*restart); });

  auto status = std::make_shared<Common>();
  CLI::App* status_cmd = cluster->add_subcommand(
      "status",
      "Members, leader, term, commit and applied index, epoch, each member's lag, and "
      "health (exit 1 when a shard has no serving owner)");
  add_common(status_cmd, *status);
  status_cmd->add_flag("--json", status->json, "Print JSON");
  status_cmd->callback([status, exit_code] { *exit_code = run_status(*status); });

  auto add = std::make_shared<NodeFlags>();
  CLI::App* add_cmd = cluster->add_subcommand(
      "add-node", "Start one more local node and add it to the cluster, live");
  add_common(add_cmd, add->common, false);
  add_cmd->add_option("--id", add->id, "Node id (default: the highest + 1)");
  add_cmd->add_option("--region", add->region, "Region label")->capture_default_str();
  add_cmd->callback([add, exit_code] { *exit_code = run_add_node(*add); });

  auto remove = std::make_shared<NodeFlags>();
  CLI::App* remove_cmd = cluster->add_subcommand(
      "remove-node", "Take a node out of the cluster, live, and stop it if it is local");
  add_common(remove_cmd, remove->common);
  remove_cmd->add_option("--id", remove->id, "Node id")->required();
  remove_cmd->add_flag("--force", remove->force,
                       "Remove a dead node even when it held the only copy of some shards "
                       "(their keys are lost)");
  remove_cmd->callback([remove, exit_code] { *exit_code = run_remove_node(*remove); });

  auto reb = std::make_shared<Common>();
  CLI::App* reb_cmd = cluster->add_subcommand(
      "rebalance", "Move keys to where each keyspace's partitioner puts them now, live");
  add_common(reb_cmd, *reb);
  reb_cmd->callback([reb, exit_code] { *exit_code = run_rebalance(*reb); });

  auto ks = std::make_shared<std::pair<Common, std::string>>();
  CLI::App* ks_cmd = cluster->add_subcommand(
      "keyspaces", "Create the keyspaces a TOML file declares ([[keyspace]] entries) that are missing");
  add_common(ks_cmd, ks->first);
  ks_cmd->add_option("file", ks->second, "TOML file")->required()->check(CLI::ExistingFile);
  ks_cmd->callback([ks, exit_code] {
    // The file first: a mistake in it is reported whether or not a cluster runs.
    auto specs = read_keyspace_config(ks->second);
    if (!specs.ok()) {
      *exit_code = fail(specs.status().message());
      return;
    }
    auto endpoints = endpoints_of(ks->first);
    auto secret = cluster_secret(ks->first.data, ks->first.secret, false);
    if (!endpoints.ok()) *exit_code = fail(endpoints.status().message());
    else if (!secret.ok()) *exit_code = fail(secret.status().message());
    else if (Status s = apply_keyspace_config(*endpoints, *secret, *specs); !s.ok()) *exit_code = fail(s.message());
    else *exit_code = 0;
  });

  auto down = std::make_shared<Common>();
  CLI::App* down_cmd = cluster->add_subcommand("down", "Stop every node of the local cluster");
  add_common(down_cmd, *down, false);
  down_cmd->callback([down, exit_code] { *exit_code = run_down(*down); });
});

}  // namespace
}  // namespace statekv::cli
