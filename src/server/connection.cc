#include "server/connection.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "core/held_posts.h"

namespace statekv::server {
namespace {

// Buffers above this capacity are released when they empty, so that a client
// that once sent or received a lot does not keep that memory while idle.
constexpr size_t kKeepCapacity = 4096;

void release_if_large(std::string& buf) {
  if (buf.empty() && buf.capacity() > kKeepCapacity) std::string().swap(buf);
}

std::string endpoint_text(const asio::ip::tcp::endpoint& ep) {
  const auto addr = ep.address();
  if (addr.is_v6()) return fmt::format("[{}]:{}", addr.to_string(), ep.port());
  return fmt::format("{}:{}", addr.to_string(), ep.port());
}

}  // namespace

Connection::Connection(NetworkThread& thread, asio::ip::tcp::socket socket,
                       const ConnectionEnv& env, uint64_t id)
    : thread_(thread), socket_(std::move(socket)), env_(env) {
  session_.id = id;
  // Redis: a client is authenticated from the start when the default user
  // needs no password.
  const std::optional<bool> required = env_.service->auth_required();
  session_.authenticated = required ? !*required : env_.config->snapshot().requirepass.empty();
  asio::error_code ec;
  if (auto ep = socket_.remote_endpoint(ec); !ec) session_.addr = endpoint_text(ep);
  if (auto ep = socket_.local_endpoint(ec); !ec) session_.laddr = endpoint_text(ep);
  session_.fd = socket_.native_handle();
  env_.live->fetch_add(1, std::memory_order_relaxed);
  session_.last_interaction_ms.store(steady_now_ms(), std::memory_order_relaxed);
}

Connection::~Connection() {
  if (!closed_) env_.live->fetch_sub(1, std::memory_order_relaxed);
  if (env_.pubsub != nullptr) leave_all(*env_.pubsub, session_);
}

void Connection::start() {
  asio::error_code ec;
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  socket_.non_blocking(true, ec);
  if (ec) {
    close("cannot make socket non-blocking");
    return;
  }
  env_.registry->add(&session_);
  session_.defer = [this] { return defer_reply(); };
  session_.wait_for_replies = [this] { wait_asked_ = true; };
  if (env_.pubsub != nullptr) session_.subscriber = this;
  // Pushes (CLIENT TRACKING invalidations) come from the thread that
  // committed a write: posted here, through a weak_ptr like deferred replies.
  session_.push = [weak = weak_from_this(), weak_thread = std::weak_ptr<NetworkThread>(
                                                thread_.shared_from_this())](std::string bytes) {
    auto thread = weak_thread.lock();
    if (weak.expired() || !thread) return false;
    asio::post(thread->context(), [weak, bytes = std::move(bytes)]() mutable {
      if (auto self = weak.lock()) self->on_push(std::move(bytes));
    });
    return true;
  };
  spdlog::debug("accepted client id={} addr={} thread={}", session_.id, session_.addr,
                thread_.index());
  arm_read();
}

void Connection::close(std::string_view why) {
  if (closed_) return;
  closed_ = true;
  spdlog::debug("closing client id={} addr={}: {}", session_.id, session_.addr, why);
  asio::error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);  // cancels the pending wait/write; their handlers see closed_
  env_.registry->remove(session_.id);
  // A command it is blocked in (BLPOP...) ends: nothing is popped for it.
  env_.service->client_closed(session_);
  if (env_.pubsub != nullptr) leave_all(*env_.pubsub, session_);  // no deliver() after this
  env_.live->fetch_sub(1, std::memory_order_relaxed);
  // Drop buffers now: the object itself may live on until the cancelled
  // handlers and any durability callback have run.
  std::string().swap(inbuf_);
  std::string().swap(out_);
  std::string().swap(held_);
  held_segments_.clear();
  slots_.clear();
  slot_bytes_ = 0;
  thread_.forget(this);  // may drop the last owning reference besides handlers'
}

void Connection::check_idle(int64_t now_ms, const ConnectionLimits& limits) {
  if (closed_ || limits.timeout_ms == 0) return;
  // A client waiting for a durable or deferred reply is not idle: the wait is ours.
  if (!held_segments_.empty() || !slots_.empty()) return;
  int64_t last = session_.last_interaction_ms.load(std::memory_order_relaxed);
  if (now_ms - last > static_cast<int64_t>(limits.timeout_ms)) close("idle timeout");
}

void Connection::arm_read() {
  if (reading_ || closed_ || closing_ || paused_) return;
  reading_ = true;
  socket_.async_wait(
      asio::ip::tcp::socket::wait_read,
      [self = shared_from_this()](const asio::error_code& ec) { self->on_readable(ec); });
}

void Connection::on_readable(const asio::error_code& ec) {
  reading_ = false;
  if (closed_ || closing_) return;
  if (ec) {
    close(ec.message());
    return;
  }
  const ConnectionLimits& limits = thread_.limits();
  asio::error_code rec;
  size_t n = 0;
  if (inbuf_.empty()) {
    // Common case: no partial request pending. Read into the thread's scratch
    // buffer and parse straight from it; only a partial tail gets copied.
    auto scratch = thread_.scratch();
    n = socket_.read_some(asio::buffer(scratch.data(), scratch.size()), rec);
    if (!rec && n > 0) {
      bump(env_.stats->local().net_input_bytes, n);
      std::string_view data(scratch.data(), n);
      size_t used = process(data);
      if (!closed_ && !closing_ && used < n) inbuf_.assign(data.substr(used));
    }
  } else {
    // A partial request is pending: read straight onto its end. When the
    // parser told us how much it needs (a large bulk), read that much at once.
    size_t old = inbuf_.size();
    size_t want = std::max<size_t>(NetworkThread::kScratchBytes, needed_ > old ? needed_ - old : 0);
    want = std::min<size_t>(want, 16u << 20);
    inbuf_.resize(old + want);
    n = socket_.read_some(asio::buffer(inbuf_.data() + old, want), rec);
    inbuf_.resize(old + (rec ? 0 : n));
    if (!rec && n > 0) {
      bump(env_.stats->local().net_input_bytes, n);
      size_t used = process(inbuf_);
      if (!closed_) inbuf_.erase(0, used);
    }
  }
  if (closed_) return;
  // process() read the clock for this read's commands.
  if (n > 0) {
    session_.last_interaction_ms.store(session_.batch_started_us / 1000,
                                       std::memory_order_relaxed);
  }
  if (rec == asio::error::would_block || rec == asio::error::try_again) {
    arm_read();  // spurious wake-up
    return;
  }
  if (rec) {
    // EOF or reset: Redis closes at once, dropping unsent replies.
    close(rec == asio::error::eof ? "client closed connection" : rec.message());
    return;
  }
  if (inbuf_.size() > limits.query_buffer_limit) {
    spdlog::warn("closing client id={} addr={}: query buffer {} bytes exceeds limit {}",
                 session_.id, session_.addr, inbuf_.size(), limits.query_buffer_limit);
    close("query buffer limit");
    return;
  }
  release_if_large(inbuf_);
  after_input();
}

size_t Connection::process(std::string_view buf) {
  const ConnectionLimits& limits = thread_.limits();
  session_.batch_started_us = steady_now_us();
  size_t pos = 0;
  while (!closing_ && !closed_ && !waiting_ && pos < buf.size()) {
    if (pending_output() > limits.output_pause_bytes) break;  // resumes in on_written
    std::string_view rest = buf.substr(pos);
    if (rest.size() < needed_) break;
    // Before AUTH (when a password is required) Redis's stricter request limits apply.
    const resp::Limits& proto =
        session_.authenticated ? limits.proto : limits.proto_unauthenticated;
    auto r = resp::parse_request(rest, proto, args_, arg_scratch_);
    if (r.status == resp::ParseStatus::kIncomplete) {
      needed_ = r.needed;
      break;
    }
    needed_ = 0;
    if (r.status == resp::ParseStatus::kError) {
      protocol_error(r.error);
      if (session_.routed_batch) session_.routed_batch->flush();  // the requests before it
      return buf.size();
    }
    if (!args_.empty() && !execute(args_)) break;  // runs again once the replies due came
    pos += r.consumed;
  }
  // Routed commands held back while the loop ran leave now, together.
  if (session_.routed_batch) session_.routed_batch->flush();
  return pos;
}

bool Connection::execute(std::vector<std::string_view>& args) {
  // Behind a reply still due, a reply waits in a slot; otherwise it goes
  // behind any held reply so that the client sees them in order.
  const bool behind = !slots_.empty();
  std::string& target = behind ? slot_scratch_ : held_segments_.empty() ? out_ : held_;
  const size_t start = target.size();
  const size_t slots_before = slots_.size();
  session_.continued = rerun_;
  rerun_ = false;
  // The command layer records the command for CLIENT LIST and counts it.
  resp::Writer writer(&target, session_.resp);
  storage::Sequence seq = env_.service->execute(session_, args, writer);
  session_.continued = false;
  if (wait_asked_) {
    // It must not overtake a command whose reply is due: it runs again then.
    wait_asked_ = false;
    target.resize(start);
    if (session_.replies_due > 0) {
      waiting_ = true;
      rerun_ = true;
      return false;
    }
    // Nothing is due: a router must not ask then.
    writer.error("ERR internal error: a command waited for replies while none was due");
    seq = 0;
  }
  if (slots_.size() != slots_before) {
    // It answers later (defer_reply). A blocked client (BLPOP...) runs
    // nothing more until that reply came, as in Redis.
    if (session_.blocked.load(std::memory_order_relaxed)) waiting_ = true;
    return true;
  }
  if (waits_for_all_writes()) {
    // Read after execute: covers every write this reply could reflect.
    seq = std::max(seq, env_.engine->last_sequence());
  }
  if (behind) {
    slot_bytes_ += slot_scratch_.size();
    slots_.push_back(Slot{true, std::move(slot_scratch_), seq});
    slot_scratch_.clear();
  } else {
    hold_reply(start, seq);
  }
  if (session_.close_after_reply) closing_ = true;  // QUIT: flush, then close
  return true;
}

void Connection::add_reply(std::string_view reply, storage::Sequence seq) {
  std::string& target = held_segments_.empty() ? out_ : held_;
  const size_t start = target.size();
  target += reply;
  hold_reply(start, seq);
}

void Connection::hold_reply(size_t start, storage::Sequence seq) {
  if (held_segments_.empty()) {
    if (seq == 0 || seq <= env_.engine->durable_sequence()) return;  // sendable now
    held_.assign(out_, start, std::string::npos);
    out_.resize(start);
    held_segments_.push_back({held_.size(), seq});
    return;
  }
  // The reply was written into held_ behind earlier held replies.
  HeldSegment& last = held_segments_.back();
  if (seq <= last.seq) {
    last.end = held_.size();
  } else {
    held_segments_.push_back({held_.size(), seq});
  }
}

DeferredReply Connection::defer_reply() {
  const uint64_t id = slots_base_ + slots_.size();
  slots_.emplace_back();
  ++session_.replies_due;
  std::weak_ptr<Connection> weak = weak_from_this();
  std::shared_ptr<NetworkThread> thread = thread_.shared_from_this();
  return [weak = std::move(weak), thread = std::move(thread), inbox = inbox_, id](
             std::string reply, storage::Sequence seq) {
    bool post = false;
    {
      std::lock_guard<std::mutex> lock(inbox->mu);
      inbox->replies.emplace_back(id, std::move(reply), seq);
      post = !inbox->posted;
      inbox->posted = true;
    }
    if (!post) return;  // a post that takes this one too is on its way
    // From the data loop, with the other replies of its pass (core/held_posts.h).
    HeldPosts::post(thread->context(), [weak] {
      if (auto self = weak.lock()) self->on_deferred_replies();
    });
  };
}

void Connection::on_push(std::string bytes) {
  // Behind the replies of every command that ran before it (deferred ones,
  // and ones held for durability): an invalidation that overtook the reply
  // of the read it invalidates would leave the client caching the old value
  // for good (the read of a routed key answers later, and the write's
  // invalidation can come from the owner first).
  if (closed_ || closing_) return;
  if (!slots_.empty()) {
    slot_bytes_ += bytes.size();
    slots_.push_back(Slot{true, std::move(bytes), 0});
    return;
  }
  add_reply(bytes, 0);
  flush();
}

void Connection::on_deferred_replies() {
  std::vector<std::tuple<uint64_t, std::string, storage::Sequence>> replies;
  {
    std::lock_guard<std::mutex> lock(inbox_->mu);
    replies.swap(inbox_->replies);
    inbox_->posted = false;
  }
  if (closed_) return;
  for (auto& [slot, reply, seq] : replies) {
    if (slot < slots_base_ || slot - slots_base_ >= slots_.size()) continue;
    Slot& s = slots_[slot - slots_base_];
    if (s.ready) continue;
    s.ready = true;
    s.reply = std::move(reply);
    s.seq = waits_for_all_writes() ? std::max(seq, env_.engine->last_sequence()) : seq;
    slot_bytes_ += s.reply.size();
    --session_.replies_due;
  }
  release_slots();
  // Every reply due came: run what the client sent meanwhile (the command
  // that waited first), then read again, as on_written does after a pause.
  if (waiting_ && session_.replies_due == 0) {
    waiting_ = false;
    session_.blocked.store(false, std::memory_order_relaxed);
    if (!paused_ && !inbuf_.empty()) {
      const size_t used = process(inbuf_);
      if (closed_) return;
      inbuf_.erase(0, used);
      release_if_large(inbuf_);
    }
  }
  after_input();
}

void Connection::release_slots() {
  while (!slots_.empty() && slots_.front().ready) {
    Slot& s = slots_.front();
    add_reply(s.reply, s.seq);
    slot_bytes_ -= s.reply.size();
    slots_.pop_front();
    ++slots_base_;
  }
}

void Connection::protocol_error(const std::string& message) {
  bump(env_.stats->local().protocol_errors);
  spdlog::info("protocol error from client id={} addr={}: {}", session_.id, session_.addr, message);
  std::string reply;
  resp::Writer(&reply, session_.resp).error(message);
  if (slots_.empty()) {
    add_reply(reply, 0);
  } else {
    slot_bytes_ += reply.size();
    slots_.push_back(Slot{true, std::move(reply), 0});
  }
  closing_ = true;
}

void Connection::after_input() {
  if (closed_) return;
  if (!held_segments_.empty()) release_durable();  // may already be durable
  if (pending_output() > thread_.limits().output_hard_limit) {
    spdlog::warn("closing client id={} addr={}: output buffer {} bytes exceeds limit {}",
                 session_.id, session_.addr, pending_output(), thread_.limits().output_hard_limit);
    close("output buffer limit");
    return;
  }
  flush();
  schedule_durable();
  publish_buffer_sizes();
  if (closing_) {
    maybe_finish_closing();
    return;
  }
  if (pending_output() > thread_.limits().output_pause_bytes) {
    paused_ = true;  // the client is not reading fast enough; on_written resumes
    return;
  }
  arm_read();
}

void Connection::schedule_durable() {
  if (held_segments_.empty()) return;
  const storage::Sequence front = held_segments_.front().seq;
  if (durable_wait_ >= front) return;  // a callback covering it is pending
  durable_wait_ = front;
  std::weak_ptr<Connection> weak = weak_from_this();
  std::shared_ptr<NetworkThread> thread = thread_.shared_from_this();
  // The callback may run on the engine's sync thread, or right here if the
  // sequence became durable meanwhile: always hop onto our own thread.
  env_.engine->when_durable(front, [weak = std::move(weak), thread = std::move(thread), front] {
    asio::post(thread->context(), [weak, front] {
      auto self = weak.lock();
      if (!self || self->closed_) return;
      if (self->durable_wait_ == front) self->durable_wait_ = 0;
      self->release_durable();
      if (self->closed_) return;
      if (!self->held_segments_.empty() && self->held_segments_.front().seq <= front) {
        // Called without the write being durable: the engine's sync failed, and
        // nothing held will ever be. The client cannot be told +OK, nor that
        // the write did not happen (it may be on disk): a closed connection
        // says "unknown", as a crash would.
        self->close("the engine cannot make writes durable any more (a failed sync)");
        return;
      }
      self->flush();
      self->schedule_durable();
      self->publish_buffer_sizes();
      self->maybe_finish_closing();
    });
  });
}

void Connection::release_durable() {
  const storage::Sequence durable = env_.engine->durable_sequence();
  size_t release = 0;
  while (!held_segments_.empty() && held_segments_.front().seq <= durable) {
    release = held_segments_.front().end;
    held_segments_.pop_front();
  }
  if (release == 0) return;
  out_.append(held_, 0, release);
  held_.erase(0, release);
  for (auto& seg : held_segments_) seg.end -= release;
  release_if_large(held_);
}

void Connection::flush() {
  if (writing_ || closed_ || out_.empty()) return;
  writing_ = true;
  writing_buf_.swap(out_);
  asio::async_write(socket_, asio::buffer(writing_buf_),
                    [self = shared_from_this()](const asio::error_code& ec, size_t bytes) {
                      self->on_written(ec, bytes);
                    });
}

void Connection::on_written(const asio::error_code& ec, size_t bytes) {
  writing_ = false;
  if (closed_) return;
  if (ec) {
    close(ec.message());
    return;
  }
  bump(env_.stats->local().net_output_bytes, bytes);
  writing_buf_.clear();
  release_if_large(writing_buf_);
  release_if_large(out_);
  flush();
  publish_buffer_sizes();
  if (closing_) {
    maybe_finish_closing();
    return;
  }
  if (paused_ && pending_output() <= thread_.limits().output_pause_bytes / 2) {
    // The client caught up: run what is already buffered, then read again.
    paused_ = false;
    if (!inbuf_.empty()) {
      size_t used = process(inbuf_);
      if (closed_) return;
      inbuf_.erase(0, used);
      release_if_large(inbuf_);
    }
    after_input();
  }
}

void Connection::maybe_finish_closing() {
  if (closing_ && !closed_ && !writing_ && out_.empty() && held_segments_.empty() &&
      slots_.empty()) {
    close("closed after reply");
  }
}

void Connection::publish_buffer_sizes() {
  session_.query_buffer_bytes.store(inbuf_.size(), std::memory_order_relaxed);
  session_.output_buffer_bytes.store(pending_output(), std::memory_order_relaxed);
}

void Connection::deliver(std::shared_ptr<const PubSubMessage> message) {
  asio::post(thread_.context(), [weak = weak_from_this(), message = std::move(message)] {
    if (auto self = weak.lock()) self->on_message(*message);
  });
}

void Connection::on_message(const PubSubMessage& message) {
  if (closed_) return;
  // Unsubscribed since it was published: Redis would have sent it before the
  // UNSUBSCRIBE reply; after it, the client no longer expects it.
  const auto& held = message.via_pattern ? session_.patterns : session_.channels;
  if (!held.contains(message.via_pattern ? message.pattern : message.channel)) return;
  const std::string& bytes = session_.resp == 3 ? message.resp3 : message.resp2;
  if (held_segments_.empty()) {
    out_ += bytes;
  } else {
    held_ += bytes;  // behind the replies already waiting, and with the last of them
    held_segments_.back().end = held_.size();
  }
  const ConnectionLimits& limits = thread_.limits();
  const size_t pending = pending_output();
  bool over = pending > limits.pubsub_hard_limit;
  if (pending > limits.pubsub_soft_limit) {
    const int64_t now = steady_now_ms();
    if (pubsub_soft_since_ms_ == 0) pubsub_soft_since_ms_ = now;
    over = over || now - pubsub_soft_since_ms_ >= limits.pubsub_soft_ms;
  } else {
    pubsub_soft_since_ms_ = 0;
  }
  if (over) {
    spdlog::warn("closing client id={} addr={}: pubsub output buffer {} bytes exceeds limits",
                 session_.id, session_.addr, pending);
    close("pubsub output buffer limit");
    return;
  }
  flush();
  publish_buffer_sizes();
}

}  // namespace statekv::server
