#include "coord/shard_snapshot.h"

#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "replication/codec.h"
#include "server/key_page.h"
#include "server/record.h"

namespace statekv::coord {

namespace {

using Kind = replication::Effect::Kind;

// Engine entries read per scan: a scan holds the view's iterator open for
// this many, then the reader decides whether the piece is full.
constexpr size_t kEntriesPerScan = 256;

}  // namespace

ShardSnapshotReader::ShardSnapshotReader(std::unique_ptr<storage::EngineView> view, uint64_t scope)
    : view_(std::move(view)) {
  server::scope_prefix(scope, &cursor_);
  data_end_ = server::prefix_end(cursor_);
}

Status ShardSnapshotReader::read_records(size_t budget, replication::Mutation* m,
                                         std::deque<std::string>* held, size_t* bytes) {
  size_t seen = 0;
  bool malformed = false;
  Status s = view_->scan(cursor_, data_end_, budget, [&](std::string_view raw, std::string_view v) {
    ++seen;
    cursor_.assign(raw);
    cursor_.push_back('\0');  // the next key up
    uint64_t scope = 0;
    std::string_view key;
    server::RecordView rec;
    if (!server::parse_data_key(raw, &scope, &key)) {
      malformed = true;
      return false;
    }
    if (!server::decode_record(v, &rec)) {
      malformed = true;
      return false;
    }
    const std::string& k = held->emplace_back(key);
    const std::string& value = held->emplace_back(rec.value);
    m->effects.push_back(rec.type == server::ValueType::kString
                             ? replication::Effect(Kind::kPut, k, value, rec.expire_ms)
                             : replication::Effect(Kind::kPutTyped, k, value, rec.expire_ms,
                                                   static_cast<uint8_t>(rec.type)));
    *bytes += k.size() + value.size() + 16;
    const uint64_t gen = server::record_generation(rec.type, rec.value);
    if (gen == 0) return true;
    // Its elements next, before any other record.
    collection_key_ = k;
    collection_gen_ = gen;
    server::element_position_key(gen, 0, &element_cursor_);
    std::string prefix;
    server::element_prefix(gen, &prefix);
    element_end_ = server::prefix_end(prefix);
    return false;
  });
  if (!s.ok()) return s;
  if (malformed) return Status::Corruption("malformed record in a shard snapshot's read");
  if (seen == 0) done_ = true;
  return Status::OK();
}

Status ShardSnapshotReader::read_elements(size_t budget, replication::Mutation* m,
                                          std::deque<std::string>* held, size_t* bytes) {
  size_t seen = 0;
  bool malformed = false;
  const std::string& owner = held->emplace_back(collection_key_);
  Status s = view_->scan(element_cursor_, element_end_, budget,
                         [&](std::string_view raw, std::string_view v) {
                           ++seen;
                           element_cursor_.assign(raw);
                           element_cursor_.push_back('\0');
                           uint64_t gen = 0;
                           uint32_t position = 0;
                           std::string_view field;
                           if (!server::parse_element_key(raw, &gen, &position, &field)) {
                             malformed = true;
                             return false;
                           }
                           const std::string& f = held->emplace_back(field);
                           const std::string& value = held->emplace_back(v);
                           m->effects.emplace_back(Kind::kPutElement, owner, value, 0,
                                                   0, collection_gen_, f);
                           *bytes += f.size() + value.size() + 16;
                           return true;
                         });
  if (!s.ok()) return s;
  if (malformed) return Status::Corruption("malformed element in a shard snapshot's read");
  if (seen < budget) collection_gen_ = 0;  // all of them read
  return Status::OK();
}

Result<std::string> ShardSnapshotReader::next(size_t max_bytes) {
  if (done_ && collection_gen_ == 0) return std::string();
  replication::Mutation m;
  std::deque<std::string> held;  // stable addresses: the effects view these strings
  size_t bytes = 0;
  while (bytes < max_bytes && !done_) {
    Status s = collection_gen_ != 0 ? read_elements(kEntriesPerScan, &m, &held, &bytes)
                                    : read_records(kEntriesPerScan, &m, &held, &bytes);
    if (!s.ok()) return s;
  }
  replication::Writer w;
  if (!started_) w.u8(static_cast<uint8_t>(kShardSnapshotPieces));
  started_ = true;
  // An empty shard is one empty piece; after the last one, nothing.
  w.bytes(replication::encode_mutation(m));
  return std::move(w).take();
}

Result<std::vector<replication::DecodedMutation>> decode_shard_snapshot(std::string_view bytes) {
  std::vector<replication::DecodedMutation> parts;
  if (bytes.empty() || bytes[0] != kShardSnapshotPieces) {
    auto whole = replication::DecodedMutation::decode(std::string(bytes));
    if (!whole.ok()) return whole.status();
    parts.push_back(std::move(whole).value());
    return parts;
  }
  replication::Reader r(bytes.substr(1));
  while (!r.at_end()) {
    auto piece = r.bytes_view();
    if (!piece.ok()) return piece.status();
    auto part = replication::DecodedMutation::decode(std::string(*piece));
    if (!part.ok()) return part.status();
    parts.push_back(std::move(part).value());
  }
  if (parts.empty()) return Status::Corruption("a shard snapshot of pieces without a piece");
  return parts;
}

Result<ShardRestore> plan_shard_restore(const std::vector<replication::DecodedMutation>& parts,
                                        const LocalRecords& records, const LocalFields& fields) {
  using Kind = replication::Effect::Kind;
  ShardRestore plan;
  // The snapshot's records by key (with what this member holds of each, and
  // whether it is the same), in snapshot order; its elements' fields by
  // generation. Sized first: a shard has 10^5 records and more.
  struct Record {
    const replication::Effect* effect;
    server::Store::Meta* here;  // in plan.known (its elements stay put)
    bool unchanged = false;
  };
  size_t record_count = 0;
  for (const auto& part : parts) {
    for (const replication::Effect& e : part.mutation().effects) {
      record_count += e.kind != Kind::kPutElement;
    }
  }
  std::vector<Record> in_order;
  in_order.reserve(record_count);
  std::unordered_map<std::string_view, size_t> by_key;
  by_key.reserve(record_count);
  plan.known.reserve(record_count);
  std::unordered_map<uint64_t, std::unordered_set<std::string_view>> snapshot_fields;
  for (const auto& part : parts) {
    for (const replication::Effect& e : part.mutation().effects) {
      ++plan.effects;
      if (e.kind == Kind::kPutElement) {
        snapshot_fields[e.generation].insert(e.field);
      } else if (e.kind == Kind::kPut || e.kind == Kind::kPutTyped) {
        if (!by_key.emplace(e.key, in_order.size()).second) {
          return Status::Corruption("a shard snapshot holds a record twice");
        }
        // None here, unless the scan below finds it.
        in_order.push_back(Record{&e, &plan.known.emplace(e.key, server::Store::Meta{}).first->second});
      } else {
        return Status::Corruption("a shard snapshot holds only puts");
      }
    }
  }
  std::vector<replication::Effect> erases;
  Status fields_read = Status::OK();
  Status visited = records([&](std::string_view key, const server::RecordView& rec) {
    auto it = by_key.find(key);
    if (it == by_key.end()) {
      const std::string& name = plan.names.emplace_back(key);
      plan.known.emplace(name, server::Store::meta_of(rec));
      erases.emplace_back(Kind::kErase, name, std::string_view(), 0);
      return;
    }
    Record& r = in_order[it->second];
    *r.here = server::Store::meta_of(rec);
    const replication::Effect& e = *r.effect;
    const auto type = e.kind == Kind::kPutTyped ? static_cast<server::ValueType>(e.type)
                                                : server::ValueType::kString;
    r.unchanged = rec.type == type && rec.value == e.value && rec.expire_ms == e.expire_ms;
    plan.unchanged += r.unchanged;
    // A collection kept under the same generation loses the elements the
    // snapshot does not have.
    const uint64_t gen = r.here->gen;
    auto f = snapshot_fields.find(gen);
    if (gen == 0 || f == snapshot_fields.end() || !fields_read.ok()) return;
    const std::string& owner = plan.names.emplace_back(key);
    fields_read = fields(gen, [&](std::string_view field) {
      if (f->second.contains(field)) return;
      erases.emplace_back(Kind::kEraseElement, owner, std::string_view(), 0, 0, gen,
                          plan.names.emplace_back(field));
    });
  });
  if (!visited.ok()) return visited;
  if (!fields_read.ok()) return fields_read;
  plan.removed = erases.size();
  plan.mutation.time_ms = parts.empty() ? 0 : parts.front().mutation().time_ms;
  plan.mutation.effects = std::move(erases);
  plan.mutation.effects.reserve(plan.effects - plan.unchanged + plan.removed);
  size_t record = 0;
  for (const auto& part : parts) {
    for (const replication::Effect& e : part.mutation().effects) {
      if (e.kind != Kind::kPutElement && in_order[record++].unchanged) continue;
      plan.mutation.effects.push_back(e);
    }
  }
  return plan;
}

}  // namespace statekv::coord
