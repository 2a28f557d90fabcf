// Strong identifier types: a NodeId cannot be passed where a Term is expected.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>

namespace statekv {

template <typename Tag, typename Rep = uint64_t>
class StrongId {
 public:
  using rep = Rep;
  constexpr StrongId() = default;
  constexpr explicit StrongId(Rep v) : v_(v) {}
  constexpr Rep value() const { return v_; }
  constexpr auto operator<=>(const StrongId&) const = default;
  constexpr StrongId next() const { return StrongId(v_ + 1); }
  friend std::ostream& operator<<(std::ostream& os, StrongId id) { return os << id.v_; }

 private:
  Rep v_ = 0;
};

using NodeId = StrongId<struct NodeIdTag>;
using ShardId = StrongId<struct ShardIdTag>;
// A replica group: one shard's replicas. Stable for the group's life (a shard's
// position in a keyspace is not); group 0 is the cluster metadata group.
using GroupId = StrongId<struct GroupIdTag>;
using Term = StrongId<struct TermTag>;
using LogIndex = StrongId<struct LogIndexTag>;
using Epoch = StrongId<struct EpochTag>;
using RequestId = StrongId<struct RequestIdTag>;

}  // namespace statekv

template <typename Tag, typename Rep>
struct std::hash<statekv::StrongId<Tag, Rep>> {
  size_t operator()(statekv::StrongId<Tag, Rep> id) const noexcept {
    return std::hash<Rep>{}(id.value());
  }
};

// Strong ids print as their number in fmt / spdlog format strings too.
#if __has_include(<fmt/format.h>)
#include <fmt/format.h>
template <typename Tag, typename Rep>
struct fmt::formatter<statekv::StrongId<Tag, Rep>> : fmt::formatter<Rep> {
  template <typename FormatContext>
  auto format(statekv::StrongId<Tag, Rep> id, FormatContext& ctx) const {
    return fmt::formatter<Rep>::format(id.value(), ctx);
  }
};
#endif
