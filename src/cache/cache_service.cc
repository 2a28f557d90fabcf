#include "cache/cache_service.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>

#include "cache/invalidation.h"

namespace statekv::cache {
namespace {

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
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
                           const CacheOptions& options, uint64_t seed)
    : ctx_(ctx), upstream_(upstream), cache_(options, Random(seed)) {}

Result<server::KeyPage> CacheService::key_page(const server::KeyPageRequest&) {
  return Status::InvalidArgument("statekv cache holds no keys of its own to page through");
}

CacheStats CacheService::stats() const {
  std::lock_guard lock(mu_);
  return cache_.stats();
}

void CacheService::invalidate(const std::vector<std::string>& keys) {
  std::lock_guard lock(mu_);
  for (const std::string& k : keys) cache_.invalidate(k);
}

void CacheService::invalidate_all() {
  std::lock_guard lock(mu_);
  cache_.invalidate_all();
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
  Cache::Lookup r = cache_.get(key, now_us(), waiter_id);
  switch (r.action) {
    case Cache::Action::kHit:
      out.bulk(r.value);
      server::bump(ctx_.stats->local().keyspace_hits);
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
  const int64_t started = now_us();
  std::vector<Upstream::Command> pipeline = {{"PTTL", key}, {"GET", key}};
  upstream_.submit(std::move(pipeline), true,
                   [this, token, key = std::move(key), leader = std::move(leader),
                    started](Result<std::vector<Reply>> replies) mutable {
                     std::optional<std::string> value;
                     std::string error;
                     Cache::Loaded loaded;
                     if (!replies.ok()) {
                       error = "ERR upstream: " + replies.status().message();
                     } else {
                       const Reply& pttl = (*replies)[0];
                       const Reply& get = (*replies)[1];
                       if (get.type == Reply::Type::kError) {
                         error = get.str;
                       } else if (get.type == Reply::Type::kString) {
                         value = get.str;
                         if (pttl.type == Reply::Type::kInteger && pttl.integer >= 0) {
                           // Measured from before the request: the key lives at least this long.
                           loaded.expires_at_us =
                               started + std::max<int64_t>(pttl.integer, 1) * 1000;
                         }
                       }
                     }
                     const int64_t now = now_us();
                     std::vector<Waiter> answer;
                     {
                       std::lock_guard lock(mu_);
                       std::vector<uint64_t> ids;
                       if (error.empty()) {
                         loaded.value = value;
                         loaded.load_cost_us = now - started;
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
                       if (bytes.empty())
                         bytes = error.empty() ? value_reply(value, w.resp) : error_reply(error);
                       w.reply(bytes, 0);
                     }
                   });
}

void CacheService::mget(server::Session& session, std::span<const std::string_view> argv,
                        resp::Writer& out) {
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
      Cache::Lookup r = cache_.get(argv[i + 1], now_us(), 0);
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
                       if (invalidate_all) cache_.invalidate_all();
                       for (const std::string& k : invalidate) cache_.invalidate(k);
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
  uint64_t waiting = 0, flights = 0, passed = 0;
  {
    std::lock_guard lock(mu_);
    s = cache_.stats();
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
        "cache_tracking_messages:{}\r\ncache_tracking_drops:{}\r\n",
        policy_name(o.store.policy), o.store.max_bytes, s.bytes, s.entries, o.ttl_us / 1000,
        o.coalesce ? 1 : 0, o.xfetch_beta, o.stale_us / 1000, o.negative_ttl_us / 1000, s.hits,
        s.stale_hits, s.negative_hits, s.misses, s.loads, flights, s.coalesced_waits, waiting,
        s.early_refreshes, s.stale_refreshes, s.load_failures, s.discarded_loads, s.evictions,
        s.rejected, s.invalidations, listener_ ? listener_->connected() : 0,
        listener_ ? listener_->messages() : 0, listener_ ? listener_->drops() : 0);
  }
  out.verbatim("txt", text);
}

}  // namespace statekv::cache
