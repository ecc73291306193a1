// tether/net/tls.hpp: TLS client settings as plain data (the OpenSSL context is built inside
// the compiled part of the library, so this header pulls in no OpenSSL).
#pragma once

#include <string>

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
};

}  // namespace tether::net
