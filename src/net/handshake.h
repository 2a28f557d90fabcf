// Handshake — two ends of a connection prove they know the cluster secret.
//
// Every connection between statekv nodes (and from tools such as the CLI or a bench
// client) starts with this mutual challenge-response; nothing else is accepted on a
// connection before it completes. It authenticates the peer at the start of the
// connection only: it neither encrypts nor protects later frames, so it keeps out
// strangers and misconfigured nodes, not an attacker who can rewrite TCP traffic
// (use TLS or an isolated network for that).
//
// Sans-IO: one Handshake per connection side. It never touches a socket; the caller
// frames what take_outgoing() returns (frame.h), sends it, and hands each received
// frame's payload to on_frame() until done(). Frames that arrive after Accepted belong
// to the application (the acceptor may send application frames right after its Proof),
// so the caller routes each frame to the handshake only while !done(). Deadlines are
// the caller's too: a peer that stops talking mid-handshake must be timed out.
//
// Protocol (every message is one frame whose payload starts with "SKVP" and a type):
//   Hello    = "SKVP" | u8 1 | u32 version | u8 role | u64 node id | u64 incarnation
//              | 32-byte nonce
//   Proof    = "SKVP" | u8 2 | 32-byte HMAC-SHA256
//   Refusal  = "SKVP" | u8 3 | u8 length | reason (so the other side can log why)
//   Disowned = "SKVP" | u8 4 | 32-byte HMAC-SHA256 | u8 length | reason: a refusal
//              that says the peer is not the node this side knew by its id (another
//              incarnation), from an acceptor that checked the initiator's proof;
//              its MAC is Proof_A's under the label "statekv-disowned-v1", so only a
//              node that knows the secret can make another stop (one that does not
//              verify reads as a plain refusal)
// integers little-endian; node id 0 is a client (CLI, bench tool), which may only
// initiate, with incarnation 0. A node's incarnation names its data directory
// (net/peer_incarnations.h): once the peer has proved itself, each side asks
// check_incarnation what it makes of the peer's; an acceptor that disowns the
// initiator tells it so (Disowned); an initiator that disowns the acceptor closes
// the connection (the acceptor is done by then: it learns it on its own
// connection to this side, where it initiates).
//
//   initiator                                   acceptor
//     Hello(I, nI)   ------------------------>                 (both sent at once)
//                    <------------------------  Hello(A, nA)
//     Proof_I        ------------------------>  checks Proof_I, then
//                    <------------------------  Proof_A         -> Accepted(I)
//     checks Proof_A -> Accepted(A)
//
//   Proof_X = HMAC-SHA256(secret, "statekv-peer-v1" | u8 role of X | u64 id of X
//                                 | u64 id of the other side | nonce of X | nonce of the other
//                                 | u64 incarnation of X | u64 incarnation of the other)
//
// Why it is shaped this way:
//   - Both fresh nonces are in every proof, so a proof recorded from an earlier session
//     is useless in a new one (the other side's nonce differs).
//   - The prover's role is in the proof, so the acceptor's proof can never pass as an
//     initiator's (no reflection of a proof back to its maker on the same or a second
//     connection); a peer that claims our own node id, or echoes our own nonce, is
//     refused too, which closes reflection across two connections of one node.
//   - The acceptor proves itself only after the initiator has: a stranger who connects
//     cannot collect acceptor proofs for nonces of its choosing.
//   - MACs are compared with CRYPTO_memcmp (constant time).
//
// Thread safety: a Handshake is a plain value; use it from one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/ids.h"
#include "core/status.h"

namespace statekv::net {

// The version of what nodes say to each other after the handshake. Bumped when
// nodes of two builds can no longer work together, so that such a peer is
// refused at once, saying why, instead of misreading frames: 2 since raft
// entries carry their records' priors (replication/mutation.h), which a node
// of version 1 cannot decode and would skip, and the __scan page carries its
// keys' positions; 3 since a node's __scan page leaves replica groups' records
// to the groups' own pages (__gscan), which a router of version 2 never asks
// for: its KEYS would miss every replicated key (coord/cluster_scan.h); 4 since
// the Hello states the node's incarnation (net/peer_incarnations.h).
inline constexpr uint32_t kHandshakeVersion = 4;
inline constexpr size_t kHandshakeNonceBytes = 32;

enum class HandshakeRole : uint8_t {
  kInitiator = 1,  // opened the connection
  kAcceptor = 2,   // accepted it
};

// Fills `out` with unpredictable bytes. The default draws from OpenSSL's RAND_bytes;
// tests inject fixed nonces to replay sessions.
using NonceSource = std::function<Status(std::span<uint8_t> out)>;

// check_incarnation's answer.
struct IncarnationVerdict {
  enum class Kind : uint8_t {
    kAccept,
    kRefuse,  // not now (the incarnation could not be recorded): a plain refusal
    kDisown,  // another node than the one known by that id: refused as disowned
  };
  Kind kind = Kind::kAccept;
  std::string reason;  // kRefuse, kDisown: for both sides' logs
};

struct HandshakeOptions {
  std::string secret;  // the cluster secret; must not be empty
  NodeId self;         // this side's node id; NodeId(0) = a client, which must initiate
  HandshakeRole role = HandshakeRole::kInitiator;
  // How to name the peer in refusal reasons, e.g. "127.0.0.1:1234".
  std::string peer_address;
  // Which peer node ids this side will accept; empty accepts any. An acceptor uses it
  // for membership (NodeId(0) = clients), an initiator to check it reached the node it
  // dialled. Called once, with the id from the peer's Hello, before any proof is sent.
  std::function<bool(NodeId)> allow_peer;
  // This side's incarnation (net/peer_incarnations.h); 0 for a client.
  uint64_t incarnation = 0;
  // What this side makes of a peer node's incarnation, asked once the peer has
  // proved it knows the secret (never for a client); empty accepts any.
  std::function<IncarnationVerdict(NodeId peer, uint64_t incarnation)> check_incarnation;
  NonceSource nonce_source;  // empty = RAND_bytes
};

struct HandshakeAccepted {
  NodeId peer;  // proven: the peer knows the secret and sent this id in its Hello
};

struct HandshakeRefused {
  std::string reason;  // one line for the log, naming the peer's address and claimed id
  // The peer refused this side as disowned: it knew this node id with another
  // incarnation (this node lost the state it had under its id).
  bool disowned = false;
};

// monostate while the handshake is in progress.
using HandshakeOutcome = std::variant<std::monostate, HandshakeAccepted, HandshakeRefused>;

class Handshake {
 public:
  // Draws this side's nonce and queues its Hello. InvalidArgument for an empty secret
  // or an acceptor without a node id; the nonce source's error if it fails.
  static Result<Handshake> start(HandshakeOptions options);

  // The payloads to send, in order, each as one frame; empties the queue. After a
  // refusal it holds a Refusal message for the peer (sending it is optional).
  std::vector<std::string> take_outgoing();

  // One received frame's payload. Ignored once refused; must not be called after
  // Accepted (those frames are the application's).
  void on_frame(std::string_view payload);

  const HandshakeOutcome& outcome() const { return outcome_; }
  bool done() const { return !std::holds_alternative<std::monostate>(outcome_); }
  bool accepted() const { return std::holds_alternative<HandshakeAccepted>(outcome_); }
  bool refused() const { return std::holds_alternative<HandshakeRefused>(outcome_); }
  // The proven peer id once accepted.
  std::optional<NodeId> peer() const;
  // Refusal reason once refused, else empty.
  std::string_view refusal_reason() const;

 private:
  enum class Stage : uint8_t {
    kAwaitHello,  // both roles: the peer's Hello
    kAwaitProof,  // both roles: the peer's Proof
    kDone,
  };

  explicit Handshake(HandshakeOptions options) : options_(std::move(options)) {}
  void on_hello(std::string_view body);
  void on_proof(std::string_view body);
  void on_refusal(std::string_view body, bool disowned);
  std::string proof(HandshakeRole prover) const;
  // HMAC-SHA256 under `label` over the prover's role, both ids, nonces and
  // incarnations (the proof's fields).
  std::string mac(std::string_view label, HandshakeRole prover) const;
  std::string who() const;  // "peer 127.0.0.1:1234 claims node 3"
  // Ends the handshake refused; `detail` goes to our log (after who()) and, as a
  // message of type `type` (Refusal or Disowned; 0: none), to the peer.
  void refuse(std::string detail, uint8_t type = 3);

  HandshakeOptions options_;
  Stage stage_ = Stage::kAwaitHello;
  uint8_t own_nonce_[kHandshakeNonceBytes] = {};
  uint8_t peer_nonce_[kHandshakeNonceBytes] = {};
  std::optional<NodeId> claimed_peer_;  // from the peer's Hello, not yet proven
  uint64_t peer_incarnation_ = 0;       // from the peer's Hello too
  std::vector<std::string> outgoing_;
  HandshakeOutcome outcome_;
};

// A Redis client pointed at the peer port by mistake speaks RESP: its first byte
// is '*' (a command array) or a letter (an inline command such as PING). A
// statekv initiator's first byte is the low byte of its Hello frame's length,
// which is neither. When `first_bytes` (what the connection sent first, at least
// one byte) look like RESP, returns the RESP error to write back before closing,
// naming the RESP port clients should use (0: not known); else nullopt. An
// acceptor therefore reads the first bytes before it sends its own Hello, so such
// a client reads one clear error rather than binary handshake bytes.
std::optional<std::string> resp_client_notice(std::string_view first_bytes, uint16_t resp_port);

}  // namespace statekv::net
