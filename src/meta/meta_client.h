// Reading and changing the cluster map through the register it lives in.
//
// The map is one document, the value of the raft key "meta" (kMetaKey). Every
// change is optimistic read-modify-CAS, as Kubernetes does on etcd: read the
// document (a linearizable ReadIndex read), apply a pure transition
// (transitions.h), CAS(expected = the bytes read, new = the new document); when
// the CAS finds another document there, read again and retry.
//
// A CAS whose outcome is unknown (a timeout) is the hard part. Retrying it
// blindly could apply a change twice (an "add keyspace" would then fail as
// "exists" although it succeeded; a relative change would be applied twice).
// So every attempt is stamped with a change id unique to that attempt, and the
// document keeps the (epoch, change id) of its last kMaxRecentChanges versions
// (ClusterMap::recent_changes). After an unknown outcome the loop re-reads and
// asks, for each attempt it is unsure of, "who wrote the epoch my attempt would
// have written?":
//   * that stamp carries my attempt's id: it took effect; report success (the
//     map returned is the one that attempt wrote);
//   * it carries another id: mine did not take effect, and never will, since
//     its expected document (the previous epoch) can never come back: epochs only
//     grow, so no later document has the same bytes;
//   * the document is still at an earlier epoch: mine has not taken effect yet
//     and may still (it is in flight); the loop goes on, and if a later attempt
//     of its own succeeds, the earlier one can no longer match;
//   * the epoch has fallen out of the window (more than kMaxRecentChanges
//     changes since): nobody can tell; update() returns Unavailable saying the
//     outcome is unknown rather than guess.
// Comparing bytes alone ("the re-read document equals the one I tried to
// write") would not be enough: two writers that read the same document and make
// the same change produce the same bytes unless something in them tells writers
// apart, and a document that was written and then overwritten is missed. The
// change id is that something, and the stamps cover the overwrite.
//
// Change ids: update() and initialize() draw a writer id per call
// (new_writer_id(): 64 random bits from the OS once per process, plus a
// process-wide counter) and number its attempts; UpdateLoop takes the writer id
// from its caller, so the simulator can use seeded ones.
//
// Thread safety: RegisterClient implementations say their own; update() and
// fetch() use only the client they are given. UpdateLoop is a plain value.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "meta/cluster_map.h"

namespace statekv::meta {

// The raft key that holds the document.
inline constexpr std::string_view kMetaKey = "meta";

// A linearizable register map, as the metadata raft group serves it. Blocking.
// The runtime implements it over the network (following leader redirects
// itself); tests implement it in memory.
class RegisterClient {
 public:
  virtual ~RegisterClient() = default;
  // The value of `key` (nullopt: absent). An error means it could not be read;
  // Aborted (from read or cas) means the connection was refused (a wrong
  // secret): nothing was sent, and trying again cannot help.
  virtual Result<std::optional<std::string>> read(const std::string& key) = 0;
  // Sets `key` to `value` if it holds `expected` (nullopt: absent). true: done;
  // false: the key held something else, nothing changed. An error means
  // unavailable or unknown outcome: the CAS may or may not take effect.
  virtual Result<bool> cas(const std::string& key, const std::optional<std::string>& expected,
                           const std::string& value) = 0;
};

// A process-unique writer id ("<16 hex digits>-<counter>").
std::string new_writer_id();

// The read-modify-CAS loop as a step machine, so that the blocking update()
// below and an event-driven caller (the simulator's clients) run the same code:
// ask next_op() what to do, do it, feed the outcome to on_read / on_cas, until
// done(). Attempts: each cycle starts with a read; a read error, a CAS conflict
// and a CAS of unknown outcome each end one; an Aborted read or CAS (a refused
// connection) ends the loop with that error at once. After max_attempts cycles, one more
// read is made only if it can settle an unknown outcome.
class UpdateLoop {
 public:
  // The change: the next map from the current one (nullopt: there is no document
  // yet). It must bump the epoch by exactly one (1 for a first document), as the
  // transitions do; it may be called once per attempt.
  using Change = std::function<Result<ClusterMap>(const std::optional<ClusterMap>& current)>;

  struct Op {
    enum class Kind : unsigned char { kRead, kCas } kind = Kind::kRead;
    std::optional<std::string> expected;  // kCas
    std::string value;                    // kCas: the encoded new document
  };

  // `writer` must be unique to this loop (attempt ids are writer + "/" + number).
  UpdateLoop(Change change, std::string writer, int max_attempts = 16);

  bool done() const { return result_.has_value(); }
  // The register operation to perform now on kMetaKey; only while !done().
  const Op& next_op() const { return op_; }
  void on_read(const Result<std::optional<std::string>>& value);
  void on_cas(const Result<bool>& applied);

  // Once done(): the map this loop's change produced and wrote, or why not: the
  // change's own error, Corruption for an unreadable document, Aborted when the
  // document kept changing under every attempt, the last read error, or
  // Unavailable when a CAS may or may not have taken effect.
  const Result<ClusterMap>& result() const { return *result_; }
  int attempts() const { return attempts_; }

 private:
  struct Attempt {
    Epoch epoch;  // the epoch its document has
    std::string id;
    std::optional<std::string> expected;
    ClusterMap map;
    std::string cause;  // why its outcome is unknown
  };
  void start_read();
  // Ends the current cycle (`why`: the read error, conflict or CAS error) and
  // starts the next one, the settling read, or finishes.
  void end_attempt(Status why);
  Status give_up() const;
  void finish(Result<ClusterMap> r) { result_.emplace(std::move(r)); }

  Change change_;
  std::string writer_;
  int max_attempts_;
  int attempts_ = 0;       // cycles started
  bool settling_ = false;  // the extra read after the last attempt
  Op op_;
  std::optional<Attempt> in_flight_;  // the attempt whose CAS is pending
  std::vector<Attempt> unsure_;       // CAS outcome unknown, not yet settled
  Status last_error_;
  std::optional<Result<ClusterMap>> result_;
};

// The current map. NotFound when the cluster has no document yet (not
// bootstrapped); Corruption when the document does not decode; or the read error.
Result<ClusterMap> fetch(RegisterClient& client);

// Applies `change` to the current map by read-modify-CAS (see the top of this
// file), retrying conflicts up to max_attempts times. Returns the map as this
// change wrote it, NotFound when there is no document, or the change's error
// (a refused transition is returned as it is, after the read that refused it).
Result<ClusterMap> update(RegisterClient& client,
                          const std::function<Result<ClusterMap>(const ClusterMap&)>& change,
                          int max_attempts = 16);

// Writes the first document, made by `make` (bootstrap(...), epoch 1), if there
// is none. InvalidArgument when the cluster already has a document (written by
// someone else: a first document this call wrote counts as success).
Result<ClusterMap> initialize(RegisterClient& client,
                              const std::function<Result<ClusterMap>()>& make,
                              int max_attempts = 16);

}  // namespace statekv::meta
