#include "server/blocking.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdlib>

namespace statekv::server {
namespace {

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Keys made ready on this thread since the last take_ready().
thread_local std::vector<std::string> t_ready;

}  // namespace

std::optional<int64_t> parse_block_timeout(std::string_view text, std::string* error) {
  // Redis 7.0: string2ld (strtold over the whole text, no leading space, no
  // NaN, no overflow), then (long long)(value * 1000).
  static constexpr std::string_view kNotFloat = "ERR timeout is not a float or out of range";
  if (text.empty() || text.size() >= 5 * 1024 ||
      std::isspace(static_cast<unsigned char>(text[0]))) {
    *error = kNotFloat;
    return std::nullopt;
  }
  std::string buf(text);
  char* end = nullptr;
  errno = 0;
  const long double value = std::strtold(buf.c_str(), &end);
  if (static_cast<size_t>(end - buf.c_str()) != buf.size() || std::isnan(value) ||
      (errno == ERANGE &&
       (value == HUGE_VALL || value == -HUGE_VALL || std::fpclassify(value) == FP_ZERO))) {
    *error = kNotFloat;
    return std::nullopt;
  }
  const long double ms = value * 1000.0L;
  // Redis's cast of a value past the range of long long gives LLONG_MIN on
  // x86-64 ("timeout is negative"); here that is explicit.
  constexpr long double kLimit = 9223372036854775808.0L;  // 2^63
  if (!(ms < kLimit) || !(ms > -kLimit - 1.0L) || static_cast<long long>(ms) < 0) {
    *error = "ERR timeout is negative";
    return std::nullopt;
  }
  return static_cast<int64_t>(ms);
}

BlockingTable::BlockingTable() : timer_([this] { timer_loop(); }) {}

BlockingTable::~BlockingTable() {
  stop();
}

void BlockingTable::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (timer_.joinable() && timer_.get_id() != std::this_thread::get_id()) timer_.join();
}

bool BlockingTable::is_blocked(uint64_t client) const {
  if (!any()) return false;
  std::lock_guard lock(mu_);
  return by_client_.contains(client);
}

void BlockingTable::block(std::shared_ptr<Waiter> w) {
  std::lock_guard lock(mu_);
  if (auto old = by_client_.find(w->client); old != by_client_.end()) {
    // A connection blocks in one command at a time; a stale entry cannot
    // outlive its reply, but never leave two.
    erase_locked(*old->second);
  }
  for (size_t k : w->keys) {
    auto& q = by_key_[w->argv[k]];
    // A key named twice (BLPOP a a 0) queues the client once.
    if (!q.empty() && q.back() == w) continue;
    q.push_back(w);
  }
  if (w->deadline_ms != 0) {
    const bool earliest = deadlines_.empty() || w->deadline_ms < deadlines_.begin()->first;
    w->timer = deadlines_.emplace(w->deadline_ms, w);
    w->timed = true;
    if (earliest) cv_.notify_all();
  }
  by_client_[w->client] = w;
  blocked_.fetch_add(1, std::memory_order_relaxed);
}

void BlockingTable::note_written(std::span<const std::string_view> keys) {
  if (!any()) return;
  std::lock_guard lock(mu_);
  for (std::string_view key : keys) {
    if (!by_key_.contains(std::string(key))) continue;
    if (std::find(t_ready.begin(), t_ready.end(), key) == t_ready.end()) t_ready.emplace_back(key);
  }
}

bool BlockingTable::has_ready() {
  return !t_ready.empty();
}

std::vector<std::string> BlockingTable::take_ready() {
  std::vector<std::string> out;
  out.swap(t_ready);
  return out;
}

std::vector<std::shared_ptr<Waiter>> BlockingTable::waiters(std::string_view key) const {
  std::lock_guard lock(mu_);
  auto it = by_key_.find(std::string(key));
  if (it == by_key_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

void BlockingTable::erase_locked(Waiter& w) {
  w.done = true;
  for (size_t k : w.keys) {
    auto it = by_key_.find(w.argv[k]);
    if (it == by_key_.end()) continue;
    auto& q = it->second;
    q.erase(std::remove_if(q.begin(), q.end(), [&](const auto& p) { return p.get() == &w; }),
            q.end());
    if (q.empty()) by_key_.erase(it);
  }
  if (w.timed) {
    deadlines_.erase(w.timer);
    w.timed = false;
  }
  if (auto it = by_client_.find(w.client); it != by_client_.end() && it->second.get() == &w) {
    by_client_.erase(it);
  }
  blocked_.fetch_sub(1, std::memory_order_relaxed);
}

bool BlockingTable::claim(Waiter& w) {
  std::lock_guard lock(mu_);
  if (w.done) return false;
  erase_locked(w);
  return true;
}

bool BlockingTable::unblock(uint64_t client, Unblock how) {
  std::shared_ptr<Waiter> w;
  {
    std::lock_guard lock(mu_);
    auto it = by_client_.find(client);
    if (it == by_client_.end()) return false;
    w = it->second;
    erase_locked(*w);
  }
  if (how == Unblock::kTimeout) w->reply(w->timeout_reply, 0);
  if (how == Unblock::kError) w->reply("-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n", 0);
  return true;
}

void BlockingTable::timer_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (deadlines_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const int64_t now = steady_ms();
    const int64_t first = deadlines_.begin()->first;
    if (first > now) {
      cv_.wait_for(lock, std::chrono::milliseconds(first - now));
      continue;
    }
    std::vector<std::shared_ptr<Waiter>> expired;
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      auto w = deadlines_.begin()->second.lock();
      if (w && !w->done) {
        erase_locked(*w);  // takes its deadline out too
        expired.push_back(std::move(w));
      } else {
        deadlines_.erase(deadlines_.begin());
      }
    }
    lock.unlock();
    // Replies only post to the connection's thread: never under the mutex.
    for (auto& w : expired) w->reply(w->timeout_reply, 0);
    lock.lock();
  }
}

}  // namespace statekv::server
