// tether/transfer/impl/file.ipp: POSIX file primitives, crash-safe replace, locks and digests.
#pragma once

#include <tether/transfer/detail/file.hpp>

// xxHash as static inline functions of this translation unit: only its header is needed.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cerrno>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
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

const char* to_string(file_op op) noexcept {
  switch (op) {
    case file_op::open: return "open";
    case file_op::read: return "read";
    case file_op::write: return "write";
    case file_op::sync: return "fdatasync";
    case file_op::truncate: return "ftruncate";
    case file_op::allocate: return "fallocate";
    case file_op::rename: return "rename";
    case file_op::unlink: return "unlink";
    case file_op::sync_directory: return "fsync of the directory";
  }
  return "?";
}

namespace {
std::mutex& file_fault_mutex() {
  static std::mutex m;
  return m;
}
file_fault& file_fault_hook() {
  static file_fault f;
  return f;
}
// Whether a hook is set, read without the mutex on every operation (the common case: none).
std::atomic<bool>& file_fault_set() {
  static std::atomic<bool> b{false};
  return b;
}
error_code from_errno(int e) noexcept {
  if (e == ENOSPC || e == EDQUOT) return make_error_code(error::insufficient_space);
  return {e, boost::system::system_category()};
}
struct last_failure_t {
  error_code ec;
  file_op op = file_op::open;
  std::filesystem::path path;
};
last_failure_t& last_failure() {
  static thread_local last_failure_t f;
  return f;
}
/// Fails `op` on `p` with errno `e`: sets `ec` and remembers what failed, for describe_failure.
void failed(file_op op, const std::filesystem::path& p, error_code& ec, int e) {
  ec = from_errno(e);
  auto& f = last_failure();
  f.ec = ec;
  f.op = op;
  f.path = p;
}
/// Asks the test seam about `op` on `p`: true (with ec set) when it fails the operation.
bool injected(file_op op, const std::filesystem::path& p, error_code& ec) {
  if (!file_fault_set().load(std::memory_order_acquire)) return false;
  file_fault hook;
  {
    std::lock_guard lk(file_fault_mutex());
    hook = file_fault_hook();
  }
  if (!hook) return false;
  if (const int e = hook(op, p)) {
    failed(op, p, ec, e);
    return true;
  }
  return false;
}
}  // namespace

std::string describe_failure(const error_code& ec) {
  const auto& f = last_failure();
  if (!ec || f.ec != ec) return ec.message();
  return ec.message() + " (" + to_string(f.op) + " " + f.path.string() + ")";
}

void set_file_fault(file_fault f) {
  std::lock_guard lk(file_fault_mutex());
  file_fault_set().store(static_cast<bool>(f), std::memory_order_release);
  file_fault_hook() = std::move(f);
}

file file::duplicate(error_code& ec) const {
  const int fd = ::fcntl(fd_, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) {
    failed(file_op::open, path_, ec, errno);
    return {};
  }
  return file{fd, path_};
}

namespace {
file_identity identity_of(const struct stat& st) noexcept {
  return file_identity{static_cast<std::uint64_t>(st.st_size),
                       static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
                       static_cast<std::uint64_t>(st.st_ino)};
}
}  // namespace

std::optional<file_identity> identify_file(const std::filesystem::path& p) {
  struct stat st{};
  if (::stat(p.c_str(), &st) != 0) return std::nullopt;
  return identity_of(st);
}

std::optional<file_identity> identify_file(const file& f) {
  struct stat st{};
  if (::fstat(f.get(), &st) != 0) return std::nullopt;
  return identity_of(st);
}

file open_file(const std::filesystem::path& p, int flags, error_code& ec, unsigned mode) {
  if (injected(file_op::open, p, ec)) return {};
  int fd;
  do fd = ::open(p.c_str(), flags | O_CLOEXEC, static_cast<mode_t>(mode));
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    failed(file_op::open, p, ec, errno);
    return {};
  }
  return file{fd, p};
}

void write_all(const file& f, const void* data, std::size_t n, std::uint64_t offset, error_code& ec) {
  if (injected(file_op::write, f.path(), ec)) return;
  auto p = static_cast<const char*>(data);
  while (n > 0) {
    const auto w = ::pwrite(f.get(), p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      failed(file_op::write, f.path(), ec, errno);
      return;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
    offset += static_cast<std::uint64_t>(w);
  }
}

std::size_t read_some(const file& f, void* data, std::size_t n, std::uint64_t offset, error_code& ec) {
  if (injected(file_op::read, f.path(), ec)) return 0;
  for (;;) {
    const auto r = ::pread(f.get(), data, n, static_cast<off_t>(offset));
    if (r >= 0) return static_cast<std::size_t>(r);
    if (errno != EINTR) {
      failed(file_op::read, f.path(), ec, errno);
      return 0;
    }
  }
}

void sync_data(const file& f, error_code& ec) {
  if (injected(file_op::sync, f.path(), ec)) return;
  if (::fdatasync(f.get()) != 0) failed(file_op::sync, f.path(), ec, errno);
}

void start_writeback(const file& f, std::uint64_t offset, std::uint64_t length) noexcept {
#if defined(__linux__)
  ::sync_file_range(f.get(), static_cast<off_t>(offset), static_cast<off_t>(length), SYNC_FILE_RANGE_WRITE);
#else
  (void)f;
  (void)offset;
  (void)length;
#endif
}

void truncate_file(const file& f, std::uint64_t length, error_code& ec) {
  if (injected(file_op::truncate, f.path(), ec)) return;
  if (::ftruncate(f.get(), static_cast<off_t>(length)) != 0) failed(file_op::truncate, f.path(), ec, errno);
}

void sync_directory(const std::filesystem::path& dir, error_code& ec) {
  const auto d = dir.empty() ? std::filesystem::path(".") : dir;
  if (injected(file_op::sync_directory, d, ec)) return;
  int fd;
  do fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    failed(file_op::sync_directory, d, ec, errno);
    return;
  }
  file dirf{fd, d};
  if (::fsync(dirf.get()) != 0) failed(file_op::sync_directory, d, ec, errno);
}

void rename_file(const std::filesystem::path& from, const std::filesystem::path& to, error_code& ec) {
  if (injected(file_op::rename, to, ec)) return;
  if (::rename(from.c_str(), to.c_str()) != 0) failed(file_op::rename, to, ec, errno);
}

void remove_file(const std::filesystem::path& p, error_code& ec) {
  if (injected(file_op::unlink, p, ec)) return;
  if (::unlink(p.c_str()) != 0 && errno != ENOENT) failed(file_op::unlink, p, ec, errno);
}

namespace {
std::string temp_name(const std::filesystem::path& target) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char suffix[24];
  std::snprintf(suffix, sizeof suffix, ".tmp-%016llx", static_cast<unsigned long long>(rng()));
  return target.filename().string() + suffix;
}
void sync_file(const file& f, error_code& ec) {
  if (injected(file_op::sync, f.path(), ec)) return;
  if (::fsync(f.get()) != 0) failed(file_op::sync, f.path(), ec, errno);
}
}  // namespace

void replace_file(const std::filesystem::path& target, std::string_view content, error_code& ec, bool sync_dir) {
  const auto tmp = target.parent_path() / temp_name(target);
  {
    auto f = open_file(tmp, O_WRONLY | O_CREAT | O_EXCL, ec, 0600);
    if (ec) return;
    write_all(f, content.data(), content.size(), 0, ec);
    if (!ec) sync_file(f, ec);
  }
  if (!ec) rename_file(tmp, target, ec);
  if (ec) {
    error_code ig;
    remove_file(tmp, ig);
    return;
  }
  if (sync_dir) sync_directory(target.parent_path(), ec);
}

void move_into_place(const std::filesystem::path& from, const std::filesystem::path& to, error_code& ec) {
  const auto dir = to.parent_path();
  if (injected(file_op::rename, to, ec)) return;
  if (::rename(from.c_str(), to.c_str()) == 0) {
    sync_directory(dir, ec);
    return;
  }
  if (errno != EXDEV) {
    failed(file_op::rename, to, ec, errno);
    return;
  }
  // Another file system: copy beside the destination, sync, then rename there.
  const auto tmp = dir / temp_name(to);
  {
    auto in = open_file(from, O_RDONLY, ec);
    if (ec) return;
    auto out = open_file(tmp, O_WRONLY | O_CREAT | O_EXCL, ec, 0666);  // under the umask, as the original
    if (ec) return;
    std::vector<char> buf(1u << 20);
    std::uint64_t off = 0;
    for (;;) {
      const auto n = read_some(in, buf.data(), buf.size(), off, ec);
      if (ec || n == 0) break;
      write_all(out, buf.data(), n, off, ec);
      if (ec) break;
      off += n;
    }
    if (!ec) sync_file(out, ec);
  }
  if (!ec) rename_file(tmp, to, ec);
  if (ec) {
    error_code ig;
    remove_file(tmp, ig);
    return;
  }
  sync_directory(dir, ec);
  error_code ig;
  remove_file(from, ig);
}

std::uint64_t free_space(const std::filesystem::path& p, error_code& ec) {
  struct statvfs s{};
  if (::statvfs(p.c_str(), &s) != 0) {
    ec = last_error();
    return 0;
  }
  return static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize;
}

void preallocate(const file& f, std::uint64_t length, error_code& ec) {
  if (length == 0) return;
  if (injected(file_op::allocate, f.path(), ec)) return;
#if defined(__linux__)
  if (::fallocate(f.get(), FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(length)) != 0) {
    if (errno == ENOSPC || errno == EDQUOT) failed(file_op::allocate, f.path(), ec, errno);
    // EOPNOTSUPP and friends: the file system cannot; writing will allocate.
  }
#else
  (void)f;
#endif
}

file lock_file(const std::filesystem::path& p, error_code& ec, std::string& holder) {
  auto f = open_file(p, O_RDWR | O_CREAT, ec, 0600);
  if (ec) return f;
  if (::flock(f.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) {
      ec = last_error();
      return {};
    }
    ec = make_error_code(error::state_locked);
    char buf[32] = {};
    error_code ig;
    const auto n = read_some(f, buf, sizeof buf - 1, 0, ig);
    holder.assign(buf, n);
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    return {};
  }
  // Who holds it, for people looking at the directory (not used for locking).
  const auto pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(f.get(), 0) == 0) {
    error_code ig;
    write_all(f, pid.data(), pid.size(), 0, ig);
  }
  return f;
}

namespace {
std::string to_hex(const unsigned char* p, std::size_t n) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(hex[p[i] >> 4]);
    out.push_back(hex[p[i] & 15]);
  }
  return out;
}
XXH3_state_t* xxh_state(void* p) noexcept { return static_cast<XXH3_state_t*>(p); }
}  // namespace

const char* to_string(hash_algorithm a) noexcept {
  switch (a) {
    case hash_algorithm::sha256: return "sha256";
    case hash_algorithm::sha1: return "sha1";
    case hash_algorithm::xxh3_128: return "xxh3-128";
  }
  return "unknown";
}

bool is_digest_hex(std::string_view s, hash_algorithm a) noexcept {
  const std::size_t want = a == hash_algorithm::sha256 ? 64 : a == hash_algorithm::sha1 ? 40 : 32;
  if (s.size() != want) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  return true;
}

void hasher::free_xxh::operator()(void* s) const noexcept { XXH3_freeState(xxh_state(s)); }

hasher::hasher(hash_algorithm a) {
  if (a == hash_algorithm::xxh3_128) {
    xxh_.reset(XXH3_createState());
    if (!xxh_ || XXH3_128bits_reset(xxh_state(xxh_.get())) != XXH_OK) throw std::bad_alloc();
    return;
  }
  ctx_.reset(EVP_MD_CTX_new());
  md_ = a == hash_algorithm::sha1 ? EVP_sha1() : EVP_sha256();
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), md_, nullptr) != 1) throw std::bad_alloc();
}
hasher::hasher(const hasher& o) : md_(o.md_) {
  if (o.xxh_) {
    xxh_.reset(XXH3_createState());
    if (!xxh_) throw std::bad_alloc();
    XXH3_copyState(xxh_state(xxh_.get()), xxh_state(o.xxh_.get()));
    return;
  }
  ctx_.reset(EVP_MD_CTX_new());
  if (!ctx_ || EVP_MD_CTX_copy_ex(ctx_.get(), o.ctx_.get()) != 1) throw std::bad_alloc();
}
void hasher::update(const void* data, std::size_t n) {
  if (xxh_)
    XXH3_128bits_update(xxh_state(xxh_.get()), data, n);
  else
    EVP_DigestUpdate(ctx_.get(), data, n);
}
std::string hasher::hex_digest() {
  if (xxh_) {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(xxh_state(xxh_.get())));
    XXH3_128bits_reset(xxh_state(xxh_.get()));
    return to_hex(c.digest, sizeof c.digest);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx_.get(), md, &len);
  EVP_DigestInit_ex(ctx_.get(), md_, nullptr);
  return to_hex(md, len);
}

std::vector<std::string> chunk_digests(const file& f, std::uint64_t from, std::uint64_t to, std::uint64_t chunk,
                                       error_code& ec, hash_algorithm alg) {
  std::vector<std::string> out;
  // Read in pieces that stay in the CPU's cache while they are hashed (the bytes come from the
  // page cache: a larger buffer only makes the hash read them back from memory), not zeroed.
  const auto size = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, 128u << 10));
  const std::unique_ptr<char[]> buf(new char[size]);
  for (auto begin = from; begin < to && !ec; begin += chunk) {
    const auto end = std::min(begin + chunk, to);
    hasher h(alg);
    for (auto off = begin; off < end;) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(size, end - off));
      const auto n = read_some(f, buf.get(), want, off, ec);
      if (ec) break;
      if (n == 0) {
        ec = make_error_code(error::short_body);
        break;
      }
      h.update(buf.get(), n);
      off += n;
    }
    if (!ec) out.push_back(h.hex_digest());
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  sha256 h;
  h.update(data.data(), data.size());
  return h.hex_digest();
}

bool is_sha256_hex(std::string_view s) noexcept { return is_digest_hex(s, hash_algorithm::sha256); }

}  // namespace tether::transfer::detail
