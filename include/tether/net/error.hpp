// tether/net/error.hpp: tether's error codes, their category, and the conditions that group them.
#pragma once

#include <tether/config.hpp>

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace tether {

using boost::system::error_code;

/// Library conditions reported through `boost::system::error_code` (category "tether").
enum class error {
  // Caller input
  invalid_url = 1,        ///< the URL does not parse
  unsupported_scheme,     ///< a scheme this operation does not speak
  invalid_argument,       ///< an option or argument is out of range
  // WebSocket
  handshake_rejected,     ///< the server answered the upgrade with a non-101 status
  subprotocol_mismatch,   ///< the server chose a subprotocol that was not offered
  extension_mismatch,     ///< the server named an extension that was not offered
  pong_timeout,           ///< no frame arrived within pong_timeout after a ping: peer is dead
  connect_timeout,        ///< TCP connect did not finish in time
  handshake_timeout,      ///< TLS or WebSocket handshake did not finish in time
  close_timeout,          ///< the peer did not complete the close handshake in time
  policy_violation,       ///< the server closed with 1008
  outbox_full,            ///< the send queue is at its message or byte limit
  expired,                ///< a queued message passed its expiry before it could be written
  client_closed,          ///< the client was closed; no more events
  retries_exhausted,      ///< the reconnect or retry policy gave up
  busy,                   ///< an operation of this kind is already pending
  not_connected,          ///< the operation needs an open connection
  // Envelopes
  malformed_json,         ///< an incoming document is not JSON
  json_too_deep,          ///< an incoming document nests deeper than allowed
  json_too_large,         ///< an incoming document is larger than allowed
  missing_type,           ///< an envelope without a string "type"
  unknown_type,           ///< an envelope whose type has no handler
  payload_mismatch,       ///< a payload does not decode as the registered type
  request_timeout,        ///< no reply to a request within its timeout
  connection_lost,        ///< the connection dropped while a request was pending
  // Transfers and HTTP
  rejected,               ///< the server refused (4xx other than 408/425/429)
  retry_later,            ///< the server asked to come back later (429/503...)
  integrity_mismatch,     ///< the content does not match the expected digest or length
  state_corrupt,          ///< a state record failed to parse or validate
  state_locked,           ///< another process sharing the state directory runs this transfer
  state_version,          ///< a state record was written by a newer tether
  range_mismatch,         ///< a 206 whose Content-Range does not match the request
  short_body,             ///< the body ended before its announced length
  too_many_redirects,     ///< the redirect limit was reached
  deadline_exceeded,      ///< the whole-transfer deadline passed
  source_changed,         ///< an upload source changed since the transfer began
  protocol_error,         ///< the server broke the protocol (tus, HTTP)
  not_found,              ///< no transfer with that id
  insufficient_space,     ///< not enough free disk space for the expected size
  cancelled,              ///< the transfer was cancelled
  paused,                 ///< the transfer was paused
  inactivity_timeout,     ///< no bytes arrived within the read inactivity timeout
  too_large,              ///< the content is larger than the configured limit
  encoded_content,        ///< the body came with a Content-Encoding although identity was asked
  server_error,           ///< the server failed (a 5xx other than 503): worth retrying, not a request to wait
  closed_by_server,       ///< the server closed the connection with a close handshake (see the close code)
  // Proxies and pinning
  proxy_auth_required,    ///< the proxy wants credentials or refused the ones given (HTTP 407, SOCKS auth)
  proxy_denied,           ///< the proxy refused the tunnel (a CONNECT answered 4xx other than 407)
  proxy_failed,           ///< the proxy could not open the tunnel (a CONNECT answered 5xx)
  proxy_protocol_error,   ///< the proxy's answer is not HTTP CONNECT or SOCKS5 as configured
  pin_mismatch,           ///< no certificate of the verified chain has a pinned public key
};

/// Groups of errors that drive decisions in one place (retry or not).
enum class condition {
  transient = 1,  ///< worth retrying: network failures, timeouts, 5xx, 429
  fatal,          ///< a retry cannot fix it: bad input, rejections, TLS verification, integrity
};

TETHER_DECL const boost::system::error_category& error_category() noexcept;
TETHER_DECL const boost::system::error_category& condition_category() noexcept;

inline error_code make_error_code(error e) noexcept {
  return {static_cast<int>(e), error_category()};
}
inline boost::system::error_condition make_error_condition(condition c) noexcept {
  return {static_cast<int>(c), condition_category()};
}

/// True when `ec` is a TLS certificate verification failure.
TETHER_DECL bool is_tls_verification_failure(const error_code& ec) noexcept;

/// Certificate verification failures with OpenSSL's reason (category "tether.tls_verify",
/// the value is the X509_V_ERR_* code): "certificate verify failed: hostname mismatch",
/// "...: unable to get local issuer certificate", "...: certificate has expired".
TETHER_DECL const boost::system::error_category& tls_verify_category() noexcept;
/// True when the certificate is trusted but does not name the host (or IP) connected to.
TETHER_DECL bool is_tls_hostname_mismatch(const error_code& ec) noexcept;

/// A SOCKS5 server's failure reply (category "tether.socks", the value is the RFC 1928 reply
/// code 1-8): "SOCKS5 proxy: connection refused by the destination host", "...: connection not
/// allowed by ruleset". Codes 2 (not allowed), 7 and 8 (not supported) are fatal, the rest
/// transient.
TETHER_DECL const boost::system::error_category& socks_category() noexcept;

}  // namespace tether

template <>
struct boost::system::is_error_code_enum<tether::error> : std::true_type {};
template <>
struct boost::system::is_error_condition_enum<tether::condition> : std::true_type {};
