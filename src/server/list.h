// List — how list commands read and change one list key, in either layout
// (record.h, docs/data-types.md): compact (one record, the elements inline,
// OBJECT ENCODING "quicklist" as Redis 7.0 answers for every list) or
// elements (a head record holding generation, count and the index of the
// first element; element i is the engine entry of field be64(head + i)).
// Indexes start at 2^63 and grow at both ends, so a push at either end is one
// element write plus the head record, whatever the size.
//
// A command opens the key under its stripe lock, changes it through a List,
// then commits writes(): one atomic effect. A compact list converts to the
// element layout past 128 elements or on an element over 64 bytes, and never
// converts back.
//
// Ownership: the Store::Writes that writes() appends view into the List,
// which must outlive the commit. Not thread-safe; the caller holds the lock.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "server/record.h"
#include "server/store.h"

namespace statekv::server {

class Transaction;  // server/transaction.h

inline constexpr uint64_t kListMaxListpackEntries = 128;
inline constexpr uint64_t kListMaxListpackValue = 64;
// The index of the first element of a new list in the element layout.
inline constexpr uint64_t kListFirstIndex = uint64_t{1} << 63;

class List {
 public:
  // rec: the key's live list record, or nullptr when absent (an empty list).
  // txn: the running EXEC's staged effects (CommandContext::txn; nullptr
  // outside one), which element reads see over the store's; it must outlive
  // the List.
  static Result<List> open(Store& store, std::string_view key, const Store::Meta& meta,
                           const RecordView* rec, const Transaction* txn);
  // The same, built in place in *out (engaged on success, empty after an
  // error): the list commands' path, which so pays no move of the List (its
  // strings, vector and map: ~350 instructions a command, two moves).
  static Status open_into(std::optional<List>* out, Store& store, std::string_view key,
                          const Store::Meta& meta, const RecordView* rec, const Transaction* txn);

  // For open_into's emplace only: the tag cannot be made outside List.
  class Token {
    friend class List;
    Token() = default;
  };
  List(Token, Store& store, std::string_view key, const Store::Meta& meta, const Transaction* txn)
      : List(store, key, meta, txn) {}

  uint64_t size() const { return count_; }
  std::string_view encoding_name() const { return "quicklist"; }

  // Element i (0-based, i < size()).
  Result<std::string> at(uint64_t i);
  // Elements [from, to] (to < size()), appended to *out.
  Status range(uint64_t from, uint64_t to, std::vector<std::string>* out);

  void push_front(std::string_view value);
  void push_back(std::string_view value);
  // Removes and returns the first / last element (the list must not be empty).
  Result<std::string> pop_front();
  Result<std::string> pop_back();
  // Replaces element i (i < size()).
  Status set(uint64_t i, std::string_view value);
  // Keeps elements [from, from + keep) only; erases the others.
  Status trim(uint64_t from, uint64_t keep);
  // Replaces elements [from, size()) by tail (LREM, LINSERT: Redis's cost is
  // O(N) for them too).
  Status replace_from(uint64_t from, const std::vector<std::string>& tail);

  bool dirty() const { return dirty_; }
  void set_expire(int64_t expire_ms) {
    expire_ms_ = expire_ms;
    dirty_ = true;
  }
  // Appends this command's effect (nothing when unchanged; the record's erase
  // when the list became empty: Redis deletes it).
  void writes(std::vector<Store::Write>* out);

 private:
  List(Store& store, std::string_view key, const Store::Meta& meta, const Transaction* txn)
      : store_(&store), txn_(txn), key_(key), meta_(meta), expire_ms_(meta.expire_ms) {}
  bool compact() const { return gen_ == 0; }
  void maybe_convert(std::string_view added);
  // be64(index): the element's field, written into out[0..8).
  static std::string_view field_of(uint64_t index, char* out);
  void put_index(uint64_t index, std::string_view value);
  void erase_index(uint64_t index);

  Store* store_;
  const Transaction* txn_;
  std::string key_;
  Store::Meta meta_;
  int64_t expire_ms_ = 0;
  uint64_t gen_ = 0;  // 0: compact
  uint64_t count_ = 0;
  uint64_t head_ = kListFirstIndex;
  bool dirty_ = false;
  // Compact only. A vector, not a deque: at most 128 short items, and a List is
  // built and moved on every list command, where a deque allocates its map and
  // a node on each construction and move.
  std::vector<std::string> items_;
  // Element layout: index -> value, or nullopt for an erase.
  std::map<uint64_t, std::optional<std::string>> pending_;
  std::string fields_;  // writes(): pending_'s fields, 8 bytes each
  std::string payload_;
  std::string value_buf_;
};

}  // namespace statekv::server
