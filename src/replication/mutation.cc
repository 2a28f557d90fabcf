#include "replication/mutation.h"

#include <algorithm>
#include <optional>

namespace statekv::replication {

namespace {
// The field tags after the effects: the write's origin (WriteOrigin), always
// the last field, and before it the record effects' priors (RecordPrior).
constexpr uint8_t kOriginField = 1;
constexpr uint8_t kPriorsField = 2;

bool is_record_effect(const Effect& e) {
  return e.kind == Effect::Kind::kPut || e.kind == Effect::Kind::kErase ||
         e.kind == Effect::Kind::kPutTyped;
}
}  // namespace

size_t record_effects(const Mutation& m) {
  return static_cast<size_t>(std::count_if(m.effects.begin(), m.effects.end(), is_record_effect));
}

void Mutation::encode(Writer& w) const {
  w.svarint(time_ms);
  w.varint(effects.size());
  for (const Effect& e : effects) {
    w.u8(static_cast<uint8_t>(e.kind));
    w.bytes(e.key);
    w.bytes(e.value);
    w.svarint(e.expire_ms);
    if (e.kind == Effect::Kind::kPutTyped) {
      w.u8(e.type);
    } else if (e.kind == Effect::Kind::kPutElement || e.kind == Effect::Kind::kEraseElement) {
      w.varint(e.generation);
      w.bytes(e.field);
    }
  }
  if (!priors.empty()) {
    w.u8(kPriorsField);
    w.varint(priors.size());
    for (const RecordPrior& p : priors) {
      w.u8(p.exists ? 1 : 0);
      w.svarint(p.expire_ms);
      w.varint(p.generation);
    }
  }
  if (origin.client != 0) {
    w.u8(kOriginField);
    w.varint(origin.node);
    w.varint(origin.client);
  }
}

void append_write_origin(std::string& encoded, const WriteOrigin& origin) {
  if (origin.client == 0) return;
  Writer w;
  w.u8(kOriginField);
  w.varint(origin.node);
  w.varint(origin.client);
  encoded += std::move(w).take();
}

std::string encode_mutation(const Mutation& m) {
  Writer w;
  m.encode(w);
  return std::move(w).take();
}

Result<DecodedMutation> DecodedMutation::decode(std::string bytes) {
  DecodedMutation d;
  d.bytes_ = std::move(bytes);
  Status s = d.parse();
  if (!s.ok()) return s;
  return d;
}

DecodedMutation::DecodedMutation(DecodedMutation&& other) noexcept
    : bytes_(std::move(other.bytes_)) {
  // The bytes parsed once already; parsing the same bytes again cannot fail.
  (void)parse();
  other.mutation_ = {};
}

DecodedMutation& DecodedMutation::operator=(DecodedMutation&& other) noexcept {
  if (this != &other) {
    bytes_ = std::move(other.bytes_);
    (void)parse();
    other.mutation_ = {};
  }
  return *this;
}

Status DecodedMutation::parse() {
  mutation_ = {};
  Reader r(bytes_);
  auto time = r.svarint();
  if (!time.ok()) return time.status();
  mutation_.time_ms = *time;
  auto count = r.varint();
  if (!count.ok()) return count.status();
  // Each effect takes at least 4 bytes: never reserve more than the input allows.
  if (*count > r.remaining() / 4) return Status::Corruption("mutation effect count too large");
  for (uint64_t i = 0; i < *count; ++i) {
    Effect e;
    auto kind = r.u8();
    if (!kind.ok()) return kind.status();
    if (*kind < 1 || *kind > 6) {
      return Status::Corruption("unknown mutation effect kind " + std::to_string(*kind));
    }
    e.kind = static_cast<Effect::Kind>(*kind);
    auto key = r.bytes_view();
    if (!key.ok()) return key.status();
    auto value = r.bytes_view();
    if (!value.ok()) return value.status();
    auto expire = r.svarint();
    if (!expire.ok()) return expire.status();
    e.key = *key;
    e.value = *value;
    e.expire_ms = *expire;
    if (e.kind == Effect::Kind::kClear && (!e.key.empty() || !e.value.empty())) {
      return Status::Corruption("a clear effect carries a key");
    }
    if (e.kind == Effect::Kind::kPutTyped) {
      auto type = r.u8();
      if (!type.ok()) return type.status();
      if (*type == 0 || *type > 15) {
        return Status::Corruption("typed put of value type " + std::to_string(*type));
      }
      e.type = *type;
    } else if (e.kind == Effect::Kind::kPutElement || e.kind == Effect::Kind::kEraseElement) {
      auto gen = r.varint();
      if (!gen.ok()) return gen.status();
      auto field = r.bytes_view();
      if (!field.ok()) return field.status();
      if (*gen == 0) return Status::Corruption("element effect of generation 0");
      if (e.expire_ms != 0) return Status::Corruption("element effect with an expiry");
      if (e.kind == Effect::Kind::kEraseElement && !e.value.empty()) {
        return Status::Corruption("element erase carries a value");
      }
      e.generation = *gen;
      e.field = *field;
    }
    mutation_.effects.push_back(e);
  }
  std::optional<uint8_t> field;
  auto next_field = [&]() -> Status {
    field.reset();
    if (r.at_end()) return Status::OK();
    auto tag = r.u8();
    if (!tag.ok()) return tag.status();
    field = *tag;
    return Status::OK();
  };
  if (Status s = next_field(); !s.ok()) return s;
  if (field == kPriorsField) {
    auto n = r.varint();
    if (!n.ok()) return n.status();
    if (*n == 0 || *n != record_effects(mutation_)) {
      return Status::Corruption("mutation priors do not match its record effects");
    }
    mutation_.priors.reserve(*n);
    for (uint64_t i = 0; i < *n; ++i) {
      auto exists = r.u8();
      if (!exists.ok()) return exists.status();
      auto expire = r.svarint();
      if (!expire.ok()) return expire.status();
      auto gen = r.varint();
      if (!gen.ok()) return gen.status();
      if (*exists > 1 || (*exists == 0 && (*expire != 0 || *gen != 0))) {
        return Status::Corruption("a malformed record prior");
      }
      mutation_.priors.push_back(RecordPrior{*exists == 1, *expire, *gen});
    }
    if (Status s = next_field(); !s.ok()) return s;
  }
  if (field) {
    if (*field != kOriginField) return Status::Corruption("trailing bytes after mutation");
    auto node = r.varint();
    if (!node.ok()) return node.status();
    auto client = r.varint();
    if (!client.ok()) return client.status();
    if (*client == 0) return Status::Corruption("a write origin of client 0");
    mutation_.origin = WriteOrigin{*node, *client};
  }
  if (!r.at_end()) return Status::Corruption("trailing bytes after mutation");
  return Status::OK();
}

}  // namespace statekv::replication
