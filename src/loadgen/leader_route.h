// `statekv bench --target resp --route leader`: every client sends each SET
// straight to the node that serves the key's writes, as a smart Redis Cluster
// client sends each key to its slot's master, instead of to one node that
// forwards it (--route spread: client c on endpoint c % N).
//
// Where a key goes comes from statekv's LOCATE (docs/routing.md): the key's
// keyspace, shard, owners with their RESP addresses, and for a REPLICATION
// consensus keyspace the leader of the shard's replica group. The node that
// serves the key's writes is that leader, or the key's first owner for a
// keyspace that is not replicated. Its address is matched to the endpoints
// given (same host and port, as LOCATE prints them); a key whose node is not
// among them, or whose group has no leader known (an election), goes to the
// client's spread endpoint, which forwards it.
//
// Model: before the run, locate_keys asks LOCATE once for every key of the key
// space (pipelined on one connection; a thousand keys take a few
// milliseconds), and records each key's shard and each shard's endpoint in a
// LeaderTable that all clients share. A put to a shard's endpoint that fails,
// or that finds the endpoint's node not answering (the put then goes to the
// client's spread endpoint, which holds it until the group has a leader),
// forgets the shard's endpoint: the next put of one of its keys asks LOCATE
// again (through the spread endpoint), so a failover that moved the leader is
// followed after the first error. A leader that moved without an
// error is not noticed: the old leader forwards, which costs speed, not
// correctness (any statekv node serves any key).
//
// Thread safety: a LeaderTable may be used from any thread. Each connection
// from the factory is used by one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/status.h"
#include "loadgen/load.h"
#include "loadgen/resp_connection.h"
#include "resp/value.h"

namespace statekv::loadgen {

// How --target resp clients pick the node for a key.
enum class RespRoute {
  kSpread,  // client c talks to endpoint c % N only (the node forwards)
  kLeader,  // each key to the endpoint that serves its writes (LeaderTable)
};

// The parts of a LOCATE reply a client routes by.
struct KeyLocation {
  std::string keyspace;
  int64_t shard = 0;
  // "host:port" of the node that serves the key's writes: its replica group's
  // leader, or its first owner when the keyspace is not replicated. Empty when
  // the answering node knows no leader (an election, or it is no member).
  std::string target;
  std::vector<std::string> addresses;  // every owner's RESP address
};

// Reads LOCATE's reply: a map (RESP3) or a flat array of field, value pairs
// (RESP2). An error reply or a reply without keyspace, shard, owners and
// addresses is an error naming what came back.
Result<KeyLocation> parse_locate_reply(const resp::Value& reply);

// Which endpoint serves each key, shared by the clients of one run.
class LeaderTable {
 public:
  static constexpr int kUnknown = -1;    // not located (or forgotten): ask LOCATE
  static constexpr int kElsewhere = -2;  // its node is none of the endpoints: spread

  explicit LeaderTable(std::vector<HostPort> endpoints);

  // The endpoint index for `key` (with the key prefix), kElsewhere, or kUnknown.
  int lookup(const std::string& key) const;
  // Records where LOCATE said `key` goes (and so where its shard goes); returns
  // the endpoint index or kElsewhere.
  int learn(const std::string& key, const KeyLocation& location);
  // Forgets the endpoint of `key`'s shard: the next lookup of any of its keys
  // answers kUnknown.
  void forget(const std::string& key);

  // The endpoint index of a "host:port" address, or kElsewhere.
  int endpoint_of(std::string_view address) const;
  const std::vector<HostPort>& endpoints() const { return endpoints_; }

  struct Counts {
    size_t keys = 0;                   // located keys
    size_t direct = 0;                 // ... whose shard's node is one of the endpoints
    size_t shards = 0;                 // distinct (keyspace, shard) seen
    std::vector<size_t> per_endpoint;  // shards served by each endpoint
  };
  Counts counts() const;

 private:
  const std::vector<HostPort> endpoints_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, size_t> key_shard_;         // key -> index in shard_endpoint_
  std::map<std::pair<std::string, int64_t>, size_t> shards_;  // (keyspace, shard) -> index
  std::vector<int> shard_endpoint_;  // endpoint index or kElsewhere/kUnknown
};

// Parses "host:port" endpoints (no URLs), as the RESP factories want them.
Result<std::vector<HostPort>> parse_resp_endpoints(const std::vector<std::string>& endpoints);

// LOCATEs `key_prefix + key_for(i)` for i in [0, key_space) through the first
// endpoint that answers, pipelined, and returns the table. A key whose
// answering node knows no leader is asked again of its owners among the
// endpoints (members know their group's leader). Fails when no endpoint can be
// reached or LOCATE is refused (not a statekv node).
Result<std::shared_ptr<LeaderTable>> locate_keys(const std::vector<HostPort>& endpoints,
                                                 const RespOptions& options, size_t key_space);

// A factory of --route leader connections: client c holds a connection to
// every endpoint (opened as it connects; one to a node that is down opens
// when it is used) and sends each put to its key's endpoint in `table`, a key
// whose node is none of the endpoints, or not known, to its spread endpoint:
// the first of c % N, c % N + 1, ... that answered when the connection was
// made (so a node that is down costs its own keys only). Fails when no
// endpoint answers. --wait applies as for spread connections.
Result<ConnectionFactory> make_resp_leader_factory(const std::vector<HostPort>& endpoints,
                                                   const RespOptions& options,
                                                   std::shared_ptr<LeaderTable> table);

}  // namespace statekv::loadgen
