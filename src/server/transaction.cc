#include "server/transaction.h"

#include <algorithm>

namespace statekv::server {

// ---- WatchTable ----

void WatchTable::watch(uint64_t watcher, std::string_view key, int64_t expire_ms) {
  std::lock_guard lock(mu_);
  auto [it, added] = by_watcher_.try_emplace(watcher);
  if (added) watchers_.fetch_add(1, std::memory_order_relaxed);
  Watcher& w = it->second;
  for (const auto& [k, ttl] : w.keys) {
    if (k == key) return;  // watched already: the first WATCH's view stands
  }
  w.keys.emplace_back(std::string(key), expire_ms);
  by_key_[std::string(key)].push_back(watcher);
}

void WatchTable::unwatch(uint64_t watcher) {
  std::lock_guard lock(mu_);
  auto it = by_watcher_.find(watcher);
  if (it == by_watcher_.end()) return;
  for (const auto& [key, ttl] : it->second.keys) {
    auto k = by_key_.find(key);
    if (k == by_key_.end()) continue;
    auto& ids = k->second;
    ids.erase(std::remove(ids.begin(), ids.end(), watcher), ids.end());
    if (ids.empty()) by_key_.erase(k);
  }
  by_watcher_.erase(it);
  watchers_.fetch_sub(1, std::memory_order_relaxed);
}

std::vector<std::string> WatchTable::keys(uint64_t watcher) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  auto it = by_watcher_.find(watcher);
  if (it == by_watcher_.end()) return out;
  for (const auto& [key, ttl] : it->second.keys) out.push_back(key);
  return out;
}

bool WatchTable::changed(uint64_t watcher, int64_t now) const {
  std::lock_guard lock(mu_);
  auto it = by_watcher_.find(watcher);
  // Unknown: its watches were lost (a routed EXEC whose WATCH went to a node
  // that restarted since). Whether its keys changed cannot be known.
  if (it == by_watcher_.end()) return true;
  if (it->second.changed) return true;
  // Unchanged keys still carry the TTL they had when watched: one that has
  // passed means the key expired meanwhile, which Redis 7 counts as a change.
  for (const auto& [key, ttl] : it->second.keys) {
    if (ttl != 0 && ttl <= now) return true;
  }
  return false;
}

void WatchTable::on_write(std::span<const std::string_view> keys) {
  std::lock_guard lock(mu_);
  for (std::string_view key : keys) {
    auto k = by_key_.find(std::string(key));
    if (k == by_key_.end()) continue;
    for (uint64_t id : k->second) by_watcher_[id].changed = true;
  }
}

void WatchTable::on_flush(const std::function<bool(std::string_view key)>& exists) {
  std::lock_guard lock(mu_);
  for (const auto& [key, ids] : by_key_) {
    if (!exists(key)) continue;
    for (uint64_t id : ids) by_watcher_[id].changed = true;
  }
}

std::vector<std::string> encode_exec(const TransactionState& t, uint64_t watcher) {
  std::vector<std::string> out;
  out.emplace_back(kExecVerb);
  out.push_back(std::to_string(watcher));
  for (const auto& args : t.queue) {
    out.push_back(std::to_string(args.size()));
    out.insert(out.end(), args.begin(), args.end());
  }
  return out;
}

// ---- Transaction ----

namespace {

// ord(score_order_bits(score)) + member: a score index entry's key after its
// generation's prefix (record.h).
void index_suffix(double score, std::string_view member, std::string* out) {
  out->clear();
  append_score_order(score_order_bits(score), out);
  out->append(member);
}

}  // namespace

void Transaction::stage(std::span<const Store::Write> writes) {
  for (const Store::Write& w : writes) {
    if (w.element) {
      stage_element(w);
      continue;
    }
    auto [it, added] = staged_.try_emplace(std::string(w.key));
    if (added) order_.push_back(it->first);
    it->second.erase = w.erase;
    it->second.value.assign(w.erase ? std::string_view() : w.value);
    it->second.expire_ms = w.erase ? 0 : w.expire_ms;
    it->second.type = w.erase ? ValueType::kString : w.type;
  }
}

void Transaction::stage_element(const Store::Write& w) {
  Generation& g = gens_[w.gen];
  const uint32_t position = element_position(w.gen, w.field);
  auto it = g.elements.find(ElementPlaceView{position, w.field});
  if (it == g.elements.end()) {
    it = g.elements.emplace(ElementPlace{position, std::string(w.field)}, StagedElement{}).first;
  }
  StagedElement& e = it->second;
  std::string suffix;
  double score = 0;
  if (score_indexed(w.gen) && e.value && decode_score_bytes(*e.value, &score)) {
    // The member's earlier staged score leaves the staged index.
    index_suffix(score, w.field, &suffix);
    g.index.erase(suffix);
  }
  e.key.assign(w.key);
  if (w.erase) {
    e.value.reset();
  } else {
    e.value.emplace(w.value);
    // A malformed score is refused by the store when the transaction is
    // committed (Store::apply_locked), as outside a transaction.
    if (score_indexed(w.gen) && decode_score_bytes(w.value, &score)) {
      index_suffix(score, w.field, &suffix);
      g.index[suffix] = Generation::Indexed{score, suffix.size() - w.field.size()};
    }
  }
}

void Transaction::stage_clear() {
  staged_.clear();
  order_.clear();
  // Every record goes, so nothing reaches the elements staged so far.
  gens_.clear();
  cleared_ = true;
}

std::optional<bool> Transaction::read(std::string_view key, int64_t now, std::string* buf,
                                      RecordView* rec) const {
  auto it = staged_.find(std::string(key));
  if (it == staged_.end()) {
    if (cleared_) return false;
    return std::nullopt;
  }
  const Staged& s = it->second;
  if (s.erase || (s.expire_ms != 0 && s.expire_ms <= now)) return false;
  // Copied: a later staging of the key must not change what the caller read.
  buf->assign(s.value);
  rec->type = s.type;
  rec->expire_ms = s.expire_ms;
  rec->value = *buf;
  return true;
}

int64_t Transaction::key_delta(uint64_t store_keys,
                               const std::function<bool(std::string_view)>& physical) const {
  int64_t delta = cleared_ ? -static_cast<int64_t>(store_keys) : 0;
  for (const std::string& key : order_) {
    const bool before = !cleared_ && physical(key);
    const bool after = !staged_.at(key).erase;
    delta += static_cast<int64_t>(after) - static_cast<int64_t>(before);
  }
  return delta;
}

Result<bool> Transaction::get_element(Store& store, uint64_t gen, std::string_view field,
                                      std::string* value) const {
  auto g = gens_.find(gen);
  if (g != gens_.end()) {
    auto it = g->second.elements.find(ElementPlaceView{element_position(gen, field), field});
    if (it != g->second.elements.end()) {
      if (!it->second.value) return false;
      value->assign(*it->second.value);
      return true;
    }
  }
  return store.get_element(gen, field, value);
}

Status Transaction::scan_elements(Store& store, uint64_t gen, uint32_t from, size_t limit,
                                  const Store::ElementVisitor& visit) const {
  auto g = gens_.find(gen);
  if (g == gens_.end()) return store.scan_elements(gen, from, limit, visit);
  const auto& elements = g->second.elements;
  // A merge of the store's elements and the staged ones, both in (position,
  // field) order; a staged element replaces (or, erased, hides) the store's.
  auto next = elements.lower_bound(ElementPlaceView{from, {}});
  size_t emitted = 0;
  bool stopped = false;
  auto emit = [&](std::string_view field, std::string_view value, uint32_t position) {
    if (limit != 0 && emitted == limit) {
      stopped = true;
      return false;
    }
    ++emitted;
    if (!visit(field, value, position)) stopped = true;
    return !stopped;
  };
  auto emit_staged = [&](auto it) {
    if (!it->second.value) return true;  // erased
    return emit(it->first.field, *it->second.value, it->first.position);
  };
  // With a limit, the store is read in pages of about that size (engines copy
  // out a page at once, and a random seek reads 16): staged erases may hide
  // any number of its entries, so a page that ends without filling the limit
  // is followed by the next one, from the last position seen (entries of that
  // position already handled are passed over).
  size_t page = limit == 0 ? 0 : limit + 16;
  uint32_t start = from;
  bool have_last = false;
  uint32_t last_position = 0;
  std::string last_field;
  while (true) {
    size_t read = 0;
    bool fresh = false;
    Status s = store.scan_elements(
        gen, start, page, [&](std::string_view field, std::string_view value, uint32_t position) {
          ++read;
          const ElementPlaceView here{position, field};
          if (have_last && !PlaceLess{}(ElementPlaceView{last_position, last_field}, here)) {
            return true;  // handled in the page before
          }
          have_last = fresh = true;
          last_position = position;
          last_field.assign(field);
          while (next != elements.end() && PlaceLess{}(next->first, here)) {
            if (!emit_staged(next++)) return false;
          }
          if (next != elements.end() && !PlaceLess{}(here, next->first)) {
            return emit_staged(next++);
          }
          return emit(field, value, position);
        });
    if (!s.ok()) return s;
    if (stopped || page == 0 || read < page) break;  // done, or the store has no more
    // A page of entries all handled before (one position shared by many: a
    // 32-bit hash collision) reads further the next time.
    if (!fresh) page *= 2;
    start = last_position;
  }
  while (!stopped && next != elements.end()) {
    if (!emit_staged(next++)) break;
  }
  return Status::OK();
}

Status Transaction::scan_score_index(Store& store, uint64_t gen, std::string_view from,
                                     std::string_view to, bool reverse, size_t limit,
                                     const Store::ScoreVisitor& visit) const {
  auto g = gens_.find(gen);
  if (g == gens_.end()) return store.scan_score_index(gen, from, to, reverse, limit, visit);
  const Generation& gen_state = g->second;
  const auto& index = gen_state.index;
  // The staged entries in [from, to), walked in the scan's direction.
  auto lo = index.lower_bound(from);
  auto hi = to.empty() ? index.end() : index.lower_bound(to);
  if (!to.empty() && from >= to) hi = lo;
  auto fwd = lo;
  auto rev = hi;  // the next one in reverse is std::prev(rev)
  auto staged_left = [&] { return reverse ? rev != lo : fwd != hi; };
  auto staged_peek = [&]() -> const std::pair<const std::string, Generation::Indexed>& {
    return reverse ? *std::prev(rev) : *fwd;
  };
  auto staged_advance = [&] { reverse ? --rev : ++fwd; };
  size_t emitted = 0;
  bool stopped = false;
  auto emit = [&](std::string_view member, double score) {
    if (limit != 0 && emitted == limit) {
      stopped = true;
      return false;
    }
    ++emitted;
    if (!visit(member, score)) stopped = true;
    return !stopped;
  };
  auto emit_staged = [&] {
    const auto& [suffix, entry] = staged_peek();
    const std::string_view member = std::string_view(suffix).substr(entry.member_at);
    staged_advance();
    return emit(member, entry.score);
  };
  // As in scan_elements, with a limit the store is read in pages: each
  // continues just past the last entry seen (index keys are unique, so the
  // bounds resume exactly).
  const size_t page = limit == 0 ? 0 : limit + 16;
  std::string lower(from);
  std::string upper(to);
  std::string here;
  while (true) {
    size_t read = 0;
    Status s = store.scan_score_index(
        gen, lower, upper, reverse, page, [&](std::string_view member, double score) {
          ++read;
          index_suffix(score, member, &here);
          if (reverse) {
            upper = here;  // exclusive: the next page ends before it
          } else {
            lower = here;
            lower.push_back('\0');  // the first key after it
          }
          // A staged member's stored entry is stale.
          if (gen_state.staged(member)) return true;
          while (staged_left() &&
                 (reverse ? staged_peek().first > here : staged_peek().first < here)) {
            if (!emit_staged()) return false;
          }
          return emit(member, score);
        });
    if (!s.ok()) return s;
    if (stopped || page == 0 || read < page) break;
  }
  while (!stopped && staged_left()) {
    if (!emit_staged()) break;
  }
  return Status::OK();
}

Result<std::vector<Store::Write>> Transaction::writes(
    Store& store, std::vector<std::string>* cleared_keys) const {
  std::vector<Store::Write> out;
  // The generations the records own once committed: those of the staged live
  // records, and (no clear staged) those of the records the transaction
  // leaves alone. An element written through a key that is not staged was
  // read through that key's stored record, so that record owns its generation.
  std::vector<uint64_t> owned;
  for (const std::string& key : order_) {
    const Staged& s = staged_.at(key);
    if (!s.erase) {
      if (uint64_t gen = record_generation(s.type, s.value); gen != 0) owned.push_back(gen);
    }
  }
  size_t elements = 0;
  for (const auto& [gen, g] : gens_) elements += g.elements.size();
  out.reserve(elements + order_.size());
  // Each generation's elements in engine order: a batch of sorted puts.
  std::vector<uint64_t> gens;
  gens.reserve(gens_.size());
  for (const auto& [gen, g] : gens_) gens.push_back(gen);
  std::sort(gens.begin(), gens.end());
  for (uint64_t gen : gens) {
    const Generation& g = gens_.at(gen);
    bool live = std::find(owned.begin(), owned.end(), gen) != owned.end();
    for (auto it = g.elements.begin(); !live && !cleared_ && it != g.elements.end(); ++it) {
      live = !staged_.contains(it->second.key);
    }
    if (!live) continue;
    for (const auto& [place, e] : g.elements) {
      Store::Write w;
      w.key = e.key;
      w.element = true;
      w.erase = !e.value.has_value();
      if (e.value) w.value = *e.value;
      w.field = place.field;
      w.gen = gen;
      out.push_back(w);
    }
  }
  std::string buf;
  for (const std::string& key : order_) {
    const Staged& s = staged_.at(key);
    RecordView rec;
    Store::Meta old;
    // now = 0: what the store physically holds, as Store::apply reads it.
    auto found = store.get_locked(key, 0, &buf, &rec, &old);
    if (!found.ok()) return found.status();
    out.push_back(Store::Write{key, old, s.erase, s.value, s.expire_ms, s.type});
  }
  if (!cleared_) return out;
  // Every record the store holds that nothing staged since the clear replaces
  // (with the generation it owns, which its erase retires).
  std::vector<Store::Meta> metas;
  cleared_keys->clear();
  Status st = store.scan({}, {}, 0, 0, [&](std::string_view key, const RecordView& r) {
    if (!staged_.contains(std::string(key))) {
      cleared_keys->emplace_back(key);
      metas.push_back(Store::meta_of(r));
    }
    return true;
  });
  if (!st.ok()) return st;
  for (size_t i = 0; i < cleared_keys->size(); ++i) {
    out.push_back(Store::Write{(*cleared_keys)[i], metas[i], true, {}, 0});
  }
  return out;
}

}  // namespace statekv::server
