// Following the cluster map on a node.
//
// A node applies raft entries; after each apply it hands MapWatch the bytes of
// the "meta" key. MapWatch decodes them and, only when the epoch grew, publishes
// the new map to every subscriber. Epochs never go backwards here: a document
// whose epoch is not above the current one (a replayed log, a duplicate apply,
// a lagging replica's bytes fed by mistake) is ignored.
//
// Ownership: maps are shared as shared_ptr<const ClusterMap>, immutable once
// published; a subscriber may keep one as long as it likes.
//
// Thread safety: every method may be called from any thread. Publications are
// serialized: subscribers see maps one at a time, in increasing epoch order, on
// the thread that called on_apply, after current() already returns the new map.
// A callback may call current(), subscribe() and unsubscribe(), but must not
// call on_apply() (it would deadlock) and should be quick (it holds up the
// applying thread).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "meta/cluster_map.h"

namespace statekv::meta {

class MapWatch {
 public:
  using Callback = std::function<void(const std::shared_ptr<const ClusterMap>&)>;

  MapWatch() = default;
  MapWatch(const MapWatch&) = delete;
  MapWatch& operator=(const MapWatch&) = delete;

  // The bytes of "meta" after an apply (nullopt: the key is absent). true when a
  // new map was published; false when nothing changed (absent, or an epoch not
  // above the current one); Corruption when the bytes do not decode (nothing is
  // published: the last good map stays current).
  Result<bool> on_apply(const std::optional<std::string_view>& bytes);

  // The latest published map; nullptr before the first.
  std::shared_ptr<const ClusterMap> current() const;

  // Registers `callback` for every later publication and returns its id together
  // with the map current at registration (nullptr if none): the subscriber sees
  // every map from that one on, with no gap.
  struct Subscription {
    uint64_t id;
    std::shared_ptr<const ClusterMap> current;
  };
  Subscription subscribe(Callback callback);
  // After it returns the callback is not called again, unless a publication was
  // already under way on another thread (it may then get that one map).
  void unsubscribe(uint64_t id);

 private:
  std::mutex publish_mu_;  // held through a whole on_apply: one publication at a time
  mutable std::mutex mu_;  // guards the fields below
  std::shared_ptr<const ClusterMap> current_;
  std::string last_bytes_;  // what current_ was decoded from
  std::map<uint64_t, std::shared_ptr<const Callback>> subscribers_;
  uint64_t next_id_ = 1;
};

}  // namespace statekv::meta
