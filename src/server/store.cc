#include "server/store.h"

#include <xxhash.h>

#include <algorithm>
#include <chrono>

#include "server/key_page.h"

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

// The bound just past every key beginning with prefix (an element or score-index
// prefix of a generation): its successor (trailing 0xff bytes dropped, the last
// byte plus one). It bounds the same keys as the next generation's prefix, and
// lies inside the generation's stripe group in the memory engine, so a scan of
// one collection's elements reads one stripe there (server_command.cc).
void group_end(std::string_view prefix, std::string* out) {
  out->assign(prefix);
  while (static_cast<unsigned char>(out->back()) == 0xff) out->pop_back();
  out->back() = static_cast<char>(static_cast<unsigned char>(out->back()) + 1);
}

void element_end(uint64_t gen, std::string* out) {
  std::string prefix;
  element_prefix(gen, &prefix);
  group_end(prefix, out);
}

// Past the last record key of scope (record.h, data_key).
void scope_end(uint64_t scope, std::string* out) {
  if (scope == 0) {
    out->assign(1, kDataPrefix + 1);
  } else if (scope == UINT64_MAX) {
    out->assign(1, kScopedDataPrefix + 1);
  } else {
    scope_prefix(scope + 1, out);
  }
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

namespace {
constexpr int kGenerationSpaceShift = 48;
constexpr uint64_t kGenerationCounterMask = (uint64_t{1} << kGenerationSpaceShift) - 1;
}  // namespace

Store::Store(storage::Engine& engine, ServerStats* stats, uint16_t generation_space,
             const KeyScopes* scopes)
    : engine_(engine),
      stats_(stats),
      scopes_(scopes),
      generation_space_(static_cast<uint64_t>(generation_space) << kGenerationSpaceShift) {}

namespace {
// The layout kLayoutKey names: records of consensus keyspaces in their scopes.
constexpr std::string_view kScopedLayout = "scoped-records-1";

// Whether the engine holds any key of the family whose keys start with `family`.
Result<bool> holds_family(storage::Engine& engine, char family) {
  const char from[1] = {family};
  const char to[1] = {static_cast<char>(family + 1)};
  bool any = false;
  Status s = engine.scan(std::string_view(from, 1), std::string_view(to, 1), 1,
                         [&](std::string_view, std::string_view) {
                           any = true;
                           return false;
                         });
  if (!s.ok()) return s;
  return any;
}
}  // namespace

Status Store::check_layout(storage::Engine& engine, bool scoped) {
  auto legacy = holds_family(engine, kLegacyScorePrefix);
  if (!legacy.ok()) return legacy.status();
  if (*legacy) {
    return Status::InvalidArgument(
        "the data holds sorted sets in the layout of an earlier statekv build (score index "
        "keys \"s\"...), which this build does not read; load the data again into an empty "
        "data directory (docs/data-types.md, \"Engine keys\")");
  }
  const std::string_view marker_key(&kLayoutKey, 1);
  std::string marker;
  Status got = engine.get(marker_key, &marker);
  if (got.ok()) {
    if (marker != kScopedLayout) {
      return Status::InvalidArgument("the data directory's layout '" + marker +
                                     "' is not one this build reads");
    }
    return Status::OK();
  }
  if (!got.is_not_found()) return got;
  if (scoped) {
    // Before scopes a cluster node kept every record under "d"; those of its
    // consensus keyspaces would now be looked for under their group's prefix.
    auto records = holds_family(engine, kDataPrefix);
    if (!records.ok()) return records.status();
    if (*records) {
      return Status::InvalidArgument(
          "the data directory holds records of an earlier statekv build, which kept a "
          "replicated keyspace's keys where this one does not look for them; load the data "
          "again into a cluster started afresh (docs/data-types.md, \"Scopes\")");
    }
  }
  auto marked = engine.put(marker_key, kScopedLayout);
  return marked.ok() ? Status::OK() : marked.status();
}

Status Store::recount() {
  int64_t keys = 0;
  int64_t expires = 0;
  std::unordered_map<uint64_t, ScopeDelta> by_scope;
  bool malformed = false;
  const auto count = [&](std::string_view raw, std::string_view value) {
    RecordView rec;
    uint64_t scope = 0;
    std::string_view key;
    if (!decode_record(value, &rec) || !parse_data_key(raw, &scope, &key)) {
      malformed = true;
      return false;
    }
    ++keys;
    ScopeDelta& in_scope = by_scope[scope];
    ++in_scope.keys;
    if (rec.expire_ms != 0) ++in_scope.expires;
    if (rec.expire_ms != 0) ++expires;
    note_generation(record_generation(rec.type, rec.value));
    return true;
  };
  Status s = engine_.scan(std::string_view("d", 1), std::string_view("e", 1), 0, count);
  if (!s.ok()) return s;
  if (!malformed) s = engine_.scan(std::string_view("D", 1), std::string_view("E", 1), 0, count);
  if (!s.ok()) return s;
  if (malformed) return Status::Corruption("malformed record found while counting keys");
  int64_t garbage = 0;
  s = engine_.scan(std::string_view("g", 1), std::string_view("h", 1), 0,
                   [&](std::string_view raw, std::string_view) {
                     uint64_t gen = 0;
                     if (!parse_garbage_key(raw, &gen)) {
                       malformed = true;
                       return false;
                     }
                     ++garbage;
                     note_generation(gen);
                     return true;
                   });
  if (!s.ok()) return s;
  if (malformed) return Status::Corruption("malformed garbage entry found while counting keys");
  keys_.store(keys, std::memory_order_relaxed);
  expires_.store(expires, std::memory_order_relaxed);
  garbage_.store(garbage, std::memory_order_relaxed);
  std::lock_guard<std::mutex> counts(scope_counts_mu_);
  scope_counts_ = std::move(by_scope);
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
  // A transaction holding the stripes already (MULTI ... FLUSHALL ... EXEC
  // holds every one: lock_transaction) locks none again: std::mutex is not
  // recursive, and the flush inside it used to wait on its own EXEC forever.
  l.many_.reserve(kStripes);
  for (uint32_t i = 0; i < kStripes; ++i) {
    if (!held_by_thread(this, i)) l.many_.push_back(i);
  }
  if (l.many_.empty()) return l;
  l.store_ = this;
  for (uint32_t s : l.many_) stripes_[s].lock();
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
  record_key(key, &dk);
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
  record_key(key, &dk);
  Status s = engine_.get(dk, buf);
  *meta = Meta{};
  if (s.is_not_found()) return false;
  if (!s.ok()) return s;
  if (!decode_record(*buf, rec)) return corrupt(key);
  *meta = meta_of(*rec);
  return rec->expire_ms == 0 || rec->expire_ms > now;
}

Store::Meta Store::meta_of(const RecordView& rec) {
  return Meta{true, rec.expire_ms, record_generation(rec.type, rec.value)};
}

namespace {

Store::Meta meta_of_prior(const replication::RecordPrior& p) {
  return Store::Meta{p.exists, p.expire_ms, p.generation};
}

// The write of a record effect (kPut, kErase, kPutTyped) over what its key held.
Store::Write record_write(const replication::Effect& e, const Store::Meta& old) {
  using Kind = replication::Effect::Kind;
  const ValueType type =
      e.kind == Kind::kPutTyped ? static_cast<ValueType>(e.type) : ValueType::kString;
  return Store::Write{e.key, old, e.kind == Kind::kErase, e.value, e.expire_ms, type};
}

}  // namespace

Result<storage::Sequence> Store::apply(const replication::Mutation& mutation, Logging logging,
                                       std::optional<AppliedPosition> position,
                                       const KnownRecords* known, Locking locking) {
  using Kind = replication::Effect::Kind;
  const auto& effects = mutation.effects;
  const bool unlogged = logging == Logging::kInReplicaLog;
  if (effects.empty()) {
    if (!position) return storage::Sequence{0};
    return apply_locked({}, unlogged, &*position);
  }
  if (effects.front().kind == Kind::kClear) {
    if (effects.size() != 1) {
      return Status::InvalidArgument("a clear effect must be a mutation's only effect");
    }
    auto cleared = flush();
    if (!cleared.ok() || !position) return cleared;
    return apply_locked({}, unlogged, &*position);
  }
  std::vector<std::string_view> keys;
  std::vector<std::string_view> records;  // keys whose record is written
  keys.reserve(effects.size());
  for (const auto& e : effects) {
    if (e.kind == Kind::kClear) {
      return Status::InvalidArgument("a clear effect must be a mutation's only effect");
    }
    if (e.kind == Kind::kPutTyped &&
        (e.type == 0 || e.type > static_cast<uint8_t>(ValueType::kZset))) {
      return Status::InvalidArgument("a put of unknown value type " + std::to_string(e.type));
    }
    keys.push_back(e.key);
    if (e.kind != Kind::kPutElement && e.kind != Kind::kEraseElement) records.push_back(e.key);
  }
  std::sort(records.begin(), records.end());
  if (std::adjacent_find(records.begin(), records.end()) != records.end()) {
    return Status::InvalidArgument("a mutation names one key twice");
  }
  // The priors the evaluating member sent, one per record effect; a mutation
  // whose count does not match (none) has each key read here.
  const bool priors = !mutation.priors.empty() && mutation.priors.size() == records.size();
  size_t record_index = 0;
  auto guard = locking == Locking::kLockKeys ? lock(keys) : Locked();
  std::vector<Write> writes;
  writes.reserve(effects.size());
  std::string buf;
  for (const auto& e : effects) {
    if (e.kind == Kind::kPutElement || e.kind == Kind::kEraseElement) {
      Write w;
      w.key = e.key;
      w.element = true;
      w.erase = e.kind == Kind::kEraseElement;
      w.value = e.value;
      w.field = e.field;
      w.gen = e.generation;
      writes.push_back(w);
      continue;
    }
    const Meta* was = nullptr;
    if (known != nullptr) {
      auto k = known->find(e.key);
      if (k != known->end()) was = &k->second;
    }
    Meta old;
    const replication::RecordPrior* prior = priors ? &mutation.priors[record_index] : nullptr;
    ++record_index;
    if (was != nullptr) {
      old = *was;
    } else if (prior != nullptr) {
      old = meta_of_prior(*prior);
    } else {
      RecordView rec;
      // now = 0: every record counts as present; what it held is all that matters.
      auto found = get_locked(e.key, 0, &buf, &rec, &old);
      if (!found.ok()) return found.status();
    }
    writes.push_back(record_write(e, old));
  }
  return apply_locked(writes, unlogged, position ? &*position : nullptr);
}

bool Store::applies_in_run(const replication::Mutation& m) {
  using Kind = replication::Effect::Kind;
  if (m.effects.empty() || m.priors.size() != m.effects.size()) return false;
  return std::all_of(m.effects.begin(), m.effects.end(), [](const replication::Effect& e) {
    return e.kind == Kind::kPut || e.kind == Kind::kErase ||
           (e.kind == Kind::kPutTyped && e.type != 0 &&
            e.type <= static_cast<uint8_t>(ValueType::kZset));
  });
}

Result<storage::Sequence> Store::apply_run(std::span<const replication::Mutation* const> run,
                                           Logging logging,
                                           std::optional<AppliedPosition> position) {
  std::vector<std::string_view> keys;
  for (const replication::Mutation* m : run) {
    if (!applies_in_run(*m)) {
      return Status::InvalidArgument(
          "a run applies only record effects that carry their priors");
    }
    for (const replication::Effect& e : m->effects) keys.push_back(e.key);
  }
  std::vector<std::string_view> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return Status::InvalidArgument("a run names one key twice");
  }
  auto guard = lock(keys);
  std::vector<Write> writes;
  writes.reserve(keys.size());
  for (const replication::Mutation* m : run) {
    for (size_t i = 0; i < m->effects.size(); ++i) {
      writes.push_back(record_write(m->effects[i], meta_of_prior(m->priors[i])));
    }
  }
  return apply_locked(writes, logging == Logging::kInReplicaLog, position ? &*position : nullptr);
}

Result<size_t> Store::erase_scope(uint64_t scope) {
  if (scope == 0)
    return Status::InvalidArgument("erase_scope erases a replica group's scope, not 0");
  constexpr size_t kBatch = 1024;
  size_t erased = 0;
  for (;;) {
    std::vector<std::string> keys;
    Status s = scan_scope(scope, {}, kBatch, [&](std::string_view key, const RecordView&) {
      keys.emplace_back(key);
      return true;
    });
    if (!s.ok()) return s;
    if (keys.empty()) return erased;
    std::vector<std::string_view> views(keys.begin(), keys.end());
    auto guard = lock(views);
    std::vector<Write> writes;
    writes.reserve(keys.size());
    std::string dk;
    std::string buf;
    for (const std::string& key : keys) {
      // What it holds now, under its lock.
      data_key(scope, key, &dk);
      Status got = engine_.get(dk, &buf);
      if (got.is_not_found()) continue;
      if (!got.ok()) return got;
      RecordView rec;
      if (!decode_record(buf, &rec)) return corrupt(key);
      Write& w = writes.emplace_back(key, meta_of(rec), true, std::string_view(), 0);
      w.scope = scope;
    }
    auto written = apply_locked(writes);
    if (!written.ok()) return written.status();
    erased += writes.size();
    if (keys.size() < kBatch) return erased;
  }
}

Result<uint64_t> Store::applied_position(uint64_t group) {
  auto state = applied_state(group);
  if (!state.ok()) return state.status();
  return state->index;
}

Result<Store::AppliedState> Store::applied_state(uint64_t group) {
  std::string key;
  applied_key(group, &key);
  std::string value;
  Status s = engine_.get(key, &value);
  if (s.is_not_found()) return AppliedState{};
  if (!s.ok()) return s;
  AppliedState state;
  if (!parse_applied_value(value, &state.index, &state.restoring)) {
    return Status::Corruption("malformed applied position");
  }
  return state;
}

Status Store::mark_restoring(uint64_t group) {
  std::string key;
  applied_key(group, &key);
  std::string value;
  applied_restoring_value(&value);
  storage::WriteBatch batch;
  batch.put(key, value);
  auto seq = engine_.write(batch);
  return seq.ok() ? Status::OK() : seq.status();
}

Status Store::forget_applied_position(uint64_t group) {
  std::string key;
  applied_key(group, &key);
  auto seq = engine_.del(key);
  return seq.ok() ? Status::OK() : seq.status();
}

Result<storage::Sequence> Store::apply_locked(std::span<const Write> writes, bool unlogged,
                                              const AppliedPosition* position) {
  int64_t key_delta = 0;
  int64_t expire_delta = 0;
  // The same by scope: a write's records are mostly of one. Per-thread
  // scratch, as the batch below: no allocation per write once warm (the
  // engine does not call back into the store, so nothing reenters).
  thread_local std::vector<std::pair<uint64_t, ScopeDelta>> scope_deltas;
  scope_deltas.clear();
  const auto in_scope = [&](uint64_t scope) -> ScopeDelta& {
    for (auto& [s, d] : scope_deltas) {
      if (s == scope) return d;
    }
    return scope_deltas.emplace_back(scope, ScopeDelta{}).second;
  };
  // The generation each record write leaves its key owning.
  auto new_gen = [](const Write& w) -> uint64_t {
    return w.erase ? 0 : record_generation(w.type, w.value);
  };
  size_t ops = 0;
  bool gens_change = false;
  for (const Write& w : writes) {
    if (w.element) {
      // A sorted set's member also moves its score index entry (a batch).
      ops += score_indexed(w.gen) ? 2 : 1;
      continue;
    }
    if (w.erase) {
      if (!w.old.exists) continue;
      ops += 1 + (w.old.expire_ms != 0);
    } else {
      ops += 1 + (w.old.expire_ms != w.expire_ms ? (w.old.expire_ms != 0) + (w.expire_ms != 0) : 0);
    }
    if (w.old.gen != new_gen(w)) gens_change = true;
  }
  if (ops == 0 && position == nullptr) return storage::Sequence{0};

  Result<storage::Sequence> seq = storage::Sequence{0};
  if (ops == 1 && !gens_change && !unlogged && position == nullptr) {
    // The common case (SET/INCR of a key without TTL changes, HSET of a field
    // of a large hash): one engine call, no batch allocation.
    const Write& w = *std::find_if(writes.begin(), writes.end(), [](const Write& x) {
      return x.element || !x.erase || x.old.exists;
    });
    std::string& dk = scratch_key();
    if (w.element) {
      element_key(w.gen, w.field, &dk);
      seq = w.erase ? engine_.del(dk) : engine_.put(dk, w.value);
    } else {
      const uint64_t scope = w.scope ? *w.scope : scope_for(w.key);
      data_key(scope, w.key, &dk);
      if (w.erase) {
        seq = engine_.del(dk);
        key_delta = -1;
      } else {
        std::string& record = scratch_record();
        encode_record(w.type, w.value, w.expire_ms, &record);
        seq = engine_.put(dk, record);
        if (!w.old.exists) key_delta = 1;
      }
      in_scope(scope).keys = key_delta;
    }
  } else {
    // Per-thread scratch: a command's write allocates no containers once warm
    // (the engine does not call back into the store, so nothing reenters).
    thread_local storage::WriteBatch batch;
    thread_local std::string dk;
    thread_local std::string ek;
    thread_local std::string record;
    // Generations retired by this write: owned before, owned by no record
    // after (RENAME moves a generation from one key to another: not retired).
    thread_local std::vector<uint64_t> retired;
    thread_local std::vector<uint64_t> owned;
    thread_local std::string index_value;
    std::string old_score;
    batch.clear();
    batch.set_unlogged(unlogged);
    retired.clear();
    owned.clear();
    for (const Write& w : writes) {
      if (w.element) {
        element_key(w.gen, w.field, &dk);
        if (score_indexed(w.gen)) {
          // The member's index entry follows its score: the old one goes
          // (its score is the element's value before this write).
          Status got = engine_.get(dk, &old_score);
          if (got.ok()) {
            double d = 0;
            if (!decode_score_bytes(old_score, &d)) {
              return Status::Corruption("malformed sorted-set score");
            }
            score_index_key(w.gen, score_order_bits(d), w.field, &ek);
            batch.del(ek);
          } else if (!got.is_not_found()) {
            return got;
          }
          if (!w.erase) {
            double d = 0;
            if (!decode_score_bytes(w.value, &d)) {
              return Status::InvalidArgument("a sorted-set member's score is not 8 bytes");
            }
            score_index_key(w.gen, score_order_bits(d), w.field, &ek);
            score_index_value(d, &index_value);
            batch.put(ek, index_value);
          }
        }
        if (w.erase) {
          batch.del(dk);
        } else {
          batch.put(dk, w.value);
        }
        continue;
      }
      if (w.erase && !w.old.exists) continue;
      const uint64_t gen = new_gen(w);
      if (gen != 0) owned.push_back(gen);
      if (w.old.gen != 0 && w.old.gen != gen) retired.push_back(w.old.gen);
      const uint64_t scope = w.scope ? *w.scope : scope_for(w.key);
      data_key(scope, w.key, &dk);
      ScopeDelta& counted = in_scope(scope);
      if (w.erase) {
        batch.del(dk);
        --key_delta;
        --counted.keys;
        if (w.old.expire_ms != 0) {
          expiry_key(w.old.expire_ms, w.key, &ek);
          batch.del(ek);
          --expire_delta;
          --counted.expires;
        }
        continue;
      }
      encode_record(w.type, w.value, w.expire_ms, &record);
      batch.put(dk, record);
      if (!w.old.exists) {
        ++key_delta;
        ++counted.keys;
      }
      if (w.old.expire_ms != w.expire_ms) {
        if (w.old.expire_ms != 0) {
          expiry_key(w.old.expire_ms, w.key, &ek);
          batch.del(ek);
          --expire_delta;
          --counted.expires;
        }
        if (w.expire_ms != 0) {
          expiry_key(w.expire_ms, w.key, &ek);
          batch.put(ek, {});
          ++expire_delta;
          ++counted.expires;
        }
      }
    }
    int64_t garbage_delta = 0;
    for (uint64_t gen : retired) {
      if (std::find(owned.begin(), owned.end(), gen) != owned.end()) continue;
      garbage_key(gen, &ek);
      batch.put(ek, {});
      ++garbage_delta;
    }
    for (uint64_t gen : owned) note_generation(gen);
    if (position != nullptr) {
      applied_key(position->group, &ek);
      applied_value(position->index, &record);
      batch.put(ek, record);
    }
    seq = engine_.write(batch);
    if (seq.ok() && garbage_delta != 0)
      garbage_.fetch_add(garbage_delta, std::memory_order_relaxed);
  }
  if (!seq.ok()) return seq;
  // Counters move only after the engine accepted the write, still under the
  // stripe locks, so they never disagree with what a later reader finds.
  if (key_delta != 0) keys_.fetch_add(key_delta, std::memory_order_relaxed);
  if (expire_delta != 0) expires_.fetch_add(expire_delta, std::memory_order_relaxed);
  bool counts_moved = false;
  for (const auto& [scope, d] : scope_deltas) counts_moved = counts_moved || d.keys || d.expires;
  if (counts_moved) {
    std::lock_guard<std::mutex> counts(scope_counts_mu_);
    for (const auto& [scope, d] : scope_deltas) {
      if (d.keys == 0 && d.expires == 0) continue;
      ScopeDelta& total = scope_counts_[scope];
      total.keys += d.keys;
      total.expires += d.expires;
      if (total.keys == 0 && total.expires == 0) scope_counts_.erase(scope);
    }
  }
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

void Store::note_generation(uint64_t gen) {
  // Another node's generations (applied from its replica groups) are its to
  // count: only this store's space moves its counter.
  if ((gen & ~kGenerationCounterMask) != generation_space_) return;
  gen = key_generation(gen & kGenerationCounterMask);
  uint64_t seen = max_gen_.load(std::memory_order_relaxed);
  while (gen > seen && !max_gen_.compare_exchange_weak(seen, gen, std::memory_order_relaxed)) {
  }
}

uint64_t Store::new_generation(GenerationKind kind) {
  const uint64_t bits = kind == GenerationKind::kScoreIndexed ? kScoreIndexBit
                        : kind == GenerationKind::kOrdered    ? kOrderedElementsBit
                                                              : 0;
  return generation_space_ | bits | (max_gen_.fetch_add(1, std::memory_order_relaxed) + 1);
}

Status Store::scan_score_index(uint64_t gen, std::string_view from, std::string_view to,
                               bool reverse, size_t limit, const ScoreVisitor& visit) {
  std::string prefix;
  score_prefix(gen, &prefix);
  std::string start = prefix;
  start.append(from);
  std::string end;
  if (to.empty()) {
    group_end(prefix, &end);
  } else {
    end = prefix;
    end.append(to);
  }
  bool malformed = false;
  auto each = [&](std::string_view raw, std::string_view value) {
    uint64_t g = 0;
    uint64_t bits = 0;
    std::string_view member;
    double score = 0;
    if (!parse_score_index_key(raw, &g, &bits, &member) || g != key_generation(gen) ||
        !decode_score_index_entry(bits, value, &score)) {
      malformed = true;
      return false;
    }
    return visit(member, score);
  };
  Status s = reverse ? engine_.scan_reverse(start, end, limit, each)
                     : engine_.scan(start, end, limit, each);
  if (!s.ok()) return s;
  if (malformed) return Status::Corruption("malformed score index entry");
  return Status::OK();
}

Result<bool> Store::get_element(uint64_t gen, std::string_view field, std::string* value) {
  std::string& ek = scratch_key();
  element_key(gen, field, &ek);
  Status s = engine_.get(ek, value);
  if (s.is_not_found()) return false;
  if (!s.ok()) return s;
  return true;
}

Status Store::scan_elements(uint64_t gen, uint32_t from, size_t limit,
                            const ElementVisitor& visit) {
  std::string start;
  element_position_key(gen, from, &start);
  return scan_elements_at(gen, start, limit, visit);
}

Status Store::scan_elements_from(uint64_t gen, std::string_view field, size_t limit,
                                 const ElementVisitor& visit) {
  std::string start;
  element_key(gen, field, &start);
  return scan_elements_at(gen, start, limit, visit);
}

Status Store::scan_elements_at(uint64_t gen, std::string_view start, size_t limit,
                               const ElementVisitor& visit) {
  std::string end;
  element_end(gen, &end);
  bool malformed = false;
  Status s = engine_.scan(start, end, limit, [&](std::string_view raw, std::string_view value) {
    uint64_t g;
    uint32_t position;
    std::string_view field;
    if (!parse_element_key(raw, &g, &position, &field) || g != key_generation(gen)) {
      malformed = true;
      return false;
    }
    return visit(field, value, position);
  });
  if (!s.ok()) return s;
  if (malformed) return Status::Corruption("malformed element key");
  return Status::OK();
}

Result<size_t> Store::reclaim(size_t max_elements) {
  std::lock_guard reclaiming(reclaim_mu_);
  size_t deleted = 0;
  while (deleted < max_elements) {
    uint64_t gen = 0;
    bool malformed = false;
    Status s = engine_.scan(std::string_view("g", 1), std::string_view("h", 1), 1,
                            [&](std::string_view raw, std::string_view) {
                              malformed = !parse_garbage_key(raw, &gen);
                              return false;
                            });
    if (!s.ok()) return s;
    if (malformed) return Status::Corruption("malformed garbage entry");
    if (gen == 0) break;  // nothing retired
    // The elements of a retired generation: nothing reads or writes them now.
    const size_t budget = max_elements - deleted;
    std::string start;
    std::string end;
    storage::WriteBatch batch;
    // The members, then (a sorted set's) the score index.
    for (int family = 0; family < 2 && batch.size() < budget; ++family) {
      if (family == 1 && !score_indexed(gen)) break;
      (family == 0 ? element_prefix : score_prefix)(gen, &start);
      group_end(start, &end);
      s = engine_.scan(start, end, budget - batch.size(),
                       [&](std::string_view raw, std::string_view) {
                         batch.del(raw);
                         return true;
                       });
      if (!s.ok()) return s;
    }
    const bool emptied = batch.size() < budget;
    deleted += batch.size();
    if (emptied) {
      std::string gk;
      garbage_key(gen, &gk);
      batch.del(gk);
    }
    if (!batch.empty()) {
      auto w = engine_.write(batch);
      if (!w.ok()) return w.status();
    }
    if (emptied) garbage_.fetch_sub(1, std::memory_order_relaxed);
    if (!emptied) break;
  }
  return deleted;
}

uint64_t Store::garbage_count() const {
  int64_t v = garbage_.load(std::memory_order_relaxed);
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}

Result<storage::Sequence> Store::flush() {
  auto guard = lock_all();
  // Replica groups' applied positions survive a FLUSHALL (a group's own
  // erases go through its log; its position must keep naming its entries).
  storage::WriteBatch positions;
  const char applied_from[1] = {kAppliedPrefix};
  const char applied_to[1] = {kAppliedPrefix + 1};
  Status kept = engine_.scan(std::string_view(applied_from, 1), std::string_view(applied_to, 1), 0,
                             [&](std::string_view key, std::string_view value) {
                               positions.put(key, value);
                               return true;
                             });
  if (!kept.ok()) return kept;
  // So is the layout's mark (check_layout).
  std::string layout;
  Status marked = engine_.get(std::string_view(&kLayoutKey, 1), &layout);
  if (marked.ok()) {
    positions.put(std::string_view(&kLayoutKey, 1), layout);
  } else if (!marked.is_not_found()) {
    return marked;
  }
  auto seq = engine_.clear();
  if (!seq.ok()) return seq;
  if (!positions.empty()) seq = engine_.write(positions);
  if (!seq.ok()) return seq;
  keys_.store(0, std::memory_order_relaxed);
  expires_.store(0, std::memory_order_relaxed);
  garbage_.store(0, std::memory_order_relaxed);
  std::lock_guard<std::mutex> counts(scope_counts_mu_);
  scope_counts_.clear();
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
    record_key(d.key, &dk);
    Status g = engine_.get(dk, &buf);
    RecordView rec;
    bool live_record = g.ok() && decode_record(buf, &rec);
    if (!g.ok() && !g.is_not_found()) return g;
    if (live_record && rec.expire_ms == d.expire_ms) {
      auto del = erase(d.key, meta_of(rec));
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

Status Store::scan(std::string_view after, std::string_view prefix, size_t limit, int64_t now,
                   const KeyVisitor& visit, std::string* last, size_t* examined,
                   std::optional<uint64_t> within_scope) {
  // Positions are record keys: the scoped family ("D", scope by scope), then
  // scope 0's ("d"). Within one scope: that scope's range of the family.
  std::string scoped_end(1, kScopedDataPrefix + 1);
  std::string scope_begin;
  const bool one_group = within_scope && *within_scope != 0;
  if (one_group) {
    scope_prefix(*within_scope, &scope_begin);
    scope_end(*within_scope, &scoped_end);
  }
  const std::string plain_begin(1, kDataPrefix);
  const std::string plain_end(1, kDataPrefix + 1);
  std::string at;
  if (after.empty()) {
    at.assign(1, kScopedDataPrefix);
  } else {
    at.assign(after);
    at.push_back('\0');  // strictly after it
  }
  if (within_scope && *within_scope == 0 && at < plain_begin) at = plain_begin;
  // After `at` is taken: a caller may resume from the *last it passes.
  if (last != nullptr) last->clear();
  if (examined != nullptr) *examined = 0;
  size_t seen = 0;
  bool stopped = false;
  bool malformed = false;
  std::string jump;
  std::string range_end;
  while (!stopped && (limit == 0 || seen < limit)) {
    const bool scoped = at < scoped_end;
    if (scoped) {
      if (at < std::string_view(&kScopedDataPrefix, 1)) at.assign(1, kScopedDataPrefix);
      if (one_group && at < scope_begin) at = scope_begin;
      range_end = scoped_end;
    } else if (one_group) {
      break;  // past the scope
    } else if (at < plain_end) {
      if (at < plain_begin) at = plain_begin;
      range_end = plain_end;
      if (!prefix.empty()) {
        // One range: the prefix's keys of scope 0.
        std::string from;
        data_key(prefix, &from);
        if (at < from) at = from;
        const std::string past = prefix_end(prefix);
        if (!past.empty()) data_key(past, &range_end);
      }
    } else {
      break;
    }
    jump.clear();
    Status s = engine_.scan(at, range_end, limit == 0 ? 0 : limit - seen,
                            [&](std::string_view raw, std::string_view value) {
                              uint64_t scope = 0;
                              std::string_view key;
                              if (!parse_data_key(raw, &scope, &key)) {
                                malformed = true;
                                return false;
                              }
                              if (!key.starts_with(prefix)) {
                                // A scope's keys outside the prefix: to the
                                // prefix in this scope, or on to the next.
                                if (key < prefix) {
                                  data_key(scope, prefix, &jump);
                                } else {
                                  scope_end(scope, &jump);
                                }
                                return false;
                              }
                              ++seen;
                              if (last != nullptr) last->assign(raw);
                              if (examined != nullptr) ++*examined;
                              RecordView rec;
                              if (!decode_record(value, &rec)) {
                                malformed = true;
                                return false;
                              }
                              if (rec.expire_ms != 0 && rec.expire_ms <= now) return true;
                              if (!visit(key, rec)) {
                                stopped = true;
                                return false;
                              }
                              return true;
                            });
    if (!s.ok()) return s;
    if (malformed) return Status::Corruption("malformed record found while scanning");
    if (!jump.empty()) {
      at = jump;
    } else if (!stopped && (limit == 0 || seen < limit)) {
      at = scoped ? scoped_end : plain_end;  // this family's keys are all read
    }
  }
  return Status::OK();
}

std::string Store::position_of(std::string_view key) const {
  std::string position;
  record_key(key, &position);
  return position;
}

Status Store::scan_scope(uint64_t scope, std::string_view start, size_t limit,
                         const KeyVisitor& visit) {
  if (scope == 0) return Status::InvalidArgument("scan_scope reads a replica group's scope, not 0");
  std::string from;
  data_key(scope, start, &from);
  std::string to;
  scope_end(scope, &to);
  bool malformed = false;
  Status s = engine_.scan(from, to, limit, [&](std::string_view raw, std::string_view value) {
    RecordView rec;
    if (!decode_record(value, &rec)) {
      malformed = true;
      return false;
    }
    return visit(raw.substr(9), rec);
  });
  if (!s.ok()) return s;
  if (malformed) return Status::Corruption("malformed record found while scanning");
  return Status::OK();
}

uint64_t Store::key_count() const {
  int64_t v = keys_.load(std::memory_order_relaxed);
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}

Store::KeyCounts Store::scope_counts(uint64_t scope) const {
  std::lock_guard<std::mutex> counts(scope_counts_mu_);
  auto it = scope_counts_.find(scope);
  if (it == scope_counts_.end()) return {};
  return KeyCounts{static_cast<uint64_t>(std::max<int64_t>(it->second.keys, 0)),
                   static_cast<uint64_t>(std::max<int64_t>(it->second.expires, 0))};
}

uint64_t Store::expire_count() const {
  int64_t v = expires_.load(std::memory_order_relaxed);
  return v < 0 ? 0 : static_cast<uint64_t>(v);
}

}  // namespace statekv::server
