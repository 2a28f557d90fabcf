#include "cache/upstream.h"

#include <hiredis/hiredis.h>

#include <charconv>
#include <memory>

namespace statekv::cache {
namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

Reply copy_reply(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(copy_reply(r->element[i]));
      break;
    default:
      out.type = Reply::Type::kNil;
      break;
  }
  return out;
}

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextFree>;

Result<ContextPtr> connect(const Endpoint& e, std::chrono::milliseconds timeout) {
  ContextPtr c(redisConnectWithTimeout(e.host.c_str(), e.port, to_timeval(timeout)));
  if (!c) return Status::Unavailable("cannot allocate a connection");
  if (c->err) {
    return Status::Unavailable("cannot connect to " + e.host + ":" + std::to_string(e.port) + ": " +
                               c->errstr);
  }
  redisSetTimeout(c.get(), to_timeval(timeout));
  return c;
}

Result<std::vector<Reply>> run_pipeline(redisContext* c,
                                        const std::vector<Upstream::Command>& pipeline) {
  for (const auto& cmd : pipeline) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : cmd) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data());
  }
  std::vector<Reply> replies;
  replies.reserve(pipeline.size());
  for (size_t i = 0; i < pipeline.size(); ++i) {
    void* r = nullptr;
    if (redisGetReply(c, &r) != REDIS_OK || r == nullptr) {
      return Status::IOError(std::string("upstream connection failed: ") +
                             (c->err ? c->errstr : "no reply"));
    }
    replies.push_back(copy_reply(static_cast<redisReply*>(r)));
    freeReplyObject(r);
  }
  return replies;
}

}  // namespace

void write_reply(const Reply& reply, resp::Writer& out) {
  switch (reply.type) {
    case Reply::Type::kString:
      out.bulk(reply.str);
      break;
    case Reply::Type::kStatus:
      out.simple(reply.str);
      break;
    case Reply::Type::kError:
      out.error(reply.str);
      break;
    case Reply::Type::kInteger:
      out.integer(reply.integer);
      break;
    case Reply::Type::kNil:
      out.null();
      break;
    case Reply::Type::kArray:
      out.array(reply.elements.size());
      for (const Reply& e : reply.elements) write_reply(e, out);
      break;
  }
}

Result<std::vector<Endpoint>> parse_endpoints(std::string_view list) {
  std::vector<Endpoint> out;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    const size_t colon = item.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Status::InvalidArgument("upstream '" + std::string(item) + "' is not HOST:PORT");
    }
    unsigned port = 0;
    std::string_view port_text = item.substr(colon + 1);
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port == 0 ||
        port > 65535) {
      return Status::InvalidArgument("upstream '" + std::string(item) + "' has a bad port");
    }
    out.push_back({std::string(item.substr(0, colon)), static_cast<uint16_t>(port)});
  }
  if (out.empty()) return Status::InvalidArgument("no upstream given");
  return out;
}

Upstream::Upstream(UpstreamOptions options) : options_(std::move(options)) {}

Upstream::~Upstream() {
  stop();
}

Status Upstream::probe() {
  Status last = Status::Unavailable("no upstream given");
  for (const Endpoint& e : options_.endpoints) {
    auto c = connect(e, options_.timeout);
    if (!c.ok()) {
      last = c.status();
      continue;
    }
    auto r = run_pipeline(c->get(), {{"PING"}});
    if (r.ok()) return Status::OK();
    last = r.status();
  }
  return last;
}

void Upstream::start() {
  const unsigned n = std::max(1u, options_.connections);
  for (unsigned i = 0; i < n; ++i) workers_.emplace_back([this, i] { run(i); });
}

void Upstream::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void Upstream::submit(std::vector<Command> pipeline, bool idempotent, Callback done) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back({std::move(pipeline), idempotent, std::move(done), {}});
  }
  cv_.notify_one();
}

void Upstream::submit_then(std::vector<Command> first, Then then, Callback done) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back({std::move(first), false, std::move(done), std::move(then)});
  }
  cv_.notify_one();
}

namespace {
thread_local int64_t t_sent_us = 0;
}  // namespace

int64_t Upstream::sent_us() {
  return t_sent_us;
}

void Upstream::run(unsigned index) {
  ContextPtr conn;
  size_t next_endpoint = index % options_.endpoints.size();
  while (true) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and every queued job is done
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    if (options_.inject_delay.count() > 0) std::this_thread::sleep_for(options_.inject_delay);
    requests_.fetch_add(1, std::memory_order_relaxed);
    t_sent_us = 0;
    Status error;
    // Connecting tries each endpoint once; a broken connection is replaced and,
    // for an idempotent job, the job sent again.
    for (int attempt = 0; attempt < static_cast<int>(options_.endpoints.size()) + 1; ++attempt) {
      if (!conn) {
        auto c = connect(options_.endpoints[next_endpoint], options_.timeout);
        next_endpoint = (next_endpoint + 1) % options_.endpoints.size();
        if (!c.ok()) {
          error = c.status();
          continue;
        }
        conn = std::move(c).value();
      }
      t_sent_us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count();
      auto replies = run_pipeline(conn.get(), job.pipeline);
      if (replies.ok() && job.then) {
        std::vector<Command> second = job.then(*replies);
        if (!second.empty()) {
          auto more = run_pipeline(conn.get(), second);
          if (!more.ok()) {
            replies = more.status();
          } else {
            for (Reply& r : *more) replies->push_back(std::move(r));
          }
        }
      }
      if (!replies.ok()) {
        conn.reset();
        error = replies.status();
        if (job.idempotent) continue;
        break;
      }
      job.done(std::move(replies).value());
      error = Status::OK();
      break;
    }
    if (!error.ok()) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      job.done(error);
    }
  }
}

}  // namespace statekv::cache
