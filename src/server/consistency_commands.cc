// CONSISTENCY, WITH and SESSION (server/consistency.h; docs/consistency.md).
#include <future>
#include <string>

#include "core/held_posts.h"
#include "server/command.h"
#include "server/consistency.h"
#include "server/number.h"

namespace statekv::server {

namespace {

// Parses "<level> [MAX-STALENESS <ms>]" at argv[at..]; returns how many
// arguments it took, or 0 after replying with the error.
size_t parse_level(CommandContext& c, size_t at, bool rest_allowed, SessionConsistency* out) {
  const auto level = parse_read_level(c.argv[at]);
  if (!level) {
    c.out.error("ERR unknown consistency level '" + std::string(c.argv[at].substr(0, 64)) +
                "': linearizable, sequential, causal, fifo or eventual");
    return 0;
  }
  out->level = *level;
  out->max_staleness_ms = 0;
  size_t used = 1;
  if (at + 1 < c.argv.size() && iequals(c.argv[at + 1], "max-staleness")) {
    if (at + 2 >= c.argv.size()) {
      c.out.error(std::string(kSyntaxError));
      return 0;
    }
    const auto ms = parse_int64(c.argv[at + 2]);
    if (!ms || *ms <= 0) {
      c.out.error("ERR MAX-STALENESS must be a positive number of milliseconds");
      return 0;
    }
    if (*level == ReadLevel::kLinearizable) {
      c.out.error(
          "ERR MAX-STALENESS bounds the weaker levels (sequential, causal, fifo, eventual): a "
          "linearizable read is never stale");
      return 0;
    }
    out->max_staleness_ms = *ms;
    used += 2;
  }
  if (!rest_allowed && at + used != c.argv.size()) {
    c.out.error(std::string(kSyntaxError));
    return 0;
  }
  return used;
}

void cmd_consistency(CommandContext& c) {
  if (c.argv.size() == 1) {
    const SessionConsistency& s = c.session.consistency;
    if (!s.level) {
      c.out.bulk("default");
      return;
    }
    std::string answer(read_level_name(*s.level));
    if (s.max_staleness_ms > 0) answer += " MAX-STALENESS " + std::to_string(s.max_staleness_ms);
    c.out.bulk(answer);
    return;
  }
  if (c.argv.size() == 2 && iequals(c.argv[1], "default")) {
    c.session.consistency = SessionConsistency{};
    c.out.simple("OK");
    return;
  }
  SessionConsistency next;
  if (parse_level(c, 1, false, &next) == 0) return;
  c.session.consistency = next;
  c.out.simple("OK");
}

void cmd_with(CommandContext& c) {
  SessionConsistency level;
  const size_t used = parse_level(c, 1, true, &level);
  if (used == 0) return;
  const size_t first = 1 + used;
  if (first >= c.argv.size()) {
    c.out.error(
        "ERR WITH needs a command after the level: WITH <level> [MAX-STALENESS <ms>] "
        "<command> [arg ...]");
    return;
  }
  if (iequals(c.argv[first], "with")) {
    c.out.error("ERR WITH cannot wrap WITH");
    return;
  }
  c.session.command_consistency = level;
  struct Restore {
    Session& s;
    ~Restore() { s.command_consistency.reset(); }
  } restore{c.session};
  c.note(c.state.dispatch(c.session, c.argv.subspan(first), c.out));
}

void cmd_session_token(CommandContext& c) {
  c.out.bulk(c.session.positions->token());
}

void cmd_session_after(CommandContext& c) {
  if (Status s = c.session.positions->merge(c.argv[2]); !s.ok()) {
    c.out.error("ERR " + s.message());
    return;
  }
  c.out.simple("OK");
}

// WAIT numreplicas timeout (Redis's): on a single copy (a standalone node, a
// keyspace without replicas) no replica can ever hold a write: 0 at once.
void cmd_wait(CommandContext& c) {
  const auto n = parse_int64(c.argv[1]);
  const auto timeout = parse_int64(c.argv[2]);
  if (!n || !timeout) {
    c.out.error("ERR value is not an integer or out of range");
    return;
  }
  if (*timeout < 0) {
    c.out.error("ERR timeout is negative");
    return;
  }
  if (c.state.ctx.cluster == nullptr) {
    c.out.integer(0);
    return;
  }
  if (c.session.defer) {
    server::DeferredReply later = c.session.defer();
    c.state.ctx.cluster->wait_replicas(c.session, *n, *timeout,
                                       [later](std::string reply) { later(std::move(reply), 0); });
    return;
  }
  std::promise<std::string> answered;
  auto reply = answered.get_future();
  c.state.ctx.cluster->wait_replicas(
      c.session, *n, *timeout, [&answered](std::string r) { answered.set_value(std::move(r)); });
  HeldPosts::flush();  // this thread waits: what it holds must leave first
  c.out.raw(reply.get());
}

void cmd_session_help(CommandContext& c) {
  static constexpr std::string_view kLines[] = {
      "SESSION <subcommand> [<arg> ...]. Subcommands are:",
      "TOKEN",
      "    An opaque token covering everything this connection wrote and read.",
      "AFTER <token>",
      "    From now on, this connection observes at least what the token covers.",
      "HELP",
      "    Print this help.",
  };
  c.out.array(std::size(kLines));
  for (auto l : kLines) c.out.simple(l);
}

}  // namespace

void add_consistency_commands(std::vector<CommandSpec>& out) {
  const std::string_view g = "connection";
  out.push_back({"consistency", -1, kFast | kStale | kLoading, 0, 0, 0, g,
                 "Answers or sets the connection's consistency level (statekv).", "statekv", "O(1)",
                 "[level: LINEARIZABLE | SEQUENTIAL | CAUSAL | FIFO | EVENTUAL | DEFAULT] "
                 "[MAX-STALENESS=ms:integer]",
                 cmd_consistency});
  out.push_back(
      {"with", -3, 0, 0, 0, 0, g, "Runs one command at its own consistency level (statekv).",
       "statekv", "Depends on the command.",
       "level:string [MAX-STALENESS=ms:integer] command:string [arg:string...]", cmd_with});
  out.push_back({"wait", 3, 0, 0, 0, 0, "generic",
                 "Blocks until the asynchronous replication of all preceding write commands "
                 "sent by the connection is completed.",
                 "3.0.0", "O(1)", "numreplicas:integer timeout:integer", cmd_wait});
  CommandSpec session{"session", -2,
                      0,         0,
                      0,         0,
                      g,         "Session tokens: causal consistency across connections (statekv).",
                      "statekv", "Depends on subcommand.",
                      "",        nullptr};
  session.subcommands.push_back({"token", 2, kFast, 0, 0, 0, g,
                                 "Returns a token covering what this connection wrote and read.",
                                 "statekv", "O(N) where N is the replica groups it touched", "",
                                 cmd_session_token});
  session.subcommands.push_back({"after", 3, kFast, 0, 0, 0, g,
                                 "Makes this connection observe at least what a token covers.",
                                 "statekv", "O(N) where N is the replica groups the token names",
                                 "token:string", cmd_session_after});
  session.subcommands.push_back({"help", 2, kFast | kStale | kLoading, 0, 0, 0, g,
                                 "Returns helpful text about the different subcommands.", "statekv",
                                 "O(1)", "", cmd_session_help});
  out.push_back(std::move(session));
}

}  // namespace statekv::server
