#include "server/command_table.h"

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

// Lowercases name into buf (ASCII only, as Redis's strcasecmp of command names:
// std::tolower is a call per byte, 0.9% of a -P 16 HSET's server CPU, and would
// follow the locale) and returns the FNV-1a hash of the lowercase bytes, in one
// pass. The caller checked the length.
uint64_t lower_and_hash(std::string_view name, char* buf) {
  uint64_t hash = 14695981039346656037ull;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    buf[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
    hash = (hash ^ static_cast<unsigned char>(buf[i])) * 1099511628211ull;
  }
  return hash;
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
  // A quarter full at most: a probe rarely passes more than one other name.
  slots_.assign(std::bit_ceil(specs_.size() * 4), nullptr);
  mask_ = slots_.size() - 1;
  for (const CommandSpec& spec : specs_) {
    SKV_ASSERT(spec.name.size() <= kMaxNameLen, "command name too long");
    char buf[kMaxNameLen];
    const uint64_t hash = lower_and_hash(spec.name, buf);
    SKV_ASSERT(std::string_view(buf, spec.name.size()) == spec.name, "command names are lowercase");
    size_t i = hash & mask_;
    while (slots_[i] != nullptr) {
      SKV_ASSERT(slots_[i]->name != spec.name, "duplicate command name");
      i = (i + 1) & mask_;
    }
    slots_[i] = &spec;
  }
}

const CommandSpec* CommandTable::find(std::string_view name) const {
  if (name.size() > kMaxNameLen) return nullptr;
  char buf[kMaxNameLen];
  const uint64_t hash = lower_and_hash(name, buf);
  const std::string_view lower(buf, name.size());
  for (size_t i = hash & mask_; slots_[i] != nullptr; i = (i + 1) & mask_) {
    if (slots_[i]->name == lower) return slots_[i];
  }
  return nullptr;
}

const CommandSpec* CommandTable::find_sub(const CommandSpec& container, std::string_view name) {
  if (name.size() > kMaxNameLen) return nullptr;
  char buf[kMaxNameLen];
  lower_and_hash(name, buf);
  std::string_view lower(buf, name.size());
  for (const CommandSpec& sub : container.subcommands) {
    if (sub.name == lower) return &sub;
  }
  return nullptr;
}

}  // namespace statekv::server
