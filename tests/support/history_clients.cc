#include "support/history_clients.h"

#include <algorithm>
#include <optional>
#include <random>

#include "support/redis_client.h"

namespace statekv::itest {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

HistoryClients::HistoryClients(std::vector<uint16_t> ports, Options options)
    : ports_(std::move(ports)), options_(std::move(options)) {
  start_ = Clock::now();
  for (size_t c = 0; c < options_.clients; ++c) {
    threads_.emplace_back([this, c] { run(static_cast<int64_t>(c)); });
  }
}

HistoryClients::HistoryClients(std::vector<uint16_t> ports, size_t clients, size_t keys,
                               std::string key_prefix)
    : HistoryClients(std::move(ports), Options{.clients = clients,
                                               .keys = keys,
                                               .key_prefix = std::move(key_prefix),
                                               .consistency = {},
                                               .hosts = {}}) {}

HistoryClients::~HistoryClients() {
  stop();
}

void HistoryClients::set_ports(std::vector<uint16_t> ports) {
  std::lock_guard<std::mutex> lock(mu_);
  ports_ = std::move(ports);
}

void HistoryClients::stop() {
  stop_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

check::History HistoryClients::history() {
  std::lock_guard<std::mutex> lock(mu_);
  return history_;
}

int64_t HistoryClients::now() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_).count();
}

void HistoryClients::record(check::Event e) {
  std::lock_guard<std::mutex> lock(mu_);
  history_.push_back(std::move(e));
}

std::pair<std::string, uint16_t> HistoryClients::pick_node(uint32_t random) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t i = random % ports_.size();
  return {i < options_.hosts.size() ? options_.hosts[i] : std::string("127.0.0.1"), ports_[i]};
}

std::optional<RedisClient> HistoryClients::connect_somewhere(uint32_t random) {
  const auto [host, port] = pick_node(random);
  auto c = RedisClient::connect(host, port, 2s);
  if (!c.ok()) {
    std::this_thread::sleep_for(20ms);
    return std::nullopt;
  }
  if (!options_.consistency.empty()) {
    auto r = c->command({"CONSISTENCY", options_.consistency});
    if (!r.ok() || *r != "+OK") return std::nullopt;
  }
  return std::move(c).value();
}

bool HistoryClients::complete(const check::Event& invoke, const Result<std::string>& reply) {
  const bool write = invoke.f == check::OpFunction::kWrite;
  check::Event done = invoke;
  done.time = now();
  if (!reply.ok() || (!reply->empty() && (*reply)[0] == '-')) {
    // The connection broke, or an error reply (routing or a node failed): a
    // read certainly did not happen; a write's fate is unknown.
    done.type = write ? check::EventType::kInfo : check::EventType::kFail;
    if (!write) done.value.reset();
    record(done);
    ++errors_;
    return reply.ok();
  }
  const std::string& r = *reply;
  done.type = check::EventType::kOk;
  if (!write) {
    if (r == "(nil)") {
      done.value.reset();
    } else if (r.size() >= 2 && r.front() == '"' && r.back() == '"') {
      done.value = r.substr(1, r.size() - 2);
    } else {
      done.value = r;
    }
  }
  record(done);
  ++ok_;
  return true;
}

void HistoryClients::run_pipelined(int64_t client) {
  std::mt19937 rng(static_cast<unsigned>(client) + 1);
  const size_t depth = options_.pipeline;
  // One process per place in the pipeline; a place whose write's outcome is
  // unknown continues as a new process.
  std::vector<int64_t> process(depth);
  int64_t next_process = 1'000'000 * (client + 1);
  for (auto& p : process) p = next_process++;
  uint64_t next_value = 0;
  std::optional<RedisClient> conn;
  while (!stop_) {
    if (!conn || rng() % 20 == 0) {
      conn = connect_somewhere(rng());
      if (!conn) continue;
    }
    std::vector<check::Event> sent;
    for (size_t i = 0; i < depth; ++i) {
      check::Event invoke;
      invoke.process = process[i];
      invoke.type = check::EventType::kInvoke;
      const bool write = rng() % 2 == 0;
      invoke.f = write ? check::OpFunction::kWrite : check::OpFunction::kRead;
      invoke.key = options_.key_prefix + "k" + std::to_string(rng() % options_.keys);
      if (write) invoke.value = "c" + std::to_string(client) + "-" + std::to_string(next_value++);
      invoke.time = now();
      record(invoke);
      conn->append(write ? std::vector<std::string>{"SET", invoke.key, *invoke.value}
                         : std::vector<std::string>{"GET", invoke.key});
      sent.push_back(std::move(invoke));
    }
    bool broken = false;
    size_t refused = 0;
    for (size_t i = 0; i < sent.size(); ++i) {
      const Result<std::string> reply =
          broken ? Result<std::string>(Status::IOError("connection broke")) : conn->read_reply();
      const bool ok_reply = reply.ok() && !(!reply->empty() && (*reply)[0] == '-');
      if (!complete(sent[i], reply)) broken = true;
      if (!ok_reply && sent[i].f == check::OpFunction::kWrite) process[i] = next_process++;
      refused += ok_reply ? 0 : 1;
    }
    if (broken) conn.reset();
    if (refused == sent.size()) std::this_thread::sleep_for(5ms);  // as run() does
  }
}

void HistoryClients::run(int64_t client) {
  if (options_.pipeline > 1) {
    run_pipelined(client);
    return;
  }
  std::mt19937 rng(static_cast<unsigned>(client) + 1);
  // A process that saw an unknown outcome continues as a new process (Jepsen).
  int64_t process = client;
  uint64_t next_value = 0;
  std::optional<RedisClient> conn;
  std::string token;  // the session's, carried across hops
  bool connected_before = false;
  while (!stop_) {
    if (!conn || rng() % 20 == 0) {  // hop between nodes now and then
      conn = connect_somewhere(rng());
      if (!conn) continue;
      if (options_.carry_session && !token.empty()) {
        auto r = conn->command({"SESSION", "AFTER", token});
        if (!r.ok() || *r != "+OK") {
          conn.reset();
          continue;
        }
      }
      // Without the token, a new connection is a new session.
      if (connected_before && !options_.carry_session) process += 1000;
      connected_before = true;
    }
    const std::string key = options_.key_prefix + "k" + std::to_string(rng() % options_.keys);
    const bool write = rng() % 2 == 0;
    check::Event invoke;
    invoke.process = process;
    invoke.type = check::EventType::kInvoke;
    invoke.f = write ? check::OpFunction::kWrite : check::OpFunction::kRead;
    invoke.key = key;
    std::string value;
    if (write) {
      value = "c" + std::to_string(client) + "-" + std::to_string(next_value++);
      invoke.value = value;
    }
    invoke.time = now();
    record(invoke);
    auto reply = write ? conn->command({"SET", key, value}) : conn->command({"GET", key});
    const bool ok_reply = reply.ok() && !(!reply->empty() && (*reply)[0] == '-');
    if (!complete(invoke, reply)) conn.reset();
    if (!ok_reply) {
      if (write) process += 1000;
      // A node refusing at once (a partition's minority) is not hammered.
      std::this_thread::sleep_for(5ms);
      continue;
    }
    if (options_.carry_session) {
      // The session's token as of this operation, as a client that must not
      // lose its session to a broken connection keeps it: taken only when
      // hopping, the writes since the last hop would be outside the token
      // the next connection presents, had this one broken first.
      auto t = conn->command({"SESSION", "TOKEN"});
      if (t.ok() && t->size() >= 2 && t->front() == '"') {
        token = t->substr(1, t->size() - 2);
      } else {
        // Without its token the session cannot go on: a new process.
        process += 1000;
        token.clear();
        conn.reset();
      }
    }
  }
}

std::pair<int64_t, int64_t> longest_gap_ms(const check::History& history) {
  std::vector<int64_t> acks;
  for (const check::Event& e : history) {
    if (e.type == check::EventType::kOk) acks.push_back(e.time);
  }
  std::sort(acks.begin(), acks.end());
  int64_t gap = 0;
  int64_t at = 0;
  for (size_t i = 1; i < acks.size(); ++i) {
    if (acks[i] - acks[i - 1] > gap) {
      gap = acks[i] - acks[i - 1];
      at = acks[i - 1];
    }
  }
  return {gap / 1'000'000, at / 1'000'000};  // history times are in nanoseconds
}

}  // namespace statekv::itest
