#include "coord/shard_snapshot.h"

#include <cerrno>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <unordered_set>
#include <utility>

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

SnapshotPieces SnapshotPieces::of_bytes(std::string_view bytes) {
  SnapshotPieces p;
  p.bytes_ = bytes;
  return p;
}

Result<SnapshotPieces> SnapshotPieces::of_file(const std::filesystem::path& path) {
  SnapshotPieces p;
  p.file_ = std::fopen(path.c_str(), "rb");
  if (p.file_ == nullptr) {
    return Status::IOError("cannot open " + path.string() + ": " + std::strerror(errno));
  }
  return p;
}

SnapshotPieces::SnapshotPieces(SnapshotPieces&& other) noexcept {
  *this = std::move(other);
}

SnapshotPieces& SnapshotPieces::operator=(SnapshotPieces&& other) noexcept {
  if (this != &other) {
    if (file_ != nullptr) std::fclose(file_);
    bytes_ = other.bytes_;
    file_ = std::exchange(other.file_, nullptr);
    read_ = other.read_;
    started_ = other.started_;
    pieces_ = other.pieces_;
    done_ = other.done_;
  }
  return *this;
}

SnapshotPieces::~SnapshotPieces() {
  if (file_ != nullptr) std::fclose(file_);
}

Status SnapshotPieces::read(size_t n, std::string* out) {
  out->clear();
  if (file_ == nullptr) {
    const std::string_view rest = bytes_.substr(std::min<size_t>(read_, bytes_.size()));
    out->assign(rest.substr(0, n));
  } else {
    out->resize(n);
    const size_t got = std::fread(out->data(), 1, n, file_);
    if (got < n && std::ferror(file_)) {
      return Status::IOError(std::string("reading a staged snapshot: ") + std::strerror(errno));
    }
    out->resize(got);
  }
  read_ += out->size();
  return Status::OK();
}

Result<std::optional<uint64_t>> SnapshotPieces::read_varint() {
  uint64_t v = 0;
  std::string byte;
  for (int shift = 0; shift < 64; shift += 7) {
    if (Status s = read(1, &byte); !s.ok()) return s;
    if (byte.empty()) {
      if (shift == 0) return std::optional<uint64_t>();  // the end, between pieces
      return Status::Corruption("a shard snapshot ends inside a piece's length");
    }
    const auto b = static_cast<uint8_t>(byte[0]);
    v |= uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80u) == 0) return std::optional<uint64_t>(v);
  }
  return Status::Corruption("a shard snapshot's piece length is overlong");
}

Result<std::optional<replication::DecodedMutation>> SnapshotPieces::next() {
  using Piece = std::optional<replication::DecodedMutation>;
  if (done_) return Piece();
  std::string bytes;
  if (!started_) {
    started_ = true;
    if (Status s = read(1, &bytes); !s.ok()) return s;
    pieces_ = !bytes.empty() && bytes[0] == kShardSnapshotPieces;
    if (!pieces_) {
      // Whole: one mutation, the first byte its own.
      std::string rest;
      do {
        if (Status s = read(size_t{1} << 20, &rest); !s.ok()) return s;
        bytes += rest;
      } while (!rest.empty());
      done_ = true;
      auto whole = replication::DecodedMutation::decode(std::move(bytes));
      if (!whole.ok()) return whole.status();
      return Piece(std::move(whole).value());
    }
  }
  auto length = read_varint();
  if (!length.ok()) return length.status();
  if (!*length) {
    done_ = true;
    if (read_ == 1) return Status::Corruption("a shard snapshot of pieces without a piece");
    return Piece();
  }
  if (Status s = read(**length, &bytes); !s.ok()) return s;
  if (bytes.size() != **length) return Status::Corruption("a shard snapshot ends inside a piece");
  auto part = replication::DecodedMutation::decode(std::move(bytes));
  if (!part.ok()) return part.status();
  return Piece(std::move(part).value());
}

Result<std::vector<replication::DecodedMutation>> decode_shard_snapshot(std::string_view bytes) {
  std::vector<replication::DecodedMutation> parts;
  SnapshotPieces pieces = SnapshotPieces::of_bytes(bytes);
  for (;;) {
    auto piece = pieces.next();
    if (!piece.ok()) return piece.status();
    if (!*piece) return parts;
    parts.push_back(std::move(**piece));
  }
}

ShardRestorePlanner::ShardRestorePlanner(LocalRecordsFrom records, LocalFields fields)
    : records_(std::move(records)), fields_(std::move(fields)) {}

void ShardRestorePlanner::push(const replication::Effect& e) {
  batch_.mutation.effects.push_back(e);
  batch_.bytes += e.key.size() + e.value.size() + e.field.size();
}

Status ShardRestorePlanner::merge_local(const std::optional<std::string_view>& last,
                                        std::unordered_map<std::string_view, PieceRecord>* piece) {
  Status visited = records_(after_, [&](std::string_view key, const server::RecordView& rec) {
    if (last && key > *last) return false;
    if (piece != nullptr) {
      auto it = piece->find(key);
      if (it != piece->end()) {
        PieceRecord& r = it->second;
        r.here = server::Store::meta_of(rec);
        const replication::Effect& e = *r.effect;
        const auto type = e.kind == Kind::kPutTyped ? static_cast<server::ValueType>(e.type)
                                                    : server::ValueType::kString;
        r.unchanged = rec.type == type && rec.value == e.value && rec.expire_ms == e.expire_ms;
        return true;
      }
    }
    const std::string& name = batch_.names.emplace_back(key);
    batch_.known.emplace(name, server::Store::meta_of(rec));
    push(replication::Effect(Kind::kErase, name, std::string_view(), 0));
    ++removed_;
    return true;
  });
  if (!visited.ok()) return visited;
  if (last) {
    after_.assign(*last);
    after_.push_back('\0');  // the next key up
  }
  return Status::OK();
}

Status ShardRestorePlanner::close_collection() {
  if (!open_) return Status::OK();
  OpenCollection c = std::move(*open_);
  open_.reset();
  // A collection kept under the same generation loses the elements the
  // snapshot does not have (none of its elements in the snapshot: the
  // snapshot's record has another generation, and its put retires this one).
  if (c.fields.empty()) return Status::OK();
  const std::string& owner = batch_.names.emplace_back(c.key);
  return fields_(c.gen, [&](std::string_view field) {
    if (c.fields.contains(std::string(field))) return;
    push(replication::Effect(Kind::kEraseElement, owner, std::string_view(), 0, 0, c.gen,
                             batch_.names.emplace_back(field)));
    ++removed_;
  });
}

Status ShardRestorePlanner::add(const replication::Mutation& piece) {
  if (!time_ms_) {
    time_ms_ = piece.time_ms;
    batch_.mutation.time_ms = piece.time_ms;
  }
  // The piece's records, checked for order, then this member's up to its last.
  std::unordered_map<std::string_view, PieceRecord> records;
  std::optional<std::string_view> last;
  for (const replication::Effect& e : piece.effects) {
    if (e.kind == Kind::kPutElement) continue;
    if (e.kind != Kind::kPut && e.kind != Kind::kPutTyped) {
      return Status::Corruption("a shard snapshot holds only puts");
    }
    if ((last && e.key <= *last) || (!last && any_record_ && e.key <= last_key_)) {
      return Status::Corruption("a shard snapshot's records out of key order, or one twice");
    }
    last = e.key;
    records.emplace(e.key, PieceRecord{&e, server::Store::Meta{}});
  }
  if (last) {
    if (Status s = merge_local(last, &records); !s.ok()) return s;
    last_key_.assign(*last);
    any_record_ = true;
  }
  for (const replication::Effect& e : piece.effects) {
    ++effects_;
    if (e.kind == Kind::kPutElement) {
      if (open_ && e.generation == open_->gen && e.key == open_->key) {
        open_->fields.emplace(e.field);
      }
      push(e);
      continue;
    }
    if (Status s = close_collection(); !s.ok()) return s;
    const PieceRecord& r = records.at(e.key);
    batch_.known.emplace(e.key, r.here);  // none here, unless the merge found it
    if (r.unchanged) {
      ++unchanged_;
    } else {
      push(e);
    }
    if (r.here.gen != 0) {
      open_ = OpenCollection{.key = std::string(e.key), .gen = r.here.gen, .fields = {}};
    }
  }
  return Status::OK();
}

Status ShardRestorePlanner::finish() {
  if (Status s = close_collection(); !s.ok()) return s;
  return merge_local(std::nullopt, nullptr);
}

ShardRestorePlanner::Batch ShardRestorePlanner::take() {
  Batch out = std::move(batch_);
  batch_ = Batch{};
  batch_.mutation.time_ms = time_ms_.value_or(0);
  return out;
}

}  // namespace statekv::coord
