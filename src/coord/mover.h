// Moving keys between nodes while they keep serving (rebalancing): this
// node's part of it.
//
// A move is driven from outside (`statekv cluster add-node / remove-node /
// rebalance`, cli/rebalance.cc) through the cluster map and four verbs each
// node runs, sent as routed commands `__migrate VERB KEYSPACE EPOCH`:
//
//   1. the map gets the new layout with the old one as moving_from
//      (meta::begin_move, epoch E): keys are still served where they were;
//   2. prepare: every node drops stale copies of keys it is about to receive
//      (left over from an abandoned move);
//   3. copy: every node streams the keys it serves that are moving to their
//      new owner (a routed SET/DEL with the import flag), in the background,
//      and keeps a set of the moving keys written meanwhile (dirty), which it
//      sends again; `status` reports progress;
//   4. freeze: every node stops serving moving keys (commands on them wait at
//      the gate, which in-flight commands have left), sends what is still
//      dirty, and answers; then the map finishes the move (meta::finish_move,
//      epoch E+2) and each node, once it applies that map, reopens the gate:
//      the waiting commands route to the new owners, and the keys that left
//      are deleted here.
// The same verbs move the keys of a keyspace created over keys that another
// keyspace held (meta::begin_adopt: the new keyspace's moving_from is that
// keyspace's layout); abandoning such a move removes the new keyspace.
//
// Dropping a keyspace (meta::begin_drop, epoch E, then meta::drop_keyspace)
// takes one verb, `drop`: the node closes the gate on the keyspace's keys
// (commands on them wait, once the ones inside have left), deletes every key
// of the keyspace it holds, and answers how many of them it served; the gate
// reopens when the node applies the map without the keyspace (a frozen node
// that hears nothing for 30 s finishes the drop itself).
//
// Copying a key: its type's reads here (GET, HGETALL, SMEMBERS, LRANGE,
// ZRANGE) and writes there (SET, or DEL and HSET / SADD / RPUSH / ZADD in
// batches), then PEXPIRE: strings, hashes, sets, lists and sorted sets move.
//
// Every acknowledged write reached the new owner before it started serving
// (the freeze drains it), and the old owner serves nothing of a moving key
// from the freeze until it knows the move finished, so no read goes back in
// time. A frozen node that hears nothing for 30 s abandons the move through
// the map (meta::abort_move) and thaws: keys stay where they were.
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "coord/routing_table.h"
#include "core/status.h"

namespace statekv::coord {

// Commands touching keys being moved away pass this gate; a freeze closes it
// once the commands inside have left.
class Gate {
 public:
  void enter();
  void leave();
  void freeze();  // returns once nothing is inside; new enters wait
  void thaw();
  bool frozen() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool frozen_ = false;
  int inside_ = 0;
};

class Mover {
 public:
  // How the mover reaches the rest of the node.
  struct Hooks {
    // The newest routing table, and waiting for an epoch.
    std::function<std::shared_ptr<const RoutingTable>()> table;
    std::function<std::shared_ptr<const RoutingTable>(uint64_t)> wait_for_epoch;
    // Runs a command on this node's own store (no routing, no gate); the RESP2 reply.
    std::function<std::string(std::vector<std::string>)> run_local;
    // Runs a command on another node as an import of a moving key.
    std::function<Result<std::string>(NodeId, std::vector<std::string>, const RoutingTable&)>
        import_to;
    // Abandons the move of `keyspace` through the map.
    std::function<Status(const std::string& keyspace)> abort_move;
  };

  explicit Mover(NodeId self, Hooks hooks);
  ~Mover();

  // `__migrate VERB KEYSPACE EPOCH`: argv without "__migrate". The reply is
  // one line of status text (for `drop`: the number of keys deleted that
  // this node served).
  Result<std::string> handle(const std::vector<std::string>& argv);

  // A command is about to run here on `key`, which `route` says is moving.
  // Writes mark the key dirty while a copy is under way.
  void note_write(std::string_view key);

  // A new map arrived: thaws when the frozen move finished or was abandoned.
  void on_table(const RoutingTable& table);

  Gate& gate() { return gate_; }

 private:
  enum class State : unsigned char {
    kIdle,
    kPrepared,
    kCopying,
    kCopied,
    kFrozen,
    kFailed,
    kCleaning,
  };
  // Sends key's current value (or its absence) to where it goes.
  Status send_key(const std::string& key, const RoutingTable& table);
  void copy_loop(std::string keyspace, uint64_t epoch);
  Status drain_dirty(const RoutingTable& table);
  // Every local key (SCAN over this node's own store).
  std::vector<std::string> local_keys();
  void cleanup(std::string keyspace);
  // Freezes and starts the watchdog (mu_ held by the caller).
  void start_watchdog(const std::string& keyspace);
  void stop_worker();

  const NodeId self_;
  Hooks hooks_;
  Gate gate_;

  std::mutex mu_;
  State state_ = State::kIdle;
  std::string keyspace_;
  uint64_t epoch_ = 0;
  // The table of the move's epoch: which keys were in the keyspace (it may
  // be gone from the map by the clean-up).
  std::shared_ptr<const RoutingTable> move_table_;
  std::set<std::string> dirty_;
  std::atomic<uint64_t> total_{0};
  std::atomic<uint64_t> moved_{0};
  std::string error_;
  std::chrono::steady_clock::time_point frozen_at_;
  std::thread worker_;
  std::thread watchdog_;
  std::atomic<bool> stopping_{false};
};

}  // namespace statekv::coord
