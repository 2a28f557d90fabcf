// The load harness against an in-process store, the HTTP parser on known
// bytes, the etcd connection against a real etcd started here, and the RESP
// connection against a scripted RESP peer on a real socket (tests/
// bench_resp_test.cc drives it against real statekv and Redis servers).
#include "loadgen/load.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include "loadgen/etcd_connection.h"
#include "loadgen/leader_route.h"
#include "loadgen/resp_connection.h"
#include "resp/parser.h"
#include "resp/writer.h"

extern char** environ;

namespace statekv::loadgen {
namespace {

using namespace std::chrono_literals;

// ---- percentiles ----

TEST(Percentiles, NearestRankOnOneToHundred) {
  std::vector<uint64_t> s(100);
  std::iota(s.begin(), s.end(), 1);
  EXPECT_EQ(nearest_rank(s, 0.50), 50u);
  EXPECT_EQ(nearest_rank(s, 0.90), 90u);
  EXPECT_EQ(nearest_rank(s, 0.99), 99u);
  EXPECT_EQ(nearest_rank(s, 0.999), 100u);
  EXPECT_EQ(nearest_rank(s, 1.0), 100u);
  EXPECT_EQ(nearest_rank(s, 0.0), 1u);
  EXPECT_EQ(nearest_rank(s, 0.505), 51u);
}

TEST(Percentiles, SmallAndEmptySampleSets) {
  EXPECT_EQ(nearest_rank({}, 0.5), 0u);
  EXPECT_EQ(nearest_rank({7}, 0.5), 7u);
  EXPECT_EQ(nearest_rank({7}, 0.999), 7u);
  // Two samples: the median is the lower one (rank ceil(0.5 * 2) = 1).
  EXPECT_EQ(nearest_rank({3, 9}, 0.5), 3u);
  EXPECT_EQ(nearest_rank({3, 9}, 0.51), 9u);
}

TEST(Percentiles, SummarizeSortsAndConvertsToMilliseconds) {
  // 1..1000 ms in nanoseconds, shuffled.
  std::vector<uint64_t> ns(1000);
  for (size_t i = 0; i < ns.size(); ++i) ns[i] = (i + 1) * 1'000'000;
  std::shuffle(ns.begin(), ns.end(), std::mt19937(42));
  LoadResult r;
  summarize_latencies(ns, r);
  EXPECT_TRUE(std::is_sorted(ns.begin(), ns.end()));
  EXPECT_DOUBLE_EQ(r.p50_ms, 500);
  EXPECT_DOUBLE_EQ(r.p90_ms, 900);
  EXPECT_DOUBLE_EQ(r.p99_ms, 990);
  EXPECT_DOUBLE_EQ(r.p999_ms, 999);
  EXPECT_DOUBLE_EQ(r.max_ms, 1000);
}

TEST(Percentiles, SkewedSamplesPutTheTailInP99) {
  // 990 fast puts and 10 slow ones: p99 is still fast, p99.9 and max are slow.
  std::vector<uint64_t> ns(990, 1'000'000);
  ns.insert(ns.end(), 10, 50'000'000);
  LoadResult r;
  summarize_latencies(ns, r);
  EXPECT_DOUBLE_EQ(r.p50_ms, 1);
  EXPECT_DOUBLE_EQ(r.p99_ms, 1);
  EXPECT_DOUBLE_EQ(r.p999_ms, 50);
  EXPECT_DOUBLE_EQ(r.max_ms, 50);
}

// ---- the harness against an in-process store ----

// A store in memory; its connections can be told to sleep or to fail.
class FakeStore {
 public:
  struct Config {
    std::chrono::microseconds delay{0};
    uint64_t fail_every = 0;                  // every Nth put over the whole store fails (0: none)
    uint64_t refuse_first_opens = 0;          // this many factory calls fail before any succeeds
    uint64_t refuse_opens_from = UINT64_MAX;  // factory calls from this one on fail
  };
  explicit FakeStore(Config config) : config_(config) {}

  class Conn final : public Connection {
   public:
    explicit Conn(FakeStore* store) : store_(store) {}
    Status put(std::string_view key, std::string_view value) override {
      return store_->put(key, value);
    }
    Status put_batch(std::span<const Put> puts, std::span<LoadClock::time_point> acked) override {
      store_->note_batch(puts.size());
      return Connection::put_batch(puts, acked);  // one at a time
    }

   private:
    FakeStore* store_;
  };

  ConnectionFactory factory() {
    return [this](size_t client) -> Result<std::unique_ptr<Connection>> {
      const uint64_t n = opens_.fetch_add(1);
      if (n < config_.refuse_first_opens || n >= config_.refuse_opens_from) {
        return Status::Unavailable("fake store refuses client " + std::to_string(client));
      }
      return std::unique_ptr<Connection>(std::make_unique<Conn>(this));
    };
  }

  Status put(std::string_view key, std::string_view value) {
    if (config_.delay.count() > 0) std::this_thread::sleep_for(config_.delay);
    std::lock_guard lock(mu_);
    ++puts_;
    if (config_.fail_every > 0 && puts_ % config_.fail_every == 0) {
      return Status::Unavailable("injected failure");
    }
    data_[std::string(key)] = std::string(value);
    values_.insert(std::string(value));
    keys_in_order_.emplace_back(key);
    value_sizes_.insert(value.size());
    return Status::OK();
  }

  void note_batch(size_t n) {
    std::lock_guard lock(mu_);
    ++batch_sizes_[n];
  }
  // How many batches of each size came through put_batch (a batch of one
  // comes through put).
  std::map<size_t, size_t> batch_sizes() {
    std::lock_guard lock(mu_);
    return batch_sizes_;
  }

  uint64_t opens() const { return opens_.load(); }
  uint64_t puts() {
    std::lock_guard lock(mu_);
    return puts_;
  }
  std::map<std::string, std::string> data() {
    std::lock_guard lock(mu_);
    return data_;
  }
  size_t distinct_values() {
    std::lock_guard lock(mu_);
    return values_.size();
  }
  std::set<size_t> value_sizes() {
    std::lock_guard lock(mu_);
    return value_sizes_;
  }
  std::vector<std::string> keys_in_order() {
    std::lock_guard lock(mu_);
    return keys_in_order_;
  }

 private:
  Config config_;
  std::atomic<uint64_t> opens_{0};
  std::mutex mu_;
  uint64_t puts_ = 0;
  std::map<std::string, std::string> data_;
  std::set<std::string> values_;
  std::set<size_t> value_sizes_;
  std::vector<std::string> keys_in_order_;
  std::map<size_t, size_t> batch_sizes_;
};

LoadOptions small_options() {
  LoadOptions o;
  o.clients = 4;
  o.requests = 2000;
  o.value_size = 64;
  o.key_space = 50;
  o.warmup_seconds = 0;
  return o;
}

TEST(RunLoad, IssuesExactlyTheRequestedPutsOverTheKeySpace) {
  FakeStore store({});
  const LoadOptions o = small_options();
  auto r = run_load(o, store.factory());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->ok, o.requests);
  EXPECT_EQ(r->errors, 0u);
  EXPECT_TRUE(r->first_error.empty());
  EXPECT_EQ(store.puts(), o.requests);
  EXPECT_EQ(store.opens(), o.clients);
  EXPECT_GT(r->seconds, 0);
  EXPECT_NEAR(r->ops_per_sec, static_cast<double>(r->ok) / r->seconds, 1e-6);
  EXPECT_LE(r->p50_ms, r->p90_ms);
  EXPECT_LE(r->p90_ms, r->p99_ms);
  EXPECT_LE(r->p99_ms, r->p999_ms);
  EXPECT_LE(r->p999_ms, r->max_ms);

  const auto data = store.data();
  EXPECT_LE(data.size(), o.key_space);
  EXPECT_GT(data.size(), o.key_space / 2);  // 2000 uniform draws cover most of 50 keys
  for (const auto& [k, v] : data) {
    EXPECT_EQ(k.size(), 16u);
    EXPECT_TRUE(k.starts_with("key:")) << k;
    EXPECT_LT(std::stoul(k.substr(4)), o.key_space);
  }
  EXPECT_EQ(store.value_sizes(), std::set<size_t>{o.value_size});
  EXPECT_EQ(store.distinct_values(), o.requests);  // every write carries a new value
}

TEST(RunLoad, WarmupWritesAreNotCounted) {
  FakeStore store({.delay = 200us});
  LoadOptions o = small_options();
  o.requests = 200;
  o.warmup_seconds = 0.05;
  auto r = run_load(o, store.factory());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->ok, o.requests);
  EXPECT_GT(store.puts(), o.requests);  // the warmup wrote too
}

TEST(RunLoad, LatencyAndThroughputReflectTheStoresSpeed) {
  // One client, closed loop, 2 ms per put: at most 500 puts per second.
  FakeStore store({.delay = 2ms});
  LoadOptions o = small_options();
  o.clients = 1;
  o.requests = 50;
  auto r = run_load(o, store.factory());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_GE(r->p50_ms, 2.0);
  EXPECT_GE(r->seconds, 0.1);
  EXPECT_LE(r->ops_per_sec, 500.0);

  // Four clients over the same store overlap their waits: more throughput.
  FakeStore store4({.delay = 2ms});
  o.clients = 4;
  o.requests = 200;
  auto r4 = run_load(o, store4.factory());
  ASSERT_TRUE(r4.ok());
  EXPECT_GT(r4->ops_per_sec, 1.5 * r->ops_per_sec);
}

TEST(RunLoad, APipelineSendsBatchesAndCountsEveryPut) {
  FakeStore store({});
  LoadOptions o = small_options();
  o.clients = 3;
  o.requests = 100;
  o.pipeline = 7;
  auto r = run_load(o, store.factory());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->ok, 100u);
  EXPECT_EQ(store.puts(), 100u);
  EXPECT_EQ(store.distinct_values(), 100u);  // each put of a batch its own value
  // 14 batches of 7 and the run's last 2 puts in one short batch.
  const std::map<size_t, size_t> sizes = store.batch_sizes();
  EXPECT_EQ(sizes, (std::map<size_t, size_t>{{2, 1}, {7, 14}}));

  // A failure fails its whole batch: ok + errors still add up to the requests.
  FakeStore failing({.fail_every = 10});
  o.requests = 1000;
  o.pipeline = 4;
  auto f = run_load(o, failing.factory());
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->ok + f->errors, o.requests);
  // Each failed put fails the 4 of its batch (the rest of it is not sent).
  EXPECT_EQ(f->errors, 4u * (failing.puts() / 10));
  EXPECT_NE(f->first_error.find("injected failure"), std::string::npos) << f->first_error;
}

TEST(RunLoad, FailedPutsAreCountedAndTheClientReconnects) {
  FakeStore store({.fail_every = 10});
  LoadOptions o = small_options();
  o.requests = 1000;
  auto r = run_load(o, store.factory());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->ok + r->errors, o.requests);
  EXPECT_EQ(r->errors, o.requests / 10);
  // A failed put makes its client reconnect before its next put (if it has one).
  EXPECT_LE(store.opens(), o.clients + r->errors);
  EXPECT_GE(store.opens(), r->errors);
  EXPECT_NE(r->first_error.find("injected failure"), std::string::npos) << r->first_error;
  EXPECT_NE(r->first_error.find("client "), std::string::npos) << r->first_error;
}

TEST(RunLoad, AFailedReconnectUsesUpARequestAndBacksOff) {
  // The first open succeeds and its put fails; every reopen after that is
  // refused, each refusal counted as one error, with 1, 2, 4, 8 ms between them.
  FakeStore store({.fail_every = 1, .refuse_opens_from = 1});
  LoadOptions o = small_options();
  o.clients = 1;
  o.requests = 6;
  auto r = run_load(o, store.factory());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ok, 0u);
  EXPECT_EQ(r->errors, 6u);
  EXPECT_EQ(store.puts(), 1u);
  EXPECT_EQ(store.opens(), 6u);
  EXPECT_GE(r->seconds, 0.031);  // 1 + 2 + 4 + 8 + 16 ms of backoff
  EXPECT_NE(r->first_error.find("injected failure"), std::string::npos) << r->first_error;
  EXPECT_EQ(r->p50_ms, 0);  // no acknowledged put, no latency
}

TEST(RunLoad, NoStoreToConnectToFailsTheRunUpFront) {
  FakeStore store({.refuse_first_opens = 1000});
  auto r = run_load(small_options(), store.factory());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable);
  EXPECT_EQ(store.puts(), 0u);
}

TEST(RunLoad, RejectsInvalidOptions) {
  FakeStore store({});
  for (auto mutate : std::vector<std::function<void(LoadOptions&)>>{
           [](LoadOptions& o) { o.clients = 0; }, [](LoadOptions& o) { o.requests = 0; },
           [](LoadOptions& o) { o.key_space = 0; },
           [](LoadOptions& o) { o.warmup_seconds = -1; }, [](LoadOptions& o) { o.pipeline = 0; }}) {
    LoadOptions o = small_options();
    mutate(o);
    auto r = run_load(o, store.factory());
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(r.status().is_invalid_argument());
  }
  EXPECT_EQ(store.opens(), 0u);
}

TEST(RunLoad, TheSeedDecidesTheKeys) {
  auto keys = [](uint64_t seed) {
    FakeStore store({});
    LoadOptions o = small_options();
    o.clients = 1;
    o.requests = 100;
    o.key_space = 1'000'000;
    o.seed = seed;
    EXPECT_TRUE(run_load(o, store.factory()).ok());
    return store.keys_in_order();
  };
  EXPECT_EQ(keys(7), keys(7));
  EXPECT_NE(keys(7), keys(8));
}

TEST(Report, JsonCarriesEveryFieldUnderItsName) {
  LoadOptions o = small_options();
  LoadResult r{.ok = 10,
               .errors = 2,
               .seconds = 1.5,
               .ops_per_sec = 6.666,
               .p50_ms = 1.25,
               .p90_ms = 2.5,
               .p99_ms = 3.75,
               .p999_ms = 4,
               .max_ms = 5,
               .first_error = "client 1: Unavailable: \"quoted\"\n"};
  const std::string line = format_json("etcd", o, r);
  EXPECT_EQ(line.find('\n'), std::string::npos);  // one line, for scripts
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["target"], "etcd");
  EXPECT_EQ(j["clients"], o.clients);
  EXPECT_EQ(j["requests"], o.requests);
  EXPECT_EQ(j["value_size"], o.value_size);
  EXPECT_EQ(j["ok"], 10);
  EXPECT_EQ(j["errors"], 2);
  EXPECT_DOUBLE_EQ(j["ops_per_sec"].get<double>(), 6.666);
  EXPECT_DOUBLE_EQ(j["p50_ms"].get<double>(), 1.25);
  EXPECT_DOUBLE_EQ(j["p99_ms"].get<double>(), 3.75);
  EXPECT_DOUBLE_EQ(j["p999_ms"].get<double>(), 4);
  EXPECT_EQ(j["first_error"], r.first_error);

  const std::string table = format_table("etcd", o, r);
  EXPECT_NE(table.find("p99 ms"), std::string::npos);
  EXPECT_NE(table.find("3.750"), std::string::npos);
  EXPECT_NE(table.find("first error: client 1"), std::string::npos);
}

TEST(Keys, FixedWidth) {
  EXPECT_EQ(key_for(0), "key:000000000000");
  EXPECT_EQ(key_for(123456), "key:000000123456");
}

// ---- etcd client pieces on known bytes ----

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\0\xff", 2)), "AP8=");
}

TEST(Endpoint, ParsesClientUrlsAndHostPort) {
  auto a = parse_endpoint("http://127.0.0.1:2379");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 2379);
  auto b = parse_endpoint("localhost:23790/");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "localhost");
  EXPECT_EQ(b->port, 23790);
  auto c = parse_endpoint("http://[::1]:2379");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  for (const char* bad : {"https://127.0.0.1:2379", "127.0.0.1", "127.0.0.1:", "host:99999",
                          "host:12x", ":2379", "[::1]2379"}) {
    EXPECT_TRUE(parse_endpoint(bad).status().is_invalid_argument()) << bad;
  }
}

using State = HttpResponseParser::State;

// What etcd 3.4's gateway sends for a put: Content-Length framing.
constexpr std::string_view kPutReply =
    "HTTP/1.1 200 OK\r\n"
    "Access-Control-Allow-Origin: *\r\n"
    "Content-Type: application/json\r\n"
    "Grpc-Metadata-Content-Type: application/grpc\r\n"
    "Date: Tue, 24 Nov 2026 12:29:47 GMT\r\n"
    "Content-Length: 114\r\n"
    "\r\n"
    "{\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":\"13668033151171901709\","
    "\"revision\":\"2\",\"raft_term\":\"2\"}}";

// What it sends for an error: chunked, with a trailer.
constexpr std::string_view kErrorReply =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: application/json\r\n"
    "Trailer: Grpc-Trailer-Content-Type\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "1d;ext=1\r\n"
    "{\"error\":\"etcdserver: key is \r\n"
    "25\r\n"
    "not provided\",\"message\":\"x\",\"code\":3}\r\n"
    "0\r\n"
    "Grpc-Trailer-Content-Type: application/grpc\r\n"
    "\r\n";

TEST(HttpParser, ContentLengthInOnePieceAndByteByByte) {
  HttpResponseParser p;
  ASSERT_EQ(p.feed(kPutReply), State::kDone) << p.error();
  EXPECT_EQ(p.status_code(), 200);
  EXPECT_TRUE(p.keep_alive());
  EXPECT_EQ(p.body().size(), 114u);
  EXPECT_EQ(p.header("CONTENT-TYPE"), "application/json");

  HttpResponseParser q;
  for (size_t i = 0; i + 1 < kPutReply.size(); ++i) {
    ASSERT_EQ(q.feed(kPutReply.substr(i, 1)), State::kNeedMore) << "at byte " << i;
  }
  ASSERT_EQ(q.feed(kPutReply.substr(kPutReply.size() - 1)), State::kDone);
  EXPECT_EQ(q.body(), p.body());
}

TEST(HttpParser, ChunkedWithExtensionsAndTrailers) {
  const std::string body =
      "{\"error\":\"etcdserver: key is not provided\",\"message\":\"x\",\"code\":3}";
  for (size_t step : {kErrorReply.size(), size_t{1}, size_t{7}}) {
    HttpResponseParser p;
    State s = State::kNeedMore;
    for (size_t i = 0; i < kErrorReply.size(); i += step) {
      ASSERT_EQ(s, State::kNeedMore) << "done early at byte " << i;
      s = p.feed(kErrorReply.substr(i, step));
    }
    ASSERT_EQ(s, State::kDone) << p.error();
    EXPECT_EQ(p.status_code(), 400);
    EXPECT_EQ(p.body(), body);
    EXPECT_EQ(p.header("grpc-trailer-content-type"), "application/grpc");
    EXPECT_TRUE(p.keep_alive());
  }
}

TEST(HttpParser, ConnectionCloseAndHttp10) {
  HttpResponseParser p;
  ASSERT_EQ(p.feed("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"),
            State::kDone);
  EXPECT_FALSE(p.keep_alive());
  HttpResponseParser q;
  ASSERT_EQ(q.feed("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"), State::kDone);
  EXPECT_FALSE(q.keep_alive());
  HttpResponseParser r;
  ASSERT_EQ(r.feed("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n"),
            State::kDone);
  EXPECT_TRUE(r.keep_alive());
}

TEST(HttpParser, BodyUntilEofAndTruncation) {
  HttpResponseParser p;
  ASSERT_EQ(p.feed("HTTP/1.1 200 OK\r\n\r\nsome "), State::kNeedMore);
  ASSERT_EQ(p.feed("body"), State::kNeedMore);
  ASSERT_EQ(p.feed_eof(), State::kDone);
  EXPECT_EQ(p.body(), "some body");
  EXPECT_FALSE(p.keep_alive());

  HttpResponseParser q;
  ASSERT_EQ(q.feed(kPutReply.substr(0, 150)), State::kNeedMore);
  EXPECT_EQ(q.feed_eof(), State::kError);
  EXPECT_NE(q.error().find("middle of a response"), std::string::npos);

  HttpResponseParser r;
  EXPECT_EQ(r.feed_eof(), State::kError);
  EXPECT_NE(r.error().find("before a response"), std::string::npos);
}

TEST(HttpParser, RejectsMalformedResponses) {
  for (std::string_view bad : {
           std::string_view("SMTP 220 hello\r\n\r\n"),
           std::string_view("HTTP/1.1 2x0 OK\r\n\r\n"),
           std::string_view("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n"),
           std::string_view("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
           std::string_view("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
           std::string_view("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
           std::string_view("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY"),
           std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab"),  // extra byte
           std::string_view("HTTP/1.1 100 Continue\r\n\r\n"),
       }) {
    HttpResponseParser p;
    EXPECT_EQ(p.feed(bad), State::kError) << bad;
    EXPECT_FALSE(p.error().empty());
    EXPECT_EQ(p.feed("more"), State::kError);  // stays failed
  }
}

TEST(HttpParser, ResetReadsTheNextResponse) {
  HttpResponseParser p;
  ASSERT_EQ(p.feed(kErrorReply), State::kDone);
  p.reset();
  ASSERT_EQ(p.feed(kPutReply), State::kDone);
  EXPECT_EQ(p.status_code(), 200);
  EXPECT_FALSE(p.header("trailer").has_value());
}

TEST(EtcdConnectionNoServer, ConnectRefusedIsUnavailable) {
  // A port that was free a moment ago: bind, read the port, close.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  auto conn = EtcdConnection::connect({"127.0.0.1", ntohs(addr.sin_port)});
  ASSERT_FALSE(conn.ok());
  EXPECT_EQ(conn.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(conn.status().message().find("Connection refused"), std::string::npos)
      << conn.status().to_string();
  EXPECT_TRUE(make_etcd_connection_factory({}).status().is_invalid_argument());
  EXPECT_TRUE(make_etcd_connection_factory({"nope"}).status().is_invalid_argument());
}

// ---- the RESP connection ----

resp::Value integer_reply(int64_t n) {
  resp::Value v;
  v.type = resp::Value::Type::kInteger;
  v.integer = n;
  return v;
}

TEST(RespWait, CountsOnlyAnIntegerAtLeastN) {
  EXPECT_TRUE(check_wait_reply(integer_reply(2), 2).ok());
  EXPECT_TRUE(check_wait_reply(integer_reply(3), 2).ok());
  const Status low = check_wait_reply(integer_reply(1), 2);
  EXPECT_EQ(low.code(), Status::Code::kUnavailable);
  EXPECT_NE(low.message().find("only 1 replica"), std::string::npos) << low.to_string();
  resp::Value err;
  err.type = resp::Value::Type::kError;
  err.str = "ERR WAIT cannot be used with replica instances";
  EXPECT_EQ(check_wait_reply(err, 1).code(), Status::Code::kUnavailable);
  resp::Value ok;
  ok.type = resp::Value::Type::kSimple;
  ok.str = "OK";
  EXPECT_EQ(check_wait_reply(ok, 1).code(), Status::Code::kCorruption);
}

// A RESP peer on 127.0.0.1 that answers each request it receives (parsed with
// the server's own request parser) with the next scripted reply, sent one byte
// at a time so that the client must reassemble it (bytes after the reply's
// first value go out with its last byte). A reply of "" closes the
// connection instead of answering. Records every request's arguments.
class ScriptedPeer {
 public:
  explicit ScriptedPeer(std::vector<std::string> replies)
      : ScriptedPeer([&replies](uint16_t) { return std::move(replies); }) {}
  // Replies that name the peer's own port: made once it listens.
  explicit ScriptedPeer(
      const std::function<std::vector<std::string>(uint16_t port)>& make_replies) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(listen_fd_, 4), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    replies_ = make_replies(port_);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedPeer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  std::vector<std::vector<std::string>> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  size_t accepted() {
    std::lock_guard lock(mu_);
    return accepted_;
  }

 private:
  void serve() {
    size_t next = 0;
    while (next < replies_.size()) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      {
        std::lock_guard lock(mu_);
        ++accepted_;
      }
      std::string in;
      char buf[4096];
      bool open = true;
      while (open && next < replies_.size()) {
        std::vector<std::string_view> args;
        std::vector<std::string> scratch;
        const resp::ParseResult r = resp::parse_request(in, resp::Limits{}, args, scratch);
        if (r.status == resp::ParseStatus::kIncomplete) {
          const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
          if (n <= 0) break;
          in.append(buf, static_cast<size_t>(n));
          continue;
        }
        if (r.status == resp::ParseStatus::kError) break;
        {
          std::lock_guard lock(mu_);
          requests_.emplace_back(args.begin(), args.end());
        }
        in.erase(0, r.consumed);
        const std::string& reply = replies_[next++];
        if (reply.empty()) {
          open = false;
          break;
        }
        // One byte at a time (the client must put partial reads together),
        // except that bytes after the first reply go out with its last byte:
        // the client must see them when it completes that reply, whatever
        // the scheduling.
        resp::Value first;
        const resp::ParseResult whole = resp::parse_value(reply, first);
        const size_t split = whole.status == resp::ParseStatus::kComplete && whole.consumed > 0
                                 ? whole.consumed - 1
                                 : reply.size();
        for (size_t i = 0; i < split; ++i) ::send(fd, &reply[i], 1, MSG_NOSIGNAL);
        if (split < reply.size()) {
          ::send(fd, reply.data() + split, reply.size() - split, MSG_NOSIGNAL);
        }
      }
      ::close(fd);
    }
  }

  std::vector<std::string> replies_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::vector<std::string>> requests_;
  size_t accepted_ = 0;
};

using Args = std::vector<std::vector<std::string>>;

TEST(RespConnection, SetWithPrefixThenWaitAcknowledgesOnEnoughReplicas) {
  ScriptedPeer peer({"+OK\r\n", ":2\r\n", "+OK\r\n", ":1\r\n", "+OK\r\n", ":3\r\n"});
  RespOptions o;
  o.key_prefix = "r:";
  o.wait_replicas = 2;
  auto conn = RespConnection::connect({"127.0.0.1", peer.port()}, o);
  ASSERT_TRUE(conn.ok()) << conn.status().to_string();
  const std::string binary("v\r\n\0x", 5);
  EXPECT_TRUE((*conn)->put("k1", binary).ok());
  // WAIT answered 1 < 2: the put is not acknowledged, the connection stays up.
  const Status short_wait = (*conn)->put("k2", "v");
  EXPECT_EQ(short_wait.code(), Status::Code::kUnavailable) << short_wait.to_string();
  EXPECT_NE(short_wait.message().find("only 1 replica"), std::string::npos);
  EXPECT_TRUE((*conn)->put("k3", "v").ok());
  EXPECT_EQ((*conn)->connects(), 1u);
  EXPECT_EQ(peer.requests(), (Args{{"SET", "r:k1", binary},
                                   {"WAIT", "2", "0"},
                                   {"SET", "r:k2", "v"},
                                   {"WAIT", "2", "0"},
                                   {"SET", "r:k3", "v"},
                                   {"WAIT", "2", "0"}}));
}

TEST(RespConnection, ErrorRepliesAreStatusesAndTheConnectionStaysUsable) {
  ScriptedPeer peer(
      {"-MOVED 12 127.0.0.1:1\r\n", "$5\r\nhello\r\n", "+QUEUED\r\n", "*2\r\n:1\r\n$-1\r\n"});
  auto conn = RespConnection::connect({"127.0.0.1", peer.port()});
  ASSERT_TRUE(conn.ok());
  const Status moved = (*conn)->put("k", "v");
  EXPECT_EQ(moved.code(), Status::Code::kUnavailable);
  EXPECT_NE(moved.message().find("-MOVED 12"), std::string::npos) << moved.to_string();
  auto get = (*conn)->command({"GET", "k"});
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->type, resp::Value::Type::kBulk);
  EXPECT_EQ(get->str, "hello");
  // SET answered something other than +OK.
  EXPECT_EQ((*conn)->put("k", "v").code(), Status::Code::kCorruption);
  auto arr = (*conn)->command({"X"});
  ASSERT_TRUE(arr.ok());
  ASSERT_EQ(arr->elements.size(), 2u);
  EXPECT_EQ(arr->elements[1].type, resp::Value::Type::kNull);
  EXPECT_EQ((*conn)->connects(), 1u);
  EXPECT_EQ((*conn)->commands(), 4u);
}

TEST(RespConnection, BrokenRepliesCloseTheSocketAndTheNextPutReconnects) {
  // A reply with bytes after it, a reply that is not RESP, a connection closed
  // before the reply; each time the next put opens a new connection.
  ScriptedPeer peer({"+OK\r\n+OK\r\n", "!bad\r\n", "", "+OK\r\n"});
  auto conn = RespConnection::connect({"127.0.0.1", peer.port()});
  ASSERT_TRUE(conn.ok());
  const Status extra = (*conn)->put("k", "v");
  EXPECT_EQ(extra.code(), Status::Code::kCorruption) << extra.to_string();
  const Status bad = (*conn)->put("k", "v");
  EXPECT_EQ(bad.code(), Status::Code::kCorruption) << bad.to_string();
  const Status closed = (*conn)->put("k", "v");
  EXPECT_EQ(closed.code(), Status::Code::kUnavailable) << closed.to_string();
  EXPECT_NE(closed.message().find("closed before a reply"), std::string::npos);
  EXPECT_TRUE((*conn)->put("k", "v").ok());
  EXPECT_EQ((*conn)->connects(), 4u);
  EXPECT_EQ(peer.accepted(), 4u);
}

TEST(RespConnection, APipelineSendsEverySetThenOneWaitAndAcknowledgesEachPut) {
  using namespace std::chrono_literals;
  ScriptedPeer peer({"+OK\r\n", "+OK\r\n", "+OK\r\n", ":2\r\n",       // batch 1
                     "+OK\r\n", "-ERR full\r\n", "+OK\r\n", ":2\r\n",  // batch 2: one refused
                     "+OK\r\n", "+OK\r\n", ":1\r\n"});                 // batch 3: WAIT short
  RespOptions o;
  o.key_prefix = "r:";
  o.wait_replicas = 2;
  auto conn = RespConnection::connect({"127.0.0.1", peer.port()}, o);
  ASSERT_TRUE(conn.ok()) << conn.status().to_string();
  const std::vector<Put> three = {{"a", "1"}, {"b", "2"}, {"c", "3"}};
  std::vector<LoadClock::time_point> acked(3);
  const auto before = LoadClock::now();
  ASSERT_TRUE((*conn)->put_batch(three, acked).ok());
  for (const auto& t : acked) EXPECT_GE(t, before);
  // The WAIT's answer acknowledges them all at once.
  EXPECT_EQ(acked[0], acked[2]);

  acked.assign(3, LoadClock::time_point());
  const Status refused = (*conn)->put_batch(three, acked);
  EXPECT_EQ(refused.code(), Status::Code::kUnavailable) << refused.to_string();
  EXPECT_NE(refused.message().find("-ERR full"), std::string::npos) << refused.to_string();
  EXPECT_NE(acked[0], LoadClock::time_point());
  EXPECT_EQ(acked[1], LoadClock::time_point());  // not acknowledged
  EXPECT_NE(acked[2], LoadClock::time_point());

  std::vector<LoadClock::time_point> two(2);
  const Status short_wait = (*conn)->put_batch(std::span(three).first(2), two);
  EXPECT_EQ(short_wait.code(), Status::Code::kUnavailable) << short_wait.to_string();
  EXPECT_NE(short_wait.message().find("only 1 replica"), std::string::npos);
  EXPECT_EQ(two[0], LoadClock::time_point());
  EXPECT_EQ((*conn)->connects(), 1u);  // error replies keep the connection
  Args sent;
  for (int batch = 0; batch < 3; ++batch) {
    for (int i = 0; i < (batch == 2 ? 2 : 3); ++i) {
      sent.push_back({"SET", "r:" + std::string(three[i].key), std::string(three[i].value)});
    }
    sent.push_back({"WAIT", "2", "0"});
  }
  EXPECT_EQ(peer.requests(), sent);
}

TEST(RespConnection, APipelineWithoutWaitTakesEachReplyAsItComesAndSurvivesABrokenOne) {
  // Batch 1 whole; batch 2: the connection closes after its first reply;
  // batch 3 on a new connection: a reply that is not RESP.
  ScriptedPeer peer({"+OK\r\n", "+OK\r\n", "+OK\r\n", "", "!bad\r\n"});
  auto conn = RespConnection::connect({"127.0.0.1", peer.port()});
  ASSERT_TRUE(conn.ok());
  const std::vector<Put> two = {{"a", "1"}, {"b", "2"}};
  std::vector<LoadClock::time_point> acked(2);
  ASSERT_TRUE((*conn)->put_batch(two, acked).ok());
  EXPECT_LE(acked[0], acked[1]);
  const Status closed = (*conn)->put_batch(two, acked);
  EXPECT_EQ(closed.code(), Status::Code::kUnavailable) << closed.to_string();
  EXPECT_NE(closed.message().find("closed"), std::string::npos) << closed.to_string();
  const Status bad = (*conn)->put_batch(two, acked);
  EXPECT_EQ(bad.code(), Status::Code::kCorruption) << bad.to_string();
  EXPECT_EQ((*conn)->connects(), 2u);
}

TEST(RespConnection, FactorySpreadsClientsAndRejectsBadEndpoints) {
  EXPECT_TRUE(make_resp_connection_factory({}).status().is_invalid_argument());
  EXPECT_TRUE(make_resp_connection_factory({"nope"}).status().is_invalid_argument());
  EXPECT_TRUE(make_resp_connection_factory({"http://127.0.0.1:1"}).status().is_invalid_argument());
  RespOptions negative;
  negative.wait_replicas = -1;
  EXPECT_TRUE(
      make_resp_connection_factory({"127.0.0.1:1"}, negative).status().is_invalid_argument());
  ScriptedPeer a({"+OK\r\n"}), b({"+OK\r\n"});
  auto factory = make_resp_connection_factory(
      {"127.0.0.1:" + std::to_string(a.port()), "127.0.0.1:" + std::to_string(b.port())});
  ASSERT_TRUE(factory.ok());
  auto c0 = (*factory)(0);
  auto c1 = (*factory)(1);
  ASSERT_TRUE(c0.ok() && c1.ok());
  EXPECT_TRUE((*c0)->put("x", "1").ok());
  EXPECT_TRUE((*c1)->put("y", "2").ok());
  EXPECT_EQ(a.requests(), (Args{{"SET", "x", "1"}}));
  EXPECT_EQ(b.requests(), (Args{{"SET", "y", "2"}}));
}

// ---- --route leader: LOCATE's reply, the shared table, the routed client ----

// LOCATE's reply as a statekv node writes it (RESP2: a flat array of pairs),
// for a shard whose owners are nodes 1.. with the given addresses. `leader`:
// 0 for none known (null), -1 for an unreplicated keyspace (no leader field).
std::string locate_reply(const std::string& keyspace, int64_t shard,
                         const std::vector<std::string>& addresses, int64_t leader,
                         int protocol = 2) {
  std::string out;
  resp::Writer w(&out, protocol);
  w.map(leader < 0 ? 7 : 10);
  w.bulk("keyspace");
  w.bulk(keyspace);
  w.bulk("partitioner");
  w.bulk("hash");
  w.bulk("shard");
  w.integer(shard);
  w.bulk("owners");
  w.array(addresses.size());
  for (size_t i = 0; i < addresses.size(); ++i) w.integer(static_cast<int64_t>(i + 1));
  w.bulk("addresses");
  w.array(addresses.size());
  for (const auto& a : addresses) w.bulk(a);
  w.bulk("replication");
  w.bulk(leader < 0 ? "none" : "consensus");
  w.bulk("epoch");
  w.integer(2);
  if (leader < 0) return out;
  w.bulk("group");
  w.integer(77);
  w.bulk("leader");
  if (leader == 0) {
    w.null();
  } else {
    w.integer(leader);
  }
  w.bulk("replicas");
  w.array(0);
  return out;
}

resp::Value parsed(const std::string& bytes) {
  resp::Value v;
  EXPECT_EQ(resp::parse_value(bytes, v).status, resp::ParseStatus::kComplete);
  return v;
}

TEST(LeaderRoute, LocateReplyNamesTheLeadersAddressOrTheOwnerOrNone) {
  const std::vector<std::string> addrs = {"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"};
  for (int protocol : {2, 3}) {
    auto led = parse_locate_reply(parsed(locate_reply("rep", 2, addrs, 3, protocol)));
    ASSERT_TRUE(led.ok()) << led.status().to_string();
    EXPECT_EQ(led->keyspace, "rep");
    EXPECT_EQ(led->shard, 2);
    EXPECT_EQ(led->target, "127.0.0.1:7003");
    EXPECT_EQ(led->addresses, addrs);
  }
  auto election = parse_locate_reply(parsed(locate_reply("rep", 0, addrs, 0)));
  ASSERT_TRUE(election.ok());
  EXPECT_EQ(election->target, "");
  auto single = parse_locate_reply(parsed(locate_reply("default", 1, {"127.0.0.1:7002"}, -1)));
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->target, "127.0.0.1:7002");

  EXPECT_EQ(parse_locate_reply(parsed("-ERR unknown command 'LOCATE'\r\n")).status().code(),
            Status::Code::kUnavailable);
  EXPECT_EQ(parse_locate_reply(parsed("+OK\r\n")).status().code(), Status::Code::kCorruption);
  EXPECT_EQ(parse_locate_reply(parsed("*2\r\n$5\r\nshard\r\n:1\r\n")).status().code(),
            Status::Code::kCorruption);
  // A leader that is none of the owners.
  EXPECT_EQ(parse_locate_reply(parsed(locate_reply("rep", 0, addrs, 9))).status().code(),
            Status::Code::kCorruption);
}

TEST(LeaderRoute, TableRoutesByShardAndForgetsAShardAfterAnError) {
  LeaderTable table({{"127.0.0.1", 7001}, {"127.0.0.1", 7002}});
  const std::vector<std::string> addrs = {"127.0.0.1:7001", "127.0.0.1:7002", "10.0.0.9:7003"};
  EXPECT_EQ(table.lookup("r:a"), LeaderTable::kUnknown);
  EXPECT_EQ(table.learn("r:a", *parse_locate_reply(parsed(locate_reply("rep", 0, addrs, 2)))), 1);
  EXPECT_EQ(table.learn("r:b", *parse_locate_reply(parsed(locate_reply("rep", 0, addrs, 2)))), 1);
  // Node 3's address is none of the endpoints.
  EXPECT_EQ(table.learn("r:c", *parse_locate_reply(parsed(locate_reply("rep", 1, addrs, 3)))),
            LeaderTable::kElsewhere);
  // Same shard number, another keyspace: a shard of its own.
  EXPECT_EQ(table.learn("s:a", *parse_locate_reply(parsed(locate_reply("s", 0, addrs, 1)))), 0);
  EXPECT_EQ(table.lookup("r:a"), 1);
  EXPECT_EQ(table.lookup("r:c"), LeaderTable::kElsewhere);
  LeaderTable::Counts c = table.counts();
  EXPECT_EQ(c.keys, 4u);
  EXPECT_EQ(c.direct, 3u);
  EXPECT_EQ(c.shards, 3u);
  EXPECT_EQ(c.per_endpoint, (std::vector<size_t>{1, 1}));

  // A failed put of r:a forgets shard 0 of rep: r:b too must be located again.
  table.forget("r:a");
  EXPECT_EQ(table.lookup("r:a"), LeaderTable::kUnknown);
  EXPECT_EQ(table.lookup("r:b"), LeaderTable::kUnknown);
  EXPECT_EQ(table.lookup("s:a"), 0);
  // An answer without a leader (an election) does not settle it ...
  EXPECT_EQ(table.learn("r:b", *parse_locate_reply(parsed(locate_reply("rep", 0, addrs, 0)))),
            LeaderTable::kUnknown);
  // ... the next one naming the new leader does, for every key of the shard.
  EXPECT_EQ(table.learn("r:b", *parse_locate_reply(parsed(locate_reply("rep", 0, addrs, 1)))), 0);
  EXPECT_EQ(table.lookup("r:a"), 0);
  EXPECT_EQ(table.endpoint_of("127.0.0.1:7002"), 1);
  EXPECT_EQ(table.endpoint_of("localhost:7002"), LeaderTable::kElsewhere);
  EXPECT_EQ(table.endpoint_of("garbage"), LeaderTable::kElsewhere);
}

TEST(LeaderRoute, EachPutGoesToItsKeysLeaderAndIsLocatedAgainAfterAnError) {
  // Two nodes: a (node 1) and b (node 2). Shard 0 (key 0) is led by b,
  // shard 1 (key 1) by a.
  ScriptedPeer b({"+OK\r\n", "-CLUSTERDOWN the leader stepped down\r\n"});
  const std::string b_addr = "127.0.0.1:" + std::to_string(b.port());
  // a's replies name a itself: made once it listens.
  ScriptedPeer a([&](uint16_t a_port) {
    const std::vector<std::string> addrs = {"127.0.0.1:" + std::to_string(a_port), b_addr};
    return std::vector<std::string>{
        // locate_keys: both keys, pipelined.
        locate_reply("rep", 0, addrs, 2), locate_reply("rep", 1, addrs, 1),
        // client 0 (spread endpoint a): key 1's SET.
        "+OK\r\n",
        // after b failed key 0: LOCATE again, now led by a; then its SET.
        locate_reply("rep", 0, addrs, 1), "+OK\r\n"};
  });
  const uint16_t a_port = a.port();
  const std::vector<HostPort> endpoints = {{"127.0.0.1", a_port}, {"127.0.0.1", b.port()}};
  RespOptions o;
  o.key_prefix = "r:";
  auto table = locate_keys(endpoints, o, 2);
  ASSERT_TRUE(table.ok()) << table.status().to_string();
  EXPECT_EQ((*table)->lookup("r:" + key_for(0)), 1);
  EXPECT_EQ((*table)->lookup("r:" + key_for(1)), 0);
  auto factory = make_resp_leader_factory(endpoints, o, *table);
  ASSERT_TRUE(factory.ok());
  {
    auto conn = (*factory)(0);
    ASSERT_TRUE(conn.ok()) << conn.status().to_string();
    EXPECT_TRUE((*conn)->put(key_for(0), "v0").ok());      // to b, its leader
    EXPECT_TRUE((*conn)->put(key_for(1), "v1").ok());      // to a
    const Status failed = (*conn)->put(key_for(0), "v2");  // b refuses
    EXPECT_EQ(failed.code(), Status::Code::kUnavailable) << failed.to_string();
  }
  EXPECT_EQ((*table)->lookup("r:" + key_for(0)), LeaderTable::kUnknown);
  {
    // The harness opens a new connection after a failure.
    auto conn = (*factory)(0);
    ASSERT_TRUE(conn.ok());
    EXPECT_TRUE((*conn)->put(key_for(0), "v3").ok());  // located through a: a leads now
  }
  EXPECT_EQ((*table)->lookup("r:" + key_for(0)), 0);
  EXPECT_EQ(a.requests(), (Args{{"LOCATE", "r:" + key_for(0)},
                                {"LOCATE", "r:" + key_for(1)},
                                {"SET", "r:" + key_for(1), "v1"},
                                {"LOCATE", "r:" + key_for(0)},
                                {"SET", "r:" + key_for(0), "v3"}}));
  EXPECT_EQ(b.requests(),
            (Args{{"SET", "r:" + key_for(0), "v0"}, {"SET", "r:" + key_for(0), "v2"}}));
}

TEST(LeaderRoute, APipelineSendsEachPutToItsLeaderAndTakesTheRepliesOfBoth) {
  // Key 0 led by b, key 1 by a; a batch of 4 puts: 0, 1, 0, 1.
  ScriptedPeer b({"+OK\r\n", "-CLUSTERDOWN the leader stepped down\r\n"});
  const std::string b_addr = "127.0.0.1:" + std::to_string(b.port());
  ScriptedPeer a([&](uint16_t a_port) {
    const std::vector<std::string> addrs = {"127.0.0.1:" + std::to_string(a_port), b_addr};
    return std::vector<std::string>{locate_reply("rep", 0, addrs, 2),
                                    locate_reply("rep", 1, addrs, 1), "+OK\r\n", "+OK\r\n"};
  });
  const std::vector<HostPort> endpoints = {{"127.0.0.1", a.port()}, {"127.0.0.1", b.port()}};
  RespOptions o;
  o.key_prefix = "r:";
  auto table = locate_keys(endpoints, o, 2);
  ASSERT_TRUE(table.ok()) << table.status().to_string();
  auto factory = make_resp_leader_factory(endpoints, o, *table);
  ASSERT_TRUE(factory.ok());
  auto conn = (*factory)(0);
  ASSERT_TRUE(conn.ok()) << conn.status().to_string();
  const std::string k0 = key_for(0), k1 = key_for(1);
  const std::vector<Put> batch = {{k0, "v0"}, {k1, "v1"}, {k0, "v2"}, {k1, "v3"}};
  std::vector<LoadClock::time_point> acked(4);
  const Status s = (*conn)->put_batch(batch, acked);
  // b refused its second put: the batch fails, that shard is located again,
  // and every other put was acknowledged.
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.to_string();
  EXPECT_NE(s.message().find("CLUSTERDOWN"), std::string::npos) << s.to_string();
  EXPECT_NE(acked[0], LoadClock::time_point());
  EXPECT_NE(acked[1], LoadClock::time_point());
  EXPECT_EQ(acked[2], LoadClock::time_point());
  EXPECT_NE(acked[3], LoadClock::time_point());
  EXPECT_EQ((*table)->lookup("r:" + k0), LeaderTable::kUnknown);
  EXPECT_EQ((*table)->lookup("r:" + k1), 0);
  EXPECT_EQ(b.requests(), (Args{{"SET", "r:" + k0, "v0"}, {"SET", "r:" + k0, "v2"}}));
  EXPECT_EQ(a.requests(), (Args{{"LOCATE", "r:" + k0},
                                {"LOCATE", "r:" + k1},
                                {"SET", "r:" + k1, "v1"},
                                {"SET", "r:" + k1, "v3"}}));
}

TEST(LeaderRoute, ANodeThatIsDownCostsOnlyItsOwnPuts) {
  // A port bound but not listening: connections are refused.
  const int closed = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(closed, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(closed, reinterpret_cast<sockaddr*>(&addr), &len);
  const uint16_t down_port = ntohs(addr.sin_port);
  ScriptedPeer up({"+OK\r\n", "+OK\r\n"});
  const std::vector<HostPort> endpoints = {{"127.0.0.1", down_port}, {"127.0.0.1", up.port()}};
  auto table = std::make_shared<LeaderTable>(endpoints);
  // The key's leader is a node the client was not given: the spread endpoint.
  table->learn("r:x", *parse_locate_reply(parsed(locate_reply("rep", 0, {"10.9.9.9:1"}, 1))));
  // This one's leader is the node that is down.
  const std::string down_addr = "127.0.0.1:" + std::to_string(down_port);
  table->learn("r:y", *parse_locate_reply(parsed(locate_reply("rep", 1, {down_addr}, 1))));
  EXPECT_EQ(table->lookup("r:y"), 0);
  RespOptions o;
  o.key_prefix = "r:";
  auto factory = make_resp_leader_factory(endpoints, o, table);
  ASSERT_TRUE(factory.ok());
  auto conn = (*factory)(0);  // c % N is the node that is down
  ASSERT_TRUE(conn.ok()) << conn.status().to_string();
  EXPECT_TRUE((*conn)->put("x", "v").ok());
  // Its leader does not answer: nothing sent there, the spread node takes it
  // (and would hold it until the group has a leader); located again next time.
  EXPECT_TRUE((*conn)->put("y", "w").ok());
  EXPECT_EQ(table->lookup("r:y"), LeaderTable::kUnknown);
  EXPECT_EQ(up.requests(), (Args{{"SET", "r:x", "v"}, {"SET", "r:y", "w"}}));
  // No endpoint answering fails the connection.
  auto none = make_resp_leader_factory({endpoints[0]}, o, table);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE((*none)(0).ok());
  ::close(closed);
}

TEST(LeaderRoute, LocatingFailsClearlyOnANodeWithoutLocate) {
  ScriptedPeer redis(
      {"-ERR unknown command 'LOCATE', with args beginning with: 'r:key:000000000000'\r\n"});
  RespOptions o;
  o.key_prefix = "r:";
  auto table = locate_keys({{"127.0.0.1", redis.port()}}, o, 1);
  ASSERT_FALSE(table.ok());
  EXPECT_NE(table.status().message().find("unknown command 'LOCATE'"), std::string::npos)
      << table.status().to_string();
  EXPECT_TRUE(make_resp_leader_factory({}, o, nullptr).status().is_invalid_argument());
}

// ---- against a real etcd ----

uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return 0;
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Runs a command and returns its standard output (empty on failure).
std::string run_capture(const std::string& command) {
  std::string out;
  FILE* f = ::popen(command.c_str(), "r");
  if (f == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  ::pclose(f);
  return out;
}

// One etcd member on 127.0.0.1, its data in a temp dir, stopped by pid.
class RealEtcd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ready_ = false;
    if (::access("/usr/bin/etcd", X_OK) != 0) return;
    char tmpl[] = "/tmp/loadgen-etcd-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    client_port_ = free_port();
    const uint16_t peer_port = free_port();
    client_url_ = "http://127.0.0.1:" + std::to_string(client_port_);
    const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer_port);
    std::vector<std::string> args = {"/usr/bin/etcd",
                                     "--name=loadgen-test",
                                     "--data-dir=" + dir_ + "/data",
                                     "--listen-client-urls=" + client_url_,
                                     "--advertise-client-urls=" + client_url_,
                                     "--listen-peer-urls=" + peer_url,
                                     "--initial-advertise-peer-urls=" + peer_url,
                                     "--initial-cluster=loadgen-test=" + peer_url,
                                     "--logger=zap",
                                     "--log-outputs=stderr"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = dir_ + "/etcd.log";
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const int rc = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) pid_ = -1;
  }

  static void TearDownTestSuite() {
    stop();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  static void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(50ms);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  void SetUp() override {
    if (::access("/usr/bin/etcd", X_OK) != 0) GTEST_SKIP() << "/usr/bin/etcd is not installed";
    ASSERT_GT(pid_, 0) << "could not start etcd";
    if (ready_) return;
    // Ready once a put goes through: up to 20 s for the single member to elect itself.
    Status last;
    for (int i = 0; i < 200 && !ready_; ++i) {
      auto conn = EtcdConnection::connect({"127.0.0.1", client_port_});
      if (conn.ok())
        last = (*conn)->put("ready", "1");
      else
        last = conn.status();
      ready_ = last.ok();
      if (!ready_) std::this_thread::sleep_for(100ms);
    }
    ASSERT_TRUE(ready_) << "etcd not ready: " << last.to_string() << "\n"
                        << run_capture("tail -n 20 " + dir_ + "/etcd.log");
  }

  // `etcdctl get KEY -w json`, parsed; null when etcdctl is missing or fails.
  static nlohmann::json etcdctl_get(const std::string& key, const std::string& flags = "") {
    const std::string out =
        run_capture("ETCDCTL_API=3 /usr/bin/etcdctl --endpoints=" + client_url_ + " get '" + key +
                    "' " + flags + " -w json 2>/dev/null");
    return nlohmann::json::parse(out, nullptr, false);
  }
  static int64_t revision() {
    const auto j = etcdctl_get("ready");
    if (j.is_discarded()) return -1;
    return j["header"]["revision"].get<int64_t>();
  }
  static bool have_etcdctl() { return ::access("/usr/bin/etcdctl", X_OK) == 0; }

  static inline std::string dir_;
  static inline std::string client_url_;
  static inline uint16_t client_port_ = 0;
  static inline pid_t pid_ = -1;
  static inline bool ready_ = false;
};

TEST_F(RealEtcd, PutIsStoredAndReadableThroughEtcdctl) {
  auto conn = EtcdConnection::connect({"127.0.0.1", client_port_});
  ASSERT_TRUE(conn.ok()) << conn.status().to_string();
  const std::string value = "value with \"quotes\", \\ and bytes \x01\x7f";
  ASSERT_TRUE((*conn)->put("loadgen/one", value).ok());
  ASSERT_TRUE((*conn)->put("loadgen/two", "2").ok());
  EXPECT_EQ((*conn)->connects(), 1u);  // keep-alive: both puts on one connection
  EXPECT_EQ((*conn)->requests(), 2u);
  if (!have_etcdctl()) GTEST_SKIP() << "no etcdctl to read back with";
  const auto j = etcdctl_get("loadgen/one");
  ASSERT_FALSE(j.is_discarded());
  ASSERT_EQ(j["kvs"].size(), 1u);
  // etcdctl's JSON output carries keys and values base64-encoded.
  EXPECT_EQ(j["kvs"][0]["value"].get<std::string>(), base64_encode(value));
}

TEST_F(RealEtcd, EtcdErrorsComeBackAsStatusesAndTheConnectionStaysUsable) {
  auto conn = EtcdConnection::connect({"127.0.0.1", client_port_});
  ASSERT_TRUE(conn.ok());
  // An empty key is refused by etcd (a chunked 400 reply with a trailer).
  Status s = (*conn)->put("", "v");
  EXPECT_TRUE(s.is_invalid_argument()) << s.to_string();
  EXPECT_NE(s.message().find("key is not provided"), std::string::npos) << s.to_string();
  EXPECT_TRUE((*conn)->put("after-error", "ok").ok());
  EXPECT_EQ((*conn)->connects(), 1u);
}

TEST_F(RealEtcd, RunLoadCommitsEveryRequestedPut) {
  auto factory = make_etcd_connection_factory({client_url_});
  ASSERT_TRUE(factory.ok());
  LoadOptions o;
  o.clients = 4;
  o.requests = 200;
  o.value_size = 100;
  o.key_space = 20;
  o.warmup_seconds = 0;
  const int64_t before = have_etcdctl() ? revision() : -1;
  auto r = run_load(o, *factory);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->ok, 200u) << r->first_error;
  EXPECT_EQ(r->errors, 0u);
  EXPECT_GT(r->p50_ms, 0);
  if (before < 0) GTEST_SKIP() << "no etcdctl to read the revision with";
  // Every put makes one new revision: etcd committed exactly what we counted.
  EXPECT_EQ(revision() - before, 200);
  const auto keys = etcdctl_get("key:", "--prefix --keys-only");
  ASSERT_FALSE(keys.is_discarded());
  EXPECT_LE(keys["kvs"].size(), 20u);
}

// Runs last in this suite (gtest keeps declaration order): it stops etcd.
TEST_F(RealEtcd, ZStoppedEtcdFailsPutsAndConnects) {
  auto conn = EtcdConnection::connect({"127.0.0.1", client_port_});
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)->put("before-stop", "1").ok());
  stop();
  Status s = (*conn)->put("after-stop", "1");
  EXPECT_FALSE(s.ok());
  // The failed put closed the socket; the next one tries to reconnect and is refused.
  s = (*conn)->put("after-stop", "1");
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.to_string();
  auto again = EtcdConnection::connect({"127.0.0.1", client_port_});
  EXPECT_FALSE(again.ok());
}

}  // namespace
}  // namespace statekv::loadgen
