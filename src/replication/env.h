// The environment contract: the only way a statekv protocol touches the world.
//
// Every protocol (raft, primary-backup, chain, quorum, ...) is a deterministic,
// sans-IO state machine in the spirit of etcd raft's Ready, but simpler: instead
// of handing back a batch of outputs, it calls an Env it is given. The protocol
// never opens a socket, reads a clock, sleeps, spawns a thread, touches a file or
// uses a global random source. Two runtimes implement Env: sim/ (one thread, one
// seed, simulated network, clock and disk) and later net/ (TCP, real clock,
// RocksDB). The protocol cannot tell them apart.
//
// Shape of a protocol P (checked by the ReplicationProtocol concept below):
//
//   using Message = std::variant<...>;        // typed messages, see codec.h
//   P(Env<Message>& env, const Membership& m, std::vector<std::string> recovered);
//   void on_message(NodeId from, const Message& msg);   // a peer's message arrived
//   void on_request(const ClientRequest& req);          // a client request for this node
//   void on_timer(TimerId id);                          // a timer set earlier fired
//   void on_persisted(PersistToken token);              // records up to `token` are durable
//
// Start and restart are the same thing: the constructor receives every record
// that survived on this node's durable storage, in append order (empty on first
// start). A crash destroys the object; nothing volatile survives. A record that
// was persisted but whose on_persisted never arrived before a crash may or may
// not be among the recovered records (a real disk may have written it); a torn
// record is never handed back (storage detects it by checksum and drops it and
// everything after it).
//
// Persist before send: Env::send does not wait for anything. If a message
// promises something about durable state ("I accepted your entry", "I voted for
// you"), the protocol must wait for on_persisted of the record that makes the
// promise true before sending it. That discipline is the protocol's own; the
// runtime will happily deliver a promise the disk later forgets, and the
// simulator's crashes are designed to catch exactly that.
//
// Re-entrancy and threading: a runtime calls a protocol from one thread, one
// callback at a time, and never calls back into the protocol from inside an Env
// method (a send, reply or timer takes effect after the current callback
// returns). Env references stay valid for the protocol object's lifetime.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/ids.h"
#include "core/random.h"

namespace statekv::replication {

using TimerId = StrongId<struct TimerIdTag>;
// Appends are numbered 1, 2, 3, ... per incarnation of a node; on_persisted(t)
// means every record appended with a token <= t is durable.
using PersistToken = StrongId<struct PersistTokenTag>;

// A node-local time: nanoseconds on this node's clock. Clocks of different nodes
// may be offset and drift apart; never compare one node's Instant with another's.
using Duration = std::chrono::nanoseconds;
using Instant = std::chrono::nanoseconds;

// The members of the replica group, in a fixed order every member agrees on.
struct Membership {
  NodeId self;
  std::vector<NodeId> nodes;  // includes self
  size_t majority() const { return nodes.size() / 2 + 1; }
};

// Single-key client operations; they match the history's `f` values (check/history.h).
enum class ClientOp : unsigned char { kRead, kWrite, kCas, kDelete };

// The level a read asks for (consistency per request, docs/replication.md).
// Writes are always linearizable. A protocol that serves only linearizable
// reads may ignore the level: serving a stronger level is always allowed.
enum class ReadLevel : unsigned char { kLinearizable, kCausal, kSequential, kFifo };

struct ClientRequest {
  RequestId id;
  ClientOp op = ClientOp::kRead;
  std::string key;
  // write: the value to write; cas: the new value; read/delete: unused.
  std::optional<std::string> value;
  // cas only: the value the key must hold (nullopt = the key must be absent).
  std::optional<std::string> expected;
  // Reads only: the level asked for.
  ReadLevel level = ReadLevel::kLinearizable;
  // The client's session token as it last received it (ClientResponse::session;
  // empty: a new session). Opaque to clients and to the simulator; a host that
  // hosts many groups reads it (sim/group_host.h) and sets `min_index`.
  std::string session;
  // The session's position in the log of the group this request goes to: a read
  // below linearizable must be served from a state that covers it. 0: none.
  uint64_t min_index = 0;
};

struct ClientResponse {
  enum class Outcome : unsigned char {
    kOk,    // the operation took effect (a cas whose expectation held)
    kFail,  // the operation certainly did not take effect (not leader, cas mismatch)
  };
  Outcome outcome = Outcome::kOk;
  // read: the value (nullopt = absent); otherwise unused.
  std::optional<std::string> value;
  // On kFail from a node that is not the one to ask: who probably is.
  std::optional<NodeId> leader_hint;
  // On kFail: the node could not serve the request at all (not leader, lost
  // office, handing over leadership), as opposed to a definite answer such as
  // a cas whose expectation did not hold. Another node, or this one later, may
  // serve it: a client may retry it elsewhere.
  bool not_served = false;
  // On kOk: the log position the answer reflects (a write's entry, the applied
  // index a read was served at; 0: not known), and the session token that
  // covers it (empty: the session is unchanged). Neither is carried in log
  // entries.
  uint64_t index = 0;
  std::string session;
};

// What a protocol may call. Implemented by a runtime; not thread-safe (a
// protocol is driven from one thread).
class Environment {
 public:
  virtual ~Environment() = default;

  // Answers a client request this node received through on_request. At most one
  // reply per request id is delivered; later ones are ignored. A request may also
  // never be answered (the client then times out and records "may have happened").
  virtual void reply(RequestId request, ClientResponse response) = 0;

  // Calls on_timer(id) once, `delay` from now on this node's clock, unless
  // cancelled first. Ids are never reused within an incarnation.
  virtual TimerId set_timer(Duration delay) = 0;
  // Cancelling a timer that fired or was cancelled already is a no-op.
  virtual void cancel_timer(TimerId id) = 0;

  // This node's clock. Monotonic within an incarnation; not comparable across nodes.
  virtual Instant now() const = 0;

  // Appends one record to this node's durable log and returns its token; the
  // record is durable once on_persisted(t) arrives with t >= the token. Records
  // become durable in append order.
  virtual PersistToken persist(std::string record) = 0;

  // Appends a checkpoint (log compaction): a record that, once durable, replaces
  // every record appended before it, so recovery yields the checkpoint first and
  // then whatever was appended after it. The replacement is atomic: until the
  // checkpoint is durable a crash leaves the earlier records as they were, and a
  // torn checkpoint is dropped like any torn record. Tokens are shared with
  // persist() and become durable in the same append order.
  //
  // A runtime that cannot drop records may keep them: this default appends, and
  // recovery then also yields the records before the checkpoint. A protocol
  // must therefore treat a checkpoint record as a full reset of its state.
  virtual PersistToken persist_checkpoint(std::string record) { return persist(std::move(record)); }

  // The node's seeded random source: the only randomness a protocol may use.
  virtual Random& random() = 0;
};

// Adds the protocol's typed message sending.
template <typename Message>
class Env : public Environment {
 public:
  // Sends `msg` to node `to`. Best effort: it may be delayed, reordered,
  // duplicated or lost, and arrives (if at all) through on_message. Sending to
  // self is allowed and goes through the network like any other message.
  virtual void send(NodeId to, const Message& msg) = 0;
};

template <typename P>
concept ReplicationProtocol = requires(P p, Env<typename P::Message>& env, const Membership& m,
                                       std::vector<std::string> rec, NodeId from,
                                       const typename P::Message& msg, const ClientRequest& req,
                                       TimerId timer, PersistToken token) {
  P(env, m, std::move(rec));
  p.on_message(from, msg);
  p.on_request(req);
  p.on_timer(timer);
  p.on_persisted(token);
};

}  // namespace statekv::replication
