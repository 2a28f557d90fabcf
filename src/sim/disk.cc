#include "sim/disk.h"

#include <xxhash.h>

#include "core/assert.h"
#include "replication/codec.h"

namespace statekv::sim {
namespace {

constexpr size_t kHeader = 8;

uint32_t checksum(std::string_view payload) {
  return XXH32(payload.data(), payload.size(), /*seed=*/0x5eed);
}

}  // namespace

uint64_t SimDisk::append(std::string_view record) {
  replication::Writer w;
  w.fixed32(static_cast<uint32_t>(record.size()));
  w.fixed32(checksum(record));
  std::string frame = std::move(w).take();
  frame.append(record);
  pending_.push_back(std::move(frame));
  pending_checkpoint_.push_back(false);
  return ++appended_;
}

uint64_t SimDisk::append_checkpoint(std::string_view record) {
  const uint64_t seq = append(record);
  pending_checkpoint_.back() = true;
  return seq;
}

void SimDisk::sync_through(uint64_t seq) {
  SKV_ASSERT(seq <= appended_, "sync of a record never appended");
  while (synced_ < seq) {
    if (pending_checkpoint_.front()) durable_.clear();
    durable_.append(pending_.front());
    pending_.erase(pending_.begin());
    pending_checkpoint_.erase(pending_checkpoint_.begin());
    ++synced_;
  }
}

DiskCrashStats SimDisk::crash(Random& rng) {
  DiskCrashStats stats;
  bool cut = false;
  for (size_t k = 0; k < pending_.size(); ++k) {
    std::string& frame = pending_[k];
    if (cut) {
      ++stats.lost;
      continue;
    }
    const uint64_t fate = rng.uniform(3);
    if (fate == 0) {  // the drive wrote it before power went
      if (pending_checkpoint_[k]) durable_.clear();
      durable_.append(frame);
      ++stats.written;
      continue;
    }
    cut = true;
    if (fate == 1) {  // torn: a prefix, or every byte with one flipped
      ++stats.torn;
      if (rng.chance(0.5)) {
        durable_.append(frame.substr(0, rng.uniform(frame.size())));
      } else {
        const size_t at = rng.uniform(frame.size());
        frame[at] = static_cast<char>(frame[at] ^ (1 + rng.uniform(255)));
        durable_.append(frame);
      }
    } else {
      ++stats.lost;
    }
  }
  pending_.clear();
  pending_checkpoint_.clear();
  return stats;
}

std::vector<std::string> SimDisk::recover() {
  std::vector<std::string> records;
  size_t pos = 0;
  while (true) {
    replication::Reader header(std::string_view(durable_).substr(pos));
    Result<uint32_t> len = header.fixed32();
    Result<uint32_t> sum = header.fixed32();
    if (!len.ok() || !sum.ok() || durable_.size() - pos - kHeader < *len) break;
    std::string_view payload = std::string_view(durable_).substr(pos + kHeader, *len);
    if (checksum(payload) != *sum) break;
    records.emplace_back(payload);
    pos += kHeader + *len;
  }
  durable_.resize(pos);
  pending_.clear();
  pending_checkpoint_.clear();
  appended_ = synced_ = records.size();
  return records;
}

}  // namespace statekv::sim
