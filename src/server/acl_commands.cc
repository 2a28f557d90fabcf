// ACL: Redis 7.0's users and permissions (server/acl.h). On a cluster node
// the users are the cluster's: ACL SETUSER and ACL DELUSER go through the
// metadata service and hold on every node (docs/security.md); ACL LOG is
// this node's own, as in Redis Cluster.
#include <fmt/format.h>
#include <openssl/rand.h>

#include <algorithm>

#include "server/acl.h"
#include "server/command.h"
#include "server/command_table.h"
#include "server/number.h"

namespace statekv::server {
namespace {

// A change refused by the users themselves (a bad rule) carries its whole
// reply text; any other failure is the metadata service's.
void reply_change(CommandContext& c, const Status& s) {
  if (s.ok()) return c.out.simple("OK");
  if (s.is_invalid_argument()) return c.out.error(s.message());
  c.out.error("CLUSTERDOWN the cluster's users could not be changed: " + s.to_string());
}

void cmd_acl_setuser(CommandContext& c) {
  const std::string name(c.argv[2]);
  if (Status s = acl_check_username(name); !s.ok()) return c.out.error(s.message());
  std::vector<std::string> ops(c.argv.begin() + 3, c.argv.end());
  const AclCommands& commands = c.state.acl.commands();
  // Checked on this node's users first, so that a bad rule is answered
  // without a round trip; applied again to the cluster's current users.
  auto apply = [&](std::map<std::string, AclUser>& users) -> Status {
    auto it = users.find(name);
    AclUser user = it != users.end() ? it->second : acl_new_user(name, commands);
    for (const std::string& op : ops) {
      if (Status s = acl_apply(user, op, commands); !s.ok()) {
        return Status::InvalidArgument("ERR Error in ACL SETUSER modifier '" + op +
                                       "': " + s.message());
      }
    }
    users[name] = std::move(user);
    return Status::OK();
  };
  {
    auto snapshot = c.state.acl.snapshot();
    std::map<std::string, AclUser> users;
    for (const auto& [n, u] : snapshot->users) users.emplace(n, *u);
    if (Status s = apply(users); !s.ok()) return c.out.error(s.message());
  }
  reply_change(c, c.state.change_users(apply));
}

void cmd_acl_deluser(CommandContext& c) {
  std::vector<std::string> names(c.argv.begin() + 2, c.argv.end());
  for (const std::string& n : names) {
    if (n == "default") return c.out.error("ERR The 'default' user cannot be removed");
  }
  int64_t deleted = 0;
  Status s = c.state.change_users([&](std::map<std::string, AclUser>& users) {
    deleted = 0;
    for (const std::string& n : names) deleted += static_cast<int64_t>(users.erase(n));
    return Status::OK();
  });
  if (!s.ok()) return reply_change(c, s);
  c.out.integer(deleted);
}

void cmd_acl_getuser(CommandContext& c) {
  auto snapshot = c.state.acl.snapshot();
  const AclUser* u = snapshot->find(c.argv[2]);
  if (u == nullptr) return c.out.null();
  const AclCommands& commands = c.state.acl.commands();
  c.out.map(6);
  c.out.bulk("flags");
  const auto flags = acl_flags(*u);
  c.out.array(flags.size());
  for (const std::string& f : flags) c.out.bulk(f);
  c.out.bulk("passwords");
  c.out.array(u->passwords.size());
  for (const std::string& p : u->passwords) c.out.bulk(p);
  c.out.bulk("commands");
  c.out.bulk(acl_describe_commands(*u, commands));
  c.out.bulk("keys");
  c.out.bulk(acl_describe_keys(*u));
  c.out.bulk("channels");
  c.out.bulk(acl_describe_channels(*u));
  c.out.bulk("selectors");
  c.out.array(0);
}

void cmd_acl_list(CommandContext& c) {
  auto snapshot = c.state.acl.snapshot();
  c.out.array(snapshot->users.size());
  for (const auto& [name, user] : snapshot->users) {
    c.out.bulk("user " + name + " " + acl_describe(*user, c.state.acl.commands()));
  }
}

void cmd_acl_users(CommandContext& c) {
  auto snapshot = c.state.acl.snapshot();
  c.out.array(snapshot->users.size());
  for (const auto& [name, user] : snapshot->users) c.out.bulk(name);
}

void cmd_acl_whoami(CommandContext& c) {
  std::lock_guard lock(c.session.mu);
  c.out.bulk(c.session.user);
}

void cmd_acl_cat(CommandContext& c) {
  const auto& names = acl_category_names();
  if (c.argv.size() == 2) {
    c.out.array(names.size());
    for (std::string_view n : names) c.out.bulk(n);
    return;
  }
  std::string wanted(c.argv[2]);
  std::transform(wanted.begin(), wanted.end(), wanted.begin(), ::tolower);
  const uint32_t cat = acl_category_bit(wanted);
  if (cat == 0) return c.out.error("ERR Unknown category '" + std::string(c.argv[2]) + "'");
  std::vector<std::string_view> found;
  for (const AclCommands::Entry& e : c.state.acl.commands().entries()) {
    if (e.categories & cat) found.push_back(e.fullname);
  }
  c.out.array(found.size());
  for (std::string_view n : found) c.out.bulk(n);
}

void cmd_acl_dryrun(CommandContext& c) {
  auto snapshot = c.state.acl.snapshot();
  const AclUser* u = snapshot->find(c.argv[2]);
  if (u == nullptr) return c.out.error("ERR User '" + std::string(c.argv[2]) + "' not found");
  std::span<const std::string_view> argv = c.argv.subspan(3);
  const CommandSpec* spec = c.state.table.find(argv[0]);
  if (spec == nullptr) return c.out.error("ERR Command '" + std::string(argv[0]) + "' not found");
  const CommandSpec* run = spec;
  if (!spec->subcommands.empty() && argv.size() >= 2) {
    if (const CommandSpec* sub = CommandTable::find_sub(*spec, argv[1])) run = sub;
  }
  const int argc = static_cast<int>(argv.size());
  if ((run->arity > 0 && argc != run->arity) || argc < -run->arity) {
    return c.out.error(
        "ERR wrong number of arguments for '" +
        std::string(c.state.acl.commands()
                        .entries()[static_cast<size_t>(c.state.acl.commands().index(run))]
                        .fullname) +
        "' command");
  }
  const int index = c.state.acl.commands().index(run);
  const AclVerdict v = acl_check(*u, index, *run, argv);
  switch (v.kind) {
    case AclVerdict::kOk:
      return c.out.simple("OK");
    case AclVerdict::kCommand:
      return c.out.bulk("This user has no permissions to run the '" +
                        c.state.acl.commands().entries()[static_cast<size_t>(index)].fullname +
                        "' command");
    case AclVerdict::kKey:
      return c.out.bulk("This user has no permissions to access the '" + std::string(argv[v.arg]) +
                        "' key");
    case AclVerdict::kChannel:
      return c.out.bulk("This user has no permissions to access the '" + std::string(argv[v.arg]) +
                        "' channel");
  }
}

void cmd_acl_log(CommandContext& c) {
  size_t count = 10;
  if (c.argv.size() == 3) {
    if (iequals(c.argv[2], "reset")) {
      c.state.acl.log_reset();
      return c.out.simple("OK");
    }
    auto n = parse_int64(c.argv[2]);
    if (!n || *n < 0) return c.out.error(kNotInteger);
    count = static_cast<size_t>(*n);
  } else if (c.argv.size() > 3) {
    return c.out.error(kSyntaxError);
  }
  const auto entries = c.state.acl.log_entries(count);
  c.out.array(entries.size());
  for (const AclLogEntry& e : entries) {
    c.out.map(7);
    c.out.bulk("count");
    c.out.integer(static_cast<int64_t>(e.count));
    c.out.bulk("reason");
    c.out.bulk(e.reason);
    c.out.bulk("context");
    c.out.bulk(e.context);
    c.out.bulk("object");
    c.out.bulk(e.object);
    c.out.bulk("username");
    c.out.bulk(e.username);
    c.out.bulk("age-seconds");
    c.out.dbl(static_cast<double>(c.now_ms - e.created_ms) / 1000.0);
    c.out.bulk("client-info");
    c.out.bulk(e.client_info);
  }
}

void cmd_acl_genpass(CommandContext& c) {
  int64_t bits = 256;
  if (c.argv.size() == 3) {
    auto n = parse_int64(c.argv[2]);
    if (!n || *n <= 0 || *n > 4096) {
      return c.out.error(
          "ERR ACL GENPASS argument must be the number of bits for the output "
          "password, a positive number up to 4096");
    }
    bits = *n;
  }
  const size_t chars = static_cast<size_t>((bits + 3) / 4);
  std::vector<unsigned char> bytes((chars + 1) / 2);
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return c.out.error("ERR no randomness available");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  out.resize(chars);
  c.out.bulk(out);
}

void cmd_acl_help(CommandContext& c) {
  static constexpr std::string_view kLines[] = {
      "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "CAT [<category>]",
      "    List all commands that belong to <category>, or all command categories",
      "    when no category is specified.",
      "DELUSER <username> [<username> ...]",
      "    Delete a list of users.",
      "DRYRUN <username> <command> [<arg> ...]",
      "    Returns whether the user can execute the given command without executing the command.",
      "GETUSER <username>",
      "    Get the user's details.",
      "GENPASS [<bits>]",
      "    Generate a secure 256-bit user password. The optional `bits` argument can",
      "    be used to specify a different size.",
      "LIST",
      "    Show users details in config file format.",
      "LOG [<count> | RESET]",
      "    Show the ACL log entries.",
      "SETUSER <username> <attribute> [<attribute> ...]",
      "    Create or modify a user with the specified attributes.",
      "USERS",
      "    List all the registered usernames.",
      "WHOAMI",
      "    Return the current connection username.",
      "HELP",
      "    Print this help.",
  };
  c.out.array(std::size(kLines));
  for (auto line : kLines) c.out.simple(line);
}

}  // namespace

void add_acl_commands(std::vector<CommandSpec>& out) {
  const std::string_view g = "server";
  constexpr uint32_t kAdm = kAdmin | kNoscript | kLoading | kStale;
  CommandSpec acl{"acl",     -2,
                  kSentinel, 0,
                  0,         0,
                  g,         "A container for Access List Control commands.",
                  "6.0.0",   "Depends on subcommand.",
                  "",        nullptr};
  acl.subcommands.push_back({"cat", -2, kNoscript | kLoading | kStale | kSentinel, 0, 0, 0, g,
                             "Lists the ACL categories, or the commands inside a category.",
                             "6.0.0", "O(1) since the categories and commands are a fixed set.",
                             "[category:string]", cmd_acl_cat});
  acl.subcommands.push_back({"deluser", -3, kAdm | kSentinel, 0, 0, 0, g,
                             "Deletes ACL users, and terminates their connections.", "6.0.0",
                             "O(1) amortized time considering the typical user.",
                             "username:string...", cmd_acl_deluser});
  acl.subcommands.push_back({"dryrun", -4, kAdm | kSentinel, 0, 0, 0, g,
                             "Simulates the execution of a command by a user, without executing "
                             "the command.",
                             "7.0.0", "O(1).", "username:string command:string [arg:string...]",
                             cmd_acl_dryrun});
  acl.subcommands.push_back({"genpass", -2, kNoscript | kLoading | kStale | kSentinel, 0, 0, 0, g,
                             "Generates a pseudorandom, secure password that can be used to "
                             "identify ACL users.",
                             "6.0.0", "O(N)", "[bits:integer]", cmd_acl_genpass});
  acl.subcommands.push_back({"getuser", 3, kAdm | kSentinel, 0, 0, 0, g,
                             "Lists the ACL rules of a user.", "6.0.0",
                             "O(N). Where N is the number of password, command and pattern rules "
                             "that the user has.",
                             "username:string", cmd_acl_getuser});
  acl.subcommands.push_back({"list", 2, kAdm | kSentinel, 0, 0, 0, g,
                             "Dumps the effective rules in ACL file format.", "6.0.0",
                             "O(N). Where N is the number of configured users.", "", cmd_acl_list});
  acl.subcommands.push_back({"log", -2, kAdm | kSentinel, 0, 0, 0, g,
                             "Lists recent security events generated due to ACL rules.", "6.0.0",
                             "O(N) with N being the number of entries shown.",
                             "[(operation: count:integer | RESET)]", cmd_acl_log});
  acl.subcommands.push_back({"setuser", -3, kAdm | kSentinel, 0, 0, 0, g,
                             "Creates and modifies an ACL user and its rules.", "6.0.0",
                             "O(N). Where N is the number of rules provided.",
                             "username:string [rule:string...]", cmd_acl_setuser});
  acl.subcommands.push_back({"users", 2, kAdm | kSentinel, 0, 0, 0, g, "Lists all ACL users.",
                             "6.0.0", "O(N). Where N is the number of configured users.", "",
                             cmd_acl_users});
  acl.subcommands.push_back({"whoami", 2, kNoscript | kLoading | kStale | kSentinel, 0, 0, 0, g,
                             "Returns the authenticated username of the current connection.",
                             "6.0.0", "O(1)", "", cmd_acl_whoami});
  acl.subcommands.push_back({"help", 2, kLoading | kStale | kSentinel, 0, 0, 0, g,
                             "Returns helpful text about the different subcommands.", "6.0.0",
                             "O(1)", "", cmd_acl_help});
  out.push_back(std::move(acl));
}

}  // namespace statekv::server
