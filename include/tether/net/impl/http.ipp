#pragma once

#include <tether/net/http.hpp>

#include <charconv>
#include <limits>

namespace tether::net {

namespace detail {
inline std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
inline std::optional<std::uint64_t> digits(std::string_view s) noexcept {
  if (s.empty() || s.size() > 19) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
  return v;
}
}  // namespace detail

std::optional<std::uint64_t> parse_decimal(std::string_view value) noexcept {
  return detail::digits(detail::trim_ows(value));
}

std::optional<content_range> parse_content_range(std::string_view value) noexcept {
  value = detail::trim_ows(value);
  constexpr std::string_view unit = "bytes ";
  if (value.size() < unit.size()) return std::nullopt;
  for (std::size_t i = 0; i < unit.size(); ++i) {
    const char c = value[i];
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    if (lower != unit[i]) return std::nullopt;
  }
  value.remove_prefix(unit.size());
  const auto slash = value.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto range = value.substr(0, slash);
  const auto complete = value.substr(slash + 1);
  content_range r;
  if (complete != "*") {
    r.complete_length = detail::digits(complete);
    if (!r.complete_length) return std::nullopt;
  }
  if (range == "*") {
    if (!r.complete_length) return std::nullopt;  // "bytes */*" says nothing
    r.satisfied = false;
    return r;
  }
  const auto dash = range.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const auto first = detail::digits(range.substr(0, dash));
  const auto last = detail::digits(range.substr(dash + 1));
  if (!first || !last || *last < *first) return std::nullopt;
  if (r.complete_length && *last >= *r.complete_length) return std::nullopt;
  r.first = *first;
  r.last = *last;
  return r;
}

bool is_strong_etag(std::string_view v) noexcept {
  v = detail::trim_ows(v);
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return false;
  for (char c : v.substr(1, v.size() - 2)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || u < 0x21 || u == 0x7f) return false;  // etagc = %x21 / %x23-7E / obs-text
  }
  return true;
}

}  // namespace tether::net
