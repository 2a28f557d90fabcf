#include "cache/invalidation.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "resp/value.h"
#include "resp/writer.h"

namespace statekv::cache {
namespace {

int connect_to(const Endpoint& e) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(e.host.c_str(), std::to_string(e.port).c_str(), &hints, &res) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

std::string encode(std::initializer_list<std::string_view> args) {
  std::string out;
  resp::Writer w(&out);
  w.array(args.size());
  for (auto a : args) w.bulk(a);
  return out;
}

bool send_all(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

InvalidationListener::InvalidationListener(std::vector<Endpoint> endpoints, Callbacks callbacks,
                                           Options options, std::chrono::milliseconds retry)
    : endpoints_(std::move(endpoints)),
      callbacks_(std::move(callbacks)),
      options_(std::move(options)),
      retry_(retry) {}

InvalidationListener::~InvalidationListener() {
  stop();
}

void InvalidationListener::start() {
  for (const Endpoint& e : endpoints_) threads_.emplace_back([this, e] { run(e); });
}

void InvalidationListener::stop() {
  stopping_.store(true);
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void InvalidationListener::run(const Endpoint& endpoint) {
  const std::string where = endpoint.host + ":" + std::to_string(endpoint.port);
  while (!stopping_.load()) {
    int fd = connect_to(endpoint);
    // Replies expected before pushes: HELLO's map, then +OK for TRACKING,
    // then SUBSCRIBE's confirmation (a push in RESP3).
    const bool track = options_.track;
    const bool subscribe = !options_.channel.empty();
    int replies_due = 1 + (track ? 1 : 0);
    bool confirmed = !subscribe;
    bool subscribed = false;
    std::string hello = encode({"HELLO", "3"});
    if (track) hello += encode({"CLIENT", "TRACKING", "ON", "BCAST"});
    if (subscribe) hello += encode({"SUBSCRIBE", options_.channel});
    if (fd >= 0 && send_all(fd, hello)) {
      std::string buf;
      char chunk[16384];
      while (!stopping_.load()) {
        pollfd p{fd, POLLIN, 0};
        const int r = ::poll(&p, 1, 100);
        if (r < 0 && errno != EINTR) break;
        if (r <= 0) continue;
        const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) break;
        buf.append(chunk, static_cast<size_t>(n));
        bool broken = false;
        while (!buf.empty()) {
          resp::Value v;
          resp::ParseResult pr = resp::parse_value(buf, v);
          if (pr.status == resp::ParseStatus::kIncomplete) break;
          if (pr.status == resp::ParseStatus::kError) {
            broken = true;
            break;
          }
          buf.erase(0, pr.consumed);
          bool just_confirmed = false;
          if (v.type == resp::Value::Type::kPush) {
            if (v.elements.size() == 3 && v.elements[0].str == "subscribe") {
              just_confirmed = !confirmed;
              confirmed = true;
            } else if (v.elements.size() == 3 && v.elements[0].str == "message") {
              if (callbacks_.on_message) callbacks_.on_message(v.elements[2].str);
            } else if (v.elements.size() == 2 && v.elements[0].str == "invalidate") {
              if (v.elements[1].type == resp::Value::Type::kNull) {
                callbacks_.on_flush();
              } else {
                std::vector<std::string> keys;
                for (auto& k : v.elements[1].elements) keys.push_back(std::move(k.str));
                callbacks_.on_keys(keys);
              }
              // Counted once handled, so that a count seen in INFO means
              // the cache has acted on those messages.
              messages_.fetch_add(1, std::memory_order_relaxed);
            }
            if (!just_confirmed) continue;
          } else if (replies_due > 0) {
            --replies_due;
            if (v.type == resp::Value::Type::kError) {
              spdlog::warn("upstream {} refused tracking or subscribing: {}", where, v.str);
              broken = true;
              break;
            }
          }
          if (!subscribed && replies_due == 0 && confirmed) {
            subscribed = true;
            connected_.fetch_add(1, std::memory_order_relaxed);
            if (track) {
              // What was loaded while not subscribed may have been overwritten
              // unseen: start from nothing.
              callbacks_.on_flush();
              spdlog::info("tracking writes on upstream {}", where);
            }
            if (subscribe) spdlog::info("subscribed to {} on upstream {}", options_.channel, where);
          }
        }
        if (broken) break;
      }
    }
    if (fd >= 0) ::close(fd);
    if (subscribed) connected_.fetch_sub(1, std::memory_order_relaxed);
    if (stopping_.load()) return;
    drops_.fetch_add(1, std::memory_order_relaxed);
    if (track) {
      // Writes during the gap would go unseen: hold nothing that could be stale.
      callbacks_.on_flush();
      if (subscribed) spdlog::warn("lost the tracking connection to {}; cache emptied", where);
    } else if (subscribed) {
      spdlog::warn("lost the subscription to {} on {}", options_.channel, where);
    }
    for (auto waited = std::chrono::milliseconds(0); waited < retry_ && !stopping_.load();
         waited += std::chrono::milliseconds(50)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

}  // namespace statekv::cache
