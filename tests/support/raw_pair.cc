#include "support/raw_pair.h"

#include "support/reply.h"

namespace statekv::itest {

Result<RawPair> RawPair::connect(const ServerProcess& redis, const ServerProcess& subject) {
  Result<RawClient> r = RawClient::connect(redis.port());
  if (!r.ok()) return r.status();
  Result<RawClient> s = RawClient::connect(subject.port());
  if (!s.ok()) return s.status();
  return RawPair(std::move(*r), std::move(*s), subject.describe());
}

std::vector<RawReply> RawPair::exchange(std::string_view bytes, size_t n) {
  std::vector<RawReply> out;
  Status a = redis_.send(bytes);
  Status b = subject_.send(bytes);
  if (!a.ok() || !b.ok()) {
    ADD_FAILURE() << "send failed: redis " << a.to_string() << ", " << subject_name_ << " "
                  << b.to_string();
    return out;
  }
  for (size_t i = 0; i < n; ++i) {
    Result<RawReply> r = redis_.read_reply();
    Result<RawReply> s = subject_.read_reply();
    if (!r.ok() || !s.ok()) {
      ADD_FAILURE() << "reply " << i << " of " << n << " for \""
                    << escape_bytes(bytes.substr(0, 200)) << "\": redis "
                    << (r.ok() ? escape_bytes(r->bytes) : r.status().to_string()) << ", "
                    << subject_name_ << " "
                    << (s.ok() ? escape_bytes(s->bytes) : s.status().to_string());
      return out;
    }
    if (r->bytes != s->bytes) {
      ADD_FAILURE() << "reply " << i << " of " << n << " differs for \""
                    << escape_bytes(bytes.substr(0, 200))
                    << "\"\n  redis:   " << escape_bytes(r->bytes) << "\n  " << subject_name_
                    << ": " << escape_bytes(s->bytes);
    }
    out.push_back(std::move(*r));
  }
  return out;
}

std::string RawPair::call(const std::vector<std::string>& args) {
  std::vector<RawReply> r = exchange(encode_command(args), 1);
  return r.empty() ? std::string() : r[0].bytes;
}

}  // namespace statekv::itest
