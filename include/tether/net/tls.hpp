// tether/net/tls.hpp: TLS client settings as plain data (the OpenSSL context is built inside
// the compiled part of the library, so this header pulls in no OpenSSL).
#pragma once

#include <tether/net/error.hpp>

#include <boost/system/result.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace tether::net {

/// TLS client settings. The defaults verify the peer against the system CA store and check
/// the host name: a connection to a server whose certificate does not chain to a trusted CA
/// or does not name the host fails with a TLS verification error.
struct tls_options {
  /// Extra trust anchors: a PEM file and/or a directory of hashed certificates. When either
  /// is set, the system store is still used too unless `use_system_store` is false.
  /// Default: none.
  std::string ca_file;
  std::string ca_dir;
  /// Trust the system's CA store (default true).
  bool use_system_store = true;
  /// Server Name Indication override (default: the URL's host, unless it is an IP literal).
  std::string server_name;
  /// Turns off certificate AND host name verification (default false). For tests against
  /// self-signed servers only; a log line at warn level says so on every connection.
  bool insecure_skip_verify = false;
  /// Public key pins: the SHA-256 of a certificate's DER SubjectPublicKeyInfo in base64,
  /// written `sha256//BASE64` (curl) or `sha256/BASE64` (OkHttp). When any is set, a
  /// connection also needs a certificate of the *verified* chain (leaf, intermediate or
  /// anchor; never extra certificates the peer sent) whose key is one of them; else it fails
  /// with error::pin_mismatch, which is not retried. Give several for key rotation. With
  /// insecure_skip_verify there is no verified chain and the leaf's key must match. A malformed
  /// pin fails every connection with error::invalid_argument. Default: none.
  std::vector<std::string> pinned_public_keys;
};

/// The 32 bytes a pin stands for, or error::invalid_argument when `pin` is not
/// `sha256//BASE64` or `sha256/BASE64` of 32 bytes.
TETHER_DECL boost::system::result<std::string> parse_pin(std::string_view pin);

/// The pin (`sha256//BASE64`) of the first certificate in a PEM file, the value to give
/// pinned_public_keys. Errors: the file cannot be read or holds no certificate.
TETHER_DECL boost::system::result<std::string> public_key_pin_of_pem_file(const std::string& path);

}  // namespace tether::net
