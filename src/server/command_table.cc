#include "server/command_table.h"

#include <cctype>

#include "core/assert.h"

namespace statekv::server {
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
  add_acl_commands(specs_);
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
