// tether/transfer/detail/connection.hpp: one HTTP(S) connection for a run: resolve, connect
// and TLS within the timeouts and the deadline, the inactivity timer, request headers, and the
// mapping of Beast's errors to tether's. Private to the compiled part (it includes Beast).
#pragma once

#include <tether/net/detail/proxy_tunnel.hpp>
#include <tether/net/detail/tls_context.hpp>
#include <tether/net/detail/tls_relay.hpp>
#include <tether/net/url.hpp>
#include <tether/transfer/detail/run_context.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/fields.hpp>

namespace tether::transfer::detail {

namespace beast = boost::beast;
namespace http = beast::http;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
/// The read and write buffer of one transfer.
constexpr std::size_t io_chunk = 1u << 20;

/// Arms the inactivity timer for the next operation (bounded by the deadline too).
inline void arm(run_context& cx, beast::tcp_stream& tcp) {
  tcp.expires_after(std::min(std::chrono::duration_cast<steady::duration>(cx.opts.read_inactivity_timeout),
                             cx.deadline() - steady::now()));
}

/// Beast's and Asio's errors as a transfer reports them.
TETHER_DECL error_code io_error(const run_context& cx, error_code ec);
/// The text for an I/O failure: Beast's parse errors keep their precise wording.
TETHER_DECL std::string describe(const error_code& raw, const error_code& mapped);
/// Host, User-Agent and the request's own headers (credentials only to the first origin).
TETHER_DECL void add_headers(http::fields& req, const net::endpoint_url& url, const record& r, bool same_origin);
TETHER_DECL bool same_origin(const net::endpoint_url& a, const net::endpoint_url& b) noexcept;
/// A header's value, or "".
TETHER_DECL std::string field(const http::fields& h, http::field f);
TETHER_DECL std::string field(const http::fields& h, std::string_view name);
/// A header's value, or nothing when it is absent.
TETHER_DECL std::optional<std::string> field_if(const http::fields& h, std::string_view name);

/// Resolves, connects (bounded by connect_timeout and the deadline) and, for https, runs the
/// TLS handshake; then `co_await use(stream, tcp)` with a plain or TLS stream.
/// The verb of an error message for a failed connect: "cannot connect to HOST" or, through a
/// proxy, "cannot connect to proxy socks5://p:1080 (for HOST)".
TETHER_DECL std::string connect_failure(const std::optional<net::proxy_config>& proxy, const net::endpoint_url& url,
                                        const error_code& ec);
/// The message of a pin mismatch: the error and the verified chain's own pins.
TETHER_DECL std::string pin_failure(const net::endpoint_url& url, const error_code& ec, const std::string& chain_pins);

/// Resolves, connects (bounded by connect_timeout and the deadline), opens the proxy's tunnel
/// when there is one and, for https, runs the TLS handshake (SNI and verification for the
/// URL's host) and checks the pins; then `co_await use(stream, tcp)` with a plain or TLS stream.
/// `interrupt` is where it leaves what aborts its current wait (the transfer's own by default;
/// a segmented download gives each connection its own).
template <class Use>
asio::awaitable<attempt_end> with_connection(run_context& cx, const net::endpoint_url& url,
                                             std::function<void()>& interrupt, Use&& use) {
  attempt_end end;
  auto chosen = net::choose_proxy(cx.opts.proxy, url);
  if (!chosen) {
    end.ec = chosen.error();
    end.message = "invalid proxy URL (options.proxy or the environment's proxy variables): " + end.ec.message();
    co_return end;
  }
  const std::optional<net::proxy_config> proxy = *chosen;
  beast::tcp_stream tcp(cx.ioc);
  asio::ip::tcp::resolver resolver(cx.ioc);
  interrupt = [&] {
    resolver.cancel();
    tcp.cancel();
  };
  tcp.expires_after(std::min(std::chrono::duration_cast<steady::duration>(cx.opts.connect_timeout),
                             cx.deadline() - steady::now()));
  const std::string hop = net::detail::first_hop_host(proxy, url);
  const std::string service = std::to_string(net::detail::first_hop_port(proxy, url));
  auto [rec, endpoints] = co_await resolver.async_resolve(hop, service, nothrow);
  if (!rec) {
    auto [cec, ep] = co_await tcp.async_connect(endpoints, nothrow);
    rec = cec;
  }
  if (!rec && proxy && proxy->kind == net::proxy_kind::https) {
    // TLS with the proxy through a relay (net/detail/tls_relay.hpp): closing the socket ends it.
    auto& sock = tcp.socket();
    interrupt = [&sock] {
      error_code ig;
      sock.close(ig);
    };
    const steady::duration limit = std::min(std::chrono::duration_cast<steady::duration>(cx.opts.connect_timeout),
                                            cx.deadline() - steady::now());
    if (auto tec = co_await net::detail::start_tls_relay(sock, cx.tls, *proxy, cx.opts.tls, limit)) {
      end.ec = tec;
      end.message = "TLS with proxy " + proxy->redacted() + ": " + tec.message();
      interrupt = nullptr;
      co_return end;
    }
  }
  if (!rec && proxy) {
    const std::string origin_host = url.host;
    const auto tunnel = co_await net::detail::open_tunnel(tcp, *proxy, origin_host, url.port);
    if (tunnel.ec) {
      end.ec = tunnel.ec == beast::error::timeout ? make_error_code(error::connect_timeout) : tunnel.ec;
      end.message = "proxy " + proxy->redacted() + " gave no tunnel to " + url.host_header() + ": " +
                    end.ec.message() + (tunnel.status ? " (HTTP " + std::to_string(tunnel.status) + ")" : "");
      interrupt = nullptr;
      co_return end;
    }
  }
  if (rec) {
    end.ec = rec == beast::error::timeout ? make_error_code(error::connect_timeout) : rec;
    end.message = connect_failure(proxy, url, end.ec);
    interrupt = nullptr;
    co_return end;
  }
  error_code ig;
  tcp.socket().set_option(asio::ip::tcp::no_delay(true), ig);
  if (cx.opts.receive_buffer_bytes)
    tcp.socket().set_option(asio::socket_base::receive_buffer_size(static_cast<int>(cx.opts.receive_buffer_bytes)), ig);
  if (!url.secure()) {
    co_return co_await use(tcp, tcp);
  }
  asio::ssl::stream<beast::tcp_stream> tls_stream(std::move(tcp), cx.tls);
  auto& lowest = tls_stream.next_layer();
  interrupt = [&lowest] { lowest.cancel(); };
  if (auto ec = net::detail::prepare_client_stream(tls_stream.native_handle(), url.host, cx.opts.tls)) {
    end.ec = ec;
    end.message = "TLS setup for " + url.host + ": " + ec.message();
    co_return end;
  }
  lowest.expires_after(cx.opts.connect_timeout);
  auto [hec] = co_await tls_stream.async_handshake(asio::ssl::stream_base::client, nothrow);
  if (hec) {
    end.ec = hec == beast::error::timeout ? make_error_code(error::handshake_timeout)
                                          : net::detail::explain_handshake_failure(tls_stream.native_handle(), hec);
    end.message = "TLS handshake with " + url.host_header() + ": " + end.ec.message();
    co_return end;
  }
  std::string chain_pins;
  if (auto pec = net::detail::check_pins(tls_stream.native_handle(), cx.opts.tls, chain_pins)) {
    end.ec = pec;
    end.message = pin_failure(url, pec, chain_pins);
    co_return end;
  }
  end = co_await use(tls_stream, lowest);
  if (end.drop) co_return end;
  // A polite TLS close, bounded; the transfer's data is already safe.
  lowest.expires_after(std::chrono::seconds{1});
  co_await tls_stream.async_shutdown(nothrow);
  co_return end;
}

template <class Use>
asio::awaitable<attempt_end> with_connection(run_context& cx, const net::endpoint_url& url, Use&& use) {
  return with_connection(cx, url, cx.j.interrupt, std::forward<Use>(use));
}

}  // namespace tether::transfer::detail
