// Connection — one client socket, from accept to close, on one NetworkThread.
//
// Reading: the connection waits for readability (async_wait) and then reads into
// its thread's scratch buffer, so an idle connection holds no read buffer; only
// the unparsed tail of a partial request is copied into its own buffer (inbuf_).
// Every complete request in what was read is parsed (resp::parse_request) and
// executed inline with Service::execute(); replies are appended to one output
// buffer and a whole read's replies leave in one write (pipelining).
//
// Durability: execute() returns a Sequence that must be durable before the
// reply may reach the client. Such a reply, and every reply after it (replies
// keep request order), waits in held_ until Engine::when_durable fires; the
// callback posts back to this connection's thread and holds only a weak_ptr,
// so a connection that closed meanwhile is simply skipped.
//
// Deferred replies: a command may answer later (Session::defer; coord/ routes
// it to another node). Its reply keeps its place: every reply behind it waits
// in slots_, in request order, until the replies before it came (posted back
// to this thread through a weak_ptr, like the durability callback). The
// client's next commands still run meanwhile, so a pipelining client has many
// routed commands in flight, unless the router finds that one of them could
// overtake a command still due (Session::wait_for_replies): then that command
// stays in the query buffer and nothing more of this client runs until every
// reply due came; it then runs again. The connection keeps reading meanwhile
// (into the query buffer, under its limit), so a client that leaves is
// noticed.
//
// Limits (all Redis behaviour): a protocol error is replied and the connection
// closes once the reply is flushed; QUIT likewise; a query buffer above
// client-query-buffer-limit closes at once; pending output above
// output_pause_bytes stops reading and parsing until the client drains it, and
// above client-output-buffer-limit disconnects; an idle client is closed after
// `timeout` seconds when that is non-zero.
//
// Pub/sub: a subscribed connection gets messages published on any thread
// through deliver(), which only posts them onto this connection's thread
// (through a weak_ptr); there they join the output behind the replies already
// written, and a subscriber whose unsent output passes the pubsub limits
// (ConnectionLimits::pubsub_*) is disconnected, so one that never reads cannot
// grow the server's memory without bound.
//
// Pushes (CLIENT TRACKING invalidations, Session::push) join the output
// behind every reply of a command that ran before them, including replies
// still deferred or held for durability (see on_push).
//
// Thread safety: every method runs on the owning NetworkThread, except
// deliver(). The Session's
// atomic counters and mu-guarded fields are what other threads may read.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "server/client_registry.h"
#include "server/context.h"
#include "server/network_asio.h"
#include "server/network_thread.h"

namespace statekv::server {

// What a connection needs from the rest of the server. Everything pointed to
// must outlive every connection (NetworkServer guarantees it by joining its
// threads before it returns from stop()).
struct ConnectionEnv {
  Service* service = nullptr;
  storage::Engine* engine = nullptr;
  ServerStats* stats = nullptr;
  ClientRegistryImpl* registry = nullptr;
  ConfigStore* config = nullptr;
  // Live connections of the server (for maxclients): a connection counts
  // itself from construction until it closes.
  std::atomic<uint64_t>* live = nullptr;
  PubSub* pubsub = nullptr;  // the node's subscriptions
};

class Connection : public std::enable_shared_from_this<Connection>, public PubSubSubscriber {
 public:
  Connection(NetworkThread& thread, asio::ip::tcp::socket socket, const ConnectionEnv& env,
             uint64_t id);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Registers the session and starts reading. On the connection's thread.
  void start();
  // Closes the socket now (pending output is dropped). Idempotent.
  void close(std::string_view why);
  // Closes the connection if it has been idle longer than limits.timeout_ms.
  void check_idle(int64_t now_ms, const ConnectionLimits& limits);

  const Session& session() const { return session_; }

  // PubSubSubscriber: any thread; posts the message to this connection's thread.
  void deliver(std::shared_ptr<const PubSubMessage> message) override;

 private:
  void arm_read();
  void on_readable(const asio::error_code& ec);
  // Parses and executes complete requests from the front of buf while output
  // is below the pause mark; returns the bytes consumed.
  size_t process(std::string_view buf);
  // False when the command did not run (wait_for_replies): it stays unconsumed.
  bool execute(std::vector<std::string_view>& args);
  void protocol_error(const std::string& message);
  // After requests ran: holds/flushes output, enforces limits, re-arms reading.
  void after_input();
  void hold_reply(size_t start, storage::Sequence seq);
  DeferredReply defer_reply();
  // Takes the deferred replies that came (posted back once per batch).
  void on_deferred_replies();
  // Moves the replies at the front of slots_ that are complete to the output.
  void release_slots();
  // Appends a complete reply behind everything before it.
  void add_reply(std::string_view reply, storage::Sequence seq);
  // Writes an out-of-band push (CLIENT TRACKING) on this connection's thread.
  void on_push(std::string bytes);
  void schedule_durable();
  void release_durable();
  void flush();
  void on_written(const asio::error_code& ec, size_t bytes);
  void maybe_finish_closing();
  // --fsync always: every reply waits for every write it could reflect
  // (ConnectionLimits::replies_wait_for_all_writes). Not while the engine's
  // syncs fail: nothing written since would ever be covered, so every reply,
  // a PING's too, would close its connection; a reply then waits for its own
  // write only, as under batch (docs/storage.md, "Errors: a failed sync").
  bool waits_for_all_writes() const {
    return thread_.limits().replies_wait_for_all_writes && !env_.engine->durability_failed();
  }
  size_t pending_output() const {
    return out_.size() + writing_buf_.size() + held_.size() + slot_bytes_;
  }
  void publish_buffer_sizes();
  void on_message(const PubSubMessage& message);

  NetworkThread& thread_;
  asio::ip::tcp::socket socket_;
  ConnectionEnv env_;
  Session session_;

  std::string inbuf_;  // unparsed tail of the input (usually empty)
  size_t needed_ = 0;  // inbuf_ must hold this many bytes before parsing again
  std::vector<std::string_view> args_;
  std::vector<std::string> arg_scratch_;

  std::string out_;          // replies ready to send, not yet handed to a write
  std::string writing_buf_;  // bytes of the write in flight
  // Replies waiting for durability, in order. held_ holds their bytes; each
  // segment covers held_[previous end, end) and may go once durable >= seq.
  // Segments' seq strictly increase (a later reply with a smaller seq joins the
  // previous segment, since it must wait for it anyway).
  struct HeldSegment {
    size_t end;
    storage::Sequence seq;
  };
  std::string held_;
  std::deque<HeldSegment> held_segments_;
  storage::Sequence durable_wait_ = 0;  // seq of the when_durable pending, 0 if none

  // Replies behind a deferred one that has not come yet, in request order.
  // The front is always a deferred reply still due; slot ids count from
  // slots_base_ (the id of the front).
  struct Slot {
    bool ready = false;
    std::string reply;
    storage::Sequence seq = 0;
  };
  std::deque<Slot> slots_;
  // Deferred replies that came from other threads, until this thread takes
  // them: one post per batch rather than per reply. Shared with the
  // callbacks, which may outlive the connection.
  struct Inbox {
    std::mutex mu;
    std::vector<std::tuple<uint64_t, std::string, storage::Sequence>> replies;
    bool posted = false;
  };
  std::shared_ptr<Inbox> inbox_ = std::make_shared<Inbox>();
  uint64_t slots_base_ = 0;
  size_t slot_bytes_ = 0;
  std::string slot_scratch_;  // a reply being written that goes to a slot

  bool reading_ = false;  // an async_wait for readability is pending
  bool writing_ = false;  // an async_write is pending
  bool paused_ = false;   // reading stopped until pending output drains
  // The router asked for every reply due before the next command runs
  // (Session::wait_for_replies): nothing runs until replies_due is 0.
  bool waiting_ = false;
  bool wait_asked_ = false;  // set by wait_for_replies during execute()
  bool rerun_ = false;       // the next command ran once already (counted)
  bool closing_ = false;   // no more input; close once all output is flushed
  bool closed_ = false;
  int64_t pubsub_soft_since_ms_ = 0;  // when output passed the pubsub soft limit; 0: below
};

}  // namespace statekv::server
