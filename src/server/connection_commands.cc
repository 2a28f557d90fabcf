// Connection commands: PING, ECHO, HELLO, AUTH, QUIT, SELECT, CLIENT — Redis 7.0
// semantics over the Session the network layer owns.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "server/command.h"
#include "server/command_table.h"
#include "server/number.h"

namespace statekv::server {
namespace {

// The Redis version whose behaviour statekv implements; clients use it for
// feature detection (HELLO's "version", INFO's redis_version).
constexpr std::string_view kRedisCompatVersion = "7.0.15";

constexpr std::string_view kWrongPass =
    "WRONGPASS invalid username-password pair or user is disabled.";

// Redis's ACLAuthenticateUser: the user exists, is on, and takes the
// password. On success the connection runs as that user; a failure is
// recorded in ACL LOG (reason "auth"). Replies with the error itself and
// returns false on failure.
bool authenticate(CommandContext& c, std::string_view user, std::string_view pass) {
  c.state.refresh_user(c.session);
  const AclSnapshot& users = *c.session.acl;
  const AclUser* u = users.find(user);
  if (!users.known && u != nullptr && u->name == "default" && u->passwords.empty()) {
    c.out.error(
        "CLUSTERDOWN this node has not learned the cluster's users from the metadata service "
        "yet; try again in a moment");
    return false;
  }
  if (u == nullptr || !acl_password_ok(*u, pass)) {
    AclLogEntry entry;
    entry.reason = "auth";
    entry.context = "toplevel";
    entry.object = "auth";
    entry.username = std::string(user);
    entry.client_info = client_info_line(c.session);
    c.state.acl.log(std::move(entry), c.now_ms);
    c.out.error(kWrongPass);
    return false;
  }
  {
    std::lock_guard lock(c.session.mu);
    c.session.user.assign(user);
  }
  c.session.authenticated = true;
  c.session.acl.reset();  // the next check looks the new user up
  return true;
}

// Redis's validation of client names and library attributes: printable ASCII
// without spaces.
bool valid_attribute(std::string_view v) {
  for (char ch : v) {
    if (ch < '!' || ch > '~') return false;
  }
  return true;
}

bool set_name(CommandContext& c, std::string_view name) {
  if (!valid_attribute(name)) {
    c.out.error("ERR Client names cannot contain spaces, newlines or special characters.");
    return false;
  }
  std::lock_guard lock(c.session.mu);
  c.session.name.assign(name);
  return true;
}

void cmd_ping(CommandContext& c) {
  if (c.argv.size() > 2) {
    return c.out.error("ERR wrong number of arguments for 'ping' command");
  }
  if (c.session.resp == 2 && c.session.subscribed()) {
    // In RESP2's subscribed context a reply must look like a message: Redis
    // answers ["pong", message or ""].
    c.out.array(2);
    c.out.bulk("pong");
    c.out.bulk(c.argv.size() == 2 ? c.argv[1] : std::string_view());
    return;
  }
  if (c.argv.size() == 1) return c.out.simple("PONG");
  c.out.bulk(c.argv[1]);
}

void cmd_echo(CommandContext& c) {
  c.out.bulk(c.argv[1]);
}

void cmd_auth(CommandContext& c) {
  if (c.argv.size() > 3) return c.out.error(kSyntaxError);
  std::string_view user = "default";
  std::string_view pass;
  if (c.argv.size() == 2) {
    if (!c.state.auth_required()) {
      return c.out.error(
          "ERR AUTH <password> called without any password configured for the default user. "
          "Are you sure your configuration is correct?");
    }
    pass = c.argv[1];
  } else {
    user = c.argv[1];
    pass = c.argv[2];
  }
  if (!authenticate(c, user, pass)) return;
  c.out.simple("OK");
}

void cmd_hello(CommandContext& c) {
  int64_t version = 0;
  size_t next = 1;
  if (c.argv.size() >= 2) {
    auto v = parse_int64(c.argv[next++]);
    if (!v) return c.out.error("ERR Protocol version is not an integer or out of range");
    version = *v;
    if (version < 2 || version > 3) return c.out.error("NOPROTO unsupported protocol version");
  }
  std::optional<std::string_view> user, pass, name;
  for (size_t j = next; j < c.argv.size(); ++j) {
    const size_t more = c.argv.size() - 1 - j;
    std::string_view opt = c.argv[j];
    if (iequals(opt, "auth") && more >= 2) {
      user = c.argv[j + 1];
      pass = c.argv[j + 2];
      j += 2;
    } else if (iequals(opt, "setname") && more >= 1) {
      name = c.argv[j + 1];
      j += 1;
    } else {
      return c.out.error("ERR Syntax error in HELLO option '" + std::string(opt) + "'");
    }
  }
  if (user && !authenticate(c, *user, *pass)) return;
  if (!c.session.authenticated && c.state.auth_required()) {
    return c.out.error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
        "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
        "select the RESP protocol version at the same time");
  }
  if (name && !set_name(c, *name)) return;
  if (version != 0) {
    c.session.resp = static_cast<int>(version);
    // The reply to HELLO 3 is already in RESP3.
    c.out.set_protocol(c.session.resp);
  }
  c.out.map(7);
  c.out.bulk("server");
  c.out.bulk("statekv");
  c.out.bulk("version");
  c.out.bulk(kRedisCompatVersion);
  c.out.bulk("proto");
  c.out.integer(c.session.resp);
  c.out.bulk("id");
  c.out.integer(static_cast<int64_t>(c.session.id));
  c.out.bulk("mode");
  c.out.bulk("standalone");
  c.out.bulk("role");
  c.out.bulk("master");
  c.out.bulk("modules");
  c.out.array(0);
}

void cmd_quit(CommandContext& c) {
  c.session.close_after_reply = true;
  c.out.simple("OK");
}

// RESET: the connection as it was when it connected (Redis's
// clearClientConnectionState): no transaction or watched keys, no
// subscriptions, RESP2, db 0, no name, authenticated only if no password is
// required, no CLUSTER REDIRECTS.
void cmd_reset(CommandContext& c) {
  leave_all(*c.state.ctx.pubsub, c.session);
  c.session.txn.reset();  // out of MULTI, and no key watched
  c.session.db = 0;
  c.session.resp = 2;
  c.session.redirects = false;
  c.session.consistency = SessionConsistency{};
  c.session.positions = std::make_shared<SessionPositions>();
  c.session.authenticated = !c.state.auth_required();
  {
    std::lock_guard lock(c.session.mu);
    c.session.name.clear();
    c.session.user = "default";
  }
  c.session.acl.reset();
  c.out.set_protocol(2);
  c.out.simple("RESET");
}

void cmd_select(CommandContext& c) {
  auto v = parse_int64(c.argv[1]);
  if (!v || *v < INT32_MIN || *v > INT32_MAX) return c.out.error(kNotInteger);
  if (*v != 0) return c.out.error("ERR DB index is out of range");
  c.session.db = 0;
  c.out.simple("OK");
}

void cmd_time(CommandContext& c) {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
  c.out.array(2);
  c.out.bulk(std::to_string(us / 1000000));
  c.out.bulk(std::to_string(us % 1000000));
}

// ---- CLIENT ----

// One line of CLIENT LIST / CLIENT INFO in Redis's format (7.0 fields, plus 7.2's
// lib-name and lib-ver since CLIENT SETINFO is supported). Fields statekv has no
// counterpart for (MULTI, argv memory, shard channels) are reported as empty.
}  // namespace

std::string client_info_line(const Session& s) {
  using namespace std::chrono;
  const auto now = steady_clock::now();
  const int64_t now_ms = duration_cast<milliseconds>(now.time_since_epoch()).count();
  const int64_t age = duration_cast<seconds>(now - s.created).count();
  int64_t last = s.last_interaction_ms.load(std::memory_order_relaxed);
  int64_t idle = last == 0 ? age : std::max<int64_t>(0, (now_ms - last) / 1000);
  std::string name, cmd, lib_name, lib_ver, user;
  {
    std::lock_guard lock(s.mu);
    name = s.name;
    user = s.user;
    cmd = s.last_command;
    lib_name = s.lib_name;
    lib_ver = s.lib_ver;
  }
  const uint64_t qbuf = s.query_buffer_bytes.load(std::memory_order_relaxed);
  const uint64_t omem = s.output_buffer_bytes.load(std::memory_order_relaxed);
  const uint32_t sub = s.channel_count.load(std::memory_order_relaxed);
  const uint32_t psub = s.pattern_count.load(std::memory_order_relaxed);
  return fmt::format(
      "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub=0 "
      "multi=-1 qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs={} rbp={} obl=0 oll=0 omem={} "
      "tot-mem={} events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
      s.id, s.addr, s.laddr, s.fd, name, age, idle,
      s.blocked.load(std::memory_order_relaxed) ? "b"
      : sub + psub > 0                          ? "P"
                                                : "N",
      s.db, sub, psub, qbuf, qbuf, qbuf, omem, qbuf + omem, cmd, user, s.resp, lib_name, lib_ver);
}

namespace {

void reply_text(CommandContext& c, const std::string& text) {
  c.out.verbatim("txt", text);
}

void cmd_client_id(CommandContext& c) {
  c.out.integer(static_cast<int64_t>(c.session.id));
}

void cmd_client_setname(CommandContext& c) {
  if (set_name(c, c.argv[2])) c.out.simple("OK");
}

void cmd_client_getname(CommandContext& c) {
  std::string name;
  {
    std::lock_guard lock(c.session.mu);
    name = c.session.name;
  }
  if (name.empty()) return c.out.null();
  c.out.bulk(name);
}

void cmd_client_info(CommandContext& c) {
  reply_text(c, client_info_line(c.session) + "\n");
}

void cmd_client_list(CommandContext& c) {
  bool everyone = true;        // no filter
  std::optional<bool> pubsub;  // TYPE normal (false) or pubsub (true)
  std::vector<uint64_t> ids;   // ID filter
  if (c.argv.size() == 4 && iequals(c.argv[2], "type")) {
    std::string_view t = c.argv[3];
    if (iequals(t, "normal") || iequals(t, "pubsub")) {
      // Redis's client types: a subscribed client is a pubsub client.
      pubsub = iequals(t, "pubsub");
    } else if (iequals(t, "master") || iequals(t, "replica") || iequals(t, "slave")) {
      // statekv has no replication clients.
      return reply_text(c, "");
    } else {
      return c.out.error("ERR Unknown client type '" + std::string(t) + "'");
    }
  } else if (c.argv.size() > 3 && iequals(c.argv[2], "id")) {
    for (size_t j = 3; j < c.argv.size(); ++j) {
      auto id = parse_int64(c.argv[j]);
      if (!id || *id < 1) return c.out.error("ERR Invalid client ID");
      ids.push_back(static_cast<uint64_t>(*id));
    }
    everyone = false;
  } else if (c.argv.size() != 2) {
    return c.out.error(kSyntaxError);
  }
  auto wanted = [&](const Session& s) {
    if (pubsub) {
      const bool subscribed = s.channel_count.load(std::memory_order_relaxed) +
                                  s.pattern_count.load(std::memory_order_relaxed) >
                              0;
      return subscribed == *pubsub;
    }
    return everyone || std::find(ids.begin(), ids.end(), s.id) != ids.end();
  };
  std::string text;
  if (c.state.ctx.clients != nullptr) {
    c.state.ctx.clients->for_each([&](const Session& s) {
      if (wanted(s)) text += client_info_line(s) + "\n";
    });
  } else if (wanted(c.session)) {
    text = client_info_line(c.session) + "\n";
  }
  reply_text(c, text);
}

void cmd_client_setinfo(CommandContext& c) {
  std::string_view attr = c.argv[2];
  std::string_view value = c.argv[3];
  std::string* dest = nullptr;
  if (iequals(attr, "lib-name")) {
    dest = &c.session.lib_name;
  } else if (iequals(attr, "lib-ver")) {
    dest = &c.session.lib_ver;
  } else {
    return c.out.error("ERR Unrecognized option '" + std::string(attr) + "'");
  }
  if (!valid_attribute(value)) {
    return c.out.error("ERR " + std::string(attr) +
                       " cannot contain spaces, newlines or special characters.");
  }
  {
    std::lock_guard lock(c.session.mu);
    dest->assign(value);
  }
  c.out.simple("OK");
}

// CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p ...] [OPTIN] [OPTOUT]
// [NOLOOP]: Redis 7's server-assisted client-side caching, with its option
// checks and errors in its order (networking.c). A RESP2 client without
// REDIRECT is accepted and sent nothing, as Redis does. On a cluster node the
// other nodes are told before the reply (coord/tracking_relay.h), so a write
// on any node after the OK is reported.
void cmd_client_tracking(CommandContext& c) {
  uint64_t redirect = 0;
  TrackingMode mode;
  for (size_t j = 3; j < c.argv.size(); ++j) {
    std::string_view opt = c.argv[j];
    const bool more = j + 1 < c.argv.size();
    if (iequals(opt, "redirect") && more) {
      ++j;
      if (redirect != 0) {
        return c.out.error("ERR A client can only redirect to a single other client");
      }
      auto id = parse_int64(c.argv[j]);
      if (!id) return c.out.error("ERR value is not an integer or out of range");
      bool exists = false;
      if (c.state.ctx.clients != nullptr) {
        c.state.ctx.clients->for_each(
            [&](const Session& s) { exists = exists || static_cast<int64_t>(s.id) == *id; });
      }
      if (!exists) return c.out.error("ERR The client ID you want redirect to does not exist");
      redirect = static_cast<uint64_t>(*id);
    } else if (iequals(opt, "bcast")) {
      mode.bcast = true;
    } else if (iequals(opt, "optin")) {
      mode.optin = true;
    } else if (iequals(opt, "optout")) {
      mode.optout = true;
    } else if (iequals(opt, "noloop")) {
      mode.noloop = true;
    } else if (iequals(opt, "prefix") && more) {
      mode.prefixes.emplace_back(c.argv[++j]);
    } else {
      return c.out.error("ERR syntax error");
    }
  }
  const std::string_view status = c.argv[2];
  if (iequals(status, "off")) {
    c.state.tracking_off(c.session.id);
    c.session.tracking = false;
    c.session.tracking_bcast = c.session.tracking_optin = c.session.tracking_optout = false;
    c.session.caching = -1;
    if (c.state.ctx.tracking_relay != nullptr) c.state.ctx.tracking_relay->announce([] {});
    return c.out.simple("OK");
  }
  if (!iequals(status, "on")) return c.out.error("ERR syntax error");
  if (!mode.bcast && !mode.prefixes.empty()) {
    return c.out.error("ERR PREFIX option requires BCAST mode to be enabled");
  }
  if (c.session.tracking && c.session.tracking_bcast != mode.bcast) {
    return c.out.error(
        "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and "
        "then re-enabling it with a different mode.");
  }
  if (mode.bcast && (mode.optin || mode.optout)) {
    return c.out.error("ERR OPTIN and OPTOUT are not compatible with BCAST");
  }
  if (mode.optin && mode.optout) {
    return c.out.error("ERR You can't specify both OPTIN mode and OPTOUT mode");
  }
  if ((mode.optin && c.session.tracking_optout) || (mode.optout && c.session.tracking_optin)) {
    return c.out.error(
        "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and "
        "then re-enabling it with a different mode.");
  }
  if (!c.session.push) return c.out.error("ERR this connection cannot receive pushes");
  mode.redirect = redirect;
  const bool bcast = mode.bcast, optin = mode.optin, optout = mode.optout;
  if (Status s = c.state.tracking.enable(c.session.id, std::move(mode)); !s.ok()) {
    return c.out.error(s.message());
  }
  c.state.tracking_on(c.session);
  c.session.tracking = true;
  c.session.tracking_bcast = bcast;
  c.session.tracking_optin = optin;
  c.session.tracking_optout = optout;
  if (c.state.ctx.tracking_relay != nullptr && c.session.defer) {
    // OK once every other node knows this node tracks (BCAST: that it must
    // send every write here).
    auto done = c.session.defer();
    c.state.ctx.tracking_relay->announce([done = std::move(done), resp = c.session.resp] {
      std::string out;
      resp::Writer(&out, resp).simple("OK");
      done(std::move(out), 0);
    });
    return;
  }
  c.out.simple("OK");
}

// CLIENT CACHING YES|NO: whether the next command's reads are tracked, for a
// client tracking in OPTIN (YES) or OPTOUT (NO) mode.
void cmd_client_caching(CommandContext& c) {
  if (!c.session.tracking) {
    return c.out.error(
        "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or "
        "OPTOUT mode enabled");
  }
  const std::string_view opt = c.argv[2];
  if (iequals(opt, "yes")) {
    if (!c.session.tracking_optin) {
      return c.out.error(
          "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.");
    }
    c.session.caching = 1;
    c.session.caching_used = false;
  } else if (iequals(opt, "no")) {
    if (!c.session.tracking_optout) {
      return c.out.error(
          "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.");
    }
    c.session.caching = 0;
    c.session.caching_used = false;
  } else {
    return c.out.error("ERR syntax error");
  }
  c.out.simple("OK");
}

void cmd_client_getredir(CommandContext& c) {
  auto mode = c.state.tracking.mode(c.session.id);
  c.out.integer(mode ? static_cast<int64_t>(mode->redirect) : -1);
}

void cmd_client_trackinginfo(CommandContext& c) {
  auto mode = c.state.tracking.mode(c.session.id);
  c.out.map(3);
  c.out.bulk("flags");
  if (!mode) {
    c.out.set(1);
    c.out.bulk("off");
  } else {
    std::vector<std::string_view> flags = {"on"};
    if (mode->bcast) flags.push_back("bcast");
    if (mode->optin) {
      flags.push_back("optin");
      if (c.session.caching == 1) flags.push_back("caching-yes");
    }
    if (mode->optout) {
      flags.push_back("optout");
      if (c.session.caching == 0) flags.push_back("caching-no");
    }
    if (mode->noloop) flags.push_back("noloop");
    if (c.state.redirect_broken(c.session.id)) flags.push_back("broken_redirect");
    c.out.set(flags.size());
    for (auto f : flags) c.out.bulk(f);
  }
  c.out.bulk("redirect");
  c.out.integer(mode ? static_cast<int64_t>(mode->redirect) : -1);
  c.out.bulk("prefixes");
  c.out.array(mode ? mode->prefixes.size() : 0);
  if (mode) {
    for (const auto& p : mode->prefixes) c.out.bulk(p);
  }
}

void cmd_client_help(CommandContext& c) {
  static constexpr std::string_view kLines[] = {
      "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "GETNAME",
      "    Return the name of the current connection.",
      "ID",
      "    Return the ID of the current connection.",
      "INFO",
      "    Return information about the current client connection.",
      "LIST [options ...]",
      "    Return information about client connections. Options:",
      "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
      "      Return clients of specified type.",
      "    * ID <id> [<id> ...]",
      "      Return clients with specified IDs only.",
      "SETINFO <option> <value>",
      "    Set client meta attr. Options are:",
      "    * LIB-NAME: the client lib name.",
      "    * LIB-VER: the client lib version.",
      "SETNAME <name>",
      "    Assign the name <name> to the current connection.",
      "HELP",
      "    Print this help.",
  };
  c.out.array(std::size(kLines));
  for (auto line : kLines) c.out.simple(line);
}

}  // namespace

void add_connection_commands(std::vector<CommandSpec>& out) {
  const std::string_view g = "connection";
  constexpr uint32_t kConn = kNoscript | kLoading | kStale;
  out.push_back({"ping", -1, kFast | kSentinel, 0, 0, 0, g,
                 "Returns the server's liveliness response.", "1.0.0", "O(1)", "[message:string]",
                 cmd_ping});
  out.push_back({"echo", 2, kFast, 0, 0, 0, g, "Returns the given string.", "1.0.0", "O(1)",
                 "message:string", cmd_echo});
  out.push_back({"auth", -2, kConn | kFast | kNoAuth | kSentinel, 0, 0, 0, g,
                 "Authenticates the connection.", "1.0.0",
                 "O(N) where N is the number of passwords defined for the user",
                 "[username:string] password:string", cmd_auth});
  out.push_back({"hello", -1, kConn | kFast | kNoAuth | kSentinel, 0, 0, 0, g,
                 "Handshakes with the Redis server.", "6.0.0", "O(1)",
                 "[arguments: protover:integer [AUTH=username:string password:string] "
                 "[SETNAME=clientname:string]]",
                 cmd_hello});
  out.push_back({"quit", -1, kConn | kFast | kNoAuth, 0, 0, 0, g, "Closes the connection.", "1.0.0",
                 "O(1)", "", cmd_quit});
  out.push_back({"reset", 1, kConn | kFast | kNoAuth | kAllowBusy, 0, 0, 0, g,
                 "Reset the connection", "6.2.0", "O(1)", "", cmd_reset});
  out.push_back({"select", 2, kConn | kFast, 0, 0, 0, g, "Changes the selected database.", "1.0.0",
                 "O(1)", "index:integer", cmd_select});
  out.push_back({"time", 1, kLoading | kStale | kFast, 0, 0, 0, "server",
                 "Returns the server time.", "2.6.0", "O(1)", "", cmd_time});

  CommandSpec client{"client", -2,
                     0,        0,
                     0,        0,
                     g,        "A container for client connection commands.",
                     "2.4.0",  "Depends on subcommand.",
                     "",       nullptr};
  client.subcommands.push_back({"id", 2, kConn, 0, 0, 0, g,
                                "Returns the unique client ID of the connection.", "5.0.0", "O(1)",
                                "", cmd_client_id});
  client.subcommands.push_back({"setname", 3, kConn, 0, 0, 0, g, "Sets the connection name.",
                                "2.6.9", "O(1)", "connection-name:string", cmd_client_setname});
  client.subcommands.push_back({"getname", 2, kConn, 0, 0, 0, g,
                                "Returns the name of the connection.", "2.6.9", "O(1)", "",
                                cmd_client_getname});
  client.subcommands.push_back({"info", 2, kConn, 0, 0, 0, g,
                                "Returns information about the connection.", "6.2.0", "O(1)", "",
                                cmd_client_info});
  client.subcommands.push_back({"list", -2, kAdmin | kConn, 0, 0, 0, g, "Lists open connections.",
                                "2.4.0", "O(N) where N is the number of client connections",
                                "[TYPE=client-type:string] [ID=client-id:integer...]",
                                cmd_client_list});
  client.subcommands.push_back({"setinfo", 4, kConn, 0, 0, 0, g,
                                "Sets information specific to the client or connection.", "7.2.0",
                                "O(1)", "(attr: LIB-NAME=libname:string | LIB-VER=libver:string)",
                                cmd_client_setinfo});
  client.subcommands.push_back({"tracking", -3, kConn, 0, 0, 0, g,
                                "Controls server-assisted client-side caching for the connection.",
                                "6.0.0", "O(1). Some options may introduce additional complexity.",
                                "(status: ON | OFF) [REDIRECT=client-id:integer] "
                                "[PREFIX=prefix:string...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]",
                                cmd_client_tracking});
  client.subcommands.push_back({"caching", 3, kConn, 0, 0, 0, g,
                                "Instructs the server whether to track the keys in the next "
                                "request.",
                                "6.0.0", "O(1)", "(mode: YES | NO)", cmd_client_caching});
  client.subcommands.push_back({"getredir", 2, kConn, 0, 0, 0, g,
                                "Returns the client ID to which the connection's tracking "
                                "notifications are redirected.",
                                "6.0.0", "O(1)", "", cmd_client_getredir});
  client.subcommands.push_back({"trackinginfo", 2, kConn, 0, 0, 0, g,
                                "Returns information about server-assisted client-side caching "
                                "for the connection.",
                                "6.2.0", "O(1)", "", cmd_client_trackinginfo});
  client.subcommands.push_back({"unblock", -3, kAdmin | kNoscript | kLoading | kStale, 0, 0, 0, g,
                                "Unblocks a client blocked by a blocking command from a different "
                                "connection.",
                                "5.0.0", "O(log N) where N is the number of client connections",
                                "client-id:integer [(unblock-type: TIMEOUT | ERROR)]",
                                cmd_client_unblock});
  client.subcommands.push_back({"help", 2, kLoading | kStale, 0, 0, 0, g,
                                "Returns helpful text about the different subcommands.", "5.0.0",
                                "O(1)", "", cmd_client_help});
  out.push_back(std::move(client));
}

}  // namespace statekv::server
