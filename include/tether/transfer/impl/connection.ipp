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

}  // namespace tether::transfer::detail
