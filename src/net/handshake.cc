#include "net/handshake.h"

#include "core/little_endian.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

#include "core/assert.h"

namespace statekv::net {
namespace {

constexpr std::string_view kMagic = "SKVP";
constexpr std::string_view kProofLabel = "statekv-peer-v1";
// A Disowned message carries the acceptor's MAC under this label: only a peer
// that knows the secret can make a node stop.
constexpr std::string_view kDisownedLabel = "statekv-disowned-v1";
constexpr uint8_t kTypeHello = 1;
constexpr uint8_t kTypeProof = 2;
constexpr uint8_t kTypeRefusal = 3;
constexpr uint8_t kTypeDisowned = 4;
constexpr size_t kMacBytes = 32;  // SHA-256
// After magic and type: u32 version | u8 role | u64 node id | u64 incarnation | nonce.
constexpr size_t kHelloBodyBytes = 4 + 1 + 8 + 8 + kHandshakeNonceBytes;
constexpr size_t kMaxReasonBytes = 200;

std::string message_start(uint8_t type) {
  std::string m(kMagic);
  m.push_back(static_cast<char>(type));
  return m;
}

Status random_nonce(std::span<uint8_t> out) {
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    return Status::Internal("RAND_bytes failed: cannot draw a handshake nonce");
  }
  return Status::OK();
}

HandshakeRole other(HandshakeRole role) {
  return role == HandshakeRole::kInitiator ? HandshakeRole::kAcceptor : HandshakeRole::kInitiator;
}

const char* role_name(HandshakeRole role) {
  return role == HandshakeRole::kInitiator ? "initiator" : "acceptor";
}

// A peer's words end up in our log lines: keep them short, one line, printable.
std::string printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxReasonBytes)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  return out;
}

}  // namespace

Result<Handshake> Handshake::start(HandshakeOptions options) {
  if (options.secret.empty()) {
    return Status::InvalidArgument("handshake: the cluster secret is empty");
  }
  if (options.role != HandshakeRole::kInitiator && options.role != HandshakeRole::kAcceptor) {
    return Status::InvalidArgument("handshake: unknown role");
  }
  if (options.role == HandshakeRole::kAcceptor && options.self == NodeId(0)) {
    return Status::InvalidArgument("handshake: an acceptor needs a node id (0 is a client)");
  }
  if ((options.self == NodeId(0)) != (options.incarnation == 0)) {
    return Status::InvalidArgument(
        "handshake: a node states its incarnation, a client (node id 0) none");
  }
  Handshake hs(std::move(options));
  const NonceSource& source = hs.options_.nonce_source;
  Status drawn = source ? source(std::span<uint8_t>(hs.own_nonce_)) : random_nonce(hs.own_nonce_);
  if (!drawn.ok()) return drawn;

  std::string hello = message_start(kTypeHello);
  append_le32(hello, kHandshakeVersion);
  hello.push_back(static_cast<char>(hs.options_.role));
  append_le64(hello, hs.options_.self.value());
  append_le64(hello, hs.options_.incarnation);
  hello.append(reinterpret_cast<const char*>(hs.own_nonce_), kHandshakeNonceBytes);
  hs.outgoing_.push_back(std::move(hello));
  return hs;
}

std::vector<std::string> Handshake::take_outgoing() {
  std::vector<std::string> out;
  out.swap(outgoing_);
  return out;
}

std::optional<NodeId> Handshake::peer() const {
  if (const auto* a = std::get_if<HandshakeAccepted>(&outcome_)) return a->peer;
  return std::nullopt;
}

std::string_view Handshake::refusal_reason() const {
  if (const auto* r = std::get_if<HandshakeRefused>(&outcome_)) return r->reason;
  return {};
}

void Handshake::on_frame(std::string_view payload) {
  SKV_ASSERT(!accepted(), "a frame after the handshake accepted belongs to the application");
  if (refused()) return;
  if (payload.size() < kMagic.size() + 1 || payload.substr(0, kMagic.size()) != kMagic) {
    refuse("not a statekv handshake message (bad magic)");
    return;
  }
  const auto type = static_cast<uint8_t>(payload[kMagic.size()]);
  const std::string_view body = payload.substr(kMagic.size() + 1);
  if (type == kTypeRefusal || type == kTypeDisowned) {
    on_refusal(body, type == kTypeDisowned);
  } else if (stage_ == Stage::kAwaitHello && type == kTypeHello) {
    on_hello(body);
  } else if (stage_ == Stage::kAwaitProof && type == kTypeProof) {
    on_proof(body);
  } else {
    refuse(fmt::format("unexpected handshake message type {} while waiting for its {}", type,
                       stage_ == Stage::kAwaitHello ? "Hello" : "Proof"));
  }
}

void Handshake::on_hello(std::string_view body) {
  // The version first: another version's Hello may have another size.
  const uint32_t version = body.size() >= 4 ? load_le32(body.data()) : 0;
  if (body.size() >= 4 && version != kHandshakeVersion) {
    refuse(fmt::format("speaks handshake version {}, we speak {}", version, kHandshakeVersion));
    return;
  }
  if (body.size() != kHelloBodyBytes) {
    refuse(fmt::format("garbled Hello ({} bytes, expected {})", body.size(), kHelloBodyBytes));
    return;
  }
  const auto role = static_cast<uint8_t>(body[4]);
  const HandshakeRole expected = other(options_.role);
  if (role != static_cast<uint8_t>(expected)) {
    refuse(fmt::format(
        "says it is the {} of this connection, but we are the {}",
        role == static_cast<uint8_t>(options_.role) ? role_name(options_.role) : "(unknown role)",
        role_name(options_.role)));
    return;
  }
  claimed_peer_ = NodeId(load_le64(body.data() + 5));
  peer_incarnation_ = load_le64(body.data() + 13);
  const std::string_view nonce = body.substr(21, kHandshakeNonceBytes);
  if (expected == HandshakeRole::kAcceptor && *claimed_peer_ == NodeId(0)) {
    refuse("an acceptor must have a node id");
    return;
  }
  if ((*claimed_peer_ == NodeId(0)) != (peer_incarnation_ == 0)) {
    refuse(peer_incarnation_ == 0 ? "a node must state its incarnation"
                                  : "a client states no incarnation");
    return;
  }
  // Reflection across two connections of this node: the peer could relay our own
  // messages back to us. Our proofs carry our id as the prover, so refusing our own
  // id (and our own nonce) leaves nothing of ours that could verify.
  if (options_.self != NodeId(0) && *claimed_peer_ == options_.self) {
    refuse("that is our own node id");
    return;
  }
  if (std::memcmp(nonce.data(), own_nonce_, kHandshakeNonceBytes) == 0) {
    refuse("it echoed our own nonce");
    return;
  }
  if (options_.allow_peer && !options_.allow_peer(*claimed_peer_)) {
    refuse(options_.role == HandshakeRole::kAcceptor ? "that node may not connect here"
                                                     : "that is not the node we meant to reach");
    return;
  }
  std::memcpy(peer_nonce_, nonce.data(), kHandshakeNonceBytes);
  stage_ = Stage::kAwaitProof;
  // The initiator proves first; the acceptor answers only a valid proof.
  if (options_.role == HandshakeRole::kInitiator) {
    outgoing_.push_back(message_start(kTypeProof) + proof(HandshakeRole::kInitiator));
  }
}

void Handshake::on_proof(std::string_view body) {
  if (body.size() != kMacBytes) {
    refuse(fmt::format("garbled Proof ({} bytes, expected {})", body.size(), kMacBytes));
    return;
  }
  const std::string expected = proof(other(options_.role));
  if (CRYPTO_memcmp(expected.data(), body.data(), kMacBytes) != 0) {
    refuse("proof does not match the cluster secret");
    return;
  }
  // The peer is proven: what it states of its data directory can be judged.
  if (options_.check_incarnation && *claimed_peer_ != NodeId(0)) {
    IncarnationVerdict verdict = options_.check_incarnation(*claimed_peer_, peer_incarnation_);
    if (verdict.kind != IncarnationVerdict::Kind::kAccept) {
      // An acceptor tells the initiator; an initiator's peer is done with the
      // handshake already and would read the message as the application's.
      const bool tell = options_.role == HandshakeRole::kAcceptor;
      const bool disown = verdict.kind == IncarnationVerdict::Kind::kDisown;
      refuse(std::move(verdict.reason), !tell ? 0 : disown ? kTypeDisowned : kTypeRefusal);
      return;
    }
  }
  if (options_.role == HandshakeRole::kAcceptor) {
    outgoing_.push_back(message_start(kTypeProof) + proof(HandshakeRole::kAcceptor));
  }
  outcome_ = HandshakeAccepted{*claimed_peer_};
  stage_ = Stage::kDone;
}

void Handshake::on_refusal(std::string_view body, bool disowned) {
  std::string reason;
  if (disowned) {
    // Believed only with the MAC of a peer that knows the secret, over this
    // session's nonces (we have its Hello); else a plain refusal.
    const bool proven = stage_ == Stage::kAwaitProof && body.size() >= kMacBytes &&
                        CRYPTO_memcmp(mac(kDisownedLabel, other(options_.role)).data(), body.data(),
                                      kMacBytes) == 0;
    if (body.size() >= kMacBytes) body.remove_prefix(kMacBytes);
    if (!proven) {
      disowned = false;
      reason = "(an unproven Disowned) ";
    }
  }
  if (body.empty() || static_cast<uint8_t>(body[0]) != body.size() - 1) {
    reason += "(garbled reason)";
  } else {
    reason += printable(body.substr(1));
  }
  outcome_ = HandshakeRefused{
      fmt::format("{} refused the handshake{}: {}", who(), disowned ? " as disowned" : "", reason),
      disowned};
  stage_ = Stage::kDone;
}

std::string Handshake::proof(HandshakeRole prover) const {
  return mac(kProofLabel, prover);
}

std::string Handshake::mac(std::string_view label, HandshakeRole prover) const {
  const bool mine = prover == options_.role;
  const NodeId self = options_.self;
  const NodeId peer = claimed_peer_.value_or(NodeId(0));
  std::string data(label);
  data.push_back(static_cast<char>(prover));
  append_le64(data, (mine ? self : peer).value());
  append_le64(data, (mine ? peer : self).value());
  const auto* own = reinterpret_cast<const char*>(own_nonce_);
  const auto* theirs = reinterpret_cast<const char*>(peer_nonce_);
  data.append(mine ? own : theirs, kHandshakeNonceBytes);
  data.append(mine ? theirs : own, kHandshakeNonceBytes);
  append_le64(data, mine ? options_.incarnation : peer_incarnation_);
  append_le64(data, mine ? peer_incarnation_ : options_.incarnation);

  std::string mac(EVP_MAX_MD_SIZE, '\0');
  unsigned int mac_len = 0;
  const unsigned char* done =
      HMAC(EVP_sha256(), options_.secret.data(), static_cast<int>(options_.secret.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(),
           reinterpret_cast<unsigned char*>(mac.data()), &mac_len);
  // HMAC-SHA256 over a few bytes fails only if OpenSSL itself is broken.
  SKV_ASSERT(done != nullptr && mac_len == kMacBytes, "HMAC-SHA256 failed");
  mac.resize(kMacBytes);
  return mac;
}

std::string Handshake::who() const {
  const std::string address = options_.peer_address.empty() ? "?" : options_.peer_address;
  if (!claimed_peer_) return fmt::format("peer {}", address);
  if (*claimed_peer_ == NodeId(0)) return fmt::format("peer {} claims to be a client", address);
  return fmt::format("peer {} claims node {}", address, claimed_peer_->value());
}

void Handshake::refuse(std::string detail, uint8_t type) {
  // The peer gets the detail alone; the address is ours to know.
  if (type != 0) {
    std::string refusal = message_start(type);
    if (type == kTypeDisowned) refusal += mac(kDisownedLabel, options_.role);
    const std::string told = printable(detail);
    refusal.push_back(static_cast<char>(told.size()));
    refusal.append(told);
    outgoing_.push_back(std::move(refusal));
  }
  outcome_ = HandshakeRefused{fmt::format("{}: {}", who(), detail)};
  stage_ = Stage::kDone;
}

// An initiator's first byte is the low byte of its Hello frame's length: never
// what a RESP client sends first ('*' or a letter).
static_assert(kMagic.size() + 1 + kHelloBodyBytes < 'A' &&
              kMagic.size() + 1 + kHelloBodyBytes != '*');

std::optional<std::string> resp_client_notice(std::string_view first_bytes, uint16_t resp_port) {
  if (first_bytes.empty()) return std::nullopt;
  const unsigned char c = static_cast<unsigned char>(first_bytes.front());
  const bool resp = c == '*' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  if (!resp) return std::nullopt;
  return fmt::format(
      "-ERR this is statekv's peer port (node-to-node, authenticated with the cluster secret); "
      "Redis clients connect to the RESP port{}\r\n",
      resp_port == 0 ? std::string(" (--port)") : " " + std::to_string(resp_port));
}

}  // namespace statekv::net
