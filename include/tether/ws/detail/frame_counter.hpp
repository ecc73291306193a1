// tether/ws/detail/frame_counter.hpp: counts the whole messages that have arrived, by reading
// only the frame headers of the incoming byte stream (the HTTP response first, then frames).
//
// Why: the client reads messages that are already complete in memory with Beast's synchronous
// read (no asynchronous operation, no post per message) and falls back to the asynchronous
// read otherwise. The counter is what tells "complete": a message whose final data frame has
// fully arrived. It validates nothing (Beast does); it stops counting for good at a close
// frame, so closing handshakes always run through the asynchronous path.
#pragma once

#include <tether/ws/detail/frame_header.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace tether::ws::detail {

/// The head of an ordinary message as a server sends it, at the front of the bytes given: one
/// final, unmasked, uncompressed text or binary frame, its length encoded in the fewest bytes
/// and at most `max` (0: no limit), the whole header present (`ok`), and whether its payload
/// is all there too (`whole`). Anything else (a part of a header, a fragment, a control frame,
/// reserved bits or opcodes, a mask, an oversized or oddly encoded length) is not one: those
/// are Beast's to read, and to refuse.
struct ordinary_frame {
  bool ok = false;
  bool whole = false;
  bool text = false;
  std::size_t header = 0;   ///< bytes before the payload
  std::size_t payload = 0;  ///< payload bytes
};
inline ordinary_frame ordinary_frame_at(const unsigned char* p, std::size_t n, std::uint64_t max) noexcept {
  ordinary_frame f;
  if (n < 2) return f;
  const unsigned op = p[0] & 0x0fu;
  if ((p[0] & 0xf0u) != 0x80u || (op != 1 && op != 2) || (p[1] & 0x80u) != 0) return f;
  const unsigned l7 = p[1] & 0x7fu;
  const std::size_t h = 2 + extended_length_bytes(l7);
  if (n < h) return f;
  const std::uint64_t len = payload_length(l7, p + 2);
  // The fewest bytes: a 16-bit length above 125, a 64-bit one above 0xffff (and below 2^63).
  if ((l7 == 126 && len < 126) || (l7 == 127 && (len <= 0xffffu || (len >> 63) != 0))) return f;
  if ((max != 0 && len > max) || len > std::numeric_limits<std::size_t>::max()) return f;
  f.ok = true;
  f.whole = len <= n - h;
  f.text = op == 1;
  f.header = h;
  f.payload = static_cast<std::size_t>(len);
  return f;
}

/// Whether the `n` bytes in memory (`n` > 0) are the head of an ordinary message (as
/// ordinary_frame_at, at most `max`) that has not wholly arrived, small enough to gather in
/// memory: at most `read_chunk` bytes with its header, and, binary, no more than half a read
/// chunk of payload (a larger one is read straight into its own string: large_bounds). A
/// header not wholly here yet counts when its first bytes may begin one. The reader then reads
/// the rest into memory behind it and takes the message whole, rather than handing the bytes
/// to Beast's read, whose composed operations and copies cost more than the message.
inline bool ordinary_head_arriving(const unsigned char* p, std::size_t n, std::uint64_t max,
                                   std::size_t read_chunk) noexcept {
  if (n == 0 || (p[0] != 0x81u && p[0] != 0x82u)) return false;
  if (n < 2) return true;
  const unsigned l7 = p[1] & 0x7fu;
  if ((p[1] & 0x80u) != 0) return false;  // masked: not from a server
  if (n < 2 + extended_length_bytes(l7)) return true;
  const auto f = ordinary_frame_at(p, n, max);
  return f.ok && !f.whole && f.header + f.payload <= read_chunk && (f.text || f.payload <= read_chunk / 2);
}

class frame_counter {
 public:
  /// Feeds `n` more bytes of the incoming stream, in order.
  void feed(const unsigned char* p, std::size_t n) noexcept {
    while (n > 0 && !stopped_) {
      if (in_http_) {
        // The response header block ends with CRLF CRLF.
        const auto c = *p++;
        --n;
        static constexpr unsigned char crlfcrlf[4] = {'\r', '\n', '\r', '\n'};
        http_match_ = c == crlfcrlf[http_match_] ? http_match_ + 1 : (c == '\r' ? 1 : 0);
        if (http_match_ == 4) in_http_ = false;
        continue;
      }
      if (payload_left_ > 0) {
        const auto k = payload_left_ < n ? static_cast<std::size_t>(payload_left_) : n;
        payload_left_ -= k;
        p += k;
        n -= k;
        if (payload_left_ == 0) frame_done();
        continue;
      }
      hdr_[hdr_len_++] = *p++;
      --n;
      if (hdr_len_ == 2) hdr_need_ = header_bytes(hdr_[1]);
      if (hdr_len_ < 2 || hdr_len_ < hdr_need_) continue;
      const std::uint64_t len = payload_length(hdr_[1] & 0x7fu, hdr_.data() + 2);
      fin_ = (hdr_[0] & 0x80u) != 0;
      op_ = hdr_[0] & 0x0fu;
      hdr_len_ = 0;
      if (op_ == 8) {
        stopped_ = true;  // a close frame: the rest is for the closing handshake
        return;
      }
      payload_left_ = len;
      if (len == 0) frame_done();
    }
  }
  void feed(const char* p, std::size_t n) noexcept { feed(reinterpret_cast<const unsigned char*>(p), n); }

  /// Whole messages that arrived and were not yet taken.
  std::size_t ready() const noexcept { return complete_ - taken_; }
  /// One message was read (by either path).
  void take() noexcept {
    if (taken_ < complete_) ++taken_;
  }

  /// Every byte that arrived belongs to a message already read (or to a control frame before
  /// one, which was read with it): no message unread, no part of a frame or of a fragmented
  /// message (Beast would check its header at once), no control frame since the last message
  /// (it may not be answered yet), no close. Only then may the reader wait for more bytes from
  /// the socket alone (transport::fill) rather than with Beast's read, which acts on whatever
  /// it already holds.
  bool quiet() const noexcept {
    return arriving() && hdr_len_ == 0 && payload_left_ == 0;
  }
  /// As quiet, except that a frame may have begun to arrive: every byte that arrived belongs
  /// to a message already read or to the frame now arriving after it.
  bool arriving() const noexcept { return !in_http_ && ready() == 0 && controls_ == 0 && !stopped_ && !open_; }

 private:
  void frame_done() noexcept {
    if (op_ >= 8) {
      ++controls_;  // a ping or pong (a close stops the count before it gets here)
    } else if (fin_) {
      ++complete_;  // the final frame of a data message: control frames before it are read with it
      controls_ = 0;
      open_ = false;
    } else {
      open_ = true;  // a fragmented message goes on
    }
  }

  bool in_http_ = true;
  unsigned http_match_ = 0;
  bool stopped_ = false;
  std::array<unsigned char, 14> hdr_{};
  std::size_t hdr_len_ = 0, hdr_need_ = 2;
  std::uint64_t payload_left_ = 0;
  bool fin_ = false;
  unsigned op_ = 0;
  std::size_t complete_ = 0, taken_ = 0;
  std::size_t controls_ = 0;  // control frames since the last whole message
  bool open_ = false;         // a fragmented message has begun and not ended
};

}  // namespace tether::ws::detail
