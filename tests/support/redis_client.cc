#include "support/redis_client.h"

#include <hiredis/hiredis.h>

#include "support/reply.h"

namespace statekv::itest {

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000),
                 static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

}  // namespace

void RedisClient::Free::operator()(redisContext* c) const {
  redisFree(c);
}

RedisClient::~RedisClient() = default;

Result<RedisClient> RedisClient::connect(uint16_t port, std::chrono::milliseconds timeout) {
  return connect("127.0.0.1", port, timeout);
}

Result<RedisClient> RedisClient::connect(const std::string& host, uint16_t port,
                                         std::chrono::milliseconds timeout) {
  redisContext* c = redisConnectWithTimeout(host.c_str(), port, to_timeval(timeout));
  if (c == nullptr) return Status::IOError("hiredis: cannot allocate context");
  RedisClient client(c);
  if (c->err) return Status::Unavailable(std::string("hiredis connect: ") + c->errstr);
  redisSetTimeout(c, to_timeval(timeout));
  return client;
}

Status RedisClient::io_error() const {
  return Status::IOError(std::string("hiredis: ") + (ctx_->err ? ctx_->errstr : "no reply"));
}

void RedisClient::append(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  redisAppendCommandArgv(ctx_.get(), static_cast<int>(args.size()), argv.data(), lens.data());
}

Result<RedisClient::ReplyPtr> RedisClient::raw_read() {
  void* r = nullptr;
  if (redisGetReply(ctx_.get(), &r) != REDIS_OK || r == nullptr) return io_error();
  return ReplyPtr(static_cast<redisReply*>(r), freeReplyObject);
}

Result<RedisClient::ReplyPtr> RedisClient::raw_command(const std::vector<std::string>& args) {
  if (ctx_->err) return io_error();
  append(args);
  return raw_read();
}

Result<std::string> RedisClient::read_reply() {
  Result<ReplyPtr> r = raw_read();
  if (!r.ok()) return r.status();
  return render(**r);
}

Result<std::string> RedisClient::command(const std::vector<std::string>& args) {
  Result<ReplyPtr> r = raw_command(args);
  if (!r.ok()) return r.status();
  return render(**r);
}

std::string RedisClient::cmd(const std::vector<std::string>& args) {
  Result<std::string> r = command(args);
  return r.ok() ? *r : "<io error: " + r.status().message() + ">";
}

Result<long long> RedisClient::integer(const std::vector<std::string>& args) {
  Result<ReplyPtr> r = raw_command(args);
  if (!r.ok()) return r.status();
  if ((*r)->type != REDIS_REPLY_INTEGER) {
    return Status::InvalidArgument("not an integer reply: " + render(**r));
  }
  return (*r)->integer;
}

Result<std::string> RedisClient::bulk(const std::vector<std::string>& args) {
  Result<ReplyPtr> r = raw_command(args);
  if (!r.ok()) return r.status();
  if ((*r)->type == REDIS_REPLY_NIL) return Status::NotFound("nil");
  if ((*r)->type != REDIS_REPLY_STRING) {
    return Status::InvalidArgument("not a bulk reply: " + render(**r));
  }
  return std::string((*r)->str, (*r)->len);
}

namespace {

Result<std::vector<std::string>> strings_of(const redisReply& r) {
  if (r.type != REDIS_REPLY_ARRAY) return Status::InvalidArgument("not an array: " + render(r));
  std::vector<std::string> out;
  for (size_t i = 0; i < r.elements; ++i) {
    const redisReply& e = *r.element[i];
    if (e.type != REDIS_REPLY_STRING) {
      return Status::InvalidArgument("array element is not a bulk: " + render(r));
    }
    out.emplace_back(e.str, e.len);
  }
  return out;
}

}  // namespace

Result<std::vector<std::string>> RedisClient::bulk_array(const std::vector<std::string>& args) {
  Result<ReplyPtr> r = raw_command(args);
  if (!r.ok()) return r.status();
  return strings_of(**r);
}

Result<RedisClient::ScanPage> RedisClient::scan(const std::vector<std::string>& args) {
  Result<ReplyPtr> r = raw_command(args);
  if (!r.ok()) return r.status();
  const redisReply& reply = **r;
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 2 ||
      reply.element[0]->type != REDIS_REPLY_STRING) {
    return Status::InvalidArgument("not a SCAN reply: " + render(reply));
  }
  Result<std::vector<std::string>> elems = strings_of(*reply.element[1]);
  if (!elems.ok()) return elems.status();
  return ScanPage{std::string(reply.element[0]->str, reply.element[0]->len), std::move(*elems)};
}

}  // namespace statekv::itest
