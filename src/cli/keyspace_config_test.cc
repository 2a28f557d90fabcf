// The keyspace file (keyspace_config.h): unknown keys and wrong types are
// errors naming the key and its line; split points are relative to the prefix.
#include "cli/keyspace_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace statekv::cli {
namespace {

// A keyspace file with `text` in a fresh temp dir, removed at the end.
class KeyspaceFile {
 public:
  explicit KeyspaceFile(const std::string& text) {
    std::string dir = (std::filesystem::temp_directory_path() / "statekv-ksfile-XXXXXX").string();
    EXPECT_NE(mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    path_ = dir_ + "/keyspaces.toml";
    std::ofstream(path_) << text;
  }
  ~KeyspaceFile() { std::filesystem::remove_all(dir_); }
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

std::string error_of(const std::string& text) {
  KeyspaceFile f(text);
  auto got = read_keyspace_config(f.path());
  EXPECT_FALSE(got.ok()) << text;
  return got.ok() ? std::string() : got.status().message();
}

TEST(KeyspaceFile, AnUnknownKeyIsAnErrorNamingItAndItsLine) {
  const std::string typo = error_of(
      "[[keyspace]]\n"
      "name = \"users\"\n"
      "partitoner = \"ring\"\n");
  EXPECT_NE(typo.find("unknown key 'partitoner'"), std::string::npos) << typo;
  EXPECT_NE(typo.find("line 3"), std::string::npos) << typo;
  EXPECT_NE(typo.find("keyspace 'users'"), std::string::npos) << typo;
  EXPECT_NE(typo.find("partitioner"), std::string::npos) << "lists the known keys: " << typo;

  const std::string top = error_of(
      "keyspaces = 1\n"
      "[[keyspace]]\n"
      "name = \"users\"\n");
  EXPECT_NE(top.find("unknown key 'keyspaces'"), std::string::npos) << top;
  EXPECT_NE(top.find("line 1"), std::string::npos) << top;

  const std::string table = error_of(
      "[[keyspace]]\n"
      "name = \"users\"\n"
      "[keyspace.options]\n"
      "x = 1\n");
  EXPECT_NE(table.find("unknown key 'options'"), std::string::npos) << table;
}

TEST(KeyspaceFile, AWrongTypeIsAnErrorNotADefault) {
  const std::string vnodes = error_of(
      "[[keyspace]]\n"
      "name = \"users\"\n"
      "partitioner = \"ring\"\n"
      "vnodes = \"64\"\n");
  EXPECT_NE(vnodes.find("line 4: vnodes has the wrong type"), std::string::npos) << vnodes;
  const std::string prefix = error_of("[[keyspace]]\nname = \"users\"\nprefix = 7\n");
  EXPECT_NE(prefix.find("prefix has the wrong type"), std::string::npos) << prefix;
}

// A setting the cluster would record but not honour is refused: of the
// replication kinds, only none (factor 1) and consensus (factor 1 to 7) are
// served.
TEST(KeyspaceFile, ReplicationThatIsNotServedYetIsRefused) {
  const std::string chain = error_of(
      "[[keyspace]]\n"
      "name = \"users\"\n"
      "replication = \"chain\"\n"
      "factor = 3\n");
  EXPECT_NE(chain.find("keyspace 'users': replication 'chain' is not served yet"),
            std::string::npos)
      << chain;
  const std::string wide = error_of(
      "[[keyspace]]\nname = \"users\"\nreplication = \"consensus\"\nfactor = 9\n");
  EXPECT_NE(wide.find("factor 1 to 7"), std::string::npos) << wide;
  KeyspaceFile ok("[[keyspace]]\nname = \"users\"\nreplication = \"none\"\nfactor = 1\n");
  EXPECT_TRUE(read_keyspace_config(ok.path()).ok());
  KeyspaceFile raft(
      "[[keyspace]]\nname = \"users\"\nreplication = \"consensus\"\nfactor = 3\n");
  EXPECT_TRUE(read_keyspace_config(raft.path()).ok());
}

TEST(KeyspaceFile, GeoRulesTakeAnyPrefixAsKey) {
  KeyspaceFile f(
      "[[keyspace]]\n"
      "name = \"places\"\n"
      "partitioner = \"geo\"\n"
      "geo = { \"places:eu:\" = \"eu\", \"\" = \"us\" }\n");
  auto got = read_keyspace_config(f.path());
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ(got->front().partitioner.geo_rules.size(), 2u);
}

TEST(KeyspaceFile, SplitPointsAreRelativeToThePrefix) {
  KeyspaceFile f(
      "[[keyspace]]\n"
      "name = \"orders\"\n"
      "partitioner = \"range\"\n"
      "splits = [\"g\", \"orders:p\"]\n"
      "[[keyspace]]\n"
      "name = \"gt\"\n"
      "partitioner = \"geo\"\n"
      "geo = { \"gt:eu:\" = \"eu\", \"\" = \"us\" }\n"
      "inner = \"range\"\n"
      "splits = [\"5\"]\n");
  auto got = read_keyspace_config(f.path());
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  ASSERT_EQ(got->size(), 2u);
  // "g" is relative; "orders:p" already starts with the prefix: a whole key.
  EXPECT_EQ((*got)[0].partitioner.split_points, (std::vector<std::string>{"orders:g", "orders:p"}));
  EXPECT_EQ((*got)[0].partitioner.shards, 3u);
  EXPECT_EQ((*got)[1].partitioner.split_points, (std::vector<std::string>{"gt:5"}));
}

}  // namespace
}  // namespace statekv::cli
