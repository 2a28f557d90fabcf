// COMMAND INFO and COMMAND DOCS replies, built from the CommandSpec table.
//
// Arguments are written in CommandSpec::args in a small grammar close to the
// one in Redis's documentation, and parsed here into Redis's argument tree
// (name, type, token, flags, nested arguments) for COMMAND DOCS, which redis-cli
// 7 reads for its hints:
//   name:type            an argument ("key:key", "seconds:integer")
//   TOKEN=name:type      an argument introduced by a token ("COUNT=count:integer")
//   WORD                 a pure token ("NX"); its name is the lowercase word
//   x...                 may repeat (also after a group: "(data: k:key v:string)...")
//   [ ... ]  ( ... )     an optional / required group; "[name: a | b]" names it;
//                        alternatives separated by '|' make a "oneof", several
//                        arguments in one alternative make a "block".
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "resp/writer.h"
#include "server/command.h"

namespace statekv::server {

struct DocArg {
  std::string name;
  std::string type;   // key string integer double pattern unix-time pure-token oneof block
  std::string token;  // empty: none
  bool optional = false;
  bool multiple = false;
  std::vector<DocArg> args;  // oneof / block
};

// Parses a CommandSpec::args grammar; false (with *error) when malformed.
bool parse_doc_args(std::string_view text, std::vector<DocArg>* out, std::string* error);

// One entry of COMMAND / COMMAND INFO (Redis 7.0's 10-element array).
// parent is the container for a subcommand, else nullptr.
void write_command_info(resp::Writer& out, const CommandSpec& spec, const CommandSpec* parent);
// The docs map of one command (the value of COMMAND DOCS's name -> docs map).
void write_command_docs(resp::Writer& out, const CommandSpec& spec, const CommandSpec* parent);

}  // namespace statekv::server
