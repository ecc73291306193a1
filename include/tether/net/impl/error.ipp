#pragma once

#include <tether/net/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/websocket/error.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

namespace tether {
namespace detail {

class error_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "tether"; }
  std::string message(int ev) const override {
    switch (static_cast<error>(ev)) {
      case error::invalid_url: return "invalid URL";
      case error::unsupported_scheme: return "unsupported URL scheme";
      case error::invalid_argument: return "invalid argument";
      case error::handshake_rejected: return "the server rejected the WebSocket handshake";
      case error::subprotocol_mismatch: return "the server chose a subprotocol that was not offered";
      case error::extension_mismatch: return "the server named an extension that was not offered";
      case error::pong_timeout: return "no pong or other frame within pong_timeout: peer is unresponsive";
      case error::connect_timeout: return "TCP connect timed out";
      case error::handshake_timeout: return "handshake timed out";
      case error::close_timeout: return "the peer did not complete the close handshake in time";
      case error::policy_violation: return "the server closed the connection for a policy violation (1008)";
      case error::outbox_full: return "the outbox is full";
      case error::expired: return "the message expired before it could be sent";
      case error::client_closed: return "the client is closed";
      case error::retries_exhausted: return "retries exhausted";
      case error::busy: return "an operation of this kind is already pending";
      case error::not_connected: return "not connected";
      case error::malformed_json: return "malformed JSON";
      case error::json_too_deep: return "JSON document nested too deeply";
      case error::json_too_large: return "JSON document too large";
      case error::missing_type: return "envelope has no string \"type\"";
      case error::unknown_type: return "no handler for the envelope type";
      case error::payload_mismatch: return "payload does not decode as the registered type";
      case error::request_timeout: return "request timed out";
      case error::connection_lost: return "connection lost while the request was pending";
      case error::rejected: return "rejected by the server";
      case error::retry_later: return "the server asked to retry later";
      case error::integrity_mismatch: return "integrity check failed";
      case error::state_corrupt: return "transfer state record is corrupt";
      case error::state_locked: return "another process is running this transfer";
      case error::state_version: return "transfer state record has a newer schema version";
      case error::range_mismatch: return "Content-Range does not match the requested range";
      case error::short_body: return "the body ended before its announced length";
      case error::too_many_redirects: return "too many redirects";
      case error::deadline_exceeded: return "deadline exceeded";
      case error::source_changed: return "the upload source changed since the transfer began";
      case error::protocol_error: return "protocol error";
      case error::not_found: return "no such transfer";
      case error::insufficient_space: return "insufficient disk space";
      case error::cancelled: return "cancelled";
      case error::paused: return "paused";
      case error::inactivity_timeout: return "no data received within the inactivity timeout";
      case error::too_large: return "content larger than the configured limit";
      case error::encoded_content: return "the server sent an encoded body (Content-Encoding) although only identity was accepted";
      case error::server_error: return "the server failed (5xx)";
      case error::closed_by_server: return "closed by the server";
      case error::proxy_auth_required: return "the proxy requires authentication or rejected the credentials";
      case error::proxy_denied: return "the proxy refused the tunnel";
      case error::proxy_failed: return "the proxy could not open the tunnel";
      case error::proxy_protocol_error: return "the proxy's answer is not the configured proxy protocol";
      case error::pin_mismatch: return "no certificate of the verified chain matches a pinned public key";
    }
    return "unknown tether error";
  }
  boost::system::error_condition default_error_condition(int ev) const noexcept override {
    switch (static_cast<error>(ev)) {
      case error::pong_timeout:
      case error::connect_timeout:
      case error::handshake_timeout:
      case error::close_timeout:
      case error::retry_later:
      case error::server_error:
      case error::closed_by_server:
      case error::short_body:
      case error::connection_lost:
      case error::inactivity_timeout:
      case error::proxy_failed:
        return make_error_condition(condition::transient);
      default:
        return make_error_condition(condition::fatal);
    }
  }
};

class condition_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "tether.condition"; }
  std::string message(int ev) const override {
    switch (static_cast<condition>(ev)) {
      case condition::transient: return "transient failure, worth retrying";
      case condition::fatal: return "failure a retry cannot fix";
    }
    return "unknown condition";
  }
  bool equivalent(const error_code& ec, int cv) const noexcept override {
    if (!ec) return false;
    const bool fatal =
        ec.category() == tether::error_category()
            ? ec.default_error_condition() == make_error_condition(condition::fatal)
            : is_tls_verification_failure(ec) ||
                  (ec.category() == socks_category() &&
                   ec.default_error_condition() == make_error_condition(condition::fatal));
    return static_cast<condition>(cv) == condition::fatal ? fatal : !fatal;
  }
};

}  // namespace detail

const boost::system::error_category& error_category() noexcept {
  static const detail::error_category_impl cat;
  return cat;
}

const boost::system::error_category& condition_category() noexcept {
  static const detail::condition_category_impl cat;
  return cat;
}

namespace detail {
class tls_verify_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "tether.tls_verify"; }
  std::string message(int ev) const override {
    return std::string("certificate verify failed: ") + X509_verify_cert_error_string(ev);
  }
  boost::system::error_condition default_error_condition(int) const noexcept override {
    return make_error_condition(condition::fatal);
  }
};
}  // namespace detail

const boost::system::error_category& tls_verify_category() noexcept {
  static const detail::tls_verify_category_impl cat;
  return cat;
}

namespace detail {
class socks_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "tether.socks"; }
  std::string message(int ev) const override {
    // RFC 1928 §6.
    switch (ev) {
      case 1: return "SOCKS5 proxy: general server failure";
      case 2: return "SOCKS5 proxy: connection not allowed by ruleset";
      case 3: return "SOCKS5 proxy: network unreachable";
      case 4: return "SOCKS5 proxy: host unreachable";
      case 5: return "SOCKS5 proxy: connection refused by the destination host";
      case 6: return "SOCKS5 proxy: TTL expired";
      case 7: return "SOCKS5 proxy: command not supported";
      case 8: return "SOCKS5 proxy: address type not supported";
    }
    return "SOCKS5 proxy: unknown reply code " + std::to_string(ev);
  }
  boost::system::error_condition default_error_condition(int ev) const noexcept override {
    return make_error_condition(ev == 2 || ev == 7 || ev == 8 ? condition::fatal : condition::transient);
  }
};
}  // namespace detail

const boost::system::error_category& socks_category() noexcept {
  static const detail::socks_category_impl cat;
  return cat;
}

bool is_tls_hostname_mismatch(const error_code& ec) noexcept {
  return ec.category() == tls_verify_category() &&
         (ec.value() == X509_V_ERR_HOSTNAME_MISMATCH || ec.value() == X509_V_ERR_IP_ADDRESS_MISMATCH);
}

bool is_tls_verification_failure(const error_code& ec) noexcept {
  if (ec.category() == tls_verify_category()) return true;
  if (ec.category() != boost::asio::error::get_ssl_category()) return false;
  const auto code = static_cast<unsigned long>(ec.value());
  return ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED;
}

}  // namespace tether
