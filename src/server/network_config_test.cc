// ServerConfig parsing (server/config.cc): the TOML file and CONFIG GET / SET.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "server/config.h"

namespace statekv::server {
namespace {

class TomlFile {
 public:
  explicit TomlFile(const std::string& text) {
    path_ = (std::filesystem::temp_directory_path() /
             ("statekv_config_test_" + std::to_string(::getpid()) + "_" +
              std::to_string(counter_++) + ".toml"))
                .string();
    std::ofstream(path_) << text;
  }
  ~TomlFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

TEST(ConfigTest, FsyncNamesRoundTrip) {
  for (auto p : {storage::FsyncPolicy::kAlways, storage::FsyncPolicy::kBatch,
                 storage::FsyncPolicy::kNever}) {
    auto parsed = parse_fsync(fsync_name(p));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, p);
  }
  EXPECT_FALSE(parse_fsync("everysec").ok());
  EXPECT_FALSE(parse_fsync("").ok());
}

TEST(ConfigTest, TomlSetsEveryField) {
  TomlFile file(R"(
bind = "0.0.0.0"
port = 7100
dir = "/var/lib/statekv"
engine = "memory"
fsync = "always"
requirepass = "secret"
io-threads = 3
maxclients = 50
timeout = 30
proto-max-bulk-len = "2mb"
proto-max-multibulk-len = 1000
proto-inline-max-size = 4096
client-query-buffer-limit = 2097152
client-output-buffer-limit = "64mb"
hz = 20
active-expire-keys-per-cycle = 500
loglevel = "warn"
logfile = "/tmp/statekv.log"
)");
  ServerConfig c;
  Status s = load_toml_config(file.path(), c);
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(c.bind, "0.0.0.0");
  EXPECT_EQ(c.port, 7100);
  EXPECT_EQ(c.data_dir, "/var/lib/statekv");
  EXPECT_EQ(c.engine, "memory");
  EXPECT_EQ(c.fsync, storage::FsyncPolicy::kAlways);
  EXPECT_EQ(c.requirepass, "secret");
  EXPECT_EQ(c.io_threads, 3u);
  EXPECT_EQ(c.maxclients, 50u);
  EXPECT_EQ(c.timeout_seconds, 30u);
  EXPECT_EQ(c.proto_max_bulk_len, 2u << 20);
  EXPECT_EQ(c.max_multibulk_len, 1000u);
  EXPECT_EQ(c.max_inline_len, 4096u);
  EXPECT_EQ(c.client_query_buffer_limit, 2097152u);
  EXPECT_EQ(c.client_output_buffer_limit, 64u << 20);
  EXPECT_EQ(c.hz, 20u);
  EXPECT_EQ(c.active_expire_keys_per_cycle, 500u);
  EXPECT_EQ(c.loglevel, "warn");
  EXPECT_EQ(c.logfile, "/tmp/statekv.log");
}

TEST(ConfigTest, TomlUnknownKeyIsAnErrorNamingIt) {
  TomlFile file("port = 7001\nprot = 7002\n");
  ServerConfig c;
  Status s = load_toml_config(file.path(), c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("unknown key 'prot'"), std::string::npos) << s.message();
  EXPECT_EQ(c.port, 7001) << "a bad file leaves the config untouched";
}

TEST(ConfigTest, TomlWrongTypeIsAnErrorNamingTheKey) {
  ServerConfig c;
  {
    TomlFile file("port = \"7001\"\n");
    Status s = load_toml_config(file.path(), c);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("'port' must be an integer"), std::string::npos) << s.message();
  }
  {
    TomlFile file("requirepass = 5\n");
    Status s = load_toml_config(file.path(), c);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("'requirepass' must be a string"), std::string::npos);
  }
  {
    TomlFile file("fsync = \"sometimes\"\n");
    Status s = load_toml_config(file.path(), c);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("'fsync'"), std::string::npos) << s.message();
  }
  {
    TomlFile file("port = 70000\n");
    Status s = load_toml_config(file.path(), c);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.message().find("between 0 and 65535"), std::string::npos) << s.message();
  }
}

TEST(ConfigTest, TomlSyntaxErrorSaysWhere) {
  TomlFile file("port = = 3\n");
  ServerConfig c;
  Status s = load_toml_config(file.path(), c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(file.path() + ":1:"), std::string::npos) << s.message();
}

TEST(ConfigTest, MissingFileIsAnError) {
  ServerConfig c;
  EXPECT_FALSE(load_toml_config("/nonexistent/statekv.toml", c).ok());
}

TEST(ConfigTest, GetUsesRedisNames) {
  ServerConfig initial;
  initial.data_dir = "/d";
  initial.fsync = storage::FsyncPolicy::kNever;
  ConfigStore store(initial);
  EXPECT_EQ(*store.get("port"), "7001");
  EXPECT_EQ(*store.get("dir"), "/d");
  EXPECT_EQ(*store.get("appendfsync"), "never");
  EXPECT_EQ(*store.get("MAXCLIENTS"), "10000");
  EXPECT_EQ(*store.get("proto-max-bulk-len"), "536870912");
  EXPECT_EQ(*store.get("timeout"), "0");
  EXPECT_TRUE(store.get("no-such-thing").status().is_not_found());
  auto names = store.names();
  for (const char* n :
       {"bind", "port", "dir", "requirepass", "maxclients", "timeout", "proto-max-bulk-len",
        "client-query-buffer-limit", "hz", "loglevel", "appendfsync", "io-threads", "engine"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  }
  // Every listed name can be read.
  for (const auto& n : names) EXPECT_TRUE(store.get(n).ok()) << n;
}

TEST(ConfigTest, SetChangesMutableSettings) {
  ConfigStore store(ServerConfig{});
  ASSERT_TRUE(store.set("requirepass", "pw").ok());
  ASSERT_TRUE(store.set("maxclients", "42").ok());
  ASSERT_TRUE(store.set("timeout", "300").ok());
  ASSERT_TRUE(store.set("hz", "100").ok());
  ASSERT_TRUE(store.set("client-query-buffer-limit", "2mb").ok());
  ASSERT_TRUE(store.set("proto-max-bulk-len", "1gb").ok());
  ASSERT_TRUE(store.set("loglevel", "warning").ok());
  ServerConfig c = store.snapshot();
  EXPECT_EQ(c.requirepass, "pw");
  EXPECT_EQ(c.maxclients, 42u);
  EXPECT_EQ(c.timeout_seconds, 300u);
  EXPECT_EQ(c.hz, 100u);
  EXPECT_EQ(c.client_query_buffer_limit, 2u << 20);
  EXPECT_EQ(c.proto_max_bulk_len, 1u << 30);
  EXPECT_EQ(c.loglevel, "warning");
  EXPECT_EQ(*store.get("client-query-buffer-limit"), "2097152");
  ASSERT_TRUE(store.set("loglevel", "info").ok());
}

TEST(ConfigTest, SetRefusesWithRedisWording) {
  ConfigStore store(ServerConfig{});
  Status s = store.set("port", "7002");
  EXPECT_TRUE(s.is_invalid_argument());
  EXPECT_EQ(s.message(),
            "ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable "
            "config");
  s = store.set("maxclients", "lots");
  EXPECT_EQ(s.message(),
            "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument "
            "couldn't be parsed into an integer");
  s = store.set("hz", "0");
  EXPECT_EQ(s.message(),
            "ERR CONFIG SET failed (possibly related to argument 'hz') - argument must be "
            "between 1 and 500 inclusive");
  s = store.set("client-query-buffer-limit", "12xb");
  EXPECT_EQ(s.message(),
            "ERR CONFIG SET failed (possibly related to argument 'client-query-buffer-limit') - "
            "argument must be a memory value");
  s = store.set("loglevel", "loud");
  EXPECT_NE(s.message().find("argument(s) must be one of the following"), std::string::npos);
  s = store.set("bogus", "1");
  EXPECT_EQ(s.message(), "ERR Unknown option or number of arguments for CONFIG SET - 'bogus'");
  // Nothing changed.
  ServerConfig c = store.snapshot();
  EXPECT_EQ(c.port, 7001);
  EXPECT_EQ(c.maxclients, 10000u);
  EXPECT_EQ(c.hz, 10u);
}

}  // namespace
}  // namespace statekv::server
