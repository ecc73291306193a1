// tether/net/detail/tls_context.hpp: the OpenSSL client context and per-stream setup behind
// net::tls_options (internal: included by the compiled parts only, never by public headers).
#pragma once

#include <tether/net/error.hpp>
#include <tether/net/tls.hpp>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/result.hpp>

#include <openssl/ssl.h>

#include <memory>
#include <string>

namespace tether::net::detail {

/// A client context with `options` (TLS 1.2 minimum). Errors name the file that failed to load.
TETHER_DECL boost::system::result<std::shared_ptr<boost::asio::ssl::context>> make_client_context(
    const tls_options& options);

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
