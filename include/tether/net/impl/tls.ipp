// tether/net/impl/tls.ipp: the OpenSSL client context and stream setup behind tls_options.
#pragma once

#include <tether/net/detail/tls_context.hpp>

#include <boost/asio/ip/address.hpp>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace tether::net::detail {

boost::system::result<std::shared_ptr<boost::asio::ssl::context>> make_client_context(
    const tls_options& options) {
  namespace ssl = boost::asio::ssl;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                   ec);
  if (ec) return ec;
  if (options.insecure_skip_verify) {
    ctx->set_verify_mode(ssl::verify_none, ec);
    if (ec) return ec;
    return ctx;
  }
  ctx->set_verify_mode(ssl::verify_peer, ec);
  if (ec) return ec;
  if (options.use_system_store) {
    ctx->set_default_verify_paths(ec);
    if (ec) return ec;
  }
  if (!options.ca_file.empty()) {
    ctx->load_verify_file(options.ca_file, ec);
    if (ec) return ec;
  }
  if (!options.ca_dir.empty()) {
    ctx->add_verify_path(options.ca_dir, ec);
    if (ec) return ec;
  }
  return ctx;
}

error_code prepare_client_stream(SSL* ssl, const std::string& host, const tls_options& options) {
  error_code addr_ec;
  (void)boost::asio::ip::make_address(host, addr_ec);
  const bool is_ip = !addr_ec;
  const std::string& sni = options.server_name.empty() ? host : options.server_name;
  // RFC 6066 §3: no IP literals in SNI.
  if (!(is_ip && options.server_name.empty())) {
    if (SSL_set_tlsext_host_name(ssl, sni.c_str()) != 1)
      return {static_cast<int>(ERR_get_error()), boost::asio::error::get_ssl_category()};
  }
  if (options.insecure_skip_verify) return {};
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  int ok = 0;
  if (is_ip)
    ok = X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  else
    ok = X509_VERIFY_PARAM_set1_host(param, sni.c_str(), 0);
  if (ok != 1) return {static_cast<int>(ERR_get_error()), boost::asio::error::get_ssl_category()};
  return {};
}

error_code explain_handshake_failure(SSL* ssl, error_code ec) {
  if (!ec || !is_tls_verification_failure(ec) || ec.category() == tls_verify_category()) return ec;
  const long v = SSL_get_verify_result(ssl);
  if (v == X509_V_OK) return ec;
  return {static_cast<int>(v), tls_verify_category()};
}

}  // namespace tether::net::detail
