// Test harness: a Service over a fresh engine, driven in-process. Each request
// is encoded by the real resp::Writer and decoded with resp::parse_value, so
// tests assert on what a client would receive.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "resp/value.h"
#include "server/context.h"
#include "storage/engine.h"

namespace statekv::server::testing {

class Harness {
 public:
  // engine: nullptr opens a memory engine. proposers: how handlers' effects
  // are committed (unset: a local group of one member, as a node runs).
  // scopes: where the store keeps each key's record (ServerContext::key_scopes).
  explicit Harness(std::unique_ptr<storage::Engine> engine = nullptr,
                   ServerConfig config = default_config(),
                   std::function<std::unique_ptr<Proposer>(Store&)> proposers = {},
                   const KeyScopes* scopes = nullptr)
      : config_(std::move(config)),
        engine_(engine ? std::move(engine) : storage::open_memory_engine()) {
    ctx_.proposers = std::move(proposers);
    ctx_.key_scopes = scopes;
    ctx_.config = &config_;
    ctx_.engine = engine_.get();
    ctx_.stats = &stats_;
    ctx_.run_id = std::string(40, 'a');
    service_ = make_service(ctx_);
    session_ = new_session();
  }
  ~Harness() {
    if (service_) service_->stop();
  }

  static ServerConfig default_config() {
    ServerConfig c;
    c.engine = "memory";
    c.hz = 100;  // active expiry every 10 ms keeps the expiry tests short
    return c;
  }

  std::unique_ptr<Session> new_session() {
    auto s = std::make_unique<Session>();
    s->id = ++next_id_;
    s->authenticated = config_.snapshot().requirepass.empty();
    s->addr = "127.0.0.1:50000";
    s->laddr = "127.0.0.1:7001";
    return s;
  }

  // Runs one command for session and returns the raw reply bytes.
  std::string raw(Session& session, std::vector<std::string> args,
                  storage::Sequence* seq = nullptr) {
    std::vector<std::string_view> argv(args.begin(), args.end());
    std::string out;
    resp::Writer writer(&out, session.resp);
    storage::Sequence s = service_->execute(session, argv, writer);
    if (seq != nullptr) *seq = s;
    return out;
  }

  resp::Value run(Session& session, std::vector<std::string> args,
                  storage::Sequence* seq = nullptr) {
    std::string bytes = raw(session, std::move(args), seq);
    resp::Value v;
    auto r = resp::parse_value(bytes, v);
    EXPECT_EQ(r.status, resp::ParseStatus::kComplete) << bytes;
    EXPECT_EQ(r.consumed, bytes.size()) << "one command must produce exactly one reply: " << bytes;
    return v;
  }
  resp::Value run(std::vector<std::string> args, storage::Sequence* seq = nullptr) {
    return run(*session_, std::move(args), seq);
  }

  Service& service() { return *service_; }
  Session& session() { return *session_; }
  ServerStats& stats() { return stats_; }
  ConfigStore& config() { return config_; }
  storage::Engine& engine() { return *engine_; }
  ServerContext& context() { return ctx_; }

  // A new service over the same context (after a test changed it, e.g. set
  // acl_store to run as a cluster node).
  void restart_service() {
    stop();
    service_ = make_service(ctx_);
  }

  // Stops the service (e.g. before reopening the engine).
  void stop() {
    if (service_) service_->stop();
    service_.reset();
  }

 private:
  ConfigStore config_;
  std::unique_ptr<storage::Engine> engine_;
  ServerStats stats_;
  ServerContext ctx_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<Session> session_;
  uint64_t next_id_ = 0;
};

// ---- reply matchers ----

inline std::string describe(const resp::Value& v) {
  using T = resp::Value::Type;
  switch (v.type) {
    case T::kSimple:
      return "+" + v.str;
    case T::kError:
      return "-" + v.str;
    case T::kInteger:
      return ":" + std::to_string(v.integer);
    case T::kBulk:
      return "$" + v.str;
    case T::kNull:
      return "(nil)";
    case T::kDouble:
      return "," + v.str;
    case T::kBoolean:
      return v.integer ? "#t" : "#f";
    case T::kVerbatim:
      return "=" + v.str;
    case T::kBigNumber:
      return "(" + v.str;
    default: {
      std::string s = "[";
      for (const auto& e : v.elements) s += describe(e) + ", ";
      return s + "]";
    }
  }
}

#define EXPECT_OK(v) EXPECT_EQ(::statekv::server::testing::describe(v), "+OK")
#define EXPECT_SIMPLE(v, s) \
  EXPECT_EQ(::statekv::server::testing::describe(v), std::string("+") + (s))
#define EXPECT_BULK(v, s) EXPECT_EQ(::statekv::server::testing::describe(v), std::string("$") + (s))
#define EXPECT_NIL(v) EXPECT_EQ(::statekv::server::testing::describe(v), "(nil)")
#define EXPECT_INT(v, n)                             \
  EXPECT_EQ(::statekv::server::testing::describe(v), \
            ":" + std::to_string(static_cast<long long>(n)))
#define EXPECT_ERR(v, s) EXPECT_EQ(::statekv::server::testing::describe(v), std::string("-") + (s))

// Polls cond every millisecond until it holds or timeout passes.
inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return cond();
}

// A temporary directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    auto base = std::filesystem::temp_directory_path();
    std::string tmpl = (base / "statekv-server-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace statekv::server::testing
