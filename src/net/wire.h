// What travels inside one frame (frame.h) on an authenticated peer connection.
//
// After the handshake (handshake.h) every frame's payload is one WireMessage:
//
//   u8 kind, then by kind:
//   kProtocol   bytes message      a replication protocol's message, already in
//                                  the codec's envelope (replication/codec.h);
//                                  the receiver hands it to its protocol as
//                                  on_message(sender, message)
//   kRequest    varint call | request      a client operation for the raft group
//   kResponse   varint call | u8 status code | bytes status message |
//               response                   the answer to call `call`
//   kAdmin      varint call | u8 admin op | varint node | bytes argument
//   kAdminReply varint call | u8 status code | bytes status message | bytes body
//   kForward    varint call | varint epoch | u8 flags | u8 resp | [varint stream] |
//               [varint origin node | varint origin client] |
//               [varint group | u8 group flags | [varint min_index | varint max_staleness_ms]
//                | [varint stream_seq]]
//               | varint n | n x bytes
//               a data command routed to the node that owns its keys; with flag
//               kBatch, instead of the one command: bytes commands, several
//               commands of one client stream (each varint n | n x bytes)
//   kForwardReply varint call | u8 status code | bytes status message | bytes reply
//               | varint leader_hint | varint index
//               the command's whole reply, RESP-encoded as the client speaks it
//   kForwardReplies varint call | u8 status code | bytes status message | u8 more |
//               varint n | bytes replies (n x bytes)
//               replies to a kBatch frame, in order (ForwardReplyFrame::batch)
//   kPing       [u8 flags] "I am alive": each node sends one to every member it
//               knows every ping interval, so every node hears from every
//               member, not only raft's leader from its followers. Flag 1:
//               "a replica group of mine is receiving a snapshot" (installing
//               it holds this node's data loop: give me no leadership now).
//               A ping of an older version has no body and decodes as flags 0
//   kGroup      varint group | bytes message | [varint epoch]
//               a data replica group's protocol message (coord/replica_groups.h):
//               the receiver hands it to its member of `group`, if it has one.
//               `epoch` is the group's configuration epoch as the sender knows
//               it (meta::Shard::config_epoch); a frame of an older version
//               has none and decodes with epoch 0
//
// A request's `call` is chosen by the caller and echoed by the answer; it is
// unique per connection, not globally. Status codes are core/status.h's.
//
// Thread safety: plain values and functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/ids.h"
#include "core/status.h"
#include "replication/env.h"

namespace statekv::net {

struct ProtocolFrame {
  std::string message;
};

struct RequestFrame {
  uint64_t call = 0;
  replication::ClientRequest request;  // the id is the runtime's own; callers leave it 0
};

struct ResponseFrame {
  uint64_t call = 0;
  Status status;                          // not OK: no answer (timeout, shutting down)
  replication::ClientResponse response;  // meaningful when status is OK
};

enum class AdminOp : uint8_t {
  kStatus = 1,          // body: the node's status as JSON (status.h)
  kAddVoter = 2,        // node: who; the leader appends a membership change
  kRemoveVoter = 3,     // node: who
  kTransferLeader = 4,  // node: to whom
};

struct AdminFrame {
  uint64_t call = 0;
  AdminOp op = AdminOp::kStatus;
  NodeId node;
  std::string argument;
};

struct AdminReplyFrame {
  uint64_t call = 0;
  Status status;
  std::string body;
};

// A data command routed by the node a client is connected to, to the owner of
// its keys. `epoch` is the cluster map the router routed with: an owner whose
// map is older waits for it, one whose map is newer refuses (the router
// re-routes), so a stale route is never served by a former owner.
// `stream` (non-zero) names one client's commands in flight together: the
// owner runs the frames of one stream arriving on one connection in the
// order they arrived (coord/coordinator.h). On the wire it follows `resp`
// only when non-zero (flag bit kHasStream, set and cleared by the codec).
struct ForwardFrame {
  static constexpr uint8_t kAsking = 1;  // the owner must serve a key it is importing
  static constexpr uint8_t kImport = 2;  // a rebalance copies a key to where it goes
  static constexpr uint8_t kHasStream = 4;  // the codec's: a stream id follows
  // A PUBLISH made on another node: argv is {channel, message}; the receiver
  // delivers it to its own subscribers (whatever its map) and replies with
  // their count as a RESP integer.
  static constexpr uint8_t kPublish = 8;
  // Client tracking (docs/cache.md "Tracking across the cluster"). kTrack: the
  // command comes from a tracking client, `origin_client` on node
  // `origin_node` (both follow `stream` on the wire, set and cleared with this
  // flag): a read-only command's keys are recorded for that node in the
  // owner's tracking table, and a write names its client for NOLOOP.
  static constexpr uint8_t kTrack = 16;
  // A tracking message between nodes, handled inline like kPublish; argv[0]
  // says which (coord/tracking_relay.h), `origin_node` the sender.
  static constexpr uint8_t kTracking = 32;
  // The codec's: a replica group follows the tracking fields: varint group,
  // u8 group flags (1: local_read, 2: wait_replicas, 4: a pipeline's command),
  // then with local_read varint min_index | varint max_staleness_ms, then
  // with flag 4 varint stream_seq.
  static constexpr uint8_t kHasGroup = 64;
  // Several commands of one client stream in one frame (`commands`, argv
  // unused): the owner runs them one after another, in order, exactly as if
  // each had come in a frame of its own, and answers with one or more
  // ForwardReplyFrame parts with `batch` set. A router sends a pipelining
  // client's commands for one owner this way (coord/coordinator.h,
  // "Batches"). Never with a group, kPublish or kTracking.
  static constexpr uint8_t kBatch = 128;
  uint64_t call = 0;
  uint64_t epoch = 0;
  uint8_t flags = 0;
  uint8_t resp = 2;  // the client's protocol version: the reply is encoded in it
  uint64_t stream = 0;
  uint64_t origin_node = 0;    // with kTrack or kTracking
  uint64_t origin_client = 0;  // with kTrack
  // Non-zero: the command is for this replica group (coord/replica_groups.h),
  // to run on its leader; a member that does not lead it answers Unavailable
  // with ForwardReplyFrame::leader_hint. On the wire only when non-zero
  // (flag bit kHasGroup).
  uint64_t group = 0;
  // With `group`: a read-only command a member may serve from its own applied
  // state (consistency below linearizable), if that covers min_index and, when
  // max_staleness_ms > 0, is no staler than that; otherwise it answers
  // Unavailable with the leader as hint.
  bool local_read = false;
  uint64_t min_index = 0;
  uint64_t max_staleness_ms = 0;
  // With `group`: not a command but WAIT's question to the group's leader:
  // argv is {index, numreplicas, timeout_ms}; the reply is a RESP integer.
  bool wait_replicas = false;
  // With `group` and `stream`: the command's place (from 1) in its client's
  // pipeline to the group (coord/replica_groups.h, PipelinePlace); `stream`
  // names the pipeline on the sending node. On the wire only when non-zero.
  uint64_t stream_seq = 0;
  std::vector<std::string> argv;
  // With kBatch: the commands, one after another (append_command; read with
  // BatchReader). Kept encoded: neither side splits them into strings.
  std::string commands;
};

struct ForwardReplyFrame {
  uint64_t call = 0;
  Status status;      // not OK: the command did not run there (stale epoch, shutting down)
  std::string reply;  // RESP bytes, exactly what the client gets
  // With status Unavailable from a member of a replica group that is not its
  // leader: the member it believes leads (0: none known). The router sends the
  // command there instead; the command did not run here.
  uint64_t leader_hint = 0;
  // A replica group's log position the reply reflects (a write's entry, the
  // applied index a read saw; 0: none): the client's session moves up to it.
  uint64_t index = 0;
  // The answer to a kBatch frame (on the wire as kForwardReplies; `reply`,
  // leader_hint and index unused): `replies` are the replies of the batch's
  // next commands, in order. With `more`, another part follows (the owner
  // splits large answers, so that no frame nears the limit); the last part
  // has `more` false, and its `status`, when not OK, says why the commands
  // of the batch that got no reply in any part did not run: Aborted, the
  // first of them was a stale route; Busy, an earlier command of the
  // stream was refused as one; anything else, none of them ran.
  bool batch = false;
  bool more = false;
  uint64_t reply_count = 0;
  std::string replies;  // reply_count replies, one after another (append_reply, BatchReader)
};

// The commands of a batch (ForwardFrame::commands) and the replies of its
// answer (ForwardReplyFrame::replies): runs of length-prefixed entries,
// appended one at a time and read back as views into the bytes.
void append_command(std::string& out, std::span<const std::string_view> argv);
void append_reply(std::string& out, std::string_view reply);
class BatchReader {
 public:
  explicit BatchReader(std::string_view bytes) : bytes_(bytes) {}
  // The next command's arguments into *argv (views into the bytes). False at
  // the end, and on bytes that are not such a run (status() says so).
  bool next_command(std::vector<std::string_view>* argv);
  bool next_reply(std::string_view* reply);
  const Status& status() const { return status_; }

 private:
  bool varint(uint64_t* v);
  std::string_view bytes_;
  size_t pos_ = 0;
  Status status_;
};

struct PingFrame {
  // The sender is receiving a snapshot in some replica group (wire.h, kPing).
  bool receiving_snapshot = false;
};

// A data replica group's message (a raft message in its codec envelope),
// stamped with the group's configuration epoch as its sender knows it: a
// member that knows a newer one drops the frame (coord/replica_groups.h).
struct GroupFrame {
  uint64_t group = 0;
  std::string message;
  uint64_t epoch = 0;
};

using WireMessage =
    std::variant<ProtocolFrame, RequestFrame, ResponseFrame, AdminFrame, AdminReplyFrame,
                 ForwardFrame, ForwardReplyFrame, PingFrame, GroupFrame>;

std::string encode_wire(const WireMessage& message);
// The same bytes for the messages of routed commands, encoded where they are
// without first being copied into a WireMessage (they carry whole commands
// and replies, on every routed command's path).
std::string encode_wire(const ForwardFrame& frame);
std::string encode_wire(const ForwardReplyFrame& reply);
// Corruption on anything encode_wire did not produce (unknown kind, truncated,
// trailing bytes).
Result<WireMessage> decode_wire(std::string_view bytes);

// Status codes travel as their numeric code; these convert both ways.
uint8_t status_code(const Status& s);
Status status_from_code(uint8_t code, std::string message);

}  // namespace statekv::net
