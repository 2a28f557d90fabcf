#include "sim/registry.h"

#include "core/assert.h"

namespace statekv::sim {

void ProtocolRegistry::add(ProtocolEntry entry) {
  SKV_ASSERT(find(entry.name) == nullptr, "protocol registered twice");
  SKV_ASSERT(entry.factory != nullptr, "protocol without a factory");
  entries_.push_back(std::move(entry));
}

const ProtocolEntry* ProtocolRegistry::find(std::string_view name) const {
  for (const auto& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

}  // namespace statekv::sim
