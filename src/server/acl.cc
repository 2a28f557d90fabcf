#include "server/acl.h"

#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <sstream>

#include "server/command.h"
#include "server/command_table.h"
#include "server/glob.h"

namespace statekv::server {
namespace {

constexpr uint32_t bit(int i) {
  return 1u << i;
}

// Commands Redis puts in @dangerous beyond its admin commands.
bool dangerous_name(std::string_view name) {
  for (std::string_view n :
       {"keys",    "flushall", "flushdb", "info",    "sort",         "sort_ro",
        "swapdb",  "migrate",  "restore", "monitor", "shutdown",     "debug",
        "role",    "lastsave", "save",    "bgsave",  "bgrewriteaof", "replicaof",
        "slaveof", "failover", "sync",    "psync"}) {
    if (name == n) return true;
  }
  return false;
}

}  // namespace

uint32_t acl_command_categories(const CommandSpec& spec, const CommandSpec* parent) {
  uint32_t c = 0;
  auto add = [&](std::string_view name) { c |= acl_category_bit(name); };
  if (spec.flags & kWrite) add("write");
  if (spec.flags & kReadonly) add("read");
  add((spec.flags & kFast) ? "fast" : "slow");
  if (spec.flags & kAdmin) {
    add("admin");
    add("dangerous");
  }
  if (spec.flags & kPubsub) add("pubsub");
  if (spec.flags & kBlocking) add("blocking");
  const std::string_view group = parent != nullptr ? parent->group : spec.group;
  if (group == "generic") add("keyspace");
  if (group == "sorted-set" || group == "sorted_set") add("sortedset");
  if (group == "transactions") add("transaction");
  for (std::string_view g : {"string", "hash", "set", "list", "connection", "pubsub", "geo",
                             "stream", "bitmap", "hyperloglog", "scripting"}) {
    if (group == g) add(g);
  }
  const std::string_view top = parent != nullptr ? parent->name : spec.name;
  if (dangerous_name(top)) add("dangerous");
  // Redis's categories of commands outside the groups above.
  if (top == "dbsize" || top == "flushall" || top == "flushdb") add("keyspace");
  if (top == "command") add("connection");
  // statekv's KEYSPACE CREATE / ALTER / DROP change the cluster map: whoever
  // may run them administers the cluster.
  if (top == "keyspace" && parent != nullptr && (spec.flags & kWrite)) {
    add("admin");
    add("dangerous");
  }
  return c;
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

bool has_space(std::string_view s) {
  for (char ch : s) {
    if (std::isspace(static_cast<unsigned char>(ch)) || ch == '\0') return true;
  }
  return false;
}

bool is_hash(std::string_view h) {
  if (h.size() != 64) return false;
  for (char ch : h) {
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
  }
  return true;
}

// Sets command `i` (and, for a container, each subcommand) to `allow`.
void change_perm(AclUser& user, const AclCommands& commands, int i, bool allow) {
  user.commands[static_cast<size_t>(i)] = allow;
  for (int sub : commands.entries()[static_cast<size_t>(i)].subs) {
    user.commands[static_cast<size_t>(sub)] = allow;
  }
}

void change_category(AclUser& user, const AclCommands& commands, uint32_t cat, bool allow) {
  for (size_t i = 0; i < commands.size(); ++i) {
    if (commands.entries()[i].categories & cat) user.commands[i] = allow;
  }
}

bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

bool key_allowed(const AclUser& user, std::string_view key, bool write) {
  if (user.allkeys) return true;
  for (const AclKeyPattern& p : user.keys) {
    if ((write ? p.write : p.read) && glob_match(p.pattern, key)) return true;
  }
  return false;
}

bool channel_allowed(const AclUser& user, std::string_view channel, bool literal) {
  if (user.allchannels) return true;
  for (const std::string& p : user.channels) {
    if (literal ? p == channel : glob_match(p, channel)) return true;
  }
  return false;
}

}  // namespace

const std::vector<std::string_view>& acl_category_names() {
  static const std::vector<std::string_view> kNames = {
      "keyspace", "read",   "write",       "set",       "sortedset",  "list",        "hash",
      "string",   "bitmap", "hyperloglog", "geo",       "stream",     "pubsub",      "admin",
      "fast",     "slow",   "blocking",    "dangerous", "connection", "transaction", "scripting"};
  return kNames;
}

uint32_t acl_category_bit(std::string_view name) {
  const auto& names = acl_category_names();
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == name) return bit(static_cast<int>(i));
  }
  return 0;
}

// ---- AclCommands ----------------------------------------------------------

AclCommands::AclCommands(const CommandTable& table) {
  for (const CommandSpec& spec : table.all()) {
    const int index = static_cast<int>(entries_.size());
    entries_.push_back(
        Entry{&spec, -1, std::string(spec.name), acl_command_categories(spec, nullptr), {}});
    for (const CommandSpec& sub : spec.subcommands) {
      const int s = static_cast<int>(entries_.size());
      entries_.push_back(Entry{&sub,
                               index,
                               std::string(spec.name) + "|" + std::string(sub.name),
                               acl_command_categories(sub, &spec),
                               {}});
      entries_[static_cast<size_t>(index)].subs.push_back(s);
    }
  }
  for (size_t i = 0; i < entries_.size(); ++i) {
    by_spec_.emplace(entries_[i].spec, static_cast<int>(i));
    by_name_.emplace(entries_[i].fullname, static_cast<int>(i));
  }
}

int AclCommands::index(const CommandSpec* spec) const {
  auto it = by_spec_.find(spec);
  return it == by_spec_.end() ? -1 : it->second;
}

int AclCommands::find(std::string_view fullname) const {
  auto it = by_name_.find(lower(fullname));
  return it == by_name_.end() ? -1 : it->second;
}

// ---- users ------------------------------------------------------------------

bool AclUser::unrestricted() const {
  return allkeys && allchannels &&
         std::all_of(commands.begin(), commands.end(), [](bool b) { return b; });
}

AclUser acl_new_user(std::string name, const AclCommands& commands) {
  AclUser u;
  u.name = std::move(name);
  u.commands.assign(commands.size(), false);
  return u;
}

AclUser acl_default_user(const std::string& hash, const AclCommands& commands) {
  AclUser u = acl_new_user("default", commands);
  u.enabled = true;
  if (hash.empty()) {
    u.nopass = true;
  } else {
    u.passwords.push_back(hash);
  }
  u.allkeys = true;
  u.allchannels = true;
  u.allcommands = true;
  u.commands.assign(commands.size(), true);
  return u;
}

std::string acl_password_hash(std::string_view password) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(password.data()), password.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * SHA256_DIGEST_LENGTH);
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

bool acl_password_ok(const AclUser& user, std::string_view password) {
  if (!user.enabled) return false;
  if (user.nopass) return true;
  const std::string hash = acl_password_hash(password);
  bool found = false;
  for (const std::string& p : user.passwords) found = same_secret(hash, p) || found;
  return found;
}

Status acl_check_username(std::string_view name) {
  if (has_space(name))
    return Status::InvalidArgument("ERR Usernames can't contain spaces or null characters");
  if (name.empty()) return Status::InvalidArgument("ERR Usernames can't be empty");
  return Status::OK();
}

Status acl_apply(AclUser& u, std::string_view op, const AclCommands& commands) {
  auto syntax = [] { return Status::InvalidArgument("Syntax error"); };
  auto unknown = [] { return Status::InvalidArgument("Unknown command or category name in ACL"); };
  const std::string l = lower(op);
  if (l == "on") {
    u.enabled = true;
  } else if (l == "off") {
    u.enabled = false;
  } else if (l == "nopass") {
    u.nopass = true;
    u.passwords.clear();
  } else if (l == "resetpass") {
    u.nopass = false;
    u.passwords.clear();
  } else if (l == "allkeys" || l == "~*") {
    u.allkeys = true;
    u.keys.clear();
  } else if (l == "resetkeys") {
    u.allkeys = false;
    u.keys.clear();
  } else if (l == "allchannels" || l == "&*") {
    u.allchannels = true;
    u.channels.clear();
  } else if (l == "resetchannels") {
    u.allchannels = false;
    u.channels.clear();
  } else if (l == "allcommands" || l == "+@all") {
    u.allcommands = true;
    u.commands.assign(commands.size(), true);
  } else if (l == "nocommands" || l == "-@all") {
    u.allcommands = false;
    u.commands.assign(commands.size(), false);
  } else if (l == "reset") {
    // Redis: resetpass, resetkeys, resetchannels (acl-pubsub-default), off, -@all.
    AclUser fresh = acl_new_user(u.name, commands);
    fresh.sanitize = "sanitize-payload";
    u = std::move(fresh);
  } else if (l == "sanitize-payload" || l == "skip-sanitize-payload") {
    u.sanitize = l;
  } else if (l == "clearselectors") {
    // statekv has no selectors, so there are none to clear.
  } else if (!op.empty() && op.front() == '(') {
    return Status::InvalidArgument("Selectors are not supported by statekv");
  } else if (!op.empty() && (op[0] == '>' || op[0] == '#')) {
    std::string hash;
    if (op[0] == '>') {
      hash = acl_password_hash(op.substr(1));
    } else {
      if (!is_hash(op.substr(1))) {
        return Status::InvalidArgument(
            "The password hash must be exactly 64 characters and contain only lowercase "
            "hexadecimal characters");
      }
      hash = std::string(op.substr(1));
    }
    if (std::find(u.passwords.begin(), u.passwords.end(), hash) == u.passwords.end()) {
      u.passwords.push_back(hash);
    }
    u.nopass = false;
  } else if (!op.empty() && (op[0] == '<' || op[0] == '!')) {
    std::string hash;
    if (op[0] == '<') {
      hash = acl_password_hash(op.substr(1));
    } else {
      if (!is_hash(op.substr(1))) {
        return Status::InvalidArgument(
            "The password hash must be exactly 64 characters and contain only lowercase "
            "hexadecimal characters");
      }
      hash = std::string(op.substr(1));
    }
    auto it = std::find(u.passwords.begin(), u.passwords.end(), hash);
    if (it == u.passwords.end()) {
      return Status::InvalidArgument(
          "The password you are trying to remove from the user does not exist");
    }
    u.passwords.erase(it);
  } else if (!op.empty() && (op[0] == '~' || op[0] == '%')) {
    if (u.allkeys) {
      return Status::InvalidArgument(
          "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not "
          "have any effect. Try 'resetkeys' to start with an empty list of patterns");
    }
    AclKeyPattern p;
    size_t offset = 1;
    if (op[0] == '%') {
      p.read = p.write = false;
      bool tilde = false;
      for (; offset < op.size(); ++offset) {
        const char ch = static_cast<char>(std::toupper(static_cast<unsigned char>(op[offset])));
        if (ch == 'R' && !p.read) {
          p.read = true;
        } else if (ch == 'W' && !p.write) {
          p.write = true;
        } else if (op[offset] == '~') {
          ++offset;
          tilde = true;
          break;
        } else {
          return syntax();
        }
      }
      if (!tilde || (!p.read && !p.write)) return syntax();
    }
    p.pattern = std::string(op.substr(offset));
    if (has_space(p.pattern)) return syntax();
    auto it = std::find_if(u.keys.begin(), u.keys.end(),
                           [&](const AclKeyPattern& k) { return k.pattern == p.pattern; });
    if (it == u.keys.end()) {
      u.keys.push_back(std::move(p));
    } else {
      it->read = it->read || p.read;
      it->write = it->write || p.write;
    }
  } else if (!op.empty() && op[0] == '&') {
    if (u.allchannels) {
      return Status::InvalidArgument(
          "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does "
          "not have any effect. Try 'resetchannels' to start with an empty list of channels");
    }
    std::string p(op.substr(1));
    if (has_space(p)) return syntax();
    if (std::find(u.channels.begin(), u.channels.end(), p) == u.channels.end()) {
      u.channels.push_back(std::move(p));
    }
  } else if (op.size() >= 2 && (op[0] == '+' || op[0] == '-') && op[1] == '@') {
    const bool allow = op[0] == '+';
    const uint32_t cat = acl_category_bit(l.substr(2));
    if (cat == 0) return unknown();
    change_category(u, commands, cat, allow);
  } else if (op.size() >= 2 && (op[0] == '+' || op[0] == '-')) {
    const bool allow = op[0] == '+';
    const std::string name = l.substr(1);
    const size_t bar = name.rfind('|');
    if (bar != std::string::npos) {
      const int parent = commands.find(name.substr(0, bar));
      if (parent < 0) return unknown();
      if (bar + 1 == name.size()) return syntax();
      if (commands.entries()[static_cast<size_t>(parent)].parent >= 0) {
        return Status::InvalidArgument("Allowing first-arg of a subcommand is not supported");
      }
      if (commands.entries()[static_cast<size_t>(parent)].subs.empty()) {
        // Redis 7.0 allows "+select|0" (a first argument): statekv does not.
        return Status::InvalidArgument(
            "Allowing a first argument of a command without subcommands is not supported by "
            "statekv");
      }
    }
    const int i = commands.find(name);
    if (i < 0) return unknown();
    change_perm(u, commands, i, allow);
  } else {
    return syntax();
  }
  return Status::OK();
}

std::vector<std::string> acl_flags(const AclUser& u) {
  std::vector<std::string> out;
  out.push_back(u.enabled ? "on" : "off");
  if (u.nopass) out.push_back("nopass");
  if (!u.sanitize.empty()) out.push_back(u.sanitize);
  return out;
}

std::string acl_describe_commands(const AclUser& u, const AclCommands& commands) {
  // The rules are derived from the permission bitmap, not replayed from what
  // was typed: +@all or -@all, then the categories that fit best (each one
  // more right than wrong, fewest differences first), then single commands.
  const bool additive = !u.allcommands;
  std::string rules = additive ? "-@all" : "+@all";
  AclUser fake = acl_new_user("", commands);
  if (!additive) fake.commands.assign(commands.size(), true);
  std::vector<bool> temp = u.commands;  // differences not yet covered
  const auto& names = acl_category_names();
  std::vector<bool> applied(names.size(), false);
  while (true) {
    int best = -1;
    size_t mindiff = SIZE_MAX, maxsame = 0;
    for (size_t j = 0; j < names.size(); ++j) {
      if (applied[j]) continue;
      const uint32_t cat = bit(static_cast<int>(j));
      size_t on = 0, off = 0;
      for (size_t i = 0; i < commands.size(); ++i) {
        if (!(commands.entries()[i].categories & cat)) continue;
        temp[i] ? ++on : ++off;
      }
      const size_t diff = additive ? off : on;
      const size_t same = additive ? on : off;
      if (same > diff && (diff < mindiff || (diff == mindiff && same > maxsame))) {
        best = static_cast<int>(j);
        mindiff = diff;
        maxsame = same;
      }
    }
    if (best < 0) break;
    const uint32_t cat = bit(best);
    change_category(fake, commands, cat, additive);
    for (size_t i = 0; i < commands.size(); ++i) {
      if (commands.entries()[i].categories & cat) temp[i] = !additive;
    }
    rules += std::string(additive ? " +@" : " -@") + std::string(names[static_cast<size_t>(best)]);
    applied[static_cast<size_t>(best)] = true;
  }
  // Entries are in table order, each container before its subcommands.
  for (size_t i = 0; i < commands.size(); ++i) {
    if (u.commands[i] != fake.commands[i]) {
      rules += std::string(u.commands[i] ? " +" : " -") + commands.entries()[i].fullname;
      change_perm(fake, commands, static_cast<int>(i), u.commands[i]);
    }
  }
  return rules;
}

std::string acl_describe_keys(const AclUser& u) {
  if (u.allkeys) return "~*";
  std::string out;
  for (const AclKeyPattern& p : u.keys) {
    if (!out.empty()) out += ' ';
    if (p.read && p.write) {
      out += "~";
    } else {
      out += p.read ? "%R~" : "%W~";
    }
    out += p.pattern;
  }
  return out;
}

std::string acl_describe_channels(const AclUser& u) {
  if (u.allchannels) return "&*";
  std::string out;
  for (const std::string& c : u.channels) out += (out.empty() ? "&" : " &") + c;
  return out;
}

std::string acl_describe(const AclUser& u, const AclCommands& commands) {
  std::string out;
  for (const std::string& f : acl_flags(u)) out += f + " ";
  for (const std::string& p : u.passwords) out += "#" + p + " ";
  const std::string keys = acl_describe_keys(u);
  if (!keys.empty()) out += keys + " ";
  if (u.allchannels) {
    out += "&* ";
  } else {
    out += "resetchannels ";
    const std::string channels = acl_describe_channels(u);
    if (!channels.empty()) out += channels + " ";
  }
  out += acl_describe_commands(u, commands);
  return out;
}

AclVerdict acl_check(const AclUser& u, int index, const CommandSpec& spec,
                     std::span<const std::string_view> argv) {
  if (index < 0 || !u.commands[static_cast<size_t>(index)]) return {AclVerdict::kCommand, 0};
  if (!u.allkeys) {
    // key_positions: movable keys (numkeys: SINTERCARD, ZUNION, LMPOP, BLMPOP...) too.
    const bool write = !(spec.flags & kReadonly);
    for (size_t i : key_positions(spec, argv)) {
      if (!key_allowed(u, argv[i], write)) return {AclVerdict::kKey, i};
    }
  }
  if (!u.allchannels) {
    const std::string_view name = spec.name;
    size_t first = 0, last = 0;
    bool literal = false;
    if (name == "publish" || name == "spublish") {
      first = last = 1;
    } else if (name == "subscribe" || name == "ssubscribe") {
      first = 1;
      last = argv.size() - 1;
    } else if (name == "psubscribe") {
      first = 1;
      last = argv.size() - 1;
      literal = true;
    }
    for (size_t i = first; first > 0 && i <= last && i < argv.size(); ++i) {
      if (!channel_allowed(u, argv[i], literal)) return {AclVerdict::kChannel, i};
    }
  }
  return {};
}

// ---- documents --------------------------------------------------------------

namespace {
constexpr std::string_view kDocHeader = "statekv-acl 1";
}

std::string encode_acl_document(const AclDocument& doc) {
  std::string out(kDocHeader);
  out += "\nversion " + std::to_string(doc.version) + "\n";
  for (const auto& [name, rules] : doc.users) out += "user " + name + " " + rules + "\n";
  return out;
}

Result<AclDocument> decode_acl_document(std::string_view bytes) {
  AclDocument doc;
  size_t pos = 0;
  int line_no = 0;
  bool versioned = false;
  while (pos < bytes.size()) {
    size_t end = bytes.find('\n', pos);
    if (end == std::string_view::npos) end = bytes.size();
    const std::string_view line = bytes.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    auto bad = [&](const std::string& why) {
      return Status::Corruption("ACL document line " + std::to_string(line_no) + ": " + why);
    };
    if (line_no == 1) {
      if (line != kDocHeader) return bad("not a statekv ACL document (format 1)");
      continue;
    }
    if (line.starts_with("version ")) {
      std::string_view v = line.substr(8);
      uint64_t n = 0;
      for (char ch : v) {
        if (ch < '0' || ch > '9') return bad("bad version");
        n = n * 10 + static_cast<uint64_t>(ch - '0');
      }
      if (v.empty()) return bad("bad version");
      doc.version = n;
      versioned = true;
    } else if (line.starts_with("user ")) {
      std::string_view rest = line.substr(5);
      const size_t space = rest.find(' ');
      const std::string name(rest.substr(0, space));
      if (name.empty()) return bad("a user without a name");
      const std::string rules(space == std::string_view::npos ? "" : rest.substr(space + 1));
      if (!doc.users.emplace(name, rules).second) return bad("user '" + name + "' twice");
    } else {
      return bad("unknown line");
    }
  }
  if (line_no == 0) return Status::Corruption("ACL document is empty");
  if (!versioned) return Status::Corruption("ACL document has no version");
  return doc;
}

std::string initial_acl_document(const std::string& hash) {
  AclDocument doc;
  doc.version = 1;
  doc.users["default"] =
      "on " + (hash.empty() ? std::string("nopass") : "#" + hash) + " ~* &* +@all";
  return encode_acl_document(doc);
}

// ---- Acl ---------------------------------------------------------------------

const AclUser* AclSnapshot::find(std::string_view name) const {
  auto it = users.find(name);
  return it == users.end() ? nullptr : it->second.get();
}

Acl::Acl(const CommandTable& table) : commands_(table) {
  auto s = std::make_shared<AclSnapshot>();
  s->users.emplace("default", std::make_shared<const AclUser>(acl_default_user("", commands_)));
  snapshot_ = std::move(s);
}

std::shared_ptr<const AclSnapshot> Acl::snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

void Acl::install(std::shared_ptr<const AclSnapshot> snapshot) {
  {
    std::lock_guard lock(mu_);
    snapshot_ = std::move(snapshot);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  installed_.notify_all();
}

Result<std::shared_ptr<const AclSnapshot>> Acl::compile(const AclDocument& doc) const {
  auto s = std::make_shared<AclSnapshot>();
  s->version = doc.version;
  for (const auto& [name, rules] : doc.users) {
    AclUser u = acl_new_user(name, commands_);
    std::istringstream in(rules);
    std::string op;
    while (in >> op) {
      Status st = acl_apply(u, op, commands_);
      if (!st.ok()) {
        return Status::Corruption("ACL document: user '" + name + "': rule '" + op +
                                  "': " + st.message());
      }
    }
    s->users.emplace(name, std::make_shared<const AclUser>(std::move(u)));
  }
  if (s->find("default") == nullptr) {
    return Status::Corruption("ACL document has no 'default' user");
  }
  return std::shared_ptr<const AclSnapshot>(std::move(s));
}

AclDocument Acl::document(const AclSnapshot& snapshot) const {
  AclDocument doc;
  doc.version = snapshot.version;
  for (const auto& [name, user] : snapshot.users) doc.users[name] = acl_describe(*user, commands_);
  return doc;
}

Status Acl::load(std::string_view bytes) {
  auto doc = decode_acl_document(bytes);
  if (!doc.ok()) return doc.status();
  auto compiled = compile(*doc);
  if (!compiled.ok()) return compiled.status();
  {
    std::lock_guard lock(mu_);
    if (snapshot_->known && snapshot_->version >= doc->version) return Status::OK();
  }
  install(std::move(compiled).value());
  return Status::OK();
}

bool Acl::wait_for_version(uint64_t version, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return installed_.wait_for(lock, timeout, [&] { return snapshot_->version >= version; });
}

void Acl::log(AclLogEntry entry, int64_t now_ms) {
  std::lock_guard lock(mu_);
  // Redis merges an entry equal to a recent one (same reason, context,
  // object, user) into it, counting it.
  for (AclLogEntry& e : log_) {
    if (e.reason == entry.reason && e.context == entry.context && e.object == entry.object &&
        e.username == entry.username && now_ms - e.updated_ms < 60000) {
      ++e.count;
      e.updated_ms = now_ms;
      e.client_info = std::move(entry.client_info);
      return;
    }
  }
  entry.entry_id = next_entry_id_++;
  entry.created_ms = entry.updated_ms = now_ms;
  log_.push_front(std::move(entry));
  while (log_.size() > 128) log_.pop_back();
}

std::vector<AclLogEntry> Acl::log_entries(size_t max) const {
  std::lock_guard lock(mu_);
  std::vector<AclLogEntry> out;
  for (const AclLogEntry& e : log_) {
    if (out.size() >= max) break;
    out.push_back(e);
  }
  return out;
}

void Acl::log_reset() {
  std::lock_guard lock(mu_);
  log_.clear();
}

}  // namespace statekv::server
