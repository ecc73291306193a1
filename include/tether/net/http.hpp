// tether/net/http.hpp: strict parsers for the HTTP header values that transfers trust:
// Content-Range, Content-Length-like integers (Upload-Offset, Upload-Length) and entity tags.
#pragma once

#include <tether/config.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

namespace tether::net {

/// A `Content-Range: bytes first-last/complete` value (RFC 9110 §14.4). `complete_length` is
/// empty for `*`. For the unsatisfied form `bytes */complete`, `satisfied` is false and only
/// `complete_length` is set.
struct content_range {
  bool satisfied = true;
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::optional<std::uint64_t> complete_length;
  std::uint64_t length() const noexcept { return satisfied ? last - first + 1 : 0; }
};

/// Parses a Content-Range value. Nothing for anything malformed: another unit than "bytes",
/// signs, overflow past 2^63, last < first, or a complete length not above `last`.
TETHER_DECL std::optional<content_range> parse_content_range(std::string_view value) noexcept;

/// A non-negative decimal integer as HTTP writes it (1*DIGIT, optional surrounding spaces,
/// at most 2^63 - 1). Nothing for signs, other characters, empty text or overflow.
TETHER_DECL std::optional<std::uint64_t> parse_decimal(std::string_view value) noexcept;

/// True for a strong entity tag (`"..."` without `W/`, RFC 9110 §8.8.3), the only kind that
/// may validate a range request.
TETHER_DECL bool is_strong_etag(std::string_view value) noexcept;

}  // namespace tether::net
