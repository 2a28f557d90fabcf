// MemoryEngine — the compact in-memory storage::Engine (see engine.h for the contract).
//
// Nothing survives a restart: the engine keeps no file. It is "durable" the moment a
// write is applied (durable_sequence() == last_sequence()), because there is no
// stronger promise it could ever make; when_durable() therefore fires as soon as the
// write it names has been applied.
//
// Memory layout (the reason this engine exists; budget: a 16-byte key with a ~66-byte
// record costs well under 150 bytes of RSS, below Redis's ~189):
//   - each entry is ONE malloc allocation: varint(key length) varint(value length)
//     key bytes, value bytes. No std::string, no per-entry node beyond that.
//   - each stripe indexes the same entry pointers twice (once, in `ordered` only,
//     for the keys an OrderedOnly predicate names; see open_memory_engine below):
//       absl::flat_hash_set<Entry*>  point lookups, heterogeneous by string_view
//                                    (~9 bytes per slot, 7/16..7/8 full)
//       absl::btree_set<Entry*>      ordered scans, comparing keys bytewise
//                                    (~8 bytes per slot, B-tree nodes ~70% full)
//   - an overwrite that fits the allocation (malloc_usable_size) is done in place and
//     touches neither index; one that does not goes through realloc() and swaps the
//     pointer in both indexes without re-balancing either (the key is unchanged).
//
// Locking: `stripes` independently locked stripes; a key belongs to the stripe chosen
// by the top bits of its XXH3 hash. Each stripe has a std::shared_mutex:
//   - get() takes one stripe shared; put()/del() take one stripe exclusive;
//   - write(batch) takes every stripe the batch touches, exclusive, in ascending
//     stripe order (the global lock order), so a batch is atomic across stripes;
//   - scan() works in chunks of up to kScanChunk entries. For each chunk it takes all
//     stripes shared in ascending order, k-way merges the stripes' ordered indexes
//     from lower_bound(cursor), copies the chunk out, releases every lock, and only
//     then calls the visitor. A chunk is therefore an atomic snapshot (a batch is seen
//     whole or not at all within it), the visitor may call back into the engine, and
//     a scan of k entries costs O(stripes * log n + k * log stripes), never O(n).
//     Scans longer than one chunk are not a snapshot across chunks.
//   - with a StripePrefix (open_memory_engine below), keys that share a group prefix
//     share a stripe, and a scan whose range lies inside one group (a collection's
//     elements) locks and reads that one stripe: O(log n + k), no merge.
// There is no global lock on the hot path; the only shared word every write touches
// is the sequence counter (one atomic fetch_add, taken under the stripe lock so that
// per-key order and sequence order agree).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "storage/durability_tracker.h"
#include "storage/engine.h"

namespace statekv::storage {

// How many leading bytes of a key choose its stripe (its group); 0 = the whole key.
// Must give every key that begins with a group it returned that same length, so a
// group's keys are all in one stripe.
using StripePrefix = size_t (*)(std::string_view key);
// Whether a key lives in its stripe's ordered index only, not its hash index. The
// engine's contract is the same for such keys; get(), put() and del() find them by
// a B-tree descent (O(log n) key comparisons) instead of a hash probe, and each
// costs a hash slot less (~9 bytes a slot, 10-20 bytes an entry at the index's
// load). For keys that are written and scanned but rarely read one by one (a
// sorted set's score index: its writes descend the B-tree anyway). A key's answer
// must never change.
using OrderedOnly = bool (*)(std::string_view key);

// open_memory_engine(options) with keys grouped into stripes by `prefix` (nullptr:
// none) and the keys ordered_only says yes to (nullptr: none) kept out of the hash
// indexes.
std::unique_ptr<Engine> open_memory_engine(const MemoryEngineOptions& options, StripePrefix prefix,
                                           OrderedOnly ordered_only = nullptr);

class MemoryEngine final : public Engine {
 public:
  // Most entries a scan copies out under one round of stripe locks.
  static constexpr size_t kScanChunk = 1024;

  explicit MemoryEngine(const MemoryEngineOptions& options, StripePrefix prefix = nullptr,
                        OrderedOnly ordered_only = nullptr);
  ~MemoryEngine() override;

  std::string_view name() const override { return "memory"; }
  Status get(std::string_view key, std::string* value) override;
  Result<Sequence> put(std::string_view key, std::string_view value) override;
  Result<Sequence> del(std::string_view key) override;
  // An empty batch changes nothing and returns last_sequence().
  Result<Sequence> write(const WriteBatch& batch) override;
  Status scan(std::string_view start, std::string_view end, size_t limit,
              const ScanVisitor& visit) override;
  Status scan_reverse(std::string_view start, std::string_view end, size_t limit,
                      const ScanVisitor& visit) override;
  Result<Sequence> clear() override;

  Sequence last_sequence() const override { return sequence_.load(std::memory_order_acquire); }
  Sequence durable_sequence() const override { return last_sequence(); }
  void when_durable(Sequence seq, std::function<void()> callback) override;
  // Nothing to flush: succeeds at once.
  Status sync() override { return Status::OK(); }
  bool survives_restart() const override { return false; }
  Status persist_all() override {
    return Status::InvalidArgument("the memory engine keeps nothing across a restart");
  }
  // keys is exact; memory_bytes = entry allocations (usable size + malloc's header
  // word) + hash-index capacity + an estimate of B-tree nodes.
  EngineStats stats() const override;

 private:
  struct Stripe;
  struct ScanChunk;

  size_t stripe_of(std::string_view key) const;
  // The one stripe that holds every key in [start, end) (one group), or SIZE_MAX.
  size_t group_stripe(std::string_view start, std::string_view end) const;
  // Fills *chunk with up to `want` entries with cursor <= key < end; returns whether
  // entries beyond the chunk may exist.
  bool collect_chunk(std::string_view cursor, std::string_view end, size_t want,
                     ScanChunk* chunk) const;
  // The same in descending order: up to `want` entries with start <= key <
  // before (empty before: no upper bound), the highest first.
  bool collect_chunk_reverse(std::string_view start, std::string_view before, size_t want,
                             ScanChunk* chunk) const;
  // The same from one stripe's index (every key of the range is in it).
  bool collect_group_chunk(size_t stripe, std::string_view cursor, std::string_view end,
                           size_t want, ScanChunk* chunk) const;

  bool hashed(std::string_view key) const {
    return ordered_only_ == nullptr || !ordered_only_(key);
  }

  StripePrefix prefix_ = nullptr;
  OrderedOnly ordered_only_ = nullptr;
  unsigned stripe_bits_;
  std::unique_ptr<Stripe[]> stripes_;
  size_t stripe_count_;
  std::atomic<Sequence> sequence_{0};
  DurabilityTracker durable_;
};

}  // namespace statekv::storage
