#include "support/local_cluster.h"

#include <set>
#include <sstream>
#include <thread>

#include "support/net.h"
#include "support/raw_client.h"
#include "support/redis_client.h"

namespace statekv::itest {

namespace {
constexpr const char* kSecret = "local-cluster-secret";
}

LocalCluster::LocalCluster(size_t n, std::vector<std::string> extra, std::string engine)
    : extra_(std::move(extra)) {
  for (size_t i = 0; i < n; ++i) {
    ServerOptions o;
    o.kind = ServerKind::kStatekv;
    o.engine = engine;
    o.fsync = "batch";
    nodes_.push_back(std::make_unique<ServerProcess>(o));
  }
  pick_peer_ports();
}

std::vector<std::string> cluster_node_args(size_t index, const std::vector<uint16_t>& peer_ports,
                                           const std::string& secret, int election_ms) {
  std::string peers;
  for (size_t i = 0; i < peer_ports.size(); ++i) {
    peers += (i ? "," : "") + std::to_string(i + 1) + "=127.0.0.1:" + std::to_string(peer_ports[i]);
  }
  return {"--node-id",
          std::to_string(index + 1),
          "--peer-port",
          std::to_string(peer_ports[index]),
          "--peers",
          peers,
          "--cluster-secret",
          secret,
          "--raft-election-timeout-ms",
          std::to_string(election_ms)};
}

void LocalCluster::pick_peer_ports() {
  peer_ports_.clear();
  for (size_t i = 0; i < nodes_.size(); ++i) {
    auto port = pick_free_low_port();
    peer_ports_.push_back(port.ok() ? *port : 0);
  }
  for (size_t i = 0; i < nodes_.size(); ++i) {
    std::vector<std::string> args = cluster_node_args(i, peer_ports_, kSecret);
    args.insert(args.end(), extra_.begin(), extra_.end());
    nodes_[i]->reset(std::move(args));
  }
}

std::string LocalCluster::address(size_t i) const {
  return "127.0.0.1:" + std::to_string(port(i));
}

Status LocalCluster::start(std::chrono::milliseconds timeout) {
  for (int attempt = 0;; ++attempt) {
    Status s = Status::OK();
    for (auto& node : nodes_) {
      if (node->running()) continue;
      s = node->start();
      if (!s.ok()) break;
    }
    if (s.ok()) break;
    const bool peer_port_taken = s.message().find("cannot listen for peers") != std::string::npos &&
                                 s.message().find("Address already in use") != std::string::npos;
    if (started_ || !peer_port_taken || attempt == 2) return s;
    for (auto& node : nodes_) {
      if (node->running()) (void)node->stop();
    }
    pick_peer_ports();
  }
  started_ = true;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    if (converged(&last)) return Status::OK();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return Status::Timeout("the cluster did not converge on one map: " + last);
}

bool LocalCluster::converged(std::string* why) {
  std::set<std::string> epochs;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    auto c = RedisClient::connect(port(i), std::chrono::seconds(1));
    if (!c.ok()) {
      *why = c.status().to_string();
      return false;
    }
    auto text = c->bulk({"CLUSTER", "NODES"});
    if (!text.ok()) {
      *why = "node " + std::to_string(i + 1) + ": " + text.status().to_string();
      return false;
    }
    for (size_t j = 0; j < nodes_.size(); ++j) {
      if (text->find(" " + address(j) + "@" + std::to_string(peer_ports_[j]) + " ") ==
          std::string::npos) {
        *why = "node " + std::to_string(i + 1) + " does not list " + address(j);
        return false;
      }
    }
    std::istringstream lines(*text);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string f[7];
      for (auto& x : f) fields >> x;
      epochs.insert(f[6]);  // the map epoch the node routes with
    }
  }
  if (epochs.size() != 1) {
    *why = "nodes route with different epochs";
    return false;
  }
  return true;
}

Result<size_t> LocalCluster::owner_of(const std::string& key, size_t via) {
  auto c = RawClient::connect(port(via));
  if (!c.ok()) return c.status();
  auto r = c->call({"LOCATE", key});
  if (!r.ok()) return r.status();
  const resp::Value& v = r->value;
  // A map (RESP3) or a flat array of field, value (RESP2).
  for (size_t i = 0; i + 1 < v.elements.size(); i += 2) {
    if (v.elements[i].str == "owners" && !v.elements[i + 1].elements.empty()) {
      return static_cast<size_t>(v.elements[i + 1].elements[0].integer - 1);
    }
  }
  return Status::InvalidArgument("LOCATE without owners: " + r->bytes);
}

Result<std::string> LocalCluster::key_on(size_t owner, const std::string& prefix, size_t via) {
  for (int i = 0; i < 1000; ++i) {
    const std::string key = prefix + std::to_string(i);
    auto o = owner_of(key, via);
    if (!o.ok()) return o.status();
    if (*o == owner) return key;
  }
  return Status::NotFound("no key with prefix " + prefix + " on node " + std::to_string(owner));
}

}  // namespace statekv::itest
