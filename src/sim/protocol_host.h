// Hosting a typed protocol behind a byte-level interface.
//
// A runtime moves bytes, not C++ types: it must not know each protocol's message
// variant. HostedNode is the type-erased face of one protocol instance; host<P>()
// wraps a ReplicationProtocol so that every message it sends is encoded with the
// codec (replication/codec.h) and every message it receives is decoded, and
// re-encoded to check the codec is a true round trip. net/ can reuse this.
//
// Ownership: the hosted node keeps a reference to the ByteEnv; the runtime must
// keep that env alive for as long as the node. Not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "replication/codec.h"
#include "replication/env.h"

namespace statekv::sim {

// The runtime side of Env with messages already encoded.
class ByteEnv : public replication::Environment {
 public:
  virtual void send_bytes(NodeId to, std::string bytes) = 0;
};

class HostedNode {
 public:
  virtual ~HostedNode() = default;
  // Decodes and delivers a message. Corruption if the bytes do not decode, or do
  // not re-encode to the same bytes (a codec bug); the protocol is not called then.
  virtual Status deliver(NodeId from, std::string_view bytes) = 0;
  virtual void on_request(const replication::ClientRequest& req) = 0;
  virtual void on_timer(replication::TimerId id) = 0;
  virtual void on_persisted(replication::PersistToken token) = 0;
  // The host heard nothing from `peer`'s node for a while (GroupHost's peer
  // heartbeats). Protocols that go quiet when idle use it to notice a dead
  // leader; others ignore it.
  virtual void on_peer_down(NodeId peer) {}
};

namespace detail {

template <typename Message>
class TypedEnv final : public replication::Env<Message> {
 public:
  explicit TypedEnv(ByteEnv& inner) : inner_(inner) {}
  void send(NodeId to, const Message& msg) override {
    inner_.send_bytes(to, replication::encode_message(msg));
  }
  void reply(RequestId request, replication::ClientResponse response) override {
    inner_.reply(request, std::move(response));
  }
  replication::TimerId set_timer(replication::Duration delay) override {
    return inner_.set_timer(delay);
  }
  void cancel_timer(replication::TimerId id) override { inner_.cancel_timer(id); }
  replication::Instant now() const override { return inner_.now(); }
  replication::PersistToken persist(std::string record) override {
    return inner_.persist(std::move(record));
  }
  replication::PersistToken persist_checkpoint(std::string record) override {
    return inner_.persist_checkpoint(std::move(record));
  }
  Random& random() override { return inner_.random(); }

 private:
  ByteEnv& inner_;
};

template <replication::ReplicationProtocol P>
class Hosted final : public HostedNode {
 public:
  Hosted(ByteEnv& env, const replication::Membership& membership,
         std::vector<std::string> recovered)
      : env_(env), protocol_(env_, membership, std::move(recovered)) {}

  Status deliver(NodeId from, std::string_view bytes) override {
    Result<typename P::Message> msg = replication::decode_message<typename P::Message>(bytes);
    if (!msg.ok()) return msg.status();
    if (replication::encode_message(*msg) != bytes) {
      return Status::Corruption("codec is not a round trip: re-encoding gives other bytes");
    }
    protocol_.on_message(from, *msg);
    return Status::OK();
  }
  void on_request(const replication::ClientRequest& req) override { protocol_.on_request(req); }
  void on_timer(replication::TimerId id) override { protocol_.on_timer(id); }
  void on_persisted(replication::PersistToken token) override { protocol_.on_persisted(token); }
  void on_peer_down(NodeId peer) override {
    if constexpr (requires(P & p) { p.on_peer_down(peer); }) protocol_.on_peer_down(peer);
  }

 private:
  TypedEnv<typename P::Message> env_;
  P protocol_;
};

}  // namespace detail

// Builds (or, after a crash, rebuilds) one instance of protocol P.
template <replication::ReplicationProtocol P>
std::unique_ptr<HostedNode> host(ByteEnv& env, const replication::Membership& membership,
                                 std::vector<std::string> recovered) {
  return std::make_unique<detail::Hosted<P>>(env, membership, std::move(recovered));
}

}  // namespace statekv::sim
