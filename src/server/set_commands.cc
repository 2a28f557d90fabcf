// Set commands — Redis 7.0 semantics over Collection (collection.h): small
// sets are one record (an intset of integers in ascending order, or a listpack
// in insertion order), large ones one engine entry per member.
//
// Multi-key commands lock every key they name (Store::lock orders the stripes)
// and commit their effect, the destination included, as one Mutation.
#include <algorithm>
#include <limits>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "server/collection_command.h"
#include "server/glob.h"
#include "server/number.h"

namespace statekv::server {
namespace {

constexpr int64_t kLongMax = std::numeric_limits<int64_t>::max();

void cmd_sadd(CommandContext& c) {
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto s = open_collection(c, key, *locked, ValueType::kSet);
  if (!s) return;
  int64_t added = 0;
  for (size_t i = 2; i < c.argv.size(); ++i) {
    auto r = s->put(c.argv[i], {});
    if (!c.ok(r)) return;
    added += *r;
  }
  if (!commit_collection(c, *s)) return;
  c.out.integer(added);
}

void cmd_srem(CommandContext& c) {
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto s = open_collection(c, key, *locked, ValueType::kSet);
  if (!s) return;
  int64_t removed = 0;
  for (size_t i = 2; i < c.argv.size() && s->size() > 0; ++i) {
    auto r = s->erase(c.argv[i]);
    if (!c.ok(r)) return;
    removed += *r;
  }
  if (!commit_collection(c, *s)) return;
  c.out.integer(removed);
}

std::optional<Collection> open_for_read(CommandContext& c, std::string_view key,
                                        const LockedRead& locked) {
  c.count_lookup(locked.live);
  return open_collection(c, key, locked, ValueType::kSet);
}

void cmd_sismember(CommandContext& c) {
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto s = open_for_read(c, c.argv[1], *locked);
  if (!s) return;
  auto v = s->get(c.argv[2]);
  if (!c.ok(v)) return;
  c.out.integer(v->has_value() ? 1 : 0);
}

void cmd_smismember(CommandContext& c) {
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto s = open_for_read(c, c.argv[1], *locked);
  if (!s) return;
  std::vector<bool> found;
  for (size_t i = 2; i < c.argv.size(); ++i) {
    auto v = s->get(c.argv[i]);
    if (!c.ok(v)) return;
    found.push_back(v->has_value());
  }
  c.out.array(found.size());
  for (bool f : found) c.out.integer(f ? 1 : 0);
}

void cmd_scard(CommandContext& c) {
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto s = open_for_read(c, c.argv[1], *locked);
  if (!s) return;
  c.out.integer(static_cast<int64_t>(s->size()));
}

void reply_members(CommandContext& c, const std::vector<std::string>& members) {
  c.out.set(members.size());
  for (const auto& m : members) c.out.bulk(m);
}

Status all_members(Collection& s, std::vector<std::string>* out) {
  out->reserve(out->size() + s.size());
  return s.for_each([&](std::string_view m, std::string_view) {
    out->emplace_back(m);
    return true;
  });
}

void cmd_spop(CommandContext& c) {
  if (c.argv.size() > 3) return c.out.error(kSyntaxError);
  Random& rng = command_random();
  std::string_view key = c.argv[1];
  if (c.argv.size() == 2) {
    auto locked = lock_and_read(c, key);
    if (!locked) return;
    auto s = open_collection(c, key, *locked, ValueType::kSet);
    if (!s) return;
    if (s->size() == 0) return c.out.null();
    auto e = s->random_one(rng);
    if (!c.ok(e)) return;
    if (!c.ok(s->erase(e->first))) return;
    if (!commit_collection(c, *s)) return;
    return c.out.bulk(e->first);
  }
  auto l = parse_int64(c.argv[2]);
  if (!l || *l < 0) return c.out.error("ERR value is out of range, must be positive");
  const uint64_t count = static_cast<uint64_t>(*l);
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto s = open_collection(c, key, *locked, ValueType::kSet);
  if (!s) return;
  if (s->size() == 0 || count == 0) return c.out.set(0);
  std::vector<std::string> popped;
  if (count >= s->size()) {
    // Everything: the key goes.
    if (!c.ok(all_members(*s, &popped))) return;
    Store::Write erase{key, locked->meta, true, {}, 0};
    if (!c.commit(std::span<const Store::Write>(&erase, 1))) return;
    return reply_members(c, popped);
  }
  auto picked = s->random_distinct(count, rng);
  if (!c.ok(picked)) return;
  for (auto& [m, v] : *picked) {
    if (!c.ok(s->erase(m))) return;
    popped.push_back(std::move(m));
  }
  if (!commit_collection(c, *s)) return;
  reply_members(c, popped);
}

void cmd_srandmember(CommandContext& c) {
  if (c.argv.size() > 3) return c.out.error(kSyntaxError);
  Random& rng = command_random();
  if (c.argv.size() == 2) {
    auto locked = lock_and_read(c, c.argv[1]);
    if (!locked) return;
    auto s = open_for_read(c, c.argv[1], *locked);
    if (!s) return;
    if (s->size() == 0) return c.out.null();
    auto e = s->random_one(rng);
    if (!c.ok(e)) return;
    return c.out.bulk(e->first);
  }
  auto l = parse_int64(c.argv[2]);
  if (!l) return c.out.error(kNotInteger);
  if (*l < -kLongMax) {
    return c.out.error(
        "ERR value is out of range, value must between -9223372036854775807 and "
        "9223372036854775807");
  }
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto s = open_for_read(c, c.argv[1], *locked);
  if (!s) return;
  const bool unique = *l >= 0;
  const uint64_t count = unique ? static_cast<uint64_t>(*l) : static_cast<uint64_t>(-*l);
  if (s->size() == 0 || count == 0) return c.out.array(0);
  std::vector<std::string> picked;
  if (!unique || count == 1) {
    if (count > kMaxRandomReply) return c.out.error(kRandomReplyTooLarge);
    for (uint64_t i = 0; i < count; ++i) {
      auto e = s->random_one(rng);
      if (!c.ok(e)) return;
      picked.push_back(std::move(e->first));
    }
  } else if (count >= s->size()) {
    if (!c.ok(all_members(*s, &picked))) return;
  } else {
    auto r = s->random_distinct(count, rng);
    if (!c.ok(r)) return;
    for (auto& [m, v] : *r) picked.push_back(std::move(m));
  }
  c.out.array(picked.size());
  for (const auto& m : picked) c.out.bulk(m);
}

// ---- several sets ----

// The keys of a multi-set command, read under their locks: nullopt (replied)
// for a key holding another type or an error; an absent key is an empty set.
struct OpenSets {
  Store::Locked guard;
  std::vector<Collection> sets;  // one per source key, in argument order
  std::vector<bool> live;
  Store::Meta dst_meta;  // when a destination was named
};

std::optional<OpenSets> open_sets(CommandContext& c, std::span<const std::string_view> sources,
                                  std::string_view dst) {
  std::vector<std::string_view> keys(sources.begin(), sources.end());
  if (!dst.empty()) keys.push_back(dst);
  OpenSets o{c.store().lock(keys), {}, {}, {}};
  std::string& buf = read_buffer();
  if (!dst.empty()) {
    RecordView rec;
    auto live = c.read_locked(dst, &buf, &rec, &o.dst_meta);
    if (!live) return std::nullopt;
  }
  for (std::string_view key : sources) {
    RecordView rec;
    Store::Meta meta;
    auto live = c.read_locked(key, &buf, &rec, &meta);
    if (!live) return std::nullopt;
    if (dst.empty()) c.count_lookup(*live);
    auto s = open_collection(c, key, *live, rec, meta, ValueType::kSet);
    if (!s) return std::nullopt;
    o.live.push_back(*live);
    o.sets.push_back(std::move(*s));
  }
  return o;
}

enum class SetOp { kUnion, kDiff };

// Members of the intersection, at most limit of them (0: all).
Status intersect(std::vector<Collection>& sets, uint64_t limit, std::vector<std::string>* out) {
  for (const auto& s : sets) {
    if (s.size() == 0) return Status::OK();
  }
  std::vector<Collection*> order;
  for (auto& s : sets) order.push_back(&s);
  std::stable_sort(order.begin(), order.end(),
                   [](const Collection* a, const Collection* b) { return a->size() < b->size(); });
  std::vector<std::string> candidates;
  Status st = all_members(*order[0], &candidates);
  if (!st.ok()) return st;
  for (auto& m : candidates) {
    bool everywhere = true;
    for (size_t i = 1; i < order.size() && everywhere; ++i) {
      auto v = order[i]->get(m);
      if (!v.ok()) return v.status();
      everywhere = v->has_value();
    }
    if (!everywhere) continue;
    out->push_back(std::move(m));
    if (limit != 0 && out->size() >= limit) break;
  }
  return Status::OK();
}

Status union_or_diff(std::vector<Collection>& sets, SetOp op, std::vector<std::string>* out) {
  if (op == SetOp::kUnion) {
    std::unordered_set<std::string> seen;
    for (auto& s : sets) {
      Status st = s.for_each([&](std::string_view m, std::string_view) {
        if (seen.emplace(m).second) out->emplace_back(m);
        return true;
      });
      if (!st.ok()) return st;
    }
    return Status::OK();
  }
  if (sets.empty() || sets[0].size() == 0) return Status::OK();
  std::vector<std::string> first;
  Status st = all_members(sets[0], &first);
  if (!st.ok()) return st;
  for (auto& m : first) {
    bool elsewhere = false;
    for (size_t i = 1; i < sets.size() && !elsewhere; ++i) {
      auto v = sets[i].get(m);
      if (!v.ok()) return v.status();
      elsewhere = v->has_value();
    }
    if (!elsewhere) out->push_back(std::move(m));
  }
  return Status::OK();
}

// Replaces dst with a set of members (deletes it when there are none).
void store_result(CommandContext& c, std::string_view dst, const Store::Meta& dst_meta,
                  const std::vector<std::string>& members) {
  if (members.empty()) {
    if (dst_meta.exists) {
      Store::Write erase{dst, dst_meta, true, {}, 0};
      if (!c.commit(std::span<const Store::Write>(&erase, 1))) return;
    }
    return c.out.integer(0);
  }
  auto fresh = Collection::open(c.store(), ValueType::kSet, dst, dst_meta, nullptr, c.txn);
  if (!c.ok(fresh)) return;
  fresh->drop_ttl();
  for (const auto& m : members) {
    if (!c.ok(fresh->put(m, {}))) return;
  }
  if (!commit_collection(c, *fresh)) return;
  c.out.integer(static_cast<int64_t>(members.size()));
}

void cmd_sinter(CommandContext& c) {
  auto o = open_sets(c, c.argv.subspan(1), {});
  if (!o) return;
  std::vector<std::string> members;
  if (!c.ok(intersect(o->sets, 0, &members))) return;
  reply_members(c, members);
}

void cmd_sinterstore(CommandContext& c) {
  auto o = open_sets(c, c.argv.subspan(2), c.argv[1]);
  if (!o) return;
  std::vector<std::string> members;
  if (!c.ok(intersect(o->sets, 0, &members))) return;
  store_result(c, c.argv[1], o->dst_meta, members);
}

void cmd_sintercard(CommandContext& c) {
  auto numkeys = parse_int64(c.argv[1]);
  if (!numkeys || *numkeys < 1) return c.out.error("ERR numkeys should be greater than 0");
  if (*numkeys > static_cast<int64_t>(c.argv.size()) - 2) {
    return c.out.error("ERR Number of keys can't be greater than number of args");
  }
  uint64_t limit = 0;
  for (size_t j = 2 + static_cast<size_t>(*numkeys); j < c.argv.size(); ++j) {
    const bool more = j + 1 < c.argv.size();
    if (iequals(c.argv[j], "limit") && more) {
      auto l = parse_int64(c.argv[++j]);
      if (!l || *l < 0) return c.out.error("ERR LIMIT can't be negative");
      limit = static_cast<uint64_t>(*l);
    } else {
      return c.out.error(kSyntaxError);
    }
  }
  auto o = open_sets(c, c.argv.subspan(2, static_cast<size_t>(*numkeys)), {});
  if (!o) return;
  std::vector<std::string> members;
  if (!c.ok(intersect(o->sets, limit, &members))) return;
  c.out.integer(static_cast<int64_t>(members.size()));
}

void union_diff_generic(CommandContext& c, SetOp op, bool store) {
  auto o = store ? open_sets(c, c.argv.subspan(2), c.argv[1]) : open_sets(c, c.argv.subspan(1), {});
  if (!o) return;
  std::vector<std::string> members;
  if (!c.ok(union_or_diff(o->sets, op, &members))) return;
  if (store) return store_result(c, c.argv[1], o->dst_meta, members);
  reply_members(c, members);
}
void cmd_sunion(CommandContext& c) {
  union_diff_generic(c, SetOp::kUnion, false);
}
void cmd_sunionstore(CommandContext& c) {
  union_diff_generic(c, SetOp::kUnion, true);
}
void cmd_sdiff(CommandContext& c) {
  union_diff_generic(c, SetOp::kDiff, false);
}
void cmd_sdiffstore(CommandContext& c) {
  union_diff_generic(c, SetOp::kDiff, true);
}

void cmd_smembers(CommandContext& c) {
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto s = open_for_read(c, c.argv[1], *locked);
  if (!s) return;
  std::vector<std::string> members;
  if (!c.ok(all_members(*s, &members))) return;
  reply_members(c, members);
}

void cmd_smove(CommandContext& c) {
  std::string_view src = c.argv[1];
  std::string_view dst = c.argv[2];
  std::string_view member = c.argv[3];
  std::string_view keys[2] = {src, dst};
  auto guard = c.store().lock(keys);
  std::string& buf = read_buffer();
  RecordView rec;
  Store::Meta src_meta;
  auto src_live = c.read_locked(src, &buf, &rec, &src_meta);
  if (!src_live) return;
  std::optional<Collection> from;
  if (*src_live) {
    from = open_collection(c, src, true, rec, src_meta, ValueType::kSet);
    if (!from) return;
  }
  Store::Meta dst_meta;
  auto dst_live = c.read_locked(dst, &buf, &rec, &dst_meta);
  if (!dst_live) return;
  if (!*src_live) return c.out.integer(0);
  auto to = open_collection(c, dst, *dst_live, rec, dst_meta, ValueType::kSet);
  if (!to) return;
  if (src == dst) {
    auto v = from->get(member);
    if (!c.ok(v)) return;
    return c.out.integer(v->has_value() ? 1 : 0);
  }
  auto removed = from->erase(member);
  if (!c.ok(removed)) return;
  if (!*removed) return c.out.integer(0);
  if (!c.ok(to->put(member, {}))) return;
  Collection* both[2] = {&*from, &*to};
  if (!commit_collections(c, both)) return;
  c.out.integer(1);
}

void cmd_sscan(CommandContext& c) {
  auto cursor = parse_cursor(c.argv[2]);
  if (!cursor) return c.out.error("ERR invalid cursor");
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto s = open_for_read(c, c.argv[1], *locked);
  if (!s) return;
  if (!locked->live) {
    c.out.array(2);
    c.out.bulk("0");
    return c.out.array(0);
  }
  ElementScanOptions options;
  if (!parse_element_scan_options(c, c.argv.subspan(3), &options)) return;
  std::vector<std::string> items;
  uint64_t next = 0;
  Status st = s->scan(
      *cursor, options.count,
      [&](std::string_view m, std::string_view) {
        if (!options.use_pattern || glob_match(options.pattern, m)) items.emplace_back(m);
        return true;
      },
      &next);
  if (!c.ok(st)) return;
  c.out.array(2);
  c.out.bulk(std::to_string(next));
  c.out.array(items.size());
  for (const auto& item : items) c.out.bulk(item);
}

}  // namespace

void add_set_commands(std::vector<CommandSpec>& out) {
  const std::string_view g = "set";
  constexpr uint32_t kWF = kWrite | kDenyOom | kFast;
  constexpr uint32_t kRF = kReadonly | kFast;
  const std::string_view scan_complexity =
      "O(1) for every call. O(N) for a complete iteration, including enough command calls for "
      "the cursor to return back to 0. N is the number of elements inside the collection.";
  out.push_back({"sadd", -3, kWF, 1, 1, 1, g,
                 "Adds one or more members to a set. Creates the key if it doesn't exist.", "1.0.0",
                 "O(1) for each element added, so O(N) to add N elements when the command is "
                 "called with multiple arguments.",
                 "key:key member:string...", cmd_sadd});
  out.push_back({"srem", -3, kWrite | kFast, 1, 1, 1, g,
                 "Removes one or more members from a set. Deletes the set if the last member was "
                 "removed.",
                 "1.0.0", "O(N) where N is the number of members to be removed.",
                 "key:key member:string...", cmd_srem});
  out.push_back({"smembers", 2, kReadonly, 1, 1, 1, g, "Returns all members of a set.", "1.0.0",
                 "O(N) where N is the set cardinality.", "key:key", cmd_smembers});
  out.back().tips = "nondeterministic_output_order";
  out.push_back({"sismember", 3, kRF, 1, 1, 1, g, "Determines whether a member belongs to a set.",
                 "1.0.0", "O(1)", "key:key member:string", cmd_sismember});
  out.push_back({"smismember", -3, kRF, 1, 1, 1, g,
                 "Determines whether multiple members belong to a set.", "6.2.0",
                 "O(N) where N is the number of elements being checked for membership",
                 "key:key member:string...", cmd_smismember});
  out.push_back({"scard", 2, kRF, 1, 1, 1, g, "Returns the number of members in a set.", "1.0.0",
                 "O(1)", "key:key", cmd_scard});
  out.push_back({"spop", -2, kWrite | kFast, 1, 1, 1, g,
                 "Returns one or more random members from a set after removing them. Deletes the "
                 "set if the last member was popped.",
                 "1.0.0",
                 "Without the count argument O(1), otherwise O(N) where N is the value of the "
                 "passed count.",
                 "key:key [count:integer]", cmd_spop});
  out.back().tips = "nondeterministic_output";
  out.push_back({"srandmember", -2, kReadonly, 1, 1, 1, g,
                 "Get one or multiple random members from a set", "1.0.0",
                 "Without the count argument O(1), otherwise O(N) where N is the absolute value "
                 "of the passed count.",
                 "key:key [count:integer]", cmd_srandmember});
  out.back().tips = "nondeterministic_output";
  out.push_back({"sinter", -2, kReadonly, 1, -1, 1, g, "Returns the intersect of multiple sets.",
                 "1.0.0",
                 "O(N*M) worst case where N is the cardinality of the smallest set and M is the "
                 "number of sets.",
                 "key:key...", cmd_sinter});
  out.back().tips = "nondeterministic_output_order";
  out.push_back({"sintercard", -3, kReadonly, 0, 0, 0, g,
                 "Returns the number of members of the intersect of multiple sets.", "7.0.0",
                 "O(N*M) worst case where N is the cardinality of the smallest set and M is the "
                 "number of sets.",
                 "numkeys:integer key:key... [LIMIT=limit:integer]", cmd_sintercard});
  out.back().numkeys_index = 1;
  out.push_back({"sinterstore", -3, kWrite | kDenyOom, 1, -1, 1, g,
                 "Stores the intersect of multiple sets in a key.", "1.0.0",
                 "O(N*M) worst case where N is the cardinality of the smallest set and M is the "
                 "number of sets.",
                 "destination:key key:key...", cmd_sinterstore});
  out.push_back({"sunion", -2, kReadonly, 1, -1, 1, g, "Returns the union of multiple sets.",
                 "1.0.0", "O(N) where N is the total number of elements in all given sets.",
                 "key:key...", cmd_sunion});
  out.back().tips = "nondeterministic_output_order";
  out.push_back({"sunionstore", -3, kWrite | kDenyOom, 1, -1, 1, g,
                 "Stores the union of multiple sets in a key.", "1.0.0",
                 "O(N) where N is the total number of elements in all given sets.",
                 "destination:key key:key...", cmd_sunionstore});
  out.push_back({"sdiff", -2, kReadonly, 1, -1, 1, g, "Returns the difference of multiple sets.",
                 "1.0.0", "O(N) where N is the total number of elements in all given sets.",
                 "key:key...", cmd_sdiff});
  out.back().tips = "nondeterministic_output_order";
  out.push_back({"sdiffstore", -3, kWrite | kDenyOom, 1, -1, 1, g,
                 "Stores the difference of multiple sets in a key.", "1.0.0",
                 "O(N) where N is the total number of elements in all given sets.",
                 "destination:key key:key...", cmd_sdiffstore});
  out.push_back({"smove", 4, kWrite | kFast, 1, 2, 1, g, "Moves a member from one set to another.",
                 "1.0.0", "O(1)", "source:key destination:key member:string", cmd_smove});
  out.push_back({"sscan", -3, kReadonly, 1, 1, 1, g, "Iterates over members of a set.", "2.8.0",
                 scan_complexity,
                 "key:key cursor:integer [MATCH=pattern:pattern] "
                 "[COUNT=count:integer]",
                 cmd_sscan});
  out.back().tips = "nondeterministic_output";
}

}  // namespace statekv::server
