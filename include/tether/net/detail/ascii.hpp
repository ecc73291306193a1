// tether/net/detail/ascii.hpp: case folding for protocol tokens (header names, hex digests,
// URL schemes), which are ASCII: no locale is consulted (std::tolower asks it per byte), and
// bytes outside A-Z are left as they are.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tether::net::detail {

inline char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = ascii_lower(c);
  return out;
}

inline bool ascii_iequal(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

}  // namespace tether::net::detail
