// tether/ws/detail/frame_header.hpp: the length field of a WebSocket frame header (RFC 6455
// section 5.2), read the same way by every parser here (the frame counter, the check for an
// ordinary message, the key rewriter) and written the same way by the framer.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tether::ws::detail {

/// How many bytes of extended payload length follow the second byte of a frame header whose
/// 7-bit length is `l7` (126: 16 bits, 127: 64 bits, else none).
constexpr std::size_t extended_length_bytes(unsigned l7) noexcept { return l7 == 126 ? 2 : l7 == 127 ? 8 : 0; }

/// The whole header's size, from its second byte: 2, the extended length, and 4 for a masking
/// key when the mask bit is set.
constexpr std::size_t header_bytes(unsigned second) noexcept {
  return 2 + extended_length_bytes(second & 0x7fu) + ((second & 0x80u) != 0 ? 4 : 0);
}

/// The payload length of a frame header whose 7-bit length is `l7` and whose
/// extended_length_bytes(l7) bytes of extended length (network byte order) are at `ext`.
inline std::uint64_t payload_length(unsigned l7, const unsigned char* ext) noexcept {
  std::uint64_t len = l7 < 126 ? l7 : 0;
  for (std::size_t i = 0; i < extended_length_bytes(l7); ++i) len = (len << 8) | ext[i];
  return len;
}

/// Writes the length field for a payload of `n` bytes in its shortest form at `out`: the
/// header's second byte (with `mask_bit`, 0x80 or 0) and the extended length after it.
/// Returns the bytes written (1, 3 or 9).
inline std::size_t put_length(unsigned char* out, std::uint64_t n, unsigned mask_bit) noexcept {
  const unsigned l7 = n < 126 ? static_cast<unsigned>(n) : n < 65536 ? 126u : 127u;
  out[0] = static_cast<unsigned char>(mask_bit | l7);
  const std::size_t ext = extended_length_bytes(l7);
  for (std::size_t i = 0; i < ext; ++i) out[1 + i] = static_cast<unsigned char>((n >> (8 * (ext - 1 - i))) & 0xffu);
  return 1 + ext;
}

}  // namespace tether::ws::detail
