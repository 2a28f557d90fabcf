// KEYSPACE CREATE and DROP with the keys they concern (docs/routing.md,
// "Keyspaces"): a keyspace created over keys that another keyspace holds
// takes them over live, through the mover (mover.h), and a dropped keyspace's
// keys are deleted everywhere before it leaves the map.
//
// The node that got the command drives the change, as `statekv cluster
// rebalance` drives a move (cli/rebalance.cc): map changes through the
// metadata group, `__migrate` verbs to every node that may hold keys.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <thread>

#include "coord/coordinator.h"
#include "coord/routing_errors.h"
#include "core/held_posts.h"
#include "meta/meta_client.h"
#include "meta/transitions.h"
#include "node/raft_register_client.h"
#include "partition/layout.h"
#include "server/number.h"

namespace statekv::coord {

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// How long the keys of one change may take to copy before it is abandoned.
constexpr auto kCopyLimit = 120s;
// How long the nodes may take to clean up after the map changed.
constexpr auto kCleanupLimit = 30s;

// `prefix` as a glob that matches itself followed by anything.
std::string prefix_pattern(std::string_view prefix) {
  std::string p;
  for (char c : prefix) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') p += '\\';
    p += c;
  }
  return p + "*";
}

// Nodes that may hold keys under `map`: the active members and the leaving
// ones (as a rebalance counts them).
std::vector<meta::Member> data_members(const meta::ClusterMap& map) {
  std::vector<meta::Member> nodes;
  for (const meta::Member& m : map.members) {
    if (m.state == meta::MemberState::kActive || m.state == meta::MemberState::kLeaving) {
      nodes.push_back(m);
    }
  }
  return nodes;
}

bool replicated(const meta::KeyspaceSpec& spec) {
  return spec.replication.kind == meta::Replication::kConsensus;
}
bool replicated(const meta::Keyspace& k) {
  return replicated(k.spec);
}

// The refusal of a keyspace whose prefix holds keys that cannot move in.
Status strands_keys(std::string_view name, uint64_t n, std::string_view prefix,
                    std::string_view from) {
  return Status::InvalidArgument(fmt::format(
      "keyspace '{}' not created: {} keys under '{}' are in keyspace '{}', and keys do not "
      "move into or out of a REPLICATION consensus keyspace yet (delete them first, or "
      "create the keyspace with REPLICATION none)",
      name, n, prefix, from));
}

}  // namespace

std::string Coordinator::call_group_and_wait(GroupId group, std::vector<NodeId> members,
                                             std::vector<std::string> argv) {
  auto call = std::make_shared<GroupCall>();
  call->group = group;
  call->members = std::move(members);
  call->argv = std::move(argv);
  call->write = true;
  call->deadline = Clock::now() + options_.forward_timeout;
  std::promise<std::string> replied;
  auto reply = replied.get_future();
  call->done = [&replied](std::string r, storage::Sequence) { replied.set_value(std::move(r)); };
  send_group_call(call, NodeId());
  HeldPosts::flush();  // this thread waits: what it holds must leave first
  return reply.get();
}

Status Coordinator::finish_creating(const meta::ClusterMap& begun, const std::string& name,
                                    meta::RegisterClient& client) {
  const meta::Keyspace* k = begun.find_keyspace(name);
  if (k == nullptr || !k->creating) {
    return Status::InvalidArgument("keyspace '" + name + "' is not being created");
  }
  const meta::Keyspace* from = meta::prefix_owner(begun, k->spec.key_prefix, name);
  if (from == nullptr) return Status::Internal("no keyspace owns the prefix of '" + name + "'");
  const std::string prefix = k->spec.key_prefix;
  const std::string from_name = from->spec.name;
  const uint64_t epoch = begun.epoch.value();
  // Any failure: the keyspace goes again (it served nothing).
  const auto abandon = [&](const Status& why) {
    auto dropped = meta::update(client, [&](const meta::ClusterMap& m) -> Result<meta::ClusterMap> {
      const meta::Keyspace* k = m.find_keyspace(name);
      if (k == nullptr || !k->creating) {
        // The cluster abandoned it meanwhile (abandon_stalled_creations).
        return Status::Aborted("abandoned already");
      }
      return meta::drop_keyspace(m, name);
    });
    if (!dropped.ok() && dropped.status().code() == Status::Code::kAborted) {
      return Status::InvalidArgument(fmt::format(
          "keyspace '{}' not created: {}; the cluster had abandoned the creation meanwhile "
          "(--keyspace-create-limit-ms)",
          name, why.message()));
    }
    if (!dropped.ok()) {
      return Status::Unavailable(fmt::format(
          "keyspace '{}' not created ({}), and removing it failed too ({}): run KEYSPACE DROP {}",
          name, why.message(), dropped.status().message(), name));
    }
    for (const meta::Member& n : data_members(*dropped)) {
      (void)migrate_on(n, dropped->epoch.value(), {"status"});  // routing by it, as above
    }
    wait_for_epoch(dropped->epoch.value());
    if (why.is_invalid_argument()) return why;
    return Status::InvalidArgument(
        fmt::format("keyspace '{}' not created: {}", name, why.message()));
  };

  // 1. No key reaches the prefix in the keyspace that held it any more: its
  //    replica groups refuse what older maps route to them, and have applied
  //    everything evaluated before; every node routes by this map (a single
  //    copy's owner refuses what older maps route to it).
  //    The groups' leaders count what the prefix holds in them (exact: a
  //    scan of every member would count keys a follower has not seen
  //    deleted yet).
  Result<uint64_t> n = uint64_t{0};
  if (replicated(*from)) n = fence_groups(*from, prefix);
  if (!n.ok()) return abandon(n.status());
  for (const meta::Member& node : data_members(begun)) {
    auto r = migrate_on(node, epoch, {"status"});
    if (!r.ok()) return abandon(r.status());
  }
  wait_for_epoch(epoch);
  // 2. A single copy's keys under the prefix: under this map every node
  //    reports such a key, wherever it is (cluster_scan.h), counted as the
  //    new keyspace's.
  if (!replicated(*from)) n = count_keys_of(name, prefix);
  if (!n.ok()) return abandon(n.status());
  if (*n > 0) return abandon(strands_keys(name, *n, prefix, from_name));
  // 3. It serves.
  auto finished =
      meta::update(client, [&](const meta::ClusterMap& m) { return meta::finish_create(m, name); });
  if (!finished.ok()) return abandon(finished.status());
  // Answered once every node serves it (one that does not know it yet
  // answers TRYAGAIN for its keys).
  for (const meta::Member& n : data_members(*finished)) {
    if (auto r = migrate_on(n, finished->epoch.value(), {"status"}); !r.ok()) {
      spdlog::warn("keyspace '{}' created; {}", name, r.status().message());
    }
  }
  wait_for_epoch(finished->epoch.value());
  return Status::OK();
}

Result<uint64_t> Coordinator::fence_groups(const meta::Keyspace& keyspace,
                                           std::string_view prefix) {
  uint64_t records = 0;
  for (const meta::Shard& shard : keyspace.shards) {
    const std::string r = call_group_and_wait(
        ReplicaGroups::group_id(keyspace.spec.name, shard.id.value()), shard.owners,
        {std::string(kGroupFenceVerb), std::to_string(shard.config_epoch), std::string(prefix)});
    const auto n =
        r.size() > 3 && r[0] == ':' ? server::parse_int64(r.substr(1, r.size() - 3)) : std::nullopt;
    if (!n || *n < 0) {
      return Status::Unavailable(fmt::format("shard {} of keyspace '{}' was not fenced: {}",
                                             shard.id.value(), keyspace.spec.name,
                                             r.substr(0, r.find('\r'))));
    }
    records += static_cast<uint64_t>(*n);
  }
  return records;
}

void Coordinator::watch_creations(const meta::ClusterMap& map) {
  std::lock_guard<std::mutex> lock(creations_mu_);
  std::map<std::string, SeenCreation> now;
  for (const meta::Keyspace& k : map.keyspaces) {
    if (!k.creating || k.shards.empty()) continue;
    const uint64_t began = k.shards.front().config_epoch;
    auto it = creations_.find(k.spec.name);
    now[k.spec.name] = it != creations_.end() && it->second.began == began
                           ? it->second
                           : SeenCreation{began, Clock::now()};
  }
  creations_.swap(now);
}

void Coordinator::abandon_stalled_creations() {
  std::unique_lock<std::mutex> lock(creations_mu_);
  while (!creations_stop_) {
    creations_cv_.wait_for(lock, 500ms);
    std::vector<std::pair<std::string, uint64_t>> stalled;
    for (const auto& [name, seen] : creations_) {
      if (Clock::now() - seen.seen >= options_.creation_limit)
        stalled.emplace_back(name, seen.began);
    }
    if (stalled.empty() || creations_stop_) continue;
    lock.unlock();
    auto t = table();
    if (t) {
      node::RaftRegisterClient client(node::member_endpoints(t->map()), options_.secret, 5000ms);
      for (const auto& [name, began] : stalled) {
        // Every node that saw it stall tries; the map takes the first, and
        // the others find nothing left to abandon.
        auto dropped =
            meta::update(client, [&](const meta::ClusterMap& m) -> Result<meta::ClusterMap> {
              const meta::Keyspace* k = m.find_keyspace(name);
              if (k == nullptr || !k->creating || k->shards.empty() ||
                  k->shards.front().config_epoch != began) {
                return Status::Aborted("no longer being created");
              }
              return meta::drop_keyspace(m, name);
            });
        if (dropped.ok()) {
          spdlog::warn(
              "keyspace '{}': still being created {} ms after this node saw its creation begin "
              "(its driver stopped half-way): abandoned, its prefix served where it was",
              name, options_.creation_limit.count());
        } else if (dropped.status().code() != Status::Code::kAborted) {
          spdlog::warn("keyspace '{}': abandoning a stalled creation failed: {}", name,
                       dropped.status().message());
        }
      }
    }
    lock.lock();
    // Tried: the next map says what became of them; a failed try comes again
    // after another limit.
    for (const auto& [name, began] : stalled) {
      auto it = creations_.find(name);
      if (it != creations_.end() && it->second.began == began) it->second.seen = Clock::now();
    }
  }
}

Result<std::string> Coordinator::migrate_on(const meta::Member& node, uint64_t epoch,
                                            std::vector<std::string> argv) {
  if (node.id == options_.self) return mover_->handle(argv);
  net::ForwardFrame frame;
  frame.epoch = epoch;
  frame.argv = {"__migrate"};
  frame.argv.insert(frame.argv.end(), argv.begin(), argv.end());
  auto reply = forwarder_.call(node.id, node.peer_address, std::move(frame));
  if (!reply.ok()) {
    const std::string what =
        "node " + std::to_string(node.id.value()) + ": " + reply.status().message();
    return reply.status().is_invalid_argument() ? Status::InvalidArgument(what)
                                                : Status::Unavailable(what);
  }
  std::string text = std::move(reply).value();
  if (text.size() >= 3 && text[0] == '+') return text.substr(1, text.size() - 3);
  return Status::Internal("node " + std::to_string(node.id.value()) + ": " +
                          text.substr(0, text.find('\r')));
}

Status Coordinator::wait_until_idle(const std::vector<meta::Member>& nodes, uint64_t epoch) {
  const auto deadline = Clock::now() + kCleanupLimit;
  for (const meta::Member& n : nodes) {
    while (true) {
      auto r = migrate_on(n, epoch, {"status"});
      if (!r.ok()) return r.status();
      if (r->rfind("idle", 0) == 0) break;
      if (Clock::now() > deadline) {
        return Status::Timeout("node " + std::to_string(n.id.value()) +
                               " is still cleaning up: " + *r);
      }
      std::this_thread::sleep_for(10ms);
    }
  }
  return Status::OK();
}

Result<uint64_t> Coordinator::count_keys_of(std::string_view keyspace, std::string_view prefix) {
  server::KeyPageRequest request;
  request.pattern = prefix_pattern(prefix);
  auto merged = scan_cluster(request);
  if (!merged.ok()) return merged.status();
  auto t = table();
  uint64_t n = 0;
  for (const std::string& key : merged->keys) n += t->keyspace_of(key).spec.name == keyspace;
  return n;
}

void Coordinator::create_keyspace(meta::KeyspaceSpec spec, meta::RegisterClient& client,
                                  resp::Writer& out) {
  const auto refuse = [&](const Status& s) { out.error(routing_error(s)); };
  auto current = meta::fetch(client);
  if (!current.ok()) return refuse(current.status());
  const meta::Keyspace* from = meta::prefix_owner(*current, spec.key_prefix, spec.name);
  if (from != nullptr && (replicated(*from) || replicated(spec))) {
    // Keys do not move into or out of replica groups yet: such a keyspace
    // is created only over no keys. A single copy's are counted once here
    // for a quick answer; the count that decides comes once no key can
    // reach the prefix in the keyspace that held it (finish_creating).
    if (!replicated(*from)) {
      auto n = count_keys_of(from->spec.name, spec.key_prefix);
      if (!n.ok()) return refuse(n.status());
      if (*n > 0) return refuse(strands_keys(spec.name, *n, spec.key_prefix, from->spec.name));
    }
    auto begun = meta::update(client, [&](const meta::ClusterMap& m) -> Result<meta::ClusterMap> {
      auto next = partition::create_placed_keyspace(m, spec);
      if (!next.ok()) return next.status();
      if (Status s = meta::begin_create(*next, spec.name); !s.ok()) return s;
      return next;
    });
    if (!begun.ok()) return refuse(begun.status());
    if (Status s = finish_creating(*begun, spec.name, client); !s.ok()) return refuse(s);
    out.simple("OK");
    return;
  }

  // 1. The keyspace, with the keys moving in from the one that holds them:
  //    they stay served there until the move ends.
  auto begun = meta::update(client, [&](const meta::ClusterMap& m) -> Result<meta::ClusterMap> {
    auto next = partition::create_placed_keyspace(m, spec);
    if (!next.ok()) return next.status();
    if (Status s = meta::begin_adopt(*next, spec.name); !s.ok()) return s;
    if (Status s = meta::validate(*next); !s.ok()) return s;
    return next;
  });
  if (!begun.ok()) return refuse(begun.status());
  if (Status s = move_keys_in(*begun, spec.name, client); !s.ok()) return refuse(s);
  out.simple("OK");
}

Status Coordinator::move_keys_in(const meta::ClusterMap& begun, const std::string& name,
                                 meta::RegisterClient& client) {
  const meta::Keyspace* k = begun.find_keyspace(name);
  if (k == nullptr || !k->moving_from || k->moving_from->from_keyspace.empty()) {
    return Status::InvalidArgument("keyspace '" + name + "' is not taking over keys");
  }
  const std::string from = k->moving_from->from_keyspace;
  const uint64_t epoch = begun.epoch.value();
  const std::vector<meta::Member> nodes = data_members(begun);
  const std::string at = std::to_string(epoch);

  // Any failure: the keyspace goes again, the keys stay where they were.
  const auto abandon = [&](const Status& why) {
    auto aborted =
        meta::update(client, [&](const meta::ClusterMap& m) { return meta::abort_move(m, name); });
    if (!aborted.ok()) {
      return Status::Unavailable(fmt::format(
          "keyspace '{}': moving its keys in failed ({}), and abandoning it too ({}): nodes "
          "abandon it themselves within 30 s",
          name, why.message(), aborted.status().message()));
    }
    (void)wait_until_idle(nodes, aborted->epoch.value());
    wait_for_epoch(aborted->epoch.value());
    return Status::InvalidArgument(
        fmt::format("keyspace '{}' not created: moving its keys in from keyspace '{}' failed: {}",
                    name, from, why.message()));
  };

  // 2. Prepare everywhere before anyone copies; then copy.
  for (const char* verb : {"prepare", "copy"}) {
    for (const meta::Member& n : nodes) {
      auto r = migrate_on(n, epoch, {verb, name, at});
      if (!r.ok()) return abandon(r.status());
    }
  }
  const auto deadline = Clock::now() + kCopyLimit;
  while (true) {
    size_t copied = 0;
    for (const meta::Member& n : nodes) {
      auto r = migrate_on(n, epoch, {"status"});
      if (!r.ok()) return abandon(r.status());
      if (r->rfind("failed", 0) == 0) {
        // "failed MOVED TOTAL reason"
        std::string reason = *r;
        for (int field = 0; field < 3 && reason.find(' ') != std::string::npos; ++field) {
          reason = reason.substr(reason.find(' ') + 1);
        }
        return abandon(Status::Internal("node " + std::to_string(n.id.value()) + ": " + reason));
      }
      copied += r->rfind("copied", 0) == 0;
    }
    if (copied == nodes.size()) break;
    if (Clock::now() > deadline) return abandon(Status::Timeout("the copy took too long"));
    std::this_thread::sleep_for(5ms);
  }
  // 3. Freeze everywhere (each node sends what was written meanwhile), then
  //    finish in the map; each node thaws when it applies that map and drops
  //    the copies it no longer serves.
  for (const meta::Member& n : nodes) {
    auto r = migrate_on(n, epoch, {"freeze", name, at});
    if (!r.ok()) return abandon(r.status());
  }
  auto finished =
      meta::update(client, [&](const meta::ClusterMap& m) { return meta::finish_move(m, name); });
  if (!finished.ok()) return abandon(finished.status());
  // Counts (DBSIZE) are exact once every node cleaned up.
  if (Status s = wait_until_idle(nodes, finished->epoch.value()); !s.ok()) {
    spdlog::warn("keyspace '{}' created; {}", name, s.message());
  }
  wait_for_epoch(finished->epoch.value());
  return Status::OK();
}

Result<std::string> Coordinator::adopt_verb(const std::vector<std::string>& argv) {
  if (argv.size() == 4 && argv[1] == "count") {
    auto n = count_keys_of(argv[2], argv[3]);
    if (!n.ok()) return n.status();
    return ":" + std::to_string(*n) + "\r\n";
  }
  if (argv.size() != 3 || (argv[1] != "adopt" && argv[1] != "create")) {
    return Status::InvalidArgument(
        "usage: __keyspace adopt KEYSPACE | create KEYSPACE | count KEYSPACE PREFIX");
  }
  auto t = table();
  if (!t) return Status::Unavailable("the cluster map is not known yet");
  node::RaftRegisterClient client(node::member_endpoints(t->map()), options_.secret, 5000ms);
  auto current = meta::fetch(client);
  if (!current.ok()) return current.status();
  if (argv[1] == "create") {
    if (Status s = finish_creating(*current, argv[2], client); !s.ok()) return s;
    return std::string("+OK\r\n");
  }
  if (Status s = move_keys_in(*current, argv[2], client); !s.ok()) return s;
  return std::string("+OK\r\n");
}

void Coordinator::drop_keyspace(const std::string& name, meta::RegisterClient& client,
                                resp::Writer& out) {
  const auto refuse = [&](const Status& s) { out.error(routing_error(s)); };
  // 1. Commands on the keyspace's keys wait (single copy: at each owner's
  //    gate, once the drop verb closed it) or are refused (consensus).
  auto begun =
      meta::update(client, [&](const meta::ClusterMap& m) { return meta::begin_drop(m, name); });
  if (!begun.ok()) return refuse(begun.status());
  const uint64_t epoch = begun->epoch.value();
  const std::vector<meta::Member> nodes = data_members(*begun);
  const meta::Keyspace& k = *begun->find_keyspace(name);
  const auto abandon = [&](const Status& why) {
    auto aborted =
        meta::update(client, [&](const meta::ClusterMap& m) { return meta::abort_drop(m, name); });
    if (aborted.ok()) {
      (void)wait_until_idle(nodes, aborted->epoch.value());
      wait_for_epoch(aborted->epoch.value());
    }
    out.error(fmt::format("CLUSTERDOWN keyspace '{}' not dropped: {}{}", name, why.message(),
                          aborted.ok()
                              ? " (some of its keys may be deleted; run DROP again)"
                              : "; abandoning the drop failed too: " + aborted.status().message()));
  };

  // 2. Delete its keys everywhere.
  uint64_t deleted = 0;
  if (replicated(k)) {
    // Each replica group erases its records through its log (commands on
    // them are refused from this epoch on). Each is fenced first: a command
    // routed by an older map (one that does not know of the drop) could
    // otherwise land after the flush, acknowledged, and go with the group.
    // The fences count the groups' records (exact, on their leaders).
    wait_for_epoch(epoch);
    auto n = fence_groups(k, "");
    if (!n.ok()) return abandon(n.status());
    deleted = *n;
    for (const meta::Shard& shard : k.shards) {
      const std::string r = call_group_and_wait(ReplicaGroups::group_id(name, shard.id.value()),
                                                shard.owners, {std::string(kFlushGroupVerb)});
      if (r != "+OK\r\n") {
        return abandon(Status::Unavailable(fmt::format(
            "shard {} was not emptied: {}", shard.id.value(), r.substr(0, r.find('\r')))));
      }
    }
  }
  // Every node deletes what it holds of the keyspace (a consensus group's
  // member too: it may not have applied the flush yet when its group stops).
  const std::string at = std::to_string(epoch);
  for (const meta::Member& n : nodes) {
    auto r = migrate_on(n, epoch, {"drop", name, at});
    if (!r.ok()) return abandon(r.status());
    if (!replicated(k)) deleted += std::strtoull(r->c_str(), nullptr, 10);
  }
  // 3. The keyspace leaves the map; each node reopens its gate when it
  //    applies that map, and the waiting commands route by it.
  auto dropped =
      meta::update(client, [&](const meta::ClusterMap& m) { return meta::drop_keyspace(m, name); });
  if (!dropped.ok()) return abandon(dropped.status());
  if (Status s = wait_until_idle(nodes, dropped->epoch.value()); !s.ok()) {
    spdlog::warn("keyspace '{}' dropped; {}", name, s.message());
  }
  wait_for_epoch(dropped->epoch.value());
  out.integer(static_cast<int64_t>(deleted));
}

}  // namespace statekv::coord
