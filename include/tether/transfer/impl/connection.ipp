// tether/transfer/impl/connection.ipp: request headers and error mapping for transfer connections.
#pragma once

#include <tether/net/log.hpp>
#include <tether/transfer/detail/connection.hpp>

namespace tether::transfer::detail {

namespace {
const boost::system::error_category& http_category() {
  return make_error_code(http::error::bad_content_length).category();
}
}  // namespace

error_code io_error(const run_context& cx, error_code ec) {
  if (ec == beast::error::timeout)
    return steady::now() >= cx.deadline() ? make_error_code(error::deadline_exceeded)
                                          : make_error_code(error::inactivity_timeout);
  if (ec == http::error::partial_message || ec == http::error::end_of_stream || ec == asio::error::eof)
    return make_error_code(error::short_body);
  if (ec.category() == http_category()) return make_error_code(error::protocol_error);
  return ec;
}

std::string describe(const error_code& raw, const error_code& mapped) {
  if (raw.category() == http_category() && mapped == error::protocol_error)
    return "malformed response (" + raw.message() + ")";
  return mapped.message();
}

void add_headers(http::fields& req, const net::endpoint_url& url, const record& r, bool same_origin) {
  req.set(http::field::host, url.host_header());
  req.set(http::field::user_agent, "tether/" TETHER_VERSION_STRING);
  for (const auto& [k, v] : r.headers) {
    // Credentials never follow a redirect to another origin.
    if (!same_origin && net::is_secret_header(k)) continue;
    req.set(k, v);
  }
}

std::string connect_failure(const std::optional<net::proxy_config>& proxy, const net::endpoint_url& url,
                            const error_code& ec) {
  if (proxy) return "cannot connect to proxy " + proxy->redacted() + " (for " + url.host_header() + "): " + ec.message();
  return "cannot connect to " + url.host_header() + ": " + ec.message();
}

std::string pin_failure(const net::endpoint_url& url, const error_code& ec, const std::string& chain_pins) {
  return "TLS with " + url.host_header() + ": " + ec.message() +
         (chain_pins.empty() ? std::string{} : " (the verified chain's pins: " + chain_pins + ")");
}

bool same_origin(const net::endpoint_url& a, const net::endpoint_url& b) noexcept {
  return a.scheme == b.scheme && a.host == b.host && a.port == b.port;
}

std::string field(const http::fields& h, http::field f) {
  auto it = h.find(f);
  return it == h.end() ? std::string{} : std::string(it->value());
}

std::string field(const http::fields& h, std::string_view name) {
  auto it = h.find(name);
  return it == h.end() ? std::string{} : std::string(it->value());
}

std::optional<std::string> field_if(const http::fields& h, std::string_view name) {
  auto it = h.find(name);
  if (it == h.end()) return std::nullopt;
  return std::string(it->value());
}

std::string origin_key(const net::endpoint_url& url, const std::optional<net::proxy_config>& proxy) {
  std::string key = std::string(url.secure() ? "https://" : "http://") + url.host_header();
  if (proxy) {
    // The credentials distinguish tunnels too (they never leave this key).
    key += " via " + proxy->redacted() + " as " + proxy->username + ":" + proxy->password;
  }
  return key;
}

asio::awaitable<attempt_end> open_connection(run_context& cx, const net::endpoint_url& url,
                                             const std::optional<net::proxy_config>& proxy, const std::string& origin,
                                             pooled_connection& c, std::function<void()>& interrupt) {
  attempt_end end;
  auto& tcp = c.plain;
  asio::ip::tcp::resolver resolver(cx.ioc);
  interrupt = [&] {
    resolver.cancel();
    tcp.cancel();
  };
  tcp.expires_after(std::min(std::chrono::duration_cast<steady::duration>(cx.opts.connect_timeout),
                             cx.deadline() - steady::now()));
  const std::string hop = net::detail::first_hop_host(proxy, url);
  const std::uint16_t hop_port = net::detail::first_hop_port(proxy, url);
  auto [rec, endpoints] = co_await net::detail::resolve(resolver, hop, hop_port);
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
    auto tec = cx.tls.ready();
    if (!tec) tec = co_await net::detail::start_tls_relay(sock, cx.tls.context(), *proxy, cx.opts.tls, limit);
    if (tec) {
      end.ec = tec;
      end.message = "TLS with proxy " + proxy->redacted() + ": " + tec.message();
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
      co_return end;
    }
  }
  if (rec) {
    end.ec = rec == beast::error::timeout ? make_error_code(error::connect_timeout) : rec;
    end.message = connect_failure(proxy, url, end.ec);
    co_return end;
  }
  cx.opened();
  error_code ig;
  tcp.socket().set_option(asio::ip::tcp::no_delay(true), ig);
  if (cx.opts.receive_buffer_bytes)
    tcp.socket().set_option(asio::socket_base::receive_buffer_size(static_cast<int>(cx.opts.receive_buffer_bytes)), ig);
  if (!url.secure()) co_return end;
  if (auto lec = cx.tls.ready()) {
    end.ec = lec;
    end.local = true;
    end.message = "cannot load the system's trusted certificates: " + lec.message();
    co_return end;
  }
  auto& tls_stream = c.tls.emplace(std::move(c.plain), cx.tls.context());
  auto& lowest = tls_stream.next_layer();
  interrupt = [&lowest] { lowest.cancel(); };
  if (auto ec = net::detail::prepare_client_stream(tls_stream.native_handle(), url.host, cx.opts.tls)) {
    end.ec = ec;
    end.message = "TLS setup for " + url.host + ": " + ec.message();
    co_return end;
  }
  // Resumption skips the certificate exchange, and with it what pins are checked against.
  SSL_SESSION* offered = cx.opts.tls.pinned_public_keys.empty() ? cx.pool.session(origin) : nullptr;
  if (offered) SSL_set_session(tls_stream.native_handle(), offered);
  lowest.expires_after(cx.opts.connect_timeout);
  auto [hec] = co_await tls_stream.async_handshake(asio::ssl::stream_base::client, nothrow);
  if (hec) {
    if (offered) cx.pool.forget(origin);
    end.ec = hec == beast::error::timeout ? make_error_code(error::handshake_timeout)
                                          : net::detail::explain_handshake_failure(tls_stream.native_handle(), hec);
    end.message = "TLS handshake with " + url.host_header() + ": " + end.ec.message();
    co_return end;
  }
  if (SSL_session_reused(tls_stream.native_handle())) cx.resumed();
  std::string chain_pins;
  if (auto pec = net::detail::check_pins(tls_stream.native_handle(), cx.opts.tls, chain_pins)) {
    end.ec = pec;
    end.message = pin_failure(url, pec, chain_pins);
    co_return end;
  }
  co_return end;
}

}  // namespace tether::transfer::detail
