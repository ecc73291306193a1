// tether/net/impl/proxy.ipp: proxy selection (option, environment, no_proxy) and the bytes of
// the CONNECT and SOCKS5 exchanges.
#pragma once

#include <tether/net/detail/ascii.hpp>
#include <tether/net/detail/base64.hpp>
#include <tether/net/detail/port.hpp>
#include <tether/net/detail/proxy_protocol.hpp>
#include <tether/net/proxy.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace tether::net {
namespace detail {

inline bool iequal(std::string_view a, std::string_view b) noexcept { return ascii_iequal(a, b); }

inline std::string_view strip_brackets(std::string_view h) noexcept {
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') return h.substr(1, h.size() - 2);
  return h;
}

// `addr` lies in `net`/`bits` (same family).
inline bool in_cidr(const boost::asio::ip::address& addr, const boost::asio::ip::address& net, unsigned bits) {
  if (addr.is_v4() != net.is_v4()) return false;
  if (addr.is_v4()) {
    if (bits > 32) return false;
    const auto a = addr.to_v4().to_uint(), n = net.to_v4().to_uint();
    const std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
    return (a & mask) == (n & mask);
  }
  if (bits > 128) return false;
  const auto a = addr.to_v6().to_bytes(), n = net.to_v6().to_bytes();
  for (unsigned i = 0; i < 16 && bits > 0; ++i) {
    const unsigned take = std::min(bits, 8u);
    const auto mask = static_cast<unsigned char>(0xFF << (8 - take));
    if ((a[i] & mask) != (n[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

inline bool ip_entry_matches(const boost::asio::ip::address& addr, std::string_view entry) {
  boost::system::error_code ec;
  const auto slash = entry.find('/');
  const auto net = boost::asio::ip::make_address(std::string(strip_brackets(entry.substr(0, slash))), ec);
  if (ec) return false;
  if (slash == std::string_view::npos) return net == addr;
  unsigned bits = 0;
  const auto b = entry.substr(slash + 1);
  const auto [p, fec] = std::from_chars(b.data(), b.data() + b.size(), bits);
  if (b.empty() || fec != std::errc{} || p != b.data() + b.size()) return false;
  return in_cidr(addr, net, bits);
}

inline bool name_entry_matches(std::string_view name, std::string_view entry) {
  while (!entry.empty() && entry.front() == '.') entry.remove_prefix(1);
  if (!entry.empty() && entry.back() == '.') entry.remove_suffix(1);
  if (entry.empty()) return false;
  if (entry.size() == name.size()) return iequal(entry, name);
  // A tail match at a label boundary.
  return entry.size() < name.size() && name[name.size() - entry.size() - 1] == '.' &&
         iequal(name.substr(name.size() - entry.size()), entry);
}

inline std::optional<std::string> non_empty(std::optional<std::string> v) {
  if (v && v->empty()) return std::nullopt;
  return v;
}

inline void put_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xFF));
}

}  // namespace detail

std::string proxy_config::redacted() const {
  const char* s = "socks5h";
  switch (kind) {
    case proxy_kind::http: s = "http"; break;
    case proxy_kind::https: s = "https"; break;
    case proxy_kind::socks5: s = "socks5"; break;
    case proxy_kind::socks5h: break;
  }
  const bool v6 = host.find(':') != std::string::npos;
  return std::string(s) + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

boost::system::result<proxy_config> parse_proxy_url(std::string_view text) {
  std::string owned(text);
  if (owned.find("://") == std::string::npos) owned = "http://" + owned;
  auto parsed = boost::urls::parse_uri(owned);
  if (!parsed) return make_error_code(error::invalid_url);
  const auto& u = *parsed;
  proxy_config p;
  const auto scheme = std::string(u.scheme());
  if (detail::iequal(scheme, "http"))
    p.kind = proxy_kind::http;
  else if (detail::iequal(scheme, "https")) {
    p.kind = proxy_kind::https;
    p.port = 443;
  } else if (detail::iequal(scheme, "socks5"))
    p.kind = proxy_kind::socks5;
  else if (detail::iequal(scheme, "socks5h"))
    p.kind = proxy_kind::socks5h;
  else
    return make_error_code(error::unsupported_scheme);
  if (!u.has_authority() || u.encoded_host().empty()) return make_error_code(error::invalid_url);
  if (u.host_type() == boost::urls::host_type::ipvfuture) return make_error_code(error::invalid_url);
  p.host = u.host_type() == boost::urls::host_type::ipv6 ? u.host_ipv6_address().to_string() : std::string(u.host());
  if (!(u.encoded_path().empty() || u.encoded_path() == "/") || u.has_query() || u.has_fragment())
    return make_error_code(error::invalid_url);
  if (u.has_port()) {
    const auto port = detail::parse_port(u.port());
    if (!port) return make_error_code(error::invalid_url);
    p.port = *port;
  }
  if (u.has_userinfo()) {
    p.username = std::string(u.user());
    p.password = std::string(u.password());
  }
  return p;
}

bool no_proxy_matches(std::string_view list, std::string_view host) {
  const auto is_sep = [](char c) { return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  auto trimmed = list;
  while (!trimmed.empty() && is_sep(trimmed.front())) trimmed.remove_prefix(1);
  while (!trimmed.empty() && is_sep(trimmed.back())) trimmed.remove_suffix(1);
  if (trimmed == "*") return true;
  host = detail::strip_brackets(host);
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty()) return false;
  boost::system::error_code ec;
  const auto addr = boost::asio::ip::make_address(std::string(host), ec);
  const bool is_ip = !ec;
  std::size_t i = 0;
  while (i < list.size()) {
    while (i < list.size() && is_sep(list[i])) ++i;
    std::size_t j = i;
    while (j < list.size() && !is_sep(list[j])) ++j;
    const auto entry = list.substr(i, j - i);
    i = j;
    if (entry.empty()) continue;
    if (is_ip ? detail::ip_entry_matches(addr, entry) : detail::name_entry_matches(host, entry)) return true;
  }
  return false;
}

std::optional<std::string> process_environment(const char* name) {
  // Read once per connection attempt; the environment is not changed by tether.
  const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): read-only use
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

std::optional<std::string> proxy_from_environment(scheme s, const env_reader& env) {
  const auto both = [&](const char* lower, const char* upper) {
    auto v = detail::non_empty(env(lower));
    return v ? v : detail::non_empty(env(upper));
  };
  std::optional<std::string> v;
  switch (s) {
    case scheme::ws:
      v = both("ws_proxy", "WS_PROXY");
      if (!v) v = detail::non_empty(env("http_proxy"));
      break;
    case scheme::http: v = detail::non_empty(env("http_proxy")); break;
    case scheme::wss:
      v = both("wss_proxy", "WSS_PROXY");
      if (!v) v = both("https_proxy", "HTTPS_PROXY");
      break;
    case scheme::https: v = both("https_proxy", "HTTPS_PROXY"); break;
  }
  if (!v) v = both("all_proxy", "ALL_PROXY");
  return v;
}

boost::system::result<std::optional<proxy_config>> choose_proxy(const proxy_options& options, const endpoint_url& url,
                                                                const env_reader& env) {
  const auto text = options.url ? options.url : proxy_from_environment(url.scheme, env);
  if (!text || text->empty()) return std::optional<proxy_config>{};
  auto no_proxy = options.no_proxy;
  if (!no_proxy) no_proxy = env("no_proxy");
  if (!no_proxy) no_proxy = env("NO_PROXY");
  if (no_proxy && no_proxy_matches(*no_proxy, url.host)) return std::optional<proxy_config>{};
  auto p = parse_proxy_url(*text);
  if (!p) return p.error();
  return std::optional<proxy_config>{std::move(*p)};
}

namespace detail {

std::string connect_request(const proxy_config& p, std::string_view host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string_view::npos;
  std::string authority = v6 ? "[" + std::string(host) + "]" : std::string(host);
  authority += ":" + std::to_string(port);
  std::string req = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
  if (p.has_credentials())
    req += "Proxy-Authorization: Basic " + base64(p.username + ":" + p.password) + "\r\n";
  req += "User-Agent: tether/" TETHER_VERSION_STRING "\r\n\r\n";
  return req;
}

connect_answer parse_connect_response(std::string_view head) {
  connect_answer a;
  // "HTTP/1.x SSS ..." (RFC 9112 §4).
  if (head.size() < 12 || head.substr(0, 7) != "HTTP/1." || head[8] != ' ' ||
      head.find("\r\n\r\n") == std::string_view::npos) {
    a.ec = make_error_code(error::proxy_protocol_error);
    return a;
  }
  const auto code = head.substr(9, 3);
  unsigned status = 0;
  const auto [ptr, ec] = std::from_chars(code.data(), code.data() + 3, status);
  if (ec != std::errc{} || ptr != code.data() + 3 || status < 100 || (head.size() > 12 && head[12] != ' ' && head[12] != '\r')) {
    a.ec = make_error_code(error::proxy_protocol_error);
    return a;
  }
  a.status = status;
  if (status >= 200 && status < 300) return a;
  // 401: tinyproxy's answer to wrong credentials; a CONNECT's answer is the proxy's own.
  if (status == 407 || status == 401)
    a.ec = make_error_code(error::proxy_auth_required);
  else if (status >= 400 && status < 500)
    a.ec = make_error_code(error::proxy_denied);
  else if (status >= 500 && status < 600)
    a.ec = make_error_code(error::proxy_failed);
  else
    a.ec = make_error_code(error::proxy_protocol_error);
  return a;
}

std::string socks5_greeting(const proxy_config& p) {
  if (p.has_credentials()) return std::string("\x05\x02\x00\x02", 4);
  return std::string("\x05\x01\x00", 3);
}

error_code socks5_method(std::string_view reply, bool offered_auth, bool& need_auth) {
  need_auth = false;
  if (reply.size() != 2 || reply[0] != '\x05') return make_error_code(error::proxy_protocol_error);
  const auto m = static_cast<unsigned char>(reply[1]);
  if (m == 0x00) return {};
  if (m == 0x02 && offered_auth) {
    need_auth = true;
    return {};
  }
  if (m == 0xFF) return make_error_code(error::proxy_auth_required);
  return make_error_code(error::proxy_protocol_error);
}

boost::system::result<std::string> socks5_auth_request(const proxy_config& p) {
  if (p.username.size() > 255 || p.password.size() > 255) return make_error_code(error::invalid_argument);
  std::string out;
  out.push_back('\x01');
  out.push_back(static_cast<char>(p.username.size()));
  out += p.username;
  out.push_back(static_cast<char>(p.password.size()));
  out += p.password;
  return out;
}

error_code socks5_auth_reply(std::string_view reply) {
  if (reply.size() != 2 || reply[0] != '\x01') return make_error_code(error::proxy_protocol_error);
  return reply[1] == '\x00' ? error_code{} : make_error_code(error::proxy_auth_required);
}

boost::system::result<std::string> socks5_connect_request(std::string_view host, std::uint16_t port) {
  std::string out("\x05\x01\x00", 3);
  boost::system::error_code ec;
  const auto addr = boost::asio::ip::make_address(std::string(strip_brackets(host)), ec);
  if (!ec && addr.is_v4()) {
    out.push_back('\x01');
    for (auto b : addr.to_v4().to_bytes()) out.push_back(static_cast<char>(b));
  } else if (!ec) {
    out.push_back('\x04');
    for (auto b : addr.to_v6().to_bytes()) out.push_back(static_cast<char>(b));
  } else {
    if (host.empty() || host.size() > 255) return make_error_code(error::invalid_argument);
    out.push_back('\x03');
    out.push_back(static_cast<char>(host.size()));
    out += host;
  }
  put_u16(out, port);
  return out;
}

boost::system::result<std::size_t> socks5_reply_rest(std::string_view head) {
  if (head.size() != 5 || head[0] != '\x05' || head[2] != '\x00') return make_error_code(error::proxy_protocol_error);
  if (const auto rep = static_cast<unsigned char>(head[1]); rep != 0) return error_code{rep, socks_category()};
  switch (head[3]) {
    case '\x01': return std::size_t{4 - 1 + 2};
    case '\x04': return std::size_t{16 - 1 + 2};
    case '\x03': return static_cast<std::size_t>(static_cast<unsigned char>(head[4])) + 2;
    default: return make_error_code(error::proxy_protocol_error);
  }
}

}  // namespace detail
}  // namespace tether::net
