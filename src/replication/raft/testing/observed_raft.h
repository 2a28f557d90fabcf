// Test-only: raft hosted in the simulator under a global observer.
//
// The simulator judges a run's client history; the observer judges raft itself,
// after every callback on every node, through Raft's read-only accessors:
//   * election safety: at most one leader per term;
//   * state machine safety: an index, once committed anywhere, always holds the
//     same entry on every node that has committed it (so no committed entry is
//     ever lost or changed, across crashes and restarts too);
//   * leader completeness: a node taking office holds every entry the observer
//     saw committed in an earlier term.
// The first violation is kept (with node, term and index) for the test to
// report; the run goes on, since aborting inside the simulator would hide the
// seed.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "replication/raft/raft.h"
#include "sim/protocol_host.h"
#include "sim/registry.h"

namespace statekv::replication::raft::testing {

class Observer {
 public:
  void check(NodeId node, const Raft& r) {
    if (r.quiesced()) ++quiesced_views_;
    if (r.role() == Raft::Role::kLeader) {
      auto [it, inserted] = leader_of_term_.emplace(r.term(), node);
      if (it->second != node) {
        fail() << "two leaders in term " << r.term() << ": " << it->second << " and " << node;
      }
      if (inserted) check_completeness(node, r);
    }
    NodeView& view = nodes_[node];
    if (r.commit_index() > view.commit) {
      // Re-verify the node's whole committed prefix: cheap enough (commits are
      // rare next to messages) and it catches a committed entry changed in place.
      // Entries compacted into a snapshot are gone (a leader may commit and
      // snapshot in one callback): such an index stays unknown until another
      // node shows it, and the history judges its effect.
      for (uint64_t i = r.log().snapshot_index().value() + 1; i <= r.commit_index().value(); ++i) {
        const Entry& e = r.log().at(LogIndex(i));
        if (i > committed_.size()) {
          committed_.resize(i);
          commit_term_.resize(i);
        }
        if (!committed_[i - 1]) {
          committed_[i - 1] = e;
          commit_term_[i - 1] = r.term();
        } else if (!(*committed_[i - 1] == e)) {
          fail() << "node " << node << " committed a different entry at index " << i << " (term "
                 << e.term << ", committed term " << committed_[i - 1]->term << ")";
        }
      }
    }
    view.commit = r.commit_index();
    // Snapshot transfers: counters grow within an incarnation.
    const Raft::SnapshotStats& s = r.snapshot_stats();
    snapshots_installed_ += s.installed - view.snapshots.installed;
    snapshot_chunks_accepted_ += s.chunks_accepted - view.snapshots.chunks_accepted;
    snapshot_chunks_refused_ += s.chunks_refused - view.snapshots.chunks_refused;
    most_snapshot_chunks_ = std::max(most_snapshot_chunks_, s.most_chunks);
    view.snapshots = s;
  }

  // A restarted node starts from commit 0 (and zero counters) again.
  void restarted(NodeId node) { nodes_[node] = NodeView{}; }

  bool ok() const { return violation_.empty(); }
  const std::string& violation() const { return violation_; }
  size_t committed() const { return committed_.size(); }
  size_t terms_with_leader() const { return leader_of_term_.size(); }
  // Snapshots installed from chunks, chunks staged and refused (out of order,
  // duplicated, of a dropped transfer), and the most chunks one snapshot took.
  uint64_t snapshots_installed() const { return snapshots_installed_; }
  uint64_t snapshot_chunks_accepted() const { return snapshot_chunks_accepted_; }
  uint64_t snapshot_chunks_refused() const { return snapshot_chunks_refused_; }
  uint64_t most_snapshot_chunks() const { return most_snapshot_chunks_; }
  // Callbacks after which some member was quiesced.
  uint64_t quiesced_views() const { return quiesced_views_; }
  // Batches of requests handed to Raft::on_requests (Chaos::batch_window),
  // those of more than one request, and the most requests in one.
  void batched(size_t requests) {
    ++batches_;
    batches_of_many_ += requests > 1 ? 1 : 0;
    most_batched_ = std::max<uint64_t>(most_batched_, requests);
  }
  uint64_t batches() const { return batches_; }
  uint64_t batches_of_many() const { return batches_of_many_; }
  uint64_t most_batched() const { return most_batched_; }
  // Committed membership changes seen (among indexes some node showed).
  size_t committed_config_changes() const {
    return std::count_if(committed_.begin(), committed_.end(),
                         [](const auto& e) { return e && e->kind == Entry::Kind::kConfig; });
  }

 private:
  struct NodeView {
    LogIndex commit;
    Raft::SnapshotStats snapshots{};
  };

  void check_completeness(NodeId node, const Raft& r) {
    for (size_t i = r.log().snapshot_index().value() + 1; i <= committed_.size(); ++i) {
      // commit_term_ is at least the term that committed the entry, so this
      // only asks for entries certainly committed before r.term().
      if (!committed_[i - 1] || commit_term_[i - 1] >= r.term()) continue;
      if (LogIndex(i) > r.log().last_index() || !(r.log().at(LogIndex(i)) == *committed_[i - 1])) {
        fail() << "leader " << node << " of term " << r.term() << " lacks committed index " << i;
        return;
      }
    }
  }

  // Collects the message of the first violation only.
  struct Sink {
    std::string* target;
    std::ostringstream os;
    template <typename T>
    Sink& operator<<(const T& v) {
      os << v;
      return *this;
    }
    ~Sink() {
      if (target->empty()) *target = os.str();
    }
  };
  Sink fail() { return Sink{&violation_, {}}; }

  std::map<Term, NodeId> leader_of_term_;
  std::vector<std::optional<Entry>> committed_;  // by index - 1; nullopt: not seen yet
  std::vector<Term> commit_term_;
  std::map<NodeId, NodeView> nodes_;
  std::string violation_;
  uint64_t quiesced_views_ = 0;
  uint64_t batches_ = 0;
  uint64_t batches_of_many_ = 0;
  uint64_t most_batched_ = 0;
  uint64_t snapshots_installed_ = 0;
  uint64_t snapshot_chunks_accepted_ = 0;
  uint64_t snapshot_chunks_refused_ = 0;
  uint64_t most_snapshot_chunks_ = 0;
};

// Test-only operator actions the host performs on a timer of its own.
struct Chaos {
  // When set: every this often, a node that leads hands leadership to a random
  // other member (Raft::transfer_leadership).
  std::optional<Duration> transfer_every{};
  // When set: every this often, a node that leads removes a random member
  // (itself included) if all nodes are members, else adds a missing one back,
  // first as a learner (Raft::add_learner), promoted on a later tick
  // (Raft::change_membership), so the config moves between N-1 and N members.
  std::optional<Duration> membership_every{};
  // When set: the requests reaching a node are held and proposed together
  // (Raft::on_requests) this long after the first of them arrived, as a host
  // proposes the requests of one pass of its event loop. A crash loses the
  // held ones (their clients time out: they never reached raft).
  std::optional<Duration> batch_window{};
};

// A HostedNode that runs Raft and shows it to the observer after every callback.
class ObservedRaft final : public sim::HostedNode {
 public:
  ObservedRaft(sim::ByteEnv& env, const Membership& membership, std::vector<std::string> recovered,
               std::shared_ptr<Observer> observer, RaftOptions options, Chaos chaos)
      : env_(env),
        raft_(env_, membership, std::move(recovered), options),
        members_(membership),
        observer_(std::move(observer)),
        chaos_(chaos) {
    observer_->restarted(members_.self);
    if (chaos_.transfer_every) chaos_timer_ = env_.set_timer(*chaos_.transfer_every);
    if (chaos_.membership_every) membership_timer_ = env_.set_timer(*chaos_.membership_every);
    observe();
  }

  Status deliver(NodeId from, std::string_view bytes) override {
    Result<Message> msg = decode_message<Message>(bytes);
    if (!msg.ok()) return msg.status();
    if (encode_message(*msg) != bytes) return Status::Corruption("raft codec is not a round trip");
    raft_.on_message(from, *msg);
    observe();
    return Status::OK();
  }
  void on_request(const ClientRequest& req) override {
    if (chaos_.batch_window) {
      held_.push_back(req);
      if (!batch_timer_) batch_timer_ = env_.set_timer(*chaos_.batch_window);
      return;
    }
    raft_.on_request(req);
    observe();
  }
  void on_peer_down(NodeId peer) override {
    raft_.on_peer_down(peer);
    observe();
  }
  void on_timer(TimerId id) override {
    if (chaos_timer_ && id == *chaos_timer_) {
      if (raft_.role() == Raft::Role::kLeader) {
        NodeId target = members_.self;
        while (target == members_.self) {
          target = members_.nodes[env_.random().uniform(members_.nodes.size())];
        }
        // Busy (a transfer under way) is fine: try again next time.
        (void)raft_.transfer_leadership(target);
      }
      chaos_timer_ = env_.set_timer(*chaos_.transfer_every);
    } else if (batch_timer_ && id == *batch_timer_) {
      batch_timer_.reset();
      std::vector<ClientRequest> batch;
      batch.swap(held_);
      observer_->batched(batch.size());
      raft_.on_requests(batch);
    } else if (membership_timer_ && id == *membership_timer_) {
      if (raft_.role() == Raft::Role::kLeader) change_membership();
      membership_timer_ = env_.set_timer(*chaos_.membership_every);
    } else {
      raft_.on_timer(id);
    }
    observe();
  }
  void on_persisted(PersistToken token) override {
    raft_.on_persisted(token);
    observe();
  }

 private:
  void observe() { observer_->check(members_.self, raft_); }

  void change_membership() {
    const std::vector<NodeId>& config = raft_.config();
    if (config.size() == members_.nodes.size()) {
      // Busy (an earlier change or this term's first entry not committed): next time.
      (void)raft_.change_membership(config[env_.random().uniform(config.size())], false);
      return;
    }
    for (NodeId n : members_.nodes) {
      if (std::find(config.begin(), config.end(), n) == config.end()) {
        if (raft_.learner_match().contains(n)) {
          (void)raft_.change_membership(n, true);  // Busy until caught up
        } else {
          (void)raft_.add_learner(n);
        }
        return;
      }
    }
  }

  sim::detail::TypedEnv<Message> env_;
  RaftKv raft_;
  Membership members_;
  std::shared_ptr<Observer> observer_;
  Chaos chaos_;
  std::optional<TimerId> chaos_timer_;
  std::optional<TimerId> membership_timer_;
  std::vector<ClientRequest> held_;  // Chaos::batch_window: requests not yet proposed
  std::optional<TimerId> batch_timer_;
};

// A protocol entry whose nodes all report to `observer`.
inline sim::ProtocolEntry observed_raft_entry(std::shared_ptr<Observer> observer,
                                              RaftOptions options = {}, Chaos chaos = {}) {
  return sim::ProtocolEntry{"raft", "raft under a global invariant observer",
                            [observer, options, chaos](sim::ByteEnv& env, const Membership& m,
                                                       std::vector<std::string> rec) {
                              return std::make_unique<ObservedRaft>(env, m, std::move(rec),
                                                                    observer, options, chaos);
                            }};
}

}  // namespace statekv::replication::raft::testing
