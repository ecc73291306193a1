#pragma once

#include <tether/net/detail/ascii.hpp>
#include <tether/net/detail/base64.hpp>
#include <tether/ws/detail/frame_header.hpp>
#include <tether/ws/detail/key_rewriter.hpp>

#include <boost/beast/core/detail/sha1.hpp>

#include <openssl/rand.h>

#if defined(__linux__) || defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__)
#include <sys/random.h>  // getentropy
#define TETHER_HAVE_GETENTROPY 1
#endif

#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace tether::ws::detail {

namespace {
// The kernel's CSPRNG where there is one: OpenSSL's first RAND_bytes in a process sets up its
// generator (about 1.3 ms on a 2-core VM), which made a program's first connection that much
// slower than Beast's. OpenSSL is the fallback.
bool system_random(unsigned char* p, std::size_t n) noexcept {
#if defined(__linux__)
  while (n > 0) {  // getrandom: one call for the whole refill (may return short when interrupted)
    const auto got = ::getrandom(p, n, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += got;
    n -= static_cast<std::size_t>(got);
  }
  return true;
#elif defined(TETHER_HAVE_GETENTROPY)
  while (n > 0) {
    const std::size_t k = std::min<std::size_t>(n, 256);  // getentropy's limit per call
    if (::getentropy(p, k) != 0) return false;
    p += k;
    n -= k;
  }
  return true;
#else
  (void)p;
  (void)n;
  return false;
#endif
}

void fill_random(unsigned char* p, std::size_t n) {
  if (system_random(p, n)) return;
  if (RAND_bytes(p, static_cast<int>(n)) != 1)
    throw std::runtime_error("OpenSSL RAND_bytes failed");  // no entropy: nothing safe to send
}

// Bumped in a forked child: a pool copied from the parent must not hand out the parent's bytes.
std::atomic<unsigned> fork_generation{0};

/// Random bytes from a per-thread pool of kernel randomness, refilled 4 KiB at a time, so that
/// a connection's key and first masking keys cost no system call of their own. Bytes handed
/// out are wiped from the pool; a fork starts every pool of the child over.
void random_bytes(void* out, std::size_t n) {
  struct pool {
    std::array<unsigned char, 4096> buf{};
    std::size_t pos = 4096;
    unsigned generation = 0;
  };
  static const bool watching_forks = [] {
    return ::pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1, std::memory_order_relaxed); }) == 0;
  }();
  thread_local pool p;
  auto* dst = static_cast<unsigned char*>(out);
  if (!watching_forks || n > p.buf.size() / 4) return fill_random(dst, n);
  const auto generation = fork_generation.load(std::memory_order_relaxed);
  if (p.generation != generation || p.buf.size() - p.pos < n) {
    fill_random(p.buf.data(), p.buf.size());
    p.pos = 0;
    p.generation = generation;
  }
  std::memcpy(dst, p.buf.data() + p.pos, n);
  std::memset(p.buf.data() + p.pos, 0, n);
  p.pos += n;
}
std::string base64(const unsigned char* p, std::size_t n) {
  return net::detail::base64(std::string_view(reinterpret_cast<const char*>(p), n));
}
}  // namespace

std::string key_rewriter::make_key() {
  unsigned char raw[16];
  random_bytes(raw, sizeof raw);
  return base64(raw, sizeof raw);
}

std::string key_rewriter::accept_for(const std::string& key) {
  const std::string in = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  // Beast's own SHA-1 (the one its handshake uses): OpenSSL's first digest in a process
  // loads its provider (about 1.4 ms), a cost a plain ws:// connection need not pay.
  unsigned char digest[boost::beast::detail::sha1_context::digest_size];
  boost::beast::detail::sha1_context ctx;
  boost::beast::detail::init(ctx);
  boost::beast::detail::update(ctx, in.data(), in.size());
  boost::beast::detail::finish(ctx, digest);
  return base64(digest, sizeof digest);
}

std::uint32_t key_rewriter::next_mask() {
  if (pool_pos_ == pool_len_) {
    // Drawn as it is used: 64 bytes for a connection's first few frames, then four times as
    // many at each refill up to the whole pool, so a short connection pays for 16 keys only.
    pool_len_ = next_fill_;
    random_bytes(pool_.data(), pool_len_ * sizeof(std::uint32_t));
    next_fill_ = std::min(pool_.size(), next_fill_ * 4);
    pool_pos_ = 0;
  }
  return pool_[pool_pos_++];
}

void mask_copy(unsigned char* out, const unsigned char* in, std::size_t n, const unsigned char* key,
               std::size_t phase) noexcept {
  std::size_t k = 0;
  for (; k < n && ((phase + k) & 3) != 0; ++k) out[k] = static_cast<unsigned char>(in[k] ^ key[(phase + k) & 3]);
  if (n - k >= 8) {
    unsigned char pattern[16];
    for (std::size_t j = 0; j < 16; ++j) pattern[j] = key[j & 3];
#if defined(__GNUC__)  // GCC and Clang: 16-byte vectors (SSE2, NEON), two per step
    // (not left to the auto-vectorizer: `out` may be `in`, and Clang 14 -O2 kept the word loop
    // below scalar: at 1 KiB, 373 of the client's ~2,600 own instructions per message)
    using v16 = unsigned char __attribute__((vector_size(16)));
    v16 vword;
    std::memcpy(&vword, pattern, 16);
    for (; n - k >= 32; k += 32) {
      v16 a, b;
      std::memcpy(&a, in + k, 16);
      std::memcpy(&b, in + k + 16, 16);
      a ^= vword;
      b ^= vword;
      std::memcpy(out + k, &a, 16);
      std::memcpy(out + k + 16, &b, 16);
    }
#endif
    std::uint64_t word = 0;
    std::memcpy(&word, pattern, 8);
    for (; n - k >= 8; k += 8) {
      std::uint64_t v = 0;
      std::memcpy(&v, in + k, 8);
      v ^= word;
      std::memcpy(out + k, &v, 8);
    }
  }
  for (; k < n; ++k) out[k] = static_cast<unsigned char>(in[k] ^ key[(phase + k) & 3]);
}

// XORs `n` payload bytes in place with the key difference.
void key_rewriter::xor_payload(unsigned char* p, std::size_t n) noexcept {
  mask_copy(p, p, n, xor_.data(), xor_pos_);
  xor_pos_ = (xor_pos_ + n) & 3;
}

void key_rewriter::outgoing(char* data, std::size_t n) {
  std::size_t i = 0;
  if (!request_done_) {
    // The upgrade request: swap the key (same length), pass everything else through.
    static constexpr char name[] = "Sec-WebSocket-Key: ";
    const std::string_view view(data, n);
    const auto pos = view.find(name);
    if (pos != std::string_view::npos && pos + sizeof(name) - 1 + 24 <= n) {
      char* value = data + pos + sizeof(name) - 1;
      beast_key_.assign(value, 24);
      our_key_ = make_key();
      std::memcpy(value, our_key_.data(), 24);
      swapped_ = true;
    }
    const auto end = view.find("\r\n\r\n");
    if (end == std::string_view::npos) return;  // more of the request to come
    request_done_ = true;
    i = end + 4;
  }
  auto* p = reinterpret_cast<unsigned char*>(data);
  std::size_t hdr_in_call = 0;  // header bytes of the current frame seen in this call
  while (i < n) {
    if (payload_left_ > 0) {
      const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(payload_left_, n - i));
      xor_payload(p + i, take);
      payload_left_ -= take;
      i += take;
      continue;
    }
    // Collect the frame header (2 to 14 bytes), which may span calls.
    hdr_[hdr_len_] = p[i];
    ++hdr_len_;
    ++hdr_in_call;
    if (hdr_len_ == 2) hdr_need_ = header_bytes(hdr_[1]);
    if (hdr_len_ == hdr_need_) {
      const unsigned len7 = hdr_[1] & 0x7f;
      const std::uint64_t len = payload_length(len7, hdr_.data() + 2);
      const std::size_t off = 2 + extended_length_bytes(len7);
      if ((hdr_[1] & 0x80) && hdr_in_call >= 4) {
        // The masking key is the header's last 4 bytes, all in this call's data at
        // i-3 .. i: replace it, and re-mask the payload with the difference.
        const std::uint32_t fresh = next_mask();
        unsigned char nk[4];
        std::memcpy(nk, &fresh, 4);
        for (std::size_t b = 0; b < 4; ++b) {
          xor_[b] = static_cast<unsigned char>(hdr_[off + b] ^ nk[b]);
          p[i - 3 + b] = nk[b];
        }
        xor_pos_ = 0;
      } else {
        // Unmasked, or a key split across writes (already partly handed on): leave as is.
        xor_ = {};
      }
      payload_left_ = len;
      hdr_len_ = 0;
      hdr_in_call = 0;
      hdr_need_ = 2;
    }
    ++i;
  }
}

bool key_rewriter::incoming_header(std::string& h) {
  const auto end = h.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  accept_done_ = true;
  // "HTTP/1.1 200 OK": three digits after the first space.
  if (const auto sp = h.find(' '); sp != std::string::npos && sp + 3 < end) {
    unsigned v = 0;
    for (std::size_t i = sp + 1; i < sp + 4 && std::isdigit(static_cast<unsigned char>(h[i])); ++i) v = v * 10 + unsigned(h[i] - '0');
    if (v >= 100 && v <= 999) status_ = v;
  }
  const auto lower = net::detail::ascii_lower(std::string_view(h).substr(0, end));
  static constexpr char name[] = "\r\nsec-websocket-accept:";
  auto pos = lower.find(name);
  if (pos == std::string::npos) return true;
  pos += sizeof(name) - 1;
  while (pos < end && (h[pos] == ' ' || h[pos] == '\t')) ++pos;
  if (pos + 28 > end) return true;
  if (h.compare(pos, 28, accept_for(our_key_)) == 0) h.replace(pos, 28, accept_for(beast_key_));
  return true;
}

}  // namespace tether::ws::detail
