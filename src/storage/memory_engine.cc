#include "storage/memory_engine.h"

// absl's containers without their internal assert()s: with assert() on (every
// statekv build keeps it on, CMakeLists.txt), absl's btree checks the comparator
// on every comparison of every descent (checked_compare: each key against
// itself, and each pair both ways), which made the B-tree insert a third of an
// LPUSH's CPU at -P 16 (docs/data-types.md, "Speed"). Only this file uses absl,
// with comparators of its own (anonymous namespace), so no other translation
// unit instantiates these templates differently. assert() is back on below.
#ifndef NDEBUG
#define STATEKV_ABSL_WITHOUT_ASSERTS
#define NDEBUG
#endif
#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_set.h>
#ifdef STATEKV_ABSL_WITHOUT_ASSERTS
#undef NDEBUG
#undef STATEKV_ABSL_WITHOUT_ASSERTS
#include <cassert>  // assert() on again for the code below
#endif
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/assert.h"
#include "storage/memory_entry.h"

namespace statekv::storage {

namespace {

// Hash and equality over entries, also accepting a string_view key, so lookups
// never build an entry.
struct EntryHash {
  using is_transparent = void;
  size_t operator()(std::string_view key) const { return XXH3_64bits(key.data(), key.size()); }
  size_t operator()(const char* e) const { return (*this)(entry::key_of(e)); }
};
struct EntryEq {
  using is_transparent = void;
  static std::string_view k(std::string_view key) { return key; }
  static std::string_view k(const char* e) { return entry::key_of(e); }
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return k(a) == k(b);
  }
};
// Bytewise key order, as string_view's operator< (unsigned bytes, then length),
// inlined: engine keys are short (a data key, an element key of about a dozen
// bytes) and a B-tree descent compares a dozen or more times per write, where
// a memcmp call costs more than the bytes it compares. Eight bytes at a time,
// big-endian so that integer order is byte order.
[[gnu::always_inline]] inline bool key_less(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  const char* pa = a.data();
  const char* pb = b.data();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x;
    uint64_t y;
    std::memcpy(&x, pa + i, 8);
    std::memcpy(&y, pb + i, 8);
    if (x != y) {
      if constexpr (std::endian::native == std::endian::little) {
        x = __builtin_bswap64(x);
        y = __builtin_bswap64(y);
      }
      return x < y;
    }
  }
  for (; i < n; ++i) {
    const auto x = static_cast<unsigned char>(pa[i]);
    const auto y = static_cast<unsigned char>(pb[i]);
    if (x != y) return x < y;
  }
  return a.size() < b.size();
}
struct EntryLess {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    if constexpr (std::is_same_v<A, B> && std::is_pointer_v<A>) {
      // One entry against itself: absl's btree (assert() is on in every build,
      // CMakeLists.txt) checks each entry it compares against itself, at
      // every step of a descent.
      if (a == b) return false;
    }
    return key_less(EntryEq::k(a), EntryEq::k(b));
  }
};

using HashIndex = absl::flat_hash_set<char*, EntryHash, EntryEq>;
using OrderedIndex = absl::btree_set<char*, EntryLess>;

// Replaces the pointer stored for one entry in both indexes. The new pointer holds
// the same key bytes, so it hashes and orders exactly like the old one: both
// containers' invariants hold without re-inserting (which would cost a rehash probe
// and two B-tree descents).
void swap_pointer(HashIndex::iterator hit, OrderedIndex::iterator oit, char* moved) {
  const_cast<char*&>(*hit) = moved;
  const_cast<char*&>(*oit) = moved;
}

}  // namespace

struct alignas(64) MemoryEngine::Stripe {
  mutable std::shared_mutex mu;
  HashIndex hash;          // guarded by mu
  OrderedIndex ordered;    // guarded by mu; the same pointers as hash
  size_t entry_bytes = 0;  // guarded by mu; allocator bytes held by entries
  EntryArena arena;        // guarded by mu; every entry's block
  // A position in `ordered` (an entry, or end()) where ordered-only keys
  // were last inserted or erased, while the tree has not changed shape since
  // (every other insert and erase clears `finger_valid`: absl's B-tree
  // iterators do not survive them). A list's pushes land next to the one
  // before, and its pops take the entry at the finger or the one before it:
  // checked against the neighbours (a key comparison or two), such a key is
  // found, inserted or erased there without a descent (~1,100 instructions a
  // push or pop on a large list, callgrind).
  OrderedIndex::iterator finger;  // guarded by mu
  bool finger_valid = false;      // guarded by mu

  ~Stripe() { free_all(); }

  void free_all() {
    // ordered holds every entry, hash not all. Slab blocks go with their slabs.
    for (char* e : ordered) {
      if (entry::encoded_size(e) > EntryArena::kMaxSlabBlock) entry::release(arena, e);
    }
    arena.release_all();
    hash = HashIndex();
    ordered = OrderedIndex();
    finger_valid = false;
    entry_bytes = 0;
  }

  // hashed: whether the key is in the hash index (every key but the ordered-only ones).
  void upsert(std::string_view key, std::string_view value, bool hashed) {
    if (!hashed) return upsert_ordered(key, value);
    auto hit = hash.find(key);
    if (hit == hash.end()) {
      char* e = entry::make(arena, key, value);
      hash.insert(e);
      ordered.insert(e);
      finger_valid = false;
      entry_bytes += entry::allocated_bytes(e);
      return;
    }
    char* old = *hit;
    entry_bytes -= entry::allocated_bytes(old);
    if (!entry::may_move(old, value.size())) {
      // The common overwrite: in place, neither index is touched.
      entry::replace_value(arena, old, value);
      entry_bytes += entry::allocated_bytes(old);
      return;
    }
    // Find the B-tree slot while `old` is still valid: the descent reads its key.
    auto oit = ordered.find(key);
    SKV_ASSERT(oit != ordered.end(), "memory engine indexes disagree");
    char* e = entry::replace_value(arena, old, value);
    entry_bytes += entry::allocated_bytes(e);
    swap_pointer(hit, oit, e);
  }

  // An ordered-only key: one B-tree descent finds its slot or where it goes,
  // unless the key goes right next to the finger.
  void upsert_ordered(std::string_view key, std::string_view value) {
    if (auto slot = slot_by_finger(key)) return insert_ordered(*slot, key, value);
    auto oit = ordered.lower_bound(key);
    if (oit == ordered.end() || entry::key_of(*oit) != key) return insert_ordered(oit, key, value);
    char* old = *oit;
    entry_bytes -= entry::allocated_bytes(old);
    char* e = entry::replace_value(arena, old, value);
    entry_bytes += entry::allocated_bytes(e);
    if (e != old) const_cast<char*&>(*oit) = e;  // same key bytes: same order
  }

  // A new ordered-only entry at `slot` (the first entry after its key); the
  // finger moves to it.
  void insert_ordered(OrderedIndex::iterator slot, std::string_view key, std::string_view value) {
    char* e = entry::make(arena, key, value);
    finger = ordered.insert(slot, e);
    finger_valid = true;
    entry_bytes += entry::allocated_bytes(e);
  }

  // Whether a key not in the tree goes at position `at` (between the entry
  // before it and the one at it).
  bool fits_at(OrderedIndex::iterator at, std::string_view key) {
    if (at != ordered.end() && !key_less(key, entry::key_of(*at))) return false;
    return at == ordered.begin() || key_less(entry::key_of(*std::prev(at)), key);
  }

  // The slot of a key that is not in the tree and goes at the finger or right
  // after the entry there; nullopt otherwise (a descent decides).
  std::optional<OrderedIndex::iterator> slot_by_finger(std::string_view key) {
    if (!finger_valid) return std::nullopt;
    if (fits_at(finger, key)) return finger;  // before it (LPUSH)
    if (finger != ordered.end()) {
      auto next = std::next(finger);
      if (fits_at(next, key)) return next;  // after it (RPUSH)
    }
    return std::nullopt;
  }

  // The entry of `key` when it is the one at the finger or the one before it
  // (a list's next pop from either end), nullopt otherwise.
  std::optional<OrderedIndex::iterator> find_by_finger(std::string_view key) const {
    if (!finger_valid) return std::nullopt;
    if (finger != ordered.end() && entry::key_of(*finger) == key) return finger;
    if (finger != ordered.begin()) {
      auto before = std::prev(finger);
      if (entry::key_of(*before) == key) return before;
    }
    return std::nullopt;
  }

  void erase(std::string_view key, bool hashed) {
    if (!hashed) {
      const auto near = find_by_finger(key);
      const auto oit = near ? *near : ordered.find(key);
      if (oit == ordered.end()) return;
      char* e = *oit;
      finger = ordered.erase(oit);  // the entry after it: the next pop's, or end()
      finger_valid = true;
      entry_bytes -= entry::allocated_bytes(e);
      entry::release(arena, e);
      return;
    }
    finger_valid = false;
    auto hit = hash.find(key);
    if (hit == hash.end()) return;
    char* e = *hit;
    hash.erase(hit);
    const size_t removed = ordered.erase(key);
    SKV_ASSERT(removed == 1, "memory engine indexes disagree");
    entry_bytes -= entry::allocated_bytes(e);
    entry::release(arena, e);
  }
};

// Entries copied out of the stripes under their locks, visited after release.
struct MemoryEngine::ScanChunk {
  std::string bytes;                                 // keys and values, back to back
  std::vector<std::pair<size_t, size_t>> key_value;  // (key length, value length)
  void clear() {
    bytes.clear();
    key_value.clear();
  }
};

MemoryEngine::MemoryEngine(const MemoryEngineOptions& options, StripePrefix prefix,
                           OrderedOnly ordered_only)
    : prefix_(prefix), ordered_only_(ordered_only) {
  SKV_ASSERT(options.stripes > 0 && std::has_single_bit(options.stripes),
             "stripes must be a power of two");
  stripe_count_ = options.stripes;
  stripe_bits_ = static_cast<unsigned>(std::countr_zero(options.stripes));
  stripes_ = std::make_unique<Stripe[]>(stripe_count_);
}

MemoryEngine::~MemoryEngine() = default;

size_t MemoryEngine::stripe_of(std::string_view key) const {
  if (stripe_bits_ == 0) return 0;
  size_t n = key.size();
  if (prefix_ != nullptr) {
    const size_t group = prefix_(key);
    if (group != 0 && group < n) n = group;
  }
  // Top bits: the hash index inside a stripe uses the low bits, keep them independent.
  return XXH3_64bits(key.data(), n) >> (64 - stripe_bits_);
}

size_t MemoryEngine::group_stripe(std::string_view start, std::string_view end) const {
  if (prefix_ == nullptr || end.empty()) return SIZE_MAX;
  const size_t n = prefix_(start);
  if (n == 0 || n > start.size()) return SIZE_MAX;
  // Every key in [start, end) begins with the group when end <= the group's
  // successor (the group with trailing 0xff dropped and its last byte plus one).
  std::string successor(start.substr(0, n));
  while (!successor.empty() && static_cast<unsigned char>(successor.back()) == 0xff) {
    successor.pop_back();
  }
  if (successor.empty()) return SIZE_MAX;
  successor.back() = static_cast<char>(static_cast<unsigned char>(successor.back()) + 1);
  if (end > std::string_view(successor)) return SIZE_MAX;
  return stripe_of(start);
}

Status MemoryEngine::get(std::string_view key, std::string* value) {
  const Stripe& s = stripes_[stripe_of(key)];
  std::shared_lock lock(s.mu);
  const char* e = nullptr;
  if (hashed(key)) {
    auto it = s.hash.find(key);
    if (it == s.hash.end()) return Status::NotFound();
    e = *it;
  } else if (auto near = s.find_by_finger(key)) {
    e = **near;  // a list's next pop: no descent
  } else {
    auto it = s.ordered.find(key);
    if (it == s.ordered.end()) return Status::NotFound();
    e = *it;
  }
  const std::string_view v = entry::decode(e).value;
  value->assign(v.data(), v.size());
  return Status::OK();
}

Result<Sequence> MemoryEngine::put(std::string_view key, std::string_view value) {
  Stripe& s = stripes_[stripe_of(key)];
  Sequence seq;
  {
    std::unique_lock lock(s.mu);
    s.upsert(key, value, hashed(key));
    seq = sequence_.fetch_add(1, std::memory_order_acq_rel) + 1;
  }
  durable_.advance(seq);
  return seq;
}

Result<Sequence> MemoryEngine::del(std::string_view key) {
  Stripe& s = stripes_[stripe_of(key)];
  Sequence seq;
  {
    std::unique_lock lock(s.mu);
    s.erase(key, hashed(key));
    seq = sequence_.fetch_add(1, std::memory_order_acq_rel) + 1;
  }
  durable_.advance(seq);
  return seq;
}

Result<Sequence> MemoryEngine::write(const WriteBatch& batch) {
  if (batch.empty()) return last_sequence();
  const auto& ops = batch.ops();
  // A command's batch is a few entries: keep its stripe numbers on the stack.
  constexpr size_t kSmall = 8;
  size_t small_stripe[kSmall];
  size_t small_order[kSmall];
  std::vector<size_t> big_stripe;
  std::vector<size_t> big_order;
  size_t* op_stripe = small_stripe;
  size_t* order = small_order;
  if (ops.size() > kSmall) {
    big_stripe.resize(ops.size());
    big_order.resize(ops.size());
    op_stripe = big_stripe.data();
    order = big_order.data();
  }
  for (size_t i = 0; i < ops.size(); ++i) {
    op_stripe[i] = stripe_of(ops[i].key);
    order[i] = op_stripe[i];
  }
  // Ascending stripe order is the engine-wide lock order (scan and clear use it too).
  std::sort(order, order + ops.size());
  const size_t locked = static_cast<size_t>(std::unique(order, order + ops.size()) - order);
  for (size_t i = 0; i < locked; ++i) stripes_[order[i]].mu.lock();
  for (size_t i = 0; i < ops.size(); ++i) {
    Stripe& s = stripes_[op_stripe[i]];
    const bool h = hashed(ops[i].key);
    if (ops[i].type == WriteBatch::OpType::kPut) {
      s.upsert(ops[i].key, ops[i].value, h);
    } else {
      s.erase(ops[i].key, h);
    }
  }
  const Sequence seq = sequence_.fetch_add(1, std::memory_order_acq_rel) + 1;
  for (size_t i = locked; i-- > 0;) stripes_[order[i]].mu.unlock();
  durable_.advance(seq);
  return seq;
}

bool MemoryEngine::collect_chunk(std::string_view cursor, std::string_view end, size_t want,
                                 ScanChunk* chunk) const {
  chunk->clear();
  struct Head {
    std::string_view key;
    size_t stripe;
    OrderedIndex::const_iterator it;
  };
  // Min-heap on key: std heap functions build a max-heap, so invert the order.
  auto later = [](const Head& a, const Head& b) { return a.key > b.key; };
  auto in_range = [&](std::string_view key) { return end.empty() || key < end; };

  for (size_t i = 0; i < stripe_count_; ++i) stripes_[i].mu.lock_shared();
  std::vector<Head> heap;
  heap.reserve(stripe_count_);
  for (size_t i = 0; i < stripe_count_; ++i) {
    const OrderedIndex& idx = stripes_[i].ordered;
    auto it = idx.lower_bound(cursor);
    if (it != idx.end()) {
      std::string_view key = entry::key_of(*it);
      if (in_range(key)) heap.push_back({key, i, it});
    }
  }
  std::make_heap(heap.begin(), heap.end(), later);
  while (!heap.empty() && chunk->key_value.size() < want) {
    std::pop_heap(heap.begin(), heap.end(), later);
    Head& head = heap.back();
    const entry::Decoded d = entry::decode(*head.it);
    chunk->bytes.append(d.key);
    chunk->bytes.append(d.value);
    chunk->key_value.emplace_back(d.key.size(), d.value.size());
    ++head.it;
    if (head.it != stripes_[head.stripe].ordered.end() &&
        in_range(head.key = entry::key_of(*head.it))) {
      std::push_heap(heap.begin(), heap.end(), later);
    } else {
      heap.pop_back();
    }
  }
  const bool more = !heap.empty();
  for (size_t i = stripe_count_; i-- > 0;) stripes_[i].mu.unlock_shared();
  return more;
}

bool MemoryEngine::collect_group_chunk(size_t stripe, std::string_view cursor, std::string_view end,
                                       size_t want, ScanChunk* chunk) const {
  chunk->clear();
  const Stripe& s = stripes_[stripe];
  std::shared_lock lock(s.mu);
  auto it = s.ordered.lower_bound(cursor);
  for (; it != s.ordered.end() && chunk->key_value.size() < want; ++it) {
    const entry::Decoded d = entry::decode(*it);
    if (d.key >= end) return false;
    chunk->bytes.append(d.key);
    chunk->bytes.append(d.value);
    chunk->key_value.emplace_back(d.key.size(), d.value.size());
  }
  return it != s.ordered.end() && entry::key_of(*it) < end;
}

Status MemoryEngine::scan(std::string_view start, std::string_view end, size_t limit,
                          const ScanVisitor& visit) {
  if (!end.empty() && end <= start) return Status::OK();
  size_t remaining = limit == 0 ? SIZE_MAX : limit;
  std::string cursor(start);
  ScanChunk chunk;
  const size_t group = group_stripe(start, end);
  while (remaining > 0) {
    const size_t want = std::min(remaining, kScanChunk);
    const bool more = group != SIZE_MAX ? collect_group_chunk(group, cursor, end, want, &chunk)
                                        : collect_chunk(cursor, end, want, &chunk);
    size_t offset = 0;
    std::string_view last_key;
    for (const auto& [klen, vlen] : chunk.key_value) {
      const std::string_view key(chunk.bytes.data() + offset, klen);
      const std::string_view value(chunk.bytes.data() + offset + klen, vlen);
      offset += klen + vlen;
      if (!visit(key, value)) return Status::OK();
      last_key = key;
    }
    remaining -= chunk.key_value.size();
    if (!more) break;
    // The smallest key after last_key in bytewise order is last_key + '\0'.
    cursor.assign(last_key);
    cursor.push_back('\0');
  }
  return Status::OK();
}

bool MemoryEngine::collect_chunk_reverse(std::string_view start, std::string_view before,
                                         size_t want, ScanChunk* chunk) const {
  chunk->clear();
  struct Head {
    std::string_view key;
    size_t stripe;
    OrderedIndex::const_iterator it;
  };
  // Max-heap on key: the highest of every stripe's next entry comes first.
  auto earlier = [](const Head& a, const Head& b) { return a.key < b.key; };
  auto in_range = [&](std::string_view key) { return key >= start; };

  for (size_t i = 0; i < stripe_count_; ++i) stripes_[i].mu.lock_shared();
  std::vector<Head> heap;
  heap.reserve(stripe_count_);
  for (size_t i = 0; i < stripe_count_; ++i) {
    const OrderedIndex& idx = stripes_[i].ordered;
    auto it = before.empty() ? idx.end() : idx.lower_bound(before);
    if (it == idx.begin()) continue;
    --it;
    std::string_view key = entry::key_of(*it);
    if (in_range(key)) heap.push_back({key, i, it});
  }
  std::make_heap(heap.begin(), heap.end(), earlier);
  while (!heap.empty() && chunk->key_value.size() < want) {
    std::pop_heap(heap.begin(), heap.end(), earlier);
    Head& head = heap.back();
    const entry::Decoded d = entry::decode(*head.it);
    chunk->bytes.append(d.key);
    chunk->bytes.append(d.value);
    chunk->key_value.emplace_back(d.key.size(), d.value.size());
    const OrderedIndex& idx = stripes_[head.stripe].ordered;
    if (head.it != idx.begin() && in_range(head.key = entry::key_of(*--head.it))) {
      std::push_heap(heap.begin(), heap.end(), earlier);
    } else {
      heap.pop_back();
    }
  }
  const bool more = !heap.empty();
  for (size_t i = stripe_count_; i-- > 0;) stripes_[i].mu.unlock_shared();
  return more;
}

Status MemoryEngine::scan_reverse(std::string_view start, std::string_view end, size_t limit,
                                  const ScanVisitor& visit) {
  if (!end.empty() && end <= start) return Status::OK();
  size_t remaining = limit == 0 ? SIZE_MAX : limit;
  std::string before(end);
  ScanChunk chunk;
  while (remaining > 0) {
    const bool more = collect_chunk_reverse(start, before, std::min(remaining, kScanChunk), &chunk);
    size_t offset = 0;
    std::string_view last_key;
    for (const auto& [klen, vlen] : chunk.key_value) {
      const std::string_view key(chunk.bytes.data() + offset, klen);
      const std::string_view value(chunk.bytes.data() + offset + klen, vlen);
      offset += klen + vlen;
      if (!visit(key, value)) return Status::OK();
      last_key = key;
    }
    remaining -= chunk.key_value.size();
    if (!more) break;
    // The next chunk holds the keys below the last one seen (end is exclusive).
    before.assign(last_key);
  }
  return Status::OK();
}

Result<Sequence> MemoryEngine::clear() {
  for (size_t i = 0; i < stripe_count_; ++i) stripes_[i].mu.lock();
  for (size_t i = 0; i < stripe_count_; ++i) stripes_[i].free_all();
  const Sequence seq = sequence_.fetch_add(1, std::memory_order_acq_rel) + 1;
  for (size_t i = stripe_count_; i-- > 0;) stripes_[i].mu.unlock();
  durable_.advance(seq);
  return seq;
}

void MemoryEngine::when_durable(Sequence seq, std::function<void()> callback) {
  durable_.when_durable(seq, std::move(callback));
}

EngineStats MemoryEngine::stats() const {
  EngineStats out;
  for (size_t i = 0; i < stripe_count_; ++i) {
    const Stripe& s = stripes_[i];
    std::shared_lock lock(s.mu);
    out.keys += s.ordered.size();
    out.memory_bytes += s.entry_bytes;
    // flat_hash_set: one pointer slot plus one control byte per slot of capacity.
    out.memory_bytes += s.hash.capacity() * (sizeof(char*) + 1);
    // btree_set: no public byte count; nodes of ~256 bytes hold pointers and are
    // about 70% full after random inserts, so ~1.5 pointers of space per key.
    out.memory_bytes += s.ordered.size() * sizeof(char*) * 3 / 2;
  }
  out.memory_bytes += sizeof(*this) + stripe_count_ * sizeof(Stripe);
  out.last_sequence = last_sequence();
  out.durable_sequence = durable_sequence();
  return out;
}

std::unique_ptr<Engine> open_memory_engine(const MemoryEngineOptions& options) {
  return std::make_unique<MemoryEngine>(options);
}

std::unique_ptr<Engine> open_memory_engine(const MemoryEngineOptions& options, StripePrefix prefix,
                                           OrderedOnly ordered_only) {
  return std::make_unique<MemoryEngine>(options, prefix, ordered_only);
}

}  // namespace statekv::storage
