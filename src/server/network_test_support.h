// Test support for the network layer: a fake Engine whose durability the test
// advances by hand, a small Service over it, a NetworkServer on a loopback port
// picked by the kernel, and a blocking loopback client with timeouts.
//
// Header-only and included only by *_test.cc files of this module.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "resp/value.h"
#include "server/client_registry.h"
#include "server/context.h"
#include "server/network.h"

namespace statekv::server::testing {

// An Engine that stores nothing durable by itself: mutations get increasing
// sequences, and durable_sequence() moves only when the test calls make_durable().
class FakeEngine final : public storage::Engine {
 public:
  std::string_view name() const override { return "fake"; }
  Status get(std::string_view key, std::string* value) override {
    std::lock_guard lock(mu_);
    auto it = data_.find(std::string(key));
    if (it == data_.end()) return Status::NotFound();
    *value = it->second;
    return Status::OK();
  }
  Result<storage::Sequence> put(std::string_view key, std::string_view value) override {
    std::lock_guard lock(mu_);
    data_[std::string(key)] = std::string(value);
    return ++last_;
  }
  Result<storage::Sequence> del(std::string_view key) override {
    std::lock_guard lock(mu_);
    data_.erase(std::string(key));
    return ++last_;
  }
  Result<storage::Sequence> write(const storage::WriteBatch& batch) override {
    return Status::Internal("not used by these tests");
  }
  Status scan(std::string_view, std::string_view, size_t, const storage::ScanVisitor&) override {
    return Status::Internal("not used by these tests");
  }
  Status scan_reverse(std::string_view, std::string_view, size_t,
                      const storage::ScanVisitor&) override {
    return Status::Internal("not used by these tests");
  }
  Result<storage::Sequence> clear() override { return Status::Internal("not used by these tests"); }
  storage::Sequence last_sequence() const override {
    std::lock_guard lock(mu_);
    return last_;
  }
  storage::Sequence durable_sequence() const override {
    std::lock_guard lock(mu_);
    return durable_;
  }
  void when_durable(storage::Sequence seq, std::function<void()> callback) override {
    {
      std::lock_guard lock(mu_);
      if (seq > durable_) {
        waiting_.emplace(seq, std::move(callback));
        return;
      }
    }
    callback();
  }
  Status sync() override {
    make_durable(last_sequence());
    return Status::OK();
  }
  bool survives_restart() const override { return false; }
  Status persist_all() override { return Status::InvalidArgument("a fake engine"); }
  storage::EngineStats stats() const override { return {}; }

  // Declares every mutation <= seq durable and runs the callbacks it satisfies,
  // on the calling thread (as the real engines' sync thread would).
  void make_durable(storage::Sequence seq) {
    std::vector<std::function<void()>> ready;
    {
      std::lock_guard lock(mu_);
      durable_ = std::max(durable_, seq);
      while (!waiting_.empty() && waiting_.begin()->first <= durable_) {
        ready.push_back(std::move(waiting_.begin()->second));
        waiting_.erase(waiting_.begin());
      }
    }
    for (auto& cb : ready) cb();
  }
  size_t waiting() const {
    std::lock_guard lock(mu_);
    return waiting_.size();
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> data_;
  storage::Sequence last_ = 0;
  storage::Sequence durable_ = 0;
  std::multimap<storage::Sequence, std::function<void()>> waiting_;
};

// The commands these tests need, over FakeEngine:
//   PING, ECHO s, WRITE k (put, reply +k once durable), BIG n (a bulk of n 'x'),
//   QUIT, LATER s (+s, answered later: release_later), AFTER s (+s, but only
//   once no LATER reply is due, as a router asks: Session::wait_for_replies);
//   anything else is an error reply.
class FakeService final : public Service {
 public:
  explicit FakeService(FakeEngine& engine) : engine_(engine) {}
  storage::Sequence execute(Session& session, std::span<const std::string_view> argv,
                            resp::Writer& out) override {
    // Like the real command layer: count the command (once) and record its name.
    if (!session.continued) {
      if (stats != nullptr) bump(stats->local().commands);
      session.commands.fetch_add(1, std::memory_order_relaxed);
    }
    std::string cmd(argv[0]);
    {
      std::lock_guard lock(session.mu);
      session.last_command = cmd;
      for (auto& c : session.last_command)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    for (auto& c : cmd) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (cmd == "PING") {
      out.simple("PONG");
    } else if (cmd == "ECHO" && argv.size() == 2) {
      out.bulk(argv[1]);
    } else if (cmd == "WRITE" && argv.size() == 2) {
      auto seq = engine_.put(argv[1], "v");
      out.simple(argv[1]);
      return *seq;
    } else if (cmd == "BIG" && argv.size() == 2) {
      out.bulk(std::string(std::stoul(std::string(argv[1])), 'x'));
    } else if (cmd == "QUIT") {
      out.simple("OK");
      session.close_after_reply = true;
    } else if (cmd == "LATER" && argv.size() == 2 && session.defer) {
      // Answered later from another thread, as a command routed to another
      // node is: the reply is held by release_later().
      std::lock_guard lock(later_mu_);
      later_.push_back({session.defer(), "+" + std::string(argv[1]) + "\r\n"});
    } else if (cmd == "AFTER" && argv.size() == 2) {
      if (session.replies_due > 0 && session.wait_for_replies) {
        session.wait_for_replies();
      } else {
        out.simple(argv[1]);
      }
    } else {
      out.error("ERR unknown command '" + std::string(argv[0]) + "'");
    }
    return 0;
  }
  Result<KeyPage> key_page(const KeyPageRequest&) override {
    return Status::InvalidArgument("the network tests' service holds no keys");
  }
  void start() override {}
  void stop() override {}

  // Delivers the LATER replies waiting, newest first, one after another; the count.
  size_t release_later_backwards() {
    std::vector<std::pair<DeferredReply, std::string>> later;
    {
      std::lock_guard lock(later_mu_);
      later.swap(later_);
    }
    for (auto it = later.rbegin(); it != later.rend(); ++it) it->first(it->second, 0);
    return later.size();
  }
  // Delivers every LATER reply waiting, each from a thread of its own; the count.
  size_t release_later() {
    std::vector<std::pair<DeferredReply, std::string>> later;
    {
      std::lock_guard lock(later_mu_);
      later.swap(later_);
    }
    std::vector<std::thread> threads;
    for (auto& [done, reply] : later) {
      threads.emplace_back([done = std::move(done), reply = std::move(reply)] { done(reply, 0); });
    }
    for (auto& t : threads) t.join();
    return later.size();
  }
  size_t later_waiting() const {
    std::lock_guard lock(later_mu_);
    return later_.size();
  }

  ServerStats* stats = nullptr;

 private:
  FakeEngine& engine_;
  mutable std::mutex later_mu_;
  std::vector<std::pair<DeferredReply, std::string>> later_;
};

// A NetworkServer on 127.0.0.1:<free port> over FakeService.
class TestServer {
 public:
  explicit TestServer(ServerConfig config = {}, unsigned io_threads = 2,
                      std::chrono::microseconds busy_poll = {})
      : store_(with_loopback(std::move(config))), service_(engine_) {
    ctx_.config = &store_;
    ctx_.engine = &engine_;
    ctx_.clients = &registry_;
    ctx_.stats = &stats_;
    ctx_.io_threads = io_threads;
    service_.stats = &stats_;
    server_ = std::make_unique<NetworkServer>(ctx_, service_, registry_);
    server_->set_busy_poll(busy_poll);
    Status s = server_->start();
    EXPECT_TRUE(s.ok()) << s.to_string();
  }
  ~TestServer() { server_->stop(); }

  uint16_t port() const { return server_->port(); }
  FakeEngine& engine() { return engine_; }
  FakeService& service() { return service_; }
  ServerStats& stats() { return stats_; }
  ClientRegistryImpl& registry() { return registry_; }
  ConfigStore& config() { return store_; }
  NetworkServer& network() { return *server_; }

  // Waits until the registry holds n sessions (connections start asynchronously).
  bool wait_clients(size_t n, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (registry_.count() == n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return registry_.count() == n;
  }

 private:
  static ServerConfig with_loopback(ServerConfig c) {
    c.bind = "127.0.0.1";
    c.port = 0;
    return c;
  }
  ConfigStore store_;
  FakeEngine engine_;
  FakeService service_;
  ServerStats stats_;
  ClientRegistryImpl registry_;
  ServerContext ctx_;
  std::unique_ptr<NetworkServer> server_;
};

// A blocking loopback client. Reads give up after a timeout so that a broken
// server fails the test instead of hanging it.
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // Reads whatever arrives within timeout (at least one byte unless the peer
  // closed or nothing came). Returns false on EOF/error, with eof() set on EOF.
  bool read_some(std::string& into, std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return true;  // nothing yet
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) {
      eof_ = true;
      return false;
    }
    if (n < 0) {
      eof_ = true;  // reset counts as closed
      return false;
    }
    into.append(buf, static_cast<size_t>(n));
    return true;
  }

  // Reads until `bytes` bytes are buffered or timeout passes; returns them.
  std::string read_bytes(size_t bytes,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (buffer_.size() < bytes && std::chrono::steady_clock::now() < deadline) {
      if (!read_some(buffer_, std::chrono::milliseconds(50))) break;
    }
    size_t n = std::min(bytes, buffer_.size());
    std::string out = buffer_.substr(0, n);
    buffer_.erase(0, n);
    return out;
  }

  // Reads one RESP value; an error-typed Value with str "timeout"/"eof" if none came.
  resp::Value read_value(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      resp::Value v;
      auto r = resp::parse_value(buffer_, v);
      if (r.status == resp::ParseStatus::kComplete) {
        buffer_.erase(0, r.consumed);
        return v;
      }
      resp::Value none;
      none.type = resp::Value::Type::kError;
      if (eof_) {
        none.str = "eof";
        return none;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        none.str = "timeout";
        return none;
      }
      read_some(buffer_, std::chrono::milliseconds(20));
    }
  }

  // True when the server closed the connection within timeout (any bytes that
  // arrive first are kept for read_value).
  bool wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!eof_ && std::chrono::steady_clock::now() < deadline) {
      read_some(buffer_, std::chrono::milliseconds(20));
    }
    return eof_;
  }

  // Bytes received and not yet consumed.
  const std::string& buffered() const { return buffer_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string buffer_;
};

// "*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n" for {"ECHO", "hello"}.
inline std::string command(std::initializer_list<std::string_view> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (auto a : args) {
    out += "$" + std::to_string(a.size()) + "\r\n";
    out.append(a);
    out += "\r\n";
  }
  return out;
}

}  // namespace statekv::server::testing
