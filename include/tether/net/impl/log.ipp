#pragma once

#include <tether/net/detail/ascii.hpp>
#include <tether/net/log.hpp>

#include <algorithm>
#include <array>

namespace tether::net {
namespace detail {

inline std::string lower(std::string_view s) { return ascii_lower(s); }

}  // namespace detail

bool is_secret_header(std::string_view name) noexcept {
  const auto n = detail::lower(name);
  static constexpr std::array<std::string_view, 4> exact = {"authorization", "proxy-authorization",
                                                            "cookie", "set-cookie"};
  if (std::find(exact.begin(), exact.end(), n) != exact.end()) return true;
  for (std::string_view part : {"token", "secret", "password", "api-key", "apikey"})
    if (n.find(part) != std::string::npos) return true;
  return false;
}

bool is_secret_parameter(std::string_view name) noexcept {
  const auto n = detail::lower(name);
  static constexpr std::array<std::string_view, 9> exact = {
      "auth", "key", "api_key", "apikey", "password", "secret", "signature", "sig", "code"};
  if (std::find(exact.begin(), exact.end(), n) != exact.end()) return true;
  for (std::string_view part : {"token", "secret", "password"})
    if (n.find(part) != std::string::npos) return true;
  return false;
}

std::string redact_header(std::string_view name, std::string_view value) {
  std::string out(name);
  out += ": ";
  out += is_secret_header(name) ? std::string_view("REDACTED") : value;
  return out;
}

std::string redact_target(std::string_view target) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return std::string(target);
  std::string out(target.substr(0, q + 1));
  std::string_view query = target.substr(q + 1);
  bool first = true;
  while (true) {
    const auto amp = query.find('&');
    const auto pair = query.substr(0, amp);
    const auto eq = pair.find('=');
    if (!first) out += '&';
    first = false;
    if (eq != std::string_view::npos && is_secret_parameter(pair.substr(0, eq))) {
      out += pair.substr(0, eq);
      out += "=REDACTED";
    } else {
      out += pair;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

std::string redact(std::string text, std::string_view secret) {
  if (secret.empty()) return text;
  for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos))
    text.replace(pos, secret.size(), "REDACTED");
  return text;
}

}  // namespace tether::net
