// tether/net/url.hpp: parse and check ws/wss/http/https URLs (Boost.URL underneath).
#pragma once

#include <tether/net/error.hpp>

#include <boost/system/result.hpp>

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>

namespace tether::net {

enum class scheme { ws, wss, http, https };

/// A URL split into what a connection needs. Produced only by `parse_url`.
struct endpoint_url {
  net::scheme scheme = scheme::ws;
  std::string host;         ///< host without brackets (IPv6 literals bare), percent-decoded
  std::uint16_t port = 0;   ///< explicit port, else the scheme's default
  std::string target;       ///< origin-form request target: path (at least "/") plus "?query"
  bool secure() const noexcept { return scheme == scheme::wss || scheme == scheme::https; }
  bool ipv6_literal = false;
  /// The Host header value: host (bracketed if IPv6) and ":port" unless it is the default.
  std::string host_header() const;
  /// The URL with query parameters that look like credentials replaced by "REDACTED".
  std::string redacted() const;
  /// The URL back as text (not redacted: never log it, use `redacted()`).
  std::string to_string() const;
};

/// Prints the redacted form (safe for logs and test output).
TETHER_DECL std::ostream& operator<<(std::ostream& os, const endpoint_url& u);

/// Parses an absolute ws, wss, http or https URL. Errors: `invalid_url` for text that is not a
/// URL or has no host, a bad port, userinfo, or (for ws/wss, RFC 6455 §3) a fragment;
/// `unsupported_scheme` for any other scheme.
TETHER_DECL boost::system::result<endpoint_url> parse_url(std::string_view text);

/// Resolves `reference` (e.g. a Location header) against `base`; the result must be http(s).
TETHER_DECL boost::system::result<endpoint_url> resolve_url(const endpoint_url& base,
                                                            std::string_view reference);

/// Appends `name=value` (percent-encoded) to the URL's query.
TETHER_DECL void append_query_parameter(endpoint_url& url, std::string_view name,
                                        std::string_view value);

/// Default port of a scheme: 80 for ws/http, 443 for wss/https.
constexpr std::uint16_t default_port(net::scheme s) noexcept {
  return (s == scheme::wss || s == scheme::https) ? 443 : 80;
}

}  // namespace tether::net
