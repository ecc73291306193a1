// tether/transfer/detail/download_plan.hpp: the download's decisions without I/O: which
// request to send for the bytes held (resume planning) and what a response means for them
// (response judgement). Tested by tables in tests/unit/transfer/decide.cpp.
#pragma once

#include <tether/net/error.hpp>
#include <tether/net/url.hpp>
#include <tether/transfer/detail/record.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace tether::transfer::detail {

/// The next GET for a download that holds `held` bytes.
struct resume_plan {
  /// What is held cannot be proven to belong to the content the server has now (no strong
  /// validator and no expected SHA-256): discard it and fetch from zero.
  bool restart = false;
  /// `Range: bytes=from-` (only when continuing held bytes).
  std::optional<std::uint64_t> range_from;
  /// The `If-Range` validator sent with the range: the strong ETag, else Last-Modified; empty
  /// when the caller's SHA-256 is the only proof (then a changed file fails the final check).
  std::string if_range;
};
TETHER_DECL resume_plan plan_resume(const record& r, std::uint64_t held);

/// What the shell saw of a response header, as text (the judgement parses it).
struct response_facts {
  unsigned status = 0;
  std::string reason;
  std::string etag, last_modified, content_encoding, content_range, location, retry_after, date, accept_ranges;
  std::optional<std::uint64_t> content_length;
};

/// What to do with a download response.
enum class response_step {
  body,         ///< read the body into the partial file at `held` (after `restart`, at 0)
  start_over,   ///< what is held cannot continue from this answer: discard it, then retry
  redirect,     ///< follow `redirect`
  fail,         ///< stop this attempt with `ec` (the retry policy decides what follows)
};

struct response_verdict {
  response_step step = response_step::fail;
  error_code ec;                ///< for start_over (range_mismatch) and fail
  std::string why;              ///< for people: what was wrong, without the request line
  std::optional<net::endpoint_url> redirect;
  std::optional<std::chrono::seconds> retry_after;
  // For a 200 (the whole content): discard held bytes first, and the content's new identity.
  bool whole = false;           ///< the body starts at byte 0 (a 200)
  bool restart = false;         ///< held bytes were discarded for it (counts as a restart)
  std::string etag;             ///< the strong ETag to record (weak ones are not kept)
  std::string last_modified;
  /// The Last-Modified may serve as a strong validator (RFC 9110 §8.8.2.2: at least 60 s before
  /// the response's Date).
  bool last_modified_strong = false;
  bool accepts_ranges = false;  ///< the server said `Accept-Ranges: bytes`
  std::optional<std::uint64_t> length;
  std::uint64_t checkpoint_bytes = 0;  ///< chunk size for this content
};

/// Limits the judgement applies (from the manager's options).
struct response_limits {
  std::uint64_t checkpoint_bytes = 4u << 20;  ///< configured chunk size
  std::uint64_t max_download_bytes = 0;       ///< 0: none
};

/// Judges a response to the GET planned by plan_resume for `held` bytes of the content `r`
/// describes. `url` is the request's URL (Location resolves against it); `now` dates a
/// Retry-After given as an HTTP-date.
TETHER_DECL response_verdict judge_response(const record& r, std::uint64_t held, const response_facts& f,
                                            const net::endpoint_url& url, const response_limits& limits,
                                            std::chrono::system_clock::time_point now);

/// The checkpoint chunk for content of `length` bytes: the configured size, raised (in 64 KiB
/// steps) so that a record holds at most ~1024 digests.
TETHER_DECL std::uint64_t chunk_size_for(std::optional<std::uint64_t> length, std::uint64_t configured) noexcept;

}  // namespace tether::transfer::detail
