// PeerIncarnations — which data directory each node of the cluster had, so
// that a node that lost its own is not taken back under the same id.
//
// Raft's safety rests on every member keeping what it wrote before it
// answered: its vote in each term and the entries it acknowledged. A node
// whose disk was replaced, or whose write-ahead log was wiped, started again
// with the same id and an empty log would vote a second time in a term it
// already voted in, and stand in majorities for entries it no longer holds:
// two leaders of one term, or an acknowledged write lost when the node that
// still held it fails. (etcd asks for such a member to be removed and added
// again; Cassandra refuses such a node: "use replace_address".) So:
//
//   * the node's write-ahead log directory carries an incarnation: 64 random
//     bits drawn when the directory is first used, kept in the file
//     `incarnations` there. The file belongs to the log: a log directory
//     created again (wiped, a new disk) draws a new incarnation;
//   * every node states its incarnation in its handshake (net/handshake.h),
//     covered by the proof of the cluster secret;
//   * every node records, durably, the incarnation each peer stated the first
//     time it proved itself, before it takes a single frame from it; and
//     refuses a peer that states another one: the peer is disowned (told so
//     in the handshake), and a disowned node stops (statekv server exits,
//     saying how to bring it back as a new node: docs/cluster.md).
//
// Node ids are never reused (meta/transitions.h: a removed member leaves a
// tombstone), so a record never needs forgetting. A node that dies before its
// peers first heard from it has acknowledged nothing to them; once they have,
// its incarnation is on their disks.
//
// Not thread-safe: one caller at a time (the transport's thread).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/ids.h"
#include "core/status.h"

namespace statekv::net {

// What the file holds: this node's incarnation and each peer's, as recorded.
struct IncarnationRecords {
  uint64_t self = 0;
  std::map<NodeId, uint64_t> peers;
  bool operator==(const IncarnationRecords&) const = default;
};

// The file's text: "self HEX" then one "node ID HEX" line per peer.
std::string encode_incarnations(const IncarnationRecords& records);
// Corruption naming the line on anything encode_incarnations does not write
// (an incarnation of 0 included: 0 means "none", a client's).
Result<IncarnationRecords> decode_incarnations(std::string_view text);

// What check() made of a peer's stated incarnation.
enum class PeerStanding : uint8_t {
  kKnown,     // the one recorded
  kRecorded,  // the first heard: recorded now
  kDisowned,  // another than the one recorded: the node lost its state
};

class PeerIncarnations {
 public:
  // The file name inside the log directory.
  static constexpr std::string_view kFileName = "incarnations";

  // Reads `dir`/incarnations, or, when it does not exist, creates `dir` and
  // the file with a fresh incarnation of this node's own (a new log
  // directory). IOError, or Corruption when the file does not decode (it is
  // not replaced: whoever reads the log must look at it).
  static Result<std::unique_ptr<PeerIncarnations>> open(std::filesystem::path dir, bool fsync);

  uint64_t self() const { return records_.self; }
  // Whether open() drew this node's incarnation (its log directory is new).
  bool fresh() const { return fresh_; }

  // Peer `node` proved it knows the cluster secret and stated `incarnation`
  // (not 0). The first one heard is recorded, durably, before this returns.
  // IOError when it cannot be recorded: the peer must be refused for now (and
  // heard again later), not taken in unrecorded.
  Result<PeerStanding> check(NodeId node, uint64_t incarnation);
  // The incarnation recorded for `node`; 0 when none.
  uint64_t recorded(NodeId node) const;

 private:
  PeerIncarnations(std::filesystem::path file, bool fsync, IncarnationRecords records, bool fresh)
      : file_(std::move(file)), fsync_(fsync), records_(std::move(records)), fresh_(fresh) {}

  std::filesystem::path file_;
  bool fsync_;
  IncarnationRecords records_;
  bool fresh_;
};

// How a refusal names an incarnation in logs: 16 hex digits.
std::string incarnation_name(uint64_t incarnation);

}  // namespace statekv::net
