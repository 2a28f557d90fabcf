// CommandTable — every command statekv knows, looked up by name in any case.
//
// Built once at startup and immutable afterwards, so lookups from many I/O
// threads need no lock. Lookup lowercases the name into a stack buffer and
// probes a hash map keyed by string_view: no allocation per request.
#pragma once

#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/command.h"

namespace statekv::server {

class CommandTable {
 public:
  CommandTable();
  CommandTable(const CommandTable&) = delete;
  CommandTable& operator=(const CommandTable&) = delete;

  // The command named name (any case), or nullptr.
  const CommandSpec* find(std::string_view name) const;
  // The subcommand of container named name (any case), or nullptr.
  static const CommandSpec* find_sub(const CommandSpec& container, std::string_view name);

  const std::vector<CommandSpec>& all() const { return specs_; }

 private:
  std::vector<CommandSpec> specs_;
  std::unordered_map<std::string_view, const CommandSpec*> by_name_;
};

}  // namespace statekv::server
