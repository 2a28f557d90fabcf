// A replica group's shard as a snapshot (coord/replica_groups.cc): its records
// and the elements of its large collections, as put effects.
//
// Two forms, both restored by decode_shard_snapshot:
//   - whole: one encoded Mutation of every effect (StateMachine::snapshot(),
//     built on the data loop at once; the memory engine's, which has no read
//     views, and what builds before the pieces wrote);
//   - pieces: kShardSnapshotPieces, then pieces of varint(length) + encoded
//     Mutation, read a piece at a time by ShardSnapshotReader from an engine
//     view (RocksDB), so a leader sending its shard to a follower holds a
//     chunk of it at a time, however large the shard.
// A whole snapshot's first byte is its mutation's time (0, one byte 0x00), so
// the forms never look alike.
#pragma once

#include <cstdint>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/status.h"
#include "replication/mutation.h"
#include "replication/state_machine.h"
#include "server/record.h"
#include "server/store.h"
#include "storage/engine.h"

namespace statekv::coord {

inline constexpr char kShardSnapshotPieces = 0x01;

// Reads a shard's records from `view`: every record of its replica group's
// scope (server/record.h, "Scopes": one range of the engine), with all of a
// collection's elements right after its record (a large one over several
// pieces). Expired records too: they are state until their erase is applied.
class ShardSnapshotReader final : public replication::SnapshotReader {
 public:
  ShardSnapshotReader(std::unique_ptr<storage::EngineView> view, uint64_t scope);
  Result<std::string> next(size_t max_bytes) override;

 private:
  // Add the effects of up to `budget` engine entries to *m (their strings
  // kept in *held, their size counted in *bytes): records, or the elements of
  // the collection being read. The end of the records sets done_.
  Status read_records(size_t budget, replication::Mutation* m, std::deque<std::string>* held,
                      size_t* bytes);
  Status read_elements(size_t budget, replication::Mutation* m, std::deque<std::string>* held,
                       size_t* bytes);

  std::unique_ptr<storage::EngineView> view_;
  std::string cursor_;    // the next record key ("D" + be64(scope) + key) to read from
  std::string data_end_;  // past the scope's last record key
  // A collection whose elements are being read: its key, generation and the
  // next element key.
  std::string collection_key_;
  uint64_t collection_gen_ = 0;
  std::string element_cursor_;
  std::string element_end_;
  bool started_ = false;
  bool done_ = false;
};

// The pieces of a snapshot of either form, one at a time (a whole snapshot is
// one piece): from bytes in memory, or from a file (a follower's staged
// snapshot: StateMachine::open_snapshot_sink), read as it goes.
class SnapshotPieces {
 public:
  // Views `bytes`, which must outlive it.
  static SnapshotPieces of_bytes(std::string_view bytes);
  // IOError when the file cannot be opened.
  static Result<SnapshotPieces> of_file(const std::filesystem::path& path);
  SnapshotPieces(SnapshotPieces&&) noexcept;
  SnapshotPieces& operator=(SnapshotPieces&&) noexcept;
  ~SnapshotPieces();

  // The next piece, or nullopt after the last; Corruption on bytes neither
  // form makes (a snapshot of pieces without one included), IOError when the
  // file cannot be read.
  Result<std::optional<replication::DecodedMutation>> next();
  // Bytes read so far.
  uint64_t bytes_read() const { return read_; }
  bool from_file() const { return file_ != nullptr; }

 private:
  SnapshotPieces() = default;
  // The next n bytes (fewer at the end) into *out.
  Status read(size_t n, std::string* out);
  Result<std::optional<uint64_t>> read_varint();

  std::string_view bytes_;     // of_bytes
  std::FILE* file_ = nullptr;  // of_file
  uint64_t read_ = 0;
  bool started_ = false, pieces_ = false, done_ = false;
};

// The mutations of a snapshot of either form; Corruption on bytes neither
// form makes. The effects view into the returned mutations' bytes.
Result<std::vector<replication::DecodedMutation>> decode_shard_snapshot(std::string_view bytes);

// Visits this member's records of the shard in key order from key `from`
// (inclusive) on, until visit returns false; an error ends the visit.
using LocalRecordsFrom = std::function<Status(
    std::string_view from,
    const std::function<bool(std::string_view key, const server::RecordView& rec)>&)>;
// Visits the fields of this member's elements of generation `gen`.
using LocalFields =
    std::function<Status(uint64_t gen, const std::function<void(std::string_view field)>&)>;

// What restoring a snapshot writes on a member that may hold part of the
// shard already (a restarted one): erases of the records it holds that the
// snapshot does not (and of a kept collection's elements the snapshot lacks),
// then the snapshot's effects, less the records it holds exactly as the
// snapshot has them (a member back after a short absence holds most).
//
// Planned a piece at a time: the snapshot's records come in key order (its
// readers scan the scope's range), each collection's elements right after
// it, and this member's are read in the same order, one piece's range at a
// time, so that a restore holds a piece of the snapshot and the fields of one
// collection in memory, not the shard. Each record's erase or put is in the
// batch of the piece that names it (a record erased and put back in separate
// writes would retire its generation, elements and all); a collection's
// elements may come in later batches.
class ShardRestorePlanner {
 public:
  // What to write next. Its effects view into the pieces added since the
  // last take() (which the caller keeps until it has written them) and into
  // `names`.
  struct Batch {
    replication::Mutation mutation;
    server::Store::KnownRecords known;  // each record key's Meta here (Store::apply)
    std::deque<std::string> names;      // the keys and fields the erases name
    size_t bytes = 0;                   // of the effects' keys, values and fields
  };
  ShardRestorePlanner(LocalRecordsFrom records, LocalFields fields);

  // Plans the next piece. Corruption when it holds anything but puts, or a
  // record at or before one planned already; the visitors' errors as they are.
  Status add(const replication::Mutation& piece);
  // After the last piece: erases of this member's records past the
  // snapshot's last, and of the last collection's missing elements.
  Status finish();
  Batch& batch() { return batch_; }
  // The batch planned so far; the next starts empty.
  Batch take();

  size_t effects() const { return effects_; }      // the snapshot's
  size_t unchanged() const { return unchanged_; }  // of its records, already held as they are
  size_t removed() const { return removed_; }      // records and elements erased

 private:
  // Erases of this member's records from `after_` on up to `last`
  // (inclusive; all of them without), less those the snapshot's piece holds,
  // whose Meta here it notes.
  struct PieceRecord {
    const replication::Effect* effect;
    server::Store::Meta here;
    bool unchanged = false;
  };
  Status merge_local(const std::optional<std::string_view>& last,
                     std::unordered_map<std::string_view, PieceRecord>* piece);
  // The open collection's elements here that the snapshot lacks, erased.
  Status close_collection();
  void push(const replication::Effect& e);

  LocalRecordsFrom records_;
  LocalFields fields_;
  Batch batch_;
  std::optional<int64_t> time_ms_;
  std::string after_;  // the next key of this member's to merge from
  std::string last_key_;
  bool any_record_ = false;
  // A record this member holds as a collection of the same generation as the
  // snapshot's: the snapshot's fields of it so far.
  struct OpenCollection {
    std::string key;
    uint64_t gen = 0;
    std::unordered_set<std::string> fields;
  };
  std::optional<OpenCollection> open_;
  size_t effects_ = 0, unchanged_ = 0, removed_ = 0;
};

}  // namespace statekv::coord
