// How the keyspace is laid out in the Engine (docs/data-types.md has the whole
// picture, with the layout lists and sorted sets will use).
//
//   "d" + key                      -> record
//   "D" + be64(scope) + key        -> record   (a replica group's keys: below)
//   "e" + be64(expire_ms) + key    -> ""      (only for keys with a TTL)
//   "m" + gen(gen) + element       -> element value   (collections in the element layout)
//   "z" + gen(gen) + ord + member  -> ""      (a sorted set's score index, below)
//   "g" + be64(gen)                -> ""      (a retired generation, reclaimed lazily)
//
// A record is a 1-byte header (low nibble: value type; bit 4: has expiry), then,
// when the key has a TTL, its absolute expiry as 8 big-endian bytes of
// milliseconds since the Unix epoch, then the value bytes. Expiry times are
// absolute so that they mean the same thing after a restart; the "e" index is
// ordered by time so that active expiry is a bounded scan of the due prefix.
//
// A string's value bytes are the string. A collection's (hash, set; later list
// and sorted set) are its payload, whose first byte is its encoding:
//   compact  (kCompact, kIntset): varint count, then every element inline
//            (hash: varint len, field, varint len, value; set: varint len,
//            member). A set of integers only (kIntset) keeps them in ascending
//            numeric order, as Redis's intset; otherwise insertion order.
//   elements (kElements): varint gen, varint count. Each element is its own
//            engine entry under "m" + gen(gen): an element operation is one
//            ordered-engine lookup or write, O(log n), whatever the size.
// Element keys of hashes and sets are "m" + gen(gen) + be32(xxh32(field)) +
// field: the hash spreads elements uniformly over the prefix, so a random
// element is one seek (SPOP, SRANDMEMBER, HRANDFIELD) and a scan cursor is a
// 32-bit position (HSCAN, SSCAN). gen(gen) is the generation in a short,
// order-preserving, prefix-free form (its 16-bit space, then its 48-bit
// counter, each one byte below 248, else a length byte and big-endian bytes):
// 2 bytes for a store's first generations instead of 8, on every element
// (docs/data-types.md, "Memory"). A sorted set's marker bit (kScoreIndexBit)
// is not part of it.
//
// Generations are unique in a store (Store::new_generation) and not tied to a
// key: RENAME moves a collection by moving its record, O(1). A record that is
// erased or replaced by one of another generation retires its generation: the
// same engine write puts "g" + be64(gen), and Store::reclaim deletes the
// unreachable elements in the background (Redis's lazy free).
//
// Scopes: on a cluster node, the records of a REPLICATION consensus keyspace
// are kept under their replica group's prefix, "D" + be64(scope) (the scope is
// the group's id, never 0; server/key_scopes.h), so that one group's records
// are one contiguous range: a snapshot of the shard, a restore's compare and
// the drop of a replica read that range, not the node's whole keyspace. Every
// other key (a standalone server's, a keyspace that is not replicated) has
// scope 0 and stays under "d". Element, score-index, expiry and garbage keys
// are not scoped: a record names its generation, and the expiry index names
// the key, whose scope follows from it.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace statekv::server {

enum class ValueType : uint8_t { kString = 0, kHash = 1, kSet = 2, kList = 3, kZset = 4 };

// TYPE's answer for each type.
std::string_view type_name(ValueType type);

inline constexpr char kAppliedPrefix = 'a';
inline constexpr char kDataPrefix = 'd';
inline constexpr char kScopedDataPrefix = 'D';
// "L" -> the layout version of the records (Store::check_layout).
inline constexpr char kLayoutKey = 'L';
inline constexpr char kExpiryPrefix = 'e';
inline constexpr char kGarbagePrefix = 'g';
inline constexpr char kElementPrefix = 'm';
inline constexpr char kScorePrefix = 'z';

// A decoded record; value views into the encoded bytes it was decoded from.
struct RecordView {
  ValueType type = ValueType::kString;
  int64_t expire_ms = 0;  // 0: no expiry
  std::string_view value;
};

// Replaces *out with the encoded record.
void encode_record(std::string_view value, int64_t expire_ms, std::string* out);
void encode_record(ValueType type, std::string_view value, int64_t expire_ms, std::string* out);
// False when raw is not a well-formed record (corruption).
bool decode_record(std::string_view raw, RecordView* out);

// Replaces *out with "d" + key.
void data_key(std::string_view key, std::string* out);
// Replaces *out with the record key of `key` in `scope`: "d" + key for scope
// 0, else "D" + be64(scope) + key.
void data_key(uint64_t scope, std::string_view key, std::string* out);
// Replaces *out with "D" + be64(scope): the prefix of every record of a scope
// (not 0).
void scope_prefix(uint64_t scope, std::string* out);
// Splits a record key of either family; false when raw is not one.
bool parse_data_key(std::string_view raw, uint64_t* scope, std::string_view* key);
// Replaces *out with "e" + be64(expire_ms) + key.
void expiry_key(int64_t expire_ms, std::string_view key, std::string* out);
// Splits an "e" index key; false when malformed.
bool parse_expiry_key(std::string_view raw, int64_t* expire_ms, std::string_view* key);

// ---- collections ----

enum class Encoding : uint8_t { kCompact = 1, kIntset = 2, kElements = 3 };

// The head of a collection's payload.
struct CollectionHead {
  Encoding encoding = Encoding::kCompact;
  uint64_t gen = 0;          // kElements only
  uint64_t count = 0;        // elements
  uint64_t head = 0;         // lists in the element layout: the first element's index
  std::string_view entries;  // compact encodings: the inline elements
};
// False when payload is malformed.
bool decode_collection(std::string_view payload, CollectionHead* out);
// The generation whose elements a record owns: 0 for strings and compact
// collections (and for payloads whose generation does not parse, which own
// nothing). Reads the head up to the generation only.
uint64_t record_generation(ValueType type, std::string_view value);

// Replaces *out with the payload of a collection in the element layout.
void encode_elements_head(uint64_t gen, uint64_t count, std::string* out);
// The same for a list: then the index of its first element.
void encode_list_head(uint64_t gen, uint64_t count, uint64_t head, std::string* out);
// Compact payloads: start (replaces *out), then append each element.
void begin_compact(Encoding encoding, uint64_t count, std::string* out);
void append_compact(std::string_view bytes, std::string* out);
// Walks a compact payload's entries one length-prefixed string at a time.
class CompactReader {
 public:
  explicit CompactReader(std::string_view entries) : rest_(entries) {}
  // False at the end or on malformed bytes (then ok() is false).
  bool next(std::string_view* out);
  bool ok() const { return ok_; }

 private:
  std::string_view rest_;
  bool ok_ = true;
};

// "m" + gen(gen): the prefix of every element of a generation; byte order of
// prefixes is generation order (of key_generation), and element_prefix(gen + 1)
// sorts after every element of gen while gen's counter is below 2^46 - 1 (Store
// hands out counters below the marker bits).
void element_prefix(uint64_t gen, std::string* out);
// The 32-bit position of a hash field or set member inside its generation.
uint32_t element_hash(std::string_view field);
// The position of `field` in generation `gen`: element_hash(field), or 0 in an
// ordered generation (kOrderedElementsBit), whose elements then sort by field.
uint32_t element_position(uint64_t gen, std::string_view field);
// Replaces *out with "m" + gen(gen) + be32(element_position(gen, field)) + field.
void element_key(uint64_t gen, std::string_view field, std::string* out);
// "m" + gen(gen) + be32(position): where a scan from a cursor starts.
void element_position_key(uint64_t gen, uint32_t position, std::string* out);
// Splits an element key of a hash or set; false when malformed.
bool parse_element_key(std::string_view raw, uint64_t* gen, uint32_t* position,
                       std::string_view* field);

// ---- the score index of sorted sets ----
//
// A sorted set in the element layout whose generation carries kScoreIndexBit
// has, beside its member -> score elements, one entry per member in score
// order:
//   "z" + gen(gen) + ord(score_order_bits(score)) + member -> ""
// ord() is the 64 order bits in an order-preserving, prefix-free form of 1 to
// 10 bytes (score_order_bytes), so the member follows it unambiguously and
// byte order is (score, member) order. The score is read back from the order
// bits; the value is empty except for -0, which orders as 0 and keeps its
// exact 8 bytes there (score_index_value). The store derives these entries
// from the member element writes when it applies them (Store::apply_locked
// reads a member's old score to move its entry), so the effects replicated
// stay the element effects; reclaiming a retired generation removes both
// families. Generations without the bit (sorted sets written before the index
// existed) have no index.
//
// gen() leaves kScoreIndexBit out (key_generation): generations are unique
// without it (Store::new_generation counts one sequence for every type), so a
// sorted set's keys carry the same 2-byte generation as a hash's. Parsers
// return the generation as its keys carry it.
inline constexpr uint64_t kScoreIndexBit = uint64_t{1} << 47;
inline bool score_indexed(uint64_t gen) {
  return (gen & kScoreIndexBit) != 0;
}
// Ordered elements: a list in the element layout whose generation carries
// kOrderedElementsBit keeps its elements (fields: be64 list indexes) at position
// 0, so they sort in list order: LRANGE is one seek and a scan instead of a
// lookup per element, and pushes insert next to each other. Lists whose
// generation lacks the bit (written before it existed) keep hashed positions;
// both read the same way through element_key. Like kScoreIndexBit, the bit is
// not part of the keys (key_generation).
inline constexpr uint64_t kOrderedElementsBit = uint64_t{1} << 46;
inline bool ordered_elements(uint64_t gen) {
  return (gen & kOrderedElementsBit) != 0;
}
// The generation as element and score-index keys carry it (and parsers return it).
inline uint64_t key_generation(uint64_t gen) {
  return gen & ~(kScoreIndexBit | kOrderedElementsBit);
}
// The score index of the layout before this one: "s" + be64(gen) +
// be64(order bits) + member -> the 8-byte score, and zset element keys whose
// generation kept the bit (7 bytes longer). Nothing converts it: a store that
// holds any "s" key refuses to open (Store::check_layout).
inline constexpr char kLegacyScorePrefix = 's';
// Whether key belongs to a score index (the memory engine keeps those in its
// ordered index only: they are scanned and written, never looked up).
inline bool is_score_index_key(std::string_view key) {
  return !key.empty() && key[0] == kScorePrefix;
}
// Whether key has the shape of an ordered list's element (kOrderedElementsBit:
// position 0, an 8-byte index as field). Pushes and pops reach those at the
// list's ends, which a B-tree descent finds in cache where a hash probe of a
// large list misses it, so the memory engine keeps them in its ordered index
// only. The generation's bit is not in the key: a hash field or set member of
// 8 bytes whose 32-bit hash is 0 has the same shape and is kept there too,
// which changes where it is indexed, not what any read returns.
bool is_ordered_element_key(std::string_view key);
// The score's bits arranged so that bytewise order is numeric order: the sign
// bit flipped for positive numbers, every bit inverted for negative ones; -0
// orders as 0 (Redis compares them equal, then by member).
uint64_t score_order_bits(double score);
// The score whose order bits these are (+0 for the bits of -0 and 0); false
// when they are NaN's, which no score is.
bool score_from_order_bits(uint64_t bits, double* out);
// Appends ord(bits): 7 bits a byte from the top, each byte (group << 1) | 1
// while a nonzero group follows, the last (group << 1); trailing zero groups
// are left out (a score that needs few mantissa bits, like a small integer,
// takes fewer than 8 bytes; one with all 52 takes 10). Bytewise order of the
// forms is numeric order of bits, and none is a prefix of another.
void append_score_order(uint64_t bits, std::string* out);
// Reads an ord() form from the front of *in; false when truncated or not in
// its one canonical form.
bool get_score_order(std::string_view* in, uint64_t* bits);
// The engine-key prefix every entry of one collection shares, as a length: an
// element key's "m" + its generation, a score-index key's "z" + its generation;
// 0 for any other key, and for one whose generation is cut short. Every key
// beginning with such a prefix has the same one (the generation encodings are
// prefix-free), so the memory engine can keep a collection's entries in one
// stripe (storage::StripePrefix). The generation's bytes are measured, not
// checked (parse_element_key checks them).
size_t collection_group_length(std::string_view key);
// "z" + gen(gen): the prefix of a generation's score index.
void score_prefix(uint64_t gen, std::string* out);
// Replaces *out with "z" + gen(gen) + ord(order_bits), then appends member.
void score_index_key(uint64_t gen, uint64_t order_bits, std::string_view member, std::string* out);
// Splits a score index key; false when malformed.
bool parse_score_index_key(std::string_view raw, uint64_t* gen, uint64_t* order_bits,
                           std::string_view* member);
// Replaces *out with the value of score's index entry: empty when its order
// bits give it back exactly (every score but -0), else its 8 bytes.
void score_index_value(double score, std::string* out);
// The score of an index entry with these order bits and value; false when
// malformed (NaN bits, a value that is neither empty nor an 8-byte score of
// these order bits).
bool decode_score_index_entry(uint64_t order_bits, std::string_view value, double* out);
// A stored score (the IEEE-754 double's 8 bytes, big-endian); false when not 8 bytes.
bool decode_score_bytes(std::string_view v, double* out);

// Replaces *out with "g" + be64(gen).
void garbage_key(uint64_t gen, std::string* out);
bool parse_garbage_key(std::string_view raw, uint64_t* gen);

// A replica group's applied position (Store::AppliedPosition): "a" +
// be64(group) holding be64(index), or "r" while a snapshot is being restored
// over the group's records in pieces (Store::mark_restoring): what they hold
// then is part of one state and part of another, through no index.
void applied_key(uint64_t group, std::string* out);
void applied_value(uint64_t index, std::string* out);
void applied_restoring_value(std::string* out);
// False when raw is neither form; *restoring says which (index 0 then).
bool parse_applied_value(std::string_view raw, uint64_t* index, bool* restoring);

}  // namespace statekv::server
