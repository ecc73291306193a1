// tether/net/detail/port.hpp: a URL's port text as a number (shared by the URL and proxy parsers).
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tether::net::detail {

/// 1-65535 written in decimal digits only; nothing else.
inline std::optional<std::uint16_t> parse_port(std::string_view text) noexcept {
  unsigned value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || value == 0 || value > 65535)
    return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

}  // namespace tether::net::detail
