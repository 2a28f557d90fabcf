#include "server/command_table.h"

#include <cctype>
#include <charconv>

#include "core/assert.h"

namespace statekv::server {

std::vector<size_t> key_positions(const CommandSpec& spec, std::span<const std::string_view> argv) {
  std::vector<size_t> out;
  if (spec.first_key > 0 && spec.key_step > 0) {
    const int argc = static_cast<int>(argv.size());
    const int last = spec.last_key < 0 ? argc + spec.last_key : spec.last_key;
    for (int i = spec.first_key; i <= last && i < argc; i += spec.key_step) {
      out.push_back(static_cast<size_t>(i));
    }
  }
  const size_t at = static_cast<size_t>(spec.numkeys_index);
  if (at > 0 && argv.size() > at + 1) {
    // numkeys key ...: keys that move with numkeys (Redis's movablekeys).
    uint64_t n = 0;
    const std::string_view text = argv[at];
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size() || n == 0 ||
        n > argv.size() - at - 1) {
      return out;
    }
    for (size_t i = at + 1; i <= at + n; ++i) out.push_back(i);
  }
  return out;
}

namespace {

// Longer names cannot be commands; the lowercase copy lives on the stack.
constexpr size_t kMaxNameLen = 64;

bool lower_into(std::string_view name, char* buf) {
  if (name.size() > kMaxNameLen) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    buf[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
  }
  return true;
}

}  // namespace

CommandTable::CommandTable() {
  add_string_commands(specs_);
  add_key_commands(specs_);
  add_connection_commands(specs_);
  add_server_commands(specs_);
  add_cluster_commands(specs_);
  add_pubsub_commands(specs_);
  add_consistency_commands(specs_);
  add_hash_commands(specs_);
  add_set_commands(specs_);
  add_zset_commands(specs_);
  add_zset_store_commands(specs_);
  add_list_commands(specs_);
  add_transaction_commands(specs_);
  add_acl_commands(specs_);
  add_blocking_commands(specs_);
  by_name_.reserve(specs_.size() * 2);
  for (const CommandSpec& spec : specs_) {
    SKV_ASSERT(spec.name.size() <= kMaxNameLen, "command name too long");
    bool inserted = by_name_.emplace(spec.name, &spec).second;
    SKV_ASSERT(inserted, "duplicate command name");
  }
}

const CommandSpec* CommandTable::find(std::string_view name) const {
  char buf[kMaxNameLen];
  if (!lower_into(name, buf)) return nullptr;
  auto it = by_name_.find(std::string_view(buf, name.size()));
  return it == by_name_.end() ? nullptr : it->second;
}

const CommandSpec* CommandTable::find_sub(const CommandSpec& container, std::string_view name) {
  char buf[kMaxNameLen];
  if (!lower_into(name, buf)) return nullptr;
  std::string_view lower(buf, name.size());
  for (const CommandSpec& sub : container.subcommands) {
    if (sub.name == lower) return &sub;
  }
  return nullptr;
}

}  // namespace statekv::server
