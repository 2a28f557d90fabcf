// Proposer — where a command's effect goes to be committed.
//
// DESIGN.md's data path: a handler evaluates its command against applied state
// and produces a reply plus the effect (Store::Write records, the Mutation a
// replica group orders); the Proposer of the keys' replica group commits that
// effect, and the reply waits on the CommitTicket it returns — not on the
// local engine. Handlers never write the store themselves.
//
// Two implementations today:
//   - LocalGroup (make_local_group): a group of one member, this node. It
//     commits by applying the effect to the store at once; the ticket is the
//     engine Sequence that must be durable before the reply goes out. It is
//     what every keyspace of replication factor 1 runs.
//   - tests' shipping proposers, which also apply the encoded Mutation to a
//     second store, prove that the effects alone rebuild the state: replicas
//     never re-run commands (store_replica_test.cc).
// Replicated protocols (raft per shard first) implement the same interface:
// they encode the Mutation, order it, and resolve the ticket at commit.
//
// Contract: propose() is called with the stripe lock of every key the writes
// name held by the caller (Store's contract), from any I/O thread; each Write's
// `old` is what the key held under that lock. Implementations are thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <span>

#include "core/status.h"
#include "replication/mutation.h"
#include "server/store.h"
#include "storage/engine.h"

namespace statekv::server {

// What a reply waits for: the engine Sequence that must be durable before the
// reply may reach the client (0: nothing to wait for).
struct CommitTicket {
  storage::Sequence durable_at = 0;
};

class Proposer {
 public:
  virtual ~Proposer() = default;
  // Commits the effect of one command, decided at time_ms (the executor's clock).
  // Writes name each key once. An empty span commits nothing (ticket 0).
  virtual Result<CommitTicket> propose(int64_t time_ms, std::span<const Store::Write> writes) = 0;
  // Commits the removal of every key (FLUSHALL/FLUSHDB).
  virtual Result<CommitTicket> propose_clear(int64_t time_ms) = 0;
  // Whether an effect proposed here is applied to this node's store before
  // propose() returns, so the caller tells tracking clients of its keys.
  // False for a proposer whose effects are applied later, through a log
  // (coord/replica_groups.h): that path tells them, when it applies them on
  // each member (Service::tracking_applied); told earlier, a client could
  // read the old value again and keep it.
  virtual bool applies_now() const { return true; }
};

// The Mutation that writes describe (views into writes' keys and values).
replication::Mutation to_mutation(int64_t time_ms, std::span<const Store::Write> writes);
// The Mutation of a clear.
replication::Mutation clear_mutation(int64_t time_ms);

// A group of one member: commits by applying to store (which must outlive it).
std::unique_ptr<Proposer> make_local_group(Store& store);

// How a node builds the proposer of its store; ServerContext::proposers, when
// set, replaces make_local_group.
using ProposerFactory = std::function<std::unique_ptr<Proposer>(Store& store)>;

}  // namespace statekv::server
