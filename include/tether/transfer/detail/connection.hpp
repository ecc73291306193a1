// tether/transfer/detail/connection.hpp: one HTTP(S) connection for a run: resolve, connect
// and TLS within the timeouts and the deadline, the inactivity timer, request headers, and the
// mapping of Beast's errors to tether's. Private to the compiled part (it includes Beast).
#pragma once

#include <tether/net/detail/proxy_tunnel.hpp>
#include <tether/net/detail/tls_context.hpp>
#include <tether/net/detail/tls_relay.hpp>
#include <tether/net/url.hpp>
#include <tether/transfer/detail/connection_pool.hpp>
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

/// The pool's key for a request to `url` through `proxy`: connections (and TLS sessions) are
/// shared only by requests that would have made the same one.
TETHER_DECL std::string origin_key(const net::endpoint_url& url, const std::optional<net::proxy_config>& proxy);

/// Resolves, connects (bounded by connect_timeout and the deadline), opens the proxy's tunnel
/// when there is one and, for https, runs the TLS handshake (SNI and verification for the
/// URL's host, offering the origin's last TLS session unless pins are set) and checks the pins,
/// all into `c`. Errors as the attempt's end.
TETHER_DECL asio::awaitable<attempt_end> open_connection(run_context& cx, const net::endpoint_url& url,
                                                         const std::optional<net::proxy_config>& proxy,
                                                         const std::string& origin, pooled_connection& c,
                                                         std::function<void()>& interrupt);

/// Takes an idle connection to the URL's origin from the manager's pool, or opens one
/// (open_connection); then `co_await use(stream, tcp)` with a plain or TLS stream. When `use`
/// ends with `reusable` (its response read to the end, keep-alive) the connection goes back to
/// the pool; otherwise it is closed (politely for TLS unless `drop`). `interrupt` is where it
/// leaves what aborts its current wait (the transfer's own by default; a segmented download
/// gives each connection its own).
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
  const auto origin = origin_key(url, proxy);
  auto c = cx.pool.take(origin);
  if (c) {
    cx.reused();
  } else {
    c = std::make_unique<pooled_connection>(cx.ioc);
    end = co_await open_connection(cx, url, proxy, origin, *c, interrupt);
    if (end.ec) {
      interrupt = nullptr;
      co_return end;
    }
  }
  auto& lowest = c->lowest();
  interrupt = [&lowest] { lowest.cancel(); };
  if (c->tls)
    end = co_await use(*c->tls, lowest);
  else
    end = co_await use(c->plain, lowest);
  interrupt = nullptr;
  if (c->tls && !cx.opts.tls.insecure_skip_verify) cx.pool.remember(origin, c->tls->native_handle());
  if (end.reusable && !cx.stopped()) {
    cx.pool.put(origin, std::move(c));
    co_return end;
  }
  if (c->tls && !end.drop) {
    // A polite TLS close, bounded; the transfer's data is already safe.
    lowest.expires_after(std::chrono::seconds{1});
    co_await c->tls->async_shutdown(nothrow);
  }
  co_return end;
}

template <class Use>
asio::awaitable<attempt_end> with_connection(run_context& cx, const net::endpoint_url& url, Use&& use) {
  return with_connection(cx, url, cx.j.interrupt, std::forward<Use>(use));
}

}  // namespace tether::transfer::detail
