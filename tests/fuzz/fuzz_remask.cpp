// The key rewriter: for any sequence of client frames, cut at any points into writes, the
// rewritten stream carries the same frames with the same unmasked payloads.
#include <tether/ws/impl/key_rewriter.ipp>
#include "fixtures/ws_server.hpp"

#include <tether/ws/detail/key_rewriter.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {
void put_frame(std::string& out, unsigned op, const std::string& payload, std::uint32_t mask) {
  out += static_cast<char>(0x80 | op);
  const auto n = payload.size();
  if (n < 126) {
    out += static_cast<char>(0x80 | n);
  } else {
    out += static_cast<char>(0x80 | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xff);
  }
  unsigned char k[4];
  std::memcpy(k, &mask, 4);
  out.append(reinterpret_cast<char*>(k), 4);
  for (std::size_t i = 0; i < n; ++i) out += static_cast<char>(payload[i] ^ k[i & 3]);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // Frames from the input: [len byte][payload...] repeated; mask from the payload's first bytes.
  std::vector<std::string> payloads;
  std::string stream = "GET / HTTP/1.1\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
  std::size_t i = 1;
  while (i < size && payloads.size() < 64) {
    const std::size_t n = std::min<std::size_t>(data[i] * 3u, size - i - 1);
    payloads.emplace_back(reinterpret_cast<const char*>(data + i + 1), n);
    put_frame(stream, 2, payloads.back(), static_cast<std::uint32_t>(n * 2654435761u));
    i += n + 1;
  }
  const std::size_t head = stream.find("\r\n\r\n") + 4;
  // Rewrite in pieces whose sizes come from data[0].
  tether::ws::detail::key_rewriter rw;
  const std::size_t step = 1 + data[0] % 17;
  for (std::size_t pos = 0; pos < stream.size(); pos += step)
    rw.outgoing(stream.data() + pos, std::min(step, stream.size() - pos));
  std::string frames = stream.substr(head);
  auto parsed = tether::test::parse_frames(frames);
  if (parsed.size() != payloads.size() || !frames.empty()) std::abort();
  for (std::size_t k = 0; k < parsed.size(); ++k)
    if (parsed[k].payload != payloads[k] || !parsed[k].masked) std::abort();
  return 0;
}
