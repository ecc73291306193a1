// tether/net/impl/tls.ipp: the OpenSSL client context and stream setup behind tls_options.
#pragma once

#include <tether/net/detail/tls_context.hpp>

#include <boost/asio/ip/address.hpp>

#include <tether/net/detail/base64.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <algorithm>
#include <cerrno>
#include <memory>
#include <vector>

namespace tether::net {

boost::system::result<std::string> parse_pin(std::string_view pin) {
  // 32 bytes are 44 base64 characters, and base64 may begin with '/': "sha256//" followed by
  // 43 characters is the OkHttp spelling of a value that begins with '/', so the spelling is
  // told by the length, not by the second slash.
  if (pin.substr(0, 7) != "sha256/") return make_error_code(error::invalid_argument);
  const std::string_view b64 = pin.size() == 8 + 44 && pin[7] == '/' ? pin.substr(8) : pin.substr(7);
  // One '=' of padding.
  if (b64.size() != 44 || b64[43] != '=' || b64[42] == '=') return make_error_code(error::invalid_argument);
  unsigned char raw[33];
  if (EVP_DecodeBlock(raw, reinterpret_cast<const unsigned char*>(b64.data()), 44) != 33)
    return make_error_code(error::invalid_argument);
  return std::string(reinterpret_cast<const char*>(raw), 32);
}

namespace detail {
// SHA-256 of the certificate's DER SubjectPublicKeyInfo (RFC 7469 §2.4), raw.
inline std::string spki_sha256(X509* cert) {
  unsigned char* der = nullptr;
  const int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (n <= 0) return {};
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(der, static_cast<std::size_t>(n), digest);
  OPENSSL_free(der);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}
}  // namespace detail

boost::system::result<std::string> public_key_pin_of_pem_file(const std::string& path) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(path.c_str(), "r"), &BIO_free);
  if (!bio) return error_code(errno ? errno : ENOENT, boost::system::generic_category());
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!cert) return make_error_code(error::invalid_argument);
  return "sha256//" + detail::base64(detail::spki_sha256(cert.get()));
}

}  // namespace tether::net

namespace tether::net::detail {

boost::system::result<std::shared_ptr<boost::asio::ssl::context>> make_client_context(
    const tls_options& options, bool defer_system_store) {
  namespace ssl = boost::asio::ssl;
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                   ec);
  if (ec) return ec;
  for (const auto& pin : options.pinned_public_keys)
    if (!parse_pin(pin)) return make_error_code(error::invalid_argument);
  if (options.insecure_skip_verify) {
    ctx->set_verify_mode(ssl::verify_none, ec);
    if (ec) return ec;
    return ctx;
  }
  ctx->set_verify_mode(ssl::verify_peer, ec);
  if (ec) return ec;
  if (options.use_system_store && !defer_system_store) {
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

boost::system::result<std::shared_ptr<client_tls>> client_tls::make(const tls_options& options) {
  auto ctx = make_client_context(options, true);
  if (!ctx) return ctx.error();
  auto t = std::make_shared<client_tls>();
  t->ctx_ = std::move(*ctx);
  t->system_store_ = options.use_system_store && !options.insecure_skip_verify;
  return t;
}

error_code client_tls::ready() {
  std::call_once(once_, [this] {
    if (system_store_) ctx_->set_default_verify_paths(error_);
  });
  return error_;
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

error_code check_pins(SSL* ssl, const tls_options& options, std::string& chain_pins) {
  if (options.pinned_public_keys.empty()) return {};
  std::vector<std::string> wanted;
  for (const auto& pin : options.pinned_public_keys) {
    auto raw = parse_pin(pin);
    if (!raw) return raw.error();
    wanted.push_back(std::move(*raw));
  }
  std::vector<X509*> chain;
  if (options.insecure_skip_verify) {
    if (X509* leaf = SSL_get0_peer_certificate(ssl)) chain.push_back(leaf);
  } else if (STACK_OF(X509)* verified = SSL_get0_verified_chain(ssl)) {
    // The chain OpenSSL built and verified, from the leaf to the trust anchor; certificates
    // the peer sent that are not part of it never count.
    for (int i = 0; i < sk_X509_num(verified); ++i) chain.push_back(sk_X509_value(verified, i));
  }
  chain_pins.clear();
  for (X509* cert : chain) {
    const auto digest = spki_sha256(cert);
    if (std::find(wanted.begin(), wanted.end(), digest) != wanted.end()) return {};
    chain_pins += (chain_pins.empty() ? "sha256//" : ", sha256//") + base64(digest);
  }
  return make_error_code(error::pin_mismatch);
}

error_code explain_handshake_failure(SSL* ssl, error_code ec) {
  if (!ec || !is_tls_verification_failure(ec) || ec.category() == tls_verify_category()) return ec;
  const long v = SSL_get_verify_result(ssl);
  if (v == X509_V_OK) return ec;
  return {static_cast<int>(v), tls_verify_category()};
}

}  // namespace tether::net::detail
