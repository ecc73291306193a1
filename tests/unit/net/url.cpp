#include <tether/net/detail/resolve.hpp>
#include <tether/net/url.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

using tether::net::parse_url;
using tether::net::scheme;

TEST_CASE("url: ws, wss, http, https with default ports", "[net][url]") {
  auto u = parse_url("ws://example.com/chat");
  REQUIRE(u);
  CHECK(u->scheme == scheme::ws);
  CHECK(u->host == "example.com");
  CHECK(u->port == 80);
  CHECK(u->target == "/chat");
  CHECK(!u->secure());
  CHECK(u->host_header() == "example.com");

  u = parse_url("wss://example.com");
  REQUIRE(u);
  CHECK(u->port == 443);
  CHECK(u->target == "/");
  CHECK(u->secure());

  u = parse_url("http://example.com:8080/a/b?x=1&y=2");
  REQUIRE(u);
  CHECK(u->port == 8080);
  CHECK(u->target == "/a/b?x=1&y=2");
  CHECK(u->host_header() == "example.com:8080");

  u = parse_url("HTTPS://Example.COM/");
  REQUIRE(u);
  CHECK(u->scheme == scheme::https);
  CHECK(u->port == 443);
}

TEST_CASE("url: IPv6 literals", "[net][url]") {
  auto u = parse_url("ws://[::1]:9000/x");
  REQUIRE(u);
  CHECK(u->host == "::1");
  CHECK(u->ipv6_literal);
  CHECK(u->port == 9000);
  CHECK(u->host_header() == "[::1]:9000");
  u = parse_url("http://[2001:db8::1]/");
  REQUIRE(u);
  CHECK(u->host_header() == "[2001:db8::1]");
}

TEST_CASE("url: errors name what is wrong", "[net][url]") {
  using tether::error;
  CHECK(parse_url("ftp://example.com/").error() == error::unsupported_scheme);
  CHECK(parse_url("mailto:a@b").error() == error::unsupported_scheme);
  CHECK(parse_url("not a url").error() == error::invalid_url);
  CHECK(parse_url("").error() == error::invalid_url);
  CHECK(parse_url("ws:///nohost").error() == error::invalid_url);
  CHECK(parse_url("ws://host:0/").error() == error::invalid_url);
  CHECK(parse_url("ws://host:70000/").error() == error::invalid_url);
  CHECK(parse_url("ws://user:pw@host/").error() == error::invalid_url);
  CHECK(parse_url("ws://host/#frag").error() == error::invalid_url);
  CHECK(parse_url("http://host/#frag").has_value());
  CHECK(parse_url("/relative").error() == error::invalid_url);
  // Found by fuzz_url: percent-encoded bytes in a host name are refused.
  CHECK(parse_url("wss://exam'oom=ss_1&a%ecct_soken=s").error() == error::invalid_url);
  CHECK(parse_url("ws://ex%41mple.com/").error() == error::invalid_url);
}

TEST_CASE("url: query parameters and redaction", "[net][url]") {
  auto u = parse_url("wss://h/path?room=1");
  REQUIRE(u);
  tether::net::append_query_parameter(*u, "access_token", "s3cr3t&x");
  CHECK(u->target == "/path?room=1&access_token=s3cr3t%26x");
  const auto red = u->redacted();
  CHECK(red.find("s3cr3t") == std::string::npos);
  CHECK(red.find("access_token=REDACTED") != std::string::npos);
  CHECK(red.find("room=1") != std::string::npos);
}

TEST_CASE("url: resolve a redirect Location", "[net][url]") {
  auto base = parse_url("http://h:8080/a/b?q=1");
  REQUIRE(base);
  auto r = tether::net::resolve_url(*base, "../c?z=2");
  REQUIRE(r);
  CHECK(r->target == "/c?z=2");
  CHECK(r->port == 8080);
  r = tether::net::resolve_url(*base, "https://other/x");
  REQUIRE(r);
  CHECK(r->host == "other");
  CHECK(r->port == 443);
}

TEST_CASE("url: a host that is an IP literal is connected to without a lookup", "[net][url]") {
  struct row {
    std::string url;
    std::string literal;  // the endpoint's address; "" for a host left to the resolver
  };
  const std::vector<row> rows = {
      {"ws://127.0.0.1:8080/", "127.0.0.1"},
      {"ws://[::1]:9/", "::1"},
      {"https://[2001:db8::7]/x", "2001:db8::7"},
      {"ws://localhost/", ""},
      {"http://example.com/", ""},
      {"http://1.2.3/", ""},       // getaddrinfo's short form: its reading stays the resolver's
      {"http://0x7f.0.0.1/", ""},  // likewise the hexadecimal one
      {"http://256.1.1.1/", ""},
  };
  for (const auto& r : rows) {
    INFO(r.url);
    const auto u = parse_url(r.url);
    REQUIRE(u);
    const auto ep = tether::net::detail::literal_endpoint(u->host, u->port);
    CHECK(ep.has_value() == !r.literal.empty());
    if (ep) {
      CHECK(ep->address().to_string() == r.literal);
      CHECK(ep->port() == u->port);
    }
  }
}

TEST_CASE("url: resolve gives a literal its own endpoint and a name what the resolver finds", "[net][url]") {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::resolver resolver(ioc);
  std::vector<std::string> literal, named;
  boost::system::error_code literal_ec, named_ec;
  boost::asio::co_spawn(ioc, [&]() -> boost::asio::awaitable<void> {
    const std::string ip = "127.0.0.1";
    const std::string name = "localhost";
    auto [ec1, r1] = co_await tether::net::detail::resolve(resolver, ip, 4000);
    literal_ec = ec1;
    for (const auto& e : r1) literal.push_back(e.endpoint().address().to_string() + " " + e.host_name());
    auto [ec2, r2] = co_await tether::net::detail::resolve(resolver, name, 4000);
    named_ec = ec2;
    for (const auto& e : r2) named.push_back(e.endpoint().address().to_string());
  }, boost::asio::detached);
  ioc.run_for(std::chrono::seconds(10));
  CHECK(!literal_ec);
  CHECK(literal == std::vector<std::string>{"127.0.0.1 127.0.0.1"});
  CHECK(!named_ec);
  REQUIRE(!named.empty());
  for (const auto& a : named) CHECK((a == "127.0.0.1" || a == "::1"));
}
