// tether/net/detail/resolve.hpp: a host and port to the endpoints a connection tries. An IP
// literal needs no lookup: its endpoint is made here. Asio's resolver runs every lookup on a
// thread of its own (started on an event loop's first lookup), so a literal through it costs
// two thread hand-offs per connection, and the thread's start on the first. Private to the
// compiled part.
#pragma once

#include <tether/net/error.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>

namespace tether::net::detail {

/// The endpoint of an IP literal (IPv4 dotted quad, or IPv6 bare, with an optional %scope);
/// nullopt for anything else, a name or a form only getaddrinfo reads ("1.2.3", "0x7f.1"),
/// which stays the resolver's.
inline std::optional<boost::asio::ip::tcp::endpoint> literal_endpoint(const std::string& host, std::uint16_t port) {
  error_code ec;
  const auto address = boost::asio::ip::make_address(host, ec);
  if (ec) return std::nullopt;
  return boost::asio::ip::tcp::endpoint(address, port);
}

/// The endpoints for host:port: a literal's own, else the resolver's answer.
inline boost::asio::awaitable<std::tuple<error_code, boost::asio::ip::tcp::resolver::results_type>> resolve(
    boost::asio::ip::tcp::resolver& resolver, const std::string& host, std::uint16_t port) {
  using results = boost::asio::ip::tcp::resolver::results_type;
  const std::string service = std::to_string(port);
  if (const auto ep = literal_endpoint(host, port)) co_return std::make_tuple(error_code{}, results::create(*ep, host, service));
  auto [ec, found] = co_await resolver.async_resolve(host, service, boost::asio::as_tuple(boost::asio::use_awaitable));
  co_return std::make_tuple(ec, std::move(found));
}

}  // namespace tether::net::detail
