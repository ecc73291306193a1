// tether/net/proxy.hpp: which proxy a connection goes through (an option or curl's environment
// variables, no_proxy), as plain data and pure functions. The tunnels themselves (HTTP CONNECT,
// SOCKS5) are opened inside the compiled part of the library.
#pragma once

#include <tether/net/error.hpp>
#include <tether/net/url.hpp>

#include <boost/system/result.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace tether::net {

/// How a connection reaches its server. Every connection through an HTTP proxy is a CONNECT
/// tunnel (ws:// and http:// too), so upgrades and keep-alive work through any proxy; TLS to
/// the server runs inside the tunnel with the server's name (SNI and verification), never the
/// proxy's.
struct proxy_options {
  /// The proxy: `http://[user:password@]host[:port]` (CONNECT, port 1080 by default, as curl),
  /// `https://...` (CONNECT over TLS to the proxy, port 443 by default, as curl; the proxy's
  /// certificate is verified for its host with the connection's tls_options trust settings,
  /// never its pins), `socks5://...` (the host name is resolved here and the proxy gets an address) or
  /// `socks5h://...` (the proxy resolves the name); both SOCKS forms take user:password
  /// (RFC 1929) and default to port 1080. Percent-encoded user and password are decoded.
  /// Unset (the default): taken from the environment the way curl reads it (see
  /// proxy_from_environment). Set to "": no proxy, whatever the environment says.
  std::optional<std::string> url;
  /// Hosts reached directly (no_proxy syntax, see no_proxy_matches). Unset (the default): the
  /// environment's `no_proxy`, else `NO_PROXY`. It applies to an explicit `url` too.
  std::optional<std::string> no_proxy;
};

enum class proxy_kind : std::uint8_t { http, https, socks5, socks5h };

/// A parsed proxy URL. Its credentials never appear in `redacted()` or in any error.
struct proxy_config {
  proxy_kind kind = proxy_kind::http;
  std::string host;  ///< without brackets
  std::uint16_t port = 1080;
  std::string username;
  std::string password;
  bool has_credentials() const noexcept { return !username.empty() || !password.empty(); }
  /// An HTTP proxy (CONNECT), over TLS or not.
  bool is_http() const noexcept { return kind == proxy_kind::http || kind == proxy_kind::https; }
  /// "http://host:port" (never the credentials): safe for logs and errors.
  std::string redacted() const;
};

/// Parses a proxy URL as proxy_options::url describes. A URL without a scheme is an HTTP proxy
/// (as curl). Errors: `invalid_url` (no host, a bad port, a path other than "/"),
/// `unsupported_scheme` (anything but http, https, socks5 and socks5h).
TETHER_DECL boost::system::result<proxy_config> parse_proxy_url(std::string_view text);

/// curl's no_proxy rule. `list` holds entries separated by commas and/or white space; `host` is
/// a name or an IP literal (brackets allowed). A name matches an entry equal to it or ending in
/// "." + entry, case-insensitively, with leading dots of the entry (and a trailing dot of
/// either) ignored: `example.com` matches `www.example.com`, not `nonexample.com`. An IP literal
/// matches an entry that is the same address or a CIDR range holding it (`10.0.0.0/8`,
/// `fd00::/8`). `*` matches everything, only as the whole value.
TETHER_DECL bool no_proxy_matches(std::string_view list, std::string_view host);

/// Reads one environment variable; returns nullopt when it is unset. The default reads the
/// process environment.
using env_reader = std::function<std::optional<std::string>(const char* name)>;
TETHER_DECL std::optional<std::string> process_environment(const char* name);

/// The proxy URL the environment gives for a connection with `scheme`, as curl reads it: the
/// lowercase variable before the uppercase one, `http_proxy` in lowercase only (a CGI program's
/// HTTP_PROXY comes from a request header); ws:// uses `ws_proxy`, then `http_proxy`; wss://
/// uses `wss_proxy`, then `https_proxy`; then `all_proxy`. Empty values count as unset.
TETHER_DECL std::optional<std::string> proxy_from_environment(scheme s, const env_reader& env = process_environment);

/// The proxy for a connection to `url`, or nullopt for a direct one: `options.url` when set,
/// else the environment's; none when it is "" or `url`'s host matches no_proxy. Errors are
/// parse_proxy_url's.
TETHER_DECL boost::system::result<std::optional<proxy_config>> choose_proxy(
    const proxy_options& options, const endpoint_url& url, const env_reader& env = process_environment);

}  // namespace tether::net
