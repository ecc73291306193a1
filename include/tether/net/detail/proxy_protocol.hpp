// tether/net/detail/proxy_protocol.hpp: the bytes of an HTTP CONNECT and a SOCKS5 (RFC 1928,
// RFC 1929) tunnel request and the reading of the proxy's answers, sans-io (tested by tables);
// net/detail/proxy_tunnel.hpp moves them over a socket.
#pragma once

#include <tether/net/proxy.hpp>

#include <boost/system/result.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tether::net::detail {

/// Longest CONNECT response header block we read before calling the proxy broken.
constexpr std::size_t max_connect_response = std::size_t{16} * 1024;

/// "CONNECT host:port HTTP/1.1" with Host and, when the proxy has credentials, Basic
/// Proxy-Authorization (RFC 9110 §9.3.6, §11.7.1). IPv6 hosts are bracketed.
TETHER_DECL std::string connect_request(const proxy_config& p, std::string_view host, std::uint16_t port);

/// The proxy's answer to CONNECT: its status and the error it means (none for 2xx).
struct connect_answer {
  unsigned status = 0;
  error_code ec;
};
/// Reads a complete header block (ending in CRLF CRLF): 2xx opens the tunnel; 407 (and 401, which
/// tinyproxy sends for wrong credentials) is proxy_auth_required; another 4xx proxy_denied; 5xx proxy_failed; anything that is not an
/// HTTP/1.x status line proxy_protocol_error.
TETHER_DECL connect_answer parse_connect_response(std::string_view head);

/// The greeting: version 5 with "no authentication", plus "username/password" when the
/// proxy has credentials.
TETHER_DECL std::string socks5_greeting(const proxy_config& p);
/// The method the server chose (2 bytes). Sets `need_auth` for username/password. Errors:
/// proxy_auth_required when it accepts none of ours (0xFF), proxy_protocol_error otherwise.
TETHER_DECL error_code socks5_method(std::string_view reply, bool offered_auth, bool& need_auth);
/// RFC 1929 username/password request; invalid_argument when either is longer than 255 bytes.
TETHER_DECL boost::system::result<std::string> socks5_auth_request(const proxy_config& p);
/// RFC 1929 status (2 bytes): any status but 0 is proxy_auth_required.
TETHER_DECL error_code socks5_auth_reply(std::string_view reply);
/// CONNECT to `host` (an IPv4 or IPv6 literal is sent as an address, anything else as a
/// domain name of at most 255 bytes) and `port`.
TETHER_DECL boost::system::result<std::string> socks5_connect_request(std::string_view host, std::uint16_t port);
/// The first 5 bytes of the reply (VER REP RSV ATYP and the first address byte): how many
/// bytes of the reply remain (the rest of the bound address and the port). Errors: the
/// reply code in socks_category, or proxy_protocol_error.
TETHER_DECL boost::system::result<std::size_t> socks5_reply_rest(std::string_view head);

}  // namespace tether::net::detail
