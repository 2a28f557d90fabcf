// Two reference register protocols, for tests only: they prove that the
// simulator and the checkers can tell a correct protocol from a broken one.
// Include this header from *_test.cc files only (the module's library must not
// contain them: they are not statekv protocols).
//
// Both use a fixed leader (the first member) and a per-epoch version on every
// value. The leader serves every request, one operation at a time per key:
//   * write / cas / delete: the leader computes the new value against its
//     committed state, persists it, sends Store to every follower, and replies
//     once the op is durable on itself and on enough followers for a majority
//     (followers ack only after their own record is durable: persist before send);
//   * read: the leader asks every follower for a Pong and answers from its
//     committed state once a majority (itself included) has answered, after every
//     earlier operation on the key committed.
// On restart the leader recovers its durable records, starts a new epoch
// (persisted before it serves anything), and answers nothing from the old epoch.
// Everything it ever acknowledged is durable on its own disk, so the fixed
// leader's state is always the truth: CorrectRegister is linearizable under any
// loss, delay, duplication, partition and crash the simulator produces (it is
// unavailable while the leader is down or cut off, which is allowed).
//
// BrokenRegister differs in one line: a follower answers reads from its local
// copy, which lags whenever Stores to it are lost, delayed or partitioned away:
// stale reads, which a linearizability checker must catch.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "core/assert.h"
#include "replication/codec.h"
#include "replication/env.h"

namespace statekv::sim::testing {

using replication::ClientOp;
using replication::ClientRequest;
using replication::ClientResponse;
using replication::Reader;
using replication::Writer;

// (epoch, counter): later versions win on followers.
struct Version {
  uint64_t epoch = 0;
  uint64_t counter = 0;
  auto operator<=>(const Version&) const = default;
  void encode(Writer& w) const {
    w.varint(epoch);
    w.varint(counter);
  }
  static Result<Version> decode(Reader& r) {
    auto e = r.varint();
    if (!e.ok()) return e.status();
    auto c = r.varint();
    if (!c.ok()) return c.status();
    return Version{*e, *c};
  }
};

struct Store {
  static constexpr uint32_t kTag = 1;
  std::string key;
  Version version;
  std::optional<std::string> value;  // nullopt: deleted
  void encode(Writer& w) const {
    w.bytes(key);
    version.encode(w);
    w.optional_bytes(value);
  }
  static Result<Store> decode(Reader& r) {
    Store s;
    auto k = r.bytes();
    if (!k.ok()) return k.status();
    s.key = std::move(k).value();
    auto v = Version::decode(r);
    if (!v.ok()) return v.status();
    s.version = *v;
    auto val = r.optional_bytes();
    if (!val.ok()) return val.status();
    s.value = std::move(val).value();
    return s;
  }
};

struct StoreAck {
  static constexpr uint32_t kTag = 2;
  std::string key;
  Version version;
  void encode(Writer& w) const {
    w.bytes(key);
    version.encode(w);
  }
  static Result<StoreAck> decode(Reader& r) {
    StoreAck a;
    auto k = r.bytes();
    if (!k.ok()) return k.status();
    a.key = std::move(k).value();
    auto v = Version::decode(r);
    if (!v.ok()) return v.status();
    a.version = *v;
    return a;
  }
};

// Ping and Pong share a shape: the leader's epoch and a read-round number.
template <uint32_t Tag>
struct Round {
  static constexpr uint32_t kTag = Tag;
  uint64_t epoch = 0;
  uint64_t seq = 0;
  void encode(Writer& w) const {
    w.varint(epoch);
    w.fixed64(seq);
  }
  static Result<Round> decode(Reader& r) {
    auto e = r.varint();
    if (!e.ok()) return e.status();
    auto s = r.fixed64();
    if (!s.ok()) return s.status();
    return Round{.epoch = *e, .seq = *s};
  }
};
using Ping = Round<3>;
using Pong = Round<4>;

using RegisterMessage = std::variant<Store, StoreAck, Ping, Pong>;

// Durable record: an epoch start (leader) or a stored value (leader and followers).
struct RegisterRecord {
  bool is_epoch = false;
  uint64_t epoch = 0;
  Store store;
  std::string encode() const {
    Writer w;
    w.boolean(is_epoch);
    if (is_epoch) {
      w.varint(epoch);
    } else {
      store.encode(w);
    }
    return std::move(w).take();
  }
  static Result<RegisterRecord> decode(std::string_view bytes) {
    Reader r(bytes);
    RegisterRecord rec;
    auto e = r.boolean();
    if (!e.ok()) return e.status();
    rec.is_epoch = *e;
    if (rec.is_epoch) {
      auto ep = r.varint();
      if (!ep.ok()) return ep.status();
      rec.epoch = *ep;
    } else {
      auto s = Store::decode(r);
      if (!s.ok()) return s.status();
      rec.store = std::move(s).value();
    }
    if (!r.at_end()) return Status::Corruption("trailing bytes in record");
    return rec;
  }
};

template <bool kFollowersServeReads>
class ReferenceRegister {
 public:
  using Message = RegisterMessage;

  ReferenceRegister(replication::Env<Message>& env, const replication::Membership& membership,
                    std::vector<std::string> recovered)
      : env_(env), members_(membership), leader_(membership.nodes.front()) {
    uint64_t max_epoch = 0;
    for (const std::string& bytes : recovered) {
      Result<RegisterRecord> rec = RegisterRecord::decode(bytes);
      // The disk verified the checksum: a record that does not decode is our bug.
      SKV_ASSERT(rec.ok(), "recovered register record does not decode");
      if (rec->is_epoch) {
        max_epoch = std::max(max_epoch, rec->epoch);
      } else {
        Versioned& v = state_[rec->store.key];
        if (rec->store.version > v.version) v = {rec->store.version, rec->store.value};
        durable_[rec->store.key] = std::max(durable_[rec->store.key], rec->store.version);
      }
    }
    if (is_leader()) {
      epoch_ = max_epoch + 1;
      epoch_token_ =
          env_.persist(RegisterRecord{.is_epoch = true, .epoch = epoch_, .store = {}}.encode());
      env_.set_timer(kRetransmit);
    }
  }

  void on_request(const ClientRequest& req) {
    if (!is_leader()) {
      if (kFollowersServeReads && req.op == ClientOp::kRead) {
        env_.reply(req.id, ClientResponse{.value = current(req.key),
                                          .leader_hint = {},
                                          .session = {}});  // the bug: maybe stale
        return;
      }
      env_.reply(req.id, ClientResponse{.outcome = ClientResponse::Outcome::kFail,
                                        .value = {},
                                        .leader_hint = leader_,
                                        .not_served = true,
                                        .session = {}});
      return;
    }
    Key& k = keys_[req.key];
    k.queue.push_back(req);
    if (ready_) start_next(req.key, k);
  }

  void on_message(NodeId from, const Message& msg) {
    std::visit([&](const auto& m) { handle(from, m); }, msg);
  }

  void on_timer(replication::TimerId) {
    // Lost messages are recovered by resending whatever is still unanswered.
    for (auto& [key, k] : keys_) {
      if (k.inflight) send_round(key, k);
    }
    env_.set_timer(kRetransmit);
  }

  void on_persisted(replication::PersistToken token) {
    if (is_leader() && !ready_ && token >= epoch_token_) {
      ready_ = true;
      for (auto& [key, k] : keys_) start_next(key, k);
    }
    // Followers: the promise "I have it" may be sent only now.
    while (!unacked_.empty() && unacked_.begin()->first <= token) {
      auto& [t, store] = *unacked_.begin();
      Version& d = durable_[store.key];
      d = std::max(d, store.version);
      if (is_leader()) {
        leader_persisted(store.key, store.version);
      } else {
        env_.send(leader_, StoreAck{store.key, store.version});
      }
      unacked_.erase(unacked_.begin());
    }
  }

 private:
  static constexpr replication::Duration kRetransmit = std::chrono::milliseconds(20);

  struct Versioned {
    Version version;
    std::optional<std::string> value;
  };
  struct InFlight {
    ClientRequest req;
    bool is_read = false;
    Version version;                  // writes
    std::optional<std::string> next;  // writes: the value being installed
    uint64_t seq = 0;                 // reads
    bool self_durable = false;
    std::set<NodeId> acks;
  };
  struct Key {
    std::vector<ClientRequest> queue;  // FIFO; front is in flight when `inflight`
    std::optional<InFlight> inflight;
  };

  bool is_leader() const { return members_.self == leader_; }
  std::optional<std::string> current(const std::string& key) const {
    auto it = state_.find(key);
    return it == state_.end() ? std::nullopt : it->second.value;
  }

  void start_next(const std::string& key, Key& k) {
    while (!k.inflight && !k.queue.empty()) {
      ClientRequest req = k.queue.front();
      k.queue.erase(k.queue.begin());
      InFlight f{.req = req, .version = {}, .next = {}, .acks = {}};
      if (req.op == ClientOp::kRead) {
        f.is_read = true;
        f.seq = ++read_seq_;
        f.self_durable = true;
        read_rounds_[f.seq] = key;
      } else {
        if (req.op == ClientOp::kCas && current(key) != req.expected) {
          env_.reply(req.id, ClientResponse{.outcome = ClientResponse::Outcome::kFail,
                                            .value = {},
                                            .leader_hint = {},
                                            .session = {}});
          continue;
        }
        f.version = Version{epoch_, ++counter_};
        f.next = req.op == ClientOp::kDelete ? std::nullopt : req.value;
        Store store{key, f.version, f.next};
        unacked_.emplace(env_.persist(RegisterRecord{.store = store}.encode()), store);
      }
      k.inflight = std::move(f);
      send_round(key, k);
      maybe_commit(key, k);
    }
  }

  void send_round(const std::string& key, Key& k) {
    const InFlight& f = *k.inflight;
    for (NodeId n : members_.nodes) {
      if (n == leader_ || f.acks.contains(n)) continue;
      if (f.is_read) {
        env_.send(n, Ping{.epoch = epoch_, .seq = f.seq});
      } else {
        env_.send(n, Store{key, f.version, f.next});
      }
    }
  }

  void leader_persisted(const std::string& key, Version v) {
    auto it = keys_.find(key);
    if (it == keys_.end() || !it->second.inflight) return;
    InFlight& f = *it->second.inflight;
    if (f.is_read || f.version != v) return;
    f.self_durable = true;
    maybe_commit(key, it->second);
  }

  void maybe_commit(const std::string& key, Key& k) {
    InFlight& f = *k.inflight;
    if (!f.self_durable || f.acks.size() + 1 < members_.majority()) return;
    if (f.is_read) {
      read_rounds_.erase(f.seq);
      env_.reply(f.req.id, ClientResponse{.value = current(key), .leader_hint = {}, .session = {}});
    } else {
      state_[key] = Versioned{f.version, f.next};
      env_.reply(f.req.id, ClientResponse{});
    }
    k.inflight.reset();
    start_next(key, k);
  }

  void handle(NodeId from, const Store& s) {
    if (is_leader()) return;
    Versioned& v = state_[s.key];
    if (s.version > v.version) {
      v = {s.version, s.value};
      unacked_.emplace(env_.persist(RegisterRecord{.store = s}.encode()), s);
    } else if (durable_[s.key] >= s.version) {
      env_.send(leader_, StoreAck{s.key, s.version});  // a resend: the ack was lost
    }
  }
  void handle(NodeId from, const StoreAck& a) {
    auto it = keys_.find(a.key);
    if (!is_leader() || it == keys_.end() || !it->second.inflight) return;
    InFlight& f = *it->second.inflight;
    if (f.is_read || f.version != a.version) return;
    f.acks.insert(from);
    maybe_commit(a.key, it->second);
  }
  void handle(NodeId from, const Ping& p) {
    if (!is_leader()) env_.send(from, Pong{.epoch = p.epoch, .seq = p.seq});
  }
  void handle(NodeId from, const Pong& p) {
    if (!is_leader() || p.epoch != epoch_) return;
    auto round = read_rounds_.find(p.seq);
    if (round == read_rounds_.end()) return;  // answered already
    const std::string key = round->second;
    Key& k = keys_[key];
    k.inflight->acks.insert(from);
    maybe_commit(key, k);
  }

  replication::Env<Message>& env_;
  replication::Membership members_;
  NodeId leader_;
  std::map<std::string, Versioned> state_;              // leader: committed; follower: latest seen
  std::map<std::string, Version> durable_;              // newest version durable per key
  std::map<replication::PersistToken, Store> unacked_;  // persisted, not yet durable
  // Leader only.
  uint64_t epoch_ = 0;
  replication::PersistToken epoch_token_;
  bool ready_ = false;
  uint64_t counter_ = 0;
  uint64_t read_seq_ = 0;
  std::map<std::string, Key> keys_;
  std::map<uint64_t, std::string> read_rounds_;  // open read round -> its key
};

using CorrectRegister = ReferenceRegister<false>;
using BrokenRegister = ReferenceRegister<true>;

}  // namespace statekv::sim::testing
