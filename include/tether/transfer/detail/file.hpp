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
#include <string>
#include <string_view>

namespace tether::transfer::detail {

/// An owned file descriptor.
class file {
 public:
  file() = default;
  explicit file(int fd) noexcept : fd_(fd) {}
  file(file&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  file& operator=(file&& o) noexcept {
    if (this != &o) {
      close();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  ~file() { close(); }
  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  TETHER_DECL void close() noexcept;

 private:
  int fd_ = -1;
};

/// Test seam for the disk (Beast's fail_count idea): when set, open_file asks it before each
/// open(2) and reports a non-empty error it returns as open's own. Process-wide, for tests only;
/// unset by default. Only opens go through it so far.
using open_fault = std::function<error_code(const std::filesystem::path& path, int flags)>;
TETHER_DECL void set_open_fault(open_fault f);

/// open(2) with O_CLOEXEC; the error names the path.
TETHER_DECL file open_file(const std::filesystem::path& p, int flags, error_code& ec, unsigned mode = 0600);
TETHER_DECL void write_all(int fd, const void* data, std::size_t n, std::uint64_t offset, error_code& ec);
TETHER_DECL std::size_t read_some(int fd, void* data, std::size_t n, std::uint64_t offset, error_code& ec);
TETHER_DECL void sync_data(int fd, error_code& ec);
TETHER_DECL void sync_directory(const std::filesystem::path& dir, error_code& ec);
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
TETHER_DECL void preallocate(int fd, std::uint64_t length, error_code& ec);
/// An exclusive, non-blocking lock held as long as the returned file is open.
TETHER_DECL file lock_directory(const std::filesystem::path& dir, error_code& ec);

/// Digest algorithms the transfer code uses (tus `Upload-Checksum` also knows SHA-1).
enum class hash_algorithm { sha256, sha1 };

/// Incremental digest (OpenSSL EVP), SHA-256 unless told otherwise.
class hasher {
 public:
  TETHER_DECL explicit hasher(hash_algorithm a = hash_algorithm::sha256);
  TETHER_DECL hasher(const hasher& o);
  hasher& operator=(const hasher&) = delete;
  hasher(hasher&&) noexcept = default;
  hasher& operator=(hasher&&) noexcept = default;
  TETHER_DECL void update(const void* data, std::size_t n);
  /// The digest as lower-case hex digits; the object starts over afterwards.
  TETHER_DECL std::string hex_digest();

 private:
  struct free_ctx {
    void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, free_ctx> ctx_;
  const EVP_MD* md_;
};
using sha256 = hasher;

/// SHA-256 of text, as hex.
TETHER_DECL std::string sha256_hex(std::string_view data);
/// True for 64 hex digits.
TETHER_DECL bool is_sha256_hex(std::string_view s) noexcept;

}  // namespace tether::transfer::detail
