#include "net/disk_log.h"

#include "net/log_files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <string_view>
#include <system_error>

#include "core/assert.h"
#include "core/little_endian.h"

namespace statekv::net {
namespace {

namespace fs = std::filesystem;
using log_files::io_error;
using log_files::read_file;
using log_files::rewrite_tail;
using log_files::write_all;

constexpr std::string_view kSegmentMagic = "SKVL";
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kSegmentHeaderBytes = 24;
constexpr size_t kRecordHeaderBytes = 13;  // u32 length | u64 checksum | u8 kind
constexpr uint8_t kKindRecord = 1;
constexpr uint8_t kKindCheckpoint = 2;

std::string segment_name(uint64_t number) {
  return fmt::format("log-{:010d}.skv", number);
}

// "log-0000000042.skv" -> 42; anything else (LOCK, editor droppings) -> nullopt.
std::optional<uint64_t> parse_segment_name(std::string_view name) {
  return log_files::parse_numbered_name(name, "log-", ".skv");
}


std::string encode_segment_header(uint64_t number) {
  std::string out(kSegmentHeaderBytes, '\0');
  std::memcpy(out.data(), kSegmentMagic.data(), 4);
  store_le32(out.data() + 4, kFormatVersion);
  store_le64(out.data() + 8, number);
  store_le64(out.data() + 16, XXH3_64bits(out.data(), 16));
  return out;
}

std::string encode_record(uint8_t kind, std::string_view payload) {
  std::string out(kRecordHeaderBytes + payload.size(), '\0');
  store_le32(out.data(), static_cast<uint32_t>(payload.size()));
  out[12] = static_cast<char>(kind);
  if (!payload.empty())
    std::memcpy(out.data() + kRecordHeaderBytes, payload.data(), payload.size());
  // The checksum covers kind and payload, which are contiguous from offset 12.
  store_le64(out.data() + 4, XXH3_64bits(out.data() + 12, payload.size() + 1));
  return out;
}




enum class HeaderState { kOk, kShort, kGarbled, kOtherVersion, kWrongNumber };

HeaderState check_header(std::string_view data, uint64_t number) {
  if (data.size() < kSegmentHeaderBytes) return HeaderState::kShort;
  if (data.substr(0, 4) != kSegmentMagic ||
      load_le64(data.data() + 16) != XXH3_64bits(data.data(), 16)) {
    return HeaderState::kGarbled;
  }
  if (load_le32(data.data() + 4) != kFormatVersion) return HeaderState::kOtherVersion;
  if (load_le64(data.data() + 8) != number) return HeaderState::kWrongNumber;
  return HeaderState::kOk;
}

// The records of one segment, read up to the first damage.
struct SegmentScan {
  std::vector<std::string_view> records;  // payloads, pointing into the file's bytes
  bool starts_with_checkpoint = false;
  size_t good_end = kSegmentHeaderBytes;  // end of the last intact record
  std::string damage;                     // why reading stopped early; empty when clean
  bool misplaced_checkpoint = false;      // intact, but we never write one there
};

SegmentScan scan_segment(std::string_view data) {
  SegmentScan scan;
  size_t pos = kSegmentHeaderBytes;
  while (pos < data.size()) {
    const size_t left = data.size() - pos;
    if (left < kRecordHeaderBytes) {
      scan.damage = fmt::format("short record header ({} of {} bytes)", left, kRecordHeaderBytes);
      break;
    }
    const uint32_t length = load_le32(data.data() + pos);
    if (length > left - kRecordHeaderBytes) {
      scan.damage = fmt::format("record length {} runs past the end of the file ({} bytes left)",
                                length, left - kRecordHeaderBytes);
      break;
    }
    const std::string_view body = data.substr(pos + 12, size_t{length} + 1);  // kind + payload
    if (XXH3_64bits(body.data(), body.size()) != load_le64(data.data() + pos + 4)) {
      scan.damage = fmt::format("checksum mismatch on a record of {} bytes", length);
      break;
    }
    const auto kind = static_cast<uint8_t>(body[0]);
    if (kind != kKindRecord && kind != kKindCheckpoint) {
      scan.damage = fmt::format("unknown record kind {}", kind);
      break;
    }
    if (kind == kKindCheckpoint) {
      if (pos != kSegmentHeaderBytes) {
        scan.damage = "a checkpoint record that is not the first record of its segment";
        scan.misplaced_checkpoint = true;
        break;
      }
      scan.starts_with_checkpoint = true;
    }
    scan.records.push_back(body.substr(1));
    pos += kRecordHeaderBytes + length;
  }
  scan.good_end = pos;
  return scan;
}

// Whether the segment has a valid header and a valid checkpoint as its first record.
// Reads only that much of the file.
Result<bool> begins_with_checkpoint(const fs::path& path, uint64_t number) {
  Result<std::string> prefix = read_file(path, kSegmentHeaderBytes + kRecordHeaderBytes);
  if (!prefix.ok()) return prefix.status();
  if (prefix->size() < kSegmentHeaderBytes + kRecordHeaderBytes ||
      check_header(*prefix, number) != HeaderState::kOk ||
      static_cast<uint8_t>((*prefix)[kSegmentHeaderBytes + 12]) != kKindCheckpoint) {
    return false;
  }
  const uint64_t length = load_le32(prefix->data() + kSegmentHeaderBytes);
  Result<std::string> first = read_file(path, kSegmentHeaderBytes + kRecordHeaderBytes + length);
  if (!first.ok()) return first.status();
  return scan_segment(*first).starts_with_checkpoint;
}

// What recovery leaves for the writer.
struct DirState {
  std::vector<uint64_t> segments;  // ascending
  uint64_t last_size = 0;          // size of the last segment after any truncation
  uint64_t reset_at = 0;           // segment whose checkpoint reset the records; 0 = none
};

Result<std::vector<uint64_t>> list_segments(const fs::path& dir) {
  std::vector<uint64_t> numbers;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (auto n = parse_segment_name(it->path().filename().string())) numbers.push_back(*n);
  }
  if (ec) return Status::IOError(fmt::format("list {}: {}", dir.string(), ec.message()));
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

Result<DirState> recover_dir(const fs::path& dir, bool fsync, Recovery* out) {
  Result<std::vector<uint64_t>> listed = list_segments(dir);
  if (!listed.ok()) return listed.status();
  DirState state;
  state.segments = std::move(listed).value();
  // Start at the newest segment that begins with a valid checkpoint: everything before
  // it is superseded (left over from a crash while deleting it) and is not read, so
  // damage there cannot stop a node whose live records are intact.
  size_t start = 0;
  for (size_t i = state.segments.size(); i-- > 0;) {
    const uint64_t number = state.segments[i];
    Result<bool> checkpoint = begins_with_checkpoint(dir / segment_name(number), number);
    if (!checkpoint.ok()) return checkpoint.status();
    if (*checkpoint) {
      start = i;
      break;
    }
  }
  uint64_t previous = 0;
  for (size_t i = start; i < state.segments.size(); ++i) {
    const uint64_t number = state.segments[i];
    const bool last = i + 1 == state.segments.size();
    const fs::path path = dir / segment_name(number);
    const std::string name = path.filename().string();
    Result<std::string> read = read_file(path);
    if (!read.ok()) return read.status();
    std::string data = std::move(read).value();

    switch (check_header(data, number)) {
      case HeaderState::kOk:
        break;
      case HeaderState::kOtherVersion:
        return Status::InvalidArgument(
            fmt::format("{}: written in log format version {}, this build reads version {}", name,
                        load_le32(data.data() + 4), kFormatVersion));
      case HeaderState::kWrongNumber:
        return Status::Corruption(
            fmt::format("{}: its header says segment {}", name, load_le64(data.data() + 8)));
      case HeaderState::kShort:
      case HeaderState::kGarbled:
        // A header is durable before any record is written after it, so only a last
        // segment that holds nothing but (part of) its header can have been torn.
        if (!last || data.size() > kSegmentHeaderBytes) {
          return Status::Corruption(fmt::format(
              "{}: damaged segment header, but {}; refusing to open rather than lose records", name,
              last ? "records follow it" : "later segments exist"));
        }
        if (number != previous + 1) break;  // reported as missing segments below
        out->torn_bytes = data.size();
        out->torn_detail = fmt::format(
            "{}: segment header torn while the segment was created "
            "({} bytes); header rewritten",
            name, data.size());
        spdlog::warn("disk log {}: {}", dir.string(), out->torn_detail);
        data = encode_segment_header(number);
        if (Status s = rewrite_tail(path, 0, data, fsync); !s.ok()) return s;
        break;
    }

    SegmentScan scan = scan_segment(data);
    if (number != previous + 1 && !scan.starts_with_checkpoint) {
      return Status::Corruption(
          fmt::format("{}: segments {} to {} are missing and this segment does not begin with "
                      "a checkpoint; refusing to open rather than lose records",
                      name, previous + 1, number - 1));
    }
    if (!scan.damage.empty()) {
      if (scan.misplaced_checkpoint || !last) {
        return Status::Corruption(
            fmt::format("{} at offset {}: {}{}; refusing to open rather than lose records", name,
                        scan.good_end, scan.damage,
                        last ? ""
                             : fmt::format(" ({} bytes follow, and later segments exist)",
                                           data.size() - scan.good_end)));
      }
      out->torn_bytes = data.size() - scan.good_end;
      out->torn_detail = fmt::format("{} at offset {}: {}; cut {} torn bytes", name, scan.good_end,
                                     scan.damage, out->torn_bytes);
      spdlog::warn("disk log {}: {}", dir.string(), out->torn_detail);
      if (Status s = rewrite_tail(path, scan.good_end, {}, fsync); !s.ok()) return s;
    }
    if (scan.starts_with_checkpoint) {
      out->records.clear();
      state.reset_at = number;
    }
    for (std::string_view r : scan.records) out->records.emplace_back(r);
    state.last_size = scan.good_end;
    previous = number;
  }
  return state;
}

}  // namespace

DiskLog::DiskLog(DiskLogOptions options, std::function<void(uint64_t)> on_durable)
    : options_(std::move(options)), on_durable_(std::move(on_durable)) {}

Result<std::unique_ptr<DiskLog>> DiskLog::open(DiskLogOptions options,
                                               std::function<void(uint64_t)> on_durable,
                                               Recovery* recovered) {
  SKV_ASSERT(recovered != nullptr, "DiskLog::open needs somewhere to put the recovered records");
  *recovered = Recovery{};
  const fs::path dir = options.dir;
  if (dir.empty()) return Status::InvalidArgument("disk log: no directory given");
  std::error_code ec;
  const bool created = fs::create_directories(dir, ec);
  if (ec) return Status::IOError(fmt::format("create {}: {}", dir.string(), ec.message()));

  std::unique_ptr<DiskLog> log(new DiskLog(std::move(options), std::move(on_durable)));
  const fs::path lock_path = dir / "LOCK";
  log->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (log->lock_fd_ < 0) return io_error("open", lock_path, errno);
  if (::flock(log->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status::Busy(fmt::format("disk log {} is open elsewhere", dir.string()));
    }
    return io_error("flock", lock_path, errno);
  }
  log->dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (log->dir_fd_ < 0) return io_error("open", dir, errno);
  if (created && log->options_.fsync) {
    // The new directory's own entry must be durable too, or its segments vanish with it.
    fs::path absolute = fs::absolute(dir).lexically_normal();
    if (!absolute.has_filename()) absolute = absolute.parent_path();  // "a/b/" names b
    const fs::path parent = absolute.parent_path();
    int pfd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0) return io_error("open", parent, errno);
    const int rc = ::fsync(pfd);
    const int err = errno;
    ::close(pfd);
    if (rc != 0) return io_error("fsync", parent, err);
  }

  Result<DirState> state = recover_dir(dir, log->options_.fsync, recovered);
  if (!state.ok()) {
    *recovered = Recovery{};
    return state.status();
  }
  if (state->segments.empty()) {
    if (Status s = log->start_segment(1); !s.ok()) return s;
  } else {
    log->segments_ = state->segments;
    log->seg_number_ = state->segments.back();
    log->seg_size_ = state->last_size;
    const fs::path path = dir / segment_name(log->seg_number_);
    log->seg_fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (log->seg_fd_ < 0) return io_error("open", path, errno);
  }
  // Segments before the last checkpoint survive only a crash in the middle of deleting
  // them; they are dead weight.
  if (state->reset_at > 0) log->delete_segments_before(state->reset_at);

  if (!log->options_.pool) log->sync_thread_ = std::thread([raw = log.get()] { raw->sync_loop(); });
  return log;
}

DiskLog::~DiskLog() {
  if (sync_thread_.joinable()) {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    work_.notify_one();
    sync_thread_.join();
  } else if (options_.pool) {
    // Wait for the pool's round on this log, if any, then drain here: appends made
    // from now on (by on_durable, say) are no longer scheduled.
    {
      std::unique_lock lk(mu_);
      stopping_ = true;
      idle_.wait(lk, [this] { return !scheduled_; });
    }
    std::vector<Run> runs;
    while (sync_round(runs)) {
    }
  }
  for (int fd : {seg_fd_, dir_fd_, lock_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

uint64_t DiskLog::append(std::string record) {
  return enqueue(false, std::move(record));
}

uint64_t DiskLog::append_checkpoint(std::string record) {
  return enqueue(true, std::move(record));
}

uint64_t DiskLog::enqueue(bool checkpoint, std::string record) {
  SKV_ASSERT(record.size() < kMaxRecordBytes, "disk log record too large");
  // Framing and hashing happen outside the lock so appenders on many threads overlap.
  std::string frame = encode_record(checkpoint ? kKindCheckpoint : kKindRecord, record);
  bool wake = false;
  uint64_t seq = 0;
  {
    std::lock_guard lk(mu_);
    seq = ++last_seq_;
    counters_.appended.fetch_add(1, std::memory_order_relaxed);
    if (failed_.load(std::memory_order_relaxed)) return seq;  // stopped: never durable
    // The sync thread waits only while nothing is pending, so only the first append
    // after it drained needs to wake it.
    wake = pending_.empty();
    if (checkpoint || pending_.empty()) {
      pending_.push_back(Run{checkpoint, std::move(frame), seq});
    } else {
      pending_.back().bytes.append(frame);
      pending_.back().last_seq = seq;
    }
  }
  if (!wake) return seq;
  if (!options_.pool) {
    work_.notify_one();
    return seq;
  }
  {
    std::lock_guard lk(mu_);
    // Closing: the destructor drains what is left. Queued already: that round
    // takes this record too.
    if (stopping_ || scheduled_) return seq;
    scheduled_ = true;
  }
  options_.pool->schedule(this);
  return seq;
}

bool DiskLog::sync_round(std::vector<Run>& runs) {
  {
    std::lock_guard lk(mu_);
    if (pending_.empty()) return false;
    runs.swap(pending_);
  }
  const uint64_t last = runs.back().last_seq;
  Status s = write_runs(runs);
  runs.clear();
  counters_.batches.fetch_add(1, std::memory_order_relaxed);
  if (!s.ok()) {
    spdlog::error("disk log {}: {}; the log is stopped and nothing more becomes durable",
                  options_.dir.string(), s.to_string());
    std::lock_guard lk(mu_);
    error_ = s;
    failed_.store(true);
    pending_.clear();
    return false;
  }
  counters_.durable.store(last, std::memory_order_release);
  if (on_durable_) on_durable_(last);
  return true;
}

void DiskLog::sync_loop() {
  std::vector<Run> runs;
  while (true) {
    {
      std::unique_lock lk(mu_);
      work_.wait(lk, [this] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, and everything is written
    }
    if (!sync_round(runs) && failed_.load()) return;
  }
}

void DiskLog::pool_round() {
  std::vector<Run> runs;
  sync_round(runs);
  {
    std::lock_guard lk(mu_);
    // Appended meanwhile (and not scheduled, since we were): go round again, after
    // the other logs waiting, so that one busy log does not starve them.
    scheduled_ = !pending_.empty() && !stopping_ && !failed_.load();
    if (!scheduled_) {
      // Under the lock: once it is released, a closing log may be freed at once.
      idle_.notify_all();
      return;
    }
  }
  options_.pool->schedule(this);  // still scheduled: the log cannot be closed meanwhile
}

SyncPool::SyncPool(size_t threads) {
  for (size_t i = 0; i < std::max<size_t>(1, threads); ++i) {
    threads_.emplace_back([this] { run(); });
  }
}

SyncPool::~SyncPool() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  work_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void SyncPool::schedule(DiskLog* log) {
  {
    std::lock_guard lk(mu_);
    queue_.push_back(log);
  }
  work_.notify_one();
}

void SyncPool::run() {
  while (true) {
    DiskLog* log = nullptr;
    {
      std::unique_lock lk(mu_);
      work_.wait(lk, [this] { return stopping_ || next_ < queue_.size(); });
      if (next_ >= queue_.size()) return;  // stopping, and no log is waiting
      log = queue_[next_++];
      if (next_ == queue_.size()) {
        queue_.clear();
        next_ = 0;
      }
    }
    log->pool_round();
  }
}

Status DiskLog::write_runs(std::vector<Run>& runs) {
  bool dirty = false;
  bool checkpointed = false;
  for (Run& run : runs) {
    if (run.checkpoint) {
      checkpointed = true;
      // A checkpoint must be the first record of its segment. The current segment's
      // records are made durable before the next segment exists (see disk_log.h).
      if (seg_size_ > kSegmentHeaderBytes) {
        if (dirty) {
          if (Status s = sync_file(seg_fd_); !s.ok()) return s;
          dirty = false;
        }
        if (Status s = start_segment(seg_number_ + 1); !s.ok()) return s;
      }
    }
    if (Status s = write_all(seg_fd_, run.bytes, options_.dir / segment_name(seg_number_));
        !s.ok()) {
      return s;
    }
    seg_size_ += run.bytes.size();
    counters_.bytes_written.fetch_add(run.bytes.size(), std::memory_order_relaxed);
    dirty = true;
  }
  if (dirty) {
    if (Status s = sync_file(seg_fd_); !s.ok()) return s;
  }
  // Only now is the checkpoint durable, so only now may the records it replaces go.
  if (checkpointed) delete_segments_before(seg_number_);
  return Status::OK();
}

Status DiskLog::start_segment(uint64_t number) {
  const fs::path path = options_.dir / segment_name(number);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("create", path, errno);
  Status s = write_all(fd, encode_segment_header(number), path);
  if (s.ok()) s = sync_file(fd);
  if (!s.ok()) {
    ::close(fd);
    return s;
  }
  if (seg_fd_ >= 0) ::close(seg_fd_);
  seg_fd_ = fd;
  seg_number_ = number;
  seg_size_ = kSegmentHeaderBytes;
  segments_.push_back(number);
  counters_.segments_created.fetch_add(1, std::memory_order_relaxed);
  return sync_dir();
}

Status DiskLog::sync_file(int fd) {
  if (!options_.fsync) return Status::OK();
  counters_.data_syncs.fetch_add(1, std::memory_order_relaxed);
  if (::fdatasync(fd) != 0) {
    return io_error("fdatasync", options_.dir / segment_name(seg_number_), errno);
  }
  return Status::OK();
}

Status DiskLog::sync_dir() {
  if (!options_.fsync) return Status::OK();
  counters_.dir_syncs.fetch_add(1, std::memory_order_relaxed);
  if (::fsync(dir_fd_) != 0) return io_error("fsync", options_.dir, errno);
  return Status::OK();
}

void DiskLog::delete_segments_before(uint64_t number) {
  // Oldest first: whatever subset a crash leaves is still readable, because the first
  // surviving segment after any gap begins with the checkpoint (see recovery).
  size_t deleted = 0;
  auto it = segments_.begin();
  while (it != segments_.end() && *it < number) {
    const fs::path path = options_.dir / segment_name(*it);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      // Harmless: the checkpoint resets recovery anyway. Retried after the next one.
      spdlog::warn("disk log: cannot delete superseded {}: {}", path.string(),
                   std::generic_category().message(errno));
      ++it;
      continue;
    }
    it = segments_.erase(it);
    ++deleted;
  }
  if (deleted == 0) return;
  counters_.segments_deleted.fetch_add(deleted, std::memory_order_relaxed);
  if (Status s = sync_dir(); !s.ok()) {
    spdlog::warn("disk log {}: {}", options_.dir.string(), s.to_string());
  }
}

Status DiskLog::status() const {
  std::lock_guard lk(mu_);
  return error_;
}

DiskLogStats DiskLog::stats() const {
  DiskLogStats s;
  s.appended = counters_.appended.load();
  s.durable = counters_.durable.load();
  s.batches = counters_.batches.load();
  s.data_syncs = counters_.data_syncs.load();
  s.dir_syncs = counters_.dir_syncs.load();
  s.bytes_written = counters_.bytes_written.load();
  s.segments_created = counters_.segments_created.load();
  s.segments_deleted = counters_.segments_deleted.load();
  return s;
}

}  // namespace statekv::net
