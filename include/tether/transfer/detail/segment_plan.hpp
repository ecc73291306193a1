// tether/transfer/detail/segment_plan.hpp: the decisions of a segmented download without I/O:
// when several connections may fetch one file, how the missing bytes are cut into segments and
// split again when a connection runs out of work, and what a segment's response means for the
// whole file. Tested by tables in tests/unit/transfer/segments.cpp.
//
// The invariant the shell relies on: every segment starts and ends on a checkpoint chunk
// boundary (or at the content's end), except the rest of a segment handed back after a failed
// connection, which starts where that connection stopped. So a chunk is only ever written by
// one connection at a time, and it is complete when the connection writing it crosses its end.
#pragma once

#include <tether/transfer/detail/download_plan.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tether::transfer::detail {

/// Bytes [begin, end) of the content.
struct span {
  std::uint64_t begin = 0, end = 0;
  std::uint64_t size() const noexcept { return end - begin; }
  friend bool operator==(const span&, const span&) = default;
};

/// How a download may be split (from the manager's options).
struct segment_limits {
  std::uint32_t connections = 4;              ///< at most this many connections for one file
  std::uint64_t min_segment = 4u << 20;       ///< never a segment smaller than this
};

/// Whether the content `r` describes (after a 200 judged by judge_response, whose verdict is
/// `v`) may be fetched over several connections: more than one allowed, a known length of at
/// least two minimum segments, `Accept-Ranges: bytes`, the server not known to refuse ranges
/// (a segment's 206 is the proof; any other answer goes back to one connection), and
/// the bytes provable: a strong ETag, a Last-Modified that RFC 9110 §8.8.2.2 lets a client
/// treat as strong (at least 60 s before the response's Date), or the caller's SHA-256.
TETHER_DECL bool may_segment(const record& r, const response_verdict& v, const segment_limits& limits) noexcept;

/// The missing bytes of a segmented download: each maximal run of chunks without a digest.
TETHER_DECL std::vector<span> missing_spans(const std::vector<std::string>& chunks, std::uint64_t chunk,
                                            std::uint64_t length);

/// Where to split `s` so that both halves are at least `min_segment` (and a chunk) long: the
/// middle, rounded up to a chunk boundary. Nothing when `s` is too small to split.
TETHER_DECL std::optional<std::uint64_t> split_point(span s, std::uint64_t chunk, std::uint64_t min_segment) noexcept;

/// The segments to start with: the missing spans, the largest split in two again and again
/// until there are `connections` of them or none can be split.
TETHER_DECL std::vector<span> initial_segments(std::vector<span> missing, std::uint64_t chunk,
                                               const segment_limits& limits);

/// Opening a segmented download's other connections. With `options::ramp_connections` it
/// starts on one, and opens the rest once that one's reads show that the network, not this
/// machine, is the limit. More connections help where one connection is held back (a cap per
/// connection, a long fat link); where one already delivers faster than the client takes it in
/// (loopback, a fast LAN, a busy machine) they only add work. The signal is time: the share of
/// a window that the connection spent waiting for data to arrive. Time spent on anything else
/// (writing, syncing, the caller's bandwidth limit) says the machine is the limit, and so does
/// a server that shares this machine's cores.
struct ramp_sample {
  std::chrono::nanoseconds elapsed{};  ///< since the window began
  std::chrono::nanoseconds waiting{};  ///< of it, waiting for the connection's data
  std::uint64_t bytes = 0;             ///< received in the window
};

struct ramp_policy {
  /// Judged after this long (a capped connection's wait shows at once; the cost of waiting is a
  /// window on one connection: 50 ms of a 1 s download)...
  std::chrono::milliseconds window{50};
  std::uint64_t window_bytes = 32u << 20;  ///< ...or after this many bytes, whichever comes first
  /// Open the others when waiting took at least this share: this machine could then take in
  /// five times what the one connection brings. A loopback nginx sharing two cores with the
  /// client kept one connection waiting 45-51% of the time (more connections made it slower);
  /// one capped at 16 MB/s, 99%.
  double waiting_share = 0.8;
};

enum class ramp_step {
  sample,    ///< the window is not over: keep measuring
  open_all,  ///< the network is the limit: open the other connections now
  again,     ///< this machine is the limit: one connection, and a new window
};

TETHER_DECL ramp_step judge_ramp(const ramp_sample& s, const ramp_policy& p = {}) noexcept;

/// What to do with the response to a segment's request (`Range: bytes=asked` with If-Range).
enum class segment_step {
  body,            ///< write the body at `asked.begin`, up to `last`
  other_version,   ///< the content changed: discard everything, fetch the new one from zero
  one_connection,  ///< the server will not serve this content in ranges: go on with one connection
  fail,            ///< this connection's attempt failed with `ec` (it retries on its own)
  fatal,           ///< no connection will do better (e.g. an encoded body): the call ends with `ec`
};

struct segment_verdict {
  segment_step step = segment_step::fail;
  error_code ec;
  std::string why;
  std::optional<std::chrono::seconds> retry_after;
  std::uint64_t last = 0;  ///< body: the last byte the response carries (inclusive)
};

/// Judges a segment response `f` against what is known of the content (`r`: length and
/// validators) and what was asked. `now` dates a Retry-After given as an HTTP-date.
TETHER_DECL segment_verdict judge_segment(const record& r, span asked, const response_facts& f,
                                          std::chrono::system_clock::time_point now);

}  // namespace tether::transfer::detail
