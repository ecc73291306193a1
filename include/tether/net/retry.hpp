// tether/net/retry.hpp: classification of HTTP outcomes and network errors into
// success / rejected / retry later / failed, and Retry-After parsing.
#pragma once

#include <tether/net/error.hpp>

#include <chrono>
#include <optional>
#include <string_view>

namespace tether::net {

enum class outcome {
  success,      ///< 2xx (and 3xx handled by the caller as redirects)
  rejected,     ///< the server refused: 4xx other than 408/425/429; retrying will not help
  retry_later,  ///< transient: 408, 425, 429, 5xx, network failures, timeouts
  failed,       ///< a failure a retry cannot fix on our side (integrity, bad input, TLS trust)
};

TETHER_DECL const char* to_string(outcome o) noexcept;

/// The class of an HTTP status code.
TETHER_DECL outcome classify_status(unsigned status) noexcept;

/// The error an unwanted status stands for: `rejected` (4xx but 408/425/429), `retry_later`
/// (408, 425, 429, 503: the server asks for time), `server_error` (other 5xx), else
/// `protocol_error` (1xx as a final answer, or no status at all).
TETHER_DECL error_code status_error(unsigned status) noexcept;

/// The class of an error: transient network and timeout errors retry; tether's fatal
/// condition and TLS verification failures do not.
TETHER_DECL outcome classify_error(const error_code& ec) noexcept;

/// Parses a Retry-After value: delta-seconds or an HTTP-date (IMF-fixdate, RFC 850 or asctime,
/// RFC 9110 §10.2.3), relative to `now`. A date in the past gives zero. The result is bounded
/// by `cap`. Nothing for a value that is neither.
TETHER_DECL std::optional<std::chrono::seconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now,
    std::chrono::seconds cap = std::chrono::seconds{3600});

/// Parses an HTTP-date (the three forms of RFC 9110 §5.6.7).
TETHER_DECL std::optional<std::chrono::system_clock::time_point> parse_http_date(
    std::string_view value);

}  // namespace tether::net
