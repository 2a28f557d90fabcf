#include "server/collection_command.h"

#include <random>
#include <vector>

#include "server/number.h"

namespace statekv::server {

std::optional<Collection> open_collection(CommandContext& c, std::string_view key, bool live,
                                          const RecordView& rec, const Store::Meta& meta,
                                          ValueType type) {
  if (live && rec.type != type) {
    c.out.error(kWrongType);
    return std::nullopt;
  }
  std::optional<Collection> coll;  // returned in place: the Collection is never moved
  const Status opened =
      Collection::open_into(&coll, c.store(), type, key, meta, live ? &rec : nullptr, c.txn);
  if (!opened.ok()) c.fail(opened);  // coll is empty then
  return coll;
}

std::optional<Collection> open_collection(CommandContext& c, std::string_view key,
                                          const LockedRead& r, ValueType type) {
  return open_collection(c, key, r.live, r.rec, r.meta, type);
}

bool commit_collections(CommandContext& c, std::span<Collection* const> collections) {
  ScratchWrites scratch;
  std::vector<Store::Write>& writes = scratch.get();
  for (Collection* coll : collections) coll->writes(&writes);
  if (writes.empty()) return true;
  return c.commit(writes);
}

bool parse_element_scan_options(CommandContext& c, std::span<const std::string_view> options,
                                ElementScanOptions* out) {
  for (size_t i = 0; i < options.size(); i += 2) {
    const bool has_value = i + 1 < options.size();
    if (iequals(options[i], "count") && has_value) {
      auto n = parse_int64(options[i + 1]);
      if (!n) {
        c.out.error(kNotInteger);
        return false;
      }
      if (*n < 1) {
        c.out.error(kSyntaxError);
        return false;
      }
      out->count = static_cast<size_t>(*n);
    } else if (iequals(options[i], "match") && has_value) {
      out->pattern = options[i + 1];
      out->use_pattern = out->pattern != "*";
    } else {
      c.out.error(kSyntaxError);
      return false;
    }
  }
  return true;
}

Random& command_random() {
  thread_local Random rng(std::random_device{}());
  return rng;
}

}  // namespace statekv::server
