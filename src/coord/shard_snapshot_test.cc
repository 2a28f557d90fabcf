#include "coord/shard_snapshot.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "server/key_scopes.h"
#include "server/record.h"
#include "server/service_test_util.h"
#include "storage/engine.h"

namespace statekv::coord {
namespace {

using Kind = replication::Effect::Kind;

// Keys under "r:" are group 5's, but those with "other-group" in them group
// 6's; the rest are in scope 0.
class TwoGroups final : public server::KeyScopes {
 public:
  uint64_t scope_of(std::string_view key) const override {
    if (!key.starts_with("r:")) return 0;
    return key.find("other-group") == std::string_view::npos ? 5 : 6;
  }
};

// A shard read from a RocksDB view a piece at a time: the records of its
// group's scope, as of the view (not the writes after it), each large
// collection's elements right after its record, in pieces of about the size
// asked; the pieces decode back to those effects.
TEST(ShardSnapshot, ReadsTheShardAsOfTheViewInPiecesOfTheSizeAsked) {
  server::testing::TempDir dir;
  storage::RocksDbEngineOptions options;
  options.path = dir.path() + "/db";
  auto opened = storage::open_rocksdb_engine(options);
  ASSERT_TRUE(opened.ok()) << opened.status().to_string();
  storage::Engine* engine = opened->get();
  TwoGroups scopes;
  server::testing::Harness h(std::move(opened).value(), server::testing::Harness::default_config(),
                             {}, &scopes);
  h.run({"SET", "r:a", "1"});
  h.run({"SET", "r:other-group", "another shard"});
  h.run({"SET", "other", "scope 0"});
  for (int i = 0; i < 1000; ++i) h.run({"HSET", "r:h", "f" + std::to_string(i), "v"});
  for (int i = 0; i < 600; ++i) h.run({"RPUSH", "r:l", "e" + std::to_string(i)});
  h.run({"SET", "r:z", "last", "PX", "100000"});
  auto view = engine->view();
  ASSERT_TRUE(view.ok());
  // After the view: none of it is read.
  h.run({"SET", "r:a", "2"});
  h.run({"DEL", "r:h"});
  h.run({"SET", "r:b", "new"});

  ShardSnapshotReader reader(std::move(view).value(), 5);
  std::string all;
  int pieces = 0;
  for (;;) {
    auto piece = reader.next(2048);
    ASSERT_TRUE(piece.ok()) << piece.status().to_string();
    if (piece->empty()) break;
    // A piece ends after the scan that filled it: at most 256 entries more.
    EXPECT_LT(piece->size(), 2048u + 256 * 40) << "piece " << pieces;
    all += *piece;
    ++pieces;
  }
  EXPECT_GT(pieces, 4);
  EXPECT_TRUE(reader.next(2048).value().empty()) << "read past the end";
  ASSERT_EQ(all[0], kShardSnapshotPieces);

  auto parts = decode_shard_snapshot(all);
  ASSERT_TRUE(parts.ok()) << parts.status().to_string();
  std::map<std::string, std::string> records;
  std::map<std::string, std::set<std::string>> elements;
  std::string last_record;
  for (const auto& part : *parts) {
    for (const replication::Effect& e : part.mutation().effects) {
      if (e.kind == Kind::kPutElement) {
        EXPECT_EQ(e.key, last_record) << "an element away from its record";
        elements[std::string(e.key)].insert(std::string(e.field));
        continue;
      }
      ASSERT_TRUE(e.kind == Kind::kPut || e.kind == Kind::kPutTyped);
      last_record = std::string(e.key);
      records[last_record] = e.kind == Kind::kPut ? std::string(e.value) : "(collection)";
    }
  }
  EXPECT_EQ(records, (std::map<std::string, std::string>{
                         {"r:a", "1"}, {"r:h", "(collection)"}, {"r:l", "(collection)"},
                         {"r:z", "last"}}));
  EXPECT_EQ(elements["r:h"].size(), 1000u);
  EXPECT_EQ(elements["r:l"].size(), 600u);
}

TEST(ShardSnapshot, DecodesBothFormsAndRefusesWhatNeitherMakes) {
  replication::Mutation m;
  m.effects.emplace_back(Kind::kPut, "k", "v", 0);
  auto whole = decode_shard_snapshot(replication::encode_mutation(m));
  ASSERT_TRUE(whole.ok());
  ASSERT_EQ(whole->size(), 1u);
  EXPECT_EQ(whole->front().mutation().effects.size(), 1u);
  EXPECT_FALSE(decode_shard_snapshot(std::string(1, kShardSnapshotPieces)).ok());
  EXPECT_FALSE(decode_shard_snapshot(std::string(1, kShardSnapshotPieces) + "\x05" + "ab").ok());
  EXPECT_FALSE(decode_shard_snapshot("\x07garbage").ok());
  auto engine = storage::open_memory_engine();
  EXPECT_FALSE(engine->view().ok()) << "the memory engine has no views: no reader";
}

// A restarted member holds part of the shard: what it holds as the snapshot
// has it is not written again, what the snapshot lacks is erased (records,
// and a kept collection's elements), and every record's Meta here is known.
TEST(ShardRestore, WritesOnlyWhatDiffersAndErasesWhatTheSnapshotLacks) {
  std::string head;
  server::encode_elements_head(7, 2, &head);
  replication::Mutation snapshot;
  snapshot.effects.emplace_back(Kind::kPut, "same", "v", 5000);
  snapshot.effects.emplace_back(Kind::kPut, "changed", "new", 0);
  snapshot.effects.emplace_back(Kind::kPut, "ttl-changed", "v", 9000);
  snapshot.effects.emplace_back(Kind::kPutTyped, "hash", head, 0,
                                static_cast<uint8_t>(server::ValueType::kHash));
  snapshot.effects.emplace_back(Kind::kPutElement, "hash", "1", 0, 0, 7, "f1");
  snapshot.effects.emplace_back(Kind::kPut, "new", "v", 0);
  auto parts = decode_shard_snapshot(replication::encode_mutation(snapshot));
  ASSERT_TRUE(parts.ok());

  const std::vector<std::pair<std::string, server::RecordView>> local = {
      {"changed", {server::ValueType::kString, 0, "old"}},
      {"gone", {server::ValueType::kString, 0, "x"}},
      {"hash", {server::ValueType::kHash, 0, head}},
      {"same", {server::ValueType::kString, 5000, "v"}},
      {"ttl-changed", {server::ValueType::kString, 8000, "v"}},
  };
  std::vector<uint64_t> fields_asked;
  auto plan = plan_shard_restore(
      *parts,
      [&](const auto& visit) {
        for (const auto& [key, rec] : local) visit(key, rec);
        return Status::OK();
      },
      [&](uint64_t gen, const auto& visit) {
        fields_asked.push_back(gen);
        for (std::string_view f : {"f1", "f2"}) visit(f);
        return Status::OK();
      });
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  EXPECT_EQ(plan->effects, 6u);
  EXPECT_EQ(plan->unchanged, 2u);  // "same", and the hash's record
  EXPECT_EQ(plan->removed, 2u);    // "gone", and the hash's f2
  EXPECT_EQ(fields_asked, std::vector<uint64_t>{7});
  std::vector<std::string> written;
  for (const replication::Effect& e : plan->mutation.effects) {
    written.push_back(std::to_string(static_cast<int>(e.kind)) + ":" + std::string(e.key) +
                      (e.field.empty() ? "" : "/" + std::string(e.field)));
  }
  EXPECT_EQ(written, (std::vector<std::string>{"2:gone", "6:hash/f2", "1:changed",
                                               "1:ttl-changed", "5:hash/f1", "1:new"}));
  ASSERT_EQ(plan->known.size(), 6u);
  EXPECT_FALSE(plan->known.at("new").exists);
  EXPECT_TRUE(plan->known.at("gone").exists);
  EXPECT_EQ(plan->known.at("ttl-changed").expire_ms, 8000);
  EXPECT_EQ(plan->known.at("hash").gen, 7u);

  // What only puts make: an erase in a snapshot, or a record twice, is corrupt.
  replication::Mutation bad;
  bad.effects.emplace_back(Kind::kErase, "k", "", 0);
  auto no_local = [](const auto&) { return Status::OK(); };
  auto no_fields = [](uint64_t, const auto&) { return Status::OK(); };
  auto bad_parts = decode_shard_snapshot(replication::encode_mutation(bad));
  ASSERT_TRUE(bad_parts.ok());
  EXPECT_TRUE(plan_shard_restore(*bad_parts, no_local, no_fields).status().is_corruption());
  replication::Mutation twice;
  twice.effects.emplace_back(Kind::kPut, "k", "1", 0);
  twice.effects.emplace_back(Kind::kPut, "k", "2", 0);
  auto twice_parts = decode_shard_snapshot(replication::encode_mutation(twice));
  ASSERT_TRUE(twice_parts.ok());
  EXPECT_TRUE(plan_shard_restore(*twice_parts, no_local, no_fields).status().is_corruption());
  // A local read that fails fails the plan.
  auto failing = [](const auto&) { return Status::IOError("disk"); };
  EXPECT_FALSE(plan_shard_restore(*parts, failing, no_fields).ok());
}

}  // namespace
}  // namespace statekv::coord
