#include "net/wire.h"

#include "core/varint.h"
#include "replication/codec.h"

namespace statekv::net {
namespace {

using replication::ClientOp;
using replication::ClientRequest;
using replication::ClientResponse;
using replication::Reader;
using replication::Writer;

enum class Kind : uint8_t {
  kProtocol = 1,
  kRequest = 2,
  kResponse = 3,
  kAdmin = 4,
  kAdminReply = 5,
  kForward = 6,
  kForwardReply = 7,
  kPing = 8,
  kGroup = 9,
  kForwardReplies = 10,
};

#define WIRE_READ(dst, expr)                  \
  do {                                        \
    auto wire_r = (expr);                     \
    if (!wire_r.ok()) return wire_r.status(); \
    dst = std::move(wire_r).value();          \
  } while (0)

void encode_request(Writer& w, const ClientRequest& r) {
  w.varint(r.id.value());
  w.u8(static_cast<uint8_t>(r.op));
  w.bytes(r.key);
  w.optional_bytes(r.value);
  w.optional_bytes(r.expected);
}

Result<ClientRequest> decode_request(Reader& r) {
  ClientRequest req;
  uint64_t id = 0;
  WIRE_READ(id, r.varint());
  req.id = RequestId(id);
  uint8_t op = 0;
  WIRE_READ(op, r.u8());
  if (op > static_cast<uint8_t>(ClientOp::kDelete)) return Status::Corruption("bad client op");
  req.op = static_cast<ClientOp>(op);
  WIRE_READ(req.key, r.bytes());
  WIRE_READ(req.value, r.optional_bytes());
  WIRE_READ(req.expected, r.optional_bytes());
  return req;
}

void encode_response(Writer& w, const ClientResponse& r) {
  w.u8(static_cast<uint8_t>(r.outcome));
  w.optional_bytes(r.value);
  w.varint(r.leader_hint ? r.leader_hint->value() : 0);
  w.boolean(r.not_served);
}

Result<ClientResponse> decode_response(Reader& r) {
  ClientResponse resp;
  uint8_t outcome = 0;
  WIRE_READ(outcome, r.u8());
  if (outcome > static_cast<uint8_t>(ClientResponse::Outcome::kFail)) {
    return Status::Corruption("bad outcome");
  }
  resp.outcome = static_cast<ClientResponse::Outcome>(outcome);
  WIRE_READ(resp.value, r.optional_bytes());
  uint64_t hint = 0;
  WIRE_READ(hint, r.varint());
  if (hint != 0) resp.leader_hint = NodeId(hint);
  WIRE_READ(resp.not_served, r.boolean());
  return resp;
}

void encode_status(Writer& w, const Status& s) {
  w.u8(status_code(s));
  w.bytes(s.message());
}

// Decodes a status carried on the wire into *out; the return value says
// whether decoding itself worked.
Status decode_status(Reader& r, Status* out) {
  uint8_t code = 0;
  WIRE_READ(code, r.u8());
  std::string message;
  WIRE_READ(message, r.bytes());
  if (code > static_cast<uint8_t>(Status::Code::kInternal)) return Status::Corruption("bad status");
  *out = status_from_code(code, std::move(message));
  return Status::OK();
}

}  // namespace

uint8_t status_code(const Status& s) {
  return static_cast<uint8_t>(s.code());
}

Status status_from_code(uint8_t code, std::string m) {
  switch (static_cast<Status::Code>(code)) {
    case Status::Code::kOk:
      return Status::OK();
    case Status::Code::kNotFound:
      return Status::NotFound(std::move(m));
    case Status::Code::kCorruption:
      return Status::Corruption(std::move(m));
    case Status::Code::kIOError:
      return Status::IOError(std::move(m));
    case Status::Code::kInvalidArgument:
      return Status::InvalidArgument(std::move(m));
    case Status::Code::kOutOfRange:
      return Status::OutOfRange(std::move(m));
    case Status::Code::kBusy:
      return Status::Busy(std::move(m));
    case Status::Code::kUnavailable:
      return Status::Unavailable(std::move(m));
    case Status::Code::kTimeout:
      return Status::Timeout(std::move(m));
    case Status::Code::kAborted:
      return Status::Aborted(std::move(m));
    case Status::Code::kInternal:
      return Status::Internal(std::move(m));
  }
  return Status::Internal(std::move(m));
}

namespace {

// One message of any kind, appended to w.
template <typename T>
void encode_message(Writer& w, const T& m) {
  if constexpr (std::is_same_v<T, ProtocolFrame>) {
    w.u8(static_cast<uint8_t>(Kind::kProtocol));
    w.bytes(m.message);
  } else if constexpr (std::is_same_v<T, RequestFrame>) {
    w.u8(static_cast<uint8_t>(Kind::kRequest));
    w.varint(m.call);
    encode_request(w, m.request);
  } else if constexpr (std::is_same_v<T, ResponseFrame>) {
    w.u8(static_cast<uint8_t>(Kind::kResponse));
    w.varint(m.call);
    encode_status(w, m.status);
    encode_response(w, m.response);
  } else if constexpr (std::is_same_v<T, AdminFrame>) {
    w.u8(static_cast<uint8_t>(Kind::kAdmin));
    w.varint(m.call);
    w.u8(static_cast<uint8_t>(m.op));
    w.varint(m.node.value());
    w.bytes(m.argument);
  } else if constexpr (std::is_same_v<T, AdminReplyFrame>) {
    w.u8(static_cast<uint8_t>(Kind::kAdminReply));
    w.varint(m.call);
    encode_status(w, m.status);
    w.bytes(m.body);
  } else if constexpr (std::is_same_v<T, ForwardFrame>) {
    w.u8(static_cast<uint8_t>(Kind::kForward));
    w.varint(m.call);
    w.varint(m.epoch);
    w.u8(static_cast<uint8_t>((m.flags & ~(ForwardFrame::kHasStream | ForwardFrame::kHasGroup)) |
                              (m.stream != 0 ? ForwardFrame::kHasStream : 0) |
                              (m.group != 0 ? ForwardFrame::kHasGroup : 0)));
    w.u8(m.resp);
    if (m.stream != 0) w.varint(m.stream);
    if (m.flags & (ForwardFrame::kTrack | ForwardFrame::kTracking)) {
      w.varint(m.origin_node);
      w.varint(m.origin_client);
    }
    if (m.group != 0) {
      w.varint(m.group);
      w.u8(static_cast<uint8_t>((m.local_read ? 1 : 0) | (m.wait_replicas ? 2 : 0) |
                                (m.stream_seq != 0 ? 4 : 0)));
      if (m.local_read) {
        w.varint(m.min_index);
        w.varint(m.max_staleness_ms);
      }
      if (m.stream_seq != 0) w.varint(m.stream_seq);
    }
    if (m.flags & ForwardFrame::kBatch) {
      w.bytes(m.commands);
    } else {
      w.varint(m.argv.size());
      for (const std::string& a : m.argv) w.bytes(a);
    }
  } else if constexpr (std::is_same_v<T, PingFrame>) {
    w.u8(static_cast<uint8_t>(Kind::kPing));
    w.u8(m.receiving_snapshot ? 1 : 0);
  } else if constexpr (std::is_same_v<T, GroupFrame>) {
    w.u8(static_cast<uint8_t>(Kind::kGroup));
    w.varint(m.group);
    w.bytes(m.message);
    w.varint(m.epoch);
  } else {
    static_assert(std::is_same_v<T, ForwardReplyFrame>);
    if (m.batch) {
      w.u8(static_cast<uint8_t>(Kind::kForwardReplies));
      w.varint(m.call);
      encode_status(w, m.status);
      w.u8(m.more ? 1 : 0);
      w.varint(m.reply_count);
      w.bytes(m.replies);
      return;
    }
    w.u8(static_cast<uint8_t>(Kind::kForwardReply));
    w.varint(m.call);
    encode_status(w, m.status);
    w.bytes(m.reply);
    w.varint(m.leader_hint);
    w.varint(m.index);
  }
}

template <typename T>
std::string encode_one(const T& m) {
  Writer w;
  encode_message(w, m);
  return std::move(w).take();
}

}  // namespace

std::string encode_wire(const WireMessage& message) {
  return std::visit([](const auto& m) { return encode_one(m); }, message);
}

std::string encode_wire(const ForwardFrame& frame) {
  return encode_one(frame);
}
std::string encode_wire(const ForwardReplyFrame& reply) {
  return encode_one(reply);
}

Result<WireMessage> decode_wire(std::string_view bytes) {
  Reader r(bytes);
  uint8_t kind = 0;
  WIRE_READ(kind, r.u8());
  WireMessage out;
  switch (static_cast<Kind>(kind)) {
    case Kind::kProtocol: {
      ProtocolFrame f;
      WIRE_READ(f.message, r.bytes());
      out = std::move(f);
      break;
    }
    case Kind::kRequest: {
      RequestFrame f;
      WIRE_READ(f.call, r.varint());
      WIRE_READ(f.request, decode_request(r));
      out = std::move(f);
      break;
    }
    case Kind::kResponse: {
      ResponseFrame f;
      WIRE_READ(f.call, r.varint());
      if (Status s = decode_status(r, &f.status); !s.ok()) return s;
      WIRE_READ(f.response, decode_response(r));
      out = std::move(f);
      break;
    }
    case Kind::kAdmin: {
      AdminFrame f;
      WIRE_READ(f.call, r.varint());
      uint8_t op = 0;
      WIRE_READ(op, r.u8());
      if (op < 1 || op > static_cast<uint8_t>(AdminOp::kTransferLeader)) {
        return Status::Corruption("unknown admin op " + std::to_string(op));
      }
      f.op = static_cast<AdminOp>(op);
      uint64_t node = 0;
      WIRE_READ(node, r.varint());
      f.node = NodeId(node);
      WIRE_READ(f.argument, r.bytes());
      out = std::move(f);
      break;
    }
    case Kind::kAdminReply: {
      AdminReplyFrame f;
      WIRE_READ(f.call, r.varint());
      if (Status s = decode_status(r, &f.status); !s.ok()) return s;
      WIRE_READ(f.body, r.bytes());
      out = std::move(f);
      break;
    }
    case Kind::kForward: {
      ForwardFrame f;
      WIRE_READ(f.call, r.varint());
      WIRE_READ(f.epoch, r.varint());
      WIRE_READ(f.flags, r.u8());
      WIRE_READ(f.resp, r.u8());
      if (f.flags & ForwardFrame::kHasStream) {
        WIRE_READ(f.stream, r.varint());
        f.flags &= static_cast<uint8_t>(~ForwardFrame::kHasStream);
      }
      if (f.flags & (ForwardFrame::kTrack | ForwardFrame::kTracking)) {
        WIRE_READ(f.origin_node, r.varint());
        WIRE_READ(f.origin_client, r.varint());
      }
      if (f.flags & ForwardFrame::kHasGroup) {
        WIRE_READ(f.group, r.varint());
        if (f.group == 0) return Status::Corruption("forward frame: group 0 is not a data group");
        uint8_t group_flags = 0;
        WIRE_READ(group_flags, r.u8());
        if (group_flags > 7) return Status::Corruption("forward frame: unknown group flags");
        f.local_read = (group_flags & 1) != 0;
        f.wait_replicas = (group_flags & 2) != 0;
        if (f.local_read) {
          WIRE_READ(f.min_index, r.varint());
          WIRE_READ(f.max_staleness_ms, r.varint());
        }
        if (group_flags & 4) {
          WIRE_READ(f.stream_seq, r.varint());
          if (f.stream_seq == 0) return Status::Corruption("forward frame: pipeline place 0");
        }
        f.flags &= static_cast<uint8_t>(~ForwardFrame::kHasGroup);
      }
      if (f.flags & ForwardFrame::kBatch) {
        WIRE_READ(f.commands, r.bytes());  // split by the owner (BatchReader)
        out = std::move(f);
        break;
      }
      uint64_t n = 0;
      WIRE_READ(n, r.varint());
      // Each argument takes at least one byte: a count beyond that is garbage.
      if (n > r.remaining()) return Status::Corruption("forward frame: bad argument count");
      f.argv.resize(n);
      for (std::string& a : f.argv) WIRE_READ(a, r.bytes());
      out = std::move(f);
      break;
    }
    case Kind::kForwardReplies: {
      ForwardReplyFrame f;
      f.batch = true;
      WIRE_READ(f.call, r.varint());
      if (Status s = decode_status(r, &f.status); !s.ok()) return s;
      uint8_t more = 0;
      WIRE_READ(more, r.u8());
      if (more > 1) return Status::Corruption("forward replies: bad 'more' flag");
      f.more = more == 1;
      WIRE_READ(f.reply_count, r.varint());
      WIRE_READ(f.replies, r.bytes());
      out = std::move(f);
      break;
    }
    case Kind::kForwardReply: {
      ForwardReplyFrame f;
      WIRE_READ(f.call, r.varint());
      if (Status s = decode_status(r, &f.status); !s.ok()) return s;
      WIRE_READ(f.reply, r.bytes());
      WIRE_READ(f.leader_hint, r.varint());
      WIRE_READ(f.index, r.varint());
      out = std::move(f);
      break;
    }
    case Kind::kPing: {
      PingFrame f;
      if (!r.at_end()) {
        uint8_t flags = 0;
        WIRE_READ(flags, r.u8());
        f.receiving_snapshot = (flags & 1) != 0;
      }
      out = f;
      break;
    }
    case Kind::kGroup: {
      GroupFrame f;
      WIRE_READ(f.group, r.varint());
      WIRE_READ(f.message, r.bytes());
      if (!r.at_end()) WIRE_READ(f.epoch, r.varint());
      out = std::move(f);
      break;
    }
    default:
      return Status::Corruption("unknown frame kind " + std::to_string(kind));
  }
  if (!r.at_end()) return Status::Corruption("trailing bytes after frame body");
  return out;
}

void append_command(std::string& out, std::span<const std::string_view> argv) {
  append_varint(out, argv.size());
  for (std::string_view a : argv) {
    append_varint(out, a.size());
    out.append(a);
  }
}

void append_reply(std::string& out, std::string_view reply) {
  append_varint(out, reply.size());
  out.append(reply);
}

bool BatchReader::varint(uint64_t* v) {
  const size_t n = decode_varint(std::string_view(bytes_).substr(pos_), v);
  if (n == 0) {
    status_ = Status::Corruption("a batch's entries are cut short or malformed");
    return false;
  }
  pos_ += n;
  return true;
}

bool BatchReader::next_command(std::vector<std::string_view>* argv) {
  argv->clear();
  if (!status_.ok() || pos_ == bytes_.size()) return false;
  uint64_t n = 0;
  if (!varint(&n)) return false;
  // Each argument takes at least one byte: a count beyond that is garbage.
  if (n > bytes_.size() - pos_) {
    status_ = Status::Corruption("a batch's command has a bad argument count");
    return false;
  }
  for (uint64_t i = 0; i < n; ++i) {
    std::string_view a;
    if (!next_reply(&a)) {
      if (status_.ok()) status_ = Status::Corruption("a batch's command is cut short");
      return false;
    }
    argv->push_back(a);
  }
  return true;
}

bool BatchReader::next_reply(std::string_view* reply) {
  if (!status_.ok() || pos_ == bytes_.size()) return false;
  uint64_t size = 0;
  if (!varint(&size)) return false;
  if (size > bytes_.size() - pos_) {
    status_ = Status::Corruption("a batch's entry is cut short");
    return false;
  }
  *reply = bytes_.substr(pos_, size);
  pos_ += size;
  return true;
}

}  // namespace statekv::net
