// Batches of routed commands (coordinator.h, "Batches"): the router holds a
// pipelining client's commands for one owner back until the connection ran
// the commands of one read, and sends them as one frame; the owner runs them
// in order and answers with one frame of replies.
#include <future>

#include "coord/coordinator.h"
#include "coord/routing_errors.h"
#include "net/frame.h"
#include "resp/writer.h"

namespace statekv::coord {

namespace {

using server::Session;

// A reply larger than this cannot travel in a frame of its own (with the
// frame's few bytes of envelope).
constexpr size_t kMaxReplyBytes = net::kMaxFrameBytes - 1024;

}  // namespace

// A connection's routed commands held back: all for one owner, one stream,
// under one map epoch. Lives in the connection's Session; touched only on its
// thread.
struct Coordinator::Batch final : server::Session::RoutedBatch {
  explicit Batch(Coordinator& c) : coordinator(c) {}
  void flush() override { coordinator.send_batch(*this); }

  Coordinator& coordinator;
  NodeId owner;
  std::string address;
  uint64_t epoch = 0;
  uint64_t stream = 0;
  int resp = 2;
  bool redirects = false;
  int db = 0;
  uint64_t session_id = 0;
  std::string commands;  // encoded (net::append_command), as the frame carries them
  std::vector<server::DeferredReply> done;
};

// A batch sent: its commands (to route again after a stale route), and the
// places their replies go, filled in order as the owner's parts arrive.
struct Coordinator::BatchInFlight {
  std::string commands;
  std::vector<server::DeferredReply> done;
  size_t answered = 0;
  uint64_t epoch = 0;
  uint64_t stream = 0;
  int resp = 2;
  bool redirects = false;
  int db = 0;
  uint64_t session_id = 0;
};

void Coordinator::route_batched(Session& session, NodeId owner, const RoutingTable& table,
                                std::span<const std::string_view> argv) {
  size_t bytes = 0;
  for (std::string_view a : argv) bytes += a.size() + 8;
  const meta::Member* m = table.member(owner);
  // A tracking client's commands carry per-command marks (mark_tracking), and
  // a large command is best sent alone: each in a frame of its own
  // (route_async sends what is held back first). So does a member without a
  // peer address, which route_async answers.
  if (session.tracking || bytes > kBatchBytes || m == nullptr || m->peer_address.empty()) {
    route_async(session, owner, table, argv, session.defer());
    return;
  }
  if (!session.routed_batch) session.routed_batch = std::make_unique<Batch>(*this);
  auto& batch = static_cast<Batch&>(*session.routed_batch);
  if (!batch.done.empty() &&
      (batch.owner != owner || batch.epoch != table.epoch().value() ||
       batch.stream != session.route_stream || batch.address != m->peer_address)) {
    send_batch(batch);
  }
  if (batch.done.empty()) {
    batch.owner = owner;
    batch.address = m->peer_address;
    batch.epoch = table.epoch().value();
    batch.stream = session.route_stream;
    batch.resp = session.resp;
    batch.redirects = session.redirects;
    batch.db = session.db;
    batch.session_id = session.id;
  }
  net::append_command(batch.commands, argv);
  batch.done.push_back(session.defer());
  if (batch.done.size() >= kBatchCommands || batch.commands.size() >= kBatchBytes) {
    send_batch(batch);
  }
}

void Coordinator::send_batch(Batch& batch) {
  if (batch.done.empty()) return;
  auto sent = std::make_shared<BatchInFlight>();
  sent->done = std::move(batch.done);
  sent->epoch = batch.epoch;
  sent->stream = batch.stream;
  sent->resp = batch.resp;
  sent->redirects = batch.redirects;
  sent->db = batch.db;
  sent->session_id = batch.session_id;
  net::ForwardFrame frame;
  frame.epoch = batch.epoch;
  frame.flags = net::ForwardFrame::kBatch;
  frame.resp = static_cast<uint8_t>(batch.resp);
  frame.stream = batch.stream;
  // Kept to route them again if the owner refuses a stale route.
  frame.commands = batch.commands;
  sent->commands.swap(batch.commands);
  batch.commands.clear();
  batch.done.clear();
  forward_client_->call(
      batch.owner, batch.address, std::move(frame),
      [this, sent](Result<net::ForwardReplyFrame> r) { on_batch_reply(*sent, std::move(r)); });
}

void Coordinator::on_batch_reply(BatchInFlight& batch, Result<net::ForwardReplyFrame> r) {
  const size_t n = batch.done.size();
  if (r.ok()) {
    net::BatchReader replies(r->replies);
    std::string_view reply;
    while (batch.answered < n && replies.next_reply(&reply)) {
      // The owner replied once its writes were durable: nothing to wait for here.
      batch.done[batch.answered++](std::string(reply), 0);
    }
    if (r->more) return;  // the forward client calls again with the next part
    if (r->status.ok() && batch.answered == n) return;
  }
  if (batch.answered == n) return;
  Status s = r.ok() ? r->status : r.status();
  if (s.ok()) {
    s = Status::Internal("the owner answered " + std::to_string(batch.answered) + " of the " +
                         std::to_string(n) + " commands of a batch");
  }
  const bool stale = r.ok() && s.code() == Status::Code::kAborted;
  const bool behind_stale = r.ok() && s.code() == Status::Code::kBusy;
  if (stale || behind_stale) {
    // A stale route: the owner's map is newer, and it ran none of the rest.
    // Each goes to the router pool, after the stream's earlier re-routes and
    // in the order sent, as frames of their own would (route_async).
    Session again;
    again.resp = batch.resp;
    again.redirects = batch.redirects;
    again.db = batch.db;
    again.id = batch.session_id;
    net::BatchReader commands(batch.commands);
    std::vector<std::string_view> argv;
    for (size_t i = 0; i < n && commands.next_command(&argv); ++i) {
      if (i < batch.answered) continue;
      const uint64_t wait_epoch = stale && i == batch.answered ? batch.epoch + 1 : 0;
      finish_on_router_pool(again, std::vector<std::string>(argv.begin(), argv.end()), wait_epoch,
                            std::move(batch.done[i]), batch.stream);
    }
    batch.answered = n;
    return;
  }
  std::string out;
  resp::Writer(&out, batch.resp).error(routing_error(s));
  for (; batch.answered < n; ++batch.answered) batch.done[batch.answered](out, 0);
}

// ------------------------------------------------------------------ owner side

bool Coordinator::run_batch(net::ForwardFrame& frame, const Respond& respond, bool refuse_stale) {
  net::ForwardReplyFrame part;
  part.batch = true;
  if (refuse_stale) {
    // As on_forward: an earlier command of the stream was refused, so none
    // of these may overtake it.
    part.status =
        Status::Busy("an earlier command of this client's stream was refused as a stale route");
    respond(std::move(part));
    return true;
  }
  auto table = wait_for_epoch(frame.epoch);
  if (!table || table->epoch().value() < frame.epoch) {
    part.status = Status::Unavailable("node " + std::to_string(options_.self.value()) +
                                      " has not seen cluster map epoch " +
                                      std::to_string(frame.epoch) + " yet");
    respond(std::move(part));
    return false;
  }
  // One session for the whole batch: its commands come from one client
  // connection, which changes no session state between them (a command that
  // would is not routed in a stream).
  Session session;
  session.authenticated = true;
  session.resp = frame.resp == 3 ? 3 : 2;
  session.routed_epoch = frame.epoch;
  session.addr = "routed";
  std::vector<std::string_view> argv;
  std::string out;
  storage::Sequence last = 0;  // the highest sequence a reply of the batch waits for
  size_t part_bytes = 0;
  bool stale = false;
  // A part that is not the last leaves once the writes its replies reflect
  // are durable, so that the parts keep their order.
  auto send_part = [&] {
    if (last != 0 && last > ctx_.engine->durable_sequence()) {
      std::promise<void> durable;
      auto done = durable.get_future();
      ctx_.engine->when_durable(last, [&durable] { durable.set_value(); });
      done.wait();
    }
    part.more = true;
    respond(std::move(part));
    part = net::ForwardReplyFrame();
    part.batch = true;
    part_bytes = 0;
  };
  net::BatchReader commands(frame.commands);
  while (commands.next_command(&argv)) {
    out.clear();
    resp::Writer writer(&out, session.resp);
    const storage::Sequence seq = service_.execute(session, argv, writer);
    if (out.size() > 1 && out[0] == '-' &&
        std::string_view(out).substr(1).starts_with(kStaleRoute)) {
      // It did not run: the router routes it, and the rest, again.
      part.status = Status::Aborted(out.substr(1, out.size() - 3));  // drop '-' and CRLF
      stale = true;
      break;
    }
    if (out.size() > kMaxReplyBytes) {
      const size_t size = out.size();
      out.clear();
      resp::Writer(&out, session.resp)
          .error("ERR the reply is " + std::to_string(size) +
                 " bytes, over the node-to-node frame limit of " +
                 std::to_string(net::kMaxFrameBytes) +
                 " bytes; the command ran on the key's owner, ask it directly");
    }
    if (part.reply_count > 0 && part_bytes + out.size() > kBatchReplyBytes) send_part();
    last = std::max(last, seq);
    part_bytes += out.size();
    net::append_reply(part.replies, out);
    ++part.reply_count;
  }
  if (!stale && !commands.status().ok()) part.status = commands.status();
  if (last == 0 || last <= ctx_.engine->durable_sequence()) {
    respond(std::move(part));
    return stale;
  }
  // The replies promise what the client's own node would: wait for durability.
  auto shared = std::make_shared<net::ForwardReplyFrame>(std::move(part));
  ctx_.engine->when_durable(last, [shared, respond]() mutable { respond(std::move(*shared)); });
  return stale;
}

}  // namespace statekv::coord
