#include "coord/tracking_relay.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>

#include "core/thread_name.h"
#include "server/number.h"

namespace statekv::coord {

namespace {

// How often a node that tracks repeats its hello (the repair bound above).
constexpr std::chrono::milliseconds kHelloInterval{1000};

std::string ok_reply(std::string_view text) {
  return "+" + std::string(text) + "\r\n";
}

}  // namespace

TrackingRelay::TrackingRelay(Hooks hooks) : hooks_(std::move(hooks)) {
  thread_ = std::thread([this] {
    name_this_thread("tracking-relay");
    hello_loop();
  });
}

TrackingRelay::~TrackingRelay() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void TrackingRelay::send_invalidation(uint64_t node, uint64_t writer, std::vector<std::string> keys,
                                      bool flush) {
  auto table = hooks_.table();
  const meta::Member* m = table ? table->member(NodeId(node)) : nullptr;
  if (m == nullptr || m->peer_address.empty()) return;  // not a member any more
  net::ForwardFrame frame;
  frame.epoch = table->epoch().value();
  frame.flags = net::ForwardFrame::kTracking;
  frame.origin_node = hooks_.self.value();
  if (flush) {
    frame.argv = {"flush"};
  } else {
    frame.argv.reserve(keys.size() + 2);
    frame.argv.push_back("invalidate");
    frame.argv.push_back(std::to_string(writer));
    for (std::string& k : keys) frame.argv.push_back(std::move(k));
  }
  hooks_.forward->call(NodeId(node), m->peer_address, std::move(frame),
                       [this, node](Result<net::ForwardReplyFrame> r) {
                         const Status& s = r.ok() ? r->status : r.status();
                         if (s.ok()) return;
                         spdlog::info("tracking invalidation not delivered to node {}: {}", node,
                                      s.to_string());
                         std::lock_guard lock(mu_);
                         lost_.insert(node);
                       });
}

void TrackingRelay::announce(std::function<void()> done) {
  auto table = hooks_.table();
  const server::Service::TrackingNeeds needs = hooks_.service->tracking_needs();
  {
    std::lock_guard lock(mu_);
    announced_on_ = needs.any;
  }
  std::vector<const meta::Member*> peers;
  if (table) {
    for (const meta::Member& m : table->map().members) {
      if (m.id == hooks_.self || m.state == meta::MemberState::kRemoved || m.peer_address.empty()) {
        continue;
      }
      peers.push_back(&m);
    }
  }
  if (peers.empty()) {
    done();
    return;
  }
  net::ForwardFrame frame;
  frame.epoch = table->epoch().value();
  frame.flags = net::ForwardFrame::kTracking;
  frame.origin_node = hooks_.self.value();
  frame.argv = {"hello", needs.any ? "1" : "0", needs.bcast ? "1" : "0"};
  struct Gather {
    std::atomic<size_t> left;
    std::function<void()> done;
  };
  auto g = std::make_shared<Gather>();
  g->left = peers.size();
  g->done = std::move(done);
  for (const meta::Member* m : peers) {
    const uint64_t node = m->id.value();
    hooks_.forward->call(
        m->id, m->peer_address, frame, [this, g, node](Result<net::ForwardReplyFrame> r) {
          if (r.ok() && r->status.ok() && r->reply.size() > 3 && r->reply[0] == '+') {
            const std::string body = r->reply.substr(1, r->reply.size() - 3);
            const size_t space = body.find(' ');
            const std::string run = body.substr(0, space);
            const bool lost = space != std::string::npos;
            bool flush = lost;
            {
              std::lock_guard lock(mu_);
              auto [it, fresh] = peer_runs_.try_emplace(node, run);
              if (!fresh && it->second != run) flush = true;  // it restarted
              it->second = run;
            }
            if (flush) {
              spdlog::info("node {} {}: flushing this node's tracking clients", node,
                           lost ? "could not deliver an invalidation here" : "restarted");
              hooks_.service->tracking_apply_remote(0, {}, true);
            }
          }
          if (--g->left == 0) g->done();
        });
  }
}

net::ForwardReplyFrame TrackingRelay::handle(const net::ForwardFrame& frame) {
  net::ForwardReplyFrame reply;
  const auto& argv = frame.argv;
  if (argv.size() == 3 && argv[0] == "hello") {
    hooks_.service->tracking_peer(frame.origin_node, argv[1] == "1", argv[2] == "1");
    bool lost = false;
    {
      std::lock_guard lock(mu_);
      lost = lost_.erase(frame.origin_node) > 0;
    }
    reply.reply = ok_reply(hooks_.run_id + (lost ? " lost" : ""));
  } else if (argv.size() >= 2 && argv[0] == "invalidate") {
    auto writer = server::parse_int64(argv[1]);
    std::span<const std::string> keys(argv.data() + 2, argv.size() - 2);
    hooks_.service->tracking_apply_remote(writer ? static_cast<uint64_t>(*writer) : 0, keys, false);
    reply.reply = ok_reply("OK");
  } else if (argv.size() == 1 && argv[0] == "flush") {
    hooks_.service->tracking_apply_remote(0, {}, true);
    reply.reply = ok_reply("OK");
  } else {
    reply.status = Status::InvalidArgument("unknown tracking message");
  }
  return reply;
}

void TrackingRelay::on_new_map() {
  if (hooks_.service->tracking_needs().any) hooks_.service->tracking_apply_remote(0, {}, true);
}

void TrackingRelay::hello_loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, kHelloInterval, [this] { return stopping_; });
    if (stopping_) return;
    const bool was_on = announced_on_;
    lock.unlock();
    // While this node tracks (and once more after it stopped, to say so).
    if (was_on || hooks_.service->tracking_needs().any) announce([] {});
    lock.lock();
  }
}

}  // namespace statekv::coord
