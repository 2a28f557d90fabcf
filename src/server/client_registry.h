// ClientRegistryImpl — the network layer's list of live sessions, for CLIENT
// LIST and INFO clients (the ClientRegistry interface of server/context.h).
//
// Thread safety: every method may be called from any thread. A connection adds
// its Session when it starts and removes it when it closes, on its I/O thread;
// readers (CLIENT LIST on any I/O thread) hold the lock while they visit. The
// lock is taken once per connection open/close and per CLIENT LIST, never per
// command, so it is not on the hot path.
//
// Ownership: the registry stores pointers only; the caller guarantees each
// Session stays alive until remove() returns for it.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>

#include "server/context.h"

namespace statekv::server {

class ClientRegistryImpl final : public ClientRegistry {
 public:
  // Adds session under session->id (which must be unique among live sessions).
  void add(const Session* session);
  void remove(uint64_t id);

  size_t count() const override;
  void for_each(const std::function<void(const Session&)>& fn) const override;

 private:
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, const Session*> sessions_;
};

}  // namespace statekv::server
