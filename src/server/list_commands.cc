// List commands (non-blocking) — Redis 7.0 semantics over List (list.h):
// compact lists are one record, large ones one engine entry per element.
//
// Every command locks its key's stripe from the read to the commit, reads
// included, so that a multi-element read never sees half of another change.
#include <string>
#include <vector>

#include "server/collection_command.h"
#include "server/list.h"
#include "server/number.h"

namespace statekv::server {
namespace {

constexpr std::string_view kMustBePositive = "ERR value is out of range, must be positive";

// Opens the key read in r as a list: an absent key is an empty one. Replies
// WRONGTYPE (or the error) and returns nullopt when it holds another type.
std::optional<List> open_list(CommandContext& c, std::string_view key, const LockedRead& r) {
  if (r.live && r.rec.type != ValueType::kList) {
    c.out.error(kWrongType);
    return std::nullopt;
  }
  std::optional<List> l;  // returned in place: the List is never moved
  const Status opened =
      List::open_into(&l, c.store(), key, r.meta, r.live ? &r.rec : nullptr, c.txn);
  if (!opened.ok()) c.fail(opened);  // l is empty then
  return l;
}

std::optional<List> open_for_read(CommandContext& c, std::string_view key, const LockedRead& r) {
  c.count_lookup(r.live);
  return open_list(c, key, r);
}

// Commits one list's change as one effect; false (replied) when it failed.
bool commit_list(CommandContext& c, List& l) {
  ScratchWrites scratch;
  std::vector<Store::Write>& writes = scratch.get();
  l.writes(&writes);
  if (writes.empty()) return true;
  return c.commit(writes);
}

// Redis's index rule: negative counts from the end. nullopt when out of range.
std::optional<uint64_t> resolve_index(int64_t index, uint64_t size) {
  const int64_t n = static_cast<int64_t>(size);
  if (index < 0) index += n;
  if (index < 0 || index >= n) return std::nullopt;
  return static_cast<uint64_t>(index);
}

// Redis's range rule (LRANGE, LTRIM): false when the range is empty.
bool resolve_range(int64_t start, int64_t stop, uint64_t size, uint64_t* from, uint64_t* to) {
  const int64_t n = static_cast<int64_t>(size);
  if (start < 0) start = start < -n ? 0 : start + n;
  if (stop < 0) stop = stop < -n ? -1 : stop + n;
  if (start > stop || start >= n) return false;
  if (stop >= n) stop = n - 1;
  *from = static_cast<uint64_t>(start);
  *to = static_cast<uint64_t>(stop);
  return true;
}

void push_generic(CommandContext& c, bool front, bool only_existing) {
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto l = open_list(c, key, *locked);
  if (!l) return;
  if (only_existing && l->size() == 0) return c.out.integer(0);
  for (size_t i = 2; i < c.argv.size(); ++i) {
    if (front) {
      l->push_front(c.argv[i]);
    } else {
      l->push_back(c.argv[i]);
    }
  }
  if (!commit_list(c, *l)) return;
  c.out.integer(static_cast<int64_t>(l->size()));
}
void cmd_lpush(CommandContext& c) {
  push_generic(c, true, false);
}
void cmd_rpush(CommandContext& c) {
  push_generic(c, false, false);
}
void cmd_lpushx(CommandContext& c) {
  push_generic(c, true, true);
}
void cmd_rpushx(CommandContext& c) {
  push_generic(c, false, true);
}

void cmd_llen(CommandContext& c) {
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto l = open_for_read(c, c.argv[1], *locked);
  if (!l) return;
  c.out.integer(static_cast<int64_t>(l->size()));
}

void cmd_lrange(CommandContext& c) {
  auto start = parse_int64(c.argv[2]);
  auto stop = parse_int64(c.argv[3]);
  if (!start || !stop) return c.out.error(kNotInteger);
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto l = open_for_read(c, c.argv[1], *locked);
  if (!l) return;
  uint64_t from = 0;
  uint64_t to = 0;
  std::vector<std::string> items;
  if (resolve_range(*start, *stop, l->size(), &from, &to)) {
    if (!c.ok(l->range(from, to, &items))) return;
  }
  c.out.array(items.size());
  for (const auto& item : items) c.out.bulk(item);
}

void cmd_lindex(CommandContext& c) {
  auto index = parse_int64(c.argv[2]);
  if (!index) return c.out.error(kNotInteger);
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto l = open_for_read(c, c.argv[1], *locked);
  if (!l) return;
  auto i = resolve_index(*index, l->size());
  if (!i) return c.out.null();
  auto v = l->at(*i);
  if (!c.ok(v)) return;
  c.out.bulk(*v);
}

void pop_generic(CommandContext& c, bool front) {
  if (c.argv.size() > 3) {
    return c.out.error("ERR wrong number of arguments for '" + std::string(c.fullname) +
                       "' command");
  }
  const bool with_count = c.argv.size() == 3;
  int64_t count = 1;
  if (with_count) {
    auto n = parse_int64(c.argv[2]);
    if (!n || *n < 0) return c.out.error(kMustBePositive);
    count = *n;
  }
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto l = open_list(c, key, *locked);
  if (!l) return;
  if (l->size() == 0) return with_count ? c.out.null_array() : c.out.null();
  std::vector<std::string> items;
  while (static_cast<int64_t>(items.size()) < count && l->size() > 0) {
    auto v = front ? l->pop_front() : l->pop_back();
    if (!c.ok(v)) return;
    items.push_back(std::move(*v));
  }
  if (!commit_list(c, *l)) return;
  if (!with_count) return c.out.bulk(items[0]);
  c.out.array(items.size());
  for (const auto& item : items) c.out.bulk(item);
}
void cmd_lpop(CommandContext& c) {
  pop_generic(c, true);
}
void cmd_rpop(CommandContext& c) {
  pop_generic(c, false);
}

void cmd_lset(CommandContext& c) {
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  // Redis looks the key up before it reads the index.
  if (!locked->live) return c.out.error("ERR no such key");
  auto l = open_list(c, key, *locked);
  if (!l) return;
  auto index = parse_int64(c.argv[2]);
  if (!index) return c.out.error(kNotInteger);
  auto i = resolve_index(*index, l->size());
  if (!i) return c.out.error("ERR index out of range");
  if (!c.ok(l->set(*i, c.argv[3]))) return;
  if (!commit_list(c, *l)) return;
  c.out.simple("OK");
}

void cmd_ltrim(CommandContext& c) {
  auto start = parse_int64(c.argv[2]);
  auto stop = parse_int64(c.argv[3]);
  if (!start || !stop) return c.out.error(kNotInteger);
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto l = open_list(c, key, *locked);
  if (!l) return;
  uint64_t from = 0;
  uint64_t to = 0;
  if (resolve_range(*start, *stop, l->size(), &from, &to)) {
    if (!c.ok(l->trim(from, to - from + 1))) return;
  } else if (!c.ok(l->trim(0, 0))) {
    return;
  }
  if (!commit_list(c, *l)) return;
  c.out.simple("OK");
}

void cmd_lrem(CommandContext& c) {
  auto count = parse_int64(c.argv[2]);
  if (!count) return c.out.error(kNotInteger);
  std::string_view key = c.argv[1];
  std::string_view element = c.argv[3];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto l = open_list(c, key, *locked);
  if (!l) return;
  const uint64_t n = l->size();
  if (n == 0) return c.out.integer(0);
  std::vector<std::string> all;
  if (!c.ok(l->range(0, n - 1, &all))) return;
  // Mark the removed positions from the end Redis walks from.
  std::vector<bool> removed(n, false);
  // |count| without overflow at INT64_MIN; 0 removes every match.
  const uint64_t magnitude =
      *count < 0 ? uint64_t{0} - static_cast<uint64_t>(*count) : static_cast<uint64_t>(*count);
  const uint64_t limit = *count == 0 ? n : magnitude;
  uint64_t hits = 0;
  for (uint64_t k = 0; k < n && hits < limit; ++k) {
    const uint64_t i = *count < 0 ? n - 1 - k : k;
    if (all[i] == element) {
      removed[i] = true;
      ++hits;
    }
  }
  if (hits == 0) return c.out.integer(0);
  uint64_t first = 0;
  while (!removed[first]) ++first;
  std::vector<std::string> tail;
  for (uint64_t i = first; i < n; ++i) {
    if (!removed[i]) tail.push_back(std::move(all[i]));
  }
  if (!c.ok(l->replace_from(first, tail))) return;
  if (!commit_list(c, *l)) return;
  c.out.integer(static_cast<int64_t>(hits));
}

void cmd_linsert(CommandContext& c) {
  bool after = false;
  if (iequals(c.argv[2], "after")) {
    after = true;
  } else if (!iequals(c.argv[2], "before")) {
    return c.out.error(kSyntaxError);
  }
  std::string_view key = c.argv[1];
  auto locked = lock_and_read(c, key);
  if (!locked) return;
  auto l = open_list(c, key, *locked);
  if (!l) return;
  const uint64_t n = l->size();
  if (n == 0) return c.out.integer(0);
  std::vector<std::string> all;
  if (!c.ok(l->range(0, n - 1, &all))) return;
  uint64_t pivot = 0;
  while (pivot < n && all[pivot] != c.argv[3]) ++pivot;
  if (pivot == n) return c.out.integer(-1);
  const uint64_t at = after ? pivot + 1 : pivot;
  // Rewrites the elements from the insertion point on (Redis: O(N) too).
  std::vector<std::string> tail;
  tail.reserve(n - at + 1);
  tail.emplace_back(c.argv[4]);
  for (uint64_t i = at; i < n; ++i) tail.push_back(std::move(all[i]));
  if (!c.ok(l->replace_from(at, tail))) return;
  if (!commit_list(c, *l)) return;
  c.out.integer(static_cast<int64_t>(l->size()));
}

void cmd_lpos(CommandContext& c) {
  int64_t rank = 1;
  int64_t count = -1;  // -1: not given (a single reply)
  int64_t maxlen = 0;
  for (size_t j = 3; j < c.argv.size(); ++j) {
    const bool more = j + 1 < c.argv.size();
    if (iequals(c.argv[j], "rank") && more) {
      auto v = parse_int64(c.argv[++j]);
      if (!v) return c.out.error(kNotInteger);
      if (*v == 0) {
        return c.out.error(
            "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
            "or use negative to start from the end of the list");
      }
      rank = *v;
    } else if (iequals(c.argv[j], "count") && more) {
      auto v = parse_int64(c.argv[++j]);
      if (!v) return c.out.error(kNotInteger);
      if (*v < 0) return c.out.error("ERR COUNT can't be negative");
      count = *v;
    } else if (iequals(c.argv[j], "maxlen") && more) {
      auto v = parse_int64(c.argv[++j]);
      if (!v) return c.out.error(kNotInteger);
      if (*v < 0) return c.out.error("ERR MAXLEN can't be negative");
      maxlen = *v;
    } else {
      return c.out.error(kSyntaxError);
    }
  }
  auto locked = lock_and_read(c, c.argv[1]);
  if (!locked) return;
  auto l = open_for_read(c, c.argv[1], *locked);
  if (!l) return;
  const bool from_tail = rank < 0;
  // Matches to skip before reporting. Redis 7.0 negates RANK, so its most
  // negative value stays negative there and skips nothing.
  const uint64_t skip = rank > 0 ? static_cast<uint64_t>(rank) - 1
                                 : (rank == INT64_MIN ? 0 : static_cast<uint64_t>(-rank) - 1);
  const uint64_t n = l->size();
  const uint64_t limit = maxlen == 0 ? n : std::min<uint64_t>(n, static_cast<uint64_t>(maxlen));
  std::vector<int64_t> found;
  uint64_t matches = 0;
  for (uint64_t k = 0; k < limit; ++k) {
    const uint64_t i = from_tail ? n - 1 - k : k;
    auto v = l->at(i);
    if (!c.ok(v)) return;
    if (*v != c.argv[2]) continue;
    if (++matches <= skip) continue;
    found.push_back(static_cast<int64_t>(i));
    if (count != 0 && static_cast<int64_t>(found.size()) >= std::max<int64_t>(count, 1)) break;
  }
  if (count < 0) {
    if (found.empty()) return c.out.null();
    return c.out.integer(found[0]);
  }
  c.out.array(found.size());
  for (int64_t i : found) c.out.integer(i);
}

// LMOVE / RPOPLPUSH: pops from one end of src, pushes on one end of dst.
void move_generic(CommandContext& c, bool from_left, bool to_left) {
  std::string_view src = c.argv[1];
  std::string_view dst = c.argv[2];
  std::string_view keys[2] = {src, dst};
  auto guard = c.store().lock(keys);
  std::string& buf = read_buffer();
  RecordView rec;
  Store::Meta src_meta;
  auto src_live = c.read_locked(src, &buf, &rec, &src_meta);
  if (!src_live) return;
  if (!*src_live) return c.out.null();
  if (rec.type != ValueType::kList) return c.out.error(kWrongType);
  auto from = List::open(c.store(), src, src_meta, &rec, c.txn);
  if (!c.ok(from)) return;
  std::optional<List> to;
  if (src != dst) {
    Store::Meta dst_meta;
    auto dst_live = c.read_locked(dst, &buf, &rec, &dst_meta);
    if (!dst_live) return;
    if (*dst_live && rec.type != ValueType::kList) return c.out.error(kWrongType);
    auto opened = List::open(c.store(), dst, dst_meta, *dst_live ? &rec : nullptr, c.txn);
    if (!c.ok(opened)) return;
    to = std::move(opened).value();
  }
  List& target = to ? *to : *from;
  auto v = from_left ? from->pop_front() : from->pop_back();
  if (!c.ok(v)) return;
  if (to_left) {
    target.push_front(*v);
  } else {
    target.push_back(*v);
  }
  std::vector<Store::Write> writes;
  from->writes(&writes);
  if (to) to->writes(&writes);
  if (!c.commit(writes)) return;
  c.out.bulk(*v);
}

// LEFT / RIGHT: false (replied) when neither.
bool parse_side(CommandContext& c, std::string_view arg, bool* left) {
  if (iequals(arg, "left")) {
    *left = true;
  } else if (iequals(arg, "right")) {
    *left = false;
  } else {
    c.out.error(kSyntaxError);
    return false;
  }
  return true;
}

void cmd_lmove(CommandContext& c) {
  bool from_left = false;
  bool to_left = false;
  if (!parse_side(c, c.argv[3], &from_left) || !parse_side(c, c.argv[4], &to_left)) return;
  move_generic(c, from_left, to_left);
}

void cmd_rpoplpush(CommandContext& c) {
  move_generic(c, false, true);
}

}  // namespace

void add_list_commands(std::vector<CommandSpec>& out) {
  const std::string_view g = "list";
  constexpr uint32_t kWF = kWrite | kDenyOom | kFast;
  out.push_back({"lpush", -3, kWF, 1, 1, 1, g,
                 "Prepends one or more elements to a list. Creates the key if it doesn't exist.",
                 "1.0.0",
                 "O(1) for each element added, so O(N) to add N elements when the command is "
                 "called with multiple arguments.",
                 "key:key element:string...", cmd_lpush});
  out.push_back({"rpush", -3, kWF, 1, 1, 1, g,
                 "Appends one or more elements to a list. Creates the key if it doesn't exist.",
                 "1.0.0",
                 "O(1) for each element added, so O(N) to add N elements when the command is "
                 "called with multiple arguments.",
                 "key:key element:string...", cmd_rpush});
  out.push_back({"lpushx", -3, kWF, 1, 1, 1, g,
                 "Prepends one or more elements to a list only when the list exists.", "2.2.0",
                 "O(1) for each element added, so O(N) to add N elements when the command is "
                 "called with multiple arguments.",
                 "key:key element:string...", cmd_lpushx});
  out.push_back({"rpushx", -3, kWF, 1, 1, 1, g,
                 "Appends an element to a list only when the list exists.", "2.2.0",
                 "O(1) for each element added, so O(N) to add N elements when the command is "
                 "called with multiple arguments.",
                 "key:key element:string...", cmd_rpushx});
  out.push_back({"llen", 2, kReadonly | kFast, 1, 1, 1, g, "Returns the length of a list.", "1.0.0",
                 "O(1)", "key:key", cmd_llen});
  out.push_back({"lrange", 4, kReadonly, 1, 1, 1, g, "Returns a range of elements from a list.",
                 "1.0.0",
                 "O(S+N) where S is the distance of start offset from HEAD for small lists, from "
                 "nearest end (HEAD or TAIL) for large lists; and N is the number of elements in "
                 "the specified range.",
                 "key:key start:integer stop:integer", cmd_lrange});
  out.push_back({"lindex", 3, kReadonly, 1, 1, 1, g, "Returns an element from a list by its index.",
                 "1.0.0",
                 "O(N) where N is the number of elements to traverse to get to the element at "
                 "index. This makes asking for the first or the last element of the list O(1).",
                 "key:key index:integer", cmd_lindex});
  out.push_back({"lpop", -2, kWrite | kFast, 1, 1, 1, g,
                 "Returns the first elements in a list after removing it. Deletes the list if the "
                 "last element was popped.",
                 "1.0.0", "O(N) where N is the number of elements returned",
                 "key:key [count:integer]", cmd_lpop});
  out.push_back({"rpop", -2, kWrite | kFast, 1, 1, 1, g,
                 "Returns and removes the last elements of a list. Deletes the list if the last "
                 "element was popped.",
                 "1.0.0", "O(N) where N is the number of elements returned",
                 "key:key [count:integer]", cmd_rpop});
  out.push_back({"lset", 4, kWrite | kDenyOom, 1, 1, 1, g,
                 "Sets the value of an element in a list by its index.", "1.0.0",
                 "O(N) where N is the length of the list. Setting either the first or the last "
                 "element of the list is O(1).",
                 "key:key index:integer element:string", cmd_lset});
  out.push_back({"ltrim", 4, kWrite, 1, 1, 1, g,
                 "Removes elements from both ends a list. Deletes the list if all elements were "
                 "trimmed.",
                 "1.0.0", "O(N) where N is the number of elements to be removed by the operation.",
                 "key:key start:integer stop:integer", cmd_ltrim});
  out.push_back({"lrem", 4, kWrite, 1, 1, 1, g,
                 "Removes elements from a list. Deletes the list if the last element was removed.",
                 "1.0.0",
                 "O(N+M) where N is the length of the list and M is the number of elements "
                 "removed.",
                 "key:key count:integer element:string", cmd_lrem});
  out.push_back({"linsert", 5, kWrite | kDenyOom, 1, 1, 1, g,
                 "Inserts an element before or after another element in a list.", "2.2.0",
                 "O(N) where N is the number of elements to traverse before seeing the value "
                 "pivot. This means that inserting somewhere on the left end on the list (head) "
                 "can be considered O(1) and inserting somewhere on the right end (tail) is O(N).",
                 "key:key (where: BEFORE | AFTER) pivot:string element:string", cmd_linsert});
  out.push_back({"lpos", -3, kReadonly, 1, 1, 1, g,
                 "Returns the index of matching elements in a list.", "6.0.6",
                 "O(N) where N is the number of elements in the list, for the average case. When "
                 "searching for elements near the head or the tail of the list, or when the "
                 "MAXLEN option is provided, the command may run in constant time.",
                 "key:key element:string [RANK=rank:integer] [COUNT=num-matches:integer] "
                 "[MAXLEN=len:integer]",
                 cmd_lpos});
  out.push_back({"lmove", 5, kWrite | kDenyOom, 1, 2, 1, g,
                 "Returns an element after popping it from one list and pushing it to another. "
                 "Deletes the list if the last element was moved.",
                 "6.2.0", "O(1)",
                 "source:key destination:key (wherefrom: LEFT | RIGHT) "
                 "(whereto: LEFT | RIGHT)",
                 cmd_lmove});
  out.push_back({"rpoplpush", 3, kWrite | kDenyOom, 1, 2, 1, g,
                 "Returns the last element of a list after removing and pushing it to another "
                 "list. Deletes the list if the last element was popped.",
                 "1.2.0", "O(1)", "source:key destination:key", cmd_rpoplpush});
}

}  // namespace statekv::server
