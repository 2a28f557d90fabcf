// ACL users as Redis 7 has them: who may connect (on/off, passwords), which
// commands they may run (+cmd, -cmd, +@category, +cmd|sub), which keys
// (~pattern, %R~ / %W~ read or write only) and which pub/sub channels
// (&pattern) they may touch.
//
// The parts:
//   * AclCommands: every command and subcommand of the CommandTable with an
//     index, its full name ("config|get") and its categories, derived from the
//     CommandSpec (flags, group): read, write, fast, slow, admin, dangerous,
//     keyspace, string, connection, pubsub, ... (acl_category_names()).
//   * AclUser and acl_apply(): one user and one ACL SETUSER rule applied to
//     it, with Redis's error texts; acl_describe() is the user as ACL LIST
//     shows it, in rules that give the same user back when applied to a new
//     one (commands described from the permission bitmap, as Redis does:
//     +@all or -@all, then the categories that fit best, then single commands).
//   * acl_check(): may this user run this command with these arguments.
//   * AclDocument: every user as text ("user NAME RULES" lines, passwords as
//     SHA-256 hashes only), with a version: what a cluster's metadata service
//     keeps (raft key "acl", docs/security.md) and every node compiles.
//   * Acl: a node's current users (an immutable AclSnapshot swapped as a
//     whole) and its ACL LOG.
//
// Passwords are never kept in clear: ">pw" stores SHA-256(pw) in lowercase
// hex, as Redis does, and checks compare hashes in constant time.
//
// Thread safety: AclCommands, AclUser and AclSnapshot are immutable once
// built and may be shared; Acl's methods may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"

namespace statekv::server {

class CommandTable;
struct CommandSpec;

// Redis's command categories, in Redis's order (ACL CAT lists them so).
const std::vector<std::string_view>& acl_category_names();
// The bit of a category name (no '@'), 0 if unknown. "all" is not a category bit.
uint32_t acl_category_bit(std::string_view name);

// The categories of a command (parent: its container, or nullptr) derived
// from its spec, as acl_category_bit()s: the single source for ACL rules and
// COMMAND INFO.
uint32_t acl_command_categories(const CommandSpec& spec, const CommandSpec* parent);

class AclCommands {
 public:
  struct Entry {
    const CommandSpec* spec;
    int parent;             // index of the container, -1 for a top-level command
    std::string fullname;   // "get", "config|get"
    uint32_t categories;    // acl_category_bit()s
    std::vector<int> subs;  // a container's subcommands
  };

  explicit AclCommands(const CommandTable& table);
  size_t size() const { return entries_.size(); }
  const std::vector<Entry>& entries() const { return entries_; }
  // The index of a command or subcommand spec of the table; -1 if not one.
  int index(const CommandSpec* spec) const;
  // By full name in any case ("GET", "config|get"); -1 if unknown.
  int find(std::string_view fullname) const;

 private:
  std::vector<Entry> entries_;
  std::unordered_map<const CommandSpec*, int> by_spec_;
  std::unordered_map<std::string, int> by_name_;
};

struct AclKeyPattern {
  std::string pattern;
  bool read = true;
  bool write = true;
  bool operator==(const AclKeyPattern&) const = default;
};

struct AclUser {
  std::string name;
  bool enabled = false;
  bool nopass = false;
  // Redis's RESTORE payload flags: "", "sanitize-payload" (set by reset) or
  // "skip-sanitize-payload". statekv has no RESTORE; they are kept and shown.
  std::string sanitize;
  std::vector<std::string> passwords;  // SHA-256 of each, lowercase hex, in order added
  bool allkeys = false;
  std::vector<AclKeyPattern> keys;
  bool allchannels = false;
  std::vector<std::string> channels;
  bool allcommands = false;    // set by +@all: commands added later are allowed too
  std::vector<bool> commands;  // by AclCommands index

  // Everything allowed: the check can be skipped.
  bool unrestricted() const;
  bool operator==(const AclUser&) const = default;
};

// A user as ACL SETUSER creates it: off, no password, no keys, no channels,
// no commands (Redis 7's acl-pubsub-default resetchannels).
AclUser acl_new_user(std::string name, const AclCommands& commands);
// The "default" user with one password hash (or nopass when `hash` is empty),
// every command, key and channel: what requirepass makes.
AclUser acl_default_user(const std::string& hash, const AclCommands& commands);

// Applies one ACL SETUSER rule. On error the user may be partly changed (the
// caller works on a copy) and the message is Redis's text for that modifier
// ("Syntax error", "Unknown command or category name in ACL", ...).
Status acl_apply(AclUser& user, std::string_view op, const AclCommands& commands);
// Checks a user name as Redis does; the error is the whole reply text.
Status acl_check_username(std::string_view name);

// ACL GETUSER's fields and ACL LIST's line (without "user NAME ").
std::vector<std::string> acl_flags(const AclUser& user);
std::string acl_describe_commands(const AclUser& user, const AclCommands& commands);
std::string acl_describe_keys(const AclUser& user);
std::string acl_describe_channels(const AclUser& user);
std::string acl_describe(const AclUser& user, const AclCommands& commands);

std::string acl_password_hash(std::string_view password);
// True when the user is on and accepts `password` (nopass accepts any).
bool acl_password_ok(const AclUser& user, std::string_view password);

// The outcome of acl_check: allowed, or what was refused.
struct AclVerdict {
  enum Kind : unsigned char { kOk, kCommand, kKey, kChannel } kind = kOk;
  size_t arg = 0;  // the argv index of the refused key or channel
};
// May `user` run the command `index` (spec `spec`) with `argv`? Keys are the
// spec's key positions; a read-only command needs read permission on them,
// any other command write permission (%R~ / %W~). Channels: PUBLISH,
// SUBSCRIBE (glob-matched against the user's patterns) and PSUBSCRIBE (the
// pattern itself must be one of the user's, as in Redis).
AclVerdict acl_check(const AclUser& user, int index, const CommandSpec& spec,
                     std::span<const std::string_view> argv);

// ---- the shared document -------------------------------------------------

struct AclDocument {
  uint64_t version = 0;  // bumped by one on every change
  // Each user's rules as acl_describe() writes them, by name.
  std::map<std::string, std::string> users;
  bool operator==(const AclDocument&) const = default;
};
std::string encode_acl_document(const AclDocument& doc);
// Corruption naming the line on anything encode could not have written.
Result<AclDocument> decode_acl_document(std::string_view bytes);
// The document a cluster starts with: version 1, the "default" user with the
// password of SHA-256 `hash` (empty: nopass) and every permission. Needs no
// command table (the node that seeds it may not have one).
std::string initial_acl_document(const std::string& hash);

// ---- a node's users --------------------------------------------------------

struct AclSnapshot {
  uint64_t version = 0;  // of the document it came from; 0: local (no document)
  // false on a cluster node that has not learned the cluster's users yet.
  bool known = true;
  std::map<std::string, std::shared_ptr<const AclUser>, std::less<>> users;
  const AclUser* find(std::string_view name) const;
};

// One ACL LOG entry (Redis's fields).
struct AclLogEntry {
  uint64_t count = 1;
  std::string reason;   // "command", "key", "channel", "auth"
  std::string context;  // "toplevel"
  std::string object;   // the command, key or channel ("auth" for auth)
  std::string username;
  std::string client_info;
  uint64_t entry_id = 0;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

class Acl {
 public:
  explicit Acl(const CommandTable& table);
  const AclCommands& commands() const { return commands_; }

  std::shared_ptr<const AclSnapshot> snapshot() const;
  // Bumped on every install: a session compares it to its cached snapshot.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  void install(std::shared_ptr<const AclSnapshot> snapshot);

  // The users of a document, compiled against this node's commands.
  Result<std::shared_ptr<const AclSnapshot>> compile(const AclDocument& doc) const;
  // The document form of a snapshot (users described).
  AclDocument document(const AclSnapshot& snapshot) const;
  // Installs the cluster's users from the bytes of its document (a cluster
  // node, each time the metadata service applies a change), unless the
  // installed ones are as new. Corruption when the bytes do not decode or a
  // rule does not compile here; the installed users then stay.
  Status load(std::string_view bytes);
  // Waits until a document of at least `version` is installed; false on timeout.
  bool wait_for_version(uint64_t version, std::chrono::milliseconds timeout) const;

  // ACL LOG: the newest first; at most 128 entries (Redis's acllog-max-len).
  void log(AclLogEntry entry, int64_t now_ms);
  std::vector<AclLogEntry> log_entries(size_t max) const;
  void log_reset();

 private:
  AclCommands commands_;
  mutable std::mutex mu_;
  mutable std::condition_variable installed_;
  std::shared_ptr<const AclSnapshot> snapshot_;
  std::atomic<uint64_t> generation_{0};
  std::deque<AclLogEntry> log_;
  uint64_t next_entry_id_ = 0;
};

// Where the users live when they are shared by a cluster (implemented by
// node/ over the metadata service); absent on a standalone server, whose
// users are its own. Blocking; any thread.
class AclStore {
 public:
  virtual ~AclStore() = default;
  using Change = std::function<Result<AclDocument>(const AclDocument& current)>;
  // Applies `change` to the cluster's document by read-modify-CAS (retried
  // when another change came first). Returns the version written, or the
  // change's own error, or why the metadata service could not take it.
  virtual Result<uint64_t> update(const Change& change) = 0;
};

}  // namespace statekv::server
