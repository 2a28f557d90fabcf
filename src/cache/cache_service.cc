#include "cache/cache_service.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <tuple>

#include "cache/invalidation.h"

namespace statekv::cache {
namespace {

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The connection's clock for its current batch of commands, when there is
// one (server::Session::batch_started_us): hits are most of what a cache
// serves, and reading the clock for each was ~5% of a pipelined run's CPU.
int64_t lookup_time_us(const server::Session& session) {
  return session.batch_started_us != 0 ? session.batch_started_us : now_us();
}

// ASCII only, as Redis's command names: std::tolower consults the locale on
// every character, which showed in profiles of pipelined GETs.
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string value_reply(const std::optional<std::string>& value, int resp) {
  std::string bytes;
  resp::Writer w(&bytes, resp);
  if (value) {
    w.bulk(*value);
  } else {
    w.null();
  }
  return bytes;
}

std::string error_reply(std::string_view message) {
  std::string bytes;
  resp::Writer(&bytes).error(message);
  return bytes;
}

// The keys a command names, by the command table's key positions.
std::vector<std::string> keys_of(const server::CommandSpec& spec,
                                 std::span<const std::string_view> argv) {
  std::vector<std::string> keys;
  for (size_t i : server::key_positions(spec, argv)) keys.emplace_back(argv[i]);
  return keys;
}

// Commands whose meaning is tied to one connection's state on the store, which
// the cache's pooled upstream connections cannot carry.
bool refused(std::string_view name) {
  static const char* const kRefused[] = {
      "multi",      "exec",        "discard",      "watch",      "unwatch",      "subscribe",
      "psubscribe", "unsubscribe", "punsubscribe", "ssubscribe", "sunsubscribe", "monitor",
      "auth",       "reset",       "blpop",        "brpop",      "blmove",       "bzpopmin",
      "bzpopmax",   "wait",        "readonly",     "readwrite",  "asking"};
  for (const char* r : kRefused) {
    if (name == r) return true;
  }
  return false;
}

}  // namespace

CacheService::CacheService(server::ServerContext& ctx, Upstream& upstream,
                           const CacheOptions& options, uint64_t seed, LeaseOptions leases)
    : ctx_(ctx), upstream_(upstream), cache_(options, Random(seed)), leases_(std::move(leases)) {
  if (leases_.enabled) timer_ = std::thread([this] { timer_loop(); });
}

CacheService::~CacheService() {
  stop();
}

void CacheService::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  timer_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
}

Result<server::KeyPage> CacheService::key_page(const server::KeyPageRequest&) {
  return Status::InvalidArgument("statekv cache holds no keys of its own to page through");
}

CacheStats CacheService::stats() const {
  std::lock_guard lock(mu_);
  return cache_.stats();
}

LeaseStats CacheService::lease_stats() const {
  std::lock_guard lock(mu_);
  return lease_stats_;
}

void CacheService::invalidate(const std::vector<std::string>& keys) {
  std::lock_guard lock(mu_);
  const int64_t now = now_us();
  for (const std::string& k : keys) {
    cache_.invalidate(k);
    recent_.invalidated(k, now);
  }
}

void CacheService::invalidate_all() {
  std::lock_guard lock(mu_);
  cache_.invalidate_all();
  recent_.invalidated_all(now_us());
}

bool CacheService::defer(server::Session& session, resp::Writer& out, Waiter* waiter) {
  if (!session.defer) {
    out.error("ERR statekv cache cannot answer this connection later");
    return false;
  }
  waiter->reply = session.defer();
  waiter->resp = session.resp;
  return true;
}

storage::Sequence CacheService::execute(server::Session& session,
                                        std::span<const std::string_view> argv, resp::Writer& out) {
  server::bump(ctx_.stats->local().commands);
  session.commands.fetch_add(1, std::memory_order_relaxed);
  if (argv.empty()) return 0;
  const std::string name = lower(argv[0]);
  auto arity_error = [&] {
    out.error(fmt::format("ERR wrong number of arguments for '{}' command", name));
  };
  if (name == "get") {
    if (argv.size() != 2) {
      arity_error();
    } else {
      get(session, argv[1], out);
    }
    return 0;
  }
  if (name == "mget") {
    if (argv.size() < 2) {
      arity_error();
    } else {
      mget(session, argv, out);
    }
    return 0;
  }
  if (name == "ping") {
    if (argv.size() > 2) return arity_error(), 0;
    argv.size() == 2 ? out.bulk(argv[1]) : out.simple("PONG");
    return 0;
  }
  if (name == "echo") {
    if (argv.size() != 2) return arity_error(), 0;
    out.bulk(argv[1]);
    return 0;
  }
  if (name == "quit") {
    out.simple("OK");
    session.close_after_reply = true;
    return 0;
  }
  if (name == "shutdown") {
    // Stops this cache, never the store behind it (the table below knows
    // SHUTDOWN, and would pass it through).
    server::shutdown_command(ctx_, session, argv, out);
    return 0;
  }
  if (name == "hello") {
    hello(session, argv, out);
    return 0;
  }
  if (name == "select") {
    if (argv.size() != 2) return arity_error(), 0;
    argv[1] == "0" ? out.simple("OK") : out.error("ERR DB index is out of range");
    return 0;
  }
  if (name == "info") {
    info(argv, out);
    return 0;
  }
  if (name == "client") {
    const std::string sub = argv.size() > 1 ? lower(argv[1]) : "";
    if (sub == "id") {
      out.integer(static_cast<int64_t>(session.id));
    } else if (sub == "setname" && argv.size() == 3) {
      std::lock_guard lock(session.mu);
      session.name = std::string(argv[2]);
      out.simple("OK");
    } else if (sub == "getname") {
      std::lock_guard lock(session.mu);
      session.name.empty() ? out.null() : out.bulk(session.name);
    } else if (sub == "setinfo" && argv.size() == 4) {
      out.simple("OK");  // library name and version: accepted, not shown anywhere yet
    } else {
      out.error(fmt::format("ERR CLIENT {} is not supported by statekv cache",
                            argv.size() > 1 ? std::string(argv[1]) : std::string()));
    }
    return 0;
  }
  if (refused(name)) {
    out.error(
        fmt::format("ERR '{}' is not supported by statekv cache (it needs a connection of "
                    "its own to the store)",
                    name));
    return 0;
  }
  const server::CommandSpec* spec = table_.find(argv[0]);
  if (spec == nullptr) {
    std::string args;
    for (size_t i = 1; i < argv.size(); ++i) args += fmt::format("'{}' ", argv[i]);
    out.error(fmt::format("ERR unknown command '{}', with args beginning with: {}", argv[0], args));
    return 0;
  }
  const bool flush = name == "flushall" || name == "flushdb";
  std::vector<std::string> keys;
  if (spec->flags & server::kWrite) keys = keys_of(*spec, argv);
  pass_through(session, argv, std::move(keys), flush, out);
  return 0;
}

void CacheService::get(server::Session& session, std::string_view key, resp::Writer& out) {
  std::unique_lock lock(mu_);
  const uint64_t waiter_id = ++next_waiter_;
  Cache::Lookup r = cache_.get(key, lookup_time_us(session), waiter_id);
  switch (r.action) {
    case Cache::Action::kHit:
      out.bulk(r.value);
      server::bump(ctx_.stats->local().keyspace_hits);
      if (r.stale && leases_.enabled) {
        auto [first, last] = lease_by_key_.equal_range(std::string(key));
        for (auto it = first; it != last; ++it) {
          auto f = lease_flights_.find(it->second);
          if (f != lease_flights_.end() && f->second.state == LeaseFlight::State::kWaiting) {
            ++lease_stats_.stale_served;
            break;
          }
        }
      }
      if (r.refresh_token != 0) {
        lock.unlock();
        start_load(r.refresh_token, std::string(key), std::nullopt);
      }
      return;
    case Cache::Action::kHitAbsent:
      out.null();
      server::bump(ctx_.stats->local().keyspace_hits);
      return;
    case Cache::Action::kWait: {
      Waiter w;
      if (!defer(session, out, &w)) {
        // Detaching is not possible; the waiter id stays registered with no
        // one behind it, and is skipped when the load completes.
        return;
      }
      waiters_.emplace(waiter_id, std::move(w));
      server::bump(ctx_.stats->local().keyspace_misses);
      return;
    }
    case Cache::Action::kLoad: {
      server::bump(ctx_.stats->local().keyspace_misses);
      Waiter w;
      const bool deferred = defer(session, out, &w);
      lock.unlock();
      start_load(r.load_token, std::string(key),
                 deferred ? std::optional<Waiter>(std::move(w)) : std::nullopt);
      return;
    }
  }
}

void CacheService::start_load(uint64_t token, std::string key, std::optional<Waiter> leader) {
  if (!leases_.enabled) {
    load_direct(token, std::move(key), std::move(leader), false);
    return;
  }
  {
    std::lock_guard lock(mu_);
    LeaseFlight& flight = lease_flights_[token];
    flight.key = key;
    flight.leader = std::move(leader);
    lease_by_key_.emplace(std::move(key), token);
  }
  request_lease(token);
}

void CacheService::load_direct(uint64_t token, std::string key, std::optional<Waiter> leader,
                               bool holds_lease) {
  const int64_t started = now_us();
  {
    std::lock_guard lock(mu_);
    ++upstream_loads_;
  }
  std::vector<Upstream::Command> pipeline = {{"PTTL", key}, {"GET", key}};
  upstream_.submit(std::move(pipeline), true,
                   [this, token, key = std::move(key), leader = std::move(leader), started,
                    holds_lease](Result<std::vector<Reply>> replies) mutable {
                     std::string error;
                     Cache::Loaded loaded;
                     int64_t pttl_ms = -1;
                     if (!replies.ok()) {
                       error = "ERR upstream: " + replies.status().message();
                     } else {
                       const Reply& pttl = (*replies)[0];
                       const Reply& get = (*replies)[1];
                       if (get.type == Reply::Type::kError) {
                         error = get.str;
                       } else if (get.type == Reply::Type::kString) {
                         loaded.value = get.str;
                         if (pttl.type == Reply::Type::kInteger && pttl.integer >= 0) {
                           pttl_ms = std::max<int64_t>(pttl.integer, 1);
                           // Measured from before the request: the key lives at least this long.
                           loaded.expires_at_us = started + pttl_ms * 1000;
                         }
                       }
                     }
                     if (holds_lease) {
                       // Release first, then publish: a cache that gets the fill and asks
                       // for the lease again (it refused the fill) finds it free.
                       Fill fill;
                       fill.key = key;
                       fill.holder = lease_value(token);
                       fill.kind = !error.empty() ? Fill::Kind::kReleased
                                   : loaded.value ? Fill::Kind::kValue
                                                  : Fill::Kind::kAbsent;
                       if (loaded.value) fill.value = *loaded.value;
                       fill.pttl_ms = pttl_ms;
                       release_lease(key, lease_value(token), encode_fill(fill));
                     }
                     loaded.load_cost_us = now_us() - started;
                     finish(token, key, error, std::move(loaded), std::move(leader));
                   });
}

void CacheService::release_lease(const std::string& key, std::string mine, std::string fill) {
  {
    std::lock_guard lock(mu_);
    ++lease_stats_.fills_published;
  }
  // Compare-and-delete (lease.h): WATCH and GET the lease on one connection;
  // only if it still holds this flight's value, DEL it inside MULTI/EXEC,
  // which runs nothing if the lease key changed after the WATCH (ran out and
  // was taken by another cache, or was written by anyone). Then the fill: a
  // cache that gets it and asks for the lease again finds it free.
  std::string lk = lease_key(key);
  upstream_.submit_then(
      {{"WATCH", lk}, {"GET", lk}},
      [lk, mine = std::move(mine), channel = leases_.channel,
       fill = std::move(fill)](const std::vector<Reply>& first) {
        const bool watched = first.size() == 2 && first[0].type == Reply::Type::kStatus;
        const bool ours = watched && first[1].type == Reply::Type::kString && first[1].str == mine;
        std::vector<Upstream::Command> then;
        if (ours) {
          then = {{"MULTI"}, {"DEL", lk}, {"EXEC"}};
        } else {
          then = {{"UNWATCH"}};  // not ours (or no WATCH): left to run out
        }
        then.push_back({"PUBLISH", channel, fill});
        return then;
      },
      [this](Result<std::vector<Reply>> replies) {
        // WATCH, GET, MULTI, DEL (QUEUED), EXEC ([1] once deleted), PUBLISH.
        const bool deleted = replies.ok() && replies->size() == 6 &&
                             (*replies)[4].type == Reply::Type::kArray &&
                             (*replies)[4].elements.size() == 1 &&
                             (*replies)[4].elements[0].type == Reply::Type::kInteger &&
                             (*replies)[4].elements[0].integer == 1;
        if (!deleted) return;
        std::lock_guard lock(mu_);
        ++lease_stats_.released;
      });
}

void CacheService::finish(uint64_t token, const std::string& key, const std::string& error,
                          Cache::Loaded loaded, std::optional<Waiter> leader) {
  const std::optional<std::string> value = loaded.value;
  const int64_t now = now_us();
  std::vector<Waiter> answer;
  {
    std::lock_guard lock(mu_);
    std::vector<uint64_t> ids;
    if (error.empty()) {
      ids = cache_.complete(token, key, std::move(loaded), now);
    } else {
      ids = cache_.fail(token);
    }
    for (uint64_t id : ids) {
      auto it = waiters_.find(id);
      if (it == waiters_.end()) continue;
      answer.push_back(std::move(it->second));
      waiters_.erase(it);
    }
  }
  if (leader) answer.push_back(std::move(*leader));
  std::string replies_by_resp[2];
  for (Waiter& w : answer) {
    std::string& bytes = replies_by_resp[w.resp == 3 ? 1 : 0];
    if (bytes.empty()) bytes = error.empty() ? value_reply(value, w.resp) : error_reply(error);
    w.reply(bytes, 0);
  }
}

std::string CacheService::lease_value(uint64_t token) const {
  return leases_.owner + ":" + std::to_string(token);
}

void CacheService::request_lease(uint64_t token) {
  std::string key;
  uint32_t attempt = 0;
  {
    std::lock_guard lock(mu_);
    auto it = lease_flights_.find(token);
    if (it == lease_flights_.end()) return;
    LeaseFlight& f = it->second;
    f.state = LeaseFlight::State::kRequesting;
    attempt = ++f.attempt;
    f.sent_us = now_us();
    f.holder.clear();
    f.early.reset();
    key = f.key;
  }
  const std::string lk = lease_key(key);
  std::vector<Upstream::Command> pipeline = {
      {"SET", lk, lease_value(token), "NX", "GET", "PX", std::to_string(leases_.lease_ms)},
      {"PTTL", lk}};
  // Sent again on a broken connection: a SET that had happened then answers
  // this cache's own lease value, which counts as taking it.
  upstream_.submit(std::move(pipeline), true,
                   [this, token, attempt](Result<std::vector<Reply>> replies) {
                     on_lease_reply(token, attempt, Upstream::sent_us(), std::move(replies));
                   });
}

void CacheService::take_flight(uint64_t token, Next* next) {
  auto it = lease_flights_.find(token);
  if (it == lease_flights_.end()) return;
  next->token = token;
  next->key = it->second.key;
  next->leader = std::move(it->second.leader);
  auto [first, last] = lease_by_key_.equal_range(it->second.key);
  for (auto k = first; k != last; ++k) {
    if (k->second == token) {
      lease_by_key_.erase(k);
      break;
    }
  }
  lease_flights_.erase(it);
}

void CacheService::on_lease_reply(uint64_t token, uint32_t attempt, int64_t sent_us,
                                  Result<std::vector<Reply>> replies) {
  Next next;
  {
    std::lock_guard lock(mu_);
    auto it = lease_flights_.find(token);
    if (it == lease_flights_.end()) return;
    LeaseFlight& f = it->second;
    if (f.attempt != attempt || f.state != LeaseFlight::State::kRequesting) return;
    const int64_t now = now_us();
    // When the request actually left (after queueing for a pooled connection
    // and any injected delay): a tighter, still safe, bound than the submit time.
    if (sent_us > f.sent_us) f.sent_us = sent_us;
    if (!replies.ok()) {
      // The store cannot be reached: the load could not be made either.
      take_flight(token, &next);
      next.what = Next::What::kFail;
      next.error = "ERR upstream: " + replies.status().message();
    } else {
      on_lease_answer(token, f, (*replies)[0], (*replies)[1], now, &next);
    }
  }
  run(std::move(next));
}

void CacheService::on_lease_answer(uint64_t token, LeaseFlight& f, const Reply& set,
                                   const Reply& pttl, int64_t now, Next* next) {
  // A holder that keeps releasing and retaking the key could make a waiter ask
  // forever; after this many requests it loads the key itself.
  constexpr uint32_t kMaxAttempts = 16;
  const bool mine = set.type == Reply::Type::kString && set.str == lease_value(token);
  if (set.type == Reply::Type::kNil || mine) {
    ++lease_stats_.taken;
    take_flight(token, next);
    next->what = Next::What::kLoad;
    next->holds_lease = true;
    return;
  }
  if (set.type != Reply::Type::kString || pttl.type != Reply::Type::kInteger ||
      pttl.integer == -1 || f.attempt >= kMaxAttempts) {
    // The store refused the lease (an error reply, or a lease key without an
    // expiry written by someone else), or the key keeps changing hands: load
    // it without a lease.
    ++lease_stats_.errors;
    take_flight(token, next);
    next->what = Next::What::kLoad;
    return;
  }
  ++lease_stats_.waits;
  f.state = LeaseFlight::State::kWaiting;
  f.holder = set.str;
  const int64_t remaining_ms = std::max<int64_t>(pttl.integer, 0);
  // The holder took its lease (lease-ms - remaining) before the store ran this
  // PTTL, which it ran after this request was sent; 2 ms for rounding.
  f.trust_from_us = f.sent_us - (leases_.lease_ms - remaining_ms) * 1000 - 2000;
  if (f.early && f.early->holder == f.holder && f.holder != f.refused) {
    const Fill fill = std::move(*f.early);
    f.early.reset();
    *next = use_fill(token, f, fill, now);
  } else if (remaining_ms == 0) {
    next->what = Next::What::kAskAgain;  // released (or ran out) meanwhile
    next->token = token;
  } else {
    // Ask again 1 ms after the holder's lease runs out, unless its fill comes first.
    timers_.emplace(now + remaining_ms * 1000 + 1000, std::make_pair(token, f.attempt));
    timer_cv_.notify_all();
  }
}

CacheService::Next CacheService::use_fill(uint64_t token, LeaseFlight& flight, const Fill& fill,
                                          int64_t now) {
  Next next;
  next.token = token;
  const bool released = fill.kind == Fill::Kind::kReleased;  // the holder's load failed
  // Or the holder may have read the key before a write this cache has already
  // been told of: then load it again (through the lease) rather than use it.
  if (released || recent_.changed_since(flight.key, flight.trust_from_us)) {
    if (!released) ++lease_stats_.fills_refused;
    // Its copies of this fill (one per subscribed upstream) and a lease it
    // still holds are not waited for again.
    flight.refused = fill.holder;
    flight.state = LeaseFlight::State::kRequesting;
    next.what = Next::What::kAskAgain;
    return next;
  }
  ++lease_stats_.fills;
  const int64_t sent = flight.sent_us;
  const int64_t trust_from = flight.trust_from_us;
  take_flight(token, &next);
  next.what = Next::What::kFinish;
  if (fill.kind == Fill::Kind::kValue) {
    next.loaded.value = fill.value;
    // The holder read the key's PTTL after it took the lease, so after trust_from.
    if (fill.pttl_ms >= 0) next.loaded.expires_at_us = trust_from + fill.pttl_ms * 1000;
  }
  next.loaded.load_cost_us = now - sent;
  return next;
}

void CacheService::run(Next next) {
  switch (next.what) {
    case Next::What::kNothing:
      return;
    case Next::What::kAskAgain:
      request_lease(next.token);
      return;
    case Next::What::kFinish:
      finish(next.token, next.key, "", std::move(next.loaded), std::move(next.leader));
      return;
    case Next::What::kFail:
      finish(next.token, next.key, next.error, {}, std::move(next.leader));
      return;
    case Next::What::kLoad:
      load_direct(next.token, std::move(next.key), std::move(next.leader), next.holds_lease);
      return;
  }
}

void CacheService::on_fill(std::string_view payload) {
  auto fill = decode_fill(payload);
  if (!fill.ok()) return;  // another publisher on the channel
  std::vector<Next> todo;
  {
    std::lock_guard lock(mu_);
    const int64_t now = now_us();
    std::vector<uint64_t> tokens;
    auto [first, last] = lease_by_key_.equal_range(fill->key);
    for (auto it = first; it != last; ++it) tokens.push_back(it->second);
    for (uint64_t token : tokens) {
      auto it = lease_flights_.find(token);
      if (it == lease_flights_.end()) continue;
      LeaseFlight& f = it->second;
      if (fill->holder == f.refused) continue;
      if (f.state == LeaseFlight::State::kRequesting) {
        f.early = *fill;  // the reply naming the holder may come after its fill
      } else if (f.state == LeaseFlight::State::kWaiting && f.holder == fill->holder) {
        todo.push_back(use_fill(token, f, *fill, now));
      }
    }
  }
  for (Next& next : todo) run(std::move(next));
}

void CacheService::timer_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (timers_.empty()) {
      timer_cv_.wait(lock);
      continue;
    }
    auto first = timers_.begin();
    const int64_t now = now_us();
    if (first->first > now) {
      timer_cv_.wait_for(lock, std::chrono::microseconds(first->first - now));
      continue;
    }
    const auto [token, attempt] = first->second;
    timers_.erase(first);
    auto it = lease_flights_.find(token);
    if (it == lease_flights_.end() || it->second.state != LeaseFlight::State::kWaiting ||
        it->second.attempt != attempt) {
      continue;  // filled, or asked again, meanwhile
    }
    // The holder neither filled nor released in time (it died, or is slow).
    ++lease_stats_.expiries;
    lock.unlock();
    request_lease(token);
    lock.lock();
  }
}

void CacheService::mget_per_key(server::Session& session, std::span<const std::string_view> argv,
                                resp::Writer& out) {
  // The MGET's reply, gathered element by element: each missing key follows
  // GET's path (a coalesced wait, or a load that takes the key's lease), and
  // its element is filled when that key's value arrives; the reply goes out
  // once the last one did. An error for any key answers the whole MGET.
  struct Gather {
    std::mutex mu;
    std::vector<std::string> elements;
    size_t left = 0;
    std::string error;
    Waiter client;
  };
  const size_t n = argv.size() - 1;
  auto g = std::make_shared<Gather>();
  g->elements.resize(n);
  const auto element = [g](size_t i) {
    return [g, i](std::string bytes, storage::Sequence) {
      std::unique_lock lock(g->mu);
      if (!bytes.empty() && bytes[0] == '-') {
        if (g->error.empty()) g->error = std::move(bytes);
      } else {
        g->elements[i] = std::move(bytes);
      }
      if (--g->left > 0) return;
      std::string reply = g->error;
      if (reply.empty()) {
        reply = "*" + std::to_string(g->elements.size()) + "\r\n";
        for (const std::string& e : g->elements) reply += e;
      }
      lock.unlock();
      g->client.reply(std::move(reply), 0);
    };
  };
  std::vector<std::pair<uint64_t, std::string>> refreshes;       // (token, key), in the background
  std::vector<std::tuple<uint64_t, std::string, size_t>> loads;  // (token, key, element)
  {
    std::unique_lock lock(mu_);
    std::vector<std::pair<size_t, uint64_t>> waits;  // (element, waiter id)
    for (size_t i = 0; i < n; ++i) {
      const std::string_view key = argv[i + 1];
      const uint64_t waiter_id = ++next_waiter_;
      Cache::Lookup r = cache_.get(key, lookup_time_us(session), waiter_id);
      switch (r.action) {
        case Cache::Action::kHit:
          g->elements[i] = value_reply(std::string(r.value), session.resp);
          server::bump(ctx_.stats->local().keyspace_hits);
          if (r.refresh_token != 0) refreshes.emplace_back(r.refresh_token, std::string(key));
          break;
        case Cache::Action::kHitAbsent:
          g->elements[i] = value_reply(std::nullopt, session.resp);
          server::bump(ctx_.stats->local().keyspace_hits);
          break;
        case Cache::Action::kWait:
          server::bump(ctx_.stats->local().keyspace_misses);
          waits.emplace_back(i, waiter_id);
          break;
        case Cache::Action::kLoad:
          server::bump(ctx_.stats->local().keyspace_misses);
          loads.emplace_back(r.load_token, std::string(key), i);
          break;
      }
    }
    if (waits.empty() && loads.empty()) {
      std::string reply = "*" + std::to_string(n) + "\r\n";
      for (const std::string& e : g->elements) reply += e;
      out.raw(reply);
    } else if (!defer(session, out, &g->client)) {
      for (const auto& load : loads) cache_.fail(std::get<0>(load));
      loads.clear();
    } else {
      g->left = waits.size() + loads.size();
      for (auto [i, waiter_id] : waits) {
        waiters_.emplace(waiter_id, Waiter{element(i), session.resp});
      }
    }
  }
  for (auto& [token, key, i] : loads) {
    start_load(token, std::move(key), Waiter{element(i), session.resp});
  }
  for (auto& [token, key] : refreshes) start_load(token, std::move(key), std::nullopt);
}

void CacheService::mget(server::Session& session, std::span<const std::string_view> argv,
                        resp::Writer& out) {
  if (leases_.enabled) return mget_per_key(session, argv, out);
  const size_t n = argv.size() - 1;
  std::vector<std::pair<size_t, uint64_t>> loads;  // (index, token) this MGET must complete
  {
    std::lock_guard lock(mu_);
    std::string bytes;
    resp::Writer w(&bytes, out.protocol());
    w.array(n);
    bool all_hit = true;
    for (size_t i = 0; i < n; ++i) {
      // kWait is not used by MGET (it goes to the store for what it lacks), so
      // its waiter id is never registered.
      Cache::Lookup r = cache_.get(argv[i + 1], lookup_time_us(session), 0);
      if (r.action == Cache::Action::kHit) {
        w.bulk(r.value);
        if (r.refresh_token != 0) loads.emplace_back(i, r.refresh_token);
      } else if (r.action == Cache::Action::kHitAbsent) {
        w.null();
      } else {
        all_hit = false;
        if (r.action == Cache::Action::kLoad) loads.emplace_back(i, r.load_token);
      }
    }
    if (all_hit && loads.empty()) {
      out.raw(bytes);
      return;
    }
  }
  Waiter waiter;
  if (!defer(session, out, &waiter)) {
    std::lock_guard lock(mu_);
    for (auto [i, token] : loads) cache_.fail(token);
    return;
  }
  Upstream::Command cmd(argv.begin(), argv.end());
  const int64_t started = now_us();
  upstream_.submit({std::move(cmd)}, true,
                   [this, waiter = std::move(waiter), loads = std::move(loads), started,
                    keys = std::vector<std::string>(argv.begin() + 1, argv.end())](
                       Result<std::vector<Reply>> replies) mutable {
                     std::string bytes;
                     resp::Writer w(&bytes, waiter.resp);
                     const bool good = replies.ok() && (*replies)[0].type == Reply::Type::kArray &&
                                       (*replies)[0].elements.size() == keys.size();
                     std::vector<uint64_t> ids;
                     {
                       std::lock_guard lock(mu_);
                       const int64_t now = now_us();
                       for (auto [i, token] : loads) {
                         if (!good) {
                           for (uint64_t id : cache_.fail(token)) ids.push_back(id);
                           continue;
                         }
                         // MGET gives no TTLs: a key with one is not stored
                         // (its copy could outlive it); plain keys are.
                         const Reply& e = (*replies)[0].elements[i];
                         Cache::Loaded l;
                         if (e.type == Reply::Type::kString) l.value = e.str;
                         l.load_cost_us = now - started;
                         for (uint64_t id : cache_.complete(token, keys[i], std::move(l), now)) {
                           ids.push_back(id);
                         }
                       }
                     }
                     (void)ids;  // MGET never registers waiters (see above)
                     if (!replies.ok()) {
                       w.error("ERR upstream: " + replies.status().message());
                     } else {
                       write_reply((*replies)[0], w);
                     }
                     waiter.reply(std::move(bytes), 0);
                   });
}

void CacheService::pass_through(server::Session& session, std::span<const std::string_view> argv,
                                std::vector<std::string> invalidate, bool invalidate_all,
                                resp::Writer& out) {
  Waiter waiter;
  if (!defer(session, out, &waiter)) return;
  const bool is_write = invalidate_all || !invalidate.empty();
  {
    std::lock_guard lock(mu_);
    ++passed_through_;
  }
  Upstream::Command cmd(argv.begin(), argv.end());
  upstream_.submit({std::move(cmd)}, !is_write,
                   [this, waiter = std::move(waiter), invalidate = std::move(invalidate),
                    invalidate_all](Result<std::vector<Reply>> replies) mutable {
                     // Drop the copies whatever the outcome: a failed or
                     // unanswered write may still have happened.
                     {
                       std::lock_guard lock(mu_);
                       const int64_t now = now_us();
                       if (invalidate_all) {
                         cache_.invalidate_all();
                         recent_.invalidated_all(now);
                       }
                       for (const std::string& k : invalidate) {
                         cache_.invalidate(k);
                         recent_.invalidated(k, now);
                       }
                     }
                     std::string bytes;
                     resp::Writer w(&bytes, waiter.resp);
                     if (!replies.ok()) {
                       w.error("ERR upstream: " + replies.status().message());
                     } else {
                       write_reply((*replies)[0], w);
                     }
                     waiter.reply(std::move(bytes), 0);
                   });
}

void CacheService::hello(server::Session& session, std::span<const std::string_view> argv,
                         resp::Writer& out) {
  if (argv.size() >= 2) {
    if (argv[1] != "2" && argv[1] != "3") {
      out.error("NOPROTO unsupported protocol version");
      return;
    }
    if (argv.size() > 2) {
      out.error("ERR HELLO options (AUTH, SETNAME) are not supported by statekv cache");
      return;
    }
    session.resp = argv[1] == "3" ? 3 : 2;
    out.set_protocol(session.resp);
  }
  out.map(7);
  out.bulk("server");
  out.bulk("statekv-cache");
  out.bulk("version");
  out.bulk("0.1.0");
  out.bulk("proto");
  out.integer(session.resp);
  out.bulk("id");
  out.integer(static_cast<int64_t>(session.id));
  out.bulk("mode");
  out.bulk("standalone");
  out.bulk("role");
  out.bulk("master");
  out.bulk("modules");
  out.array(0);
}

void CacheService::info(std::span<const std::string_view> argv, resp::Writer& out) {
  const std::string section = argv.size() > 1 ? lower(argv[1]) : "all";
  CacheStats s;
  uint64_t waiting = 0, flights = 0, passed = 0, upstream_loads = 0;
  LeaseStats l;
  {
    std::lock_guard lock(mu_);
    s = cache_.stats();
    l = lease_stats_;
    upstream_loads = upstream_loads_;
    waiting = waiters_.size();
    flights = cache_.flights();
    passed = passed_through_;
  }
  const CacheOptions& o = cache_.options();
  std::string text;
  const bool all = section == "all" || section == "everything" || section == "default";
  if (all || section == "server") {
    text += fmt::format(
        "# Server\r\nredis_version:7.2.0\r\nstatekv_mode:cache\r\nrun_id:{}\r\n"
        "connected_clients:{}\r\n\r\n",
        ctx_.run_id, ctx_.clients ? ctx_.clients->count() : 0);
  }
  if (all || section == "stats") {
    text += fmt::format(
        "# Stats\r\ntotal_commands_processed:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\n"
        "passed_through_commands:{}\r\nupstream_requests:{}\r\nupstream_errors:{}\r\n\r\n",
        ctx_.stats->sum(&server::ServerStats::Slot::commands),
        s.hits + s.stale_hits + s.negative_hits, s.misses, passed, upstream_.requests(),
        upstream_.errors());
  }
  if (all || section == "cache") {
    text += fmt::format(
        "# Cache\r\ncache_policy:{}\r\ncache_max_memory:{}\r\ncache_used_memory:{}\r\n"
        "cache_entries:{}\r\ncache_ttl_ms:{}\r\ncache_coalesce:{}\r\ncache_xfetch_beta:{}\r\n"
        "cache_stale_ms:{}\r\ncache_negative_ttl_ms:{}\r\n"
        "cache_hits:{}\r\ncache_stale_hits:{}\r\ncache_negative_hits:{}\r\ncache_misses:{}\r\n"
        "cache_loads:{}\r\ncache_loads_in_flight:{}\r\ncache_coalesced_waits:{}\r\n"
        "cache_waiting_clients:{}\r\ncache_early_refreshes:{}\r\ncache_stale_refreshes:{}\r\n"
        "cache_load_failures:{}\r\ncache_discarded_loads:{}\r\ncache_evictions:{}\r\n"
        "cache_rejected:{}\r\ncache_invalidations:{}\r\ncache_tracking_connections:{}\r\n"
        "cache_tracking_messages:{}\r\ncache_tracking_drops:{}\r\ncache_upstream_loads:{}\r\n",
        policy_name(o.store.policy), o.store.max_bytes, s.bytes, s.entries, o.ttl_us / 1000,
        o.coalesce ? 1 : 0, o.xfetch_beta, o.stale_us / 1000, o.negative_ttl_us / 1000, s.hits,
        s.stale_hits, s.negative_hits, s.misses, s.loads, flights, s.coalesced_waits, waiting,
        s.early_refreshes, s.stale_refreshes, s.load_failures, s.discarded_loads, s.evictions,
        s.rejected, s.invalidations, track_ && listener_ ? listener_->connected() : 0,
        listener_ ? listener_->messages() : 0, listener_ ? listener_->drops() : 0, upstream_loads);
    text += fmt::format(
        "cache_leases:{}\r\ncache_lease_ms:{}\r\ncache_lease_subscriptions:{}\r\n"
        "cache_leases_taken:{}\r\ncache_lease_waits:{}\r\ncache_lease_fills:{}\r\n"
        "cache_lease_fills_refused:{}\r\ncache_lease_expiries:{}\r\n"
        "cache_lease_stale_served:{}\r\ncache_lease_fills_published:{}\r\n"
        "cache_leases_released:{}\r\ncache_lease_errors:{}\r\n",
        leases_.enabled ? 1 : 0, leases_.lease_ms,
        leases_.enabled && listener_ ? listener_->connected() : 0, l.taken, l.waits, l.fills,
        l.fills_refused, l.expiries, l.stale_served, l.fills_published, l.released, l.errors);
  }
  out.verbatim("txt", text);
}

}  // namespace statekv::cache
