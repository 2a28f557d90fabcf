#include "server/proposer.h"

namespace statekv::server {

replication::Mutation to_mutation(int64_t time_ms, std::span<const Store::Write> writes) {
  replication::Mutation m;
  m.time_ms = time_ms;
  m.effects.reserve(writes.size());
  using Kind = replication::Effect::Kind;
  for (const Store::Write& w : writes) {
    // What the key held under its lock (the contract): members apply without
    // reading it again.
    if (!w.element) {
      m.priors.push_back(w.old.exists
                             ? replication::RecordPrior{true, w.old.expire_ms, w.old.gen}
                             : replication::RecordPrior{});
    }
    if (w.element) {
      m.effects.push_back({w.erase ? Kind::kEraseElement : Kind::kPutElement, w.key,
                           w.erase ? std::string_view() : w.value, 0, 0, w.gen, w.field});
      continue;
    }
    if (!w.erase && w.type != ValueType::kString) {
      m.effects.push_back(
          {Kind::kPutTyped, w.key, w.value, w.expire_ms, static_cast<uint8_t>(w.type)});
      continue;
    }
    m.effects.push_back({w.erase ? Kind::kErase : Kind::kPut, w.key,
                         w.erase ? std::string_view() : w.value, w.erase ? 0 : w.expire_ms});
  }
  return m;
}

replication::Mutation clear_mutation(int64_t time_ms) {
  replication::Mutation m;
  m.time_ms = time_ms;
  m.effects.push_back({replication::Effect::Kind::kClear, {}, {}, 0});
  return m;
}

namespace {

class LocalGroup final : public Proposer {
 public:
  explicit LocalGroup(Store& store) : store_(store) {}

  Result<CommitTicket> propose(int64_t, std::span<const Store::Write> writes) override {
    auto seq = store_.apply_locked(writes);
    if (!seq.ok()) return seq.status();
    return CommitTicket{*seq};
  }

  Result<CommitTicket> propose_clear(int64_t) override {
    auto seq = store_.flush();
    if (!seq.ok()) return seq.status();
    return CommitTicket{*seq};
  }

 private:
  Store& store_;
};

}  // namespace

std::unique_ptr<Proposer> make_local_group(Store& store) {
  return std::make_unique<LocalGroup>(store);
}

}  // namespace statekv::server
