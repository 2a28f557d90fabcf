// File helpers shared by the node's logs (net/disk_log.h, net/shared_log.h):
// whole writes, reads, cutting a torn tail, numbered segment names, and I/O
// errors that name the file. Blocking POSIX calls; no state.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace statekv::net::log_files {

// IOError "WHAT PATH: strerror(err)".
Status io_error(std::string_view what, const std::filesystem::path& path, int err);

// Writes all of `bytes` to `fd` (retrying short writes and EINTR).
Status write_all(int fd, std::string_view bytes, const std::filesystem::path& path);

// Writes all of `bytes` to `fd` at `offset` (retrying short writes and EINTR); the
// file offset is left alone.
Status pwrite_all(int fd, std::string_view bytes, uint64_t offset,
                  const std::filesystem::path& path);

// The first `limit` bytes of `path` (all of it by default).
Result<std::string> read_file(const std::filesystem::path& path, uint64_t limit = UINT64_MAX);

// Replaces `path` with `bytes` whole: written to PATH.tmp, synced, renamed over
// `path`, and the directory synced, so that a crash leaves either the old file
// or the new one, never a part of it. Without `fsync` nothing is synced.
Status replace_file(const std::filesystem::path& path, std::string_view bytes, bool fsync);

// Cuts `path` to `size` bytes, then appends `tail` (to rewrite a torn header);
// fdatasync()s it when `fsync`.
Status rewrite_tail(const std::filesystem::path& path, uint64_t size, std::string_view tail,
                    bool fsync);

// "PREFIX0000000042SUFFIX" -> 42; anything else (LOCK, editor droppings, 0)
// -> nullopt.
std::optional<uint64_t> parse_numbered_name(std::string_view name, std::string_view prefix,
                                            std::string_view suffix);

}  // namespace statekv::net::log_files
