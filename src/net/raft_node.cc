#include "net/raft_node.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "core/assert.h"
#include "core/held_posts.h"
#include "core/thread_name.h"
#include "net/asio.h"
#include "net/peer_incarnations.h"
#include "net/shared_log.h"
#include "net/transport.h"
#include "net/wire.h"
#include "replication/codec.h"

namespace statekv::net {

using replication::ClientRequest;
using replication::ClientResponse;
using replication::Duration;
using replication::Instant;
using replication::PersistToken;
using replication::TimerId;
using replication::raft::Raft;
using replication::raft::RaftKv;

namespace {

const char* role_name(Raft::Role role) {
  switch (role) {
    case Raft::Role::kLeader:
      return "leader";
    case Raft::Role::kFollower:
      return "follower";
    case Raft::Role::kCandidate:
      return "candidate";
    case Raft::Role::kPreCandidate:
      return "pre-candidate";
  }
  return "unknown";
}

}  // namespace

std::string RaftNodeStatus::to_json() const {
  nlohmann::json j;
  j["id"] = self.value();
  j["role"] = role;
  j["term"] = term;
  j["leader"] = leader ? leader->value() : 0;
  j["commit_index"] = commit_index;
  j["applied_index"] = applied_index;
  j["last_index"] = last_index;
  j["snapshot_index"] = snapshot_index;
  j["torn_bytes_at_start"] = torn_bytes_at_start;
  j["snapshots_received"] = snapshots_received;
  nlohmann::json voters = nlohmann::json::array();
  for (NodeId v : this->voters) voters.push_back(v.value());
  j["voters"] = voters;
  nlohmann::json m = nlohmann::json::object();
  for (const auto& [node, index] : match) m[std::to_string(node.value())] = index;
  j["match"] = m;
  const auto now = std::chrono::steady_clock::now();
  nlohmann::json heard = nlohmann::json::object();
  for (const auto& [node, at] : last_heard) {
    heard[std::to_string(node.value())] =
        std::chrono::duration_cast<std::chrono::milliseconds>(now - at).count();
  }
  j["heard_ms_ago"] = heard;
  return j.dump();
}

// Two event loops, each on a thread of its own:
//   io_       the metadata replica: its protocol, timers, calls, watches and
//             membership changes ("metadata-raft");
//   data_io_  the transport: every connection, the pings, routed commands and
//             the data groups' frames; the node's replica groups run on it too
//             (data_loop()), so a group frame goes from a protocol to a socket,
//             and from a socket to a protocol, without a thread hop ("data-loop").
// Each function below says which loop it runs on.
class RaftNode::Impl final : public replication::Env<replication::raft::Message> {
 public:
  explicit Impl(RaftNodeOptions options)
      : options_(std::move(options)),
        work_(asio::make_work_guard(io_)),
        data_work_(asio::make_work_guard(data_io_)),
        started_(std::chrono::steady_clock::now()),
        random_(std::random_device{}() ^ (static_cast<uint64_t>(std::random_device{}()) << 32)) {}

  Status open() {
    // The log directory's incarnation, and the peers' as this node first heard
    // them (net/peer_incarnations.h), before any peer is heard.
    auto incarnations = PeerIncarnations::open(options_.data_dir / "wal", options_.fsync);
    if (!incarnations.ok()) return incarnations.status();
    incarnations_ = std::move(incarnations).value();
    TransportOptions t;
    t.self = options_.self;
    t.secret = options_.secret;
    t.incarnation = incarnations_->self();
    t.check_incarnation = [this](NodeId peer, uint64_t incarnation) {
      return judge_incarnation(peer, incarnation);
    };
    t.on_disowned = [this](const std::string& reason) {
      if (disowned_.exchange(true)) return;
      if (options_.on_disowned) options_.on_disowned(reason);
    };
    t.bind = options_.peer_bind;
    t.port = options_.peer_port;
    t.resp_port = options_.resp_port;
    transport_ = std::make_unique<Transport>(
        data_io_, t, [this](Transport::ConnectionId conn, NodeId peer, std::string payload) {
          on_frame(conn, peer, std::move(payload));
        });
    for (const auto& [node, address] : options_.peers) {
      if (node != options_.self) {
        transport_->set_address(node, address);
        known_peers_.insert(node);
      }
    }
    Status listening = transport_->listen();
    if (!listening.ok()) return listening;
    peer_port_ = transport_->port();

    SharedLogOptions wal_options;
    wal_options.dir = options_.data_dir / "wal";
    wal_options.fsync = options_.fsync;
    if (options_.on_log_failed) {
      wal_options.on_failure = [cb = options_.on_log_failed](const Status& s) {
        cb(s.to_string());
      };
    }
    SharedLogRecovery recovery;
    auto wal = SharedLog::open(wal_options, &recovery);
    if (!wal.ok()) return wal.status();
    wal_ = std::move(wal).value();
    torn_bytes_ = recovery.torn_bytes;
    if (recovery.torn_bytes > 0) {
      spdlog::warn(
          "write-ahead log: cut {} torn bytes off the tail ({}); the records before it are "
          "intact",
          recovery.torn_bytes, recovery.torn_detail);
    }
    // Data directories from before the shared log kept this group's log in
    // <data>/raft: moved in whole (a move cut short by a crash is redone).
    const auto old_dir = options_.data_dir / "raft";
    auto moved = migrate_disk_log(*wal_, kMetadataGroup, old_dir, options_.fsync);
    if (!moved.ok()) {
      spdlog::error("raft node {}: cannot move the metadata log of {} into {}: {}", options_.self,
                    old_dir.string(), wal_options.dir.string(), moved.status().to_string());
      return moved.status();
    }
    if (*moved) {
      spdlog::info("raft node {}: moved the metadata log of {} into {} (group {})", options_.self,
                   old_dir.string(), wal_options.dir.string(), kMetadataGroup);
    }
    std::vector<std::string> records;
    // Called on the log's sync thread: hop onto the loop.
    auto log = wal_->open_group(
        kMetadataGroup,
        [this](uint64_t seq) {
          asio::post(io_, [this, seq] {
            if (!raft_) return;
            raft_->on_persisted(PersistToken(seq));
            after_callback();
          });
        },
        &records);
    if (!log.ok()) return log.status();
    log_ = std::move(log).value();
    spdlog::info("raft node {}: recovered {} log records, peer port {}", options_.self,
                 records.size(), peer_port_);

    replication::Membership membership{.self = options_.self, .nodes = options_.bootstrap_voters};
    // Construct on the loop thread so that every protocol call comes from it.
    std::promise<void> constructed;
    asio::post(io_, [&] {
      raft_ = std::make_unique<RaftKv>(*this, membership, std::move(records), options_.raft);
      after_callback();
      constructed.set_value();
    });
    asio::post(data_io_, [this] { ping_peers(); });
    thread_ = std::thread([this] {
      name_this_thread("metadata-raft");
      io_.run();
    });
    data_thread_ = std::thread([this] {
      name_this_thread("data-loop");
      run_data_loop();
    });
    constructed.get_future().wait();
    return Status::OK();
  }

  // A peer proved itself and stated the incarnation of its data directory
  // (net/peer_incarnations.h): taken in when it is the one first heard from
  // it (recorded durably now if it is the first), disowned when it is another.
  IncarnationVerdict judge_incarnation(NodeId peer, uint64_t incarnation) {
    auto standing = incarnations_->check(peer, incarnation);
    if (!standing.ok()) {
      spdlog::error("raft node {}: cannot record the incarnation of node {}: {}", options_.self,
                    peer, standing.status().to_string());
      return {IncarnationVerdict::Kind::kRefuse,
              "node " + std::to_string(options_.self.value()) +
                  " cannot record your incarnation now; try again"};
    }
    switch (*standing) {
      case PeerStanding::kRecorded:
        spdlog::info("raft node {}: node {} has data directory incarnation {} (recorded)",
                     options_.self, peer, incarnation_name(incarnation));
        return {};
      case PeerStanding::kKnown:
        return {};
      case PeerStanding::kDisowned:
        break;
    }
    // For the peer's log too: at most 200 bytes reach it (handshake.h).
    return {IncarnationVerdict::Kind::kDisown,
            fmt::format("node {} knew node {} with data directory incarnation {}, not {}: node "
                        "{} lost the raft state it had",
                        options_.self, peer, incarnation_name(incarnations_->recorded(peer)),
                        incarnation_name(incarnation), peer)};
  }

  // The data loop. It holds the shared log's sync wake until the handlers
  // ready when it first appended have run, so that one sync round takes what
  // they appended: the proposals of the groups led here and the entries of
  // those followed (net/shared_log.h, "Held wakes").
  void run_data_loop() {
    SharedLog::hold_wakes_on_this_thread(
        [this](std::function<void()> wake) { asio::post(data_io_, std::move(wake)); });
    // The replies of a pass go to each client's I/O thread together.
    HeldPosts::hold_on_this_thread(
        [this](std::function<void()> fn) { asio::post(data_io_, std::move(fn)); });
    data_io_.run();
    HeldPosts::hold_on_this_thread(nullptr);
    SharedLog::hold_wakes_on_this_thread(nullptr);
  }

  // The metadata loop first (it sends through the data loop), then the data
  // loop with the transport. Whoever runs on the data loop (ReplicaGroups)
  // has let go of it before.
  void stop() {
    asio::post(io_, [this] {
      for (auto& [id, timer] : timers_) timer->cancel();
      timers_.clear();
      for (auto& [id, call] : calls_) {
        if (call.timer) call.timer->cancel();
        auto done = std::move(call.done);
        done(Status::Unavailable("node shutting down"));
      }
      calls_.clear();
      work_.reset();
    });
    if (thread_.joinable()) thread_.join();
    asio::post(data_io_, [this] {
      // A ping already due may still run after this: it sees stopping_.
      stopping_ = true;
      if (ping_timer_) ping_timer_->cancel();
      if (transport_) transport_->stop();
      data_work_.reset();
    });
    if (data_thread_.joinable()) data_thread_.join();
    // The loop is gone: nothing can call the protocol any more. Destroy it
    // before the log (the log's destructor may still report durability).
    raft_.reset();
    log_.reset();
  }

  // ------------------------------------------------------------ public API (any thread)

  void submit(ClientRequest request, Done done) {
    asio::post(io_, [this, request = std::move(request), done = std::move(done)]() mutable {
      start_call(std::move(request), std::move(done));
    });
  }

  void set_peer_address(NodeId node, std::string address) {
    asio::post(data_io_, [this, node, address = std::move(address)] {
      if (node == options_.self) return;
      transport_->set_address(node, address);
      known_peers_.insert(node);
    });
  }

  void watch_key(std::string key, std::function<void(const std::optional<std::string>&)> fn) {
    asio::post(io_, [this, key = std::move(key), fn = std::move(fn)]() mutable {
      Watch w{std::move(key), std::move(fn), std::nullopt, false};
      w.last = raft_->state_machine().read(w.key);
      w.seen = true;
      w.on_change(w.last);
      watches_.push_back(std::move(w));
    });
  }

  void change_voters(NodeId node, bool add, std::function<void(Status)> done) {
    asio::post(io_, [this, node, add, done = std::move(done)]() mutable {
      MembershipChange change{node,
                              add,
                              std::move(done),
                              std::chrono::steady_clock::now() + options_.request_timeout,
                              {}};
      try_membership_change(std::move(change));
    });
  }

  void set_forward_handler(ForwardHandler handler) {
    on_data_loop(
        [this, handler = std::move(handler)]() mutable { forward_handler_ = std::move(handler); });
  }

  void set_ping_probe(std::function<bool()> probe) {
    on_data_loop([this, probe = std::move(probe)]() mutable { ping_probe_ = std::move(probe); });
  }

  void ping_now() {
    on_data_loop([this] {
      if (!stopping_ && transport_) send_pings();
    });
  }

  void set_group_handler(GroupHandler handler) {
    on_data_loop(
        [this, handler = std::move(handler)]() mutable { group_handler_ = std::move(handler); });
  }

  void send_group(NodeId to, uint64_t group, std::string message, uint64_t epoch) {
    std::string payload = encode_wire(GroupFrame{group, std::move(message), epoch});
    if (to == options_.self) {
      // Delivered as if it had arrived, but never from inside the caller's
      // callback (env.h).
      asio::post(data_io_, [this, payload = std::move(payload)]() mutable {
        if (!stopping_) on_frame(0, options_.self, std::move(payload));
      });
      return;
    }
    on_data_loop([this, to, payload = std::move(payload)]() mutable {
      if (!stopping_) transport_->send(to, std::move(payload));
    });
  }

  asio::io_context& data_loop() { return data_io_; }

  RaftNodeStatus status() const {
    std::lock_guard<std::mutex> lock(status_mu_);
    return status_;
  }

  uint16_t peer_port() const { return peer_port_; }
  std::shared_ptr<SharedLog> wal() const { return wal_; }

  // ------------------------------------------------------------ Env (loop thread)

  void send(NodeId to, const replication::raft::Message& msg) override {
    std::string payload = encode_wire(ProtocolFrame{replication::encode_message(msg)});
    asio::post(data_io_, [this, to, payload = std::move(payload)]() mutable {
      if (stopping_) return;
      if (to == options_.self) {
        on_frame(0, options_.self, std::move(payload));
      } else {
        transport_->send(to, std::move(payload));
      }
    });
  }

  void reply(RequestId request, ClientResponse response) override {
    auto it = calls_.find(request.value());
    if (it == calls_.end()) return;  // answered already, or timed out
    Call call = std::move(it->second);
    calls_.erase(it);
    if (call.timer) call.timer->cancel();
    // Never call out from inside a protocol callback (env.h).
    asio::post(io_, [done = std::move(call.done), response = std::move(response)]() mutable {
      done(std::move(response));
    });
  }

  TimerId set_timer(Duration delay) override {
    const TimerId id(++next_timer_);
    auto timer = std::make_unique<asio::steady_timer>(io_);
    timer->expires_after(delay);
    timer->async_wait([this, id](const asio::error_code& ec) {
      if (ec) return;
      if (timers_.erase(id.value()) == 0) return;
      raft_->on_timer(id);
      after_callback();
    });
    timers_[id.value()] = std::move(timer);
    return id;
  }

  void cancel_timer(TimerId id) override {
    auto it = timers_.find(id.value());
    if (it == timers_.end()) return;
    it->second->cancel();
    timers_.erase(it);
  }

  Instant now() const override {
    return std::chrono::duration_cast<Instant>(std::chrono::steady_clock::now() - started_);
  }

  PersistToken persist(std::string record) override {
    return PersistToken(log_->append(std::move(record)));
  }

  PersistToken persist_checkpoint(std::string record) override {
    return PersistToken(log_->append_checkpoint(std::move(record)));
  }

  Random& random() override { return random_; }

 private:
  struct Call {
    std::function<void(Response)> done;
    std::unique_ptr<asio::steady_timer> timer;
  };
  struct Watch {
    std::string key;
    std::function<void(const std::optional<std::string>&)> on_change;
    std::optional<std::string> last;
    bool seen = false;
  };
  struct MembershipChange {
    NodeId node;
    bool add = false;
    std::function<void(Status)> done;
    std::chrono::steady_clock::time_point deadline;
    LogIndex index;  // set once appended: the change's entry
  };

  void start_call(ClientRequest request, Done done) {
    const uint64_t id = ++next_request_;
    request.id = RequestId(id);
    Call call{std::move(done), std::make_unique<asio::steady_timer>(io_)};
    call.timer->expires_after(options_.request_timeout);
    call.timer->async_wait([this, id](const asio::error_code& ec) {
      if (ec) return;
      auto it = calls_.find(id);
      if (it == calls_.end()) return;
      auto done = std::move(it->second.done);
      calls_.erase(it);
      done(Status::Timeout(timeout_explanation()));
    });
    calls_.emplace(id, std::move(call));
    raft_->on_request(request);
    after_callback();
  }

  std::string timeout_explanation() const {
    const auto leader = raft_->leader();
    std::string who = leader ? "node " + std::to_string(leader->value()) : "unknown";
    return "no answer within " + std::to_string(options_.request_timeout.count()) +
           " ms (leader: " + who + ", " + std::to_string(raft_->config().size()) +
           " voters): the write may or may not have happened; the group may have lost its majority";
  }

  // Runs `fn` on the data loop: at once when called there, else posted.
  template <typename Fn>
  void on_data_loop(Fn&& fn) {
    if (data_io_.get_executor().running_in_this_thread()) {
      fn();
    } else {
      asio::post(data_io_, std::forward<Fn>(fn));
    }
  }

  // Data loop. A frame from a peer or client (or from self). Malformed payloads
  // come from an authenticated peer, so they mean a version mismatch or a bug:
  // logged and dropped; the connection stays up.
  void on_frame(Transport::ConnectionId conn, NodeId peer, std::string payload) {
    if (peer.value() != 0 && peer != options_.self) {
      const auto now = std::chrono::steady_clock::now();
      last_heard_[peer] = now;
      // Published at most every few milliseconds (and every ping interval):
      // the replica groups tell a peer down by it (ReplicaGroupsOptions::
      // peer_down_after), and a lock per frame would cost more than it tells.
      if (now - last_heard_published_ >= kLastHeardPublishEvery) publish_last_heard(now);
    }
    Result<WireMessage> msg = decode_wire(payload);
    if (!msg.ok()) {
      spdlog::warn("frame from node {} does not decode: {}", peer, msg.status().to_string());
      return;
    }
    std::visit([&](auto& m) { handle(conn, peer, m); }, *msg);
  }

  // Metadata loop: sends an answer on the connection its question came on.
  void answer_on(Transport::ConnectionId conn, std::string bytes) {
    asio::post(data_io_, [this, conn, bytes = std::move(bytes)]() mutable {
      if (!stopping_) transport_->send_on(conn, std::move(bytes));
    });
  }

  // Data loop: the metadata replica's messages, calls and admin operations are
  // handed to its loop.
  void handle(Transport::ConnectionId, NodeId peer, ProtocolFrame& f) {
    if (peer.value() == 0) return;  // clients do not speak raft
    asio::post(
        io_, [this, peer, message = std::move(f.message)] { on_protocol_message(peer, message); });
  }

  void handle(Transport::ConnectionId conn, NodeId, RequestFrame& f) {
    asio::post(io_, [this, conn, call = f.call, request = std::move(f.request)]() mutable {
      start_call(std::move(request), [this, conn, call](Response r) {
        ResponseFrame out;
        out.call = call;
        if (r.ok()) {
          out.response = std::move(r).value();
        } else {
          out.status = r.status();
        }
        answer_on(conn, encode_wire(out));
      });
    });
  }

  void handle(Transport::ConnectionId conn, NodeId, AdminFrame& f) {
    asio::post(io_, [this, conn, f = std::move(f)] { on_admin(conn, f); });
  }

  // Metadata loop.
  void on_protocol_message(NodeId peer, const std::string& message) {
    if (!raft_) return;
    auto msg = replication::decode_message<replication::raft::Message>(message);
    if (!msg.ok()) {
      spdlog::warn("raft message from node {} does not decode: {}", peer, msg.status().to_string());
      return;
    }
    if (const auto* snap = std::get_if<replication::raft::InstallSnapshot>(&*msg)) {
      // Counted once per snapshot: its last chunk.
      if (snap->offset + snap->state.size() == snap->total) ++snapshots_received_;
    }
    raft_->on_message(peer, *msg);
    after_callback();
  }

  // Metadata loop.
  void on_admin(Transport::ConnectionId conn, const AdminFrame& f) {
    const uint64_t call = f.call;
    auto answer = [this, conn, call](Status s, std::string body) {
      answer_on(conn, encode_wire(AdminReplyFrame{call, std::move(s), std::move(body)}));
    };
    switch (f.op) {
      case AdminOp::kStatus: {
        RaftNodeStatus s = make_status();
        {
          std::lock_guard<std::mutex> lock(status_mu_);
          s.last_heard = status_.last_heard;
          s.receiving_snapshot = status_.receiving_snapshot;
        }
        answer(Status::OK(), s.to_json());
        return;
      }
      case AdminOp::kAddVoter:
      case AdminOp::kRemoveVoter: {
        const bool add = f.op == AdminOp::kAddVoter;
        try_membership_change(
            MembershipChange{f.node,
                             add,
                             [answer](Status s) { answer(std::move(s), ""); },
                             std::chrono::steady_clock::now() + options_.request_timeout,
                             {}});
        return;
      }
      case AdminOp::kTransferLeader: {
        Status s = raft_->transfer_leadership(f.node);
        after_callback();
        answer(std::move(s), "");
        return;
      }
    }
  }

  void handle(Transport::ConnectionId conn, NodeId, ForwardFrame& f) {
    const uint64_t call = f.call;
    auto respond = [this, conn, call](ForwardReplyFrame reply) {
      reply.call = call;
      // Encoded here, on the thread that answers, and handed over in
      // batches: one post to this node's thread for however many replies
      // are waiting (a post per reply woke it once per routed command).
      std::string bytes = encode_wire(reply);
      if (bytes.size() > kMaxFrameBytes) {
        // Sent as is, the router would drop the connection and tell its client
        // "may or may not have run": say instead that it ran but cannot be carried.
        reply.status = Status::InvalidArgument(
            "the reply is " + std::to_string(bytes.size()) +
            " bytes, over the node-to-node frame limit of " + std::to_string(kMaxFrameBytes) +
            " bytes; the command ran on the key's owner, ask it directly");
        reply.reply.clear();
        bytes = encode_wire(reply);
      }
      bool post = false;
      {
        std::lock_guard<std::mutex> lock(replies_mu_);
        replies_.emplace_back(conn, std::move(bytes));
        post = !replies_posted_;
        replies_posted_ = true;
      }
      if (post) asio::post(data_io_, [this] { send_replies(); });
    };
    if (!forward_handler_) {
      ForwardReplyFrame r;
      r.status = Status::Unavailable("this node does not serve data commands yet");
      respond(std::move(r));
      return;
    }
    forward_handler_(conn, std::move(f), std::move(respond));
  }

  void send_replies() {
    std::vector<std::pair<Transport::ConnectionId, std::string>> replies;
    {
      std::lock_guard<std::mutex> lock(replies_mu_);
      replies.swap(replies_);
      replies_posted_ = false;
    }
    if (!transport_ || stopping_) return;
    for (auto& [conn, bytes] : replies) transport_->send_on(conn, std::move(bytes));
  }

  void handle(Transport::ConnectionId, NodeId, ForwardReplyFrame&) {}
  // on_frame noted that it came; what it says is published with last_heard.
  void handle(Transport::ConnectionId, NodeId peer, PingFrame& f) {
    if (peer.value() == 0 || peer == options_.self) return;
    const bool changed = f.receiving_snapshot ? peers_receiving_snapshot_.insert(peer).second
                                              : peers_receiving_snapshot_.erase(peer) > 0;
    if (changed) publish_last_heard(std::chrono::steady_clock::now());
  }

  void handle(Transport::ConnectionId conn, NodeId peer, GroupFrame& f) {
    // Clients do not speak to replica groups; a frame from self (conn 0) does.
    if (peer.value() == 0 && conn != 0) return;
    if (group_handler_) group_handler_(peer, f.group, f.epoch, std::move(f.message));
  }
  void handle(Transport::ConnectionId, NodeId, ResponseFrame&) {}
  void handle(Transport::ConnectionId, NodeId, AdminReplyFrame&) {}

  // Raft refuses a change while the leader has not committed an entry of its
  // term or an earlier change is uncommitted (Busy): retry those until the
  // deadline. Done once the change's entry commits.
  void try_membership_change(MembershipChange change) {
    if (raft_->role() != Raft::Role::kLeader) {
      const auto leader = raft_->leader();
      change.done(Status::Unavailable(
          "not the leader; ask " +
          (leader ? "node " + std::to_string(leader->value()) : std::string("the leader"))));
      return;
    }
    const auto& voters = raft_->config();
    const bool member = std::find(voters.begin(), voters.end(), change.node) != voters.end();
    if (change.add && member) {
      // Asked again (its earlier ask timed out before the change committed):
      // done once the log that holds it is committed, as the first ask
      // would have been.
      change.index = raft_->log().last_index();
      pending_changes_.push_back(std::move(change));
      check_changes();
      return;
    }
    if (change.add && !member) {
      // A joining node is a learner first (raft.h, "Learners"): it counts
      // toward no majority until change_membership finds it caught up, so a
      // node that is slow, or never answers, is not made a voter the group
      // would then wait for. OK when it already is one (a retry).
      if (Status learn = raft_->add_learner(change.node); !learn.ok()) {
        change.done(std::move(learn));
        return;
      }
    }
    Status s = raft_->change_membership(change.node, change.add);
    if (s.code() == Status::Code::kBusy && std::chrono::steady_clock::now() >= change.deadline &&
        change.add && !member) {
      // Not caught up in time: no longer replicated to as a learner either.
      raft_->change_membership(change.node, false);
    }
    if (s.code() == Status::Code::kBusy && std::chrono::steady_clock::now() < change.deadline) {
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(20));
      timer->async_wait(
          [this, timer, change = std::move(change)](const asio::error_code& ec) mutable {
            if (!ec) try_membership_change(std::move(change));
          });
      return;
    }
    if (!s.ok()) {
      change.done(std::move(s));
      return;
    }
    change.index = raft_->log().last_index();
    after_callback();
    pending_changes_.push_back(std::move(change));
    check_changes();
  }

  void check_changes() {
    for (auto it = pending_changes_.begin(); it != pending_changes_.end();) {
      const auto& voters = raft_->config();
      const bool member = std::find(voters.begin(), voters.end(), it->node) != voters.end();
      if (raft_->commit_index() >= it->index && member == it->add) {
        auto done = std::move(it->done);
        it = pending_changes_.erase(it);
        asio::post(io_, [done = std::move(done)] { done(Status::OK()); });
      } else if (raft_->role() != Raft::Role::kLeader ||
                 std::chrono::steady_clock::now() > it->deadline) {
        auto done = std::move(it->done);
        it = pending_changes_.erase(it);
        asio::post(io_, [done = std::move(done)] {
          done(Status::Timeout(
              "the membership change did not commit in time; check `cluster status`"));
        });
      } else {
        ++it;
      }
    }
  }

  // Data loop.
  void send_pings() {
    const std::string ping =
        encode_wire(PingFrame{.receiving_snapshot = ping_probe_ && ping_probe_()});
    for (NodeId peer : known_peers_) transport_->send(peer, ping);
  }

  // Data loop. Every ping interval: a ping to every peer this node knows, and
  // the last_heard times published to status().
  void ping_peers() {
    if (stopping_) return;
    send_pings();
    publish_last_heard(std::chrono::steady_clock::now());
    if (!ping_timer_) ping_timer_ = std::make_unique<asio::steady_timer>(data_io_);
    ping_timer_->expires_after(options_.ping_interval);
    ping_timer_->async_wait([this](const asio::error_code& ec) {
      if (!ec) ping_peers();
    });
  }

  // Data loop.
  void publish_last_heard(std::chrono::steady_clock::time_point now) {
    last_heard_published_ = now;
    std::lock_guard<std::mutex> lock(status_mu_);
    status_.last_heard = last_heard_;
    status_.receiving_snapshot = peers_receiving_snapshot_;
  }

  RaftNodeStatus make_status() const {
    RaftNodeStatus s;
    s.self = options_.self;
    s.role = role_name(raft_->role());
    s.term = raft_->term().value();
    s.leader = raft_->leader();
    s.commit_index = raft_->commit_index().value();
    s.applied_index = raft_->applied_index().value();
    s.last_index = raft_->log().last_index().value();
    s.snapshot_index = raft_->log().snapshot_index().value();
    s.voters = raft_->config();
    for (const auto& [node, index] : raft_->follower_match()) s.match[node] = index.value();
    s.torn_bytes_at_start = torn_bytes_;
    s.snapshots_received = snapshots_received_;
    s.started = started_;  // last_heard: published by the data loop (ping_peers)
    return s;
  }

  // After every protocol callback: publish status, fire watches whose key's
  // applied value changed, settle membership changes.
  void after_callback() {
    {
      RaftNodeStatus s = make_status();
      std::lock_guard<std::mutex> lock(status_mu_);
      s.last_heard = std::move(status_.last_heard);
      s.receiving_snapshot = std::move(status_.receiving_snapshot);
      status_ = std::move(s);
    }
    const uint64_t applied = raft_->applied_index().value();
    if (applied != last_applied_seen_) {
      last_applied_seen_ = applied;
      for (Watch& w : watches_) {
        std::optional<std::string> now = raft_->state_machine().read(w.key);
        if (now != w.last) {
          w.last = now;
          w.on_change(w.last);
        }
      }
    }
    if (!pending_changes_.empty()) check_changes();
  }

  RaftNodeOptions options_;
  asio::io_context io_;       // the metadata replica's loop
  asio::io_context data_io_;  // the transport's, shared with the data groups
  // Replies to routed commands, from the threads that ran them, waiting for
  // this node's thread to send them (one post per batch).
  std::mutex replies_mu_;
  std::vector<std::pair<Transport::ConnectionId, std::string>> replies_;
  bool replies_posted_ = false;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::executor_work_guard<asio::io_context::executor_type> data_work_;
  std::chrono::steady_clock::time_point started_;
  Random random_;
  std::thread thread_;
  std::thread data_thread_;
  std::unique_ptr<Transport> transport_;  // data loop only
  std::unique_ptr<PeerIncarnations> incarnations_;  // data loop only, once started
  std::atomic<bool> disowned_{false};
  std::shared_ptr<SharedLog> wal_;        // set by open(), then never changed
  std::unique_ptr<GroupLog> log_;         // group kMetadataGroup of wal_
  std::unique_ptr<RaftKv> raft_;
  uint16_t peer_port_ = 0;
  uint64_t torn_bytes_ = 0;
  uint64_t snapshots_received_ = 0;

  uint64_t next_timer_ = 0;
  std::unordered_map<uint64_t, std::unique_ptr<asio::steady_timer>> timers_;
  uint64_t next_request_ = 0;
  std::unordered_map<uint64_t, Call> calls_;
  std::vector<Watch> watches_;
  uint64_t last_applied_seen_ = UINT64_MAX;
  std::deque<MembershipChange> pending_changes_;
  // Data loop only.
  ForwardHandler forward_handler_;
  GroupHandler group_handler_;
  std::set<NodeId> known_peers_;
  std::map<NodeId, std::chrono::steady_clock::time_point> last_heard_;
  std::set<NodeId> peers_receiving_snapshot_;  // their latest pings said so
  std::function<bool()> ping_probe_;           // set_ping_probe
  std::chrono::steady_clock::time_point last_heard_published_;
  static constexpr std::chrono::milliseconds kLastHeardPublishEvery{10};
  std::unique_ptr<asio::steady_timer> ping_timer_;
  bool stopping_ = false;  // set on the data loop by stop(): nothing is sent after it

  mutable std::mutex status_mu_;
  RaftNodeStatus status_;
};

RaftNode::RaftNode(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RaftNode::~RaftNode() {
  impl_->stop();
}

Result<std::unique_ptr<RaftNode>> RaftNode::start(RaftNodeOptions options) {
  if (options.self.value() == 0) return Status::InvalidArgument("node id must be at least 1");
  if (options.secret.empty())
    return Status::InvalidArgument("the cluster secret must not be empty");
  auto impl = std::make_unique<Impl>(std::move(options));
  Status s = impl->open();
  if (!s.ok()) {
    impl->stop();
    return s;
  }
  return std::unique_ptr<RaftNode>(new RaftNode(std::move(impl)));
}

void RaftNode::submit(ClientRequest request, Done done) {
  impl_->submit(std::move(request), std::move(done));
}

void RaftNode::set_peer_address(NodeId node, std::string host_port) {
  impl_->set_peer_address(node, std::move(host_port));
}

void RaftNode::watch_key(std::string key,
                         std::function<void(const std::optional<std::string>&)> on_change) {
  impl_->watch_key(std::move(key), std::move(on_change));
}

void RaftNode::add_voter(NodeId node, std::function<void(Status)> done) {
  impl_->change_voters(node, true, std::move(done));
}

void RaftNode::remove_voter(NodeId node, std::function<void(Status)> done) {
  impl_->change_voters(node, false, std::move(done));
}

void RaftNode::set_group_handler(GroupHandler handler) {
  impl_->set_group_handler(std::move(handler));
}

void RaftNode::set_ping_probe(std::function<bool()> probe) {
  impl_->set_ping_probe(std::move(probe));
}

void RaftNode::ping_now() { impl_->ping_now(); }

void RaftNode::send_group(NodeId to, uint64_t group, std::string message, uint64_t epoch) {
  impl_->send_group(to, group, std::move(message), epoch);
}

void RaftNode::set_forward_handler(ForwardHandler handler) {
  impl_->set_forward_handler(std::move(handler));
}

RaftNodeStatus RaftNode::status() const {
  return impl_->status();
}
uint16_t RaftNode::peer_port() const {
  return impl_->peer_port();
}
asio::io_context& RaftNode::data_loop() {
  return impl_->data_loop();
}
std::shared_ptr<SharedLog> RaftNode::wal() const {
  return impl_->wal();
}
NodeId RaftNode::self() const {
  return impl_->status().self;
}

}  // namespace statekv::net
