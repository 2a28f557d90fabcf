// Client tracking across the cluster (CLIENT TRACKING, docs/cache.md): the
// node-to-node messages that let a write on any node reach the tracking
// clients of every node that handed the key out.
//
// Each node's TrackingTable (server/tracking_table.h) has its own clients and
// its peers: a peer is another node with tracking clients, recorded as a
// client `kPeerBit | node`. How a peer gets there:
//   * a tracked read routed to the owner carries ForwardFrame::kTrack and the
//     reading node's id: the owner records the keys for that peer before the
//     read runs (the reading node recorded them for its client already);
//   * announce(): a node whose tracking clients changed (CLIENT TRACKING
//     ON/OFF) sends "hello" to every other member — whether it has tracking
//     clients and whether some are in BCAST mode (the peer is then sent every
//     write; the node filters by its clients' prefixes). CLIENT TRACKING ON
//     replies once every member answered, so a write anywhere after the OK is
//     reported. The hello is repeated every second while the node tracks.
// A write (or expiry, or FLUSHALL) committed on the owner finds the peer in
// its table; ServiceState::deliver calls send_invalidation(), which sends
// "invalidate" (or "flush") to that node; the node applies it to its own
// clients only (Service::tracking_apply_remote), never to its peers, so a
// message crosses one hop.
//
// What can be missed, and how it is repaired (each repair is a flush-all
// message to the node's own tracking clients, which then drop everything):
//   * an invalidation that cannot be delivered (peer unreachable, timeout):
//     the owner marks the peer "lost" and says so in its next hello reply;
//   * an owner that restarted forgot its peers: its hello reply carries its
//     run id, and a new run id means a restart;
//   * keys that changed owner (a new cluster map): the new owner has no record
//     of who read them, so every node flushes its clients on a new map.
// Until the repair arrives (at most one hello interval, 1 s, after the event,
// while the peer is reachable) a client may serve what it cached.
//
// Message format: ForwardFrame with kTracking, origin_node = sender,
// argv = {"hello", any "0"|"1", bcast "0"|"1"} (reply "+<run id>[ lost]"),
// {"invalidate", writer client id on the receiver (0: none), keys...}, or
// {"flush"} (reply "+OK").
//
// Thread safety: every method may be called from any thread; none blocks.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "coord/routing_table.h"
#include "net/forward_client.h"
#include "net/wire.h"
#include "server/context.h"

namespace statekv::coord {

class TrackingRelay final : public server::TrackingRelay {
 public:
  struct Hooks {
    NodeId self;
    std::string run_id;
    std::function<std::shared_ptr<const RoutingTable>()> table;
    net::ForwardClient* forward = nullptr;  // outlives the relay
    server::Service* service = nullptr;
  };
  explicit TrackingRelay(Hooks hooks);
  // Stops the hello thread.
  ~TrackingRelay() override;

  void send_invalidation(uint64_t node, uint64_t writer, std::vector<std::string> keys,
                         bool flush) override;
  void announce(std::function<void()> done) override;

  // A kTracking frame from another node: its reply.
  net::ForwardReplyFrame handle(const net::ForwardFrame& frame);
  // A new cluster map: keys may have changed owner.
  void on_new_map();

 private:
  void hello_loop();

  Hooks hooks_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool announced_on_ = false;                  // the last hello said "tracking"
  std::set<uint64_t> lost_;                    // peers an invalidation did not reach
  std::map<uint64_t, std::string> peer_runs_;  // run id of each peer at its last hello
  std::thread thread_;
};

}  // namespace statekv::coord
