// cache_bench — the load generator of bench/cache_stampede.sh and
// bench/cache_hit_ratio.sh (run by hand; bench/README.md). Raw RESP over
// non-blocking sockets, so that a thousand requests can be in flight at once
// from one thread, each timed from its own send.
//
//   cache_bench burst   --ports P[,P...] --clients N --key K [--expect V]
//       N connections (round robin over the ports), then one GET K on each,
//       sent back to back; prints the latency percentiles and the wrong replies.
//   cache_bench poisson --port P --rate R --seconds S --key K [--slow-ms T]
//       GET K at Poisson arrivals of rate R/s for S seconds (each on an idle
//       connection); prints the percentiles and how many took >= T ms.
//   cache_bench load    --port P --keys N [--value-size B]
//       SET key:0 .. key:N-1 to a B-byte value, pipelined.
//   cache_bench zipf    --port P --keys N --requests M [--theta S] [--seed X]
//                       [--aside] [--depth D]
//       M GETs of key:<Zipf(S) rank>, D in flight on one connection; with
//       --aside a GET that finds nothing is followed by SET of the value (the
//       cache-aside pattern, for redis-server as the cache). Prints hits/gets.
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "cache/zipf.h"
#include "core/random.h"
#include "resp/value.h"

namespace {

using Clock = std::chrono::steady_clock;

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "cache_bench: %s\n", message.c_str());
  std::exit(2);
}

std::string command(std::initializer_list<std::string_view> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (auto a : args) {
    out += "$" + std::to_string(a.size()) + "\r\n";
    out.append(a);
    out += "\r\n";
  }
  return out;
}

struct Conn {
  int fd = -1;
  std::string in;
  std::string out;
  std::deque<int64_t> sent;  // send time of each request awaiting its reply
};

int connect_port(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket: " + std::string(std::strerror(errno)));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    die("connect to port " + std::to_string(port) + ": " + std::strerror(errno));
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

void flush(Conn& c) {
  while (!c.out.empty()) {
    const ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) die("send: " + std::string(std::strerror(errno)));
    c.out.erase(0, static_cast<size_t>(n));
  }
}

// Reads what is there and returns the complete replies.
std::vector<statekv::resp::Value> receive(Conn& c) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n == 0) die("connection closed by the server");
    if (n < 0) die("recv: " + std::string(std::strerror(errno)));
    c.in.append(buf, static_cast<size_t>(n));
    if (n < static_cast<ssize_t>(sizeof buf)) break;
  }
  std::vector<statekv::resp::Value> out;
  size_t off = 0;
  for (;;) {
    statekv::resp::Value v;
    auto pr = statekv::resp::parse_value(std::string_view(c.in).substr(off), v);
    if (pr.status != statekv::resp::ParseStatus::kComplete) {
      if (pr.status == statekv::resp::ParseStatus::kError) die("unparsable reply");
      break;
    }
    off += pr.consumed;
    out.push_back(std::move(v));
  }
  c.in.erase(0, off);
  return out;
}

struct Flags {
  std::map<std::string, std::string> values;
  bool has(const std::string& k) const { return values.count(k) != 0; }
  std::string str(const std::string& k, const std::string& def = "") const {
    auto it = values.find(k);
    if (it != values.end()) return it->second;
    if (def.empty()) die("missing --" + k);
    return def;
  }
  int64_t num(const std::string& k, const std::string& def = "") const {
    return std::stoll(str(k, def));
  }
};

std::string percentiles(std::vector<int64_t> us) {
  if (us.empty()) return "n=0";
  std::sort(us.begin(), us.end());
  auto at = [&](double q) {
    return static_cast<double>(us[std::min(us.size() - 1, static_cast<size_t>(q * us.size()))]) /
           1000.0;
  };
  char line[200];
  std::snprintf(line, sizeof line, "n=%zu p50_ms=%.1f p99_ms=%.1f max_ms=%.1f", us.size(), at(0.5),
                at(0.99), static_cast<double>(us.back()) / 1000.0);
  return line;
}

void raise_fd_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

int burst(const Flags& f) {
  std::vector<uint16_t> ports;
  {
    std::string list = f.str("ports");
    size_t pos = 0;
    while (pos <= list.size()) {
      size_t comma = list.find(',', pos);
      if (comma == std::string::npos) comma = list.size();
      ports.push_back(static_cast<uint16_t>(std::stoi(list.substr(pos, comma - pos))));
      pos = comma + 1;
    }
  }
  const int64_t clients = f.num("clients");
  const std::string key = f.str("key");
  const bool check = f.has("expect");
  const std::string expect = check ? f.values.at("expect") : "";
  std::vector<Conn> conns(static_cast<size_t>(clients));
  for (size_t i = 0; i < conns.size(); ++i) conns[i].fd = connect_port(ports[i % ports.size()]);
  const std::string get = command({"GET", key});
  for (Conn& c : conns) {
    c.out = get;
    c.sent.push_back(now_us());
    flush(c);
  }
  std::vector<int64_t> latencies;
  int64_t wrong = 0;
  std::vector<pollfd> fds;
  while (latencies.size() + static_cast<size_t>(wrong) < conns.size()) {
    fds.clear();
    for (Conn& c : conns) {
      if (!c.sent.empty())
        fds.push_back({c.fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
    }
    if (::poll(fds.data(), fds.size(), 30000) <= 0) die("no reply within 30 s");
    for (Conn& c : conns) {
      if (c.sent.empty()) continue;
      flush(c);
      for (auto& v : receive(c)) {
        const int64_t t = now_us() - c.sent.front();
        c.sent.pop_front();
        const bool ok = !check ? v.type != statekv::resp::Value::Type::kError
                               : (expect == "(nil)" ? v.type == statekv::resp::Value::Type::kNull
                                                    : v.type == statekv::resp::Value::Type::kBulk &&
                                                          v.str == expect);
        if (ok) {
          latencies.push_back(t);
        } else {
          ++wrong;
          std::fprintf(stderr, "wrong reply: type %d '%s'\n", static_cast<int>(v.type),
                       v.str.c_str());
        }
      }
    }
  }
  for (Conn& c : conns) ::close(c.fd);
  std::printf("%s wrong=%lld\n", percentiles(latencies).c_str(), static_cast<long long>(wrong));
  return wrong == 0 ? 0 : 1;
}

int poisson(const Flags& f) {
  const auto port = static_cast<uint16_t>(f.num("port"));
  const double rate = std::stod(f.str("rate"));
  const int64_t seconds = f.num("seconds");
  const std::string key = f.str("key");
  const int64_t slow_ms = f.num("slow-ms", "25");
  statekv::Random random(static_cast<uint64_t>(f.num("seed", "1")));
  std::vector<Conn> conns;
  std::vector<size_t> idle;
  const std::string get = command({"GET", key});
  std::vector<int64_t> latencies;
  const int64_t start = now_us();
  const int64_t end = start + seconds * 1000000;
  double next = static_cast<double>(start);
  int64_t sent = 0;
  std::vector<pollfd> fds;
  std::vector<size_t> busy;
  while (true) {
    const int64_t now = now_us();
    while (next <= static_cast<double>(now) && next < static_cast<double>(end)) {
      if (idle.empty()) {
        conns.push_back({});
        conns.back().fd = connect_port(port);
        idle.push_back(conns.size() - 1);
      }
      Conn& c = conns[idle.back()];
      idle.pop_back();
      c.out = get;
      c.sent.push_back(static_cast<int64_t>(next));  // latency from the arrival
      flush(c);
      ++sent;
      next += -std::log(1.0 - random.unit()) / rate * 1e6;
    }
    if (next >= static_cast<double>(end) && static_cast<int64_t>(latencies.size()) == sent) break;
    fds.clear();
    busy.clear();
    for (size_t i = 0; i < conns.size(); ++i) {
      if (!conns[i].sent.empty()) {
        fds.push_back({conns[i].fd, POLLIN, 0});
        busy.push_back(i);
      }
    }
    const int64_t wait_us = next < static_cast<double>(end)
                                ? std::max<int64_t>(0, static_cast<int64_t>(next) - now_us())
                                : 100000;
    ::poll(fds.data(), fds.size(), static_cast<int>((wait_us + 999) / 1000));
    for (size_t j = 0; j < fds.size(); ++j) {
      if (!(fds[j].revents & POLLIN)) continue;
      Conn& c = conns[busy[j]];
      for (auto& v : receive(c)) {
        if (v.type == statekv::resp::Value::Type::kError) die("error reply: " + v.str);
        latencies.push_back(now_us() - c.sent.front());
        c.sent.pop_front();
      }
      if (c.sent.empty()) idle.push_back(busy[j]);
    }
  }
  int64_t slow = 0;
  for (int64_t t : latencies) slow += t >= slow_ms * 1000 ? 1 : 0;
  for (Conn& c : conns) ::close(c.fd);
  std::printf("%s slow=%lld connections=%zu\n", percentiles(latencies).c_str(),
              static_cast<long long>(slow), conns.size());
  return 0;
}

int load(const Flags& f) {
  Conn c;
  c.fd = connect_port(static_cast<uint16_t>(f.num("port")));
  const int64_t keys = f.num("keys");
  const std::string value(static_cast<size_t>(f.num("value-size", "100")), 'v');
  int64_t next = 0, done = 0;
  while (done < keys) {
    while (next < keys && next - done < 512) {
      c.out += command({"SET", "key:" + std::to_string(next), value});
      ++next;
    }
    flush(c);
    pollfd p{c.fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0};
    ::poll(&p, 1, 10000);
    for (auto& v : receive(c)) {
      if (v.type == statekv::resp::Value::Type::kError) die("SET failed: " + v.str);
      ++done;
    }
  }
  ::close(c.fd);
  std::printf("loaded=%lld\n", static_cast<long long>(keys));
  return 0;
}

int zipf(const Flags& f) {
  Conn c;
  c.fd = connect_port(static_cast<uint16_t>(f.num("port")));
  const auto keys = static_cast<uint64_t>(f.num("keys"));
  const int64_t requests = f.num("requests");
  const int64_t depth = f.num("depth", "64");
  const bool aside = f.has("aside");
  const std::string value(static_cast<size_t>(f.num("value-size", "100")), 'v');
  statekv::cache::Zipf dist(keys, std::stod(f.str("theta", "0.99")));
  statekv::Random random(static_cast<uint64_t>(f.num("seed", "1")));
  // Per request in flight: the key of a GET, or empty for an aside SET.
  std::deque<std::string> pending;
  int64_t sent = 0, gets = 0, hits = 0;
  const int64_t start = now_us();
  while (sent < requests || !pending.empty()) {
    while (sent < requests && static_cast<int64_t>(pending.size()) < depth) {
      std::string key = "key:" + std::to_string(dist.next(random));
      c.out += command({"GET", key});
      pending.push_back(std::move(key));
      ++sent;
    }
    flush(c);
    pollfd p{c.fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0};
    ::poll(&p, 1, 10000);
    for (auto& v : receive(c)) {
      std::string key = std::move(pending.front());
      pending.pop_front();
      if (v.type == statekv::resp::Value::Type::kError) die("error reply: " + v.str);
      if (key.empty()) continue;  // an aside SET's +OK
      ++gets;
      if (v.type == statekv::resp::Value::Type::kBulk) {
        ++hits;
      } else if (aside) {
        c.out += command({"SET", key, value});
        pending.push_back("");
      }
    }
  }
  ::close(c.fd);
  std::printf("gets=%lld hits=%lld hit_ratio=%.4f seconds=%.1f\n", static_cast<long long>(gets),
              static_cast<long long>(hits), static_cast<double>(hits) / static_cast<double>(gets),
              static_cast<double>(now_us() - start) / 1e6);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) die("usage: cache_bench burst|poisson|load|zipf --flag value ...");
  raise_fd_limit();
  Flags f;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) die("unexpected argument " + a);
    a = a.substr(2);
    if (a == "aside") {
      f.values[a] = "1";
    } else if (i + 1 < argc) {
      f.values[a] = argv[++i];
    } else {
      die("--" + a + " needs a value");
    }
  }
  const std::string mode = argv[1];
  try {
    if (mode == "burst") return burst(f);
    if (mode == "poisson") return poisson(f);
    if (mode == "load") return load(f);
    if (mode == "zipf") return zipf(f);
  } catch (const std::exception& e) {
    die(std::string("bad flag value: ") + e.what());
  }
  die("unknown mode " + mode);
}
