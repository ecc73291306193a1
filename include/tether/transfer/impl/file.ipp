// tether/transfer/impl/file.ipp: POSIX file primitives, crash-safe replace, locks and digests.
#pragma once

#include <tether/transfer/detail/file.hpp>

#include <cerrno>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <mutex>
#include <random>

namespace tether::transfer::detail {

namespace {
inline error_code last_error() noexcept { return {errno, boost::system::system_category()}; }
}  // namespace

void file::close() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

namespace {
std::mutex& open_fault_mutex() {
  static std::mutex m;
  return m;
}
open_fault& open_fault_hook() {
  static open_fault f;
  return f;
}
}  // namespace

void set_open_fault(open_fault f) {
  std::lock_guard lk(open_fault_mutex());
  open_fault_hook() = std::move(f);
}

file open_file(const std::filesystem::path& p, int flags, error_code& ec, unsigned mode) {
  {
    std::lock_guard lk(open_fault_mutex());
    if (auto& hook = open_fault_hook(); hook) {
      if (auto injected = hook(p, flags)) {
        ec = injected;
        return file{};
      }
    }
  }
  int fd;
  do fd = ::open(p.c_str(), flags | O_CLOEXEC, static_cast<mode_t>(mode));
  while (fd < 0 && errno == EINTR);
  if (fd < 0) ec = last_error();
  return file{fd};
}

void write_all(int fd, const void* data, std::size_t n, std::uint64_t offset, error_code& ec) {
  auto p = static_cast<const char*>(data);
  while (n > 0) {
    const auto w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      ec = errno == ENOSPC || errno == EDQUOT ? make_error_code(error::insufficient_space) : last_error();
      return;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
    offset += static_cast<std::uint64_t>(w);
  }
}

std::size_t read_some(int fd, void* data, std::size_t n, std::uint64_t offset, error_code& ec) {
  for (;;) {
    const auto r = ::pread(fd, data, n, static_cast<off_t>(offset));
    if (r >= 0) return static_cast<std::size_t>(r);
    if (errno != EINTR) {
      ec = last_error();
      return 0;
    }
  }
}

void sync_data(int fd, error_code& ec) {
  if (::fdatasync(fd) != 0) ec = last_error();
}

void sync_directory(const std::filesystem::path& dir, error_code& ec) {
  auto d = open_file(dir.empty() ? std::filesystem::path(".") : dir, O_RDONLY | O_DIRECTORY, ec);
  if (ec) return;
  if (::fsync(d.get()) != 0) ec = last_error();
}

namespace {
std::string temp_name(const std::filesystem::path& target) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char suffix[24];
  std::snprintf(suffix, sizeof suffix, ".tmp-%016llx", static_cast<unsigned long long>(rng()));
  return target.filename().string() + suffix;
}
}  // namespace

void replace_file(const std::filesystem::path& target, std::string_view content, error_code& ec, bool sync_dir) {
  const auto tmp = target.parent_path() / temp_name(target);
  {
    auto f = open_file(tmp, O_WRONLY | O_CREAT | O_EXCL, ec, 0600);
    if (ec) return;
    write_all(f.get(), content.data(), content.size(), 0, ec);
    if (!ec && ::fsync(f.get()) != 0) ec = last_error();
  }
  if (!ec && ::rename(tmp.c_str(), target.c_str()) != 0) ec = last_error();
  if (ec) {
    ::unlink(tmp.c_str());
    return;
  }
  if (sync_dir) sync_directory(target.parent_path(), ec);
}

void move_into_place(const std::filesystem::path& from, const std::filesystem::path& to, error_code& ec) {
  const auto dir = to.parent_path();
  if (::rename(from.c_str(), to.c_str()) == 0) {
    sync_directory(dir, ec);
    return;
  }
  if (errno != EXDEV) {
    ec = last_error();
    return;
  }
  // Another file system: copy beside the destination, sync, then rename there.
  const auto tmp = dir / temp_name(to);
  {
    auto in = open_file(from, O_RDONLY, ec);
    if (ec) return;
    auto out = open_file(tmp, O_WRONLY | O_CREAT | O_EXCL, ec, 0644);
    if (ec) return;
    std::vector<char> buf(1u << 20);
    std::uint64_t off = 0;
    for (;;) {
      const auto n = read_some(in.get(), buf.data(), buf.size(), off, ec);
      if (ec || n == 0) break;
      write_all(out.get(), buf.data(), n, off, ec);
      if (ec) break;
      off += n;
    }
    if (!ec && ::fsync(out.get()) != 0) ec = last_error();
  }
  if (!ec && ::rename(tmp.c_str(), to.c_str()) != 0) ec = last_error();
  if (ec) {
    ::unlink(tmp.c_str());
    return;
  }
  sync_directory(dir, ec);
  ::unlink(from.c_str());
}

std::uint64_t free_space(const std::filesystem::path& p, error_code& ec) {
  struct statvfs s{};
  if (::statvfs(p.c_str(), &s) != 0) {
    ec = last_error();
    return 0;
  }
  return static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize;
}

void preallocate(int fd, std::uint64_t length, error_code& ec) {
  if (length == 0) return;
#if defined(__linux__)
  if (::fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(length)) != 0) {
    if (errno == ENOSPC || errno == EDQUOT) ec = make_error_code(error::insufficient_space);
    // EOPNOTSUPP and friends: the file system cannot; writing will allocate.
  }
#else
  (void)fd;
  (void)ec;
#endif
}

file lock_directory(const std::filesystem::path& dir, error_code& ec) {
  auto f = open_file(dir / "lock", O_RDWR | O_CREAT, ec, 0600);
  if (ec) return f;
  if (::flock(f.get(), LOCK_EX | LOCK_NB) != 0) {
    ec = errno == EWOULDBLOCK ? make_error_code(error::state_locked) : last_error();
    return {};
  }
  // Who holds it, for people looking at the directory (not used for locking).
  const auto pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(f.get(), 0) == 0) {
    error_code ig;
    write_all(f.get(), pid.data(), pid.size(), 0, ig);
  }
  return f;
}

hasher::hasher(hash_algorithm a)
    : ctx_(EVP_MD_CTX_new()), md_(a == hash_algorithm::sha1 ? EVP_sha1() : EVP_sha256()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), md_, nullptr) != 1) throw std::bad_alloc();
}
hasher::hasher(const hasher& o) : ctx_(EVP_MD_CTX_new()), md_(o.md_) {
  if (!ctx_ || EVP_MD_CTX_copy_ex(ctx_.get(), o.ctx_.get()) != 1) throw std::bad_alloc();
}
void hasher::update(const void* data, std::size_t n) { EVP_DigestUpdate(ctx_.get(), data, n); }
std::string hasher::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx_.get(), md, &len);
  EVP_DigestInit_ex(ctx_.get(), md_, nullptr);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::size_t{len} * 2);
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  sha256 h;
  h.update(data.data(), data.size());
  return h.hex_digest();
}

bool is_sha256_hex(std::string_view s) noexcept {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  return true;
}

}  // namespace tether::transfer::detail
