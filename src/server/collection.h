// Collection — how hash and set commands read and change one collection key,
// whichever layout it is in (record.h): compact (one record) or elements (a
// head record plus one engine entry per element).
//
// A command opens the key under its stripe lock (lock_and_read), reads and
// changes elements through a Collection, then commits writes(): the element
// writes and the head record, one atomic effect. Compact collections convert
// to the element layout past Redis 7's thresholds (hash-max-listpack-entries
// 512 / -value 64, set-max-intset-entries 512, set-max-listpack-entries 128
// / -value 64) and never convert back, as in Redis.
//
// Costs: compact collections are at most 512 small elements, so each change
// re-encodes one bounded record (a lookup, or a new field that keeps the
// compact encoding, works on the encoded bytes without decoding them into
// strings); in the element layout get/put/erase are one
// or two engine lookups and writes, O(log n), and an unchanged count writes no
// head record at all.
//
// Ownership: a Collection copies what it needs from the record it was opened
// on; the Store::Writes that writes() appends view into the Collection, which
// must outlive the commit. Not thread-safe; the caller holds the key's lock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/random.h"
#include "core/status.h"
#include "server/record.h"
#include "server/store.h"

namespace statekv::server {

class Transaction;  // server/transaction.h

inline constexpr uint64_t kHashMaxListpackEntries = 512;
inline constexpr uint64_t kHashMaxListpackValue = 64;
inline constexpr uint64_t kSetMaxIntsetEntries = 512;
inline constexpr uint64_t kSetMaxListpackEntries = 128;
inline constexpr uint64_t kSetMaxListpackValue = 64;
inline constexpr uint64_t kZsetMaxListpackEntries = 128;
inline constexpr uint64_t kZsetMaxListpackValue = 64;

class Collection {
 public:
  // (field, value); sets: value ""; sorted sets: (member, encoded score).
  using Element = std::pair<std::string, std::string>;
  using Visitor = std::function<bool(std::string_view field, std::string_view value)>;

  // type: kHash, kSet or kZset. rec: the key's live record of that type, or nullptr
  // when the key is absent (an empty collection). meta: what the key holds
  // (Store::Write::old for the commit). txn: the running EXEC's staged effects
  // (CommandContext::txn; nullptr outside one), which element reads see over
  // the store's; it must outlive the Collection.
  static Result<Collection> open(Store& store, ValueType type, std::string_view key,
                                 const Store::Meta& meta, const RecordView* rec,
                                 const Transaction* txn);
  // The same, built in place in *out (engaged on success, empty after an
  // error): the commands' path (open_collection), which so pays no move of
  // the Collection (~250 instructions a command, two moves).
  static Status open_into(std::optional<Collection>* out, Store& store, ValueType type,
                          std::string_view key, const Store::Meta& meta, const RecordView* rec,
                          const Transaction* txn);

  // For open_into's emplace only: the tag cannot be made outside Collection.
  class Token {
    friend class Collection;
    Token() = default;
  };
  Collection(Token, Store& store, ValueType type, std::string_view key, const Store::Meta& meta,
             const Transaction* txn)
      : Collection(store, type, key, meta, txn) {}

  uint64_t size() const { return count_; }
  ValueType type() const { return type_; }
  // OBJECT ENCODING's answer: listpack, intset, hashtable or skiplist.
  std::string_view encoding_name() const;
  Encoding encoding() const { return encoding_; }
  // The element layout's generation (0 when compact).
  uint64_t generation() const { return gen_; }
  Store& store() const { return *store_; }
  // A sorted set's score index (Store::scan_score_index), with what the
  // running transaction staged.
  Status scan_score_index(std::string_view from, std::string_view to, bool reverse, size_t limit,
                          const Store::ScoreVisitor& visit) const;

  // The value of field (sets: "" for a member); nullopt when absent.
  Result<std::optional<std::string>> get(std::string_view field);
  // Sets field (sets: value must be empty). True when the field is new.
  Result<bool> put(std::string_view field, std::string_view value);
  // put() for a caller that has just looked field up with get() (nothing
  // written to it since) and knows the value differs: `existed` is whether
  // get() found it. The element layout's put() would read the store for the
  // field again (ZADD and ZINCRBY read a member's score, then write it).
  Result<bool> put_after_get(std::string_view field, std::string_view value, bool existed);
  // True when field was there.
  Result<bool> erase(std::string_view field);

  // Every element, in the layout's order (compact: as stored; elements: scan
  // order). Only before any change (reads see what was opened).
  Status for_each(const Visitor& visit);
  // Elements at scan positions >= cursor (compact: all of them, whatever the
  // cursor, as Redis does): about `count` of them, never splitting one position. *next is the
  // cursor to continue from, 0 at the end.
  Status scan(uint64_t cursor, size_t count, const Visitor& visit, uint64_t* next);
  // One element chosen at random (the collection must not be empty). In the
  // element layout the choice is one seek to a random position: every element
  // can be chosen, though not with exactly equal chances (docs/data-types.md).
  Result<Element> random_one(Random& rng);
  // count distinct elements at random (count < size()).
  Result<std::vector<Element>> random_distinct(uint64_t count, Random& rng);

  // True when a change was made since open.
  bool dirty() const { return dirty_; }
  // The collection is written without the key's TTL (the *STORE commands
  // replace their destination, TTL included).
  void drop_ttl() { set_expire(0); }
  void set_expire(int64_t expire_ms) {
    expire_ms_ = expire_ms;
    head_dirty_ = true;
  }
  // Appends this command's effect on the key (nothing when unchanged; the
  // record's erase when the collection became empty: Redis deletes it).
  void writes(std::vector<Store::Write>* out);

 private:
  Collection(Store& store, ValueType type, std::string_view key, const Store::Meta& meta,
             const Transaction* txn)
      : store_(&store),
        txn_(txn),
        type_(type),
        key_(key),
        meta_(meta),
        expire_ms_(meta.expire_ms) {}
  // The store's element reads, through txn_ when there is one.
  Result<bool> read_element(std::string_view field, std::string* value) const;
  Status scan_elements(uint32_t from, size_t limit, const Store::ElementVisitor& visit) const;
  // Moves the compact elements into the element layout under a new generation.
  void convert_to_elements();
  // Whether the compact encoding must give way after adding (field, value).
  bool outgrows_compact(std::string_view field, std::string_view value, uint64_t count) const;
  size_t compact_find(std::string_view field) const;
  // Decodes the compact elements of raw_ into compact_ (once; a no-op after).
  void materialize();
  // Finds field among raw_'s elements (raw_current_); *value views into raw_.
  bool raw_find(std::string_view field, std::string_view* value) const;

  Store* store_;
  const Transaction* txn_;
  ValueType type_;
  std::string key_;
  Store::Meta meta_;
  int64_t expire_ms_ = 0;
  Encoding encoding_ = Encoding::kCompact;
  uint64_t gen_ = 0;
  uint64_t count_ = 0;
  bool existed_ = false;  // a record was there when opened
  bool dirty_ = false;
  bool head_dirty_ = false;  // the head record must be rewritten
  // Compact: the elements as opened, still encoded in raw_ (raw_current_),
  // until a command needs them one by one: most commands on a compact hash
  // or set look one element up or append one, and decoding up to 512 of them
  // into strings and encoding them again costs more than the rest of it.
  std::string raw_;
  bool raw_current_ = false;
  std::vector<Element> compact_;  // compact, once materialized
  std::map<std::string, std::optional<std::string>, std::less<>> pending_;
  std::string payload_;  // the head record's payload, built by writes()
  std::string value_buf_;
};

}  // namespace statekv::server
