// Raft driven by hand, one node at a time, through a recording Env: each test
// proves one property of the protocol (named after it), down to which message
// may leave before which record is durable.
#include "replication/raft/raft.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <vector>

#include "replication/raft/kv_state_machine.h"
#include "replication/raft/records.h"

namespace statekv::replication::raft {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Records everything a node does; time moves only through advance().
class FakeEnv final : public Env<Message> {
 public:
  void send(NodeId to, const Message& msg) override { sent.emplace_back(to, msg); }
  void reply(RequestId request, ClientResponse response) override {
    replies.emplace_back(request, std::move(response));
  }
  TimerId set_timer(Duration delay) override {
    timers[next_timer] = clock + delay;
    return TimerId(next_timer++);
  }
  void cancel_timer(TimerId id) override { timers.erase(id.value()); }
  Instant now() const override { return clock; }
  PersistToken persist(std::string record) override {
    records.push_back(std::move(record));
    return PersistToken(records.size());
  }
  Random& random() override { return rng; }

  // Fires every timer due within `d`, in deadline order.
  void advance(Raft& raft, Duration d) {
    const Instant until = clock + d;
    while (true) {
      auto due = timers.end();
      for (auto it = timers.begin(); it != timers.end(); ++it) {
        if (it->second <= until && (due == timers.end() || it->second < due->second)) due = it;
      }
      if (due == timers.end()) break;
      clock = due->second;
      const TimerId id(due->first);
      timers.erase(due);
      raft.on_timer(id);
    }
    clock = until;
  }
  // Makes every record so far durable.
  void sync(Raft& raft) { raft.on_persisted(PersistToken(records.size())); }

  // Removes and returns the messages of type T sent so far.
  template <typename T>
  std::vector<std::pair<NodeId, T>> take() {
    std::vector<std::pair<NodeId, T>> out;
    std::vector<std::pair<NodeId, Message>> rest;
    for (auto& [to, m] : sent) {
      if (const T* t = std::get_if<T>(&m)) {
        out.emplace_back(to, *t);
      } else {
        rest.emplace_back(to, std::move(m));
      }
    }
    sent = std::move(rest);
    return out;
  }

  std::vector<std::pair<NodeId, Message>> sent;
  std::vector<std::pair<RequestId, ClientResponse>> replies;
  std::vector<std::string> records;
  std::map<uint64_t, Instant> timers;
  Instant clock{0};
  Random rng{42};
  uint64_t next_timer = 1;
};

Membership three(uint64_t self) {
  return Membership{NodeId(self), {NodeId(1), NodeId(2), NodeId(3)}};
}

ClientRequest request(uint64_t id, ClientOp op, std::string key,
                      std::optional<std::string> value = std::nullopt) {
  ClientRequest r;
  r.id = RequestId(id);
  r.op = op;
  r.key = std::move(key);
  r.value = std::move(value);
  return r;
}

Entry cmd(uint64_t term, uint64_t id, std::string key, std::string value) {
  return Entry{.term = Term(term),
               .kind = Entry::Kind::kCommand,
               .command = request(id, ClientOp::kWrite, std::move(key), std::move(value))};
}
Entry noop(uint64_t term) {
  return Entry{.term = Term(term), .kind = Entry::Kind::kNoop};
}

const Duration kLongerThanAnyElectionTimeout = milliseconds(310);

TEST(RaftRecords, RestartReplaysRecordsAndOverwritesTheTruncatedSuffix) {
  const std::vector<std::string> records = {
      encode_hard_state({Term(1), NodeId(2)}),
      encode_entries(LogIndex(1), {noop(1), cmd(1, 7, "a", "x"), cmd(1, 8, "b", "y")}),
      encode_hard_state({Term(2), NodeId(0)}),
      encode_entries(LogIndex(2), {cmd(2, 9, "a", "z")}),  // replaces 2 and 3
  };
  FakeEnv env;
  RaftKv r(env, three(1), records);
  EXPECT_EQ(r.term(), Term(2));
  EXPECT_EQ(r.log().last_index(), LogIndex(2));
  EXPECT_EQ(r.log().at(LogIndex(2)), cmd(2, 9, "a", "z"));
  EXPECT_EQ(r.commit_index(), LogIndex(0)) << "commit is learned again, never assumed";
  EXPECT_TRUE(env.records.empty()) << "recovery writes nothing";
}

TEST(RaftRecords, ARecordThatWouldLeaveAGapIsCorruption) {
  Result<RecoveredState> s = recover({encode_entries(LogIndex(3), {noop(1)})});
  EXPECT_TRUE(s.status().is_corruption());
  Result<RecoveredState> garbage = recover({std::string("\x07", 1)});
  EXPECT_TRUE(garbage.status().is_corruption());
}

TEST(RaftMessages, EveryMessageRoundTripsThroughTheCodec) {
  AppendEntries ae{.term = Term(3),
                   .prev_index = LogIndex(9),
                   .prev_term = Term(2),
                   .leader_commit = LogIndex(8),
                   .round = 77,
                   .entries = {noop(3), cmd(3, 5, "k", "v")},
                   .quiesce = true};
  ae.entries[1].command.op = ClientOp::kCas;
  ae.entries[1].command.expected = std::nullopt;
  const std::string bytes = encode_message(Message(ae));
  Result<Message> back = decode_message<Message>(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(encode_message(*back), bytes);
  EXPECT_EQ(std::get<AppendEntries>(*back).entries, ae.entries);
  EXPECT_TRUE(std::get<AppendEntries>(*back).quiesce);
  // Truncations of a valid message never decode into something else silently.
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(decode_message<Message>(bytes.substr(0, n)).ok()) << n;
  }
}

TEST(RaftVote, AVoteIsSentOnlyOnceItIsDurable) {
  FakeEnv env;
  RaftKv r(env, three(2), {});
  r.on_message(NodeId(1),
               VoteRequest{.term = Term(1), .last_index = LogIndex(0), .last_term = Term(0)});
  EXPECT_TRUE(env.take<VoteReply>().empty()) << "the vote left before it was on disk";
  ASSERT_FALSE(env.records.empty());
  env.sync(r);
  auto replies = env.take<VoteReply>();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(replies[0].second.granted);
  EXPECT_EQ(replies[0].first, NodeId(1));
}

TEST(RaftVote, ANodeVotesOncePerTermAndSurvivesRestartWithThatVote) {
  FakeEnv env;
  auto r = std::make_unique<RaftKv>(env, three(2), std::vector<std::string>{});
  r->on_message(NodeId(1),
                VoteRequest{.term = Term(4), .last_index = LogIndex(0), .last_term = Term(0)});
  env.sync(*r);
  env.take<VoteReply>();
  // Crash and restart from what is on disk: the vote for 1 in term 4 holds.
  FakeEnv env2;
  r = std::make_unique<RaftKv>(env2, three(2), env.records);
  r->on_message(NodeId(3),
                VoteRequest{.term = Term(4), .last_index = LogIndex(5), .last_term = Term(3)});
  auto replies = env2.take<VoteReply>();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_FALSE(replies[0].second.granted);
}

TEST(RaftVote, NoVoteForACandidateWithALessUpToDateLog) {
  FakeEnv env;
  RaftKv r(env, three(2), {encode_entries(LogIndex(1), {noop(1), noop(2)})});
  r.on_message(NodeId(1),
               VoteRequest{.term = Term(5), .last_index = LogIndex(9), .last_term = Term(1)});
  env.sync(r);
  auto replies = env.take<VoteReply>();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_FALSE(replies[0].second.granted);
  EXPECT_EQ(r.term(), Term(5)) << "a higher term is adopted even when the vote is refused";
}

TEST(RaftVote, PreVoteAsksWithoutBumpingAnyTerm) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  env.advance(r, kLongerThanAnyElectionTimeout);
  EXPECT_EQ(r.role(), Raft::Role::kPreCandidate);
  EXPECT_EQ(r.term(), Term(0));
  EXPECT_TRUE(env.records.empty());
  auto asks = env.take<VoteRequest>();
  ASSERT_EQ(asks.size(), 2u);
  EXPECT_TRUE(asks[0].second.pre_vote);
  EXPECT_EQ(asks[0].second.term, Term(1));
  // A node that hears from a live leader refuses a PreVote.
  FakeEnv env2;
  RaftKv follower(env2, three(2), {});
  follower.on_message(NodeId(3), AppendEntries{.term = Term(1)});
  follower.on_message(NodeId(1), VoteRequest{.term = Term(2), .pre_vote = true});
  auto refused = env2.take<VoteReply>();
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_FALSE(refused[0].second.granted);
  EXPECT_EQ(follower.term(), Term(1));
}

// Brings node 1 of three to leadership in term 1, all of its records durable.
void elect(FakeEnv& env, Raft& r) {
  env.advance(r, kLongerThanAnyElectionTimeout);
  r.on_message(NodeId(2), VoteReply{.term = Term(1), .granted = true, .pre_vote = true});
  ASSERT_EQ(r.role(), Raft::Role::kCandidate);
  EXPECT_TRUE(env.take<VoteRequest>().size() == 2u) << "pre-votes only so far";
  env.sync(r);  // our own vote is durable: the RequestVotes leave now
  EXPECT_EQ(env.take<VoteRequest>().size(), 2u);
  r.on_message(NodeId(3), VoteReply{.term = Term(1), .granted = true});
  ASSERT_EQ(r.role(), Raft::Role::kLeader);
  env.sync(r);
}

TEST(RaftVote, ACandidateCountsItsOwnVoteOnlyOnceDurable) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  env.advance(r, kLongerThanAnyElectionTimeout);
  env.take<VoteRequest>();
  r.on_message(NodeId(2), VoteReply{.term = Term(1), .granted = true, .pre_vote = true});
  ASSERT_EQ(r.role(), Raft::Role::kCandidate);
  EXPECT_TRUE(env.take<VoteRequest>().empty()) << "asked for votes before our own was durable";
  env.sync(r);
  EXPECT_EQ(env.take<VoteRequest>().size(), 2u);
}

TEST(RaftAppend, AnAcknowledgementWaitsForTheEntriesToBeDurable) {
  FakeEnv env;
  RaftKv r(env, three(2), {});
  r.on_message(NodeId(1), AppendEntries{.term = Term(1),
                                        .leader_commit = LogIndex(0),
                                        .entries = {noop(1), cmd(1, 3, "k", "v")}});
  EXPECT_TRUE(env.take<AppendReply>().empty()) << "acknowledged entries not yet on disk";
  env.sync(r);
  auto acks = env.take<AppendReply>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_TRUE(acks[0].second.success);
  EXPECT_EQ(acks[0].second.match_index, LogIndex(2));
}

TEST(RaftAppend, AConflictingSuffixIsReplacedDurablyAndTheRejectCarriesAHint) {
  FakeEnv env;
  RaftKv r(env, three(2),
           {encode_entries(LogIndex(1), {noop(1), cmd(1, 5, "a", "1"), cmd(1, 6, "a", "2")})});
  // The leader of term 3 thinks index 3 has term 2: we hold term 1 from index 1.
  r.on_message(NodeId(1),
               AppendEntries{.term = Term(3), .prev_index = LogIndex(3), .prev_term = Term(2)});
  auto rejects = env.take<AppendReply>();
  ASSERT_EQ(rejects.size(), 1u);
  EXPECT_FALSE(rejects[0].second.success);
  EXPECT_EQ(rejects[0].second.conflict_term, Term(1));
  EXPECT_EQ(rejects[0].second.conflict_index, LogIndex(1));
  // The leader resumes after index 1; its entry 2 replaces our 2 and 3.
  r.on_message(
      NodeId(1),
      AppendEntries{
          .term = Term(3), .prev_index = LogIndex(1), .prev_term = Term(1), .entries = {noop(3)}});
  EXPECT_EQ(r.log().last_index(), LogIndex(2));
  EXPECT_EQ(r.log().term_at(LogIndex(2)), Term(3));
  // What is on disk now (the recovered record, then the new ones) replays to
  // the same log.
  std::vector<std::string> all = {
      encode_entries(LogIndex(1), {noop(1), cmd(1, 5, "a", "1"), cmd(1, 6, "a", "2")})};
  all.insert(all.end(), env.records.begin(), env.records.end());
  Result<RecoveredState> replay = recover(all);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->log.last_index(), LogIndex(2));
  EXPECT_EQ(replay->log.term_at(LogIndex(2)), Term(3));
}

TEST(RaftAppend, ADuplicateOldMessageDoesNotTruncateNewerEntries) {
  FakeEnv env;
  RaftKv r(env, three(2), {});
  AppendEntries first{.term = Term(1), .entries = {noop(1)}};
  AppendEntries second{.term = Term(1),
                       .prev_index = LogIndex(1),
                       .prev_term = Term(1),
                       .entries = {cmd(1, 4, "k", "v")}};
  r.on_message(NodeId(1), first);
  r.on_message(NodeId(1), second);
  r.on_message(NodeId(1), first);  // a duplicate arriving late
  EXPECT_EQ(r.log().last_index(), LogIndex(2));
}

TEST(RaftClient, AFollowerRejectsWithTheLeaderAsHint) {
  FakeEnv env;
  RaftKv r(env, three(2), {});
  r.on_message(NodeId(3), AppendEntries{.term = Term(1)});
  r.on_request(request(1, ClientOp::kWrite, "k", "v"));
  ASSERT_EQ(env.replies.size(), 1u);
  EXPECT_EQ(env.replies[0].second.outcome, ClientResponse::Outcome::kFail);
  EXPECT_EQ(env.replies[0].second.leader_hint, NodeId(3));
}

TEST(RaftLeader, AWriteIsAnsweredOnlyOnceAMajorityHoldsItDurably) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  env.sent.clear();
  r.on_request(request(9, ClientOp::kWrite, "k", "v"));
  env.sync(r);
  auto appends = env.take<AppendEntries>();
  ASSERT_FALSE(appends.empty());
  EXPECT_TRUE(env.replies.empty()) << "answered with only the leader's copy";
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(2)});
  ASSERT_EQ(env.replies.size(), 1u);
  EXPECT_EQ(env.replies[0].first, RequestId(9));
  EXPECT_EQ(env.replies[0].second.outcome, ClientResponse::Outcome::kOk);
  EXPECT_EQ(r.commit_index(), LogIndex(2));
}

TEST(RaftLeader, ManyWritesArePipelinedAndBatched) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  for (uint64_t i = 0; i < 300; ++i) {
    r.on_request(request(100 + i, ClientOp::kWrite, "k", "v" + std::to_string(i)));
  }
  // The window to node 2 (the no-op, then writes) is full and nothing is
  // acknowledged yet.
  size_t to_2 = 0;
  for (auto& [to, m] : env.take<AppendEntries>()) to_2 += to == NodeId(2) && !m.entries.empty();
  EXPECT_EQ(to_2, RaftOptions{}.max_inflight);
  // One acknowledgement opens the window: the backlog leaves in batches.
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(2)});
  auto more = env.take<AppendEntries>();
  ASSERT_FALSE(more.empty());
  EXPECT_GT(more.back().second.entries.size(), 1u) << "entries were not batched";
}

TEST(RaftLeader, ARejectBacksOffPastTheFollowersConflictingTerm) {
  FakeEnv env;
  RaftKv r(env, three(1), {encode_entries(LogIndex(1), {noop(1), noop(1), noop(1)})});
  env.advance(r, kLongerThanAnyElectionTimeout);
  r.on_message(NodeId(2), VoteReply{.term = Term(1), .granted = true, .pre_vote = true});
  env.sync(r);
  r.on_message(NodeId(2), VoteReply{.term = Term(1), .granted = true});
  ASSERT_EQ(r.role(), Raft::Role::kLeader);
  env.sent.clear();
  // Node 3 holds only index 1 (its log is too short), so it asks for index 2.
  r.on_message(NodeId(3),
               AppendReply{.term = Term(1), .success = false, .conflict_index = LogIndex(2)});
  auto resent = env.take<AppendEntries>();
  ASSERT_FALSE(resent.empty());
  EXPECT_EQ(resent.front().first, NodeId(3));
  EXPECT_EQ(resent.front().second.prev_index, LogIndex(1));
  EXPECT_EQ(resent.front().second.entries.size(), 3u);  // 2, 3 and the leader's no-op
}

TEST(RaftRead, ALeaderAnswersAReadOnlyAfterAMajorityConfirmsItLeads) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(1)});
  ASSERT_EQ(r.commit_index(), LogIndex(1));
  env.sent.clear();
  r.on_request(request(5, ClientOp::kRead, "k"));
  EXPECT_TRUE(env.replies.empty()) << "served a read without confirming leadership";
  auto round = env.take<AppendEntries>();
  ASSERT_FALSE(round.empty());
  const uint64_t n = round.front().second.round;
  // An echo of an older round proves nothing.
  r.on_message(NodeId(3), AppendReply{.term = Term(1), .success = true, .round = n - 1});
  EXPECT_TRUE(env.replies.empty());
  r.on_message(NodeId(3), AppendReply{.term = Term(1), .success = true, .round = n});
  ASSERT_EQ(env.replies.size(), 1u);
  EXPECT_EQ(env.replies[0].second.outcome, ClientResponse::Outcome::kOk);
  EXPECT_EQ(env.replies[0].second.value, std::nullopt);
}

TEST(RaftCheckQuorum, ALeaderCutOffFromItsFollowersStepsDown) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  // Nobody answers for two election timeouts.
  env.advance(r, milliseconds(2 * 150 + 10));
  EXPECT_EQ(r.role(), Raft::Role::kFollower);
  EXPECT_EQ(r.term(), Term(1)) << "stepping down does not start an election by itself";
}

TEST(RaftCheckQuorum, ALeaderThatHearsAMajorityStays) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  for (int i = 0; i < 20; ++i) {
    env.advance(r, milliseconds(20));
    r.on_message(NodeId(2), AppendReply{.term = Term(1), .success = true});
  }
  EXPECT_EQ(r.role(), Raft::Role::kLeader);
}

TEST(RaftElection, ASingleNodeElectsItselfOnceDurableAndCommitsAlone) {
  FakeEnv env;
  RaftKv r(env, Membership{NodeId(1), {NodeId(1)}}, {});
  env.advance(r, kLongerThanAnyElectionTimeout);
  EXPECT_EQ(r.role(), Raft::Role::kCandidate) << "must not lead before its vote is durable";
  env.sync(r);
  ASSERT_EQ(r.role(), Raft::Role::kLeader);
  r.on_request(request(1, ClientOp::kWrite, "k", "v"));
  EXPECT_TRUE(env.replies.empty());
  env.sync(r);
  ASSERT_EQ(env.replies.size(), 1u);
  r.on_request(request(2, ClientOp::kRead, "k"));
  ASSERT_EQ(env.replies.size(), 2u);
  EXPECT_EQ(env.replies[1].second.value, "v");
}

TEST(RaftElection, AHigherTermDeposesALeaderAndItsPendingReadsFail) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(1)});
  r.on_request(request(5, ClientOp::kRead, "k"));
  r.on_message(NodeId(3), AppendEntries{.term = Term(2)});
  EXPECT_EQ(r.role(), Raft::Role::kFollower);
  EXPECT_EQ(r.leader(), NodeId(3));
  ASSERT_EQ(env.replies.size(), 1u);
  EXPECT_EQ(env.replies[0].second.outcome, ClientResponse::Outcome::kFail);
}

TEST(RaftElection, ADeposedLeadersWriteFailsOnceAnotherEntryCommitsAtItsIndex) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(1)});
  r.on_request(request(7, ClientOp::kWrite, "k", "mine"));  // index 2, never replicated
  r.on_request(request(8, ClientOp::kWrite, "k", "also"));  // index 3
  env.sync(r);
  // Node 3 won term 2 without our entries: we are deposed, they still wait...
  r.on_message(NodeId(3), AppendEntries{.term = Term(2)});
  EXPECT_EQ(r.role(), Raft::Role::kFollower);
  // ...even once its entry replaces ours: a later leader may still hold ours
  // (node 2, say) and commit it...
  r.on_message(
      NodeId(3),
      AppendEntries{
          .term = Term(2), .prev_index = LogIndex(1), .prev_term = Term(1), .entries = {noop(2)}});
  EXPECT_TRUE(env.replies.empty()) << "a replaced entry may still commit elsewhere";
  // ...until another entry commits at their index: then they never can, and
  // their clients learn it at once (not after their timeout).
  r.on_message(NodeId(3), AppendEntries{.term = Term(2),
                                        .prev_index = LogIndex(2),
                                        .prev_term = Term(2),
                                        .leader_commit = LogIndex(3),
                                        .entries = {cmd(2, 40, "k", "theirs")}});
  ASSERT_EQ(env.replies.size(), 2u);
  for (const auto& [id, response] : env.replies) {
    EXPECT_EQ(response.outcome, ClientResponse::Outcome::kFail);
    EXPECT_EQ(response.leader_hint, NodeId(3));
  }
}

TEST(RaftElection, ADeposedLeadersWriteThatTheNewLeaderKeptIsAnsweredOkWhenApplied) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(1)});
  r.on_request(request(7, ClientOp::kWrite, "k", "mine"));  // index 2
  env.sync(r);
  r.on_message(NodeId(3), AppendEntries{.term = Term(2)});
  // The new leader had our entry and commits it with one of its own term.
  r.on_message(NodeId(3), AppendEntries{.term = Term(2),
                                        .prev_index = LogIndex(2),
                                        .prev_term = Term(1),
                                        .leader_commit = LogIndex(3),
                                        .entries = {noop(2)}});
  ASSERT_EQ(env.replies.size(), 1u);
  EXPECT_EQ(env.replies[0].first, RequestId(7));
  EXPECT_EQ(env.replies[0].second.outcome, ClientResponse::Outcome::kOk);
}

// The bytes a log holds follow its entries through appends, a rewritten
// suffix, compaction and a reset to a snapshot.
TEST(RaftLogBytes, FollowTheEntriesTheLogHolds) {
  RaftLog log;
  EXPECT_EQ(log.bytes(), 0u);
  const std::string big(1000, 'x');
  log.replace_from(LogIndex(1), {noop(1), cmd(1, 2, "a", big), cmd(1, 3, "b", "2")});
  const uint64_t first = log.bytes_between(LogIndex(0), LogIndex(1));
  const uint64_t second = log.bytes_between(LogIndex(1), LogIndex(2));
  const uint64_t third = log.bytes_between(LogIndex(2), LogIndex(3));
  EXPECT_GT(second, 1000u);
  EXPECT_LT(third, 100u);
  EXPECT_EQ(log.bytes(), first + second + third);
  // A new leader's suffix replaces entry 3 with a large one.
  log.replace_from(LogIndex(3), {cmd(2, 4, "c", big), noop(2)});
  EXPECT_GT(log.bytes_between(LogIndex(2), LogIndex(3)), 1000u);
  EXPECT_EQ(log.bytes(), log.bytes_between(LogIndex(0), LogIndex(4)));
  const uint64_t after_two = log.bytes_between(LogIndex(2), LogIndex(4));
  log.compact_to(LogIndex(2));
  EXPECT_EQ(log.bytes(), after_two);
  log.append(cmd(2, 5, "d", "1"));
  EXPECT_EQ(log.bytes(), after_two + log.bytes_between(LogIndex(4), LogIndex(5)));
  log.reset_to_snapshot(LogIndex(9), Term(3));  // not held: everything goes
  EXPECT_EQ(log.bytes(), 0u);
  log.append(cmd(3, 6, "e", big));
  EXPECT_GT(log.bytes(), 1000u);
  EXPECT_EQ(log.bytes(), log.bytes_between(LogIndex(9), LogIndex(10)));
}

TEST(RaftRecords, ACheckpointResetsEverythingRecordedBeforeIt) {
  RaftLog log;
  log.replace_from(LogIndex(1), {noop(1), cmd(1, 2, "a", "1"), cmd(2, 3, "b", "2")});
  log.compact_to(LogIndex(2));
  KvStateMachine sm;
  sm.apply(request(2, ClientOp::kWrite, "a", "1"));
  Result<RecoveredState> s = recover({
      encode_hard_state({Term(1), NodeId(1)}),
      encode_entries(LogIndex(1), {noop(1), noop(1), noop(1), noop(1)}),
      encode_checkpoint({Term(2), NodeId(3)}, log, {NodeId(1), NodeId(3)}, sm.encode()),
      encode_entries(LogIndex(4), {noop(2)}),
  });
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  EXPECT_EQ(s->hard_state.term, Term(2));
  EXPECT_EQ(s->hard_state.voted_for, NodeId(3));
  EXPECT_EQ(s->log.snapshot_index(), LogIndex(2));
  EXPECT_EQ(s->log.snapshot_term(), Term(1));
  EXPECT_EQ(s->log.last_index(), LogIndex(4));
  EXPECT_EQ(s->log.at(LogIndex(3)), cmd(2, 3, "b", "2"));
  EXPECT_EQ(KvStateMachine::decode(s->snapshot).value(), sm);
  // An Entries record may not rewrite what the checkpoint's snapshot covers.
  EXPECT_EQ(s->snapshot_config, (std::vector<NodeId>{NodeId(1), NodeId(3)}));
  EXPECT_TRUE(recover({encode_checkpoint({Term(2), NodeId(3)}, log, {}, sm.encode()),
                       encode_entries(LogIndex(2), {noop(2)})})
                  .status()
                  .is_corruption());
}

// Leader 1 with node 2 acknowledging everything and node 3 silent; snapshots
// every 4 applied entries.
void elect_and_commit(FakeEnv& env, Raft& r, int writes) {
  elect(env, r);
  for (int i = 0; i < writes; ++i) {
    r.on_request(request(50 + i, ClientOp::kWrite, "k", "v" + std::to_string(i)));
    env.sync(r);
    r.on_message(
        NodeId(2),
        AppendReply{.term = Term(1), .success = true, .match_index = r.log().last_index()});
  }
}

RaftOptions snapshot_every_4() {
  RaftOptions o;
  o.snapshot_threshold = 4;
  return o;
}

TEST(RaftSnapshot, ALeaderCompactsItsLogIntoOneCheckpointRecord) {
  FakeEnv env;
  RaftKv r(env, three(1), {}, snapshot_every_4());
  elect_and_commit(env, r, 10);
  EXPECT_EQ(r.commit_index(), LogIndex(11));
  EXPECT_GE(r.log().snapshot_index(), LogIndex(8));
  EXPECT_EQ(r.state_machine().read("k"), "v9");
  // A restart from the records (the default persist_checkpoint keeps the ones
  // before it, as a runtime that cannot drop records would) gives the same state.
  FakeEnv env2;
  RaftKv again(env2, three(1), env.records, snapshot_every_4());
  EXPECT_EQ(again.log().snapshot_index(), r.log().snapshot_index());
  EXPECT_EQ(again.log().last_index(), r.log().last_index());
  EXPECT_EQ(again.commit_index(), again.log().snapshot_index());
  EXPECT_EQ(again.state_machine().encode(),
            KvStateMachine::decode(again.state_machine().encode()).value().encode());
}

// Entries holding snapshot_threshold_bytes trigger a snapshot long before the
// entry count: the log is in memory, and large values fill it first.
TEST(RaftSnapshot, EntriesHoldingTheByteBudgetTriggerOneBeforeTheCount) {
  FakeEnv env;
  RaftOptions o;
  o.snapshot_threshold = 1000;
  o.snapshot_threshold_bytes = 3000;
  // Six writes of 1,000 bytes, node 2 acknowledging each.
  const auto write_six = [](FakeEnv& e, RaftKv& kv) {
    elect(e, kv);
    for (int i = 0; i < 6; ++i) {
      kv.on_request(request(50 + i, ClientOp::kWrite, "k", std::string(1000, 'a' + i)));
      e.sync(kv);
      kv.on_message(NodeId(2), AppendReply{.term = Term(1), .success = true,
                                           .match_index = kv.log().last_index()});
    }
  };
  RaftKv r(env, three(1), {}, o);
  write_six(env, r);
  ASSERT_EQ(r.applied_index(), LogIndex(7));
  EXPECT_GE(r.log().snapshot_index(), LogIndex(4)) << "three 1,000-byte entries applied";
  EXPECT_LT(r.log().bytes(), 3000u);
  EXPECT_EQ(r.state_machine().read("k"), std::string(1000, 'f'));
  // 0: no byte bound, only the count.
  FakeEnv env2;
  o.snapshot_threshold_bytes = 0;
  RaftKv unbounded(env2, three(1), {}, o);
  write_six(env2, unbounded);
  EXPECT_EQ(unbounded.log().snapshot_index(), LogIndex(0));
  EXPECT_GT(unbounded.log().bytes(), 6000u);
}

// Raft applies to whatever StateMachine it is handed and never looks inside:
// here one that keeps the order of everything applied, as a shard's store keeps
// the order of its Mutations.
class AppliedOrder : public StateMachine {
 public:
  ClientResponse apply(const ClientRequest& command) override {
    order.push_back(command.value.value_or("-"));
    return ClientResponse{};
  }
  ClientResponse read(const ClientRequest&) const override {
    ClientResponse r;
    r.value = std::to_string(order.size());
    return r;
  }
  std::string snapshot() const override {
    std::string out;
    for (const auto& v : order) out += v + ",";
    return out;
  }
  Status restore(std::string_view bytes, LogIndex index) override {
    if (!bytes.empty() && bytes.back() != ',') return Status::Corruption("not a snapshot");
    order.clear();
    size_t start = 0;
    for (size_t i = 0; i < bytes.size(); ++i) {
      if (bytes[i] == ',') {
        order.emplace_back(bytes.substr(start, i - start));
        start = i + 1;
      }
    }
    ++restores;
    restored_at = index;
    return Status::OK();
  }
  std::vector<std::string> order;
  int restores = 0;
  LogIndex restored_at{};
};

TEST(RaftStateMachine, AppliesCommittedCommandsInLogOrderToTheMachineItIsHanded) {
  FakeEnv env;
  AppliedOrder sm;
  Raft r(env, three(1), {}, sm, snapshot_every_4());
  elect_and_commit(env, r, 10);
  std::vector<std::string> expected;
  for (int i = 0; i < 10; ++i) expected.push_back("v" + std::to_string(i));
  EXPECT_EQ(sm.order, expected);
  EXPECT_EQ(sm.restores, 0);
  // A restart restores the machine from the last snapshot, then re-applies
  // what the log holds after it once it is committed again.
  FakeEnv env2;
  AppliedOrder again;
  Raft restarted(env2, three(1), env.records, again, snapshot_every_4());
  EXPECT_EQ(again.restores, 1);
  const size_t snapshotted = restarted.log().snapshot_index().value() - 1;  // minus the no-op
  EXPECT_EQ(again.order,
            std::vector<std::string>(expected.begin(), expected.begin() + snapshotted));
  // A follower handed a snapshot its machine refuses keeps its state and log.
  FakeEnv env3;
  AppliedOrder refusing;
  Raft follower(env3, three(3), {}, refusing, snapshot_every_4());
  InstallSnapshot bad{.term = Term(1),
                      .last_index = LogIndex(8),
                      .last_term = Term(1),
                      .config = {NodeId(1), NodeId(2), NodeId(3)},
                      .state = "no comma",
                      .total = 8};
  follower.on_message(NodeId(1), bad);
  EXPECT_EQ(follower.commit_index(), LogIndex(0));
  EXPECT_EQ(refusing.restores, 0);
  EXPECT_TRUE(refusing.order.empty());
  // The same snapshot with a state the machine takes is installed.
  bad.state = "v0,v1,";
  bad.total = bad.state.size();
  follower.on_message(NodeId(1), bad);
  EXPECT_EQ(follower.commit_index(), LogIndex(8));
  EXPECT_EQ(refusing.order, (std::vector<std::string>{"v0", "v1"}));
}

TEST(RaftSnapshot, AFollowerThatNeedsCompactedEntriesGetsTheSnapshot) {
  FakeEnv env;
  RaftKv r(env, three(1), {}, snapshot_every_4());
  elect_and_commit(env, r, 10);
  env.sent.clear();
  // Node 3 answers at last: its log is empty.
  r.on_message(NodeId(3),
               AppendReply{.term = Term(1), .success = false, .conflict_index = LogIndex(1)});
  auto snaps = env.take<InstallSnapshot>();
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0].first, NodeId(3));
  EXPECT_EQ(snaps[0].second.last_index, r.log().snapshot_index());

  // Node 3 installs it, durably, then acknowledges; a restart keeps it.
  FakeEnv env3;
  RaftKv follower(env3, three(3), {}, snapshot_every_4());
  follower.on_message(NodeId(1), snaps[0].second);
  EXPECT_EQ(follower.commit_index(), snaps[0].second.last_index);
  EXPECT_EQ(follower.state_machine().encode(), snaps[0].second.state);
  EXPECT_TRUE(env3.take<AppendReply>().empty()) << "acknowledged a snapshot not yet durable";
  env3.sync(follower);
  auto acks = env3.take<AppendReply>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_TRUE(acks[0].second.success);
  EXPECT_EQ(acks[0].second.match_index, snaps[0].second.last_index);
  FakeEnv env4;
  RaftKv restarted(env4, three(3), env3.records, snapshot_every_4());
  EXPECT_EQ(restarted.log().snapshot_index(), snaps[0].second.last_index);
  EXPECT_EQ(restarted.state_machine().encode(), snaps[0].second.state);

  // The leader resumes with the entries after the snapshot.
  env.sent.clear();
  r.on_message(NodeId(3), acks[0].second);
  auto rest = env.take<AppendEntries>();
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.front().second.prev_index, snaps[0].second.last_index);
}

// ---------------------------------------------------------------- a machine that keeps its state

RaftOptions machine_keeps_state() {
  RaftOptions o = snapshot_every_4();  // must not apply
  o.machine_keeps_state = true;
  return o;
}

TEST(RaftMachineKeepsState, TheLogCompactsOnlyWhenTheHostSaysAndTheCheckpointHoldsNoState) {
  FakeEnv env;
  AppliedOrder sm;
  Raft r(env, three(1), {}, sm, machine_keeps_state());
  elect_and_commit(env, r, 10);
  EXPECT_EQ(r.applied_index(), LogIndex(11));
  EXPECT_EQ(r.log().snapshot_index(), LogIndex(0)) << "compacted past the threshold on its own";
  r.compact(LogIndex(12));  // beyond what was applied: nothing
  EXPECT_EQ(r.log().snapshot_index(), LogIndex(0));
  r.compact(LogIndex(8));
  EXPECT_EQ(r.log().snapshot_index(), LogIndex(8));
  EXPECT_EQ(r.log().last_index(), LogIndex(11));
  r.compact(LogIndex(5));  // below the compaction point: nothing
  EXPECT_EQ(r.log().snapshot_index(), LogIndex(8));
  auto recovered = recover(env.records);
  ASSERT_TRUE(recovered.ok());
  EXPECT_EQ(recovered->log.snapshot_index(), LogIndex(8));
  EXPECT_TRUE(recovered->snapshot.empty()) << "the checkpoint copied the machine's state";

  // A restart does not restore: the machine kept its state (here all ten
  // writes, past the compaction point); raft starts from the compaction point
  // and hands the entries after it to the machine again once committed.
  FakeEnv env2;
  AppliedOrder kept;
  kept.order = sm.order;
  Raft restarted(env2, three(1), env.records, kept, machine_keeps_state());
  EXPECT_EQ(kept.restores, 0);
  EXPECT_EQ(restarted.applied_index(), LogIndex(8));
  EXPECT_EQ(restarted.log().last_index(), LogIndex(11));
  EXPECT_EQ(kept.order, sm.order);

  // Without the option the same checkpoint would be restored from: the
  // option is what makes an empty state right.
  FakeEnv env3;
  AppliedOrder plain;
  Raft old_style(env3, three(1), env.records, plain, snapshot_every_4());
  EXPECT_EQ(plain.restores, 1);
  EXPECT_TRUE(plain.order.empty());
}

// Ten writes committed by leader r (which keeps its machine's state), its log
// compacted through index 6; then node 3 answers with an empty log.
void commit_compact_and_hear_node3_lacks_everything(FakeEnv& env, Raft& r) {
  elect_and_commit(env, r, 10);
  r.compact(LogIndex(6));
  env.sent.clear();
  r.on_message(NodeId(3),
               AppendReply{.term = Term(1), .success = false, .conflict_index = LogIndex(1)});
}

// A leader whose machine's kept state is ahead of its applied index (started
// from a state kept through an index its log has not applied again yet) sends
// no snapshot until its applied index reaches it: the state would go out
// labelled with an older index, and the follower would apply the entries in
// between a second time (found by the groups simulator's state check).
TEST(RaftMachineKeepsState, NoSnapshotIsSentWhileTheKeptStateIsAheadOfTheAppliedIndex) {
  struct KeptAhead final : AppliedOrder {
    LogIndex kept{0};
    LogIndex kept_index() const override { return kept; }
  };
  FakeEnv env;
  KeptAhead sm;
  Raft r(env, three(1), {}, sm, machine_keeps_state());
  elect_and_commit(env, r, 10);
  ASSERT_EQ(r.applied_index(), LogIndex(11));
  r.compact(LogIndex(6));
  sm.kept = LogIndex(12);
  env.sent.clear();
  r.on_message(NodeId(3),
               AppendReply{.term = Term(1), .success = false, .conflict_index = LogIndex(1)});
  env.advance(r, milliseconds(100));
  EXPECT_TRUE(env.take<InstallSnapshot>().empty()) << "sent a state ahead of its label";
  sm.kept = LogIndex(11);
  env.advance(r, milliseconds(100));
  auto snaps = env.take<InstallSnapshot>();
  ASSERT_FALSE(snaps.empty());
  EXPECT_EQ(snaps[0].second.last_index, LogIndex(11));
}

TEST(RaftMachineKeepsState, AFollowerThatNeedsCompactedEntriesGetsTheStateAsOfTheLeadersApplied) {
  FakeEnv env;
  AppliedOrder sm;
  Raft r(env, three(1), {}, sm, machine_keeps_state());
  commit_compact_and_hear_node3_lacks_everything(env, r);
  auto snaps = env.take<InstallSnapshot>();
  ASSERT_EQ(snaps.size(), 1u);
  // Not the compaction point's (the log keeps no copy): the machine's now.
  EXPECT_EQ(snaps[0].second.last_index, LogIndex(11));
  EXPECT_EQ(snaps[0].second.state, sm.snapshot());

  // Node 3 restores it (with the index it covers), checkpoints without the
  // state, and acknowledges once that is durable; the leader goes on from there.
  FakeEnv env3;
  AppliedOrder follower_sm;
  Raft follower(env3, three(3), {}, follower_sm, machine_keeps_state());
  follower.on_message(NodeId(1), snaps[0].second);
  EXPECT_EQ(follower_sm.restores, 1);
  EXPECT_EQ(follower_sm.restored_at, LogIndex(11));
  EXPECT_EQ(follower_sm.order, sm.order);
  EXPECT_EQ(follower.applied_index(), LogIndex(11));
  env3.sync(follower);
  auto acks = env3.take<AppendReply>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].second.match_index, LogIndex(11));
  auto recovered = recover(env3.records);
  ASSERT_TRUE(recovered.ok());
  EXPECT_EQ(recovered->log.snapshot_index(), LogIndex(11));
  EXPECT_TRUE(recovered->snapshot.empty());
  r.on_message(NodeId(3), acks[0].second);
  r.on_request(request(99, ClientOp::kWrite, "k", "after"));
  env.sync(r);
  auto rest = env.take<AppendEntries>();
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.back().second.prev_index, LogIndex(11));
}

// AppliedOrder whose snapshot is read a value at a time: a reader holds the
// order as it was when opened and counts the bytes it handed out.
class ReadInPieces final : public AppliedOrder {
 public:
  struct Reader final : SnapshotReader {
    Reader(std::vector<std::string> values, ReadInPieces& m) : values(std::move(values)), m(m) {
      ++m.open_readers;
    }
    ~Reader() override { --m.open_readers; }
    bool ready() const override {
      if (m.reader_ready_alternates) return m.ready_calls++ % 2 == 0;
      return m.reader_ready;
    }
    Result<std::string> next(size_t) override {
      if (m.fail_reads) return Status::IOError("the disk went away");
      if (at == values.size()) return std::string();
      std::string piece = values[at++] + ",";
      m.bytes_read += piece.size();
      return piece;
    }
    std::vector<std::string> values;
    size_t at = 0;
    ReadInPieces& m;
  };
  std::unique_ptr<SnapshotReader> open_snapshot() const override {
    auto& self = const_cast<ReadInPieces&>(*this);
    ++self.opened;
    self.bytes_read = 0;
    return std::make_unique<Reader>(order, self);
  }
  int opened = 0;
  int open_readers = 0;   // readers not destroyed yet
  size_t bytes_read = 0;  // by the last reader opened
  bool fail_reads = false;
  bool reader_ready = true;  // what its readers' ready() says
  // Instead: ready() says yes, no, yes, ... (a reader on another thread that
  // has read one piece each time it is asked again).
  bool reader_ready_alternates = false;
  int ready_calls = 0;
};

RaftOptions keeps_state_chunks_of_4() {
  RaftOptions o = machine_keeps_state();
  o.snapshot_chunk_bytes = 4;
  return o;
}

TEST(RaftMachineKeepsState, AFollowersSnapshotIsReadAPieceAtATimeAsOfWhenTheTransferStarted) {
  FakeEnv env;
  ReadInPieces sm;
  Raft r(env, three(1), {}, sm, keeps_state_chunks_of_4());
  elect_and_commit(env, r, 10);  // "v0".."v9"
  r.compact(LogIndex(6));
  env.sent.clear();
  r.on_message(NodeId(3),
               AppendReply{.term = Term(1), .success = false, .conflict_index = LogIndex(1)});
  auto first = env.take<InstallSnapshot>();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(sm.opened, 1);
  EXPECT_EQ(r.snapshot_stats().transfers_read, 1u);
  const InstallSnapshot c0 = first[0].second;
  EXPECT_EQ(c0.last_index, LogIndex(11));
  EXPECT_EQ(c0.state, "v0,v");
  EXPECT_EQ(c0.total, InstallSnapshot::kUnknownTotal) << "a snapshot still being read has no size";
  EXPECT_LE(sm.bytes_read, 4u + 1 + 3) << "read more than a chunk and a piece ahead";
  const std::vector<std::string> at_start = sm.order;

  // The leader goes on applying writes; the transfer keeps the state of its start.
  for (int i = 0; i < 3; ++i) r.on_request(request(100 + i, ClientOp::kWrite, "k", "later"));
  env.sync(r);
  for (auto& [to, append] : env.take<AppendEntries>()) {
    if (to != NodeId(2)) continue;
    r.on_message(NodeId(2), AppendReply{.term = Term(1),
                                        .success = true,
                                        .match_index = LogIndex(append.prev_index.value() +
                                                                  append.entries.size())});
  }
  ASSERT_EQ(r.applied_index(), LogIndex(14));
  // Nor is the log compacted past the snapshot being sent: node 3 needs the
  // entries after it once it has installed it.
  EXPECT_EQ(r.compaction_limit(), LogIndex(11));
  r.compact(LogIndex(14));
  EXPECT_EQ(r.log().snapshot_index(), LogIndex(11));

  FakeEnv fenv;
  ReadInPieces fsm;
  Raft f(fenv, three(3), {}, fsm, keeps_state_chunks_of_4());
  f.on_message(NodeId(1), c0);
  auto ack = fenv.take<InstallSnapshotReply>();
  ASSERT_EQ(ack.size(), 1u);
  EXPECT_EQ(ack[0].second.offset, 4u);
  // The answer is lost and the same offset comes again: the chunk is resent
  // from what the leader holds, not read again.
  InstallSnapshotReply again = ack[0].second;
  again.offset = 0;
  const size_t read_before = sm.bytes_read;
  r.on_message(NodeId(3), again);
  auto resent = env.take<InstallSnapshot>();
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_EQ(resent[0].second.offset, 0u);
  EXPECT_EQ(resent[0].second.state, "v0,v");
  EXPECT_EQ(sm.opened, 1);
  EXPECT_EQ(sm.bytes_read, read_before);
  f.on_message(NodeId(1), resent[0].second);  // a duplicate for the follower
  fenv.sent.clear();
  r.on_message(NodeId(3), ack[0].second);

  // The rest: every chunk but the last without a size; the leader never more
  // than a chunk and a piece ahead of what the follower acknowledged.
  int chunks = 1;
  uint64_t acked = 4;
  for (int step = 0; step < 100; ++step) {
    auto out = env.take<InstallSnapshot>();
    if (out.empty()) break;
    ASSERT_EQ(out.size(), 1u);
    const InstallSnapshot& c = out[0].second;
    ++chunks;
    EXPECT_EQ(c.offset, acked);
    EXPECT_EQ(c.last_index, LogIndex(11));
    EXPECT_LE(sm.bytes_read, acked + 4 + 1 + 3);
    f.on_message(NodeId(1), c);
    fenv.sync(f);
    if (c.completes()) break;
    EXPECT_EQ(c.total, InstallSnapshot::kUnknownTotal);
    auto a = fenv.take<InstallSnapshotReply>();
    ASSERT_EQ(a.size(), 1u);
    acked = a[0].second.offset;
    r.on_message(NodeId(3), a[0].second);
  }
  EXPECT_GT(chunks, 5);
  EXPECT_EQ(fsm.restores, 1);
  EXPECT_EQ(fsm.restored_at, LogIndex(11));
  EXPECT_EQ(fsm.order, at_start);
  EXPECT_EQ(f.commit_index(), LogIndex(11));
  // Acknowledged: the leader goes on with the entries after the snapshot.
  auto done = fenv.take<AppendReply>();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].second.match_index, LogIndex(11));
  r.on_message(NodeId(3), done[0].second);
  auto rest = env.take<AppendEntries>();
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.front().second.prev_index, LogIndex(11));
  EXPECT_EQ(rest.front().second.entries.size(), 3u);
  // The transfer over, node 3 lacks only entries the log holds, which it
  // keeps for it; node 3 has them, and the log compacts as far as asked again.
  EXPECT_EQ(r.compaction_limit(), LogIndex(11));
  r.on_message(NodeId(3),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(14)});
  EXPECT_EQ(r.compaction_limit(), LogIndex(14));
  r.compact(LogIndex(14));
  EXPECT_EQ(r.log().snapshot_index(), LogIndex(14));
}

// A follower that answers but lags gets the entries it lacks from the log, not
// a snapshot of the whole state: the leader's log keeps them, while they hold
// at most snapshot_threshold_bytes and the follower was heard from within an
// election timeout. Node 3 silent, and entries of a few bytes each, the
// compaction point follows the applied index.
TEST(RaftMachineKeepsState, TheLeaderKeepsTheEntriesASlowFollowerLacksWithinABudget) {
  FakeEnv env;
  AppliedOrder sm;
  RaftOptions o = machine_keeps_state();
  o.snapshot_threshold_bytes = 1000;  // an entry here holds about 70
  Raft r(env, three(1), {}, sm, o);
  elect_and_commit(env, r, 10);
  ASSERT_EQ(r.applied_index(), LogIndex(11));
  EXPECT_EQ(r.compaction_limit(), LogIndex(11)) << "node 3 was never heard from";
  EXPECT_GT(r.log().bytes(), 10u * 64);
  EXPECT_EQ(r.log().bytes(), r.log().bytes_between(LogIndex(0), LogIndex(11)));

  // Node 3 answers, 6 entries behind: they are kept for it.
  r.on_message(NodeId(3), AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(5)});
  EXPECT_EQ(r.compaction_limit(), LogIndex(5));
  r.compact(LogIndex(11));
  EXPECT_EQ(r.log().snapshot_index(), LogIndex(5));
  EXPECT_EQ(r.log().bytes(), r.log().bytes_between(LogIndex(5), LogIndex(11)));
  // It catches up from them.
  auto appends = env.take<AppendEntries>();
  bool to_three = false;
  for (const auto& [to, a] : appends) to_three |= to == NodeId(3) && a.prev_index >= LogIndex(5);
  EXPECT_TRUE(to_three);
  EXPECT_TRUE(env.take<InstallSnapshot>().empty());
  r.on_message(NodeId(3), AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(8)});
  EXPECT_EQ(r.compaction_limit(), LogIndex(8));

  // Quiet for longer than an election timeout: no longer waited for.
  env.clock += milliseconds(400);
  EXPECT_EQ(r.compaction_limit(), LogIndex(11));

  // Heard again, but more than the budget behind: not waited for either.
  for (int i = 0; i < 20; ++i) {
    r.on_request(request(200 + i, ClientOp::kWrite, "k", "w" + std::to_string(i)));
    env.sync(r);
    r.on_message(NodeId(2), AppendReply{.term = Term(1), .success = true,
                                        .match_index = r.log().last_index()});
  }
  ASSERT_EQ(r.applied_index(), LogIndex(31));
  ASSERT_GT(r.log().bytes_between(LogIndex(8), LogIndex(31)), o.snapshot_threshold_bytes);
  r.on_message(NodeId(3), AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(8)});
  EXPECT_EQ(r.compaction_limit(), LogIndex(31));
  // Within it again: waited for.
  r.on_message(NodeId(3), AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(25)});
  EXPECT_EQ(r.compaction_limit(), LogIndex(25));
}

// A reader that would wait (it reads ahead on a thread) is not waited for
// while the leader holds some bytes: they go as a shorter chunk; the last
// bytes sent so, the transfer ends with an empty chunk that completes it.
TEST(RaftMachineKeepsState, AReaderThatWouldWaitGetsShorterChunksAndAnEmptyLastOne) {
  FakeEnv env;
  ReadInPieces sm;
  sm.reader_ready_alternates = true;
  Raft r(env, three(1), {}, sm, keeps_state_chunks_of_4());
  commit_compact_and_hear_node3_lacks_everything(env, r);
  FakeEnv fenv;
  ReadInPieces fsm;
  Raft f(fenv, three(3), {}, fsm, keeps_state_chunks_of_4());
  std::vector<InstallSnapshot> chunks;
  for (int step = 0; step < 100; ++step) {
    auto out = env.take<InstallSnapshot>();
    if (out.empty()) break;
    ASSERT_EQ(out.size(), 1u);
    chunks.push_back(out[0].second);
    EXPECT_EQ(f.receiving_snapshot(fenv.now(), seconds(2)), chunks.size() > 1)
        << "receiving from its first chunk on, until it installs the last";
    f.on_message(NodeId(1), out[0].second);
    fenv.sync(f);
    if (out[0].second.completes()) break;
    EXPECT_TRUE(f.receiving_snapshot(fenv.now(), seconds(2)));
    // A transfer gone quiet for longer than `quiet` no longer counts.
    EXPECT_FALSE(f.receiving_snapshot(fenv.now() + seconds(3), seconds(2)));
    auto a = fenv.take<InstallSnapshotReply>();
    ASSERT_EQ(a.size(), 1u);
    r.on_message(NodeId(3), a[0].second);
  }
  ASSERT_GT(chunks.size(), 2u);
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    // One piece each ("v0," ... "v10,"), none waited on to fill 4 bytes.
    EXPECT_EQ(chunks[i].state, "v" + std::to_string(i) + ",") << i;
    EXPECT_EQ(chunks[i].total, InstallSnapshot::kUnknownTotal);
  }
  EXPECT_TRUE(chunks.back().state.empty());
  EXPECT_TRUE(chunks.back().completes());
  EXPECT_FALSE(f.receiving_snapshot(fenv.now(), seconds(2))) << "installed";
  EXPECT_EQ(fsm.restores, 1);
  EXPECT_EQ(fsm.order, sm.order);
  EXPECT_EQ(f.applied_index(), r.applied_index());
}

// A reader with nothing ready yet (queued behind other transfers, or still
// reading on its thread) is not waited for: nothing is sent, at the start or
// at heartbeats, until it has bytes and the host resumes the transfer.
TEST(RaftMachineKeepsState, AReaderWithNothingReadyIsPassedOverUntilTheHostResumesTheTransfer) {
  FakeEnv env;
  ReadInPieces sm;
  sm.reader_ready = false;
  Raft r(env, three(1), {}, sm, keeps_state_chunks_of_4());
  commit_compact_and_hear_node3_lacks_everything(env, r);
  EXPECT_EQ(sm.opened, 1);
  EXPECT_TRUE(env.take<InstallSnapshot>().empty());
  env.advance(r, milliseconds(60));  // heartbeats
  EXPECT_TRUE(env.take<InstallSnapshot>().empty());
  EXPECT_EQ(sm.bytes_read, 0u) << "read (and waited) on this member's thread";
  EXPECT_GE(r.snapshot_stats().sends_deferred, 2u);
  EXPECT_EQ(sm.opened, 1) << "the transfer started over instead of waiting";
  sm.reader_ready = true;
  r.resume_snapshot_sends();
  auto chunks = env.take<InstallSnapshot>();
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].second.offset, 0u);
  EXPECT_EQ(chunks[0].second.state, "v0,v");
  r.resume_snapshot_sends();  // one in flight already: nothing more
  EXPECT_TRUE(env.take<InstallSnapshot>().empty());
}

TEST(RaftMachineKeepsState, AReadSnapshotStartsOverWhenTheFollowerDroppedItOrAReadFails) {
  FakeEnv env;
  ReadInPieces sm;
  Raft r(env, three(1), {}, sm, keeps_state_chunks_of_4());
  commit_compact_and_hear_node3_lacks_everything(env, r);
  const InstallSnapshot c0 = env.take<InstallSnapshot>().at(0).second;
  auto ack = [&](uint64_t offset, LogIndex index) {
    r.on_message(NodeId(3),
                 InstallSnapshotReply{.term = Term(1), .last_index = index, .offset = offset});
    auto next = env.take<InstallSnapshot>();
    EXPECT_EQ(next.size(), 1u);
    return next.empty() ? InstallSnapshot{} : next[0].second;
  };
  EXPECT_EQ(ack(4, c0.last_index).offset, 4u);
  EXPECT_EQ(ack(8, c0.last_index).offset, 8u);
  // The follower restarted mid-transfer (offset 0): the bytes before the
  // leader's buffer are read past, so the state is read again as it is now.
  const InstallSnapshot fresh = ack(0, c0.last_index);
  EXPECT_EQ(sm.opened, 2);
  EXPECT_EQ(fresh.offset, 0u);
  EXPECT_EQ(fresh.last_index, r.applied_index());
  // A read that fails ends the transfer; the next heartbeat starts another.
  sm.fail_reads = true;
  r.on_message(NodeId(3), InstallSnapshotReply{.term = Term(1),
                                               .last_index = fresh.last_index,
                                               .offset = 4});
  EXPECT_TRUE(env.take<InstallSnapshot>().empty());
  EXPECT_EQ(r.snapshot_stats().reads_failed, 1u);
  sm.fail_reads = false;
  env.advance(r, milliseconds(60));
  auto restarted = env.take<InstallSnapshot>();
  ASSERT_FALSE(restarted.empty());
  EXPECT_EQ(restarted[0].second.offset, 0u);
  EXPECT_EQ(sm.opened, 3);
}

// A read transfer to a member that goes quiet lets go of its reader at the
// next CheckQuorum check; none starts again until the member answers.
TEST(RaftMachineKeepsState, AReadSnapshotToAQuietMemberIsDroppedUntilItAnswers) {
  FakeEnv env;
  ReadInPieces sm;
  Raft r(env, three(1), {}, sm, keeps_state_chunks_of_4());
  commit_compact_and_hear_node3_lacks_everything(env, r);
  ASSERT_EQ(env.take<InstallSnapshot>().size(), 1u);
  EXPECT_EQ(sm.open_readers, 1);
  // Node 2 answers every heartbeat (the leader keeps its quorum); node 3 is silent.
  for (int i = 0; i < 60 && sm.open_readers == 1; ++i) {
    env.advance(r, milliseconds(20));
    for (auto& [to, m] : env.take<AppendEntries>()) {
      if (to != NodeId(2)) continue;
      r.on_message(NodeId(2), AppendReply{.term = Term(1),
                                          .success = true,
                                          .match_index = r.log().last_index(),
                                          .round = m.round});
    }
  }
  EXPECT_EQ(sm.open_readers, 0) << "the silent member's reader was kept";
  EXPECT_EQ(r.snapshot_stats().transfers_dropped, 1u);
  EXPECT_EQ(r.role(), Raft::Role::kLeader);
  env.advance(r, milliseconds(200));
  EXPECT_EQ(sm.open_readers, 0) << "a transfer started to a member that does not answer";
  EXPECT_EQ(sm.opened, 1);
  // It answers a heartbeat: a new transfer, of the state as it is now.
  env.sent.clear();
  r.on_message(NodeId(3),
               AppendReply{.term = Term(1), .success = false, .conflict_index = LogIndex(1)});
  auto again = env.take<InstallSnapshot>();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].second.offset, 0u);
  EXPECT_EQ(sm.opened, 2);
  EXPECT_EQ(sm.open_readers, 1);
}

// A machine that restores in the background (StateMachine::begin_restore):
// it takes the snapshot and restores it when the test says, as ReplicaGroups
// does on another thread.
class RestoresLater final : public AppliedOrder {
 public:
  Result<RestoreProgress> begin_restore(std::string snapshot, LogIndex index) override {
    taken = std::move(snapshot);
    taken_at = index;
    ++started;
    return RestoreProgress::kStarted;
  }
  Status finish() { return restore(taken, taken_at); }
  std::string taken;
  LogIndex taken_at{};
  int started = 0;
};

// An AppendEntries of term `term` with one write after index 11 (of term 1),
// committing it.
AppendEntries one_write_after_11(Term term, uint64_t id, const std::string& value) {
  return AppendEntries{.term = term,
                       .prev_index = LogIndex(11),
                       .prev_term = Term(1),
                       .leader_commit = LogIndex(12),
                       .entries = {Entry{.term = term,
                                         .kind = Entry::Kind::kCommand,
                                         .command = request(id, ClientOp::kWrite, "k", value)}}};
}

// Node 1 led ten writes and compacted its log through 6; it restarts with its
// machine's kept state lost (its store gone, its log kept): it keeps its log,
// term and vote, takes entries and counts toward commits, but applies nothing,
// never becomes a candidate nor takes a leadership handed to it, and tells its
// leader it needs a snapshot; one at or past its compaction point makes it an
// ordinary member again, the entries after it applied.
TEST(RaftMachineKeepsState, AMemberWhoseMachineLostItsStateKeepsItsLogAndWaitsForASnapshot) {
  FakeEnv env;
  AppliedOrder sm;
  Raft r(env, three(1), {}, sm, machine_keeps_state());
  elect_and_commit(env, r, 10);
  r.compact(LogIndex(6));
  env.sync(r);

  RaftOptions lost_options = machine_keeps_state();
  lost_options.machine_state_lost = true;
  FakeEnv env2;
  AppliedOrder empty;
  Raft lost(env2, three(1), env.records, empty, lost_options);
  ASSERT_TRUE(lost.state_lost());
  EXPECT_TRUE(lost.receiving_snapshot(env2.now(), milliseconds(1))) << "its host tells its peers";
  EXPECT_EQ(lost.log().last_index(), LogIndex(11)) << "its log is kept";
  EXPECT_EQ(lost.term(), Term(1));

  // Its election timeouts send pre-votes (they wake a quiesced group), and a
  // majority of them makes it no candidate; nor does a handed leadership.
  env2.advance(lost, kLongerThanAnyElectionTimeout);
  auto pre = env2.take<VoteRequest>();
  ASSERT_FALSE(pre.empty());
  for (const auto& [to, v] : pre) EXPECT_TRUE(v.pre_vote);
  lost.on_message(NodeId(2), VoteReply{.term = Term(2), .granted = true, .pre_vote = true});
  lost.on_message(NodeId(3), VoteReply{.term = Term(2), .granted = true, .pre_vote = true});
  lost.on_message(NodeId(2), TimeoutNow{.term = Term(1)});
  for (const auto& [to, v] : env2.take<VoteRequest>()) EXPECT_TRUE(v.pre_vote) << "campaigned";
  EXPECT_NE(lost.role(), Raft::Role::kCandidate);
  EXPECT_NE(lost.role(), Raft::Role::kLeader);

  // Node 2 leads term 2: its entry 12 is taken, acknowledged (the member
  // counts toward the commit), with the flag; nothing is applied.
  lost.on_message(NodeId(2), AppendEntries{.term = Term(2),
                                           .prev_index = LogIndex(11),
                                           .prev_term = Term(1),
                                           .leader_commit = LogIndex(12),
                                           .entries = {cmd(2, 77, "k", "v12")}});
  env2.sync(lost);
  auto acks = env2.take<AppendReply>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_TRUE(acks[0].second.success);
  EXPECT_EQ(acks[0].second.match_index, LogIndex(12));
  EXPECT_TRUE(acks[0].second.needs_snapshot);
  EXPECT_EQ(acks[0].second.applied_index, LogIndex(0));
  EXPECT_TRUE(empty.order.empty()) << "applied entries to a state it does not have";
  lost.compact(LogIndex(11));
  EXPECT_EQ(lost.log().snapshot_index(), LogIndex(6));

  // A snapshot older than its compaction point does not do: it keeps waiting.
  const std::vector<NodeId> members = {NodeId(1), NodeId(2), NodeId(3)};
  lost.on_message(NodeId(2), InstallSnapshot{.term = Term(2),
                                             .last_index = LogIndex(5),
                                             .last_term = Term(1),
                                             .config = members,
                                             .state = "v0,v1,v2,v3,",
                                             .offset = 0,
                                             .total = 12});
  EXPECT_TRUE(lost.state_lost());
  EXPECT_EQ(empty.restores, 0);
  auto refused = env2.take<AppendReply>();
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_FALSE(refused[0].second.success) << "a success would end the leader's transfer";
  EXPECT_TRUE(refused[0].second.needs_snapshot);

  // The state at 11 (the ten writes): installed, entry 12 applied after it.
  const std::string state = sm.snapshot();
  lost.on_message(NodeId(2), InstallSnapshot{.term = Term(2),
                                             .last_index = LogIndex(11),
                                             .last_term = Term(1),
                                             .config = members,
                                             .state = state,
                                             .offset = 0,
                                             .total = state.size()});
  EXPECT_FALSE(lost.state_lost());
  EXPECT_FALSE(lost.receiving_snapshot(env2.now(), milliseconds(1)));
  EXPECT_EQ(empty.restores, 1);
  EXPECT_EQ(lost.applied_index(), LogIndex(12));
  std::vector<std::string> expected = sm.order;
  expected.push_back("v12");
  EXPECT_EQ(empty.order, expected);
  EXPECT_EQ(lost.log().last_index(), LogIndex(12)) << "the entry after the snapshot was kept";
  env2.sync(lost);
  acks = env2.take<AppendReply>();
  ASSERT_FALSE(acks.empty());
  EXPECT_FALSE(acks.back().second.needs_snapshot);
  EXPECT_EQ(acks.back().second.match_index, LogIndex(11));
}

// The leader sends a member that says it needs a snapshot the machine's state,
// though its log holds everything the member lacks; a late reply still saying
// so does not end the transfer, and the group does not quiesce meanwhile.
TEST(RaftMachineKeepsState, ALeaderSendsASnapshotToAMemberThatSaysItLostItsState) {
  FakeEnv env;
  AppliedOrder sm;
  RaftOptions o = machine_keeps_state();
  o.quiesce = true;
  Raft r(env, three(1), {}, sm, o);
  elect_and_commit(env, r, 10);
  env.sent.clear();
  const AppendReply says_lost{
      .term = Term(1), .success = true, .match_index = LogIndex(11), .needs_snapshot = true};
  r.on_message(NodeId(3), says_lost);
  auto snaps = env.take<InstallSnapshot>();
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0].first, NodeId(3));
  EXPECT_EQ(snaps[0].second.last_index, LogIndex(11));
  EXPECT_EQ(r.log().snapshot_index(), LogIndex(0)) << "the log was never compacted";
  r.on_message(NodeId(3), says_lost);  // a reply from before it installed
  EXPECT_TRUE(env.take<InstallSnapshot>().empty()) << "a late reply restarted the transfer";
  // It refuses a snapshot older than its log needs: the leader takes another.
  r.on_message(NodeId(3), AppendReply{.term = Term(1), .success = false, .needs_snapshot = true});
  snaps = env.take<InstallSnapshot>();
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0].second.offset, 0u);
  EXPECT_EQ(snaps[0].second.last_index, LogIndex(11));
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(11)});
  env.advance(r, milliseconds(200));  // heartbeats: no quiescence while it waits
  for (const auto& [to, m] : env.take<AppendEntries>()) {
    EXPECT_FALSE(m.quiesce) << "quiesced while node 3 waits for a snapshot";
    if (to == NodeId(3)) {
      EXPECT_TRUE(m.entries.empty()) << "entries sent during its snapshot";
    }
  }
  // Installed: it says so, and gets entries again.
  r.on_message(NodeId(3),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(11)});
  r.on_request(request(99, ClientOp::kWrite, "k", "after"));
  env.sync(r);
  bool entries_to_3 = false;
  for (const auto& [to, m] : env.take<AppendEntries>()) entries_to_3 |= to == NodeId(3);
  EXPECT_TRUE(entries_to_3);
  EXPECT_TRUE(env.take<InstallSnapshot>().empty());
}

TEST(RaftMachineKeepsState, ARestoreInTheBackgroundHoldsTheLogAndTheCheckpointUntilItIsDone) {
  FakeEnv env;
  AppliedOrder sm;
  Raft r(env, three(1), {}, sm, machine_keeps_state());
  commit_compact_and_hear_node3_lacks_everything(env, r);
  auto snaps = env.take<InstallSnapshot>();
  ASSERT_EQ(snaps.size(), 1u);
  const InstallSnapshot snap = snaps[0].second;
  ASSERT_EQ(snap.last_index, LogIndex(11));

  FakeEnv env3;
  RestoresLater fsm;
  Raft f(env3, three(3), {}, fsm, machine_keeps_state());
  f.on_message(NodeId(1), snap);
  env3.sync(f);
  EXPECT_EQ(fsm.started, 1);
  EXPECT_EQ(fsm.restores, 0);
  EXPECT_TRUE(f.installing_snapshot());
  EXPECT_TRUE(f.receiving_snapshot(env3.now(), Duration(0)));
  EXPECT_EQ(f.applied_index(), LogIndex(0));
  EXPECT_EQ(f.snapshot_stats().installed, 0u);
  EXPECT_TRUE(env3.take<AppendReply>().empty()) << "acknowledged a snapshot not restored yet";
  // A crash now restarts from the log as it was: no checkpoint of the snapshot.
  auto before = recover(env3.records);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->log.snapshot_index(), LogIndex(0));

  // Meanwhile: entries, a resent chunk and a compaction change nothing, and
  // nothing is answered (the leader sends them again later).
  f.on_message(NodeId(1), one_write_after_11(Term(1), 98, "late"));
  f.on_message(NodeId(1), snap);
  f.compact(LogIndex(0));
  env3.sync(f);
  EXPECT_TRUE(env3.sent.empty());
  EXPECT_EQ(f.log().last_index(), LogIndex(0));
  EXPECT_EQ(fsm.started, 1) << "the resent chunk started a second restore";
  // It neither campaigns when its leader goes quiet nor takes a leadership
  // handed to it, but it votes, from the log it has.
  env3.advance(f, std::chrono::seconds(10));
  f.on_message(NodeId(1), TimeoutNow{.term = Term(1)});
  EXPECT_EQ(f.role(), Raft::Role::kFollower);
  EXPECT_TRUE(env3.take<VoteRequest>().empty());
  f.on_message(NodeId(2),
               VoteRequest{.term = Term(2), .last_index = LogIndex(11), .last_term = Term(1)});
  env3.sync(f);
  auto votes = env3.take<VoteReply>();
  ASSERT_EQ(votes.size(), 1u);
  EXPECT_TRUE(votes[0].second.granted);
  EXPECT_TRUE(f.installing_snapshot()) << "a new term ended the restore";

  // Done: another index is not this restore; this one checkpoints the
  // snapshot and, once durable, acknowledges it to the leader that sent it.
  ASSERT_TRUE(fsm.finish().ok());
  f.on_restored(LogIndex(10), Status::OK());
  EXPECT_TRUE(f.installing_snapshot());
  f.on_restored(LogIndex(11), Status::OK());
  EXPECT_FALSE(f.installing_snapshot());
  EXPECT_EQ(f.applied_index(), LogIndex(11));
  EXPECT_EQ(fsm.order, sm.order);
  EXPECT_EQ(f.snapshot_stats().installed, 1u);
  EXPECT_EQ(f.snapshot_stats().restores_in_background, 1u);
  EXPECT_TRUE(env3.take<AppendReply>().empty()) << "acknowledged before the checkpoint is durable";
  env3.sync(f);
  auto acks = env3.take<AppendReply>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].first, NodeId(1));
  EXPECT_TRUE(acks[0].second.success);
  EXPECT_EQ(acks[0].second.match_index, LogIndex(11));
  auto after = recover(env3.records);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->log.snapshot_index(), LogIndex(11));
  EXPECT_TRUE(after->snapshot.empty());
  // Entries after the snapshot are taken again.
  f.on_message(NodeId(2), one_write_after_11(Term(2), 97, "next"));
  EXPECT_EQ(f.log().last_index(), LogIndex(12));
  EXPECT_EQ(f.applied_index(), LogIndex(12));
}

// A machine that stages a snapshot's chunks itself (StateMachine::
// open_snapshot_sink), as a replica group stages them in a file.
class StagesItself final : public AppliedOrder {
 public:
  struct Sink final : SnapshotSink {
    explicit Sink(StagesItself& m) : machine(m) { ++machine.open_sinks; }
    ~Sink() override { --machine.open_sinks; }
    Status append(std::string_view bytes) override {
      if (machine.fail_appends) return Status::IOError("disk full");
      staged += bytes;
      return Status::OK();
    }
    StagesItself& machine;
    std::string staged;
  };
  std::unique_ptr<SnapshotSink> open_snapshot_sink(LogIndex index) override {
    ++opened;
    opened_for = index;
    return std::make_unique<Sink>(*this);
  }
  Result<RestoreProgress> begin_restore_staged(std::unique_ptr<SnapshotSink> sink,
                                               LogIndex index) override {
    auto& staged = dynamic_cast<Sink&>(*sink);
    if (Status s = restore(staged.staged, index); !s.ok()) return s;
    return RestoreProgress::kDone;
  }
  int opened = 0;
  int open_sinks = 0;
  LogIndex opened_for{};
  bool fail_appends = false;
};

// The chunks of a snapshot of "v0,v1,v2," through index 11, 3 bytes each.
InstallSnapshot chunk_of_v012(uint64_t offset, Term term = Term(1)) {
  const std::string state = "v0,v1,v2,";
  return InstallSnapshot{.term = term,
                         .last_index = LogIndex(11),
                         .last_term = Term(1),
                         .config = {NodeId(1), NodeId(2), NodeId(3)},
                         .state = state.substr(offset, 3),
                         .offset = offset,
                         .total = state.size()};
}

TEST(RaftMachineKeepsState, AFollowerStagesChunksInItsMachinesSinkWhichGoesWithTheTransfer) {
  FakeEnv env;
  StagesItself sm;
  Raft f(env, three(3), {}, sm, machine_keeps_state());
  f.on_message(NodeId(1), chunk_of_v012(0));
  f.on_message(NodeId(1), chunk_of_v012(3));
  EXPECT_EQ(sm.opened, 1);
  EXPECT_EQ(sm.opened_for, LogIndex(11));
  EXPECT_EQ(sm.open_sinks, 1);
  auto acks = env.take<InstallSnapshotReply>();
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[1].second.offset, 6u);
  // A new leader's snapshot: the staged chunks go with the old transfer.
  f.on_message(NodeId(2), chunk_of_v012(0, Term(2)));
  EXPECT_EQ(sm.opened, 2);
  EXPECT_EQ(sm.open_sinks, 1);
  // A chunk the sink cannot take (a disk that stays full): the transfer
  // starts over, in memory, so that it can end.
  sm.fail_appends = true;
  f.on_message(NodeId(2), chunk_of_v012(3, Term(2)));
  EXPECT_EQ(sm.open_sinks, 0);
  acks = env.take<InstallSnapshotReply>();
  ASSERT_FALSE(acks.empty());
  EXPECT_EQ(acks.back().second.offset, 0u);
  EXPECT_EQ(f.snapshot_stats().chunks_refused, 1u);
  for (uint64_t offset : {0, 3, 6}) f.on_message(NodeId(2), chunk_of_v012(offset, Term(2)));
  EXPECT_EQ(sm.opened, 2) << "the transfer after a refusal opened a sink again";
  EXPECT_EQ(sm.open_sinks, 0);
  EXPECT_EQ(f.snapshot_stats().chunks_refused, 1u);
  EXPECT_EQ(sm.order, (std::vector<std::string>{"v0", "v1", "v2"}));
  EXPECT_EQ(sm.restored_at, LogIndex(11));
  EXPECT_EQ(f.snapshot_stats().installed, 1u);
  env.sync(f);
  auto done = env.take<AppendReply>();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].second.match_index, LogIndex(11));
}

TEST(RaftMachineKeepsState,
     ARestoreThatFailsInTheBackgroundLeavesTheFollowerToTakeTheSnapshotAgain) {
  FakeEnv env;
  AppliedOrder sm;
  Raft r(env, three(1), {}, sm, machine_keeps_state());
  commit_compact_and_hear_node3_lacks_everything(env, r);
  auto snaps = env.take<InstallSnapshot>();
  ASSERT_EQ(snaps.size(), 1u);
  FakeEnv env3;
  RestoresLater fsm;
  Raft f(env3, three(3), {}, fsm, machine_keeps_state());
  f.on_message(NodeId(1), snaps[0].second);
  ASSERT_TRUE(f.installing_snapshot());
  f.on_restored(LogIndex(11), Status::IOError("disk full"));
  EXPECT_FALSE(f.installing_snapshot());
  EXPECT_EQ(f.applied_index(), LogIndex(0));
  EXPECT_EQ(f.snapshot_stats().restores_failed, 1u);
  EXPECT_EQ(f.snapshot_stats().installed, 0u);
  env3.sync(f);
  EXPECT_TRUE(env3.take<AppendReply>().empty());
  // The leader's resend starts it over.
  f.on_message(NodeId(1), snaps[0].second);
  EXPECT_EQ(fsm.started, 2);
  ASSERT_TRUE(fsm.finish().ok());
  f.on_restored(LogIndex(11), Status::OK());
  EXPECT_EQ(f.applied_index(), LogIndex(11));
  EXPECT_EQ(fsm.order, sm.order);
}

// A restore that fails after it replaced part of the state (a restore in
// pieces whose engine write failed midway): the member applies nothing more,
// tells its leader it needs a snapshot, never leads, and the next snapshot
// installed makes it an ordinary member again.
TEST(RaftMachineKeepsState, ARestoreThatFailsHavingReplacedPartOfTheStateWaitsForAWholeSnapshot) {
  FakeEnv env;
  AppliedOrder sm;
  Raft r(env, three(1), {}, sm, machine_keeps_state());
  commit_compact_and_hear_node3_lacks_everything(env, r);
  auto snaps = env.take<InstallSnapshot>();
  ASSERT_EQ(snaps.size(), 1u);
  FakeEnv env3;
  RestoresLater fsm;
  Raft f(env3, three(3), {}, fsm, machine_keeps_state());
  f.on_message(NodeId(1), snaps[0].second);
  ASSERT_TRUE(f.installing_snapshot());
  f.on_restored(LogIndex(11), Status::IOError("disk full"), Raft::RestoreFailure::kStateLost);
  EXPECT_FALSE(f.installing_snapshot());
  EXPECT_TRUE(f.state_lost());
  EXPECT_TRUE(f.receiving_snapshot(env3.now(), milliseconds(1))) << "its host tells its peers";
  EXPECT_EQ(f.snapshot_stats().restores_failed, 1u);
  // Entries after the snapshot's index do not fit its log; a heartbeat is
  // answered with the flag, whatever the log holds.
  f.on_message(NodeId(1), AppendEntries{.term = Term(1),
                                        .prev_index = LogIndex(0),
                                        .prev_term = Term(0),
                                        .leader_commit = LogIndex(0),
                                        .entries = {}});
  env3.sync(f);
  auto replies = env3.take<AppendReply>();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(replies[0].second.needs_snapshot);
  EXPECT_EQ(replies[0].second.applied_index, LogIndex(0));
  // Never a candidate: pre-votes only, and a handed leadership is refused.
  env3.advance(f, kLongerThanAnyElectionTimeout);
  for (const auto& [to, v] : env3.take<VoteRequest>()) EXPECT_TRUE(v.pre_vote);
  f.on_message(NodeId(2), VoteReply{.term = Term(2), .granted = true, .pre_vote = true});
  f.on_message(NodeId(1), VoteReply{.term = Term(2), .granted = true, .pre_vote = true});
  f.on_message(NodeId(1), TimeoutNow{.term = Term(1)});
  for (const auto& [to, v] : env3.take<VoteRequest>()) EXPECT_TRUE(v.pre_vote) << "campaigned";
  EXPECT_NE(f.role(), Raft::Role::kCandidate);
  EXPECT_NE(f.role(), Raft::Role::kLeader);
  // The leader's snapshot again: restored whole, an ordinary member.
  f.on_message(NodeId(1), snaps[0].second);
  EXPECT_EQ(fsm.started, 2);
  ASSERT_TRUE(fsm.finish().ok());
  f.on_restored(LogIndex(11), Status::OK());
  EXPECT_FALSE(f.state_lost());
  EXPECT_EQ(f.applied_index(), LogIndex(11));
  EXPECT_EQ(fsm.order, sm.order);
}

// A restart after a restore in pieces was cut short: the machine holds part
// of a state newer than the log, so even a log never compacted is not
// replayed over it; the member waits for a snapshot.
TEST(RaftMachineKeepsState, AMachineWithAPartialStateWaitsForASnapshotEvenWithItsWholeLog) {
  FakeEnv env;
  AppliedOrder sm;
  Raft r(env, three(1), {}, sm, machine_keeps_state());
  elect_and_commit(env, r, 10);
  env.sync(r);
  RaftOptions partial = machine_keeps_state();
  partial.machine_state_partial = true;
  FakeEnv env2;
  AppliedOrder held;
  Raft restarted(env2, three(1), env.records, held, partial);
  EXPECT_EQ(restarted.log().snapshot_index(), LogIndex(0));
  EXPECT_TRUE(restarted.state_lost());
  restarted.on_message(NodeId(2), AppendEntries{.term = Term(2),
                                                .prev_index = LogIndex(11),
                                                .prev_term = Term(1),
                                                .leader_commit = LogIndex(12),
                                                .entries = {cmd(2, 77, "k", "v12")}});
  env2.sync(restarted);
  auto acks = env2.take<AppendReply>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_TRUE(acks[0].second.needs_snapshot);
  EXPECT_TRUE(held.order.empty()) << "replayed its log over a partial state";
  // Without the flag the same log is replayed (a rebuild from nothing).
  RaftOptions whole = machine_keeps_state();
  whole.machine_state_lost = true;
  FakeEnv env3;
  AppliedOrder rebuilt;
  Raft replayed(env3, three(1), env.records, rebuilt, whole);
  EXPECT_FALSE(replayed.state_lost());
}

// ---------------------------------------------------------------- snapshot chunks

RaftOptions chunks_of_4() {
  RaftOptions o = snapshot_every_4();
  o.snapshot_chunk_bytes = 4;
  return o;
}

// Delivers what the leader (node 1) sends node 3 and what node 3 answers until
// neither sends anything more; node 3's records become durable as it goes.
// Returns the InstallSnapshot chunks delivered.
int pump(FakeEnv& leader_env, Raft& leader, FakeEnv& follower_env, Raft& follower) {
  int chunks = 0;
  for (int step = 0; step < 1000; ++step) {
    bool moved = false;
    std::vector<std::pair<NodeId, Message>> out;
    std::swap(out, leader_env.sent);
    for (auto& [to, m] : out) {
      if (to != NodeId(3)) continue;
      chunks += std::holds_alternative<InstallSnapshot>(m) ? 1 : 0;
      follower.on_message(NodeId(1), m);
      moved = true;
    }
    follower_env.sync(follower);
    out.clear();
    std::swap(out, follower_env.sent);
    for (auto& [to, m] : out) {
      leader.on_message(NodeId(3), m);
      moved = true;
    }
    if (!moved) break;
  }
  return chunks;
}

TEST(RaftSnapshotChunks, ASnapshotTravelsOneChunkAtATimeAndIsRestoredOnceWhole) {
  FakeEnv env;
  AppliedOrder lsm;
  Raft r(env, three(1), {}, lsm, chunks_of_4());
  elect_and_commit(env, r, 10);
  env.sent.clear();
  r.on_message(NodeId(3),
               AppendReply{.term = Term(1), .success = false, .conflict_index = LogIndex(1)});
  auto first = env.take<InstallSnapshot>();
  ASSERT_EQ(first.size(), 1u) << "one chunk in flight";
  const InstallSnapshot c0 = first[0].second;
  EXPECT_EQ(c0.last_index, r.log().snapshot_index());
  EXPECT_EQ(c0.offset, 0u);
  EXPECT_EQ(c0.state.size(), 4u);
  EXPECT_GT(c0.total, 12u) << "the snapshot needs several chunks";
  EXPECT_TRUE(env.sent.empty()) << "nothing but the snapshot goes to a follower that needs it";

  // The follower stages the chunk, restores nothing yet, and asks for the next.
  FakeEnv fenv;
  AppliedOrder fsm;
  Raft f(fenv, three(3), {}, fsm, chunks_of_4());
  f.on_message(NodeId(1), c0);
  EXPECT_EQ(fsm.restores, 0);
  EXPECT_EQ(f.commit_index(), LogIndex(0));
  EXPECT_EQ(fenv.records.size(), 1u) << "only its new term: staged chunks are not persisted";
  auto acks = fenv.take<InstallSnapshotReply>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].second.offset, 4u);
  EXPECT_EQ(acks[0].second.last_index, c0.last_index);
  r.on_message(NodeId(3), acks[0].second);
  auto second = env.take<InstallSnapshot>();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].second.offset, 4u);
  f.on_message(NodeId(1), second[0].second);

  // The rest, then the entries after the snapshot: the follower restored once,
  // and holds exactly what the leader applied.
  const int chunks = 2 + pump(env, r, fenv, f);
  EXPECT_EQ(static_cast<uint64_t>(chunks), (c0.total + 3) / 4);
  EXPECT_EQ(fsm.restores, 1);
  EXPECT_EQ(f.snapshot_stats().installed, 1u);
  EXPECT_EQ(f.snapshot_stats().most_chunks, (c0.total + 3) / 4);
  EXPECT_EQ(r.follower_match().at(NodeId(3)), r.log().last_index());
  EXPECT_EQ(f.commit_index(), r.commit_index());
  EXPECT_EQ(fsm.order, lsm.order);
  // And it restarts from the checkpoint of the assembled snapshot.
  FakeEnv env2;
  AppliedOrder again;
  Raft restarted(env2, three(3), fenv.records, again, chunks_of_4());
  EXPECT_EQ(restarted.log().snapshot_index(), f.log().snapshot_index());
  EXPECT_EQ(again.restores, 1);
}

// A snapshot "v0,v1,v2,v3," at index 6 of term 1, in three chunks of 4 bytes.
InstallSnapshot chunk(uint64_t term, uint64_t index, int k) {
  const std::string state = "v0,v1,v2,v3,";
  return InstallSnapshot{.term = Term(term),
                         .last_index = LogIndex(index),
                         .last_term = Term(1),
                         .config = {NodeId(1), NodeId(2), NodeId(3)},
                         .state = state.substr(static_cast<size_t>(k) * 4, 4),
                         .offset = static_cast<uint64_t>(k) * 4,
                         .total = state.size()};
}

uint64_t acked_offset(FakeEnv& env) {
  auto acks = env.take<InstallSnapshotReply>();
  EXPECT_EQ(acks.size(), 1u);
  return acks.empty() ? ~uint64_t{0} : acks.back().second.offset;
}

TEST(RaftSnapshotChunks, DuplicatedLostAndReorderedChunksAreStagedInOrder) {
  FakeEnv env;
  AppliedOrder sm;
  Raft f(env, three(3), {}, sm, chunks_of_4());
  f.on_message(NodeId(1), chunk(1, 6, 0));
  EXPECT_EQ(acked_offset(env), 4u);
  f.on_message(NodeId(1), chunk(1, 6, 0));  // duplicated
  EXPECT_EQ(acked_offset(env), 4u) << "a duplicate is not staged twice";
  f.on_message(NodeId(1), chunk(1, 6, 2));  // chunk 1 lost or late
  EXPECT_EQ(acked_offset(env), 4u) << "a chunk past a gap is refused: resume at the gap";
  f.on_message(NodeId(1), chunk(1, 6, 1));
  EXPECT_EQ(acked_offset(env), 8u);
  EXPECT_EQ(sm.restores, 0);
  f.on_message(NodeId(1), chunk(1, 6, 2));
  EXPECT_EQ(sm.restores, 1);
  EXPECT_EQ(sm.order, (std::vector<std::string>{"v0", "v1", "v2", "v3"}));
  EXPECT_EQ(f.commit_index(), LogIndex(6));
  EXPECT_TRUE(env.take<AppendReply>().empty()) << "installed, not yet durable";
  env.sync(f);
  auto done = env.take<AppendReply>();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_TRUE(done[0].second.success);
  EXPECT_EQ(done[0].second.match_index, LogIndex(6));
  // A late copy of any chunk is answered as done and restores nothing.
  f.on_message(NodeId(1), chunk(1, 6, 1));
  EXPECT_EQ(sm.restores, 1);
  auto late = env.take<AppendReply>();
  ASSERT_EQ(late.size(), 1u);
  EXPECT_EQ(late[0].second.match_index, LogIndex(6));
  EXPECT_EQ(f.snapshot_stats().chunks_accepted, 3u);
  EXPECT_EQ(f.snapshot_stats().chunks_refused, 2u);
}

TEST(RaftSnapshotChunks, ANewLeaderOrANewerSnapshotDropsStagedChunks) {
  FakeEnv env;
  AppliedOrder sm;
  Raft f(env, three(3), {}, sm, chunks_of_4());
  f.on_message(NodeId(1), chunk(1, 6, 0));
  EXPECT_EQ(acked_offset(env), 4u);
  // Node 2 leads term 2 and sends the same snapshot point from the middle:
  // the chunks staged from node 1 do not count, start over.
  f.on_message(NodeId(2), chunk(2, 6, 1));
  EXPECT_EQ(acked_offset(env), 0u);
  // Node 1's chunks are stale now.
  f.on_message(NodeId(1), chunk(1, 6, 1));
  auto stale = env.take<AppendReply>();
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_FALSE(stale[0].second.success);
  EXPECT_EQ(stale[0].second.term, Term(2));
  // Node 2 starts at 0, then takes a newer snapshot (index 7) and sends that:
  // the older one's staged chunks go, and its late chunks are ignored.
  f.on_message(NodeId(2), chunk(2, 6, 0));
  EXPECT_EQ(acked_offset(env), 4u);
  f.on_message(NodeId(2), chunk(2, 7, 0));
  EXPECT_EQ(acked_offset(env), 4u);
  f.on_message(NodeId(2), chunk(2, 6, 1));
  EXPECT_TRUE(env.sent.empty()) << "a chunk of the older snapshot is not staged";
  f.on_message(NodeId(2), chunk(2, 7, 1));
  f.on_message(NodeId(2), chunk(2, 7, 2));
  EXPECT_EQ(sm.restores, 1);
  EXPECT_EQ(f.commit_index(), LogIndex(7));
  EXPECT_EQ(f.log().snapshot_index(), LogIndex(7));
  EXPECT_EQ(sm.order, (std::vector<std::string>{"v0", "v1", "v2", "v3"}));
}

TEST(RaftSnapshotChunks, TheLeaderResumesWhereTheFollowerIsAndFinishesTheSnapshotItStarted) {
  FakeEnv env;
  AppliedOrder lsm;
  Raft r(env, three(1), {}, lsm, chunks_of_4());
  elect_and_commit(env, r, 10);
  env.sent.clear();
  r.on_message(NodeId(3),
               AppendReply{.term = Term(1), .success = false, .conflict_index = LogIndex(1)});
  const InstallSnapshot c0 = env.take<InstallSnapshot>().at(0).second;
  const LogIndex pinned = c0.last_index;
  auto ack = [&](uint64_t offset) {
    r.on_message(NodeId(3),
                 InstallSnapshotReply{.term = Term(1), .last_index = pinned, .offset = offset});
    auto next = env.take<InstallSnapshot>();
    EXPECT_EQ(next.size(), 1u);
    return next.empty() ? InstallSnapshot{} : next[0].second;
  };
  EXPECT_EQ(ack(4).offset, 4u);
  EXPECT_EQ(ack(8).offset, 8u);
  // The follower lost its staged chunks (it restarted): from the start again.
  EXPECT_EQ(ack(0).offset, 0u);
  EXPECT_EQ(ack(4).offset, 4u);
  // A chunk or its answer lost: a heartbeat finding no progress since the last
  // one (the first still sees the acknowledgements above) resends it.
  env.advance(r, milliseconds(25));
  EXPECT_TRUE(env.take<InstallSnapshot>().empty());
  env.advance(r, milliseconds(25));
  auto resent = env.take<InstallSnapshot>();
  ASSERT_FALSE(resent.empty());
  EXPECT_EQ(resent.back().second.offset, 4u);
  // The leader takes a newer snapshot meanwhile: the transfer keeps the one it
  // started, so it can finish.
  for (int i = 0; i < 8; ++i) {
    r.on_request(request(200 + i, ClientOp::kWrite, "k", "w" + std::to_string(i)));
    env.sync(r);
    r.on_message(
        NodeId(2),
        AppendReply{.term = Term(1), .success = true, .match_index = r.log().last_index()});
  }
  ASSERT_GT(r.log().snapshot_index(), pinned);
  InstallSnapshot c = ack(8);
  EXPECT_EQ(c.last_index, pinned);
  EXPECT_EQ(c.total, c0.total);
  // Once node 3 holds it, the leader goes on with the newer snapshot.
  r.on_message(NodeId(3), AppendReply{.term = Term(1), .success = true, .match_index = pinned});
  auto newer = env.take<InstallSnapshot>();
  ASSERT_EQ(newer.size(), 1u);
  EXPECT_EQ(newer[0].second.last_index, r.log().snapshot_index());
  EXPECT_EQ(newer[0].second.offset, 0u);
}

TEST(RaftTransfer, ALeaderHandsOverToAnUpToDateFollowerAndRefusesWritesMeanwhile) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = r.log().last_index()});
  EXPECT_TRUE(r.transfer_leadership(NodeId(2)).ok());
  auto go = env.take<TimeoutNow>();
  ASSERT_EQ(go.size(), 1u);
  EXPECT_EQ(go[0].first, NodeId(2));
  EXPECT_EQ(go[0].second.term, Term(1));
  r.on_request(request(1, ClientOp::kWrite, "k", "v"));
  ASSERT_EQ(env.replies.size(), 1u);
  EXPECT_EQ(env.replies[0].second.outcome, ClientResponse::Outcome::kFail);
  EXPECT_EQ(env.replies[0].second.leader_hint, NodeId(2));
  EXPECT_EQ(r.transfer_leadership(NodeId(3)).code(), Status::Code::kBusy);
}

TEST(RaftTransfer, TheTargetIsBroughtUpToDateBeforeTimeoutNow) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  ASSERT_TRUE(r.transfer_leadership(NodeId(3)).ok());
  EXPECT_TRUE(env.take<TimeoutNow>().empty()) << "node 3 has not acknowledged the no-op yet";
  r.on_message(NodeId(3),
               AppendReply{.term = Term(1), .success = true, .match_index = r.log().last_index()});
  EXPECT_EQ(env.take<TimeoutNow>().size(), 1u);
}

TEST(RaftTransfer, AnUnfinishedTransferIsAbandoned) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  ASSERT_TRUE(r.transfer_leadership(NodeId(3)).ok());
  for (int i = 0; i < 20; ++i) {  // node 2 keeps the leader in office; 3 never answers
    env.advance(r, milliseconds(20));
    r.on_message(NodeId(2), AppendReply{.term = Term(1), .success = true});
  }
  ASSERT_EQ(r.role(), Raft::Role::kLeader);
  r.on_request(request(1, ClientOp::kWrite, "k", "v"));
  EXPECT_TRUE(env.replies.empty()) << "writes are taken again";
  EXPECT_EQ(r.log().last_index(), LogIndex(2));
}

TEST(RaftTransfer, TimeoutNowMakesAFollowerCampaignAtOnceWithoutPreVote) {
  FakeEnv env;
  RaftKv r(env, three(2), {});
  r.on_message(NodeId(1), AppendEntries{.term = Term(1)});
  r.on_message(NodeId(1), TimeoutNow{.term = Term(1)});
  EXPECT_EQ(r.role(), Raft::Role::kCandidate);
  EXPECT_EQ(r.term(), Term(2));
  env.sync(r);
  auto asks = env.take<VoteRequest>();
  ASSERT_EQ(asks.size(), 2u);
  EXPECT_FALSE(asks[0].second.pre_vote);
  // A stale TimeoutNow (an older term) does nothing.
  FakeEnv env2;
  RaftKv f(env2, three(2), {});
  f.on_message(NodeId(1), AppendEntries{.term = Term(3)});
  f.on_message(NodeId(1), TimeoutNow{.term = Term(2)});
  EXPECT_EQ(f.role(), Raft::Role::kFollower);
}

// ---------------------------------------------------------------- learners

TEST(RaftLearner, ALearnerGetsTheLogButCountsTowardNoMajority) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(1)});
  ASSERT_EQ(r.commit_index(), LogIndex(1));
  EXPECT_EQ(r.add_learner(NodeId(2)).code(), Status::Code::kInvalidArgument) << "a member";
  env.sent.clear();
  ASSERT_TRUE(r.add_learner(NodeId(4)).ok());
  EXPECT_TRUE(r.add_learner(NodeId(4)).ok()) << "adding it again changes nothing";
  EXPECT_EQ(r.config().size(), 3u) << "no config entry for a learner";
  EXPECT_EQ(r.log().last_index(), LogIndex(1));
  auto to_learner = env.take<AppendEntries>();
  ASSERT_EQ(to_learner.size(), 1u);
  EXPECT_EQ(to_learner[0].first, NodeId(4));

  // A write reaches the learner too; its acknowledgement commits nothing (with
  // the leader's own it would make 2 of 3 if it counted).
  r.on_request(request(5, ClientOp::kWrite, "k", "v"));
  env.sync(r);
  bool sent_to_learner = false;
  for (const auto& [to, m] : env.take<AppendEntries>()) sent_to_learner |= to == NodeId(4);
  EXPECT_TRUE(sent_to_learner);
  r.on_message(NodeId(4),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(2)});
  EXPECT_EQ(r.commit_index(), LogIndex(1)) << "a learner counted toward commit";
  EXPECT_EQ(r.learner_match().at(NodeId(4)), LogIndex(2));
  EXPECT_FALSE(r.follower_match().contains(NodeId(4)));
  EXPECT_EQ(r.transfer_leadership(NodeId(4)).code(), Status::Code::kInvalidArgument);

  // A read whose round only the learner echoes is not served.
  r.on_request(request(6, ClientOp::kRead, "k"));
  auto round = env.take<AppendEntries>();
  ASSERT_FALSE(round.empty());
  const uint64_t n = round.back().second.round;
  r.on_message(NodeId(4),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(2), .round = n});
  EXPECT_TRUE(env.replies.empty()) << "a learner confirmed leadership";
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(2), .round = n});
  EXPECT_EQ(r.commit_index(), LogIndex(2));
  ASSERT_EQ(env.replies.size(), 2u) << "the write and the read";

  // CheckQuorum: hearing only the learner, the leader steps down.
  for (int i = 0; i < 16; ++i) {
    env.advance(r, milliseconds(20));
    r.on_message(NodeId(4), AppendReply{.term = Term(1), .success = true,
                                        .match_index = LogIndex(2)});
  }
  EXPECT_EQ(r.role(), Raft::Role::kFollower) << "a learner kept a leader in office";
  EXPECT_TRUE(r.learner_match().empty()) << "learners are the leader's";
}

TEST(RaftLearner, ALearnerIsPromotedOnlyOnceCaughtUpAndKeepsItsProgress) {
  FakeEnv env;
  RaftOptions o;
  o.learner_catch_up = 2;
  RaftKv r(env, three(1), {}, o);
  elect(env, r);
  ASSERT_TRUE(r.add_learner(NodeId(4)).ok());
  for (int i = 0; i < 5; ++i) {
    r.on_request(request(10 + i, ClientOp::kWrite, "k", "v" + std::to_string(i)));
    env.sync(r);
    r.on_message(NodeId(2), AppendReply{.term = Term(1), .success = true,
                                        .match_index = r.log().last_index()});
  }
  ASSERT_EQ(r.commit_index(), LogIndex(6));
  r.on_message(NodeId(4),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(3)});
  EXPECT_EQ(r.change_membership(NodeId(4), true).code(), Status::Code::kBusy)
      << "3 entries behind, more than learner_catch_up";
  EXPECT_EQ(r.config().size(), 3u);
  r.on_message(NodeId(4),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(4)});
  ASSERT_TRUE(r.change_membership(NodeId(4), true).ok());
  EXPECT_EQ(r.config(), (std::vector<NodeId>{NodeId(1), NodeId(2), NodeId(3), NodeId(4)}));
  EXPECT_TRUE(r.learner_match().empty());
  EXPECT_EQ(r.follower_match().at(NodeId(4)), LogIndex(4)) << "promoted with its progress";
  // Now it counts: 4 members, majority 3: the leader, 2 and 4.
  env.sync(r);
  r.on_message(NodeId(2), AppendReply{.term = Term(1), .success = true,
                                      .match_index = r.log().last_index()});
  EXPECT_EQ(r.commit_index(), LogIndex(6)) << "2 of 4 is no majority";
  r.on_message(NodeId(4), AppendReply{.term = Term(1), .success = true,
                                      .match_index = r.log().last_index()});
  EXPECT_EQ(r.commit_index(), r.log().last_index());
}

TEST(RaftLearner, RemovingALearnerDropsItWithoutAConfigChange) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  ASSERT_TRUE(r.add_learner(NodeId(4)).ok());
  const LogIndex last = r.log().last_index();
  ASSERT_TRUE(r.change_membership(NodeId(4), false).ok());
  EXPECT_TRUE(r.learner_match().empty());
  EXPECT_EQ(r.log().last_index(), last);
  env.sent.clear();
  r.on_request(request(5, ClientOp::kWrite, "k", "v"));
  for (const auto& [to, m] : env.sent) EXPECT_NE(to, NodeId(4));
}

// The learner's side: a node outside its config takes the leader's entries and
// never campaigns, however long it waits.
TEST(RaftLearner, ALearnerFollowsAndNeverCampaigns) {
  FakeEnv env;
  RaftKv l(env, Membership{NodeId(4), {NodeId(1), NodeId(2), NodeId(3)}}, {});
  l.on_message(NodeId(1), AppendEntries{.term = Term(1),
                                        .leader_commit = LogIndex(1),
                                        .entries = {noop(1)}});
  env.sync(l);
  auto acks = env.take<AppendReply>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].second.match_index, LogIndex(1));
  EXPECT_EQ(l.commit_index(), LogIndex(1));
  env.advance(l, 10 * kLongerThanAnyElectionTimeout);
  EXPECT_EQ(l.role(), Raft::Role::kFollower);
  EXPECT_TRUE(env.take<VoteRequest>().empty());
}

TEST(RaftMembership, AChangeWaitsForAnEntryOfTheLeadersTermAndForThePreviousChange) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  EXPECT_EQ(r.change_membership(NodeId(3), false).code(), Status::Code::kBusy)
      << "the no-op of this term has not committed";
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(1)});
  ASSERT_TRUE(r.change_membership(NodeId(3), false).ok());
  EXPECT_EQ(r.config(), (std::vector<NodeId>{NodeId(1), NodeId(2)})) << "effective on append";
  EXPECT_EQ(r.change_membership(NodeId(2), false).code(), Status::Code::kBusy)
      << "the first change has not committed";
  EXPECT_EQ(r.change_membership(NodeId(1), true).code(), Status::Code::kInvalidArgument);
}

TEST(RaftMembership, TheMajorityFollowsTheConfig) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(1)});
  ASSERT_TRUE(r.change_membership(NodeId(3), false).ok());
  env.sync(r);
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(2)});
  ASSERT_EQ(r.commit_index(), LogIndex(2));
  ASSERT_TRUE(r.change_membership(NodeId(2), false).ok());
  env.sync(r);
  // Config {1}: the leader alone is a majority now.
  EXPECT_EQ(r.commit_index(), LogIndex(3));
  r.on_request(request(7, ClientOp::kWrite, "k", "v"));
  env.sync(r);
  ASSERT_EQ(env.replies.size(), 1u);
  EXPECT_EQ(env.replies[0].second.outcome, ClientResponse::Outcome::kOk);
}

TEST(RaftMembership, ALeaderThatRemovesItselfLeadsUntilTheChangeCommitsThenStepsDown) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(1)});
  ASSERT_TRUE(r.change_membership(NodeId(1), false).ok());
  env.sync(r);
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(2)});
  EXPECT_EQ(r.role(), Raft::Role::kLeader) << "its own copy must not count: {2,3} decide";
  EXPECT_EQ(r.commit_index(), LogIndex(1));
  r.on_message(NodeId(3),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(2)});
  EXPECT_EQ(r.commit_index(), LogIndex(2));
  EXPECT_EQ(r.role(), Raft::Role::kFollower);
  // Outside the config it never campaigns.
  env.sent.clear();
  env.advance(r, 3 * kLongerThanAnyElectionTimeout);
  EXPECT_TRUE(env.take<VoteRequest>().empty());
}

TEST(RaftMembership, AConfigEntryThatIsOverwrittenIsRevertedAndSurvivesRestart) {
  FakeEnv env;
  RaftKv r(env, three(2), {});
  Entry config{.term = Term(1), .kind = Entry::Kind::kConfig, .members = {NodeId(1), NodeId(2)}};
  r.on_message(NodeId(1), AppendEntries{.term = Term(1), .entries = {noop(1), config}});
  EXPECT_EQ(r.config(), config.members);
  {
    FakeEnv again;
    RaftKv restarted(again, three(2), env.records);
    EXPECT_EQ(restarted.config(), config.members) << "the config is rebuilt from the log";
  }
  // The leader of term 2 never had it: index 2 is overwritten.
  r.on_message(
      NodeId(3),
      AppendEntries{
          .term = Term(2), .prev_index = LogIndex(1), .prev_term = Term(1), .entries = {noop(2)}});
  EXPECT_EQ(r.config(), (std::vector<NodeId>{NodeId(1), NodeId(2), NodeId(3)}));
}

RaftOptions quiescing() {
  RaftOptions o;
  o.quiesce = true;
  return o;
}

// Answers every heartbeat round sent so far as members holding `match`.
void answer_rounds(FakeEnv& env, Raft& r, LogIndex match) {
  for (auto& [to, m] : env.take<AppendEntries>()) {
    r.on_message(
        to, AppendReply{.term = m.term, .success = true, .match_index = match, .round = m.round});
  }
}

// A leader whose members all answered a round holding its whole, committed log.
void elect_and_quiesce(FakeEnv& env, Raft& r) {
  elect(env, r);
  answer_rounds(env, r, LogIndex(1));  // the no-op
  ASSERT_EQ(r.commit_index(), LogIndex(1));
  for (int i = 0; i < 5 && !r.quiesced(); ++i) {
    env.advance(r, milliseconds(20));
    answer_rounds(env, r, LogIndex(1));
  }
  ASSERT_TRUE(r.quiesced());
}

TEST(RaftQuiescence, AnIdleLeaderTellsItsMembersOnceThenSendsNothing) {
  FakeEnv env;
  RaftKv r(env, three(1), {}, quiescing());
  elect(env, r);
  answer_rounds(env, r, LogIndex(1));
  bool told = false;
  for (int i = 0; i < 5 && !r.quiesced(); ++i) {
    env.advance(r, milliseconds(20));
    for (auto& [to, m] : env.take<AppendEntries>()) {
      told = told || m.quiesce;
      r.on_message(
          to, AppendReply{
                  .term = m.term, .success = true, .match_index = LogIndex(1), .round = m.round});
    }
  }
  ASSERT_TRUE(r.quiesced());
  EXPECT_TRUE(told) << "quiesced without telling its members";
  env.advance(r, std::chrono::seconds(10));
  EXPECT_TRUE(env.sent.empty()) << "a quiesced leader still sends";
  EXPECT_TRUE(env.timers.empty()) << "a quiesced leader still runs timers";
  EXPECT_EQ(r.role(), Raft::Role::kLeader);
  // A write wakes it: the entry goes out without the flag, timers run again.
  r.on_request(request(9, ClientOp::kWrite, "k", "v"));
  env.sync(r);
  auto appends = env.take<AppendEntries>();
  ASSERT_EQ(appends.size(), 2u);
  for (auto& [to, m] : appends) EXPECT_FALSE(m.quiesce);
  EXPECT_FALSE(r.quiesced());
  EXPECT_FALSE(env.timers.empty());
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(2)});
  ASSERT_EQ(env.replies.size(), 1u);
  EXPECT_EQ(env.replies[0].second.outcome, ClientResponse::Outcome::kOk);
}

TEST(RaftQuiescence, ALeaderWithAMemberBehindOrSilentKeepsHeartbeating) {
  FakeEnv env;
  RaftKv r(env, three(1), {}, quiescing());
  elect(env, r);
  for (int i = 0; i < 20; ++i) {
    env.advance(r, milliseconds(20));
    // Node 2 answers every round; node 3 never does.
    for (auto& [to, m] : env.take<AppendEntries>()) {
      EXPECT_FALSE(m.quiesce);
      if (to == NodeId(2)) {
        r.on_message(
            to, AppendReply{
                    .term = m.term, .success = true, .match_index = LogIndex(1), .round = m.round});
      }
    }
  }
  EXPECT_FALSE(r.quiesced());
  EXPECT_EQ(r.role(), Raft::Role::kLeader);
}

TEST(RaftQuiescence, AReadOrAVoteRequestWakesAQuiescedLeader) {
  FakeEnv env;
  RaftKv r(env, three(1), {}, quiescing());
  elect_and_quiesce(env, r);
  env.sent.clear();
  r.on_request(request(5, ClientOp::kRead, "k"));
  EXPECT_FALSE(r.quiesced());
  auto round = env.take<AppendEntries>();
  ASSERT_EQ(round.size(), 2u);
  r.on_message(NodeId(2), AppendReply{.term = Term(1),
                                      .success = true,
                                      .match_index = LogIndex(1),
                                      .round = round[0].second.round});
  ASSERT_EQ(env.replies.size(), 1u);

  FakeEnv env2;
  RaftKv r2(env2, three(1), {}, quiescing());
  elect_and_quiesce(env2, r2);
  env2.sent.clear();
  // A member that missed the quiescing round campaigns: the leader rejects
  // it and heartbeats again, so that member hears it.
  r2.on_message(
      NodeId(3),
      VoteRequest{
          .term = Term(2), .last_index = LogIndex(1), .last_term = Term(1), .pre_vote = true});
  EXPECT_FALSE(r2.quiesced());
  auto replies = env2.take<VoteReply>();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_FALSE(replies[0].second.granted);
  env2.advance(r2, milliseconds(25));
  EXPECT_FALSE(env2.take<AppendEntries>().empty());
}

// A follower told to quiesce, holding the whole committed log.
void quiesce_follower(FakeEnv& env, Raft& f) {
  f.on_message(NodeId(1), AppendEntries{.term = Term(1),
                                        .prev_index = LogIndex(0),
                                        .prev_term = Term(0),
                                        .leader_commit = LogIndex(1),
                                        .round = 1,
                                        .entries = {noop(1)}});
  env.sync(f);
  f.on_message(NodeId(1), AppendEntries{.term = Term(1),
                                        .prev_index = LogIndex(1),
                                        .prev_term = Term(1),
                                        .leader_commit = LogIndex(1),
                                        .round = 2,
                                        .quiesce = true});
  env.sync(f);
  ASSERT_TRUE(f.quiesced());
  ASSERT_EQ(f.leader(), NodeId(1));
  env.sent.clear();
}

TEST(RaftQuiescence, AQuiescedFollowerWaitsForeverUntilTheHostSaysItsLeaderIsDown) {
  FakeEnv env;
  RaftKv f(env, three(2), {}, quiescing());
  quiesce_follower(env, f);
  env.advance(f, std::chrono::seconds(10));
  EXPECT_EQ(f.role(), Raft::Role::kFollower);
  EXPECT_TRUE(env.sent.empty()) << "a quiesced follower campaigned";
  f.on_peer_down(NodeId(3));  // not its leader: nothing changes
  env.advance(f, std::chrono::seconds(1));
  EXPECT_TRUE(env.sent.empty());
  f.on_peer_down(NodeId(1));
  EXPECT_FALSE(f.quiesced());
  env.advance(f, kLongerThanAnyElectionTimeout);
  auto asks = env.take<VoteRequest>();
  ASSERT_EQ(asks.size(), 2u) << "it did not campaign once its leader was down";
  EXPECT_TRUE(asks[0].second.pre_vote);
}

TEST(RaftQuiescence, AnAppendWithoutTheFlagWakesAFollower) {
  FakeEnv env;
  RaftKv f(env, three(2), {}, quiescing());
  quiesce_follower(env, f);
  f.on_message(NodeId(1), AppendEntries{.term = Term(1),
                                        .prev_index = LogIndex(1),
                                        .prev_term = Term(1),
                                        .leader_commit = LogIndex(1),
                                        .round = 3});
  EXPECT_FALSE(f.quiesced());
  env.sync(f);
  env.sent.clear();
  // Awake, it campaigns once its leader goes silent, without any host help.
  env.advance(f, kLongerThanAnyElectionTimeout);
  EXPECT_FALSE(env.take<VoteRequest>().empty());
}

TEST(RaftQuiescence, AQuiescedFollowerRefusesAPreVoteUnlessItComesFromItsRestartedLeader) {
  FakeEnv env;
  RaftKv f(env, three(2), {}, quiescing());
  quiesce_follower(env, f);
  // Node 3 missed the quiescing round and campaigns: its leader is alive.
  f.on_message(
      NodeId(3),
      VoteRequest{
          .term = Term(2), .last_index = LogIndex(1), .last_term = Term(1), .pre_vote = true});
  auto no = env.take<VoteReply>();
  ASSERT_EQ(no.size(), 1u);
  EXPECT_FALSE(no[0].second.granted);

  FakeEnv env2;
  RaftKv g(env2, three(2), {}, quiescing());
  quiesce_follower(env2, g);
  env2.advance(g, std::chrono::seconds(10));
  // Its leader, restarted (a follower now), campaigns: it no longer leads.
  g.on_message(
      NodeId(1),
      VoteRequest{
          .term = Term(2), .last_index = LogIndex(1), .last_term = Term(1), .pre_vote = true});
  auto yes = env2.take<VoteReply>();
  ASSERT_EQ(yes.size(), 1u);
  EXPECT_TRUE(yes[0].second.granted);
}

TEST(RaftQuiescence, TimeoutNowReachesAQuiescedFollowerAndItsElectionTimerRuns) {
  FakeEnv env;
  RaftKv f(env, three(2), {}, quiescing());
  quiesce_follower(env, f);
  f.on_message(NodeId(1), TimeoutNow{.term = Term(1)});
  EXPECT_EQ(f.role(), Raft::Role::kCandidate);
  EXPECT_FALSE(env.timers.empty()) << "a candidate without an election timer never retries";
}

// LOCATE shows every replica's applied index: followers report theirs on their
// acknowledgements, and the leader keeps the latest of each.
TEST(RaftApplied, AnAppendReplyCarriesTheAppliedIndexAndOldRepliesReadAsZero) {
  const AppendReply reply{.term = Term(2),
                          .success = true,
                          .match_index = LogIndex(7),
                          .round = 4,
                          .applied_index = LogIndex(6),
                          .needs_snapshot = true};
  const std::string bytes = encode_message(Message(reply));
  Result<Message> back = decode_message<Message>(bytes);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(std::get<AppendReply>(*back).applied_index, LogIndex(6));
  EXPECT_EQ(std::get<AppendReply>(*back).round, 4u);
  EXPECT_TRUE(std::get<AppendReply>(*back).needs_snapshot);
  // Replies of older versions end after `applied_index` (one byte for the
  // flag), or after `round` (6 is one varint byte).
  Result<Message> without_flag = decode_message<Message>(bytes.substr(0, bytes.size() - 1));
  ASSERT_TRUE(without_flag.ok()) << without_flag.status().to_string();
  EXPECT_EQ(std::get<AppendReply>(*without_flag).applied_index, LogIndex(6));
  EXPECT_FALSE(std::get<AppendReply>(*without_flag).needs_snapshot);
  Result<Message> old = decode_message<Message>(bytes.substr(0, bytes.size() - 2));
  ASSERT_TRUE(old.ok()) << old.status().to_string();
  EXPECT_EQ(std::get<AppendReply>(*old).applied_index, LogIndex(0));
  EXPECT_EQ(std::get<AppendReply>(*old).match_index, LogIndex(7));
}

TEST(RaftApplied, AFollowerReportsItsAppliedIndexAndTheLeaderKeepsIt) {
  FakeEnv env;
  RaftKv f(env, three(2), {});
  f.on_message(NodeId(1), AppendEntries{.term = Term(1),
                                        .leader_commit = LogIndex(1),
                                        .entries = {noop(1), cmd(1, 3, "k", "v")}});
  env.sync(f);
  auto acks = env.take<AppendReply>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].second.match_index, LogIndex(2));
  EXPECT_EQ(acks[0].second.applied_index, LogIndex(1)) << "the leader had committed only 1";

  FakeEnv env1;
  RaftKv leader(env1, three(1), {});
  elect(env1, leader);
  EXPECT_EQ(leader.follower_applied().at(NodeId(2)), LogIndex(0)) << "not heard from yet";
  leader.on_message(NodeId(2), AppendReply{.term = Term(1),
                                           .success = true,
                                           .match_index = LogIndex(1),
                                           .applied_index = LogIndex(1)});
  EXPECT_EQ(leader.follower_applied().at(NodeId(2)), LogIndex(1));
  // A reordered, older report does not move it back.
  leader.on_message(NodeId(2), AppendReply{.term = Term(1), .success = true});
  EXPECT_EQ(leader.follower_applied().at(NodeId(2)), LogIndex(1));
  EXPECT_TRUE(f.follower_applied().empty()) << "only a leader knows its members' indexes";
}

// ---- on_requests: a pass's requests proposed together

std::vector<ClientRequest> writes_batch(uint64_t first_id, size_t n) {
  std::vector<ClientRequest> batch;
  for (size_t i = 0; i < n; ++i) {
    batch.push_back(request(first_id + i, ClientOp::kWrite, "k" + std::to_string(i % 3),
                            "v" + std::to_string(i)));
  }
  return batch;
}

TEST(RaftBatch, ABatchOfWritesIsOneRecordAndOneAppendEntriesPerFollower) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  for (uint64_t n : {2, 3}) {
    r.on_message(NodeId(n),
                 AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(1)});
  }
  ASSERT_EQ(r.commit_index(), LogIndex(1));
  env.sent.clear();
  const size_t records = env.records.size();
  std::vector<ClientRequest> batch = writes_batch(100, 5);
  batch[3].op = ClientOp::kCas;
  batch[3].expected = "v0";
  batch[4].op = ClientOp::kDelete;
  batch[4].value.reset();
  r.on_requests(batch);
  EXPECT_EQ(env.records.size(), records + 1) << "the batch's writes were persisted separately";
  ASSERT_EQ(r.log().last_index(), LogIndex(6));
  for (size_t i = 0; i < batch.size(); ++i) {
    EXPECT_EQ(r.log().at(LogIndex(2 + i)).command.id, batch[i].id) << "appended in order";
  }
  auto appends = env.take<AppendEntries>();
  ASSERT_EQ(appends.size(), 2u) << "one AppendEntries per follower";
  for (const auto& [to, m] : appends) {
    EXPECT_EQ(m.prev_index, LogIndex(1));
    EXPECT_EQ(m.entries.size(), batch.size());
  }
  EXPECT_TRUE(env.sent.empty());
  EXPECT_TRUE(env.replies.empty());
  env.sync(r);
  EXPECT_TRUE(env.replies.empty()) << "answered with only the leader's copy";
}

TEST(RaftBatch, EachRequestIsAnsweredOnceItsEntryIsApplied) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(1)});
  std::vector<ClientRequest> batch = writes_batch(100, 4);
  batch.insert(batch.begin() + 2, request(7, ClientOp::kRead, "k0"));
  r.on_requests(batch);
  env.sync(r);
  // Node 2 holds the first two writes (indexes 2 and 3) only.
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(3)});
  std::vector<RequestId> answered;
  for (const auto& [id, resp] : env.replies) {
    EXPECT_EQ(resp.outcome, ClientResponse::Outcome::kOk);
    if (id != RequestId(7)) answered.push_back(id);
  }
  EXPECT_EQ(answered, (std::vector<RequestId>{RequestId(100), RequestId(101)}));
  // The read waits for a heartbeat round a majority echoed.
  auto rounds = env.take<AppendEntries>();
  ASSERT_FALSE(rounds.empty());
  uint64_t round = 0;
  for (const auto& [to, m] : rounds) round = std::max(round, m.round);
  r.on_message(
      NodeId(3),
      AppendReply{.term = Term(1), .success = true, .match_index = LogIndex(5), .round = round});
  ASSERT_EQ(env.replies.size(), 5u);
  answered.clear();
  for (const auto& [id, resp] : env.replies) {
    EXPECT_EQ(resp.outcome, ClientResponse::Outcome::kOk) << id;
    answered.push_back(id);
  }
  EXPECT_NE(std::find(answered.begin(), answered.end(), RequestId(7)), answered.end());
  EXPECT_EQ(std::count(answered.begin(), answered.end(), RequestId(103)), 1);
  EXPECT_EQ(r.state_machine().read(std::string("k0")), "v3") << "applied in the batch's order";
}

TEST(RaftBatch, AFollowerFailsTheWholeBatchWithTheLeaderAsHint) {
  FakeEnv env;
  RaftKv r(env, three(2), {});
  r.on_message(NodeId(3), AppendEntries{.term = Term(1)});
  const size_t records = env.records.size();
  std::vector<ClientRequest> batch = writes_batch(1, 3);
  batch.push_back(request(9, ClientOp::kRead, "k"));
  r.on_requests(batch);
  ASSERT_EQ(env.replies.size(), batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    EXPECT_EQ(env.replies[i].first, batch[i].id);
    EXPECT_EQ(env.replies[i].second.outcome, ClientResponse::Outcome::kFail);
    EXPECT_EQ(env.replies[i].second.leader_hint, NodeId(3));
  }
  EXPECT_EQ(env.records.size(), records);
  EXPECT_EQ(r.log().last_index(), LogIndex(0));
}

TEST(RaftBatch, ALeaderHandingOverRefusesTheWholeBatch) {
  FakeEnv env;
  RaftKv r(env, three(1), {});
  elect(env, r);
  r.on_message(NodeId(2),
               AppendReply{.term = Term(1), .success = true, .match_index = r.log().last_index()});
  ASSERT_TRUE(r.transfer_leadership(NodeId(2)).ok());
  const size_t records = env.records.size();
  const LogIndex last = r.log().last_index();
  std::vector<ClientRequest> batch = writes_batch(1, 3);
  batch.push_back(request(9, ClientOp::kRead, "k"));
  r.on_requests(batch);
  ASSERT_EQ(env.replies.size(), batch.size());
  for (const auto& [id, resp] : env.replies) {
    EXPECT_EQ(resp.outcome, ClientResponse::Outcome::kFail);
    EXPECT_EQ(resp.leader_hint, NodeId(2));
  }
  EXPECT_EQ(env.records.size(), records);
  EXPECT_EQ(r.log().last_index(), last);
}

TEST(RaftBatch, ABatchWakesAQuiescedLeaderAndAnEmptyOneDoesNothing) {
  FakeEnv env;
  RaftKv r(env, three(1), {}, quiescing());
  elect_and_quiesce(env, r);
  env.sent.clear();
  r.on_requests({});
  EXPECT_TRUE(r.quiesced());
  EXPECT_TRUE(env.sent.empty());
  r.on_requests(writes_batch(1, 2));
  EXPECT_FALSE(r.quiesced());
  EXPECT_EQ(env.take<AppendEntries>().size(), 2u);
}

}  // namespace
}  // namespace statekv::replication::raft
