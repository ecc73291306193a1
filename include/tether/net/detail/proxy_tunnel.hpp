// tether/net/detail/proxy_tunnel.hpp: opens a tunnel to host:port through a proxy on a
// connected stream (an HTTP CONNECT or a SOCKS5 exchange). The caller bounds the time (its
// stream's timeout or a timer that closes the socket). Private to the compiled part.
#pragma once

#include <tether/net/detail/proxy_protocol.hpp>
#include <tether/net/detail/resolve.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <optional>
#include <string>

namespace tether::net::detail {

/// What opening a tunnel gave: an error, and for an HTTP proxy's refusal its status.
struct tunnel_result {
  error_code ec;
  unsigned status = 0;
};

/// Writes `bytes` then reads exactly `n` bytes into `out`.
template <class Stream>
boost::asio::awaitable<error_code> exchange(Stream& s, const std::string& bytes, std::string& out, std::size_t n) {
  constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);
  if (!bytes.empty()) {
    auto [wec, wn] = co_await boost::asio::async_write(s, boost::asio::buffer(bytes), nothrow);
    if (wec) co_return wec;
  }
  out.assign(n, '\0');
  auto [rec, rn] = co_await boost::asio::async_read(s, boost::asio::buffer(out), nothrow);
  co_return rec;
}

/// The host and port the socket connects to: the proxy's when there is one, else the URL's.
inline std::string first_hop_host(const std::optional<proxy_config>& p, const endpoint_url& url) {
  return p ? p->host : url.host;
}
inline std::uint16_t first_hop_port(const std::optional<proxy_config>& p, const endpoint_url& url) {
  return p ? p->port : url.port;
}

/// Over `s`, connected to the proxy: a tunnel to host:port. `socks5` resolves the name here
/// (the first address) and sends the address; the other kinds send the name.
template <class Stream>
boost::asio::awaitable<tunnel_result> open_tunnel(Stream& s, const proxy_config& p, std::string host,
                                                  std::uint16_t port) {
  constexpr auto nothrow = boost::asio::as_tuple(boost::asio::use_awaitable);
  tunnel_result r;
  std::string in;
  if (p.kind == proxy_kind::socks5) {
    if (!literal_endpoint(host, port)) {
      boost::asio::ip::tcp::resolver resolver(s.get_executor());
      auto [dec, results] = co_await resolve(resolver, host, port);
      if (dec || results.empty()) {
        r.ec = dec ? dec : make_error_code(boost::asio::error::host_not_found);
        co_return r;
      }
      host = results.begin()->endpoint().address().to_string();
    }
  }
  if (p.is_http()) {
    const std::string req = connect_request(p, host, port);
    auto [wec, wn] = co_await boost::asio::async_write(s, boost::asio::buffer(req), nothrow);
    if (wec) {
      r.ec = wec;
      co_return r;
    }
    // Byte by byte up to the blank line: nothing of the tunnel's own bytes is read here.
    char ch = 0;
    while (in.size() < max_connect_response && (in.size() < 4 || in.compare(in.size() - 4, 4, "\r\n\r\n") != 0)) {
      auto [rec, rn] = co_await boost::asio::async_read(s, boost::asio::buffer(&ch, 1), nothrow);
      if (rec) {
        r.ec = in.empty() ? rec : make_error_code(error::proxy_protocol_error);
        co_return r;
      }
      in.push_back(ch);
    }
    const auto a = parse_connect_response(in);
    r.ec = a.ec;
    r.status = a.status;
    co_return r;
  }
  // SOCKS5: greeting, optional RFC 1929 authentication, CONNECT.
  bool need_auth = false;
  const std::string greeting = socks5_greeting(p);
  if ((r.ec = co_await exchange(s, greeting, in, 2))) co_return r;
  if ((r.ec = socks5_method(in, p.has_credentials(), need_auth))) co_return r;
  if (need_auth) {
    auto auth = socks5_auth_request(p);
    if (!auth) {
      r.ec = auth.error();
      co_return r;
    }
    if ((r.ec = co_await exchange(s, *auth, in, 2))) co_return r;
    if ((r.ec = socks5_auth_reply(in))) co_return r;
  }
  auto req = socks5_connect_request(host, port);
  if (!req) {
    r.ec = req.error();
    co_return r;
  }
  if ((r.ec = co_await exchange(s, *req, in, 5))) co_return r;
  auto rest = socks5_reply_rest(in);
  if (!rest) {
    r.ec = rest.error();
    co_return r;
  }
  const std::string none;
  r.ec = co_await exchange(s, none, in, *rest);
  co_return r;
}

}  // namespace tether::net::detail
