// update() / initialize() / fetch() against an in-memory register that can
// inject CAS conflicts, lost and late CASes, and answers that never come.
#include "meta/meta_client.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <set>

#include "meta/transitions.h"

namespace statekv::meta {
namespace {

Member member(uint64_t id) {
  Member m;
  m.id = NodeId(id);
  m.address = fmt::format("10.0.0.{}:6379", id);
  m.peer_address = fmt::format("10.0.0.{}:7000", id);
  return m;
}

// A linearizable register map in memory, with faults injected per call.
class FakeRegister final : public RegisterClient {
 public:
  // What the next CAS calls do, one entry per call (then: behave).
  enum class CasFault {
    kApplyThenTimeout,  // takes effect, the caller hears a timeout
    kLoseThenTimeout,   // never takes effect, the caller hears a timeout
    kLateThenTimeout,   // the caller hears a timeout; it takes effect just before the next CAS
  };
  std::deque<CasFault> cas_faults;
  int failing_reads = 0;  // this many reads fail with Unavailable
  Status refusal;         // not OK: every read and CAS fails with it (a wrong secret)
  // Runs before each CAS is applied: another writer acting in between.
  std::function<void()> before_cas;

  Result<std::optional<std::string>> read(const std::string& key) override {
    ++reads;
    if (!refusal.ok()) return refusal;
    if (failing_reads > 0) {
      --failing_reads;
      return Status::Unavailable("no leader");
    }
    auto it = map_.find(key);
    if (it == map_.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }

  Result<bool> cas(const std::string& key, const std::optional<std::string>& expected,
                   const std::string& value) override {
    ++cases;
    if (!refusal.ok()) return refusal;
    if (late_) {
      apply(*late_);
      late_.reset();
    }
    if (before_cas) before_cas();
    const Pending p{key, expected, value};
    if (!cas_faults.empty()) {
      const CasFault f = cas_faults.front();
      cas_faults.pop_front();
      if (f == CasFault::kApplyThenTimeout) apply(p);
      if (f == CasFault::kLateThenTimeout) late_ = p;
      return Status::Timeout("no answer");
    }
    return apply(p);
  }

  // Direct access, as another writer or an operator would have.
  std::optional<std::string> get(const std::string& key) const {
    auto it = map_.find(key);
    return it == map_.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  void set(const std::string& key, std::string value) { map_[key] = std::move(value); }

  int reads = 0, cases = 0, applied = 0;

 private:
  struct Pending {
    std::string key;
    std::optional<std::string> expected;
    std::string value;
  };
  bool apply(const Pending& p) {
    if (get(p.key) != p.expected) return false;
    map_[p.key] = p.value;
    ++applied;
    return true;
  }
  std::map<std::string, std::string> map_;
  std::optional<Pending> late_;
};

ClusterMap current(const FakeRegister& r) {
  Result<ClusterMap> m = decode(*r.get(std::string(kMetaKey)));
  EXPECT_TRUE(m.ok()) << m.status().to_string();
  return *m;
}

void boot(FakeRegister& r) {
  Result<ClusterMap> m = initialize(r, [] {
    return bootstrap("c", {member(1), member(2), member(3)});
  });
  ASSERT_TRUE(m.ok()) << m.status().to_string();
}

// A change that is not idempotent: it adds the next node id, whatever the map.
Result<ClusterMap> add_next(const ClusterMap& m) {
  uint64_t top = 0;
  for (const Member& x : m.members) top = std::max(top, x.id.value());
  return add_member(m, member(top + 1));
}

size_t member_count(const ClusterMap& m) {
  return m.members.size();
}

TEST(MetaClient, InitializeThenUpdate) {
  FakeRegister r;
  EXPECT_TRUE(fetch(r).status().is_not_found());
  EXPECT_TRUE(update(r, add_next).status().is_not_found());
  boot(r);
  Result<ClusterMap> m = fetch(r);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->epoch, Epoch(1));
  ASSERT_EQ(m->recent_changes.size(), 1u);
  EXPECT_EQ(m->recent_changes[0].epoch, Epoch(1));

  Result<ClusterMap> next = update(r, add_next);
  ASSERT_TRUE(next.ok()) << next.status().to_string();
  EXPECT_EQ(next->epoch, Epoch(2));
  EXPECT_EQ(*next, current(r)) << "update returns the map it wrote";
  EXPECT_EQ(next->recent_changes.size(), 2u);
  EXPECT_NE(next->recent_changes[0].change_id, next->recent_changes[1].change_id);

  Result<ClusterMap> again = initialize(r, [] {
    return bootstrap("c", {member(1), member(2), member(3)});
  });
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().message(), "the cluster is already bootstrapped (cluster 'c', epoch 2)");
}

TEST(MetaClient, ARefusedChangeIsReturnedAsItIsAndWritesNothing) {
  FakeRegister r;
  boot(r);
  const int cases = r.cases;
  Result<ClusterMap> m = update(r, [](const ClusterMap& x) { return drop_keyspace(x, "default"); });
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(m.status().is_invalid_argument());
  EXPECT_EQ(m.status().message(), "the default keyspace cannot be dropped");
  EXPECT_EQ(r.cases, cases);
}

TEST(MetaClient, ConflictRereadsAndAppliesOnTopOfTheOtherChange) {
  FakeRegister r;
  boot(r);
  bool once = true;
  r.before_cas = [&] {
    if (!once) return;
    once = false;
    FakeRegister other_view = r;  // the other writer talks to the same register
    other_view.before_cas = nullptr;
    ASSERT_TRUE(update(other_view, add_next).ok());
    r.set(std::string(kMetaKey), *other_view.get(std::string(kMetaKey)));
  };
  Result<ClusterMap> m = update(r, add_next);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(m->epoch, Epoch(3));
  EXPECT_EQ(member_count(*m), 5u) << "both changes are in";
  EXPECT_EQ(r.cases, 3);  // initialize, the conflicting attempt, the retry
}

TEST(MetaClient, UnknownOutcomeThatTookEffectIsReportedOnce) {
  FakeRegister r;
  boot(r);
  r.cas_faults = {FakeRegister::CasFault::kApplyThenTimeout};
  Result<ClusterMap> m = update(r, add_next);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(m->epoch, Epoch(2));
  EXPECT_EQ(member_count(current(r)), 4u) << "applied exactly once";
  EXPECT_EQ(*m, current(r));
}

TEST(MetaClient, UnknownOutcomeThatWasLostIsRetried) {
  FakeRegister r;
  boot(r);
  r.cas_faults = {FakeRegister::CasFault::kLoseThenTimeout,
                  FakeRegister::CasFault::kLoseThenTimeout};
  Result<ClusterMap> m = update(r, add_next);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(current(r).epoch, Epoch(2));
  EXPECT_EQ(member_count(current(r)), 4u);
}

// Our CAS took effect, timed out, and another writer changed the map before we
// read again: the bytes we wrote are gone, but the stamp says the epoch is ours.
TEST(MetaClient, UnknownOutcomeOverwrittenByAnotherWriterIsStillSeen) {
  FakeRegister r;
  boot(r);
  r.cas_faults = {FakeRegister::CasFault::kApplyThenTimeout};
  int cas_calls = 0;
  r.before_cas = [&] { ++cas_calls; };
  // After our timed-out CAS, another writer changes the map once.
  FakeRegister* reg = &r;
  bool interfered = false;
  struct Interfering final : RegisterClient {
    FakeRegister* r;
    bool* done;
    Result<std::optional<std::string>> read(const std::string& k) override {
      if (!*done && r->cases > 1) {
        *done = true;
        FakeRegister other = *r;
        other.cas_faults.clear();
        other.before_cas = nullptr;
        EXPECT_TRUE(update(other, [](const ClusterMap& x) {
                      KeyspaceChanges c;
                      c.consistency = Consistency::kSequential;
                      return alter_keyspace(x, "default", c);
                    }).ok());
        r->set(std::string(kMetaKey), *other.get(std::string(kMetaKey)));
      }
      return r->read(k);
    }
    Result<bool> cas(const std::string& k, const std::optional<std::string>& e,
                     const std::string& v) override {
      return r->cas(k, e, v);
    }
  } client;
  client.r = reg;
  client.done = &interfered;
  Result<ClusterMap> m = update(client, add_next);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_TRUE(interfered);
  EXPECT_EQ(m->epoch, Epoch(2)) << "the map our change wrote";
  const ClusterMap now = current(r);
  EXPECT_EQ(now.epoch, Epoch(3));
  EXPECT_EQ(member_count(now), 4u) << "not applied a second time";
  EXPECT_EQ(cas_calls, 1);
}

// Two writers make the same change to the same map. Bytes alone would make the
// one whose CAS was lost believe it succeeded; the change id tells them apart.
TEST(MetaClient, IdenticalChangeByAnotherWriterIsNotTakenForOurs) {
  FakeRegister r;
  boot(r);
  r.cas_faults = {FakeRegister::CasFault::kLoseThenTimeout};
  bool once = true;
  r.before_cas = [&] {
    if (!once) return;
    once = false;
    // The other writer read the same base and adds the same node.
    FakeRegister other = r;
    other.cas_faults.clear();
    other.before_cas = nullptr;
    Result<ClusterMap> theirs = update(other, add_next);
    ASSERT_TRUE(theirs.ok());
    ASSERT_EQ(theirs->epoch, Epoch(2));
    r.set(std::string(kMetaKey), *other.get(std::string(kMetaKey)));
  };
  Result<ClusterMap> m = update(r, add_next);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  // Ours was lost, so it was re-applied on top of theirs: two nodes were added.
  EXPECT_EQ(m->epoch, Epoch(3));
  EXPECT_EQ(member_count(current(r)), 5u);
}

// Our CAS timed out but was only late: we retry from the same base, and the late
// CAS lands before the retry. The retry must fail, and the re-read must find
// the late one as ours: applied once, reported as success.
TEST(MetaClient, LateCasIsRecognisedAndNotDoubled) {
  FakeRegister r;
  boot(r);
  r.cas_faults = {FakeRegister::CasFault::kLateThenTimeout};
  Result<ClusterMap> m = update(r, add_next);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const ClusterMap now = current(r);
  EXPECT_EQ(now.epoch, Epoch(2));
  EXPECT_EQ(member_count(now), 4u);
  EXPECT_EQ(*m, now);
  EXPECT_EQ(r.cases, 3) << "a retry ran, lost to the late CAS, and the re-read found it ours";
  EXPECT_EQ(
      now.recent_changes.back().change_id.substr(now.recent_changes.back().change_id.size() - 2),
      "/1");
}

TEST(MetaClient, OutcomeBeyondTheStampWindowIsReportedUnknown) {
  FakeRegister r;
  boot(r);
  r.cas_faults = {FakeRegister::CasFault::kApplyThenTimeout};
  struct Flooding final : RegisterClient {
    FakeRegister* r;
    bool flooded = false;
    Result<std::optional<std::string>> read(const std::string& k) override {
      if (r->cases >= 2 && !flooded) {
        flooded = true;  // many changes by others before we read again
        for (size_t i = 0; i < kMaxRecentChanges; ++i) {
          FakeRegister other = *r;
          other.cas_faults.clear();
          other.before_cas = nullptr;
          EXPECT_TRUE(update(other, add_next).ok());
          r->set(std::string(kMetaKey), *other.get(std::string(kMetaKey)));
        }
      }
      return r->read(k);
    }
    Result<bool> cas(const std::string& k, const std::optional<std::string>& e,
                     const std::string& v) override {
      return r->cas(k, e, v);
    }
  } client;
  client.r = &r;
  Result<ClusterMap> m = update(client, add_next);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(m.status().message().find("outcome unknown"), std::string::npos)
      << m.status().message();
  EXPECT_EQ(current(r).epoch, Epoch(2 + kMaxRecentChanges)) << "nothing guessed, nothing doubled";
}

TEST(MetaClient, GivesUpWhenTheMapKeepsChanging) {
  FakeRegister r;
  boot(r);
  r.before_cas = [&] {
    // Every time, someone else gets there first.
    FakeRegister other = r;
    other.before_cas = nullptr;
    ASSERT_TRUE(update(other, add_next).ok());
    r.set(std::string(kMetaKey), *other.get(std::string(kMetaKey)));
  };
  Result<ClusterMap> m = update(r, add_next, 4);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Status::Code::kAborted);
  EXPECT_EQ(m.status().message(),
            "metadata change gave up after 4 attempts: the map kept changing under it");
}

TEST(MetaClient, ReadErrorsAreRetriedThenReported) {
  FakeRegister r;
  boot(r);
  r.failing_reads = 2;
  ASSERT_TRUE(update(r, add_next).ok());
  r.failing_reads = 100;
  Result<ClusterMap> m = update(r, add_next, 3);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(m.status().message(),
            "metadata change gave up after 3 attempts: Unavailable: no leader");
}

// Issue "Operating statekv without surprises", item 12: a wrong secret made
// add-node say "the map kept changing under it" after 16 attempts.
TEST(MetaClient, ARefusedConnectionIsReportedAtOnceAsItIs) {
  FakeRegister r;
  boot(r);
  const int reads_before = r.reads;
  r.refusal = Status::Aborted(
      "handshake with 127.0.0.1:17001 failed: node 1 refused the handshake: proof does not "
      "match the cluster secret");
  Result<ClusterMap> m = update(r, add_next, 16);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().to_string(), r.refusal.to_string());
  EXPECT_EQ(r.reads - reads_before, 1) << "retrying a refused handshake cannot help";
}

TEST(MetaClient, UnsettledTimeoutIsUnknownNotFailed) {
  FakeRegister r;
  boot(r);
  r.cas_faults = {FakeRegister::CasFault::kApplyThenTimeout};
  struct ReadsFailAfterCas final : RegisterClient {
    FakeRegister* r;
    Result<std::optional<std::string>> read(const std::string& k) override {
      if (r->cases >= 2) return Status::Unavailable("partitioned");
      return r->read(k);
    }
    Result<bool> cas(const std::string& k, const std::optional<std::string>& e,
                     const std::string& v) override {
      return r->cas(k, e, v);
    }
  } client;
  client.r = &r;
  Result<ClusterMap> m = update(client, add_next, 3);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(m.status().message().find("outcome unknown: the CAS writing epoch 2 got no answer"),
            std::string::npos)
      << m.status().message();
}

TEST(MetaClient, CorruptDocumentIsReported) {
  FakeRegister r;
  r.set(std::string(kMetaKey), "{\"format\":1}");
  EXPECT_TRUE(fetch(r).status().is_corruption());
  Result<ClusterMap> m = update(r, add_next);
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(m.status().is_corruption()) << m.status().to_string();
  EXPECT_EQ(r.cases, 0);
}

TEST(MetaClient, AChangeThatDoesNotBumpTheEpochByOneIsRefused) {
  FakeRegister r;
  boot(r);
  Result<ClusterMap> m = update(r, [](const ClusterMap& x) {
    ClusterMap y = *add_next(x);
    y.epoch = y.epoch.next();
    return Result<ClusterMap>(y);
  });
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Status::Code::kInternal);
  EXPECT_EQ(r.cases, 1) << "only initialize wrote";
}

TEST(UpdateLoop, StepsThroughReadAndCas) {
  UpdateLoop loop(
      [](const std::optional<ClusterMap>& cur) -> Result<ClusterMap> {
        EXPECT_FALSE(cur.has_value());
        return bootstrap("c", {member(1)});
      },
      "tester");
  ASSERT_FALSE(loop.done());
  EXPECT_EQ(loop.next_op().kind, UpdateLoop::Op::Kind::kRead);
  loop.on_read(std::optional<std::string>());
  ASSERT_EQ(loop.next_op().kind, UpdateLoop::Op::Kind::kCas);
  EXPECT_FALSE(loop.next_op().expected.has_value());
  Result<ClusterMap> written = decode(loop.next_op().value);
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(written->recent_changes.back().change_id, "tester/1");
  loop.on_cas(true);
  ASSERT_TRUE(loop.done());
  ASSERT_TRUE(loop.result().ok());
  EXPECT_EQ(loop.result()->epoch, Epoch(1));
  EXPECT_EQ(loop.attempts(), 1);
}

TEST(UpdateLoop, StampsAreBoundedToTheWindow) {
  FakeRegister r;
  boot(r);
  for (size_t i = 0; i < kMaxRecentChanges + 5; ++i) ASSERT_TRUE(update(r, add_next).ok());
  const ClusterMap m = current(r);
  EXPECT_EQ(m.recent_changes.size(), kMaxRecentChanges);
  EXPECT_EQ(m.recent_changes.back().epoch, m.epoch);
  EXPECT_EQ(m.recent_changes.front().epoch.value(), m.epoch.value() - kMaxRecentChanges + 1);
}

TEST(WriterIds, AreUnique) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(new_writer_id());
  EXPECT_EQ(ids.size(), 1000u);
}

}  // namespace
}  // namespace statekv::meta
