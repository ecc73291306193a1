// examples/network_flags.hpp: the --proxy and --pin options that tether-ws and tether-transfer
// share, checked up front so that a typo is a usage error naming the option, never a failure
// at the first connection. A proxy URL may hold a password: it is never echoed.
#pragma once

#include <tether/net/proxy.hpp>
#include <tether/net/tls.hpp>

#include <string>

namespace tether_examples {

/// Applies `--proxy VALUE`; returns an error sentence, or "" when it is fine.
inline std::string apply_proxy_flag(tether::net::proxy_options& p, const std::string& value) {
  if (!value.empty()) {
    auto parsed = tether::net::parse_proxy_url(value);
    if (!parsed)
      return "--proxy: not a proxy URL (" + parsed.error().message() +
             "): expected http://, https://, socks5:// or socks5h://[user:password@]HOST[:PORT]";
  }
  p.url = value;
  return {};
}

/// Applies `--pin VALUE`; returns an error sentence, or "" when it is fine.
inline std::string apply_pin_flag(tether::net::tls_options& tls, const std::string& value) {
  if (!tether::net::parse_pin(value))
    return "--pin '" + value + "': expected sha256//BASE64 (the SHA-256 of a certificate's public key, 44 characters of base64)";
  tls.pinned_public_keys.push_back(value);
  return {};
}

/// The proxy a connection to `url` goes through ("" for none), safe to print.
inline std::string proxy_in_use(const tether::net::proxy_options& p, const tether::net::endpoint_url& url) {
  if (auto chosen = tether::net::choose_proxy(p, url); chosen && *chosen) return (*chosen)->redacted();
  return {};
}

/// What to do about a proxy or pinning failure ("" for other errors).
inline std::string network_hint(const tether::error_code& ec) {
  if (ec == tether::error::proxy_auth_required) return "give user:password in --proxy or in the proxy variable";
  if (ec == tether::error::pin_mismatch)
    return "the server's key changed, or a proxy or middlebox presented another certificate";
  return {};
}

/// A sentence for the proxy and pinning failures, or "" for other errors.
inline std::string describe_network_failure(const tether::error_code& ec, const tether::net::proxy_options& p,
                                            const tether::net::endpoint_url& url) {
  std::string proxy = proxy_in_use(p, url);
  if (proxy.empty()) proxy = "the proxy";
  if (ec == tether::error::proxy_auth_required)
    return ec.message() + " (" + proxy + ": " + network_hint(ec) + ")";
  if (ec == tether::error::proxy_denied || ec == tether::error::proxy_failed || ec == tether::error::proxy_protocol_error ||
      ec.category() == tether::socks_category())
    return ec.message() + " (" + proxy + " for " + url.host_header() + ")";
  if (ec == tether::error::pin_mismatch)
    return ec.message() + " (" + network_hint(ec) + ")";
  return {};
}

}  // namespace tether_examples
