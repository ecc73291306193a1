// tether/net/detail/base64.hpp: padded base64 (RFC 4648 §4) through OpenSSL, for header values
// (Sec-WebSocket-Key/Accept, tus Upload-Metadata and Upload-Checksum).
#pragma once

#include <openssl/evp.h>

#include <string>
#include <string_view>

namespace tether::net::detail {

inline std::string base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(in.data()),
                  static_cast<int>(in.size()));
  return out;
}

}  // namespace tether::net::detail
