#include "coord/cluster_scan.h"

#include <algorithm>
#include <charconv>

#include "resp/value.h"
#include "resp/writer.h"
#include "server/record.h"

namespace statekv::coord {

namespace {

std::optional<uint64_t> parse_u64(std::string_view text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

}  // namespace

std::string encode_key_counts(const server::Store::KeyCounts& counts) {
  std::string out;
  resp::Writer w(&out, 2);
  w.array(2);
  w.integer(static_cast<int64_t>(counts.keys));
  w.integer(static_cast<int64_t>(counts.expires));
  return out;
}

Result<server::Store::KeyCounts> decode_key_counts(std::string_view resp_bytes) {
  resp::Value v;
  if (resp::parse_value(resp_bytes, v).status != resp::ParseStatus::kComplete) {
    return Status::Corruption("unreadable key counts");
  }
  if (v.type == resp::Value::Type::kError) return Status::Unavailable(v.str);
  if (v.type != resp::Value::Type::kArray || v.elements.size() != 2 ||
      v.elements[0].type != resp::Value::Type::kInteger ||
      v.elements[1].type != resp::Value::Type::kInteger || v.elements[0].integer < 0 ||
      v.elements[1].integer < 0) {
    return Status::Corruption("unreadable key counts");
  }
  return server::Store::KeyCounts{static_cast<uint64_t>(v.elements[0].integer),
                                  static_cast<uint64_t>(v.elements[1].integer)};
}

std::string encode_random_offer(const RandomKeyOffer& offer) {
  std::string out;
  resp::Writer w(&out, 2);
  w.array(2);
  w.integer(static_cast<int64_t>(offer.keys));
  if (offer.key) {
    w.bulk(*offer.key);
  } else {
    w.null();
  }
  return out;
}

Result<RandomKeyOffer> decode_random_offer(std::string_view resp_bytes) {
  resp::Value v;
  if (resp::parse_value(resp_bytes, v).status != resp::ParseStatus::kComplete) {
    return Status::Corruption("unreadable random key offer");
  }
  if (v.type == resp::Value::Type::kError) return Status::Unavailable(v.str);
  if (v.type != resp::Value::Type::kArray || v.elements.size() != 2 ||
      v.elements[0].type != resp::Value::Type::kInteger || v.elements[0].integer < 0 ||
      (v.elements[1].type != resp::Value::Type::kBulk &&
       v.elements[1].type != resp::Value::Type::kNull)) {
    return Status::Corruption("unreadable random key offer");
  }
  RandomKeyOffer offer;
  offer.keys = static_cast<uint64_t>(v.elements[0].integer);
  if (v.elements[1].type == resp::Value::Type::kBulk) offer.key = std::move(v.elements[1].str);
  return offer;
}

std::optional<std::string> pick_random_key(std::span<const RandomKeyOffer> offers,
                                           const std::function<uint64_t(uint64_t)>& draw) {
  uint64_t total = 0;
  for (const RandomKeyOffer& o : offers) {
    if (o.key) total += std::max<uint64_t>(o.keys, 1);
  }
  if (total == 0) return std::nullopt;
  uint64_t at = draw(total);
  for (const RandomKeyOffer& o : offers) {
    if (!o.key) continue;
    const uint64_t weight = std::max<uint64_t>(o.keys, 1);
    if (at < weight) return o.key;
    at -= weight;
  }
  return std::nullopt;  // draw out of range
}

std::vector<std::string> encode_page_request(const server::KeyPageRequest& request,
                                             std::string_view verb) {
  return {std::string(verb),
          request.after ? "1" : "0",
          request.after.value_or(""),
          std::to_string(request.limit),
          request.pattern,
          request.type};
}

Result<server::KeyPageRequest> decode_page_request(std::span<const std::string> argv) {
  if (argv.size() != 6 || (argv[0] != kScanVerb && argv[0] != kGroupScanVerb) ||
      (argv[1] != "0" && argv[1] != "1")) {
    return Status::InvalidArgument("malformed " +
                                   (argv.empty() ? std::string(kScanVerb) : argv[0]) + " request");
  }
  const auto limit = parse_u64(argv[3]);
  if (!limit) return Status::InvalidArgument("malformed page size '" + argv[3] + "'");
  server::KeyPageRequest request;
  if (argv[1] == "1") request.after = argv[2];
  request.limit = static_cast<size_t>(*limit);
  request.pattern = argv[4];
  request.type = argv[5];
  return request;
}

std::string encode_node_page(const NodeScanPage& page) {
  std::string out;
  resp::Writer w(&out, 2);
  w.array(6);
  w.integer(static_cast<int64_t>(page.epoch_before));
  w.integer(static_cast<int64_t>(page.epoch_after));
  w.integer(page.page.end ? 1 : 0);
  w.bulk(page.page.last);
  w.array(page.page.keys.size());
  for (const std::string& k : page.page.keys) w.bulk(k);
  w.array(page.page.positions.size());
  for (const std::string& p : page.page.positions) w.bulk(p);
  return out;
}

Result<NodeScanPage> decode_node_page(NodeId node, std::string_view resp_bytes) {
  resp::Value v;
  const auto parsed = resp::parse_value(resp_bytes, v);
  const auto bad = [&] {
    return Status::Corruption("unreadable scan page from node " + std::to_string(node.value()));
  };
  if (parsed.status != resp::ParseStatus::kComplete) return bad();
  if (v.type == resp::Value::Type::kError) return Status::Unavailable(v.str);
  if (v.type != resp::Value::Type::kArray || v.elements.size() != 6 ||
      v.elements[4].type != resp::Value::Type::kArray ||
      v.elements[5].type != resp::Value::Type::kArray ||
      v.elements[4].elements.size() != v.elements[5].elements.size()) {
    return bad();
  }
  NodeScanPage page;
  page.node = node;
  page.epoch_before = static_cast<uint64_t>(v.elements[0].integer);
  page.epoch_after = static_cast<uint64_t>(v.elements[1].integer);
  page.page.end = v.elements[2].integer != 0;
  page.page.last = std::move(v.elements[3].str);
  for (resp::Value& k : v.elements[4].elements) page.page.keys.push_back(std::move(k.str));
  for (resp::Value& p : v.elements[5].elements) page.page.positions.push_back(std::move(p.str));
  return page;
}

bool reports_in_scan(const RoutingTable& table, NodeId self, std::string_view key,
                     std::string_view position) {
  uint64_t scope = 0;
  std::string_view unused;
  // A replica group's record: the group's own page reports it.
  if (!server::parse_data_key(position, &scope, &unused) || scope != 0) return false;
  const Route r = table.route(key);
  // A keyspace being created holds nothing yet: a key under its prefix is
  // one the keyspace that owned the prefix still holds, wherever it is
  // (keyspace_change.cc counts them so).
  if (r.keyspace->creating) return true;
  // A consensus keyspace's keys are its groups' records; a copy outside
  // them serves nothing.
  if (r.keyspace->spec.replication.kind == meta::Replication::kConsensus && !r.moving()) {
    return false;
  }
  return r.primary() == self;
}

std::vector<ScannedGroup> scanned_groups(const RoutingTable& table) {
  std::vector<ScannedGroup> groups;
  for (const meta::Keyspace& k : table.map().keyspaces) {
    // A keyspace being created holds nothing yet, one being dropped is
    // going with its groups.
    if (k.spec.replication.kind != meta::Replication::kConsensus || k.creating || k.dropping) {
      continue;
    }
    for (const meta::Shard& shard : k.shards) {
      groups.push_back(ScannedGroup{&k, static_cast<uint32_t>(shard.id.value()), shard.owners});
    }
  }
  return groups;
}

bool read_under_one_epoch(std::span<const NodeScanPage> pages, uint64_t epoch) {
  return std::all_of(pages.begin(), pages.end(), [&](const NodeScanPage& p) {
    return p.epoch_before == epoch && p.epoch_after == epoch;
  });
}

uint64_t newest_epoch(std::span<const NodeScanPage> pages) {
  uint64_t newest = 0;
  for (const NodeScanPage& p : pages) newest = std::max({newest, p.epoch_before, p.epoch_after});
  return newest;
}

MergedPage merge_pages(std::span<const NodeScanPage> pages) {
  // Every node examined all its keys up to its own `last`; up to the smallest
  // of those, the union is complete.
  const std::string* bound = nullptr;
  for (const NodeScanPage& p : pages) {
    if (!p.page.end && (bound == nullptr || p.page.last < *bound)) bound = &p.page.last;
  }
  // (position, key), in walk order; a key has the same position on every node.
  std::vector<std::pair<std::string_view, std::string_view>> found;
  for (const NodeScanPage& p : pages) {
    for (size_t i = 0; i < p.page.keys.size() && i < p.page.positions.size(); ++i) {
      if (bound == nullptr || p.page.positions[i] <= *bound) {
        found.emplace_back(p.page.positions[i], p.page.keys[i]);
      }
    }
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  MergedPage merged;
  merged.keys.reserve(found.size());
  for (const auto& [position, key] : found) merged.keys.emplace_back(key);
  if (bound != nullptr) merged.resume_after = *bound;
  return merged;
}

}  // namespace statekv::coord
