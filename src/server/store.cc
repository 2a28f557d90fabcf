#include "server/store.h"

#include <xxhash.h>

#include <algorithm>
#include <chrono>

namespace statekv::server {
namespace {

// Per-thread scratch for building engine keys and records: no allocation once warm.
std::string& scratch_key() {
  thread_local std::string s;
  return s;
}
std::string& scratch_record() {
  thread_local std::string s;
  return s;
}

// The stripes this thread holds through Store::lock_transaction (ascending),
// and whose they are; empty outside a transaction.
thread_local const Store* t_held_store = nullptr;
thread_local const uint32_t* t_held_begin = nullptr;
thread_local const uint32_t* t_held_end = nullptr;

bool held_by_thread(const Store* store, uint32_t stripe) {
  return t_held_store == store && std::binary_search(t_held_begin, t_held_end, stripe);
}

Status corrupt(std::string_view key) {
  return Status::Corruption("malformed record for key of " + std::to_string(key.size()) + " bytes");
}

}  // namespace

int64_t unix_time_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Store::Store(storage::Engine& engine, ServerStats* stats) : engine_(engine), stats_(stats) {}

Status Store::recount() {
  int64_t keys = 0;
  int64_t expires = 0;
  bool malformed = false;
  Status s = engine_.scan(std::string_view("d", 1), std::string_view("e", 1), 0,
                          [&](std::string_view, std::string_view value) {
                            RecordView rec;
                            if (!decode_record(value, &rec)) {
                              malformed = true;
                              return false;
                            }
                            ++keys;
                            if (rec.expire_ms != 0) ++expires;
                            return true;
                          });
  if (!s.ok()) return s;
  if (malformed) return Status::Corruption("malformed record found while counting keys");
  keys_.store(keys, std::memory_order_relaxed);
  expires_.store(expires, std::memory_order_relaxed);
  return Status::OK();
}

uint32_t Store::stripe_of(std::string_view key) const {
  return static_cast<uint32_t>(XXH3_64bits(key.data(), key.size()) & (kStripes - 1));
}

Store::Locked::Locked(Locked&& other) noexcept
    : store_(other.store_),
      one_(other.one_),
      many_(std::move(other.many_)),  // keeps its buffer: t_held_* stay valid
      transaction_(other.transaction_) {
  other.store_ = nullptr;
  other.transaction_ = false;
}

Store::Locked::~Locked() {
  if (store_ == nullptr) return;
  if (transaction_) {
    t_held_store = nullptr;
    t_held_begin = t_held_end = nullptr;
  }
  if (many_.empty()) {
    store_->stripes_[one_].unlock();
    return;
  }
  for (auto it = many_.rbegin(); it != many_.rend(); ++it) store_->stripes_[*it].unlock();
}

Store::Locked Store::lock(std::string_view key) {
  Locked l;
  const uint32_t stripe = stripe_of(key);
  if (held_by_thread(this, stripe)) return l;
  l.store_ = this;
  l.one_ = stripe;
  stripes_[l.one_].lock();
  return l;
}

Store::Locked Store::lock(std::span<const std::string_view> keys) {
  Locked l;
  l.many_.reserve(keys.size());
  for (auto k : keys) {
    const uint32_t stripe = stripe_of(k);
    if (!held_by_thread(this, stripe)) l.many_.push_back(stripe);
  }
  if (l.many_.empty()) return l;
  l.store_ = this;
  std::sort(l.many_.begin(), l.many_.end());
  l.many_.erase(std::unique(l.many_.begin(), l.many_.end()), l.many_.end());
  if (l.many_.size() == 1) {
    l.one_ = l.many_[0];
    l.many_.clear();
    stripes_[l.one_].lock();
    return l;
  }
  // Ascending order: every multi-key command locks in the same global order.
  for (uint32_t s : l.many_) stripes_[s].lock();
  return l;
}

Store::Locked Store::lock_all() {
  Locked l;
  l.store_ = this;
  l.many_.resize(kStripes);
  for (uint32_t i = 0; i < kStripes; ++i) {
    l.many_[i] = i;
    stripes_[i].lock();
  }
  return l;
}

Store::Locked Store::lock_transaction(std::span<const std::string_view> keys, bool all) {
  Locked l = all ? lock_all() : lock(keys);
  if (l.store_ == nullptr) return l;               // no keys
  if (l.many_.empty()) l.many_.push_back(l.one_);  // the held scope views many_
  l.transaction_ = true;
  t_held_store = this;
  t_held_begin = l.many_.data();
  t_held_end = l.many_.data() + l.many_.size();
  return l;
}

Result<bool> Store::get(std::string_view key, int64_t now, std::string* buf, RecordView* rec,
                        bool* expired) {
  std::string& dk = scratch_key();
  data_key(key, &dk);
  Status s = engine_.get(dk, buf);
  if (expired != nullptr) *expired = false;
  if (s.is_not_found()) return false;
  if (!s.ok()) return s;
  if (!decode_record(*buf, rec)) return corrupt(key);
  if (rec->expire_ms == 0 || rec->expire_ms > now) return true;
  if (expired != nullptr) *expired = true;
  return false;
}

Result<bool> Store::get_locked(std::string_view key, int64_t now, std::string* buf, RecordView* rec,
                               Meta* meta) {
  std::string& dk = scratch_key();
  data_key(key, &dk);
  Status s = engine_.get(dk, buf);
  *meta = Meta{};
  if (s.is_not_found()) return false;
  if (!s.ok()) return s;
  if (!decode_record(*buf, rec)) return corrupt(key);
  *meta = Meta{true, rec->expire_ms};
  return rec->expire_ms == 0 || rec->expire_ms > now;
}

Result<storage::Sequence> Store::apply(const replication::Mutation& mutation) {
  using Kind = replication::Effect::Kind;
  const auto& effects = mutation.effects;
  if (effects.empty()) return storage::Sequence{0};
  if (effects.front().kind == Kind::kClear) {
    if (effects.size() != 1) {
      return Status::InvalidArgument("a clear effect must be a mutation's only effect");
    }
    return flush();
  }
  std::vector<std::string_view> keys;
  keys.reserve(effects.size());
  for (const auto& e : effects) {
    if (e.kind == Kind::kClear) {
      return Status::InvalidArgument("a clear effect must be a mutation's only effect");
    }
    keys.push_back(e.key);
  }
  std::vector<std::string_view> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return Status::InvalidArgument("a mutation names one key twice");
  }
  auto guard = lock(keys);
  std::vector<Write> writes;
  writes.reserve(effects.size());
  std::string buf;
  for (const auto& e : effects) {
    RecordView rec;
    Meta old;
    // now = 0: every record counts as present; what it held is all that matters.
    auto found = get_locked(e.key, 0, &buf, &rec, &old);
    if (!found.ok()) return found.status();
    writes.push_back(Write{e.key, old, e.kind == Kind::kErase, e.value, e.expire_ms});
  }
  return apply_locked(writes);
}

Result<storage::Sequence> Store::apply_locked(std::span<const Write> writes) {
  int64_t key_delta = 0;
  int64_t expire_delta = 0;
  size_t ops = 0;
  for (const Write& w : writes) {
    if (w.erase) {
      if (!w.old.exists) continue;
      ops += 1 + (w.old.expire_ms != 0);
    } else {
      ops += 1 + (w.old.expire_ms != w.expire_ms ? (w.old.expire_ms != 0) + (w.expire_ms != 0) : 0);
    }
  }
  if (ops == 0) return storage::Sequence{0};

  Result<storage::Sequence> seq = storage::Sequence{0};
  if (ops == 1) {
    // The common case (SET/INCR of a key without TTL changes): one engine call,
    // no batch allocation.
    const Write& w = *std::find_if(writes.begin(), writes.end(),
                                   [](const Write& x) { return !x.erase || x.old.exists; });
    std::string& dk = scratch_key();
    data_key(w.key, &dk);
    if (w.erase) {
      seq = engine_.del(dk);
      key_delta = -1;
    } else {
      std::string& record = scratch_record();
      encode_record(w.value, w.expire_ms, &record);
      seq = engine_.put(dk, record);
      if (!w.old.exists) key_delta = 1;
    }
  } else {
    storage::WriteBatch batch;
    std::string dk;
    std::string ek;
    std::string record;
    for (const Write& w : writes) {
      if (w.erase && !w.old.exists) continue;
      data_key(w.key, &dk);
      if (w.erase) {
        batch.del(dk);
        --key_delta;
        if (w.old.expire_ms != 0) {
          expiry_key(w.old.expire_ms, w.key, &ek);
          batch.del(ek);
          --expire_delta;
        }
        continue;
      }
      encode_record(w.value, w.expire_ms, &record);
      batch.put(dk, record);
      if (!w.old.exists) ++key_delta;
      if (w.old.expire_ms != w.expire_ms) {
        if (w.old.expire_ms != 0) {
          expiry_key(w.old.expire_ms, w.key, &ek);
          batch.del(ek);
          --expire_delta;
        }
        if (w.expire_ms != 0) {
          expiry_key(w.expire_ms, w.key, &ek);
          batch.put(ek, {});
          ++expire_delta;
        }
      }
    }
    seq = engine_.write(batch);
  }
  if (!seq.ok()) return seq;
  // Counters move only after the engine accepted the write, still under the
  // stripe locks, so they never disagree with what a later reader finds.
  if (key_delta != 0) keys_.fetch_add(key_delta, std::memory_order_relaxed);
  if (expire_delta != 0) expires_.fetch_add(expire_delta, std::memory_order_relaxed);
  return seq;
}

Result<storage::Sequence> Store::put_locked(std::string_view key, const Meta& old,
                                            std::string_view value, int64_t expire_ms) {
  Write w{key, old, false, value, expire_ms};
  return apply_locked(std::span<const Write>(&w, 1));
}

Result<storage::Sequence> Store::erase_locked(std::string_view key, const Meta& old) {
  Write w{key, old, true, {}, 0};
  return apply_locked(std::span<const Write>(&w, 1));
}

Result<storage::Sequence> Store::flush() {
  auto guard = lock_all();
  auto seq = engine_.clear();
  if (!seq.ok()) return seq;
  keys_.store(0, std::memory_order_relaxed);
  expires_.store(0, std::memory_order_relaxed);
  return seq;
}

Result<size_t> Store::expire_cycle(int64_t now, size_t max_keys, const EraseExpired& erase) {
  if (max_keys == 0) return size_t{0};
  // Collect first: the engine's scan visitor must not call back into the engine.
  struct Due {
    int64_t expire_ms;
    std::string key;
  };
  std::vector<Due> due;
  std::string end;
  expiry_key(now + 1, {}, &end);  // every entry with expiry <= now sorts below this
  bool malformed = false;
  Status s = engine_.scan(std::string_view("e", 1), end, max_keys,
                          [&](std::string_view raw, std::string_view) {
                            int64_t ms;
                            std::string_view key;
                            if (!parse_expiry_key(raw, &ms, &key)) {
                              malformed = true;
                              return false;
                            }
                            due.push_back({ms, std::string(key)});
                            return true;
                          });
  if (!s.ok()) return s;
  if (malformed) return Status::Corruption("malformed expiry index entry");

  std::string buf;
  std::string ek;
  size_t handled = 0;
  for (const Due& d : due) {
    auto guard = lock(d.key);
    std::string& dk = scratch_key();
    data_key(d.key, &dk);
    Status g = engine_.get(dk, &buf);
    RecordView rec;
    bool live_record = g.ok() && decode_record(buf, &rec);
    if (!g.ok() && !g.is_not_found()) return g;
    if (live_record && rec.expire_ms == d.expire_ms) {
      auto del = erase(d.key, Meta{true, rec.expire_ms});
      if (!del.ok()) return del.status();
      if (stats_ != nullptr) bump(stats_->local().expired_keys);
    } else {
      // Stale: the key was deleted or got another expiry without this entry
      // being removed. It is not counted in expires_, so just drop it.
      expiry_key(d.expire_ms, d.key, &ek);
      auto del = engine_.del(ek);
      if (!del.ok()) return del.status();
    }
    ++handled;
  }
  return handled;
}

Status Store::scan(std::string_view start, std::string_view end, size_t limit, int64_t now,
                   const KeyVisitor& visit, std::string* last, size_t* examined) {
  std::string from;
  data_key(start, &from);
  std::string to;
  if (end.empty()) {
    to.assign("e", 1);
  } else {
    data_key(end, &to);
  }
  if (last != nullptr) last->clear();
  if (examined != nullptr) *examined = 0;
  bool malformed = false;
  Status s = engine_.scan(from, to, limit, [&](std::string_view raw, std::string_view value) {
    std::string_view key = raw.substr(1);
    if (last != nullptr) last->assign(key);
    if (examined != nullptr) ++*examined;
    RecordView rec;
    if (!decode_record(value, &rec)) {
      malformed = true;
      return false;
    }
    if (rec.expire_ms != 0 && rec.expire_ms <= now) return true;  // expired: invisible
    return visit(key, rec);
  });
  if (!s.ok()) return s;
  if (malformed) return Status::Corruption("malformed record found while scanning");
  return Status::OK();
}

uint64_t Store::key_count() const {
  int64_t v = keys_.load(std::memory_order_relaxed);
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}

uint64_t Store::expire_count() const {
  int64_t v = expires_.load(std::memory_order_relaxed);
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}

}  // namespace statekv::server
