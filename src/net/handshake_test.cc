#include "net/handshake.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <set>

#include "net/frame.h"

namespace statekv::net {
namespace {

using Messages = std::vector<std::string>;

// A nonce source that yields a fixed, distinct nonce per seed.
NonceSource fixed_nonce(uint8_t seed) {
  return [seed](std::span<uint8_t> out) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(seed * 37 + i);
    return Status::OK();
  };
}

// Each test node's incarnation (a client has none).
uint64_t incarnation_of(uint64_t node) {
  return node == 0 ? 0 : 0xabc000 + node;
}

HandshakeOptions options(std::string secret, uint64_t self, HandshakeRole role,
                         uint8_t nonce_seed) {
  HandshakeOptions o;
  o.secret = std::move(secret);
  o.self = NodeId(self);
  o.role = role;
  o.incarnation = incarnation_of(self);
  o.peer_address = "127.0.0.1:1234";
  o.nonce_source = fixed_nonce(nonce_seed);
  return o;
}

Handshake start(HandshakeOptions o) {
  auto hs = Handshake::start(std::move(o));
  EXPECT_TRUE(hs.ok()) << hs.status().to_string();
  return std::move(hs).value();
}

Handshake initiator(std::string secret = "s3cret", uint64_t self = 1, uint8_t nonce = 1) {
  return start(options(std::move(secret), self, HandshakeRole::kInitiator, nonce));
}
Handshake acceptor(std::string secret = "s3cret", uint64_t self = 2, uint8_t nonce = 2) {
  return start(options(std::move(secret), self, HandshakeRole::kAcceptor, nonce));
}

uint8_t type_of(const std::string& message) {
  return static_cast<uint8_t>(message.at(4));
}
constexpr uint8_t kHello = 1, kProof = 2, kRefusal = 3, kDisowned = 4;

// Delivers messages both ways until neither side has anything to say. Records what
// each side sent.
struct Exchange {
  Messages from_a, from_b;
};
Exchange run(Handshake& a, Handshake& b) {
  Exchange log;
  bool moved = true;
  while (moved) {
    moved = false;
    for (auto& m : a.take_outgoing()) {
      moved = true;
      log.from_a.push_back(m);
      if (!b.done()) b.on_frame(m);
    }
    for (auto& m : b.take_outgoing()) {
      moved = true;
      log.from_b.push_back(m);
      if (!a.done()) a.on_frame(m);
    }
  }
  return log;
}

std::vector<uint8_t> types(const Messages& ms) {
  std::vector<uint8_t> out;
  for (const auto& m : ms) out.push_back(type_of(m));
  return out;
}

TEST(Handshake, SameSecretBothAcceptAndLearnEachOthersIds) {
  Handshake i = initiator("s3cret", 1), a = acceptor("s3cret", 2);
  Exchange ex = run(i, a);
  ASSERT_TRUE(i.accepted()) << i.refusal_reason();
  ASSERT_TRUE(a.accepted()) << a.refusal_reason();
  EXPECT_EQ(i.peer(), NodeId(2));
  EXPECT_EQ(a.peer(), NodeId(1));
  EXPECT_EQ(types(ex.from_a), (std::vector<uint8_t>{kHello, kProof}));
  EXPECT_EQ(types(ex.from_b), (std::vector<uint8_t>{kHello, kProof}));
}

// check_incarnation answering `kind` for every peer, recording what it was asked.
struct IncarnationJudge {
  IncarnationVerdict::Kind kind = IncarnationVerdict::Kind::kAccept;
  std::vector<std::pair<NodeId, uint64_t>> asked;
  std::function<IncarnationVerdict(NodeId, uint64_t)> callback() {
    return [this](NodeId peer, uint64_t incarnation) {
      asked.emplace_back(peer, incarnation);
      return IncarnationVerdict{
          kind, "node " + std::to_string(peer.value()) + " had another data directory"};
    };
  }
};

TEST(Handshake, EachSideJudgesTheIncarnationTheProvenPeerStated) {
  IncarnationJudge ij, aj;
  HandshakeOptions io = options("s3cret", 1, HandshakeRole::kInitiator, 1);
  HandshakeOptions ao = options("s3cret", 2, HandshakeRole::kAcceptor, 2);
  io.check_incarnation = ij.callback();
  ao.check_incarnation = aj.callback();
  Handshake i = start(std::move(io)), a = start(std::move(ao));
  run(i, a);
  ASSERT_TRUE(i.accepted() && a.accepted());
  EXPECT_EQ(ij.asked, (std::vector<std::pair<NodeId, uint64_t>>{{NodeId(2), incarnation_of(2)}}));
  EXPECT_EQ(aj.asked, (std::vector<std::pair<NodeId, uint64_t>>{{NodeId(1), incarnation_of(1)}}));
}

// An acceptor that disowns the initiator says so (Disowned); one that cannot
// take its incarnation now (it could not record it) refuses plainly. Neither
// proves itself to it: the refused node learns nothing it could use.
TEST(Handshake, AnAcceptorTellsTheInitiatorWhetherItDisownsIt) {
  for (auto kind : {IncarnationVerdict::Kind::kDisown, IncarnationVerdict::Kind::kRefuse}) {
    const bool disown = kind == IncarnationVerdict::Kind::kDisown;
    SCOPED_TRACE(disown ? "disown" : "refuse");
    IncarnationJudge aj;
    aj.kind = kind;
    HandshakeOptions ao = options("s3cret", 2, HandshakeRole::kAcceptor, 2);
    ao.check_incarnation = aj.callback();
    Handshake i = initiator("s3cret", 1), a = start(std::move(ao));
    Exchange ex = run(i, a);
    ASSERT_TRUE(a.refused());
    ASSERT_TRUE(i.refused());
    EXPECT_EQ(types(ex.from_b), (std::vector<uint8_t>{kHello, disown ? kDisowned : kRefusal}));
    const auto& told = std::get<HandshakeRefused>(i.outcome());
    EXPECT_EQ(told.disowned, disown);
    EXPECT_NE(told.reason.find(disown ? "refused the handshake as disowned: node 1 had another"
                                      : "refused the handshake: node 1 had another"),
              std::string::npos)
        << told.reason;
    // The acceptor was not told it is disowned: it did the disowning.
    EXPECT_FALSE(std::get<HandshakeRefused>(a.outcome()).disowned);
  }
}

// Only a peer that knows the secret can make a node stop: a Disowned whose MAC
// does not verify (a stranger at a peer's address) is a plain refusal.
TEST(Handshake, ADisownedWithoutTheSecretsMacIsAPlainRefusal) {
  for (const std::string secret : {"s3cret", "another secret"}) {
    SCOPED_TRACE(secret);
    Handshake i = initiator("s3cret", 1), a = acceptor(secret, 2);
    a.on_frame(i.take_outgoing().at(0));  // the initiator's Hello
    i.on_frame(a.take_outgoing().at(0));  // the acceptor's Hello
    ASSERT_FALSE(i.done());
    std::string forged = "SKVP";
    forged.push_back(static_cast<char>(kDisowned));
    // The acceptor's MAC, made with what the stranger knows: not the secret
    // (or a MAC of nothing at all).
    forged += secret == "s3cret" ? std::string(32, '\x5a') : std::string(32, '\0');
    const std::string reason = "you lost your data";
    forged.push_back(static_cast<char>(reason.size()));
    forged += reason;
    i.on_frame(forged);
    ASSERT_TRUE(i.refused());
    const auto& told = std::get<HandshakeRefused>(i.outcome());
    EXPECT_FALSE(told.disowned);
    EXPECT_NE(told.reason.find("(an unproven Disowned) you lost your data"), std::string::npos)
        << told.reason;
  }
}

TEST(Handshake, AnInitiatorDisowningItsAcceptorClosesWithoutAWord) {
  IncarnationJudge ij;
  ij.kind = IncarnationVerdict::Kind::kDisown;
  HandshakeOptions io = options("s3cret", 1, HandshakeRole::kInitiator, 1);
  io.check_incarnation = ij.callback();
  Handshake i = start(std::move(io)), a = acceptor("s3cret", 2);
  Exchange ex = run(i, a);
  ASSERT_TRUE(i.refused());
  // The acceptor was done when the initiator judged it: anything more would
  // reach it as the application's frames.
  EXPECT_EQ(types(ex.from_a), (std::vector<uint8_t>{kHello, kProof}));
  EXPECT_TRUE(a.accepted());
}

TEST(Handshake, NoIncarnationIsJudgedBeforeTheProofNorAClients) {
  IncarnationJudge aj;
  HandshakeOptions ao = options("another secret", 2, HandshakeRole::kAcceptor, 2);
  ao.check_incarnation = aj.callback();
  Handshake stranger = initiator("s3cret", 1), a = start(std::move(ao));
  run(stranger, a);
  EXPECT_TRUE(a.refused());
  HandshakeOptions ao2 = options("s3cret", 2, HandshakeRole::kAcceptor, 2);
  ao2.check_incarnation = aj.callback();
  Handshake client = initiator("s3cret", 0), a2 = start(std::move(ao2));
  run(client, a2);
  EXPECT_TRUE(a2.accepted());
  EXPECT_TRUE(aj.asked.empty());
}

TEST(Handshake, ANodeWithoutAnIncarnationOrAClientWithOneIsRefused) {
  HandshakeOptions bad = options("s3cret", 1, HandshakeRole::kInitiator, 1);
  bad.incarnation = 0;
  EXPECT_FALSE(Handshake::start(bad).ok());
  HandshakeOptions bad_client = options("s3cret", 0, HandshakeRole::kInitiator, 1);
  bad_client.incarnation = 5;
  EXPECT_FALSE(Handshake::start(bad_client).ok());
}

TEST(Handshake, AClientIsNodeZero) {
  Handshake client = initiator("s3cret", 0), node = acceptor("s3cret", 3);
  run(client, node);
  ASSERT_TRUE(node.accepted()) << node.refusal_reason();
  EXPECT_EQ(node.peer(), NodeId(0));
  EXPECT_EQ(client.peer(), NodeId(3));
}

TEST(Handshake, WorksWithRealRandomNonces) {
  HandshakeOptions io = options("s3cret", 1, HandshakeRole::kInitiator, 0);
  HandshakeOptions ao = options("s3cret", 2, HandshakeRole::kAcceptor, 0);
  io.nonce_source = nullptr;
  ao.nonce_source = nullptr;
  Handshake i = start(std::move(io)), a = start(std::move(ao));
  run(i, a);
  EXPECT_TRUE(i.accepted() && a.accepted());
}

TEST(Handshake, DifferentSecretsBothRefuse) {
  Handshake i = initiator("one secret", 1), a = acceptor("another secret", 2);
  Exchange ex = run(i, a);
  ASSERT_TRUE(a.refused());
  ASSERT_TRUE(i.refused());
  EXPECT_EQ(a.refusal_reason(),
            "peer 127.0.0.1:1234 claims node 1: proof does not match the cluster secret");
  EXPECT_NE(i.refusal_reason().find("refused the handshake: proof does not match"),
            std::string::npos)
      << i.refusal_reason();
  // The acceptor never proved anything to a peer that failed to prove itself.
  EXPECT_EQ(types(ex.from_b), (std::vector<uint8_t>{kHello, kRefusal}));
}

TEST(Handshake, AProofReplayedFromAnEarlierSessionIsRefused) {
  // Session 1, recorded by an eavesdropper.
  Handshake i1 = initiator("s3cret", 1, /*nonce=*/10), a1 = acceptor("s3cret", 2, /*nonce=*/20);
  Exchange recorded = run(i1, a1);
  ASSERT_TRUE(a1.accepted());

  // Replaying the initiator's messages to a new acceptor session: its nonce is new.
  Handshake a2 = acceptor("s3cret", 2, /*nonce=*/21);
  for (const auto& m : recorded.from_a) a2.on_frame(m);
  ASSERT_TRUE(a2.refused());
  EXPECT_NE(a2.refusal_reason().find("proof does not match"), std::string::npos);

  // Control: only the fresh nonce stops it; the same acceptor nonce would accept.
  Handshake same_nonce = acceptor("s3cret", 2, /*nonce=*/20);
  for (const auto& m : recorded.from_a) same_nonce.on_frame(m);
  EXPECT_TRUE(same_nonce.accepted());
}

TEST(Handshake, AProofReflectedOnTheSameConnectionIsRefused) {
  // An attacker without the secret answers an initiator and sends its proof back.
  Handshake i = initiator("s3cret", 1);
  Handshake attacker_hello_source = acceptor("unknown", 2, /*nonce=*/99);
  const std::string attacker_hello = attacker_hello_source.take_outgoing().at(0);
  i.take_outgoing();
  i.on_frame(attacker_hello);
  Messages sent = i.take_outgoing();
  ASSERT_EQ(types(sent), (std::vector<uint8_t>{kProof}));
  i.on_frame(sent[0]);  // the initiator's own proof, reflected
  ASSERT_TRUE(i.refused());
  EXPECT_NE(i.refusal_reason().find("proof does not match"), std::string::npos);
}

TEST(Handshake, AHelloReflectedBackIsRefused) {
  Handshake a = acceptor("s3cret", 2);
  const std::string own_hello = a.take_outgoing().at(0);
  a.on_frame(own_hello);
  ASSERT_TRUE(a.refused());
  EXPECT_NE(a.refusal_reason().find("we are the acceptor"), std::string::npos)
      << a.refusal_reason();
}

TEST(Handshake, AProofReflectedFromAnotherConnectionOfTheSameNodeIsRefused) {
  // Node 1 accepts a connection from the attacker and, on another connection, dials
  // the attacker. The attacker tries to make node 1's outbound proof pass inbound.
  Handshake inbound = acceptor("s3cret", 1, /*nonce=*/30);
  Handshake outbound = initiator("s3cret", 1, /*nonce=*/31);
  const std::string inbound_hello = inbound.take_outgoing().at(0);
  const std::string outbound_hello = outbound.take_outgoing().at(0);
  const std::string inbound_nonce = inbound_hello.substr(26);
  const std::string outbound_nonce = outbound_hello.substr(26);

  // The attacker crafts Hellos by hand (it can: they carry no secret).
  auto hello = [](HandshakeRole role, uint64_t id, const std::string& nonce) {
    std::string m = "SKVP";
    m.push_back(1);
    for (int k = 0; k < 4; ++k) m.push_back(static_cast<char>(kHandshakeVersion >> (8 * k)));
    m.push_back(static_cast<char>(role));
    for (int k = 0; k < 8; ++k) m.push_back(static_cast<char>(id >> (8 * k)));
    const uint64_t incarnation = incarnation_of(id);
    for (int k = 0; k < 8; ++k) m.push_back(static_cast<char>(incarnation >> (8 * k)));
    return m + nonce;
  };

  // Claiming node 1's own id gets no proof out of the outbound side at all.
  outbound.on_frame(hello(HandshakeRole::kAcceptor, 1, inbound_nonce));
  EXPECT_TRUE(outbound.refused());
  EXPECT_EQ(types(outbound.take_outgoing()), (std::vector<uint8_t>{kRefusal}));

  // With another id it gets a proof, but that proof names node 1 as its prover.
  Handshake outbound2 = initiator("s3cret", 1, /*nonce=*/31);
  outbound2.take_outgoing();
  outbound2.on_frame(hello(HandshakeRole::kAcceptor, 7, inbound_nonce));
  Messages proof = outbound2.take_outgoing();
  ASSERT_EQ(types(proof), (std::vector<uint8_t>{kProof}));
  for (uint64_t claim : {uint64_t{1}, uint64_t{7}}) {
    SCOPED_TRACE("inbound claim node " + std::to_string(claim));
    Handshake in = acceptor("s3cret", 1, /*nonce=*/30);
    in.on_frame(hello(HandshakeRole::kInitiator, claim, outbound_nonce));
    if (!in.done()) in.on_frame(proof[0]);
    EXPECT_TRUE(in.refused());
  }
}

TEST(Handshake, APeerEchoingOurNonceIsRefused) {
  Handshake a = acceptor("s3cret", 2, /*nonce=*/5);
  Handshake i = initiator("s3cret", 1, /*nonce=*/5);
  run(i, a);
  EXPECT_TRUE(a.refused());
  EXPECT_NE(a.refusal_reason().find("nonce"), std::string::npos) << a.refusal_reason();
}

TEST(Handshake, TruncatedOrGarbledInputIsNeverAccepted) {
  Handshake i0 = initiator(), a0 = acceptor();
  const Messages good = run(i0, a0).from_a;  // the initiator's Hello and Proof
  ASSERT_EQ(good.size(), 2u);

  auto acceptor_verdict = [](const Messages& input) {
    Handshake a = acceptor();
    for (const auto& m : input) {
      if (a.done()) break;
      a.on_frame(m);
    }
    return a.accepted();
  };
  ASSERT_TRUE(acceptor_verdict(good));
  for (size_t msg = 0; msg < good.size(); ++msg) {
    for (size_t len = 0; len < good[msg].size(); ++len) {
      Messages input = good;
      input[msg].resize(len);
      EXPECT_FALSE(acceptor_verdict(input)) << "message " << msg << " cut to " << len;
    }
    for (size_t at = 0; at < good[msg].size(); ++at) {
      Messages input = good;
      input[msg][at] ^= 0x01;
      EXPECT_FALSE(acceptor_verdict(input)) << "message " << msg << " byte " << at;
    }
    Messages longer = good;
    longer[msg].push_back('\0');
    EXPECT_FALSE(acceptor_verdict(longer)) << "message " << msg << " with a trailing byte";
  }
  EXPECT_FALSE(acceptor_verdict({good[1], good[0]})) << "proof before hello";
  EXPECT_FALSE(acceptor_verdict({good[0], good[0], good[1]})) << "hello twice";
  EXPECT_FALSE(acceptor_verdict({"", good[0], good[1]}));
  EXPECT_FALSE(acceptor_verdict({"*1\r\n$4\r\nPING\r\n"})) << "an application frame first";
}

TEST(Handshake, ReasonsNameThePeerAndWhatWentWrong) {
  Handshake a = acceptor();
  a.on_frame("GET / HTTP/1.1");
  EXPECT_EQ(a.refusal_reason(), "peer 127.0.0.1:1234: not a statekv handshake message (bad magic)");

  Handshake i0 = initiator();
  std::string hello = i0.take_outgoing().at(0);
  hello[5] = 9;  // version 9
  Handshake b = acceptor();
  b.on_frame(hello);
  EXPECT_NE(b.refusal_reason().find(fmt::format("speaks handshake version 9, we speak {}",
                                                kHandshakeVersion)),
            std::string::npos)
      << b.refusal_reason();
}

TEST(Handshake, AllowPeerDecidesWhoMayConnect) {
  auto members = [](NodeId id) { return id == NodeId(1) || id == NodeId(2); };
  HandshakeOptions ao = options("s3cret", 2, HandshakeRole::kAcceptor, 2);
  ao.allow_peer = members;
  Handshake a = start(ao);
  Handshake stranger = initiator("s3cret", 9);
  Exchange ex = run(stranger, a);
  EXPECT_TRUE(a.refused());
  EXPECT_EQ(a.refusal_reason(),
            "peer 127.0.0.1:1234 claims node 9: that node may not connect here");
  EXPECT_EQ(types(ex.from_b), (std::vector<uint8_t>{kHello, kRefusal}));

  Handshake a2 = start(ao);
  Handshake member = initiator("s3cret", 1);
  run(member, a2);
  EXPECT_TRUE(a2.accepted());

  // An initiator checks that it reached the node it dialled.
  HandshakeOptions io = options("s3cret", 1, HandshakeRole::kInitiator, 1);
  io.allow_peer = [](NodeId id) { return id == NodeId(3); };
  Handshake dialer = start(io);
  Handshake wrong = acceptor("s3cret", 4);
  run(dialer, wrong);
  EXPECT_TRUE(dialer.refused());
  EXPECT_NE(dialer.refusal_reason().find("not the node we meant to reach"), std::string::npos);
}

TEST(Handshake, BadConfigurationIsRejectedAtStart) {
  auto empty = Handshake::start(options("", 1, HandshakeRole::kInitiator, 1));
  ASSERT_FALSE(empty.ok());
  EXPECT_TRUE(empty.status().is_invalid_argument());

  auto anonymous_acceptor = Handshake::start(options("s3cret", 0, HandshakeRole::kAcceptor, 1));
  EXPECT_TRUE(anonymous_acceptor.status().is_invalid_argument());

  HandshakeOptions broken = options("s3cret", 1, HandshakeRole::kInitiator, 1);
  broken.nonce_source = [](std::span<uint8_t>) { return Status::IOError("no entropy"); };
  auto failed = Handshake::start(broken);
  EXPECT_TRUE(failed.status().is_io_error());
}

TEST(Handshake, NoncesDifferPerSession) {
  std::set<std::string> nonces;
  for (int k = 0; k < 20; ++k) {
    HandshakeOptions o = options("s3cret", 1, HandshakeRole::kInitiator, 0);
    o.nonce_source = nullptr;
    Handshake h = start(o);
    nonces.insert(h.take_outgoing().at(0).substr(18));
  }
  EXPECT_EQ(nonces.size(), 20u);
}

TEST(Handshake, OverFramesWithApplicationDataRightBehind) {
  Handshake i = initiator(), a = acceptor();
  FrameReader to_i, to_a;
  std::vector<std::string> app_at_i;
  auto pump = [](Handshake& hs, std::string& wire) {
    for (auto& m : hs.take_outgoing()) append_frame(wire, m);
  };
  std::string wire_ia, wire_ai;
  bool app_sent = false;
  pump(i, wire_ia);
  pump(a, wire_ai);
  for (int round = 0; round < 5; ++round) {
    to_a.feed(wire_ia);
    wire_ia.clear();
    while (auto f = to_a.next()) {
      if (!f->has_value()) break;
      ASSERT_FALSE(a.done());
      a.on_frame(**f);
    }
    pump(a, wire_ai);
    if (a.accepted() && !app_sent) {
      append_frame(wire_ai, "application data");  // in the same write as its Proof
      app_sent = true;
    }
    to_i.feed(wire_ai);
    wire_ai.clear();
    while (auto f = to_i.next()) {
      if (!f->has_value()) break;
      if (!i.done()) {
        i.on_frame(**f);
      } else {
        app_at_i.push_back(**f);
      }
    }
    pump(i, wire_ia);
  }
  EXPECT_TRUE(i.accepted());
  EXPECT_TRUE(a.accepted());
  EXPECT_EQ(app_at_i, (std::vector<std::string>{"application data"}));
}

TEST(Handshake, APeersRefusalIsReportedPrintably) {
  Handshake i = initiator();
  std::string refusal = "SKVP";
  refusal.push_back(3);
  refusal.push_back(6);
  refusal.append("no\n\x01ok");
  i.on_frame(refusal);
  ASSERT_TRUE(i.refused());
  EXPECT_EQ(i.refusal_reason(), "peer 127.0.0.1:1234 refused the handshake: no??ok");
  i.on_frame("ignored once refused");
  EXPECT_TRUE(i.refused());
}

// A Redis client at the peer port (RESP array or inline command) is told where
// to go; a statekv initiator's first bytes (its Hello frame) never are.
TEST(Handshake, RespClientsAreToldApartFromPeers) {
  auto notice = resp_client_notice("*1\r\n$4\r\nPING\r\n", 7001);
  ASSERT_TRUE(notice.has_value());
  EXPECT_EQ(*notice,
            "-ERR this is statekv's peer port (node-to-node, authenticated with the cluster "
            "secret); Redis clients connect to the RESP port 7001\r\n");
  EXPECT_TRUE(resp_client_notice("PING\r\n", 0).has_value());
  EXPECT_TRUE(resp_client_notice("get k\r\n", 1).has_value());
  EXPECT_FALSE(resp_client_notice("", 1).has_value());
  for (uint64_t self : {0, 1, 255}) {
    auto hs = Handshake::start(options("s3cret", self, HandshakeRole::kInitiator, 1));
    ASSERT_TRUE(hs.ok());
    const std::string first = encode_frame(hs->take_outgoing().front());
    EXPECT_FALSE(resp_client_notice(first, 1).has_value()) << "node " << self;
  }
}

}  // namespace
}  // namespace statekv::net
