// Mutation — the effect of one command, as a replica group orders and applies it.
//
// DESIGN.md, "Effects, not commands": the member that executes a command (a
// raft leader, a primary, a chain's head, a quorum write's coordinator)
// evaluates it once against applied state and proposes its effect. Replicas
// never re-run commands, so time and randomness are decided once, and every
// command of every data type replicates the same way.
//
// A Mutation is that effect: a list of record puts and erases (or one clear of
// the whole store), with absolute expiry times, and the executing member's
// clock when it decided them. A collection in the element layout (hashes and
// sets past their compact size: server/record.h) changes by element effects,
// so that changing one element of a million costs one element's bytes. Protocols see it only as
// bytes (encode/decode); they never see Redis commands or the engine. The shard store
// (server/store.h) applies it.
//
// Ownership: a Mutation holds views. One built by an executor views the
// command's arguments and its read buffer, and must be applied or encoded
// before they change; one decoded from bytes views those bytes
// (DecodedMutation keeps them alive).
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "replication/codec.h"

namespace statekv::replication {

struct Effect {
  enum class Kind : uint8_t {
    kPut = 1,    // key now holds value, expiring at expire_ms (0: never)
    kErase = 2,  // key is gone (erasing an absent key is a no-op)
    kClear = 3,  // every key is gone (FLUSHALL); key and value are empty
    // key now holds a record of value type `type` (not a string: 1..15)
    // whose payload is value, expiring at expire_ms.
    kPutTyped = 4,
    // element `field` of generation `generation` (owned by key's record) now
    // holds value; expire_ms is 0.
    kPutElement = 5,
    // element `field` of generation `generation` is gone; value is empty.
    kEraseElement = 6,
  };
  Effect() = default;
  Effect(Kind kind_, std::string_view key_, std::string_view value_, int64_t expire_ms_,
         uint8_t type_ = 0, uint64_t generation_ = 0, std::string_view field_ = {})
      : kind(kind_),
        key(key_),
        value(value_),
        expire_ms(expire_ms_),
        type(type_),
        generation(generation_),
        field(field_) {}

  Kind kind = Kind::kPut;
  std::string_view key;
  std::string_view value;   // opaque to protocols: the store's record value
  int64_t expire_ms = 0;    // absolute, milliseconds since the Unix epoch
  uint8_t type = 0;         // kPutTyped: the record's value type
  uint64_t generation = 0;  // element kinds: nonzero
  std::string_view field;   // element kinds

  bool operator==(const Effect&) const = default;
};

// Who asked for a write, when a tracking client did (CLIENT TRACKING, for its
// NOLOOP: a client that opts out of hearing of its own writes): the client's id
// on the node it is connected to. Every member applying the write tells the
// trackers it knows; the writer's own node leaves this client out.
struct WriteOrigin {
  uint64_t node = 0;    // the node the client is connected to
  uint64_t client = 0;  // its client id there; 0: no tracking client wrote it
  bool operator==(const WriteOrigin&) const = default;
};

// What the key of a record effect (kPut, kErase, kPutTyped) held just before
// the mutation: whether it had a record (expired ones too), its expiry and the
// element generation the record owned (0: none). The member that evaluated
// the command read it under the key's latch from the state every member
// holds before applying the mutation (replicas apply the same log in the same
// order), so members apply it without reading each key again: the store needs
// it for its key count, its expiry index and the collections a write retires
// (server/store.h, Store::apply). A read of a key in a RocksDB memtable costs
// a skip-list descent, the largest part of applying a write (docs/replication.md).
struct RecordPrior {
  bool exists = false;
  int64_t expire_ms = 0;
  uint64_t generation = 0;
  bool operator==(const RecordPrior&) const = default;
};

struct Mutation {
  // The executing member's clock (Unix ms) when it evaluated the command.
  // Replicas do not read their own clock to apply it.
  int64_t time_ms = 0;
  // Applied in order, atomically: a reader or a crash sees all or none.
  std::vector<Effect> effects;
  // One per record effect, in the effects' order; empty when not known (the
  // store then reads each key).
  std::vector<RecordPrior> priors;
  // Not part of the effect: who to leave out when telling trackers of it.
  WriteOrigin origin;

  bool operator==(const Mutation&) const = default;

  // Field encoding inside a codec envelope or a log record:
  //   svarint time_ms, varint count, then per effect:
  //   u8 kind, bytes key, bytes value, svarint expire_ms,
  //   then for kPutTyped: u8 type; for element kinds: varint generation, bytes field;
  //   then, only when priors is not empty: u8 2, varint count, then per prior:
  //   u8 exists (0 or 1), svarint expire_ms, varint generation;
  //   then, only when origin.client != 0: u8 1, varint origin.node, varint origin.client
  // (kinds 1-3 encode exactly as before the element kinds existed, and a
  // mutation without priors or an origin exactly as before they existed).
  void encode(Writer& w) const;
};

// How many of m's effects are record effects (each has a prior when m has priors).
size_t record_effects(const Mutation& m);

// Appends `origin` to the bytes of an encoded Mutation that has none: the same
// bytes as encoding it with `origin` set (the origin is the last field). No-op
// for origin.client == 0.
void append_write_origin(std::string& encoded, const WriteOrigin& origin);

// A Mutation decoded from bytes it owns, so its views stay valid. Movable:
// moving a std::string may move its buffer (or copy a small one), so the
// views are rebuilt on every move.
class DecodedMutation {
 public:
  // Decodes bytes produced by encode_mutation. Corruption on truncated,
  // garbled or trailing bytes, an unknown effect kind, a clear effect that
  // carries a key, a typed put of type 0 or over 15, an element effect with
  // generation 0 or an expiry, or an element erase that carries a value,
  // priors not one per record effect (or an absent key's with an expiry or a
  // generation), or an origin of client 0 or an unknown trailing field.
  static Result<DecodedMutation> decode(std::string bytes);

  DecodedMutation(DecodedMutation&& other) noexcept;
  DecodedMutation& operator=(DecodedMutation&& other) noexcept;
  DecodedMutation(const DecodedMutation&) = delete;
  DecodedMutation& operator=(const DecodedMutation&) = delete;

  const Mutation& mutation() const { return mutation_; }
  const std::string& bytes() const { return bytes_; }

 private:
  DecodedMutation() = default;
  Status parse();

  std::string bytes_;
  Mutation mutation_;
};

// The bytes of one mutation (no codec envelope: a log record or a message
// field carries them).
std::string encode_mutation(const Mutation& m);

}  // namespace statekv::replication
