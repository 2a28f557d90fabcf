// ForwardClient against a real Transport listener: pipelined calls, replies out
// of order, and each way a call can fail (not sent vs may have run).
#include "net/forward_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "net/asio.h"
#include "net/transport.h"

namespace statekv::net {
namespace {

using namespace std::chrono_literals;

// A node (id 2) that answers each ForwardFrame with its argv joined by ' ',
// at once or, when holding, only on release() (in reverse order).
class EchoNode {
 public:
  explicit EchoNode(std::string secret = "s3cret", NodeId id = NodeId(2), uint16_t port = 0) {
    TransportOptions options;
    options.self = id;
    options.secret = std::move(secret);
    options.port = port;
    transport_ = std::make_unique<Transport>(
        io_, options, [this](Transport::ConnectionId conn, NodeId, std::string payload) {
          auto msg = decode_wire(payload);
          auto* f = msg.ok() ? std::get_if<ForwardFrame>(&*msg) : nullptr;
          if (f == nullptr) return;
          if (f->flags & ForwardFrame::kBatch) {
            // A batch: one part per command, the last without `more`.
            ++received_;
            BatchReader commands(f->commands);
            std::vector<std::string_view> argv;
            std::vector<std::string> joined;
            while (commands.next_command(&argv)) {
              joined.emplace_back();
              for (std::string_view a : argv) {
                joined.back() += (joined.back().empty() ? "" : " ") + std::string(a);
              }
            }
            for (size_t i = 0; i < joined.size(); ++i) {
              ForwardReplyFrame part;
              part.call = f->call;
              part.batch = true;
              part.more = i + 1 < joined.size();
              append_reply(part.replies, joined[i]);
              part.reply_count = 1;
              transport_->send_on(conn, encode_wire(part));
            }
            return;
          }
          ForwardReplyFrame reply;
          reply.call = f->call;
          for (const std::string& a : f->argv) reply.reply += (reply.reply.empty() ? "" : " ") + a;
          ++received_;
          if (silent_) return;
          if (holding_) {
            held_.emplace_back(conn, encode_wire(reply));
            return;
          }
          transport_->send_on(conn, encode_wire(reply));
        });
    EXPECT_TRUE(transport_->listen().ok());
    port_ = transport_->port();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~EchoNode() { stop(); }

  void stop() {
    if (stopped_.exchange(true)) return;
    std::promise<void> closed;
    asio::post(io_, [this, &closed] {
      transport_->stop();  // closes every connection: the client sees it at once
      closed.set_value();
    });
    closed.get_future().wait();
    guard_.reset();
    io_.stop();
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void hold() { holding_ = true; }
  void unhold() { holding_ = false; }
  void silence() { silent_ = true; }
  void release_reversed() {
    asio::post(io_, [this] {
      for (auto it = held_.rbegin(); it != held_.rend(); ++it)
        transport_->send_on(it->first, it->second);
      held_.clear();
    });
  }
  int received() const { return received_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
  std::unique_ptr<Transport> transport_;
  std::thread thread_;
  uint16_t port_ = 0;
  std::atomic<bool> holding_{false};
  std::atomic<bool> silent_{false};
  std::atomic<int> received_{0};
  std::atomic<bool> stopped_{false};
  std::vector<std::pair<Transport::ConnectionId, std::string>> held_;
};

ForwardClientOptions client_options(std::string secret = "s3cret",
                                    std::chrono::milliseconds timeout = 2000ms) {
  ForwardClientOptions o;
  o.secret = std::move(secret);
  o.timeout = timeout;
  return o;
}

ForwardFrame frame(std::vector<std::string> argv) {
  ForwardFrame f;
  f.epoch = 1;
  f.argv = std::move(argv);
  return f;
}

// Runs one call and waits for its outcome.
Result<ForwardReplyFrame> call_and_wait(ForwardClient& client, NodeId node,
                                        const std::string& address, std::vector<std::string> argv) {
  std::promise<Result<ForwardReplyFrame>> p;
  auto f = p.get_future();
  client.call(node, address, frame(std::move(argv)),
              [&p](Result<ForwardReplyFrame> r) { p.set_value(std::move(r)); });
  return f.get();
}

TEST(ForwardFrameCodec, StreamRoundTripsAndCostsNothingWhenAbsent) {
  ForwardFrame plain = frame({"SET", "k", "v"});
  plain.call = 7;
  plain.flags = ForwardFrame::kImport;
  ForwardFrame streamed = plain;
  streamed.flags = ForwardFrame::kAsking;
  streamed.stream = 1234567;
  const std::string plain_bytes = encode_wire(plain);
  const std::string streamed_bytes = encode_wire(streamed);
  // Both encoders agree; a stream id adds its varint and nothing else.
  EXPECT_EQ(plain_bytes, encode_wire(WireMessage(plain)));
  EXPECT_EQ(streamed_bytes, encode_wire(WireMessage(streamed)));
  EXPECT_EQ(streamed_bytes.size(), plain_bytes.size() + 3);  // a 3-byte varint
  for (const auto& [bytes, want] : {std::pair{plain_bytes, plain}, {streamed_bytes, streamed}}) {
    auto decoded = decode_wire(bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
    const auto* f = std::get_if<ForwardFrame>(&*decoded);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->call, want.call);
    EXPECT_EQ(f->flags, want.flags);  // the codec's own bit does not show
    EXPECT_EQ(f->stream, want.stream);
    EXPECT_EQ(f->argv, want.argv);
  }
}

TEST(ForwardFrameCodec, TrackingOriginRoundTripsOnlyWithItsFlags) {
  ForwardFrame tracked = frame({"GET", "k"});
  tracked.flags = ForwardFrame::kTrack;
  tracked.stream = 9;
  tracked.origin_node = 3;
  tracked.origin_client = 70000;
  ForwardFrame relay = frame({"invalidate", "0", "k"});
  relay.flags = ForwardFrame::kTracking;
  relay.origin_node = 2;
  ForwardFrame plain = frame({"GET", "k"});
  plain.origin_node = 5;  // without the flags, not sent
  for (const ForwardFrame& want : {tracked, relay}) {
    auto decoded = decode_wire(encode_wire(want));
    ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
    const auto* f = std::get_if<ForwardFrame>(&*decoded);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->flags, want.flags);
    EXPECT_EQ(f->stream, want.stream);
    EXPECT_EQ(f->origin_node, want.origin_node);
    EXPECT_EQ(f->origin_client, want.origin_client);
    EXPECT_EQ(f->argv, want.argv);
  }
  auto decoded = decode_wire(encode_wire(plain));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(std::get<ForwardFrame>(*decoded).origin_node, 0u);
}

TEST(ForwardFrameCodec, BatchesAndTheirRepliesRoundTrip) {
  ForwardFrame batch;
  batch.call = 12;
  batch.epoch = 4;
  batch.flags = ForwardFrame::kBatch;
  batch.stream = 77;
  const std::vector<std::vector<std::string>> commands = {
      {"SET", "k", std::string(300, 'v')}, {"GET", "k"}, {"INCR", "n"}, {}, {""}};
  for (const auto& command : commands) {
    std::vector<std::string_view> argv(command.begin(), command.end());
    append_command(batch.commands, argv);
  }
  auto decoded = decode_wire(encode_wire(batch));
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  const auto& f = std::get<ForwardFrame>(*decoded);
  EXPECT_EQ(f.call, 12u);
  EXPECT_EQ(f.epoch, 4u);
  EXPECT_EQ(f.flags, ForwardFrame::kBatch);
  EXPECT_EQ(f.stream, 77u);
  EXPECT_EQ(f.commands, batch.commands);
  EXPECT_TRUE(f.argv.empty());
  BatchReader reader(f.commands);
  std::vector<std::string_view> argv;
  std::vector<std::vector<std::string>> read;
  while (reader.next_command(&argv)) read.emplace_back(argv.begin(), argv.end());
  EXPECT_TRUE(reader.status().ok()) << reader.status().to_string();
  EXPECT_EQ(read, commands);
  // Cut between commands, the rest reads; cut inside one, the reader says so.
  auto count = [&](size_t n) {
    BatchReader cut(std::string_view(f.commands).substr(0, n));
    int read = 0;
    while (cut.next_command(&argv)) ++read;
    return cut.status().ok() ? read : -1;
  };
  EXPECT_EQ(count(f.commands.size() - 2), 4);  // without the last, {""} (2 bytes)
  EXPECT_EQ(count(f.commands.size() - 1), -1);
  EXPECT_EQ(count(1), -1);
  EXPECT_EQ(count(10), -1);  // inside the 300-byte value

  ForwardReplyFrame part;
  part.call = 12;
  part.batch = true;
  part.more = true;
  for (std::string_view reply : {"+OK\r\n", "$3\r\nabc\r\n", ""}) {
    append_reply(part.replies, reply);
    ++part.reply_count;
  }
  ForwardReplyFrame last;
  last.call = 12;
  last.batch = true;
  last.status = Status::Aborted("STALEROUTE epoch 5");
  for (const ForwardReplyFrame& want : {part, last}) {
    const std::string bytes = encode_wire(want);
    EXPECT_EQ(bytes, encode_wire(WireMessage(want)));
    auto got = decode_wire(bytes);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    const auto& r = std::get<ForwardReplyFrame>(*got);
    EXPECT_TRUE(r.batch);
    EXPECT_EQ(r.call, want.call);
    EXPECT_EQ(r.more, want.more);
    EXPECT_EQ(r.status.code(), want.status.code());
    EXPECT_EQ(r.status.message(), want.status.message());
    EXPECT_EQ(r.replies, want.replies);
    EXPECT_EQ(r.reply_count, want.reply_count);
    // Cut anywhere, it does not decode.
    for (size_t n = 0; n < bytes.size(); ++n) {
      EXPECT_FALSE(decode_wire(std::string_view(bytes).substr(0, n)).ok()) << n;
    }
  }
  const std::string bytes = encode_wire(batch);
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(decode_wire(std::string_view(bytes).substr(0, n)).ok()) << n;
  }
}

// A batch's answer in parts: the callback runs once per part, in order, and
// the call completes with the last one (a later call still works).
TEST(ForwardClient, ABatchAnsweredInPartsCallsBackForEachPartInOrder) {
  EchoNode node;
  ForwardClient client(client_options());
  ForwardFrame batch;
  batch.epoch = 1;
  batch.flags = ForwardFrame::kBatch;
  batch.stream = 3;
  for (int i = 0; i < 100; ++i) {
    const std::string key = "k" + std::to_string(i);
    const std::string_view argv[] = {"GET", key};
    append_command(batch.commands, argv);
  }
  std::mutex mu;
  std::vector<std::string> got;
  std::promise<bool> finished;
  client.call(NodeId(2), node.address(), batch, [&](Result<ForwardReplyFrame> r) {
    std::lock_guard<std::mutex> lock(mu);
    if (!r.ok()) {
      got.push_back("error: " + r.status().to_string());
      finished.set_value(false);
      return;
    }
    BatchReader replies(r->replies);
    std::string_view reply;
    while (replies.next_reply(&reply)) got.emplace_back(reply);
    if (!r->more) finished.set_value(r->status.ok());
  });
  auto done = finished.get_future();
  ASSERT_EQ(done.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(done.get());
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i], "GET k" + std::to_string(i));
  auto after = call_and_wait(client, NodeId(2), node.address(), {"PING"});
  ASSERT_TRUE(after.ok()) << after.status().to_string();
  EXPECT_EQ(after->reply, "PING");
}

TEST(ForwardClient, ManyCallsFromManyThreadsEachGetTheirOwnReply) {
  EchoNode node;
  ForwardClient client(client_options());
  std::atomic<int> right{0}, wrong{0}, done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const std::string expect = "GET k" + std::to_string(t) + "-" + std::to_string(i);
        client.call(NodeId(2), node.address(),
                    frame({"GET", "k" + std::to_string(t) + "-" + std::to_string(i)}),
                    [&, expect](Result<ForwardReplyFrame> r) {
                      (r.ok() && r->reply == expect ? right : wrong)++;
                      done++;
                    });
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int i = 0; i < 500 && done < 2000; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(right.load(), 2000);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(client.stats().connects, 1u) << "one connection carries every call";
}

TEST(ForwardClient, RepliesOutOfOrderAreMatchedByCallId) {
  EchoNode node;
  node.hold();
  ForwardClient client(client_options());
  std::mutex mu;
  std::vector<std::string> order;
  std::atomic<int> done{0};
  for (int i = 0; i < 10; ++i) {
    client.call(NodeId(2), node.address(), frame({"ECHO", std::to_string(i)}),
                [&, i](Result<ForwardReplyFrame> r) {
                  std::lock_guard<std::mutex> lock(mu);
                  EXPECT_TRUE(r.ok());
                  if (r.ok()) {
                    EXPECT_EQ(r->reply, "ECHO " + std::to_string(i));
                  }
                  order.push_back(std::to_string(i));
                  done++;
                });
  }
  for (int i = 0; i < 200 && node.received() < 10; ++i) std::this_thread::sleep_for(5ms);
  node.release_reversed();
  for (int i = 0; i < 200 && done < 10; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_EQ(done.load(), 10);
  EXPECT_EQ(order.front(), "9");  // they did arrive reversed
}

TEST(ForwardClient, WrongSecretIsUnavailable) {
  EchoNode node("the-right-one");
  ForwardClient client(client_options("a-wrong-one"));
  auto r = call_and_wait(client, NodeId(2), node.address(), {"PING"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable) << r.status().to_string();
  EXPECT_EQ(node.received(), 0);
}

TEST(ForwardClient, ClosedPortOrBadAddressIsUnavailable) {
  uint16_t port = 0;
  {
    EchoNode gone;  // learn a port nobody listens on any more
    port = static_cast<uint16_t>(std::stoi(gone.address().substr(10)));
  }
  ForwardClient client(client_options());
  auto r = call_and_wait(client, NodeId(2), "127.0.0.1:" + std::to_string(port), {"PING"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable) << r.status().to_string();
  auto bad = call_and_wait(client, NodeId(2), "not-an-address", {"PING"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kUnavailable);
}

TEST(ForwardClient, AnotherNodeBehindTheAddressIsUnavailable) {
  EchoNode node("s3cret", NodeId(3));
  ForwardClient client(client_options());
  auto r = call_and_wait(client, NodeId(2), node.address(), {"PING"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable) << r.status().to_string();
  EXPECT_EQ(node.received(), 0);
}

TEST(ForwardClient, NoAnswerTimesOutAsMayHaveRun) {
  EchoNode node;
  node.silence();
  ForwardClient client(client_options("s3cret", 200ms));
  const auto start = std::chrono::steady_clock::now();
  auto r = call_and_wait(client, NodeId(2), node.address(), {"SET", "k", "v"});
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kTimeout);
  EXPECT_NE(r.status().message().find("may or may not have run"), std::string::npos);
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 1500ms);
  EXPECT_EQ(node.received(), 1);
}

TEST(ForwardClient, NodeStoppingMidCallIsTimeoutThenALaterCallReconnects) {
  auto node = std::make_unique<EchoNode>();
  const std::string address = node->address();
  node->silence();
  ForwardClient client(client_options());
  std::promise<Result<ForwardReplyFrame>> p;
  client.call(NodeId(2), address, frame({"SET", "k", "v"}),
              [&p](Result<ForwardReplyFrame> r) { p.set_value(std::move(r)); });
  for (int i = 0; i < 200 && node->received() < 1; ++i) std::this_thread::sleep_for(5ms);
  const auto stopped_at = std::chrono::steady_clock::now();
  node->stop();
  auto r = p.get_future().get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kTimeout) << r.status().to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - stopped_at, 1000ms)
      << "a broken connection fails its calls at once, not at their deadline";

  EchoNode again;
  auto ok = call_and_wait(client, NodeId(2), again.address(), {"PING"});
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->reply, "PING");
}

TEST(ForwardClient, DestroyingTheClientCompletesEveryPendingCallOnce) {
  EchoNode node;
  node.silence();
  std::vector<std::atomic<int>> hits(50);
  {
    ForwardClient client(client_options());
    for (int i = 0; i < 50; ++i) {
      client.call(NodeId(2), node.address(), frame({"GET", "k"}),
                  [&, i](Result<ForwardReplyFrame> r) {
                    EXPECT_FALSE(r.ok());
                    hits[i]++;
                  });
    }
    for (int i = 0; i < 200 && node.received() < 50; ++i) std::this_thread::sleep_for(5ms);
  }
  for (int i = 0; i < 50; ++i) EXPECT_EQ(hits[i].load(), 1) << "call " << i;
}

TEST(ForwardClient, DestroyingRightAfterManyCallsCompletesEachExactlyOnce) {
  EchoNode node;
  constexpr int kCalls = 3000;
  std::vector<std::atomic<int>> hits(kCalls);
  {
    ForwardClient client(client_options());
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&, t] {
        for (int i = t; i < kCalls; i += 3) {
          client.call(NodeId(2), node.address(), frame({"GET", "k"}),
                      [&, i](Result<ForwardReplyFrame>) { hits[i]++; });
        }
      });
    }
    for (auto& th : threads) th.join();
  }  // whatever stage each call reached: ok, not sent, or may have run
  for (int i = 0; i < kCalls; ++i) ASSERT_EQ(hits[i].load(), 1) << "call " << i;
}

TEST(ForwardClient, TheSameAddressIsRetriedAfterAFailure) {
  uint16_t port = 0;
  {
    EchoNode gone;
    port = static_cast<uint16_t>(std::stoi(gone.address().substr(10)));
  }
  const std::string address = "127.0.0.1:" + std::to_string(port);
  ForwardClient client(client_options());
  auto r = call_and_wait(client, NodeId(2), address, {"PING"});
  ASSERT_FALSE(r.ok());
  EchoNode node("s3cret", NodeId(2), port);  // now a node listens there
  auto ok = call_and_wait(client, NodeId(2), address, {"PING"});
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(client.stats().connects, 2u);
}

TEST(ForwardClient, AListenerThatNeverSpeaksIsUnavailableAtTheDeadline) {
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io,
                                 asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const std::string address = "127.0.0.1:" + std::to_string(silent.local_endpoint().port());
  ForwardClient client(client_options("s3cret", 200ms));
  const auto start = std::chrono::steady_clock::now();
  auto r = call_and_wait(client, NodeId(2), address, {"SET", "k", "v"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kUnavailable) << r.status().to_string();
  EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
}

TEST(ForwardClient, AReplyAfterItsTimeoutIsDroppedAndTheConnectionStays) {
  EchoNode node;
  node.hold();
  ForwardClient client(client_options("s3cret", 200ms));
  auto late = call_and_wait(client, NodeId(2), node.address(), {"first"});
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), Status::Code::kTimeout);
  node.release_reversed();  // the late reply arrives now
  std::this_thread::sleep_for(20ms);
  node.unhold();
  auto ok = call_and_wait(client, NodeId(2), node.address(), {"second"});
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(ok->reply, "second");
  EXPECT_EQ(client.stats().connects, 1u);
  EXPECT_EQ(client.stats().timeouts, 1u);
}

// Blocking commands (coord/coordinator.h): a call with a timeout of its own
// outlives the options' timeout, does not hold up the timeouts of the calls
// behind it, times out at its own deadline, and without one still fails at
// once when the connection breaks.
TEST(ForwardClient, CallsWithTheirOwnTimeout) {
  auto node = std::make_unique<EchoNode>();
  node->silence();
  ForwardClient client(client_options("s3cret", 150ms));
  std::promise<Result<ForwardReplyFrame>> own, never, usual;
  const auto start = std::chrono::steady_clock::now();
  client.call(
      NodeId(2), node->address(), frame({"BLPOP", "q", "0.6"}),
      [&own](Result<ForwardReplyFrame> r) { own.set_value(std::move(r)); }, 600ms);
  client.call(
      NodeId(2), node->address(), frame({"BLPOP", "q", "0"}),
      [&never](Result<ForwardReplyFrame> r) { never.set_value(std::move(r)); },
      ForwardClient::kNoTimeout);
  client.call(NodeId(2), node->address(), frame({"GET", "k"}),
              [&usual](Result<ForwardReplyFrame> r) { usual.set_value(std::move(r)); });
  // The usual call behind them times out at the options' timeout.
  auto u = usual.get_future().get();
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), Status::Code::kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 550ms);
  auto o = own.get_future().get();
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().code(), Status::Code::kTimeout);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 600ms);
  auto pending = never.get_future();
  EXPECT_EQ(pending.wait_for(300ms), std::future_status::timeout) << "it has no deadline";
  node->stop();
  ASSERT_EQ(pending.wait_for(1s), std::future_status::ready)
      << "a broken connection fails it at once";
  auto n = pending.get();
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), Status::Code::kTimeout) << n.status().to_string();
}

TEST(ForwardClient, ACallWithItsOwnTimeoutGetsItsReply) {
  EchoNode node;
  node.hold();
  ForwardClient client(client_options("s3cret", 100ms));
  std::promise<Result<ForwardReplyFrame>> p;
  client.call(
      NodeId(2), node.address(), frame({"BLPOP", "q", "0"}),
      [&p](Result<ForwardReplyFrame> r) { p.set_value(std::move(r)); }, ForwardClient::kNoTimeout);
  std::this_thread::sleep_for(300ms);  // past the options' timeout
  node.release_reversed();
  auto r = p.get_future().get();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->reply, "BLPOP q 0");
}

}  // namespace
}  // namespace statekv::net
