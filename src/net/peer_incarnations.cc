#include "net/peer_incarnations.h"

#include <fmt/format.h>
#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>
#include <system_error>
#include <vector>

#include "net/log_files.h"

namespace statekv::net {

namespace fs = std::filesystem;

std::string incarnation_name(uint64_t incarnation) {
  return fmt::format("{:016x}", incarnation);
}

std::string encode_incarnations(const IncarnationRecords& records) {
  std::string out = "self " + incarnation_name(records.self) + "\n";
  for (const auto& [node, incarnation] : records.peers) {
    out += fmt::format("node {} {}\n", node.value(), incarnation_name(incarnation));
  }
  return out;
}

namespace {

std::optional<uint64_t> parse_number(std::string_view text, int base) {
  uint64_t v = 0;
  auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), v, base);
  if (err != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  while (!line.empty()) {
    const size_t start = line.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    line.remove_prefix(start);
    const size_t end = std::min(line.find(' '), line.size());
    out.push_back(line.substr(0, end));
    line.remove_prefix(end);
  }
  return out;
}

Result<uint64_t> draw_incarnation() {
  uint64_t v = 0;
  while (v == 0) {  // 0 means none (a client's)
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v) != 1) {
      return Status::Internal("RAND_bytes failed: cannot draw this node's incarnation");
    }
  }
  return v;
}

}  // namespace

Result<IncarnationRecords> decode_incarnations(std::string_view text) {
  IncarnationRecords out;
  bool has_self = false;
  size_t number = 0;
  while (!text.empty()) {
    ++number;
    const size_t end = text.find('\n');
    if (end == std::string_view::npos) {
      return Status::Corruption(fmt::format("line {}: no end of line (a torn write?)", number));
    }
    const std::vector<std::string_view> w = words(text.substr(0, end));
    text.remove_prefix(end + 1);
    const auto bad = [&](std::string_view why) {
      return Status::Corruption(fmt::format("line {}: {}", number, why));
    };
    if (w.size() == 2 && w[0] == "self" && !has_self) {
      const auto v = w[1].size() == 16 ? parse_number(w[1], 16) : std::nullopt;
      if (!v || *v == 0) return bad("not an incarnation (16 hex digits, not all zero)");
      out.self = *v;
      has_self = true;
    } else if (w.size() == 3 && w[0] == "node" && has_self) {
      const auto id = parse_number(w[1], 10);
      const auto v = w[2].size() == 16 ? parse_number(w[2], 16) : std::nullopt;
      if (!id || *id == 0) return bad("not a node id");
      if (!v || *v == 0) return bad("not an incarnation (16 hex digits, not all zero)");
      if (!out.peers.emplace(NodeId(*id), *v).second) return bad("node given twice");
    } else {
      return bad(has_self ? "expected \"node ID INCARNATION\"" : "expected \"self INCARNATION\"");
    }
  }
  if (!has_self) return Status::Corruption("empty: no \"self\" line");
  return out;
}

Result<std::unique_ptr<PeerIncarnations>> PeerIncarnations::open(fs::path dir, bool fsync) {
  const fs::path file = dir / kFileName;
  std::error_code ec;
  if (fs::exists(file, ec)) {
    auto text = log_files::read_file(file);
    if (!text.ok()) return text.status();
    auto records = decode_incarnations(*text);
    if (!records.ok()) {
      return Status::Corruption(fmt::format("{}: {}", file.string(), records.status().message()));
    }
    return std::unique_ptr<PeerIncarnations>(
        new PeerIncarnations(file, fsync, std::move(records).value(), false));
  }
  if (ec) return Status::IOError(fmt::format("stat {}: {}", file.string(), ec.message()));
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError(fmt::format("create {}: {}", dir.string(), ec.message()));
  auto self = draw_incarnation();
  if (!self.ok()) return self.status();
  IncarnationRecords records;
  records.self = *self;
  if (Status s = log_files::replace_file(file, encode_incarnations(records), fsync); !s.ok()) {
    return s;
  }
  return std::unique_ptr<PeerIncarnations>(new PeerIncarnations(file, fsync, records, true));
}

uint64_t PeerIncarnations::recorded(NodeId node) const {
  auto it = records_.peers.find(node);
  return it == records_.peers.end() ? 0 : it->second;
}

Result<PeerStanding> PeerIncarnations::check(NodeId node, uint64_t incarnation) {
  if (const uint64_t known = recorded(node); known != 0) {
    return known == incarnation ? PeerStanding::kKnown : PeerStanding::kDisowned;
  }
  IncarnationRecords next = records_;
  next.peers[node] = incarnation;
  if (Status s = log_files::replace_file(file_, encode_incarnations(next), fsync_); !s.ok()) {
    return s;
  }
  records_ = std::move(next);
  return PeerStanding::kRecorded;
}

}  // namespace statekv::net
