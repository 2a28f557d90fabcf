// Blocking commands sent to another node (coordinator.h, "Blocking
// commands"): the router's side (route_blocking, send_blocking,
// client_closed) and the owner's (run_blocking_here, unblock_here).
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "coord/coordinator.h"
#include "coord/routing_errors.h"
#include "server/blocking.h"
#include "server/command.h"

namespace statekv::coord {

namespace {

using Clock = std::chrono::steady_clock;
using server::Session;

// Tokens an owner remembers as unblocked before their command arrived.
constexpr size_t kUnblockedEarlyKept = 4096;

// Session ids of the owner's routed waiters: far above connection ids (1, 2,
// 3... as in Redis), so the blocking table never confuses the two.
constexpr uint64_t kRoutedWaiterIds = uint64_t{1} << 62;

// When a blocking command's timeout passes, from now (max: never, or its
// timeout does not parse: the owner answers that error at once).
Clock::time_point block_deadline(std::span<const std::string_view> argv) {
  const auto at = server::blocking_timeout_at(argv);
  if (!at) return Clock::time_point::max();
  std::string error;
  const auto ms = server::parse_block_timeout(argv[*at], &error);
  if (!ms || *ms <= 0) return Clock::time_point::max();
  return Clock::now() + std::chrono::milliseconds(*ms);
}

}  // namespace

void Coordinator::set_block_time_left(std::vector<std::string>& argv, size_t offset,
                                      Clock::time_point deadline) {
  if (deadline == Clock::time_point::max() || argv.size() <= offset) return;
  std::vector<std::string_view> views(argv.begin() + static_cast<std::ptrdiff_t>(offset),
                                      argv.end());
  const auto at = server::blocking_timeout_at(views);
  if (!at) return;
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  argv[offset + *at] =
      fmt::format("{:.3f}", static_cast<double>(std::max<int64_t>(left, 1)) / 1000);
}

std::chrono::milliseconds Coordinator::blocking_call_timeout(Clock::time_point deadline) const {
  if (deadline == Clock::time_point::max()) return net::ForwardClient::kNoTimeout;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return std::max(left, std::chrono::milliseconds(0)) + options_.forward_timeout;
}

struct Coordinator::BlockingCall {
  uint64_t client = 0;
  std::string token;
  int resp = 2;
  std::string key;                // its first key: routed again by it after a stale route
  std::vector<std::string> argv;  // the command as sent
  Clock::time_point deadline = Clock::time_point::max();
  server::DeferredReply done;
  std::atomic<bool> finished{false};
  std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
  int attempts = 0;
  // Where it waits: a node (plain keyspaces) or a replica group.
  std::atomic<uint64_t> owner{0};
  GroupId group;
  std::vector<NodeId> members;
  uint64_t epoch = 0;
};

void Coordinator::route_blocking(Session& session, const Route& route, const RoutingTable& table,
                                 std::span<const std::string_view> argv,
                                 std::string_view first_key) {
  // Commands held back in a batch were sent before this one.
  if (session.routed_batch) session.routed_batch->flush();
  auto call = std::make_shared<BlockingCall>();
  call->client = session.id;
  call->token = fmt::format("{}:{}:{}", options_.self.value(), session.id, ++next_blocking_);
  call->resp = session.resp;
  call->key = std::string(first_key);
  call->argv.assign(argv.begin(), argv.end());
  call->deadline = block_deadline(argv);
  call->epoch = table.epoch().value();
  session.route_owner = 0;  // nothing goes into a stream behind it
  call->done = session.defer();
  session.blocked.store(true, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(blocking_mu_);
    blocking_calls_[session.id] = call;
  }
  if (route.keyspace->spec.replication.kind == meta::Replication::kConsensus) {
    call->group = ReplicaGroups::group_id(route.keyspace->spec.name, route.shard);
    call->members = route.owners;
    auto g = std::make_shared<GroupCall>();
    g->group = call->group;
    g->members = route.owners;
    g->resp = session.resp;
    g->epoch = call->epoch;
    g->argv.reserve(argv.size() + 2);
    g->argv.emplace_back(kBlockVerb);
    g->argv.push_back(call->token);
    g->argv.insert(g->argv.end(), argv.begin(), argv.end());
    g->keys.emplace_back(first_key);  // its other keys are in the same group
    g->deadline = Clock::now() + options_.forward_timeout;
    g->positions = session.positions;
    g->write = true;
    g->blocking = true;
    g->count_if_forwarded = true;
    g->block_deadline = call->deadline;
    g->cancelled = call->cancelled;
    g->done = [this, call](std::string reply, storage::Sequence) {
      finish_blocking(call, std::move(reply));
    };
    send_group_call(g, NodeId());
    return;
  }
  send_blocking(call, route.primary(), call->epoch);
}

void Coordinator::send_blocking(const std::shared_ptr<BlockingCall>& call, NodeId owner,
                                uint64_t epoch) {
  call->owner.store(owner.value());
  if (call->cancelled->load()) {
    finish_blocking(call, "");
    return;
  }
  std::vector<std::string> argv = call->argv;
  if (call->attempts > 0) set_block_time_left(argv, 0, call->deadline);
  if (owner == options_.self) {
    // Re-routed here (the key moved to this node): it blocks here.
    run_blocking_here(epoch, call->token, std::move(argv), call->resp,
                      [this, call](net::ForwardReplyFrame r) {
                        std::string out;
                        if (r.status.ok()) {
                          out = std::move(r.reply);
                        } else {
                          resp::Writer(&out, call->resp).error(routing_error(r.status));
                        }
                        finish_blocking(call, std::move(out));
                      });
    return;
  }
  auto table = this->table();
  const meta::Member* m = table ? table->member(owner) : nullptr;
  if (m == nullptr || m->peer_address.empty()) {
    std::string out;
    resp::Writer(&out, call->resp)
        .error("CLUSTERDOWN node " + std::to_string(owner.value()) + " has no peer address");
    finish_blocking(call, std::move(out));
    return;
  }
  net::ForwardFrame frame;
  frame.epoch = epoch;
  frame.resp = static_cast<uint8_t>(call->resp);
  frame.argv.reserve(argv.size() + 2);
  frame.argv.emplace_back(kBlockVerb);
  frame.argv.push_back(call->token);
  for (std::string& a : argv) frame.argv.push_back(std::move(a));
  forward_client_->call(
      owner, m->peer_address, std::move(frame),
      [this, call, epoch](Result<net::ForwardReplyFrame> r) {
        if (r.ok() && r->status.ok()) {
          // The owner replied once its pop was durable.
          finish_blocking(call, std::move(r->reply));
          return;
        }
        if (r.ok() && r->status.code() == Status::Code::kAborted && ++call->attempts < 4 &&
            !call->cancelled->load()) {
          // A stale route (the key moved): catch up and route again, off the
          // forward client's thread.
          const bool posted = router_jobs_->post([this, call, epoch] {
            auto table = wait_for_epoch(epoch + 1);
            const Route route = table->route(call->key);
            if (route.keyspace->spec.replication.kind == meta::Replication::kConsensus) {
              std::string out;
              resp::Writer(&out, call->resp)
                  .error("TRYAGAIN the key's keyspace changed while the command was routed");
              finish_blocking(call, std::move(out));
              return;
            }
            send_blocking(call, route.primary(), table->epoch().value());
          });
          if (posted) return;
        }
        // The owner could not be reached, or failed (it died) while the
        // client waited: an error, never a hang.
        const Status& s = r.ok() ? r->status : r.status();
        std::string out;
        resp::Writer(&out, call->resp).error(routing_error(s));
        finish_blocking(call, std::move(out));
      },
      blocking_call_timeout(call->deadline));
}

void Coordinator::finish_blocking(const std::shared_ptr<BlockingCall>& call, std::string reply) {
  if (call->finished.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(blocking_mu_);
    auto it = blocking_calls_.find(call->client);
    if (it != blocking_calls_.end() && it->second == call) blocking_calls_.erase(it);
  }
  // A client that went away gets nothing (its connection drops the reply).
  call->done(std::move(reply), 0);
}

void Coordinator::client_closed(Session& session) {
  std::shared_ptr<BlockingCall> call;
  {
    std::lock_guard<std::mutex> lock(blocking_mu_);
    auto it = blocking_calls_.find(session.id);
    if (it == blocking_calls_.end()) return;
    call = it->second;
    blocking_calls_.erase(it);
  }
  call->cancelled->store(true);
  send_unblock(call, false);
}

bool Coordinator::unblock(uint64_t client, bool error) {
  std::shared_ptr<BlockingCall> call;
  {
    std::lock_guard<std::mutex> lock(blocking_mu_);
    auto it = blocking_calls_.find(client);
    if (it == blocking_calls_.end()) return false;
    call = it->second;
  }
  // Its reply comes back from where it waits, and finishes it here.
  send_unblock(call, error);
  return true;
}

void Coordinator::send_unblock(const std::shared_ptr<BlockingCall>& call, bool error) {
  std::vector<std::string> argv = {std::string(kUnblockVerb), call->token};
  if (error) argv.emplace_back("ERROR");
  if (call->group.value() != 0) {
    // Whoever leads the group now finishes it, if it waits there.
    auto g = std::make_shared<GroupCall>();
    g->group = call->group;
    g->members = call->members;
    g->resp = call->resp;
    g->epoch = call->epoch;
    g->argv = std::move(argv);
    g->deadline = Clock::now() + options_.forward_timeout;
    g->done = [](std::string, storage::Sequence) {};
    send_group_call(g, NodeId());
    return;
  }
  const NodeId owner(call->owner.load());
  if (owner == options_.self) {
    unblock_here(call->token, error);
    return;
  }
  auto table = this->table();
  const meta::Member* m = table ? table->member(owner) : nullptr;
  if (m == nullptr || m->peer_address.empty()) return;
  net::ForwardFrame frame;
  frame.epoch = call->epoch;
  frame.argv = std::move(argv);
  forward_client_->call(owner, m->peer_address, std::move(frame),
                        [](Result<net::ForwardReplyFrame>) {});
}

// ------------------------------------------------------------------ owner side

void Coordinator::run_blocking_here(uint64_t epoch, std::string token,
                                    std::vector<std::string> argv, int resp, Respond respond) {
  // The reply, once the pop it reports is durable here.
  auto answer = [this, respond](net::ForwardReplyFrame reply, storage::Sequence seq) {
    if (seq == 0 || seq <= ctx_.engine->durable_sequence()) {
      respond(std::move(reply));
      return;
    }
    auto shared = std::make_shared<net::ForwardReplyFrame>(std::move(reply));
    ctx_.engine->when_durable(seq, [shared, respond]() mutable { respond(std::move(*shared)); });
  };
  const uint64_t id = kRoutedWaiterIds + ++next_blocking_;
  {
    std::lock_guard<std::mutex> lock(blocking_mu_);
    if (auto early = unblocked_early_.find(token); early != unblocked_early_.end()) {
      // Unblocked before the command arrived: it does not run.
      const bool error = early->second;
      unblocked_early_.erase(early);
      net::ForwardReplyFrame reply;
      if (error) {
        reply.reply = "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n";
      } else {
        reply.status = Status::Aborted("the command was unblocked before it reached node " +
                                       std::to_string(options_.self.value()));
      }
      respond(std::move(reply));
      return;
    }
    routed_waiters_[token] = id;
  }
  Session session;
  session.id = id;
  session.authenticated = true;
  session.resp = resp;
  session.routed_epoch = epoch;
  session.addr = "routed";
  bool deferred = false;
  session.defer = [&]() -> server::DeferredReply {
    deferred = true;
    return [this, token, answer](std::string reply, storage::Sequence seq) {
      {
        std::lock_guard<std::mutex> lock(blocking_mu_);
        routed_waiters_.erase(token);
      }
      net::ForwardReplyFrame r;
      r.reply = std::move(reply);
      answer(std::move(r), seq);
    };
  };
  std::vector<std::string_view> views(argv.begin(), argv.end());
  std::string out;
  resp::Writer writer(&out, resp);
  const storage::Sequence seq = service_.execute(session, views, writer);
  if (deferred) return;  // blocked: answered when served, timed out or unblocked
  {
    std::lock_guard<std::mutex> lock(blocking_mu_);
    routed_waiters_.erase(token);
  }
  net::ForwardReplyFrame reply;
  if (out.size() > 1 && out[0] == '-' && std::string_view(out).substr(1).starts_with(kStaleRoute)) {
    reply.status = Status::Aborted(out.substr(1, out.size() - 3));  // drop '-' and CRLF
    respond(std::move(reply));
    return;
  }
  reply.reply = std::move(out);
  answer(std::move(reply), seq);
}

void Coordinator::unblock_here(const std::string& token, bool error) {
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(blocking_mu_);
    auto it = routed_waiters_.find(token);
    if (it == routed_waiters_.end()) {
      // Not (yet) here: if its command is still on the way, it must not run.
      if (unblocked_early_.emplace(token, error).second) {
        unblocked_early_order_.push_back(token);
        if (unblocked_early_order_.size() > kUnblockedEarlyKept) {
          unblocked_early_.erase(unblocked_early_order_.front());
          unblocked_early_order_.pop_front();
        }
      }
      return;
    }
    id = it->second;
  }
  // CLIENT UNBLOCK id TIMEOUT|ERROR: the waiter's reply (which completes the
  // router's call), nothing popped.
  Session session;
  session.authenticated = true;
  session.internal = true;
  const std::string id_text = std::to_string(id);
  std::vector<std::string_view> argv = {"CLIENT", "UNBLOCK", id_text, error ? "ERROR" : "TIMEOUT"};
  std::string out;
  resp::Writer writer(&out, 2);
  service_.execute(session, argv, writer);
}

}  // namespace statekv::coord
