#include "server/collection.h"

#include <algorithm>
#include <unordered_set>

#include "server/number.h"
#include "server/transaction.h"

namespace statekv::server {

Result<Collection> Collection::open(Store& store, ValueType type, std::string_view key,
                                    const Store::Meta& meta, const RecordView* rec,
                                    const Transaction* txn) {
  std::optional<Collection> c;
  if (Status s = open_into(&c, store, type, key, meta, rec, txn); !s.ok()) return s;
  return std::move(*c);
}

Status Collection::open_into(std::optional<Collection>* out, Store& store, ValueType type,
                             std::string_view key, const Store::Meta& meta, const RecordView* rec,
                             const Transaction* txn) {
  Collection& c = out->emplace(Token(), store, type, key, meta, txn);
  const auto fail = [&](std::string message) {
    out->reset();
    return Status::Corruption(std::move(message));
  };
  if (rec == nullptr) return Status::OK();
  CollectionHead head;
  if (rec->type != type || !decode_collection(rec->value, &head)) {
    return fail("malformed collection record");
  }
  c.existed_ = true;
  c.encoding_ = head.encoding;
  c.count_ = head.count;
  c.gen_ = head.gen;
  if (head.encoding == Encoding::kElements) return Status::OK();
  if (head.encoding == Encoding::kIntset && type != ValueType::kSet) {
    return fail("intset encoding on a non-set");
  }
  // Checked whole now, decoded only when a command needs more than a lookup
  // or an append (materialize).
  CompactReader r(head.entries);
  std::string_view field;
  std::string_view value;
  uint64_t n = 0;
  while (r.next(&field)) {
    if (type != ValueType::kSet && !r.next(&value)) break;
    ++n;
  }
  if (!r.ok() || n != head.count) return fail("malformed compact collection");
  c.raw_.assign(head.entries);
  c.raw_current_ = true;
  return Status::OK();
}

void Collection::materialize() {
  if (!raw_current_) return;
  raw_current_ = false;
  CompactReader r(raw_);
  std::string_view field;
  std::string_view value;
  compact_.reserve(count_);
  while (r.next(&field)) {
    if (type_ != ValueType::kSet) r.next(&value);  // checked by open()
    compact_.emplace_back(std::string(field),
                          type_ != ValueType::kSet ? std::string(value) : std::string());
  }
  raw_.clear();
  raw_.shrink_to_fit();
}

bool Collection::raw_find(std::string_view field, std::string_view* value) const {
  CompactReader r(raw_);
  std::string_view f;
  std::string_view v;
  while (r.next(&f)) {
    if (type_ != ValueType::kSet) r.next(&v);  // checked by open()
    if (f == field) {
      *value = v;
      return true;
    }
  }
  return false;
}

std::string_view Collection::encoding_name() const {
  switch (encoding_) {
    case Encoding::kCompact:
      return "listpack";
    case Encoding::kIntset:
      return "intset";
    case Encoding::kElements:
      return type_ == ValueType::kZset ? "skiplist" : "hashtable";
  }
  return "unknown";
}

Result<bool> Collection::read_element(std::string_view field, std::string* value) const {
  if (txn_ != nullptr) return txn_->get_element(*store_, gen_, field, value);
  return store_->get_element(gen_, field, value);
}

Status Collection::scan_elements(uint32_t from, size_t limit,
                                 const Store::ElementVisitor& visit) const {
  if (txn_ != nullptr) return txn_->scan_elements(*store_, gen_, from, limit, visit);
  return store_->scan_elements(gen_, from, limit, visit);
}

Status Collection::scan_score_index(std::string_view from, std::string_view to, bool reverse,
                                    size_t limit, const Store::ScoreVisitor& visit) const {
  if (txn_ != nullptr) {
    return txn_->scan_score_index(*store_, gen_, from, to, reverse, limit, visit);
  }
  return store_->scan_score_index(gen_, from, to, reverse, limit, visit);
}

size_t Collection::compact_find(std::string_view field) const {
  for (size_t i = 0; i < compact_.size(); ++i) {
    if (compact_[i].first == field) return i;
  }
  return compact_.size();
}

Result<std::optional<std::string>> Collection::get(std::string_view field) {
  if (raw_current_) {
    std::string_view v;
    if (!raw_find(field, &v)) return std::optional<std::string>();
    return std::optional<std::string>(std::string(v));
  }
  if (encoding_ != Encoding::kElements) {
    size_t i = compact_find(field);
    if (i == compact_.size()) return std::optional<std::string>();
    return std::optional<std::string>(compact_[i].second);
  }
  auto it = pending_.find(field);
  if (it != pending_.end()) return it->second;
  auto found = read_element(field, &value_buf_);
  if (!found.ok()) return found.status();
  if (!*found) return std::optional<std::string>();
  return std::optional<std::string>(value_buf_);
}

bool Collection::outgrows_compact(std::string_view field, std::string_view value,
                                  uint64_t count) const {
  if (type_ == ValueType::kHash) {
    return count > kHashMaxListpackEntries || field.size() > kHashMaxListpackValue ||
           value.size() > kHashMaxListpackValue;
  }
  if (type_ == ValueType::kZset) {
    return count > kZsetMaxListpackEntries || field.size() > kZsetMaxListpackValue;
  }
  if (encoding_ == Encoding::kIntset) return count > kSetMaxIntsetEntries;
  return count > kSetMaxListpackEntries || field.size() > kSetMaxListpackValue;
}

void Collection::convert_to_elements() {
  gen_ = store_->new_generation(type_ == ValueType::kZset ? Store::GenerationKind::kScoreIndexed
                                                          : Store::GenerationKind::kHashed);
  encoding_ = Encoding::kElements;
  for (auto& [field, value] : compact_) pending_[std::move(field)] = std::move(value);
  compact_.clear();
  compact_.shrink_to_fit();
  head_dirty_ = true;
}

Result<bool> Collection::put_after_get(std::string_view field, std::string_view value,
                                       bool existed) {
  if (encoding_ != Encoding::kElements) return put(field, value);  // no store read to save
  pending_[std::string(field)] = std::string(value);
  dirty_ = true;
  if (!existed) {
    ++count_;
    head_dirty_ = true;
  }
  return !existed;
}

Result<bool> Collection::put(std::string_view field, std::string_view value) {
  if (encoding_ == Encoding::kElements) {
    auto old = get(field);
    if (!old.ok()) return old.status();
    const bool created = !old->has_value();
    if (!created && **old == value) return false;
    return put_after_get(field, value, !created);
  }
  if (raw_current_ && encoding_ == Encoding::kCompact) {
    // A new field that keeps the listpack: appended to the encoded elements,
    // nothing decoded (HSET / SADD on a compact hash or set of up to 512).
    std::string_view old;
    const bool found = raw_find(field, &old);
    if (found && old == value) return false;  // a set's members have value ""
    if (!found && !outgrows_compact(field, value, count_ + 1)) {
      append_compact(field, &raw_);
      if (type_ != ValueType::kSet) append_compact(value, &raw_);
      ++count_;
      dirty_ = true;
      head_dirty_ = true;
      return true;
    }
  }
  materialize();
  size_t i = compact_find(field);
  if (i != compact_.size()) {
    if (compact_[i].second == value) return false;
    if (value.size() > kHashMaxListpackValue) {
      compact_[i].second = std::string(value);
      convert_to_elements();
      dirty_ = true;
      return false;
    }
    compact_[i].second = std::string(value);
    dirty_ = true;
    head_dirty_ = true;
    return false;
  }
  // A new element.
  if (count_ == 0 && type_ == ValueType::kSet) {
    // A new set starts as an intset when its first member is an integer.
    encoding_ = parse_int64(field) ? Encoding::kIntset : Encoding::kCompact;
  }
  std::optional<int64_t> number;
  if (encoding_ == Encoding::kIntset) {
    number = parse_int64(field);
    if (!number) {
      // A non-integer member: the intset becomes a listpack, or the element
      // layout when that is too large too (intset members are <= 20 bytes).
      encoding_ = Encoding::kCompact;
    }
  }
  dirty_ = true;
  head_dirty_ = true;
  ++count_;
  if (outgrows_compact(field, value, count_)) {
    compact_.emplace_back(std::string(field), std::string(value));
    convert_to_elements();
    return true;
  }
  if (encoding_ == Encoding::kIntset) {
    auto pos =
        std::lower_bound(compact_.begin(), compact_.end(), *number,
                         [](const Element& e, int64_t n) { return *parse_int64(e.first) < n; });
    compact_.emplace(pos, std::string(field), std::string());
  } else {
    compact_.emplace_back(std::string(field), std::string(value));
  }
  return true;
}

Result<bool> Collection::erase(std::string_view field) {
  if (encoding_ == Encoding::kElements) {
    auto old = get(field);
    if (!old.ok()) return old.status();
    if (!old->has_value()) return false;
    pending_[std::string(field)] = std::nullopt;
    --count_;
    dirty_ = true;
    head_dirty_ = true;
    return true;
  }
  materialize();
  size_t i = compact_find(field);
  if (i == compact_.size()) return false;
  compact_.erase(compact_.begin() + static_cast<ptrdiff_t>(i));
  --count_;
  dirty_ = true;
  head_dirty_ = true;
  return true;
}

Status Collection::for_each(const Visitor& visit) {
  materialize();
  if (encoding_ != Encoding::kElements) {
    for (const auto& [field, value] : compact_) {
      if (!visit(field, value)) break;
    }
    return Status::OK();
  }
  if (!existed_) return Status::OK();
  return scan_elements(
      0, 0, [&](std::string_view f, std::string_view v, uint32_t) { return visit(f, v); });
}

Status Collection::scan(uint64_t cursor, size_t count, const Visitor& visit, uint64_t* next) {
  *next = 0;
  // Compact: everything in one page whatever the cursor, as Redis answers
  // for a listpack or an intset.
  if (encoding_ != Encoding::kElements) return for_each(visit);
  if (!existed_ || cursor > UINT32_MAX) return Status::OK();
  size_t seen = 0;
  int64_t last = -1;
  bool more = false;
  Status s = scan_elements(static_cast<uint32_t>(cursor), 0,
                           [&](std::string_view f, std::string_view v, uint32_t position) {
                             // Stop between positions only: a cursor resumes at a position.
                             if (seen >= count && static_cast<int64_t>(position) != last) {
                               more = true;
                               return false;
                             }
                             ++seen;
                             last = position;
                             visit(f, v);
                             return true;
                           });
  if (!s.ok()) return s;
  if (more && last >= 0 && last < static_cast<int64_t>(UINT32_MAX)) *next = last + 1;
  return Status::OK();
}

Result<Collection::Element> Collection::random_one(Random& rng) {
  materialize();
  if (encoding_ != Encoding::kElements) return compact_[rng.uniform(compact_.size())];
  // Seek to a random position; the elements sharing the first position found
  // (a 32-bit hash collision) are equally likely.
  std::vector<Element> found;
  for (int pass = 0; pass < 2; ++pass) {
    const uint32_t from = pass == 0 ? static_cast<uint32_t>(rng.next_u64()) : 0;
    // An engine scan copies out up to its limit at once: two entries first
    // (the first position's element, and whether the next one shares it),
    // then, when it does, at most 16.
    for (const size_t limit : {size_t{2}, size_t{16}}) {
      found.clear();
      int64_t first = -1;
      Status s = scan_elements(from, limit, [&](std::string_view f, std::string_view v, uint32_t p) {
        if (first >= 0 && static_cast<int64_t>(p) != first) {
          return false;
        }
        first = p;
        found.emplace_back(std::string(f), std::string(v));
        return found.size() < 16;
      });
      if (!s.ok()) return s;
      if (found.size() < limit) break;  // every element at that position
    }
    if (!found.empty()) return std::move(found[rng.uniform(found.size())]);
  }
  return Status::Corruption("a collection of " + std::to_string(count_) + " elements has none");
}

Result<std::vector<Collection::Element>> Collection::random_distinct(uint64_t count, Random& rng) {
  std::vector<Element> out;
  if (count == 0) return out;
  if (encoding_ != Encoding::kElements || count * 2 > count_) {
    // Selection sampling over every element: each subset of count is equally likely.
    std::vector<Element> all;
    Status s = for_each([&](std::string_view f, std::string_view v) {
      all.emplace_back(std::string(f), std::string(v));
      return true;
    });
    if (!s.ok()) return s;
    uint64_t need = std::min<uint64_t>(count, all.size());
    for (size_t i = 0; i < all.size() && need > 0; ++i) {
      if (rng.uniform(all.size() - i) < need) {
        out.push_back(std::move(all[i]));
        --need;
      }
    }
    // Redis's order is random too: shuffle so the order says nothing.
    for (size_t i = out.size(); i > 1; --i) std::swap(out[i - 1], out[rng.uniform(i)]);
    return out;
  }
  // Few of many: random seeks until count distinct ones were found.
  std::unordered_set<std::string> seen;
  while (out.size() < count) {
    auto e = random_one(rng);
    if (!e.ok()) return e.status();
    if (seen.insert(e->first).second) out.push_back(std::move(*e));
  }
  return out;
}

void Collection::writes(std::vector<Store::Write>* out) {
  if (!dirty_) return;
  if (count_ == 0) {
    // Emptied: the key goes (its generation is retired with the record).
    if (meta_.exists) out->push_back(Store::Write{key_, meta_, true, {}, 0});
    return;
  }
  if (encoding_ == Encoding::kElements) {
    out->reserve(out->size() + pending_.size() + 1);  // the elements and the head
    for (const auto& [field, value] : pending_) {
      Store::Write w;
      w.key = key_;
      w.element = true;
      w.erase = !value.has_value();
      if (value) w.value = *value;
      w.field = field;
      w.gen = gen_;
      out->push_back(w);
    }
    if (!head_dirty_ && existed_) return;
    encode_elements_head(gen_, count_, &payload_);
  } else if (raw_current_) {
    begin_compact(encoding_, count_, &payload_);
    payload_.append(raw_);
  } else {
    begin_compact(encoding_, count_, &payload_);
    for (const auto& [field, value] : compact_) {
      append_compact(field, &payload_);
      if (type_ != ValueType::kSet) append_compact(value, &payload_);
    }
  }
  Store::Write head{key_, meta_, false, payload_, expire_ms_, type_};
  out->push_back(head);
}

}  // namespace statekv::server
