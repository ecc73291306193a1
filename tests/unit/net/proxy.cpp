// Proxy selection and the proxy protocols' bytes, by tables: no_proxy as curl documents it,
// the environment variables as curl reads them, CONNECT and SOCKS5 requests and answers, pins.
#include <catch2/catch.hpp>

#include <tether/net/detail/proxy_protocol.hpp>
#include <tether/net/proxy.hpp>
#include <tether/net/tls.hpp>

#include <map>

using namespace tether;

namespace {
net::env_reader env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}
net::endpoint_url url_of(const char* text) { return net::parse_url(text).value(); }
std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}
}  // namespace

TEST_CASE("proxy: no_proxy matching, case by case as curl documents it", "[net][proxy]") {
  struct row {
    const char* list;
    const char* host;
    bool match;
  };
  const row rows[] = {
      // Names: the host itself or a domain that contains it, at a label boundary.
      {"example.com", "example.com", true},
      {"example.com", "www.example.com", true},
      {"example.com", "a.b.example.com", true},
      {"example.com", "nonexample.com", false},
      {"example.com", "example.com.evil", false},
      {"www.example.com", "example.com", false},
      {".example.com", "www.example.com", true},
      {".example.com", "example.com", true},  // leading dots ignored
      {"..example.com", "example.com", true},
      {"example.com.", "www.example.com", true},  // a trailing dot of either is ignored
      {"example.com", "www.example.com.", true},
      {"EXAMPLE.com", "www.Example.COM", true},  // case-insensitive
      {"local.com", "local.com", true},
      {"local.com", "www.notlocal.com", false},
      // Lists: commas and/or white space between entries.
      {"a.test,example.com", "www.example.com", true},
      {"a.test, example.com", "www.example.com", true},
      {"a.test example.com", "www.example.com", true},
      {" a.test ,\texample.com ", "example.com", true},
      {"a.test,b.test", "example.com", false},
      {",,", "example.com", false},
      {"", "example.com", false},
      // '*' only as the whole value.
      {"*", "anything.example", true},
      {" * ", "anything.example", true},
      {"*,a.test", "anything.example", false},
      {"*.example.com", "www.example.com", false},
      // IP literals: the same address, or a CIDR range holding it; names never match IPs.
      {"192.168.0.1", "192.168.0.1", true},
      {"192.168.0.1", "192.168.0.2", false},
      {"192.168.0.0/16", "192.168.10.1", true},
      {"192.168.0.0/16", "192.169.0.1", false},
      {"10.0.0.0/8", "10.255.1.2", true},
      {"0.0.0.0/0", "8.8.8.8", true},
      {"192.168.0.0/33", "192.168.0.1", false},
      {"192.168.0.0/x", "192.168.0.1", false},
      {"127.0.0.1", "localhost", false},
      {"localhost", "127.0.0.1", false},
      {"168.0.1", "192.168.0.1", false},  // no tail match for addresses
      {"::1", "::1", true},
      {"::1", "[::1]", true},
      {"[::1]", "::1", true},
      {"fe80::/10", "fe80::1234", true},
      {"fe80::/10", "fec0::1", false},
      {"2001:db8::/32", "2001:db8:1::5", true},
      {"::1/128", "::2", false},
      {"192.168.0.0/16", "::ffff:192.168.0.1", false},  // families never mix
  };
  for (const auto& r : rows) {
    INFO("no_proxy='" << r.list << "' host='" << r.host << "'");
    CHECK(net::no_proxy_matches(r.list, r.host) == r.match);
  }
}

TEST_CASE("proxy: the environment as curl reads it", "[net][proxy]") {
  struct row {
    std::map<std::string, std::string> env;
    net::scheme scheme;
    std::optional<std::string> expected;
  };
  const row rows[] = {
      {{}, net::scheme::http, std::nullopt},
      {{{"http_proxy", "h:1"}}, net::scheme::http, "h:1"},
      // HTTP_PROXY (uppercase) is never read: a CGI program gets it from a request header.
      {{{"HTTP_PROXY", "evil:1"}}, net::scheme::http, std::nullopt},
      {{{"https_proxy", "s:1"}, {"HTTPS_PROXY", "S:1"}}, net::scheme::https, "s:1"},
      {{{"HTTPS_PROXY", "S:1"}}, net::scheme::https, "S:1"},
      {{{"https_proxy", ""}, {"HTTPS_PROXY", "S:1"}}, net::scheme::https, "S:1"},  // empty = unset
      {{{"http_proxy", "h:1"}}, net::scheme::https, std::nullopt},
      {{{"all_proxy", "a:1"}, {"ALL_PROXY", "A:1"}}, net::scheme::https, "a:1"},
      {{{"ALL_PROXY", "A:1"}}, net::scheme::http, "A:1"},
      {{{"http_proxy", "h:1"}, {"all_proxy", "a:1"}}, net::scheme::http, "h:1"},
      // ws:// -> ws_proxy, then http_proxy; wss:// -> wss_proxy, then https_proxy; then all_proxy.
      {{{"ws_proxy", "w:1"}, {"http_proxy", "h:1"}}, net::scheme::ws, "w:1"},
      {{{"WS_PROXY", "W:1"}, {"http_proxy", "h:1"}}, net::scheme::ws, "W:1"},
      {{{"http_proxy", "h:1"}}, net::scheme::ws, "h:1"},
      {{{"HTTP_PROXY", "H:1"}, {"all_proxy", "a:1"}}, net::scheme::ws, "a:1"},
      {{{"wss_proxy", "ws:1"}, {"https_proxy", "s:1"}}, net::scheme::wss, "ws:1"},
      {{{"HTTPS_PROXY", "S:1"}}, net::scheme::wss, "S:1"},
      {{{"http_proxy", "h:1"}}, net::scheme::wss, std::nullopt},
      {{{"all_proxy", "a:1"}}, net::scheme::wss, "a:1"},
  };
  for (const auto& r : rows) {
    INFO("scheme " << static_cast<int>(r.scheme));
    CHECK(net::proxy_from_environment(r.scheme, env_of(r.env)) == r.expected);
  }
}

TEST_CASE("proxy: an explicit option overrides the environment, empty disables, no_proxy applies", "[net][proxy]") {
  const auto env = env_of({{"http_proxy", "http://envproxy:3128"}, {"no_proxy", "internal.test"}});
  const auto url = url_of("http://files.example/a");
  net::proxy_options o;
  auto p = net::choose_proxy(o, url, env);
  REQUIRE(p.has_value());
  REQUIRE(p->has_value());
  CHECK((*p)->host == "envproxy");
  CHECK((*p)->port == 3128);

  o.url = "socks5h://user:pa%40ss@127.0.0.1:1081";
  p = net::choose_proxy(o, url, env);
  REQUIRE(p.has_value());
  REQUIRE(p->has_value());
  CHECK((*p)->kind == net::proxy_kind::socks5h);
  CHECK((*p)->username == "user");
  CHECK((*p)->password == "pa@ss");
  CHECK((*p)->redacted() == "socks5h://127.0.0.1:1081");

  o.url = "";
  p = net::choose_proxy(o, url, env);
  REQUIRE(p.has_value());
  CHECK(!p->has_value());

  // no_proxy from the environment applies to the explicit proxy too; an explicit no_proxy wins.
  o.url = "http://p:1";
  p = net::choose_proxy(o, url_of("http://www.internal.test/"), env);
  REQUIRE(p.has_value());
  CHECK(!p->has_value());
  o.no_proxy = "";
  p = net::choose_proxy(o, url_of("http://www.internal.test/"), env);
  REQUIRE(p.has_value());
  CHECK(p->has_value());
  // NO_PROXY when no_proxy is unset.
  p = net::choose_proxy(net::proxy_options{}, url_of("http://a.corp/"),
                        env_of({{"http_proxy", "p:1"}, {"NO_PROXY", "corp"}}));
  REQUIRE(p.has_value());
  CHECK(!p->has_value());
}

TEST_CASE("proxy: proxy URLs parse with curl's defaults and refuse what is not a proxy", "[net][proxy]") {
  struct row {
    const char* text;
    bool ok;
    net::proxy_kind kind;
    const char* host;
    std::uint16_t port;
  };
  const row rows[] = {
      {"proxy.test", true, net::proxy_kind::http, "proxy.test", 1080},
      {"proxy.test:3128", true, net::proxy_kind::http, "proxy.test", 3128},
      {"http://proxy.test:8080/", true, net::proxy_kind::http, "proxy.test", 8080},
      {"HTTP://proxy.test", true, net::proxy_kind::http, "proxy.test", 1080},
      {"socks5://127.0.0.1", true, net::proxy_kind::socks5, "127.0.0.1", 1080},
      {"socks5h://[::1]:9050", true, net::proxy_kind::socks5h, "::1", 9050},
      {"https://proxy.test", true, net::proxy_kind::https, "proxy.test", 443},  // curl's default
      {"HTTPS://proxy.test:8443", true, net::proxy_kind::https, "proxy.test", 8443},
      {"socks4://proxy.test", false, {}, "", 0},
      {"http://proxy.test:0", false, {}, "", 0},
      {"http://proxy.test:99999", false, {}, "", 0},
      {"http://proxy.test/path", false, {}, "", 0},
      {"http://", false, {}, "", 0},
  };
  for (const auto& r : rows) {
    INFO(r.text);
    auto p = net::parse_proxy_url(r.text);
    REQUIRE(p.has_value() == r.ok);
    if (!r.ok) continue;
    CHECK(p->kind == r.kind);
    CHECK(p->host == r.host);
    CHECK(p->port == r.port);
  }
  CHECK(net::parse_proxy_url("ftp://p").error() == error::unsupported_scheme);
  CHECK(net::parse_proxy_url("https://alice:pw@p")->redacted() == "https://p:443");
  CHECK(net::parse_proxy_url("socks5h://[::1]:9050")->redacted() == "socks5h://[::1]:9050");
}

TEST_CASE("proxy: the CONNECT request and the proxy's answers", "[net][proxy]") {
  net::proxy_config p;
  CHECK(net::detail::connect_request(p, "example.com", 443).rfind(
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n", 0) == 0);
  CHECK(net::detail::connect_request(p, "::1", 80).rfind("CONNECT [::1]:80 HTTP/1.1\r\n", 0) == 0);
  CHECK(net::detail::connect_request(p, "h", 1).find("Proxy-Authorization") == std::string::npos);
  p.username = "Aladdin";
  p.password = "open sesame";
  const auto req = net::detail::connect_request(p, "h", 1);
  CHECK(req.find("Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n") != std::string::npos);
  CHECK(req.size() >= 4);
  CHECK(req.substr(req.size() - 4) == "\r\n\r\n");

  struct row {
    const char* head;
    unsigned status;
    error_code ec;
  };
  const row rows[] = {
      {"HTTP/1.1 200 Connection established\r\n\r\n", 200, {}},
      {"HTTP/1.0 200 OK\r\nProxy-agent: x\r\n\r\n", 200, {}},
      {"HTTP/1.1 204\r\n\r\n", 204, {}},
      {"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", 407, error::proxy_auth_required},
      {"HTTP/1.0 401 Unauthorized\r\n\r\n", 401, error::proxy_auth_required},  // tinyproxy, wrong password
      {"HTTP/1.1 403 Forbidden\r\n\r\n", 403, error::proxy_denied},
      {"HTTP/1.1 502 Bad Gateway\r\n\r\n", 502, error::proxy_failed},
      {"HTTP/1.1 301 Moved\r\n\r\n", 301, error::proxy_protocol_error},
      {"SSH-2.0-OpenSSH\r\n\r\n", 0, error::proxy_protocol_error},
      {"HTTP/1.1 2000 x\r\n\r\n", 0, error::proxy_protocol_error},
      {"HTTP/1.1 20x\r\n\r\n", 0, error::proxy_protocol_error},
      {"HTTP/1.1 200 OK\r\n", 0, error::proxy_protocol_error},  // no end of the header block
      {"\x05\x00", 0, error::proxy_protocol_error},                // a SOCKS server
  };
  for (const auto& r : rows) {
    INFO(r.head);
    const auto a = net::detail::parse_connect_response(r.head);
    CHECK(a.ec == r.ec);
    if (r.status) CHECK(a.status == r.status);
  }
  CHECK(error_code(error::proxy_failed) == condition::transient);
  CHECK(error_code(error::proxy_auth_required) == condition::fatal);
  CHECK(error_code(error::proxy_denied) == condition::fatal);
}

TEST_CASE("proxy: SOCKS5 greeting, authentication and CONNECT bytes (RFC 1928, RFC 1929)", "[net][proxy]") {
  net::proxy_config p;
  p.kind = net::proxy_kind::socks5h;
  CHECK(net::detail::socks5_greeting(p) == bytes({5, 1, 0}));
  p.username = "u";
  p.password = "pw";
  CHECK(net::detail::socks5_greeting(p) == bytes({5, 2, 0, 2}));
  CHECK(*net::detail::socks5_auth_request(p) == bytes({1, 1, 'u', 2, 'p', 'w'}));
  p.password = std::string(256, 'x');
  CHECK(net::detail::socks5_auth_request(p).error() == error::invalid_argument);

  bool auth = false;
  CHECK(!net::detail::socks5_method(bytes({5, 0}), true, auth));
  CHECK(!auth);
  CHECK(!net::detail::socks5_method(bytes({5, 2}), true, auth));
  CHECK(auth);
  CHECK(net::detail::socks5_method(bytes({5, 2}), false, auth) == error::proxy_protocol_error);
  CHECK(net::detail::socks5_method(bytes({5, 0xFF}), true, auth) == error::proxy_auth_required);
  CHECK(net::detail::socks5_method(bytes({4, 0}), true, auth) == error::proxy_protocol_error);
  CHECK(!net::detail::socks5_auth_reply(bytes({1, 0})));
  CHECK(net::detail::socks5_auth_reply(bytes({1, 1})) == error::proxy_auth_required);
  CHECK(net::detail::socks5_auth_reply(bytes({5, 0})) == error::proxy_protocol_error);

  CHECK(*net::detail::socks5_connect_request("10.1.2.3", 443) == bytes({5, 1, 0, 1, 10, 1, 2, 3, 1, 0xBB}));
  CHECK(*net::detail::socks5_connect_request("ex.test", 80) ==
        bytes({5, 1, 0, 3, 7, 'e', 'x', '.', 't', 'e', 's', 't', 0, 80}));
  const auto v6 = *net::detail::socks5_connect_request("::1", 8080);
  CHECK(v6.size() == 4 + 16 + 2);
  CHECK(v6[3] == 4);
  CHECK(net::detail::socks5_connect_request(std::string(256, 'a'), 80).error() == error::invalid_argument);

  CHECK(*net::detail::socks5_reply_rest(bytes({5, 0, 0, 1, 127})) == 3 + 2);
  CHECK(*net::detail::socks5_reply_rest(bytes({5, 0, 0, 4, 0})) == 15 + 2);
  CHECK(*net::detail::socks5_reply_rest(bytes({5, 0, 0, 3, 9})) == 9 + 2);
  CHECK(net::detail::socks5_reply_rest(bytes({5, 0, 0, 7, 0})).error() == error::proxy_protocol_error);
  CHECK(net::detail::socks5_reply_rest(bytes({4, 0, 0, 1, 0})).error() == error::proxy_protocol_error);
  // Each reply code is its own error; not-allowed and not-supported are fatal, the rest transient.
  for (int code = 1; code <= 8; ++code) {
    const auto r = net::detail::socks5_reply_rest(bytes({5, code, 0, 1, 0}));
    REQUIRE(!r);
    CHECK(r.error().category() == socks_category());
    CHECK(r.error().value() == code);
    const bool fatal = code == 2 || code == 7 || code == 8;
    CHECK((r.error() == condition::fatal) == fatal);
    CHECK((r.error() == condition::transient) == !fatal);
  }
  CHECK(error_code(5, socks_category()).message() == "SOCKS5 proxy: connection refused by the destination host");
}

TEST_CASE("pins: curl and OkHttp spellings of a SHA-256 public key pin", "[net][pin]") {
  const std::string b64 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";  // SHA-256 of ""
  CHECK(net::parse_pin("sha256//" + b64).has_value());
  CHECK(net::parse_pin("sha256/" + b64).has_value());
  CHECK(*net::parse_pin("sha256//" + b64) == *net::parse_pin("sha256/" + b64));
  CHECK(net::parse_pin("sha256//" + b64)->size() == 32);
  CHECK(!net::parse_pin(b64).has_value());
  CHECK(!net::parse_pin("sha1//" + b64).has_value());
  CHECK(!net::parse_pin("sha256//" + b64.substr(2)).has_value());  // (one short reads as the OkHttp spelling of "/...")
  CHECK(!net::parse_pin("sha256//" + b64.substr(0, 43) + "A").has_value());
  CHECK(!net::parse_pin("sha256//!!!DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=").has_value());
  CHECK(net::parse_pin("").error() == error::invalid_argument);
  // A value that begins with '/' (one key in 64): its OkHttp spelling has two slashes too.
  const std::string slash = "/xDEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
  REQUIRE(net::parse_pin("sha256//" + slash).has_value());
  REQUIRE(net::parse_pin("sha256/" + slash).has_value());
  CHECK(*net::parse_pin("sha256//" + slash) == *net::parse_pin("sha256/" + slash));
  CHECK(*net::parse_pin("sha256/" + slash) != *net::parse_pin("sha256/" + b64));
  CHECK(!net::parse_pin("sha256///" + slash).has_value());
}
