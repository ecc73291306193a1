// tether/net/tls.hpp: TLS client settings and the verified-by-default client context.
#pragma once

#include <tether/net/error.hpp>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/result.hpp>

#include <memory>
#include <string>

namespace tether::net {

/// TLS client settings. The defaults verify the peer against the system CA store and check
/// the host name: a connection to a server whose certificate does not chain to a trusted CA
/// or does not name the host fails with a TLS verification error.
struct tls_options {
  /// Extra trust anchors: a PEM file and/or a directory of hashed certificates. When either
  /// is set, the system store is still used too unless `use_system_store` is false.
  std::string ca_file;
  std::string ca_dir;
  bool use_system_store = true;
  /// Server Name Indication override (default: the URL's host, unless it is an IP literal).
  std::string server_name;
  /// Turns off certificate AND host name verification. For tests against self-signed servers
  /// only; a log line at warn level says so on every connection.
  bool insecure_skip_verify = false;
};

/// A client context with the settings above (TLS 1.2 minimum). Errors name the file that
/// failed to load.
TETHER_DECL boost::system::result<std::shared_ptr<boost::asio::ssl::context>> make_client_context(
    const tls_options& options);

/// Prepares `ssl` (an SSL* of a stream about to handshake) for `host`: SNI unless the host is
/// an IP literal, and host name (or IP) verification unless verification is off.
TETHER_DECL error_code prepare_client_stream(void* ssl, const std::string& host,
                                             const tls_options& options);

}  // namespace tether::net
