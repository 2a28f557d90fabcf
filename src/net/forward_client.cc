#include "net/forward_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "core/thread_name.h"
#include "net/asio.h"
#include "net/handshake.h"

namespace statekv::net {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kSweepEvery{20};

}  // namespace

class ForwardClient::Impl : public std::enable_shared_from_this<ForwardClient::Impl> {
 public:
  explicit Impl(ForwardClientOptions options)
      : options_(std::move(options)), guard_(asio::make_work_guard(io_)), sweep_(io_) {}

  void start() {
    arm_sweep();
    thread_ = std::thread([self = shared_from_this()] {
      name_this_thread("forward");
      self->io_.run();
    });
  }

  void stop() {
    asio::post(io_, [this] {
      stopped_ = true;
      sweep_.cancel();
      auto conns = std::move(conns_);
      conns_.clear();  // a moved-from map is only promised to be valid
      for (auto& [key, conn] : conns)
        conn->close("node " + std::to_string(options_.self.value()) + " is shutting down");
    });
    guard_.reset();
    if (thread_.joinable()) thread_.join();
  }

  void call(NodeId node, const std::string& address, ForwardFrame frame, Callback done,
            std::optional<std::chrono::milliseconds> timeout) {
    ++calls_;
    // Queued for this client's thread, which takes every call queued at
    // once: one post (and one write per connection) per batch, not per call.
    bool post = false;
    {
      std::lock_guard<std::mutex> lock(inbox_mu_);
      inbox_.push_back(Queued{node, address, std::move(frame), std::move(done), timeout});
      post = !inbox_posted_;
      inbox_posted_ = true;
    }
    if (post) asio::post(io_, [self = shared_from_this()] { self->take_calls(); });
  }

  Stats stats() const { return Stats{connects_.load(), calls_.load(), timeouts_.load()}; }

 private:
  // One connection to one node: handshake, then requests out, replies in.
  class Conn : public std::enable_shared_from_this<Conn> {
   public:
    Conn(Impl& owner, NodeId node, std::string address)
        : owner_(owner),
          node_(node),
          address_(std::move(address)),
          socket_(owner.io_),
          reader_(std::min(kHandshakeMaxFrameBytes, owner.options_.max_frame_bytes)),
          ready_by_(Clock::now() + owner.options_.timeout) {}

    void connect() {
      const size_t colon = address_.rfind(':');
      std::error_code ec;
      asio::ip::address ip;
      unsigned long port = 0;
      if (colon != std::string::npos) {
        ip = asio::ip::make_address(address_.substr(0, colon), ec);
        port = std::strtoul(address_.c_str() + colon + 1, nullptr, 10);
      }
      if (colon == std::string::npos || ec || port == 0 || port > 65535) {
        // Not an address a node could have: fail on this thread's next turn,
        // as the contract says callbacks never run inside call().
        asio::post(owner_.io_, [self = shared_from_this()] {
          self->close("bad peer address '" + self->address_ + "'");
        });
        return;
      }
      ++owner_.connects_;
      socket_.async_connect(asio::ip::tcp::endpoint(ip, static_cast<uint16_t>(port)),
                            [self = shared_from_this()](std::error_code ec) {
                              if (self->closed_) return;
                              if (ec) {
                                self->close("cannot connect: " + ec.message());
                                return;
                              }
                              self->on_connected();
                            });
    }

    // Queues a request; flush() writes what is queued. `timeout`: the
    // call's own (see ForwardClient::call), else the options' one.
    void add(uint64_t id, const ForwardFrame& frame, Callback done,
             std::optional<std::chrono::milliseconds> timeout) {
      std::string payload = encode_wire(frame);
      if (Status fits = frame_fits(payload.size(), "the routed command"); !fits.ok()) {
        done(fits);  // on this client's thread, not inside call(): never written
        return;
      }
      if (timeout) {
        const auto now = Clock::now();
        const Clock::time_point deadline =
            *timeout == ForwardClient::kNoTimeout || *timeout > std::chrono::hours(24 * 365)
                ? Clock::time_point::max()
                : now + *timeout;
        own_timeout_.emplace(id, Pending{std::move(done), deadline, false});
      } else {
        pending_.emplace(id,
                         Pending{std::move(done), Clock::now() + owner_.options_.timeout, false});
      }
      outbox_.emplace_back(id, encode_frame(payload));
    }
    void flush() {
      if (authenticated_) write();
    }

    // Fails every call: written ones may have run, the others did not.
    void close(const std::string& why) {
      if (closed_) return;
      closed_ = true;
      std::error_code ec;
      socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
      socket_.close(ec);
      owner_.forget(this);
      auto pending = std::move(pending_);
      pending_.clear();
      pending.merge(own_timeout_);
      own_timeout_.clear();
      for (auto& [id, p] : pending) p.done(failure(p.written, why));
    }

    // Times out calls past their deadline, and a connection not ready in time.
    void sweep(Clock::time_point now) {
      if (!authenticated_ && now >= ready_by_) {
        close("no authenticated connection within " +
              std::to_string(owner_.options_.timeout.count()) + " ms");
        return;
      }
      // Every call has the same timeout and ids grow, so deadlines grow with
      // ids: the expired calls are a prefix of the map.
      while (!pending_.empty() && now >= pending_.begin()->second.deadline) {
        Pending p = std::move(pending_.begin()->second);
        pending_.erase(pending_.begin());
        if (p.written) ++owner_.timeouts_;
        // Not yet written (still in the outbox): write() skips it.
        p.done(failure(p.written, "no reply within " +
                                      std::to_string(owner_.options_.timeout.count()) + " ms"));
      }
      // Calls with a timeout of their own (few: blocked clients): all looked at.
      for (auto it = own_timeout_.begin(); it != own_timeout_.end();) {
        if (now < it->second.deadline) {
          ++it;
          continue;
        }
        Pending p = std::move(it->second);
        it = own_timeout_.erase(it);
        if (p.written) ++owner_.timeouts_;
        p.done(failure(p.written, "no reply within the call's own timeout"));
      }
    }

   private:
    struct Pending {
      Callback done;
      Clock::time_point deadline;
      bool written = false;  // handed to the socket: it may have run
    };

    Status failure(bool written, const std::string& why) const {
      const std::string where = "node " + std::to_string(node_.value()) + " at " + address_;
      if (written) {
        return Status::Timeout("routing to " + where + " failed mid-request: " + why +
                               "; it may or may not have run");
      }
      return Status::Unavailable("cannot reach " + where + ": " + why);
    }

    void on_connected() {
      std::error_code ec;
      socket_.set_option(asio::ip::tcp::no_delay(true), ec);
      HandshakeOptions hs;
      hs.secret = owner_.options_.secret;
      hs.self = owner_.options_.self;
      hs.role = HandshakeRole::kInitiator;
      hs.peer_address = address_;
      const NodeId expected = node_;
      hs.allow_peer = [expected](NodeId peer) { return peer == expected; };
      auto started = Handshake::start(std::move(hs));
      if (!started.ok()) {
        close(started.status().message());
        return;
      }
      handshake_ = std::make_unique<Handshake>(std::move(started).value());
      flush_handshake();
      read();
    }

    void flush_handshake() {
      for (std::string& out : handshake_->take_outgoing()) append_frame(handshake_out_, out);
      write();
    }

    void read() {
      socket_.async_read_some(
          asio::buffer(buffer_), [self = shared_from_this()](std::error_code ec, size_t n) {
            if (self->closed_) return;
            if (ec) {
              self->close(ec == asio::error::eof ? "the node closed the connection" : ec.message());
              return;
            }
            self->on_bytes(std::string_view(self->buffer_.data(), n));
          });
    }

    void on_bytes(std::string_view bytes) {
      reader_.feed(bytes);
      while (!closed_) {
        auto frame = reader_.next();
        if (!frame.ok()) {
          close(frame.status().message());
          return;
        }
        if (!frame->has_value()) break;
        on_frame(std::move(**frame));
      }
      if (!closed_) read();
    }

    void on_frame(std::string payload) {
      if (!authenticated_) {
        handshake_->on_frame(payload);
        if (handshake_->refused()) {
          spdlog::warn("routing connection to node {} at {} refused: {}", node_, address_,
                       handshake_->refusal_reason());
          close("handshake refused: " + std::string(handshake_->refusal_reason()));
          return;
        }
        flush_handshake();
        if (handshake_->accepted()) {
          authenticated_ = true;
          reader_.set_max_frame_bytes(owner_.options_.max_frame_bytes);
          write();
        }
        return;
      }
      auto message = decode_wire(payload);
      auto* reply = message.ok() ? std::get_if<ForwardReplyFrame>(&*message) : nullptr;
      if (reply == nullptr) {
        close("unexpected frame from the node");
        return;
      }
      auto* calls = &pending_;
      auto it = pending_.find(reply->call);
      if (it == pending_.end()) {
        calls = &own_timeout_;
        it = own_timeout_.find(reply->call);
        if (it == own_timeout_.end()) return;  // answered after it timed out
      }
      if (reply->batch && reply->more) {
        it->second.done(std::move(*reply));  // a part: the call stays pending
        return;
      }
      Callback done = std::move(it->second.done);
      calls->erase(it);
      done(std::move(*reply));
    }

    void write() {
      if (writing_ || closed_) return;
      batch_.clear();
      if (!handshake_out_.empty()) {
        batch_.swap(handshake_out_);
      } else if (authenticated_) {
        // Gather what is queued into one write; calls that timed out while
        // queued are dropped unsent.
        while (!outbox_.empty() && batch_.size() < (1u << 20)) {
          auto& [id, bytes] = outbox_.front();
          Pending* p = nullptr;
          if (auto it = pending_.find(id); it != pending_.end()) {
            p = &it->second;
          } else if (auto own = own_timeout_.find(id); own != own_timeout_.end()) {
            p = &own->second;
          }
          if (p != nullptr) {
            p->written = true;
            batch_ += bytes;
          }
          outbox_.pop_front();
        }
      }
      if (batch_.empty()) return;
      writing_ = true;
      asio::async_write(socket_, asio::buffer(batch_),
                        [self = shared_from_this()](std::error_code ec, size_t) {
                          self->writing_ = false;
                          if (self->closed_) return;
                          if (ec) {
                            self->close(ec.message());
                            return;
                          }
                          self->write();
                        });
    }

    Impl& owner_;
    NodeId node_;
    std::string address_;
    asio::ip::tcp::socket socket_;
    FrameReader reader_;
    Clock::time_point ready_by_;
    std::unique_ptr<Handshake> handshake_;
    std::string handshake_out_;
    std::deque<std::pair<uint64_t, std::string>> outbox_;
    std::string batch_;
    std::map<uint64_t, Pending> pending_;      // by call id, so by deadline too
    std::map<uint64_t, Pending> own_timeout_;  // calls with a timeout of their own, by call id
    std::array<char, 64 * 1024> buffer_{};
    bool authenticated_ = false;
    bool writing_ = false;
    bool closed_ = false;
  };

  using Key = std::pair<uint64_t, std::string>;

  struct Queued {
    NodeId node;
    std::string address;
    ForwardFrame frame;
    Callback done;
    std::optional<std::chrono::milliseconds> timeout;
  };

  void take_calls() {
    std::vector<Queued> calls;
    {
      std::lock_guard<std::mutex> lock(inbox_mu_);
      calls.swap(inbox_);
      inbox_posted_ = false;
    }
    std::vector<std::shared_ptr<Conn>> touched;
    for (Queued& c : calls) {
      auto conn = start_call(c.node, c.address, std::move(c.frame), std::move(c.done), c.timeout);
      if (conn && std::find(touched.begin(), touched.end(), conn) == touched.end()) {
        touched.push_back(std::move(conn));
      }
    }
    for (auto& conn : touched) conn->flush();
  }

  // The connection the call was queued on (nullptr if it was answered at once).
  std::shared_ptr<Conn> start_call(NodeId node, const std::string& address, ForwardFrame frame,
                                   Callback done,
                                   std::optional<std::chrono::milliseconds> timeout) {
    if (stopped_) {
      done(Status::Unavailable("node " + std::to_string(options_.self.value()) +
                               " is shutting down"));
      return nullptr;
    }
    std::shared_ptr<Conn>& conn = conns_[Key{node.value(), address}];
    const bool fresh = conn == nullptr;
    if (fresh) conn = std::make_shared<Conn>(*this, node, address);
    frame.call = ++next_call_;
    std::shared_ptr<Conn> keep = conn;  // connect() may close it and drop the map's reference
    keep->add(frame.call, frame, std::move(done), timeout);
    if (fresh) keep->connect();
    return keep;
  }

  // A closed connection leaves the map, so that the next call opens a new one.
  void forget(const Conn* conn) {
    for (auto it = conns_.begin(); it != conns_.end(); ++it) {
      if (it->second.get() == conn) {
        conns_.erase(it);
        return;
      }
    }
  }

  void arm_sweep() {
    sweep_.expires_after(kSweepEvery);
    sweep_.async_wait([self = shared_from_this()](std::error_code ec) {
      if (ec || self->stopped_) return;
      const auto now = Clock::now();
      std::vector<std::shared_ptr<Conn>> conns;
      for (auto& [key, conn] : self->conns_) conns.push_back(conn);
      for (auto& conn : conns) conn->sweep(now);
      self->arm_sweep();
    });
  }

  ForwardClientOptions options_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  asio::steady_timer sweep_;
  std::thread thread_;
  std::map<Key, std::shared_ptr<Conn>> conns_;  // only touched on io_'s thread
  std::mutex inbox_mu_;
  std::vector<Queued> inbox_;  // calls not yet taken by io_'s thread
  bool inbox_posted_ = false;
  uint64_t next_call_ = 0;
  bool stopped_ = false;
  std::atomic<uint64_t> connects_{0};
  std::atomic<uint64_t> calls_{0};
  std::atomic<uint64_t> timeouts_{0};
};

ForwardClient::ForwardClient(ForwardClientOptions options)
    : impl_(std::make_shared<Impl>(std::move(options))) {
  impl_->start();
}

ForwardClient::~ForwardClient() {
  impl_->stop();
}

void ForwardClient::call(NodeId node, const std::string& address, ForwardFrame frame,
                         Callback done) {
  impl_->call(node, address, std::move(frame), std::move(done), std::nullopt);
}

void ForwardClient::call(NodeId node, const std::string& address, ForwardFrame frame, Callback done,
                         std::chrono::milliseconds timeout) {
  impl_->call(node, address, std::move(frame), std::move(done), timeout);
}

ForwardClient::Stats ForwardClient::stats() const {
  return impl_->stats();
}

}  // namespace statekv::net
