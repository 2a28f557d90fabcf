#include "replication/raft/raft.h"

#include <algorithm>
#include <functional>
#include <string>

#include "core/assert.h"

namespace statekv::replication::raft {
namespace {

// A request this node cannot serve (not leader, lost office). ClientResponse (env.h) has members
// without default initializers, so these are spelled out instead of designated-initialized
// (-Wmissing-field-initializers).
ClientResponse fail(std::optional<NodeId> leader_hint = std::nullopt) {
  ClientResponse r;
  r.outcome = ClientResponse::Outcome::kFail;
  r.leader_hint = leader_hint;
  r.not_served = true;
  return r;
}

// Role-change reasons (Raft::role_reason).
std::string higher_term_from(NodeId from, Term term) {
  return "node " + std::to_string(from.value()) + " is in the higher term " +
         std::to_string(term.value());
}
std::string leads_term(NodeId from, Term term) {
  return "node " + std::to_string(from.value()) + " leads term " + std::to_string(term.value());
}

}  // namespace

Raft::Raft(Env<Message>& env, const Membership& membership, std::vector<std::string> recovered,
           StateMachine& sm, RaftOptions options)
    : env_(env), members_(membership), options_(options), sm_(sm) {
  Result<RecoveredState> state = recover(recovered);
  SKV_ASSERT(state.ok(), "raft records do not replay");
  term_ = state->hard_state.term;
  voted_for_ = state->hard_state.voted_for;
  log_ = std::move(state->log);
  snapshot_config_ = state->snapshot_config.empty() ? membership.nodes : state->snapshot_config;
  if (log_.snapshot_index().value() != 0) {
    // A machine that keeps its own state holds the snapshot already, unless
    // the checkpoint carries one (written before it kept its state).
    if (!options_.machine_keeps_state || !state->snapshot.empty()) {
      Status restored = sm_.restore(state->snapshot, log_.snapshot_index());
      SKV_ASSERT(restored.ok(), "raft snapshot does not restore");
    }
    if (!options_.machine_keeps_state) {
      snapshot_state_ = std::make_shared<const std::string>(std::move(state->snapshot));
    }
    // A snapshot holds only committed, applied entries.
    commit_ = applied_ = log_.snapshot_index();
  }
  // With its whole log a member rebuilds a lost state by applying it again;
  // past a compaction point it needs a snapshot ("A machine that lost its kept
  // state", raft.h).
  SKV_ASSERT(!(options_.machine_state_lost || options_.machine_state_partial) ||
                 options_.machine_keeps_state,
             "only a machine that keeps its own state can lose it");
  state_lost_ = (options_.machine_state_lost && log_.snapshot_index().value() != 0) ||
                options_.machine_state_partial;
  refresh_config();
  // Everything recovered is on disk already.
  durable_index_ = log_.last_index();
  reset_election_deadline();
  arm_election_timer(election_deadline_ - env_.now());
}

// ---------------------------------------------------------------- messages

void Raft::on_message(NodeId from, const Message& msg) {
  std::visit([&](const auto& m) { handle(from, m); }, msg);
}

void Raft::handle(NodeId from, const VoteRequest& m) {
  if (quiesced_) {
    // Someone campaigns: the group is not idle. A quiesced follower heard from
    // its leader as recently as the host vouched for it (now), unless the
    // campaigner is that leader itself, restarted: then it leads no more.
    if (role_ == Role::kFollower) {
      last_heard_leader_ = leader_ == from ? Instant{} : env_.now();
    }
    wake();
  }
  if (m.pre_vote) {
    // Grant only what a real vote would grant, and only if we would not be
    // disrupting a leader we hear from: that is the point of PreVote.
    const bool grant = m.term > term_ && log_.candidate_up_to_date(m.last_term, m.last_index) &&
                       role_ != Role::kLeader && !recently_heard_from_leader();
    env_.send(from, VoteReply{.term = grant ? m.term : term_, .granted = grant, .pre_vote = true});
    return;
  }
  if (m.term > term_) {
    role_reason_ = "node " + std::to_string(from.value()) + " campaigns in term " +
                   std::to_string(m.term.value());
    become_follower(m.term, std::nullopt);
  }
  if (m.term < term_) {
    env_.send(from, VoteReply{.term = term_, .granted = false});
    return;
  }
  const bool grant = (voted_for_.value() == 0 || voted_for_ == from) &&
                     log_.candidate_up_to_date(m.last_term, m.last_index);
  if (!grant) {
    env_.send(from, VoteReply{.term = term_, .granted = false});
    return;
  }
  if (voted_for_ != from) {
    voted_for_ = from;
    persist_hard_state();
  }
  reset_election_deadline();
  // The vote is a promise: it may leave only once it is durable.
  send_durable(from, VoteReply{.term = term_, .granted = true});
}

void Raft::handle(NodeId from, const VoteReply& m) {
  if (m.pre_vote) {
    if (m.granted) {
      if (role_ == Role::kPreCandidate && m.term == term_.next()) {
        votes_.insert(from);
        if (votes_from_members() >= majority() && !state_lost_) become_candidate();
      }
    } else if (m.term > term_) {
      role_reason_ = higher_term_from(from, m.term);
      become_follower(m.term, std::nullopt);
    }
    return;
  }
  if (m.term > term_) {
    role_reason_ = higher_term_from(from, m.term);
    become_follower(m.term, std::nullopt);
    return;
  }
  if (role_ != Role::kCandidate || m.term != term_ || !m.granted) return;
  votes_.insert(from);
  maybe_win();
}

void Raft::handle(NodeId from, const AppendEntries& m) {
  if (m.term < term_) {
    // A stale leader: tell it the term so it steps down.
    env_.send(from, AppendReply{.term = term_, .success = false, .round = m.round});
    return;
  }
  SKV_ASSERT(!(role_ == Role::kLeader && m.term == term_), "two leaders in one term");
  if (m.term > term_ || role_ != Role::kFollower) {
    role_reason_ = leads_term(from, m.term);
    become_follower(m.term, from);
  }
  leader_ = from;
  last_heard_leader_ = env_.now();
  leader_commit_seen_ = std::max(leader_commit_seen_, m.leader_commit);
  reset_election_deadline();
  if (quiesced_ && !m.quiesce) wake();
  // Restoring a snapshot in the background: the log may not change under it
  // (on_restored); the leader sends these entries again.
  if (installing_) return;

  AppendReply reply{.term = term_, .round = m.round};
  if (m.prev_index < log_.snapshot_index()) {
    // Entries up to our snapshot point are committed and ours already: check
    // only what comes after it.
    const uint64_t covered = log_.snapshot_index().value() - m.prev_index.value();
    if (covered >= m.entries.size()) {
      reply.success = true;
      reply.match_index = LogIndex(m.prev_index.value() + m.entries.size());
      send_durable(from, reply);
      return;
    }
    AppendEntries rest = m;
    rest.prev_index = log_.snapshot_index();
    rest.prev_term = log_.snapshot_term();
    rest.entries.erase(rest.entries.begin(),
                       rest.entries.begin() + static_cast<std::ptrdiff_t>(covered));
    handle(from, rest);
    return;
  }
  if (m.prev_index > log_.last_index()) {
    reply.conflict_index = log_.last_index().next();
    env_.send(from, reply);
    return;
  }
  if (log_.term_at(m.prev_index) != m.prev_term) {
    SKV_ASSERT(m.prev_index > commit_, "a leader disagrees with a committed entry");
    reply.conflict_term = log_.term_at(m.prev_index);
    reply.conflict_index = log_.first_index_of_term_at(m.prev_index);
    env_.send(from, reply);
    return;
  }
  // Skip what we hold already (a duplicate or reordered message must not
  // truncate entries a later message appended), replace from the first conflict.
  size_t k = 0;
  uint64_t idx = m.prev_index.value() + 1;
  while (k < m.entries.size() && idx <= log_.last_index().value() &&
         log_.term_at(LogIndex(idx)) == m.entries[k].term) {
    ++k;
    ++idx;
  }
  if (k < m.entries.size()) {
    SKV_ASSERT(LogIndex(idx) > commit_, "overwriting a committed entry");
    std::vector<Entry> fresh(m.entries.begin() + static_cast<std::ptrdiff_t>(k), m.entries.end());
    persist_entries(LogIndex(idx), fresh);
    log_.replace_from(LogIndex(idx), std::move(fresh));
    refresh_config(LogIndex(idx));
  }
  const LogIndex match(m.prev_index.value() + m.entries.size());
  commit_ = std::max(commit_, std::min(m.leader_commit, match));
  apply_committed();
  // The log overtook the snapshot being staged (not a member whose machine
  // lost its state: it needs the snapshot whatever its log holds).
  if (!state_lost_ && staging_ && staging_->index <= commit_) staging_.reset();
  // The leader quiesces the group and we hold its whole log, committed: our
  // election timer stops (on_election_timer drops it) until something wakes us.
  if (m.quiesce && match == log_.last_index() && commit_ == match) quiesced_ = true;
  reply.success = true;
  reply.match_index = match;
  send_durable(from, reply);
}

Raft::Progress* Raft::progress_for_reply(NodeId from, Term term) {
  if (term > term_) {
    role_reason_ = higher_term_from(from, term);
    become_follower(term, std::nullopt);
    return nullptr;
  }
  if (role_ != Role::kLeader || term != term_) return nullptr;
  auto it = progress_.find(from);
  return it == progress_.end() ? nullptr : &it->second;
}

void Raft::handle(NodeId from, const AppendReply& m) {
  Progress* progress = progress_for_reply(from, m.term);
  if (progress == nullptr) return;
  if (quiesced_ && !m.success) wake();  // a member lacks entries after all
  Progress& p = *progress;
  p.active = true;
  p.last_heard = env_.now();
  p.acked_round = std::max(p.acked_round, m.round);
  p.applied = std::max(p.applied, m.applied_index);
  // Only a machine that keeps its state can lose it, and only such a leader's
  // snapshot is its machine's state now. A success says where it stands.
  if (m.needs_snapshot || m.success)
    p.needs_snapshot = m.needs_snapshot && options_.machine_keeps_state;
  if (m.success) {
    if (m.match_index > p.match) {
      p.match = m.match_index;
      p.progressed = true;
    }
    // The snapshot being sent is installed (or the follower got past it; one
    // that needs a snapshot is past it once it says it no longer does).
    if (p.snapshot && p.match >= p.snapshot->snapshot.index && !p.needs_snapshot) {
      p.snapshot.reset();
    }
    p.next = std::max(p.next, p.match.next());
    while (!p.inflight.empty() && p.inflight.front() <= m.match_index) p.inflight.pop_front();
    maybe_commit();
    if (role_ != Role::kLeader) return;  // our own removal committed
    maybe_send_timeout_now(from);
  } else if (m.needs_snapshot && p.snapshot) {
    // It refused the snapshot being sent (older than its log needs): the
    // next one is the machine's state as it is now.
    p.snapshot.reset();
  } else if (m.conflict_index > p.match) {
    // Back off past the conflict: if we hold the follower's conflicting term,
    // resume after our last entry of it, else skip the follower's whole term.
    LogIndex next = m.conflict_index;
    if (m.conflict_term.value() != 0) {
      const LogIndex ours = log_.last_index_of_term(m.conflict_term);
      if (ours.value() != 0) next = ours.next();
    }
    p.next = std::max(p.match.next(), std::min(next, p.next));
    p.inflight.clear();
    if (p.snapshot) p.snapshot->inflight = false;  // resend the current chunk
  }
  send_append(from);
  serve_reads();
}

void Raft::handle(NodeId from, const InstallSnapshot& m) {
  if (m.term < term_) {
    env_.send(from, AppendReply{.term = term_, .success = false, .round = m.round});
    return;
  }
  if (quiesced_) wake();
  if (m.term > term_ || role_ != Role::kFollower) {
    role_reason_ = leads_term(from, m.term);
    become_follower(m.term, from);
  }
  leader_ = from;
  last_heard_leader_ = env_.now();
  reset_election_deadline();
  if (installing_) return;  // a resent chunk: answered once the restore is done
  // We hold that much committed already (a duplicate, or a late chunk); a
  // member whose machine lost its state holds none of it, and needs one at
  // least at its log's compaction point.
  if (state_lost_ && m.last_index < log_.snapshot_index()) {
    // Older than what its log needs (a leader whose applied index lags its
    // commit took it): refused, so that the leader takes another (a success
    // would only end the transfer).
    env_.send(from, AppendReply{
                        .term = term_, .success = false, .round = m.round, .needs_snapshot = true});
    return;
  }
  if (!state_lost_ && m.last_index <= commit_) {
    if (staging_ && staging_->index <= commit_) staging_.reset();
    send_durable(
        from,
        AppendReply{.term = term_, .success = true, .match_index = m.last_index, .round = m.round});
    return;
  }
  InstallSnapshotReply ack{.term = term_, .last_index = m.last_index, .round = m.round};
  // A snapshot read piece by piece learns its total with its last chunk.
  const bool same_total =
      staging_ && (staging_->total == m.total || staging_->total == InstallSnapshot::kUnknownTotal);
  const bool same = staging_ && staging_->term == term_ && staging_->index == m.last_index &&
                    staging_->last_term == m.last_term && same_total;
  if (!same) {
    // Within a term the leader sends snapshots in index order, each once the
    // previous one is installed: a chunk of an older one is a late duplicate.
    if (staging_ && staging_->term == term_ && staging_->index > m.last_index) {
      ++snapshot_stats_.chunks_refused;
      return;
    }
    // Another snapshot, or another leader's: what we staged is of no use (a new
    // leader's snapshot need not be byte-for-byte the old one's).
    staging_.reset();
    if (m.offset != 0) {
      ++snapshot_stats_.chunks_refused;
      env_.send(from, ack);  // offset 0: start over
      return;
    }
    staging_ = SnapshotStaging{.term = term_,
                               .index = m.last_index,
                               .last_term = m.last_term,
                               .total = m.total,
                               .sink = options_.machine_keeps_state && !stage_in_memory_
                                           ? sm_.open_snapshot_sink(m.last_index)
                                           : nullptr};
  }
  SnapshotStaging& st = *staging_;
  const bool sized = m.total != InstallSnapshot::kUnknownTotal;
  if (m.offset != st.size || (sized && m.offset + m.state.size() > m.total) ||
      (m.state.empty() && !m.completes())) {
    // Lost, duplicated or reordered (or a chunk that does not fit): say where
    // we are, and the leader resumes from there.
    ++snapshot_stats_.chunks_refused;
    ack.offset = st.size;
    env_.send(from, ack);
    return;
  }
  if (st.sink) {
    if (!st.sink->append(m.state).ok()) {
      // Not staged (the machine says why): start over, in memory this time
      // (stage_in_memory_), as when the machine opens no sink.
      staging_.reset();
      stage_in_memory_ = true;
      ++snapshot_stats_.chunks_refused;
      ack.offset = 0;
      env_.send(from, ack);
      return;
    }
  } else {
    st.data += m.state;
  }
  st.size += m.state.size();
  if (sized) st.total = m.total;
  ++st.chunks;
  st.last_chunk = env_.now();
  ++snapshot_stats_.chunks_accepted;
  if (!m.completes()) {
    ack.offset = st.size;
    env_.send(from, ack);
    return;
  }
  install_staged(from, m);
}

void Raft::install_staged(NodeId from, const InstallSnapshot& last_chunk) {
  SnapshotStaging st = std::move(*staging_);
  staging_.reset();
  stage_in_memory_ = false;  // the next transfer tries the machine's sink again
  Installing done{.from = from,
                  .index = st.index,
                  .last_term = st.last_term,
                  .config = last_chunk.config,
                  .round = last_chunk.round,
                  .chunks = st.chunks};
  if (!options_.machine_keeps_state) {
    // The codec checked the frames; a state that does not restore is the
    // sender's bug, and restore() left ours unchanged.
    if (!sm_.restore(st.data, st.index).ok()) return;
    finish_install(done, std::move(st.data));
    return;
  }
  auto begun = st.sink ? sm_.begin_restore_staged(std::move(st.sink), st.index)
                       : sm_.begin_restore(std::move(st.data), st.index);
  if (!begun.ok()) return;
  if (*begun == StateMachine::RestoreProgress::kStarted) {
    // Until on_restored: the log stays as it is, nothing is applied, and the
    // checkpoint that drops the log waits for the state to be durable (a
    // crash meanwhile restarts from the log as it was).
    installing_ = std::move(done);
    ++snapshot_stats_.restores_in_background;
    return;
  }
  finish_install(done, std::string());
}

void Raft::on_restored(LogIndex index, Status restored, RestoreFailure failure) {
  if (!installing_ || installing_->index != index) return;
  Installing done = std::move(*installing_);
  installing_.reset();
  if (!restored.ok()) {
    ++snapshot_stats_.restores_failed;
    // Unchanged: the leader's next chunk starts the transfer over. Lost: the
    // machine holds part of the snapshot over part of what it had; nothing
    // more is applied to it until a whole snapshot is, and its replies say
    // so (needs_snapshot), so that its leader sends one whatever the log.
    if (failure == RestoreFailure::kStateLost) state_lost_ = true;
    return;
  }
  finish_install(done, std::string());
}

void Raft::finish_install(const Installing& done, std::string state) {
  ++snapshot_stats_.installed;
  snapshot_stats_.most_chunks = std::max(snapshot_stats_.most_chunks, done.chunks);
  const bool keeps_suffix =
      done.index <= log_.last_index() && log_.term_at(done.index) == done.last_term;
  if (!keeps_suffix) forget_durability_from(LogIndex(1));
  log_.reset_to_snapshot(done.index, done.last_term);
  if (!options_.machine_keeps_state) {
    snapshot_state_ = std::make_shared<const std::string>(std::move(state));
  }
  snapshot_config_ = done.config;
  refresh_config();
  // A member whose machine lost its state may hold (and have committed)
  // entries past the snapshot: they are applied next.
  const LogIndex committed = keeps_suffix ? std::max(commit_, done.index) : done.index;
  commit_ = applied_ = done.index;
  state_lost_ = false;
  // Writes we accepted at or below the snapshot point cannot be matched to
  // their entries any more: their clients time out (maybe happened).
  pending_writes_.erase(pending_writes_.begin(), pending_writes_.upper_bound(applied_));
  persist_checkpoint();
  send_durable(
      done.from,
      AppendReply{.term = term_, .success = true, .match_index = done.index, .round = done.round});
  if (committed > applied_) {
    commit_ = committed;
    apply_committed();
  }
}

void Raft::handle(NodeId from, const InstallSnapshotReply& m) {
  Progress* progress = progress_for_reply(from, m.term);
  if (progress == nullptr) return;
  Progress& p = *progress;
  p.active = true;
  p.last_heard = env_.now();
  p.acked_round = std::max(p.acked_round, m.round);
  if (p.snapshot && p.snapshot->snapshot.index == m.last_index) {
    SnapshotSend& s = *p.snapshot;
    const uint64_t held = s.reader ? s.buffer_start + s.buffer.size() : s.snapshot.state->size();
    const uint64_t offset = std::min<uint64_t>(m.offset, held);
    if (s.reader && offset < s.buffer_start) {
      // It dropped what it staged, and what came before our buffer is read
      // past: send the state as it is now, from the start.
      p.snapshot.reset();
      send_append(from);
      serve_reads();
      return;
    }
    if (offset > s.offset) p.progressed = true;
    // Resume from what the follower holds: ahead after an acknowledgement,
    // behind after it lost chunks (or dropped them all: offset 0).
    s.offset = offset;
    s.inflight = false;
    send_append(from);
  }
  serve_reads();
}

void Raft::handle(NodeId from, const TimeoutNow& m) {
  // Restoring a snapshot, or waiting for one: this member cannot lead.
  if (m.term < term_ || role_ == Role::kLeader || installing_ || state_lost_) return;
  if (quiesced_) wake();  // its timer must run while it campaigns
  if (m.term > term_) become_follower(m.term, std::nullopt);
  role_reason_ = "node " + std::to_string(from.value()) + " handed leadership over";
  // The leader brought us up to date and asked us to take over: campaign now,
  // without PreVote (the followers still hear from that leader and would refuse).
  become_candidate();
}

Status Raft::change_membership(NodeId node, bool add) {
  if (role_ != Role::kLeader) return Status::InvalidArgument("not the leader");
  if (quiesced_) wake();
  auto learner = progress_.find(node);
  if (learner != progress_.end() && !learner->second.learner) learner = progress_.end();
  if (!add && learner != progress_.end()) {
    progress_.erase(learner);
    return Status::OK();
  }
  if (add && learner != progress_.end()) {
    const LogIndex match = learner->second.match;
    if (match.value() + options_.learner_catch_up < log_.last_index().value()) {
      return Status::Busy("learner " + std::to_string(node.value()) + " holds " +
                          std::to_string(match.value()) + " of " +
                          std::to_string(log_.last_index().value()) + " entries: not caught up");
    }
  }
  if (in_config(node) == add) {
    return Status::InvalidArgument(add ? "already a member" : "not a member");
  }
  // The fix for single-server changes: until an entry of this term commits, a
  // change could be decided against a config an earlier leader was replacing.
  if (!committed_in_current_term()) return Status::Busy("no entry of this term committed yet");
  if (config_index_ > commit_) return Status::Busy("a membership change is in progress");
  if (transferee_) return Status::Busy("a leadership transfer is under way");
  std::vector<NodeId> next = config_;
  if (add) {
    next.push_back(node);
    std::sort(next.begin(), next.end());
  } else {
    std::erase(next, node);
  }
  append_as_leader(Entry{.term = term_, .kind = Entry::Kind::kConfig, .members = next});
  refresh_config();
  replicate();
  maybe_commit();  // a leader alone may commit it already
  return Status::OK();
}

Status Raft::add_learner(NodeId node) {
  if (role_ != Role::kLeader) return Status::InvalidArgument("not the leader");
  if (in_config(node) || node == members_.self) {
    return Status::InvalidArgument("already a member");
  }
  if (progress_.contains(node)) return Status::OK();
  if (quiesced_) wake();
  // A learner usually starts empty: send it everything (or the snapshot) at
  // once rather than probe back from our last index.
  progress_[node] = Progress{.next = LogIndex(1), .learner = true};
  send_append(node);
  return Status::OK();
}

std::map<NodeId, LogIndex> Raft::learner_match() const {
  std::map<NodeId, LogIndex> out;
  for (const auto& [peer, p] : progress_) {
    if (p.learner) out[peer] = p.match;
  }
  return out;
}

Status Raft::transfer_leadership(NodeId target) {
  if (role_ != Role::kLeader) return Status::InvalidArgument("not the leader");
  if (!progress_.contains(target) || progress_.at(target).learner) {
    return Status::InvalidArgument("not another member");
  }
  if (transferee_) return Status::Busy("a leadership transfer is under way");
  if (quiesced_) wake();
  transferee_ = target;
  transfer_deadline_ = env_.now() + options_.election_timeout;
  timeout_now_sent_ = false;
  send_append(target);
  maybe_send_timeout_now(target);
  return Status::OK();
}

void Raft::maybe_send_timeout_now(NodeId peer) {
  if (role_ != Role::kLeader || transferee_ != peer || timeout_now_sent_) return;
  if (progress_.at(peer).match != log_.last_index()) return;
  timeout_now_sent_ = true;
  env_.send(peer, TimeoutNow{.term = term_});
}

// ---------------------------------------------------------------- requests

void Raft::on_request(const ClientRequest& req) {
  on_requests(std::span<const ClientRequest>(&req, 1));
}

void Raft::on_requests(std::span<const ClientRequest> reqs) {
  if (reqs.empty()) return;
  if (role_ != Role::kLeader) {
    for (const ClientRequest& req : reqs) env_.reply(req.id, fail(leader_));
    return;
  }
  if (quiesced_) wake();
  if (transferee_) {
    // Nothing new goes into the log while the target catches up, or it would
    // never be up to date.
    for (const ClientRequest& req : reqs) env_.reply(req.id, fail(transferee_));
    return;
  }
  // The writes, in order, as one record: one sync covers them all, and
  // send_append ships them to each follower in as few AppendEntries as
  // max_batch allows.
  std::vector<Entry> entries;
  for (const ClientRequest& req : reqs) {
    if (req.op != ClientOp::kRead) {
      entries.push_back(Entry{.term = term_, .kind = Entry::Kind::kCommand, .command = req});
    }
  }
  if (!entries.empty()) {
    const LogIndex first = log_.last_index().next();
    persist_entries(first, entries);
    for (Entry& e : entries) {
      log_.append(std::move(e));
      pending_writes_[log_.last_index()] = log_.at(log_.last_index()).command.id;
    }
  }
  bool reads = false;
  for (const ClientRequest& req : reqs) {
    if (req.op != ClientOp::kRead) continue;
    // ReadIndex needs a commit index from this term: until our first entry
    // commits we do not know how far the committed log reaches.
    if (!committed_in_current_term()) {
      reads_before_first_commit_.push_back(req);
      continue;
    }
    // The read needs a round started after it arrived. Reads batch: while a
    // round is unconfirmed, new reads wait for the next one, which starts when
    // that round is confirmed (serve_reads) or on the next heartbeat.
    reads_.push_back(PendingRead{.req = req, .read_index = commit_, .round = round_ + 1});
    reads = true;
  }
  if (reads) {
    if (quorum_round() >= round_) broadcast_round();  // sends the new entries too
    serve_reads();
  }
  if (!entries.empty()) replicate();
}

// ---------------------------------------------------------------- timers

void Raft::on_timer(TimerId id) {
  if (id == election_timer_) {
    on_election_timer();
  } else if (heartbeat_timer_ && id == *heartbeat_timer_) {
    on_heartbeat_timer();
  }
}

Duration Raft::random_election_timeout() {
  const uint64_t base = static_cast<uint64_t>(options_.election_timeout.count());
  return Duration(static_cast<int64_t>(base + env_.random().uniform(base)));
}

void Raft::reset_election_deadline() {
  election_deadline_ = env_.now() + random_election_timeout();
}

void Raft::arm_election_timer(Duration delay) {
  election_timer_ = env_.set_timer(delay);
}

void Raft::on_election_timer() {
  if (quiesced_) return;  // the timer stops; wake() re-arms it
  if (role_ == Role::kLeader) {
    // CheckQuorum: a leader that cannot hear a majority steps down, so its
    // clients go elsewhere instead of waiting on a leader that cannot commit.
    size_t active = in_config(members_.self) ? 1 : 0;
    for (auto& [peer, p] : progress_) {
      active += p.active && !p.learner ? 1 : 0;
      // A snapshot read for a member that went quiet: let go of the state it
      // holds (a store view pins the engine's old versions); a new transfer
      // starts once the member answers again (send_append).
      if (!p.active && p.snapshot && p.snapshot->reader) {
        p.snapshot.reset();
        ++snapshot_stats_.transfers_dropped;
      }
      p.active = false;
    }
    if (transferee_ && env_.now() >= transfer_deadline_) transferee_.reset();  // abandoned
    if (options_.check_quorum && active < majority()) {
      role_reason_ = "heard from " + std::to_string(active) + " of " +
                     std::to_string(config_.size()) +
                     " members within the election timeout, not a majority";
      become_follower(term_, std::nullopt);
    }
    arm_election_timer(options_.election_timeout);
    return;
  }
  const Instant now = env_.now();
  if (now < election_deadline_) {
    arm_election_timer(election_deadline_ - now);
    return;
  }
  reset_election_deadline();
  arm_election_timer(election_deadline_ - now);
  if (!in_config(members_.self)) return;  // not a member (any more): never campaign
  // Restoring a snapshot: a member that led now would serve from a state
  // being replaced. It still votes; the others elect a leader meanwhile.
  if (installing_) return;
  if (state_lost_) {
    // Its machine lost its state: it never leads. Its pre-votes (which make
    // it no candidate) wake a quiesced group, whose leader then hears from
    // it that it needs a snapshot, and tell it the current term.
    if (options_.pre_vote) become_pre_candidate();
    return;
  }
  role_reason_ = leader_ ? "no message from leader " + std::to_string(leader_->value()) +
                               " within the election timeout"
                         : std::string("no leader heard within the election timeout");
  if (options_.pre_vote) {
    become_pre_candidate();
  } else {
    become_candidate();
  }
}

void Raft::on_heartbeat_timer() {
  heartbeat_timer_.reset();
  if (role_ != Role::kLeader) return;
  // Resend whatever has not been acknowledged since the last heartbeat: an
  // AppendEntries (or its reply) may have been lost.
  for (auto& [peer, p] : progress_) {
    if (!p.progressed && p.match < log_.last_index()) {
      p.next = p.match.next();
      p.inflight.clear();
      if (p.snapshot) p.snapshot->inflight = false;  // resend the chunk
    }
    p.progressed = false;
  }
  if (can_quiesce()) {
    // Tell every member, once: each has answered the last round holding the
    // whole log. Our timers stop here (CheckQuorum's drops when it fires).
    quiesced_ = true;
    broadcast_round(/*quiesce=*/true);
    return;
  }
  broadcast_round();
  heartbeat_timer_ = env_.set_timer(options_.heartbeat_interval);
}

bool Raft::can_quiesce() const {
  if (!options_.quiesce || role_ != Role::kLeader || quiesced_) return false;
  const LogIndex last = log_.last_index();
  if (!committed_in_current_term() || commit_ != last || applied_ != last) return false;
  if (in_config(members_.self) && durable_index_ < last) return false;
  if (!reads_.empty() || !reads_before_first_commit_.empty() || transferee_) return false;
  if (config_index_ > commit_ || progress_.empty()) return false;
  for (const auto& [peer, p] : progress_) {
    if (p.match != last || p.acked_round != round_ || !p.inflight.empty()) return false;
    if (p.needs_snapshot || p.snapshot) return false;
  }
  return true;
}

void Raft::on_peer_down(NodeId peer) {
  if (quiesced_ && role_ == Role::kFollower && leader_ == peer) wake();
}

void Raft::wake() {
  if (!quiesced_) return;
  quiesced_ = false;
  if (role_ == Role::kLeader) {
    for (auto& [peer, p] : progress_) p.active = false;  // CheckQuorum counts from now
    arm_election_timer(options_.election_timeout);       // CheckQuorum period
    if (!heartbeat_timer_) heartbeat_timer_ = env_.set_timer(options_.heartbeat_interval);
    return;
  }
  reset_election_deadline();
  arm_election_timer(election_deadline_ - env_.now());
}

// ---------------------------------------------------------------- persistence

void Raft::on_persisted(PersistToken token) {
  durable_token_ = std::max(durable_token_, token);
  while (!log_records_.empty() && log_records_.front().first <= token) {
    durable_index_ = log_records_.front().second;
    log_records_.pop_front();
  }
  while (!deferred_.empty() && deferred_.front().after <= token) {
    env_.send(deferred_.front().to, deferred_.front().msg);
    deferred_.pop_front();
  }
  maybe_win();
  if (role_ == Role::kLeader) maybe_commit();
}

void Raft::persist_hard_state() {
  last_token_ = env_.persist(encode_hard_state(HardState{term_, voted_for_}));
}

void Raft::persist_entries(LogIndex first, const std::vector<Entry>& entries) {
  // The new record replaces the log from `first`: an earlier record becoming
  // durable proves nothing about entries at or after `first` any more.
  forget_durability_from(first);
  last_token_ = env_.persist(encode_entries(first, entries));
  log_records_.emplace_back(last_token_, LogIndex(first.value() - 1 + entries.size()));
}

void Raft::forget_durability_from(LogIndex first) {
  const LogIndex kept(first.value() - 1);
  durable_index_ = std::min(durable_index_, kept);
  for (auto& rec : log_records_) rec.second = std::min(rec.second, kept);
}

void Raft::persist_checkpoint() {
  last_token_ = env_.persist_checkpoint(
      encode_checkpoint(HardState{term_, voted_for_}, log_, snapshot_config_, *snapshot_state_));
  log_records_.emplace_back(last_token_, log_.last_index());
}

LogIndex Raft::compaction_limit() const {
  LogIndex limit = applied_;
  if (role_ != Role::kLeader) return limit;
  for (const auto& [peer, p] : progress_) {
    if (p.snapshot) limit = std::min(limit, p.snapshot->snapshot.index);
  }
  // A follower that is only slower gets the entries it lacks, not a snapshot
  // of the whole state: the log keeps them while it answers (heard from
  // within an election timeout) and they hold at most snapshot_threshold_bytes.
  // One that went quiet, or fell further behind, gets a snapshot when back.
  const Instant now = env_.now();
  for (const auto& [peer, p] : progress_) {
    if (p.snapshot || p.match >= limit || p.match < log_.snapshot_index()) continue;
    if (p.last_heard == Instant{} || now - p.last_heard > options_.election_timeout) continue;
    if (options_.snapshot_threshold_bytes != 0 &&
        log_.bytes_between(p.match, applied_) > options_.snapshot_threshold_bytes) {
      continue;
    }
    limit = p.match;
  }
  return limit;
}

void Raft::compact(LogIndex index) {
  if (!options_.machine_keeps_state || installing_ || state_lost_) return;
  if (index <= log_.snapshot_index() || index > applied_) return;
  index = std::min(index, compaction_limit());
  if (index <= log_.snapshot_index()) return;
  snapshot_config_ = config_at(index);
  log_.compact_to(index);
  persist_checkpoint();
}

void Raft::maybe_snapshot() {
  if (options_.machine_keeps_state) return;  // the host calls compact()
  const bool many =
      applied_.value() - log_.snapshot_index().value() >= options_.snapshot_threshold;
  const bool large = options_.snapshot_threshold_bytes != 0 &&
                     log_.bytes_between(log_.snapshot_index(), applied_) >=
                         options_.snapshot_threshold_bytes;
  if (!many && !large) return;
  snapshot_state_ = std::make_shared<const std::string>(sm_.snapshot());
  snapshot_config_ = config_at(applied_);
  log_.compact_to(applied_);
  persist_checkpoint();
}

void Raft::send_durable(NodeId to, Message msg) {
  // A reply to the leader says how far this member has applied (LOCATE), and
  // whether its machine lost its state (it has applied nothing then).
  if (auto* reply = std::get_if<AppendReply>(&msg)) {
    reply->applied_index = state_lost_ ? LogIndex(0) : applied_;
    reply->needs_snapshot = state_lost_;
  }
  if (durable_token_ >= last_token_) {
    env_.send(to, msg);
  } else {
    deferred_.push_back(Deferred{last_token_, to, std::move(msg)});
  }
}

// ---------------------------------------------------------------- roles

void Raft::become_follower(Term term, std::optional<NodeId> leader) {
  if (quiesced_) {
    // Waking first re-arms the timers of the role we leave; a leader's are
    // replaced below.
    wake();
  }
  if (term > term_) {
    term_ = term;
    voted_for_ = NodeId(0);
    persist_hard_state();
    staging_.reset();  // the old leader's chunks
  }
  if (role_ == Role::kLeader) {
    fail_reads();
    progress_.clear();
    if (heartbeat_timer_) env_.cancel_timer(*heartbeat_timer_);
    heartbeat_timer_.reset();
    // The CheckQuorum timer ran on the leader's fixed period: restart it as an
    // election timer.
    env_.cancel_timer(election_timer_);
    reset_election_deadline();
    arm_election_timer(election_deadline_ - env_.now());
  }
  role_ = Role::kFollower;
  leader_ = leader;
  votes_.clear();
  transferee_.reset();
}

void Raft::become_pre_candidate() {
  role_ = Role::kPreCandidate;
  leader_.reset();
  votes_.clear();
  if (votes_from_members() >= majority()) {
    if (!state_lost_) become_candidate();
    return;
  }
  for (NodeId peer : peers()) {
    env_.send(peer, VoteRequest{.term = term_.next(),
                                .last_index = log_.last_index(),
                                .last_term = log_.last_term(),
                                .pre_vote = true});
  }
}

void Raft::become_candidate() {
  role_ = Role::kCandidate;
  leader_.reset();
  votes_.clear();
  term_ = term_.next();
  voted_for_ = members_.self;
  staging_.reset();
  persist_hard_state();
  vote_token_ = last_token_;
  reset_election_deadline();
  // Sent once our own vote is durable, so that by the time a majority answers
  // our self-vote counts: a candidate that crashed before its vote hit the disk
  // might otherwise vote for someone else in the same term after restarting.
  for (NodeId peer : peers()) {
    send_durable(
        peer,
        VoteRequest{.term = term_, .last_index = log_.last_index(), .last_term = log_.last_term()});
  }
  maybe_win();
}

void Raft::maybe_win() {
  if (role_ != Role::kCandidate || durable_token_ < vote_token_) return;
  if (votes_from_members() >= majority()) become_leader();
}

void Raft::become_leader() {
  role_reason_ += "; won term " + std::to_string(term_.value()) + " with " +
                  std::to_string(votes_from_members()) + " of " + std::to_string(config_.size()) +
                  " votes";
  role_ = Role::kLeader;
  leader_ = members_.self;
  votes_.clear();
  round_ = 0;
  transferee_.reset();
  progress_.clear();
  for (NodeId peer : peers()) {
    progress_[peer] = Progress{.next = log_.last_index().next()};
  }
  env_.cancel_timer(election_timer_);
  arm_election_timer(options_.election_timeout);  // CheckQuorum period
  heartbeat_timer_ = env_.set_timer(options_.heartbeat_interval);
  // A no-op of our own term: committing it commits every earlier entry (§5.4.2)
  // and gives ReadIndex a commit index from this term.
  append_as_leader(Entry{.term = term_, .kind = Entry::Kind::kNoop});
  for (NodeId peer : peers()) send_append(peer);
  maybe_commit();
}

// ---------------------------------------------------------------- leader

void Raft::append_as_leader(Entry e) {
  const LogIndex at = log_.last_index().next();
  persist_entries(at, {e});
  log_.append(std::move(e));
}

void Raft::replicate() {
  for (auto& [peer, p] : progress_) send_append(peer);
}

void Raft::send_append(NodeId peer) {
  Progress& p = progress_.at(peer);
  if (!p.snapshot && (p.needs_snapshot || p.next <= log_.snapshot_index())) {
    // What it needs was compacted away: send the snapshot, a chunk at a time,
    // and nothing else until it is installed (a reordered AppendEntries would
    // only bounce back). The transfer keeps this snapshot even if we take a
    // newer one meanwhile, so that it finishes.
    if (options_.machine_keeps_state) {
      // The log keeps no copy of the state: take the machine's as it is now,
      // read a piece at a time where the machine can; only for a member heard
      // from since the last CheckQuorum check (one that does not answer would
      // hold the state for nothing).
      if (!p.active) return;
      // Nor while the machine's kept state is ahead of the applied index (a
      // leader just restarted from it): its state would go out labelled with
      // an older index. Applying the committed entries up to it comes soon.
      if (sm_.kept_index() > applied_) return;
      p.snapshot = SnapshotSend{.snapshot = Snapshot{.index = applied_,
                                                     .term = log_.term_at(applied_),
                                                     .config = config_at(applied_)}};
      p.snapshot->reader = sm_.open_snapshot();
      if (p.snapshot->reader) ++snapshot_stats_.transfers_read;
      if (!p.snapshot->reader) {
        p.snapshot->snapshot.state = std::make_shared<const std::string>(sm_.snapshot());
      }
    } else {
      p.snapshot = SnapshotSend{.snapshot = Snapshot{.index = log_.snapshot_index(),
                                                     .term = log_.snapshot_term(),
                                                     .config = snapshot_config_,
                                                     .state = snapshot_state_}};
    }
    p.inflight.clear();
  }
  if (p.snapshot) {
    if (!p.snapshot->inflight) send_snapshot_chunk(peer, *p.snapshot);
    return;
  }
  while (p.inflight.size() < options_.max_inflight && p.next <= log_.last_index()) {
    const LogIndex prev(p.next.value() - 1);
    AppendEntries m{.term = term_,
                    .prev_index = prev,
                    .prev_term = log_.term_at(prev),
                    .leader_commit = commit_,
                    .round = round_,
                    .entries = log_.slice(p.next, options_.max_batch)};
    p.next = LogIndex(p.next.value() + m.entries.size());
    p.inflight.push_back(LogIndex(p.next.value() - 1));
    env_.send(peer, std::move(m));
  }
}

void Raft::send_snapshot_chunk(NodeId peer, SnapshotSend& s) {
  if (s.reader) return send_read_snapshot_chunk(peer, s);
  const std::string& state = *s.snapshot.state;
  const uint64_t offset = std::min<uint64_t>(s.offset, state.size());
  const uint64_t len =
      std::min<uint64_t>(std::max<size_t>(options_.snapshot_chunk_bytes, 1), state.size() - offset);
  env_.send(peer, InstallSnapshot{.term = term_,
                                  .last_index = s.snapshot.index,
                                  .last_term = s.snapshot.term,
                                  .round = round_,
                                  .config = s.snapshot.config,
                                  .state = state.substr(offset, len),
                                  .offset = offset,
                                  .total = state.size()});
  s.inflight = true;
  ++snapshot_stats_.chunks_sent;
}

void Raft::resume_snapshot_sends() {
  if (role_ != Role::kLeader) return;
  for (auto& [peer, p] : progress_) {  // learners too
    if (p.snapshot && !p.snapshot->inflight) send_snapshot_chunk(peer, *p.snapshot);
  }
}

void Raft::send_read_snapshot_chunk(NodeId peer, SnapshotSend& s) {
  const size_t chunk = std::max<size_t>(options_.snapshot_chunk_bytes, 1);
  // What the follower acknowledged is never asked again (an older offset
  // restarts the transfer: handle(InstallSnapshotReply)).
  const uint64_t drop = std::min<uint64_t>(s.offset - s.buffer_start, s.buffer.size());
  s.buffer.erase(0, drop);
  s.buffer_start += drop;
  // Nothing held and nothing read yet (a reader on another thread still
  // reading, or waiting its turn behind other transfers): this member's
  // thread does not wait for it. The next heartbeat, or the host once the
  // reader has bytes (resume_snapshot_sends), tries again.
  if (s.buffer.empty() && !s.ended && !s.reader->ready()) {
    ++snapshot_stats_.sends_deferred;
    return;
  }
  // Read a chunk and a byte ahead: whether this chunk is the last one. A
  // reader that would wait (it reads ahead on a thread of its own) is not
  // waited for while some bytes are here: they go as a shorter chunk, and a
  // transfer whose last bytes went so ends with an empty chunk.
  while (!s.ended && s.buffer.size() <= chunk) {
    if (!s.buffer.empty() && !s.reader->ready()) break;
    auto piece = s.reader->next(chunk);
    if (!piece.ok()) {
      // The machine could not read its state: try again with a new transfer
      // at the next heartbeat.
      ++snapshot_stats_.reads_failed;
      progress_.at(peer).snapshot.reset();
      return;
    }
    if (piece->empty()) {
      s.ended = true;
    } else {
      s.buffer += *piece;
    }
  }
  const size_t len = std::min(chunk, s.buffer.size());
  const bool last = s.ended && len == s.buffer.size();
  env_.send(peer, InstallSnapshot{.term = term_,
                                  .last_index = s.snapshot.index,
                                  .last_term = s.snapshot.term,
                                  .round = round_,
                                  .config = s.snapshot.config,
                                  .state = s.buffer.substr(0, len),
                                  .offset = s.offset,
                                  .total = last ? s.offset + len : InstallSnapshot::kUnknownTotal});
  s.inflight = true;
  ++snapshot_stats_.chunks_sent;
}

void Raft::broadcast_round(bool quiesce) {
  ++round_;
  for (auto& [peer, p] : progress_) {
    // A heartbeat checks only what the follower is known to hold, so it always
    // succeeds there; it carries the round and the commit index. Below our
    // snapshot point we no longer know the term: check against index 0.
    const LogIndex prev = p.match >= log_.snapshot_index() ? p.match : LogIndex(0);
    env_.send(peer, AppendEntries{.term = term_,
                                  .prev_index = prev,
                                  .prev_term = log_.term_at(prev),
                                  .leader_commit = std::min(commit_, prev),
                                  .round = round_,
                                  .quiesce = quiesce});
    send_append(peer);
  }
}

void Raft::maybe_commit() {
  if (role_ != Role::kLeader) return;
  // progress_ holds exactly the other members; a leader that removed itself
  // does not count its own log.
  std::vector<LogIndex> matches;
  if (in_config(members_.self)) matches.push_back(durable_index_);
  for (const auto& [peer, p] : progress_) {
    if (!p.learner) matches.push_back(p.match);
  }
  std::sort(matches.begin(), matches.end(), std::greater<>());
  if (matches.size() < majority()) return;
  const LogIndex majority_match = matches[majority() - 1];
  // Only an entry of the current term is committed by counting (§5.4.2).
  if (majority_match > commit_ && log_.term_at(majority_match) == term_) {
    const bool first_commit = !committed_in_current_term();
    commit_ = majority_match;
    apply_committed();
    if (!in_config(members_.self) && config_index_ <= commit_) {
      // Our own removal committed: the remaining members elect a leader.
      role_reason_ = "removed from the group";
      become_follower(term_, std::nullopt);
      return;
    }
    if (first_commit && role_ == Role::kLeader) {
      std::vector<ClientRequest> waiting = std::move(reads_before_first_commit_);
      reads_before_first_commit_.clear();
      if (!waiting.empty()) {
        for (ClientRequest& r : waiting) {
          reads_.push_back(
              PendingRead{.req = std::move(r), .read_index = commit_, .round = round_ + 1});
        }
        broadcast_round();
      }
    }
  }
  serve_reads();
}

uint64_t Raft::quorum_round() const {
  std::vector<uint64_t> rounds;
  if (in_config(members_.self)) rounds.push_back(round_);  // we confirm our own rounds
  for (const auto& [peer, p] : progress_) {
    if (!p.learner) rounds.push_back(p.acked_round);
  }
  std::sort(rounds.begin(), rounds.end(), std::greater<>());
  return rounds.size() < majority() ? 0 : rounds[majority() - 1];
}

std::map<NodeId, LogIndex> Raft::follower_match() const {
  std::map<NodeId, LogIndex> out;
  if (role_ != Role::kLeader) return out;
  for (const auto& [peer, progress] : progress_) {
    if (!progress.learner) out[peer] = progress.match;
  }
  return out;
}

std::map<NodeId, LogIndex> Raft::follower_applied() const {
  std::map<NodeId, LogIndex> out;
  if (role_ != Role::kLeader) return out;
  for (const auto& [peer, progress] : progress_) out[peer] = progress.applied;
  return out;
}

void Raft::serve_reads() {
  if (role_ != Role::kLeader || reads_.empty()) return;
  const uint64_t confirmed = quorum_round();
  // Reads are queued in round order; read indexes never decrease along the queue.
  while (!reads_.empty() && reads_.front().round <= confirmed &&
         reads_.front().read_index <= applied_) {
    const PendingRead& r = reads_.front();
    env_.reply(r.req.id, sm_.read(r.req));
    reads_.pop_front();
  }
  // Reads that arrived while the last round was in flight start the next one.
  if (!reads_.empty() && reads_.back().round > round_ && quorum_round() >= round_) {
    broadcast_round();
  }
}

void Raft::fail_reads() {
  // A read has no effect, so failing it is always truthful.
  for (const ClientRequest& r : reads_before_first_commit_) env_.reply(r.id, fail());
  for (const PendingRead& r : reads_) env_.reply(r.req.id, fail());
  reads_before_first_commit_.clear();
  reads_.clear();
}

// ---------------------------------------------------------------- all roles

void Raft::apply_committed() {
  SKV_ASSERT(commit_ <= log_.last_index(), "commit index beyond the log");
  if (state_lost_) return;  // nothing to apply to until a snapshot is installed
  while (applied_ < commit_) {
    applied_ = applied_.next();
    const Entry& e = log_.at(applied_);
    const bool command = e.kind == Entry::Kind::kCommand;
    std::optional<ClientResponse> response;
    if (command) response = sm_.apply(e.command);
    auto it = pending_writes_.find(applied_);
    if (it == pending_writes_.end()) continue;
    // Ours, or another leader's entry committed where ours was: then ours can
    // never commit (an index holds one entry, and ours was proposed only
    // there), and its client may retry at once rather than time out. (A
    // replaced entry alone proves nothing: a later leader may still hold and
    // commit it.)
    if (command && e.command.id == it->second) {
      env_.reply(it->second, std::move(*response));
    } else {
      env_.reply(it->second, fail(leader_));
    }
    pending_writes_.erase(it);
  }
  maybe_snapshot();
}

bool Raft::recently_heard_from_leader() const {
  if (quiesced_ && role_ == Role::kFollower) return true;  // the host vouches for the leader
  return leader_.has_value() && env_.now() - last_heard_leader_ < options_.election_timeout;
}

std::vector<NodeId> Raft::peers() const {
  std::vector<NodeId> out;
  for (NodeId n : config_) {
    if (n != members_.self) out.push_back(n);
  }
  return out;
}

bool Raft::in_config(NodeId n) const {
  return std::find(config_.begin(), config_.end(), n) != config_.end();
}

std::vector<NodeId> Raft::config_at(LogIndex i) const {
  for (uint64_t k = i.value(); k > log_.snapshot_index().value(); --k) {
    const Entry& e = log_.at(LogIndex(k));
    if (e.kind == Entry::Kind::kConfig) return e.members;
  }
  return snapshot_config_;
}

void Raft::refresh_config(LogIndex changed_from) {
  const uint64_t snapshot = log_.snapshot_index().value();
  if (changed_from.value() > snapshot && changed_from > config_index_) {
    // Entries before changed_from are as they were, and the config in effect
    // came from one of them (or the snapshot): only the changed suffix can
    // hold a newer one. (A full scan on every append made a follower's
    // appends cost the length of its log.)
    for (uint64_t k = log_.last_index().value(); k >= changed_from.value(); --k) {
      const Entry& e = log_.at(LogIndex(k));
      if (e.kind == Entry::Kind::kConfig) {
        config_index_ = LogIndex(k);
        config_ = e.members;
        break;
      }
    }
  } else {
    config_index_ = LogIndex(0);
    for (uint64_t k = log_.last_index().value(); k > snapshot; --k) {
      if (log_.at(LogIndex(k)).kind == Entry::Kind::kConfig) {
        config_index_ = LogIndex(k);
        break;
      }
    }
    config_ = config_at(log_.last_index());
  }
  if (role_ != Role::kLeader) return;
  for (NodeId peer : peers()) {
    auto [it, added] = progress_.try_emplace(peer, Progress{.next = log_.last_index().next()});
    // A learner in the config is promoted: it keeps its progress.
    if (!added) it->second.learner = false;
  }
  // Members removed go; learners stay until promoted or dropped.
  std::erase_if(progress_,
                [&](const auto& kv) { return !kv.second.learner && !in_config(kv.first); });
  if (transferee_ && !progress_.contains(*transferee_)) transferee_.reset();
}

size_t Raft::votes_from_members() const {
  size_t n = in_config(members_.self) ? 1 : 0;
  for (NodeId v : votes_) n += in_config(v) && v != members_.self ? 1 : 0;
  return n;
}

}  // namespace statekv::replication::raft
