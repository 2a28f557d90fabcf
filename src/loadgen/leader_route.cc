#include "loadgen/leader_route.h"

#include <fmt/format.h>
#include <poll.h>

#include <algorithm>
#include <functional>
#include <mutex>
#include <optional>

namespace statekv::loadgen {
namespace {

using T = resp::Value::Type;

bool is_string(const resp::Value& v) {
  return v.type == T::kBulk || v.type == T::kSimple || v.type == T::kVerbatim;
}

// LOCATE asks this many keys per round trip in locate_keys.
constexpr size_t kLocateBatch = 128;

}  // namespace

Result<KeyLocation> parse_locate_reply(const resp::Value& reply) {
  if (reply.type == T::kError)
    return Status::Unavailable("LOCATE failed: -" + reply.str.substr(0, 200));
  // RESP3 map: elements alternate field and value, as in RESP2's flat array.
  if ((reply.type != T::kArray && reply.type != T::kMap) || reply.elements.size() % 2 != 0) {
    return Status::Corruption("LOCATE answered something other than a map of fields");
  }
  KeyLocation loc;
  bool have_keyspace = false, have_shard = false, replicated = false;
  std::vector<int64_t> owners;
  std::optional<int64_t> leader;
  for (size_t i = 0; i < reply.elements.size(); i += 2) {
    const resp::Value& name = reply.elements[i];
    const resp::Value& value = reply.elements[i + 1];
    if (!is_string(name)) continue;
    if (name.str == "keyspace" && is_string(value)) {
      loc.keyspace = value.str;
      have_keyspace = true;
    } else if (name.str == "shard" && value.type == T::kInteger) {
      loc.shard = value.integer;
      have_shard = true;
    } else if (name.str == "owners" && value.type == T::kArray) {
      for (const resp::Value& o : value.elements) {
        if (o.type != T::kInteger) return Status::Corruption("LOCATE: an owner is not a node id");
        owners.push_back(o.integer);
      }
    } else if (name.str == "addresses" && value.type == T::kArray) {
      for (const resp::Value& a : value.elements) {
        if (!is_string(a)) return Status::Corruption("LOCATE: an address is not a string");
        loc.addresses.push_back(a.str);
      }
    } else if (name.str == "leader") {
      replicated = true;
      if (value.type == T::kInteger) leader = value.integer;  // null: none known there
    }
  }
  if (!have_keyspace || !have_shard || owners.empty() || owners.size() != loc.addresses.size()) {
    return Status::Corruption(
        "LOCATE's reply lacks keyspace, shard, or owners with their addresses (not a statekv "
        "node?)");
  }
  if (!replicated) {
    loc.target = loc.addresses[0];
  } else if (leader) {
    const auto it = std::find(owners.begin(), owners.end(), *leader);
    if (it == owners.end()) {
      return Status::Corruption(fmt::format("LOCATE: leader {} is none of the owners", *leader));
    }
    loc.target = loc.addresses[static_cast<size_t>(it - owners.begin())];
  }
  return loc;
}

Result<std::vector<HostPort>> parse_resp_endpoints(const std::vector<std::string>& endpoints) {
  if (endpoints.empty()) return Status::InvalidArgument("no RESP endpoints given");
  std::vector<HostPort> parsed;
  for (const auto& e : endpoints) {
    if (e.find("://") != std::string::npos) {
      return Status::InvalidArgument("RESP endpoint " + e + ": expected host:port");
    }
    auto hp = parse_endpoint(e);
    if (!hp.ok()) return hp.status();
    parsed.push_back(std::move(*hp));
  }
  return parsed;
}

LeaderTable::LeaderTable(std::vector<HostPort> endpoints) : endpoints_(std::move(endpoints)) {}

int LeaderTable::endpoint_of(std::string_view address) const {
  auto hp = parse_endpoint(address);
  if (!hp.ok()) return kElsewhere;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    if (endpoints_[i].host == hp->host && endpoints_[i].port == hp->port) {
      return static_cast<int>(i);
    }
  }
  return kElsewhere;
}

int LeaderTable::lookup(const std::string& key) const {
  std::shared_lock lock(mu_);
  auto it = key_shard_.find(key);
  return it == key_shard_.end() ? kUnknown : shard_endpoint_[it->second];
}

int LeaderTable::learn(const std::string& key, const KeyLocation& location) {
  const int endpoint = location.target.empty() ? kUnknown : endpoint_of(location.target);
  std::unique_lock lock(mu_);
  auto [it, added] =
      shards_.try_emplace({location.keyspace, location.shard}, shard_endpoint_.size());
  if (added) shard_endpoint_.push_back(kUnknown);
  key_shard_[key] = it->second;
  // An unknown leader (an election) leaves what the shard had: another
  // client's answer may be newer.
  if (endpoint != kUnknown) shard_endpoint_[it->second] = endpoint;
  return shard_endpoint_[it->second];
}

void LeaderTable::forget(const std::string& key) {
  std::unique_lock lock(mu_);
  auto it = key_shard_.find(key);
  if (it != key_shard_.end()) shard_endpoint_[it->second] = kUnknown;
}

LeaderTable::Counts LeaderTable::counts() const {
  std::shared_lock lock(mu_);
  Counts c;
  c.keys = key_shard_.size();
  c.shards = shards_.size();
  c.per_endpoint.assign(endpoints_.size(), 0);
  for (const auto& [key, shard] : key_shard_) c.direct += shard_endpoint_[shard] >= 0 ? 1 : 0;
  for (int e : shard_endpoint_) {
    if (e >= 0) ++c.per_endpoint[static_cast<size_t>(e)];
  }
  return c;
}

namespace {

// LOCATE of one key through `via`, then, when that node knows no leader, of
// each of the key's owners among the endpoints (`conns`, by index) until one
// does. Records the answer in `table`; returns the key's endpoint or
// kElsewhere / kUnknown.
Result<int> locate_one(LeaderTable& table, const std::string& key, RespConnection& via,
                       const std::function<RespConnection*(size_t)>& conn_for) {
  auto reply = via.command({"LOCATE", key});
  if (!reply.ok()) return reply.status();
  auto loc = parse_locate_reply(*reply);
  if (!loc.ok()) return loc.status();
  if (loc->target.empty()) {
    for (const std::string& address : loc->addresses) {
      const int e = table.endpoint_of(address);
      RespConnection* owner = e >= 0 ? conn_for(static_cast<size_t>(e)) : nullptr;
      if (owner == nullptr || owner == &via) continue;
      auto again = owner->command({"LOCATE", key});
      if (!again.ok()) continue;
      auto other = parse_locate_reply(*again);
      if (other.ok() && !other->target.empty()) {
        loc = std::move(other);
        break;
      }
    }
  }
  return table.learn(key, *loc);
}

// One client of --route leader: a connection per endpoint, each put to its
// key's endpoint (see the header).
class LeaderConnection final : public Connection {
 public:
  LeaderConnection(std::shared_ptr<LeaderTable> table,
                   std::vector<std::unique_ptr<RespConnection>> conns, size_t spread,
                   std::string key_prefix, std::chrono::milliseconds io_timeout)
      : table_(std::move(table)),
        conns_(std::move(conns)),
        spread_(spread),
        key_prefix_(std::move(key_prefix)),
        io_timeout_(io_timeout) {}

  Status put(std::string_view key, std::string_view value) override {
    full_key_.assign(key_prefix_);
    full_key_.append(key);
    Status s = conns_[endpoint_for(full_key_)]->put(key, value);
    // Its node may have failed or lost the leadership: ask again next time.
    if (!s.ok()) table_->forget(full_key_);
    return s;
  }

  // Each put to its key's endpoint as put() picks it; every endpoint's puts go
  // in one send, all before any reply is read, and the replies are taken as
  // they come from whichever endpoint answers first.
  Status put_batch(std::span<const Put> puts, std::span<LoadClock::time_point> acked) override {
    std::vector<std::vector<size_t>> by_endpoint(conns_.size());
    std::vector<std::string> keys(puts.size());
    for (size_t i = 0; i < puts.size(); ++i) {
      keys[i] = key_prefix_ + std::string(puts[i].key);
      by_endpoint[endpoint_for(keys[i])].push_back(i);
    }
    Status first;
    auto refuse = [&](size_t put, Status s) {
      table_->forget(keys[put]);
      if (first.ok()) first = std::move(s);
    };
    for (size_t e = 0; e < conns_.size(); ++e) {
      if (by_endpoint[e].empty()) continue;
      if (Status s = conns_[e]->send_puts(puts, by_endpoint[e]); !s.ok()) {
        for (size_t put : by_endpoint[e]) refuse(put, s);
      }
    }
    std::vector<pollfd> fds;
    std::vector<size_t> polled;  // the endpoint of each of fds
    while (true) {
      fds.clear();
      polled.clear();
      for (size_t e = 0; e < conns_.size(); ++e) {
        for (auto& r : conns_[e]->take_replies(acked)) refuse(r.put, std::move(r.status));
        if (conns_[e]->replies_due() == 0) continue;
        fds.push_back(pollfd{.fd = conns_[e]->fd(), .events = POLLIN, .revents = 0});
        polled.push_back(e);
      }
      if (fds.empty()) return first;
      // Whichever answers first; receive() itself waits (and times out) when
      // poll was interrupted or none answered in time.
      const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(io_timeout_.count()));
      for (size_t j = 0; j < fds.size(); ++j) {
        if (ready <= 0 || fds[j].revents != 0) (void)conns_[polled[j]]->receive();
      }
    }
  }

 private:
  std::shared_ptr<LeaderTable> table_;
  std::vector<std::unique_ptr<RespConnection>> conns_;
  const size_t spread_;
  // The endpoint a put of `full_key` (with the prefix) goes to: its shard's,
  // located first when unknown, or the spread endpoint.
  size_t endpoint_for(const std::string& full_key) {
    int e = table_->lookup(full_key);
    if (e == LeaderTable::kUnknown) {
      auto located = locate_one(*table_, full_key, *conns_[spread_],
                                [this](size_t i) { return conns_[i].get(); });
      // LOCATE failing (the spread node down, say) leaves the put to the
      // spread endpoint, which says what is wrong.
      e = located.ok() ? *located : LeaderTable::kUnknown;
    }
    size_t use = e >= 0 ? static_cast<size_t>(e) : spread_;
    if (use != spread_ && !conns_[use]->ensure_open().ok()) {
      // The leader's node does not answer (it died; its group elects another
      // leader): nothing was sent, so the spread node takes the put and
      // holds it until there is a leader, and the shard is located again.
      table_->forget(full_key);
      use = spread_;
    }
    return use;
  }

  const std::string key_prefix_;
  const std::chrono::milliseconds io_timeout_;
  std::string full_key_;  // reused buffer
};

}  // namespace

Result<std::shared_ptr<LeaderTable>> locate_keys(const std::vector<HostPort>& endpoints,
                                                 const RespOptions& options, size_t key_space) {
  if (endpoints.empty()) return Status::InvalidArgument("no RESP endpoints given");
  auto table = std::make_shared<LeaderTable>(endpoints);
  std::vector<std::unique_ptr<RespConnection>> conns;
  for (const HostPort& e : endpoints) conns.push_back(RespConnection::unopened(e, options));
  const auto conn_for = [&](size_t i) { return conns[i].get(); };
  // Asked through the first endpoint that answers.
  size_t via = 0;
  Status opened = conns[0]->ensure_open();
  while (!opened.ok() && via + 1 < conns.size()) opened = conns[++via]->ensure_open();
  if (!opened.ok()) return opened;
  std::vector<std::vector<std::string>> batch;
  std::vector<std::string> keys;
  for (size_t first = 0; first < key_space; first += kLocateBatch) {
    batch.clear();
    keys.clear();
    for (size_t i = first; i < std::min(key_space, first + kLocateBatch); ++i) {
      keys.push_back(options.key_prefix + key_for(i));
      batch.push_back({"LOCATE", keys.back()});
    }
    auto replies = conns[via]->pipeline(batch);
    if (!replies.ok()) return replies.status();
    for (size_t j = 0; j < keys.size(); ++j) {
      auto loc = parse_locate_reply((*replies)[j]);
      if (!loc.ok()) {
        const std::string msg =
            fmt::format("--route leader: LOCATE {} through {}:{}: {}", keys[j], endpoints[via].host,
                        endpoints[via].port, loc.status().message());
        return loc.status().code() == Status::Code::kCorruption ? Status::Corruption(msg)
                                                                : Status::Unavailable(msg);
      }
      if (loc->target.empty()) {
        // That node knows no leader: ask the key's owners.
        auto again = locate_one(*table, keys[j], *conns[via], conn_for);
        if (!again.ok()) return again.status();
      } else {
        table->learn(keys[j], *loc);
      }
    }
  }
  return table;
}

Result<ConnectionFactory> make_resp_leader_factory(const std::vector<HostPort>& endpoints,
                                                   const RespOptions& options,
                                                   std::shared_ptr<LeaderTable> table) {
  if (endpoints.empty()) return Status::InvalidArgument("no RESP endpoints given");
  if (options.wait_replicas < 0) return Status::InvalidArgument("--wait must be >= 0");
  if (!table) return Status::InvalidArgument("no leader table");
  return ConnectionFactory(
      [endpoints, options, table](size_t client) -> Result<std::unique_ptr<Connection>> {
        const size_t n = endpoints.size();
        std::vector<std::unique_ptr<RespConnection>> conns(n);
        std::optional<size_t> spread;
        Status first_failure;
        // From c % N on: the first endpoint that answers is the spread one.
        for (size_t k = 0; k < n; ++k) {
          const size_t i = (client + k) % n;
          auto c = RespConnection::connect(endpoints[i], options);
          if (c.ok()) {
            conns[i] = std::move(*c);
            if (!spread) spread = i;
          } else {
            // Opened on first use (the node may be back by then).
            conns[i] = RespConnection::unopened(endpoints[i], options);
            if (first_failure.ok()) first_failure = c.status();
          }
        }
        if (!spread) return first_failure;
        return std::unique_ptr<Connection>(std::make_unique<LeaderConnection>(
            table, std::move(conns), *spread, options.key_prefix, options.io_timeout));
      });
}

}  // namespace statekv::loadgen
