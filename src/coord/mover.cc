#include "coord/mover.h"

#include <spdlog/spdlog.h>

#include "resp/value.h"

namespace statekv::coord {

using namespace std::chrono_literals;

// ------------------------------------------------------------------ Gate

void Gate::enter() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return !frozen_; });
  ++inside_;
}

void Gate::leave() {
  std::lock_guard<std::mutex> lock(mu_);
  --inside_;
  cv_.notify_all();
}

void Gate::freeze() {
  std::unique_lock<std::mutex> lock(mu_);
  frozen_ = true;
  cv_.wait(lock, [this] { return inside_ == 0; });
}

void Gate::thaw() {
  std::lock_guard<std::mutex> lock(mu_);
  frozen_ = false;
  cv_.notify_all();
}

bool Gate::frozen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return frozen_;
}

// ------------------------------------------------------------------ Mover

namespace {

resp::Value parse(const std::string& reply) {
  resp::Value v;
  if (resp::parse_value(reply, v).status != resp::ParseStatus::kComplete) {
    v.type = resp::Value::Type::kError;
    v.str = "unreadable reply";
  }
  return v;
}

constexpr auto kFreezeLimit = 30s;

}  // namespace

Mover::Mover(NodeId self, Hooks hooks) : self_(self), hooks_(std::move(hooks)) {}

Mover::~Mover() {
  stopping_ = true;
  stop_worker();
  gate_.thaw();
}

void Mover::stop_worker() {
  if (worker_.joinable()) worker_.join();
  if (watchdog_.joinable()) watchdog_.join();
}

std::vector<std::string> Mover::local_keys() {
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    resp::Value v = parse(hooks_.run_local({"SCAN", cursor, "COUNT", "1000"}));
    if (v.type == resp::Value::Type::kError || v.elements.size() != 2) break;
    cursor = v.elements[0].str;
    for (resp::Value& k : v.elements[1].elements) keys.push_back(std::move(k.str));
  } while (cursor != "0" && !stopping_);
  return keys;
}

namespace {

// Commands that rebuild `key` as it is in this node's store (run_local), for
// its new owner: its absence is a DEL; a string one SET; a hash, set, list or
// sorted set a DEL and then its elements in batches (the new owner does not
// serve the key before the move ends, so it never shows a half-built one);
// then its TTL. Read with the type's commands, not record bytes, so the
// receiver rebuilds it in whatever layout it uses (docs/data-types.md).
Result<std::vector<std::vector<std::string>>> copy_commands(
    const std::string& key, const std::function<std::string(std::vector<std::string>)>& run) {
  constexpr size_t kBatch = 512;  // elements per command
  const resp::Value type = parse(run({"TYPE", key}));
  if (type.type == resp::Value::Type::kError) {
    return Status::Internal("cannot read '" + key + "' to move it: " + type.str);
  }
  std::vector<std::vector<std::string>> out;
  if (type.str == "none") {
    out.push_back({"DEL", key});
    return out;
  }
  struct Reader {
    const char* type;
    const char* read;
    std::vector<std::string> args;  // of the read, after the key
    const char* write;
    size_t step;      // strings per element in the read's reply
    bool swap_pairs;  // ZRANGE gives member, score; ZADD takes score, member
  };
  static const Reader kReaders[] = {
      {"string", "GET", {}, "SET", 1, false},
      {"hash", "HGETALL", {}, "HSET", 2, false},
      {"set", "SMEMBERS", {}, "SADD", 1, false},
      {"list", "LRANGE", {"0", "-1"}, "RPUSH", 1, false},
      {"zset", "ZRANGE", {"0", "-1", "WITHSCORES"}, "ZADD", 2, true},
  };
  const Reader* reader = nullptr;
  for (const Reader& r : kReaders) {
    if (type.str == r.type) reader = &r;
  }
  if (reader == nullptr) {
    return Status::Internal("cannot move '" + key + "': its type '" + type.str +
                            "' has no copy (strings, hashes, sets, lists and sorted sets move)");
  }
  const std::string name = reader->write;
  std::vector<std::string> read = {reader->read, key};
  read.insert(read.end(), reader->args.begin(), reader->args.end());
  const resp::Value value = parse(run(std::move(read)));
  const resp::Value ttl = parse(run({"PTTL", key}));
  if (value.type == resp::Value::Type::kNull ||
      (value.type == resp::Value::Type::kArray && value.elements.empty())) {
    out.push_back({"DEL", key});  // gone since TYPE
    return out;
  }
  if (value.type == resp::Value::Type::kError) {
    // Its type changed since TYPE: the write that changed it marked the key
    // dirty, so it is sent again.
    return Status::Internal("cannot read '" + key + "' to move it: " + value.str);
  }
  if (name == "SET") {
    if (value.type != resp::Value::Type::kBulk) {
      return Status::Internal("cannot read '" + key + "' to move it: not a bulk string");
    }
    out.push_back({"SET", key, value.str});
  } else {
    out.push_back({"DEL", key});
    const size_t step = reader->step;
    for (size_t i = 0; i < value.elements.size(); i += kBatch * step) {
      std::vector<std::string> cmd = {name, key};
      for (size_t j = i; j < std::min(value.elements.size(), i + kBatch * step); j += step) {
        if (reader->swap_pairs && j + 1 < value.elements.size()) {
          cmd.push_back(value.elements[j + 1].str);
          cmd.push_back(value.elements[j].str);
        } else {
          for (size_t e = j; e < j + step && e < value.elements.size(); ++e) {
            cmd.push_back(value.elements[e].str);
          }
        }
      }
      out.push_back(std::move(cmd));
    }
  }
  if (ttl.type == resp::Value::Type::kInteger && ttl.integer > 0) {
    out.push_back({"PEXPIRE", key, std::to_string(ttl.integer)});
  }
  return out;
}

}  // namespace

Status Mover::send_key(const std::string& key, const RoutingTable& table) {
  const Route r = table.route(key);
  if (!r.moving() || r.primary() != self_) return Status::OK();
  // A write between the reads (the type changed) fails one; it marked the
  // key dirty too, but a second read usually settles it now.
  auto commands = copy_commands(key, hooks_.run_local);
  for (int attempt = 1; !commands.ok() && attempt < 3; ++attempt) {
    commands = copy_commands(key, hooks_.run_local);
  }
  if (!commands.ok()) return commands.status();
  for (std::vector<std::string>& argv : *commands) {
    auto reply = hooks_.import_to(r.target_primary(), std::move(argv), table);
    if (!reply.ok()) return reply.status();
    if (!reply->empty() && (*reply)[0] == '-') {
      return Status::Internal("node " + std::to_string(r.target_primary().value()) + " refused '" +
                              key + "': " + reply->substr(1));
    }
  }
  return Status::OK();
}

Status Mover::drain_dirty(const RoutingTable& table) {
  while (true) {
    std::set<std::string> batch;
    {
      std::lock_guard<std::mutex> lock(mu_);
      batch.swap(dirty_);
    }
    if (batch.empty()) return Status::OK();
    for (const std::string& key : batch) {
      if (Status s = send_key(key, table); !s.ok()) return s;
    }
  }
}

void Mover::copy_loop(std::string keyspace, uint64_t epoch) {
  auto table = hooks_.wait_for_epoch(epoch);
  Status status;
  uint64_t total = 0;
  std::vector<std::string> moving;
  for (std::string& key : local_keys()) {
    const Route r = table->route(key);
    if (r.keyspace->spec.name == keyspace && r.moving() && r.primary() == self_) {
      moving.push_back(std::move(key));
      ++total;
    }
  }
  total_ = total;
  for (const std::string& key : moving) {
    if (stopping_) return;
    status = send_key(key, *table);
    if (!status.ok()) break;
    ++moved_;
  }
  if (status.ok()) status = drain_dirty(*table);
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ != State::kCopying) return;  // aborted meanwhile
  if (status.ok()) {
    state_ = State::kCopied;
  } else {
    state_ = State::kFailed;
    error_ = status.message();
    spdlog::warn("moving keyspace '{}': {}", keyspace, error_);
  }
}

void Mover::note_write(std::string_view key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kCopying || state_ == State::kCopied || state_ == State::kPrepared) {
    dirty_.emplace(key);
  }
}

Result<std::string> Mover::handle(const std::vector<std::string>& argv) {
  if (argv.empty()) return Status::InvalidArgument("__migrate needs a verb");
  const std::string& verb = argv[0];
  if (verb == "status") {
    std::lock_guard<std::mutex> lock(mu_);
    static constexpr const char* kNames[] = {"idle",   "prepared", "copying", "copied",
                                             "frozen", "failed",   "cleaning"};
    return std::string(kNames[static_cast<int>(state_)]) + " " + std::to_string(moved_.load()) +
           " " + std::to_string(total_.load()) + (error_.empty() ? "" : " " + error_);
  }
  if (argv.size() != 3) return Status::InvalidArgument("usage: __migrate VERB KEYSPACE EPOCH");
  const std::string& keyspace = argv[1];
  const uint64_t epoch = std::strtoull(argv[2].c_str(), nullptr, 10);
  auto table = hooks_.wait_for_epoch(epoch);
  if (!table || table->epoch().value() < epoch) {
    return Status::Unavailable("node has not seen map epoch " + argv[2] + " yet");
  }
  const meta::Keyspace* k = table->map().find_keyspace(keyspace);

  if (verb == "prepare") {
    if (k == nullptr || !k->moving_from) {
      return Status::InvalidArgument("keyspace '" + keyspace + "' is not moving");
    }
    stop_worker();
    // Stale copies of keys about to arrive, from an abandoned move, must not
    // survive: the copy sends what the source has, deletions included only
    // for keys written during the copy.
    for (const std::string& key : local_keys()) {
      const Route r = table->route(key);
      if (r.keyspace->spec.name == keyspace && r.moving() && r.target_primary() == self_ &&
          r.primary() != self_) {
        hooks_.run_local({"DEL", key});
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    state_ = State::kPrepared;
    keyspace_ = keyspace;
    epoch_ = epoch;
    move_table_ = table;
    dirty_.clear();
    total_ = 0;
    moved_ = 0;
    error_.clear();
    return std::string("prepared");
  }
  if (verb == "copy") {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (state_ != State::kPrepared || keyspace_ != keyspace) {
        return Status::InvalidArgument("copy before prepare");
      }
      state_ = State::kCopying;
    }
    stop_worker();
    worker_ = std::thread([this, keyspace, epoch] { copy_loop(keyspace, epoch); });
    return std::string("copying");
  }
  if (verb == "freeze") {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (state_ != State::kCopied || keyspace_ != keyspace) {
        return Status::InvalidArgument("freeze before the copy finished (state: " +
                                       std::to_string(static_cast<int>(state_)) + ")");
      }
    }
    gate_.freeze();
    // Nothing runs on a moving key now: what is dirty is all there is.
    Status drained = drain_dirty(*table);
    std::lock_guard<std::mutex> lock(mu_);
    if (!drained.ok()) {
      gate_.thaw();
      state_ = State::kFailed;
      error_ = drained.message();
      return drained;
    }
    start_watchdog(keyspace);
    return std::string("frozen");
  }
  if (verb == "drop") {
    if (k == nullptr || !k->dropping) {
      return Status::InvalidArgument("keyspace '" + keyspace + "' is not being dropped");
    }
    const auto busy = [&] {
      return Status::InvalidArgument("node " + std::to_string(self_.value()) +
                                     " is still busy with keyspace '" + keyspace_ + "'");
    };
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (state_ != State::kIdle && state_ != State::kCleaning) return busy();
    }
    stop_worker();  // a clean-up of an earlier move ends first
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (state_ != State::kIdle) return busy();
    }
    gate_.freeze();
    // Nothing runs on the keyspace's keys now (commands on them wait at the
    // gate until the map no longer has it): delete them all, stale copies
    // too; count the ones this node served.
    uint64_t served = 0;
    std::vector<std::string> mine = {"DEL"}, copies = {"DEL"};
    const auto flush = [&](std::vector<std::string>& del, bool count) {
      if (del.size() == 1) return;
      const resp::Value deleted = parse(hooks_.run_local(std::move(del)));
      if (count && deleted.type == resp::Value::Type::kInteger) {
        served += static_cast<uint64_t>(deleted.integer);
      }
      del = {"DEL"};
    };
    for (std::string& key : local_keys()) {
      const Route r = table->route(key);
      if (r.keyspace->spec.name != keyspace) continue;
      std::vector<std::string>& del = r.primary() == self_ ? mine : copies;
      del.push_back(std::move(key));
      if (del.size() > 512) flush(del, &del == &mine);
    }
    flush(mine, true);
    flush(copies, false);
    std::lock_guard<std::mutex> lock(mu_);
    // The drop may have ended (or been abandoned) while this node deleted:
    // then nothing reopens the gate later, so it opens now.
    auto newest = hooks_.table();
    const meta::Keyspace* now = newest ? newest->map().find_keyspace(keyspace) : nullptr;
    if (newest && newest->epoch().value() > epoch && (now == nullptr || !now->dropping)) {
      gate_.thaw();
      return std::to_string(served);
    }
    keyspace_ = keyspace;
    epoch_ = epoch;
    move_table_ = table;
    dirty_.clear();
    error_.clear();
    start_watchdog(keyspace);
    return std::to_string(served);
  }
  if (verb == "abort") {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = State::kIdle;
    dirty_.clear();
    gate_.thaw();
    return std::string("aborted");
  }
  return Status::InvalidArgument("unknown __migrate verb '" + verb + "'");
}

void Mover::start_watchdog(const std::string& keyspace) {
  state_ = State::kFrozen;
  frozen_at_ = std::chrono::steady_clock::now();
  if (watchdog_.joinable()) watchdog_.join();
  watchdog_ = std::thread([this, keyspace] {
    // Nobody finishes the move: abandon it (or, for a drop, finish it: its
    // keys are gone) through the map, so the gate can open again.
    while (!stopping_) {
      std::this_thread::sleep_for(100ms);
      std::lock_guard<std::mutex> lock(mu_);
      if (state_ != State::kFrozen) return;
      if (std::chrono::steady_clock::now() - frozen_at_ > kFreezeLimit) break;
    }
    if (stopping_) return;
    spdlog::warn("moving keyspace '{}': frozen for {} s without an end; ending it here", keyspace,
                 kFreezeLimit.count());
    Status s = hooks_.abort_move(keyspace);
    if (!s.ok()) spdlog::warn("ending the move: {}", s.to_string());
  });
}

void Mover::on_table(const RoutingTable& table) {
  std::string keyspace;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == State::kIdle || state_ == State::kCleaning || table.epoch().value() <= epoch_) {
      return;
    }
    const meta::Keyspace* k = table.map().find_keyspace(keyspace_);
    if (k != nullptr && (k->moving_from || k->dropping)) return;  // still moving
    // The move ended (finished or abandoned): serve again, by the new map.
    state_ = State::kCleaning;
    dirty_.clear();
    keyspace = keyspace_;
  }
  gate_.thaw();
  // Drop the keys this node no longer serves.
  stop_worker();
  worker_ = std::thread([this, keyspace] { cleanup(keyspace); });
}

void Mover::cleanup(std::string keyspace) {
  auto table = hooks_.table();
  std::shared_ptr<const RoutingTable> moved;
  {
    std::lock_guard<std::mutex> lock(mu_);
    moved = move_table_;
  }
  size_t dropped = 0;
  for (const std::string& key : (table && moved) ? local_keys() : std::vector<std::string>{}) {
    // A key of the keyspace as it was during the move (an abandoned new
    // keyspace is gone from the map now) that another node serves now.
    if (moved->route(key).keyspace->spec.name != keyspace) continue;
    const Route r = table->route(key);
    if (!r.moving() && r.primary() != self_) {
      hooks_.run_local({"DEL", key});
      ++dropped;
    }
  }
  spdlog::info("moving keyspace '{}' done: dropped {} keys served elsewhere now", keyspace, dropped);
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kCleaning) state_ = State::kIdle;
  move_table_.reset();
}

}  // namespace statekv::coord
