#pragma once

#include <tether/net/detail/port.hpp>
#include <tether/net/log.hpp>
#include <tether/net/url.hpp>

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <boost/url/url_view.hpp>

#include <ostream>

namespace tether::net {
namespace detail {

inline boost::system::result<endpoint_url> from_view(const boost::urls::url_view& u) {
  endpoint_url out;
  if (!u.has_scheme()) return make_error_code(error::invalid_url);
  const auto s = u.scheme_id();
  switch (s) {
    case boost::urls::scheme::ws: out.scheme = scheme::ws; break;
    case boost::urls::scheme::wss: out.scheme = scheme::wss; break;
    case boost::urls::scheme::http: out.scheme = scheme::http; break;
    case boost::urls::scheme::https: out.scheme = scheme::https; break;
    default: return make_error_code(error::unsupported_scheme);
  }
  if (!u.has_authority() || u.encoded_host().empty()) return make_error_code(error::invalid_url);
  if (u.has_userinfo()) return make_error_code(error::invalid_url);
  if (u.has_fragment() && (out.scheme == scheme::ws || out.scheme == scheme::wss))
    return make_error_code(error::invalid_url);
  switch (u.host_type()) {
    case boost::urls::host_type::ipv6:
      out.host = u.host_ipv6_address().to_string();
      out.ipv6_literal = true;
      break;
    case boost::urls::host_type::ipvfuture: return make_error_code(error::invalid_url);
    default: {
      // A host name is letters, digits and "-._~" (RFC 3986 unreserved; DNS names); anything
      // else, percent-encoded bytes included, is refused rather than guessed at.
      const auto h = u.encoded_host();
      for (char ch : h) {
        const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                        ch == '-' || ch == '.' || ch == '_' || ch == '~';
        if (!ok) return make_error_code(error::invalid_url);
      }
      out.host = std::string(h);
      break;
    }
  }
  if (u.has_port()) {
    const auto port = parse_port(u.port());
    if (!port) return make_error_code(error::invalid_url);
    out.port = *port;
  } else {
    out.port = default_port(out.scheme);
  }
  out.target = u.encoded_path().empty() ? "/" : std::string(u.encoded_path());
  if (out.target.front() != '/') return make_error_code(error::invalid_url);
  if (u.has_query()) {
    out.target += '?';
    out.target += u.encoded_query();
  }
  return out;
}

}  // namespace detail

boost::system::result<endpoint_url> parse_url(std::string_view text) {
  auto r = boost::urls::parse_absolute_uri(text);
  if (!r) {
    // Say "unsupported scheme" for well-formed URIs of another kind (e.g. "ftp://x/#a").
    auto any = boost::urls::parse_uri(text);
    if (any && any->has_scheme()) return detail::from_view(*any);
    return make_error_code(error::invalid_url);
  }
  return detail::from_view(*r);
}

boost::system::result<endpoint_url> resolve_url(const endpoint_url& base, std::string_view reference) {
  auto ref = boost::urls::parse_uri_reference(reference);
  if (!ref) return make_error_code(error::invalid_url);
  auto base_text = base.to_string();
  auto b = boost::urls::parse_uri(base_text);
  if (!b) return make_error_code(error::invalid_url);
  boost::urls::url dest;
  auto rr = boost::urls::resolve(*b, *ref, dest);
  if (!rr) return make_error_code(error::invalid_url);
  dest.remove_fragment();
  return detail::from_view(dest);
}

void append_query_parameter(endpoint_url& url, std::string_view name, std::string_view value) {
  boost::urls::url u("http://h" + url.target);
  u.params().append({name, value});
  std::string t(u.encoded_path());
  if (t.empty()) t = "/";
  if (u.has_query()) {
    t += '?';
    t += u.encoded_query();
  }
  url.target = std::move(t);
}

std::string endpoint_url::host_header() const {
  std::string h = ipv6_literal ? "[" + host + "]" : host;
  if (port != default_port(scheme)) h += ":" + std::to_string(port);
  return h;
}

std::string endpoint_url::to_string() const {
  static constexpr const char* names[] = {"ws", "wss", "http", "https"};
  std::string s = names[static_cast<int>(scheme)];
  s += "://";
  s += ipv6_literal ? "[" + host + "]" : host;
  s += ":" + std::to_string(port);
  s += target;
  return s;
}

std::ostream& operator<<(std::ostream& os, const endpoint_url& u) { return os << u.redacted(); }

std::string endpoint_url::redacted() const {
  auto copy = *this;
  copy.target = redact_target(target);
  return copy.to_string();
}

}  // namespace tether::net
