#include "coord/shard_snapshot.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "server/record.h"
#include "server/service_test_util.h"
#include "storage/engine.h"

namespace statekv::coord {
namespace {

using Kind = replication::Effect::Kind;

// A shard read from a RocksDB view a piece at a time: the records of the key
// range the filter keeps, as of the view (not the writes after it), each large
// collection's elements right after its record, in pieces of about the size
// asked; the pieces decode back to those effects.
TEST(ShardSnapshot, ReadsTheShardAsOfTheViewInPiecesOfTheSizeAsked) {
  server::testing::TempDir dir;
  storage::RocksDbEngineOptions options;
  options.path = dir.path() + "/db";
  auto opened = storage::open_rocksdb_engine(options);
  ASSERT_TRUE(opened.ok()) << opened.status().to_string();
  storage::Engine* engine = opened->get();
  server::testing::Harness h(std::move(opened).value());
  h.run({"SET", "r:a", "1"});
  h.run({"SET", "r:skipped", "filtered out"});
  h.run({"SET", "other", "outside the range"});
  for (int i = 0; i < 1000; ++i) h.run({"HSET", "r:h", "f" + std::to_string(i), "v"});
  for (int i = 0; i < 600; ++i) h.run({"RPUSH", "r:l", "e" + std::to_string(i)});
  h.run({"SET", "r:z", "last", "PX", "100000"});
  auto view = engine->view();
  ASSERT_TRUE(view.ok());
  // After the view: none of it is read.
  h.run({"SET", "r:a", "2"});
  h.run({"DEL", "r:h"});
  h.run({"SET", "r:b", "new"});

  ShardSnapshotReader reader(std::move(view).value(), "r:", "r;", [](std::string_view key) {
    return key.find("skipped") == std::string_view::npos;
  });
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

}  // namespace
}  // namespace statekv::coord
