#include "coord/snapshot_staging.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "replication/codec.h"
#include "server/service_test_util.h"

namespace statekv::coord {
namespace {

// A staged snapshot is a file while its sink lives: what was appended, read
// back a piece at a time; gone with the sink. Its directory is made first.
TEST(FileSnapshotSink, HoldsTheAppendedBytesInAFileThatGoesWithIt) {
  server::testing::TempDir dir;
  const std::filesystem::path staging = std::filesystem::path(dir.path()) / "staging";
  replication::Mutation m;
  m.effects.emplace_back(replication::Effect::Kind::kPut, "k", "v", 0);
  replication::Writer w;
  w.u8(static_cast<uint8_t>(kShardSnapshotPieces));
  w.bytes(replication::encode_mutation(m));
  const std::string bytes = std::move(w).take();
  std::filesystem::path path;
  {
    auto sink = FileSnapshotSink::create(staging / "7-42.snapshot");
    ASSERT_TRUE(sink.ok()) << sink.status().to_string();
    path = (*sink)->path();
    // Appended in two chunks, as raft hands them over.
    ASSERT_TRUE((*sink)->append(std::string_view(bytes).substr(0, 3)).ok());
    ASSERT_TRUE((*sink)->append(std::string_view(bytes).substr(3)).ok());
    EXPECT_EQ((*sink)->size(), bytes.size());
    EXPECT_EQ(std::filesystem::file_size(path), bytes.size());
    auto pieces = (*sink)->pieces();
    ASSERT_TRUE(pieces.ok());
    auto piece = pieces->next();
    ASSERT_TRUE(piece.ok() && piece->has_value());
    EXPECT_EQ((*piece)->mutation().effects.at(0).key, "k");
    EXPECT_FALSE(pieces->next().value().has_value());
  }
  EXPECT_FALSE(std::filesystem::exists(path)) << "the staged file outlived its sink";
  // A path that cannot be made is an error, not a sink.
  std::ofstream(staging / "a-file") << "x";
  EXPECT_TRUE(FileSnapshotSink::create(staging / "a-file" / "1-1.snapshot").status().is_io_error());
}

// What a stopped process left behind is cleared at the next start.
TEST(FileSnapshotSink, ClearingRemovesWhatAStoppedTransferLeft) {
  server::testing::TempDir dir;
  const std::filesystem::path staging = std::filesystem::path(dir.path()) / "staging";
  EXPECT_EQ(clear_snapshot_staging(staging), 0u) << "no directory yet";
  std::filesystem::create_directories(staging);
  std::ofstream(staging / "1-10.snapshot") << "partial";
  std::ofstream(staging / "2-20.snapshot") << "partial";
  EXPECT_EQ(clear_snapshot_staging(staging), 2u);
  EXPECT_TRUE(std::filesystem::is_empty(staging));
}

}  // namespace
}  // namespace statekv::coord
