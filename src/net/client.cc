#include "net/client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "net/blocking_connection.h"

namespace statekv::net {

using Clock = std::chrono::steady_clock;
using replication::ClientOp;
using replication::ClientRequest;
using replication::ClientResponse;

Client::Client(ClientOptions options) : options_(std::move(options)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::create(ClientOptions options) {
  if (options.endpoints.empty()) return Status::InvalidArgument("no endpoints given");
  if (options.secret.empty()) {
    return Status::InvalidArgument("no cluster secret given (--secret or STATEKV_CLUSTER_SECRET)");
  }
  return std::unique_ptr<Client>(new Client(std::move(options)));
}

Result<BlockingConnection*> Client::connection(const std::string& endpoint) {
  auto it = connections_.find(endpoint);
  if (it != connections_.end()) {
    if (it->second->alive()) return it->second.get();
    connections_.erase(it);
  }
  auto conn =
      BlockingConnection::open(endpoint, options_.secret, Clock::now() + options_.connect_timeout);
  if (!conn.ok()) return conn.status();
  endpoint_of_[(*conn)->node()] = endpoint;
  BlockingConnection* raw = conn->get();
  connections_[endpoint] = std::move(conn).value();
  return raw;
}

NodeId Client::node_at(const std::string& endpoint) const {
  auto it = connections_.find(endpoint);
  return it == connections_.end() ? NodeId() : it->second->node();
}

std::string Client::pick(const std::optional<NodeId>& hint) {
  if (hint) {
    // Learn the ids behind endpoints not connected yet until the hinted one shows.
    for (size_t i = 0; i < options_.endpoints.size() && !endpoint_of_.count(*hint); ++i) {
      if (!connections_.count(options_.endpoints[i])) (void)connection(options_.endpoints[i]);
    }
    auto it = endpoint_of_.find(*hint);
    if (it != endpoint_of_.end()) return it->second;
  }
  return options_.endpoints[next_++ % options_.endpoints.size()];
}

Result<ClientResponse> Client::call(ClientRequest request) {
  const auto deadline = Clock::now() + options_.deadline;
  std::optional<NodeId> hint;
  std::set<std::string> unreachable;
  std::string last_unreachable, last_refusal;
  int attempt = 0;
  while (Clock::now() < deadline) {
    const std::string endpoint = pick(hint);
    auto conn = connection(endpoint);
    if (!conn.ok()) {
      // A refused handshake will be refused again: the secret is wrong.
      if (conn.status().code() == Status::Code::kAborted) return conn.status();
      unreachable.insert(endpoint);
      last_unreachable = conn.status().message();
      hint.reset();
      if (++attempt % options_.endpoints.size() == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      continue;
    }
    const uint64_t call_id = ++next_call_;
    RequestFrame frame{call_id, request};
    Status sent = (*conn)->send(frame, deadline);
    if (!sent.ok()) {
      // Nothing was answered: unless the request never left, it may have happened.
      connections_.erase(endpoint);
      return Status::Unavailable(sent.message() + "; the operation may or may not have happened");
    }
    auto reply = (*conn)->receive(deadline);
    if (!reply.ok()) {
      connections_.erase(endpoint);
      return Status::Timeout(reply.status().message() +
                             "; the operation may or may not have happened (a leader that lost "
                             "its majority cannot commit, or the node is overloaded)");
    }
    auto* response = std::get_if<ResponseFrame>(&*reply);
    if (response == nullptr || response->call != call_id) {
      connections_.erase(endpoint);
      return Status::Internal("unexpected frame from " + endpoint);
    }
    if (!response->status.ok()) return response->status;
    const ClientResponse& r = response->response;
    if (r.outcome == ClientResponse::Outcome::kFail && r.not_served) {
      // Certainly did not happen there: try the leader it names, or another node.
      unreachable.erase(endpoint);
      last_refusal =
          "node " + std::to_string((*conn)->node().value()) +
          (r.leader_hint ? " named node " + std::to_string(r.leader_hint->value()) + " as leader"
                         : std::string(" knows no leader"));
      const bool same = r.leader_hint && endpoint_of_.count(*r.leader_hint) &&
                        endpoint_of_[*r.leader_hint] == endpoint;
      hint = same ? std::nullopt : r.leader_hint;
      if (!hint || same) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    return r;
  }
  // Certainly not done anywhere: say what was seen.
  std::string seen = std::to_string(unreachable.size()) + " of " +
                     std::to_string(options_.endpoints.size()) + " endpoints unreachable";
  if (!last_unreachable.empty()) seen += " (" + last_unreachable + ")";
  if (!last_refusal.empty()) seen += "; " + last_refusal;
  return Status::Unavailable("no leader could serve the request within " +
                             std::to_string(options_.deadline.count()) + " ms: " + seen +
                             "; a majority of the voters may be down or cut off");
}

Status Client::put(const std::string& key, const std::string& value) {
  ClientRequest r;
  r.op = ClientOp::kWrite;
  r.key = key;
  r.value = value;
  auto resp = call(std::move(r));
  return resp.ok() ? Status::OK() : resp.status();
}

Result<std::optional<std::string>> Client::get(const std::string& key) {
  ClientRequest r;
  r.op = ClientOp::kRead;
  r.key = key;
  auto resp = call(std::move(r));
  if (!resp.ok()) return resp.status();
  return resp->value;
}

Result<bool> Client::cas(const std::string& key, const std::optional<std::string>& expected,
                         const std::string& value) {
  ClientRequest r;
  r.op = ClientOp::kCas;
  r.key = key;
  r.expected = expected;
  r.value = value;
  auto resp = call(std::move(r));
  if (!resp.ok()) return resp.status();
  return resp->outcome == ClientResponse::Outcome::kOk;
}

Result<std::string> Client::status(const std::string& endpoint) {
  const auto deadline = Clock::now() + options_.connect_timeout + std::chrono::seconds(2);
  auto conn = connection(endpoint);
  if (!conn.ok()) return conn.status();
  auto r = (*conn)->call(AdminFrame{++next_call_, AdminOp::kStatus, NodeId(), ""}, deadline);
  if (!r.ok()) {
    connections_.erase(endpoint);
    return r.status();
  }
  if (!r->status.ok()) return r->status;
  return r->body;
}

Status Client::admin_on_leader(AdminOp op, NodeId node) {
  const auto deadline = Clock::now() + options_.deadline;
  Status last = Status::Unavailable("no endpoint answered");
  std::optional<NodeId> hint;
  while (Clock::now() < deadline) {
    const std::string endpoint = pick(hint);
    hint.reset();
    auto conn = connection(endpoint);
    if (!conn.ok()) {
      last = conn.status();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    auto r = (*conn)->call(AdminFrame{++next_call_, op, node, ""}, deadline);
    if (!r.ok()) {
      connections_.erase(endpoint);
      return r.status();
    }
    if (r->status.code() == Status::Code::kUnavailable) {
      // Not the leader: find it through that node's status.
      last = r->status;
      auto status_json = status(endpoint);
      if (status_json.ok()) {
        auto j = nlohmann::json::parse(*status_json, nullptr, /*allow_exceptions=*/false);
        if (j.is_object() && j["leader"].is_number_unsigned() && j["leader"].get<uint64_t>() != 0) {
          hint = NodeId(j["leader"].get<uint64_t>());
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    return r->status;
  }
  return last;
}

Status Client::add_voter(NodeId node) {
  return admin_on_leader(AdminOp::kAddVoter, node);
}
Status Client::remove_voter(NodeId node) {
  return admin_on_leader(AdminOp::kRemoveVoter, node);
}
Status Client::transfer_leader(NodeId to) {
  return admin_on_leader(AdminOp::kTransferLeader, to);
}

}  // namespace statekv::net
