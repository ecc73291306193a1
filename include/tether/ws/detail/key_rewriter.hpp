// tether/ws/detail/key_rewriter.hpp: replaces the randomness Beast puts on the wire with
// OpenSSL's CSPRNG: the Sec-WebSocket-Key of the handshake (and the matching Accept of the
// response) and the masking key of every client frame.
//
// Why: Beast 1.81's "secure" ChaCha generator feeds ctr_/16 as the block counter, so each
// 64-byte block is emitted 16 times: keys and masks repeat (RFC 6455 §5.3 and §10.3 require
// them to be unpredictable). Rewriting keeps every length unchanged, so Beast's own state
// (sizes, frame boundaries) stays valid; a frame's payload is re-masked by XOR with
// (beast_key ^ new_key).
#pragma once

#include <tether/config.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace tether::ws::detail {

/// out[i] = in[i] ^ key[(phase + i) % 4] (RFC 6455 §5.3), 32 or 8 bytes at a time; `out` may be `in`.
TETHER_DECL void mask_copy(unsigned char* out, const unsigned char* in, std::size_t n, const unsigned char* key,
                           std::size_t phase) noexcept;

class key_rewriter {
 public:
  /// Rewrites `n` outgoing bytes in place (a continuous stream of HTTP request, then frames).
  TETHER_DECL void outgoing(char* data, std::size_t n);
  /// Whether the handshake response still needs its Accept rewritten.
  bool awaiting_accept() const noexcept { return swapped_ && !accept_done_; }
  /// Given the complete response header block, replaces the server's Sec-WebSocket-Accept
  /// (if it is the one for our key) with the one Beast expects. Returns false if the block is
  /// not complete yet.
  TETHER_DECL bool incoming_header(std::string& header_block);
  /// The handshake response's status code once its header block was seen (0 before).
  unsigned response_status() const noexcept { return status_; }

  /// Whether the outgoing stream is between two frames (so a whole frame may be inserted).
  bool at_frame_boundary() const noexcept { return request_done_ && hdr_len_ == 0 && payload_left_ == 0; }
  /// A fresh masking key from the CSPRNG pool.
  std::uint32_t fresh_mask() { return next_mask(); }

  /// 16 random bytes, base64: a fresh Sec-WebSocket-Key.
  TETHER_DECL static std::string make_key();
  /// RFC 6455 §4.2.2: base64(SHA-1(key + GUID)).
  TETHER_DECL static std::string accept_for(const std::string& key);

 private:
  TETHER_DECL std::uint32_t next_mask();
  TETHER_DECL void xor_payload(unsigned char* p, std::size_t n) noexcept;

  bool request_done_ = false;
  bool swapped_ = false;
  bool accept_done_ = false;
  unsigned status_ = 0;
  std::string beast_key_, our_key_;
  // frame parser state
  std::array<unsigned char, 14> hdr_{};
  std::size_t hdr_len_ = 0, hdr_need_ = 2;
  std::uint64_t payload_left_ = 0;
  std::array<unsigned char, 4> xor_{};
  std::size_t xor_pos_ = 0;
  std::array<std::uint32_t, 256> pool_{};
  std::size_t pool_pos_ = 0, pool_len_ = 0, next_fill_ = 16;
};

}  // namespace tether::ws::detail
