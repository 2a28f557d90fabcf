#include "server/list.h"

#include "server/transaction.h"

namespace statekv::server {

Result<List> List::open(Store& store, std::string_view key, const Store::Meta& meta,
                        const RecordView* rec, const Transaction* txn) {
  std::optional<List> l;
  if (Status s = open_into(&l, store, key, meta, rec, txn); !s.ok()) return s;
  return std::move(*l);
}

Status List::open_into(std::optional<List>* out, Store& store, std::string_view key,
                       const Store::Meta& meta, const RecordView* rec, const Transaction* txn) {
  List& l = out->emplace(Token(), store, key, meta, txn);
  const auto fail = [&](std::string message) {
    out->reset();
    return Status::Corruption(std::move(message));
  };
  if (rec == nullptr) return Status::OK();
  CollectionHead head;
  if (rec->type != ValueType::kList || !decode_collection(rec->value, &head)) {
    return fail("malformed list record");
  }
  l.count_ = head.count;
  if (head.encoding == Encoding::kElements) {
    if (head.head == 0) return fail("list head record without its first index");
    l.gen_ = head.gen;
    l.head_ = head.head;
    return Status::OK();
  }
  if (head.encoding != Encoding::kCompact) return fail("malformed list encoding");
  CompactReader r(head.entries);
  std::string_view item;
  while (r.next(&item)) l.items_.emplace_back(item);
  if (!r.ok() || l.items_.size() != head.count) return fail("malformed compact list");
  return Status::OK();
}

std::string_view List::field_of(uint64_t index, char* out) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(index & 0xff);
    index >>= 8;
  }
  return std::string_view(out, 8);
}

Result<std::string> List::at(uint64_t i) {
  if (compact()) return items_[i];
  auto it = pending_.find(head_ + i);
  if (it != pending_.end() && it->second) return *it->second;
  char buf[8];
  const std::string_view field = field_of(head_ + i, buf);
  auto found = txn_ != nullptr ? txn_->get_element(*store_, gen_, field, &value_buf_)
                               : store_->get_element(gen_, field, &value_buf_);
  if (!found.ok()) return found.status();
  if (!*found) {
    return Status::Corruption("list element " + std::to_string(i) + " of " +
                              std::to_string(count_) + " is missing");
  }
  return value_buf_;
}

Status List::range(uint64_t from, uint64_t to, std::vector<std::string>* out) {
  out->reserve(out->size() + (to - from + 1));
  if (compact() || !pending_.empty() || txn_ != nullptr) {
    // at() reads through what this command and its transaction changed.
    for (uint64_t i = from; i <= to; ++i) {
      auto v = at(i);
      if (!v.ok()) return v.status();
      out->push_back(std::move(*v));
    }
    return Status::OK();
  }
  char field[8];
  if (ordered_elements(gen_)) {
    // Nothing changed yet (LRANGE), and the elements sort in list order: one
    // seek, then the next to - from elements of the generation, each of which
    // must be the next index.
    uint64_t next = head_ + from;
    const uint64_t want = to - from + 1;
    bool gap = false;
    auto take = [&](std::string_view f, std::string_view value, uint32_t) {
      char expected[8];
      if (f != field_of(next, expected)) {
        gap = true;
        return false;
      }
      out->emplace_back(value);
      ++next;
      return true;
    };
    Status s = store_->scan_elements_from(gen_, field_of(next, field), want, take);
    if (!s.ok()) return s;
    if (gap || next != head_ + to + 1) {
      return Status::Corruption("list element " + std::to_string(next - head_) + " of " +
                                std::to_string(count_) + " is missing");
    }
    return Status::OK();
  }
  // Nothing changed yet (LRANGE): each element is read straight into its place.
  for (uint64_t i = from; i <= to; ++i) {
    std::string& v = out->emplace_back();
    auto found = store_->get_element(gen_, field_of(head_ + i, field), &v);
    if (!found.ok()) return found.status();
    if (!*found) {
      return Status::Corruption("list element " + std::to_string(i) + " of " +
                                std::to_string(count_) + " is missing");
    }
  }
  return Status::OK();
}

void List::put_index(uint64_t index, std::string_view value) {
  pending_[index] = std::string(value);
}

void List::erase_index(uint64_t index) {
  pending_[index] = std::nullopt;
}

void List::maybe_convert(std::string_view added) {
  if (!compact()) return;
  if (count_ <= kListMaxListpackEntries && added.size() <= kListMaxListpackValue) return;
  gen_ = store_->new_generation(Store::GenerationKind::kOrdered);
  head_ = kListFirstIndex;
  for (size_t i = 0; i < items_.size(); ++i) put_index(head_ + i, items_[i]);
  items_.clear();
  items_.shrink_to_fit();
}

void List::push_front(std::string_view value) {
  dirty_ = true;
  ++count_;
  if (compact()) {
    items_.emplace(items_.begin(), value);
    maybe_convert(value);
    return;
  }
  --head_;
  put_index(head_, value);
}

void List::push_back(std::string_view value) {
  dirty_ = true;
  ++count_;
  if (compact()) {
    items_.emplace_back(value);
    maybe_convert(value);
    return;
  }
  put_index(head_ + count_ - 1, value);
}

Result<std::string> List::pop_front() {
  auto v = at(0);
  if (!v.ok()) return v;
  dirty_ = true;
  --count_;
  if (compact()) {
    items_.erase(items_.begin());
  } else {
    erase_index(head_);
    ++head_;
  }
  return v;
}

Result<std::string> List::pop_back() {
  auto v = at(count_ - 1);
  if (!v.ok()) return v;
  dirty_ = true;
  --count_;
  if (compact()) {
    items_.pop_back();
  } else {
    erase_index(head_ + count_);
  }
  return v;
}

Status List::set(uint64_t i, std::string_view value) {
  dirty_ = true;
  if (compact()) {
    items_[i] = std::string(value);
    maybe_convert(value);
    return Status::OK();
  }
  put_index(head_ + i, value);
  return Status::OK();
}

Status List::trim(uint64_t from, uint64_t keep) {
  if (from == 0 && keep >= count_) return Status::OK();
  dirty_ = true;
  if (compact()) {
    items_.erase(items_.begin() + static_cast<ptrdiff_t>(from + keep), items_.end());
    items_.erase(items_.begin(), items_.begin() + static_cast<ptrdiff_t>(from));
    count_ = items_.size();
    return Status::OK();
  }
  for (uint64_t i = 0; i < from; ++i) erase_index(head_ + i);
  for (uint64_t i = from + keep; i < count_; ++i) erase_index(head_ + i);
  head_ += from;
  count_ = keep;
  return Status::OK();
}

Status List::replace_from(uint64_t from, const std::vector<std::string>& tail) {
  dirty_ = true;
  if (compact()) {
    items_.erase(items_.begin() + static_cast<ptrdiff_t>(from), items_.end());
    items_.insert(items_.end(), tail.begin(), tail.end());
    count_ = items_.size();
    for (const auto& v : tail) {
      if (!compact()) break;
      maybe_convert(v);
    }
    return Status::OK();
  }
  for (uint64_t i = from; i < count_; ++i) erase_index(head_ + i);
  for (size_t i = 0; i < tail.size(); ++i) put_index(head_ + from + i, tail[i]);
  count_ = from + tail.size();
  return Status::OK();
}

void List::writes(std::vector<Store::Write>* out) {
  if (!dirty_) return;
  if (count_ == 0) {
    // Emptied: the key goes (its generation is retired with the record).
    if (meta_.exists) out->push_back(Store::Write{key_, meta_, true, {}, 0});
    return;
  }
  if (compact()) {
    begin_compact(Encoding::kCompact, count_, &payload_);
    for (const auto& item : items_) append_compact(item, &payload_);
  } else {
    out->reserve(out->size() + pending_.size() + 1);  // the elements and the head
    fields_.resize(8 * pending_.size());              // sized once: the writes view into it
    char* field = fields_.data();
    for (const auto& [index, value] : pending_) {
      Store::Write w;
      w.key = key_;
      w.element = true;
      w.erase = !value.has_value();
      if (value) w.value = *value;
      w.field = field_of(index, field);
      field += 8;
      w.gen = gen_;
      out->push_back(w);
    }
    encode_list_head(gen_, count_, head_, &payload_);
  }
  out->push_back(Store::Write{key_, meta_, false, payload_, expire_ms_, ValueType::kList});
}

}  // namespace statekv::server
