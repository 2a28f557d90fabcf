// Blocking pops and the multi-key pops — Redis 7.0 semantics:
//   BLPOP / BRPOP key [key ...] timeout
//   BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout, BRPOPLPUSH source destination timeout
//   BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count], LMPOP numkeys ...
//   BZPOPMIN / BZPOPMAX key [key ...] timeout
//   BZMPOP timeout numkeys key [key ...] MIN|MAX [COUNT count], ZMPOP numkeys ...
//
// Each command first tries its keys in argument order, under the stripe locks
// of all of them: the first non-empty one of the right type is popped (a key
// of another type before it answers WRONGTYPE). When all are empty, the
// client blocks (server/blocking.h) unless it may not: inside MULTI/EXEC a
// blocking command answers as on timeout at once, as in Redis. A blocked
// client is served by serve_blocked() after the command that filled one of
// its keys returned, with the same pop code, through the proposer, so its
// effect replicates like any command's (docs/replication.md).
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "server/blocking.h"
#include "server/collection_command.h"
#include "server/command_table.h"
#include "server/list.h"
#include "server/number.h"
#include "server/zset.h"

namespace statekv::server {
namespace {

enum class Op : uint8_t {
  kListPop,   // BLPOP BRPOP: [key, element]
  kListMove,  // BLMOVE BRPOPLPUSH: element
  kListMpop,  // LMPOP BLMPOP: [key, [element ...]]
  kZsetPop,   // BZPOPMIN BZPOPMAX: [key, member, score]
  kZsetMpop,  // ZMPOP BZMPOP: [key, [[member, score] ...]]
};

// One command's arguments, parsed (the same way when it runs and when a
// blocked one is served).
struct Parsed {
  Op op = Op::kListPop;
  bool blocking = true;
  bool left = true;     // pop from the head (list) / the lowest scores (zset)
  bool to_left = true;  // BLMOVE: push at the head of destination
  size_t dst = 0;       // BLMOVE: argv index of destination
  int64_t count = 1;    // *MPOP
  std::vector<size_t> keys;
  int64_t timeout_ms = 0;
};

bool is_list_op(Op op) {
  return op == Op::kListPop || op == Op::kListMove || op == Op::kListMpop;
}

// LEFT/RIGHT (lists) or MIN/MAX (sorted sets).
bool parse_where(std::string_view arg, bool zset, bool* left) {
  if (iequals(arg, zset ? "min" : "left")) {
    *left = true;
  } else if (iequals(arg, zset ? "max" : "right")) {
    *left = false;
  } else {
    return false;
  }
  return true;
}

// Redis's getRangeLongFromObjectOrReply(1, LONG_MAX, msg): msg for anything
// that is not an integer in range.
std::optional<int64_t> parse_positive(std::string_view text) {
  auto v = parse_int64(text);
  if (!v || *v < 1) return std::nullopt;
  return v;
}

// *MPOP from argv[numkeys_at]: numkeys key ... where [COUNT count].
bool parse_mpop(std::span<const std::string> argv, size_t numkeys_at, bool zset, Parsed* p,
                std::string* error) {
  auto numkeys = parse_positive(argv[numkeys_at]);
  if (!numkeys) {
    *error = "ERR numkeys should be greater than 0";
    return false;
  }
  const uint64_t where_at = numkeys_at + static_cast<uint64_t>(*numkeys) + 1;
  if (static_cast<uint64_t>(*numkeys) >= argv.size() || where_at >= argv.size() ||
      !parse_where(argv[where_at], zset, &p->left)) {
    *error = std::string(kSyntaxError);
    return false;
  }
  bool count_given = false;
  for (size_t j = where_at + 1; j < argv.size(); ++j) {
    const bool more = j + 1 < argv.size();
    if (!count_given && iequals(argv[j], "count") && more) {
      auto n = parse_positive(argv[++j]);
      if (!n) {
        *error = "ERR count should be greater than 0";
        return false;
      }
      p->count = *n;
      count_given = true;
    } else {
      *error = std::string(kSyntaxError);
      return false;
    }
  }
  for (size_t k = numkeys_at + 1; k < where_at; ++k) p->keys.push_back(k);
  return true;
}

// Parses argv (argv[0] names the command, any case) as Redis checks it, in
// Redis's order. False with the error text to reply.
bool parse(std::span<const std::string> argv, Parsed* p, std::string* error) {
  std::string name(argv[0]);
  for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  auto timeout = [&](std::string_view text) {
    auto t = parse_block_timeout(text, error);
    if (t) p->timeout_ms = *t;
    return t.has_value();
  };
  auto keys_before_timeout = [&] {
    for (size_t k = 1; k + 1 < argv.size(); ++k) p->keys.push_back(k);
    return timeout(argv.back());
  };
  if (name == "blpop" || name == "brpop") {
    p->op = Op::kListPop;
    p->left = name == "blpop";
    return keys_before_timeout();
  }
  if (name == "bzpopmin" || name == "bzpopmax") {
    p->op = Op::kZsetPop;
    p->left = name == "bzpopmin";
    return keys_before_timeout();
  }
  if (name == "blmove" || name == "brpoplpush") {
    p->op = Op::kListMove;
    p->keys = {1};
    p->dst = 2;
    if (name == "blmove") {
      if (!parse_where(argv[3], false, &p->left) || !parse_where(argv[4], false, &p->to_left)) {
        *error = std::string(kSyntaxError);
        return false;
      }
    } else {
      p->left = false;
      p->to_left = true;
    }
    return timeout(argv.back());
  }
  if (name == "blmpop" || name == "bzmpop") {
    const bool zset = name == "bzmpop";
    p->op = zset ? Op::kZsetMpop : Op::kListMpop;
    // Redis 7.0 reads the timeout last here.
    return parse_mpop(argv, 2, zset, p, error) && timeout(argv[1]);
  }
  if (name == "lmpop" || name == "zmpop") {
    const bool zset = name == "zmpop";
    p->op = zset ? Op::kZsetMpop : Op::kListMpop;
    p->blocking = false;
    return parse_mpop(argv, 1, zset, p, error);
  }
  *error = "ERR unknown blocking command";
  return false;
}

// The keys whose stripes a try locks: the keys waited on and a destination.
std::vector<std::string_view> lock_set(std::span<const std::string> argv, const Parsed& p) {
  std::vector<std::string_view> keys;
  for (size_t k : p.keys) keys.push_back(argv[k]);
  if (p.op == Op::kListMove) keys.push_back(argv[p.dst]);
  return keys;
}

// The `count` lowest (or highest) members of z in pop order, as ZPOPMIN /
// ZPOPMAX take them (through the score index when z has one).
Result<std::vector<zset::Scored>> lowest(Collection& z, int64_t count, bool min) {
  zset::RangeSpec spec;
  spec.rev = !min;
  spec.start = 0;
  spec.end = count - 1;
  return zset::range_of(z, spec);
}

// What a try on one key came to.
enum class Outcome : uint8_t {
  kServed,     // popped and replied
  kEmpty,      // absent or empty: nothing replied
  kOtherType,  // holds another type (serving: skip this waiter; nothing replied)
  kReplied,    // an error was replied (WRONGTYPE, an engine error)
};

// Pops from argv[key] for p, the stripes of lock_set() held. `claim` runs
// after the pop is decided and before its effect is committed; false there
// abandons the try (another took the waiter) and nothing is replied.
// `serving`: a blocked client is served (a key of another type is skipped,
// not WRONGTYPE).
Outcome try_key(CommandContext& c, const Parsed& p, size_t key_at, bool serving,
                const std::function<bool()>& claim) {
  std::string_view key = c.argv[key_at];
  std::string& buf = read_buffer();
  RecordView rec;
  Store::Meta meta;
  auto live = c.read_locked(key, &buf, &rec, &meta);
  if (!live) return Outcome::kReplied;
  if (!*live) return Outcome::kEmpty;
  const ValueType want = is_list_op(p.op) ? ValueType::kList : ValueType::kZset;
  if (rec.type != want) {
    if (serving) return Outcome::kOtherType;
    c.out.error(kWrongType);
    return Outcome::kReplied;
  }
  if (is_list_op(p.op)) {
    auto from = List::open(c.store(), key, meta, &rec, c.txn);
    if (!c.ok(from)) return Outcome::kReplied;
    if (from->size() == 0) return Outcome::kEmpty;
    std::optional<List> to;
    if (p.op == Op::kListMove && c.argv[p.dst] != key) {
      Store::Meta dst_meta;
      auto dst_live = c.read_locked(c.argv[p.dst], &buf, &rec, &dst_meta);
      if (!dst_live) return Outcome::kReplied;
      if (*dst_live && rec.type != ValueType::kList) {
        // Redis answers WRONGTYPE to a served BLMOVE too (and it stops waiting).
        if (!claim()) return Outcome::kReplied;
        c.out.error(kWrongType);
        return Outcome::kReplied;
      }
      auto opened =
          List::open(c.store(), c.argv[p.dst], dst_meta, *dst_live ? &rec : nullptr, c.txn);
      if (!c.ok(opened)) return Outcome::kReplied;
      to = std::move(opened).value();
    }
    const int64_t n = p.op == Op::kListMpop ? p.count : 1;
    std::vector<std::string> items;
    while (static_cast<int64_t>(items.size()) < n && from->size() > 0) {
      auto v = p.left ? from->pop_front() : from->pop_back();
      if (!c.ok(v)) return Outcome::kReplied;
      items.push_back(std::move(*v));
    }
    if (p.op == Op::kListMove) {
      List& target = to ? *to : *from;
      if (p.to_left) {
        target.push_front(items[0]);
      } else {
        target.push_back(items[0]);
      }
    }
    if (!claim()) return Outcome::kReplied;
    std::vector<Store::Write> writes;
    from->writes(&writes);
    if (to) to->writes(&writes);
    if (!writes.empty() && !c.commit(writes)) return Outcome::kReplied;
    if (p.op == Op::kListMove) {
      c.out.bulk(items[0]);
    } else if (p.op == Op::kListPop) {
      c.out.array(2);
      c.out.bulk(key);
      c.out.bulk(items[0]);
    } else {
      c.out.array(2);
      c.out.bulk(key);
      c.out.array(items.size());
      for (const auto& item : items) c.out.bulk(item);
    }
    return Outcome::kServed;
  }
  auto z = open_collection(c, key, true, rec, meta, ValueType::kZset);
  if (!z) return Outcome::kReplied;
  if (z->size() == 0) return Outcome::kEmpty;
  auto popped = lowest(*z, p.op == Op::kZsetMpop ? p.count : 1, p.left);
  if (!c.ok(popped)) return Outcome::kReplied;
  for (const zset::Scored& e : *popped) {
    if (!c.ok(z->erase(e.member))) return Outcome::kReplied;
  }
  if (!claim()) return Outcome::kReplied;
  if (!commit_collection(c, *z)) return Outcome::kReplied;
  if (p.op == Op::kZsetPop) {
    c.out.array(3);
    c.out.bulk(key);
    c.out.bulk((*popped)[0].member);
    c.out.dbl((*popped)[0].score);
  } else {
    c.out.array(2);
    c.out.bulk(key);
    c.out.array(popped->size());
    for (const zset::Scored& e : *popped) {
      c.out.array(2);
      c.out.bulk(e.member);
      c.out.dbl(e.score);
    }
  }
  return Outcome::kServed;
}

// The reply of a blocking command that timed out (or could not block).
void timeout_reply(resp::Writer& out, Op op) {
  if (op == Op::kListMove) {
    out.null();
  } else {
    out.null_array();
  }
}

void cmd_pop(CommandContext& c) {
  std::vector<std::string> argv(c.argv.begin(), c.argv.end());
  Parsed p;
  std::string error;
  if (!parse(argv, &p, &error)) return c.out.error(error);
  const std::vector<std::string_view> locks = lock_set(argv, p);
  auto guard = c.store().lock(locks);
  static const std::function<bool()> kAlways = [] { return true; };
  for (size_t k : p.keys) {
    const Outcome o = try_key(c, p, k, false, kAlways);
    if (o == Outcome::kServed || o == Outcome::kReplied) return;
  }
  // Every key is empty. Redis: a client that may not block (inside
  // MULTI/EXEC) gets the timeout reply at once, even with timeout 0.
  if (!p.blocking || c.txn != nullptr) return timeout_reply(c.out, p.op);
  if (c.session.poll_blocking) {
    // A replica group's leader: it keeps the command waiting (no effect yet).
    c.session.would_block = true;
    return timeout_reply(c.out, p.op);
  }
  if (!c.session.defer) {
    return c.out.error(
        "ERR this connection cannot block (an internal session): blocking commands run on a "
        "client's connection");
  }
  auto w = std::make_shared<Waiter>();
  w->client = c.session.id;
  w->resp = c.session.resp;
  w->proposer = c.session.proposer;
  w->argv = std::move(argv);
  w->keys = p.keys;
  resp::Writer tw(&w->timeout_reply, c.session.resp);
  timeout_reply(tw, p.op);
  if (p.timeout_ms > 0) {
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    w->deadline_ms = p.timeout_ms > INT64_MAX - now ? 0 : now + p.timeout_ms;
  }
  w->reply = c.session.defer();
  c.session.blocked.store(true, std::memory_order_relaxed);
  c.state.blocking.block(std::move(w));
}

// Serves key's waiters in arrival order until it is empty.
void serve_key(ServiceState& state, const std::string& key) {
  for (const std::shared_ptr<Waiter>& w : state.blocking.waiters(key)) {
    Parsed p;
    std::string error;
    if (!parse(w->argv, &p, &error)) continue;  // parsed once already: cannot fail
    size_t key_at = 0;
    for (size_t k : p.keys) {
      if (w->argv[k] == key) {
        key_at = k;
        break;
      }
    }
    if (key_at == 0) continue;
    const CommandSpec* spec = state.table.find(w->argv[0]);
    if (spec == nullptr) continue;
    std::vector<std::string_view> views(w->argv.begin(), w->argv.end());
    Session session;
    session.id = w->client;
    session.resp = w->resp;
    session.proposer = w->proposer;
    std::string reply;
    resp::Writer out(&reply, w->resp);
    std::vector<std::string_view> locks = lock_set(w->argv, p);
    auto guard = state.store.lock(locks);
    CommandContext c{state, session, views, out, *spec, spec->name, unix_time_ms()};
    bool claimed = false;
    const std::function<bool()> claim = [&] { return claimed = state.blocking.claim(*w); };
    const Outcome o = try_key(c, p, key_at, true, claim);
    if (o == Outcome::kEmpty) break;  // nothing left for the waiters behind it either
    if (o == Outcome::kOtherType) continue;
    if (o == Outcome::kReplied && !claimed) {
      // An engine error before the claim: this waiter gets it, if still waiting.
      if (!state.blocking.claim(*w)) continue;
    }
    w->reply(std::move(reply), c.seq);
  }
}

}  // namespace

std::optional<size_t> blocking_timeout_at(std::span<const std::string_view> argv) {
  if (argv.empty()) return std::nullopt;
  std::string name(argv[0]);
  for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (name == "blmpop" || name == "bzmpop") {
    if (argv.size() < 2) return std::nullopt;
    return 1;
  }
  for (std::string_view n : {"blpop", "brpop", "bzpopmin", "bzpopmax", "blmove", "brpoplpush"}) {
    if (name == n) {
      if (argv.size() < 2) return std::nullopt;
      return argv.size() - 1;
    }
  }
  return std::nullopt;
}

void serve_blocked(ServiceState& state) {
  while (BlockingTable::has_ready()) {
    for (const std::string& key : BlockingTable::take_ready()) serve_key(state, key);
  }
}

void cmd_client_unblock(CommandContext& c) {
  auto id = parse_int64(c.argv[2]);
  if (!id) return c.out.error(kNotInteger);
  bool error = false;
  if (c.argv.size() == 4) {
    if (iequals(c.argv[3], "error")) {
      error = true;
    } else if (!iequals(c.argv[3], "timeout")) {
      return c.out.error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
    }
  } else if (c.argv.size() > 4) {
    return c.out.error(kSyntaxError);
  }
  // The timeout reply is the one the blocked client registered (its protocol).
  bool done = c.state.blocking.unblock(
      static_cast<uint64_t>(*id),
      error ? BlockingTable::Unblock::kError : BlockingTable::Unblock::kTimeout);
  // Blocked in a command routed to another node (coord/coordinator.h).
  if (!done && c.state.ctx.router != nullptr) {
    done = c.state.ctx.router->unblock(static_cast<uint64_t>(*id), error);
  }
  c.out.integer(done ? 1 : 0);
}

void add_blocking_commands(std::vector<CommandSpec>& out) {
  constexpr uint32_t kW = kWrite | kNoscript | kBlocking;
  out.push_back({"blpop", -3, kW, 1, -2, 1, "list",
                 "Removes and returns the first element in a list. Blocks until an element is "
                 "available otherwise. Deletes the list if the last element was popped.",
                 "2.0.0", "O(N) where N is the number of provided keys.",
                 "key:key... timeout:double", cmd_pop});
  out.push_back({"brpop", -3, kW, 1, -2, 1, "list",
                 "Removes and returns the last element in a list. Blocks until an element is "
                 "available otherwise. Deletes the list if the last element was popped.",
                 "2.0.0", "O(N) where N is the number of provided keys.",
                 "key:key... timeout:double", cmd_pop});
  out.push_back({"brpoplpush", 4, kW | kDenyOom, 1, 2, 1, "list",
                 "Pops an element from a list, pushes it to another list and returns it. Block "
                 "until an element is available otherwise. Deletes the list if the last element "
                 "was popped.",
                 "2.2.0", "O(1)", "source:key destination:key timeout:double", cmd_pop});
  out.push_back({"blmove", 6, kW | kDenyOom, 1, 2, 1, "list",
                 "Pops an element from a list, pushes it to another list and returns it. Blocks "
                 "until an element is available otherwise. Deletes the list if the last element "
                 "was moved.",
                 "6.2.0", "O(1)",
                 "source:key destination:key (wherefrom: LEFT | RIGHT) (whereto: LEFT | RIGHT) "
                 "timeout:double",
                 cmd_pop});
  out.push_back({"blmpop", -5, kWrite | kBlocking, 0, 0, 0, "list",
                 "Pops the first element from one of multiple lists. Blocks until an element is "
                 "available otherwise. Deletes the list if the last element was popped.",
                 "7.0.0",
                 "O(N+M) where N is the number of provided keys and M is the number of elements "
                 "returned.",
                 "timeout:double numkeys:integer key:key... (where: LEFT | RIGHT) "
                 "[COUNT=count:integer]",
                 cmd_pop});
  out.back().numkeys_index = 2;  // numkeys key ... (movable keys)
  out.push_back({"lmpop", -4, kWrite, 0, 0, 0, "list",
                 "Returns multiple elements from a list after removing them. Deletes the list if "
                 "the last element was popped.",
                 "7.0.0",
                 "O(N+M) where N is the number of provided keys and M is the number of elements "
                 "returned.",
                 "numkeys:integer key:key... (where: LEFT | RIGHT) [COUNT=count:integer]",
                 cmd_pop});
  out.back().numkeys_index = 1;  // numkeys key ... (movable keys)
  out.push_back({"bzpopmin", -3, kW | kFast, 1, -2, 1, "sorted-set",
                 "Removes and returns the member with the lowest score from one or more sorted "
                 "sets. Blocks until a member is available otherwise. Deletes the sorted set if "
                 "the last element was popped.",
                 "5.0.0", "O(log(N)) with N being the number of elements in the sorted set.",
                 "key:key... timeout:double", cmd_pop});
  out.push_back({"bzpopmax", -3, kW | kFast, 1, -2, 1, "sorted-set",
                 "Removes and returns the member with the highest score from one or more sorted "
                 "sets. Blocks until a member available otherwise.  Deletes the sorted set if the "
                 "last element was popped.",
                 "5.0.0", "O(log(N)) with N being the number of elements in the sorted set.",
                 "key:key... timeout:double", cmd_pop});
  out.push_back({"bzmpop", -5, kWrite | kBlocking, 0, 0, 0, "sorted-set",
                 "Removes and returns a member by score from one or more sorted sets. Blocks "
                 "until a member is available otherwise. Deletes the sorted set if the last "
                 "element was popped.",
                 "7.0.0",
                 "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number "
                 "of elements in the sorted set, and M being the number of elements popped.",
                 "timeout:double numkeys:integer key:key... (where: MIN | MAX) "
                 "[COUNT=count:integer]",
                 cmd_pop});
  out.back().numkeys_index = 2;  // numkeys key ... (movable keys)
  out.push_back({"zmpop", -4, kWrite, 0, 0, 0, "sorted-set",
                 "Returns the highest- or lowest-scoring members from one or more sorted sets "
                 "after removing them. Deletes the sorted set if the last member was popped.",
                 "7.0.0",
                 "O(K) + O(M*log(N)) where K is the number of provided keys, N being the number "
                 "of elements in the sorted set, and M being the number of elements popped.",
                 "numkeys:integer key:key... (where: MIN | MAX) [COUNT=count:integer]", cmd_pop});
  out.back().numkeys_index = 1;  // numkeys key ... (movable keys)
}

}  // namespace statekv::server
