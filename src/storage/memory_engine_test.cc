// MemoryEngine with a StripePrefix: keys grouped into stripes, and scans inside one
// group served from that stripe alone, must answer exactly what an ungrouped
// engine (and a model) answers, for ranges inside a group, across groups, with
// limits and across scan chunks.
#include "storage/memory_engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/random.h"

namespace statekv::storage {
namespace {

// Keys starting with 'g' of 3 bytes or more group by their first 3 bytes.
size_t group_of(std::string_view key) {
  return key.size() >= 3 && key[0] == 'g' ? 3 : 0;
}

using Rows = std::vector<std::pair<std::string, std::string>>;

Rows scan_all(Engine& e, std::string_view start, std::string_view end, size_t limit = 0) {
  Rows out;
  Status s = e.scan(start, end, limit, [&](std::string_view k, std::string_view v) {
    out.emplace_back(k, v);
    return true;
  });
  EXPECT_TRUE(s.ok()) << s.to_string();
  return out;
}

Rows model_range(const std::map<std::string, std::string>& m, const std::string& start,
                 const std::string& end, size_t limit = 0) {
  Rows out;
  for (auto it = m.lower_bound(start); it != m.end() && (end.empty() || it->first < end); ++it) {
    if (limit != 0 && out.size() == limit) break;
    out.emplace_back(it->first, it->second);
  }
  return out;
}

TEST(MemoryEngineGroups, GroupedScansMatchAModel) {
  auto grouped = open_memory_engine({}, group_of);
  auto plain = open_memory_engine();
  Random rng(11);
  std::map<std::string, std::string> model;
  // Groups "g" + two bytes, including 0xff (no successor at the last byte); one
  // group larger than a scan chunk (1024); keys outside groups around them.
  const std::vector<std::string> groups = {std::string("g\x00\x01", 3), std::string("g\x01\xff", 3),
                                           std::string("g\xff\xff", 3), "gab", "gac"};
  for (int i = 0; i < 6000; ++i) {
    std::string k;
    if (rng.uniform(5) == 0) {
      k = std::string(1, static_cast<char>(rng.uniform(256)));  // "g" alone too
    } else {
      k = groups[i < 2500 ? 3 : rng.uniform(groups.size())];
    }
    for (size_t n = rng.uniform(4); n > 0; --n) k.push_back(static_cast<char>(rng.uniform(256)));
    model[k] = "v" + std::to_string(i);
  }
  for (const auto& [k, v] : model) {
    ASSERT_TRUE(grouped->put(k, v).ok());
    ASSERT_TRUE(plain->put(k, v).ok());
  }
  // Erase some through a batch spanning groups.
  WriteBatch batch;
  size_t n = 0;
  for (auto it = model.begin(); it != model.end();) {
    if (++n % 7 == 0) {
      batch.del(it->first);
      it = model.erase(it);
    } else {
      ++it;
    }
  }
  ASSERT_TRUE(grouped->write(batch).ok());
  ASSERT_TRUE(plain->write(batch).ok());

  for (const std::string& g : groups) {
    std::string successor = g;
    while (!successor.empty() && static_cast<unsigned char>(successor.back()) == 0xff) {
      successor.pop_back();
    }
    successor.back() = static_cast<char>(static_cast<unsigned char>(successor.back()) + 1);
    for (const std::string& start : {g, g + std::string(1, '\x80'), g + "\x10\x20"}) {
      for (size_t limit : {size_t{0}, size_t{1}, size_t{16}, size_t{1100}}) {
        for (const std::string& end : {successor, g + "\x90", successor + "\x01", std::string()}) {
          if (!end.empty() && end <= start) continue;
          const Rows want = model_range(model, start, end, limit);
          EXPECT_EQ(scan_all(*grouped, start, end, limit), want)
              << "group " << g.size() << " limit " << limit;
          EXPECT_EQ(scan_all(*plain, start, end, limit), want);
        }
      }
    }
  }
  EXPECT_EQ(scan_all(*grouped, "", ""), model_range(model, "", ""));
  for (const auto& [k, v] : model) {
    std::string got;
    ASSERT_TRUE(grouped->get(k, &got).ok());
    EXPECT_EQ(got, v);
  }
}

// The B-tree orders keys with its own inline comparison (eight bytes at a
// time): the order must be std::string's (unsigned bytes, then length) for
// keys that share long prefixes, differ past the eighth byte or only in
// length, and hold 0x00, 0x7f, 0x80 and 0xff bytes.
TEST(MemoryEngineOrder, KeysOrderBytewiseWhateverTheirLengths) {
  auto engine = open_memory_engine({.stripes = 1});
  Random rng(5);
  const char alphabet[] = {'\x00', '\x01', 'a', '\x7f', '\x80', '\xfe', '\xff'};
  const std::string prefix = "m\x01\x02\x03\x04\x05\x06\x07\x08";  // nine shared bytes
  std::map<std::string, std::string> model;
  for (int i = 0; i < 4000; ++i) {
    std::string k = rng.uniform(2) == 0 ? prefix.substr(0, rng.uniform(prefix.size() + 1)) : "";
    for (size_t n = rng.uniform(20); n > 0; --n)
      k.push_back(alphabet[rng.uniform(sizeof alphabet)]);
    model[k] = std::to_string(i);
    ASSERT_TRUE(engine->put(k, model[k]).ok());
  }
  EXPECT_EQ(scan_all(*engine, "", ""), model_range(model, "", ""));
  int checked = 0;
  for (auto it = model.begin(); it != model.end(); ++it) {
    if (++checked % 37 != 0) continue;
    EXPECT_EQ(scan_all(*engine, it->first, "", 5), model_range(model, it->first, "", 5));
    std::string got;
    ASSERT_TRUE(engine->get(it->first, &got).ok());
    EXPECT_EQ(got, it->second);
  }
}

bool starts_with_z(std::string_view key) {
  return !key.empty() && key[0] == 'z';
}

// Ordered-only keys (a sorted set's score index) are kept out of the hash index:
// the same answers as a plain engine, a hash slot less each.
TEST(MemoryEngineOrderedOnly, SameAnswersWithoutHashSlots) {
  auto ordered = open_memory_engine({.stripes = 4}, nullptr, starts_with_z);
  auto plain = open_memory_engine({.stripes = 4});
  constexpr int kKeys = 20000;
  for (int i = 0; i < kKeys; ++i) {
    const std::string k = "z" + std::to_string(i);
    const std::string v =
        i % 3 == 0 ? std::string() : std::string(static_cast<size_t>(i % 90), 'v');
    ASSERT_TRUE(ordered->put(k, v).ok());
    ASSERT_TRUE(plain->put(k, v).ok());
  }
  // Overwrites that grow past the allocation (realloc) and shrink it, and erases.
  WriteBatch batch;
  for (int i = 0; i < kKeys; i += 5) batch.put("z" + std::to_string(i), std::string(200, 'w'));
  for (int i = 1; i < kKeys; i += 5) batch.put("z" + std::to_string(i), "s");
  for (int i = 2; i < kKeys; i += 5) batch.del("z" + std::to_string(i));
  batch.del("z-absent");
  ASSERT_TRUE(ordered->write(batch).ok());
  ASSERT_TRUE(plain->write(batch).ok());
  ASSERT_TRUE(ordered->del("z3").ok());
  ASSERT_TRUE(plain->del("z3").ok());

  EXPECT_EQ(scan_all(*ordered, "", ""), scan_all(*plain, "", ""));
  Rows backward;
  ASSERT_TRUE(ordered
                  ->scan_reverse("z1", "z5", 0,
                                 [&](std::string_view k, std::string_view v) {
                                   backward.emplace_back(k, v);
                                   return true;
                                 })
                  .ok());
  Rows forward = scan_all(*plain, "z1", "z5");
  std::reverse(forward.begin(), forward.end());
  EXPECT_EQ(backward, forward);
  for (int i = 0; i < kKeys; ++i) {
    const std::string k = "z" + std::to_string(i);
    std::string a, b;
    Status sa = ordered->get(k, &a);
    Status sb = plain->get(k, &b);
    ASSERT_EQ(sa.is_not_found(), sb.is_not_found()) << k;
    EXPECT_EQ(a, b) << k;
  }
  const EngineStats so = ordered->stats();
  const EngineStats sp = plain->stats();
  EXPECT_EQ(so.keys, sp.keys);
  // At least a slot (pointer and control byte) per key less.
  EXPECT_LE(so.memory_bytes + so.keys * (sizeof(char*) + 1), sp.memory_bytes);
  ASSERT_TRUE(ordered->clear().ok());
  EXPECT_EQ(ordered->stats().keys, 0u);
  EXPECT_TRUE(scan_all(*ordered, "", "").empty());
}

// Ordered-only inserts next to the previous one, and reads and erases of the
// entry at the finger or before it, skip the descent (the stripe's finger):
// pushes and pops at both ends of a run of keys, as a list's, with inserts
// elsewhere, overwrites, erases and hashed keys in between (each of which
// moves or invalidates the finger), agree with a model throughout.
TEST(MemoryEngineOrderedOnly, PushesAndPopsAtTheFingerAgreeWithAModel) {
  auto engine = open_memory_engine({.stripes = 1}, nullptr, starts_with_z);
  std::map<std::string, std::string> model;
  std::mt19937_64 rng(11);
  // Big-endian positions, as a list's element fields: byte order is number order.
  auto key_at = [](uint64_t pos) {
    std::string k = "z";
    for (int i = 7; i >= 0; --i) k.push_back(static_cast<char>((pos >> (8 * i)) & 0xff));
    return k;
  };
  uint64_t front = uint64_t{1} << 63;
  uint64_t back = front;
  for (int step = 0; step < 30000; ++step) {
    // Every third stretch of 500 steps mostly pops, so that pops follow pops.
    const bool popping = (step / 500) % 3 == 2;
    const uint64_t what = popping && rng() % 10 != 0 ? 95 + rng() % 4 : rng() % 100;
    std::string k;
    std::string v = "v" + std::to_string(step);
    if (what < 35) {
      k = key_at(--front);  // LPUSH
    } else if (what < 70) {
      k = key_at(back++);  // RPUSH
    } else if (what < 80) {
      k = key_at(front - 100 + rng() % (back - front + 200));  // around them, new or not
    } else if (what < 85 && !model.empty()) {
      auto it = std::next(model.begin(), static_cast<long>(rng() % model.size()));
      k = it->first;  // an overwrite
    } else if (what < 95 && !model.empty()) {
      auto it = std::next(model.begin(), static_cast<long>(rng() % model.size()));
      const std::string gone = it->first;
      ASSERT_TRUE(engine->del(gone).ok());
      model.erase(gone);
      continue;
    } else if (what < 99 && model.lower_bound("z") != model.end()) {
      // A pop from either end of the run: read, then erased (LPOP, RPOP).
      auto it = what % 2 == 0 ? model.lower_bound("z") : std::prev(model.end());
      std::string got;
      ASSERT_TRUE(engine->get(it->first, &got).ok()) << step;
      ASSERT_EQ(got, it->second) << step;
      ASSERT_TRUE(engine->del(it->first).ok());
      model.erase(it);
      continue;
    } else {
      // A hashed key beside them (a list's head record): its insert reshapes the tree.
      const std::string head = "h" + std::to_string(rng() % 50);
      ASSERT_TRUE(engine->put(head, v).ok());
      model[head] = v;
      continue;
    }
    ASSERT_TRUE(engine->put(k, v).ok());
    model[k] = v;
    if (step % 5000 == 0 || step == 29999) {
      Rows want(model.begin(), model.end());
      ASSERT_EQ(scan_all(*engine, "", ""), want) << "step " << step;
    }
  }
  for (const auto& [k, v] : model) {
    std::string got;
    ASSERT_TRUE(engine->get(k, &got).ok()) << k;
    EXPECT_EQ(got, v);
  }
  EXPECT_EQ(engine->stats().keys, model.size());
}

}  // namespace
}  // namespace statekv::storage
