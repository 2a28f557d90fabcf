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
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
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

// The mutations of a snapshot of either form; Corruption on bytes neither
// form makes. The effects view into the returned mutations' bytes.
Result<std::vector<replication::DecodedMutation>> decode_shard_snapshot(std::string_view bytes);

// What restoring a snapshot writes on a member that may hold part of the
// shard already (a restarted one): erases of the records it holds that the
// snapshot does not (and of a kept collection's elements the snapshot lacks),
// then the snapshot's effects, less the records it holds exactly as the
// snapshot has them (a member back after a short absence holds most). One
// mutation: a record erased and put back in separate writes would retire its
// generation, elements and all.
struct ShardRestore {
  replication::Mutation mutation;     // views into the snapshot's parts and `names`
  server::Store::KnownRecords known;  // each record key's Meta here (Store::apply)
  size_t effects = 0;                 // the snapshot's
  size_t unchanged = 0;               // of its records, already held as they are
  size_t removed = 0;                 // records and elements erased
  std::deque<std::string> names;      // the keys and fields the erases name
};
// Visits this member's records of the shard; an error ends the visit.
using LocalRecords = std::function<Status(
    const std::function<void(std::string_view key, const server::RecordView& rec)>&)>;
// Visits the fields of this member's elements of generation `gen`.
using LocalFields =
    std::function<Status(uint64_t gen, const std::function<void(std::string_view field)>&)>;
// Corruption when the snapshot holds anything but puts, or a record twice;
// the visitors' errors as they are.
Result<ShardRestore> plan_shard_restore(const std::vector<replication::DecodedMutation>& parts,
                                        const LocalRecords& records, const LocalFields& fields);

}  // namespace statekv::coord
