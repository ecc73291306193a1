// tether/ws/detail/frame_header.hpp: the length field of a WebSocket frame header (RFC 6455
// section 5.2), read the same way by every parser here: the frame counter, the check for an
// ordinary message and the key rewriter.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tether::ws::detail {

/// How many bytes of extended payload length follow the second byte of a frame header whose
/// 7-bit length is `l7` (126: 16 bits, 127: 64 bits, else none).
constexpr std::size_t extended_length_bytes(unsigned l7) noexcept { return l7 == 126 ? 2 : l7 == 127 ? 8 : 0; }

/// The payload length of a frame header whose 7-bit length is `l7` and whose
/// extended_length_bytes(l7) bytes of extended length (network byte order) are at `ext`.
inline std::uint64_t payload_length(unsigned l7, const unsigned char* ext) noexcept {
  std::uint64_t len = l7 < 126 ? l7 : 0;
  for (std::size_t i = 0; i < extended_length_bytes(l7); ++i) len = (len << 8) | ext[i];
  return len;
}

}  // namespace tether::ws::detail
