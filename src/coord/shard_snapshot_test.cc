#include "coord/shard_snapshot.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "replication/codec.h"
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

// This member's records, as ShardRestorePlanner reads them (from a key on,
// in key order), and the fields of its collections' elements.
struct Local {
  std::map<std::string, server::RecordView> records;
  std::map<uint64_t, std::vector<std::string>> fields;
  std::vector<std::string> read_from;  // where each record read started
  std::vector<uint64_t> fields_asked;

  ShardRestorePlanner planner() {
    return ShardRestorePlanner(
        [this](std::string_view from, const auto& visit) {
          read_from.emplace_back(from);
          for (auto it = records.lower_bound(std::string(from)); it != records.end(); ++it) {
            if (!visit(it->first, it->second)) break;
          }
          return Status::OK();
        },
        [this](uint64_t gen, const auto& visit) {
          fields_asked.push_back(gen);
          for (const std::string& f : fields[gen]) visit(f);
          return Status::OK();
        });
  }
};

std::vector<std::string> written(const replication::Mutation& m) {
  std::vector<std::string> out;
  for (const replication::Effect& e : m.effects) {
    out.push_back(std::to_string(static_cast<int>(e.kind)) + ":" + std::string(e.key) +
                  (e.field.empty() ? "" : "/" + std::string(e.field)));
  }
  return out;
}

// A restarted member holds part of the shard: what it holds as the snapshot
// has it is not written again, what the snapshot lacks is erased (records,
// and a kept collection's elements), and every record's Meta here is known.
TEST(ShardRestore, WritesOnlyWhatDiffersAndErasesWhatTheSnapshotLacks) {
  std::string head;
  server::encode_elements_head(7, 2, &head);
  replication::Mutation snapshot;  // in key order, as the shard's readers make them
  snapshot.effects.emplace_back(Kind::kPut, "changed", "new", 0);
  snapshot.effects.emplace_back(Kind::kPutTyped, "hash", head, 0,
                                static_cast<uint8_t>(server::ValueType::kHash));
  snapshot.effects.emplace_back(Kind::kPutElement, "hash", "1", 0, 0, 7, "f1");
  snapshot.effects.emplace_back(Kind::kPut, "new", "v", 0);
  snapshot.effects.emplace_back(Kind::kPut, "same", "v", 5000);
  snapshot.effects.emplace_back(Kind::kPut, "ttl-changed", "v", 9000);
  auto parts = decode_shard_snapshot(replication::encode_mutation(snapshot));
  ASSERT_TRUE(parts.ok());
  ASSERT_EQ(parts->size(), 1u);

  Local local;
  local.records = {
      {"changed", {server::ValueType::kString, 0, "old"}},
      {"gone", {server::ValueType::kString, 0, "x"}},
      {"hash", {server::ValueType::kHash, 0, head}},
      {"same", {server::ValueType::kString, 5000, "v"}},
      {"ttl-changed", {server::ValueType::kString, 8000, "v"}},
  };
  local.fields[7] = {"f1", "f2"};
  ShardRestorePlanner plan = local.planner();
  ASSERT_TRUE(plan.add(parts->front().mutation()).ok());
  ASSERT_TRUE(plan.finish().ok());
  EXPECT_EQ(plan.effects(), 6u);
  EXPECT_EQ(plan.unchanged(), 2u);  // "same", and the hash's record
  EXPECT_EQ(plan.removed(), 2u);    // "gone", and the hash's f2
  EXPECT_EQ(local.fields_asked, std::vector<uint64_t>{7});
  ShardRestorePlanner::Batch batch = plan.take();
  EXPECT_EQ(written(batch.mutation),
            (std::vector<std::string>{"2:gone", "1:changed", "5:hash/f1", "6:hash/f2", "1:new",
                                      "1:ttl-changed"}));
  ASSERT_EQ(batch.known.size(), 6u);
  EXPECT_FALSE(batch.known.at("new").exists);
  EXPECT_TRUE(batch.known.at("gone").exists);
  EXPECT_EQ(batch.known.at("ttl-changed").expire_ms, 8000);
  EXPECT_EQ(batch.known.at("hash").gen, 7u);
  EXPECT_TRUE(plan.take().mutation.effects.empty());

  // What only puts make: an erase in a snapshot, a record twice or out of
  // key order, is corrupt.
  replication::Mutation bad;
  bad.effects.emplace_back(Kind::kErase, "k", "", 0);
  EXPECT_TRUE(Local().planner().add(bad).is_corruption());
  replication::Mutation twice;
  twice.effects.emplace_back(Kind::kPut, "k", "1", 0);
  twice.effects.emplace_back(Kind::kPut, "k", "2", 0);
  EXPECT_TRUE(Local().planner().add(twice).is_corruption());
  replication::Mutation first, second;
  first.effects.emplace_back(Kind::kPut, "m", "1", 0);
  second.effects.emplace_back(Kind::kPut, "a", "2", 0);
  ShardRestorePlanner out_of_order = Local().planner();
  ASSERT_TRUE(out_of_order.add(first).ok());
  EXPECT_TRUE(out_of_order.add(second).is_corruption());
  // A local read that fails fails the plan.
  ShardRestorePlanner failing([](std::string_view, const auto&) { return Status::IOError("disk"); },
                              [](uint64_t, const auto&) { return Status::OK(); });
  EXPECT_FALSE(failing.add(first).ok());
}

// Piece by piece: each piece reads this member's records from past the
// previous piece's last record up to its own last one; what this member holds
// between two pieces' records, or after the snapshot's last, is erased; a
// collection's elements over two pieces keep the kept generation's fields of
// both; every batch knows the Meta of the records it writes.
TEST(ShardRestore, PiecesArePlannedOneAtATimeAgainstTheirRangeOfTheMembersRecords) {
  std::string head;
  server::encode_elements_head(9, 3, &head);
  const auto hash = static_cast<uint8_t>(server::ValueType::kHash);
  replication::Mutation p1, p2, p3;
  p1.effects.emplace_back(Kind::kPut, "b", "1", 0);
  p1.effects.emplace_back(Kind::kPutTyped, "h", head, 0, hash);
  p1.effects.emplace_back(Kind::kPutElement, "h", "1", 0, 0, 9, "f1");
  p2.effects.emplace_back(Kind::kPutElement, "h", "1", 0, 0, 9, "f3");  // elements only
  p3.effects.emplace_back(Kind::kPut, "p", "1", 0);
  Local local;
  local.records = {
      {"a", {server::ValueType::kString, 0, "before the first"}},
      {"b", {server::ValueType::kString, 0, "1"}},
      {"h", {server::ValueType::kHash, 0, head}},
      {"k", {server::ValueType::kString, 0, "between h and p"}},
      {"p", {server::ValueType::kString, 0, "old"}},
      {"z", {server::ValueType::kString, 0, "after the last"}},
  };
  local.fields[9] = {"f1", "f2", "f3"};
  ShardRestorePlanner plan = local.planner();
  ASSERT_TRUE(plan.add(p1).ok());
  ShardRestorePlanner::Batch one = plan.take();
  EXPECT_EQ(written(one.mutation), (std::vector<std::string>{"2:a", "5:h/f1"}));
  EXPECT_EQ(one.known.size(), 3u);  // a, b, h
  EXPECT_EQ(one.known.at("h").gen, 9u);
  ASSERT_TRUE(plan.add(p2).ok());
  ASSERT_TRUE(plan.add(p3).ok());
  ShardRestorePlanner::Batch two = plan.take();
  EXPECT_EQ(written(two.mutation), (std::vector<std::string>{"5:h/f3", "2:k", "6:h/f2", "1:p"}));
  EXPECT_TRUE(two.known.at("p").exists);
  ASSERT_TRUE(plan.finish().ok());
  EXPECT_EQ(written(plan.take().mutation), (std::vector<std::string>{"2:z"}));
  EXPECT_EQ(local.read_from,
            (std::vector<std::string>{"", std::string("h\0", 2), std::string("p\0", 2)}));
  EXPECT_EQ(plan.effects(), 5u);
  EXPECT_EQ(plan.unchanged(), 2u);  // b and h
  EXPECT_EQ(plan.removed(), 4u);    // a, k, h/f2, z
}

// A snapshot read back a piece at a time from a file, as from bytes; a file
// cut short inside a piece is corrupt, not a shorter snapshot.
TEST(SnapshotPieces, ReadsAFileAPieceAtATimeAndRefusesOneCutShort) {
  replication::Mutation m1, m2;
  m1.effects.emplace_back(Kind::kPut, "a", "1", 0);
  m2.effects.emplace_back(Kind::kPut, "b", std::string(5000, 'x'), 0);
  replication::Writer w;
  w.u8(static_cast<uint8_t>(kShardSnapshotPieces));
  w.bytes(replication::encode_mutation(m1));
  w.bytes(replication::encode_mutation(m2));
  const std::string bytes = std::move(w).take();
  server::testing::TempDir dir;
  const std::filesystem::path path = dir.path() + "/staged";
  const auto write_file = [&](std::string_view b) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(b.data(), 1, b.size(), f), b.size());
    std::fclose(f);
  };
  write_file(bytes);
  auto pieces = SnapshotPieces::of_file(path);
  ASSERT_TRUE(pieces.ok()) << pieces.status().to_string();
  std::vector<std::string> keys;
  for (;;) {
    auto piece = pieces->next();
    ASSERT_TRUE(piece.ok()) << piece.status().to_string();
    if (!*piece) break;
    for (const auto& e : (*piece)->mutation().effects) keys.emplace_back(e.key);
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(pieces->bytes_read(), bytes.size());
  EXPECT_FALSE(pieces->next().value().has_value()) << "read past the end";

  write_file(std::string_view(bytes).substr(0, bytes.size() - 10));
  auto cut = SnapshotPieces::of_file(path);
  ASSERT_TRUE(cut.ok());
  ASSERT_TRUE(cut->next().ok());
  EXPECT_TRUE(cut->next().status().is_corruption());
  EXPECT_TRUE(SnapshotPieces::of_file(dir.path() + "/none").status().is_io_error());
}

}  // namespace
}  // namespace statekv::coord
