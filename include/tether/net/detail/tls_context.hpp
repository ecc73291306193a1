// tether/net/detail/tls_context.hpp: the OpenSSL client context and per-stream setup behind
// net::tls_options (internal: included by the compiled parts only, never by public headers).
#pragma once

#include <tether/net/error.hpp>
#include <tether/net/tls.hpp>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/result.hpp>

#include <openssl/ssl.h>

#include <memory>
#include <mutex>
#include <string>

namespace tether::net::detail {

/// A client context with `options` (TLS 1.2 minimum). Errors name the file that failed to load.
/// With `defer_system_store`, the system's trust store is left out: client_tls loads it.
TETHER_DECL boost::system::result<std::shared_ptr<boost::asio::ssl::context>> make_client_context(
    const tls_options& options, bool defer_system_store = false);

/// A client context whose system trust store is loaded when the first TLS connection needs it,
/// not when the context is made: reading and parsing the system's CA bundle takes tens of
/// milliseconds that a program speaking only http:// should not spend (curl defers it the same
/// way). Everything else in the options (pins, CA file and directory) is checked by make().
class client_tls {
 public:
  TETHER_DECL static boost::system::result<std::shared_ptr<client_tls>> make(const tls_options& options);
  /// Loads the system store the first time (thread-safe); its failure, if any, on every call.
  TETHER_DECL error_code ready();
  boost::asio::ssl::context& context() noexcept { return *ctx_; }

 private:
  std::shared_ptr<boost::asio::ssl::context> ctx_;
  bool system_store_ = false;  ///< still to be loaded by the first ready()
  std::once_flag once_;
  error_code error_;
};

/// Prepares `ssl` (a stream about to handshake) for `host`: SNI unless the host is an IP
/// literal, and host name (or IP) verification unless verification is off.
TETHER_DECL error_code prepare_client_stream(SSL* ssl, const std::string& host, const tls_options& options);

/// After a successful handshake: the pins of tls_options::pinned_public_keys checked against
/// the verified chain (the leaf only when verification is off). On pin_mismatch,
/// `chain_pins` lists the chain's own pins ("sha256//...", comma separated) for the message.
TETHER_DECL error_code check_pins(SSL* ssl, const tls_options& options, std::string& chain_pins);

/// A failed handshake's error, made specific: a verification failure becomes OpenSSL's reason
/// in tls_verify_category (hostname mismatch, unknown issuer, expired...); others unchanged.
TETHER_DECL error_code explain_handshake_failure(SSL* ssl, error_code ec);

}  // namespace tether::net::detail
