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

Status Mover::send_key(const std::string& key, const RoutingTable& table) {
  const Route r = table.route(key);
  if (!r.moving() || r.primary() != self_) return Status::OK();
  const resp::Value value = parse(hooks_.run_local({"GET", key}));
  const resp::Value ttl = parse(hooks_.run_local({"PTTL", key}));
  std::vector<std::string> argv;
  if (value.type == resp::Value::Type::kBulk) {
    argv = {"SET", key, value.str};
    if (ttl.type == resp::Value::Type::kInteger && ttl.integer > 0) {
      argv.push_back("PX");
      argv.push_back(std::to_string(ttl.integer));
    }
  } else if (value.type == resp::Value::Type::kNull) {
    argv = {"DEL", key};
  } else {
    return Status::Internal("cannot read '" + key + "' to move it: " + value.str);
  }
  auto reply = hooks_.import_to(r.target_primary(), std::move(argv), table);
  if (!reply.ok()) return reply.status();
  if (!reply->empty() && (*reply)[0] == '-') {
    return Status::Internal("node " + std::to_string(r.target_primary().value()) +
                            " refused '" + key + "': " + reply->substr(1));
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
    state_ = State::kFrozen;
    frozen_at_ = std::chrono::steady_clock::now();
    if (watchdog_.joinable()) watchdog_.join();
    watchdog_ = std::thread([this, keyspace] {
      // Nobody finishes the move: abandon it through the map, so keys stay
      // where they are and the gate can open again.
      while (!stopping_) {
        std::this_thread::sleep_for(100ms);
        std::lock_guard<std::mutex> lock(mu_);
        if (state_ != State::kFrozen) return;
        if (std::chrono::steady_clock::now() - frozen_at_ > kFreezeLimit) break;
      }
      if (stopping_) return;
      spdlog::warn("moving keyspace '{}': frozen for {} s without an end; abandoning it", keyspace,
                   kFreezeLimit.count());
      Status s = hooks_.abort_move(keyspace);
      if (!s.ok()) spdlog::warn("abandoning the move: {}", s.to_string());
    });
    return std::string("frozen");
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

void Mover::on_table(const RoutingTable& table) {
  std::string keyspace;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (state_ == State::kIdle || state_ == State::kCleaning || table.epoch().value() <= epoch_) {
      return;
    }
    const meta::Keyspace* k = table.map().find_keyspace(keyspace_);
    if (k != nullptr && k->moving_from) return;  // still moving
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
  size_t dropped = 0;
  for (const std::string& key : table ? local_keys() : std::vector<std::string>{}) {
    const Route r = table->route(key);
    if (r.keyspace->spec.name == keyspace && !r.moving() && r.primary() != self_) {
      hooks_.run_local({"DEL", key});
      ++dropped;
    }
  }
  spdlog::info("moving keyspace '{}' done: dropped {} keys served elsewhere now", keyspace, dropped);
  std::lock_guard<std::mutex> lock(mu_);
  if (state_ == State::kCleaning) state_ = State::kIdle;
}

}  // namespace statekv::coord
