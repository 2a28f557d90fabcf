#include "server/network_thread.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/assert.h"
#include "core/held_posts.h"
#include "core/thread_name.h"
#include "server/connection.h"

namespace statekv::server {
namespace {

// How often each thread looks for idle clients.
constexpr auto kTick = std::chrono::milliseconds(100);
// How often idle clients are looked for (Redis checks about once a second too).
constexpr int64_t kIdleCheckMs = 1000;
// Pending output above which a connection stops reading: "a few MB", as
// Redis's soft limits; smaller when the hard limit itself is smaller.
constexpr uint64_t kOutputPauseBytes = 4ull << 20;

}  // namespace

ConnectionLimits ConnectionLimits::from(const ServerConfig& config) {
  ConnectionLimits l;
  l.proto.max_bulk_len = config.proto_max_bulk_len;
  l.proto.max_multibulk_len = config.max_multibulk_len;
  l.proto.max_inline_len = config.max_inline_len;
  l.proto_unauthenticated = l.proto;
  l.proto_unauthenticated.unauthenticated = true;
  l.query_buffer_limit = config.client_query_buffer_limit;
  l.output_hard_limit = config.client_output_buffer_limit;
  l.pubsub_hard_limit = config.pubsub_output_buffer_limit;
  l.pubsub_soft_limit = config.pubsub_output_buffer_soft_limit;
  l.pubsub_soft_ms = static_cast<int64_t>(config.pubsub_output_buffer_soft_seconds) * 1000;
  l.output_pause_bytes = std::min(kOutputPauseBytes, config.client_output_buffer_limit / 2);
  l.timeout_ms = config.timeout_seconds * 1000;
  l.replies_wait_for_all_writes = config.fsync == storage::FsyncPolicy::kAlways;
  return l;
}

int64_t steady_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t steady_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

NetworkThread::NetworkThread(unsigned index, ConfigStore& config)
    : index_(index),
      config_(config),
      work_(asio::make_work_guard(context_)),
      timer_(context_),
      scratch_(kScratchBytes) {
  refresh_limits(config.generation());
}

NetworkThread::~NetworkThread() {
  SKV_ASSERT(!thread_.joinable(), "NetworkThread destroyed while running");
}

void NetworkThread::start() {
  schedule_tick();
  thread_ = std::thread([this] {
    name_this_thread("io-" + std::to_string(index_));
    // What this loop's commands post to the node's data loop (replica group
    // commands) leaves once per pass (core/held_posts.h).
    HeldPosts::hold_on_this_thread([this](std::function<void()> fn) {
      asio::post(context_, std::move(fn));
    });
    run_loop();
    HeldPosts::hold_on_this_thread(nullptr);
  });
}

void NetworkThread::run_loop() {
  if (busy_poll_.count() <= 0) {
    context_.run();
    return;
  }
  using Clock = std::chrono::steady_clock;
  while (!context_.stopped()) {
    if (context_.run_one() == 0) return;  // stopped, or out of work
    // poll() runs what is ready, looking at the sockets without waiting
    // (epoll_wait with a zero timeout); a pass that finds work restarts the
    // window.
    auto idle_since = Clock::now();
    while (!context_.stopped()) {
      if (context_.poll() > 0) {
        idle_since = Clock::now();
      } else if (Clock::now() - idle_since >= busy_poll_) {
        break;
      }
    }
  }
}

void NetworkThread::stop() {
  asio::post(context_, [this] {
    stopping_ = true;
    // Copy first: close() removes the connection from connections_.
    std::vector<std::shared_ptr<Connection>> all;
    all.reserve(connections_.size());
    for (auto& [ptr, conn] : connections_) all.push_back(conn);
    for (auto& conn : all) conn->close("server shutting down");
    asio::error_code ec;
    timer_.cancel(ec);
    work_.reset();
    context_.stop();
  });
}

void NetworkThread::join() {
  if (!thread_.joinable()) return;
  thread_.join();
  // Run the completions of operations that close() cancelled so their handlers
  // release the connections now, on this (the owner's) thread, while everything
  // they point to is still alive.
  context_.restart();
  context_.poll();
}

void NetworkThread::adopt(std::shared_ptr<Connection> connection) {
  Connection* raw = connection.get();
  connections_.emplace(raw, std::move(connection));
}

void NetworkThread::forget(Connection* connection) {
  connections_.erase(connection);
}

void NetworkThread::schedule_tick() {
  timer_.expires_after(kTick);
  timer_.async_wait([this](const asio::error_code& ec) {
    if (ec) return;  // cancelled by stop()
    tick();
    schedule_tick();
  });
}

void NetworkThread::refresh_limits(uint64_t generation) {
  // The generation first: a set() racing with this read is seen next time.
  limits_generation_ = generation;
  limits_ = ConnectionLimits::from(config_.snapshot());
}

void NetworkThread::tick() {
  const ConnectionLimits& limits = this->limits();
  const int64_t now = steady_now_ms();
  if (limits.timeout_ms == 0 || now - last_idle_check_ms_ < kIdleCheckMs) return;
  last_idle_check_ms_ = now;
  std::vector<std::shared_ptr<Connection>> all;
  all.reserve(connections_.size());
  for (auto& [ptr, conn] : connections_) all.push_back(conn);
  for (auto& conn : all) conn->check_idle(now, limits);
}

}  // namespace statekv::server
