#include "net/shared_log.h"

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
#include <map>
#include <optional>
#include <string_view>
#include <system_error>
#include <unordered_map>

#include "core/assert.h"
#include "core/little_endian.h"
#include "core/thread_name.h"
#include "net/disk_log.h"
#include "net/log_files.h"

namespace statekv::net {
namespace {

namespace fs = std::filesystem;
using log_files::io_error;
using log_files::pwrite_all;
using log_files::read_file;
using log_files::rewrite_tail;

constexpr std::string_view kSegmentMagic = "SKVW";
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kSegmentHeaderBytes = 24;
constexpr size_t kRecordHeaderBytes = 21;  // u32 length | u64 checksum | u8 kind | u64 group
constexpr uint8_t kKindRecord = 1;
constexpr uint8_t kKindCheckpoint = 2;
constexpr uint8_t kKindReset = 3;

std::string segment_name(uint64_t number) {
  return fmt::format("wal-{:010d}.skv", number);
}

// "wal-0000000042.skv" -> 42; anything else (LOCK, editor droppings) -> nullopt.
std::optional<uint64_t> parse_segment_name(std::string_view name) {
  return log_files::parse_numbered_name(name, "wal-", ".skv");
}

std::string encode_segment_header(uint64_t number) {
  std::string out(kSegmentHeaderBytes, '\0');
  std::memcpy(out.data(), kSegmentMagic.data(), 4);
  store_le32(out.data() + 4, kFormatVersion);
  store_le64(out.data() + 8, number);
  store_le64(out.data() + 16, XXH3_64bits(out.data(), 16));
  return out;
}

void append_frame(std::string& out, uint8_t kind, uint64_t group, std::string_view payload) {
  const size_t at = out.size();
  out.resize(at + kRecordHeaderBytes + payload.size());
  char* p = out.data() + at;
  store_le32(p, static_cast<uint32_t>(payload.size()));
  p[12] = static_cast<char>(kind);
  store_le64(p + 13, group);
  if (!payload.empty()) std::memcpy(p + kRecordHeaderBytes, payload.data(), payload.size());
  // The checksum covers kind, group and payload, contiguous from offset 12.
  store_le64(p + 4, XXH3_64bits(p + 12, payload.size() + 9));
}

// Whether every byte of `data` from `from` on is zero (true when there are none).
bool zeros_from(std::string_view data, size_t from) {
  return from >= data.size() || data.find_first_not_of('\0', from) == std::string_view::npos;
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

struct ScannedRecord {
  uint8_t kind = 0;
  uint64_t group = 0;
  uint64_t offset = 0;  // of the frame in its segment
  uint32_t frame_bytes = 0;
  uint32_t moved = 0;  // a reset: how many of the group's records follow it (relocation)
};

// The records of one segment, read up to the first damage.
struct SegmentScan {
  std::vector<ScannedRecord> records;
  size_t good_end = kSegmentHeaderBytes;  // end of the last intact record
  std::string damage;                     // why reading stopped early; empty when clean
  bool malformed = false;                 // intact, but not as the log writes: corruption
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
    const std::string_view body = data.substr(pos + 12, size_t{length} + 9);  // kind+group+payload
    if (XXH3_64bits(body.data(), body.size()) != load_le64(data.data() + pos + 4)) {
      scan.damage = fmt::format("checksum mismatch on a record of {} bytes", length);
      break;
    }
    const auto kind = static_cast<uint8_t>(body[0]);
    if (kind != kKindRecord && kind != kKindCheckpoint && kind != kKindReset) {
      scan.damage = fmt::format("unknown record kind {}", kind);
      break;
    }
    if (kind == kKindReset && length != 0 && length != 4) {
      scan.damage = fmt::format("a reset record of {} bytes", length);
      break;
    }
    scan.records.push_back(ScannedRecord{
        kind, load_le64(body.data() + 1), pos, static_cast<uint32_t>(kRecordHeaderBytes + length),
        kind == kKindReset && length == 4 ? load_le32(body.data() + 9) : 0});
    pos += kRecordHeaderBytes + length;
  }
  scan.good_end = pos;
  // A relocation (a reset saying how many copies follow, then the copies) is applied
  // whole or not at all: a write torn after the reset must not leave the group with
  // only part of its records (their originals are still in an older segment).
  for (size_t i = 0; i < scan.records.size(); ++i) {
    const ScannedRecord& r = scan.records[i];
    if (r.kind != kKindReset || r.moved == 0) continue;
    size_t have = 0;
    while (have < r.moved && i + 1 + have < scan.records.size() &&
           scan.records[i + 1 + have].group == r.group &&
           scan.records[i + 1 + have].kind != kKindReset) {
      ++have;
    }
    if (have == r.moved) {
      i += have;
      continue;
    }
    const bool at_end = i + 1 + have == scan.records.size();
    scan.damage = fmt::format("a move of group {}'s {} records {} after {} of them", r.group,
                              r.moved, at_end ? "ends" : "is interrupted by another record", have);
    scan.malformed = !at_end;  // never written so: not a torn write
    scan.good_end = r.offset;
    scan.records.resize(i);
    break;
  }
  return scan;
}

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

// Reads live records back from their segments (to hand them to open_group, or to
// copy them forward), keeping each segment it opened open until it goes.
class RecordReader {
 public:
  explicit RecordReader(fs::path dir) : dir_(std::move(dir)) {}
  ~RecordReader() {
    for (const auto& [n, fd] : fds_) ::close(fd);
  }
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;

  // The whole frame of the record at `offset`, its checksum checked.
  Result<std::string> read(uint64_t segment, uint64_t offset, uint32_t length) {
    const fs::path path = dir_ / segment_name(segment);
    int& fd = fds_[segment];
    if (fd <= 0) {
      fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        const int err = errno;
        fds_.erase(segment);
        return io_error("open", path, err);
      }
    }
    std::string out(length, '\0');
    size_t done = 0;
    while (done < length) {
      ssize_t n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return io_error("read", path, n < 0 ? errno : EIO);
      done += static_cast<size_t>(n);
    }
    if (length < kRecordHeaderBytes ||
        XXH3_64bits(out.data() + 12, length - 12) != load_le64(out.data() + 4)) {
      return Status::Corruption(fmt::format(
          "{} at offset {}: a live record no longer reads back intact", path.string(), offset));
    }
    return out;
  }

 private:
  const fs::path dir_;
  std::map<uint64_t, int> fds_;
};

}  // namespace

// Where one live record of a group is on disk.
struct Location {
  uint64_t segment = 0;
  uint64_t offset = 0;
  uint32_t frame_bytes = 0;
};

struct SharedLog::Group {
  explicit Group(uint64_t id) : id(id) {}
  const uint64_t id;
  // Guarded by SharedLog::mu_.
  bool open = false;
  bool dropping = false;
  uint64_t last_seq = 0;       // per open of the group
  uint64_t last_node_seq = 0;  // the node-wide position of its last append
  // Guarded by cb_mu (held while it runs, so closing waits for a running call).
  std::mutex cb_mu;
  std::function<void(uint64_t)> on_durable;
  // Guarded by SharedLog::io_mu_: its live records, in append order.
  std::vector<Location> live;
  std::atomic<uint64_t> appended{0}, durable{0};
};

// One record on its way to disk: `offset` is its frame's offset in the round's bytes.
struct SharedLog::Entry {
  std::shared_ptr<Group> group;
  uint8_t kind = 0;
  uint64_t seq = 0;  // the group's sequence; 0 for resets and relocated copies
  uint64_t offset = 0;
  uint32_t frame_bytes = 0;
};

struct SharedLog::Segment {
  uint64_t size = 0;
  std::unordered_map<uint64_t, uint32_t> live;  // group -> its live records here
};

SharedLog::SharedLog(SharedLogOptions options)
    : options_(std::move(options)), preallocate_(options_.preallocate_bytes > 0) {}

Result<std::shared_ptr<SharedLog>> SharedLog::open(SharedLogOptions options,
                                                   SharedLogRecovery* recovered) {
  SharedLogRecovery scratch;
  if (recovered == nullptr) recovered = &scratch;
  *recovered = SharedLogRecovery{};
  const fs::path dir = options.dir;
  if (dir.empty()) return Status::InvalidArgument("shared log: no directory given");
  if (options.segment_bytes == 0) {
    return Status::InvalidArgument("shared log: segment_bytes must be positive");
  }
  std::error_code ec;
  const bool created = fs::create_directories(dir, ec);
  if (ec) return Status::IOError(fmt::format("create {}: {}", dir.string(), ec.message()));

  std::shared_ptr<SharedLog> log(new SharedLog(std::move(options)));
  const fs::path lock_path = dir / "LOCK";
  log->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (log->lock_fd_ < 0) return io_error("open", lock_path, errno);
  if (::flock(log->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status::Busy(fmt::format("shared log {} is open elsewhere", dir.string()));
    }
    return io_error("flock", lock_path, errno);
  }
  log->dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (log->dir_fd_ < 0) return io_error("open", dir, errno);
  if (created && log->options_.fsync) {
    // The new directory's own entry must be durable too, or its segments vanish with it.
    fs::path absolute = fs::absolute(dir).lexically_normal();
    if (!absolute.has_filename()) absolute = absolute.parent_path();
    const fs::path parent = absolute.parent_path();
    int pfd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0) return io_error("open", parent, errno);
    const int rc = ::fsync(pfd);
    const int err = errno;
    ::close(pfd);
    if (rc != 0) return io_error("fsync", parent, err);
  }
  {
    std::lock_guard io(log->io_mu_);
    if (Status s = log->recover(recovered); !s.ok()) {
      *recovered = SharedLogRecovery{};
      return s;
    }
  }
  log->sync_thread_ = std::thread([raw = log.get()] {
    name_this_thread("wal-sync");
    raw->sync_loop();
  });
  return log;
}

Status SharedLog::recover(SharedLogRecovery* out) {
  const fs::path& dir = options_.dir;
  Result<std::vector<uint64_t>> listed = list_segments(dir);
  if (!listed.ok()) return listed.status();
  const std::vector<uint64_t>& numbers = *listed;
  for (size_t i = 0; i < numbers.size(); ++i) {
    const uint64_t number = numbers[i];
    const bool last = i + 1 == numbers.size();
    const fs::path path = dir / segment_name(number);
    const std::string name = path.filename().string();
    if (i > 0 && number != numbers[i - 1] + 1) {
      // Only the oldest segments are ever deleted: a hole lost live records.
      return Status::Corruption(
          fmt::format("{}: segments {} to {} are missing; refusing to open rather than lose "
                      "records",
                      name, numbers[i - 1] + 1, number - 1));
    }
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
      case HeaderState::kGarbled: {
        // A header is durable before any record is written after it, so only a last
        // segment that holds nothing but (part of) its header, and then at most the
        // zeros of its first preallocated chunk, can have been torn (writing order 2).
        if (!last || !zeros_from(data, kSegmentHeaderBytes)) {
          return Status::Corruption(fmt::format(
              "{}: damaged segment header, but {}; refusing to open rather than lose records", name,
              last ? "records follow it" : "later segments exist"));
        }
        const size_t header_part = std::min(data.size(), kSegmentHeaderBytes);
        out->torn_bytes = header_part;
        out->torn_detail = fmt::format(
            "{}: segment header torn while the segment was created ({} bytes{}); header rewritten",
            name, header_part,
            data.size() > header_part
                ? fmt::format(", then {} preallocated zero bytes", data.size() - header_part)
                : "");
        spdlog::warn("shared log {}: {}", dir.string(), out->torn_detail);
        data = encode_segment_header(number);
        if (Status s = rewrite_tail(path, 0, data, options_.fsync); !s.ok()) return s;
        break;
      }
    }

    SegmentScan scan = scan_segment(data);
    // The file's size: the records, then (in the last segment) preallocated zeros.
    uint64_t file_bytes = data.size();
    if (!scan.damage.empty() && !scan.malformed && zeros_from(data, scan.good_end)) {
      if (last) {
        scan.damage.clear();  // preallocated space after the last record: a clean end
      } else {
        // Closing a segment cuts it to its records: zeros here were not left by us.
        scan.damage =
            fmt::format("{} zero bytes after its last record", data.size() - scan.good_end);
      }
    }
    if (!scan.damage.empty()) {
      if (!last || scan.malformed) {
        return Status::Corruption(fmt::format(
            "{} at offset {}: {} ({} bytes follow{}); refusing to open rather than lose records",
            name, scan.good_end, scan.damage, data.size() - scan.good_end,
            last ? "" : ", and later segments exist"));
      }
      out->torn_bytes = data.size() - scan.good_end;
      // Zeros at the very end are most likely the preallocated space: said, to read the
      // size of the cut right.
      const size_t zeros = data.size() - 1 - data.find_last_not_of('\0');
      out->torn_detail = fmt::format(
          "{} at offset {}: {}; cut {} torn bytes{}", name, scan.good_end, scan.damage,
          out->torn_bytes,
          zeros > 0 ? fmt::format(" (the last {} of them zeros, preallocated space)", zeros) : "");
      spdlog::warn("shared log {}: {}", dir.string(), out->torn_detail);
      if (Status s = rewrite_tail(path, scan.good_end, {}, options_.fsync); !s.ok()) return s;
      file_bytes = scan.good_end;
    }
    segments_[number].size = scan.good_end;
    if (last) seg_file_bytes_ = file_bytes;
    for (const ScannedRecord& r : scan.records) {
      std::shared_ptr<Group>& g = groups_[r.group];
      if (!g) g = std::make_shared<Group>(r.group);
      index(Entry{g, r.kind, 0, 0, r.frame_bytes}, number, r.offset);
    }
  }
  if (segments_.empty()) {
    Status s = start_segment(1);
    delete_dead_segments();  // publishes the counters
    return s;
  }

  seg_number_ = segments_.rbegin()->first;
  seg_size_ = segments_.rbegin()->second.size;
  const fs::path path = dir / segment_name(seg_number_);
  // Rounds are written at seg_size_, over the preallocated zeros (if any).
  seg_fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (seg_fd_ < 0) return io_error("open", path, errno);
  // Records read back may be written but not yet synced (a process crash): they must
  // be durable before the records they supersede are deleted.
  if (Status s = sync_file(seg_fd_); !s.ok()) return s;
  for (auto it = groups_.begin(); it != groups_.end();) {
    if (it->second->live.empty()) {
      it = groups_.erase(it);
    } else {
      out->groups.push_back(it->first);
      ++it;
    }
  }
  delete_dead_segments();
  return Status::OK();
}

SharedLog::~SharedLog() {
  if (sync_thread_.joinable()) {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    work_.notify_one();
    sync_thread_.join();
  }
  // A log closed cleanly leaves no preallocated zeros behind (writing order 1).
  if (seg_fd_ >= 0 && error_.ok()) {
    if (Status s = trim_segment(); !s.ok()) {
      spdlog::warn("shared log {}: {}", options_.dir.string(), s.to_string());
    }
  }
  for (int fd : {seg_fd_, dir_fd_, lock_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

Result<std::unique_ptr<GroupLog>> SharedLog::open_group(uint64_t group,
                                                        std::function<void(uint64_t)> on_durable,
                                                        std::vector<std::string>* records) {
  SKV_ASSERT(records != nullptr, "SharedLog::open_group needs somewhere to put the records");
  records->clear();
  // io_mu_ keeps the sync thread from moving or deleting the records while we read.
  std::lock_guard io(io_mu_);
  std::shared_ptr<Group> g;
  {
    std::lock_guard lk(mu_);
    if (!error_.ok()) return error_;
    std::shared_ptr<Group>& slot = groups_[group];
    if (!slot) slot = std::make_shared<Group>(group);
    if (slot->open || slot->dropping) {
      return Status::Busy(
          fmt::format("group {} is open on shared log {} already", group, options_.dir.string()));
    }
    g = slot;
    g->open = true;
    g->last_seq = 0;
    g->appended = 0;
    g->durable = 0;
  }
  {
    std::lock_guard cb(g->cb_mu);
    g->on_durable = std::move(on_durable);
  }
  RecordReader reader(options_.dir);
  for (const Location& at : g->live) {
    Result<std::string> frame = reader.read(at.segment, at.offset, at.frame_bytes);
    if (!frame.ok()) {
      records->clear();
      std::lock_guard lk(mu_);
      g->open = false;
      return frame.status();
    }
    records->emplace_back(frame->substr(kRecordHeaderBytes));
  }
  return std::unique_ptr<GroupLog>(new GroupLog(shared_from_this(), std::move(g)));
}

Status SharedLog::drop_group(uint64_t group) {
  uint64_t target = 0;
  std::shared_ptr<Group> g;
  {
    std::lock_guard lk(mu_);
    auto it = groups_.find(group);
    if (it == groups_.end()) return error_;  // nothing of it here
    g = it->second;
    if (g->open || g->dropping) {
      return Status::Busy(
          fmt::format("group {} is open on shared log {}", group, options_.dir.string()));
    }
    g->dropping = true;
  }
  enqueue(*g, kKindReset, {});
  work_.notify_one();  // this thread may hold wakes (hold_wakes_on_this_thread)
  {
    std::unique_lock lk(mu_);
    target = g->last_node_seq;
    durable_.wait(lk, [&] { return node_durable_ >= target || !error_.ok(); });
  }
  std::lock_guard io(io_mu_);
  std::lock_guard lk(mu_);
  g->dropping = false;
  if (g->live.empty() && !g->open) groups_.erase(group);
  return error_;
}

void SharedLog::close_group(Group& g) {
  work_.notify_one();  // this thread may hold wakes (hold_wakes_on_this_thread)
  {
    std::unique_lock lk(mu_);
    const uint64_t target = g.last_node_seq;
    durable_.wait(lk, [&] { return node_durable_ >= target || !error_.ok(); });
  }
  {
    std::lock_guard cb(g.cb_mu);
    g.on_durable = nullptr;
  }
  std::lock_guard io(io_mu_);
  std::lock_guard lk(mu_);
  g.open = false;
  if (g.live.empty() && !g.dropping) groups_.erase(g.id);
}

std::vector<uint64_t> SharedLog::groups() const {
  std::lock_guard io(io_mu_);
  std::lock_guard lk(mu_);
  std::vector<uint64_t> out;
  for (const auto& [id, g] : groups_) {
    if (!g->live.empty()) out.push_back(id);
  }
  return out;
}

namespace {
// The logs whose wakes this thread holds (hold_wakes_on_this_thread), and whether it
// holds them at all. Weak: a log may go before the pass ends.
struct HeldWakes {
  SharedLog::ScheduleWake schedule;  // empty: not holding
  std::vector<std::weak_ptr<SharedLog>> logs;
};
thread_local HeldWakes t_held_wakes;
}  // namespace

void SharedLog::hold_wakes_on_this_thread(ScheduleWake schedule) {
  if (!schedule) wake_held();
  t_held_wakes.schedule = std::move(schedule);
}

void SharedLog::wake_held() {
  if (t_held_wakes.logs.empty()) return;
  std::vector<std::weak_ptr<SharedLog>> logs;
  logs.swap(t_held_wakes.logs);
  for (const auto& weak : logs) {
    if (auto log = weak.lock()) log->work_.notify_one();
  }
}

uint64_t SharedLog::enqueue(Group& g, uint8_t kind, std::string_view record) {
  SKV_ASSERT(record.size() < kMaxRecordBytes, "shared log record too large");
  // Framing and hashing happen outside the lock so appenders on many threads overlap.
  std::string frame;
  append_frame(frame, kind, g.id, record);
  bool wake = false;
  uint64_t seq = 0;
  {
    std::lock_guard lk(mu_);
    if (kind != kKindReset) {
      seq = ++g.last_seq;
      g.appended.fetch_add(1, std::memory_order_relaxed);
      counters_.appended.fetch_add(1, std::memory_order_relaxed);
    }
    if (!error_.ok()) return seq;  // stopped: never durable
    wake = pending_.empty();
    auto it = groups_.find(g.id);
    SKV_ASSERT(it != groups_.end() && it->second.get() == &g, "appending to a closed group");
    pending_entries_.push_back(
        Entry{it->second, kind, seq, pending_.size(), static_cast<uint32_t>(frame.size())});
    pending_.append(frame);
    g.last_node_seq = ++node_seq_;
  }
  // The sync thread waits only while nothing is pending, so only the first append
  // after it drained needs to wake it.
  if (wake) {
    HeldWakes& held = t_held_wakes;
    if (!held.schedule) {
      work_.notify_one();
    } else {
      const auto self = weak_from_this();
      const bool noted = std::any_of(held.logs.begin(), held.logs.end(), [&](const auto& w) {
        return !w.owner_before(self) && !self.owner_before(w);
      });
      if (!noted) {
        if (held.logs.empty()) held.schedule([] { wake_held(); });
        held.logs.push_back(self);
      }
    }
  }
  return seq;
}

void SharedLog::sync_loop() {
  std::string bytes;
  std::vector<Entry> entries;
  std::unordered_map<Group*, uint64_t> reached;
  while (true) {
    uint64_t last_node_seq = 0;
    {
      std::unique_lock lk(mu_);
      work_.wait(lk, [this] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, and everything is written
      bytes.swap(pending_);
      entries.swap(pending_entries_);
      last_node_seq = node_seq_;
    }
    Status s;
    {
      std::lock_guard io(io_mu_);
      s = write_round(bytes, entries);
    }
    if (!s.ok()) {
      spdlog::error("shared log {}: {}; the log is stopped and nothing more becomes durable",
                    options_.dir.string(), s.to_string());
      {
        std::lock_guard lk(mu_);
        error_ = s;
        pending_.clear();
        pending_entries_.clear();
        durable_.notify_all();
      }
      if (options_.on_failure) options_.on_failure(s);
      return;
    }
    // Tell each group the last of its records the round covered, then wake closers.
    reached.clear();
    for (const Entry& e : entries) {
      if (e.seq > 0) reached[e.group.get()] = e.seq;
    }
    for (auto& [g, seq] : reached) {
      std::lock_guard cb(g->cb_mu);
      g->durable.store(seq, std::memory_order_release);
      if (g->on_durable) g->on_durable(seq);
    }
    bytes.clear();
    entries.clear();
    {
      std::lock_guard lk(mu_);
      node_durable_ = last_node_seq;
    }
    durable_.notify_all();
  }
}

Status SharedLog::write_round(std::string& bytes, std::vector<Entry>& entries) {
  counters_.batches.fetch_add(1, std::memory_order_relaxed);
  // Every round ends with a sync, so the current segment's records are durable here.
  if (seg_size_ >= options_.segment_bytes) {
    if (Status s = trim_segment(); !s.ok()) return s;
    if (Status s = start_segment(seg_number_ + 1); !s.ok()) return s;
  }
  std::string moved;
  std::vector<Entry> moved_entries;
  if (Status s = relocate_oldest(moved, moved_entries); !s.ok()) return s;
  if (!moved.empty()) {
    // The copies go first: the round's own records of those groups come after them.
    for (Entry& e : entries) e.offset += moved.size();
    moved.append(bytes);
    bytes.swap(moved);
    moved_entries.insert(moved_entries.end(), entries.begin(), entries.end());
    entries.swap(moved_entries);
  }
  const fs::path path = options_.dir / segment_name(seg_number_);
  if (Status s = preallocate(seg_fd_, path, seg_size_ + bytes.size(), &seg_file_bytes_); !s.ok()) {
    return s;
  }
  if (Status s = pwrite_all(seg_fd_, bytes, seg_size_, path); !s.ok()) return s;
  const uint64_t base = seg_size_;
  seg_size_ += bytes.size();
  segments_[seg_number_].size = seg_size_;
  seg_file_bytes_ = std::max(seg_file_bytes_, seg_size_);  // when not preallocating
  counters_.bytes_written.fetch_add(bytes.size(), std::memory_order_relaxed);
  for (const Entry& e : entries) index(e, seg_number_, base + e.offset);
  if (Status s = sync_file(seg_fd_); !s.ok()) return s;
  // Only now are the checkpoints, resets and copies durable, so only now may the
  // records they replace go.
  delete_dead_segments();
  return Status::OK();
}

void SharedLog::index(const Entry& e, uint64_t segment, uint64_t offset) {
  Group& g = *e.group;
  if (e.kind == kKindCheckpoint || e.kind == kKindReset) {
    for (const Location& at : g.live) {
      auto seg = segments_.find(at.segment);
      SKV_ASSERT(seg != segments_.end(), "a live record in a deleted segment");
      auto count = seg->second.live.find(g.id);
      if (--count->second == 0) seg->second.live.erase(count);
      live_bytes_ -= at.frame_bytes;
    }
    g.live.clear();
  }
  if (e.kind == kKindReset) return;
  g.live.push_back(Location{segment, offset, e.frame_bytes});
  ++segments_[segment].live[g.id];
  live_bytes_ += e.frame_bytes;
}

Status SharedLog::relocate_oldest(std::string& bytes, std::vector<Entry>& entries) {
  if (segments_.size() <= 2) return Status::OK();
  uint64_t disk = 0;
  for (const auto& [n, seg] : segments_) disk += seg.size;
  if (live_bytes_ * 2 >= disk) return Status::OK();
  const auto& [oldest, seg] = *segments_.begin();
  if (oldest == seg_number_ || seg.live.empty()) return Status::OK();
  std::vector<std::shared_ptr<Group>> pinning;
  {
    std::lock_guard lk(mu_);
    for (const auto& [id, count] : seg.live) pinning.push_back(groups_.at(id));
  }
  std::sort(pinning.begin(), pinning.end(),
            [](const auto& a, const auto& b) { return a->id < b->id; });
  uint64_t copied = 0;
  RecordReader reader(options_.dir);
  for (const std::shared_ptr<Group>& g : pinning) {
    // The reset says how many copies follow, so that recovery applies the move whole
    // or not at all (see scan_segment).
    char count[4];
    store_le32(count, static_cast<uint32_t>(g->live.size()));
    const size_t reset_at = bytes.size();
    append_frame(bytes, kKindReset, g->id, std::string_view(count, sizeof count));
    entries.push_back(Entry{g, kKindReset, 0, reset_at, kRecordHeaderBytes + sizeof count});
    for (const Location& at : g->live) {
      Result<std::string> frame = reader.read(at.segment, at.offset, at.frame_bytes);
      if (!frame.ok()) return frame.status();
      const auto kind = static_cast<uint8_t>((*frame)[12]);
      entries.push_back(Entry{g, kind, 0, bytes.size(), at.frame_bytes});
      bytes.append(*frame);
      ++copied;
    }
  }
  counters_.records_relocated.fetch_add(copied, std::memory_order_relaxed);
  spdlog::debug("shared log {}: copied {} live records of {} groups out of segment {}",
                options_.dir.string(), copied, pinning.size(), oldest);
  return Status::OK();
}

Status SharedLog::start_segment(uint64_t number) {
  // Writing order 2 (header comment): allocated, then the header, then one sync for
  // both. A crash in between leaves zeros, or (part of) the header and zeros: a torn
  // header to recovery.
  const fs::path path = options_.dir / segment_name(number);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("create", path, errno);
  uint64_t file_bytes = 0;
  Status s = preallocate(fd, path, kSegmentHeaderBytes, &file_bytes);
  if (s.ok()) s = pwrite_all(fd, encode_segment_header(number), 0, path);
  if (s.ok()) s = sync_file(fd);
  if (!s.ok()) {
    ::close(fd);
    return s;
  }
  if (seg_fd_ >= 0) ::close(seg_fd_);
  seg_fd_ = fd;
  seg_number_ = number;
  seg_size_ = kSegmentHeaderBytes;
  seg_file_bytes_ = std::max(file_bytes, seg_size_);
  segments_[number].size = seg_size_;
  counters_.segments_created.fetch_add(1, std::memory_order_relaxed);
  return sync_dir();
}

Status SharedLog::preallocate(int fd, const fs::path& path, uint64_t need, uint64_t* file_bytes) {
  if (!preallocate_ || need <= *file_bytes) return Status::OK();
  // A chunk ahead, but no further than where the segment will be closed (it would be
  // cut off then), unless this round needs more.
  const uint64_t limit = options_.segment_bytes;
  uint64_t want = *file_bytes >= limit
                      ? need
                      : *file_bytes + std::min(options_.preallocate_bytes, limit - *file_bytes);
  want = std::max(want, need);
  while (true) {
    // Mode 0: allocates and sets the file's size; the new space reads as zeros.
    if (::fallocate(fd, 0, static_cast<off_t>(*file_bytes),
                    static_cast<off_t>(want - *file_bytes)) == 0) {
      break;
    }
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EOPNOTSUPP || err == ENOSYS) {
      preallocate_ = false;
      spdlog::info("shared log {}: the filesystem cannot preallocate (fallocate: {}); appending",
                   options_.dir.string(), std::generic_category().message(err));
      return Status::OK();
    }
    if ((err == ENOSPC || err == EFBIG) && want > need) {
      want = need;  // no room for a chunk ahead: at least what the round needs
      continue;
    }
    return io_error("fallocate", path, err);
  }
  counters_.preallocations.fetch_add(1, std::memory_order_relaxed);
  *file_bytes = want;
  return Status::OK();
}

Status SharedLog::trim_segment() {
  const fs::path path = options_.dir / segment_name(seg_number_);
  // The file's real size, not seg_file_bytes_: a failed fallocate may have grown it.
  struct stat st {};
  if (::fstat(seg_fd_, &st) != 0) return io_error("stat", path, errno);
  if (static_cast<uint64_t>(st.st_size) <= seg_size_) return Status::OK();
  if (::ftruncate(seg_fd_, static_cast<off_t>(seg_size_)) != 0) {
    return io_error("ftruncate", path, errno);
  }
  seg_file_bytes_ = seg_size_;
  // fdatasync writes a size change (unlike a timestamp's).
  return sync_file(seg_fd_);
}

Status SharedLog::sync_file(int fd) {
  if (!options_.fsync) return Status::OK();
  counters_.data_syncs.fetch_add(1, std::memory_order_relaxed);
  if (::fdatasync(fd) != 0) {
    return io_error("fdatasync", options_.dir / segment_name(seg_number_), errno);
  }
  return Status::OK();
}

Status SharedLog::sync_dir() {
  if (!options_.fsync) return Status::OK();
  counters_.dir_syncs.fetch_add(1, std::memory_order_relaxed);
  if (::fsync(dir_fd_) != 0) return io_error("fsync", options_.dir, errno);
  return Status::OK();
}

void SharedLog::delete_dead_segments() {
  // Oldest first, and only the oldest: the segments on disk stay consecutive, and a
  // crash part-way leaves a suffix that still recovers (see the header).
  size_t deleted = 0;
  while (segments_.size() > 1) {
    auto it = segments_.begin();
    if (it->first == seg_number_ || !it->second.live.empty()) break;
    const fs::path path = options_.dir / segment_name(it->first);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      // Harmless: its records are dead. Retried after the next round.
      spdlog::warn("shared log: cannot delete {}: {}", path.string(),
                   std::generic_category().message(errno));
      break;
    }
    segments_.erase(it);
    ++deleted;
  }
  uint64_t disk = seg_file_bytes_ - std::min(seg_file_bytes_, seg_size_);  // preallocated
  for (const auto& [n, seg] : segments_) disk += seg.size;
  counters_.segments.store(segments_.size(), std::memory_order_relaxed);
  counters_.disk_bytes.store(disk, std::memory_order_relaxed);
  counters_.live_bytes.store(live_bytes_, std::memory_order_relaxed);
  if (deleted == 0) return;
  counters_.segments_deleted.fetch_add(deleted, std::memory_order_relaxed);
  if (Status s = sync_dir(); !s.ok()) {
    spdlog::warn("shared log {}: {}", options_.dir.string(), s.to_string());
  }
}

Status SharedLog::status() const {
  std::lock_guard lk(mu_);
  return error_;
}

SharedLogStats SharedLog::stats() const {
  SharedLogStats s;
  s.appended = counters_.appended.load();
  s.batches = counters_.batches.load();
  s.data_syncs = counters_.data_syncs.load();
  s.dir_syncs = counters_.dir_syncs.load();
  s.bytes_written = counters_.bytes_written.load();
  s.segments_created = counters_.segments_created.load();
  s.segments_deleted = counters_.segments_deleted.load();
  s.records_relocated = counters_.records_relocated.load();
  s.segments = counters_.segments.load();
  s.live_bytes = counters_.live_bytes.load();
  s.disk_bytes = counters_.disk_bytes.load();
  s.preallocations = counters_.preallocations.load();
  return s;
}

// ------------------------------------------------------------------ GroupLog

GroupLog::GroupLog(std::shared_ptr<SharedLog> log, std::shared_ptr<SharedLog::Group> group)
    : log_(std::move(log)), group_(std::move(group)) {}

GroupLog::~GroupLog() {
  log_->close_group(*group_);
}

uint64_t GroupLog::append(std::string_view record) {
  return log_->enqueue(*group_, kKindRecord, record);
}

uint64_t GroupLog::append_checkpoint(std::string_view record) {
  return log_->enqueue(*group_, kKindCheckpoint, record);
}

uint64_t GroupLog::group() const {
  return group_->id;
}

Status GroupLog::status() const {
  return log_->status();
}

GroupLogStats GroupLog::stats() const {
  return GroupLogStats{group_->appended.load(), group_->durable.load()};
}

// ------------------------------------------------------------------ migration

namespace {

Status fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("open", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return io_error("fsync", dir, err);
  return Status::OK();
}

}  // namespace

Result<bool> migrate_disk_log(SharedLog& log, uint64_t group, const fs::path& dir, bool fsync) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  std::vector<std::string> records;
  {
    Recovery recovered;
    auto old = DiskLog::open(DiskLogOptions{dir, fsync, nullptr}, {}, &recovered);
    if (!old.ok()) return old.status();  // it names the directory or file
    records = std::move(recovered.records);
  }
  if (Status s = log.drop_group(group); !s.ok()) return s;
  {
    std::vector<std::string> existing;
    auto opened = log.open_group(group, {}, &existing);
    if (!opened.ok()) return opened.status();
    for (const std::string& r : records) (*opened)->append(r);
  }  // closing the group waits until its records are durable
  if (Status s = log.status(); !s.ok()) return s;
  fs::remove_all(dir, ec);
  if (ec) return Status::IOError(fmt::format("remove {}: {}", dir.string(), ec.message()));
  if (fsync) {
    if (Status s = fsync_dir(dir.parent_path()); !s.ok()) return s;
  }
  spdlog::info("moved {} records of group {} from {} into the shared log", records.size(), group,
               dir.string());
  return true;
}

Result<size_t> migrate_group_logs(SharedLog& log, const fs::path& groups_dir, bool fsync) {
  std::error_code ec;
  if (!fs::is_directory(groups_dir, ec)) return size_t{0};
  std::vector<std::pair<uint64_t, fs::path>> dirs;
  for (fs::directory_iterator it(groups_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    uint64_t id = 0;
    auto [p, err] = std::from_chars(name.data(), name.data() + name.size(), id);
    if (err != std::errc() || p != name.data() + name.size() || !it->is_directory()) continue;
    dirs.emplace_back(id, it->path());
  }
  if (ec) return Status::IOError(fmt::format("list {}: {}", groups_dir.string(), ec.message()));
  std::sort(dirs.begin(), dirs.end());
  size_t moved = 0;
  for (const auto& [id, dir] : dirs) {
    auto done = migrate_disk_log(log, id, dir, fsync);
    if (!done.ok()) return done.status();
    if (*done) ++moved;
  }
  if (fs::is_empty(groups_dir, ec)) fs::remove(groups_dir, ec);
  return moved;
}

}  // namespace statekv::net
