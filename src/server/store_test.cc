// The building blocks under the commands: Redis's number and glob rules, the
// record layout, the SCAN cursor table, Store counters and expiry, and every
// CommandSpec's docs grammar.
#include "server/store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <optional>
#include <thread>

#include "server/command_docs.h"
#include "server/command_table.h"
#include "server/glob.h"
#include "server/number.h"
#include "server/record.h"
#include "server/scan_cursors.h"

namespace statekv::server {
namespace {

TEST(Number, ParseInt64LikeRedis) {
  EXPECT_EQ(parse_int64("0"), 0);
  EXPECT_EQ(parse_int64("-1"), -1);
  EXPECT_EQ(parse_int64("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(parse_int64("-9223372036854775808"), INT64_MIN);
  for (const char* bad : {"", "-", "+1", "01", "-0", " 1", "1 ", "1a", "9223372036854775808",
                          "-9223372036854775809", "123456789012345678901"}) {
    EXPECT_FALSE(parse_int64(bad).has_value()) << bad;
  }
}

TEST(Number, LongDoubleRoundTrip) {
  EXPECT_EQ(format_long_double(10.5L), "10.5");
  EXPECT_EQ(format_long_double(3.0L), "3");
  EXPECT_EQ(format_long_double(-0.0L), "0");
  EXPECT_EQ(format_long_double(0.1L + 0.2L), "0.3");
  EXPECT_EQ(format_long_double(1e20L), "100000000000000000000");
  EXPECT_TRUE(parse_long_double("1e3").has_value());
  for (const char* bad : {"", " 1", "1 ", "abc", "nan", "1e99999"}) {
    EXPECT_FALSE(parse_long_double(bad).has_value()) << bad;
  }
}

TEST(Glob, RedisSemantics) {
  // Redis's matcher never matches an empty string (KEYS * special-cases "*").
  EXPECT_FALSE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("*", "a"));
  EXPECT_TRUE(glob_match("h?llo", "hello"));
  EXPECT_FALSE(glob_match("h?llo", "hllo"));
  EXPECT_TRUE(glob_match("h*llo", "hllo"));
  EXPECT_TRUE(glob_match("h[a-e]llo", "hcllo"));
  EXPECT_TRUE(glob_match("h[e-a]llo", "hcllo"));  // reversed range
  EXPECT_FALSE(glob_match("h[^e]llo", "hello"));
  EXPECT_TRUE(glob_match("h\\*", "h*"));
  EXPECT_FALSE(glob_match("h\\*", "hx"));
  EXPECT_TRUE(glob_match("a[\\]]b", "a]b"));
  EXPECT_TRUE(glob_match("[abc", "a"));  // unclosed class
  EXPECT_TRUE(glob_match("PORT", "port", true));
  EXPECT_FALSE(glob_match("PORT", "port", false));
  // Built with append, not operator+: GCC 12 warns -Warray-bounds on a
  // temporary's operator+ here (a false positive of its inliner).
  std::string many_stars(50, '*');
  many_stars.append("x");
  EXPECT_FALSE(glob_match(many_stars, std::string(10000, 'a')));
  EXPECT_EQ(glob_literal_prefix("user:*:x"), "user:");
  EXPECT_EQ(glob_literal_prefix("a\\*"), "a");
}

TEST(Record, EncodeDecode) {
  std::string raw;
  encode_record("value", 0, &raw);
  RecordView rec;
  ASSERT_TRUE(decode_record(raw, &rec));
  EXPECT_EQ(rec.value, "value");
  EXPECT_EQ(rec.expire_ms, 0);
  encode_record("", 1700000000123, &raw);
  ASSERT_TRUE(decode_record(raw, &rec));
  EXPECT_EQ(rec.expire_ms, 1700000000123);
  EXPECT_EQ(rec.value, "");
  EXPECT_FALSE(decode_record("", &rec));
  EXPECT_FALSE(decode_record("\x10\x01", &rec));  // expiry flag, truncated time
  // The expiry index sorts by time.
  std::string a, b;
  expiry_key(255, "zzz", &a);
  expiry_key(256, "aaa", &b);
  EXPECT_LT(a, b);
  int64_t ms;
  std::string_view key;
  ASSERT_TRUE(parse_expiry_key(b, &ms, &key));
  EXPECT_EQ(ms, 256);
  EXPECT_EQ(key, "aaa");
}

TEST(ScanCursors, BoundedAndRetryable) {
  ScanCursors cursors(2, 7);
  uint64_t a = cursors.issue("a");
  uint64_t b = cursors.issue("b");
  EXPECT_NE(a, 0u);
  EXPECT_EQ(cursors.find(a), "a");
  EXPECT_EQ(cursors.find(a), "a");  // reusable
  uint64_t c = cursors.issue("c");
  EXPECT_FALSE(cursors.find(a).has_value());  // oldest evicted
  EXPECT_EQ(cursors.find(b), "b");
  EXPECT_EQ(cursors.find(c), "c");
  EXPECT_EQ(cursors.size(), 2u);
  EXPECT_FALSE(cursors.find(0).has_value());
}

TEST(Store, CountersFollowMutationsAndRecount) {
  auto engine = storage::open_memory_engine();
  Store store(*engine, nullptr);
  const int64_t now = unix_time_ms();
  {
    auto g = store.lock("a");
    ASSERT_TRUE(store.put_locked("a", {}, "1", 0).ok());
  }
  {
    auto g = store.lock("b");
    ASSERT_TRUE(store.put_locked("b", {}, "2", now + 100000).ok());
  }
  EXPECT_EQ(store.key_count(), 2u);
  EXPECT_EQ(store.expire_count(), 1u);
  {
    auto g = store.lock("b");
    std::string buf;
    RecordView rec;
    Store::Meta meta;
    ASSERT_TRUE(*store.get_locked("b", now, &buf, &rec, &meta));
    EXPECT_EQ(meta.expire_ms, now + 100000);
    ASSERT_TRUE(store.put_locked("b", meta, "3", 0).ok());  // drops TTL and its index entry
  }
  EXPECT_EQ(store.expire_count(), 0u);
  size_t index_entries = 0;
  ASSERT_TRUE(engine->scan("e", "f", 0, [&](auto, auto) { return ++index_entries, true; }).ok());
  EXPECT_EQ(index_entries, 0u);

  Store reopened(*engine, nullptr);
  ASSERT_TRUE(reopened.recount().ok());
  EXPECT_EQ(reopened.key_count(), 2u);
  EXPECT_EQ(reopened.expire_count(), 0u);
}

// A replica group's applied position travels in the same engine write as the
// entry's effects (even an entry with none), is not a key, and outlives FLUSHALL.
TEST(Store, AppliedPositionsAreWrittenWithTheEffectsAndSurviveAFlush) {
  auto engine = storage::open_memory_engine();
  Store store(*engine, nullptr);
  EXPECT_EQ(store.applied_position(7).value(), 0u);
  replication::Mutation m;
  m.effects.push_back({replication::Effect::Kind::kPut, "k", "v", 0});
  ASSERT_TRUE(store.apply(m, Store::Logging::kInReplicaLog, Store::AppliedPosition{7, 42}).ok());
  EXPECT_EQ(store.applied_position(7).value(), 42u);
  EXPECT_EQ(store.applied_position(8).value(), 0u);
  EXPECT_EQ(store.key_count(), 1u);
  // An entry with no effect (an erase of an absent key) still moves it.
  replication::Mutation nothing;
  nothing.effects.push_back({replication::Effect::Kind::kErase, "absent", {}, 0});
  ASSERT_TRUE(
      store.apply(nothing, Store::Logging::kInReplicaLog, Store::AppliedPosition{7, 43}).ok());
  EXPECT_EQ(store.applied_position(7).value(), 43u);
  ASSERT_TRUE(store.apply({}, Store::Logging::kInReplicaLog, Store::AppliedPosition{8, 5}).ok());
  EXPECT_EQ(store.applied_position(8).value(), 5u);
  // Not a key: SCAN and the counters do not see it.
  size_t keys = 0;
  ASSERT_TRUE(
      store.scan({}, {}, 0, 0, [&](std::string_view, const RecordView&) { return ++keys, true; })
          .ok());
  EXPECT_EQ(keys, 1u);
  ASSERT_TRUE(store.flush().ok());
  EXPECT_EQ(store.key_count(), 0u);
  EXPECT_EQ(store.applied_position(7).value(), 43u);
  EXPECT_EQ(store.applied_position(8).value(), 5u);
  ASSERT_TRUE(store.forget_applied_position(7).ok());
  EXPECT_EQ(store.applied_position(7).value(), 0u);
  EXPECT_EQ(store.applied_position(8).value(), 5u);
}

// A restore in pieces: the mark replaces the position until the last piece's
// write carries the new one; forgetting the position forgets the mark too.
TEST(Store, TheRestoringMarkReplacesThePositionUntilAWriteCarriesOne) {
  auto engine = storage::open_memory_engine();
  Store store(*engine, nullptr);
  ASSERT_TRUE(store.apply({}, Store::Logging::kInReplicaLog, Store::AppliedPosition{7, 42}).ok());
  ASSERT_TRUE(store.mark_restoring(7).ok());
  auto state = store.applied_state(7);
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->restoring);
  EXPECT_EQ(state->index, 0u);
  EXPECT_EQ(store.applied_position(7).value(), 0u);
  EXPECT_FALSE(store.applied_state(8)->restoring);
  replication::Mutation piece;
  piece.effects.push_back({replication::Effect::Kind::kPut, "k", "v", 0});
  ASSERT_TRUE(store.apply(piece, Store::Logging::kInEngineLog).ok());
  EXPECT_TRUE(store.applied_state(7)->restoring);
  ASSERT_TRUE(store.flush().ok());  // the mark, like a position, outlives FLUSHALL
  EXPECT_TRUE(store.applied_state(7)->restoring);
  ASSERT_TRUE(store.apply({}, Store::Logging::kInEngineLog, Store::AppliedPosition{7, 90}).ok());
  EXPECT_FALSE(store.applied_state(7)->restoring);
  EXPECT_EQ(store.applied_position(7).value(), 90u);
  ASSERT_TRUE(store.mark_restoring(7).ok());
  ASSERT_TRUE(store.forget_applied_position(7).ok());
  EXPECT_FALSE(store.applied_state(7)->restoring);
  EXPECT_EQ(store.applied_position(7).value(), 0u);
}

// Keys that start with "c" are in scope 0 here; the others in scope 7 when
// they end in an odd digit, in scope 9 when in an even one.
class DigitScopes final : public KeyScopes {
 public:
  uint64_t scope_of(std::string_view key) const override {
    if (key.starts_with("c")) return 0;
    return (key.back() - '0') % 2 == 1 ? 7 : 9;
  }
};

void put_key(Store& store, std::string_view key, std::string_view value, int64_t expire_ms = 0) {
  replication::Mutation m;
  m.effects.push_back({replication::Effect::Kind::kPut, key, value, expire_ms});
  ASSERT_TRUE(store.apply(m).ok());
}

// The keys of one scope's records (Store::scan_scope).
std::vector<std::string> scope_keys(Store& store, uint64_t scope, std::string_view start = {},
                                    size_t limit = 0) {
  std::vector<std::string> keys;
  EXPECT_TRUE(store
                  .scan_scope(scope, start, limit,
                              [&](std::string_view k, const RecordView&) {
                                keys.emplace_back(k);
                                return true;
                              })
                  .ok());
  return keys;
}

std::vector<std::string> scanned(Store& store, std::string_view after, std::string_view prefix,
                                 size_t limit, std::string* last = nullptr,
                                 std::optional<uint64_t> within_scope = std::nullopt,
                                 size_t* examined = nullptr) {
  std::vector<std::string> keys;
  EXPECT_TRUE(store
                  .scan(
                      after, prefix, limit, unix_time_ms(),
                      [&](std::string_view k, auto&) {
                        keys.emplace_back(k);
                        return true;
                      },
                      last, examined, within_scope)
                  .ok());
  return keys;
}

// A scope's records are one range of the engine under "D" + be64(scope); every
// read and write finds a key in its scope, the walk (SCAN, KEYS) goes scope by
// scope with a key's record key as its position, and a scope reads alone.
TEST(Store, ScopedRecordsLiveUnderTheirScopesPrefix) {
  auto engine = storage::open_memory_engine();
  DigitScopes scopes;
  Store store(*engine, nullptr, 0, &scopes);
  ASSERT_TRUE(Store::check_layout(*engine, true).ok());
  const int64_t later = unix_time_ms() + 100000;
  for (std::string k : {"a1", "b1", "c1", "a2", "b2", "c2", "a3"}) put_key(store, k, "v" + k);
  put_key(store, "b3", "vb3", later);

  std::string raw;
  ASSERT_TRUE(engine
                  ->get(std::string("D\0\0\0\0\0\0\0\x09"
                                    "a2",
                                    11),
                        &raw)
                  .ok());
  ASSERT_TRUE(engine
                  ->get(std::string("D\0\0\0\0\0\0\0\x07"
                                    "b3",
                                    11),
                        &raw)
                  .ok());
  ASSERT_TRUE(engine->get("dc1", &raw).ok());
  EXPECT_TRUE(engine->get("da2", &raw).is_not_found());
  EXPECT_EQ(store.position_of("b3"), std::string("D\0\0\0\0\0\0\0\x07"
                                                 "b3",
                                                 11));
  EXPECT_EQ(store.position_of("c1"), "dc1");

  std::string buf;
  RecordView rec;
  ASSERT_TRUE(*store.get("b1", unix_time_ms(), &buf, &rec));
  EXPECT_EQ(rec.value, "vb1");
  EXPECT_EQ(store.key_count(), 8u);
  EXPECT_EQ(store.expire_count(), 1u);

  const std::vector<std::string> walk = {"a1", "a3", "b1", "b3", "a2", "b2", "c1", "c2"};
  EXPECT_EQ(scanned(store, {}, {}, 0), walk);
  // Pages resume after the position of the last key examined.
  std::string last;
  EXPECT_EQ(scanned(store, {}, {}, 3, &last), (std::vector<std::string>{"a1", "a3", "b1"}));
  EXPECT_EQ(last, store.position_of("b1"));
  EXPECT_EQ(scanned(store, last, {}, 3, &last), (std::vector<std::string>{"b3", "a2", "b2"}));
  EXPECT_EQ(scanned(store, last, {}, 3, &last), (std::vector<std::string>{"c1", "c2"}));
  // A prefix keeps to its keys in every scope, the rest of each skipped.
  EXPECT_EQ(scanned(store, {}, "b", 0), (std::vector<std::string>{"b1", "b3", "b2"}));
  EXPECT_EQ(scanned(store, {}, "b", 2, &last), (std::vector<std::string>{"b1", "b3"}));
  EXPECT_EQ(scanned(store, last, "b", 2), (std::vector<std::string>{"b2"}));
  EXPECT_EQ(scanned(store, {}, "c2", 0), (std::vector<std::string>{"c2"}));
  EXPECT_EQ(scanned(store, {}, "d", 0), (std::vector<std::string>{}));

  // Pages of every size walk every key once, in walk order.
  std::vector<std::string> many = walk;
  for (int i = 10; i < 40; ++i) put_key(store, "a" + std::to_string(i), "x");
  many = scanned(store, {}, {}, 0);
  EXPECT_EQ(many.size(), 38u);
  for (size_t count : {1, 2, 5, 10, 100}) {
    for (std::string_view prefix : {"", "a"}) {
      std::vector<std::string> expected;
      for (const std::string& k : many) {
        if (k.starts_with(prefix)) expected.push_back(k);
      }
      std::vector<std::string> walked;
      std::string after;
      for (bool first = true; first || !after.empty(); first = false) {
        size_t examined_before = walked.size();
        std::vector<std::string> page = scanned(store, after, prefix, count, &after);
        EXPECT_LE(page.size(), count);
        walked.insert(walked.end(), page.begin(), page.end());
        if (walked.size() - examined_before < count) break;
      }
      EXPECT_EQ(walked, expected) << "COUNT " << count << " prefix " << prefix;
    }
  }
  for (int i = 10; i < 40; ++i) {
    replication::Mutation m;
    const std::string key = "a" + std::to_string(i);
    m.effects.push_back({replication::Effect::Kind::kErase, key, {}, 0});
    ASSERT_TRUE(store.apply(m).ok());
  }

  // The walk within one scope (a replica group's page): from wherever
  // `after` is, only that scope's keys, and the end once past them.
  EXPECT_EQ(scanned(store, {}, {}, 0, nullptr, 9), (std::vector<std::string>{"a2", "b2"}));
  EXPECT_EQ(scanned(store, {}, "b", 0, nullptr, 7), (std::vector<std::string>{"b1", "b3"}));
  size_t examined = 0;
  EXPECT_EQ(scanned(store, {}, {}, 3, &last, 7, &examined),
            (std::vector<std::string>{"a1", "a3", "b1"}));
  EXPECT_EQ(examined, 3u);
  EXPECT_EQ(scanned(store, last, {}, 3, &last, 7, &examined), (std::vector<std::string>{"b3"}));
  EXPECT_EQ(examined, 1u);  // fewer than asked: the scope's end
  EXPECT_EQ(scanned(store, store.position_of("b3"), {}, 3, nullptr, 9),
            (std::vector<std::string>{"a2", "b2"}));  // after scope 7: all of 9
  EXPECT_EQ(scanned(store, store.position_of("c1"), {}, 3, nullptr, 9, &examined),
            (std::vector<std::string>{}));  // past scope 9: nothing, at once
  EXPECT_EQ(examined, 0u);
  EXPECT_EQ(scanned(store, {}, {}, 0, nullptr, 0), (std::vector<std::string>{"c1", "c2"}));
  EXPECT_EQ(scanned(store, store.position_of("c1"), {}, 0, nullptr, 0),
            (std::vector<std::string>{"c2"}));

  EXPECT_EQ(scope_keys(store, 7), (std::vector<std::string>{"a1", "a3", "b1", "b3"}));
  EXPECT_EQ(scope_keys(store, 7, "a2", 1), (std::vector<std::string>{"a3"}));
  // Each scope's keys counted, as key_count counts all of them.
  const auto counts = [](const Store& s, uint64_t scope) {
    const Store::KeyCounts c = s.scope_counts(scope);
    return std::pair<uint64_t, uint64_t>(c.keys, c.expires);
  };
  EXPECT_EQ(counts(store, 7), (std::pair<uint64_t, uint64_t>(4, 1)));
  EXPECT_EQ(counts(store, 9), (std::pair<uint64_t, uint64_t>(2, 0)));
  EXPECT_EQ(counts(store, 0), (std::pair<uint64_t, uint64_t>(2, 0)));
  EXPECT_EQ(counts(store, 8), (std::pair<uint64_t, uint64_t>(0, 0)));
  put_key(store, "b1", "again");  // an overwrite adds nothing
  put_key(store, "a5", "new", later);
  EXPECT_EQ(counts(store, 7), (std::pair<uint64_t, uint64_t>(5, 2)));
  {
    replication::Mutation m;
    m.effects.push_back({replication::Effect::Kind::kErase, "a5", {}, 0});
    ASSERT_TRUE(store.apply(m).ok());
  }
  EXPECT_EQ(counts(store, 7), (std::pair<uint64_t, uint64_t>(4, 1)));

  // The expiry index names the key; its cycle finds the record in its scope.
  size_t erased = 0;
  ASSERT_TRUE(store
                  .expire_cycle(later + 1, 10,
                                [&](std::string_view key, const Store::Meta& m) {
                                  ++erased;
                                  EXPECT_EQ(key, "b3");
                                  return store.erase_locked(key, m);
                                })
                  .ok());
  EXPECT_EQ(erased, 1u);
  EXPECT_EQ(store.key_count(), 7u);

  Store reopened(*engine, nullptr, 0, &scopes);
  ASSERT_TRUE(reopened.recount().ok());
  EXPECT_EQ(reopened.key_count(), 7u);
  EXPECT_EQ(reopened.expire_count(), 0u);
  EXPECT_EQ(counts(store, 7), (std::pair<uint64_t, uint64_t>(3, 0)));
  for (uint64_t scope : {0, 7, 9}) EXPECT_EQ(counts(reopened, scope), counts(store, scope));
  // A FLUSHALL keeps the layout's mark with the positions.
  ASSERT_TRUE(store.flush().ok());
  EXPECT_EQ(scanned(store, {}, {}, 0), std::vector<std::string>{});
  EXPECT_EQ(counts(store, 7), (std::pair<uint64_t, uint64_t>(0, 0)));
  ASSERT_TRUE(engine->get("L", &raw).ok());
}

// A replica group that leaves the node takes its records with it, by its scope
// alone: its keyspace may already be gone from the map (here: the scopes
// forget every key).
TEST(Store, ErasingAScopeTakesItsRecordsExpiriesAndCollections) {
  class Forgetful final : public KeyScopes {
   public:
    uint64_t scope_of(std::string_view key) const override {
      if (forgot || key.starts_with("c")) return 0;
      return (key.back() - '0') % 2 == 1 ? 7 : 9;
    }
    bool forgot = false;
  };
  auto engine = storage::open_memory_engine();
  Forgetful scopes;
  Store store(*engine, nullptr, 0, &scopes);
  const int64_t later = unix_time_ms() + 100000;
  put_key(store, "a1", "x", later);
  put_key(store, "a3", "x");
  put_key(store, "a2", "x");
  put_key(store, "c1", "x");
  // A collection in the element layout in scope 7: its generation is retired.
  const uint64_t gen = store.new_generation();
  std::string head;
  encode_elements_head(gen, 1, &head);
  replication::Mutation hash;
  hash.effects.emplace_back(replication::Effect::Kind::kPutTyped, "h5", head, 0,
                            static_cast<uint8_t>(ValueType::kHash));
  hash.effects.emplace_back(replication::Effect::Kind::kPutElement, "h5", "v", 0, 0, gen, "f");
  ASSERT_TRUE(store.apply(hash).ok());
  EXPECT_EQ(store.key_count(), 5u);
  EXPECT_EQ(store.expire_count(), 1u);

  scopes.forgot = true;
  auto erased = store.erase_scope(7);
  ASSERT_TRUE(erased.ok()) << erased.status().to_string();
  EXPECT_EQ(*erased, 3u);  // a1, a3, h5
  EXPECT_EQ(store.key_count(), 2u);
  EXPECT_EQ(store.expire_count(), 0u);
  EXPECT_EQ(store.garbage_count(), 1u);
  size_t index_entries = 0;
  ASSERT_TRUE(engine->scan("e", "f", 0, [&](auto, auto) { return ++index_entries, true; }).ok());
  EXPECT_EQ(index_entries, 0u);
  ASSERT_TRUE(store.reclaim(100).ok());
  EXPECT_EQ(store.garbage_count(), 0u);
  EXPECT_EQ(scope_keys(store, 9), (std::vector<std::string>{"a2"}));
  EXPECT_EQ(store.erase_scope(7).value(), 0u);
  EXPECT_FALSE(store.erase_scope(0).ok());
}

// A cluster node refuses a data directory whose records an earlier build wrote
// (its consensus keyspaces' keys under "d", where they are no longer looked
// for); a standalone server reads it, and both mark a layout they accept.
TEST(Store, AClusterNodeRefusesRecordsWrittenBeforeScopes) {
  auto engine = storage::open_memory_engine();
  ASSERT_TRUE(engine->put("dk", "\x00v").ok());
  Status refused = Store::check_layout(*engine, true);
  EXPECT_TRUE(refused.is_invalid_argument()) << refused.to_string();
  EXPECT_NE(refused.to_string().find("earlier statekv build"), std::string::npos);
  ASSERT_TRUE(Store::check_layout(*engine, false).ok());
  // Marked now: written by this build, its "d" records are scope 0's.
  EXPECT_TRUE(Store::check_layout(*engine, true).ok());
  auto empty = storage::open_memory_engine();
  EXPECT_TRUE(Store::check_layout(*empty, true).ok());
}

// A transaction holds its keys' stripes; its commands' own lock() calls on
// them take nothing on that thread (else they would deadlock on themselves),
// while other threads still wait; the scope ends with the transaction's lock.
// A replica group writes the entries one callback applied as one run: the
// same state as applying them one by one, in one engine write, one position.
TEST(Store, ARunOfMutationsWithPriorsIsOneWriteWithTheStateOfOneByOne) {
  using Kind = replication::Effect::Kind;
  const int64_t later = unix_time_ms() + 100000;
  auto one_engine = storage::open_memory_engine();
  auto run_engine = storage::open_memory_engine();
  Store one(*one_engine, nullptr);
  Store run(*run_engine, nullptr);
  for (Store* s : {&one, &run}) {
    put_key(*s, "x", "1", later);
    put_key(*s, "y", "2");
  }
  // x loses its TTL, y goes, z comes with a TTL, w is erased without being there.
  replication::Mutation m1, m2, m3;
  m1.effects.emplace_back(Kind::kPut, "x", "10", 0);
  m1.priors.push_back({true, later, 0});
  m2.effects.emplace_back(Kind::kErase, "y", "", 0);
  m2.effects.emplace_back(Kind::kErase, "w", "", 0);
  m2.priors = {{true, 0, 0}, {}};
  m3.effects.emplace_back(Kind::kPut, "z", "3", later + 5);
  m3.priors.push_back({});
  for (const auto* m : {&m1, &m2, &m3}) {
    ASSERT_TRUE(Store::applies_in_run(*m));
    ASSERT_TRUE(one.apply(*m, Store::Logging::kInEngineLog, Store::AppliedPosition{5, 42}).ok());
  }
  const storage::Sequence before = run_engine->last_sequence();
  const std::vector<const replication::Mutation*> all = {&m1, &m2, &m3};
  ASSERT_TRUE(
      run.apply_run(all, Store::Logging::kInReplicaLog, Store::AppliedPosition{5, 42}).ok());
  EXPECT_EQ(run_engine->last_sequence(), before + 1);  // one engine write
  auto contents = [](storage::Engine& e) {
    std::map<std::string, std::string> out;
    EXPECT_TRUE(e.scan({}, {}, 0, [&](std::string_view k, std::string_view v) {
                   out.emplace(k, v);
                   return true;
                 }).ok());
    return out;
  };
  EXPECT_EQ(contents(*run_engine), contents(*one_engine));
  EXPECT_EQ(run.key_count(), 2u);
  EXPECT_EQ(run.key_count(), one.key_count());
  EXPECT_EQ(run.expire_count(), 1u);
  EXPECT_EQ(*run.applied_position(5), 42u);

  // What a run refuses, applying nothing: a mutation without priors (it would
  // read its keys), a key named twice across the run, an element effect.
  const auto state = contents(*run_engine);
  replication::Mutation bare;
  bare.effects.emplace_back(Kind::kPut, "q", "1", 0);
  EXPECT_FALSE(Store::applies_in_run(bare));
  replication::Mutation again = m3;
  replication::Mutation element;
  element.effects.emplace_back(Kind::kPutElement, "h", "v", 0, 0, 7, "f");
  element.priors.push_back({});
  EXPECT_FALSE(Store::applies_in_run(element));
  for (const std::vector<const replication::Mutation*>& refused :
       std::vector<std::vector<const replication::Mutation*>>{
           {&m1, &bare}, {&m3, &again}, {&element}}) {
    EXPECT_TRUE(run.apply_run(refused, Store::Logging::kInReplicaLog).status().is_invalid_argument());
  }
  EXPECT_EQ(contents(*run_engine), state);
}

// MULTI ... FLUSHALL ... EXEC: the transaction holds every stripe, and the
// flush it runs must not lock them again (it used to wait on itself).
TEST(Store, AFlushInsideATransactionHoldingEveryStripeLocksNothingAgain) {
  auto engine = storage::open_memory_engine();
  Store store(*engine, nullptr);
  put_key(store, "k", "v");
  ASSERT_EQ(store.key_count(), 1u);
  std::atomic<bool> flushed{false};
  std::thread txn_thread([&] {
    auto txn = store.lock_transaction({}, true);
    auto all_again = store.lock_all();
    ASSERT_TRUE(store.flush().ok());
    flushed = true;
  });
  for (int i = 0; i < 200 && !flushed.load(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (!flushed.load()) {
    txn_thread.detach();  // stuck for good: the process ends with the test run
    FAIL() << "the flush inside the transaction waits on its own locks";
  }
  txn_thread.join();
  EXPECT_EQ(store.key_count(), 0u);
  // Released: another thread takes every stripe.
  auto after = store.lock_all();
}

TEST(Store, TransactionLockHoldsItsStripesAndItsThreadsLocksTakeNothing) {
  auto engine = storage::open_memory_engine();
  Store store(*engine, nullptr);
  std::string_view keys[] = {"a", "b"};
  std::atomic<bool> other_locked{false};
  std::thread other;
  {
    auto txn = store.lock_transaction(keys, false);
    {
      auto again = store.lock("a");  // would deadlock if it locked
      auto both = store.lock(keys);  // likewise
      std::string_view ab[] = {"b", "a"};
      auto reversed = store.lock(ab);
    }
    other = std::thread([&] {
      auto g = store.lock("a");
      other_locked = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_FALSE(other_locked.load()) << "another thread must wait for the transaction";
  }
  other.join();
  EXPECT_TRUE(other_locked.load());
  // After the transaction, this thread locks normally again: a second
  // thread waits for it.
  std::optional<Store::Locked> g(store.lock("a"));
  std::atomic<bool> second{false};
  std::thread t([&] {
    auto h = store.lock("a");
    second = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(second.load());
  g.reset();
  t.join();
  EXPECT_TRUE(second.load());
}

TEST(Store, AnApplyOfOwnedKeysTakesNoStripeAndKeepsTheCountersExact) {
  auto engine = storage::open_memory_engine();
  Store store(*engine, nullptr);
  replication::Mutation m;
  m.effects.push_back({replication::Effect::Kind::kPut, "a", "1", 0});
  m.effects.push_back({replication::Effect::Kind::kPut, "b", "2", 4102444800000});
  // Another thread holds the stripe of "a" (a command on another key of that
  // stripe, say): a restore of keys its group owns outright does not wait.
  std::optional<Store::Locked> held(store.lock("a"));
  std::atomic<bool> owned_done{false}, locking_done{false};
  std::thread owned([&] {
    ASSERT_TRUE(store
                    .apply(m, Store::Logging::kInEngineLog, Store::AppliedPosition{7, 9}, nullptr,
                           Store::Locking::kOwnedKeys)
                    .ok());
    owned_done = true;
  });
  for (int i = 0; i < 500 && !owned_done; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(owned_done.load()) << "an apply of owned keys waited for a stripe";
  if (!owned_done) held.reset();  // let it finish
  owned.join();
  if (!held) held.emplace(store.lock("a"));
  // The default locks: it waits for the stripe.
  replication::Mutation erase;
  erase.effects.push_back({replication::Effect::Kind::kErase, "a", {}, 0});
  std::thread locking([&] {
    ASSERT_TRUE(store.apply(erase).ok());
    locking_done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(locking_done.load()) << "an apply that locks did not wait for the stripe";
  held.reset();
  locking.join();
  EXPECT_TRUE(locking_done.load());
  EXPECT_EQ(store.key_count(), 1u);
  EXPECT_EQ(store.expire_count(), 1u);
  EXPECT_EQ(store.applied_position(7).value(), 9u);
}

TEST(Store, ExpireCycleIsBoundedAndDropsStaleEntries) {
  auto engine = storage::open_memory_engine();
  Store store(*engine, nullptr);
  const int64_t now = unix_time_ms();
  for (int i = 0; i < 10; ++i) {
    std::string k = "k" + std::to_string(i);
    auto g = store.lock(k);
    ASSERT_TRUE(store.put_locked(k, {}, "v", now + 1000).ok());
  }
  // A stale index entry (no record behind it) is removed without counting a key.
  std::string stale;
  expiry_key(now - 5, "ghost", &stale);
  ASSERT_TRUE(engine->put(stale, "").ok());
  auto erase = [&](std::string_view key, const Store::Meta& old) {
    return store.erase_locked(key, old);
  };
  auto handled = store.expire_cycle(now + 2000, 4, erase);
  ASSERT_TRUE(handled.ok());
  EXPECT_EQ(*handled, 4u);  // bounded: 1 stale + 3 keys
  EXPECT_EQ(store.key_count(), 7u);
  handled = store.expire_cycle(now + 2000, 100, erase);
  EXPECT_EQ(*handled, 7u);
  EXPECT_EQ(store.key_count(), 0u);
  EXPECT_EQ(store.expire_count(), 0u);
  EXPECT_EQ(*store.expire_cycle(now + 2000, 100, erase), 0u);
}

// Every command is found by its name in any case, and nothing else is found.
TEST(CommandTable, FindsEveryCommandInAnyCaseAndNothingElse) {
  CommandTable table;
  for (const CommandSpec& spec : table.all()) {
    const std::string name(spec.name);
    std::string upper = name;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::string mixed = name;
    for (size_t i = 0; i < mixed.size(); i += 2) {
      mixed[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(mixed[i])));
    }
    EXPECT_EQ(table.find(spec.name), &spec) << spec.name;
    EXPECT_EQ(table.find(upper), &spec) << upper;
    EXPECT_EQ(table.find(mixed), &spec) << mixed;
    // A name one letter longer or shorter is another command (LPUSH, LPUSHX) or none.
    for (const std::string& other : {name + "x", name.substr(0, name.size() - 1)}) {
      const CommandSpec* found = table.find(other);
      EXPECT_TRUE(found == nullptr || found->name == other) << other;
    }
  }
  EXPECT_EQ(table.find(""), nullptr);
  EXPECT_EQ(table.find("nosuchcommand"), nullptr);
  EXPECT_EQ(table.find(std::string("g\0et", 4)), nullptr);
  EXPECT_EQ(table.find("g\xc3\xa9t"), nullptr);  // only ASCII letters fold
  EXPECT_EQ(table.find(std::string(64, 'z')), nullptr);
  EXPECT_EQ(table.find(std::string(65, 'z')), nullptr);
}

TEST(CommandTable, EveryDocGrammarParses) {
  CommandTable table;
  auto check = [](const CommandSpec& spec) {
    std::vector<DocArg> args;
    std::string error;
    EXPECT_TRUE(parse_doc_args(spec.args, &args, &error)) << spec.name << ": " << error;
    EXPECT_FALSE(spec.summary.empty()) << spec.name;
    EXPECT_FALSE(spec.since.empty()) << spec.name;
    if (spec.subcommands.empty()) {
      EXPECT_NE(spec.handler, nullptr) << spec.name;
    }
  };
  for (const CommandSpec& spec : table.all()) {
    check(spec);
    for (const CommandSpec& sub : spec.subcommands) check(sub);
  }
  EXPECT_NE(table.find("GeT"), nullptr);
  EXPECT_EQ(table.find(std::string(100, 'g')), nullptr);
  std::vector<DocArg> args;
  std::string error;
  EXPECT_FALSE(parse_doc_args("[a:key", &args, &error));
  ASSERT_TRUE(parse_doc_args("(data: key:key value:string)...", &args, &error));
  ASSERT_EQ(args.size(), 1u);
  EXPECT_EQ(args[0].type, "block");
  EXPECT_TRUE(args[0].multiple);
  EXPECT_EQ(args[0].args.size(), 2u);
}

}  // namespace
}  // namespace statekv::server
