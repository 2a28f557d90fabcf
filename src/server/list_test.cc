// List in the element layout, below the commands: both element layouts of
// record.h (the hashed positions lists had before kOrderedElementsBit, the
// ordered ones new lists get) read, grow and shrink the same way, and a range
// read over the ordered layout notices a missing element.
#include "server/list.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/record.h"
#include "server/store.h"
#include "storage/memory_engine.h"

namespace statekv::server {
namespace {

constexpr std::string_view kKey = "l";

std::string be64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[static_cast<size_t>(i)] = static_cast<char>(v & 0xff);
  return out;
}

// Writes a list of `n` elements "v0".."v{n-1}" in the element layout of
// generation `gen` straight through the store, as an earlier build left it.
void write_list(Store& store, uint64_t gen, uint64_t n) {
  std::string head;
  encode_list_head(gen, n, kListFirstIndex, &head);
  std::vector<std::string> fields, values;
  for (uint64_t i = 0; i < n; ++i) {
    fields.push_back(be64(kListFirstIndex + i));
    values.push_back("v" + std::to_string(i));
  }
  auto locked = store.lock(kKey);
  std::vector<Store::Write> writes;
  writes.emplace_back(kKey, Store::Meta{}, false, head, 0, ValueType::kList);
  for (uint64_t i = 0; i < n; ++i) {
    Store::Write w;
    w.key = kKey;
    w.element = true;
    w.gen = gen;
    w.field = fields[i];
    w.value = values[i];
    writes.push_back(w);
  }
  ASSERT_TRUE(store.apply_locked(writes).ok());
}

// Opens the list, lets `change` work on it, commits; returns its elements.
template <typename Change>
std::vector<std::string> change_and_read(Store& store, Change change) {
  auto locked = store.lock(kKey);
  std::string buf;
  RecordView rec;
  Store::Meta meta;
  auto found = store.get_locked(kKey, 0, &buf, &rec, &meta);
  EXPECT_TRUE(found.ok() && *found);
  auto list = List::open(store, kKey, meta, &rec, nullptr);
  EXPECT_TRUE(list.ok()) << list.status().to_string();
  change(*list);
  std::vector<Store::Write> writes;
  list->writes(&writes);
  EXPECT_TRUE(store.apply_locked(writes).ok());
  auto after = store.get_locked(kKey, 0, &buf, &rec, &meta);
  EXPECT_TRUE(after.ok() && *after);
  auto reread = List::open(store, kKey, meta, &rec, nullptr);
  std::vector<std::string> out;
  if (reread->size() > 0) {
    EXPECT_TRUE(reread->range(0, reread->size() - 1, &out).ok());
  }
  return out;
}

class ListLayouts : public ::testing::TestWithParam<bool> {};

TEST_P(ListLayouts, RangesPushesAndPopsReadTheSameInEitherLayout) {
  auto engine = storage::open_memory_engine();
  Store store(*engine, nullptr);
  const bool ordered = GetParam();
  const uint64_t gen = store.new_generation(ordered ? Store::GenerationKind::kOrdered
                                                    : Store::GenerationKind::kHashed);
  ASSERT_EQ(ordered_elements(gen), ordered);
  write_list(store, gen, 300);
  auto items = change_and_read(store, [](List& l) {
    std::vector<std::string> mid;
    ASSERT_TRUE(l.range(100, 104, &mid).ok());
    EXPECT_EQ(mid, (std::vector<std::string>{"v100", "v101", "v102", "v103", "v104"}));
    l.push_front("first");
    l.push_back("last");
    EXPECT_EQ(*l.pop_front(), "first");
    l.push_front("new-first");
  });
  ASSERT_EQ(items.size(), 302u);
  EXPECT_EQ(items.front(), "new-first");
  EXPECT_EQ(items[1], "v0");
  EXPECT_EQ(items[300], "v299");
  EXPECT_EQ(items.back(), "last");
}

INSTANTIATE_TEST_SUITE_P(HashedAndOrdered, ListLayouts, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Ordered" : "Hashed"; });

// The ordered range read is a scan: an element missing from the middle is
// corruption, not a shorter reply.
TEST(ListLayouts, AnOrderedRangeOverAMissingElementIsCorruption) {
  auto engine = storage::open_memory_engine();
  Store store(*engine, nullptr);
  const uint64_t gen = store.new_generation(Store::GenerationKind::kOrdered);
  write_list(store, gen, 200);
  {
    auto locked = store.lock(kKey);
    Store::Write gone;
    gone.key = kKey;
    gone.element = true;
    gone.erase = true;
    gone.gen = gen;
    const std::string field = be64(kListFirstIndex + 150);
    gone.field = field;
    ASSERT_TRUE(store.apply_locked(std::span<const Store::Write>(&gone, 1)).ok());
  }
  auto locked = store.lock(kKey);
  std::string buf;
  RecordView rec;
  Store::Meta meta;
  ASSERT_TRUE(*store.get_locked(kKey, 0, &buf, &rec, &meta));
  auto list = List::open(store, kKey, meta, &rec, nullptr);
  ASSERT_TRUE(list.ok());
  std::vector<std::string> out;
  EXPECT_TRUE(list->range(100, 149, &out).ok());
  out.clear();
  EXPECT_TRUE(list->range(140, 160, &out).is_corruption());
  out.clear();
  EXPECT_TRUE(list->range(190, 199, &out).ok());
  EXPECT_EQ(out.front(), "v190");
}

}  // namespace
}  // namespace statekv::server
