// tether/net/detail/tls_relay.hpp: TLS to an https:// proxy, as a relay. The connection's
// socket, connected to the proxy, is handed to a relay that runs TLS with the proxy and gets
// one end of a local socket pair in exchange; the relay copies bytes between the pair's other
// end and the TLS stream. The CONNECT request, and TLS to the server when there is one, then
// run over the pair exactly as over a plain proxy's socket.
//
// Why a relay rather than a TLS stream inside a TLS stream: each half keeps one stream type
// (Beast's websocket::stream<transport> and the transfer bodies are instantiated once, not
// again for TLS-in-TLS), at the cost, on https:// proxies only, of one more copy of each byte
// through the kernel. Private to the compiled part.
#pragma once

#include <tether/net/error.hpp>
#include <tether/net/proxy.hpp>
#include <tether/net/tls.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <cstddef>

namespace tether::net::detail {

/// The relay's buffer for each direction.
constexpr std::size_t tls_relay_chunk = std::size_t{64} * 1024;

/// `s` is connected to `proxy` (an https:// proxy). Runs the TLS handshake with the proxy
/// within `timeout`, with SNI and verification for the proxy's host and `tls`'s trust settings
/// (CA file and directory, system store, insecure_skip_verify; the pins and server_name are
/// the server's, not the proxy's), and on success leaves in `s` the relay's local end.
/// Closing `s` ends the relay, during the handshake too (a watchdog that closes the socket
/// works as before). When the proxy ends the stream, `s` reads the end of the stream after the
/// last byte. Errors: connect_timeout, a TLS verification error (tls_verify_category), or the
/// handshake's own; `s` is then closed.
TETHER_DECL boost::asio::awaitable<error_code> start_tls_relay(boost::asio::ip::tcp::socket& s,
                                                               boost::asio::ssl::context& ctx,
                                                               const proxy_config& proxy, const tls_options& tls,
                                                               std::chrono::steady_clock::duration timeout);

}  // namespace tether::net::detail
