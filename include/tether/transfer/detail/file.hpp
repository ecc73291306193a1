// tether/transfer/detail/file.hpp: POSIX file primitives with durability (fsync of data and
// directories, crash-safe replace) and SHA-256, for the state store and partial data.
#pragma once

#include <tether/net/error.hpp>

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tether::transfer::detail {

/// The file operations the transfer engine makes; each one goes through the seam below.
enum class file_op { open, read, write, sync, truncate, allocate, rename, unlink, sync_directory };
TETHER_DECL const char* to_string(file_op op) noexcept;

/// Test seam for the disk (Beast's fail_count idea, applied to files): when set, every file
/// operation of the engine asks it first, with the path it is about to touch; a non-zero errno
/// it returns fails that operation as if the system had (ENOSPC and EDQUOT as
/// `insufficient_space`, like the real thing). A hook may also end the process there (crash
/// sweeps). Process-wide, for tests only; unset by default.
using file_fault = std::function<int(file_op op, const std::filesystem::path& path)>;
TETHER_DECL void set_file_fault(file_fault f);

/// The error's message, with the operation and the path when `ec` is the last file failure on
/// this thread (e.g. "Input/output error (fdatasync /state/x.part)").
TETHER_DECL std::string describe_failure(const error_code& ec);

/// An owned file descriptor, with the path it was opened as (for errors and the seam).
class file {
 public:
  file() = default;
  file(int fd, std::filesystem::path p) noexcept : fd_(fd), path_(std::move(p)) {}
  file(file&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  file& operator=(file&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = o.fd_;
      path_ = std::move(o.path_);
      o.fd_ = -1;
    }
    return *this;
  }
  ~file() { close(); }
  int get() const noexcept { return fd_; }
  const std::filesystem::path& path() const noexcept { return path_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  TETHER_DECL void close() noexcept;
  /// A second descriptor of the same open file (for the syncer thread).
  TETHER_DECL file duplicate(error_code& ec) const;

 private:
  int fd_ = -1;
  std::filesystem::path path_;
};

/// Which file a path names, and as it was: enough to tell that a finished download is still
/// the file the transfer produced, or that an upload's source has not changed.
struct file_identity {
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint64_t inode = 0;
  friend bool operator==(const file_identity&, const file_identity&) = default;
};
/// stat(2) of a path (nothing when it is gone or unreadable), fstat(2) of an open file.
TETHER_DECL std::optional<file_identity> identify_file(const std::filesystem::path& p);
TETHER_DECL std::optional<file_identity> identify_file(const file& f);

/// open(2) with O_CLOEXEC.
TETHER_DECL file open_file(const std::filesystem::path& p, int flags, error_code& ec, unsigned mode = 0600);
TETHER_DECL void write_all(const file& f, const void* data, std::size_t n, std::uint64_t offset, error_code& ec);
TETHER_DECL std::size_t read_some(const file& f, void* data, std::size_t n, std::uint64_t offset, error_code& ec);
/// fdatasync(2).
TETHER_DECL void sync_data(const file& f, error_code& ec);
/// Starts writing [offset, offset + length) back to the disk without waiting for it
/// (sync_file_range SYNC_FILE_RANGE_WRITE where there is one): a hint, not durability, so it
/// reports nothing and is not an operation of the seam.
TETHER_DECL void start_writeback(const file& f, std::uint64_t offset, std::uint64_t length) noexcept;
/// ftruncate(2).
TETHER_DECL void truncate_file(const file& f, std::uint64_t length, error_code& ec);
TETHER_DECL void sync_directory(const std::filesystem::path& dir, error_code& ec);
TETHER_DECL void rename_file(const std::filesystem::path& from, const std::filesystem::path& to, error_code& ec);
/// unlink(2); a file that is already gone is not an error.
TETHER_DECL void remove_file(const std::filesystem::path& p, error_code& ec);
/// Writes `content` to `target` so that a crash leaves either the old or the new file, never
/// a mix: temp file beside it, fsync, rename, fsync of the directory. Without `sync_dir` a
/// crash may bring back the previous version (never a torn one): enough for a checkpoint that
/// only moves forward, where the previous one is still true.
TETHER_DECL void replace_file(const std::filesystem::path& target, std::string_view content, error_code& ec,
                              bool sync_dir = true);
/// Moves a finished file into place: rename when on the same file system, else copy to a temp
/// file beside `to`, fsync, rename, and unlink `from`. The directory of `to` is synced.
TETHER_DECL void move_into_place(const std::filesystem::path& from, const std::filesystem::path& to,
                                 error_code& ec);
/// Free bytes for an unprivileged writer on the file system holding `p`.
TETHER_DECL std::uint64_t free_space(const std::filesystem::path& p, error_code& ec);
/// Reserves blocks for [0, length) without changing the file size; silently nothing where the
/// file system cannot. ENOSPC is reported as `insufficient_space`.
TETHER_DECL void preallocate(const file& f, std::uint64_t length, error_code& ec);
/// An exclusive, non-blocking lock on the file `p` (created if missing), held as long as the
/// returned file is open; the holder's process id is written into it. When another process
/// holds it: `state_locked`, with `holder` set to what that process wrote (its pid).
TETHER_DECL file lock_file(const std::filesystem::path& p, error_code& ec, std::string& holder);

/// Digest algorithms the transfer code uses. SHA-256 is for what the caller or a server names
/// (the expected and reported content digest, tus `Upload-Checksum`, which also knows SHA-1).
/// XXH3-128 is for the checkpoint chunks a record keeps: those guard partial data against
/// accident (a torn or lost write, a source file changed between runs), not against an
/// adversary, and SHA-256 of every byte cost as much CPU as the rest of a download together.
enum class hash_algorithm { sha256, sha1, xxh3_128 };

/// The algorithm's name in records ("sha256", "sha1", "xxh3-128").
TETHER_DECL const char* to_string(hash_algorithm a) noexcept;
/// True for a lower- or upper-case hex digest of the algorithm's length.
TETHER_DECL bool is_digest_hex(std::string_view s, hash_algorithm a) noexcept;

/// Incremental digest (OpenSSL EVP for SHA-x, xxHash for XXH3), SHA-256 unless told otherwise.
class hasher {
 public:
  TETHER_DECL explicit hasher(hash_algorithm a = hash_algorithm::sha256);
  TETHER_DECL hasher(const hasher& o);
  hasher& operator=(const hasher&) = delete;
  hasher(hasher&&) noexcept = default;
  hasher& operator=(hasher&&) noexcept = default;
  TETHER_DECL void update(const void* data, std::size_t n);
  /// The digest as lower-case hex digits (XXH3-128 in its canonical, big-endian form); the
  /// object starts over afterwards.
  TETHER_DECL std::string hex_digest();

 private:
  struct free_ctx {
    void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
  };
  struct free_xxh {
    TETHER_DECL void operator()(void* s) const noexcept;
  };
  std::unique_ptr<EVP_MD_CTX, free_ctx> ctx_;      ///< SHA-x
  const EVP_MD* md_ = nullptr;
  std::unique_ptr<void, free_xxh> xxh_;            ///< XXH3's state
};
using sha256 = hasher;

/// The digest of each whole `chunk` of the file in [from, to) (the last one may be shorter),
/// read back from the file. A file that ends early is `short_body`.
TETHER_DECL std::vector<std::string> chunk_digests(const file& f, std::uint64_t from, std::uint64_t to,
                                                  std::uint64_t chunk, error_code& ec, hash_algorithm alg);

/// SHA-256 of text, as hex.
TETHER_DECL std::string sha256_hex(std::string_view data);
/// True for 64 hex digits.
TETHER_DECL bool is_sha256_hex(std::string_view s) noexcept;

}  // namespace tether::transfer::detail
