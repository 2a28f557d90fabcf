// The network layer over real loopback sockets, with a fake Service and Engine
// (network_test_support.h): pipelining, partial frames, durability holds,
// protocol errors, QUIT, and every limit.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>

#include "server/network_test_support.h"

namespace statekv::server {
namespace {

using namespace std::chrono_literals;
using testing::Client;
using testing::command;
using testing::TestServer;
using Type = resp::Value::Type;

TEST(NetworkTest, RepliesToPipelinedRequestsInOrder) {
  TestServer server;
  Client c(server.port());
  ASSERT_TRUE(c.connected());
  std::string batch;
  for (int i = 0; i < 500; ++i) batch += command({"ECHO", "v" + std::to_string(i)});
  batch += "PING\r\n";  // an inline command in the same pipeline
  ASSERT_TRUE(c.send(batch));
  for (int i = 0; i < 500; ++i) {
    resp::Value v = c.read_value();
    ASSERT_EQ(v.type, Type::kBulk) << v.str;
    EXPECT_EQ(v.str, "v" + std::to_string(i));
  }
  resp::Value pong = c.read_value();
  EXPECT_EQ(pong.type, Type::kSimple);
  EXPECT_EQ(pong.str, "PONG");
  EXPECT_EQ(server.stats().sum(&ServerStats::Slot::commands), 501u);
}

TEST(NetworkTest, ParsesRequestsSplitAcrossReads) {
  TestServer server;
  Client c(server.port());
  // One byte at a time, with pauses so that each byte is its own read.
  std::string req = command({"ECHO", "hello"}) + command({"PING"});
  for (char ch : req) {
    ASSERT_TRUE(c.send(std::string_view(&ch, 1)));
    std::this_thread::sleep_for(1ms);
  }
  resp::Value v = c.read_value();
  EXPECT_EQ(v.type, Type::kBulk);
  EXPECT_EQ(v.str, "hello");
  EXPECT_EQ(c.read_value().str, "PONG");

  // A 3 MB bulk in uneven chunks exercises the "needed" path (no re-parse per read).
  std::string big(3 << 20, 'b');
  big[12345] = 'Q';
  std::string frame = command({"ECHO", big});
  size_t pos = 0, step = 7;
  while (pos < frame.size()) {
    size_t n = std::min(step, frame.size() - pos);
    ASSERT_TRUE(c.send(std::string_view(frame).substr(pos, n)));
    pos += n;
    step = step * 3 + 1;
  }
  resp::Value echoed = c.read_value();
  ASSERT_EQ(echoed.type, Type::kBulk);
  EXPECT_EQ(echoed.str, big);
}

TEST(NetworkTest, HoldsRepliesUntilDurableAndKeepsTheirOrder) {
  TestServer server;
  Client c(server.port());
  // Sequences 1 and 2; PING (no sequence) sits between them and must wait too.
  ASSERT_TRUE(c.send(command({"WRITE", "a"}) + command({"PING"}) + command({"WRITE", "b"}) +
                     command({"PING"})));
  resp::Value none = c.read_value(200ms);
  EXPECT_EQ(none.str, "timeout") << "a reply was sent before it was durable";

  server.engine().make_durable(1);
  EXPECT_EQ(c.read_value().str, "a");
  EXPECT_EQ(c.read_value().str, "PONG");
  EXPECT_EQ(c.read_value(200ms).str, "timeout") << "WRITE b was not durable yet";

  server.engine().make_durable(2);
  EXPECT_EQ(c.read_value().str, "b");
  EXPECT_EQ(c.read_value().str, "PONG");

  // Already durable: sent at once, no callback registered.
  server.engine().make_durable(3);
  ASSERT_TRUE(c.send(command({"WRITE", "c"})));
  EXPECT_EQ(c.read_value().str, "c");
}

TEST(NetworkTest, DeferredReplyKeepsItsPlaceAndHoldsOnlyItsOwnClient) {
  TestServer server(ServerConfig{}, 1);  // one I/O thread: both clients share it
  Client waiting(server.port());
  Client other(server.port());
  ASSERT_TRUE(waiting.connected() && other.connected());
  // LATER answers from another thread; the replies behind it must not overtake it.
  ASSERT_TRUE(waiting.send(command({"ECHO", "before"}) + command({"LATER", "routed"}) +
                           command({"ECHO", "after"}) + command({"PING"})));
  EXPECT_EQ(waiting.read_value().str, "before");
  EXPECT_EQ(waiting.read_value(200ms).str, "timeout") << "a reply overtook the deferred one";
  // Meanwhile the thread serves its other client.
  ASSERT_TRUE(other.send(command({"ECHO", "served"})));
  EXPECT_EQ(other.read_value().str, "served");
  // The commands behind LATER ran (a pipelining client has many in flight);
  // only their replies wait.
  EXPECT_EQ(server.stats().sum(&ServerStats::Slot::commands), 5u);

  EXPECT_EQ(server.service().release_later(), 1u);
  EXPECT_EQ(waiting.read_value().str, "routed");
  EXPECT_EQ(waiting.read_value().str, "after");
  EXPECT_EQ(waiting.read_value().str, "PONG");
  // And the connection reads again.
  ASSERT_TRUE(waiting.send(command({"LATER", "again"})));
  for (int i = 0; i < 200 && server.service().later_waiting() == 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(server.service().release_later(), 1u);
  EXPECT_EQ(waiting.read_value().str, "again");
}

TEST(NetworkTest, ManyDeferredRepliesComeInRequestOrderWhateverOrderTheyArriveIn) {
  TestServer server(ServerConfig{}, 1);
  Client c(server.port());
  ASSERT_TRUE(c.connected());
  std::string batch;
  for (int i = 0; i < 20; ++i) {
    batch += command({"LATER", "l" + std::to_string(i)});
    if (i % 3 == 0) batch += command({"ECHO", "e" + std::to_string(i)});
  }
  ASSERT_TRUE(c.send(batch));
  for (int i = 0; i < 400 && server.service().later_waiting() < 20; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  // All twenty are in flight at once.
  ASSERT_EQ(server.service().later_waiting(), 20u);
  EXPECT_EQ(c.read_value(100ms).str, "timeout");
  // The newest first: each waits in its place until those before it came.
  EXPECT_EQ(server.service().release_later_backwards(), 20u);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(c.read_value().str, "l" + std::to_string(i));
    if (i % 3 == 0) {
      ASSERT_EQ(c.read_value().str, "e" + std::to_string(i));
    }
  }
  ASSERT_TRUE(c.send(command({"PING"})));
  EXPECT_EQ(c.read_value().str, "PONG");
}

TEST(NetworkTest, CommandThatWaitsForRepliesRunsAfterThemOnceAndInOrder) {
  TestServer server(ServerConfig{}, 1);
  Client c(server.port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(command({"LATER", "a"}) + command({"LATER", "b"}) + command({"AFTER", "c"}) +
                     command({"LATER", "d"}) + command({"ECHO", "e"})));
  for (int i = 0; i < 200 && server.service().later_waiting() < 2; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  std::this_thread::sleep_for(50ms);
  // AFTER asked to wait: nothing behind it ran.
  EXPECT_EQ(server.service().later_waiting(), 2u);
  EXPECT_EQ(server.stats().sum(&ServerStats::Slot::commands), 3u);
  EXPECT_EQ(c.read_value(100ms).str, "timeout");

  EXPECT_EQ(server.service().release_later_backwards(), 2u);
  EXPECT_EQ(c.read_value().str, "a");
  EXPECT_EQ(c.read_value().str, "b");
  EXPECT_EQ(c.read_value().str, "c");
  // Then the rest ran: AFTER counted once.
  for (int i = 0; i < 200 && server.service().later_waiting() == 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(server.stats().sum(&ServerStats::Slot::commands), 5u);
  EXPECT_EQ(c.read_value(100ms).str, "timeout");
  EXPECT_EQ(server.service().release_later(), 1u);
  EXPECT_EQ(c.read_value().str, "d");
  EXPECT_EQ(c.read_value().str, "e");
}

TEST(NetworkTest, QuitBehindDeferredRepliesClosesAfterThem) {
  TestServer server(ServerConfig{}, 1);
  Client c(server.port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(command({"LATER", "a"}) + command({"QUIT"}) + command({"ECHO", "never"})));
  for (int i = 0; i < 200 && server.service().later_waiting() == 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(c.read_value(100ms).str, "timeout");
  EXPECT_EQ(server.service().release_later(), 1u);
  EXPECT_EQ(c.read_value().str, "a");
  EXPECT_EQ(c.read_value().str, "OK");
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(server.wait_clients(0));
}

TEST(NetworkTest, DeferredReplyAfterClientLeftIsHarmless) {
  TestServer server;
  {
    Client c(server.port());
    ASSERT_TRUE(c.send(command({"LATER", "x"})));
    for (int i = 0; i < 200 && server.service().later_waiting() == 0; ++i) {
      std::this_thread::sleep_for(5ms);
    }
  }
  ASSERT_TRUE(server.wait_clients(0));
  EXPECT_EQ(server.service().release_later(), 1u);  // finds no connection: nothing happens
  Client c(server.port());
  ASSERT_TRUE(c.send(command({"PING"})));
  EXPECT_EQ(c.read_value().str, "PONG");
}

TEST(NetworkTest, UnderFsyncAlwaysReadsWaitForEveryEarlierWrite) {
  ServerConfig config;
  config.fsync = storage::FsyncPolicy::kAlways;
  TestServer server(config);
  Client writer(server.port()), reader(server.port());
  ASSERT_TRUE(writer.send(command({"WRITE", "a"})));  // seq 1, not durable
  EXPECT_EQ(writer.read_value(100ms).str, "timeout");
  // The reader wrote nothing, but its reply could reflect seq 1: it waits too.
  ASSERT_TRUE(reader.send(command({"PING"})));
  EXPECT_EQ(reader.read_value(200ms).str, "timeout") << "a reply revealed non-durable state";
  server.engine().make_durable(1);
  EXPECT_EQ(writer.read_value().str, "a");
  EXPECT_EQ(reader.read_value().str, "PONG");
}

TEST(NetworkTest, UnderFsyncBatchOnlyWritesWait) {
  TestServer server;  // default: batch
  Client writer(server.port()), reader(server.port());
  ASSERT_TRUE(writer.send(command({"WRITE", "a"})));
  EXPECT_EQ(writer.read_value(100ms).str, "timeout");
  ASSERT_TRUE(reader.send(command({"PING"})));
  EXPECT_EQ(reader.read_value().str, "PONG");
  server.engine().make_durable(1);
  EXPECT_EQ(writer.read_value().str, "a");
}

TEST(NetworkTest, LaterReplyWithSmallerSequenceWaitsForEarlierOne) {
  TestServer server;
  Client first(server.port()), second(server.port());
  ASSERT_TRUE(first.send(command({"WRITE", "x"})));  // seq 1
  EXPECT_EQ(first.read_value(100ms).str, "timeout");
  ASSERT_TRUE(second.send(command({"WRITE", "y"})));  // seq 2
  EXPECT_EQ(second.read_value(100ms).str, "timeout");
  ASSERT_TRUE(first.send(command({"WRITE", "z"})));  // seq 3
  server.engine().make_durable(2);
  EXPECT_EQ(first.read_value().str, "x");
  EXPECT_EQ(second.read_value().str, "y");
  EXPECT_EQ(first.read_value(100ms).str, "timeout");
  server.engine().make_durable(3);
  EXPECT_EQ(first.read_value().str, "z");
}

TEST(NetworkTest, DurabilityCallbackAfterClientLeftIsHarmless) {
  TestServer server;
  {
    Client gone(server.port());
    ASSERT_TRUE(gone.send(command({"WRITE", "k"})));
    ASSERT_TRUE(server.wait_clients(1));
    // Wait until the server registered its durability wait, then disconnect.
    for (int i = 0; i < 500 && server.engine().waiting() == 0; ++i)
      std::this_thread::sleep_for(2ms);
    ASSERT_EQ(server.engine().waiting(), 1u);
  }
  ASSERT_TRUE(server.wait_clients(0));
  server.engine().make_durable(1);
  Client c(server.port());
  ASSERT_TRUE(c.send(command({"PING"})));
  EXPECT_EQ(c.read_value().str, "PONG");
}

TEST(NetworkTest, ProtocolErrorClosesOnlyThatConnection) {
  TestServer server;
  Client bad(server.port()), good(server.port());
  ASSERT_TRUE(good.send(command({"PING"})));
  EXPECT_EQ(good.read_value().str, "PONG");

  ASSERT_TRUE(bad.send(command({"PING"}) + "*1\r\n$x\r\n"));
  EXPECT_EQ(bad.read_value().str, "PONG");  // replies before the bad frame still arrive
  resp::Value err = bad.read_value();
  EXPECT_EQ(err.type, Type::kError);
  EXPECT_EQ(err.str, "ERR Protocol error: invalid bulk length");
  EXPECT_TRUE(bad.wait_closed());

  ASSERT_TRUE(good.send(command({"ECHO", "still here"})));
  EXPECT_EQ(good.read_value().str, "still here");
  EXPECT_EQ(server.stats().sum(&ServerStats::Slot::protocol_errors), 1u);
}

TEST(NetworkTest, ProtocolErrorBehindHeldReplyKeepsOrder) {
  TestServer server;
  Client c(server.port());
  ASSERT_TRUE(c.send(command({"WRITE", "w"}) + "*1\r\n$x\r\n"));
  EXPECT_EQ(c.read_value(100ms).str, "timeout");
  server.engine().make_durable(1);
  EXPECT_EQ(c.read_value().str, "w");
  EXPECT_EQ(c.read_value().str, "ERR Protocol error: invalid bulk length");
  EXPECT_TRUE(c.wait_closed());
}

TEST(NetworkTest, QuitRepliesOkThenCloses) {
  TestServer server;
  Client c(server.port());
  ASSERT_TRUE(c.send(command({"QUIT"}) + command({"PING"})));
  resp::Value ok = c.read_value();
  EXPECT_EQ(ok.type, Type::kSimple);
  EXPECT_EQ(ok.str, "OK");
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(c.buffered().empty()) << "PING after QUIT must not run";
}

TEST(NetworkTest, RejectsClientsOverMaxclients) {
  ServerConfig config;
  config.maxclients = 2;
  TestServer server(config);
  Client a(server.port()), b(server.port());
  ASSERT_TRUE(a.send(command({"PING"})) && b.send(command({"PING"})));
  EXPECT_EQ(a.read_value().str, "PONG");
  EXPECT_EQ(b.read_value().str, "PONG");

  Client c(server.port());
  resp::Value err = c.read_value();
  EXPECT_EQ(err.type, Type::kError);
  EXPECT_EQ(err.str, "ERR max number of clients reached");
  EXPECT_TRUE(c.wait_closed());
  EXPECT_EQ(server.stats().sum(&ServerStats::Slot::rejected_connections), 1u);
  EXPECT_EQ(server.stats().sum(&ServerStats::Slot::connections_received), 2u);

  // A slot frees up when a client leaves.
  a.close();
  ASSERT_TRUE(server.wait_clients(1));
  for (int i = 0; i < 500 && server.network().live_connections() > 1; ++i) {
    std::this_thread::sleep_for(2ms);
  }
  Client d(server.port());
  ASSERT_TRUE(d.send(command({"PING"})));
  EXPECT_EQ(d.read_value().str, "PONG");
}

TEST(NetworkTest, ClientThatStopsReadingIsPausedWithBoundedMemory) {
  TestServer server;  // pause at 4 MB, disconnect at 256 MB (defaults)
  Client slow(server.port()), other(server.port());
  constexpr int kRequests = 400;
  constexpr size_t kReply = 100000;
  // The sender blocks once the server stops reading; the socket buffers fill.
  std::thread sender([&] {
    std::string req = command({"BIG", std::to_string(kReply)});
    std::string all;
    for (int i = 0; i < kRequests; ++i) all += req;
    slow.send(all);
  });
  std::this_thread::sleep_for(300ms);

  uint64_t max_output = 0;
  server.registry().for_each([&](const Session& s) {
    max_output = std::max<uint64_t>(max_output, s.output_buffer_bytes.load());
  });
  EXPECT_GT(max_output, 0u) << "the slow client should have pending output";
  EXPECT_LE(max_output, (4u << 20) + kReply + 1024) << "pending output must stay bounded";

  ASSERT_TRUE(other.send(command({"PING"})));  // everyone else is still served
  EXPECT_EQ(other.read_value().str, "PONG");

  // Draining resumes the slow client, and every reply arrives intact.
  const std::string one = "$" + std::to_string(kReply) + "\r\n" + std::string(kReply, 'x') + "\r\n";
  for (int i = 0; i < kRequests; ++i) {
    std::string got = slow.read_bytes(one.size(), 10s);
    ASSERT_EQ(got, one) << "reply " << i;
  }
  sender.join();
}

TEST(NetworkTest, DisconnectsClientOverOutputBufferLimit) {
  ServerConfig config;
  config.client_output_buffer_limit = 64 * 1024;
  TestServer server(config);
  Client c(server.port());
  ASSERT_TRUE(c.send(command({"BIG", "20000"})));
  EXPECT_EQ(c.read_value().str.size(), 20000u);  // under the limit: fine
  ASSERT_TRUE(c.send(command({"BIG", "200000"})));
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(c.buffered().empty());
}

TEST(NetworkTest, ClosesClientOverQueryBufferLimit) {
  ServerConfig config;
  config.client_query_buffer_limit = 64 * 1024;
  TestServer server(config);
  Client c(server.port());
  // A bulk that is announced but never completes keeps growing the query buffer.
  std::string partial = "*2\r\n$4\r\nECHO\r\n$1000000\r\n" + std::string(200 * 1024, 'q');
  c.send(partial);
  EXPECT_TRUE(c.wait_closed());
  Client d(server.port());
  ASSERT_TRUE(d.send(command({"PING"})));
  EXPECT_EQ(d.read_value().str, "PONG");
}

TEST(NetworkTest, ClosesIdleClientsAfterTimeout) {
  ServerConfig config;
  config.timeout_seconds = 1;
  TestServer server(config);
  Client idle(server.port()), busy(server.port());
  auto start = std::chrono::steady_clock::now();
  // busy keeps talking; idle says nothing.
  while (std::chrono::steady_clock::now() - start < 1500ms) {
    ASSERT_TRUE(busy.send(command({"PING"})));
    ASSERT_EQ(busy.read_value().str, "PONG");
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(idle.wait_closed(3s));
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, 1s);
  ASSERT_TRUE(busy.send(command({"PING"})));
  EXPECT_EQ(busy.read_value().str, "PONG");
}

TEST(NetworkTest, ConfigSetAppliesToRunningConnections) {
  TestServer server;
  Client c(server.port());
  ASSERT_TRUE(c.send(command({"PING"})));
  EXPECT_EQ(c.read_value().str, "PONG");
  ASSERT_TRUE(server.config().set("client-output-buffer-limit", "32kb").ok());
  std::this_thread::sleep_for(300ms);  // threads refresh their limits every 100 ms
  ASSERT_TRUE(c.send(command({"BIG", "100000"})));
  EXPECT_TRUE(c.wait_closed());
}

TEST(NetworkTest, RegistryListsSessionsWithAddresses) {
  TestServer server;
  Client a(server.port()), b(server.port());
  ASSERT_TRUE(server.wait_clients(2));
  std::vector<uint64_t> ids;
  server.registry().for_each([&](const Session& s) {
    ids.push_back(s.id);
    EXPECT_TRUE(s.addr.starts_with("127.0.0.1:")) << s.addr;
    EXPECT_EQ(s.laddr, "127.0.0.1:" + std::to_string(server.port()));
    EXPECT_TRUE(s.authenticated) << "no requirepass: authenticated from the start";
  });
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_LT(ids[0], ids[1]);
  ASSERT_TRUE(a.send(command({"ECHO", "x"})));
  EXPECT_EQ(a.read_value().str, "x");
  server.registry().for_each([&](const Session& s) {
    if (s.id != ids[0] && s.id != ids[1]) return;
    std::lock_guard lock(s.mu);
    if (s.commands.load() == 1) {
      EXPECT_EQ(s.last_command, "echo");
    }
  });
  a.close();
  b.close();
  EXPECT_TRUE(server.wait_clients(0));
  EXPECT_EQ(server.network().live_connections(), 0u);
}

TEST(NetworkTest, RequirepassMeansUnauthenticatedSessions) {
  ServerConfig config;
  config.requirepass = "secret";
  TestServer server(config);
  Client a(server.port());
  ASSERT_TRUE(server.wait_clients(1));
  server.registry().for_each([](const Session& s) { EXPECT_FALSE(s.authenticated); });
}

TEST(NetworkTest, BindFailsClearlyWhenPortIsTaken) {
  TestServer first;
  ServerConfig config;
  config.port = first.port();
  ConfigStore store(config);
  testing::FakeEngine engine;
  testing::FakeService service(engine);
  ServerStats stats;
  ClientRegistryImpl registry;
  ServerContext ctx;
  ctx.config = &store;
  ctx.engine = &engine;
  ctx.stats = &stats;
  ctx.clients = &registry;
  NetworkServer second(ctx, service, registry);
  Status s = second.start();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.is_io_error());
  EXPECT_NE(s.message().find("Address already in use"), std::string::npos) << s.message();
}

// Resident memory of this process, from /proc/self/statm.
size_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

TEST(NetworkTest, ThousandsOfIdleConnectionsCostLittleMemory) {
  constexpr int kClients = 2000;
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < 2 * kClients + 100) GTEST_SKIP() << "needs " << 2 * kClients + 100 << " fds";
  ServerConfig config;
  config.maxclients = kClients + 10;
  TestServer server(config);
  // Warm up: a few clients with real traffic, so thread buffers already exist.
  {
    Client warm(server.port());
    ASSERT_TRUE(warm.send(command({"ECHO", std::string(100000, 'w')})));
    EXPECT_EQ(warm.read_value().str.size(), 100000u);
  }
  ASSERT_TRUE(server.wait_clients(0));
  size_t before = rss_bytes();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<Client>(server.port()));
    ASSERT_TRUE(clients.back()->connected());
    // Each one did something once, then goes idle.
    if (i % 10 == 0) {
      ASSERT_TRUE(clients.back()->send(command({"PING"})));
    }
  }
  ASSERT_TRUE(server.wait_clients(kClients, 20s));
  for (int i = 0; i < kClients; i += 10) ASSERT_EQ(clients[i]->read_value().str, "PONG");
  size_t after = rss_bytes();
  // Client and server share this process: the figure includes both ends' user
  // space (the Client objects are small). Redis needs ~20 KB per client.
  double per_conn = (after > before ? after - before : 0) / static_cast<double>(kClients);
  std::printf("[ measure  ] %d idle connections: %.0f bytes of RSS each (both ends)\n", kClients,
              per_conn);
  EXPECT_LT(per_conn, 4096.0);
  // Still serving.
  ASSERT_TRUE(clients[1]->send(command({"PING"})));
  EXPECT_EQ(clients[1]->read_value().str, "PONG");
}

TEST(NetworkTest, StopClosesEveryConnection) {
  auto server = std::make_unique<TestServer>();
  Client a(server->port()), b(server->port());
  ASSERT_TRUE(a.send(command({"WRITE", "held"})));  // a reply stays held at shutdown
  ASSERT_TRUE(server->wait_clients(2));
  server->network().stop();
  EXPECT_TRUE(a.wait_closed());
  EXPECT_TRUE(b.wait_closed());
  server->engine().make_durable(1);  // the late callback finds nothing to do
  server.reset();
}

// --busy-poll-us (NetworkServer::set_busy_poll): the thread keeps polling after
// a pass, so what other threads post (a deferred reply, a durability callback)
// and what clients send is still served, in order, and stop() still ends it.
TEST(NetworkTest, ABusyPollingThreadServesDeferredAndHeldRepliesAndStops) {
  auto server = std::make_unique<TestServer>(ServerConfig{}, 1, 200us);
  Client c(server->port());
  ASSERT_TRUE(c.connected());
  std::string batch;
  for (int i = 0; i < 100; ++i) batch += command({"ECHO", "v" + std::to_string(i)});
  ASSERT_TRUE(c.send(batch + command({"LATER", "routed"}) + command({"WRITE", "a"}) +
                     command({"PING"})));
  for (int i = 0; i < 100; ++i) ASSERT_EQ(c.read_value().str, "v" + std::to_string(i));
  for (int i = 0; i < 200 && server->service().later_waiting() == 0; ++i) {
    std::this_thread::sleep_for(5ms);
  }
  std::this_thread::sleep_for(5ms);  // the thread is asleep again, past its poll window
  EXPECT_EQ(server->service().release_later(), 1u);
  EXPECT_EQ(c.read_value().str, "routed");
  EXPECT_EQ(c.read_value(100ms).str, "timeout") << "a write's reply left before it was durable";
  server->engine().make_durable(1);
  EXPECT_EQ(c.read_value().str, "a");
  EXPECT_EQ(c.read_value().str, "PONG");
  server->network().stop();
  EXPECT_TRUE(c.wait_closed());
  server.reset();
}

// The setting is honoured: after each request the thread spends CPU polling
// for its window instead of sleeping at once.
TEST(NetworkTest, ABusyPollingThreadSpendsItsWindowPollingAfterEachPass) {
  auto cpu_ms = [] {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000.0 +
           (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1000.0;
  };
  auto cpu_of_pings = [&](std::chrono::microseconds busy_poll) {
    TestServer server(ServerConfig{}, 1, busy_poll);
    Client c(server.port());
    EXPECT_TRUE(c.connected());
    const double before = cpu_ms();
    for (int i = 0; i < 40; ++i) {
      EXPECT_TRUE(c.send(command({"PING"})));
      EXPECT_EQ(c.read_value().str, "PONG");
      std::this_thread::sleep_for(3ms);  // longer than the window: it ends idle
    }
    return cpu_ms() - before;
  };
  const double sleeping = cpu_of_pings(0us);
  const double polling = cpu_of_pings(2000us);  // 40 windows of 2 ms: about 80 ms
  EXPECT_GT(polling, 25.0) << "sleeping at once: " << sleeping << " ms";
  EXPECT_GT(polling, sleeping + 20.0);
}

}  // namespace
}  // namespace statekv::server
