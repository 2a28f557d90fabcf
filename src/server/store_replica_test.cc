// Effects, not commands (DESIGN.md): a replica that applies only the encoded
// Mutations the executor proposed ends up with exactly the executor's store —
// records, expiry index and counters — whatever commands ran, so no replica
// ever needs to re-run a command, read its own clock or draw randomness.
//
// The executor here runs every write command statekv has through a proposer
// that commits locally (as a group of one does) and ships each Mutation's
// bytes to a second store, the way a replicated protocol carries them.
#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/random.h"
#include "server/proposer.h"
#include "server/record.h"
#include "server/service_test_util.h"

namespace statekv::server {
namespace {

using testing::Harness;

// Commits on the executor's store, then applies the encoded effect to a replica.
class ShippingProposer final : public Proposer {
 public:
  ShippingProposer(Store& leader, Store& replica) : leader_(leader), replica_(replica) {}

  Result<CommitTicket> propose(int64_t time_ms, std::span<const Store::Write> writes) override {
    auto seq = leader_.apply_locked(writes);
    if (!seq.ok()) return seq.status();
    ship(to_mutation(time_ms, writes));
    {
      std::lock_guard lock(mu_);
      last_effects_ = writes.size();
    }
    return CommitTicket{*seq};
  }
  Result<CommitTicket> propose_clear(int64_t time_ms) override {
    auto seq = leader_.flush();
    if (!seq.ok()) return seq.status();
    ship(clear_mutation(time_ms));
    return CommitTicket{*seq};
  }

  uint64_t shipped() const {
    std::lock_guard lock(mu_);
    return shipped_;
  }
  Store& leader() { return leader_; }
  // How many effects the last proposed Mutation held.
  size_t last_effects() const {
    std::lock_guard lock(mu_);
    return last_effects_;
  }

 private:
  void ship(replication::Mutation m) {
    // Called under the executor's stripe locks: one key's effects ship in the
    // order they were applied; the mutex keeps the replica's own order too.
    std::lock_guard lock(mu_);
    // Each record effect carries what its key held; every other mutation
    // ships without, so the replica reads its keys itself: both ways must
    // rebuild the leader's state.
    EXPECT_EQ(m.priors.size(), replication::record_effects(m));
    if (shipped_ % 2 == 1) m.priors.clear();
    auto decoded = replication::DecodedMutation::decode(replication::encode_mutation(m));
    ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
    auto applied = replica_.apply(decoded->mutation());
    ASSERT_TRUE(applied.ok()) << applied.status().to_string();
    ++shipped_;
  }

  Store& leader_;
  Store& replica_;
  mutable std::mutex mu_;
  uint64_t shipped_ = 0;
  size_t last_effects_ = 0;
};

std::map<std::string, std::string> contents(storage::Engine& engine) {
  std::map<std::string, std::string> out;
  EXPECT_TRUE(engine
                  .scan({}, {}, 0,
                        [&](std::string_view k, std::string_view v) {
                          out.emplace(std::string(k), std::string(v));
                          return true;
                        })
                  .ok());
  return out;
}

// Reclaims every retired generation: until a pass finds nothing, then no
// garbage may be counted (a count that drifted from the garbage entries fails
// here instead of looping forever).
void reclaim_all(Store& s) {
  for (size_t n = 1; n > 0;) {
    auto reclaimed = s.reclaim(1000);
    ASSERT_TRUE(reclaimed.ok()) << reclaimed.status().to_string();
    n = *reclaimed;
  }
  EXPECT_EQ(s.garbage_count(), 0u);
}

class ReplicaFixture {
 public:
  ReplicaFixture()
      : replica_engine_(storage::open_memory_engine()),
        replica_(*replica_engine_, nullptr),
        h_(nullptr, Harness::default_config(), [this](Store& leader) {
          auto p = std::make_unique<ShippingProposer>(leader, replica_);
          proposer_ = p.get();
          return p;
        }) {}

  Harness& h() { return h_; }
  Store& replica() { return replica_; }
  storage::Engine& replica_engine() { return *replica_engine_; }
  uint64_t shipped() const { return proposer_->shipped(); }
  Store& leader() { return proposer_->leader(); }
  size_t last_effects() const { return proposer_->last_effects(); }

  // The leader's store, as the counters of INFO keyspace show it.
  void expect_same_state(const std::string& when) {
    EXPECT_EQ(contents(h_.engine()), contents(*replica_engine_)) << when;
    auto keys = h_.run({"DBSIZE"});
    EXPECT_EQ(keys.integer, static_cast<int64_t>(replica_.key_count())) << when;
  }

 private:
  std::unique_ptr<storage::Engine> replica_engine_;
  Store replica_;
  ShippingProposer* proposer_ = nullptr;
  Harness h_;
};

TEST(StoreReplica, EveryWriteCommandReplicatesAsItsEffect) {
  ReplicaFixture f;
  Harness& h = f.h();
  const std::vector<std::vector<std::string>> script = {
      {"SET", "a", "1"},
      {"SET", "b", "2", "EX", "100"},
      {"SET", "b", "3", "KEEPTTL", "GET"},
      {"SETNX", "c", "x"},
      {"SETEX", "d", "50", "v"},
      {"PSETEX", "e", "50000", "v"},
      {"GETSET", "a", "10"},
      {"INCR", "a"},
      {"INCRBY", "a", "-7"},
      {"DECRBY", "a", "2"},
      {"INCRBYFLOAT", "f", "1.5"},  // the float text is decided once, here
      {"APPEND", "c", "yz"},
      {"SETRANGE", "g", "5", "pad"},
      {"MSET", "h", "1", "i", "2", "h", "3"},
      {"MSETNX", "j", "1", "k", "2"},
      {"EXPIRE", "h", "1000"},
      {"PEXPIREAT", "i", "99999999999999"},
      {"PERSIST", "h"},
      {"GETEX", "j", "PX", "20000"},
      {"GETEX", "j", "PERSIST"},
      {"RENAME", "b", "b2"},
      {"RENAMENX", "c", "c2"},
      {"GETDEL", "k"},
      {"DEL", "d", "zz"},
      {"UNLINK", "e"},
      {"EXPIRE", "a", "-1"},  // a past expiry deletes at once
      {"SET", "p", "v", "PXAT", "1"},
  };
  for (const auto& cmd : script) {
    auto reply = h.run(cmd);
    ASSERT_NE(reply.type, resp::Value::Type::kError) << cmd[0] << ": " << reply.str;
    f.expect_same_state(cmd[0]);
  }
  EXPECT_GT(f.shipped(), script.size() - 5);
  h.run({"FLUSHALL"});
  f.expect_same_state("FLUSHALL");
  EXPECT_EQ(f.replica().key_count(), 0u);
}

// Engine entries under one prefix ("m": elements, "g": retired generations).
size_t count_prefix(storage::Engine& engine, char prefix) {
  size_t n = 0;
  const char from[1] = {prefix};
  const char to[1] = {static_cast<char>(prefix + 1)};
  EXPECT_TRUE(engine
                  .scan(std::string_view(from, 1), std::string_view(to, 1), 0,
                        [&](std::string_view, std::string_view) {
                          ++n;
                          return true;
                        })
                  .ok());
  return n;
}

std::vector<std::string> many(const std::string& cmd, const std::string& key, int n, bool pairs) {
  std::vector<std::string> out = {cmd, key};
  for (int i = 0; i < n; ++i) {
    out.push_back("e" + std::to_string(i));
    if (pairs) out.push_back("v" + std::to_string(i));
  }
  return out;
}

// Hashes and sets, compact and in the element layout, change by record and
// element effects; the replica's engine ends byte for byte the executor's,
// element entries and retired generations included.
TEST(StoreReplica, CollectionCommandsReplicateAsTheirEffects) {
  ReplicaFixture f;
  Harness& h = f.h();
  const std::vector<std::vector<std::string>> script = {
      {"HSET", "h", "a", "1", "b", "2"},
      many("HSET", "big", 600, true),    // compact -> elements in one mutation
      {"HSET", "big", "e7", "changed"},  // one element effect, no head record
      {"HSET", "big", "new", "x"},
      {"HDEL", "big", "e1", "e2", "nope"},
      {"HINCRBY", "big", "n", "5"},
      {"HINCRBYFLOAT", "h", "f", "0.1"},  // the float text is decided once, here
      {"HSETNX", "h", "a", "no"},
      {"HSET", "h", "long", std::string(100, 'x')},  // converted by one long value
      {"SADD", "s", "1", "2", "3"},
      many("SADD", "bigset", 200, false),
      {"SREM", "bigset", "e5"},
      {"SPOP", "bigset"},  // the executor's random choice ships as an element erase
      {"SPOP", "bigset", "3"},
      {"SMOVE", "bigset", "s", "e9"},
      {"SINTERSTORE", "inter", "bigset", "bigset"},
      {"SUNIONSTORE", "s", "s", "bigset"},
      {"SDIFFSTORE", "d", "s", "bigset"},
      {"COPY", "big", "bigcopy"},
      {"RENAME", "big", "big2"},  // the generation moves with the record
      {"EXPIRE", "big2", "1000"},
      {"DEL", "bigcopy"},                // retires a generation
      {"SET", "inter", "now a string"},  // so does an overwrite
      {"HDEL", "h", "a", "b", "f", "long"},
      {"SPOP", "s", "1000"},
  };
  for (const auto& cmd : script) {
    auto reply = h.run(cmd);
    ASSERT_NE(reply.type, resp::Value::Type::kError) << cmd[0] << ": " << reply.str;
    f.expect_same_state(cmd[0] + " " + cmd[1]);
  }
  EXPECT_GT(f.leader().garbage_count(), 0u);
  EXPECT_EQ(f.leader().garbage_count(), f.replica().garbage_count());
  // Each store reclaims its own retired generations; both end the same.
  for (Store* s : {&f.leader(), &f.replica()}) {
    reclaim_all(*s);
  }
  f.expect_same_state("after reclaim");
  EXPECT_EQ(count_prefix(h.engine(), 'g'), 0u);
  h.run({"FLUSHALL"});
  f.expect_same_state("FLUSHALL");
}

// Sorted sets, compact and in the element layout: every change (including
// ZINCRBY's sum and a pop's choice, decided by the executor) replicates as
// record and element effects; the replica's engine ends byte for byte the
// executor's.
TEST(StoreReplica, SortedSetCommandsReplicateAsTheirEffects) {
  ReplicaFixture f;
  Harness& h = f.h();
  std::vector<std::string> big = {"ZADD", "bigz"};
  for (int i = 0; i < 300; ++i) {
    big.push_back(std::to_string(i * 0.5));
    big.push_back("e" + std::to_string(i));
  }
  const std::vector<std::vector<std::string>> script = {
      {"ZADD", "z", "1", "a", "2.5", "b", "-inf", "c"},
      big,                                      // compact -> elements in one mutation
      {"ZADD", "bigz", "XX", "CH", "7", "e3"},  // one element effect, no head record
      {"ZADD", "bigz", "INCR", "0.1", "e4"},
      {"ZINCRBY", "z", "0.1", "a"},
      {"ZINCRBY", "bigz", "1", "new"},
      {"ZADD", "z", "GT", "0", "a", "9", "b"},
      {"ZREM", "bigz", "e1", "e2", "nope"},
      {"ZPOPMIN", "bigz", "3"},
      {"ZPOPMAX", "z"},
      {"ZREMRANGEBYSCORE", "bigz", "(10", "20"},
      {"ZREMRANGEBYRANK", "bigz", "0", "4"},
      {"ZREMRANGEBYLEX", "z", "-", "+"},         // empties it: the key goes
      {"ZADD", "z", "1", std::string(70, 'x')},  // a long member starts a skiplist
      {"ZREMRANGEBYRANK", "bigz", "0", "-1"},    // retires a generation
  };
  for (const auto& cmd : script) {
    auto reply = h.run(cmd);
    ASSERT_NE(reply.type, resp::Value::Type::kError) << cmd[0] << ": " << reply.str;
    f.expect_same_state(cmd[0] + " " + cmd[1]);
  }
  EXPECT_EQ(f.leader().garbage_count(), f.replica().garbage_count());
}

// Lists, compact and in the element layout: pushes at both ends, pops, sets,
// trims and removals ship as the head record and element effects; the
// replica's engine ends byte for byte the executor's.
TEST(StoreReplica, ListCommandsReplicateAsTheirEffects) {
  ReplicaFixture f;
  Harness& h = f.h();
  const std::vector<std::vector<std::string>> script = {
      {"RPUSH", "l", "a", "b", "c"},
      {"LPUSH", "l", "z"},
      {"LSET", "l", "1", "x"},
      many("RPUSH", "big", 200, false),  // compact -> elements in one mutation
      {"LPUSH", "big", "front1", "front2"},
      {"RPUSHX", "big", "back"},
      {"LPUSHX", "missing", "x"},  // no effect
      {"LPOP", "big", "3"},
      {"RPOP", "big"},
      {"LSET", "big", "-5", "changed"},  // one element effect
      {"LTRIM", "big", "10", "-10"},
      {"LREM", "big", "0", "e100"},
      {"LINSERT", "big", "BEFORE", "e50", "inserted"},
      {"LMOVE", "big", "l", "LEFT", "RIGHT"},  // two keys, one mutation
      {"RPOPLPUSH", "l", "big"},
      {"LMOVE", "big", "big", "RIGHT", "LEFT"},  // a rotation
      {"RPOPLPUSH", "big", "moved"},
      {"RPUSH", "l", std::string(100, 'x')},  // converted by one long element
      {"COPY", "big", "bigcopy"},
      {"RENAME", "big", "big2"},
      {"EXPIRE", "big2", "1000"},
      {"DEL", "bigcopy"},           // retires a generation
      {"LPOP", "l", "100"},         // emptied: the key goes
      {"LTRIM", "big2", "1", "0"},  // emptied in the element layout
      {"LPOP", "moved"},
  };
  for (const auto& cmd : script) {
    auto reply = h.run(cmd);
    ASSERT_NE(reply.type, resp::Value::Type::kError) << cmd[0] << ": " << reply.str;
    f.expect_same_state(cmd[0] + " " + cmd[1]);
  }
  EXPECT_EQ(h.run({"DBSIZE"}).integer, 0);
  EXPECT_GT(f.leader().garbage_count(), 0u);
  EXPECT_EQ(f.leader().garbage_count(), f.replica().garbage_count());
  for (Store* s : {&f.leader(), &f.replica()}) {
    reclaim_all(*s);
  }
  f.expect_same_state("after reclaim");
  // Nothing of any list is left behind: no element, no retired generation.
  EXPECT_EQ(count_prefix(h.engine(), 'm'), 0u);
  EXPECT_EQ(count_prefix(h.engine(), 'g'), 0u);
}

TEST(StoreReplica, ElementEffectsRoundTripThroughTheirBytes) {
  auto engine = storage::open_memory_engine();
  Store store(*engine, nullptr);
  std::string head;
  encode_elements_head(7, 2, &head);
  replication::Mutation m;
  m.time_ms = 1;
  m.effects.push_back(
      {replication::Effect::Kind::kPutTyped, "k", head, 0, static_cast<uint8_t>(ValueType::kHash)});
  m.effects.push_back({replication::Effect::Kind::kPutElement, "k", "v1", 0, 0, 7, "f1"});
  m.effects.push_back({replication::Effect::Kind::kPutElement, "k", "v2", 0, 0, 7, "f2"});
  auto decoded = replication::DecodedMutation::decode(replication::encode_mutation(m));
  ASSERT_TRUE(decoded.ok());
  ASSERT_TRUE(store.apply(decoded->mutation()).ok());
  EXPECT_EQ(store.key_count(), 1u);
  std::string v;
  auto found = store.get_element(7, "f2", &v);
  ASSERT_TRUE(found.ok() && *found);
  EXPECT_EQ(v, "v2");
  // A generation a record owns is never handed out again.
  EXPECT_GT(store.new_generation(), 7u);
  // An erase of the record retires its generation in the same write.
  replication::Mutation erase;
  erase.effects.push_back({replication::Effect::Kind::kErase, "k", {}, 0});
  ASSERT_TRUE(store.apply(erase).ok());
  EXPECT_EQ(store.garbage_count(), 1u);
  EXPECT_EQ(count_prefix(*engine, 'm'), 2u);  // unreachable, not yet reclaimed
  auto n = store.reclaim(1);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(store.garbage_count(), 1u);  // one element left: not finished
  n = store.reclaim(10);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(store.garbage_count(), 0u);
  EXPECT_TRUE(contents(*engine).empty());
  // A typed put of an unknown type is refused.
  replication::Mutation bad;
  bad.effects.push_back({replication::Effect::Kind::kPutTyped, "k", head, 0, 9});
  EXPECT_TRUE(store.apply(bad).status().is_invalid_argument());
}

// A store opened on existing data (RocksDB after a restart) never hands out a
// generation that a record or a retired entry holds: a reused generation would
// give a new collection an old one's elements.
TEST(StoreReplica, RecountFindsEveryGenerationInUse) {
  auto engine = storage::open_memory_engine();
  {
    Store store(*engine, nullptr);
    std::string head7;
    std::string head9;
    encode_elements_head(7, 1, &head7);
    encode_elements_head(9, 1, &head9);
    replication::Mutation m;
    m.effects.push_back({replication::Effect::Kind::kPutTyped, "a", head7, 0,
                         static_cast<uint8_t>(ValueType::kSet)});
    m.effects.push_back({replication::Effect::Kind::kPutElement, "a", {}, 0, 0, 7, "x"});
    m.effects.push_back({replication::Effect::Kind::kPutTyped, "b", head9, 0,
                         static_cast<uint8_t>(ValueType::kSet)});
    m.effects.push_back({replication::Effect::Kind::kPutElement, "b", {}, 0, 0, 9, "y"});
    ASSERT_TRUE(store.apply(m).ok());
    replication::Mutation erase;
    erase.effects.push_back({replication::Effect::Kind::kErase, "b", {}, 0});
    ASSERT_TRUE(store.apply(erase).ok());  // generation 9 retired, not reclaimed
  }
  Store reopened(*engine, nullptr);
  ASSERT_TRUE(reopened.recount().ok());
  EXPECT_EQ(reopened.key_count(), 1u);
  EXPECT_EQ(reopened.garbage_count(), 1u);
  EXPECT_GT(reopened.new_generation(), 9u);
  auto n = reopened.reclaim(100);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(count_prefix(*engine, 'm'), 1u);  // generation 7's element stays
}

// Deleting or expiring a large collection is O(1) for the command; the
// background reclaim (the service's expiry thread) frees every element.
TEST(StoreReplica, DeletedAndExpiredCollectionsAreReclaimedWithoutLeaks) {
  Harness h;
  h.run(many("HSET", "h", 5000, true));
  h.run(many("SADD", "s", 3000, false));
  h.run(many("SADD", "t", 1000, false));
  EXPECT_EQ(count_prefix(h.engine(), 'm'), 9000u);
  EXPECT_EQ(h.run({"DEL", "h"}).integer, 1);
  EXPECT_EQ(h.run({"PEXPIRE", "s", "1"}).integer, 1);
  h.run(many("SADD", "t2", 1000, false));
  EXPECT_EQ(h.run({"RENAME", "t2", "t"}).type, resp::Value::Type::kSimple);  // replaces t
  EXPECT_EQ(count_prefix(h.engine(), 'm'), 10000u);                          // nothing freed inline
  h.service().start();
  ASSERT_TRUE(testing::eventually([&] { return count_prefix(h.engine(), 'm') == 1000; }));
  ASSERT_TRUE(testing::eventually([&] { return count_prefix(h.engine(), 'g') == 0; }));
  h.service().stop();
  EXPECT_EQ(h.run({"SCARD", "t"}).integer, 1000);
  EXPECT_EQ(h.run({"DBSIZE"}).integer, 1);
}

// A sorted set in the element layout has one score-index entry per member,
// in (score, member) order with the exact score as value; every store derives
// it from the member effects (the replica's engine is byte for byte the
// executor's), and deleting the set reclaims both families.
TEST(StoreReplica, SortedSetScoreIndexFollowsItsMembersAndIsReclaimed) {
  ReplicaFixture f;
  Harness& h = f.h();
  std::vector<std::string> add = {"ZADD", "z"};
  for (int i = 0; i < 300; ++i) {
    add.push_back(std::to_string((i % 7) - 3.5));
    add.push_back("e" + std::to_string(i));
  }
  h.run(add);
  h.run({"ZADD", "z", "-0", "negzero", "0", "zero", "inf", "top"});
  h.run({"ZINCRBY", "z", "100", "e5"});
  h.run({"ZREM", "z", "e6", "nope"});
  f.expect_same_state("after the writes");
  EXPECT_EQ(count_prefix(h.engine(), 'z'), 302u);
  EXPECT_EQ(count_prefix(h.engine(), 'z'), count_prefix(h.engine(), 'm'));
  // The index in engine order is the (score, member) order.
  std::vector<std::pair<double, std::string>> seen;
  ASSERT_TRUE(h.engine()
                  .scan("z", "{", 0,
                        [&](std::string_view k, std::string_view v) {
                          uint64_t gen = 0;
                          uint64_t bits = 0;
                          std::string_view member;
                          double d = 0;
                          EXPECT_TRUE(parse_score_index_key(k, &gen, &bits, &member));
                          EXPECT_TRUE(decode_score_index_entry(bits, v, &d));
                          // No value but -0's: the score is the key's.
                          EXPECT_EQ(v.empty(), member != "negzero") << member;
                          seen.emplace_back(d, std::string(member));
                          return true;
                        })
                  .ok());
  auto sorted = seen;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(seen, sorted);
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen.back(), std::make_pair(HUGE_VAL, std::string("top")));
  EXPECT_EQ(seen[seen.size() - 2], std::make_pair(100.0 + (5 % 7) - 3.5, std::string("e5")));
  auto neg = std::find_if(seen.begin(), seen.end(), [](auto& p) { return p.second == "negzero"; });
  ASSERT_NE(neg, seen.end());
  EXPECT_TRUE(std::signbit(neg->first));  // the exact score: -0 kept
  EXPECT_EQ(h.run({"ZRANGE", "z", "0", "-1"}).elements.size(), 302u);
  h.run({"DEL", "z"});
  f.expect_same_state("after DEL");
  h.service().start();
  ASSERT_TRUE(testing::eventually([&] { return count_prefix(h.engine(), 'z') == 0; }));
  ASSERT_TRUE(testing::eventually([&] { return count_prefix(h.engine(), 'm') == 0; }));
  h.service().stop();
}

TEST(StoreReplica, ExpiryIsDecidedByTheExecutorAndReplicatesAsAnErase) {
  ReplicaFixture f;
  Harness& h = f.h();
  h.run({"SET", "lazy", "v", "PX", "5"});
  h.run({"SET", "active", "v", "PX", "5"});
  h.run({"SET", "kept", "v", "PX", "600000"});
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // The replica still holds both records: only the executor expires keys.
  EXPECT_EQ(f.replica().key_count(), 3u);
  EXPECT_EQ(testing::describe(h.run({"GET", "lazy"})), "(nil)");  // lazy: erased on access
  EXPECT_EQ(f.replica().key_count(), 2u);
  h.service().start();  // active expiry
  ASSERT_TRUE(testing::eventually([&] { return f.replica().key_count() == 1; }));
  h.service().stop();
  f.expect_same_state("after expiry");
}

TEST(StoreReplica, RandomCommandMixesLeaveIdenticalStores) {
  const std::vector<std::string> keys = {"k0", "k1", "k2", "k3", "k4", "k5"};
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    ReplicaFixture f;
    Harness& h = f.h();
    Random rng(seed);
    auto key = [&] { return keys[rng.uniform(keys.size())]; };
    auto num = [&] { return std::to_string(static_cast<int64_t>(rng.range(0, 200)) - 100); };
    for (int i = 0; i < 300; ++i) {
      std::vector<std::string> cmd;
      switch (rng.uniform(16)) {
        case 0:
          cmd = {"SET", key(), num()};
          break;
        case 1:
          cmd = {"SET", key(), num(), "PX", std::to_string(rng.range(1, 3))};
          break;
        case 2:
          cmd = {"SET", key(), num(), rng.uniform(2) ? "NX" : "XX", "GET"};
          break;
        case 3:
          cmd = {"INCRBY", key(), num()};
          break;
        case 4:
          cmd = {"APPEND", key(), num()};
          break;
        case 5:
          cmd = {"MSET", key(), num(), key(), num()};
          break;
        case 6:
          cmd = {"DEL", key(), key()};
          break;
        case 7:
          cmd = {"PEXPIRE", key(), std::to_string(rng.range(1, 1000))};
          break;
        case 8:
          cmd = {"PERSIST", key()};
          break;
        case 9:
          cmd = {"RENAME", key(), key()};
          break;
        case 10:
          cmd = {"GETEX", key(), "PX", std::to_string(rng.range(1, 5))};
          break;
        case 11:
          cmd = {"INCRBYFLOAT", key(), "0.25"};
          break;
        case 12:
          cmd = {"SETRANGE", key(), std::to_string(rng.range(0, 8)), num()};
          break;
        case 13:
          cmd = {"GETDEL", key()};
          break;
        case 14:
          cmd = {"GET", key()};
          break;  // may erase an expired key
        default:
          cmd = {"MSETNX", key(), num(), key(), num()};
          break;
      }
      h.run(cmd);
      if (rng.uniform(50) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    f.expect_same_state("seed " + std::to_string(seed));
  }
}

// Hashes and sets of every size, with expiries, overwrites, renames and
// random pops mixed in: the replica ends with the executor's engine, and both
// end without garbage once reclaimed.
TEST(StoreReplica, RandomCollectionMixesLeaveIdenticalStores) {
  const std::vector<std::string> keys = {"c0", "c1", "c2", "c3"};
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    ReplicaFixture f;
    Harness& h = f.h();
    Random rng(seed);
    auto key = [&] { return keys[rng.uniform(keys.size())]; };
    auto elem = [&] { return "e" + std::to_string(rng.uniform(700)); };
    for (int i = 0; i < 300; ++i) {
      std::vector<std::string> cmd;
      switch (rng.uniform(14)) {
        case 0:
          cmd = many("HSET", key(), static_cast<int>(rng.range(1, 600)), true);
          break;
        case 1:
          cmd = many("SADD", key(), static_cast<int>(rng.range(1, 600)), false);
          break;
        case 2:
          cmd = {"HSET", key(), elem(), elem()};
          break;
        case 3:
          cmd = {"SADD", key(), elem(), std::to_string(rng.uniform(100))};
          break;
        case 4:
          cmd = {"HDEL", key(), elem(), elem()};
          break;
        case 5:
          cmd = {"SREM", key(), elem(), elem()};
          break;
        case 6:
          cmd = {"SPOP", key(), std::to_string(rng.range(1, 50))};
          break;
        case 7:
          cmd = {"PEXPIRE", key(), std::to_string(rng.range(1, 5))};
          break;
        case 8:
          cmd = {"RENAME", key(), key()};
          break;
        case 9:
          cmd = {"SET", key(), "string"};
          break;
        case 10:
          cmd = {"SUNIONSTORE", key(), key(), key()};
          break;
        case 11:
          cmd = {"SMOVE", key(), key(), elem()};
          break;
        case 12:
          cmd = {"COPY", key(), key(), "REPLACE"};
          break;
        default:
          cmd = {"HINCRBY", key(), elem(), "3"};
          break;
      }
      h.run(cmd);  // WRONGTYPE and missing keys are part of the mix
      if (rng.uniform(40) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
    // Every key read once (an expired one is erased now, retiring its
    // generation), and what its elements are.
    uint64_t live_elements = 0;
    for (const auto& k : keys) {
      auto type = h.run({"TYPE", k});
      if (h.run({"OBJECT", "ENCODING", k}).str != "hashtable") continue;  // compact: one record
      if (type.str == "hash") live_elements += static_cast<uint64_t>(h.run({"HLEN", k}).integer);
      if (type.str == "set") live_elements += static_cast<uint64_t>(h.run({"SCARD", k}).integer);
    }
    f.expect_same_state("seed " + std::to_string(seed));
    for (Store* s : {&f.leader(), &f.replica()}) {
      reclaim_all(*s);
    }
    f.expect_same_state("seed " + std::to_string(seed) + " reclaimed");
    // What remains under "m" is exactly the live large collections' elements.
    EXPECT_EQ(count_prefix(h.engine(), 'm'), live_elements) << "seed " << seed;
    EXPECT_EQ(count_prefix(h.engine(), 'g'), 0u);
  }
}

// MULTI/EXEC: the whole transaction is ONE Mutation (issue 11 item 2), and
// later commands see the effects of earlier ones before any is committed.
TEST(StoreReplica, ATransactionIsOneMutation) {
  ReplicaFixture f;
  Harness& h = f.h();
  h.run({"SET", "a", "1"});
  h.run({"SET", "gone", "v", "PX", "1"});
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const uint64_t before = f.shipped();
  const std::vector<std::vector<std::string>> txn = {
      {"MULTI"},
      {"SET", "x", "1"},
      {"INCR", "x"},
      {"SET", "y", "v", "PX", "100000"},
      {"APPEND", "y", "w"},
      {"DEL", "a"},
      {"RENAME", "y", "z"},
      {"INCRBY", "x", "40"},
      {"GET", "gone"},  // erases the expired key: part of the same effect
      {"DBSIZE"},
  };
  for (const auto& cmd : txn) h.run(cmd);
  EXPECT_EQ(f.shipped(), before) << "nothing is proposed before EXEC";
  auto reply = h.run({"EXEC"});
  EXPECT_EQ(testing::describe(reply), "[+OK, :2, +OK, :2, :1, +OK, :42, (nil), :2, ]");
  EXPECT_EQ(f.shipped(), before + 1);
  f.expect_same_state("EXEC");
  EXPECT_EQ(f.replica().key_count(), 2u);  // x, z
  EXPECT_EQ(f.replica().expire_count(), 1u);

  // A flush inside the transaction, with writes after it: still one effect.
  h.run({"SET", "b", "1"});
  const uint64_t before_flush = f.shipped();
  h.run({"MULTI"});
  h.run({"SET", "c", "1"});
  h.run({"FLUSHALL"});
  h.run({"SET", "d", "2"});
  h.run({"GET", "x"});
  h.run({"DBSIZE"});
  EXPECT_EQ(testing::describe(h.run({"EXEC"})), "[+OK, +OK, +OK, (nil), :1, ]");
  EXPECT_EQ(f.shipped(), before_flush + 1);
  f.expect_same_state("EXEC with FLUSHALL");
  EXPECT_EQ(f.replica().key_count(), 1u);
}

TEST(StoreReplica, RandomTransactionsLeaveIdenticalStores) {
  const std::vector<std::string> keys = {"k0", "k1", "k2", "k3"};
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    ReplicaFixture f;
    Harness& h = f.h();
    Random rng(seed);
    auto key = [&] { return keys[rng.uniform(keys.size())]; };
    auto num = [&] { return std::to_string(static_cast<int64_t>(rng.range(0, 200)) - 100); };
    for (int t = 0; t < 60; ++t) {
      const uint64_t before = f.shipped();
      h.run({"MULTI"});
      const uint64_t n = 1 + rng.uniform(6);
      for (uint64_t i = 0; i < n; ++i) {
        switch (rng.uniform(9)) {
          case 0:
            h.run({"SET", key(), num()});
            break;
          case 1:
            h.run({"SET", key(), num(), "PX", std::to_string(rng.range(1, 3))});
            break;
          case 2:
            h.run({"INCRBY", key(), num()});  // may fail at run time: no rollback
            break;
          case 3:
            h.run({"APPEND", key(), num()});
            break;
          case 4:
            h.run({"DEL", key(), key()});
            break;
          case 5:
            h.run({"RENAME", key(), key()});
            break;
          case 6:
            h.run({"GETDEL", key()});
            break;
          case 7:
            h.run({"MSET", key(), num(), key(), num()});
            break;
          default:
            h.run({"PEXPIRE", key(), std::to_string(rng.range(1, 1000))});
            break;
        }
      }
      auto reply = h.run({"EXEC"});
      ASSERT_EQ(reply.type, resp::Value::Type::kArray) << testing::describe(reply);
      ASSERT_EQ(reply.elements.size(), n);
      EXPECT_LE(f.shipped(), before + 1) << "seed " << seed;
      if (rng.uniform(20) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    f.expect_same_state("seed " + std::to_string(seed));
  }
}

// Large collections (the element layout) inside MULTI/EXEC: every command
// reads what the earlier ones staged, element by element; the transaction is
// one Mutation of the elements it wrote (not a copy of the collection), and
// the replica applying it ends with the executor's engine.
TEST(StoreReplica, ATransactionWritesLargeCollectionsElementByElement) {
  ReplicaFixture f;
  Harness& h = f.h();
  h.run(many("HSET", "h", 10000, true));
  h.run(many("RPUSH", "l", 1000, false));
  h.run(many("SADD", "s", 2000, false));
  std::vector<std::string> zadd = {"ZADD", "z"};
  for (int i = 0; i < 1000; ++i) {
    zadd.push_back(std::to_string(i));
    zadd.push_back("e" + std::to_string(i));
  }
  h.run(zadd);
  const uint64_t before = f.shipped();
  const std::vector<std::vector<std::string>> txn = {
      {"HSET", "h", "e5", "changed", "fresh", "1"},
      {"HGET", "h", "e5"},
      {"HGET", "h", "fresh"},
      {"HLEN", "h"},
      {"HDEL", "h", "e6"},
      {"HEXISTS", "h", "e6"},
      {"HINCRBY", "h", "fresh", "41"},
      {"LPUSH", "l", "a", "b"},
      {"LRANGE", "l", "0", "2"},
      {"RPOP", "l"},
      {"LINDEX", "l", "-1"},
      {"LLEN", "l"},
      {"ZADD", "z", "2.5", "new", "5000", "e0"},
      {"ZRANK", "z", "new"},
      {"ZRANK", "z", "e0"},
      {"ZRANGE", "z", "0", "3", "WITHSCORES"},
      {"ZREVRANGE", "z", "0", "1"},
      {"ZRANGEBYSCORE", "z", "2", "3"},
      {"ZREM", "z", "e1"},
      {"ZCARD", "z"},
      {"SADD", "s", "x"},
      {"SISMEMBER", "s", "x"},
      {"SREM", "s", "e0"},
      {"SCARD", "s"},
      {"DBSIZE"},
  };
  h.run({"MULTI"});
  for (const auto& cmd : txn) h.run(cmd);
  auto reply = h.run({"EXEC"});
  EXPECT_EQ(testing::describe(reply),
            "[:1, $changed, $1, :10001, :1, :0, :42, :1002, [$b, $a, $e0, ], $e999, $e998, :1001, "
            ":1, :2, :1000, [$e1, $1, $e2, $2, $new, $2.5, $e3, $3, ], [$e0, $e999, ], "
            "[$e2, $new, $e3, ], :1, :1000, :1, :1, :1, :2000, :4, ]");
  EXPECT_EQ(f.shipped(), before + 1) << "one Mutation";
  // The elements written and the heads whose counts moved: no copy.
  EXPECT_LE(f.last_effects(), 20u);
  f.expect_same_state("EXEC");
  EXPECT_EQ(h.run({"HGET", "h", "fresh"}).str, "42");
  EXPECT_EQ(h.run({"ZSCORE", "z", "e0"}).str, "5000");
  EXPECT_EQ(h.run({"LLEN", "l"}).integer, 1001);

  // Deleted and re-created in one transaction: the new collection has a
  // generation of its own, the old one is retired, and the elements of a
  // collection created and deleted again inside it are never written.
  const size_t m_before = count_prefix(h.engine(), 'm');
  h.run({"MULTI"});
  h.run({"DEL", "h"});
  h.run({"HLEN", "h"});
  h.run(many("HSET", "h", 700, true));
  h.run({"HGET", "h", "e699"});
  h.run(many("SADD", "tmp", 900, false));
  h.run({"DEL", "tmp"});
  h.run({"HLEN", "h"});
  EXPECT_EQ(testing::describe(h.run({"EXEC"})), "[:1, :0, :700, $v699, :900, :1, :700, ]");
  f.expect_same_state("re-created");
  EXPECT_EQ(count_prefix(h.engine(), 'm'), m_before + 700);
  EXPECT_EQ(count_prefix(h.engine(), 'g'), 1u);  // the old hash's generation
  for (Store* s : {&f.leader(), &f.replica()}) {
    reclaim_all(*s);
  }
  f.expect_same_state("reclaimed");
  EXPECT_EQ(count_prefix(h.engine(), 'm'), m_before + 700 - 10000);

  // Most of a set and a sorted set erased, then read: random seeks and
  // ranges read past the stored entries the transaction erased.
  h.run(many("SADD", "bigs", 2000, false));
  std::vector<std::string> bigz = {"ZADD", "bigz"};
  for (int i = 0; i < 1000; ++i) {
    bigz.push_back(std::to_string(i));
    bigz.push_back("e" + std::to_string(i));
  }
  h.run(bigz);
  std::vector<std::string> srem = many("SREM", "bigs", 1990, false);
  h.run({"MULTI"});
  h.run(srem);
  h.run({"SRANDMEMBER", "bigs", "-300"});
  h.run({"SPOP", "bigs", "3"});
  h.run({"SCARD", "bigs"});
  h.run({"ZREMRANGEBYRANK", "bigz", "0", "899"});
  h.run({"ZRANGE", "bigz", "0", "2", "WITHSCORES"});
  h.run({"ZREMRANGEBYRANK", "bigz", "-50", "-1"});
  h.run({"ZREVRANGE", "bigz", "0", "1"});
  h.run({"ZRANGEBYSCORE", "bigz", "-inf", "+inf", "LIMIT", "10", "2"});
  h.run({"ZRANK", "bigz", "e900"});
  h.run({"ZPOPMIN", "bigz"});
  for (int i = 0; i < 8; ++i) h.run({"SRANDMEMBER", "bigs"});  // one random seek each
  auto last = h.run({"EXEC"});
  ASSERT_EQ(last.elements.size(), 19u) << testing::describe(last);
  for (size_t i = 11; i < 19; ++i) {
    ASSERT_EQ(last.elements[i].type, resp::Value::Type::kBulk) << testing::describe(last);
    EXPECT_GE(std::stoi(last.elements[i].str.substr(1)), 1990) << last.elements[i].str;
  }
  EXPECT_EQ(last.elements[0].integer, 1990);
  ASSERT_EQ(last.elements[1].elements.size(), 300u);
  for (const auto& m : last.elements[1].elements) {
    EXPECT_GE(std::stoi(m.str.substr(1)), 1990) << m.str;
  }
  ASSERT_EQ(last.elements[2].elements.size(), 3u);
  for (const auto& m : last.elements[2].elements) {
    EXPECT_GE(std::stoi(m.str.substr(1)), 1990) << m.str;
  }
  EXPECT_EQ(last.elements[3].integer, 7);
  EXPECT_EQ(testing::describe(last.elements[5]), "[$e900, $900, $e901, $901, $e902, $902, ]");
  EXPECT_EQ(testing::describe(last.elements[7]), "[$e949, $e948, ]");
  EXPECT_EQ(testing::describe(last.elements[8]), "[$e910, $e911, ]");
  EXPECT_EQ(last.elements[9].integer, 0);
  EXPECT_EQ(testing::describe(last.elements[10]), "[$e900, $900, ]");
  f.expect_same_state("erased and read");
}

// FLUSHALL inside a transaction with writes after it erases every key one by
// one: a large collection's erase retires its generation, so its elements are
// reclaimed (they leaked before: the erase did not name the generation).
TEST(StoreReplica, AFlushInsideATransactionRetiresLargeCollections) {
  ReplicaFixture f;
  Harness& h = f.h();
  h.run(many("HSET", "h", 600, true));
  h.run(many("SADD", "s", 300, false));
  h.run({"MULTI"});
  h.run({"FLUSHALL"});
  h.run(many("SADD", "t", 200, false));
  h.run({"SET", "x", "1"});
  EXPECT_EQ(testing::describe(h.run({"EXEC"})), "[+OK, :200, +OK, ]");
  f.expect_same_state("EXEC");
  EXPECT_EQ(f.leader().garbage_count(), 2u);
  for (Store* s : {&f.leader(), &f.replica()}) {
    reclaim_all(*s);
  }
  f.expect_same_state("reclaimed");
  EXPECT_EQ(count_prefix(h.engine(), 'm'), 200u);
  EXPECT_EQ(h.run({"DBSIZE"}).integer, 2);
}

// Random mixes of collection commands over every size, run as transactions
// on one store and one by one on another: the same replies, and once both
// reclaimed their garbage, the same engine, byte for byte (the replica of the
// transactional one too). Commands whose reply is random are left out.
TEST(StoreReplica, TransactionsOfCollectionCommandsMatchTheCommandsRunOneByOne) {
  const std::vector<std::string> keys = {"h0", "h1", "s0", "s1", "l0", "l1", "z0", "z1"};
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    ReplicaFixture f;
    Harness& h = f.h();
    Harness plain;
    Random rng(seed);
    auto key = [&] { return keys[rng.uniform(keys.size())]; };
    // Mostly a key of the command's type; sometimes any (WRONGTYPE).
    auto typed = [&](char t) {
      if (rng.uniform(10) == 0) return key();
      return std::string(1, t) + std::to_string(rng.uniform(2));
    };
    auto elem = [&] { return "e" + std::to_string(rng.uniform(800)); };
    auto num = [&] { return std::to_string(static_cast<int64_t>(rng.range(0, 40)) - 20); };
    auto bulk = [&](const std::string& cmd, const std::string& k, bool pairs, bool scores) {
      std::vector<std::string> out = {cmd, k};
      const uint64_t n = rng.range(1, 300);
      for (uint64_t i = 0; i < n; ++i) {
        if (scores) out.push_back(num());
        out.push_back(elem());
        if (pairs) out.push_back(elem());
      }
      return out;
    };
    for (int t = 0; t < 40; ++t) {
      std::vector<std::vector<std::string>> cmds;
      const uint64_t n = 1 + rng.uniform(10);
      for (uint64_t i = 0; i < n; ++i) {
        switch (rng.uniform(40)) {
          case 0:
            cmds.push_back(bulk("HSET", typed('h'), true, false));
            break;
          case 1:
            cmds.push_back({"HSET", typed('h'), elem(), elem()});
            break;
          case 2:
            cmds.push_back({"HDEL", typed('h'), elem(), elem()});
            break;
          case 3:
            cmds.push_back({"HGET", typed('h'), elem()});
            break;
          case 4:
            cmds.push_back({"HINCRBY", typed('h'), elem(), num()});
            break;
          case 5:
            cmds.push_back({"HLEN", typed('h')});
            break;
          case 6:
            cmds.push_back({"HGETALL", typed('h')});
            break;
          case 7:
            cmds.push_back(bulk("SADD", typed('s'), false, false));
            break;
          case 8:
            cmds.push_back({"SREM", typed('s'), elem(), elem()});
            break;
          case 9:
            cmds.push_back({"SISMEMBER", typed('s'), elem()});
            break;
          case 10:
            cmds.push_back({"SMEMBERS", typed('s')});
            break;
          case 11:
            cmds.push_back({"SMOVE", typed('s'), typed('s'), elem()});
            break;
          case 12:
            cmds.push_back({"SINTERSTORE", typed('s'), typed('s'), typed('s')});
            break;
          case 13:
            cmds.push_back({"SSCAN", typed('s'), "0", "COUNT", "50"});
            break;
          case 14:
            cmds.push_back(bulk("RPUSH", typed('l'), false, false));
            break;
          case 15:
            cmds.push_back({"LPUSH", typed('l'), elem(), elem()});
            break;
          case 16:
            cmds.push_back({"LPOP", typed('l'), std::to_string(rng.range(1, 40))});
            break;
          case 17:
            cmds.push_back({"RPOP", typed('l')});
            break;
          case 18:
            cmds.push_back({"LRANGE", typed('l'), num(), num()});
            break;
          case 19:
            cmds.push_back({"LSET", typed('l'), num(), elem()});
            break;
          case 20:
            cmds.push_back({"LTRIM", typed('l'), "1", std::to_string(rng.range(0, 400))});
            break;
          case 21:
            cmds.push_back({"LMOVE", typed('l'), typed('l'), "LEFT", "RIGHT"});
            break;
          case 22:
            cmds.push_back({"LINDEX", typed('l'), num()});
            break;
          case 23:
            cmds.push_back(bulk("ZADD", typed('z'), false, true));
            break;
          case 24:
            cmds.push_back({"ZINCRBY", typed('z'), num(), elem()});
            break;
          case 25:
            cmds.push_back({"ZREM", typed('z'), elem(), elem()});
            break;
          case 26:
            cmds.push_back({"ZRANK", typed('z'), elem()});
            break;
          case 27:
            cmds.push_back({"ZRANGE", typed('z'), num(), num(), "WITHSCORES"});
            break;
          case 28:
            cmds.push_back({"ZRANGEBYSCORE", typed('z'), num(), num(), "LIMIT", "1", "5"});
            break;
          case 29:
            cmds.push_back({"ZPOPMIN", typed('z'), std::to_string(rng.range(1, 30))});
            break;
          case 30:
            cmds.push_back({"ZRANGESTORE", typed('z'), typed('z'), "0", num()});
            break;
          case 31:
            cmds.push_back({"DEL", key(), key()});
            break;
          case 32:
            cmds.push_back({"RENAME", key(), key()});
            break;
          // Many elements erased, then reads that page past them.
          case 34:
            cmds.push_back(bulk("SREM", typed('s'), false, false));
            break;
          case 35:
            cmds.push_back(bulk("HDEL", typed('h'), false, false));
            break;
          case 36:
            cmds.push_back({"ZREMRANGEBYRANK", typed('z'), "0", std::to_string(rng.range(0, 300))});
            break;
          case 37:
            cmds.push_back({"ZREVRANGE", typed('z'), "0", "4", "WITHSCORES"});
            break;
          case 38:
            cmds.push_back(
                {"HSCAN", typed('h'), std::to_string(rng.next_u64() >> 33), "COUNT", "20"});
            break;
          default:
            cmds.push_back({"COPY", key(), key(), "REPLACE"});
            break;
        }
      }
      h.run({"MULTI"});
      for (const auto& cmd : cmds) h.run(cmd);
      auto exec = h.run({"EXEC"});
      ASSERT_EQ(exec.type, resp::Value::Type::kArray) << testing::describe(exec);
      ASSERT_EQ(exec.elements.size(), cmds.size());
      for (size_t i = 0; i < cmds.size(); ++i) {
        auto alone = plain.run(cmds[i]);
        ASSERT_EQ(testing::describe(exec.elements[i]), testing::describe(alone))
            << "seed " << seed << " transaction " << t << ": " << cmds[i][0] << " " << cmds[i][1];
      }
    }
    f.expect_same_state("seed " + std::to_string(seed));
    for (Store* s : {&f.leader(), &f.replica(), plain.service().store()}) {
      reclaim_all(*s);
    }
    f.expect_same_state("seed " + std::to_string(seed) + " reclaimed");
    EXPECT_EQ(contents(h.engine()), contents(plain.engine())) << "seed " << seed;
  }
}

// Records the caller read already (a restore's scan) are taken as given, not
// read again, and leave the same state and counters as reading them: a TTL
// dropped, a collection's generation retired, a new key, an erased one.
TEST(StoreReplica, ApplyTakesTheRecordsTheCallerKnowsAsRead) {
  using Kind = replication::Effect::Kind;
  std::string head;
  encode_elements_head(7, 1, &head);
  replication::Mutation before;
  before.effects.push_back({Kind::kPut, "t", "1", 4'000'000'000'000});
  before.effects.push_back({Kind::kPutTyped, "h", head, 0, static_cast<uint8_t>(ValueType::kHash)});
  before.effects.push_back({Kind::kPutElement, "h", "v", 0, 0, 7, "f"});
  before.effects.push_back({Kind::kPut, "s", "x", 0});
  replication::Mutation after;
  after.effects.push_back({Kind::kPut, "t", "2", 0});
  after.effects.push_back({Kind::kPut, "h", "now a string", 0});
  after.effects.push_back({Kind::kPut, "n", "new", 0});
  after.effects.push_back({Kind::kErase, "s", {}, 0});
  auto read_engine = storage::open_memory_engine();
  auto known_engine = storage::open_memory_engine();
  Store read(*read_engine, nullptr);
  Store told(*known_engine, nullptr);
  ASSERT_TRUE(read.apply(before).ok());
  ASSERT_TRUE(told.apply(before).ok());
  Store::KnownRecords known;
  std::deque<std::string> keys;
  ASSERT_TRUE(told
                  .scan("", "", 0, 0,
                        [&](std::string_view key, const RecordView& rec) {
                          known.emplace(keys.emplace_back(key), Store::meta_of(rec));
                          return true;
                        })
                  .ok());
  ASSERT_EQ(known.size(), 3u);
  known.emplace("n", Store::Meta{});
  ASSERT_TRUE(read.apply(after).ok());
  ASSERT_TRUE(told.apply(after, Store::Logging::kInEngineLog, std::nullopt, &known).ok());
  EXPECT_EQ(contents(*known_engine), contents(*read_engine));
  EXPECT_EQ(told.key_count(), 3u);
  EXPECT_EQ(told.key_count(), read.key_count());
  EXPECT_EQ(told.expire_count(), 0u);
  EXPECT_EQ(told.expire_count(), read.expire_count());
  EXPECT_EQ(told.garbage_count(), 1u);  // the hash's generation
  EXPECT_EQ(told.garbage_count(), read.garbage_count());
  // Taken as given, not read: an erase of a key said to hold nothing writes
  // nothing (which is why the caller must have read it just before).
  replication::Mutation erase;
  erase.effects.push_back({Kind::kErase, "n", {}, 0});
  Store::KnownRecords wrong;
  wrong.emplace("n", Store::Meta{});
  ASSERT_TRUE(told.apply(erase, Store::Logging::kInEngineLog, std::nullopt, &wrong).ok());
  EXPECT_EQ(told.key_count(), 3u);
}

TEST(StoreReplica, ApplyRefusesMalformedMutationsAndChangesNothing) {
  auto engine = storage::open_memory_engine();
  Store store(*engine, nullptr);
  replication::Mutation twice;
  twice.effects.push_back({replication::Effect::Kind::kPut, "k", "1", 0});
  twice.effects.push_back({replication::Effect::Kind::kPut, "k", "2", 0});
  EXPECT_TRUE(store.apply(twice).status().is_invalid_argument());
  replication::Mutation mixed;
  mixed.effects.push_back({replication::Effect::Kind::kPut, "k", "1", 0});
  mixed.effects.push_back({replication::Effect::Kind::kClear, {}, {}, 0});
  EXPECT_TRUE(store.apply(mixed).status().is_invalid_argument());
  EXPECT_EQ(store.key_count(), 0u);
  EXPECT_TRUE(contents(*engine).empty());
}

}  // namespace
}  // namespace statekv::server
